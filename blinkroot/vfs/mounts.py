"""The mount table: one per session, shared by all its processes (session.py).

Each entry names where it is mounted (a canonical guest path), which filesystem instance
(type + spec, see fs.py) and which directory of that filesystem is its root (``root``,
a path relative to the filesystem's root: bind mounts of a subdirectory).  Mounts stack:
the last one mounted at a path hides the ones below it.  The walk (walk.py) crosses into
a mount when a component's canonical guest path is a mount point, and leaves it through
``..`` at its root, as Linux does; nothing here translates path strings.
"""

import errno
import json
import os

from ..errors import Errno
from . import fs as F

# The filesystem modules register their types (fs.register) when imported.
from . import hostfs, tmpfs, procfs, devfs, overlay  # noqa: F401

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_MOVE, MS_REC = 32, 4096, 8192, 16384


class Mount:
    __slots__ = ("id", "parent", "point", "fs", "root", "ro", "fstype", "entry")

    def __init__(self, entry, fs):
        self.entry = entry
        self.id = entry["id"]
        self.parent = entry["parent"]
        self.point = os.fsencode(entry["point"])
        self.fs = fs
        self.root = os.fsencode(entry.get("root", ""))
        self.ro = bool(entry.get("ro"))
        self.fstype = entry["type"]

    def source(self):
        return self.entry.get("source") or self.fs.source()


class MountTable:
    def __init__(self, session):
        self.session = session
        self.gen = -1
        self._instances = {}        # (type, spec json) -> Filesystem, kept across reloads
        self.mounts = []
        self.at = {}
        self.names = frozenset()
        self.root = None
        self.refresh()

    def refresh(self):
        """Re-read the table if any process of the session changed it."""
        if self.session.generation() != self.gen:
            self.gen, table = self.session.read_table()
            self._build(table["mounts"])
        return self

    def _build(self, entries):
        mounts, at = [], {}
        for e in entries:
            key = (e["type"], json.dumps(e["spec"], sort_keys=True))
            fs = self._instances.get(key)
            if fs is None:
                fs = self._instances[key] = F.TYPES[e["type"]](e["spec"], self.session)
                fs.table = self
            m = Mount(e, fs)
            mounts.append(m)
            at[m.point] = m             # later mounts hide earlier ones
        self.mounts, self.at = mounts, at
        self.names = frozenset(p.rsplit(b"/", 1)[1] for p in at if p != b"/")
        self.root = at.get(b"/")

    def by_id(self, mid):
        for m in self.mounts:
            if m.id == mid:
                return m
        return None

    # -- changes (every process sees them at its next walk) ------------------------------
    def add(self, point, fstype, spec, root=b"", ro=False, source=None):
        """Mount; returns the new entry.  spec None: a new instance's spec from its class."""
        def change(table):
            cover = [(len(e["point"]), i, e["id"]) for i, e in enumerate(table["mounts"])
                     if _covers(os.fsencode(e["point"]), point)]
            parent = max(cover)[2] if cover else 0
            s = dict(spec)
            if "dev" not in s:
                s["dev"] = table["next_dev"]
                table["next_dev"] += 1
            e = {"id": table["next_id"], "parent": parent, "point": os.fsdecode(point),
                 "type": fstype, "spec": s, "root": os.fsdecode(root), "ro": bool(ro)}
            if source:
                e["source"] = source
            table["next_id"] += 1
            table["mounts"].append(e)
            return e
        e = self.session.update_table(change)
        self.refresh()
        return e

    def remount(self, point, ro):
        def change(table):
            for e in reversed(table["mounts"]):
                if os.fsencode(e["point"]) == point:
                    e["ro"] = bool(ro)
                    return
            raise Errno(errno.EINVAL)
        self.session.update_table(change)
        self.refresh()

    def remove(self, point, detach):
        """umount: the topmost mount at point (and, detached, everything under it)."""
        gone = []

        def change(table):
            ms = table["mounts"]
            idx = max((i for i, e in enumerate(ms) if os.fsencode(e["point"]) == point),
                      default=None)
            if idx is None or point == b"/":
                raise Errno(errno.EINVAL)
            top = ms[idx]
            below = [e for e in ms[idx + 1:] if _covers(point, os.fsencode(e["point"]))
                     and os.fsencode(e["point"]) != point]
            if below and not detach:
                raise Errno(errno.EBUSY)
            for e in [top] + below:
                ms.remove(e)
                gone.append(e)
            still = {(e["type"], json.dumps(e["spec"], sort_keys=True)) for e in ms}
            return [e for e in gone if (e["type"], json.dumps(e["spec"], sort_keys=True))
                    not in still]
        dead = self.session.update_table(change)
        for e in dead:
            key = (e["type"], json.dumps(e["spec"], sort_keys=True))
            fs = self._instances.pop(key, None) or F.TYPES[e["type"]](e["spec"], self.session)
            fs.destroy()
        self.refresh()

    def under(self, point):
        """Mounts strictly below point, in mount order (for MS_REC bind mounts)."""
        return [m for m in self.mounts if m.point != point and _covers(point, m.point)]


def _covers(top, path):
    """Is path at or below the guest path top?  (Mount points are canonical paths.)"""
    return top == b"/" or path == top or path.startswith(top + b"/")
