"""Identity and resources: ids, sessions, uname, rlimits, rusage, sysinfo, scheduling,
prctl, capabilities, getrandom, personality.

One guest process is one host process running as the user who started blinkroot, so ids,
process groups, sessions, scheduling and credentials are the host's own: these calls pass
through and succeed or fail exactly as Linux would for that user.  Guest root is host
root: a guest setuid() changes blinkroot's own credentials, as it would the program's.
Nothing here changes the host machine as a whole (hostname, clock).
"""

import ctypes
import ctypes.util
import errno
import os
import platform
import struct
import sys

from ..errors import Errno
from .numbers import NUMBERS
from .table import syscall, s32

ON_LINUX = sys.platform.startswith("linux")
HOST_X86_64 = ON_LINUX and platform.machine() == "x86_64"

_libc = None


def host_libc():
    """The host C library through ctypes (errno kept), for calls Python does not wrap."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") if not ON_LINUX else None,
                            use_errno=True)
    return _libc


def host_call(fn, *args):
    """Call a libc function; -1 raises the host errno as OSError (translated by table.call)."""
    ret = fn(*args)
    if ret == -1:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return ret


def host_syscall(name, *args):
    """A raw host syscall by the guest's number: only where host numbers are the guest's."""
    if not HOST_X86_64:
        raise Errno(errno.ENOSYS)
    fn = host_libc().syscall
    fn.restype = ctypes.c_long
    return host_call(fn, ctypes.c_long(NUMBERS[name]),
                     *(a if isinstance(a, ctypes.Array) else ctypes.c_long(a) for a in args))


def _id(x):
    """A uid_t/gid_t argument; (uid_t)-1 means "leave unchanged" to the set*id calls."""
    x &= 0xFFFFFFFF
    return -1 if x == 0xFFFFFFFF else x


# -- process, user and group ids -------------------------------------------------------------

@syscall("getpid")
def getpid(t):
    return t.proc.pid


@syscall("getppid")
def getppid(t):
    return os.getppid()


@syscall("gettid")
def gettid(t):
    return t.tid


@syscall("getuid")
def getuid(t):
    return os.getuid()


@syscall("geteuid")
def geteuid(t):
    return os.geteuid()


@syscall("getgid")
def getgid(t):
    return os.getgid()


@syscall("getegid")
def getegid(t):
    return os.getegid()


def _write_ids(t, ptrs, ids):
    for p, v in zip(ptrs, ids):
        t.mem.write_u32(p, v & 0xFFFFFFFF)
    return 0


@syscall("getresuid", "ptr ptr ptr")
def getresuid(t, r, e, s):
    return _write_ids(t, (r, e, s), os.getresuid())


@syscall("getresgid", "ptr ptr ptr")
def getresgid(t, r, e, s):
    return _write_ids(t, (r, e, s), os.getresgid())


@syscall("getgroups", "int ptr")
def getgroups(t, size, ptr):
    size = s32(size)
    groups = os.getgroups()
    if size < 0:
        raise Errno(errno.EINVAL)
    if size == 0:
        return len(groups)
    if size < len(groups):
        raise Errno(errno.EINVAL)
    if groups:
        t.mem.write(ptr, struct.pack(f"<{len(groups)}I", *groups))
    return len(groups)


@syscall("setgroups", "int ptr")
def setgroups(t, size, ptr):
    size = s32(size)
    if size < 0 or size > 65536:
        raise Errno(errno.EINVAL)
    raw = t.mem.read(ptr, 4 * size) if size else b""
    os.setgroups(list(struct.unpack(f"<{size}I", raw)))
    return 0


# Python's os.set*id are glibc's, which apply the change to every host thread (the signal
# watcher included), as a process-wide credential change should be.
@syscall("setuid", "int")
def setuid(t, uid):
    os.setuid(_id(uid))
    return 0


@syscall("setgid", "int")
def setgid(t, gid):
    os.setgid(_id(gid))
    return 0


@syscall("setreuid", "int int")
def setreuid(t, r, e):
    os.setreuid(_id(r), _id(e))
    return 0


@syscall("setregid", "int int")
def setregid(t, r, e):
    os.setregid(_id(r), _id(e))
    return 0


@syscall("setresuid", "int int int")
def setresuid(t, r, e, s):
    os.setresuid(_id(r), _id(e), _id(s))
    return 0


@syscall("setresgid", "int int int")
def setresgid(t, r, e, s):
    os.setresgid(_id(r), _id(e), _id(s))
    return 0


def _setfs(name, value):
    fn = getattr(host_libc(), name, None)
    if fn is None:
        raise Errno(errno.ENOSYS)
    return fn(ctypes.c_uint(value & 0xFFFFFFFF)) & 0xFFFFFFFF   # the old id, never an error


@syscall("setfsuid", "int")
def setfsuid(t, uid):
    return _setfs("setfsuid", uid)


@syscall("setfsgid", "int")
def setfsgid(t, gid):
    return _setfs("setfsgid", gid)


# -- process groups and sessions (the host's: guest pids are host pids) -----------------------

@syscall("getpgid", "pid")
def getpgid(t, pid):
    return os.getpgid(s32(pid))


@syscall("getpgrp")
def getpgrp(t):
    return os.getpgrp()


@syscall("getsid", "pid")
def getsid(t, pid):
    return os.getsid(s32(pid))


@syscall("setpgid", "pid pid")
def setpgid(t, pid, pgid):
    os.setpgid(s32(pid), s32(pgid))
    return 0


@syscall("setsid")
def setsid(t):
    os.setsid()
    return os.getsid(0)     # the new session's id, the caller's pid


# -- uname, hostname ----------------------------------------------------------------------------

FALLBACK_RELEASE = "6.1.0-blinkroot"


def _domainname():
    try:
        with open("/proc/sys/kernel/domainname", "rb") as f:
            return f.read().strip() or b"(none)"
    except OSError:
        return b"(none)"


@syscall("uname", "ptr")
def uname(t, buf):
    u = os.uname()
    release = u.release if ON_LINUX else FALLBACK_RELEASE
    version = u.version if ON_LINUX else "#1 SMP blinkroot"
    fields = [b"Linux", u.nodename.encode(), release.encode(), version.encode(), b"x86_64",
              _domainname()]
    t.mem.write(buf, b"".join(f[:64].ljust(65, b"\0") for f in fields))
    return 0


@syscall("sethostname", "str size", support="partial", note="EPERM: never renames the host")
def sethostname(t, name, length):
    raise Errno(errno.EPERM)


@syscall("setdomainname", "str size", support="partial", note="EPERM: never renames the host")
def setdomainname(t, name, length):
    raise Errno(errno.EPERM)


# -- resource limits ----------------------------------------------------------------------------

RLIM_INFINITY = 2 ** 64 - 1
RLIMIT_CPU, RLIMIT_FSIZE, RLIMIT_DATA, RLIMIT_STACK, RLIMIT_CORE = 0, 1, 2, 3, 4
RLIMIT_NOFILE, RLIMIT_AS = 7, 9
RLIM_NLIMITS = 16
# Limits that describe the guest's own address space and descriptor table: blinkroot keeps
# them (and enforces NOFILE in its fd table) instead of shrinking its own host process.
GUEST_KEPT = (RLIMIT_DATA, RLIMIT_STACK, RLIMIT_NOFILE, RLIMIT_AS)
CAP_SYS_RESOURCE = 24


class _Rlimit(ctypes.Structure):
    _fields_ = [("cur", ctypes.c_uint64), ("max", ctypes.c_uint64)]


def _host_prlimit(pid, res, new=None):
    """The host's limit (old value) for `res`, optionally setting `new` (cur, max) first."""
    old = _Rlimit()
    fn = getattr(host_libc(), "prlimit", None)
    if fn is None:          # non-Linux host: the resource module, own process only
        import resource
        conv = (lambda v: RLIM_INFINITY if v == resource.RLIM_INFINITY else v)
        cur, mx = resource.getrlimit(res)
        if new is not None:
            back = (lambda v: resource.RLIM_INFINITY if v == RLIM_INFINITY else v)
            resource.setrlimit(res, (back(new[0]), back(new[1])))
        return conv(cur), conv(mx)
    host_call(fn, ctypes.c_int(pid), ctypes.c_int(res),
              ctypes.byref(_Rlimit(*new)) if new is not None else None, ctypes.byref(old))
    return old.cur, old.max


