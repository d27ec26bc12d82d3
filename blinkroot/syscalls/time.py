"""Time: clocks, sleeping, interval timers, alarm, POSIX timers, times, adjtimex.

Clocks are the host's (guest clock ids are Linux's, which are the host's on Linux).  The
host clock is never changed: clock_settime/settimeofday/adjtimex with modes fail with
EPERM after Linux's own argument checks.  CPU-time clocks and ITIMER_VIRTUAL/ITIMER_PROF
measure blinkroot's CPU time, that is the CPU spent emulating the guest.

Interval timers and alarm() are the host's own (one guest process is one host process):
the host's SIGALRM/SIGVTALRM/SIGPROF are forwarded to the guest by proc/hostsig.py.
POSIX timers are kept here and woken by one host POSIX timer on a host signal of their own.
"""

import ctypes
import errno
import os
import signal as host_signal
import struct
import time as host_time

from ..errors import Errno, ERESTARTNOHAND
from ..proc import signals as S
from .blocking import host_call, handled, LIBC
from .identity import host_libc, has_cap, ON_LINUX
from .identity import host_call as libc_call
from .table import syscall, s32

NS = 1_000_000_000
CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID = 0, 1, 2, 3
CLOCK_MONOTONIC_RAW, CLOCK_REALTIME_COARSE, CLOCK_MONOTONIC_COARSE, CLOCK_BOOTTIME = 4, 5, 6, 7
CLOCK_REALTIME_ALARM, CLOCK_BOOTTIME_ALARM, CLOCK_TAI = 8, 9, 11
TIMER_ABSTIME = 1
CAP_SYS_TIME, CAP_WAKE_ALARM = 25, 35
CPUCLOCK_PERTHREAD, CLOCKFD = 4, 3

# Guest clock id -> host clock id.  On Linux they are the same numbers; elsewhere the
# nearest the host has.
_HOST_CLOCK = {}
for _guest, _name, _fallback in (
        (CLOCK_REALTIME, "CLOCK_REALTIME", None), (CLOCK_MONOTONIC, "CLOCK_MONOTONIC", None),
        (CLOCK_PROCESS_CPUTIME_ID, "CLOCK_PROCESS_CPUTIME_ID", None),
        (CLOCK_THREAD_CPUTIME_ID, "CLOCK_THREAD_CPUTIME_ID", None),
        (CLOCK_MONOTONIC_RAW, "CLOCK_MONOTONIC_RAW", "CLOCK_MONOTONIC"),
        (CLOCK_REALTIME_COARSE, "CLOCK_REALTIME_COARSE", "CLOCK_REALTIME"),
        (CLOCK_MONOTONIC_COARSE, "CLOCK_MONOTONIC_COARSE", "CLOCK_MONOTONIC"),
        (CLOCK_BOOTTIME, "CLOCK_BOOTTIME", "CLOCK_MONOTONIC"),
        (CLOCK_REALTIME_ALARM, None, "CLOCK_REALTIME"),
        (CLOCK_BOOTTIME_ALARM, None, "CLOCK_BOOTTIME"),
        (CLOCK_TAI, "CLOCK_TAI", "CLOCK_REALTIME")):
    _HOST_CLOCK[_guest] = _guest if ON_LINUX else getattr(host_time, _name or _fallback, None) \
        or getattr(host_time, _fallback or _name, None)


def host_clock(t, clock):
    """The host clock id for guest clock id `clock` (an int from s32), or EINVAL."""
    if clock >= 0:
        if _HOST_CLOCK.get(clock) is None:
            raise Errno(errno.EINVAL)
        return _HOST_CLOCK[clock]
    if not ON_LINUX:
        raise Errno(errno.EINVAL)
    if clock & 7 == CLOCKFD:
        # A clock named by a descriptor: the guest's fd becomes the host's.
        f = t.proc.fds.get(~(clock >> 3))
        return (~f.host_fd << 3) | CLOCKFD
    return clock        # CPU clocks of a pid or tid: guest pids are host pids


def clock_ns(t, clock):
    return host_time.clock_gettime_ns(host_clock(t, clock))


