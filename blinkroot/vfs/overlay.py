"""overlay: several host directories seen as one.

Two flavours, one class:

- ``mode = "overlay"`` (``--overlay DIR``): Linux overlayfs.  The first layer (upper) is
  writable, the others (lower: the -C tree) are never modified.  A write, truncate,
  chmod, chown, utimes or link of a lower file first copies it up (data, mode, owner,
  times; parent directories first); deleting a name that a lower layer has leaves a
  whiteout; a directory made where a lower one was deleted is opaque (hides the lower
  one's entries); listings merge the layers without duplicates.  Whiteouts and the
  opaque mark are files in the upper directory, ``.wh.NAME`` and ``.wh..wh..opq`` (the
  aufs convention), since Linux's own (0/0 character devices, trusted.* xattrs) need
  privileges; names starting with ``.wh.`` are therefore not available to the guest.
  Renaming a directory that is not wholly in the upper layer says EXDEV, as overlayfs
  without redirect_dir does (mv then copies).
- ``mode = "union"`` (BLINK_OVERLAYS with several entries): blink's overlays.  A path
  is looked up in each layer in turn and the first that has it wins; changes happen in
  the layer that has the file, new names go to the first layer whose directory exists.
"""

import errno
import os
import shutil
import stat as S

from ..errors import Errno
from .fs import Filesystem, register, READ, CREATE, OVERLAYFS_SUPER_MAGIC, \
    dtype, join

WH = b".wh."
OPAQUE = b".wh..wh..opq"


def _split(rel):
    if b"/" in rel:
        return rel.rsplit(b"/", 1)
    return b"", rel


def _lexists(p):
    try:
        os.lstat(p)
        return True
    except OSError:
        return False


