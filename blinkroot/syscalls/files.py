"""File I/O: open, read, write and their vectored and positional forms, descriptors, pipes."""

import ctypes
import errno
import fcntl as host_fcntl
import os
import stat

from ..errors import Errno
from ..vfs import AT_FDCWD, hostcall
from ..vfs.files import File, O_CLOEXEC, O_ACCMODE
from ..proc import signals as S
from .table import syscall, s32, s64
from .blocking import blocking, host_call, iovec_array, fd_ready

O_CREAT, O_EXCL, O_NOCTTY, O_TRUNC, O_APPEND, O_NONBLOCK = 0o100, 0o200, 0o400, 0o1000, 0o2000, 0o4000
O_DIRECTORY, O_NOFOLLOW, O_PATH, O_TMPFILE = 0o200000, 0o400000, 0o10000000, 0o20200000
O_ASYNC = 0o20000
F_DUPFD, F_GETFD, F_SETFD, F_GETFL, F_SETFL = 0, 1, 2, 3, 4
F_GETLK, F_SETLK, F_SETLKW, F_DUPFD_CLOEXEC = 5, 6, 7, 1030
F_SETOWN, F_GETOWN, F_SETSIG, F_GETSIG = 8, 9, 10, 11
F_SETPIPE_SZ, F_GETPIPE_SZ, F_ADD_SEALS, F_GET_SEALS = 1031, 1032, 1033, 1034
F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW = 36, 37, 38
F_SETOWN_EX, F_GETOWN_EX, F_OWNER_TID, F_OWNER_PID = 15, 16, 0, 1
F_SETLEASE, F_GETLEASE, F_NOTIFY = 1024, 1025, 1026
FD_CLOEXEC = 1
IOV_MAX = 1024
MAX_RW = 0x7FFFF000          # Linux's MAX_RW_COUNT: longer transfers are cut to it

# Linux's open flags are the host's on Linux; elsewhere they are translated here.
_HOST_OFLAGS = {O_CREAT: os.O_CREAT, O_EXCL: os.O_EXCL, O_NOCTTY: os.O_NOCTTY,
                O_TRUNC: os.O_TRUNC, O_APPEND: os.O_APPEND, O_NONBLOCK: os.O_NONBLOCK,
                O_DIRECTORY: getattr(os, "O_DIRECTORY", 0), O_NOFOLLOW: getattr(os, "O_NOFOLLOW", 0),
                0o4010000: getattr(os, "O_SYNC", 0), 0o10000: getattr(os, "O_DSYNC", 0),
                0o1000000: getattr(os, "O_NOATIME", 0), O_PATH: getattr(os, "O_PATH", 0),
                0o40000: getattr(os, "O_DIRECT", 0)}


def host_oflags(flags):
    out = flags & O_ACCMODE
    for bit, host in _HOST_OFLAGS.items():
        if flags & bit == bit:
            out |= host
    if flags & O_TMPFILE == O_TMPFILE:
        out |= getattr(os, "O_TMPFILE", 0)
    return out | os.O_CLOEXEC   # host descriptors never leak into host children


def epipe(t, e):
    """A write to a broken pipe: EPIPE, and SIGPIPE for the writer, as Linux does."""
    if e.errno == errno.EPIPE:
        t.queue(S.SigInfo(S.SIGPIPE, S.SI_USER, pid=t.proc.pid, uid=os.getuid()))


def do_open(t, dirfd, path, flags, mode, resolve=0):
    """open's path walk is the VFS's; the node's filesystem opens it (a host file, or
    generated contents); the host sees only the final host path, never a guest one."""
    proc = t.proc
    vfs = proc.kernel.vfs
    follow = not flags & O_NOFOLLOW and not (flags & O_CREAT and flags & O_EXCL)
    node = vfs.resolve(proc, dirfd, path, follow, resolve)
    f = vfs.open(proc, node, flags, mode & 0o7777 if flags & O_CREAT else 0,
                 host_oflags(flags))
    return proc.fds.install(f, cloexec=bool(flags & O_CLOEXEC))


