"""The one interface every filesystem implements, and the registry of filesystem types.

A filesystem instance answers for paths *inside itself*: ``rel`` is a path relative to
the filesystem's own root (b"" is the root, components joined by b"/", never a leading
slash, never "." or "..").  The walk (walk.py) is the only caller that turns guest paths
into (mount, rel) pairs; a filesystem never sees a guest path.

What a filesystem must answer:

- ``lstat(rel)``: a stat result (os.stat_result or Stat) or OSError/Errno;
- ``readlink(rel)``: a symlink's target (bytes), or a ``MagicLink`` (procfs);
- ``host(rel, intent)``: the host path that holds the node, or Errno if it has none.
  ``intent`` is READ, WRITE (the node is modified: overlays copy it up), CREATE (a new
  name is made: overlays make its parent in the upper layer), DELETE (the name goes);
- ``open(rel, flags, proc)``: a File for nodes whose bytes are generated, or None: the
  syscall then opens ``host(rel, ...)`` itself;
- ``listdir(rel)``: entries of a generated directory [(name, d_type, ino)], or None
  when the host directory's own getdents answers;
- ``removed(rel, is_dir)`` / ``created(rel, is_dir)``: after-the-fact hooks (overlay
  whiteouts and opaque directories); default: nothing;
- ``statfs()``: (f_type, bsize, blocks, bfree, bavail, files, ffree, namelen) or None
  for the host's own answer on ``host(rel)``.

Adding a filesystem is one module with one class decorated ``@register("type")``; the
mount table builds instances from (type, spec) where spec is a small JSON-able dict.
"""

import errno
import os
import stat as S

from ..errors import Errno

READ, WRITE, CREATE, DELETE = 0, 1, 2, 3

TYPES = {}              # fstype -> class

PROC_SUPER_MAGIC = 0x9FA0
TMPFS_MAGIC = 0x01021994
OVERLAYFS_SUPER_MAGIC = 0x794C7630

DT_UNKNOWN, DT_FIFO, DT_CHR, DT_DIR, DT_BLK, DT_REG, DT_LNK, DT_SOCK = 0, 1, 2, 4, 6, 8, 10, 12


def register(*names):
    def deco(cls):
        for n in names:
            TYPES[n] = cls
        cls.fstype = names[0]
        return cls
    return deco


def dtype(mode):
    return {S.S_IFDIR: DT_DIR, S.S_IFREG: DT_REG, S.S_IFLNK: DT_LNK, S.S_IFCHR: DT_CHR,
            S.S_IFBLK: DT_BLK, S.S_IFIFO: DT_FIFO, S.S_IFSOCK: DT_SOCK}.get(S.S_IFMT(mode),
                                                                            DT_UNKNOWN)


class Stat:
    """A stat result for nodes without a host inode, or a host one with another st_dev."""
    __slots__ = ("st_mode", "st_ino", "st_dev", "st_nlink", "st_uid", "st_gid", "st_size",
                 "st_atime_ns", "st_mtime_ns", "st_ctime_ns", "st_blksize", "st_blocks",
                 "st_rdev")

    def __init__(self, mode, ino, dev, nlink=1, uid=0, gid=0, size=0, t_ns=0, rdev=0,
                 blksize=1024, blocks=0):
        self.st_mode, self.st_ino, self.st_dev, self.st_nlink = mode, ino, dev, nlink
        self.st_uid, self.st_gid, self.st_size, self.st_rdev = uid, gid, size, rdev
        self.st_atime_ns = self.st_mtime_ns = self.st_ctime_ns = t_ns
        self.st_blksize, self.st_blocks = blksize, blocks

    @classmethod
    def of(cls, st, dev):
        out = cls.__new__(cls)
        for k in cls.__slots__:
            setattr(out, k, getattr(st, k))
        out.st_dev = dev
        return out


class MagicLink:
    """A procfs link that names an object, not a path (/proc/PID/fd/N of a pipe): following
    it yields the open file itself; readlink shows ``text``."""

    def __init__(self, text, file=None, path=None):
        self.text, self.file, self.path = text, file, path


_anon = [0x30]


def anon_dev():
    """A device number for a filesystem without a host device (Linux's 0:N anonymous)."""
    _anon[0] += 1
    return os.makedev(0, _anon[0])


class Filesystem:
    fstype = "?"
    magic = None
    walk_prefix = None      # hostfs: host path prefix; the walk lstats prefix + rel itself
    nodev = False           # device nodes on it are not opened (EACCES, as MS_NODEV)

    def __init__(self, spec, session):
        self.spec = spec
        self.session = session

    def source(self):
        return self.spec.get("source", "none")

    def lstat(self, rel):
        raise NotImplementedError

    def readlink(self, rel):
        raise Errno(errno.EINVAL)

    def host(self, rel, intent=READ):
        raise Errno(errno.EACCES if intent else errno.ENOENT)

    def open(self, rel, flags, proc):
        return None

    def listdir(self, rel):
        return None

    def removed(self, rel, is_dir):
        pass

    def created(self, rel, is_dir):
        pass

    def fix_stat(self, st):
        return st

    def statfs(self, rel):
        return None

    def destroy(self):
        """The last mount of this instance went away."""


def join(rel, name):
    return rel + b"/" + name if rel else name