def pack_ts(ns):
    return struct.pack("<qq", *divmod(ns, NS))


def read_ts(t, ptr):
    """A guest timespec as nanoseconds; EINVAL unless 0 <= sec and 0 <= nsec < 1e9."""
    sec, nsec = struct.unpack("<qq", t.mem.read(ptr, 16))
    if sec < 0 or not 0 <= nsec < NS:
        raise Errno(errno.EINVAL)
    return sec * NS + nsec


def read_tv(raw, off=0):
    sec, usec = struct.unpack_from("<qq", raw, off)
    if sec < 0 or not 0 <= usec < 1_000_000:
        raise Errno(errno.EINVAL)
    return sec * 1_000_000 + usec


def pack_tv(us):
    return struct.pack("<qq", *divmod(us, 1_000_000))


# -- reading and setting clocks ---------------------------------------------------------------

@syscall("clock_gettime", "int ptr")
def clock_gettime(t, clock, ptr):
    t.mem.write(ptr, pack_ts(clock_ns(t, s32(clock))))
    return 0


@syscall("clock_getres", "int ptr")
def clock_getres(t, clock, ptr):
    res = round(host_time.clock_getres(host_clock(t, s32(clock))) * NS)
    if ptr:
        t.mem.write(ptr, pack_ts(res))
    return 0


@syscall("clock_settime", "int ptr", support="partial", note="EPERM: never sets the host clock")
def clock_settime(t, clock, ptr):
    clock = s32(clock)
    host_clock(t, clock)
    if clock != CLOCK_REALTIME:
        raise Errno(errno.EINVAL)       # only CLOCK_REALTIME is settable
    read_ts(t, ptr)
    raise Errno(errno.EPERM)