@syscall("openat", "fd path oflags mode")
def openat(t, dirfd, path, flags, mode):
    return do_open(t, s32(dirfd), t.mem.read_cstr(path), flags, mode)


@syscall("open", "path oflags mode")
def open_(t, path, flags, mode):
    return do_open(t, AT_FDCWD, t.mem.read_cstr(path), flags, mode)


@syscall("creat", "path mode")
def creat(t, path, mode):
    return do_open(t, AT_FDCWD, t.mem.read_cstr(path), O_CREAT | os.O_WRONLY | O_TRUNC, mode)


@syscall("openat2", "fd path ptr size")
def openat2(t, dirfd, path, how, size):
    if size < 24:
        raise Errno(errno.EINVAL)
    raw = t.mem.read(how, 24)
    flags = int.from_bytes(raw[0:8], "little")
    mode = int.from_bytes(raw[8:16], "little")
    resolve = int.from_bytes(raw[16:24], "little")
    if size > 24 and any(t.mem.read(how + 24, size - 24)):
        raise Errno(errno.E2BIG)
    if resolve & ~0x1F or (mode and not flags & (O_CREAT | O_TMPFILE)) or mode & ~0o7777 \
            or flags >> 32:
        raise Errno(errno.EINVAL)
    if resolve & 0x18 == 0x18:     # RESOLVE_BENEATH | RESOLVE_IN_ROOT
        raise Errno(errno.EINVAL)
    return do_open(t, s32(dirfd), t.mem.read_cstr(path), flags, mode, resolve)


@syscall("close", "fd")
def close(t, fd):
    t.proc.fds.close(s32(fd))
    return 0


@syscall("close_range", "fd fd flags")
def close_range(t, first, last, flags):
    if first > last or flags & ~6:
        raise Errno(errno.EINVAL)
    fds = t.proc.fds
    for fd in [fd for fd in fds.files if first <= fd <= last]:
        if flags & 4:            # CLOSE_RANGE_CLOEXEC
            fds.cloexec.add(fd)
        else:
            fds.close(fd)
    return 0


def _readable(t, fd):
    f = t.proc.fds.get(s32(fd))
    if not f.readable():
        raise Errno(errno.EBADF)
    return f


def _writable(t, fd):
    f = t.proc.fds.get(s32(fd))
    if not f.writable():
        raise Errno(errno.EBADF)
    return f


@syscall("read", "fd rbuf size", blocking=True)
def read(t, fd, buf, count):
    f = _readable(t, fd)
    if hasattr(f, "read_into"):     # kernel-side file kinds (signalfd) read themselves
        return f.read_into(t, buf, count)
    if not count:       # still the host's answer: a directory says EISDIR
        return len(os.read(f.host_fd, 0))
    try:
        return transfer(t, f, t.mem.host_ranges(buf, min(count, MAX_RW), writable=True), False)
    except Errno as e:
        raise _read_error(f, e)


def transfer(t, f, ranges, out):
    """readv/writev on the host descriptor straight into or out of guest memory; it may
    block (pipes, terminals, sockets), so it is a host call other threads run beside."""
    iov = iovec_array(ranges)
    fn = LIBC.writev if out else LIBC.readv
    try:
        return host_call(t, fn, f.host_fd, iov, len(ranges),
                         ready=lambda: fd_ready(f.host_fd, out))
    except Errno as e:
        if out:
            epipe(t, e)
        raise


def _read_error(f, e):
    """readv says EINVAL where read says EISDIR: for a directory, read's answer."""
    if e.errno == errno.EINVAL and stat.S_ISDIR(os.fstat(f.host_fd).st_mode):
        return Errno(errno.EISDIR)
    return e


@syscall("write", "fd wbuf size", blocking=True)
def write(t, fd, buf, count):
    f = _writable(t, fd)
    if not count:
        return 0
    return transfer(t, f, t.mem.host_ranges(buf, min(count, MAX_RW), writable=False), True)


