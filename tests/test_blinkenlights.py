"""blinkenlights' TUI, headless with textual's Pilot: step, breakpoints, a fault dialog."""

import asyncio
import os
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("textual")

from guestlib import REPO_ROOT

PROG = r"""
#include <stdio.h>
volatile int *nowhere = (int *)16;
int square(int x) { return x * x; }
int main(int argc, char **argv) {
    puts("hello from the guest");
    int v = square(argc + 2);
    if (argc > 1) return *nowhere;
    return v;
}
"""


def compile_c(d, name, source):
    """`source` built with gcc -O0 -g in directory d: the executable's path."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc missing")
    (d / f"{name}.c").write_text(source)
    exe = d / name
    subprocess.run(["gcc", "-O0", "-g", str(d / f"{name}.c"), "-o", str(exe)], check=True)
    return exe


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    return compile_c(tmp_path_factory.mktemp("bl"), "p", PROG)


async def settle(app, pilot, timeout=60):
    for _ in range(int(timeout / 0.05)):
        await pilot.pause(0.05)
        if not app.busy:
            return
    raise AssertionError("the debugger never stopped")


def make_app(argv, breakpoints=(), watchpoints=()):
    from blinkroot.debug.tui import Blinkenlights
    return Blinkenlights([str(a) for a in argv], breakpoints=breakpoints,
                         watchpoints=watchpoints)


def test_step_and_breakpoints_by_symbol_and_plt(program, tmp_path):
    async def scenario():
        app = make_app([program], breakpoints=["main", "puts@plt"])
        async with app.run_test(size=(160, 50)) as pilot:
            s = app.session
            first = s.rip
            await pilot.press("s")
            await settle(app, pilot)
            assert s.rip != first
            assert s.prev_regs["rip"] == first
            await pilot.press("c")
            await settle(app, pilot)
            assert s.symbols.describe(s.rip) == "main"
            await pilot.press("c")
            await settle(app, pilot)
            assert s.symbols.describe(s.rip) == "puts@plt"
            assert "puts@plt" in str(app.query_one("#disasm").render())
            await pilot.press("f")                  # back in main, puts done
            await settle(app, pilot)
            assert s.symbols.describe(s.rip).startswith("main+")
            assert b"hello from the guest" in bytes(s.output)
            await pilot.press("n", "n", "n", "n", "n", "n")
            await settle(app, pilot)
            # docs/blinkenlights.svg (the README's) is one of these, saved with
            # BLINKENLIGHTS_SCREENSHOT=docs
            shots = os.environ.get("BLINKENLIGHTS_SCREENSHOT", str(tmp_path))
            app.save_screenshot("blinkenlights.svg", shots)
            assert "puts@plt" in open(os.path.join(shots, "blinkenlights.svg")).read()
            await pilot.press("c")
            await settle(app, pilot)
            assert app.dialogs[-1] == ("exited", "the program exited with status 9")
    asyncio.run(scenario())


def test_fault_stops_at_the_instruction_with_a_dialog(program):
    async def scenario():
        app = make_app([program, "crash"])
        async with app.run_test(size=(160, 50)) as pilot:
            await pilot.press("c")
            await settle(app, pilot)
            title, text = app.dialogs[-1]
            assert title == "SIGSEGV"
            assert "segmentation fault at address 0x10" in text
            s = app.session
            insn = s.insn_at(s.rip)
            assert insn.mnemonic == "mov" and "[rax]" in insn.op_str
            assert s.symbols.describe(s.rip).startswith("main+")
            await pilot.press("enter")
    asyncio.run(scenario())


def test_no_tui_flag_runs_like_blinkroot(program):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    res = subprocess.run([sys.executable, "-c", "from blinkroot.debug.cli import main; main()",
                          "-t", str(program)], capture_output=True, env=env, timeout=60)
    assert res.stdout == b"hello from the guest\n" and res.returncode == 9


REVERSE_PROG = r"""
#include <unistd.h>
int counter;
void tick(int i) { counter += i; }
int main(void) {
    for (int i = 0; i < 3; i++) {
        tick(i);
        if (i == 1) write(1, "hello once\n", 11);
    }
    return counter;
}
"""


@pytest.fixture(scope="module")
def reverse_program(tmp_path_factory):
    return compile_c(tmp_path_factory.mktemp("blrev"), "r", REVERSE_PROG)


def test_reverse_step_and_reverse_continue(reverse_program):
    """S goes back one instruction (registers as they were on the way forward, panel
    and all), the mouse wheel over the disassembly too; C goes back to the previous
    breakpoint hit, then to the start of the recording; the guest's write is not
    repeated when the program runs forward again."""
    from textual import events

    def regs_text(app):
        return str(app.query_one("#regs").render())

    async def scenario():
        app = make_app([reverse_program], breakpoints=["main"])
        async with app.run_test(size=(160, 50)) as pilot:
            s = app.session
            assert s.can_reverse
            await pilot.press("c")
            await settle(app, pilot)
            assert s.symbols.describe(s.rip) == "main"
            seen = []
            for _ in range(25):
                seen.append((dict(s.regs), regs_text(app)))
                await pilot.press("s")
                await settle(app, pilot)
            assert len({r["rip"] for r, _ in seen}) > 10
            for regs, text in reversed(seen[-20:]):
                await pilot.press("S")
                await settle(app, pilot)
                assert s.regs == regs and regs_text(app) == text, app.message
            # The mouse wheel over the disassembly: down steps, up goes back.
            panel = app.query_one("#disasm")
            here = dict(s.regs)
            panel.post_message(events.MouseScrollDown(panel, 1, 1, 0, 1, 0, False, False,
                                                      False))
            await settle(app, pilot)
            assert s.rip == seen[6][0]["rip"]
            panel.post_message(events.MouseScrollUp(panel, 1, 1, 0, -1, 0, False, False,
                                                    False))
            await settle(app, pilot)
            assert s.regs == here
            # Breakpoint hits: tick(0), tick(1), tick(2), then back to tick(1), tick(0).
            s.toggle_breakpoint(s.symbols.resolve("tick"))
            for i in range(3):
                await pilot.press("c")
                await settle(app, pilot)
                assert s.symbols.describe(s.rip) == "tick" and s.regs["rdi"] == i
            assert bytes(s.output).count(b"hello once") == 1
            for i in (1, 0):
                await pilot.press("C")
                await settle(app, pilot)
                assert s.symbols.describe(s.rip) == "tick" and s.regs["rdi"] == i, \
                    app.message
                assert app.message.startswith("breakpoint tick")
            await pilot.press("C")      # the breakpoint at main
            await settle(app, pilot)
            assert app.message == "breakpoint main" and s.regs == seen[0][0]
            await pilot.press("C")      # no hit before: back to the start of the recording
            await settle(app, pilot)
            assert "no more reverse-execution history" in app.message
            assert s.symbols.describe(s.rip) != "main"
            await pilot.press("c")
            await settle(app, pilot)
            assert s.regs == seen[0][0]
            for i in range(3):
                await pilot.press("c")
                await settle(app, pilot)
                assert s.regs["rdi"] == i
            await pilot.press("c")
            await settle(app, pilot)
            assert app.dialogs[-1] == ("exited", "the program exited with status 3")
            assert bytes(s.output).count(b"hello once") == 1
            await pilot.press("enter")
    asyncio.run(scenario())


WATCHED = r"""
#include <unistd.h>
long watched;
int main(void) {
    int p[2];
    pipe(p);
    write(p[1], "ABCDEFGH", 8);
    read(p[0], &watched, 8);        /* the kernel changes it */
    watched += 1;                   /* an instruction changes it */
    return 0;
}
"""


def test_watchpoint_flag_stops_after_a_syscall_and_a_store(tmp_path):
    """-w SYMBOL: blink's watchpoint stops whatever changed the bytes, a syscall too."""
    exe = compile_c(tmp_path, "w", WATCHED)

    async def scenario():
        app = make_app([exe], watchpoints=["watched"])
        async with app.run_test(size=(160, 50)) as pilot:
            s = app.session
            addr = s.symbols.resolve("watched")
            seen = []
            for _ in range(2):
                await pilot.press("c")
                await settle(app, pilot)
                title, text = app.dialogs[-1]
                assert title == "watchpoint" and f"{addr:#x}" in text
                seen.append(s.client.read_u64(addr))
                await pilot.press("enter")
            assert seen == [int.from_bytes(b"ABCDEFGH", "little"),
                            int.from_bytes(b"ABCDEFGH", "little") + 1]
            await pilot.press("c")
            await settle(app, pilot)
            assert app.dialogs[-1] == ("exited", "the program exited with status 0")
    asyncio.run(scenario())


