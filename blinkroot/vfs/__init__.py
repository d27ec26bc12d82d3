"""Path resolution from guest paths to host paths, and the guest's file descriptors.

This is the first step of the VFS: one root (the host's /, or `-C ROOT`) walked one
component at a time, with symlinks resolved inside the root and `..` stopping at it.
The mount table, procfs, devfs, tmpfs and overlays build on this one walk (VFS issue).
"""

import errno
import os
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

    # -- the syscalls' entry point -------------------------------------------------------
    def lookup(self, proc, dirfd, path, follow=True):
        """(host dir_fd or None, host path) for a guest (dirfd, path) pair.

        With the host's / as root, host paths are guest paths and dirfds are host fds,
        so the host kernel resolves them; under -C every path is walked here."""
        if not path:
            raise Errno(errno.ENOENT)
        if len(path) >= PATH_MAX:
            raise Errno(errno.ENAMETOOLONG)
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
