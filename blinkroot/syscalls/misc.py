"""Thread-area and per-thread registrations (arch_prctl, set_tid_address, robust lists,
rseq), and the host's objects behind descriptors and pids: memfd, inotify, pidfd; readahead,
scheduling attributes, process_vm_*, syslog, unshare, seccomp.

Guest processes are host processes and guest descriptors host descriptors, so a memfd,
an inotify instance or a pidfd is the host's own, read and polled like any descriptor.
"""

import ctypes
import errno
import os
import struct

from ..errors import Errno, ERESTARTSYS
from ..proc import signals as S
from ..vfs import AT_FDCWD
from ..vfs.files import File, O_RDONLY, O_RDWR, O_CLOEXEC
from .identity import host_libc, host_call, host_syscall
from .ipc import wait_syscall
from .table import syscall, s32, s64

O_NONBLOCK = 0o4000
IOV_MAX = 1024

ARCH_SET_GS, ARCH_SET_FS, ARCH_GET_FS, ARCH_GET_GS = 0x1001, 0x1002, 0x1003, 0x1004
ARCH_GET_CPUID, ARCH_SET_CPUID = 0x1011, 0x1012


@syscall("arch_prctl", "hex ptr")
def arch_prctl(t, code, addr):
    if code in (ARCH_SET_FS, ARCH_SET_GS):
        if addr >= 0x800000000000:
            raise Errno(errno.EPERM)
        t.vcpu.set_reg("fs_base" if code == ARCH_SET_FS else "gs_base", addr)
        return 0
    if code in (ARCH_GET_FS, ARCH_GET_GS):
        t.mem.write_u64(addr, t.vcpu.get_reg("fs_base" if code == ARCH_GET_FS else "gs_base"))
        return 0
    if code == ARCH_GET_CPUID:
        return 1
    if code == ARCH_SET_CPUID:
        raise Errno(errno.ENODEV)
    raise Errno(errno.EINVAL)


@syscall("sysfs", "int ptr ptr")
def sysfs(t, option, arg1, arg2):
    """The obsolete sysfs(2): the filesystem types, in the order /proc/filesystems lists
    them (1: a name's index, 2: an index's name, 3: how many)."""
    from ..vfs.fs import TYPES
    names = [n.encode() for n in sorted(TYPES)]
    option = s32(option)
    if option == 1:
        name = t.mem.read_cstr(arg1)
        if name not in names:
            raise Errno(errno.EINVAL)
        return names.index(name)
    if option == 2:
        if arg1 >= len(names):
            raise Errno(errno.EINVAL)
        t.mem.write(arg2, names[arg1] + b"\0")
        return 0
    if option == 3:
        return len(names)
    raise Errno(errno.EINVAL)


@syscall("set_tid_address", "ptr")
def set_tid_address(t, addr):
    t.clear_child_tid = addr
    return t.tid


@syscall("set_robust_list", "ptr size")
def set_robust_list(t, head, length):
    if length != 24:
        raise Errno(errno.EINVAL)
    t.robust_list = (head, length)
    return 0


@syscall("get_robust_list", "pid ptr ptr")
def get_robust_list(t, pid, head_ptr, len_ptr):
    if pid and pid != t.tid:
        raise Errno(errno.ESRCH)
    t.mem.write_u64(head_ptr, t.robust_list[0])
    t.mem.write_u64(len_ptr, t.robust_list[1] or 24)
    return 0


@syscall("rseq", "ptr uint flags uint", support="partial", note="ENOSYS: libcs fall back")
def rseq(t, addr, length, flags, sig):
    raise Errno(errno.ENOSYS)


def _install(t, f, cloexec):
    try:
        return t.proc.fds.install(f, cloexec=cloexec)
    except Errno:
        f.release()
        raise


# -- memfd ---------------------------------------------------------------------------
MFD_CLOEXEC, MFD_ALLOW_SEALING, MFD_HUGETLB, MFD_NOEXEC_SEAL, MFD_EXEC = 1, 2, 4, 8, 0x10
MFD_NAME_MAX = 255 - len("memfd:")


