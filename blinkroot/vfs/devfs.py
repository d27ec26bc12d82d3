"""devfs (devtmpfs): the guest's /dev.

A host directory in the session's state directory holds what /dev lists and whatever the
guest creates there (it is shared by every process, like tmpfs), with symlinks fd ->
/proc/self/fd, stdin/stdout/stderr -> /proc/self/fd/{0,1,2} (walked in the guest's
namespace, so they reach procfs), a shm/ directory (tmpfs-like, shared by the session)
and a placeholder for each device below.  The devices themselves are the host's:
null, zero, full, random, urandom, tty, console, ptmx, and pts/ (the host's
/dev/pts, so that ptsname() of a host ptmx names a pts the guest can open).

A device node elsewhere (mknod'd by the guest, or found in a root tree's /dev) is
never opened as the host file it is: one whose number is that of a device above (a tree
made by debootstrap has /dev/null, c 1 3, and debootstrap checks that it can write to
one it makes) opens that device, as devfs's own /dev/null would (`by_number`); any other
fails with EACCES, as on a nodev mount.  The host's nodes themselves are never changed:
chmod, chown and utimes of a device here are EPERM (fchmod/fchown of one too), and
removing one removes only its placeholder.
"""

import errno
import os

from ..errors import Errno
from .fs import register, READ, WRITE, TMPFS_MAGIC, Stat
from .tmpfs import TmpFs

DEVICES = (b"null", b"zero", b"full", b"random", b"urandom", b"tty", b"console", b"ptmx")
# Linux's numbers of DEVICES (Documentation/admin-guide/devices.txt)
NUMBERS = {(1, 3): b"null", (1, 5): b"zero", (1, 7): b"full", (1, 8): b"random",
           (1, 9): b"urandom", (5, 0): b"tty", (5, 1): b"console", (5, 2): b"ptmx"}
LINKS = {b"fd": b"/proc/self/fd", b"stdin": b"/proc/self/fd/0",
         b"stdout": b"/proc/self/fd/1", b"stderr": b"/proc/self/fd/2"}


def by_number(rdev):
    """Host path of the devfs device a character device node of number rdev stands for,
    or None: the only host devices a device node outside devfs may open."""
    name = NUMBERS.get((os.major(rdev), os.minor(rdev)))
    if name is None or not os.path.exists(b"/dev/" + name):
        return None
    return b"/dev/" + name


@register("devtmpfs", "devfs")
class DevFs(TmpFs):
    magic = TMPFS_MAGIC

    def __init__(self, spec, session):
        super().__init__(spec, session)
        if not os.path.exists(self.prefix + b"shm"):
            self._populate()

    @classmethod
    def make_spec(cls, session, source, data):
        return {"dir": session.new_dir("dev"), "source": source or "devtmpfs",
                "sticky": False}

    def _populate(self):
        os.chmod(self.base, 0o755)
        for name in DEVICES:
            if os.path.exists(b"/dev/" + name):
                open(self.prefix + name, "wb").close()
        for name, target in LINKS.items():
            os.symlink(target, self.prefix + name)
        os.mkdir(self.prefix + b"shm")
        os.chmod(self.prefix + b"shm", 0o1777)
        os.mkdir(self.prefix + b"pts")

    def _device(self, rel):
        """Host path of a passed-through device, or None (also once it was removed)."""
        if rel in DEVICES:
            return b"/dev/" + rel if os.path.lexists(self.prefix + rel) else None
        if rel == b"pts" or rel.startswith(b"pts/"):
            return b"/dev/" + rel
        return None

    def device_ok(self, rel):
        return self._device(rel) is not None

    def lstat(self, rel):
        dev = self._device(rel)
        if dev is not None:
            return os.lstat(dev)
        return Stat.of(os.lstat(self.prefix + rel if rel else self.base), self.dev)

    def host(self, rel, intent=READ):
        dev = self._device(rel)
        if dev is not None and intent == WRITE:
            # chmod, chown, utimes: they would change the host's own node (root guest)
            raise Errno(errno.EPERM)
        if dev is not None and intent == READ:
            return dev
        # removing or renaming one touches only this /dev's placeholder
        return self.prefix + rel if rel else self.base

    def destroy(self):
        import shutil
        shutil.rmtree(self.base, ignore_errors=True)
