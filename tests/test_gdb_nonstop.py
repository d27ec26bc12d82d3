"""gdb's non-stop mode through `blinkroot -g`: threads stop and resume on their own.

gdb reads its commands from a pipe (as in batch mode, but its event loop runs between
commands, so the stops of background execution (`&`) are reported as they come)."""

import contextlib
import os
import re
import shutil
import subprocess
import sys
import threading
import time

import pytest

from guestlib import REPO_ROOT

PROG = r"""
#include <pthread.h>
#include <unistd.h>
volatile int ticks = 0, others = 0;
void worker_tick(void) { ticks++; }
void other_loop(void) { for (;;) { others++; usleep(1000); } }
void *worker(void *arg) { for (;;) { worker_tick(); usleep(1000); } return arg; }
int main(void) {
    pthread_t t;
    pthread_create(&t, 0, worker, 0);
    other_loop();
    return 0;
}
"""


@pytest.fixture(scope="module")
def prog(tmp_path_factory):
    if shutil.which("gdb") is None or shutil.which("gcc") is None:
        pytest.skip("gdb or gcc not installed")
    d = tmp_path_factory.mktemp("gdbnonstop")
    (d / "prog.c").write_text(PROG)
    subprocess.run(["gcc", "-g", "-O0", "-pthread", str(d / "prog.c"), "-o", str(d / "prog")],
                   check=True)
    return d / "prog"


class Gdb:
    """gdb on a pipe: send a command, wait for what it prints."""

    def __init__(self, exe):
        self.p = subprocess.Popen(["gdb", "-nx", "-q", str(exe)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.out = ""
        self.seen = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        self.n = 0

    def _read(self):
        while True:
            data = self.p.stdout.read1(65536)
            if not data:
                return
            with self.lock:
                self.out += data.decode(errors="replace")

    def wait(self, pattern, timeout=90):
        """The output since the last wait, once `pattern` appears in it."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                m = re.search(pattern, self.out[self.seen:], re.S)
                if m:
                    text = self.out[self.seen:self.seen + m.end()]
                    self.seen += m.end()
                    return text
            time.sleep(0.1)
        raise AssertionError(f"no {pattern!r} in:\n{self.out[self.seen:]}\n---\n{self.out}")

    def cmd(self, command, until=None):
        """Run command; return its output (up to `until`, else a marker after it)."""
        self.n += 1
        mark = f"@@{self.n}@@"
        self.p.stdin.write(f"{command}\necho {mark}\\n\n".encode())
        self.p.stdin.flush()
        start = self.seen
        text = self.wait(re.escape(mark))
        if until is not None:
            after = self.seen
            self.seen = start       # a stop may be told before the marker, or after
            text = self.wait(until)
            self.seen = max(self.seen, after)
        return text

    def close(self):
        try:
            self.p.stdin.write(b"kill\nquit\n")
            self.p.stdin.close()
            self.p.wait(timeout=30)
        except Exception:
            pass
        finally:
            self.p.kill()


def thread_lines(text):
    """{gdb thread number: its `info threads` line}."""
    return {int(m.group(1)): m.group(0)
            for m in re.finditer(r"^[ *]\s*(\d+)\s+Thread .*$", text, re.M)}


@contextlib.contextmanager
def debugged(prog, nonstop):
    """prog under `blinkroot -g 0`, gdb connected (in non-stop mode or not), a breakpoint
    on worker_tick: the Gdb."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    guest = subprocess.Popen([sys.executable, "-m", "blinkroot", "-g", "0", str(prog)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    port = re.search(r"127\.0\.0\.1:(\d+)", guest.stderr.readline().decode()).group(1)
    gdb = Gdb(prog)
    try:
        for c in ("set confirm off", "set pagination off",
                  *(["set non-stop on"] if nonstop else []),
                  f"target remote 127.0.0.1:{port}", "break worker_tick"):
            gdb.cmd(c)
        yield gdb
    finally:
        gdb.close()
        guest.kill()
        guest.wait()


def test_nonstop_threads_stop_and_resume_independently(prog):
    with debugged(prog, nonstop=True) as gdb:
        # Everything runs; the worker stops at its breakpoint, main goes on.
        gdb.cmd("continue -a &", until=r"Thread 2 \S+ hit Breakpoint 1, worker_tick")
        text = gdb.cmd("info threads")
        lines = thread_lines(text)
        assert "(running)" in lines[1], text
        assert "worker_tick" in lines[2] and "(running)" not in lines[2], text
        # main runs while thread 2 is held
        before = int(re.search(r"= (\d+)", gdb.cmd("print others")).group(1))
        time.sleep(1.5)
        after = int(re.search(r"= (\d+)", gdb.cmd("print others")).group(1))
        assert after > before
        ticks = int(re.search(r"= (\d+)", gdb.cmd("print ticks")).group(1))
        # thread 2 alone resumes, and stops at the breakpoint again
        gdb.cmd("thread 2")
        gdb.cmd("continue &", until=r"Thread 2 \S+ hit Breakpoint 1, worker_tick")
        assert int(re.search(r"= (\d+)", gdb.cmd("print ticks")).group(1)) == ticks + 1
        lines = thread_lines(gdb.cmd("info threads"))
        assert "(running)" in lines[1] and "(running)" not in lines[2]
        # both run; interrupt -a stops both (vCont;t: signal 0)
        gdb.cmd("delete")
        gdb.cmd("continue &")
        lines = thread_lines(gdb.cmd("info threads"))
        assert "(running)" in lines[1] and "(running)" in lines[2], lines
        text = gdb.cmd("interrupt -a", until=r"Thread (1|2) \S+ stopped.*Thread (1|2) \S+ stopped")
        text = gdb.cmd("info threads")
        lines = thread_lines(text)
        assert "(running)" not in lines[1] and "(running)" not in lines[2], text
        # one thread resumed, stopped by `interrupt` (the selected thread)
        gdb.cmd("thread 1")
        gdb.cmd("continue &")
        lines = thread_lines(gdb.cmd("info threads"))
        assert "(running)" in lines[1] and "(running)" not in lines[2], lines
        gdb.cmd("interrupt", until=r"Thread 1 \S+ stopped")
        gdb.cmd("kill")


def test_allstop_default_still_stops_everything(prog):
    """Without non-stop, a breakpoint stops every thread (the stub's default)."""
    with debugged(prog, nonstop=False) as gdb:
        gdb.cmd("continue", until=r"hit Breakpoint 1, worker_tick")
        text = gdb.cmd("info threads")
        assert "(running)" not in text and len(thread_lines(text)) == 2, text
