"""Signals the host sends to blinkroot reach the guest, with their siginfo.

Python runs its signal handlers only in the main host thread and only between
bytecodes, never while the engine computes, and never sees a siginfo.  So the signals a
guest may receive from outside are blocked in every host thread and read, siginfo and
all (sender pid, si_code, sigqueue values, a child's status), from a signalfd by one
watcher thread per process.  The watcher records them, stops whichever vcpu runs and
wakes threads blocked in host calls with WAKE_SIGNAL, whose no-op handler makes their
libc call return EINTR (syscalls/blocking.py).

The job-control signals SIGTSTP, SIGTTIN and SIGTTOU stay unblocked, with a handler:
the host's tty driver treats a blocked one as ignored (a background tcsetpgrp would
succeed).  They reach the watcher through Python's wakeup pipe.

Waking is level-triggered: while a thread has a signal it will act on, the watcher
keeps waking it every few milliseconds, since a signal can arrive between a thread's
last look and the moment its host call starts blocking.

Thread-directed signals from outside (tgkill, tkill, rt_tgsigqueueinfo naming one thread
of another guest process): the host would leave them pending on that host thread, where
the watcher's signalfd never sees them (a signalfd returns only the reading thread's
own, and the process's) and nothing wakes the thread (it blocks them).  So a guest
sender sends them process-directed, with rt_sigqueueinfo, marked: si_code is
THREAD_MARK plus the si_code the receiver must see, si_errno the target tid, and
si_pid, si_uid and si_value are the real ones (signalfd hands back all five).  The
receiver queues them on that thread (Thread.collect_host_signals).  A sender that is
not a guest (a host process's tgkill) still goes unseen: see send_to_thread's caller."""

import ctypes
import os
import select
import signal
import struct
import threading

from .process import WAKE_SIGNAL, FORWARDED_MASK
from . import signals as S

JOB_CONTROL = S.JOB_CONTROL
# SIGPIPE stays ignored on the host (a guest write to a broken pipe gets EPIPE and its
# own SIGPIPE from the syscall layer); SIGRTMAX is the POSIX timers' (syscalls/time.py).
_NOT_FORWARDED = {signal.SIGKILL, signal.SIGSTOP, signal.SIGPIPE, signal.SIGSEGV,
                  signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGTRAP,
                  signal.SIGABRT, signal.SIGSYS, WAKE_SIGNAL, signal.SIGRTMAX,
                  32, 33}       # glibc's own (SIGCANCEL, SIGSETXID)
FORWARDED = tuple(s for s in range(1, signal.SIGRTMAX + 1)
                  if s not in _NOT_FORWARDED and s not in JOB_CONTROL)
FORWARDED_MASK.update(FORWARDED)
RECHECK = 0.005                 # seconds between wake-ups while a signal is undelivered

_libc = ctypes.CDLL(None, use_errno=True)
_SIGSET_SIZE = 128
_SIGINFO_FMT = "<IiiIIiIIIIiiQQQQ"  # struct signalfd_siginfo, first fields
_SIGINFO_SIZE = 128


# The kernel's siginfo_layout: a positive si_code up to NSIGPOLL on a signal not in
# this list (or SI_SIGIO) has the poll layout, si_band and si_fd (F_SETSIG's signals).
_FILTERED = (signal.SIGILL, signal.SIGFPE, signal.SIGSEGV, signal.SIGBUS, signal.SIGTRAP,
             signal.SIGCHLD, signal.SIGSYS)
_SI_SIGIO = -5

# si_code of a thread-directed signal forwarded as a process-directed one (see above):
# THREAD_MARK + c carries the negative si_code c (SI_TKILL, SI_QUEUE, ...).
THREAD_MARK = -0x10000


def send_to_thread(tgid, tid, info):
    """Send `info` (a SigInfo with a negative si_code) to thread tid of guest process
    tgid; raises OSError as the host's rt_sigqueueinfo does."""
    raw = bytearray(info.pack())
    struct.pack_into("<iii", raw, 0, info.signo, tid, THREAD_MARK + info.code)
    buf = ctypes.create_string_buffer(bytes(raw), _SIGINFO_SIZE)
    if _libc.syscall(ctypes.c_long(129), ctypes.c_long(tgid), ctypes.c_long(info.signo),
                     buf) < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


class Interrupted(Exception):
    """A libc call made for the guest returned EINTR (vfs/hostcall.py)."""


def sigset(signals):
    buf = ctypes.create_string_buffer(_SIGSET_SIZE)
    _libc.sigemptyset(buf)
    for sig in signals:
        _libc.sigaddset(buf, sig)
    return buf


def block_forwarded():
    """Block the forwarded signals in the calling thread (and the threads it starts).
    Returns what to pass to unblock (fork does block, fork, unblock in the parent)."""
    return signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)