def has_cap(cap):
    """Whether blinkroot (so the guest) holds capability `cap` in its effective set."""
    return bool(host_caps()[0] >> cap & 1)


def _nr_open():
    try:
        with open("/proc/sys/fs/nr_open") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 1 << 20


HOST_FD_ROOM = 1024      # host descriptors blinkroot may need besides the guest's
OWN_FDS = 32             # those it needs at least (log, session state, wakeup pipes)


def keep_guest_nofile(proc):
    """At start: the guest's RLIMIT_NOFILE is blinkroot's own (kept in proc.rlimits); the
    host process's goes up, so that the guest can open that many descriptors beside the
    ones blinkroot holds itself.  If the host does not let it (no CAP_SYS_RESOURCE, soft
    limit already at the hard one), the guest's soft limit is lowered by OWN_FDS instead:
    programs that open descriptors up to getdtablesize() get EMFILE where they expect."""
    try:
        cur, mx = _host_prlimit(0, RLIMIT_NOFILE)
        make_host_fd_room(cur)
        host_cur = _host_prlimit(0, RLIMIT_NOFILE)[0]
    except OSError:
        return
    if cur != RLIM_INFINITY and host_cur < cur + OWN_FDS:
        cur = max(host_cur - OWN_FDS, 0)
    proc.rlimits.setdefault(RLIMIT_NOFILE, (cur, mx))
    proc.fds.limit = proc.rlimits[RLIMIT_NOFILE][0]


