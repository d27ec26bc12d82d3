"""Reverse execution through the GDB stub: checkpoints (host forks) and replay with
system calls answered from the log.  gdb in batch mode against `blinkroot -g`."""

import re
import shutil
import subprocess

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


LONG_PROG = r"""
#include <stdio.h>
#include <unistd.h>
volatile unsigned long sink;
void tick(int i) { sink += i; }
void at3(void) { sink++; }
void done(void) { sink++; }
int main(void) {
    for (int i = 0; i < 12; i++) {
        tick(i);
        if (i == 3) at3();
        for (int k = 0; k < 300000; k++) sink += k ^ i;
        char line[32];
        write(1, line, snprintf(line, sizeof line, "round %d\n", i));
    }
    done();
    return 0;
}
"""


def test_checkpoints_while_running_thinned_out(tmp_path, monkeypatch):
    """A long `continue` leaves checkpoints on the way (BLINKROOT_CHECKPOINT_SECONDS),
    thinned out to BLINKROOT_CHECKPOINTS; reverse-stepi from its end replays from the
    last of them, reverse-continue finds the hits before, and the run forward again
    answers the writes from the log."""
    if shutil.which("gdb") is None or shutil.which("gcc") is None:
        pytest.skip("gdb or gcc missing")
    (tmp_path / "long.c").write_text(LONG_PROG)
    exe = tmp_path / "long"
    subprocess.run(["gcc", "-g", "-O0", str(tmp_path / "long.c"), "-o", str(exe)], check=True)
    monkeypatch.setenv("BLINKROOT_CHECKPOINT_SECONDS", "0.02")
    monkeypatch.setenv("BLINKROOT_CHECKPOINTS", "6")
    monkeypatch.setenv("BLINKROOT_REVERSE_TRACE", "1")
    cmds = ["break done", "continue", "echo <end 0>\\n", REGS,
            "reverse-stepi", "reverse-stepi", "stepi", "stepi", "echo <again 0>\\n", REGS,
            "break tick", "reverse-continue", "print i", "reverse-continue", "print i",
            "delete", "break at3", "reverse-continue", "echo <at3>\\n", "up", "print i",
            "delete", "continue"]
    text, (out, err, _status) = gdb_session(exe, cmds)
    err = err.decode()
    end, again = _dumps(text, "end"), _dumps(text, "again")
    assert end and again and end == again, text
    assert re.search(r"\$1 = 11\b.*\$2 = 10\b", text, re.S), text
    assert re.search(r"<at3>\n.*\$3 = 3\b", text, re.S), text
    assert "exited normally" in text, text
    assert out == b"".join(b"round %d\n" % i for i in range(12))
    kept = [int(n) for n in re.findall(r"checkpoint at \d+ .* kept (\d+)", err)]
    assert len(kept) > 8 and max(kept) == 6, err
    # The first reverse-stepi replayed from a checkpoint made while running, and left
    # one just before its goal for the second.
    goes = re.findall(r"goto from the checkpoint at (\d+) .* to (\d+), now at (\d+)", err)
    (cp1, t1, now1), (cp2, t2, _n2) = [tuple(map(int, g)) for g in goes[:2]]
    assert 0 < cp1 < t1 == now1 - 1 and t2 == t1 - 1 and t1 - cp2 <= 2000, err
