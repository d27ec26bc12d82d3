"""Thread-area and per-thread registrations: arch_prctl, set_tid_address, robust lists, rseq."""

import errno

from ..errors import Errno
from .table import syscall

ARCH_SET_GS, ARCH_SET_FS, ARCH_GET_FS, ARCH_GET_GS = 0x1001, 0x1002, 0x1003, 0x1004
ARCH_GET_CPUID, ARCH_SET_CPUID = 0x1011, 0x1012


@syscall("arch_prctl", "hex ptr")
def arch_prctl(t, code, addr):
    if code in (ARCH_SET_FS, ARCH_SET_GS):
        if addr >= 0x800000000000:
            raise Errno(errno.EPERM)
        t.vcpu.set_reg("fs_base" if code == ARCH_SET_FS else "gs_base", addr)
        return 0
    if code in (ARCH_GET_FS, ARCH_GET_GS):
        t.mem.write_u64(addr, t.vcpu.get_reg("fs_base" if code == ARCH_GET_FS else "gs_base"))
        return 0
    if code == ARCH_GET_CPUID:
        return 1
    if code == ARCH_SET_CPUID:
        raise Errno(errno.ENODEV)
    raise Errno(errno.EINVAL)


@syscall("set_tid_address", "ptr")
def set_tid_address(t, addr):
    t.clear_child_tid = addr
    return t.tid


@syscall("set_robust_list", "ptr size")
def set_robust_list(t, head, length):
    if length != 24:
        raise Errno(errno.EINVAL)
    t.robust_list = (head, length)
    return 0


@syscall("get_robust_list", "pid ptr ptr")
def get_robust_list(t, pid, head_ptr, len_ptr):
    if pid and pid != t.tid:
        raise Errno(errno.ESRCH)
    t.mem.write_u64(head_ptr, t.robust_list[0])
    t.mem.write_u64(len_ptr, t.robust_list[1] or 24)
    return 0


@syscall("rseq", "ptr uint flags uint", support="partial", note="ENOSYS: libcs fall back")
def rseq(t, addr, length, flags, sig):
    raise Errno(errno.ENOSYS)