def make_host_fd_room(guest_soft):
    """Best effort: raise the host's soft (and, when allowed, hard) RLIMIT_NOFILE to fit
    guest_soft guest descriptors and blinkroot's own."""
    try:
        want = min(guest_soft + HOST_FD_ROOM, _nr_open())
        cur, mx = _host_prlimit(0, RLIMIT_NOFILE)
        if cur >= want:
            return
        try:
            _host_prlimit(0, RLIMIT_NOFILE, (want, max(mx, want)))
        except OSError:             # no CAP_SYS_RESOURCE: as far as the hard limit goes
            if mx > cur:
                _host_prlimit(0, RLIMIT_NOFILE, (min(mx, want), mx))
    except OSError:
        pass


def do_prlimit(t, pid, res, new):
    """Old (cur, max) of `res` for process `pid`; sets `new` first if given. Linux's rules."""
    if res >= RLIM_NLIMITS:
        raise Errno(errno.EINVAL)
    if new is not None and new[0] > new[1]:
        raise Errno(errno.EINVAL)
    if pid not in (0, t.proc.pid):
        return _host_prlimit(pid, res, new)     # another process: the host decides
    if res not in GUEST_KEPT:
        return _host_prlimit(0, res, new)
    old = t.proc.rlimits.get(res) or _host_prlimit(0, res)
    if new is not None:
        if new[1] > old[1] and not has_cap(CAP_SYS_RESOURCE):
            raise Errno(errno.EPERM)
        if res == RLIMIT_NOFILE:
            if new[1] > _nr_open():
                raise Errno(errno.EPERM)
            t.proc.fds.limit = new[0]
            make_host_fd_room(new[0])
        t.proc.rlimits[res] = new
    return old


@syscall("getrlimit", "int ptr")
def getrlimit(t, res, ptr):
    t.mem.write(ptr, struct.pack("<QQ", *do_prlimit(t, 0, res & 0xFFFFFFFF, None)))
    return 0


@syscall("setrlimit", "int ptr")
def setrlimit(t, res, ptr):
    do_prlimit(t, 0, res & 0xFFFFFFFF, struct.unpack("<QQ", t.mem.read(ptr, 16)))
    return 0


