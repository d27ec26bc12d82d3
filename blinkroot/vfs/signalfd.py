"""signalfd: a descriptor that reads the caller's pending signals.

The signals are blinkroot's own (queued in Thread/Process), so the file is kernel-side;
its host descriptor is the read end of a private pipe that holds one byte while a
signal of the fd's mask is pending, so that poll, select and epoll (all host calls over
host descriptors) see it readable exactly then.  The kernel keeps it current: when a
signal is queued (proc.process.QUEUE_HOOKS) and before every readiness wait.
"""

import ctypes
import errno
import os
import struct
import weakref

from ..errors import Errno
from .files import File, O_RDWR
from .hostcall import libc, PollFd

O_NONBLOCK = 0o4000
SSI_SIZE = 128

_live = weakref.WeakSet()       # open signalfds of this process


class SignalFd(File):
    def __init__(self, mask, nonblock):
        r, w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        super().__init__(r, O_RDWR | (O_NONBLOCK if nonblock else 0), b"anon_inode:[signalfd]")
        self.mask = mask
        self._w = w
        self._ready = False
        _live.add(self)

    def refresh(self, t):
        want = bool(t.pending_mask() & self.mask)
        if want and not self._ready:
            os.write(self._w, b"s")
        elif not want and self._ready:
            try:
                os.read(self.host_fd, 64)
            except BlockingIOError:
                pass
        self._ready = want

    def read_into(self, t, buf, count):
        """read(2): as many signalfd_siginfo records as fit, blocking for the first."""
        from ..syscalls.blocking import host_call
        if count < SSI_SIZE:
            raise Errno(errno.EINVAL)
        out = []
        while True:
            t.collect_host_signals()
            while len(out) < count // SSI_SIZE:
                info = t.take_signal(allowed=self.mask)
                if info is None:
                    break
                out.append(ssi(info))
            refresh_all(t)
            if out:
                break
            if self.flags & O_NONBLOCK:
                raise Errno(errno.EAGAIN)
            # Queued signals make the pipe readable; one the guest acts on ends the wait.
            self.refresh(t)
            pfd = PollFd(self.host_fd, 1, 0)
            host_call(t, libc.poll, ctypes.byref(pfd), 1, -1)
        t.mem.write(buf, b"".join(out))
        return len(out) * SSI_SIZE

    def release(self):
        _live.discard(self)
        if self._w >= 0:
            os.close(self._w)
            self._w = -1
        super().release()


def refresh_all(t):
    for f in list(_live):
        f.refresh(t)


# siginfo layouts (kernel/signal.c siginfo_layout) decide which fields signalfd copies.
_FAULT_SIGS = (4, 5, 7, 8, 11)      # SIGILL SIGTRAP SIGBUS SIGFPE SIGSEGV
SIGCHLD, SIGPOLL, SIGSYS = 17, 29, 31
SI_USER, SI_KERNEL, SI_TIMER, SI_SIGIO = 0, 0x80, -2, -5


def _layout(sig, code):
    if SI_USER < code < SI_KERNEL:
        if sig in _FAULT_SIGS:
            return "fault"
        if sig == SIGCHLD:
            return "chld"
        if sig == SIGSYS:
            return "sys"
        return "poll" if sig == SIGPOLL or code <= 6 else "kill"
    if code == SI_TIMER:
        return "timer"
    if code == SI_SIGIO:
        return "poll"
    return "rt" if code < 0 else "kill"


def ssi(info):
    """struct signalfd_siginfo for a queued signal (fs/signalfd.c signalfd_copyinfo)."""
    raw = info.pack()
    signo, err, code = struct.unpack_from("<iii", raw, 0)
    out = bytearray(SSI_SIZE)
    struct.pack_into("<Iii", out, 0, signo, err, code)
    kind = _layout(signo, code)
    if kind in ("kill", "rt", "chld"):
        struct.pack_into("<II", out, 12, *struct.unpack_from("<II", raw, 16))     # pid uid
    if kind in ("rt", "timer"):
        value = struct.unpack_from("<Q", raw, 24)[0]
        struct.pack_into("<iQ", out, 44, struct.unpack_from("<i", raw, 24)[0], value)
    if kind == "timer":
        struct.pack_into("<I", out, 24, struct.unpack_from("<I", raw, 16)[0])     # tid
        struct.pack_into("<I", out, 32, struct.unpack_from("<I", raw, 20)[0])     # overrun
    elif kind == "poll":
        struct.pack_into("<i", out, 20, struct.unpack_from("<i", raw, 24)[0])     # fd
        struct.pack_into("<I", out, 28, struct.unpack_from("<Q", raw, 16)[0] & 0xFFFFFFFF)
    elif kind == "fault":
        struct.pack_into("<Q", out, 72, struct.unpack_from("<Q", raw, 16)[0])
    elif kind == "chld":
        status, utime, stime = struct.unpack_from("<i4xQQ", raw, 24)
        struct.pack_into("<i", out, 40, status)
        struct.pack_into("<QQ", out, 56, utime, stime)
    elif kind == "sys":
        addr, nr, arch = struct.unpack_from("<QiI", raw, 16)
        struct.pack_into("<iQI", out, 84, nr, addr, arch)
    return bytes(out)