def _iovecs(t, iov, iovcnt, writable, ranges=False):
    """The guest's iovec array as memoryviews (or host ranges) over guest memory."""
    n = s32(iovcnt)
    if n < 0 or n > IOV_MAX:
        raise Errno(errno.EINVAL)
    raw = t.mem.read(iov, 16 * n)
    out, total = [], 0
    for i in range(n):
        base = int.from_bytes(raw[16 * i:16 * i + 8], "little")
        length = int.from_bytes(raw[16 * i + 8:16 * i + 16], "little")
        if length > 0x7FFFFFFFFFFFFFFF or total + length > 0x7FFFFFFFFFFFFFFF:
            raise Errno(errno.EINVAL)
        total += length
        if length:
            out += (t.mem.host_ranges if ranges else t.mem.views)(base, length, writable)
    return out


@syscall("readv", "fd ptr int", blocking=True)
def readv(t, fd, iov, iovcnt):
    f = _readable(t, fd)
    ranges = _iovecs(t, iov, iovcnt, True, ranges=True)
    return transfer(t, f, ranges, False) if ranges else 0


@syscall("writev", "fd ptr int", blocking=True)
def writev(t, fd, iov, iovcnt):
    f = _writable(t, fd)
    ranges = _iovecs(t, iov, iovcnt, False, ranges=True)
    return transfer(t, f, ranges, True) if ranges else 0


def _offset(off):
    off = s64(off)
    if off < 0:
        raise Errno(errno.EINVAL)
    return off


@syscall("pread64", "fd rbuf size off", blocking=True)
def pread64(t, fd, buf, count, off):
    f = _readable(t, fd)
    off = _offset(off)
    views = t.mem.views(buf, count, writable=True)
    try:
        return os.preadv(f.host_fd, views, off) if views else len(os.pread(f.host_fd, 0, off))
    except OSError as e:
        raise _read_error(f, e)


@syscall("pwrite64", "fd wbuf size off", blocking=True)
def pwrite64(t, fd, buf, count, off):
    f = _writable(t, fd)
    off = _offset(off)
    views = t.mem.views(buf, count, writable=False)
    return os.pwritev(f.host_fd, views, off) if views else 0


@syscall("preadv", "fd ptr int off", blocking=True)
def preadv(t, fd, iov, iovcnt, off):
    f = _readable(t, fd)
    views = _iovecs(t, iov, iovcnt, True)
    return os.preadv(f.host_fd, views, _offset(off)) if views else 0


@syscall("pwritev", "fd ptr int off", blocking=True)
def pwritev(t, fd, iov, iovcnt, off):
    f = _writable(t, fd)
    views = _iovecs(t, iov, iovcnt, False)
    return os.pwritev(f.host_fd, views, _offset(off)) if views else 0


@syscall("preadv2", "fd ptr int off flags", blocking=True)
def preadv2(t, fd, iov, iovcnt, off, flags):
    if s64(off) == -1:
        return readv(t, fd, iov, iovcnt)
    return preadv(t, fd, iov, iovcnt, off)


@syscall("pwritev2", "fd ptr int off flags", blocking=True)
def pwritev2(t, fd, iov, iovcnt, off, flags):
    if s64(off) == -1:
        return writev(t, fd, iov, iovcnt)
    return pwritev(t, fd, iov, iovcnt, off)


@syscall("lseek", "fd off int")
def lseek(t, fd, offset, whence):
    f = t.proc.fds.get(s32(fd))
    if whence > 4:
        raise Errno(errno.EINVAL)
    if hasattr(f, "seek"):          # generated directories keep their own position
        return f.seek(s64(offset), whence)
    return os.lseek(f.host_fd, s64(offset), whence)


@syscall("dup", "fd")
def dup(t, fd):
    fds = t.proc.fds
    return fds.install(fds.get(s32(fd)))


@syscall("dup2", "fd fd")
def dup2(t, old, new):
    fds = t.proc.fds
    if s32(old) == s32(new):
        fds.get(s32(old))
        return s32(new)
    return dup3(t, old, new, 0)


@syscall("dup3", "fd fd oflags")
def dup3(t, old, new, flags):
    fds = t.proc.fds
    if flags & ~O_CLOEXEC or s32(old) == s32(new):
        raise Errno(errno.EINVAL)
    if not 0 <= s32(new) < fds.limit:      # Linux: an unsigned newfd >= RLIMIT_NOFILE
        raise Errno(errno.EBADF)
    f = fds.get(s32(old))
    return fds.install(f, cloexec=bool(flags & O_CLOEXEC), at=s32(new))


