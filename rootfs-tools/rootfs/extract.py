"""Safe tar extraction into a root tree.

Member paths are taken relative to the tree root: absolute names and names
with `..` are refused. Directories on the way are resolved inside the tree,
as a chroot would: a symlink met on the way (such as Debian's merged-/usr
`bin -> usr/bin`, or an absolute `/usr/lib/...`) is followed relative to the
tree root, and `..` never climbs above the root, so nothing is ever written
outside it, however the archive's symlinks point. Symlink targets themselves
are stored as they are (an absolute target is meant to resolve in the tree).
Modes (with setuid/setgid/sticky bits), symlinks, hard links and mtimes are
kept; owners too when running as root. Device nodes and FIFOs are skipped.
"""

import os
import stat
import tarfile

from .common import Error

MAX_SYMLINKS = 40


class UnsafeArchive(Error):
    pass


def member_parts(name):
    """Split a member name into path components, refusing unsafe names."""
    if "\0" in name:
        raise UnsafeArchive(f"unsafe member name {name!r} (NUL byte)")
    if name.startswith("/"):
        raise UnsafeArchive(f"unsafe member name {name!r} (absolute path)")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchive(f"unsafe member name {name!r} (contains '..')")
    return parts


def resolve_in_tree(root, parts, follow_last, create_dirs=True, what=None):
    """Host path for the tree path `parts` (components), with chroot semantics.

    Intermediate components are followed through symlinks inside the tree
    (missing ones are created as directories when create_dirs, else the
    result is a path that does not exist); the last one
    is followed only if follow_last. The result always lies under root.
    """
    what = what or "/".join(parts)
    pending = list(reversed(parts))
    resolved = []
    hops = 0
    while pending:
        comp = pending.pop()
        if comp in ("", "."):
            continue
        if comp == "..":
            if resolved:
                resolved.pop()
            continue
        last = not pending
        path = os.path.join(root, *resolved, comp)
        if last and not follow_last:
            resolved.append(comp)
            break
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            if last:
                resolved.append(comp)
                break
            if create_dirs:
                os.mkdir(path, 0o755)
            resolved.append(comp)
            continue
        if stat.S_ISLNK(st.st_mode):
            hops += 1
            if hops > MAX_SYMLINKS:
                raise UnsafeArchive(f"{what}: too many levels of symbolic links")
            target = os.readlink(path)
            if target.startswith("/"):
                resolved = []
            pending.extend(reversed([c for c in target.split("/") if c not in ("", ".")]))
            continue
        if not last and not stat.S_ISDIR(st.st_mode):
            raise Error(f"{what}: {'/'.join(resolved + [comp])} is not a directory")
        resolved.append(comp)
    return os.path.join(root, *resolved)


def _clear_for(path, name):
    """Remove a non-directory at path so a member can take its place."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        raise Error(f"{name}: cannot replace a directory with a non-directory")
    os.unlink(path)


class Extractor:
    """Extracts tar streams into one tree; call finish() once at the end."""

    def __init__(self, root):
        self.root = os.path.realpath(root)
        self.dir_meta = {}  # host path -> (mode, mtime, uid, gid), applied in finish()
        self.as_root = hasattr(os, "geteuid") and os.geteuid() == 0
        self.skipped = []
        self.record = None  # a list: the tree paths of the members, as dpkg's .list has them

    def _own(self, path, m):
        if self.as_root:
            try:
                os.lchown(path, m.uid, m.gid)
            except OSError:
                pass

    def extract_tar(self, fileobj, label="archive"):
        """Extract every member of the (uncompressed or gzip) tar stream fileobj."""
        try:
            with tarfile.open(fileobj=fileobj, mode="r|*") as tf:
                for m in tf:
                    self._member(tf, m)
        except tarfile.TarError as e:
            raise Error(f"{label}: bad tar data: {e}") from None
        except EOFError:
            raise Error(f"{label}: truncated tar data") from None

    def _member(self, tf, m):
        parts = member_parts(m.name)
        if self.record is not None:
            self.record.append("/" + "/".join(parts) if parts else "/.")
        if not parts:  # "./" itself
            if m.isdir():
                self.dir_meta.setdefault(self.root, (m.mode, m.mtime, m.uid, m.gid))
            return
        name = "/".join(parts)
        mode = m.mode & 0o7777
        if m.isdir():
            path = resolve_in_tree(self.root, parts, follow_last=True, what=name)
            if not os.path.isdir(path):
                _clear_for(path, name)
                os.mkdir(path, 0o700)
            self.dir_meta[path] = (mode, m.mtime, m.uid, m.gid)
            return
        path = resolve_in_tree(self.root, parts, follow_last=False, what=name)
        if m.isreg():
            _clear_for(path, name)
            src = tf.extractfile(m)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL
                         | getattr(os, "O_NOFOLLOW", 0), 0o600)
            with os.fdopen(fd, "wb") as out:
                while True:
                    block = src.read(1 << 20)
                    if not block:
                        break
                    out.write(block)
            self._own(path, m)
            os.chmod(path, mode)
            os.utime(path, (m.mtime, m.mtime))
        elif m.issym():
            if "\0" in m.linkname or not m.linkname:
                raise UnsafeArchive(f"{name}: bad symlink target {m.linkname!r}")
            _clear_for(path, name)
            os.symlink(m.linkname, path)
            self._own(path, m)
            if os.utime in getattr(os, "supports_follow_symlinks", ()):
                try:
                    os.utime(path, (m.mtime, m.mtime), follow_symlinks=False)
                except OSError:
                    pass
        elif m.islnk():
            src = resolve_in_tree(self.root, member_parts(m.linkname), follow_last=False,
                                  create_dirs=False, what=m.linkname)
            try:
                st = os.lstat(src)
            except FileNotFoundError:
                raise Error(f"{name}: hard link to missing {m.linkname}") from None
            if not stat.S_ISREG(st.st_mode):
                raise UnsafeArchive(f"{name}: hard link to non-regular file {m.linkname}")
            _clear_for(path, name)
            try:
                os.link(src, path, follow_symlinks=False)
            except (OSError, NotImplementedError):
                import shutil
                shutil.copy2(src, path)
        else:  # character/block devices, FIFOs: not needed, often not allowed
            self.skipped.append(name)

    def finish(self):
        """Set directory modes and times, deepest first (as tarfile does)."""
        for path in sorted(self.dir_meta, key=len, reverse=True):
            mode, mtime, uid, gid = self.dir_meta[path]
            if self.as_root:
                try:
                    os.chown(path, uid, gid)
                except OSError:
                    pass
            os.chmod(path, mode)
            os.utime(path, (mtime, mtime))
        self.dir_meta.clear()
