"""futex(2): the host's own futex on the guest's memory (see proc/futex.py)."""

import ctypes
import errno
import struct
import time

from ..errors import Errno, ERESTARTSYS
from ..proc import futex as F
from .table import syscall
from .blocking import host_call, handled

_BLOCKING = {F.FUTEX_WAIT, F.FUTEX_WAIT_BITSET, F.FUTEX_LOCK_PI, F.FUTEX_LOCK_PI2,
             F.FUTEX_WAIT_REQUEUE_PI}
_TIMEOUT = _BLOCKING
_UADDR2 = {F.FUTEX_REQUEUE, F.FUTEX_CMP_REQUEUE, F.FUTEX_WAKE_OP, F.FUTEX_WAIT_REQUEUE_PI,
           F.FUTEX_CMP_REQUEUE_PI}
_KNOWN = _BLOCKING | _UADDR2 | {F.FUTEX_WAKE, F.FUTEX_UNLOCK_PI, F.FUTEX_TRYLOCK_PI,
                                F.FUTEX_WAKE_BITSET}


@syscall("futex", "ptr int int ptr ptr int", blocking=True)
def futex(t, uaddr, op, val, utime, uaddr2, val3):
    cmd = op & F.FUTEX_CMD_MASK & 0xFFFFFFFF
    if cmd not in _KNOWN:
        raise Errno(errno.ENOSYS)
    host = F.host_address(t, uaddr)
    arg4 = utime & 0xFFFFFFFF          # val2 for the requeue and wake_op commands
    keep = None
    if cmd in _TIMEOUT and utime:
        keep = ctypes.create_string_buffer(t.mem.read(utime, 16), 16)
        arg4 = ctypes.addressof(keep)
    elif cmd in _TIMEOUT:
        arg4 = 0
    host2 = F.host_address(t, uaddr2) if cmd in _UADDR2 else 0
    if cmd in (F.FUTEX_WAIT, F.FUTEX_WAIT_BITSET) and keep is not None:
        return _timed_wait(t, host, op, val, keep, val3)
    if cmd in _BLOCKING:
        return host_call(t, F.raw_futex, host, op, val, arg4, host2, val3)
    return F.host_futex(host, op, val, arg4, host2, val3)


def _timed_wait(t, host, op, val, ts, val3):
    """A wait with a timeout: a handler ends it with EINTR even under SA_RESTART, and a
    stop and SIGCONT do not start the timeout over (Linux's ERESTART_RESTARTBLOCK and
    futex_wait_restart).  FUTEX_WAIT's relative timeout becomes the absolute one of a
    FUTEX_WAIT_BITSET on the same clock, so the wait can go on to the same end."""
    sec, nsec = struct.unpack("<qq", ts.raw)
    if op & F.FUTEX_CMD_MASK & 0xFFFFFFFF == F.FUTEX_WAIT and not op & F.FUTEX_CLOCK_REALTIME \
            and sec >= 0 and 0 <= nsec < 1_000_000_000:
        end = time.clock_gettime_ns(time.CLOCK_MONOTONIC) + sec * 1_000_000_000 + nsec
        ts = ctypes.create_string_buffer(struct.pack("<qq", end // 1_000_000_000,
                                                     end % 1_000_000_000), 16)
        op = (op & ~F.FUTEX_CMD_MASK) | F.FUTEX_WAIT_BITSET
        val3 = -1                   # FUTEX_BITSET_MATCH_ANY: what FUTEX_WAIT is
    while True:
        try:
            return host_call(t, F.raw_futex, host, op, val, ctypes.addressof(ts), 0, val3)
        except Errno as e:
            if e.errno != ERESTARTSYS:
                raise
            if handled(t):
                raise Errno(errno.EINTR)


FUTEX_WAITV_MAX = 128
WAITV_SIZE = 24         # struct futex_waitv: u64 val, u64 uaddr, u32 flags, u32 reserved


@syscall("futex_waitv", "ptr uint flags ptr int", blocking=True)
def futex_waitv(t, waiters, nr, flags, timeout, clockid):
    """The host's futex_waitv over the waiters' host addresses; the host validates the
    flags, the clock and the absolute timeout.  An address that has no host memory is
    handed over as one the host refuses the same way (unaligned: EINVAL, else EFAULT)."""
    nr &= 0xFFFFFFFF
    if flags & 0xFFFFFFFF or not nr or nr > FUTEX_WAITV_MAX or not waiters:
        raise Errno(errno.EINVAL)
    ts = None
    if timeout:
        ts = ctypes.create_string_buffer(t.mem.read(timeout, 16), 16)
    raw = bytearray(t.mem.read(waiters, WAITV_SIZE * nr))
    for i in range(nr):
        uaddr = struct.unpack_from("<Q", raw, WAITV_SIZE * i + 8)[0]
        if uaddr & 3:
            host = uaddr
        else:
            try:
                host = F.host_address(t, uaddr)
            except Errno:
                host = 0
        struct.pack_into("<Q", raw, WAITV_SIZE * i + 8, host)
    arr = ctypes.create_string_buffer(bytes(raw), len(raw))
    return host_call(t, F.raw_syscall, 449, ctypes.addressof(arr), nr, 0,
                     ctypes.addressof(ts) if ts is not None else 0, clockid & 0xFFFFFFFF)
