"""Blocking host calls made for the guest: a host signal cuts them short.

Inside ``with blocking(t):`` the thread lets the other guest threads of its process run,
and a signal that blinkroot forwards to the guest raises
hostsig.Interrupted out of the host call; the syscall then returns ERESTARTSYS, which
the run loop turns into EINTR or a restart, as the guest's SA_RESTART asks."""

from contextlib import contextmanager

from ..errors import Errno, ERESTARTSYS
from ..proc.hostsig import Interrupted


@contextmanager
def blocking(t, restart=ERESTARTSYS):
    if t.kernel.host_signals or t.has_deliverable():
        raise Errno(restart)   # a signal is already waiting: don't start to block
    t.interruptible = True
    t.in_host_call = True
    try:
        with t.vcpu.released():     # other threads of the process run meanwhile
            yield
    except Interrupted:
        raise Errno(restart)
    finally:
        t.interruptible = False
        t.in_host_call = False