_SETFL_MASK = O_APPEND | O_NONBLOCK | 0o20000 | 0o40000 | 0o1000000   # + O_ASYNC O_DIRECT O_NOATIME


@syscall("fcntl", "fd int hex",
         blocking=lambda fd, cmd, *_: cmd in (F_SETLKW, F_OFD_SETLKW))    # waits for a lock
def fcntl(t, fd, cmd, arg):
    fds = t.proc.fds
    fd = s32(fd)
    f = fds.get(fd)
    if cmd in (F_DUPFD, F_DUPFD_CLOEXEC):
        if s32(arg) < 0 or s32(arg) >= fds.limit:
            raise Errno(errno.EINVAL)
        return fds.install(f, cloexec=cmd == F_DUPFD_CLOEXEC, lowest=s32(arg))
    if cmd == F_GETFD:
        return FD_CLOEXEC if fd in fds.cloexec else 0
    if cmd == F_SETFD:
        (fds.cloexec.add if arg & FD_CLOEXEC else fds.cloexec.discard)(fd)
        return 0
    if cmd == F_GETFL:
        return f.flags
    if cmd == F_SETFL:
        if f.host_fd >= 0:
            hflags = host_fcntl.fcntl(f.host_fd, host_fcntl.F_GETFL)
            want = host_oflags(arg & _SETFL_MASK) & ~(os.O_CLOEXEC | O_ACCMODE)
            mask = host_oflags(_SETFL_MASK) & ~(os.O_CLOEXEC | O_ACCMODE)
            if hasattr(os, "O_ASYNC"):     # open ignores it, so host_oflags has it not
                mask |= os.O_ASYNC
                want |= os.O_ASYNC if arg & O_ASYNC else 0
            host_fcntl.fcntl(f.host_fd, host_fcntl.F_SETFL, (hflags & ~mask) | want)
        f.flags = (f.flags & ~_SETFL_MASK) | (arg & _SETFL_MASK)
        if arg & O_ASYNC:
            _sigio_armed(t, f, fd)
        return 0
    if cmd in (F_GETLK, F_SETLK, F_SETLKW, F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW):
        return _lock(t, f, cmd, arg)
    if cmd in (F_GETPIPE_SZ, F_SETPIPE_SZ, F_GETOWN, F_SETOWN, F_GETSIG, F_SETSIG,
               F_ADD_SEALS, F_GET_SEALS, F_SETLEASE, F_GETLEASE, F_NOTIFY):
        if cmd in (F_SETOWN, F_SETLEASE, F_NOTIFY):
            _sigio_armed(t, f, fd)
        if cmd == F_SETOWN:
            f.owner_tid = 0
        return host_fcntl.fcntl(f.host_fd, cmd, arg)
    if cmd in (F_SETOWN_EX, F_GETOWN_EX):
        return _owner_ex(t, f, fd, cmd, arg)
    raise Errno(errno.EINVAL)


def _sigio_armed(t, f, fd):
    """The host will signal blinkroot about this description (SIGIO or F_SETSIG's
    signal, for O_ASYNC, a lease break or a directory change), with the host descriptor
    in si_fd: the guest must see its own (Thread.collect_host_signals translates), and
    at once when its own syscall caused it (chmod under F_NOTIFY): after each syscall the
    thread reads the host's pending signals while sigio_armed (proc/process.py)."""
    t.proc.sigio_fds[f.host_fd] = fd
    t.kernel.sigio_armed = True


