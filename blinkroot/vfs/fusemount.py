"""`blinkroot mount`: a session's file system, as its guest processes see it, mounted on
the host through FUSE (mfusepy, libfuse3).

Every FUSE operation is the guest system call of the same meaning, made by a stand-in
process of the session (root and cwd /, no descriptors of its own but the files FUSE has
open): lookups are the VFS walk (vfs/walk.py) over the session's mount table, opens are
``Vfs.open``, and the path calls are the syscall handlers themselves (syscalls/fsmeta.py,
syscalls/files.py) called with a small stand-in for guest memory.  So overlays copy up and
leave whiteouts, tmpfs, devfs, bind mounts and read-only mounts behave, and /proc lists
the session's processes, exactly as for a guest.  Device nodes are files here: opening one
that devfs does not pass through is EACCES, as in the guest (never a host device).

Attached to a running session (``--session DIR|PID``), the table is the session's own:
mounts made by its guest processes appear at once, /proc shows its live processes, and
the mount goes away when the session ends.  Without it, a new session is made from
-C/--overlay (or BLINK_PREFIX/BLINK_OVERLAYS) as ``blinkroot PROGRAM`` would make it,
and lives as long as the mount.

mfusepy is imported here only: blinkroot itself runs where libfuse is missing.
"""

import errno
import os
import signal
import struct
import sys
import threading

from ..errors import Errno
from . import AT_FDCWD, AT_SYMLINK_NOFOLLOW, AT_REMOVEDIR
from .files import FdTable

_O_CREAT, _O_EXCL, _O_DIRECTORY = 0o100, 0o200, 0o200000
_UTIME_NOW, _UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2


class _Mem:
    """Guest memory for the syscall handlers: strings in, answers out, by 'address'."""

    def __init__(self):
        self.cells = {}

    def put(self, data):
        addr = 0x1000 + 0x10 * len(self.cells)
        self.cells[addr] = data
        return addr

    def read_cstr(self, addr, limit=4096):
        return self.cells[addr]

    def read(self, addr, n):
        return self.cells[addr][:n]

    def write(self, addr, data):
        self.cells[addr] = bytes(data)


class _Kernel:
    def __init__(self, vfs):
        self.vfs = vfs

    def log(self, _msg):
        pass


class _Proc:
    """The stand-in process: what the VFS and procfs ask of a guest process."""

    def __init__(self, kernel):
        self.kernel = kernel
        self.fds = FdTable()
        self.pid = os.getpid()
        self.cwd = b"/"
        self.cwd_stack = None
        self.exe = b""
        self.argv = [b"blinkroot-mount"]
        self.envp = []
        self.comm = b"blinkroot-mount"
        self.threads = []
        self.mem = None
        self.umask = 0


class _Thread:
    def __init__(self, proc):
        self.proc = proc
        self.kernel = proc.kernel
        self.mem = _Mem()


def _b(path):
    return os.fsencode(path)


def _attrs(st):
    return {"st_mode": st.st_mode, "st_ino": st.st_ino, "st_dev": st.st_dev,
            "st_nlink": st.st_nlink, "st_uid": st.st_uid, "st_gid": st.st_gid,
            "st_size": st.st_size, "st_rdev": st.st_rdev,
            "st_blksize": getattr(st, "st_blksize", 4096),
            "st_blocks": getattr(st, "st_blocks", 0),
            "st_atime": st.st_atime_ns, "st_mtime": st.st_mtime_ns,
            "st_ctime": st.st_ctime_ns}


def _times(times):
    """FUSE's (atime, mtime) in ns back to timespecs (UTIME_NOW/OMIT kept)."""
    if times is None:
        return None
    out = []
    for ns in times:
        sec, nsec = divmod(int(ns), 1_000_000_000)
        for special in (_UTIME_NOW, _UTIME_OMIT):   # libfuse sets only tv_nsec for them
            if nsec == special % 1_000_000_000 and sec <= 1:
                sec, nsec = 0, special
        out.append((sec, nsec))
    return out