@syscall("prlimit64", "pid int ptr ptr")
def prlimit64(t, pid, res, new_ptr, old_ptr):
    new = struct.unpack("<QQ", t.mem.read(new_ptr, 16)) if new_ptr else None
    old = do_prlimit(t, s32(pid), res & 0xFFFFFFFF, new)
    if old_ptr:
        t.mem.write(old_ptr, struct.pack("<QQ", *old))
    return 0


# -- usage and system information ---------------------------------------------------------------

RUSAGE_SELF, RUSAGE_CHILDREN, RUSAGE_THREAD = 0, -1, 1
RUSAGE_SIZE, SYSINFO_SIZE = 144, 112


def rusage_bytes(who):
    """struct rusage of the host for `who` (the guest's thread is blinkroot's main thread)."""
    buf = ctypes.create_string_buffer(RUSAGE_SIZE)
    if ON_LINUX:
        host_call(host_libc().getrusage, ctypes.c_int(who), buf)
        return buf.raw
    import resource
    r = resource.getrusage(resource.RUSAGE_CHILDREN if who == RUSAGE_CHILDREN else resource.RUSAGE_SELF)

    def tv(x):
        return struct.pack("<qq", int(x), int(round((x - int(x)) * 1e6)))
    return tv(r.ru_utime) + tv(r.ru_stime) + struct.pack("<14q", *(int(v) for v in r[2:16]))


@syscall("getrusage", "int ptr")
def getrusage(t, who, ptr):
    who = s32(who)
    if who not in (RUSAGE_SELF, RUSAGE_CHILDREN, RUSAGE_THREAD):
        raise Errno(errno.EINVAL)
    t.mem.write(ptr, rusage_bytes(who))
    return 0


@syscall("sysinfo", "ptr")
def sysinfo(t, ptr):
    if ON_LINUX:
        buf = ctypes.create_string_buffer(SYSINFO_SIZE)
        host_call(host_libc().sysinfo, buf)
        data = buf.raw
    else:
        import psutil
        import time as host_time
        vm, sw = psutil.virtual_memory(), psutil.swap_memory()
        loads = [int(x * 65536) for x in os.getloadavg()]
        data = struct.pack("<q3Q6QH2xI2QI4x", int(host_time.time() - psutil.boot_time()), *loads,
                           vm.total, vm.available, getattr(vm, "shared", 0),
                           getattr(vm, "buffers", 0), sw.total, sw.free, len(psutil.pids()), 0, 0, 1)
    t.mem.write(ptr, data)
    return 0


# -- scheduling ----------------------------------------------------------------------------------

def _nr_cpu_ids():
    try:
        with open("/sys/devices/system/cpu/possible") as f:
            return int(f.read().strip().split(",")[-1].split("-")[-1]) + 1
    except (OSError, ValueError):
        return os.cpu_count() or 1


