"""Engine debugging support: single step, breakpoints, watchpoints (blinkroot.debug's base)."""

import ctypes
import mmap

from blinkroot.cpu import create_engine
from blinkroot.cpu import engine as E

BASE = 0x400000
# 0: inc rax; 3: inc rbx; 6: mov [rip+0xff1], rax (data at 0x1000); 13: mov rcx,[0x401000]
# 21: jmp 0
CODE = (b"\x48\xff\xc0" b"\x48\xff\xc3" b"\x48\x89\x05\xf3\x0f\x00\x00"
        b"\x48\x8b\x0c\x25\x00\x10\x40\x00" b"\xeb\xe9")


def machine(code=CODE):
    """An engine with `code` at BASE, 0x1000 bytes of data after it, and a vcpu there."""
    eng = create_engine()
    buf = mmap.mmap(-1, 0x2000)
    buf[:len(code)] = code
    host = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    eng.address_space.map(BASE, 0x2000, 7, host)
    vcpu = eng.new_vcpu()
    vcpu.activate()
    regs = vcpu.get_regs()
    regs.rip, regs.rsp = BASE, BASE + 0x1800
    vcpu.set_regs(regs)
    return eng, vcpu, buf


def collect(vcpu, n, kinds=(E.STEP, E.BREAK, E.WATCH)):
    seen = []

    def handler(ev):
        if ev.kind in kinds:
            seen.append((ev.kind, ev.rip, ev.addr, ev.access))
        return len(seen) < n

    vcpu.run(handler)
    return seen


def test_single_step_reports_every_instruction():
    eng, vcpu, _buf = machine()
    vcpu.single_step = True
    steps = collect(vcpu, 6)
    assert [s[1] - BASE for s in steps] == [3, 6, 13, 21, 0, 3]
    assert vcpu.get_regs().rax == 2


def test_breakpoint_stops_before_the_instruction_and_resumes_over_it():
    eng, vcpu, _buf = machine()
    eng.add_breakpoint(BASE + 3)
    hits = collect(vcpu, 1)
    assert hits == [(E.BREAK, BASE + 3, BASE + 3, "")]
    assert vcpu.get_regs().rbx == 0 and vcpu.get_regs().rax == 1
    hits = collect(vcpu, 1)              # one loop later, at the same place
    assert hits[0][1] == BASE + 3
    assert vcpu.get_regs().rbx == 1 and vcpu.get_regs().rax == 2
    eng.remove_breakpoint(BASE + 3)
    eng.add_breakpoint(BASE + 21)
    assert collect(vcpu, 1)[0][1] == BASE + 21
    assert vcpu.get_regs().rbx == 2


def test_watchpoints_report_after_the_access():
    eng, vcpu, _buf = machine()
    eng.add_watchpoint(BASE + 0x1004, 2, E.WRITE)     # inside the 8-byte store
    hits = collect(vcpu, 1)
    assert hits == [(E.WATCH, BASE + 13, BASE + 0x1004, E.WRITE)]
    eng.remove_watchpoint(BASE + 0x1004, 2, E.WRITE)
    eng.add_watchpoint(BASE + 0x1000, 8, E.READ)
    hits = collect(vcpu, 1)
    assert hits == [(E.WATCH, BASE + 21, BASE + 0x1000, E.READ)]
    assert vcpu.get_regs().rcx == 1
