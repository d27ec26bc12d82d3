"""procfs, generated from the session's processes (session.py), never the host's others.

Contents are made when a file is opened (a host memfd holding fresh bytes, so read,
lseek, fstat and mmap are the host's own) and directories list generated entries.

Where the facts come from:
- the calling process (self): its own Process object (fds, memory map, cwd, exe);
- other session processes: the small file each one writes about itself (session.py);
- host facts of the host process behind a guest process (stat, statm, the memory and
  state lines of status, limits, oom_score_adj, task ids): the host's /proc/PID, with
  the guest's name in place of the host's.  Memory sizes are then those of the host
  process (the emulator and its guest), not of the guest alone: a known difference;
- machine-wide files (meminfo, cpuinfo, stat, uptime, loadavg, version, sys/, net/, and
  config.gz when the host kernel has one) are the host's: they describe the machine,
  not its processes;
- namespaces (/proc/PID/ns/*): the host's own.  A guest process is a host process, in the
  host's pid, net, ipc, uts, user, cgroup and time namespaces (blinkroot makes none), so
  readlink shows the host's ids (``mnt:[4026531841]``), opening one opens the host's nsfs
  file and the NS_GET_* ioctls are the host's (syscalls/files.py).  The mount namespace
  too is the host's id: the session's mount table (vfs/mounts.py) is blinkroot's view
  kept inside it, shared by all the session's processes but not a kernel namespace, so
  a host process outside the session shows the same mnt id with a different table.
"""

import errno
import os
import stat as S
import time
import zlib

from ..errors import Errno
from .files import File
from .fs import (Filesystem, register, READ, PROC_SUPER_MAGIC, Stat, MagicLink, DT_DIR,
                 DT_REG, DT_LNK)

PID_FILES = ("stat", "status", "statm", "cmdline", "environ", "comm", "maps",
             "smaps_rollup", "mounts", "mountinfo", "limits", "oom_score_adj", "wchan")
PID_LINKS = ("exe", "cwd", "root")
PID_DIRS = ("fd", "fdinfo", "task", "ns")
ROOT_HOST_FILES = ("meminfo", "cpuinfo", "stat", "uptime", "loadavg", "version")
ROOT_HOST_OPTIONAL = ("config.gz",)   # the host's, when its kernel has one
ROOT_HOST_DIRS = ("sys", "net")       # host passthrough subtrees
HOST_PROC = b"/proc/"


