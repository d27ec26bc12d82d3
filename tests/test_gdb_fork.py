"""gdb's multiprocess extensions through `blinkroot -g`: fork, vfork and exec events,
following the child, keeping both (detach-on-fork off), catch exec."""

import re
import shutil
import subprocess

import pytest

from test_gdbstub import gdb_session

FORK = r"""
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
int child_value = 0;
int child_work(int x) { child_value = x * 2; return child_value; }
int main(int argc, char **argv) {
    int use_vfork = argc > 1 && strcmp(argv[1], "vfork") == 0;
    fflush(stdout);
    pid_t pid = use_vfork ? vfork() : fork();
    if (pid == 0) {
        if (!use_vfork)
            child_work(21);
        if (argc > 2)
            execl(argv[2], argv[2], "child", (char *)0);
        _exit(use_vfork ? 127 : child_value);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    printf("parent: child exited %d\n", WEXITSTATUS(status));
    return 5;
}
"""

SECOND = r"""
#include <stdio.h>
int second_work(int x) { return x + 1; }
int main(int argc, char **argv) { printf("second %d\n", second_work(argc)); return 7; }
"""


@pytest.fixture(scope="module")
def progs(tmp_path_factory):
    if shutil.which("gdb") is None or shutil.which("gcc") is None:
        pytest.skip("gdb or gcc not installed")
    d = tmp_path_factory.mktemp("gdbfork")
    out = {}
    for name, src in (("fork", FORK), ("second", SECOND)):
        (d / f"{name}.c").write_text(src)
        subprocess.run(["gcc", "-g", "-O0", str(d / f"{name}.c"), "-o", str(d / name)],
                       check=True)
        out[name] = d / name
    return out


def test_follow_fork_child_breaks_in_child(progs):
    text, (out, _err, status) = gdb_session(progs["fork"], [
        "set follow-fork-mode child", "catch fork", "break child_work",
        "continue", "continue", "info inferiors", "p child_value", "finish",
        "continue"])
    m = re.search(r"Catchpoint 1 \(forked process (\d+)\)", text)
    assert m, text
    child = m.group(1)
    assert re.search(r"hit Breakpoint 2, child_work \(x=21\)", text), text
    assert re.search(rf"\*\s+2\s+process {child}\s", text), text
    assert "Value returned is $2 = 42" in text, text
    assert f"[Inferior 2 (process {child}) exited with code 052]" in text, text
    assert b"parent: child exited 42" in out and status == 5


def test_detach_on_fork_off_keeps_both(progs):
    text, (out, _err, status) = gdb_session(progs["fork"], [
        "set detach-on-fork off", "set schedule-multiple on", "catch fork",
        "break child_work", "continue", "continue", "info inferiors",
        "inferior 1", "bt 1", "inferior 2", "p child_value", "continue",
        "inferior 1", "continue"])
    m = re.search(r"Catchpoint 1 \(forked process (\d+)\)", text)
    assert m, text
    child = m.group(1)
    parent = re.search(r"process (\d+)\s+1 \(remote", text).group(1)
    assert parent != child
    assert re.search(rf"\n\s+1\s+process {parent}\s.*\n\*\s+2\s+process {child}\s", text), text
    assert re.search(r"hit Breakpoint 2\.2, child_work \(x=21\)", text), text
    assert re.search(r"#0 .*(wait|waitpid|wait4)", text), text     # the parent, held
    assert "$1 = 0" in text
    assert f"[Inferior 2 (process {child}) exited with code 052]" in text, text
    assert f"[Inferior 1 (process {parent}) exited with code 05]" in text, text
    assert b"parent: child exited 42" in out and status == 5


def test_catch_exec_reloads_symbols(progs):
    text, (out, _err, status) = gdb_session(progs["fork"], [
        "set follow-fork-mode child", "catch exec", "continue", "info inferiors",
        "break second_work", "continue", "bt 1", "continue"],
        args=["fork", str(progs["second"])])
    assert re.search(r"process (\d+) is executing new program: .*second", text), text
    assert re.search(r"hit Catchpoint 1 \(exec'd .*second\)", text), text
    assert re.search(r"hit Breakpoint 2, second_work \(x=2\) at .*second\.c", text), text
    assert re.search(r"\[Inferior 2 \(process \d+\) exited with code 07\]", text), text
    assert b"second 3" in out and b"parent: child exited 7" in out and status == 5


def test_vfork_events(progs):
    text, (out, _err, status) = gdb_session(progs["fork"], [
        "catch vfork", "continue", "continue"], args=["vfork", str(progs["second"])])
    assert re.search(r"Catchpoint 1 \(vforked process \d+\)", text), text
    assert "Detaching after vfork from child process" in text, text
    assert "[Inferior 1 (process" in text and "exited with code 05]" in text, text
    assert b"second 3" in out and b"parent: child exited 7" in out and status == 5


REVERSE = r"""
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
int stage;
void before(void) { stage = 1; }
void after(int status) { stage = 2 + status; }
int main(void) {
    before();
    pid_t pid = fork();
    if (pid == 0) {
        write(1, "child\n", 6);
        _exit(42);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    after(WEXITSTATUS(status));
    printf("parent: child exited %d\n", WEXITSTATUS(status));
    return 0;
}
"""


def test_reverse_execution_across_a_fork(progs, tmp_path):
    """Recording goes on in the parent across a fork: going back before it and forward
    again replays the fork (same pid, no second child) and the wait from the log."""
    (tmp_path / "rev.c").write_text(REVERSE)
    exe = tmp_path / "rev"
    subprocess.run(["gcc", "-g", "-O0", str(tmp_path / "rev.c"), "-o", str(exe)], check=True)
    text, (out, err, status) = gdb_session(exe, [
        "break before", "break after", "continue", "continue", "print status",
        "reverse-continue", "echo <back>\\n", "print stage", "delete", "break after",
        "continue", "print status", "delete", "continue"])
    assert re.search(r"Breakpoint 2, after \(status=42\)", text), text
    assert re.search(r"\$1 = 42\s+Breakpoint 1, before \(\)", text), text
    back = text.split("<back>")[1]
    assert "$2 = 0" in back, text
    assert re.search(r"Breakpoint 3, after \(status=42\)", back), text
    assert "exited normally" in text, text
    assert out.count(b"child\n") == 1 and out.count(b"parent: child exited 42") == 1, out
    assert b"not supported" not in err, err