@syscall("memfd_create", "str flags", support="partial", note="MFD_HUGETLB: EINVAL")
def memfd_create(t, name, flags):
    if flags & ~(MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL | MFD_EXEC):
        if flags & MFD_HUGETLB:
            # Huge pages cannot be placed at 4 KiB granularity in the guest's windows.
            t.kernel.log("memfd_create: MFD_HUGETLB is not supported: EINVAL")
        raise Errno(errno.EINVAL)
    try:
        label = t.mem.read_cstr(name, limit=MFD_NAME_MAX)
    except Errno as e:
        raise Errno(errno.EINVAL if e.errno == errno.ENAMETOOLONG else e.errno)
    host = os.memfd_create(label, (flags & ~MFD_CLOEXEC) | os.MFD_CLOEXEC)
    # Linux opens memfds O_RDWR | O_LARGEFILE.
    return _install(t, File(host, O_RDWR | 0o100000, b"/memfd:" + label + b" (deleted)"),
                    bool(flags & MFD_CLOEXEC))


# -- inotify -------------------------------------------------------------------------
IN_NONBLOCK, IN_CLOEXEC = O_NONBLOCK, O_CLOEXEC
IN_DONT_FOLLOW, IN_MASK_CREATE, IN_MASK_ADD = 0x02000000, 0x10000000, 0x20000000
IN_ALL_EVENTS = 0xFFF
IN_VALID = IN_ALL_EVENTS | 0x01000000 | IN_DONT_FOLLOW | 0x04000000 | IN_MASK_CREATE \
    | IN_MASK_ADD | 0x80000000           # + IN_ONLYDIR, IN_EXCL_UNLINK, IN_ONESHOT


@syscall("inotify_init1", "flags")
def inotify_init1(t, flags):
    if flags & ~(IN_NONBLOCK | IN_CLOEXEC):
        raise Errno(errno.EINVAL)
    host = host_call(host_libc().inotify_init1, (flags & IN_NONBLOCK) | os.O_CLOEXEC)
    return _install(t, File(host, O_RDONLY | (flags & IN_NONBLOCK), b"anon_inode:inotify"),
                    bool(flags & IN_CLOEXEC))


@syscall("inotify_init")
def inotify_init(t):
    return inotify_init1(t, 0)


def _inotify_fd(t, fd):
    """The host descriptor of an inotify instance (EBADF, or EINVAL for other files)."""
    f = t.proc.fds.get(s32(fd))
    try:
        kind = os.readlink(f"/proc/self/fd/{f.host_fd}")
    except OSError:
        kind = ""
    if f.host_fd < 0 or kind != "anon_inode:inotify":
        raise Errno(errno.EINVAL)
    return f.host_fd


@syscall("inotify_add_watch", "fd path hex")
def inotify_add_watch(t, fd, path, mask):
    mask &= 0xFFFFFFFF
    if not mask & IN_ALL_EVENTS or mask & IN_MASK_ADD and mask & IN_MASK_CREATE:
        raise Errno(errno.EINVAL)
    host_fd = _inotify_fd(t, fd)
    host = t.kernel.vfs.host_path(t.proc, AT_FDCWD, t.mem.read_cstr(path),
                                  follow=not mask & IN_DONT_FOLLOW)
    return host_call(host_libc().inotify_add_watch, host_fd, ctypes.c_char_p(host),
                     ctypes.c_uint32(mask))


@syscall("inotify_rm_watch", "fd int")
def inotify_rm_watch(t, fd, wd):
    return host_call(host_libc().inotify_rm_watch, _inotify_fd(t, fd), s32(wd))


# -- pidfd ---------------------------------------------------------------------------
PIDFD_NONBLOCK = O_NONBLOCK


def _pidfd_pid(t, fd):
    """The pid a guest pidfd refers to (-1 once it has been reaped), EBADF for others."""
    f = t.proc.fds.get(s32(fd))
    try:
        with open(f"/proc/self/fdinfo/{f.host_fd}") as info:
            for line in info:
                if line.startswith("Pid:"):
                    return f.host_fd, int(line.split()[1])
    except (OSError, ValueError):
        pass
    raise Errno(errno.EBADF)


@syscall("pidfd_open", "pid flags")
def pidfd_open(t, pid, flags):
    host = host_syscall("pidfd_open", s32(pid), flags & 0xFFFFFFFF)
    # Like Linux, a pidfd is always close-on-exec.
    return _install(t, File(host, O_RDWR | (flags & PIDFD_NONBLOCK), b"anon_inode:[pidfd]"),
                    True)