@register("overlay")
class OverlayFs(Filesystem):
    magic = OVERLAYFS_SUPER_MAGIC

    def __init__(self, spec, session):
        super().__init__(spec, session)
        self.layers = [os.fsencode(p).rstrip(b"/") or b"/" for p in spec["layers"]]
        self.union = spec.get("mode") == "union"
        self.nodev = b"/" not in self.layers

    def source(self):
        return self.spec.get("source", "overlay")

    def _p(self, i, rel):
        base = self.layers[i]
        if not rel:
            return base
        return (base if base == b"/" else base + b"/") + rel

    # -- lookup -------------------------------------------------------------------------------
    def _dirs(self, rel):
        """Layer indexes whose directory `rel` is part of the merged directory."""
        if not rel:
            return list(range(len(self.layers)))
        if self.union:
            return [i for i in range(len(self.layers)) if os.path.isdir(self._p(i, rel))]
        parent, name = _split(rel)
        out = []
        for i in self._dirs(parent):
            if i == 0 and not self.union and _lexists(self._p(0, join(parent, WH + name))):
                break
            p = self._p(i, rel)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if not S.S_ISDIR(st.st_mode):
                break
            out.append(i)
            if i == 0 and _lexists(p + b"/" + OPAQUE):
                break
        return out

    def _find(self, rel):
        """(layer, host path, lstat) of the visible node, or None."""
        if not rel:
            return 0, self.layers[0], os.lstat(self.layers[0])
        if self.union:
            return self._first(range(len(self.layers)), rel)
        parent, name = _split(rel)
        if name.startswith(WH):
            return None
        dirs = self._dirs(parent)
        if dirs and dirs[0] == 0 and _lexists(self._p(0, join(parent, WH + name))):
            return None                 # whited out in the upper layer
        return self._first(dirs, rel)

    def _first(self, layers, rel):
        """(layer, host path, lstat) in the first of `layers` that has rel, or None."""
        for i in layers:
            p = self._p(i, rel)
            try:
                return i, p, os.lstat(p)
            except OSError:
                continue
        return None

    def lstat(self, rel):
        found = self._find(rel)
        if found is None:
            raise Errno(errno.ENOENT)
        return found[2]

    def readlink(self, rel):
        found = self._find(rel)
        if found is None:
            raise Errno(errno.ENOENT)
        return os.readlink(found[1])

    # -- changes --------------------------------------------------------------------------------
    def _copy_up_dir(self, rel):
        """Make directory rel exist in the upper layer (and its parents), like the lower."""
        up = self._p(0, rel)
        if os.path.isdir(up):
            return up
        parent, _ = _split(rel)
        if rel:
            self._copy_up_dir(parent)
        found = self._find(rel)
        if found is None:
            raise Errno(errno.ENOENT)
        st = found[2]
        os.mkdir(up, S.S_IMODE(st.st_mode))
        _copy_meta(up, st)
        return up

    def _copy_up(self, rel):
        found = self._find(rel)
        if found is None:
            raise Errno(errno.ENOENT)
        i, src, st = found
        if i == 0:
            return src
        parent, _ = _split(rel)
        self._copy_up_dir(parent)
        dst = self._p(0, rel)
        if S.S_ISDIR(st.st_mode):
            return self._copy_up_dir(rel)
        if S.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(src), dst)
        elif S.S_ISREG(st.st_mode):
            tmp = dst + b".blinkroot-copyup"
            shutil.copyfile(src, tmp, follow_symlinks=False)
            os.chmod(tmp, S.S_IMODE(st.st_mode))
            _copy_meta(tmp, st)
            os.rename(tmp, dst)
            return dst
        else:
            os.mknod(dst, st.st_mode, st.st_rdev)
        _copy_meta(dst, st)
        return dst

    def host(self, rel, intent=READ):
        if intent == READ:
            found = self._find(rel)
            if found is None:
                raise Errno(errno.ENOENT)
            return found[1]
        if self.union:
            found = self._find(rel)
            if found is not None:
                return found[1]
            parent, _ = _split(rel)
            dirs = self._dirs(parent)
            if not dirs:
                raise Errno(errno.ENOENT)
            return self._p(dirs[0], rel)
        if intent == CREATE:
            parent, name = _split(rel)
            self._copy_up_dir(parent)
            wh = self._p(0, join(parent, WH + name))
            if _lexists(wh):            # a deleted name made anew: a directory made
                os.unlink(wh)           # here must hide the lower one's entries
                self._opaque_next = rel
                return self._p(0, rel)
            found = self._find(rel)
            if found is not None and found[0] != 0:
                return self._copy_up(rel)
            return self._p(0, rel)
        return self._copy_up(rel)

    def created(self, rel, is_dir):
        if getattr(self, "_opaque_next", None) == rel:
            self._opaque_next = None
            if is_dir:
                open(self._p(0, rel) + b"/" + OPAQUE, "wb").close()

    def _in_lower(self, rel):
        parent, name = _split(rel)
        return any(i > 0 and _lexists(self._p(i, rel)) for i in self._dirs(parent))

    def _whiteout(self, rel):
        parent, name = _split(rel)
        self._copy_up_dir(parent)
        open(self._p(0, join(parent, WH + name)), "wb").close()

    def remove(self, rel, is_dir):
        found = self._find(rel)
        if found is None:
            raise Errno(errno.ENOENT)
        i, p, st = found
        if is_dir and not S.S_ISDIR(st.st_mode):
            raise Errno(errno.ENOTDIR)
        if not is_dir and S.S_ISDIR(st.st_mode):
            raise Errno(errno.EISDIR)
        if self.union:
            (os.rmdir if is_dir else os.unlink)(p)
            return
        if is_dir and self.listdir(rel):
            raise Errno(errno.ENOTEMPTY)
        lower = self._in_lower(rel)
        if i == 0:
            if is_dir:
                for name in os.listdir(p):
                    if name.startswith(WH):
                        os.unlink(p + b"/" + name)
                os.rmdir(p)
            else:
                os.unlink(p)
        if lower:
            self._whiteout(rel)

    def rename(self, old, new):
        found = self._find(old)
        if found is None:
            raise Errno(errno.ENOENT)
        if self.union:
            os.rename(found[1], self.host(new, CREATE))
            return
        if S.S_ISDIR(found[2].st_mode) and (found[0] != 0 or self._in_lower(old)):
            raise Errno(errno.EXDEV)
        src = self._copy_up(old)
        dst = self.host(new, CREATE)
        lower_old = self._in_lower(old)
        os.rename(src, dst)
        if lower_old:
            self._whiteout(old)

    def listdir(self, rel):
        seen, out, hidden = set(), [], set()
        for i in self._dirs(rel):
            try:
                with os.scandir(self._p(i, rel)) as it:
                    for e in it:
                        name = e.name
                        if i == 0 and not self.union and name.startswith(WH):
                            hidden.add(name[len(WH):])
                            continue
                        if name in seen or name in hidden:
                            continue
                        seen.add(name)
                        try:
                            out.append((name, dtype(e.stat(follow_symlinks=False).st_mode)))
                        except OSError:
                            continue
            except OSError:
                continue
        return out

    def open(self, rel, flags, proc):
        found = self._find(rel)
        if found is not None and S.S_ISDIR(found[2].st_mode) and not flags & 3 and \
                len(self._dirs(rel)) > 1:
            return ("dir", self.listdir(rel), found[2], found[1])
        return None


def _copy_meta(path, st):
    try:
        os.chown(path, st.st_uid, st.st_gid, follow_symlinks=False)
    except OSError:
        pass
    try:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
    except OSError:
        pass
