"""Reverse execution through the GDB stub: checkpoints (host forks) and replay with
system calls answered from the log.  gdb in batch mode against `blinkroot -g`."""

import re

import pytest

from test_gdbstub import build_programs, gdb_session

PROG = r"""
#include <unistd.h>
int counter;
void tick(int i) { counter += i; }
int main(void) {
    for (int i = 0; i < 3; i++) tick(i);
    write(1, "hello once\n", 11);
    for (int i = 0; i < 3; i++) tick(i);
    return 0;
}
"""

REGS = "info registers rip rax rcx rdx rsi rdi rsp rbp r11 eflags"
STEPS = 30


@pytest.fixture(scope="module")
def programs(tmp_path_factory):
    return build_programs(tmp_path_factory, PROG, "reverse")


def _dumps(text, tag):
    """{k: register dump} between `echo <tag> k` markers."""
    out = {}
    for m in re.finditer(rf"<{tag} (\d+)>\n(.*?)(?=<|\Z)", text, re.S):
        regs = re.findall(r"^(r\w+|eflags)\s+(0x[0-9a-f]+)", m.group(2), re.M)
        out[int(m.group(1))] = regs
    return out


@pytest.mark.parametrize("tc", ["musl", "glibc"])
def test_reverse_stepi_across_write_and_reverse_continue(programs, tc):
    if tc not in programs:
        pytest.skip(f"{tc} toolchain missing")
    cmds = ["break write", "continue", "echo <fwd 0>\\n", REGS]
    for k in range(1, STEPS + 1):
        cmds += ["stepi", f"echo <fwd {k}>\\n", REGS]
    for k in range(1, STEPS + 1):
        cmds += ["reverse-stepi", f"echo <back {k}>\\n", REGS]
    cmds += ["delete", "break tick", "reverse-continue", "echo <rc>\\n", "print i",
             "reverse-continue", "reverse-continue", "reverse-continue",
             "echo <begin>\\n", "delete", "continue"]
    text, (out, _err, _status) = gdb_session(programs[tc], cmds)
    fwd, back = _dumps(text, "fwd"), _dumps(text, "back")
    assert len(fwd) == STEPS + 1 and len(back) == STEPS, text
    assert any(f[0] != fwd[0][0] for f in fwd.values())
    for k in range(1, STEPS + 1):
        assert back[k] == fwd[STEPS - k], (k, back[k], fwd[STEPS - k], text)
    # Back over the write, then past the three hits of tick: the line is written once.
    rc = text.split(f"<back {STEPS}>")[1].split("<rc>")
    assert re.search(r"Breakpoint \d+, tick \(i=2\)", rc[0]), text
    assert "$1 = 2" in rc[1]
    assert re.search(r"tick \(i=1\).*tick \(i=0\)", rc[1], re.S), text
    assert "No more reverse-execution history" in text.split("<begin>")[0], text
    assert "exited normally" in text, text
    assert out == b"hello once\n"
