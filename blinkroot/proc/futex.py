"""Futexes are the host's: guest memory is host memory and guest thread ids are host
thread ids, so the host kernel's futex (WAIT, WAKE, REQUEUE, WAKE_OP, BITSET, PI) has
exactly Linux's semantics, across processes sharing memory too."""

import ctypes
import errno

from ..errors import Errno

SYS_futex = 202
FUTEX_WAIT, FUTEX_WAKE, FUTEX_FD, FUTEX_REQUEUE, FUTEX_CMP_REQUEUE, FUTEX_WAKE_OP = 0, 1, 2, 3, 4, 5
FUTEX_LOCK_PI, FUTEX_UNLOCK_PI, FUTEX_TRYLOCK_PI, FUTEX_WAIT_BITSET, FUTEX_WAKE_BITSET = 6, 7, 8, 9, 10
FUTEX_WAIT_REQUEUE_PI, FUTEX_CMP_REQUEUE_PI, FUTEX_LOCK_PI2 = 11, 12, 13
FUTEX_PRIVATE_FLAG, FUTEX_CLOCK_REALTIME = 128, 256
FUTEX_CMD_MASK = ~(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME)
FUTEX_WAITERS, FUTEX_OWNER_DIED, FUTEX_TID_MASK = 0x80000000, 0x40000000, 0x3FFFFFFF
ROBUST_LIST_LIMIT = 2048

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long


def raw_futex(uaddr, op, val, arg4, uaddr2, val3):
    """The host's futex(2) on host addresses (-1 and errno on failure); arg4 is a
    timeout pointer or val2."""
    return _syscall(ctypes.c_long(SYS_futex), ctypes.c_void_p(uaddr), ctypes.c_int(op),
                    ctypes.c_int(val), ctypes.c_void_p(arg4), ctypes.c_void_p(uaddr2),
                    ctypes.c_int(val3))


def host_futex(uaddr, op, val, arg4, uaddr2, val3):
    """raw_futex for the calls that do not block; errors raise."""
    ret = raw_futex(uaddr, op, val, arg4, uaddr2, val3)
    if ret < 0:
        raise Errno(ctypes.get_errno())
    return ret


def host_address(t, uaddr):
    if uaddr & 3:
        raise Errno(errno.EINVAL)
    t.mem.check(uaddr, 4, 1)
    return t.mem.host(uaddr)


def wake(t, uaddr, count):
    return host_futex(host_address(t, uaddr), FUTEX_WAKE, count, 0, 0, 0)


def release_robust_list(t):
    """A dying thread's robust mutexes: mark OWNER_DIED and wake a waiter (as Linux's
    exit_robust_list does), so the next locker gets EOWNERDEAD."""
    head, length = t.robust_list
    if not head:
        return
    mem = t.mem
    try:
        entry = mem.read_u64(head)
        offset = int.from_bytes(mem.read(head + 8, 8), "little", signed=True)
        pending = mem.read_u64(head + 16)
    except Errno:
        return
    seen = 0
    entries = []
    while entry != head and seen < ROBUST_LIST_LIMIT:
        entries.append(entry)
        try:
            entry = mem.read_u64(entry)
        except Errno:
            break
        seen += 1
    if pending:
        entries.append(pending)
    for e in entries:
        addr = (e + offset) & 0xFFFFFFFFFFFFFFFF
        try:
            word = mem.read_u32(addr)
        except Errno:
            continue
        if word & FUTEX_TID_MASK != t.tid:
            continue
        mem.write_u32(addr, (word & FUTEX_WAITERS) | FUTEX_OWNER_DIED)
        if word & FUTEX_WAITERS:
            try:
                wake(t, addr, 1)
            except Errno:
                pass
    t.robust_list = (0, 0)


def raw_syscall(nr, *args):
    """A host syscall with integer (or address) arguments: -1 and errno on failure."""
    return _syscall(ctypes.c_long(nr), *(ctypes.c_long(a) for a in args))