@syscall("pidfd_send_signal", "fd sig ptr flags")
def pidfd_send_signal(t, pidfd, sig, info_ptr, flags):
    sig = s32(sig)
    host_fd, pid = _pidfd_pid(t, pidfd)
    raw = t.mem.read(info_ptr, 128) if info_ptr else None
    if pid != t.proc.pid:
        hinfo = ctypes.create_string_buffer(raw, 128) if raw else 0
        return host_syscall("pidfd_send_signal", host_fd, sig, hinfo, flags)
    # Our own process: the host checks the flags and the descriptor, the signal is queued
    # here with its siginfo (the host would deliver only the ordinary signals, without it).
    host_syscall("pidfd_send_signal", host_fd, 0, 0, flags)
    if not 0 <= sig <= S.NSIG:
        raise Errno(errno.EINVAL)
    if raw is not None and struct.unpack_from("<i", raw, 0)[0] != sig:
        raise Errno(errno.EINVAL)
    if sig:
        info = (S.SigInfo(sig, struct.unpack_from("<i", raw, 8)[0], raw=raw) if raw else
                S.SigInfo(sig, S.SI_USER, pid=t.proc.pid, uid=os.getuid()))
        t.queue(info, process_wide=True)
    return 0


@syscall("pidfd_getfd", "fd int flags", support="partial",
         note="the caller's own descriptors; other processes: EPERM")
def pidfd_getfd(t, pidfd, targetfd, flags):
    if flags:
        raise Errno(errno.EINVAL)
    _, pid = _pidfd_pid(t, pidfd)
    if pid < 0:
        raise Errno(errno.ESRCH)
    if pid != t.proc.pid:
        # Another guest's descriptor numbers are its own table's, unknown to us.
        t.kernel.log(f"pidfd_getfd: descriptors of process {pid} are not reachable: EPERM")
        raise Errno(errno.EPERM)
    return t.proc.fds.install(t.proc.fds.get(s32(targetfd)), cloexec=True)


# -- I/O hints, scheduling -----------------------------------------------------------
@syscall("readahead", "fd off size")
def readahead(t, fd, offset, count):
    f = t.proc.fds.get(s32(fd))
    if f.host_fd < 0:
        raise Errno(errno.EINVAL)
    return host_syscall("readahead", f.host_fd, s64(offset), count)


@syscall("sched_rr_get_interval", "pid ptr")
def sched_rr_get_interval(t, pid, tp):
    ts = ctypes.create_string_buffer(16)
    host_syscall("sched_rr_get_interval", s32(pid), ts)
    t.mem.write(tp, ts.raw)
    return 0


SCHED_ATTR_SIZE_VER0 = 48


@syscall("sched_setattr", "pid ptr flags")
def sched_setattr(t, pid, attr, flags):
    if not attr or s32(pid) < 0 or flags:
        raise Errno(errno.EINVAL)       # before reading attr, as Linux
    size = t.mem.read_u32(attr)
    n = SCHED_ATTR_SIZE_VER0 if size == 0 else size if SCHED_ATTR_SIZE_VER0 <= size <= 4096 else 4
    buf = ctypes.create_string_buffer(t.mem.read(attr, n), 4096)
    try:
        return host_syscall("sched_setattr", s32(pid), buf, flags)
    except OSError as e:
        if e.errno == errno.E2BIG:      # Linux writes the size it knows back
            t.mem.write(attr, buf.raw[:4])
        raise


@syscall("sched_getattr", "pid ptr uint flags")
def sched_getattr(t, pid, attr, size, flags):
    buf = ctypes.create_string_buffer(4096)
    host_syscall("sched_getattr", s32(pid), buf if attr else 0, size, flags)
    t.mem.write(attr, buf.raw[:struct.unpack_from("<I", buf.raw, 0)[0]])
    return 0


# -- process_vm_readv / writev -------------------------------------------------------
def _iovecs(t, ptr, n):
    if n > IOV_MAX:
        raise Errno(errno.EINVAL)
    raw = t.mem.read(ptr, 16 * n)
    return [v for v in struct.iter_unpack("<QQ", raw) if v[1]]


def _vm_rw(t, pid, liov, lcnt, riov, rcnt, flags, write):
    if flags:
        raise Errno(errno.EINVAL)
    local, remote = _iovecs(t, liov, lcnt), _iovecs(t, riov, rcnt)
    pid = s32(pid)
    if pid not in [th.tid for th in t.proc.threads]:
        if pid <= 0:
            raise Errno(errno.ESRCH)
        os.kill(pid, 0)                 # ESRCH if there is no such process
        # Another process's guest memory is inside its own blinkroot.
        t.kernel.log(f"process_vm_{'writev' if write else 'readv'}: memory of process "
                     f"{pid} is not reachable: EPERM")
        raise Errno(errno.EPERM)
    mem, done = t.mem, 0
    li = 0
    try:
        for ra, rl in remote:
            off = 0
            while off < rl and li < len(local):
                la, ll = local[li]
                # page by page, as Linux pins the remote pages
                n = min(rl - off, ll, 4096 - ((ra + off) & 4095))
                if write:
                    mem.write(ra + off, mem.read(la, n))
                else:
                    mem.write(la, mem.read(ra + off, n))
                done, off = done + n, off + n
                local[li] = (la + n, ll - n)
                if ll == n:
                    li += 1
    except Errno:
        if not done:
            raise
    return done


