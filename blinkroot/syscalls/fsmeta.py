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
from ..vfs.fs import READ, WRITE, CREATE, DELETE, MagicLink
from .table import syscall, s32
from .files import host_result, LIBC as _libc
from ..vfs.fs import Filesystem as _Filesystem

_base_fix_stat = _Filesystem.fix_stat

AT_NO_AUTOMOUNT = 0x800
AT_EACCESS = 0x200
AT_STATX_SYNC_TYPE = 0x6000
STATX_RESERVED = 0x80000000
STATX_BASIC_STATS = 0x7FF
UTIME_NOW, UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2
PROT_WRITE = 2


def _path(t, ptr):
    return t.mem.read_cstr(ptr)


def _node(t, dirfd, path, follow=True):
    """The walked node of a guest *at pair (vfs/walk.py)."""
    return t.kernel.vfs.resolve(t.proc, s32(dirfd), path, follow)


def _at(t, dirfd, path, follow=True, empty=False, intent=READ):
    """(host dirfd or AT_FDCWD, host path) for a guest *at pair, through the walk.

    ``empty`` (AT_EMPTY_PATH with an empty path) names dirfd's own file: the host path
    is then b"" and the caller uses the host descriptor (AT_FDCWD: the cwd's path)."""
    dirfd = s32(dirfd)
    vfs = t.kernel.vfs
    if not path and empty:
        if dirfd == AT_FDCWD:           # the working directory itself
            return AT_FDCWD, vfs.host_of(vfs.resolve_fd(t.proc, AT_FDCWD), intent)
        f = t.proc.fds.get(dirfd)
        if intent != READ and f.node is not None and f.node.st is not None \
                and f.node.mount.ro:
            raise Errno(errno.EROFS)
        return f.host_fd, b""
    return AT_FDCWD, vfs.host_of(vfs.resolve(t.proc, dirfd, path, follow), intent)


def _not_mountpoint(node):
    if len(node.stack) > 1 and node.stack[-1][1] is not node.stack[-2][1]:
        raise Errno(errno.EBUSY)


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


def fstat_file(f):
    """fstat of an open file: generated files answer themselves; others the host, with
    the st_dev of the filesystem they were opened on."""
    if f.fake_stat is not None:
        return f.fake_stat
    st = os.fstat(f.host_fd)
    return f.node.fs.fix_stat(st) if f.node is not None else st


def _stat_at(t, dirfd, path, flags):
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH):
        raise Errno(errno.EINVAL)
    follow = not flags & AT_SYMLINK_NOFOLLOW
    vfs = t.kernel.vfs
    if not path and flags & AT_EMPTY_PATH:
        if s32(dirfd) == AT_FDCWD:
            return vfs.stat(vfs.resolve_fd(t.proc, AT_FDCWD))
        return fstat_file(t.proc.fds.get(s32(dirfd)))
    return vfs.stat(_node(t, dirfd, path, follow))      # the walk has stat'ed it


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
    return _put_stat(t, buf, fstat_file(t.proc.fds.get(s32(fd))))


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
    t.mem.check(buf, 256, PROT_WRITE)
    fs = None
    if not p and flags & AT_EMPTY_PATH and s32(dirfd) != AT_FDCWD:
        f = t.proc.fds.get(s32(dirfd))
        if f.fake_stat is not None:
            t.mem.write(buf, _statx_from_stat(f.fake_stat, mask))
            return 0
        dir_fd, host = f.host_fd, b""
        fs = f.node.fs if f.node is not None else None
    else:
        vfs = t.kernel.vfs
        node = vfs.resolve_fd(t.proc, AT_FDCWD) if not p and flags & AT_EMPTY_PATH \
            else _node(t, dirfd, p, follow)
        try:
            dir_fd, host = AT_FDCWD, vfs.host_of(node)
        except Errno:           # no host inode behind it (procfs): the walk's stat
            t.mem.write(buf, _statx_from_stat(vfs.stat(node), mask))
            return 0
        fs = node.fs if node.file is None else None
    if _HAVE_STATX:      # the host's own answer: attributes, btime, mount id and all
        out = ctypes.create_string_buffer(256)
        hflags = (flags & ~AT_EMPTY_PATH) | (AT_EMPTY_PATH if not host else 0)
        host_result(_libc.statx(dir_fd, host, hflags, mask, out))
        raw = out.raw
        dev = getattr(fs, "dev", None)
        if dev is not None and type(fs).fix_stat is not _base_fix_stat:
            raw = raw[:136] + struct.pack("<II", os.major(dev), os.minor(dev)) + raw[144:]
        t.mem.write(buf, raw)
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
    if hasattr(f, "dents"):         # a generated directory (procfs, merged overlay)
        return f, f.dents(count)
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


