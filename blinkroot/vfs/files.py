"""Open files and the guest's descriptor table.

A ``File`` is an open file description (shared by dup'd descriptors and across fork);
most are a host descriptor.  Kinds whose semantics are the kernel's own (epoll sets
holding guest descriptors) subclass it.
"""

import errno
import os
import resource

from ..errors import Errno

O_ACCMODE, O_RDONLY, O_WRONLY, O_RDWR = 3, 0, 1, 2
O_CLOEXEC = 0o2000000


class File:
    def __init__(self, host_fd, flags, path=b""):
        self.host_fd = host_fd
        self.flags = flags & ~O_CLOEXEC     # status flags and access mode (F_GETFL)
        self.path = path                    # guest path, for fd-relative lookups and /proc
        self.refs = 0
        self.node = None                    # the walked node it was opened from (vfs)
        self.fake_stat = None               # fstat's answer for generated files
        self.owner_tid = 0                  # F_SETOWN_EX F_OWNER_TID (syscalls/files.py)

    def readable(self):
        return (self.flags & O_ACCMODE) != O_WRONLY

    def writable(self):
        return (self.flags & O_ACCMODE) != O_RDONLY

    def release(self):
        """The last descriptor referring to this description was closed."""
        if self.host_fd >= 0:
            try:
                os.close(self.host_fd)
            except OSError:
                pass
            self.host_fd = -1


class FdTable:
    def __init__(self):
        self.files = {}         # guest fd -> File
        self.cloexec = set()
        # RLIMIT_NOFILE as the guest sees it: it starts as blinkroot's own soft limit.
        self.limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        self.low = 0            # every fd below this one is open: lowest-free searches start here

    def get(self, fd):
        f = self.files.get(fd) if isinstance(fd, int) else None
        if f is None:
            raise Errno(errno.EBADF)
        return f

    def install(self, file, cloexec=False, lowest=0, at=None):
        if at is None:
            at = max(lowest, self.low)
            while at in self.files:
                at += 1
            if lowest <= self.low:
                self.low = at   # [low, at) were all open
        if at >= self.limit:
            raise Errno(errno.EMFILE)
        if at in self.files:
            self.close(at)
        self.files[at] = file
        file.refs += 1
        if cloexec:
            self.cloexec.add(at)
        else:
            self.cloexec.discard(at)
        return at

    def close(self, fd):
        f = self.files.pop(fd, None)
        if f is None:
            raise Errno(errno.EBADF)
        self.low = min(self.low, fd)
        self.cloexec.discard(fd)
        f.refs -= 1
        if f.refs == 0:
            f.release()

    def close_on_exec(self):
        for fd in sorted(self.cloexec):
            self.close(fd)

    def drop_references(self):
        """This table is gone from this host process (a vfork child's, or its parent's
        in the child): descriptions only it held are closed here, the rest stay."""
        for f in self.files.values():
            f.refs -= 1
            if f.refs == 0:
                f.release()
        self.files = {}
        self.cloexec = set()
        self.low = 0

    def close_all(self):
        for fd in list(self.files):
            self.close(fd)


class DirFile(File):
    """An open generated directory (procfs, a merged overlay directory): getdents lists
    ``entries`` [(name, d_type)] after "." and "..", from a position lseek can reset.
    The host descriptor is the upper directory when there is one (fchdir, fstat), else
    an empty memfd standing in for it."""

    def __init__(self, host_fd, flags, path, entries, st):
        super().__init__(host_fd, flags, path)
        self._list = entries            # a list, or a callable made into one when read
        self.entries = None
        self.pos = 0
        self.fake_stat = st

    def dents(self, count):
        import struct
        import zlib
        if self.entries is None or self.pos == 0:     # listed when read, as Linux does
            entries = self._list() if callable(self._list) else self._list
            self.entries = [(b".", 4), (b"..", 4)] + list(entries)
        out = bytearray()
        while self.pos < len(self.entries):
            name, dt = self.entries[self.pos]
            reclen = (19 + len(name) + 1 + 7) & ~7
            if len(out) + reclen > count:
                break
            rec = bytearray(reclen)
            ino = zlib.crc32(self.path + b"/" + name) | 1
            struct.pack_into("<QqHB", rec, 0, ino, self.pos + 1, reclen, dt)
            rec[19:19 + len(name)] = name
            out += rec
            self.pos += 1
        if not out and self.pos < len(self.entries):
            from ..errors import Errno as _E
            raise _E(errno.EINVAL)
        return bytes(out)

    def seek(self, offset, whence):
        if whence == 0 and offset >= 0:
            self.pos = offset
        elif whence == 1 and self.pos + offset >= 0:
            self.pos += offset
        else:
            raise Errno(errno.EINVAL)
        return self.pos