def make_operations(vfs):
    """The mfusepy Operations over vfs (imported lazily: mfusepy needs libfuse)."""
    import mfusepy as fuse
    from ..syscalls import files as F, fsmeta as M

    kernel = _Kernel(vfs)
    proc = _Proc(kernel)
    vfs.session.proc = proc

    def guest(fn):
        """A FUSE operation as a guest syscall: Errno and host OSErrors become -errno."""
        def run(self, *args):
            self.t.mem = _Mem()
            try:
                return fn(self, *args)
            except Errno as e:
                raise fuse.FuseOSError(e.errno)
            except OSError as e:
                if e.errno is None:
                    raise
                raise fuse.FuseOSError(e.errno)
        run.__name__ = fn.__name__
        return run

    class Operations(fuse.Operations):
        use_ns = True

        def __init__(self):
            self.t = _Thread(proc)
            self.ready = None       # called once the kernel has the mount (init)
            self.mounted = False

        def init(self, path):
            self.mounted = True
            if self.ready is not None:
                self.ready()

        def _p(self, path):
            return self.t.mem.put(_b(path))

        def _file(self, fi):
            return proc.fds.get(fi.fh)

        @guest
        def getattr(self, path, fi=None):
            if path is None and fi is not None:
                return _attrs(M.fstat_file(self._file(fi)))
            return _attrs(M._stat_at(self.t, AT_FDCWD, _b(path), AT_SYMLINK_NOFOLLOW))

        @guest
        def readlink(self, path):
            buf = self.t.mem.put(b"")
            n = M.readlinkat(self.t, AT_FDCWD, self._p(path), buf, 4096)
            return os.fsdecode(self.t.mem.read(buf, n))

        @guest
        def readdir(self, path, fh):
            fd = F.do_open(self.t, AT_FDCWD, _b(path), _O_DIRECTORY, 0)
            out = []
            try:
                while True:
                    _, data = M._host_dents(self.t, fd, 65536)
                    if not data:
                        break
                    pos = 0
                    while pos < len(data):
                        ino, _off, reclen, dt = struct.unpack_from("<QqHB", data, pos)
                        name = data[pos + 19:pos + reclen].split(b"\0", 1)[0]
                        out.append((os.fsdecode(name), {"st_mode": dt << 12, "st_ino": ino}, 0))
                        pos += reclen
            finally:
                proc.fds.close(fd)
            return out

        @guest
        def open(self, path, fi):
            fd = F.do_open(self.t, AT_FDCWD, _b(path), fi.flags & ~(_O_CREAT | _O_EXCL), 0)
            self._opened(fd, fi)
            return 0

        @guest
        def create(self, path, mode, fi):
            fd = F.do_open(self.t, AT_FDCWD, _b(path), fi.flags | _O_CREAT, mode)
            self._opened(fd, fi)
            return 0

        def _opened(self, fd, fi):
            fi.fh = fd
            f = proc.fds.get(fd)
            if f.fake_stat is not None:     # generated (procfs): its size is not known
                fi.direct_io = 1            # before it is read: no page cache

        @guest
        def read(self, path, size, offset, fi):
            return os.pread(self._file(fi).host_fd, size, offset)

        @guest
        def write(self, path, data, offset, fi):
            f = self._file(fi)
            if not f.writable():
                raise Errno(errno.EBADF)
            return os.pwrite(f.host_fd, data, offset)

        @guest
        def truncate(self, path, length, fi=None):
            if fi is not None:
                return F.ftruncate(self.t, fi.fh, length)
            return F.truncate(self.t, self._p(path), length)

        @guest
        def flush(self, path, fi):
            return 0

        @guest
        def fsync(self, path, datasync, fi):
            os.fsync(self._file(fi).host_fd)
            return 0

        @guest
        def release(self, path, fi):
            proc.fds.close(fi.fh)
            return 0

        @guest
        def mkdir(self, path, mode):
            return M.mkdirat(self.t, AT_FDCWD, self._p(path), mode)

        @guest
        def mknod(self, path, mode, dev):
            return M.mknodat(self.t, AT_FDCWD, self._p(path), mode, dev)

        @guest
        def unlink(self, path):
            return M.unlinkat(self.t, AT_FDCWD, self._p(path), 0)

        @guest
        def rmdir(self, path):
            return M.unlinkat(self.t, AT_FDCWD, self._p(path), AT_REMOVEDIR)

        @guest
        def rename(self, old, new):
            return M.renameat2(self.t, AT_FDCWD, self._p(old), AT_FDCWD, self._p(new), 0)

        @guest
        def symlink(self, target, source):
            # mfusepy: `ln -s source target`
            return M.symlinkat(self.t, self._p(source), AT_FDCWD, self._p(target))

        @guest
        def link(self, target, source):
            # mfusepy: `ln source target`
            return M.linkat(self.t, AT_FDCWD, self._p(source), AT_FDCWD, self._p(target), 0)

        @guest
        def chmod(self, path, mode):
            return M.fchmodat2(self.t, AT_FDCWD, self._p(path), mode, 0)

        @guest
        def chown(self, path, uid, gid):
            return M.fchownat(self.t, AT_FDCWD, self._p(path), uid & 0xFFFFFFFF,
                              gid & 0xFFFFFFFF, AT_SYMLINK_NOFOLLOW)

        @guest
        def utimens(self, path, times=None):
            return M._utimens(self.t, AT_FDCWD, _b(path), _times(times), AT_SYMLINK_NOFOLLOW)

        @guest
        def access(self, path, amode):
            return M.faccessat2(self.t, AT_FDCWD, self._p(path), amode, 0)

        @guest
        def statfs(self, path):
            raw = M._statfs_of(self.t, M._node(self.t, AT_FDCWD, _b(path)))
            (_type, bsize, blocks, bfree, bavail, files, ffree, _f0, _f1, namelen, frsize,
             flags) = struct.unpack_from("<qqQQQQQiiqqq", raw)
            return {"f_bsize": bsize, "f_frsize": frsize or bsize, "f_blocks": blocks,
                    "f_bfree": bfree, "f_bavail": bavail, "f_files": files,
                    "f_ffree": ffree, "f_favail": ffree, "f_namemax": namelen,
                    "f_flag": flags}

    return Operations()


