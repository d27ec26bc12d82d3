"""mount(2) and umount2(2) on the session's mount table (vfs/mounts.py).

The table is the session's, not the process's: a mount or umount by any guest process is
seen by all the others at their next path lookup (vfs/session.py).  Mounting needs the
guest to be root (CAP_SYS_ADMIN), as on Linux; hostfs (a host directory, the source
naming a host path) is therefore a privilege of guest root too.

Filesystem types: proc, tmpfs, devtmpfs (devfs), hostfs, sysfs (the host's /sys,
read-only), overlay (lowerdir=, upperdir= as guest paths); bind mounts (MS_BIND, MS_REC),
read-only remounts (MS_REMOUNT|MS_RDONLY, with or without MS_BIND); propagation changes
(MS_PRIVATE & co) are accepted and change nothing: there is one namespace.
"""

import errno
import os
import stat as S

from ..errors import Errno
from ..vfs import AT_FDCWD
from ..vfs.mounts import MS_RDONLY, MS_REMOUNT, MS_BIND, MS_MOVE, MS_REC
from ..vfs.tmpfs import TmpFs
from ..vfs.devfs import DevFs
from .table import syscall, s32

MS_SILENT = 1 << 15
MS_UNBINDABLE, MS_PRIVATE, MS_SLAVE, MS_SHARED = 1 << 17, 1 << 18, 1 << 19, 1 << 20
MS_MGC_MSK, MS_MGC_VAL = 0xFFFF0000, 0xC0ED0000
MNT_FORCE, MNT_DETACH, MNT_EXPIRE, UMOUNT_NOFOLLOW = 1, 2, 4, 8


def _options(data):
    out = {}
    for opt in data.split(","):
        if opt:
            k, _, v = opt.partition("=")
            out[k] = v
    return out


def _host_dir(t, guest):
    """The host directory behind a guest path (overlay layers)."""
    vfs = t.kernel.vfs
    node = vfs.resolve(t.proc, AT_FDCWD, os.fsencode(guest))
    if not node.exists:
        raise Errno(errno.ENOENT)
    if not S.S_ISDIR(node.st.st_mode):
        raise Errno(errno.ENOTDIR)
    return os.fsdecode(vfs.host_of(node))


def _new_spec(t, fstype, source, data):
    session = t.kernel.vfs.session
    if fstype == "proc":
        return "proc", {}
    if fstype == "tmpfs":
        return "tmpfs", TmpFs.make_spec(session, source, data)
    if fstype in ("devtmpfs", "devfs"):
        return "devtmpfs", DevFs.make_spec(session, source, data)
    if fstype == "hostfs":
        host = os.path.realpath(source or "/")
        if not os.path.isdir(host):
            raise Errno(errno.ENOENT)
        return "hostfs", {"base": host, "source": source or "/"}
    if fstype == "sysfs":
        return "hostfs", {"base": "/sys", "source": "sysfs"}
    if fstype == "overlay":
        opts = _options(data)
        if "lowerdir" not in opts:
            raise Errno(errno.EINVAL)
        lowers = [_host_dir(t, p) for p in opts["lowerdir"].split(":") if p]
        if "upperdir" in opts:
            return "overlay", {"layers": [_host_dir(t, opts["upperdir"])] + lowers,
                               "mode": "overlay", "source": source or "overlay"}
        return "overlay", {"layers": lowers, "mode": "union", "source": source or "overlay"}
    raise Errno(errno.ENODEV)


@syscall("mount", "str path str hex str")
def mount(t, source, target, fstype, flags, data):
    vfs = t.kernel.vfs
    mem = t.mem
    flags &= 0xFFFFFFFF
    if flags & MS_MGC_MSK == MS_MGC_VAL:
        flags &= ~MS_MGC_MSK
    tgt = mem.read_cstr(target)
    if os.geteuid() != 0:
        raise Errno(errno.EPERM)
    node = vfs.resolve(t.proc, AT_FDCWD, tgt)
    if not node.exists:
        raise Errno(errno.ENOENT)
    point = node.guest
    table = vfs.refresh()
    if flags & (MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE) and \
            not flags & (MS_BIND | MS_REMOUNT):
        return 0                        # one namespace: nothing propagates anywhere
    if flags & MS_REMOUNT:
        if table.at.get(point) is None or node.stack[-1][1] is not table.at[point]:
            raise Errno(errno.EINVAL)
        table.remount(point, flags & MS_RDONLY)
        return 0
    if flags & MS_MOVE:
        raise Errno(errno.EINVAL)
    src_path = mem.read_cstr(source) if source else b""
    if flags & MS_BIND:
        src = vfs.resolve(t.proc, AT_FDCWD, src_path)
        if not src.exists or src.file is not None:
            raise Errno(errno.ENOENT)
        if S.S_ISDIR(src.st.st_mode) != S.S_ISDIR(node.st.st_mode):
            raise Errno(errno.ENOTDIR if S.S_ISDIR(src.st.st_mode) else errno.EISDIR)
        m = src.mount
        subs = table.under(src.guest) if flags & MS_REC else []
        table.add(point, m.fstype, m.entry["spec"], root=src.rel, ro=m.ro,
                  source=m.source())
        base = src.guest.rstrip(b"/")
        for sub in subs:
            rest = sub.point[len(base):]
            table.add(point.rstrip(b"/") + rest, sub.fstype, sub.entry["spec"],
                      root=sub.root, ro=sub.ro, source=sub.source())
        return 0
    if not S.S_ISDIR(node.st.st_mode):
        raise Errno(errno.ENOTDIR)
    ftype = mem.read_cstr(fstype).decode("latin-1") if fstype else ""
    data_s = mem.read_cstr(data).decode("utf-8", "surrogateescape") if data else ""
    kind, spec = _new_spec(t, ftype, os.fsdecode(src_path), data_s)
    table.add(point, kind, spec, ro=bool(flags & MS_RDONLY),
              source=os.fsdecode(src_path) or None)
    return 0


@syscall("umount2", "path flags")
def umount2(t, target, flags):
    flags = s32(flags)
    if flags & ~(MNT_FORCE | MNT_DETACH | MNT_EXPIRE | UMOUNT_NOFOLLOW) or \
            (flags & MNT_EXPIRE and flags & (MNT_FORCE | MNT_DETACH)):
        raise Errno(errno.EINVAL)
    vfs = t.kernel.vfs
    tgt = t.mem.read_cstr(target)
    if os.geteuid() != 0:
        raise Errno(errno.EPERM)
    node = vfs.resolve(t.proc, AT_FDCWD, tgt, follow=not flags & UMOUNT_NOFOLLOW)
    if not node.exists:
        raise Errno(errno.ENOENT)
    table = vfs.refresh()
    point = node.guest
    m = table.at.get(point)
    if m is None or node.stack[-1][1] is not m or node.rel != m.root:
        raise Errno(errno.EINVAL)
    table.remove(point, bool(flags & MNT_DETACH))
    return 0
