"""Signals the host sends to blinkroot reach the guest.

Python runs its signal handlers only between bytecodes, never while the engine computes,
so a C-level wakeup pipe is watched by a thread that kicks the vcpu; the Python-level
handler then records the signal for the guest, and cuts short a blocking host call
(the guest's syscall returns EINTR or restarts, as the guest's handler asks)."""

import os
import signal
import threading

# Signals the guest may receive from outside; SIGPIPE stays ignored on the host (a guest
# write to a broken pipe gets EPIPE and its own SIGPIPE from the syscall layer).
FORWARDED = ("SIGHUP", "SIGINT", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGTERM",
             "SIGWINCH", "SIGCONT", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGVTALRM",
             "SIGPROF", "SIGIO", "SIGPWR", "SIGXCPU", "SIGXFSZ", "SIGCHLD")


class Interrupted(Exception):
    """A host signal arrived during a blocking host call made for the guest."""


def install(kernel, thread):
    r, w = os.pipe()
    os.set_blocking(w, False)
    signal.set_wakeup_fd(w, warn_on_full_buffer=False)

    def on_signal(signum, _frame):
        kernel.host_signals.append(signum)
        # Only a signal the guest will act on cuts a blocking call short, as on Linux.
        act = thread.proc.sigactions[signum]
        if thread.interruptible and not act.ignored(signum) \
                and not thread.sigmask & (1 << (signum - 1)):
            thread.interruptible = False
            raise Interrupted()

    for name in FORWARDED:
        sig = getattr(signal, name, None)
        if sig is not None:
            signal.signal(sig, on_signal)

    def watch():
        while True:
            try:
                if not os.read(r, 64):
                    return
            except OSError:
                return
            thread.vcpu.kick()

    threading.Thread(target=watch, name="blinkroot-signals", daemon=True).start()