def _create(t, dirfd, path):
    """The node of a name about to be made (EEXIST if it is there) and its host path."""
    node = _node(t, dirfd, path, follow=False)
    if node.exists:
        raise Errno(errno.EEXIST)
    return node, t.kernel.vfs.host_of(node, CREATE)


@syscall("mkdirat", "fd path mode")
def mkdirat(t, dirfd, path, mode):
    node, host = _create(t, dirfd, _path(t, path))
    os.mkdir(host, mode & 0o7777)    # the host umask is the guest's
    node.fs.created(node.rel, True)
    return 0


@syscall("mkdir", "path mode")
def mkdir(t, path, mode):
    return mkdirat(t, AT_FDCWD, path, mode)


@syscall("mknodat", "fd path mode hex")
def mknodat(t, dirfd, path, mode, dev):
    mode &= 0xFFFF
    if S.S_IFMT(mode) == 0:
        mode |= S.S_IFREG
    node, host = _create(t, dirfd, _path(t, path))
    # device nodes need CAP_MKNOD: the host decides (EPERM unless root)
    os.mknod(host, mode, os.makedev(*_linux_dev(dev & 0xFFFFFFFF)))
    node.fs.created(node.rel, False)
    return 0


@syscall("mknod", "path mode hex")
def mknod(t, path, mode, dev):
    return mknodat(t, AT_FDCWD, path, mode, dev)


@syscall("unlinkat", "fd path flags")
def unlinkat(t, dirfd, path, flags):
    p = _path(t, path)
    if flags & ~AT_REMOVEDIR:
        raise Errno(errno.EINVAL)
    node = _node(t, dirfd, p, follow=False)
    # a last component of "." or ".." (or "/") is refused by name, after the walk
    # (which folds such components away) has found the path's directories
    last = p.rstrip(b"/").rsplit(b"/", 1)[-1]
    if last in (b".", b"..", b""):
        if not flags & AT_REMOVEDIR:
            raise Errno(errno.EISDIR)
        raise Errno({b".": errno.EINVAL, b"..": errno.ENOTEMPTY}.get(last, errno.EBUSY))
    if not node.exists:
        raise Errno(errno.ENOENT)
    _not_mountpoint(node)
    is_dir = bool(flags & AT_REMOVEDIR)
    if node.mount.ro:
        raise Errno(errno.EROFS)
    remove = getattr(node.fs, "remove", None)
    if remove is not None:
        remove(node.rel, is_dir)
    else:
        (os.rmdir if is_dir else os.unlink)(t.kernel.vfs.host_of(node, DELETE))
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
    vfs = t.kernel.vfs
    onode = _node(t, olddir, _path(t, old), follow=False)
    nnode = _node(t, newdir, _path(t, new), follow=False)
    if not onode.exists:
        raise Errno(errno.ENOENT)
    if onode.mount is not nnode.mount:
        raise Errno(errno.EXDEV)        # Linux: never across mounts, even of one fs
    if onode.mount.ro:
        raise Errno(errno.EROFS)
    _not_mountpoint(onode)
    rename = getattr(onode.fs, "rename", None)
    if rename is not None and not flags & 0xFFFFFFFF:
        rename(onode.rel, nnode.rel)
        return 0
    old_fd, old_host = AT_FDCWD, vfs.host_of(onode, DELETE)
    new_fd, new_host = AT_FDCWD, vfs.host_of(nnode, CREATE)
    if not flags & 0xFFFFFFFF:
        os.rename(old_host, new_host)
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
                           flags & AT_EMPTY_PATH, intent=WRITE)
    nnode = _node(t, newdir, new_p, follow=False)
    if nnode.exists:
        raise Errno(errno.EEXIST)
    if old_p:
        onode = _node(t, olddir, old_p, bool(flags & AT_SYMLINK_FOLLOW))
        if onode.mount is not nnode.mount:
            raise Errno(errno.EXDEV)
    new_fd, new_host = AT_FDCWD, t.kernel.vfs.host_of(nnode, CREATE)
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
    node, host = _create(t, newdir, _path(t, linkpath))
    os.symlink(target, host)
    node.fs.created(node.rel, False)
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
    if not p:
        f = t.proc.fds.get(s32(dirfd))
        node = f.node
        if node is not None and node.st is not None and S.S_ISLNK(node.st.st_mode):
            target = node.fs.readlink(node.rel)
        else:
            target = os.readlink(b"", dir_fd=f.host_fd)
    else:
        node = _node(t, dirfd, p, follow=False)
        if not node.exists:
            raise Errno(errno.ENOENT)
        if not S.S_ISLNK(node.st.st_mode):
            raise Errno(errno.EINVAL)
        target = node.fs.readlink(node.rel)
    if isinstance(target, MagicLink):
        target = target.text
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
    if not p and flags & AT_EMPTY_PATH:
        dir_fd, host = _at(t, dirfd, p, not flags & AT_SYMLINK_NOFOLLOW, True)
    else:
        node = _node(t, dirfd, p, not flags & AT_SYMLINK_NOFOLLOW)
        if not node.exists:
            raise Errno(errno.ENOENT)
        if mode & 2 and node.file is None and node.mount.ro and not S.S_ISCHR(
                node.st.st_mode) and not S.S_ISBLK(node.st.st_mode):
            raise Errno(errno.EROFS)
        try:
            dir_fd, host = AT_FDCWD, t.kernel.vfs.host_of(node)
        except Errno:           # generated (procfs): its mode bits answer
            return _access_bits(node.st, mode)
    hflags = (flags & ~AT_EMPTY_PATH) | (AT_EMPTY_PATH if not host else 0)
    return host_result(_libc.faccessat(dir_fd, host, mode, hflags))


