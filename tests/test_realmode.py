"""blinkenlights -r: 16-bit boot-sector programs in real mode with a PC BIOS (int 10h,
16h, 1Ah), assembled at test time with binutils; with -t and in the TUI (textual Pilot)."""

import asyncio
import os
import re
import shutil
import subprocess
import sys

import pytest

from guestlib import REPO_ROOT

# Prints "hello", reads a key (int 16h) and echoes it with its scan code, prints the
# int 1Ah tick count in hex, halts.
BOOT = r"""
.code16
.globl _start
_start:
    cld
    mov $msg, %si
    call puts
    xor %ah, %ah
    int $0x16               # AL = key, AH = scan code
    mov %ax, %bx
    mov $0x0e, %ah
    int $0x10               # echo the key
    mov $' ', %al
    int $0x10
    mov %bh, %al
    call hexbyte            # its scan code
    mov $' ', %al
    mov $0x0e, %ah
    int $0x10
    xor %ah, %ah
    int $0x1a               # CX:DX = ticks since midnight
    mov %dx, %bx
    mov %ch, %al
    call hexbyte
    mov %cl, %al
    call hexbyte
    mov %bh, %al
    call hexbyte
    mov %bl, %al
    call hexbyte
    mov $'\r', %al
    mov $0x0e, %ah
    int $0x10
    mov $'\n', %al
    int $0x10
    cli
    hlt

puts:                       # DS:SI, NUL-terminated
    lodsb
    test %al, %al
    jz 1f
    mov $0x0e, %ah
    int $0x10
    jmp puts
1:  ret

hexbyte:                    # AL as two hex digits
    push %ax
    shr $4, %al
    call hexdigit
    pop %ax
    and $0x0f, %al
hexdigit:
    add $'0', %al
    cmp $'9', %al
    jbe 1f
    add $7, %al
1:  mov $0x0e, %ah
    int $0x10
    ret

msg: .asciz "hello\r\n"
    .org 510
    .byte 0x55, 0xaa
"""

# blink's convention for real-mode tests: SYSCALL exit (AX=60) with the status in DI.
EXIT_SYSCALL = r"""
.code16
    mov $0x0e41, %ax
    int $0x10
    mov $60, %ax
    mov $42, %di
    syscall
"""

# A program that hooks int 60h itself (the CPU's delivery through the IVT), then calls
# a BIOS service the emulator lacks (int 13h: no disks).
IVT_AND_UNSUPPORTED = r"""
.code16
    xor %ax, %ax
    mov %ax, %ds
    movw $handler, 0x60*4
    movw $0, 0x60*4+2
    int $0x60
    int $0x13
    hlt
handler:
    mov $0x0e42, %ax
    int $0x10
    iret
"""


def assemble(tmp_path, name, source):
    if shutil.which("as") is None or shutil.which("ld") is None:
        pytest.skip("binutils (as, ld) missing: cannot assemble the 16-bit test programs")
    src, obj, out = (tmp_path / f"{name}.s", tmp_path / f"{name}.o", tmp_path / f"{name}.bin")
    src.write_text(source)
    subprocess.run(["as", "--32", "-o", str(obj), str(src)], check=True)
    subprocess.run(["ld", "-m", "elf_i386", "-Ttext", "0x7c00", "--oformat", "binary",
                    "-o", str(out), str(obj)], check=True)
    return out


def blinkenlights(*args, stdin=b""):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    return subprocess.run([sys.executable, "-c",
                           "from blinkroot.debug.cli import main; main()", *args],
                          input=stdin, capture_output=True, env=env, timeout=60)


def test_no_tui_boot_sector_prints_reads_a_key_and_the_clock(tmp_path):
    from blinkroot.debug.bios import ticks_now
    prog = assemble(tmp_path, "boot", BOOT)
    assert prog.stat().st_size == 512
    before = ticks_now()
    res = blinkenlights("-t", "-r", str(prog), stdin=b"x")
    after = ticks_now()
    assert res.returncode == 0, res.stderr
    m = re.fullmatch(rb"hello\r\nx 2D ([0-9A-F]{8})\r\n", res.stdout)
    assert m, res.stdout
    ticks = int(m.group(1), 16)
    assert before <= ticks <= after or after < before      # (unless midnight passed)


def test_enter_is_cr_and_end_of_input_ends_the_run(tmp_path):
    prog = assemble(tmp_path, "boot", BOOT)
    res = blinkenlights("-t", "-r", str(prog), stdin=b"\n")
    assert res.stdout.startswith(b"hello\r\n\r 1C ")
    res = blinkenlights("-t", "-r", str(prog), stdin=b"")
    assert res.stdout == b"hello\r\n" and res.returncode == 0


