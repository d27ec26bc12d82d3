"""The guest's view of the file system: one mount table, one path walk.

- session.py: the state every process of one blinkroot run shares (mount table, tmpfs
  contents, the process list), in a host directory the first process owns;
- mounts.py: the mount table; walk.py: the walk (the only place guest paths are
  resolved); fs.py: the interface of filesystems; hostfs.py, tmpfs.py, procfs.py,
  devfs.py, overlay.py: one class each;
- files.py: open file descriptions and the descriptor table.

Every path syscall calls ``Vfs.resolve`` (a Node: mount, path inside the filesystem,
stat) and then asks the node's filesystem for a host path (``host_of``) or for an open
file (``open``).  Roots follow blink's interface: ``-C ROOT`` or BLINK_PREFIX (a hostfs
root, with /proc, /dev and blink's /SystemRoot (the host's /) mounted), BLINK_OVERLAYS
(blink's union of layers, an empty entry being the host's /), and beyond blink
``--overlay DIR`` (a writable upper directory over the root tree: Linux overlayfs).
"""

import ctypes
import errno
import os
import stat as S
import struct

from ..errors import Errno
from . import walk as W
from .fs import READ, WRITE, CREATE
from .files import File, DirFile
from .mounts import MountTable
from .session import Session
from . import devfs

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_REMOVEDIR = 0x200
AT_SYMLINK_FOLLOW = 0x400
AT_EMPTY_PATH = 0x1000
MAXSYMLINKS = W.MAXSYMLINKS
PATH_MAX = W.PATH_MAX
SYSTEM_ROOT = b"/SystemRoot"

_O_ACCMODE, _O_CREAT, _O_EXCL, _O_TRUNC = 3, 0o100, 0o200, 0o1000
_O_DIRECTORY, _O_NOFOLLOW, _O_PATH = 0o200000, 0o400000, 0o10000000
_O_TMPFILE = 0o20200000

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_NR_OPENAT2 = 437


def _openat2(path, flags, mode, resolve):
    """The host's openat2(AT_FDCWD, path, {flags, mode, resolve})."""
    how = struct.pack("<QQQ", flags, mode, resolve)
    fd = _libc.syscall(ctypes.c_long(_NR_OPENAT2), ctypes.c_int(AT_FDCWD),
                       ctypes.c_char_p(path), ctypes.c_char_p(how), ctypes.c_size_t(24))
    if fd < 0:
        e = ctypes.get_errno()
        if e == errno.ENOSYS:
            return os.open(path, flags | os.O_NOFOLLOW, mode)
        raise OSError(e, os.strerror(e))
    return fd


