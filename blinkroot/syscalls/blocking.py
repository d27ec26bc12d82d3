"""Blocking host calls made for the guest.

A guest thread that blocks (read on a pipe, wait4, futex, poll, sleep) blocks in a libc
call of its own host thread, with the process's CPU released (``blocking``) so the other
guest threads run meanwhile.  The call is made through ctypes, which returns EINTR
instead of retrying the way Python's os functions do; a host signal interrupts it:

* a signal from outside (Ctrl-C, SIGCHLD, SIGALRM) interrupts whichever host thread the
  host kernel picks, and is recorded from the wakeup pipe (Kernel.drain_host_signals);
* a signal the guest sends to a blocked thread arrives as WAKE_SIGNAL (Thread.notify).

If the guest will act on a pending signal, the call returns ``restart`` (ERESTARTSYS:
the run loop turns it into EINTR or a restart, as SA_RESTART asks); other EINTRs are
retried, since on Linux they would not have happened.
"""

import ctypes
import errno
import select
import struct
import threading
import time
from contextlib import contextmanager

from ..errors import Errno, ERESTARTSYS, linux_errno
from ..proc.hostsig import Interrupted

LIBC = ctypes.CDLL(None, use_errno=True)
LIBC.syscall.restype = ctypes.c_long
_run_python_handlers = ctypes.pythonapi.PyErr_CheckSignals


def record_host_signals(t):
    if threading.current_thread() is threading.main_thread():
        _run_python_handlers()      # e.g. POSIX timers queue their signals there
    t.kernel.drain_host_signals()


def signal_waiting(t):
    """Has the guest thread a signal it will act on?  (Collects the host's first.)"""
    record_host_signals(t)
    t.collect_host_signals()
    return t.has_deliverable()


@contextmanager
def blocking(t, restart=ERESTARTSYS, ready=None):
    """Around a blocking host call: the CPU is free for other threads meanwhile.

    ready(): would the call complete without blocking?  Then a waiting signal does not
    stop it: Linux interrupts a call only while it sleeps."""
    if signal_waiting(t) and not (ready is not None and ready()):
        raise Errno(restart)   # a signal is already waiting: don't start to block
    t.in_host_call = True
    try:
        with t.vcpu.released():
            yield
    except Interrupted:
        # EINTR from a vfs/hostcall call: restart; the run loop makes it EINTR if a
        # handler runs, and a spurious restart is invisible to the guest.
        raise Errno(restart)
    finally:
        t.in_host_call = False


def host_call(t, fn, *args, restart=ERESTARTSYS, woken=None, ready=None):
    """Call libc's blocking `fn(*args)` (returning -1 and errno on failure) for thread t.

    `woken()` says whether an EINTR ends the call (default: a signal the guest will act
    on is waiting); `ready()` whether the call can complete at once (see blocking)."""
    woken = woken or (lambda: signal_waiting(t) and not (ready is not None and ready()))
    with blocking(t, restart, ready):
        while True:
            ret = fn(*args)
            if ret != -1:
                # What woke us may have come with a signal (SIGCHLD with a child's exit):
                # record it now, so it is delivered on the way back, as Linux does.
                record_host_signals(t)
                return ret
            err = ctypes.get_errno()
            if err != errno.EINTR:
                raise Errno(linux_errno(err))
            if woken():
                raise Errno(restart)


def handled(t):
    """A wait with a deadline was cut short by signals (the restart code of host_call):
    True if a guest handler will run for one, and the call ends with EINTR.  Otherwise
    their default actions are taken here, a stop included, and False: the call waits
    on to its own deadline, as Linux's restart_block makes it after SIGCONT, instead of
    starting its timeout over."""
    if t.handler_pending():
        return True
    t.take_default_actions()
    return False


def deadline(t, ts_ptr):
    """The monotonic time a relative guest timespec at ts_ptr ends (None: no timeout);
    EINVAL for a negative or unnormalized one, as Linux says."""
    if not ts_ptr:
        return None
    sec, nsec = struct.unpack("<qq", t.mem.read(ts_ptr, 16))
    if sec < 0 or not 0 <= nsec < 1_000_000_000:
        raise Errno(errno.EINVAL)
    return time.monotonic() + sec + nsec / 1e9


def fd_ready(fd, out):
    """Would a read (or write, if out) on host fd complete without blocking?"""
    p = select.poll()
    p.register(fd, select.POLLOUT if out else select.POLLIN)
    try:
        return bool(p.poll(0))
    except OSError:
        return True     # let the call itself say what is wrong


def iovec_array(ranges):
    """A struct iovec[] over host ranges [(address, length), ...]."""
    arr = (ctypes.c_uint64 * (2 * len(ranges)))()
    for i, (addr, length) in enumerate(ranges):
        arr[2 * i] = addr
        arr[2 * i + 1] = length
    return arr
