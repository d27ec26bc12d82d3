"""File system metadata: the stat family, directories and their entries, links, renames,
permissions, times, the working directory, umask and statfs.

Every path goes through the VFS (``_at``) and then to the host's own *at call, so the host
kernel decides the errno in the same order Linux does.  Structures are packed in the
x86-64 Linux layout from the host's results; where Python's os module cannot say what
Linux can (statx, statfs, renameat2, UTIME_OMIT, faccessat's errno) libc is called.
"""

import ctypes
import errno
import os
import stat as S
import struct

from ..errors import Errno
from ..vfs import AT_FDCWD, AT_SYMLINK_NOFOLLOW, AT_REMOVEDIR, AT_SYMLINK_FOLLOW, AT_EMPTY_PATH
from .table import syscall, s32, s64
from .files import host_result, LIBC as _libc

AT_NO_AUTOMOUNT = 0x800
AT_EACCESS = 0x200
AT_STATX_SYNC_TYPE = 0x6000
STATX_RESERVED = 0x80000000
STATX_BASIC_STATS = 0x7FF
UTIME_NOW, UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2
PROT_WRITE = 2


def _path(t, ptr):
    return t.mem.read_cstr(ptr)


def _at(t, dirfd, path, follow=True, empty=False):
    """(host dirfd or AT_FDCWD, host path) for a guest *at pair.

    ``empty`` (AT_EMPTY_PATH with an empty path) names dirfd's own file: the host path
    is then b"" and the caller uses the host descriptor (AT_FDCWD: the cwd's path)."""
    dirfd = s32(dirfd)
    if not path and empty:
        if dirfd == AT_FDCWD:           # the working directory itself
            return AT_FDCWD, t.kernel.vfs.lookup(t.proc, AT_FDCWD, t.proc.cwd, follow)[1]
        return t.proc.fds.get(dirfd).host_fd, b""
    dir_fd, host = t.kernel.vfs.lookup(t.proc, dirfd, path, follow=follow)
    return (AT_FDCWD if dir_fd is None else dir_fd), host


def _py(dir_fd):
    """os.* spells AT_FDCWD as None."""
    return None if dir_fd == AT_FDCWD else dir_fd


def _dev(d):
    """A host dev_t in Linux's encoding (glibc's makedev, which the kernel agrees with)."""
    ma, mi = os.major(d), os.minor(d)
    return (mi & 0xFF) | ((ma & 0xFFF) << 8) | ((mi & ~0xFF) << 12) | ((ma & ~0xFFF) << 32)


def _linux_dev(d):
    """(major, minor) of a Linux dev_t as mknod passes it (new_decode_dev)."""
    return (d & 0xFFF00) >> 8, (d & 0xFF) | ((d >> 12) & 0xFFF00)


# -- the stat family -----------------------------------------------------------------------

def pack_stat(st):
    """struct stat as x86-64 Linux lays it out (144 bytes)."""
    def ts(ns):
        return divmod(ns, 1_000_000_000)
    return struct.pack("<QQQIIIiQqqq2q2q2q3q", _dev(st.st_dev), st.st_ino, st.st_nlink,
                       st.st_mode, st.st_uid, st.st_gid, 0, _dev(st.st_rdev), st.st_size,
                       st.st_blksize, st.st_blocks, *ts(st.st_atime_ns), *ts(st.st_mtime_ns),
                       *ts(st.st_ctime_ns), 0, 0, 0)


def _stat_at(t, dirfd, path, flags):
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH):
        raise Errno(errno.EINVAL)
    follow = not flags & AT_SYMLINK_NOFOLLOW
    dir_fd, host = _at(t, dirfd, path, follow, flags & AT_EMPTY_PATH)
    if not host:
        return os.stat(dir_fd)
    return os.stat(host, dir_fd=_py(dir_fd), follow_symlinks=follow)


def _put_stat(t, buf, st):
    t.mem.write(buf, pack_stat(st))
    return 0