@syscall("gettimeofday", "ptr ptr")
def gettimeofday(t, tv, tz):
    if tv:
        t.mem.write(tv, pack_tv(host_time.time_ns() // 1000))
    if tz:
        t.mem.write(tz, struct.pack("<ii", 0, 0))   # the kernel's sys_tz: UTC, no DST
    return 0


@syscall("settimeofday", "ptr ptr", support="partial", note="EPERM: never sets the host clock")
def settimeofday(t, tv, tz):
    if tv:
        read_tv(t.mem.read(tv, 16))
    if tz:
        minuteswest, _ = struct.unpack("<ii", t.mem.read(tz, 8))
        if not -15 * 60 <= minuteswest <= 15 * 60:
            raise Errno(errno.EINVAL)
    raise Errno(errno.EPERM)


@syscall("time", "ptr")
def time_(t, ptr):
    now = host_time.time_ns() // NS
    if ptr:
        t.mem.write_u64(ptr, now)
    return now


@syscall("times", "ptr")
def times(t, ptr):
    tm = os.times()
    if ptr:
        # USER_HZ is 100 for every x86-64 guest.
        t.mem.write(ptr, struct.pack("<4q", *(round(x * 100) for x in tm[:4])))
    return round(tm.elapsed * 100)


SYS_clock_nanosleep = 230

# -- sleeping -----------------------------------------------------------------------------------

def sleep_until(t, clock, deadline):
    """Sleep until host clock `clock` reads `deadline` ns.  Returns True when done, False
    when a signal with a guest handler arrived (the caller returns EINTR).  Signals the guest
    blocks or ignores do not end the sleep; default actions (terminate, stop) are taken here,
    after which a stopped sleep goes on, as Linux's restart_block would."""
    ts = ctypes.create_string_buffer(struct.pack("<qq", deadline // NS, deadline % NS))
    while True:
        try:
            # The host's clock_nanosleep(TIMER_ABSTIME); EINTR when a signal comes.
            host_call(t, LIBC.syscall, ctypes.c_long(SYS_clock_nanosleep), ctypes.c_long(clock),
                      ctypes.c_long(TIMER_ABSTIME), ts, ctypes.c_void_p(None),
                      restart=ERESTARTNOHAND)
            return True
        except Errno as e:
            if e.errno != ERESTARTNOHAND:
                raise
            if handled(t):
                return False


def do_nanosleep(t, clock, flags, req, rem):
    """Linux's clock_nanosleep; relative sleeps count on the monotonic clock."""
    if clock in (CLOCK_REALTIME_ALARM, CLOCK_BOOTTIME_ALARM):
        try:
            clock_ns(t, clock)
        except OSError:
            raise Errno(errno.EOPNOTSUPP)   # no RTC to wake with
        if not has_cap(CAP_WAKE_ALARM):
            raise Errno(errno.EPERM)
        clock = CLOCK_REALTIME if clock == CLOCK_REALTIME_ALARM else CLOCK_BOOTTIME
    host = host_clock(t, clock)
    if clock in (CLOCK_MONOTONIC_RAW, CLOCK_REALTIME_COARSE, CLOCK_MONOTONIC_COARSE) \
            or clock < 0 and clock & 7 == CLOCKFD:
        raise Errno(errno.EOPNOTSUPP)
    if clock == CLOCK_THREAD_CPUTIME_ID or clock < 0 and clock & CPUCLOCK_PERTHREAD:
        raise Errno(errno.EINVAL)
    ns = read_ts(t, req)
    if flags & TIMER_ABSTIME:
        if sleep_until(t, host, ns):
            return 0
        raise Errno(errno.EINTR)
    if clock in (CLOCK_REALTIME, CLOCK_TAI, CLOCK_BOOTTIME):
        host = host_clock(t, CLOCK_MONOTONIC)
    deadline = host_time.clock_gettime_ns(host) + ns
    if sleep_until(t, host, deadline):
        return 0
    if rem:
        t.mem.write(rem, pack_ts(max(deadline - host_time.clock_gettime_ns(host), 0)))
    raise Errno(errno.EINTR)


@syscall("nanosleep", "ptr ptr", blocking=True)
def nanosleep(t, req, rem):
    return do_nanosleep(t, CLOCK_MONOTONIC, 0, req, rem)


@syscall("clock_nanosleep", "int flags ptr ptr", blocking=True)
def clock_nanosleep(t, clock, flags, req, rem):
    return do_nanosleep(t, s32(clock), flags, req, rem)


# -- interval timers and alarm (the host's own) ---------------------------------------------------

ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF = 0, 1, 2
_HOST_ITIMER = {ITIMER_REAL: host_signal.ITIMER_REAL, ITIMER_VIRTUAL: host_signal.ITIMER_VIRTUAL,
                ITIMER_PROF: host_signal.ITIMER_PROF}


def _itimerval(pair):
    value, interval = pair
    return pack_tv(round(interval * 1e6)) + pack_tv(round(value * 1e6))


def _host_setitimer(which, raw):
    """Set the host's interval timer from a guest itimerval (None: disarm); the old one."""
    if ON_LINUX:        # struct itimerval is the guest's: the host kernel checks it
        old = ctypes.create_string_buffer(32)
        new = ctypes.create_string_buffer(raw, 32) if raw is not None else None
        libc_call(host_libc().setitimer, ctypes.c_int(which), new, old)
        return old.raw
    interval, value = (read_tv(raw, 0), read_tv(raw, 16)) if raw is not None else (0, 0)
    if which not in _HOST_ITIMER:
        raise Errno(errno.EINVAL)
    return _itimerval(host_signal.setitimer(_HOST_ITIMER[which], value / 1e6, interval / 1e6))


@syscall("getitimer", "int ptr")
def getitimer(t, which, ptr):
    which = s32(which)
    if ON_LINUX:
        cur = ctypes.create_string_buffer(32)
        libc_call(host_libc().getitimer, ctypes.c_int(which), cur)
        raw = cur.raw
    elif which in _HOST_ITIMER:
        raw = _itimerval(host_signal.getitimer(_HOST_ITIMER[which]))
    else:
        raise Errno(errno.EINVAL)
    t.mem.write(ptr, raw)
    return 0


@syscall("setitimer", "int ptr ptr")
def setitimer(t, which, new, old):
    prev = _host_setitimer(s32(which), t.mem.read(new, 32) if new else None)
    if old:
        t.mem.write(old, prev)
    return 0


@syscall("alarm", "uint")
def alarm(t, seconds):
    return host_signal.alarm(min(seconds & 0xFFFFFFFF, 2 ** 31 - 1))


# -- POSIX timers ---------------------------------------------------------------------------------
# Each guest timer keeps its deadline here; one host POSIX timer (CLOCK_MONOTONIC) is armed
# for the earliest of them and wakes blinkroot with HOST_TIMER_SIG, whose handler queues
# the guest's SI_TIMER signals (overruns counted as Linux does while one is pending).

SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD, SIGEV_THREAD_ID = 0, 1, 2, 4
HOST_TIMER_SIG = host_signal.SIGRTMAX if hasattr(host_signal, "SIGRTMAX") else None
DELAYTIMER_MAX = 2 ** 31 - 1
PENDING_POLL_NS = 1_000_000     # host timer period while a timer's signal is pending


class PosixTimer:
    def __init__(self, tid, clock, host, signo, notify, value, target):
        self.id, self.clock, self.host = tid, clock, host
        self.signo, self.notify, self.value, self.target = signo, notify, value, target
        self.deadline = 0           # host-clock ns of the next expiry; 0: disarmed
        self.interval = 0
        self.overrun = 0            # of the last queued expiry
        self.queued = None          # its SigInfo while still pending


def _now(tm):
    """The timer's clock; a CPU clock of a thread or process that has gone stops at the
    end of time (its timer never fires again), as Linux's does."""
    try:
        return host_time.clock_gettime_ns(tm.host)
    except OSError:
        return -(1 << 62)


class _Timers:
    """The process's POSIX timers and the one host timer that wakes them."""

    def __init__(self, thread):
        self.thread = thread
        self.timers = {}
        self.next_id = 0
        self.busy = False
        self.missed = False
        libc = host_libc()
        self.host_id = ctypes.c_void_p()
        sev = struct.pack("<Qii48x", 0, HOST_TIMER_SIG, SIGEV_SIGNAL)
        host_signal.signal(HOST_TIMER_SIG, self._on_host_signal)
        # Its number in the wakeup pipe is not a signal for the guest.
        thread.kernel.ignored_host_signals += (HOST_TIMER_SIG,)
        libc_call(libc.timer_create, ctypes.c_int(host_time.CLOCK_MONOTONIC),
                  ctypes.create_string_buffer(sev, 64), ctypes.byref(self.host_id))
        self._settime = libc.timer_settime

    def _on_host_signal(self, _sig, _frame):
        # Queueing the signals wakes a thread blocked in a host call.  Rearming may make
        # the host timer fire again at once: that is handled by the loop in __exit__,
        # not by a handler inside this one.
        self.missed = True
        if not self.busy:
            self.busy = True
            self.__exit__()

    def expire(self):
        """Queue the signals of every due timer; rearm the host timer.  True if any queued."""
        queued = False
        th = self.thread
        for tm in self.timers.values():
            if not tm.deadline:
                continue
            now = _now(tm)
            if now < tm.deadline:
                continue
            n = 1 + ((now - tm.deadline) // tm.interval if tm.interval else 0)
            tm.deadline = tm.deadline + n * tm.interval if tm.interval else 0
            if tm.notify & ~SIGEV_THREAD_ID == SIGEV_NONE:
                continue
            info = tm.queued
            if info is not None and (info in th.proc.pending or info in th.pending):
                info.uid = tm.overrun = min(info.uid + n, DELAYTIMER_MAX)   # still pending
                continue
            overrun = min(n - 1, DELAYTIMER_MAX)
            info = S.SigInfo(tm.signo, S.SI_TIMER, pid=tm.id, uid=overrun, value=tm.value)
            tm.queued, tm.overrun = info, overrun
            th.queue(info, process_wide=not tm.notify & SIGEV_THREAD_ID)
            queued = True
        self.rearm()
        return queued

    def rearm(self):
        soonest = None
        th = self.thread
        for tm in self.timers.values():
            if tm.deadline:
                left = max(tm.deadline - _now(tm), 1)
                info = tm.queued
                if info is not None and (info in th.proc.pending or info in th.pending):
                    # Its signal is still pending: expiries only add to its overrun
                    # (Linux rearms such a timer on delivery), so a short interval must
                    # not make the host timer fire nonstop.
                    left = max(left, PENDING_POLL_NS)
                soonest = left if soonest is None else min(soonest, left)
        spec = struct.pack("<4q", 0, 0, *divmod(soonest or 0, NS))
        libc_call(self._settime, self.host_id, ctypes.c_int(0),
                  ctypes.create_string_buffer(spec, 32), None)

    def __enter__(self):
        self.busy = True
        return self

    def __exit__(self, *exc):
        while True:
            while self.missed:      # a host signal came meanwhile (or rearming is due)
                self.missed = False
                self.expire()
            self.busy = False
            if not self.missed:     # none between the check and clearing busy
                return
            self.busy = True


def forget_posix_timers(proc, exec_=False):
    """A forked child has none of its parent's POSIX timers (the host timer is not
    inherited either); exec deletes them.  Registered as a process hook by _timers."""
    timers = getattr(proc, "posix_timers", None)
    if timers is not None and exec_:
        timers.timers.clear()
        timers.rearm()
        for queue in [proc.pending] + [th.pending for th in proc.threads]:
            queue[:] = [i for i in queue if i.code != S.SI_TIMER]
    if timers is not None and not exec_:
        proc.posix_timers = None


def _timers(t, create=False):
    timers = getattr(t.proc, "posix_timers", None)
    if timers is None and create:
        if HOST_TIMER_SIG is None or not hasattr(host_libc(), "timer_create"):
            raise Errno(errno.ENOSYS)
        timers = t.proc.posix_timers = _Timers(t)
        t.proc.fork_child_hooks.append(lambda: forget_posix_timers(t.proc))
        t.proc.exec_hooks.append(lambda: forget_posix_timers(t.proc, exec_=True))
    return timers


def _timer(t, tid):
    timers = _timers(t)
    tm = timers.timers.get(s32(tid)) if timers else None
    if tm is None:
        raise Errno(errno.EINVAL)
    return timers, tm


@syscall("timer_create", "int ptr ptr", support="partial",
         note="SIGEV_SIGNAL/NONE/THREAD_ID; CPU-time clocks are checked on a wall-clock "
              "wake-up, so a busy multithreaded process's may expire late")
def timer_create(t, clock, sevp, idp):
    clock = s32(clock)
    host = host_clock(t, clock)
    if clock in (CLOCK_MONOTONIC_RAW, CLOCK_REALTIME_COARSE, CLOCK_MONOTONIC_COARSE):
        raise Errno(errno.EOPNOTSUPP)
    if clock in (CLOCK_REALTIME_ALARM, CLOCK_BOOTTIME_ALARM) and not has_cap(CAP_WAKE_ALARM):
        raise Errno(errno.EPERM)
    if clock < 0 and clock & 7 == CLOCKFD:
        t.kernel.log("timer_create: descriptor clocks are not supported: EINVAL")
        raise Errno(errno.EINVAL)
    if clock == CLOCK_THREAD_CPUTIME_ID and ON_LINUX:
        # The calling thread's own clock, readable from the thread that expires timers.
        import threading
        host = host_time.pthread_getcpuclockid(threading.get_ident())
    if clock < 0 or clock in (CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID):
        host_time.clock_gettime_ns(host)    # a CPU clock of a pid or tid: ESRCH-like EINVAL
    if clock == CLOCK_REALTIME_ALARM:
        host = host_clock(t, CLOCK_REALTIME)
    elif clock == CLOCK_BOOTTIME_ALARM:
        host = host_clock(t, CLOCK_BOOTTIME)
    if sevp:
        value, signo, notify, target = struct.unpack("<Qiii", t.mem.read(sevp, 20))
        # Linux's good_sigevent(): a raw SIGEV_THREAD is a plain signal to the kernel.
        if notify not in (SIGEV_SIGNAL, SIGEV_THREAD, SIGEV_NONE, SIGEV_SIGNAL | SIGEV_THREAD_ID) \
                or notify == SIGEV_SIGNAL | SIGEV_THREAD_ID and target != t.tid \
                or notify != SIGEV_NONE and not 1 <= signo <= S.NSIG:
            raise Errno(errno.EINVAL)
    else:
        value, signo, notify, target = None, S.SIGALRM, SIGEV_SIGNAL, 0
    timers = _timers(t, create=True)
    with timers:
        tid = timers.next_id        # Linux hands out ids in sequence, not the lowest free
        timers.next_id = (tid + 1) & 0x7FFFFFFF
        t.mem.write(idp, struct.pack("<i", tid))
        timers.timers[tid] = PosixTimer(tid, clock, host, signo, notify,
                                        tid if value is None else value, target)
    return 0


def _remaining(tm):
    if not tm.deadline:
        return 0
    return max(tm.deadline - _now(tm), 1)


@syscall("timer_settime", "int flags ptr ptr")
def timer_settime(t, tid, flags, new, old):
    timers, tm = _timer(t, tid)
    if not new:
        raise Errno(errno.EINVAL)       # Linux checks for NULL before reading it
    raw = t.mem.read(new, 32)
    interval, value = read_ts_raw(raw, 0), read_ts_raw(raw, 16)
    with timers:
        prev = pack_ts(tm.interval) + pack_ts(_remaining(tm))
        if value == 0:
            tm.deadline = 0
        elif flags & TIMER_ABSTIME:
            tm.deadline = value         # on the timer's own (host) clock
        else:
            tm.deadline = _now(tm) + value
        tm.interval = interval if value else 0
        timers.missed = True        # expire anything due now and rearm, on leaving
    if old:
        t.mem.write(old, prev)
    return 0


def read_ts_raw(raw, off):
    sec, nsec = struct.unpack_from("<qq", raw, off)
    if sec < 0 or not 0 <= nsec < NS:
        raise Errno(errno.EINVAL)
    return sec * NS + nsec


@syscall("timer_gettime", "int ptr")
def timer_gettime(t, tid, ptr):
    _, tm = _timer(t, tid)
    t.mem.write(ptr, pack_ts(tm.interval) + pack_ts(_remaining(tm)))
    return 0


@syscall("timer_getoverrun", "int")
def timer_getoverrun(t, tid):
    _, tm = _timer(t, tid)
    return tm.overrun


@syscall("timer_delete", "int")
def timer_delete(t, tid):
    timers, tm = _timer(t, tid)
    with timers:
        del timers.timers[tm.id]
        for queue in (t.proc.pending, t.pending):
            if tm.queued in queue:
                queue.remove(tm.queued)     # Linux drops the timer's pending signal too
        timers.missed = True
    return 0


# -- adjtimex (reading only) -----------------------------------------------------------------------

TIMEX_SIZE = 208
ADJ_OFFSET_SS_READ = 0xA001


def _adjtimex(t, clock, ptr):
    raw = t.mem.read(ptr, TIMEX_SIZE)
    modes = struct.unpack_from("<I", raw)[0]
    if modes not in (0, ADJ_OFFSET_SS_READ):
        raise Errno(errno.EPERM)    # adjusting would change the host's clock
    if clock != CLOCK_REALTIME:
        raise Errno(errno.EOPNOTSUPP if clock >= 0 and clock in _HOST_CLOCK else errno.EINVAL)
    buf = ctypes.create_string_buffer(b"\0" * TIMEX_SIZE, TIMEX_SIZE)
    state = libc_call(host_libc().adjtimex, buf)
    t.mem.write(ptr, buf.raw)
    return state


@syscall("adjtimex", "ptr", support="partial", note="reads only; adjusting: EPERM")
def adjtimex(t, ptr):
    return _adjtimex(t, CLOCK_REALTIME, ptr)


@syscall("clock_adjtime", "int ptr", support="partial", note="reads only; adjusting: EPERM")
def clock_adjtime(t, clock, ptr):
    return _adjtimex(t, s32(clock), ptr)