def _owner_ex(t, f, fd, cmd, arg):
    """struct f_owner_ex {int type; pid_t pid}: guest pids and tids are the host's.  An
    F_OWNER_TID owner that is one of the caller's own threads becomes the process on the
    host: a host thread-directed signal would stay pending on a host thread that blocks
    it, unseen by the signal watcher (proc/hostsig.py).  F_GETOWN_EX shows the tid."""
    if cmd == F_GETOWN_EX:
        t.mem.check(arg, 8, 2)
        buf = bytearray(8)
        r = host_fcntl.fcntl(f.host_fd, F_GETOWN_EX, bytes(8))
        kind, pid = int.from_bytes(r[:4], "little", signed=True), \
            int.from_bytes(r[4:8], "little", signed=True)
        if f.owner_tid and kind == F_OWNER_PID and pid == t.proc.pid:
            kind, pid = F_OWNER_TID, f.owner_tid
        buf[:4] = kind.to_bytes(4, "little", signed=True)
        buf[4:] = pid.to_bytes(4, "little", signed=True)
        t.mem.write(arg, bytes(buf))
        return 0
    raw = t.mem.read(arg, 8)
    kind = int.from_bytes(raw[:4], "little", signed=True)
    pid = int.from_bytes(raw[4:8], "little", signed=True)
    tid = 0
    if kind == F_OWNER_TID and any(th.tid == pid for th in t.proc.threads):
        kind, tid = F_OWNER_PID, pid
        pid = t.proc.pid
    host_fcntl.fcntl(f.host_fd, F_SETOWN_EX, kind.to_bytes(4, "little", signed=True)
                     + pid.to_bytes(4, "little", signed=True))
    f.owner_tid = tid
    _sigio_armed(t, f, fd)
    return 0


def _lock(t, f, cmd, arg):
    """Record locks go to the host, which shares them with every other process."""
    raw = bytearray(t.mem.read(arg, 32))
    buf = ctypes.create_string_buffer(bytes(raw), 32)
    if cmd in (F_SETLKW, F_OFD_SETLKW):
        # Waits (a signal interrupts it), with the CPU released: the table's `blocking`
        # predicate ran this call outside the engine's hook.
        r = host_call(t, _c_fcntl, f.host_fd, cmd, buf)
    else:
        r = hostcall.check(_c_fcntl(f.host_fd, cmd, buf))    # answers at once
    if cmd in (F_GETLK, F_OFD_GETLK):
        t.mem.write(arg, buf.raw[:32])
    return r


@syscall("pipe2", "ptr oflags")
def pipe2(t, fds_ptr, flags):
    if flags & ~(O_CLOEXEC | O_NONBLOCK | 0o40000):
        raise Errno(errno.EINVAL)
    t.mem.check(fds_ptr, 8, 2)
    r, w = os.pipe2(os.O_CLOEXEC | (os.O_NONBLOCK if flags & O_NONBLOCK else 0))
    fds = t.proc.fds
    status = flags & O_NONBLOCK
    cloexec = bool(flags & O_CLOEXEC)
    rfd = fds.install(File(r, os.O_RDONLY | status), cloexec)
    try:
        wfd = fds.install(File(w, os.O_WRONLY | status), cloexec)
    except Errno:
        fds.close(rfd)
        os.close(w)
        raise
    t.mem.write(fds_ptr, rfd.to_bytes(4, "little") + wfd.to_bytes(4, "little"))
    return 0


@syscall("pipe", "ptr")
def pipe(t, fds_ptr):
    return pipe2(t, fds_ptr, 0)


# -- sizes, space and syncing --------------------------------------------------------------

@syscall("ftruncate", "fd off")
def ftruncate(t, fd, length):
    if s64(length) < 0:         # checked before the descriptor, as Linux does
        raise Errno(errno.EINVAL)
    os.ftruncate(t.proc.fds.get(s32(fd)).host_fd, s64(length))   # read-only: host EINVAL
    return 0


@syscall("truncate", "path off")
def truncate(t, path, length):
    p = t.mem.read_cstr(path)
    if s64(length) < 0:
        raise Errno(errno.EINVAL)
    from ..vfs.fs import WRITE
    _, host = t.kernel.vfs.lookup(t.proc, AT_FDCWD, p, intent=WRITE)
    os.truncate(host, s64(length))
    return 0


@syscall("fsync", "fd")
def fsync(t, fd):
    os.fsync(t.proc.fds.get(s32(fd)).host_fd)
    return 0