@syscall("newfstatat", "fd path ptr flags")
def newfstatat(t, dirfd, path, buf, flags):
    # Linux 6.11+ accepts a NULL path with AT_EMPTY_PATH
    p = b"" if not path and flags & AT_EMPTY_PATH else _path(t, path)
    return _put_stat(t, buf, _stat_at(t, dirfd, p, flags))


@syscall("stat", "path ptr")
def stat(t, path, buf):
    return _put_stat(t, buf, _stat_at(t, AT_FDCWD, _path(t, path), 0))


@syscall("lstat", "path ptr")
def lstat(t, path, buf):
    return _put_stat(t, buf, _stat_at(t, AT_FDCWD, _path(t, path), AT_SYMLINK_NOFOLLOW))


@syscall("fstat", "fd ptr")
def fstat(t, fd, buf):
    return _put_stat(t, buf, os.fstat(t.proc.fds.get(s32(fd)).host_fd))


class _StatxTs(ctypes.Structure):
    _fields_ = [("sec", ctypes.c_int64), ("nsec", ctypes.c_uint32), ("pad", ctypes.c_int32)]


_HAVE_STATX = hasattr(_libc, "statx")
if _HAVE_STATX:
    _libc.statx.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint,
                            ctypes.c_void_p)


def _statx_from_stat(st, mask):
    """struct statx from an os.stat result, for hosts whose libc has no statx."""
    def ts(ns):
        sec, nsec = divmod(ns, 1_000_000_000)
        return struct.pack("<qIi", sec, nsec, 0)
    birth = getattr(st, "st_birthtime_ns", None)
    have = STATX_BASIC_STATS | (0x800 if birth is not None else 0)
    rdev, dev = st.st_rdev, st.st_dev
    out = struct.pack("<IIQIIIHHQQQQ", have, st.st_blksize, 0, st.st_nlink, st.st_uid,
                      st.st_gid, st.st_mode, 0, st.st_ino, st.st_size, st.st_blocks, 0)
    out += ts(st.st_atime_ns) + ts(birth or 0) + ts(st.st_ctime_ns) + ts(st.st_mtime_ns)
    out += struct.pack("<IIII", os.major(rdev), os.minor(rdev), os.major(dev), os.minor(dev))
    return out.ljust(256, b"\0")


@syscall("statx", "fd path flags hex ptr")
def statx(t, dirfd, path, flags, mask, buf):
    flags, mask = s32(flags), mask & 0xFFFFFFFF
    p = b"" if not path and flags & AT_EMPTY_PATH else _path(t, path)
    if mask & STATX_RESERVED or flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE:
        raise Errno(errno.EINVAL)
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH | AT_STATX_SYNC_TYPE):
        raise Errno(errno.EINVAL)
    follow = not flags & AT_SYMLINK_NOFOLLOW
    dir_fd, host = _at(t, dirfd, p, follow, flags & AT_EMPTY_PATH)
    t.mem.check(buf, 256, PROT_WRITE)
    if _HAVE_STATX:      # the host's own answer: attributes, btime, mount id and all
        out = ctypes.create_string_buffer(256)
        hflags = (flags & ~AT_EMPTY_PATH) | (AT_EMPTY_PATH if not host else 0)
        host_result(_libc.statx(dir_fd, host, hflags, mask, out))
        t.mem.write(buf, out.raw)
        return 0
    if not host:
        st = os.stat(dir_fd)
    else:
        st = os.stat(host, dir_fd=_py(dir_fd), follow_symlinks=follow)
    t.mem.write(buf, _statx_from_stat(st, mask))
    return 0


# -- directories ---------------------------------------------------------------------------
# The host kernel keeps each directory's position in the host descriptor, which the
# guest's open file description owns: dup, fork, lseek (rewind, seekdir to a d_off) and
# telldir all work on it exactly as on Linux, and d_off values are the file system's.

_getdents64 = getattr(_libc, "getdents64", None) or getattr(_libc, "getdents")
_getdents64.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t)
_getdents64.restype = ctypes.c_ssize_t
DENTS_MAX = 1 << 20      # a bigger guest buffer just gets fewer entries per call


