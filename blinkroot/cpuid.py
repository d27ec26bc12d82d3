"""What the guest sees from CPUID: the engine's own CPU model, honestly edited.

The answers start from what the engine's CPU model reports natively, then: the
hypervisor bit is set and leaf 0x40000000 names blinkroot; features the engine cannot
execute (AVX and everything built on it, XSAVE's extended state, RDPID) are cleared, so
that libc's ifunc resolvers never pick code that would fault.
"""

HYPERVISOR_SIGNATURE = b"blinkrootVM\0"   # 12 bytes in ebx, ecx, edx

# (leaf, register index 0..3 for eax..edx): bits to clear
_CLEAR = {
    (1, 2): (1 << 28) | (1 << 12) | (1 << 26) | (1 << 27) | (1 << 29),  # AVX FMA XSAVE OSXSAVE F16C
    (7, 1): (1 << 5) | (1 << 16) | (1 << 17) | (1 << 21) | (1 << 26) | (1 << 27) | (1 << 28)
    | (1 << 30) | (1 << 31),                       # AVX2, AVX-512 family
    (7, 2): (1 << 1) | (1 << 6) | (1 << 8) | (1 << 10) | (1 << 11) | (1 << 12) | (1 << 14)
    | (1 << 22),                                   # AVX-512 VBMI.., VAES, VPCLMUL, RDPID
    (7, 3): (1 << 2) | (1 << 3) | (1 << 8) | (1 << 23),
}
_SET = {(1, 2): 1 << 31}                           # running under a hypervisor


def answer(native, leaf, subleaf):
    """(eax, ebx, ecx, edx) for the guest, given native(leaf, subleaf) of the engine."""
    if leaf == 0x40000000:
        sig = HYPERVISOR_SIGNATURE
        return (0x40000000, int.from_bytes(sig[0:4], "little"),
                int.from_bytes(sig[4:8], "little"), int.from_bytes(sig[8:12], "little"))
    if 0x40000000 < leaf <= 0x400000FF:
        return (0, 0, 0, 0)
    if leaf == 0xD:
        return (0, 0, 0, 0)                        # no XSAVE state components
    regs = list(native(leaf, subleaf if leaf in (4, 7, 0xB, 0xD, 0xF, 0x10, 0x14) else 0))
    for i in range(4):
        regs[i] &= ~_CLEAR.get((leaf, i), 0)
        regs[i] |= _SET.get((leaf, i), 0)
    return tuple(r & 0xFFFFFFFF for r in regs)
