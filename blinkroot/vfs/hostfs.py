"""hostfs: a host directory as a filesystem (the root tree, /SystemRoot, hostfs mounts).

Nodes are host files: st_ino and st_dev are the host's own (stable for the life of the
mount, and (st_dev, st_ino) pairs stay unique when one hostfs mount spans several host
filesystems, which tar, cp -a and du rely on for hard links).  Device nodes inside a root
tree are not the host's devices: a hostfs mount of anything but the host's / is nodev,
and opening a character or block device on it fails with EACCES, as Linux does on a
MS_NODEV mount.  /dev comes from devfs instead.
"""

import os

from .fs import Filesystem, register, READ


@register("hostfs")
class HostFs(Filesystem):
    def __init__(self, spec, session):
        super().__init__(spec, session)
        base = spec["base"].encode() if isinstance(spec["base"], str) else spec["base"]
        self.base = base.rstrip(b"/") or b"/"
        self.prefix = self.base if self.base == b"/" else self.base + b"/"
        self.nodev = self.base != b"/"
        self.walk_prefix = self.prefix

    def source(self):
        return self.spec.get("source") or self.base.decode("utf-8", "surrogateescape")

    def path(self, rel):
        return self.prefix + rel if rel else self.base

    def lstat(self, rel):
        return os.lstat(self.prefix + rel if rel else self.base)

    def readlink(self, rel):
        return os.readlink(self.prefix + rel)

    def host(self, rel, intent=READ):
        return self.prefix + rel if rel else self.base