def _host_dents(t, fd, count):
    f = t.proc.fds.get(s32(fd))
    count = min(count & 0xFFFFFFFF, DENTS_MAX)
    buf = ctypes.create_string_buffer(count)
    n = host_result(_getdents64(f.host_fd, buf, count))
    return f, buf.raw[:n]


@syscall("getdents64", "fd ptr size")
def getdents64(t, fd, dirp, count):
    _, data = _host_dents(t, fd, count)
    t.mem.write(dirp, data)
    return len(data)


@syscall("getdents", "fd ptr size")
def getdents(t, fd, dirp, count):
    """struct linux_dirent (d_type in the record's last byte), converted from dirent64.
    Old records can be longer, so entries that no longer fit are given back by seeking
    the directory to the last delivered entry's d_off."""
    f, data = _host_dents(t, fd, count)
    out, pos, last_off = bytearray(), 0, None
    while pos < len(data):
        ino, off, reclen, dtype = struct.unpack_from("<QqHB", data, pos)
        name = data[pos + 19:pos + reclen].split(b"\0", 1)[0]
        size = (18 + len(name) + 2 + 7) & ~7
        if len(out) + size > count:
            break
        rec = bytearray(size)
        struct.pack_into("<QqH", rec, 0, ino, off, size)
        rec[18:18 + len(name)] = name
        rec[size - 1] = dtype
        out += rec
        last_off = off
        pos += reclen
    if pos < len(data):
        if last_off is None:
            raise Errno(errno.EINVAL)
        os.lseek(f.host_fd, last_off, os.SEEK_SET)
    t.mem.write(dirp, bytes(out))
    return len(out)


@syscall("mkdirat", "fd path mode")
def mkdirat(t, dirfd, path, mode):
    dir_fd, host = _at(t, dirfd, _path(t, path), follow=False)
    os.mkdir(host, mode & 0o7777, dir_fd=_py(dir_fd))    # the host umask is the guest's
    return 0


@syscall("mkdir", "path mode")
def mkdir(t, path, mode):
    return mkdirat(t, AT_FDCWD, path, mode)


@syscall("mknodat", "fd path mode hex")
def mknodat(t, dirfd, path, mode, dev):
    mode &= 0xFFFF
    if S.S_IFMT(mode) == 0:
        mode |= S.S_IFREG
    dir_fd, host = _at(t, dirfd, _path(t, path), follow=False)
    # device nodes need CAP_MKNOD: the host decides (EPERM unless root)
    os.mknod(host, mode, os.makedev(*_linux_dev(dev & 0xFFFFFFFF)), dir_fd=_py(dir_fd))
    return 0


@syscall("mknod", "path mode hex")
def mknod(t, path, mode, dev):
    return mknodat(t, AT_FDCWD, path, mode, dev)


@syscall("unlinkat", "fd path flags")
def unlinkat(t, dirfd, path, flags):
    p = _path(t, path)
    if flags & ~AT_REMOVEDIR:
        raise Errno(errno.EINVAL)
    dir_fd, host = _at(t, dirfd, p, follow=False)
    # a last component of "." or ".." (or "/") is refused by name, before the VFS walk
    # (which folds such components away under -C) could name some other directory
    last = p.rstrip(b"/").rsplit(b"/", 1)[-1]
    if last in (b".", b"..", b""):
        if not flags & AT_REMOVEDIR:
            raise Errno(errno.EISDIR)
        raise Errno({b".": errno.EINVAL, b"..": errno.ENOTEMPTY}.get(last, errno.EBUSY))
    (os.rmdir if flags & AT_REMOVEDIR else os.unlink)(host, dir_fd=_py(dir_fd))
    return 0


@syscall("unlink", "path")
def unlink(t, path):
    return unlinkat(t, AT_FDCWD, path, 0)


@syscall("rmdir", "path")
def rmdir(t, path):
    return unlinkat(t, AT_FDCWD, path, AT_REMOVEDIR)


# -- names: renames, links, symlinks -------------------------------------------------------

if hasattr(_libc, "renameat2"):
    _libc.renameat2.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                                ctypes.c_uint)