@syscall("sched_getaffinity", "pid size ptr")
def sched_getaffinity(t, pid, size, ptr):
    if HOST_X86_64:     # the host kernel's own answer, size rules included
        buf = ctypes.create_string_buffer(min(size, 1 << 16))
        n = host_syscall("sched_getaffinity", s32(pid), len(buf), buf)
        t.mem.write(ptr, buf.raw[:n])
        return n
    ncpu = _nr_cpu_ids()
    if size * 8 < ncpu or size & 7:
        raise Errno(errno.EINVAL)
    n = min(size, (ncpu + 63) // 64 * 8)
    mask = sum(1 << c for c in os.sched_getaffinity(s32(pid)))
    t.mem.write(ptr, mask.to_bytes(n, "little"))
    return n


@syscall("sched_setaffinity", "pid size ptr")
def sched_setaffinity(t, pid, size, ptr):
    raw = t.mem.read(ptr, min(size, 1 << 16))
    if HOST_X86_64:
        return host_syscall("sched_setaffinity", s32(pid), len(raw),
                            ctypes.create_string_buffer(raw, len(raw)))
    mask = int.from_bytes(raw, "little")
    cpus = [i for i in range(mask.bit_length()) if mask >> i & 1]
    os.sched_setaffinity(s32(pid), cpus)
    return 0


@syscall("sched_yield")
def sched_yield(t):
    os.sched_yield()
    return 0


@syscall("sched_getscheduler", "pid")
def sched_getscheduler(t, pid):
    return os.sched_getscheduler(s32(pid))


def _sched_args(pid, param):
    """Linux checks a NULL param and a negative pid (EINVAL) before reading anything."""
    if not param or s32(pid) < 0:
        raise Errno(errno.EINVAL)


@syscall("sched_setscheduler", "pid int ptr")
def sched_setscheduler(t, pid, policy, param):
    _sched_args(pid, param)
    if s32(policy) < 0:
        raise Errno(errno.EINVAL)
    prio = s32(t.mem.read_u32(param))
    os.sched_setscheduler(s32(pid), s32(policy), os.sched_param(prio))
    return 0


@syscall("sched_getparam", "pid ptr")
def sched_getparam(t, pid, param):
    _sched_args(pid, param)
    p = os.sched_getparam(s32(pid))
    t.mem.write_u32(param, p.sched_priority & 0xFFFFFFFF)
    return 0


@syscall("sched_setparam", "pid ptr")
def sched_setparam(t, pid, param):
    _sched_args(pid, param)
    os.sched_setparam(s32(pid), os.sched_param(s32(t.mem.read_u32(param))))
    return 0


@syscall("sched_get_priority_max", "int")
def sched_get_priority_max(t, policy):
    return os.sched_get_priority_max(s32(policy))


@syscall("sched_get_priority_min", "int")
def sched_get_priority_min(t, policy):
    return os.sched_get_priority_min(s32(policy))


@syscall("getpriority", "int int")
def getpriority(t, which, who):
    # The raw syscall answers 20 - nice (1..40) so that no success looks like an error.
    return 20 - os.getpriority(s32(which), s32(who))


@syscall("setpriority", "int int int")
def setpriority(t, which, who, prio):
    os.setpriority(s32(which), s32(who), s32(prio))
    return 0


@syscall("getcpu", "ptr ptr ptr")
def getcpu(t, cpu_ptr, node_ptr, cache):
    cpu, node = ctypes.c_uint(0), ctypes.c_uint(0)
    libc = host_libc()
    if hasattr(libc, "getcpu"):
        host_call(libc.getcpu, ctypes.byref(cpu), ctypes.byref(node))
    elif hasattr(libc, "sched_getcpu"):
        cpu.value = max(libc.sched_getcpu(), 0)
    if cpu_ptr:
        t.mem.write_u32(cpu_ptr, cpu.value)
    if node_ptr:
        t.mem.write_u32(node_ptr, node.value)
    return 0


@syscall("ioprio_get", "int int")
def ioprio_get(t, which, who):
    return host_syscall("ioprio_get", s32(which), s32(who))


@syscall("ioprio_set", "int int int")
def ioprio_set(t, which, who, prio):
    return host_syscall("ioprio_set", s32(which), s32(who), s32(prio))


# -- prctl -------------------------------------------------------------------------------------

PR_SET_PDEATHSIG, PR_GET_PDEATHSIG, PR_GET_DUMPABLE, PR_SET_DUMPABLE = 1, 2, 3, 4
PR_GET_KEEPCAPS, PR_SET_KEEPCAPS = 7, 8
PR_SET_NAME, PR_GET_NAME = 15, 16
PR_GET_SECCOMP, PR_SET_SECCOMP, PR_CAPBSET_READ, PR_CAPBSET_DROP = 21, 22, 23, 24
PR_SET_TIMERSLACK, PR_GET_TIMERSLACK = 29, 30
PR_SET_MM, PR_SET_CHILD_SUBREAPER, PR_GET_CHILD_SUBREAPER = 35, 36, 37
PR_SET_NO_NEW_PRIVS, PR_GET_NO_NEW_PRIVS, PR_GET_TID_ADDRESS = 38, 39, 40
PR_SET_THP_DISABLE, PR_GET_THP_DISABLE, PR_CAP_AMBIENT = 41, 42, 47
PR_SET_VMA = 0x53564D41
# Options whose state lives in blinkroot's host process and means the same there: the
# host's prctl answers (keepcaps, bounding and ambient sets, timer slack of the one thread,
# child subreaper: the guest's children are blinkroot's host children).
_HOST_PRCTL = (PR_GET_KEEPCAPS, PR_SET_KEEPCAPS, PR_CAPBSET_DROP, PR_SET_TIMERSLACK,
               PR_GET_TIMERSLACK, PR_SET_CHILD_SUBREAPER, PR_CAP_AMBIENT, PR_SET_THP_DISABLE,
               PR_GET_THP_DISABLE)


def _host_prctl(option, *args):
    fn = host_libc().prctl
    fn.restype = ctypes.c_int
    return host_call(fn, ctypes.c_int(option), *(ctypes.c_ulong(a) for a in args))


def _read_name(mem, ptr):
    """Up to 15 bytes of a C string, byte by byte (the name may end just before a hole)."""
    out = b""
    while len(out) < 15:
        c = mem.read(ptr + len(out), 1)
        if c == b"\0":
            break
        out += c
    return out


@syscall("prctl", "int hex hex hex hex", support="partial",
         note="no seccomp, PR_SET_MM or PR_SET_VMA")
def prctl(t, option, a2, a3, a4, a5):
    proc = t.proc
    option = s32(option)
    if option == PR_SET_NAME:
        proc.comm = _read_name(t.mem, a2)
        return 0
    if option == PR_GET_NAME:
        t.mem.write(a2, proc.comm[:15].ljust(16, b"\0"))
        return 0
    if option == PR_SET_PDEATHSIG:
        if a2 > 64:
            raise Errno(errno.EINVAL)
        # Also the host's: blinkroot's parent dying is the guest's parent dying.
        if ON_LINUX:
            _host_prctl(PR_SET_PDEATHSIG, a2)
        proc.pdeathsig = a2
        return 0
    if option == PR_GET_PDEATHSIG:
        t.mem.write_u32(a2, getattr(proc, "pdeathsig", 0))
        return 0
    if option == PR_GET_DUMPABLE:
        return getattr(proc, "dumpable", 1)
    if option == PR_SET_DUMPABLE:
        if a2 not in (0, 1):
            raise Errno(errno.EINVAL)
        proc.dumpable = a2
        return 0
    if option == PR_GET_NO_NEW_PRIVS:
        if a2 or a3 or a4 or a5:
            raise Errno(errno.EINVAL)
        return getattr(proc, "no_new_privs", 0)
    if option == PR_SET_NO_NEW_PRIVS:
        if a2 != 1 or a3 or a4 or a5:
            raise Errno(errno.EINVAL)
        proc.no_new_privs = 1
        return 0
    if option == PR_GET_SECCOMP:
        return 0
    if option == PR_SET_SECCOMP:
        t.kernel.log("prctl(PR_SET_SECCOMP): seccomp filters are not supported: EINVAL")
        raise Errno(errno.EINVAL)
    if option == PR_CAPBSET_READ:
        if a2 > _cap_last_cap():
            raise Errno(errno.EINVAL)
        return host_caps()[3] >> a2 & 1
    if option == PR_GET_CHILD_SUBREAPER:
        v = ctypes.c_int(0)
        host_call(host_libc().prctl, ctypes.c_int(option), ctypes.byref(v),
                  ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))
        t.mem.write_u32(a2, v.value & 0xFFFFFFFF)
        return 0
    if option == PR_GET_TID_ADDRESS:
        t.mem.write_u64(a2, t.clear_child_tid)
        return 0
    if option in _HOST_PRCTL and ON_LINUX:
        return _host_prctl(option, a2, a3, a4, a5)
    if option == PR_SET_MM:
        raise Errno(errno.EPERM)
    raise Errno(errno.EINVAL)


