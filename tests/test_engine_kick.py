"""A kick (signal, preemption) stops guest code between instructions, never inside one.

Unicorn checks for a stop request after each guest load and store and, when it exits
there, restarts the instruction whose store already happened.  This drives read-modify-
write instructions while another thread kicks the vcpu thousands of times a second, and
checks that each ran exactly once."""

import threading
import time

from blinkroot.cpu import engine as E
from test_debug_engine import BASE, machine

DATA = BASE + 0x1000
# 0: add qword [rbx], 1; 4: xchg [rbx+8], rax; 8: inc rax; 11: add [rbx+16], rax
# 15: dec rcx; 18: jnz 0; 20: syscall
CODE = (b"\x48\x83\x03\x01" b"\x48\x87\x43\x08" b"\x48\xff\xc0" b"\x48\x01\x43\x10"
        b"\x48\xff\xc9" b"\x75\xec" b"\x0f\x05")
ROUNDS = 20_000_000


def expected(rounds):
    """[rbx], [rbx+8], [rbx+16] after the loop: rax after round k is ceil(k/2)."""
    half = rounds // 2
    total = half * (half + 1) + (half + 1) * (rounds % 2)
    return rounds, half, total


def test_kicks_never_replay_part_of_an_instruction():
    _, vcpu, buf = machine(CODE)
    regs = vcpu.get_regs()
    regs.rbx, regs.rcx = DATA, ROUNDS
    vcpu.set_regs(regs)

    done = threading.Event()
    kicks = [0]

    def kicker():
        while not done.is_set():
            vcpu.kick()
            time.sleep(0.00005)

    def handler(event):
        if event.kind == E.KICKED:
            kicks[0] += 1
            return True
        return False        # the syscall at the end

    thread = threading.Thread(target=kicker)
    thread.start()
    try:
        vcpu.run(handler)
    finally:
        done.set()
        thread.join()
    words = [int.from_bytes(buf[0x1000 + 8 * i: 0x1008 + 8 * i], "little") for i in range(3)]
    assert kicks[0] > 100, "the kicker never stopped the guest: the test proves nothing"
    assert tuple(words) == expected(ROUNDS)
