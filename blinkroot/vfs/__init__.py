"""Path resolution from guest paths to host paths, and the guest's file descriptors.

This is the first step of the VFS: one root (the host's /, or `-C ROOT`) walked one
component at a time, with symlinks resolved inside the root and `..` stopping at it.
The mount table, procfs, devfs, tmpfs and overlays build on this one walk (VFS issue).
"""

import errno
import os
import re
import stat

from ..errors import Errno

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_REMOVEDIR = 0x200
AT_SYMLINK_FOLLOW = 0x400
AT_EMPTY_PATH = 0x1000
MAXSYMLINKS = 40
PATH_MAX = 4096


class Vfs:
    def __init__(self, root="/"):
        self.root = os.path.realpath(root).encode() if isinstance(root, str) else root
        if not os.path.isdir(self.root):
            raise Errno(errno.ENOENT, f"root {root!s} is not a directory")
        self.identity = self.root == b"/"

    # -- the walk ------------------------------------------------------------------------
    def walk(self, guest_path, follow=True):
        """Host path for an absolute guest path, resolving symlinks inside the root."""
        parts = [p for p in guest_path.split(b"/") if p and p != b"."]
        done = []               # resolved guest components
        links = 0
        while parts:
            name = parts.pop(0)
            if name == b"..":
                if done:
                    done.pop()
                continue
            host = self.root + b"/" + b"/".join(done + [name]) if self.root != b"/" \
                else b"/" + b"/".join(done + [name])
            try:
                st = os.lstat(host)
            except FileNotFoundError:
                if parts:
                    raise Errno(errno.ENOENT)
                done.append(name)
                break
            except NotADirectoryError:
                raise Errno(errno.ENOTDIR)
            if stat.S_ISLNK(st.st_mode) and (parts or follow):
                links += 1
                if links > MAXSYMLINKS:
                    raise Errno(errno.ELOOP)
                target = os.readlink(host)
                if target.startswith(b"/"):
                    done = []
                parts = [p for p in target.split(b"/") if p and p != b"."] + parts
                continue
            if parts and not stat.S_ISDIR(st.st_mode):
                raise Errno(errno.ENOTDIR)
            done.append(name)
        host = b"/".join([self.root.rstrip(b"/")] + done) or b"/"
        if guest_path.endswith(b"/") and done:
            host += b"/"
        return host

    def to_guest(self, host_path):
        """Guest path of a host path under the root (for getcwd, /proc/self/exe)."""
        if self.identity:
            return host_path
        root = self.root.rstrip(b"/")
        if host_path == root:
            return b"/"
        if host_path.startswith(root + b"/"):
            return host_path[len(root):]
        return host_path

    # -- /proc/self links ------------------------------------------------------------------
    # Until procfs, the links of the caller's own /proc entry that programs rely on (busybox
    # re-executes /proc/self/exe; glibc reads it at start-up) answer with the guest's view:
    # the host's would name blinkroot's interpreter and host paths.
    _MAGIC = re.compile(rb"/proc/(self|thread-self|\d+)(?:/task/\d+)?/(exe|cwd|root|fd/\d+)")

    def magic_link(self, proc, dirfd, path):
        """Target of /proc/self/{exe,cwd,root,fd/N} as the guest sees it, else None."""
        if not path.startswith(b"/proc/"):
            return None
        m = self._MAGIC.fullmatch(path.rstrip(b"/"))
        if m is None or m.group(1) not in (b"self", b"thread-self", str(proc.pid).encode()):
            return None
        what = m.group(2)
        if what == b"exe":
            return proc.exe
        if what == b"cwd":
            return proc.cwd
        if what == b"root":
            return b"/"
        f = proc.fds.files.get(int(what[3:]))
        if f is None:
            raise Errno(errno.ENOENT)
        return f.path or None

    # -- the syscalls' entry point -------------------------------------------------------
    def lookup(self, proc, dirfd, path, follow=True):
        """(host dir_fd or None, host path) for a guest (dirfd, path) pair.

        With the host's / as root, host paths are guest paths and dirfds are host fds,
        so the host kernel resolves them; under -C every path is walked here."""
        if not path:
            raise Errno(errno.ENOENT)
        if len(path) >= PATH_MAX:
            raise Errno(errno.ENAMETOOLONG)
        if follow:
            target = self.magic_link(proc, dirfd, path)
            if target is not None and target.startswith(b"/"):
                return self.lookup(proc, AT_FDCWD, target, follow)
        if self.identity:
            if path.startswith(b"/") or dirfd == AT_FDCWD:
                return None, path
            return proc.fds.get(dirfd).host_fd, path
        if path.startswith(b"/"):
            full = path
        elif dirfd == AT_FDCWD:
            full = proc.cwd.rstrip(b"/") + b"/" + path
        else:
            f = proc.fds.get(dirfd)
            full = f.path.rstrip(b"/") + b"/" + path
        return None, self.walk(full, follow)

    def host_path(self, proc, dirfd, path, follow=True):
        """A single host path (joined with the host dirfd's path when needed)."""
        dir_fd, p = self.lookup(proc, dirfd, path, follow)
        if dir_fd is None or p.startswith(b"/"):
            return p
        return os.readlink(f"/proc/self/fd/{dir_fd}").encode() + b"/" + p
