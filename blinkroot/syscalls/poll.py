"""Readiness: poll, select and their signal-mask forms, epoll, eventfd, timerfd, signalfd.

Guest descriptors are host descriptors (or kernel-side files that keep a host descriptor
readable when they are: signalfd), so every wait is one host poll or epoll_wait over the
host descriptors, through blocking.host_call so that a signal cuts it short.  Like Linux,
these calls are never restarted after a handler ran (ERESTARTNOHAND), and the ones
that take a timeout write back the time left.
"""

import ctypes
import errno
import math
import os
import struct
import time

from ..errors import Errno, ERESTARTNOHAND
from ..proc import process
from ..proc import signals as S
from ..vfs import signalfd
from ..vfs.files import File, O_RDWR, O_CLOEXEC
from ..vfs.hostcall import call, check, libc, PollFd
from .table import syscall, s32
from .blocking import host_call, handled

POLLIN, POLLPRI, POLLOUT, POLLERR, POLLHUP, POLLNVAL = 0x1, 0x2, 0x4, 0x8, 0x10, 0x20
POLLRDNORM, POLLRDBAND, POLLWRNORM, POLLWRBAND = 0x40, 0x80, 0x100, 0x200
DEFAULT_POLLMASK = POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM   # files without a poll op
# What select counts as ready for each set (fs/select.c).
POLLIN_SET = POLLRDNORM | POLLRDBAND | POLLIN | POLLHUP | POLLERR
POLLOUT_SET = POLLWRBAND | POLLWRNORM | POLLOUT | POLLERR
POLLEX_SET = POLLPRI
O_NONBLOCK = 0o4000
NSEC = 1_000_000_000

process.QUEUE_HOOKS.append(signalfd.refresh_all)


# -- timeouts ----------------------------------------------------------------------------
def _deadline(sec, nsec):
    """poll_select_set_timeout: None-free deadline; 0 means do not wait."""
    if sec < 0 or not 0 <= nsec < NSEC:
        raise Errno(errno.EINVAL)
    if not sec and not nsec:
        return 0
    return time.monotonic() + sec + nsec / NSEC


def _remaining(deadline):
    left = max(0.0, deadline - time.monotonic())
    sec = int(left)
    return sec, min(NSEC - 1, int((left - sec) * NSEC))