@syscall("process_vm_readv", "pid ptr int ptr int flags", support="partial",
         note="the caller's own process; others: EPERM")
def process_vm_readv(t, pid, liov, lcnt, riov, rcnt, flags):
    return _vm_rw(t, pid, liov, lcnt, riov, rcnt, flags, False)


@syscall("process_vm_writev", "pid ptr int ptr int flags", support="partial",
         note="the caller's own process; others: EPERM")
def process_vm_writev(t, pid, liov, lcnt, riov, rcnt, flags):
    return _vm_rw(t, pid, liov, lcnt, riov, rcnt, flags, True)


# -- terminal, kernel log ------------------------------------------------------------
@syscall("vhangup", support="partial", note="EPERM: never hangs up the host's terminal")
def vhangup(t):
    raise Errno(errno.EPERM)


SYSLOG_READ, SYSLOG_READ_ALL, SYSLOG_SIZE_BUFFER = 2, 3, 10
SYSLOG_CHANGES = (4, 5, 6, 7, 8)    # read-clear, clear, console off/on/level


@syscall("syslog", "int ptr int", blocking=True, support="partial",
         note="reads the host's kernel log; clearing it or changing the console: EPERM")
def syslog(t, kind, buf, length):
    kind, length = s32(kind), s32(length)
    if kind in SYSLOG_CHANGES:
        t.kernel.log(f"syslog: action {kind} would change the host's kernel log: EPERM")
        raise Errno(errno.EPERM)
    if kind not in (SYSLOG_READ, SYSLOG_READ_ALL) or not buf or length <= 0:
        return host_syscall("syslog", kind, buf, length)     # sizes, open/close, errors
    room = min(length, max(1, host_syscall("syslog", SYSLOG_SIZE_BUFFER, 0, 0)))
    hbuf = ctypes.create_string_buffer(room)
    n = wait_syscall(t, "syslog", kind, hbuf, room, restart=ERESTARTSYS)
    t.mem.write(buf, hbuf.raw[:n])
    return n


# -- namespaces, seccomp -------------------------------------------------------------
CLONE_NEWTIME, CLONE_VM, CLONE_FS, CLONE_FILES, CLONE_SIGHAND = 0x80, 0x100, 0x200, 0x400, 0x800
CLONE_THREAD, CLONE_NEWNS, CLONE_SYSVSEM = 0x10000, 0x20000, 0x40000
CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC = 0x02000000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
CLONE_NAMESPACES = (CLONE_NEWTIME | CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC
                    | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET)
UNSHARE_KNOWN = (CLONE_NAMESPACES | CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND
                 | CLONE_THREAD | CLONE_SYSVSEM)


@syscall("unshare", "hex", support="partial", note="namespaces: EPERM")
def unshare(t, flags):
    if flags & ~UNSHARE_KNOWN:
        raise Errno(errno.EINVAL)
    threaded = len(t.proc.threads) > 1
    if flags & (CLONE_THREAD | CLONE_SIGHAND | CLONE_VM | CLONE_NEWUSER) and threaded:
        raise Errno(errno.EINVAL)
    if flags & CLONE_NAMESPACES:
        t.kernel.log(f"unshare: namespaces ({flags:#x}) are not supported: EPERM")
        raise Errno(errno.EPERM)
    if flags & (CLONE_FS | CLONE_FILES) and threaded:
        # A guest process's threads share one descriptor table and cwd here.
        t.kernel.log("unshare: CLONE_FS/CLONE_FILES in a threaded process: EPERM")
        raise Errno(errno.EPERM)
    if flags & CLONE_SYSVSEM:
        # Applies the process's SEM_UNDO adjustments now: the host process's own.
        host_call(host_libc().unshare, CLONE_SYSVSEM)
    return 0


SECCOMP_SET_MODE_STRICT, SECCOMP_SET_MODE_FILTER = 0, 1
SECCOMP_GET_ACTION_AVAIL, SECCOMP_GET_NOTIF_SIZES = 2, 3
SECCOMP_ACTIONS = {0x80000000, 0, 0x00030000, 0x00050000, 0x7fc00000, 0x7ff00000,
                   0x7ffc0000, 0x7fff0000}


