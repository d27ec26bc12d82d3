"""Session-wide state of one blinkroot run: options, the log, statistics, the VFS.

One Kernel per host process (a host fork copies it, as it copies everything else)."""

import os
import sys
import threading
import time


class Options:
    def __init__(self):
        self.strace = 0             # -s, repeatable
        self.log_path = None        # -L PATH or $BLINK_LOG_FILENAME; default blink.log
        self.log_stderr = False     # -e
        self.stats = False          # -Z
        self.root = None            # -C ROOT
        self.overlay = None         # --overlay DIR: writable upper layer over the root
        self.engine = "unicorn"


class Kernel:
    def __init__(self, options, vfs):
        self.options = options
        self.vfs = vfs
        self._log_file = None
        self.stats = {"syscalls": 0, "faults": 0, "signals": 0, "execs": 0}
        self.started = time.monotonic()
        self.host_signals = []      # SigInfo of host signals not yet queued to the guest
        self.sigio_armed = False    # a guest fcntl asked the host for SIGIO (syscalls/files.py)
        self.signal_pipe = -1       # read end of the host's signal wakeup pipe (hostsig)
        self.watcher_kick = -1      # write a byte to make the signal watcher look again
        self.signalfd = -1
        self.ignored_host_signals = ()
        self.signal_lock = threading.Lock()
        self.main_thread = None     # the guest thread the main host thread runs
        # blinkroot.debug's hook object (see Thread.run), or None: the kernel calls its
        # on_event/thread_resumes/on_clone/on_thread_exit/on_exit and nothing else.
        self.debugger = getattr(options, "debugger", None)

    # -- host signals ----------------------------------------------------------------------
    def collect_signalfd(self):
        """Move what the host has queued for blinkroot (hostsig's signalfd) into
        host_signals.  The watcher does it as signals come; a thread about to change a
        disposition does it first, so that a signal the host generated before the
        change is judged by the disposition of the moment it was generated."""
        with self.signal_lock:
            if self.signalfd >= 0:
                self.host_signals.extend(self.read_signalfd(self.signalfd))

    def drain_host_signals(self):
        """Record the signals whose numbers wait in Python's wakeup pipe (the job-control
        ones, see hostsig); returns True if there were any.  Safe from any host thread."""
        from .proc.signals import SigInfo, SI_KERNEL
        with self.signal_lock:
            try:
                data = os.read(self.signal_pipe, 256)
            except (BlockingIOError, OSError):
                return False
            sigs = [SigInfo(s, SI_KERNEL) for s in data if s not in self.ignored_host_signals]
            self.host_signals.extend(sigs)
            return bool(sigs)

    def poke_signal_watcher(self):
        try:
            os.write(self.watcher_kick, b"!")
        except OSError:
            pass

    def take_host_signals(self):
        with self.signal_lock:
            sigs, self.host_signals = self.host_signals, []
            return sigs

    # -- logging -------------------------------------------------------------------------
    def log(self, line):
        """One line to the log file (created on first use, as blink does) and maybe stderr."""
        data = f"{line}\n"
        if self.options.log_stderr:
            try:
                os.write(2, f"blinkroot: {data}".encode("utf-8", "replace"))
            except OSError:
                pass
        path = self.options.log_path
        if path in ("/dev/null", ""):
            return
        if self._log_file is None:
            try:
                self._log_file = open(path or "blink.log", "a", encoding="utf-8", errors="replace")
            except OSError:
                self.options.log_path = "/dev/null"
                return
        self._log_file.write(data)
        self._log_file.flush()

    def flush_log(self):
        if self._log_file is not None:
            try:
                self._log_file.flush()
            except OSError:
                pass

    def close_log_in_child(self):
        """A forked child reopens the log lazily (its own buffer, same file)."""
        self._log_file = None

    def print_stats(self):
        elapsed = time.monotonic() - self.started
        lines = [f"{k:<12} {v}" for k, v in sorted(self.stats.items())]
        lines.append(f"{'wall_s':<12} {elapsed:.3f}")
        sys.stderr.write("".join(f"blinkroot: {line}\n" for line in lines))