def fuse_problem():
    """Why a FUSE mount cannot be made here, or None."""
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is absent"
    try:
        import mfusepy  # noqa: F401
    except ImportError as e:
        return f"mfusepy is not installed ({e})"
    except (OSError, EnvironmentError) as e:
        return f"libfuse3 cannot be loaded ({e})"
    return None


def _watch_owner(session):
    """Attached to a session: unmount (SIGTERM to ourselves: libfuse's handler ends the
    loop and unmounts) when the session's first process is gone."""
    pid = session.owner_pid()
    if pid is None:
        return

    def watch():
        import time
        while True:
            time.sleep(0.5)
            try:
                os.kill(pid, 0)
                if os.path.isdir(session.dir):
                    continue
            except ProcessLookupError:
                pass
            except PermissionError:
                continue
            os.kill(os.getpid(), signal.SIGTERM)
            return
    threading.Thread(target=watch, daemon=True, name="session-watch").start()


def serve(vfs, mountpoint, ready=None, debug=False):
    """Mount and serve until unmounted (fusermount3 -u, Ctrl-C, SIGTERM)."""
    import mfusepy as fuse
    ops = make_operations(vfs)
    ops.ready = ready
    os.umask(0)         # the kernel has applied the caller's umask to modes already
    try:
        fuse.FUSE(ops, mountpoint, raw_fi=True, foreground=True, nothreads=True, debug=debug,
                  fsname="blinkroot", subtype="blinkroot", default_permissions=True,
                  attr_timeout=0, entry_timeout=0, negative_timeout=0, hard_remove=True,
                  use_ino=True)
    except RuntimeError:
        # libfuse3 says 8 ("loop failed") when a signal (Ctrl-C, SIGTERM) ended a loop
        # that had served: that is an unmount, not an error
        if not ops.mounted:
            raise


def mount_main(root=None, overlay=None, session=None, mountpoint=None, foreground=False,
               debug=False):
    """`blinkroot mount`: returns an exit status."""
    problem = fuse_problem()
    if problem:
        sys.stderr.write(f"blinkroot mount: {problem}\n")
        return 1
    mountpoint = os.path.abspath(mountpoint)
    if not os.path.isdir(mountpoint):
        sys.stderr.write(f"blinkroot mount: {mountpoint}: not a directory\n")
        return 1
    if session is not None:
        from .session import find_session
        state = session if os.path.isdir(session) else (
            find_session(int(session)) if session.isdigit() else None)
        if state is None or not os.path.exists(os.path.join(state, "mounts")):
            sys.stderr.write(f"blinkroot mount: no running session {session}\n")
            return 1
    if foreground:
        return _run(root, overlay, session and state, mountpoint, None, debug)
    # background: fork first (the session made here belongs to the process that serves
    # it), and return once the kernel has the mount, or with the child's error
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        os.setsid()

        def ready():
            os.write(wfd, b"ok")
            os.close(wfd)
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.close(null)
        status = 1
        try:
            status = _run(root, overlay, session and state, mountpoint, ready, debug)
        finally:
            os._exit(status)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as r:
        ok = r.read() == b"ok"
    if not ok:
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status) or 1
    return 0


def _run(root, overlay, state, mountpoint, ready, debug):
    from . import Vfs
    from .session import Session
    if state is not None:
        vfs = Vfs.attach(Session.attach(state))
        _watch_owner(vfs.session)
    else:
        from ..run import choose_root

        class _Opts:
            pass
        opts = _Opts()
        opts.root = root
        r, overlays = choose_root(opts)
        try:
            vfs = Vfs(r, overlays=overlays, upper=overlay)
        except Errno as e:
            sys.stderr.write(f"blinkroot mount: {e.args[1]}\n")
            return 1
    try:
        serve(vfs, mountpoint, ready, debug)
    except RuntimeError as e:
        sys.stderr.write(f"blinkroot mount: mounting {mountpoint} failed ({e})\n")
        return 1
    finally:
        vfs.session.close()
    return 0


def umount_main(mountpoint):
    """`blinkroot umount MOUNTPOINT`: fusermount3 -u (umount(8) as root without it)."""
    import shutil
    import subprocess
    tool = shutil.which("fusermount3") or shutil.which("fusermount")
    cmd = [tool, "-u", mountpoint] if tool else ["umount", mountpoint]
    try:
        return subprocess.run(cmd).returncode
    except OSError as e:
        sys.stderr.write(f"blinkroot umount: {e}\n")
        return 1
