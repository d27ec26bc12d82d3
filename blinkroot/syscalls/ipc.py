"""System V IPC (shared memory, semaphores, message queues) and POSIX message queues.

A guest process is a host process, so the IPC objects are the host kernel's own: ids,
keys, permissions, SEM_UNDO on exit, queue contents and limits are all the host's, shared
with every other guest and native process, as on Linux.  The calls go to the host as raw
syscalls (the host's numbers and structs are the guest's: x86-64 Linux hosts only) with
the guest's buffers copied through host memory.  The calls that wait do it in
blocking.host_call; System V ones are never restarted after a handler (Linux's
ERESTARTNOHAND), POSIX queue ones are (ERESTARTSYS).

shmat attaches the segment in the host at the host address of the guest's address (inside
its memory window) and registers the VMA; unmapping it (munmap, shmdt, exec, exit) puts the
window's reservation back, which detaches it on the host.
"""

import ctypes
import errno
import os
import struct

from ..errors import Errno, ERESTARTNOHAND, ERESTARTSYS
from ..memory import PAGE, TASK_SIZE, CHUNK, page_up
from ..cpu.engine import PROT_READ, PROT_WRITE, PROT_EXEC
from ..proc import hostsig
from ..vfs.files import File, O_ACCMODE, O_CLOEXEC
from .blocking import host_call, LIBC
from .identity import host_syscall, HOST_X86_64
from .numbers import NUMBERS
from .table import syscall, s32, s64

IPC_RMID, IPC_SET, IPC_STAT, IPC_INFO = 0, 1, 2, 3
O_NONBLOCK = 0o4000


def _arg(a):
    return a if isinstance(a, ctypes.Array) else ctypes.c_long(a or 0)


def _sys(name, *args):
    """A raw host syscall that does not block (None: a NULL pointer)."""
    return host_syscall(name, *(0 if a is None else a for a in args))


def wait_syscall(t, name, *args, restart=ERESTARTNOHAND):
    """A raw host syscall that may block (through blocking.host_call)."""
    if not HOST_X86_64:
        raise Errno(errno.ENOSYS)
    return host_call(t, LIBC.syscall, ctypes.c_long(NUMBERS[name]), *map(_arg, args),
                     restart=restart)


def _host_limit(path, index=0, default=0):
    """An IPC limit of the host's (its namespace is ours), e.g. kernel/msgmax."""
    try:
        with open(f"/proc/sys/kernel/{path}") as f:
            return int(f.read().split()[index])
    except (OSError, ValueError, IndexError):
        return default


def _ctl(t, name, ident, cmd, buf, sizes, arg_pos=2, extra=()):
    """shmctl/msgctl/semctl: cmd's struct goes in (IPC_SET) or out (*_STAT, *_INFO) raw."""
    size = sizes.get(cmd)
    if size is None:                    # IPC_RMID, SHM_LOCK, unknown: no buffer
        return _sys(name, ident, *extra, cmd, buf)
    hbuf = ctypes.create_string_buffer(size)
    if cmd == IPC_SET:
        hbuf.raw = t.mem.read(buf, size)
    ret = _sys(name, ident, *extra, cmd, hbuf)
    if cmd != IPC_SET:
        t.mem.write(buf, hbuf.raw)
    return ret


# -- shared memory ---------------------------------------------------------------------
SHM_RDONLY, SHM_RND, SHM_REMAP, SHM_EXEC = 0o10000, 0o20000, 0o40000, 0o100000
SHMLBA = PAGE
SHM_STAT, SHM_INFO, SHM_STAT_ANY = 13, 14, 15
SHMID_DS = 112
_SHM_SIZES = {IPC_SET: SHMID_DS, IPC_STAT: SHMID_DS, SHM_STAT: SHMID_DS,
              SHM_STAT_ANY: SHMID_DS, IPC_INFO: 72, SHM_INFO: 48}


@syscall("shmget", "hex size flags")
def shmget(t, key, size, flags):
    return _sys("shmget", key, size, flags)


@syscall("shmctl", "int int ptr")
def shmctl(t, shmid, cmd, buf):
    return _ctl(t, "shmctl", shmid, s32(cmd), buf, _SHM_SIZES)


