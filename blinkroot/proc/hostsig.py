"""Signals the host sends to blinkroot reach the guest.

Python runs its signal handlers only in the main host thread and only between
bytecodes, never while the engine computes.  So the C-level wakeup pipe tells which
signals came: a watcher thread records them, kicks whichever vcpu is running and wakes
threads blocked in host calls; a blocked call interrupted by the signal records them
itself (syscalls/blocking.py), so nothing waits on the watcher."""

import os
import select
import signal
import threading

from .process import WAKE_SIGNAL

# Signals the guest may receive from outside; SIGPIPE stays ignored on the host (a guest
# write to a broken pipe gets EPIPE and its own SIGPIPE from the syscall layer).
FORWARDED = ("SIGHUP", "SIGINT", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGTERM",
             "SIGWINCH", "SIGCONT", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGVTALRM",
             "SIGPROF", "SIGIO", "SIGPWR", "SIGXCPU", "SIGXFSZ", "SIGCHLD")


class Interrupted(Exception):
    """A libc call made for the guest returned EINTR (vfs/hostcall.py)."""


def install(kernel, proc):
    """Set up forwarding in this host process (at start, and again in a fork child,
    which inherits neither the watcher thread nor a private wakeup pipe)."""
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    kernel.signal_pipe = r
    kernel.ignored_host_signals = (WAKE_SIGNAL,)

    # A handler must exist for the host not to apply the default action; its only job
    # is to interrupt host calls (the wakeup pipe tells which signal came).
    for name in FORWARDED:
        sig = getattr(signal, name, None)
        if sig is not None:
            signal.signal(sig, _ignore)
    signal.signal(WAKE_SIGNAL, _ignore)

    def watch():
        while True:
            select.select([r], [], [])
            if kernel.drain_host_signals():
                proc.engine.kick_running()
                for t in list(proc.threads):
                    t.notify_host_call()

    threading.Thread(target=watch, name="blinkroot-signals", daemon=True).start()


def _ignore(_signum, _frame):
    pass