@syscall("seccomp", "int flags ptr", support="partial",
         note="queries only; installing a mode or filter: EINVAL")
def seccomp(t, op, flags, args):
    if op in (SECCOMP_GET_ACTION_AVAIL, SECCOMP_GET_NOTIF_SIZES):
        if flags:
            raise Errno(errno.EINVAL)
        if op == SECCOMP_GET_NOTIF_SIZES:
            # struct seccomp_notif, seccomp_notif_resp, seccomp_data
            t.mem.write(args, struct.pack("<HHH", 80, 24, 64))
            return 0
        if t.mem.read_u32(args) not in SECCOMP_ACTIONS:
            raise Errno(errno.EOPNOTSUPP)
        return 0
    if op in (SECCOMP_SET_MODE_STRICT, SECCOMP_SET_MODE_FILTER):
        t.kernel.log("seccomp: strict mode and filters are not supported: EINVAL")
    raise Errno(errno.EINVAL)


# -- reboot ----------------------------------------------------------------------------
LINUX_REBOOT_MAGIC1 = 0xFEE1DEAD
LINUX_REBOOT_MAGIC2S = (672274793, 85072278, 369367448, 537993216)
REBOOT_CMD_CAD_ON, REBOOT_CMD_CAD_OFF = 0x89ABCDEF, 0x00000000
REBOOT_CMDS = (0x01234567, 0xCDEF0123, 0x4321FEDC, 0xA1B2C3D4, 0x45584543, 0xD000FCE2)
CAP_SYS_BOOT = 22


@syscall("reboot", "hex hex hex ptr", support="partial",
         note="never the host's: CAD_ON/CAD_OFF are the session's; restart, halt, "
              "power-off, kexec, suspend: EPERM")
def reboot(t, magic1, magic2, cmd, arg):
    """Linux's checks in Linux's order (CAP_SYS_BOOT, then the magic numbers, then the
    command); the commands that would act on the machine fail as for a caller without
    the capability, and Ctrl-Alt-Del's setting is the session's own flag."""
    from .identity import has_cap
    if not has_cap(CAP_SYS_BOOT):
        raise Errno(errno.EPERM)
    if magic1 & 0xFFFFFFFF != LINUX_REBOOT_MAGIC1 \
            or magic2 & 0xFFFFFFFF not in LINUX_REBOOT_MAGIC2S:
        raise Errno(errno.EINVAL)
    cmd &= 0xFFFFFFFF
    if cmd in (REBOOT_CMD_CAD_ON, REBOOT_CMD_CAD_OFF):
        t.kernel.ctrl_alt_del = cmd == REBOOT_CMD_CAD_ON
        return 0
    if cmd in REBOOT_CMDS:
        raise Errno(errno.EPERM)
    raise Errno(errno.EINVAL)


# -- kcmp ------------------------------------------------------------------------------
KCMP_FILE, KCMP_VM, KCMP_FILES, KCMP_FS, KCMP_SIGHAND, KCMP_IO, KCMP_SYSVSEM, \
    KCMP_EPOLL_TFD, KCMP_TYPES = range(9)


@syscall("kcmp", "pid pid int hex hex", support="partial",
         note="the host's over host pids; KCMP_FILE maps the caller's descriptors, and "
              "another process's as if it were the caller's (true of those a fork "
              "inherited); KCMP_EPOLL_TFD: EINVAL (epoll sets are blinkroot's)")
def kcmp(t, pid1, pid2, kind, idx1, idx2):
    """Guest pids are host pids and guest processes host processes, so the host compares
    their kernel objects (memory, fs, files tables, signal handlers, io, semaphore undo)
    and makes the pid and permission checks (ESRCH, EPERM) itself.  Descriptors are
    translated to the host's: the other process's guest descriptor is taken to be the
    same host descriptor as the caller's of that number — so it is after a fork, for the
    descriptors inherited — as blinkroot cannot read another process's table."""
    kind = s32(kind)
    if kind == KCMP_FILE:
        def host_fd(fd):
            f = t.proc.fds.files.get(s32(fd))
            return f.host_fd if f is not None and f.host_fd >= 0 else -1
        idx1, idx2 = host_fd(idx1), host_fd(idx2)
    elif kind == KCMP_EPOLL_TFD or not 0 <= kind < KCMP_TYPES:
        kind = KCMP_TYPES       # the host's own EINVAL, after its ESRCH and EPERM
    return host_syscall("kcmp", s32(pid1), s32(pid2), kind, idx1 & 0xFFFFFFFFFFFFFFFF,
                        idx2 & 0xFFFFFFFFFFFFFFFF)