def _access_bits(st, mode):
    if os.geteuid() == 0:
        ok = not mode & 1 or st.st_mode & 0o111 or S.S_ISDIR(st.st_mode)
    else:
        shift = 6 if st.st_uid == os.geteuid() else (3 if st.st_gid == os.getegid() else 0)
        ok = ((st.st_mode >> shift) & mode) == mode
    if not ok:
        raise Errno(errno.EACCES)
    return 0


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
    dir_fd, host = _at(t, dirfd, p, follow, flags & AT_EMPTY_PATH, intent=WRITE)
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


def _not_a_device(host_fd):
    """The host fd of a file whose metadata the guest may change: a device's is the
    host's own node (devfs passes host devices through), never the guest's to change."""
    mode = os.fstat(host_fd).st_mode
    if S.S_ISCHR(mode) or S.S_ISBLK(mode):
        raise Errno(errno.EPERM)
    return host_fd


@syscall("fchmod", "fd mode")
def fchmod(t, fd, mode):
    os.fchmod(_not_a_device(t.proc.fds.get(s32(fd)).host_fd), mode & 0o7777)
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
    dir_fd, host = _at(t, dirfd, p, follow, flags & AT_EMPTY_PATH, intent=WRITE)
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
    os.fchown(_not_a_device(t.proc.fds.get(s32(fd)).host_fd), _id(uid), _id(gid))
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
        return host_result(_libc.futimens(_not_a_device(f.host_fd), ts))
    if path is None:
        raise Errno(errno.EFAULT)
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise Errno(errno.EINVAL)
    dir_fd, host = _at(t, dirfd, path, not flags & AT_SYMLINK_NOFOLLOW, flags & AT_EMPTY_PATH,
                       intent=WRITE)
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

def _set_cwd(t, node):
    """The cwd is a walked node: its guest path (getcwd), its stack (relative walks)."""
    if node.file is not None or node.st is None:
        raise Errno(errno.ENOTDIR if node.file is not None else errno.ENOENT)
    if not S.S_ISDIR(node.st.st_mode):
        raise Errno(errno.ENOTDIR)
    vfs = t.kernel.vfs
    try:
        host = vfs.host_of(node)
    except Errno:
        host = None
    if host is not None:
        if not os.access(host, os.X_OK):
            raise Errno(errno.EACCES)
        try:
            os.chdir(host)      # host-relative calls (none should remain) stay close
        except OSError:
            pass
    proc = t.proc
    proc.cwd = node.guest
    proc.cwd_stack = node.stack
    vfs.session.publish(proc)


@syscall("getcwd", "ptr size")
def getcwd(t, buf, size):
    cwd = t.proc.cwd + b"\0"
    if len(cwd) > size:
        raise Errno(errno.ERANGE)
    t.mem.write(buf, cwd)
    return len(cwd)


@syscall("chdir", "path")
def chdir(t, path):
    _set_cwd(t, _node(t, AT_FDCWD, _path(t, path)))
    return 0


