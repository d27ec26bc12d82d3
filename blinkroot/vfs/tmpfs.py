"""tmpfs: a filesystem whose contents live in a host directory inside the session's state
directory (session.py).

Host files, not Python objects: every process of the session (they are separate host
processes) sees the same contents at once, fork needs nothing, and open files, mmap,
locks and pipes on them are the host kernel's.  The directory goes away with its last
mount (umount) or with the session.  st_dev is the mount's own anonymous device, as
each tmpfs instance has one on Linux; statfs says TMPFS_MAGIC.
"""

import os
import shutil

from .fs import Filesystem, register, READ, TMPFS_MAGIC, Stat, anon_dev


@register("tmpfs")
class TmpFs(Filesystem):
    magic = TMPFS_MAGIC
    nodev = True

    def __init__(self, spec, session):
        super().__init__(spec, session)
        self.base = spec["dir"].encode()
        self.prefix = self.base + b"/"
        self.dev = anon_dev()
        os.makedirs(self.base, mode=0o1777 if spec.get("sticky", True) else 0o755,
                    exist_ok=True)

    @classmethod
    def make_spec(cls, session, source, data):
        spec = {"dir": session.new_dir("tmpfs"), "source": source or "tmpfs"}
        mode = _option(data, "mode")
        if mode is not None:
            os.chmod(spec["dir"], int(mode, 8))
        else:
            os.chmod(spec["dir"], 0o1777)
        return spec

    def lstat(self, rel):
        return Stat.of(os.lstat(self.prefix + rel if rel else self.base), self.dev)

    def fix_stat(self, st):
        return Stat.of(st, self.dev)

    def readlink(self, rel):
        return os.readlink(self.prefix + rel)

    def host(self, rel, intent=READ):
        return self.prefix + rel if rel else self.base

    def statfs(self, rel):
        sv = os.statvfs(self.base)
        return (self.magic, sv.f_bsize, sv.f_blocks, sv.f_bfree, sv.f_bavail, sv.f_files,
                sv.f_ffree, 255)

    def destroy(self):
        shutil.rmtree(self.base, ignore_errors=True)


def _option(data, key):
    for opt in (data or "").split(","):
        k, _, v = opt.partition("=")
        if k == key:
            return v
    return None