@syscall("fdatasync", "fd")
def fdatasync(t, fd):
    os.fdatasync(t.proc.fds.get(s32(fd)).host_fd)
    return 0


@syscall("sync")
def sync(t):
    os.sync()
    return 0


# This area's own handle on libc, so that its argtypes never clash with another area's.
LIBC = ctypes.CDLL(None, use_errno=True)


def _libc_fn(name, argtypes, restype=ctypes.c_int):
    fn = getattr(LIBC, name)
    fn.argtypes, fn.restype = argtypes, restype
    return fn


def host_result(r):
    """A libc call's result: -1 becomes the host OSError that the dispatcher translates."""
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


_c_fcntl = _libc_fn("fcntl", (ctypes.c_int, ctypes.c_int, ctypes.c_void_p))
_c_syncfs = _libc_fn("syncfs", (ctypes.c_int,))
_c_sync_file_range = _libc_fn("sync_file_range", (ctypes.c_int, ctypes.c_int64, ctypes.c_int64,
                                                  ctypes.c_uint))
_c_fallocate = _libc_fn("fallocate", (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64))
_c_splice = _libc_fn("splice", (ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p,
                                ctypes.c_size_t, ctypes.c_uint), ctypes.c_ssize_t)
_c_tee = _libc_fn("tee", (ctypes.c_int, ctypes.c_int, ctypes.c_size_t, ctypes.c_uint),
                  ctypes.c_ssize_t)
_c_sendfile = _libc_fn("sendfile", (ctypes.c_int, ctypes.c_int, ctypes.c_void_p,
                                    ctypes.c_size_t), ctypes.c_ssize_t)
_c_copy_file_range = _libc_fn("copy_file_range", (ctypes.c_int, ctypes.c_void_p, ctypes.c_int,
                                                  ctypes.c_void_p, ctypes.c_size_t,
                                                  ctypes.c_uint), ctypes.c_ssize_t)


@syscall("syncfs", "fd")
def syncfs(t, fd):
    return host_result(_c_syncfs(t.proc.fds.get(s32(fd)).host_fd))


@syscall("sync_file_range", "fd off off flags")
def sync_file_range(t, fd, offset, nbytes, flags):
    f = t.proc.fds.get(s32(fd))
    return host_result(_c_sync_file_range(f.host_fd, s64(offset), s64(nbytes),
                                          flags & 0xFFFFFFFF))


@syscall("fallocate", "fd int off off")
def fallocate(t, fd, mode, offset, length):
    f = t.proc.fds.get(s32(fd))
    return host_result(_c_fallocate(f.host_fd, s32(mode), s64(offset), s64(length)))


@syscall("fadvise64", "fd off off int")
def fadvise64(t, fd, offset, length, advice):
    os.posix_fadvise(t.proc.fds.get(s32(fd)).host_fd, s64(offset), s64(length), s32(advice))
    return 0


# -- copying between descriptors in the host kernel ----------------------------------------

def _offset_arg(t, ptr):
    """A guest loff_t* as a host one (None: NULL), and the c_int64 behind it."""
    if not ptr:
        return None, None
    off = ctypes.c_int64(s64(t.mem.read_u64(ptr)))
    return off, ctypes.byref(off)


def _copier(t, fn, in_f, out_f, *args):
    """sendfile & co. between host descriptors: a host call guest signals interrupt (a
    pipe with nothing to read blocks it), a broken pipe raising the writer's SIGPIPE."""
    def ready():
        return fd_ready(in_f.host_fd, False) and fd_ready(out_f.host_fd, True)
    try:
        return host_call(t, fn, *args, ready=ready)
    except Errno as e:
        epipe(t, e)
        raise


@syscall("sendfile", "fd fd ptr size", blocking=True)
def sendfile(t, out_fd, in_fd, offset_ptr, count):
    fds = t.proc.fds
    in_f, out_f = fds.get(s32(in_fd)), fds.get(s32(out_fd))
    off, off_ref = _offset_arg(t, offset_ptr)
    if off is not None and off.value < 0:
        raise Errno(errno.EINVAL)
    # With an offset the input's file position stays put.
    n = _copier(t, _c_sendfile, in_f, out_f, out_f.host_fd, in_f.host_fd, off_ref,
                min(count, MAX_RW))
    if off is not None:
        t.mem.write_u64(offset_ptr, off.value & 0xFFFFFFFFFFFFFFFF)
    return n