@syscall("renameat2", "fd path fd path flags")
def renameat2(t, olddir, old, newdir, new, flags):
    old_fd, old_host = _at(t, olddir, _path(t, old), follow=False)
    new_fd, new_host = _at(t, newdir, _path(t, new), follow=False)
    if not flags & 0xFFFFFFFF:
        os.rename(old_host, new_host, src_dir_fd=_py(old_fd), dst_dir_fd=_py(new_fd))
        return 0
    if not hasattr(_libc, "renameat2"):
        raise Errno(errno.EINVAL)       # a host without renameat2 cannot do the flags
    # the host validates the flags (NOREPLACE|EXCHANGE, unknown bits: EINVAL)
    return host_result(_libc.renameat2(old_fd, old_host, new_fd, new_host, flags & 0xFFFFFFFF))


@syscall("renameat", "fd path fd path")
def renameat(t, olddir, old, newdir, new):
    return renameat2(t, olddir, old, newdir, new, 0)


@syscall("rename", "path path")
def rename(t, old, new):
    return renameat2(t, AT_FDCWD, old, AT_FDCWD, new, 0)


_libc.linkat.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                         ctypes.c_int)


@syscall("linkat", "fd path fd path flags")
def linkat(t, olddir, old, newdir, new, flags):
    flags = s32(flags)
    old_p, new_p = _path(t, old), _path(t, new)
    if flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH):
        raise Errno(errno.EINVAL)
    old_fd, old_host = _at(t, olddir, old_p, bool(flags & AT_SYMLINK_FOLLOW),
                           flags & AT_EMPTY_PATH)
    new_fd, new_host = _at(t, newdir, new_p, follow=False)
    hflags = (flags & AT_SYMLINK_FOLLOW) | (AT_EMPTY_PATH if not old_host else 0)
    return host_result(_libc.linkat(old_fd, old_host, new_fd, new_host, hflags))


@syscall("link", "path path")
def link(t, old, new):
    return linkat(t, AT_FDCWD, old, AT_FDCWD, new, 0)


@syscall("symlinkat", "str fd path")
def symlinkat(t, target, newdir, linkpath):
    target = _path(t, target)
    if not target:
        raise Errno(errno.ENOENT)
    dir_fd, host = _at(t, newdir, _path(t, linkpath), follow=False)
    os.symlink(target, host, dir_fd=_py(dir_fd))
    return 0


@syscall("symlink", "str path")
def symlink(t, target, linkpath):
    return symlinkat(t, target, AT_FDCWD, linkpath)


@syscall("readlinkat", "fd path rbuf int")
def readlinkat(t, dirfd, path, buf, size):
    p = _path(t, path)
    if s32(size) <= 0:
        raise Errno(errno.EINVAL)
    # an empty path reads the symlink an O_PATH|O_NOFOLLOW descriptor refers to (the
    # host's readlinkat does that; anything else is ENOENT)
    if not p and s32(dirfd) == AT_FDCWD:
        raise Errno(errno.ENOENT)       # the cwd is a directory, never a symlink
    target = t.kernel.vfs.magic_link(t.proc, s32(dirfd), p)
    if target is None:
        dir_fd, host = _at(t, dirfd, p, follow=False, empty=True)
        target = os.readlink(host, dir_fd=_py(dir_fd))
    target = target[:s32(size)]             # truncated, and never NUL-terminated
    t.mem.write(buf, target)
    return len(target)


@syscall("readlink", "path rbuf int")
def readlink(t, path, buf, size):
    return readlinkat(t, AT_FDCWD, path, buf, size)


# -- permissions and owners ----------------------------------------------------------------

_libc.faccessat.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_int)


@syscall("faccessat2", "fd path int flags")
def faccessat2(t, dirfd, path, mode, flags):
    p = _path(t, path)
    mode, flags = s32(mode), s32(flags)
    if mode & ~7 or flags & ~(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise Errno(errno.EINVAL)
    dir_fd, host = _at(t, dirfd, p, not flags & AT_SYMLINK_NOFOLLOW, flags & AT_EMPTY_PATH)
    hflags = (flags & ~AT_EMPTY_PATH) | (AT_EMPTY_PATH if not host else 0)
    return host_result(_libc.faccessat(dir_fd, host, mode, hflags))


@syscall("faccessat", "fd path int")
def faccessat(t, dirfd, path, mode):
    return faccessat2(t, dirfd, path, mode, 0)


@syscall("access", "path int")
def access(t, path, mode):
    return faccessat2(t, AT_FDCWD, path, mode, 0)


_libc.fchmodat.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_uint, ctypes.c_int)


