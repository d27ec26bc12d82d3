"""Interactive shells under blinkroot, driven through a pseudo-terminal: typed
commands, Ctrl-C and Ctrl-Z (job control through the host tty), line editing.

Each test starts `blinkroot SHELL -i` as the session leader of a new pty (os.forkpty),
with PS1='$ ', and reads until the prompt comes back. Everything spawned is killed at
the end (the whole process group, then the shell).
"""

import os
import re
import select
import signal
import sys
import time

import pytest

from guestlib import GUEST_ENV

BUSYBOX = "/bin/busybox"
BASH = "/bin/bash"
PROMPT = b"$ "
TIMEOUT = 15
ESCAPE = rb"\x1b\[[0-9;?]*[A-Za-z]"  # busybox asks for the cursor position (ESC [6n)
AT_PROMPT = re.compile(rb"\$ (?:" + ESCAPE + rb")*$")

SHELLS = {
    "busybox": [BUSYBOX, "sh", "-i"],
    "bash": [BASH, "--norc", "--noprofile", "-i"],
}


class Terminal:
    def __init__(self, argv):
        env = dict(GUEST_ENV, PS1="$ ", TERM="xterm", HISTFILE="/dev/null")
        pid, fd = os.forkpty()
        if pid == 0:
            try:
                os.execve(sys.executable, [sys.executable, "-m", "blinkroot", *argv], env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self.output = b""
        self.reaped = False

    def read_until(self, pattern, timeout=TIMEOUT, start=None):
        """Read until `pattern` (bytes or compiled regex) appears in what came since
        `start` (default: now); returns that text."""
        deadline = time.monotonic() + timeout
        start = len(self.output) if start is None else start
        while True:
            text = self.output[start:]
            found = pattern.search(text) if hasattr(pattern, "search") else pattern in text
            if found:
                return text
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"waited {timeout} s for {pattern!r}; the terminal showed:\n"
                            f"{text.decode(errors='replace')}", pytrace=False)
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:  # EIO: the other side is closed
                    chunk = b""
                if not chunk:
                    pytest.fail(f"the terminal closed while waiting for {pattern!r}:\n"
                                f"{text.decode(errors='replace')}", pytrace=False)
                self.output += chunk

    def send(self, data: bytes):
        os.write(self.fd, data)

    def command(self, line: str) -> str:
        """Type a line, wait for the next prompt; returns the output between them."""
        start = len(self.output)
        self.send(line.encode() + b"\r")
        self.read_until(b"\n", start=start)
        echoed = self.output.index(b"\n", start) + 1
        text = self.read_until(AT_PROMPT, start=echoed)
        text = re.sub(ESCAPE, b"", text).decode(errors="replace").replace("\r", "")
        return "\n".join(text.split("\n")[:-1])  # drop the prompt

    def alive(self):
        pid, _ = os.waitpid(self.pid, os.WNOHANG)
        return pid == 0

    def close(self):
        if self.reaped:
            os.close(self.fd)
            return
        try:
            pgid = os.getpgid(self.pid)
        except ProcessLookupError:
            pgid = None
        for sig in (signal.SIGCONT, signal.SIGKILL):
            # the shell leads its session; its jobs have groups of their own in it
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
        if pgid is not None:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass
        os.close(self.fd)


def session_pids(leader):
    """Processes in the session of `leader` (its jobs), from /proc."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == leader and int(entry) != leader:  # field 6: session
            pids.append(int(entry))
    return pids


@pytest.fixture(params=list(SHELLS))
def term(request):
    argv = SHELLS[request.param]
    if not os.path.exists(argv[0]):
        pytest.skip(f"{argv[0]} is not installed")
    t = Terminal(argv)
    try:
        t.read_until(PROMPT)
        yield t
    finally:
        leftovers = session_pids(t.pid)
        t.close()
        for pid in leftovers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_command_output(term):
    assert term.command("echo hello $((6*7))") == "hello 42"
    assert term.command("echo one | cat; (exit 3); echo status $?") == "one\nstatus 3"
    assert term.command("x=$(echo sub); echo [$x]") == "[sub]"


def test_ctrl_c_interrupts_foreground_job(term):
    term.send(b"sleep 30\r")
    term.read_until(b"sleep 30")
    time.sleep(1.0)  # let sleep start (and be emulated)
    term.send(b"\x03")
    term.read_until(PROMPT)
    assert term.command("echo $?") == "130"
    assert term.command("echo survived") == "survived"
    assert term.alive()


def test_ctrl_z_stops_then_fg(term):
    term.send(b"sleep 40\r")
    term.read_until(b"sleep 40")
    time.sleep(1.0)
    term.send(b"\x1a")
    term.read_until(PROMPT)
    jobs = term.command("jobs")
    assert re.search(r"Stopped", jobs, re.I), jobs
    assert "sleep 40" in jobs
    term.send(b"fg\r")
    term.read_until(b"sleep 40")
    time.sleep(0.5)
    term.send(b"\x03")
    term.read_until(PROMPT)
    assert term.command("jobs") == ""
    assert term.command("echo still here") == "still here"


def test_background_job_and_wait(term):
    out = term.command("(sleep 0.3; echo from-bg) & wait; echo waited").splitlines()
    assert "from-bg" in out and out.index("from-bg") < out.index("waited"), out


def test_line_editing(term):
    term.send(b"echo ab")
    term.read_until(b"echo ab")
    term.send(b"\x1b[D\x1b[D")  # Left, Left: the cursor before "ab"
    term.send(b"X\r")
    out = term.read_until(re.compile(rb"Xab\r?\n"))
    term.read_until(AT_PROMPT)
    assert b"Xab" in out
    assert term.command("echo done") == "done"


def test_exit(term):
    term.send(b"exit 5\r")
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        pid, status = os.waitpid(term.pid, os.WNOHANG)
        if pid:
            assert os.waitstatus_to_exitcode(status) == 5
            term.reaped = True  # close() must not signal or wait again
            return
        try:
            select.select([term.fd], [], [], 0.1)
            os.read(term.fd, 4096)
        except OSError:
            time.sleep(0.05)
    pytest.fail("the shell did not exit", pytrace=False)
