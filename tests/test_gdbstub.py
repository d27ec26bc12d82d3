"""The GDB remote stub (blinkroot -g PORT): Debian's gdb in batch mode against it."""

import os
import re
import shutil
import subprocess
import sys

import pytest

from guestlib import REPO_ROOT

PROG = r"""
#include <pthread.h>
#include <stdio.h>
int counter = 0;
const char *greeting = "hello, debugger";
volatile int *nowhere = (int *)16;
int add(int a, int b) { counter += a; return a + b; }
void *worker(void *arg) { return arg; }
int main(int argc, char **argv) {
    int total = 0;
    for (int i = 0; i < 3; i++) total = add(total, i);
    printf("%s %d %d\n", greeting, total, counter);
    if (argc > 1) {
        pthread_t t;
        pthread_create(&t, 0, worker, (void *)7);
        pthread_join(t, 0);
        return *nowhere;
    }
    return 3;
}
"""

TOOLCHAINS = {"musl": ["musl-gcc", "-static"], "glibc": ["gcc"]}


def build_programs(tmp_path_factory, source, tag, flags=()):
    """`source` built with -g by each toolchain present: {toolchain: executable}."""
    if shutil.which("gdb") is None:
        pytest.skip("gdb not installed")
    d = tmp_path_factory.mktemp(tag)
    (d / "prog.c").write_text(source)
    out = {}
    for name, cc in TOOLCHAINS.items():
        if shutil.which(cc[0]) is None:
            continue
        exe = d / f"prog_{name}"
        subprocess.run(cc + ["-g", "-O0", *flags, str(d / "prog.c"), "-o", str(exe)],
                       check=True)
        out[name] = exe
    return out


@pytest.fixture(scope="module")
def programs(tmp_path_factory):
    return build_programs(tmp_path_factory, PROG, "gdb", ["-pthread"])


def gdb_session(exe, commands, args=()):
    """Run exe under `blinkroot -g 0`, drive it with gdb -batch; (gdb output, guest)."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    guest = subprocess.Popen([sys.executable, "-m", "blinkroot", "-g", "0", str(exe), *args],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    line = guest.stderr.readline().decode()
    port = re.search(r":(\d+)", line).group(1)
    cmd = ["gdb", "-nx", "-q", "-batch", "-ex", "set confirm off",
           "-ex", "set pagination off", "-ex", f"target remote 127.0.0.1:{port}"]
    for c in commands:
        cmd += ["-ex", c]
    try:
        res = subprocess.run(cmd + [str(exe)], capture_output=True, timeout=120)
        out, err = guest.communicate(timeout=60)
    finally:
        guest.kill()
    return res.stdout.decode() + res.stderr.decode(), (out, err, guest.returncode)


@pytest.mark.parametrize("tc", ["musl", "glibc"])
def test_break_bt_registers_memory_step_finish_watch(programs, tc):
    if tc not in programs:
        pytest.skip(f"{tc} toolchain missing")
    text, (out, _err, status) = gdb_session(programs[tc], [
        "break main", "continue", "info registers rip", "x/s greeting", "stepi",
        "break add", "continue", "bt", "finish", "delete", "watch counter", "continue",
        "continue", "continue"])
    assert re.search(r"Breakpoint 1, main \(argc=1", text), text
    assert re.search(r"rip\s+0x[0-9a-f]+\s+0x[0-9a-f]+ <main\+\d+>", text), text
    assert '"hello, debugger"' in text
    assert re.search(r"Breakpoint 2, add \(a=0, b=0\)", text)
    assert re.search(r"#1 .* in main \(argc=1", text), text
    assert "Value returned is $1 = 0" in text
    assert re.search(r"Old value = 0\s+New value = 1", text), text
    assert "exited with code 03" in text, text
    assert out == b"hello, debugger 3 1\n" and status == 3


def test_shared_libraries_threads_and_fault(programs):
    if "glibc" not in programs:
        pytest.skip("gcc missing")
    text, (_out, _err, status) = gdb_session(programs["glibc"], [
        "break main", "continue", "info sharedlibrary", "break worker", "continue",
        "info threads", "continue", "p $_siginfo.si_signo",
        "p $_siginfo._sifields._sigfault.si_addr", "continue"], args=["crash"])
    assert re.search(r"Yes\s+target:\S*libc\.so\.6", text), text
    assert re.search(r"Thread 2 .* hit Breakpoint 2, worker \(arg=0x7\)", text), text
    assert re.search(r"\n\*?\s+2\s+Thread \d+", text)
    assert "received signal SIGSEGV" in text
    assert "$1 = 11" in text and "$2 = (void *) 0x10" in text
    assert "terminated with signal SIGSEGV" in text
    assert status == -11


def test_gdb_interrupt_and_kill_leave_no_process(programs):
    exe = programs.get("musl") or programs.get("glibc")
    text, (_out, _err, status) = gdb_session(exe, ["stepi", "stepi", "info registers rip",
                                                   "kill"])
    assert text.count("rip") == 1
    assert status == -9