@syscall("fchmodat2", "fd path mode flags")
def fchmodat2(t, dirfd, path, mode, flags):
    p = _path(t, path)
    flags = s32(flags)
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise Errno(errno.EINVAL)
    follow = not flags & AT_SYMLINK_NOFOLLOW
    dir_fd, host = _at(t, dirfd, p, follow, flags & AT_EMPTY_PATH)
    if not host:
        os.chmod(dir_fd, mode & 0o7777)
        return 0
    # a symlink's own mode cannot change: the host's libc says EOPNOTSUPP
    return host_result(_libc.fchmodat(dir_fd, host, mode & 0o7777, 0 if follow else
                                      AT_SYMLINK_NOFOLLOW))


@syscall("fchmodat", "fd path mode")
def fchmodat(t, dirfd, path, mode):
    return fchmodat2(t, dirfd, path, mode, 0)


@syscall("chmod", "path mode")
def chmod(t, path, mode):
    return fchmodat(t, AT_FDCWD, path, mode)


@syscall("fchmod", "fd mode")
def fchmod(t, fd, mode):
    os.fchmod(t.proc.fds.get(s32(fd)).host_fd, mode & 0o7777)
    return 0


def _id(x):
    """A uid_t/gid_t argument; (uid_t)-1 leaves it as it is."""
    x &= 0xFFFFFFFF
    return -1 if x == 0xFFFFFFFF else x


@syscall("fchownat", "fd path int int flags")
def fchownat(t, dirfd, path, uid, gid, flags):
    p = _path(t, path)
    flags = s32(flags)
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise Errno(errno.EINVAL)
    follow = not flags & AT_SYMLINK_NOFOLLOW
    dir_fd, host = _at(t, dirfd, p, follow, flags & AT_EMPTY_PATH)
    uid, gid = _id(uid), _id(gid)
    if not host:
        os.chown(dir_fd, uid, gid)
    else:
        os.chown(host, uid, gid, dir_fd=_py(dir_fd), follow_symlinks=follow)
    return 0


@syscall("chown", "path int int")
def chown(t, path, uid, gid):
    return fchownat(t, AT_FDCWD, path, uid, gid, 0)


@syscall("lchown", "path int int")
def lchown(t, path, uid, gid):
    return fchownat(t, AT_FDCWD, path, uid, gid, AT_SYMLINK_NOFOLLOW)


@syscall("fchown", "fd int int")
def fchown(t, fd, uid, gid):
    os.fchown(t.proc.fds.get(s32(fd)).host_fd, _id(uid), _id(gid))
    return 0


@syscall("umask", "mode")
def umask(t, mask):
    old = t.proc.umask
    t.proc.umask = mask & 0o777
    os.umask(t.proc.umask)      # host creations (open, mkdir, mknod) apply it for us
    return old


# -- times ---------------------------------------------------------------------------------

class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


_libc.utimensat.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(_Timespec),
                            ctypes.c_int)
_libc.futimens.argtypes = (ctypes.c_int, ctypes.POINTER(_Timespec))


def _utimens(t, dirfd, path, times, flags):
    """utimensat with times already read: [(sec, nsec), (sec, nsec)] or None (now)."""
    dirfd, flags = s32(dirfd), s32(flags)
    ts = None
    if times is not None:
        if times[0][1] == UTIME_OMIT and times[1][1] == UTIME_OMIT:
            return 0                    # Linux returns before looking at anything else
        ts = (_Timespec * 2)(*[_Timespec(s, n) for s, n in times])
    if path is None and dirfd != AT_FDCWD:      # futimens(fd, times)
        f = t.proc.fds.get(dirfd)
        if flags:
            raise Errno(errno.EINVAL)
        return host_result(_libc.futimens(f.host_fd, ts))
    if path is None:
        raise Errno(errno.EFAULT)
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise Errno(errno.EINVAL)
    dir_fd, host = _at(t, dirfd, path, not flags & AT_SYMLINK_NOFOLLOW, flags & AT_EMPTY_PATH)
    hflags = (flags & AT_SYMLINK_NOFOLLOW) | (AT_EMPTY_PATH if not host else 0)
    return host_result(_libc.utimensat(dir_fd, host, ts, hflags))


