"""Signal syscalls: dispositions, masks, sigreturn, altstacks, sending, waiting."""

import ctypes
import errno
import os
import signal as host_signal
import struct
import time

from ..errors import Errno, ERESTARTNOHAND
from ..proc import signals as S
from ..proc import hostsig
from ..proc.process import WAKE_SIGNAL
from .table import syscall, s32, KEEP_REGS
from .blocking import host_call, signal_waiting, deadline, LIBC

SIG_BLOCK, SIG_UNBLOCK, SIG_SETMASK = 0, 1, 2
# SIGCHLD's flags are the host's business too (mirrored there): it reaps the children
# itself (SA_NOCLDWAIT) and sends no SIGCHLD for stops and continues (SA_NOCLDSTOP).
SA_NOCLD = 1 | 2


def _valid(sig):
    if not 1 <= sig <= S.NSIG:
        raise Errno(errno.EINVAL)


def _sigset_size(size):
    if size != 8:
        raise Errno(errno.EINVAL)


@syscall("rt_sigaction", "sig ptr ptr size")
def rt_sigaction(t, sig, act, oldact, size):
    _sigset_size(size)
    sig = s32(sig)
    _valid(sig)
    proc = t.proc
    new = S.SigAction.unpack(t.mem.read(act, 32)) if act else None
    if new is not None and sig in (S.SIGKILL, S.SIGSTOP):
        raise Errno(errno.EINVAL)
    if oldact:
        t.mem.write(oldact, proc.sigactions[sig].pack())
    if new is not None:
        new.mask &= ~S.UNBLOCKABLE
        # Signals the host generated before this call meet the old disposition.
        t.kernel.collect_signalfd()
        t.collect_host_signals()
        old_act = proc.sigactions[sig]
        proc.sigactions[sig] = new
        child_flags = new.flags & SA_NOCLD if sig == S.SIGCHLD else 0
        if (old_act.handler == S.SIG_IGN) != (new.handler == S.SIG_IGN) \
                or (sig == S.SIGCHLD and child_flags != old_act.flags & SA_NOCLD):
            hostsig.mirror_ignore(sig, new.handler == S.SIG_IGN, child_flags)
        if new.ignored(sig):
            # Setting a signal to be ignored discards what is pending of it.
            for queue in [proc.pending] + [th.pending for th in proc.threads]:
                queue[:] = [i for i in queue if i.signo != sig]
    return 0


@syscall("rt_sigprocmask", "int ptr ptr size")
def rt_sigprocmask(t, how, set_ptr, old_ptr, size):
    _sigset_size(size)
    old = t.sigmask
    if set_ptr:
        mask = t.mem.read_u64(set_ptr)
        if how == SIG_BLOCK:
            new = old | mask
        elif how == SIG_UNBLOCK:
            new = old & ~mask
        elif how == SIG_SETMASK:
            new = mask
        else:
            raise Errno(errno.EINVAL)
    if old_ptr:
        t.mem.write_u64(old_ptr, old)
    if set_ptr:
        t.set_sigmask(new)
    return 0


@syscall("rt_sigreturn")
def rt_sigreturn(t):
    try:
        S.restore_frame(t)
    except Errno:
        from ..proc.process import ProcessExit
        raise ProcessExit(signal=S.SIGSEGV, core=True)
    return KEEP_REGS


@syscall("sigaltstack", "ptr ptr")
def sigaltstack(t, ss, old_ss):
    alt = t.altstack
    rsp = t.vcpu.get_reg("rsp")
    if ss:
        sp, flags, size = struct.unpack("<QI4xQ", t.mem.read(ss, 24))
    if old_ss:
        t.mem.write(old_ss, alt.pack(rsp))
    if ss:
        if alt.on(rsp):
            raise Errno(errno.EPERM)
        mode = flags & ~S.SS_AUTODISARM
        if mode not in (0, S.SS_DISABLE, S.SS_ONSTACK):
            raise Errno(errno.EINVAL)
        if mode == S.SS_DISABLE:
            alt.sp, alt.size, alt.flags = 0, 0, S.SS_DISABLE
        else:
            if size < S.MINSIGSTKSZ:
                raise Errno(errno.ENOMEM)
            alt.sp, alt.size, alt.flags = sp, size, flags & S.SS_AUTODISARM
    return 0