@syscall("copy_file_range", "fd ptr fd ptr size flags", blocking=True)
def copy_file_range(t, fd_in, off_in, fd_out, off_out, length, flags):
    fds = t.proc.fds
    in_f, out_f = fds.get(s32(fd_in)), fds.get(s32(fd_out))
    if flags & 0xFFFFFFFF:
        raise Errno(errno.EINVAL)
    (src, src_ref), (dst, dst_ref) = _offset_arg(t, off_in), _offset_arg(t, off_out)
    n = _copier(t, _c_copy_file_range, in_f, out_f, in_f.host_fd, src_ref, out_f.host_fd,
                dst_ref, min(length, MAX_RW), 0)
    for p, o in ((off_in, src), (off_out, dst)):
        if o is not None:
            t.mem.write_u64(p, o.value & 0xFFFFFFFFFFFFFFFF)
    return n


@syscall("splice", "fd ptr fd ptr size flags", blocking=True)
def splice(t, fd_in, off_in, fd_out, off_out, length, flags):
    fds = t.proc.fds
    in_f, out_f = fds.get(s32(fd_in)), fds.get(s32(fd_out))
    (src, src_ref), (dst, dst_ref) = _offset_arg(t, off_in), _offset_arg(t, off_out)
    n = _copier(t, _c_splice, in_f, out_f, in_f.host_fd, src_ref, out_f.host_fd, dst_ref,
                min(length, MAX_RW), flags & 0xFFFFFFFF)
    for p, o in ((off_in, src), (off_out, dst)):
        if o is not None:
            t.mem.write_u64(p, o.value & 0xFFFFFFFFFFFFFFFF)
    return n


@syscall("tee", "fd fd size flags", blocking=True)
def tee(t, fd_in, fd_out, length, flags):
    fds = t.proc.fds
    in_f, out_f = fds.get(s32(fd_in)), fds.get(s32(fd_out))
    return _copier(t, _c_tee, in_f, out_f, in_f.host_fd, out_f.host_fd, min(length, MAX_RW),
                   flags & 0xFFFFFFFF)


SPLICE_F_GIFT = 8
_c_vmsplice = _libc_fn("vmsplice", (ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t,
                                    ctypes.c_uint), ctypes.c_ssize_t)


@syscall("vmsplice", "fd ptr size flags", blocking=True)
def vmsplice(t, fd, iov, nr_segs, flags):
    """The host's vmsplice over the guest's memory (host memory): a pipe's write end takes
    references to the pages, as Linux's does (later stores show through); the read end
    copies into them.  SPLICE_F_GIFT is dropped (the pages are blinkroot's mapping)."""
    f = t.proc.fds.get(s32(fd))
    out = f.writable()
    if not out and not f.readable():
        raise Errno(errno.EBADF)
    if nr_segs > IOV_MAX:
        raise Errno(errno.EINVAL)
    ranges = _iovecs(t, iov, nr_segs, not out, ranges=True)
    if not ranges:
        return 0
    return host_call(t, _c_vmsplice, f.host_fd, iovec_array(ranges), len(ranges),
                     flags & 0xFFFFFFFF & ~SPLICE_F_GIFT, ready=lambda: fd_ready(f.host_fd, out))


# -- ioctl and flock -----------------------------------------------------------------------
# Requests whose argument layout is known go to the host descriptor (a terminal, a file):
# "out" copies N bytes back to the guest, "in" copies N bytes from it, "val" passes the
# argument itself, "none" nothing.  Linux's own layouts: struct termios is the kernel's
# 36-byte one, struct winsize 8 bytes, the rest ints.