@register("proc")
class ProcFs(Filesystem):
    magic = PROC_SUPER_MAGIC
    nodev = True

    def __init__(self, spec, session):
        super().__init__(spec, session)
        self.dev = os.makedev(0, spec.get("dev", 0x20))
        self.table = None           # the MountTable (set by the Vfs), for mounts files

    def source(self):
        return "proc"

    # -- what a path names ----------------------------------------------------------------
    def _proc(self):
        return self.session.proc

    def _pid_ok(self, pid):
        return pid == os.getpid() or self.session.facts(pid) is not None

    def _node(self, rel):
        """('dir', pid) | ('pdir', pid, tid) | ('file', fn, pid, tid) | ('link', MagicLink
        or bytes, pid) | ('host', host path) | ('fddir'/'fdinfodir'/'taskdir', pid) ..."""
        parts = rel.split(b"/") if rel else []
        n = len(parts)
        if n == 0:
            return ("root",)
        top = parts[0]
        if top in (b"self", b"thread-self", b"mounts") and n == 1:
            me = os.getpid()
            if top == b"self":
                return ("link", str(me).encode(), me)
            if top == b"mounts":
                return ("link", b"self/mounts", me)
            return ("link", f"{me}/task/{_tid()}".encode(), me)
        if top.decode("latin-1") in ROOT_HOST_FILES and n == 1:
            return ("host", HOST_PROC + top)
        if top.decode("latin-1") in ROOT_HOST_OPTIONAL and n == 1:
            if not os.path.exists(HOST_PROC + top):
                raise Errno(errno.ENOENT)
            return ("host", HOST_PROC + top)
        if top.decode("latin-1") in ROOT_HOST_DIRS:
            return ("host", HOST_PROC + rel)
        if top == b"filesystems" and n == 1:
            return ("file", _filesystems, 0, 0)
        if not top.isdigit():
            raise Errno(errno.ENOENT)
        pid = int(top)
        if not self._pid_ok(pid):
            raise Errno(errno.ENOENT)
        return self._pid_node(pid, pid, parts[1:], True)

    def _pid_node(self, pid, tid, parts, with_task):
        if not parts:
            return ("pdir", pid, tid, with_task)
        name = parts[0].decode("latin-1")
        if len(parts) == 1:
            if name in PID_FILES:
                if name == "oom_score_adj":
                    return ("host", f"/proc/{pid}/oom_score_adj".encode())
                return ("file", getattr(self, "_f_" + name), pid, tid)
            if name in PID_LINKS:
                return ("link", self._pid_link(pid, name), pid)
        if name == "fd" or name == "fdinfo":
            if len(parts) == 1:
                return (name + "dir", pid)
            if len(parts) == 2 and parts[1].isdigit():
                f = self._fd(pid, int(parts[1]))
                if name == "fd":
                    return ("link", self._fd_link(f), pid)
                return ("file", self._f_fdinfo, pid, int(parts[1]))
        if name == "ns":
            if len(parts) == 1:
                return ("nsdir", pid)
            if len(parts) == 2:
                return ("link", self._ns_link(pid, tid, parts[1]), pid)
        if name == "task" and with_task:
            if len(parts) == 1:
                return ("taskdir", pid)
            t = parts[1]
            if t.isdigit() and int(t) in _tids(pid, self._proc()):
                return self._pid_node(pid, int(t), parts[2:], False)
        raise Errno(errno.ENOENT)

    def _ns_link(self, pid, tid, name):
        """A namespace link: the host's, text and object (see the module's doc)."""
        host = b"/proc/%d/task/%d/ns/%s" % (pid, tid, name) if tid != pid \
            else b"/proc/%d/ns/%s" % (pid, name)
        if b"/" in name or name in (b".", b".."):
            raise Errno(errno.ENOENT)
        try:
            text = os.readlink(host)
            fd = os.open(host, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise Errno(errno.ENOENT if e.errno == errno.ENOENT else errno.EACCES)
        return MagicLink(text, file=_NsFile(fd, 0))

    def _fd(self, pid, fd):
        if pid != os.getpid():
            raise Errno(errno.ENOENT)       # other processes' tables are theirs alone
        f = self._proc().fds.files.get(fd)
        if f is None:
            raise Errno(errno.ENOENT)
        return f

    def _fd_link(self, f):
        node = getattr(f, "node", None)
        if node is not None and f.path:
            return MagicLink(node.guest, file=f)
        try:
            text = os.readlink(f"/proc/self/fd/{f.host_fd}").encode()
        except OSError:
            text = b"anon_inode:[unknown]"
        if text.startswith(b"/"):
            text = f.path or self.table_to_guest(text)
        return MagicLink(text, file=f)

    def table_to_guest(self, host):
        return self.session.to_guest(host) if hasattr(self.session, "to_guest") else host

    def _facts(self, pid):
        if pid == os.getpid():
            p = self._proc()
            return {"exe": p.exe, "cwd": p.cwd, "comm": p.comm, "cmdline": list(p.argv),
                    "environ": list(getattr(p, "envp", []))}
        f = self.session.facts(pid)
        if f is None:
            raise Errno(errno.ENOENT)
        return {"exe": os.fsencode(f["exe"]), "cwd": os.fsencode(f["cwd"]),
                "comm": os.fsencode(f["comm"]),
                "cmdline": [os.fsencode(a) for a in f["cmdline"]],
                "environ": [os.fsencode(a) for a in f.get("environ", [])],
                "maps": f.get("maps", "")}

    def _pid_link(self, pid, name):
        facts = self._facts(pid)
        if name == "root":
            return MagicLink(b"/", path=b"/")
        target = facts[name]
        return MagicLink(target, path=target)

    # -- the interface ----------------------------------------------------------------------
    def lstat(self, rel):
        node = self._node(rel)
        kind = node[0]
        if kind == "host":
            return os.lstat(node[1])
        ino = (zlib.crc32(rel) << 8 | 0x2) & 0xFFFFFFFFFFFF if rel else 1
        pid = node[2] if kind == "link" else (node[1] if kind != "root" and kind != "file"
                                              else (node[2] if kind == "file" else 0))
        uid = gid = 0
        t_ns = _boot_ns()
        if pid:
            try:
                hs = os.stat(f"/proc/{pid}")
                uid, gid, t_ns = hs.st_uid, hs.st_gid, hs.st_mtime_ns
            except OSError:
                pass
        if kind == "link":
            return Stat(S.S_IFLNK | 0o777, ino, self.dev, 1, uid, gid, 0, t_ns)
        if kind == "file":
            mode = 0o400 if node[1] in (self._f_environ,) else 0o444
            if node[1] == self._f_comm:
                mode = 0o644
            return Stat(S.S_IFREG | mode, ino, self.dev, 1, uid, gid, 0, t_ns)
        mode = 0o500 if kind in ("fddir", "fdinfodir") else 0o511 if kind == "nsdir" else 0o555
        return Stat(S.S_IFDIR | mode, ino, self.dev, 2, uid, gid, 0, t_ns)

    def readlink(self, rel):
        node = self._node(rel)
        if node[0] == "host":
            return os.readlink(node[1])
        if node[0] != "link":
            raise Errno(errno.EINVAL)
        return node[1]

    def host(self, rel, intent=READ):
        node = self._node(rel)
        if node[0] == "host":
            return node[1]
        raise Errno(errno.EACCES if intent else errno.ENOENT)

    def open(self, rel, flags, proc):
        node = self._node(rel)
        kind = node[0]
        if kind == "host":
            return None
        if kind == "file":
            if flags & 3:
                raise Errno(errno.EACCES)
            fn, pid, tid = node[1], node[2], node[3]
            data = fn(pid, tid)
            return ("data", data, self.lstat(rel))
        if kind == "link":
            raise Errno(errno.ELOOP)
        self.listdir(rel)               # ENOTDIR and friends now; the entries when read
        return ("dir", lambda: self.listdir(rel), self.lstat(rel))

    def listdir(self, rel):
        node = self._node(rel)
        kind = node[0]
        if kind == "host":
            return None
        out = []
        if kind == "root":
            for name in ROOT_HOST_FILES + ("filesystems",):
                out.append((name.encode(), DT_REG))
            for name in ROOT_HOST_OPTIONAL:
                if os.path.exists(HOST_PROC + name.encode()):
                    out.append((name.encode(), DT_REG))
            for name in ROOT_HOST_DIRS:
                out.append((name.encode(), DT_DIR))
            out += [(b"self", DT_LNK), (b"thread-self", DT_LNK), (b"mounts", DT_LNK)]
            out += [(str(p).encode(), DT_DIR) for p in self.session.pids()]
        elif kind == "pdir":
            out += [(n.encode(), DT_REG) for n in PID_FILES]
            out += [(n.encode(), DT_LNK) for n in PID_LINKS]
            out += [(n.encode(), DT_DIR) for n in PID_DIRS if n != "task" or node[3]]
        elif kind in ("fddir", "fdinfodir"):
            if node[1] == os.getpid():
                dt = DT_LNK if kind == "fddir" else DT_REG
                out += [(str(fd).encode(), dt) for fd in sorted(self._proc().fds.files)]
        elif kind == "nsdir":
            try:
                names = sorted(os.listdir(b"/proc/%d/ns" % node[1]))
            except OSError:
                names = []
            out += [(n, DT_LNK) for n in names]
        elif kind == "taskdir":
            out += [(str(t).encode(), DT_DIR) for t in _tids(node[1], self._proc())]
        else:
            raise Errno(errno.ENOTDIR)
        return out

    def statfs(self, rel):
        return (self.magic, 4096, 0, 0, 0, 0, 0, 255)

    # -- generated files --------------------------------------------------------------------
    def _host(self, pid, tid, name):
        path = f"/proc/{pid}/task/{tid}/{name}" if tid and tid != pid else f"/proc/{pid}/{name}"
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError:
            raise Errno(errno.ENOENT)

    def _comm(self, pid):
        return self._facts(pid)["comm"][:15]

    def _f_stat(self, pid, tid):
        data = self._host(pid, tid, "stat")
        i, j = data.index(b"("), data.rindex(b")")
        return data[:i + 1] + self._comm(pid) + data[j:]

    def _f_status(self, pid, tid):
        lines = self._host(pid, tid, "status").split(b"\n")
        for k, line in enumerate(lines):
            if line.startswith(b"Name:"):
                lines[k] = b"Name:\t" + self._comm(pid)
        return b"\n".join(lines)

    def _f_statm(self, pid, tid):
        return self._host(pid, tid, "statm")

    def _f_limits(self, pid, tid):
        return self._host(pid, tid, "limits")

    def _f_wchan(self, pid, tid):
        return b"0"

    def _f_cmdline(self, pid, tid):
        argv = self._facts(pid)["cmdline"]
        return b"".join(a + b"\0" for a in argv)

    def _f_environ(self, pid, tid):
        return b"".join(a + b"\0" for a in self._facts(pid)["environ"])

    def _f_comm(self, pid, tid):
        return self._comm(pid) + b"\n"

    def _f_maps(self, pid, tid):
        if pid != os.getpid():
            return os.fsencode(self._facts(pid).get("maps", ""))
        return maps_text(self._proc())

    def _f_smaps_rollup(self, pid, tid):
        status = self._host(pid, tid, "status")
        rss = 0
        for line in status.split(b"\n"):
            if line.startswith(b"VmRSS:"):
                rss = int(line.split()[1])
        out = "00000000-ffffffffff601000 ---p 00000000 00:00 0                          [rollup]\n"
        for key in ("Rss", "Pss", "Pss_Anon", "Pss_File", "Pss_Shmem", "Shared_Clean",
                    "Shared_Dirty", "Private_Clean", "Private_Dirty", "Referenced",
                    "Anonymous", "LazyFree", "AnonHugePages", "ShmemPmdMapped",
                    "FilePmdMapped", "Shared_Hugetlb", "Private_Hugetlb", "Swap", "SwapPss",
                    "Locked"):
            v = rss if key in ("Rss", "Pss", "Pss_Anon", "Private_Dirty", "Referenced",
                               "Anonymous") else 0
            out += f"{key + ':':<16}{v:>8} kB\n"
        return out.encode()

    def _f_mounts(self, pid, tid):
        return mounts_text(self.table.refresh())

    def _f_mountinfo(self, pid, tid):
        return mountinfo_text(self.table.refresh())

    def _f_fdinfo(self, pid, fd):
        f = self._fd(pid, fd)
        pos = 0
        if f.host_fd >= 0:
            try:
                pos = os.lseek(f.host_fd, 0, os.SEEK_CUR)
            except OSError:
                pos = 0
        node = getattr(f, "node", None)
        mnt = node.mount.id if node is not None and node.st is not None else 0
        flags = f.flags | (0o2000000 if fd in self._proc().fds.cloexec else 0)
        return f"pos:\t{pos}\nflags:\t0{flags:o}\nmnt_id:\t{mnt}\n".encode()


class _NsFile(File):
    """The host nsfs file a namespace link names while a walk follows it; closed when
    the walk is done with it (vfs.open reopens it through /proc/self/fd)."""

    def __del__(self):
        self.release()


def _tid():
    import threading
    return threading.get_native_id()


def _tids(pid, proc=None):
    """Guest thread ids: the caller's own threads; another process's main thread (the
    host's task list also has the emulator's helper threads)."""
    if pid == os.getpid() and proc is not None:
        return sorted(t.tid for t in proc.threads) or [pid]
    return [pid]


def _boot_ns():
    try:
        return os.stat("/proc").st_mtime_ns
    except OSError:
        return time.time_ns()


def _filesystems(pid, tid):
    from .fs import TYPES
    out = []
    for name, cls in sorted(TYPES.items()):
        out.append(("\t" if name == "hostfs" else "nodev\t") + name + "\n")
    return "".join(out).encode()


def _opts(m):
    return ("ro" if m.ro else "rw") + ",relatime"


def mounts_text(table):
    out = []
    for m in table.mounts:
        out.append(f"{m.source()} {_octal(m.point)} {m.fstype} {_opts(m)} 0 0\n")
    return "".join(out).encode()


def mountinfo_text(table):
    out = []
    for m in table.mounts:
        dev = getattr(m.fs, "dev", None)
        if dev is None:
            try:
                dev = os.stat(m.fs.host(m.root)).st_dev
            except (OSError, Errno):
                dev = 0
        root = "/" + os.fsdecode(m.root)
        out.append(f"{m.id} {m.parent or 1} {os.major(dev)}:{os.minor(dev)} {root} "
                   f"{_octal(m.point)} {_opts(m)} - {m.fstype} {m.source()} "
                   f"{'ro' if m.ro else 'rw'}\n")
    return "".join(out).encode()


def _octal(p):
    s = os.fsdecode(p)
    for ch, esc in ((" ", "\\040"), ("\t", "\\011"), ("\n", "\\012"), ("\\", "\\134")):
        s = s.replace(ch, esc)
    return s


def maps_text(proc):
    mem = proc.mem
    if mem is None:
        return b""
    out = []
    for v in getattr(mem, "vmas", []):
        prot = v.prot
        perms = ("r" if prot & 1 else "-") + ("w" if prot & 2 else "-") + \
            ("x" if prot & 4 else "-") + ("s" if v.shared else "p")
        dev = v.dev
        line = f"{v.start:08x}-{v.end:08x} {perms} {v.offset:08x} " \
               f"{os.major(dev):02x}:{os.minor(dev):02x} {v.ino}"
        name = v.name or ""
        if name:
            line = line.ljust(73) + name
        out.append(line + "\n")
    return "".join(out).encode()
