"""Signals the host sends to blinkroot reach the guest.

Python runs its signal handlers only in the main host thread and only between
bytecodes, never while the engine computes.  So the C-level wakeup pipe tells which
signals came: a watcher thread records them, kicks whichever vcpu is running and wakes
threads blocked in host calls; a blocked call interrupted by the signal records them
itself (syscalls/blocking.py), so nothing waits on the watcher."""

import ctypes
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
            _installed[sig] = _sigaction(sig)
    signal.signal(WAKE_SIGNAL, _ignore)
    for sig, act in enumerate(proc.sigactions):
        if sig in _installed and act.handler == 1:      # inherited SIG_IGN
            mirror_ignore(sig, True)

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


# The host's own disposition follows the guest's SIG_IGN: the host kernel consults it
# (a background process's tcsetpgrp raises SIGTTOU unless it is ignored; an ignored
# SIGINT does not interrupt anything), and fork children inherit it.  libc's sigaction,
# since Python's signal module works from the main thread only.
_libc = ctypes.CDLL(None, use_errno=True)
_SIGACTION_SIZE = 152          # glibc's struct sigaction on x86-64
_installed = {}                # signal -> the raw struct sigaction of blinkroot's handler


def _sigaction(sig, new=None):
    old = ctypes.create_string_buffer(_SIGACTION_SIZE)
    _libc.sigaction(sig, new, old)
    return old.raw


def mirror_ignore(sig, ignored):
    if sig not in _installed:
        return
    if ignored:
        _sigaction(sig, ctypes.create_string_buffer(b"\x01" + bytes(_SIGACTION_SIZE - 1)))
    else:
        _sigaction(sig, ctypes.create_string_buffer(_installed[sig], _SIGACTION_SIZE))