def _shm_stat(shmid):
    """(key, size) of a segment; fails as shmat would (EINVAL, EIDRM, EACCES: both need
    read permission)."""
    buf = ctypes.create_string_buffer(SHMID_DS)
    _sys("shmctl", shmid, IPC_STAT, buf)
    return struct.unpack_from("<i", buf.raw, 0)[0], struct.unpack_from("<Q", buf.raw, 48)[0]


def _place(mem, length):
    """Linux's top-down placement, within one memory window (the host attaches the
    segment as one range of host memory)."""
    if length > CHUNK:
        raise Errno(errno.ENOMEM)
    top = None
    while True:
        start = mem.find_free(length, top=top)
        if mem.one_window(start, length):
            return start
        top = (start + length - 1) & ~(CHUNK - 1)


@syscall("shmat", "int ptr flags")
def shmat(t, shmid, addr, flags):
    mem = t.mem
    shmid = s32(shmid)
    if shmid < 0:
        raise Errno(errno.EINVAL)
    if addr & (SHMLBA - 1):
        if not flags & SHM_RND:
            raise Errno(errno.EINVAL)
        addr &= ~(SHMLBA - 1)
        if not addr and flags & SHM_REMAP:
            raise Errno(errno.EINVAL)
    elif not addr and flags & SHM_REMAP:
        raise Errno(errno.EINVAL)
    key, size = _shm_stat(shmid)
    length = page_up(size)
    prot = PROT_READ | (0 if flags & SHM_RDONLY else PROT_WRITE) | (PROT_EXEC if flags & SHM_EXEC else 0)
    if addr:
        if addr + length > TASK_SIZE:
            raise Errno(errno.EINVAL)
        if not flags & SHM_REMAP and not mem.is_free(addr, addr + length):
            raise Errno(errno.EINVAL)
        if not mem.one_window(addr, length):
            t.kernel.log(f"shmat: {addr:#x}+{length:#x} crosses a 4 GiB memory window: EINVAL")
            raise Errno(errno.EINVAL)
        mem.unmap(addr, length)
    else:
        addr = _place(mem, length)
    host_flags = SHM_REMAP | (flags & (SHM_RDONLY | SHM_EXEC))
    _sys("shmat", shmid, mem.host_window(addr, length), host_flags)
    return mem.map_attached(addr, length, prot, f"/SYSV{key & 0xFFFFFFFF:08x} (deleted)",
                            ino=shmid, maywrite=not flags & SHM_RDONLY)


@syscall("shmdt", "ptr")
def shmdt(t, addr):
    """Unmap the attachment starting at addr, and the rest of the same segment's pages
    that follow it within the segment's size (as Linux's shmdt walks its VMAs)."""
    mem = t.mem
    if addr & (PAGE - 1):
        raise Errno(errno.EINVAL)
    first = next((v for v in list(mem.vmas) if v.end > addr and v.attached
                  and v.start - addr == v.offset), None)
    if first is None:
        raise Errno(errno.EINVAL)
    try:
        size = page_up(_shm_stat(first.ino)[1])
    except (Errno, OSError):
        size = first.end - first.start
    ranges = [(v.start, v.end) for v in mem.vmas
              if v.attached and v.ino == first.ino and v.start >= first.start
              and v.end - addr <= size and v.start - addr == v.offset]
    for lo, hi in ranges:
        mem.unmap(lo, hi - lo)
    return 0


# -- semaphores --------------------------------------------------------------------------
GETALL, SETALL, SEM_STAT, SEM_INFO, SEM_STAT_ANY = 13, 17, 18, 19, 20
SEMID_DS = 104
_SEM_SIZES = {IPC_SET: SEMID_DS, IPC_STAT: SEMID_DS, SEM_STAT: SEMID_DS,
              SEM_STAT_ANY: SEMID_DS, IPC_INFO: 40, SEM_INFO: 40}


@syscall("semget", "hex int flags")
def semget(t, key, nsems, flags):
    return _sys("semget", key, nsems, flags)