@syscall("rt_sigpending", "ptr size")
def rt_sigpending(t, set_ptr, size):
    if size > 8:
        raise Errno(errno.EINVAL)
    t.collect_host_signals()
    t.mem.write(set_ptr, (t.pending_mask() & t.sigmask).to_bytes(8, "little")[:size])
    return 0


def _sender(t, sig, code=S.SI_USER):
    return S.SigInfo(sig, code, pid=t.proc.pid, uid=os.getuid())


def _send(t, pid, sig, info):
    """Deliver to this process, or through the host to another one, siginfo included
    (the host's rt_sigqueueinfo carries a guest sigqueue's value and si_code)."""
    if pid == t.proc.pid:
        if sig:
            t.queue(info, process_wide=True)
        return 0
    if info.raw is None or not sig:
        os.kill(pid, sig)
        return 0
    buf = ctypes.create_string_buffer(info.pack(), 128)
    if LIBC.syscall(ctypes.c_long(129), ctypes.c_long(pid), ctypes.c_long(sig), buf) < 0:
        raise Errno(ctypes.get_errno())
    return 0


@syscall("kill", "pid sig")
def kill(t, pid, sig):
    pid, sig = s32(pid), s32(sig)
    if not 0 <= sig <= S.NSIG:
        raise Errno(errno.EINVAL)
    if pid in (0, -1) or pid < -1:
        # Process groups: the host's kill reaches every member, the caller included; the
        # caller's own copy arrives through the host signal path.
        os.kill(pid, sig)
        return 0
    return _send(t, pid, sig, _sender(t, sig))