def install(kernel, proc):
    """Set up forwarding in this host process (at start, and again in a fork child,
    which inherits neither the watcher thread nor its descriptors' meaning)."""
    block_forwarded()
    sfd = _libc.signalfd(-1, sigset(FORWARDED), os.O_CLOEXEC | os.O_NONBLOCK)
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    kick_r, kick_w = os.pipe()
    os.set_blocking(kick_r, False)
    os.set_blocking(kick_w, False)
    kernel.signal_pipe = r
    kernel.signalfd = sfd
    kernel.read_signalfd = _read_signalfd
    kernel.watcher_kick = kick_w
    kernel.signal_lock = threading.Lock()   # a fork child must not inherit it held
    kernel.ignored_host_signals = (WAKE_SIGNAL,)

    # A handler must exist for the host not to apply the default action; its only job
    # is to interrupt host calls.
    for sig in FORWARDED + JOB_CONTROL:
        signal.signal(sig, _ignore)
        _installed[sig] = _sigaction(sig)
    signal.signal(WAKE_SIGNAL, _ignore)
    for sig, act in enumerate(proc.sigactions):
        if sig in _installed and act.handler == S.SIG_IGN:      # inherited SIG_IGN
            mirror_ignore(sig, True)

    def watch():
        timeout = None
        while True:
            ready, _, _ = select.select([sfd, r, kick_r], [], [], timeout)
            if kick_r in ready:
                _drain(kick_r)
            if sfd in ready:
                kernel.collect_signalfd()
            if r in ready:
                kernel.drain_host_signals()
            timeout = RECHECK if _wake(kernel, proc) else None

    threading.Thread(target=watch, name="blinkroot-signals", daemon=True).start()


def _wake(kernel, proc):
    """Stop the running vcpu and wake blocked threads that have something to act on.
    Returns True while something is still undelivered."""
    busy = bool(kernel.host_signals)
    if busy:
        proc.engine.kick_running()
    for t in list(proc.threads):
        if busy or t.has_deliverable():
            busy = True
            t.vcpu.kick()
            t.notify_host_call()
    return busy


def _drain(fd):
    try:
        while os.read(fd, 4096):
            pass
    except OSError:
        pass


def _read_signalfd(sfd):
    """The pending signals as SigInfo, with the fields of their siginfo."""
    out = []
    while True:
        try:
            raw = os.read(sfd, _SIGINFO_SIZE * 16)
        except OSError:
            return out
        if not raw:
            return out
        for off in range(0, len(raw), _SIGINFO_SIZE):
            (signo, errno_, code, pid, uid, fd, _tid, band, _overrun, _trapno, status,
             sival_int, sival_ptr, _utime, _stime, addr) = struct.unpack_from(
                _SIGINFO_FMT, raw, off)
            tid = 0
            if THREAD_MARK - 0x10000 < code < THREAD_MARK:
                tid, code = errno_, code - THREAD_MARK      # send_to_thread's
            poll = (0 < code <= 6 and signo not in _FILTERED) or code == _SI_SIGIO
            out.append(S.SigInfo(signo, code, pid=pid, uid=uid, status=status,
                                 value=sival_ptr, addr=addr, tid=tid,
                                 band=band if poll else 0, fd=fd if poll else None))


def _ignore(_signum, _frame):
    pass


# The host's own disposition follows the guest's SIG_IGN: the host kernel consults it
# (a background process's tcsetpgrp raises SIGTTOU unless it is ignored; an ignored
# SIGINT is discarded), and fork children inherit it.  SA_NOCLDWAIT on SIGCHLD likewise
# (the host reaps the children).  libc's sigaction: Python's signal module works from
# the main thread only.
_SIGACTION_SIZE = 152          # glibc's struct sigaction on x86-64
_FLAGS_OFF = 136
_installed = {}                # signal -> the raw struct sigaction of blinkroot's handler


def _sigaction(sig, new=None):
    old = ctypes.create_string_buffer(_SIGACTION_SIZE)
    _libc.sigaction(sig, new, old)
    return old.raw


def mirror_ignore(sig, ignored, child_flags=0):
    """child_flags: the guest's SA_NOCLDSTOP | SA_NOCLDWAIT, for SIGCHLD."""
    if sig not in _installed:
        return
    if ignored:
        raw = bytearray(b"\x01" + bytes(_SIGACTION_SIZE - 1))
    else:
        raw = bytearray(_installed[sig])
        if child_flags:
            flags = struct.unpack_from("<i", raw, _FLAGS_OFF)[0]
            struct.pack_into("<i", raw, _FLAGS_OFF, flags | child_flags)
    _sigaction(sig, ctypes.create_string_buffer(bytes(raw), _SIGACTION_SIZE))