# -- capabilities --------------------------------------------------------------------------------

CAP_V1, CAP_V2, CAP_V3 = 0x19980330, 0x20071026, 0x20080522


def host_caps(pid=0):
    """(effective, permitted, inheritable, bounding) of a host process, from /proc."""
    caps = {}
    try:
        with open(f"/proc/{pid or 'self'}/status") as f:
            for line in f:
                if line.startswith("Cap"):
                    key, _, value = line.partition(":")
                    caps[key] = int(value, 16)
    except FileNotFoundError:
        if pid:
            raise Errno(errno.ESRCH)
    except OSError:
        pass
    return tuple(caps.get(k, 0) for k in ("CapEff", "CapPrm", "CapInh", "CapBnd"))


def _cap_last_cap():
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 40


def _cap_words(t, hdr):
    """Validate the header's version as Linux does: how many 32-bit words of each set."""
    version = t.mem.read_u32(hdr)
    if version == CAP_V1:
        return 1
    if version in (CAP_V2, CAP_V3):
        return 2
    t.mem.write_u32(hdr, CAP_V3)    # tell the caller the preferred version
    return 0


@syscall("capget", "ptr ptr")
def capget(t, hdr, data):
    words = _cap_words(t, hdr)
    if not data:
        return 0    # a version probe: 0 even for an unknown version (just rewritten)
    if not words:
        raise Errno(errno.EINVAL)
    pid = s32(t.mem.read_u32(hdr + 4))
    if pid < 0:
        raise Errno(errno.EINVAL)
    eff, prm, inh, _ = host_caps(0 if pid in (0, t.proc.pid) else pid)
    out = b"".join(struct.pack("<III", eff >> 32 * i & 0xFFFFFFFF, prm >> 32 * i & 0xFFFFFFFF,
                               inh >> 32 * i & 0xFFFFFFFF) for i in range(words))
    t.mem.write(data, out)
    return 0