@syscall("utimensat", "fd path ptr flags")
def utimensat(t, dirfd, path, times, flags):
    tv = None
    if times:
        raw = struct.unpack("<4q", t.mem.read(times, 32))
        tv = [(raw[0], raw[1]), (raw[2], raw[3])]
    return _utimens(t, dirfd, _path(t, path) if path else None, tv, flags)


def _timevals(t, ptr):
    if not ptr:
        return None
    raw = struct.unpack("<4q", t.mem.read(ptr, 32))
    if any(u < 0 or u >= 1_000_000 for u in (raw[1], raw[3])):
        raise Errno(errno.EINVAL)
    return [(raw[0], raw[1] * 1000), (raw[2], raw[3] * 1000)]


@syscall("futimesat", "fd path ptr")
def futimesat(t, dirfd, path, times):
    tv = _timevals(t, times)
    return _utimens(t, dirfd, _path(t, path) if path else None, tv, 0)


@syscall("utimes", "path ptr")
def utimes(t, path, times):
    return _utimens(t, AT_FDCWD, _path(t, path), _timevals(t, times), 0)


@syscall("utime", "path ptr")
def utime(t, path, times):
    tv = None
    if times:
        actime, modtime = struct.unpack("<2q", t.mem.read(times, 16))
        tv = [(actime, 0), (modtime, 0)]
    return _utimens(t, AT_FDCWD, _path(t, path), tv, 0)


# -- the working directory and the root ----------------------------------------------------
# The host's cwd is the guest's (relative host calls resolve against it); proc.cwd keeps
# the guest's name for it, which the VFS uses under -C.

def _sync_cwd(t):
    t.proc.cwd = t.kernel.vfs.to_guest(os.getcwdb())


@syscall("getcwd", "ptr size")
def getcwd(t, buf, size):
    # with the host's / as root the host's answer is exact (renamed or removed cwd)
    cwd = (os.getcwdb() if t.kernel.vfs.identity else t.proc.cwd) + b"\0"
    if len(cwd) > size:
        raise Errno(errno.ERANGE)
    t.mem.write(buf, cwd)
    return len(cwd)


@syscall("chdir", "path")
def chdir(t, path):
    _, host = _at(t, AT_FDCWD, _path(t, path))
    os.chdir(host)
    _sync_cwd(t)
    return 0


@syscall("fchdir", "fd")
def fchdir(t, fd):
    os.fchdir(t.proc.fds.get(s32(fd)).host_fd)
    _sync_cwd(t)
    return 0


@syscall("chroot", "path", support="partial", note="EPERM: a guest chroot is not done yet")
def chroot(t, path):
    _, host = _at(t, AT_FDCWD, _path(t, path))
    if not S.S_ISDIR(os.stat(host).st_mode):
        raise Errno(errno.ENOTDIR)
    raise Errno(errno.EPERM)


# -- file systems --------------------------------------------------------------------------

STATFS_SIZE = 120       # struct statfs on 64-bit Linux (the host's is the same)
_libc.statfs.argtypes = (ctypes.c_char_p, ctypes.c_void_p)
_libc.fstatfs.argtypes = (ctypes.c_int, ctypes.c_void_p)


@syscall("statfs", "path ptr")
def statfs(t, path, buf):
    _, host = _at(t, AT_FDCWD, _path(t, path))
    out = ctypes.create_string_buffer(STATFS_SIZE)
    host_result(_libc.statfs(host, out))
    t.mem.write(buf, out.raw)
    return 0