def test_zoom_flag_halves_the_memory_panel_per_z(program):
    """-z as blink's: each cell stands for 2**z bytes, decimated by the magic kernel."""
    from blinkroot.debug.tui import Blinkenlights, zoom_out
    assert zoom_out(bytes([7]) * 64) == bytes([7]) * 32       # flat stays flat
    assert zoom_out(bytes([0, 0, 255, 255] * 8)) != bytes(16)  # an edge is kept, smoothed

    async def scenario():
        app = Blinkenlights([str(program)], zoom=2)
        async with app.run_test(size=(160, 50)) as pilot:
            await pilot.pause(0.2)
            panel = app.query_one("#memory")
            assert panel.border_title.endswith("(1:4)")
            rows = [line.split()[0] for line in str(panel.render()).splitlines()
                    if line.strip() and not line.strip().startswith(("╭", "╰", "│ ╭"))]
            addrs = [int(r.strip("│ "), 16) for r in rows if r.strip("│ ").isalnum()]
            assert len(addrs) >= 2 and addrs[1] - addrs[0] == 64
            await pilot.press("q")
    asyncio.run(scenario())


def test_memory_panel_follows_the_stack_and_updates(program):
    """`m`: the memory panel shows the stack; at square's entry its first bytes are the
    return address the call pushed, and after `f` it follows rsp up."""
    async def scenario():
        app = make_app([program], breakpoints=["square"])
        async with app.run_test(size=(160, 50)) as pilot:
            s = app.session
            await pilot.press("c")
            await settle(app, pilot)
            assert s.symbols.describe(s.rip) == "square"
            await pilot.press("m")
            await pilot.pause(0.2)
            panel = app.query_one("#memory")
            rsp = s.regs["rsp"]
            assert panel.border_title == f"memory {rsp:#x}"
            ret = s.client.read_u64(rsp)
            assert s.symbols.describe(ret).startswith("main+")
            first = str(panel.render()).splitlines()[0]
            assert " ".join(f"{b:02x}" for b in ret.to_bytes(8, "little")) in first
            await pilot.press("f")
            await settle(app, pilot)
            assert app.query_one("#memory").border_title == f"memory {s.regs['rsp']:#x}"
            assert s.regs["rsp"] > rsp
            await pilot.press("q")
    asyncio.run(scenario())