class Vfs:
    def __init__(self, root="/", overlays=None, upper=None, system_root=True):
        """root: the -C tree (a host path); overlays: BLINK_OVERLAYS layers (host paths,
        b"/" for an empty entry); upper: --overlay's writable directory."""
        self.session = Session()
        self.session.to_guest = self.to_guest
        if overlays and len(overlays) > 1:
            layers = [os.path.realpath(p) for p in overlays]
            root_entry = ("overlay", {"layers": layers, "mode": "union",
                                      "source": "overlays"})
            self.root = None
        else:
            if overlays:
                root = overlays[0]
            real = os.path.realpath(root)
            if not os.path.isdir(real):
                raise Errno(errno.ENOENT, f"root {root!s} is not a directory")
            self.root = real.encode()
            if upper is not None:
                up = os.path.realpath(upper)
                os.makedirs(up, exist_ok=True)
                root_entry = ("overlay", {"layers": [up, real], "mode": "overlay",
                                          "source": "overlay"})
            else:
                root_entry = ("hostfs", {"base": real})
        self.identity = root_entry[0] == "hostfs" and self.root == b"/"
        self.table = MountTable(self.session)
        self.table.add(b"/", root_entry[0], root_entry[1])
        if not self._symlink_in_root(b"proc"):
            self.table.add(b"/proc", "proc", {})
        if not self.identity and not self._symlink_in_root(b"dev"):
            from .devfs import DevFs
            self.table.add(b"/dev", "devtmpfs", DevFs.make_spec(self.session, None, None))
            if system_root:
                self.table.add(SYSTEM_ROOT, "hostfs", {"base": "/", "source": "/"})

    def _symlink_in_root(self, name):
        """Is the root tree's NAME a symlink?  Then /NAME is not mounted on: Linux cannot
        mount on a symlink (mount(8) follows it), so the guest sees the tree as a chroot
        does.  debootstrap --foreign leaves /proc -> /proc, and its second stage replaces
        the link with a directory and mounts proc there itself."""
        try:
            return S.S_ISLNK(self.table.mounts[0].fs.lstat(name).st_mode)
        except OSError:
            return False

    @classmethod
    def attach(cls, session):
        """The VFS of a running session (session.Session.attach): its mount table as its
        processes see it, nothing mounted here."""
        self = cls.__new__(cls)
        self.session = session
        session.to_guest = self.to_guest
        self.root = None
        self.identity = False
        self.table = MountTable(session)
        return self

    # -- the walk -----------------------------------------------------------------------------
    def refresh(self):
        t = self.table
        if self.session.generation() != t.gen:
            t.refresh()
        return t

    def start(self, proc, dirfd):
        """The stack a relative walk starts from: the cwd's or the directory dirfd's."""
        if dirfd == AT_FDCWD:
            stack = getattr(proc, "cwd_stack", None)
            if stack is None:
                node = W.walk(self.refresh(), None, proc.cwd)
                stack = proc.cwd_stack = node.stack
            return stack
        f = proc.fds.get(dirfd)
        node = getattr(f, "node", None)
        if node is None or node.st is None:
            raise Errno(errno.ENOTDIR)
        if not S.S_ISDIR(node.st.st_mode):
            raise Errno(errno.ENOTDIR)
        return node.stack

    def resolve(self, proc, dirfd, path, follow=True, resolve=0):
        """The Node for a guest (dirfd, path) pair (the walk; see walk.py)."""
        if not path:
            raise Errno(errno.ENOENT)
        table = self.refresh()
        if path[:1] == b"/" and not resolve:
            return W.walk(table, None, path, follow)
        return W.walk(table, self.start(proc, dirfd), path, follow, resolve)

    def resolve_fd(self, proc, dirfd):
        """The node dirfd (AT_FDCWD: the cwd) itself names (AT_EMPTY_PATH)."""
        if dirfd == AT_FDCWD:
            stack = self.start(proc, dirfd)
            return W.Node(stack, stack[-1][1].fs.lstat(stack[-1][2]))
        f = proc.fds.get(dirfd)
        node = getattr(f, "node", None)
        return node

    # -- nodes to host paths ---------------------------------------------------------------
    def host_of(self, node, intent=READ):
        if node.file is not None:
            return b"/proc/self/fd/%d" % node.file.host_fd
        if intent != READ and node.mount.ro:
            raise Errno(errno.EROFS)
        if node.st is None and intent in (READ, WRITE):
            raise Errno(errno.ENOENT)
        return node.fs.host(node.rel, intent)

    def lookup(self, proc, dirfd, path, follow=True, intent=READ):
        """(None, host path) for a guest (dirfd, path): the node's host path."""
        return None, self.host_path(proc, dirfd, path, follow, intent)

    def host_path(self, proc, dirfd, path, follow=True, intent=READ):
        """The node's host path; for a name that does not exist yet, where it would be
        made (AF_UNIX bind, for one)."""
        node = self.resolve(proc, dirfd, path, follow)
        if not node.exists and intent == READ:
            intent = CREATE
        return self.host_of(node, intent)

    def stat(self, node):
        """The stat of a walked node (the walk has it already)."""
        if node.file is not None:
            return os.fstat(node.file.host_fd)
        if node.st is None:
            raise Errno(errno.ENOENT)
        return node.st

    def to_guest(self, host_path):
        """A guest path for a host path (the host's answers about sockets and fds): the
        mount whose host directory holds it, else the host path as it is."""
        best = None
        for m in self.table.mounts:
            base = getattr(m.fs, "base", None)
            if base is None or not isinstance(base, bytes):
                continue
            top = m.fs.host(m.root) if m.root else base
            if host_path == top or host_path.startswith(top.rstrip(b"/") + b"/"):
                if best is None or len(top) > len(best[0]):
                    best = (top, m)
        if best is None:
            return host_path
        top, m = best
        rest = host_path[len(top.rstrip(b"/")):]
        return (m.point.rstrip(b"/") + rest) or b"/"

    # -- opening --------------------------------------------------------------------------------
    def open(self, proc, node, flags, mode, host_flags):
        """A File for a walked node (see files.py do_open for the flags' meaning)."""
        if node.file is not None:
            if flags & _O_PATH:
                fd = os.dup(node.file.host_fd)
            else:
                fd = os.open(b"/proc/self/fd/%d" % node.file.host_fd, host_flags)
            f = File(fd, flags, node.file.path)
            f.node = getattr(node.file, "node", None)
            return f
        st = node.st
        fs = node.fs
        if st is None:
            if not flags & _O_CREAT:
                raise Errno(errno.ENOENT)
            if node.trailing:
                raise Errno(errno.EISDIR)
            host = self.host_of(node, CREATE)
            fd = _openat2(host, host_flags | os.O_NOFOLLOW, mode, W.RESOLVE_NO_SYMLINKS
                          if self._contained(node) else 0)
            fs.created(node.rel, False)
            node.st = os.fstat(fd)
            f = File(fd, flags, node.guest)
            f.node = node
            return f
        if flags & _O_CREAT and flags & _O_EXCL:
            raise Errno(errno.EEXIST)
        fmt = S.S_IFMT(st.st_mode)
        if flags & _O_DIRECTORY and fmt != S.S_IFDIR:
            raise Errno(errno.ENOTDIR)
        if fmt == S.S_IFLNK and not flags & _O_PATH:
            raise Errno(errno.ELOOP)
        writing = (flags & _O_ACCMODE) or flags & _O_TRUNC
        if flags & _O_TMPFILE == _O_TMPFILE:
            if fmt != S.S_IFDIR:
                raise Errno(errno.ENOTDIR)
            if node.mount.ro:
                raise Errno(errno.EROFS)
            fd = os.open(fs.host(node.rel, WRITE), host_flags, mode)
            f = File(fd, flags, node.guest + b"/#tmpfile")
            return f
        if fmt == S.S_IFDIR and writing and not flags & _O_PATH:
            raise Errno(errno.EISDIR)
        device = None
        if (fmt == S.S_IFCHR or fmt == S.S_IFBLK) and fs.nodev and not flags & _O_PATH \
                and not getattr(fs, "device_ok", _never)(node.rel):
            device = devfs.by_number(st.st_rdev) if fmt == S.S_IFCHR else None
            if device is None:
                raise Errno(errno.EACCES)
        if writing and not flags & _O_PATH and node.mount.ro and fmt not in (
                S.S_IFCHR, S.S_IFBLK, S.S_IFIFO, S.S_IFSOCK):
            raise Errno(errno.EROFS)
        gen = fs.open(node.rel, flags, proc) if not flags & _O_PATH else None
        if device is not None:
            f = File(os.open(device, host_flags & ~os.O_CREAT), flags, node.guest)
        elif gen is not None:
            f = self._generated(gen, flags, node)
        else:
            host = fs.host(node.rel, WRITE if writing and fmt == S.S_IFREG else READ)
            fd = _openat2(host, (host_flags & ~os.O_CREAT) | os.O_NOFOLLOW, 0,
                          W.RESOLVE_NO_SYMLINKS if self._contained(node) else 0)
            f = File(fd, flags, node.guest)
        f.node = node
        return f

    def _contained(self, node):
        """Host paths of this node must not meet a symlink on the host (a rename race
        could otherwise lead outside the mount): every component was walked here."""
        base = getattr(node.fs, "base", b"/")
        return base != b"/"

    def _generated(self, gen, flags, node):
        if isinstance(gen, File):
            return gen
        kind = gen[0]
        if kind == "data":
            fd = os.memfd_create("blinkroot-gen", os.MFD_CLOEXEC)
            data = gen[1]
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.lseek(fd, 0, os.SEEK_SET)
            f = File(fd, flags & ~_O_ACCMODE, node.guest)
            f.fake_stat = gen[2]
            return f
        host_dir = gen[3] if len(gen) > 3 else None
        if host_dir is not None:
            fd = os.open(host_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        else:
            fd = os.memfd_create("blinkroot-dir", os.MFD_CLOEXEC)
        f = DirFile(fd, flags, node.guest, gen[1], gen[2])
        return f

    # -- mount-table changes (syscalls/mounts.py) ------------------------------------------
    def mounts(self):
        return self.refresh().mounts


def _never(rel):
    return False