@syscall("fstatfs", "fd ptr")
def fstatfs(t, fd, buf):
    out = ctypes.create_string_buffer(STATFS_SIZE)
    host_result(_libc.fstatfs(t.proc.fds.get(s32(fd)).host_fd, out))
    t.mem.write(buf, out.raw)
    return 0


# -- extended attributes -------------------------------------------------------------------
# Passed to the host file through libc: values are bytes, and the host's answers (ENODATA,
# EOPNOTSUPP, ERANGE with the needed size on a short buffer) are Linux's.

XATTR_SIZE_MAX = 65536


def _xattr_target(t, path, follow):
    """A host path for a guest path (libc's *xattr take paths, not dirfds)."""
    return t.kernel.vfs.host_path(t.proc, AT_FDCWD, _path(t, path), follow=follow)


def _xattr_out(t, ret, buf, size, data):
    if ret < 0:
        raise Errno(ctypes.get_errno())
    if size:
        t.mem.write(buf, data.raw[:ret])
    return ret


def _getxattr(t, fn, target, name, buf, size):
    size = min(size, XATTR_SIZE_MAX)
    data = ctypes.create_string_buffer(max(size, 1))
    return _xattr_out(t, fn(target, _path(t, name), data if size else None, size), buf, size,
                      data)


def _listxattr(t, fn, target, buf, size):
    size = min(size, XATTR_SIZE_MAX)
    data = ctypes.create_string_buffer(max(size, 1))
    return _xattr_out(t, fn(target, data if size else None, size), buf, size, data)


def _setxattr(t, fn, target, name, value, size, flags):
    if size > XATTR_SIZE_MAX:
        raise Errno(errno.E2BIG)
    return host_result(fn(target, _path(t, name), t.mem.read(value, size), size, s32(flags)))


@syscall("getxattr", "path str ptr size")
def getxattr(t, path, name, buf, size):
    return _getxattr(t, _libc.getxattr, _xattr_target(t, path, True), name, buf, size)


@syscall("lgetxattr", "path str ptr size")
def lgetxattr(t, path, name, buf, size):
    return _getxattr(t, _libc.lgetxattr, _xattr_target(t, path, False), name, buf, size)


@syscall("fgetxattr", "fd str ptr size")
def fgetxattr(t, fd, name, buf, size):
    return _getxattr(t, _libc.fgetxattr, t.proc.fds.get(s32(fd)).host_fd, name, buf, size)


@syscall("listxattr", "path ptr size")
def listxattr(t, path, buf, size):
    return _listxattr(t, _libc.listxattr, _xattr_target(t, path, True), buf, size)


@syscall("llistxattr", "path ptr size")
def llistxattr(t, path, buf, size):
    return _listxattr(t, _libc.llistxattr, _xattr_target(t, path, False), buf, size)


@syscall("flistxattr", "fd ptr size")
def flistxattr(t, fd, buf, size):
    return _listxattr(t, _libc.flistxattr, t.proc.fds.get(s32(fd)).host_fd, buf, size)


@syscall("setxattr", "path str ptr size flags")
def setxattr(t, path, name, value, size, flags):
    return _setxattr(t, _libc.setxattr, _xattr_target(t, path, True), name, value, size, flags)


@syscall("lsetxattr", "path str ptr size flags")
def lsetxattr(t, path, name, value, size, flags):
    return _setxattr(t, _libc.lsetxattr, _xattr_target(t, path, False), name, value, size, flags)


@syscall("fsetxattr", "fd str ptr size flags")
def fsetxattr(t, fd, name, value, size, flags):
    return _setxattr(t, _libc.fsetxattr, t.proc.fds.get(s32(fd)).host_fd, name, value, size, flags)


@syscall("removexattr", "path str")
def removexattr(t, path, name):
    return host_result(_libc.removexattr(_xattr_target(t, path, True), _path(t, name)))


@syscall("lremovexattr", "path str")
def lremovexattr(t, path, name):
    return host_result(_libc.lremovexattr(_xattr_target(t, path, False), _path(t, name)))


@syscall("fremovexattr", "fd str")
def fremovexattr(t, fd, name):
    return host_result(_libc.fremovexattr(t.proc.fds.get(s32(fd)).host_fd, _path(t, name)))