@syscall("capset", "ptr ptr")
def capset(t, hdr, data):
    words = _cap_words(t, hdr)
    if not words:
        raise Errno(errno.EINVAL)
    pid = s32(t.mem.read_u32(hdr + 4))
    if pid not in (0, t.proc.pid):
        raise Errno(errno.EPERM)
    raw = t.mem.read(data, 12 * words)
    # The host applies it to blinkroot itself: the guest's credentials are blinkroot's.
    h = ctypes.create_string_buffer(struct.pack("<Ii", t.mem.read_u32(hdr), 0), 8)
    d = ctypes.create_string_buffer(raw.ljust(24, b"\0"), 24)
    host_call(host_libc().capset, h, d)
    return 0


# -- randomness, personality, membarrier ------------------------------------------------------------

GRND_NONBLOCK, GRND_RANDOM, GRND_INSECURE = 1, 2, 4
INT_MAX = 2 ** 31 - 1


@syscall("getrandom", "ptr size flags")
def getrandom(t, buf, count, flags):
    if flags & ~(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE) \
            or flags & (GRND_INSECURE | GRND_RANDOM) == GRND_INSECURE | GRND_RANDOM:
        raise Errno(errno.EINVAL)
    count = min(count, INT_MAX)
    done = 0
    while done < count:
        n = min(count - done, 1 << 20)
        t.mem.write(buf + done, os.urandom(n))
        done += n
    return count


PER_QUERY = 0xFFFFFFFF


@syscall("personality", "hex", support="partial",
         note="recorded; ADDR_NO_RANDOMIZE & co do not change blinkroot's layout")
def personality(t, persona):
    old = getattr(t.proc, "personality", 0)
    persona &= 0xFFFFFFFF
    if persona != PER_QUERY:
        t.proc.personality = persona
    return old


MEMBARRIER_CMD_QUERY = 0


@syscall("membarrier", "int flags int", support="partial", note="QUERY answers no commands")
def membarrier(t, cmd, flags, cpu):
    # Reporting no supported command is honest and makes libcs use their fallbacks.
    if s32(cmd) == MEMBARRIER_CMD_QUERY and not flags:
        return 0
    raise Errno(errno.EINVAL)