def _host_tgid(tid):
    """The process host thread tid belongs to (guest tids are host tids)."""
    try:
        with open(f"/proc/{tid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"Tgid:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    raise Errno(errno.ESRCH)


def _to_other_thread(t, tgid, tid, info):
    """tgkill & co. naming a thread of another process.  The host's tgkill checks that
    tid is a thread of tgid and that we may signal it.  A guest of this session would
    never see a host thread-directed signal (hostsig.py): it gets it forwarded."""
    if LIBC.syscall(ctypes.c_long(234), ctypes.c_long(tgid), ctypes.c_long(tid),
                    ctypes.c_long(0)) < 0:
        raise Errno(ctypes.get_errno())
    if not info.signo:
        return 0
    if t.kernel.vfs.session.facts(tgid) is not None:
        hostsig.send_to_thread(tgid, tid, info)
        return 0
    # Not a guest (or another session's): the host's own call reaches it as Linux would.
    if info.raw is None:
        r = LIBC.syscall(ctypes.c_long(234), ctypes.c_long(tgid), ctypes.c_long(tid),
                         ctypes.c_long(info.signo))
    else:
        buf = ctypes.create_string_buffer(info.pack(), 128)
        r = LIBC.syscall(ctypes.c_long(297), ctypes.c_long(tgid), ctypes.c_long(tid),
                         ctypes.c_long(info.signo), buf)
    if r < 0:
        raise Errno(ctypes.get_errno())
    return 0


@syscall("tkill", "pid sig")
def tkill(t, tid, sig):
    tid = s32(tid)
    if tid > 0 and not any(th.tid == tid for th in t.proc.threads):
        return tgkill(t, _host_tgid(tid), tid, sig)
    return tgkill(t, t.proc.pid, tid, sig)


@syscall("tgkill", "pid pid sig")
def tgkill(t, tgid, tid, sig):
    tgid, tid, sig = s32(tgid), s32(tid), s32(sig)
    if tgid <= 0 or tid <= 0 or not 0 <= sig <= S.NSIG:
        raise Errno(errno.EINVAL)
    info = _sender(t, sig, S.SI_TKILL)
    if tgid != t.proc.pid:
        return _to_other_thread(t, tgid, tid, info)
    target = next((th for th in t.proc.threads if th.tid == tid), None)
    if target is None:
        if tgid == tid:
            os.kill(tid, sig)
            return 0
        raise Errno(errno.ESRCH)
    if sig:
        target.queue(info)
    return 0


@syscall("rt_sigqueueinfo", "pid sig ptr")
def rt_sigqueueinfo(t, pid, sig, info_ptr):
    pid, sig = s32(pid), s32(sig)
    _valid(sig)
    raw = bytearray(t.mem.read(info_ptr, 128))
    code = struct.unpack_from("<i", raw, 8)[0]
    if (code >= 0 or code == S.SI_TKILL) and pid != t.proc.pid:
        raise Errno(errno.EPERM)
    struct.pack_into("<i", raw, 0, sig)
    return _send(t, pid, sig, S.SigInfo(sig, code, raw=bytes(raw)))


@syscall("rt_tgsigqueueinfo", "pid pid sig ptr")
def rt_tgsigqueueinfo(t, tgid, tid, sig, info_ptr):
    tgid, tid, sig = s32(tgid), s32(tid), s32(sig)
    if tgid <= 0 or tid <= 0:
        raise Errno(errno.EINVAL)
    _valid(sig)
    raw = bytearray(t.mem.read(info_ptr, 128))
    code = struct.unpack_from("<i", raw, 8)[0]
    struct.pack_into("<i", raw, 0, sig)
    info = S.SigInfo(sig, code, raw=bytes(raw))
    if tgid != t.proc.pid:
        if code >= 0 or code == S.SI_TKILL:
            raise Errno(errno.EPERM)
        return _to_other_thread(t, tgid, tid, info)
    target = next((th for th in t.proc.threads if th.tid == tid), None)
    if target is None:
        raise Errno(errno.ESRCH)
    target.queue(info)
    return 0


def _sleep_until_signal(t, timeout=None, wanted=0):
    """Block until the guest thread has a signal to act on (or one of `wanted`, blocked
    or not), or until `timeout` seconds.  Returns False on timeout."""
    ts = None
    if timeout is not None:
        sec = max(0.0, timeout)
        ts = ctypes.create_string_buffer(struct.pack("<qq", int(sec), int((sec % 1) * 1e9)))

    def woken():
        return signal_waiting(t) or bool(t.pending_mask() & wanted)
    # WAKE_SIGNAL is blocked from the last look until ppoll unblocks it atomically, so a
    # wake-up sent in between is not lost (the watcher's repeated waking covers signals
    # the thread will act on, but not a blocked one that sigtimedwait waits for).
    old = host_signal.pthread_sigmask(host_signal.SIG_BLOCK, {WAKE_SIGNAL})
    try:
        if woken():
            return True
        sleep_mask = hostsig.sigset(old - {WAKE_SIGNAL})
        # ppoll on nothing: sleeps until a host signal handler runs in this thread.
        return host_call(t, LIBC.ppoll, None, 0, ts, sleep_mask, restart=ERESTARTNOHAND,
                         woken=woken) != 0
    except Errno:
        return True
    finally:
        host_signal.pthread_sigmask(host_signal.SIG_SETMASK, old)


@syscall("rt_sigsuspend", "ptr size", blocking=True)
def rt_sigsuspend(t, mask_ptr, size):
    _sigset_size(size)
    mask = t.mem.read_u64(mask_ptr)
    old = t.sigmask
    t.set_sigmask(mask)
    while not signal_waiting(t):
        _sleep_until_signal(t)
    t.saved_sigmask = old       # the handler's frame restores the old mask
    raise Errno(errno.EINTR)


@syscall("pause", blocking=True)
def pause(t):
    while not signal_waiting(t):
        _sleep_until_signal(t)
    raise Errno(errno.EINTR)


@syscall("rt_sigtimedwait", "ptr ptr ptr size", blocking=True)
def rt_sigtimedwait(t, set_ptr, info_ptr, ts_ptr, size):
    _sigset_size(size)
    wanted = t.mem.read_u64(set_ptr) & ~S.UNBLOCKABLE
    end = deadline(t, ts_ptr)
    while True:
        signal_waiting(t)
        info = t.take_signal(allowed=wanted)
        if info is not None:
            if info_ptr:
                t.mem.write(info_ptr, info.pack())
            return info.signo
        if t.has_deliverable():
            raise Errno(errno.EINTR)
        remaining = None if end is None else end - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise Errno(errno.EAGAIN)
        _sleep_until_signal(t, remaining, wanted)
