"""Signals the host sends to blinkroot reach the guest.

Python runs its signal handlers only in the main host thread and only between
bytecodes, never while the engine computes.  So a C-level wakeup pipe is watched by a
thread that kicks whichever vcpu is running; the Python-level handler records the signal
for the guest and cuts short a blocking host call of the main host thread's guest
thread (the guest's syscall returns EINTR or restarts, as the guest's handler asks)."""

import os
import signal
import threading

from .process import WAKE_SIGNAL

# Signals the guest may receive from outside; SIGPIPE stays ignored on the host (a guest
# write to a broken pipe gets EPIPE and its own SIGPIPE from the syscall layer).
FORWARDED = ("SIGHUP", "SIGINT", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGTERM",
             "SIGWINCH", "SIGCONT", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGVTALRM",
             "SIGPROF", "SIGIO", "SIGPWR", "SIGXCPU", "SIGXFSZ", "SIGCHLD")


class Interrupted(Exception):
    """A host signal arrived during a blocking host call made for the guest."""


def install(kernel, proc):
    """Set up forwarding in this host process (at start, and again in a fork child,
    which inherits neither the watcher thread nor a private wakeup pipe)."""
    r, w = os.pipe()
    os.set_blocking(w, False)
    signal.set_wakeup_fd(w, warn_on_full_buffer=False)

    def on_signal(signum, _frame):
        kernel.host_signals.append(signum)
        t = kernel.main_thread
        # Only a signal the guest will act on cuts a blocking call short, as on Linux.
        if t is not None and t.interruptible and not proc.sigactions[signum].ignored(signum) \
                and not t.sigmask & (1 << (signum - 1)):
            t.interruptible = False
            raise Interrupted()

    for name in FORWARDED:
        sig = getattr(signal, name, None)
        if sig is not None:
            signal.signal(sig, on_signal)
    # Its only job is to make a host call return EINTR (see Thread.notify).
    signal.signal(WAKE_SIGNAL, lambda _signum, _frame: None)

    def watch():
        while True:
            try:
                if not os.read(r, 64):
                    return
            except OSError:
                return
            proc.engine.kick_running()

    threading.Thread(target=watch, name="blinkroot-signals", daemon=True).start()