@syscall("semctl", "int int int hex")
def semctl(t, semid, semnum, cmd, arg):
    cmd = s32(cmd)
    if cmd in (GETALL, SETALL):
        # An array of unsigned shorts, one per semaphore of the set.
        buf = ctypes.create_string_buffer(SEMID_DS)
        _sys("semctl", semid, 0, IPC_STAT, buf)
        n = 2 * struct.unpack_from("<Q", buf.raw, 80)[0]      # sem_nsems
        arr = ctypes.create_string_buffer(max(n, 1))
        if cmd == SETALL:
            arr.raw = t.mem.read(arg, n).ljust(max(n, 1), b"\0")
        ret = _sys("semctl", semid, semnum, cmd, arr)
        if cmd == GETALL:
            t.mem.write(arg, arr.raw[:n])
        return ret
    # GETVAL, SETVAL (arg is the value), GETPID, GETNCNT, GETZCNT, IPC_RMID need no buffer.
    return _ctl(t, "semctl", semid, cmd, arg, _SEM_SIZES, extra=(semnum,))


def _semop(t, semid, sops, nsops, timeout):
    nsops &= 0xFFFFFFFF
    if not 1 <= nsops <= _host_limit("sem", 2, 500):
        return wait_syscall(t, "semtimedop", semid, None, nsops, None)   # the host's EINVAL/E2BIG
    buf = ctypes.create_string_buffer(t.mem.read(sops, 6 * nsops), 6 * nsops)
    ts = ctypes.create_string_buffer(t.mem.read(timeout, 16), 16) if timeout else None
    return wait_syscall(t, "semtimedop", semid, buf, nsops, ts)


@syscall("semop", "int ptr uint", blocking=True)
def semop(t, semid, sops, nsops):
    return _semop(t, semid, sops, nsops, 0)


@syscall("semtimedop", "int ptr uint ptr", blocking=True)
def semtimedop(t, semid, sops, nsops, timeout):
    return _semop(t, semid, sops, nsops, timeout)


# -- message queues ----------------------------------------------------------------------
MSG_STAT, MSG_INFO, MSG_STAT_ANY = 11, 12, 13
MSQID_DS = 120
_MSG_SIZES = {IPC_SET: MSQID_DS, IPC_STAT: MSQID_DS, MSG_STAT: MSQID_DS,
              MSG_STAT_ANY: MSQID_DS, IPC_INFO: 32, MSG_INFO: 32}


@syscall("msgget", "hex flags")
def msgget(t, key, flags):
    return _sys("msgget", key, flags)


@syscall("msgctl", "int int ptr")
def msgctl(t, msqid, cmd, buf):
    return _ctl(t, "msgctl", msqid, s32(cmd), buf, _MSG_SIZES)


@syscall("msgsnd", "int ptr size flags", blocking=True)
def msgsnd(t, msqid, msgp, msgsz, flags):
    mtype = t.mem.read(msgp, 8)          # Linux reads mtype first
    if s64(msgsz) < 0 or msgsz > _host_limit("msgmax", 0, 8192):
        text = b""                       # the host says EINVAL without reading
    else:
        text = t.mem.read(msgp + 8, msgsz)
    buf = ctypes.create_string_buffer(mtype + text, 8 + len(text))
    return wait_syscall(t, "msgsnd", msqid, buf, msgsz, flags)


@syscall("msgrcv", "int ptr size int flags", blocking=True)
def msgrcv(t, msqid, msgp, msgsz, msgtyp, flags):
    room = msgsz if s64(msgsz) < 0 else min(msgsz, max(_host_limit("msgmax", 0, 8192), 8192))
    buf = ctypes.create_string_buffer(8 + max(0, s64(room)))
    n = wait_syscall(t, "msgrcv", msqid, buf, room, msgtyp, flags)
    t.mem.write(msgp, buf.raw[:8 + n])
    return n


# -- POSIX message queues ----------------------------------------------------------------
MQ_ATTR = 64
SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD = 0, 1, 2
NOTIFY_COOKIE_LEN = 32
_FORWARDED = set(hostsig.FORWARDED)


def _mq_host_fd(t, fd):
    return t.proc.fds.get(s32(fd)).host_fd


def _mq_msgsize(host_fd):
    """The queue's mq_msgsize (EBADF if the descriptor is no queue, as Linux says)."""
    attr = ctypes.create_string_buffer(MQ_ATTR)
    _sys("mq_getsetattr", host_fd, None, attr)
    return struct.unpack_from("<q", attr.raw, 16)[0]