def test_syscall_exit_status(tmp_path):
    res = blinkenlights("-t", "-r", str(assemble(tmp_path, "exit", EXIT_SYSCALL)))
    assert res.stdout == b"A" and res.returncode == 42


def test_own_interrupt_handler_and_unsupported_bios_call(tmp_path):
    res = blinkenlights("-t", "-r", str(assemble(tmp_path, "ivt", IVT_AND_UNSUPPORTED)))
    assert res.stdout == b"B"
    assert res.returncode == 1
    assert b"unsupported BIOS interrupt int 13h" in res.stderr


def test_missing_image():
    res = blinkenlights("-t", "-r", "/nonexistent/boot.bin")
    assert res.returncode == 127 and b"blinkenlights: /nonexistent/boot.bin" in res.stderr


async def settle(app, pilot, timeout=30):
    for _ in range(int(timeout / 0.05)):
        await pilot.pause(0.05)
        if not app.busy:
            return
    raise AssertionError("the debugger never stopped")


def test_tui_steps_in_16_bit_mode_and_passes_keys_to_int16h(tmp_path):
    pytest.importorskip("textual")
    from blinkroot.debug.realmode import RealModeSession
    from blinkroot.debug.tui import Blinkenlights
    prog = assemble(tmp_path, "boot", BOOT)

    async def scenario():
        session = RealModeSession([str(prog)])
        app = Blinkenlights([str(prog)], session=session)
        async with app.run_test(size=(160, 50)) as pilot:
            s = app.session
            assert s.rip == 0x7C00
            regs = str(app.query_one("#regs").render())
            assert "ip" in regs and "rax" not in regs
            disasm = str(app.query_one("#disasm").render())
            assert "07c00" in disasm and "cld" in disasm and "mov si, 0x7c" in disasm
            await pilot.press("s")
            await settle(app, pilot)
            assert s.rip == 0x7C01 and s.regs["ip"] == 0x7C01
            await pilot.press("s", "n")             # mov si, msg; call puts (stepped over)
            await settle(app, pilot)
            await settle(app, pilot)
            assert s.rip == 0x7C07
            assert b"hello" in bytes(s.output)
            assert "hello" in str(app.query_one("#term").render())
            await pilot.press("b")                  # a breakpoint at xor ah, ah
            await pilot.press("s", "s")             # int 16h waits for a key ...
            await pilot.pause(0.5)
            assert app.busy and s.waiting_for_key()
            await pilot.press("q")                  # ... which is the program's
            await settle(app, pilot)
            assert s.regs["ax"] == 0x1071            # 'q', scan code 10h
            assert not s.stop.exited
            await pilot.press("c")
            await settle(app, pilot)
            assert app.dialogs[-1][0] == "exited"
            assert "status 0" in app.dialogs[-1][1]
            assert re.search(rb"q 10 [0-9A-F]{8}", bytes(s.output))
            await pilot.press("enter")
    asyncio.run(scenario())


LOOP = r"""
.code16
    mov $0x0e41, %ax
    int $0x10
1:  jmp 1b
"""


def test_ctrl_c_ends_a_looping_program_with_130(tmp_path):
    import signal
    import time
    prog = assemble(tmp_path, "loop", LOOP)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    p = subprocess.Popen([sys.executable, "-c", "from blinkroot.debug.cli import main; main()",
                          "-t", "-r", str(prog)], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    time.sleep(1.5)
    p.send_signal(signal.SIGINT)
    out, _err = p.communicate(timeout=30)
    assert out == b"A" and p.returncode == 130


def test_tui_interrupts_a_loop(tmp_path):
    pytest.importorskip("textual")
    from blinkroot.debug.realmode import RealModeSession
    from blinkroot.debug.tui import Blinkenlights
    prog = assemble(tmp_path, "loop", LOOP)

    async def scenario():
        app = Blinkenlights([str(prog)], session=RealModeSession([str(prog)]))
        async with app.run_test(size=(160, 50)) as pilot:
            await pilot.press("c")
            await pilot.pause(0.5)
            assert app.busy
            await pilot.press("i")
            await settle(app, pilot)
            s = app.session
            assert s.rip == 0x7C05 and s.insn_at(s.rip).mnemonic == "jmp"
            assert bytes(s.output) == b"A"
    asyncio.run(scenario())