TIOCGPGRP, TIOCSPGRP, FIONBIO, FIOCLEX, FIONCLEX = 0x540F, 0x5410, 0x5421, 0x5451, 0x5450
IOCTLS = {
    # nsfs (/proc/PID/ns/*, the host's namespaces: vfs/procfs.py)
    0xB701: ("fd", 0),          # NS_GET_USERNS
    0xB702: ("fd", 0),          # NS_GET_PARENT
    0xB703: ("none", 0),        # NS_GET_NSTYPE
    0xB704: ("query", 4),       # NS_GET_OWNER_UID
    0x8008B705: ("query", 8),   # NS_GET_MNTNS_ID
    0x5401: ("out", 36),        # TCGETS
    0x5402: ("in", 36),         # TCSETS
    0x5403: ("in", 36),         # TCSETSW
    0x5404: ("in", 36),         # TCSETSF
    0x5409: ("val", 0),         # TCSBRK
    0x540A: ("val", 0),         # TCXONC
    0x540B: ("val", 0),         # TCFLSH
    0x540C: ("none", 0),        # TIOCEXCL
    0x540D: ("none", 0),        # TIOCNXCL
    0x540E: ("val", 0),         # TIOCSCTTY
    TIOCGPGRP: ("out", 4),      # host pids are guest pids
    TIOCSPGRP: ("in", 4),
    0x5411: ("out", 4),         # TIOCOUTQ
    0x5413: ("out", 8),         # TIOCGWINSZ
    0x5414: ("in", 8),          # TIOCSWINSZ
    0x541B: ("out", 4),         # FIONREAD, TIOCINQ (a regular file: size - position)
    FIONBIO: ("in", 4),
    0x5422: ("none", 0),        # TIOCNOTTY
    0x5425: ("val", 0),         # TCSBRKP
    0x5429: ("out", 4),         # TIOCGSID
    0x80045430: ("out", 4),     # TIOCGPTN
    0x40045431: ("in", 4),      # TIOCSPTLCK
    0x80086601: ("out", 4),     # FS_IOC_GETFLAGS (the kernel copies an int, not a long)
    0x40086602: ("in", 4),      # FS_IOC_SETFLAGS
    0x2: ("out", 4),            # FIGETBSZ
}


@syscall("ioctl", "fd hex ptr", blocking=True)
def ioctl(t, fd, request, arg):
    fds = t.proc.fds
    fd = s32(fd)
    f = fds.get(fd)
    request &= 0xFFFFFFFF
    if request in (FIOCLEX, FIONCLEX):      # the guest's descriptor table, not the host's
        (fds.cloexec.add if request == FIOCLEX else fds.cloexec.discard)(fd)
        return 0
    kind, size = IOCTLS.get(request, (None, 0))
    if kind is None or f.host_fd < 0:
        raise Errno(errno.ENOTTY)
    with blocking(t):       # TCSETSW and TCSBRK wait for output to drain
        if kind == "query":     # "out" whose ENOTTY (not nsfs) comes before EFAULT
            buf = bytearray(size)
            r = host_fcntl.ioctl(f.host_fd, request, buf, True)
            t.mem.write(arg, bytes(buf))
            return r
        if kind == "out":
            t.mem.check(arg, size, 2)
            buf = bytearray(size)
            r = host_fcntl.ioctl(f.host_fd, request, buf, True)
            t.mem.write(arg, bytes(buf))
            return r
        if kind == "in":
            data = t.mem.read(arg, size)
            host_fcntl.ioctl(f.host_fd, request, data)
            if request == FIONBIO:      # it is F_SETFL's O_NONBLOCK
                on = int.from_bytes(data, "little") != 0
                f.flags = f.flags | O_NONBLOCK if on else f.flags & ~O_NONBLOCK
            return 0
        if kind == "fd":        # a new descriptor (O_CLOEXEC), the guest's to have
            new = host_fcntl.ioctl(f.host_fd, request, 0)
            try:
                return fds.install(File(new, 0), cloexec=True)
            except Errno:
                os.close(new)
                raise
        return host_fcntl.ioctl(f.host_fd, request, s32(arg) if kind == "val" else 0)


@syscall("flock", "fd int", blocking=True)
def flock(t, fd, op):
    f = t.proc.fds.get(s32(fd))
    # The host validates op and shares the lock with its processes.
    return host_call(t, LIBC.flock, f.host_fd, s32(op))
