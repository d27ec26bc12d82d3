"""futex(2): the host's own futex on the guest's memory (see proc/futex.py)."""

import ctypes
import errno

from ..errors import Errno
from ..proc import futex as F
from .table import syscall
from .blocking import host_call

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
    if cmd in _BLOCKING:
        return host_call(t, F.raw_futex, host, op, val, arg4, host2, val3)
    return F.host_futex(host, op, val, arg4, host2, val3)
