"""Processes under blinkroot, seen from outside: one guest process is one host
process, so the host (this test) can signal it, stop it and wait for it.

The C programs for the process manager (tests/guest/proc_*.c, thr_*.c, sig_*.c) run
in test_guest_programs.py like every guest program; this file adds what needs more
than a plain run: the 100 MiB pipeline, a process stopped and continued from outside,
signals from the host, and the termination blinkroot passes on to its own parent.
"""

import os
import signal
import subprocess
import time

import pytest

from guestlib import GUEST_ENV, REPO_ROOT, TOOLCHAINS, assert_same, blinkroot_command, build

BUSYBOX = "/bin/busybox"
needs_busybox = pytest.mark.skipif(not os.path.exists(BUSYBOX), reason=f"{BUSYBOX} is not installed")


@pytest.mark.slow
@pytest.mark.parametrize("toolchain", list(TOOLCHAINS))
def test_pipeline_100mib(toolchain, tmp_path):
    """writer -> relay -> relay -> reader, four processes, 100 MiB."""
    binary = build("proc_pipeline", toolchain)
    comparison = assert_same([binary, "100"], workdir=tmp_path, timeout=600)
    assert b"reader: 104857600 bytes" in comparison.native.stdout


# ---- the guest process from the host's side ------------------------------------------


def spawn(argv, emulated):
    """Start argv (under blinkroot if emulated) with pipes for stdin and stdout."""
    command = blinkroot_command(argv) if emulated else list(argv)
    return subprocess.Popen(
        [str(a) for a in command],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=GUEST_ENV,
        cwd=REPO_ROOT,
    )


def read_line(proc, timeout=15):
    """One line from proc's stdout, failing the test after timeout seconds."""
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    line = b""
    deadline = time.monotonic() + timeout
    while not line.endswith(b"\n"):
        if not sel.select(max(0.0, deadline - time.monotonic())):
            pytest.fail(f"no complete line within {timeout} s (got {line!r})", pytrace=False)
        c = os.read(proc.stdout.fileno(), 1)
        if not c:
            break
        line += c
    sel.close()
    return line


def finish(proc, timeout=15):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"did not end within {timeout} s", pytrace=False)
    return out, err, proc.returncode


@pytest.fixture
def cleanup():
    procs = []
    yield procs.append
    for p in procs:
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            p.kill()
            p.wait()


def both(run):
    """run(emulated) -> result, natively and emulated; they must agree."""
    native = run(False)
    emulated = run(True)
    assert emulated == native
    return native


@needs_busybox
def test_guest_pid_is_host_pid(cleanup):
    def run(emulated):
        p = spawn([BUSYBOX, "sh", "-c", "echo $$; exec " + BUSYBOX + " sh -c 'echo $$'"], emulated)
        cleanup(p)
        out, err, rc = finish(p)
        return [int(x) == p.pid for x in out.split()], rc

    assert both(run) == ([True, True], 0)


@needs_busybox
@pytest.mark.parametrize("sig", ["TERM", "USR1", "HUP", "INT"])
def test_host_signal_to_trap(sig, cleanup):
    """The host signals a waiting guest shell; its trap runs and sets the exit status."""
    script = f"trap 'echo trapped; exit 7' {sig}; echo ready; while :; do read x; done"

    def run(emulated):
        p = spawn([BUSYBOX, "sh", "-c", script], emulated)
        cleanup(p)
        assert read_line(p) == b"ready\n"
        time.sleep(0.2)
        p.send_signal(getattr(signal, "SIG" + sig))  # interrupts the read: the trap runs
        return finish(p)

    assert both(run) == (b"trapped\n", b"", 7)


@needs_busybox
@pytest.mark.parametrize("sig", ["TERM", "KILL", "SEGV", "ABRT", "PIPE"])
def test_guest_killed_by_signal(sig, cleanup):
    """A guest that kills itself: blinkroot ends with that very signal."""
    def run(emulated):
        p = spawn([BUSYBOX, "sh", "-c", f"kill -{sig} $$; echo survived"], emulated)
        cleanup(p)
        return finish(p)

    assert both(run) == (b"", b"", -getattr(signal, "SIG" + sig))


@needs_busybox
@pytest.mark.parametrize("sig", ["STOP", "TSTP"])
def test_guest_stops_itself(sig, cleanup):
    """`kill -STOP $$` stops the host process: its parent sees it stopped with that
    signal, continues it, and the guest goes on."""
    def run(emulated):
        p = spawn([BUSYBOX, "sh", "-c", f"echo before; kill -{sig} $$; echo after"], emulated)
        cleanup(p)
        assert read_line(p) == b"before\n"
        deadline = time.monotonic() + 15
        while True:
            pid, status = os.waitpid(p.pid, os.WUNTRACED | os.WNOHANG)
            if pid or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        stopped = pid == p.pid and os.WIFSTOPPED(status) and os.WSTOPSIG(status)
        os.kill(p.pid, signal.SIGCONT)
        out = read_line(p)
        _, status = os.waitpid(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        return stopped, out, p.returncode

    assert both(run) == (getattr(signal, "SIG" + sig), b"after\n", 0)


@needs_busybox
def test_host_stops_and_continues_guest(cleanup):
    """SIGSTOP from outside, then SIGCONT: the guest carries on where it was."""
    script = "i=0; while [ $i -lt 5 ]; do read x; echo got $x; i=$((i+1)); done"

    def run(emulated):
        p = spawn([BUSYBOX, "sh", "-c", script], emulated)
        cleanup(p)
        p.stdin.write(b"one\n")
        p.stdin.flush()
        first = read_line(p)
        os.kill(p.pid, signal.SIGSTOP)
        _, status = os.waitpid(p.pid, os.WUNTRACED)
        stopped = os.WIFSTOPPED(status) and os.WSTOPSIG(status)
        p.stdin.write(b"two\n")     # waits in the pipe while the guest is stopped
        p.stdin.flush()
        time.sleep(0.2)
        os.kill(p.pid, signal.SIGCONT)
        _, status = os.waitpid(p.pid, os.WCONTINUED)
        continued = os.WIFCONTINUED(status)
        # Only now the rest: with all of it at once the shell could finish before the
        # waitpid above, which would then reap its exit instead.
        p.stdin.write(b"three\nfour\nfive\n")
        p.stdin.flush()
        rest = b"".join(read_line(p) for _ in range(4))
        _, status = os.waitpid(p.pid, 0)
        return first, stopped, continued, rest, os.waitstatus_to_exitcode(status)

    assert both(run) == (b"got one\n", signal.SIGSTOP, True, b"got two\ngot three\ngot four\ngot five\n", 0)


@needs_busybox
def test_ignored_sigint_is_inherited(tmp_path):
    """A guest started with SIGINT ignored keeps it ignored (the shell's `trap '' INT`)."""
    script = "trap '' INT; " + BUSYBOX + " sh -c 'kill -INT $$; echo still here'"
    assert_same([BUSYBOX, "sh", "-c", script], workdir=tmp_path)