@syscall("fchdir", "fd")
def fchdir(t, fd):
    f = t.proc.fds.get(s32(fd))
    if f.node is None:
        raise Errno(errno.ENOTDIR)
    _set_cwd(t, f.node)
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


ST_RDONLY = 1


def _statfs_of(t, node, host_fd=None):
    """struct statfs: the filesystem's own answer (procfs, tmpfs, devfs, overlay), else the
    host's for the node's host file; read-only mounts say ST_RDONLY."""
    out = None
    if node is not None and node.file is None:
        own = node.fs.statfs(node.rel)
        if own is not None:
            ftype, bsize, blocks, bfree, bavail, files, ffree, namelen = own
            dev = getattr(node.fs, "dev", 0)
            out = struct.pack("<qqQQQQQiiqqq4q", ftype, bsize, blocks, bfree, bavail, files,
                              ffree, os.major(dev), os.minor(dev), namelen, bsize, 0x20,
                              0, 0, 0, 0)
    if out is None:
        raw = ctypes.create_string_buffer(STATFS_SIZE)
        if host_fd is not None:
            host_result(_libc.fstatfs(host_fd, raw))
        else:
            host_result(_libc.statfs(t.kernel.vfs.host_of(node), raw))
        out = raw.raw
        if node is not None and node.file is None:
            magic = getattr(node.fs, "magic", None)
            if magic is not None:
                out = struct.pack("<q", magic) + out[8:]
    if node is not None and node.file is None and node.mount.ro:
        flags = struct.unpack_from("<q", out, 80)[0] | ST_RDONLY
        out = out[:80] + struct.pack("<q", flags) + out[88:]
    return out


@syscall("statfs", "path ptr")
def statfs(t, path, buf):
    t.mem.write(buf, _statfs_of(t, _node(t, AT_FDCWD, _path(t, path))))
    return 0


@syscall("fstatfs", "fd ptr")
def fstatfs(t, fd, buf):
    f = t.proc.fds.get(s32(fd))
    t.mem.write(buf, _statfs_of(t, f.node, f.host_fd))
    return 0


# -- extended attributes -------------------------------------------------------------------
# Passed to the host file through libc: values are bytes, and the host's answers (ENODATA,
# EOPNOTSUPP, ERANGE with the needed size on a short buffer) are Linux's.

XATTR_SIZE_MAX = 65536


def _xattr_target(t, path, follow, intent=READ):
    """A host path for a guest path (libc's *xattr take paths, not dirfds)."""
    return t.kernel.vfs.host_path(t.proc, AT_FDCWD, _path(t, path), follow=follow,
                                  intent=intent)


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
    return _setxattr(t, _libc.setxattr, _xattr_target(t, path, True, WRITE), name, value, size,
                     flags)


@syscall("lsetxattr", "path str ptr size flags")
def lsetxattr(t, path, name, value, size, flags):
    return _setxattr(t, _libc.lsetxattr, _xattr_target(t, path, False, WRITE), name, value,
                     size, flags)


@syscall("fsetxattr", "fd str ptr size flags")
def fsetxattr(t, fd, name, value, size, flags):
    return _setxattr(t, _libc.fsetxattr, t.proc.fds.get(s32(fd)).host_fd, name, value, size, flags)


@syscall("removexattr", "path str")
def removexattr(t, path, name):
    return host_result(_libc.removexattr(_xattr_target(t, path, True, WRITE), _path(t, name)))


@syscall("lremovexattr", "path str")
def lremovexattr(t, path, name):
    return host_result(_libc.lremovexattr(_xattr_target(t, path, False, WRITE),
                                          _path(t, name)))


@syscall("fremovexattr", "fd str")
def fremovexattr(t, fd, name):
    return host_result(_libc.fremovexattr(t.proc.fds.get(s32(fd)).host_fd, _path(t, name)))


# -- ustat ---------------------------------------------------------------------------------
USTAT_SIZE = 32         # struct ustat: int f_tfree, ino_t f_tinode, char f_fname[6], f_fpack[6]


@syscall("ustat", "hex ptr")
def ustat(t, dev, buf):
    """The obsolete free-space query by device number: guest st_dev numbers of host files
    are the host's, so the host answers (EINVAL for a device no mount has)."""
    raw = ctypes.create_string_buffer(USTAT_SIZE)
    host_result(_libc.syscall(ctypes.c_long(136), ctypes.c_ulong(dev & 0xFFFFFFFF), raw))
    t.mem.write(buf, raw.raw)
    return 0