@syscall("mq_open", "str oflags mode ptr")
def mq_open(t, name, oflag, mode, attr):
    hname = ctypes.create_string_buffer(t.mem.read_cstr(name, limit=4095))
    hattr = ctypes.create_string_buffer(t.mem.read(attr, MQ_ATTR), MQ_ATTR) if attr else None
    host = _sys("mq_open", hname, (oflag & 0xFFFFFFFF) | os.O_CLOEXEC, mode, hattr)
    f = File(host, oflag & (O_ACCMODE | O_NONBLOCK), b"/" + hname.value)
    try:
        return t.proc.fds.install(f, cloexec=bool(oflag & O_CLOEXEC))
    except Errno:
        f.release()
        raise


@syscall("mq_unlink", "str")
def mq_unlink(t, name):
    return _sys("mq_unlink", ctypes.create_string_buffer(t.mem.read_cstr(name, 4095)))


def _timeout(t, ptr):
    return ctypes.create_string_buffer(t.mem.read(ptr, 16), 16) if ptr else None


@syscall("mq_timedsend", "fd ptr size uint ptr", blocking=True)
def mq_timedsend(t, mqdes, msg, length, prio, timeout):
    ts = _timeout(t, timeout)
    host_fd = _mq_host_fd(t, mqdes)
    data = b""
    if length <= _mq_msgsize(host_fd):        # else the host says EMSGSIZE unread
        data = t.mem.read(msg, length)
    buf = ctypes.create_string_buffer(data, max(1, len(data)))
    return wait_syscall(t, "mq_timedsend", host_fd, buf, length, prio, ts, restart=ERESTARTSYS)


@syscall("mq_timedreceive", "fd ptr size ptr ptr", blocking=True)
def mq_timedreceive(t, mqdes, msg, length, prio_ptr, timeout):
    ts = _timeout(t, timeout)
    host_fd = _mq_host_fd(t, mqdes)
    buf = ctypes.create_string_buffer(max(1, min(length, _mq_msgsize(host_fd))))
    prio = ctypes.create_string_buffer(4)
    n = wait_syscall(t, "mq_timedreceive", host_fd, buf, length, prio, ts, restart=ERESTARTSYS)
    t.mem.write(msg, buf.raw[:n])
    if prio_ptr:
        t.mem.write(prio_ptr, prio.raw)
    return n


@syscall("mq_notify", "fd ptr", support="partial",
         note="SIGEV_SIGNAL with the signals forwarded from the host (no si_value); "
              "SIGEV_THREAD (netlink); SIGEV_NONE")
def mq_notify(t, mqdes, sevp):
    host_fd = _mq_host_fd(t, mqdes)
    if not sevp:
        return _sys("mq_notify", host_fd, None)
    sev = bytearray(t.mem.read(sevp, 64))
    signo, notify = struct.unpack_from("<ii", sev, 8)
    keep = []
    if notify == SIGEV_SIGNAL and 0 < signo < 65 and signo not in _FORWARDED:
        # The host delivers it to blinkroot, which only forwards the ordinary signals.
        t.kernel.log(f"mq_notify: SIGEV_SIGNAL with signal {signo} is not supported: EINVAL")
        raise Errno(errno.EINVAL)
    if notify == SIGEV_THREAD:
        # sigev_signo is the guest's netlink socket, sigev_value the 32-byte cookie.
        sock = t.proc.fds.get(signo).host_fd
        cookie = ctypes.create_string_buffer(t.mem.read(struct.unpack_from("<Q", sev, 0)[0],
                                                        NOTIFY_COOKIE_LEN), NOTIFY_COOKIE_LEN)
        keep.append(cookie)
        struct.pack_into("<Qi", sev, 0, ctypes.addressof(cookie), sock)
    return _sys("mq_notify", host_fd, ctypes.create_string_buffer(bytes(sev), 64))


@syscall("mq_getsetattr", "fd ptr ptr")
def mq_getsetattr(t, mqdes, new, old):
    f = t.proc.fds.get(s32(mqdes))
    hnew = ctypes.create_string_buffer(t.mem.read(new, MQ_ATTR), MQ_ATTR) if new else None
    hold = ctypes.create_string_buffer(MQ_ATTR)
    _sys("mq_getsetattr", f.host_fd, hnew, hold)
    if new:     # mq_flags' O_NONBLOCK is the description's, as F_GETFL shows
        nb = struct.unpack_from("<q", hnew.raw, 0)[0] & O_NONBLOCK
        f.flags = (f.flags & ~O_NONBLOCK) | nb
    if old:
        t.mem.write(old, hold.raw)
    return 0
