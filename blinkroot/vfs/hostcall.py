"""libc calls on host descriptors, for what Python's os/socket/select modules cannot do
byte-exact (raw sockaddrs, msghdrs with ancillary data, socket options, timerfds, epoll
event data): the guest's bytes go to the host kernel as they are.

``call`` is for calls that do not block; blocking ones go through
syscalls/blocking.host_call(t, libc.NAME, ...), which handles EINTR.
"""

import ctypes
import os

from ..proc.hostsig import Interrupted

# Our own handle: argtypes set here do not clash with other modules' use of libc.
libc = ctypes.CDLL(None, use_errno=True)

_c = ctypes
_SIGS = {
    "socket": (_c.c_int, _c.c_int, _c.c_int),
    "socketpair": (_c.c_int, _c.c_int, _c.c_int, _c.c_void_p),
    "bind": (_c.c_int, _c.c_void_p, _c.c_uint),
    "connect": (_c.c_int, _c.c_void_p, _c.c_uint),
    "listen": (_c.c_int, _c.c_int),
    "accept4": (_c.c_int, _c.c_void_p, _c.c_void_p, _c.c_int),
    "getsockname": (_c.c_int, _c.c_void_p, _c.c_void_p),
    "getpeername": (_c.c_int, _c.c_void_p, _c.c_void_p),
    "sendmsg": (_c.c_int, _c.c_void_p, _c.c_int),
    "recvmsg": (_c.c_int, _c.c_void_p, _c.c_int),
    "shutdown": (_c.c_int, _c.c_int),
    "getsockopt": (_c.c_int, _c.c_int, _c.c_int, _c.c_void_p, _c.c_void_p),
    "setsockopt": (_c.c_int, _c.c_int, _c.c_int, _c.c_void_p, _c.c_uint),
    "timerfd_create": (_c.c_int, _c.c_int),
    "timerfd_settime": (_c.c_int, _c.c_int, _c.c_void_p, _c.c_void_p),
    "timerfd_gettime": (_c.c_int, _c.c_void_p),
    "epoll_create1": (_c.c_int,),
    "epoll_ctl": (_c.c_int, _c.c_int, _c.c_int, _c.c_void_p),
    "epoll_wait": (_c.c_int, _c.c_void_p, _c.c_int, _c.c_int),
    "poll": (_c.c_void_p, _c.c_ulong, _c.c_int),
}
for _name, _args in _SIGS.items():
    _fn = getattr(libc, _name)
    _fn.argtypes = _args
    _fn.restype = _c.c_ssize_t if _name in ("sendmsg", "recvmsg") else _c.c_int


class PollFd(ctypes.Structure):
    _fields_ = [("fd", ctypes.c_int), ("events", ctypes.c_short), ("revents", ctypes.c_short)]


def check(r):
    """A libc result, or OSError with the host's errno (translated by the dispatcher)."""
    if r < 0:
        err = ctypes.get_errno()
        if err == 4:        # EINTR: blocking() turns it into a restart
            raise Interrupted()
        raise OSError(err, os.strerror(err))
    return r


def call(name, *args):
    return check(getattr(libc, name)(*args))


def address(view):
    """Host address of a writable memoryview (guest memory views are)."""
    return ctypes.addressof(ctypes.c_char.from_buffer(view))