def _write_back(t, ptr, deadline, timeval):
    """poll_select_finish: the time left goes back to the caller's timeout (not for 0)."""
    if not ptr or not deadline:
        return
    sec, nsec = _remaining(deadline)
    try:
        t.mem.write(ptr, struct.pack("<qq", sec, nsec // 1000 if timeval else nsec))
    except Errno:
        pass


def _ms(deadline):
    if deadline is None:
        return -1
    return max(0, math.ceil((deadline - time.monotonic()) * 1000))


def wait_ready(t, probe, ready, deadline, keep_deadline=False):
    """Until ready() (a count) says something is, the deadline passes (None: never;
    0: just look) or a signal the guest acts on arrives (ERESTARTNOHAND).  probe(ms) is
    one libc wait (poll, epoll_wait) that leaves what ready() counts.

    keep_deadline (poll): a signal without a handler (a stop, then SIGCONT) does not end
    the wait, which goes on to the same deadline, as Linux's restart_block for poll.  The
    others are restarted by the run loop and read the time left they wrote back (select,
    ppoll, pselect6: Linux does the same)."""
    signalfd.refresh_all(t)
    check(probe(0))
    n = ready()
    while not n and deadline != 0:
        if deadline is not None and time.monotonic() >= deadline:
            return 0
        try:
            host_call(t, lambda: probe(_ms(deadline)), restart=ERESTARTNOHAND)
        except Errno as e:
            if not (keep_deadline and e.errno == ERESTARTNOHAND) or handled(t):
                raise
        n = ready()
    return n


def with_sigmask(t, mask_ptr, size, fn):
    """Run fn() with the caller's temporary signal mask (ppoll, pselect6, epoll_pwait).
    Interrupted, the old mask is restored only after the handler (its frame saves it)."""
    if not mask_ptr:
        return fn()
    if size != 8:
        raise Errno(errno.EINVAL)
    mask = t.mem.read_u64(mask_ptr)
    old = t.sigmask
    t.set_sigmask(mask)
    try:
        return fn()
    except Errno as e:
        if e.errno == ERESTARTNOHAND:
            t.saved_sigmask = old
            old = None
        raise
    finally:
        if old is not None:
            t.set_sigmask(old)


# -- poll --------------------------------------------------------------------------------
def _pollfds(pairs):
    """A host struct pollfd[] over (host fd, events) pairs, and its libc poll probe."""
    arr = (PollFd * max(1, len(pairs)))(*pairs)
    return arr, lambda ms: libc.poll(arr, len(pairs), ms)


def _do_poll(t, fds_ptr, nfds, deadline, keep_deadline=False):
    if nfds > t.proc.fds.limit:
        raise Errno(errno.EINVAL)
    entries = list(struct.iter_unpack("<ihH", t.mem.read(fds_ptr, 8 * nfds))) if nfds else []
    pairs, slots = [], []       # slot per entry: index in pairs, or None / "nval" / "default"
    for fd, events, _ in entries:
        f = t.proc.fds.files.get(fd) if fd >= 0 else None
        if fd < 0:
            slots.append(None)
        elif f is None:
            slots.append("nval")
        elif f.host_fd < 0:
            slots.append("default")
        else:
            slots.append(len(pairs))
            pairs.append((f.host_fd, events, 0))
    arr, probe = _pollfds(pairs)
    revents = [0] * len(entries)

    def ready():
        for i, ((_, events, _), slot) in enumerate(zip(entries, slots)):
            if slot is None:
                revents[i] = 0
            elif slot == "nval":
                revents[i] = POLLNVAL
            else:
                mask = DEFAULT_POLLMASK if slot == "default" else arr[slot].revents & 0xFFFF
                revents[i] = mask & (events | POLLERR | POLLHUP | POLLNVAL)
        return sum(1 for r in revents if r)

    try:
        return wait_ready(t, probe, ready, deadline, keep_deadline)
    finally:
        t.mem.write(fds_ptr, b"".join(struct.pack("<ihH", fd, ev, r)
                                      for (fd, ev, _), r in zip(entries, revents)))


@syscall("poll", "ptr uint int", blocking=True)
def poll(t, fds_ptr, nfds, timeout):
    timeout = s32(timeout)
    deadline = None if timeout < 0 else _deadline(timeout // 1000, timeout % 1000 * 1_000_000)
    return _do_poll(t, fds_ptr, nfds & 0xFFFFFFFF, deadline, keep_deadline=deadline is not None)


@syscall("ppoll", "ptr uint ptr ptr size", blocking=True)
def ppoll(t, fds_ptr, nfds, ts_ptr, mask_ptr, size):
    deadline = _deadline(*struct.unpack("<qq", t.mem.read(ts_ptr, 16))) if ts_ptr else None
    try:
        return with_sigmask(t, mask_ptr, size,
                            lambda: _do_poll(t, fds_ptr, nfds & 0xFFFFFFFF, deadline))
    finally:
        _write_back(t, ts_ptr, deadline, timeval=False)


# -- select ------------------------------------------------------------------------------
def _max_fds(t):
    """Size of Linux's fd table (select looks no further): 64, then growing in powers of
    two of 128 slots as higher descriptors were opened."""
    top = max(t.proc.fds.files, default=0)
    if top < 64:
        return 64
    return (1 << (top // 128).bit_length()) * 128


def _do_select(t, n, ptrs, deadline):
    n = s32(n)
    if n < 0:
        raise Errno(errno.EINVAL)
    n = min(n, _max_fds(t))
    nbytes = (n + 63) // 64 * 8
    sets = [int.from_bytes(t.mem.read(p, nbytes), "little") if p else 0 for p in ptrs]
    limit = (1 << n) - 1
    sets = [s & limit for s in sets]
    wanted = {}                 # guest fd -> host events
    files = t.proc.fds.files
    for kind, (bits, events) in enumerate(zip(sets, (POLLIN | POLLRDNORM | POLLRDBAND,
                                                     POLLOUT | POLLWRNORM | POLLWRBAND,
                                                     POLLPRI))):
        fd = 0
        while bits:
            if bits & 1:
                if fd not in files:
                    raise Errno(errno.EBADF)
                wanted[fd] = wanted.get(fd, 0) | events
            bits >>= 1
            fd += 1
    hosts = [(fd, files[fd].host_fd) for fd in sorted(wanted)]
    arr, probe = _pollfds([(h, wanted[fd], 0) for fd, h in hosts if h >= 0])
    result = [0, 0, 0]

    def ready():
        result[:] = [0, 0, 0]
        slot = 0
        for fd, h in hosts:
            if h >= 0:
                mask = arr[slot].revents & 0xFFFF
                slot += 1
            else:
                mask = DEFAULT_POLLMASK
            for kind, ready_set in enumerate((POLLIN_SET, POLLOUT_SET, POLLEX_SET)):
                if sets[kind] >> fd & 1 and mask & ready_set:
                    result[kind] |= 1 << fd
        return sum(bin(r).count("1") for r in result)

    count = wait_ready(t, probe, ready, deadline)
    for p, r in zip(ptrs, result):
        if p:
            t.mem.write(p, r.to_bytes(nbytes, "little"))
    return count


@syscall("select", "int ptr ptr ptr ptr", blocking=True)
def select_(t, n, inp, outp, exp, tv_ptr):
    deadline = None
    if tv_ptr:
        sec, usec = struct.unpack("<qq", t.mem.read(tv_ptr, 16))
        usec_sec = int(usec / 1_000_000)            # C division truncates toward zero
        deadline = _deadline(sec + usec_sec, (usec - usec_sec * 1_000_000) * 1000)
    try:
        return _do_select(t, n, (inp, outp, exp), deadline)
    finally:
        _write_back(t, tv_ptr, deadline, timeval=True)


@syscall("pselect6", "int ptr ptr ptr ptr ptr", blocking=True)
def pselect6(t, n, inp, outp, exp, ts_ptr, sig_ptr):
    deadline = _deadline(*struct.unpack("<qq", t.mem.read(ts_ptr, 16))) if ts_ptr else None
    mask_ptr, size = struct.unpack("<QQ", t.mem.read(sig_ptr, 16)) if sig_ptr else (0, 0)
    try:
        return with_sigmask(t, mask_ptr, size,
                            lambda: _do_select(t, n, (inp, outp, exp), deadline))
    finally:
        _write_back(t, ts_ptr, deadline, timeval=False)


# -- eventfd, timerfd --------------------------------------------------------------------
EFD_SEMAPHORE = 1


@syscall("eventfd2", "uint flags")
def eventfd2(t, initval, flags):
    if flags & ~(EFD_SEMAPHORE | O_NONBLOCK | O_CLOEXEC):
        raise Errno(errno.EINVAL)
    host = os.eventfd(initval & 0xFFFFFFFF, (flags & (EFD_SEMAPHORE | O_NONBLOCK)) | os.O_CLOEXEC)
    return _install(t, File(host, O_RDWR | (flags & O_NONBLOCK), b"anon_inode:[eventfd]"),
                    flags)


@syscall("eventfd", "uint")
def eventfd(t, initval):
    return eventfd2(t, initval, 0)


def _install(t, f, flags):
    try:
        return t.proc.fds.install(f, cloexec=bool(flags & O_CLOEXEC))
    except Errno:
        f.release()
        raise


@syscall("timerfd_create", "int flags")
def timerfd_create(t, clockid, flags):
    host = call("timerfd_create", s32(clockid), s32(flags) | os.O_CLOEXEC)
    return _install(t, File(host, O_RDWR | (flags & O_NONBLOCK), b"anon_inode:[timerfd]"),
                    flags)


@syscall("timerfd_settime", "fd flags ptr ptr")
def timerfd_settime(t, fd, flags, new_ptr, old_ptr):
    new = ctypes.create_string_buffer(t.mem.read(new_ptr, 32), 32)
    old = ctypes.create_string_buffer(32)
    f = t.proc.fds.files.get(s32(fd))
    call("timerfd_settime", f.host_fd if f else -1, s32(flags), new, old)
    if old_ptr:
        t.mem.write(old_ptr, old.raw)
    return 0


@syscall("timerfd_gettime", "fd ptr")
def timerfd_gettime(t, fd, cur_ptr):
    cur = ctypes.create_string_buffer(32)
    call("timerfd_gettime", t.proc.fds.get(s32(fd)).host_fd, cur)
    t.mem.write(cur_ptr, cur.raw)
    return 0


# -- signalfd ----------------------------------------------------------------------------
SIGNALFD_GAPS = ("readable while a signal of the mask is pending for the reading thread or "
                 "its process; a fork child shares its parent's readiness pipe")


@syscall("signalfd4", "fd ptr size flags", support="partial", note=SIGNALFD_GAPS)
def signalfd4(t, fd, mask_ptr, size, flags):
    if size != 8:
        raise Errno(errno.EINVAL)
    mask = t.mem.read_u64(mask_ptr) & ~S.UNBLOCKABLE
    if flags & ~(O_NONBLOCK | O_CLOEXEC):
        raise Errno(errno.EINVAL)
    fd = s32(fd)
    if fd != -1:
        f = t.proc.fds.get(fd)
        if not isinstance(f, signalfd.SignalFd):
            raise Errno(errno.EINVAL)
        f.mask = mask
        f.refresh(t)
        return fd
    f = signalfd.SignalFd(mask, flags & O_NONBLOCK)
    f.refresh(t)
    return _install(t, f, flags)


@syscall("signalfd", "fd ptr size", support="partial", note=SIGNALFD_GAPS)
def signalfd_(t, fd, mask_ptr, size):
    return signalfd4(t, fd, mask_ptr, size, 0)


# -- epoll -------------------------------------------------------------------------------
# The guest's epoll set is a host epoll set over the host descriptors; struct epoll_event
# (packed, 12 bytes) is the same on both sides, so the guest's data word goes to the host
# and comes back as it is, and the host checks EEXIST, ENOENT, EPERM, EINVAL and loops.
EPOLL_CTL_DEL = 2
EVENT_SIZE = 12
EP_MAX_EVENTS = 0x7FFFFFFF // EVENT_SIZE


@syscall("epoll_create1", "flags")
def epoll_create1(t, flags):
    if flags & ~O_CLOEXEC:
        raise Errno(errno.EINVAL)
    host = call("epoll_create1", os.O_CLOEXEC)
    return _install(t, File(host, O_RDWR, b"anon_inode:[eventpoll]"), flags)


@syscall("epoll_create", "int")
def epoll_create(t, size):
    if s32(size) <= 0:
        raise Errno(errno.EINVAL)
    return epoll_create1(t, 0)


@syscall("epoll_ctl", "fd int fd ptr")
def epoll_ctl(t, epfd, op, fd, event_ptr):
    op = s32(op)
    event = ctypes.create_string_buffer(
        t.mem.read(event_ptr, EVENT_SIZE) if op != EPOLL_CTL_DEL else b"", EVENT_SIZE)
    ep = t.proc.fds.get(s32(epfd))
    f = t.proc.fds.get(s32(fd))
    if f.host_fd < 0:
        raise Errno(errno.EPERM)
    call("epoll_ctl", ep.host_fd, op, f.host_fd, event)
    return 0


def _epoll_wait(t, epfd, events_ptr, maxevents, deadline):
    maxevents = s32(maxevents)
    if maxevents <= 0 or maxevents > EP_MAX_EVENTS:
        raise Errno(errno.EINVAL)
    t.mem.check(events_ptr, maxevents * EVENT_SIZE, 2)
    ep = t.proc.fds.get(s32(epfd))
    buf = ctypes.create_string_buffer(maxevents * EVENT_SIZE)
    got = [0]

    def probe(ms):
        got[0] = libc.epoll_wait(ep.host_fd, buf, maxevents, ms)
        return got[0]

    n = wait_ready(t, probe, lambda: max(0, got[0]), deadline)
    t.mem.write(events_ptr, buf.raw[:n * EVENT_SIZE])
    return n


def _ms_deadline(timeout):
    timeout = s32(timeout)
    return None if timeout < 0 else _deadline(timeout // 1000, timeout % 1000 * 1_000_000)


@syscall("epoll_wait", "fd ptr int int", blocking=True)
def epoll_wait(t, epfd, events, maxevents, timeout):
    return _epoll_wait(t, epfd, events, maxevents, _ms_deadline(timeout))


@syscall("epoll_pwait", "fd ptr int int ptr size", blocking=True)
def epoll_pwait(t, epfd, events, maxevents, timeout, mask_ptr, size):
    return with_sigmask(t, mask_ptr, size, lambda: _epoll_wait(
        t, epfd, events, maxevents, _ms_deadline(timeout)))


@syscall("epoll_pwait2", "fd ptr int ptr ptr size", blocking=True)
def epoll_pwait2(t, epfd, events, maxevents, ts_ptr, mask_ptr, size):
    deadline = _deadline(*struct.unpack("<qq", t.mem.read(ts_ptr, 16))) if ts_ptr else None
    return with_sigmask(t, mask_ptr, size, lambda: _epoll_wait(
        t, epfd, events, maxevents, deadline))
