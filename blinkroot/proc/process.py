"""Guest processes and threads, and the loop that runs a thread on its vcpu.

One guest process is one host process.  Process ids: the guest sees the host's pids.
Each guest process *is* a host process, so host pids are unique, wait4/kill map onto the
host's own calls without a translation table that could drift, and tools outside the
session (ps, kill, a debugger) name the same process the guest does.
"""

import errno
import os
import signal as host_signal
import threading

from ..errors import Errno, errno_name, ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND, \
    ERESTART_RESTARTBLOCK
from ..cpu import engine as E
from .. import cpuid
from ..syscalls import table
from ..syscalls.strace import format_call
from ..vfs.files import FdTable
from . import signals as S

# Called as hook(thread) after a signal is queued to the thread or its process: kernel
# objects whose readiness follows pending signals (signalfd) update themselves.
QUEUE_HOOKS = []

JOB_CONTROL_BITS = sum(S.bit(s) for s in S.JOB_CONTROL)
FORWARDED_MASK = set()      # filled by hostsig: the signals every host thread blocks

# Sent to a host thread blocked in a host call on behalf of a guest thread that has
# just been sent a signal: its futex wait or poll returns EINTR and it looks.
WAKE_SIGNAL = host_signal.SIGRTMAX - 1


def spawn_host_thread(child, body):
    """Run body() on a new host thread for guest thread `child`, whose tid is the host
    thread's id; returns once the tid is known."""
    started = threading.Event()

    def host_main():
        child.tid = threading.get_native_id()
        child.host_ident = threading.get_ident()
        started.set()
        try:
            body()
        except BaseException as e:   # never a traceback; the process ends as Linux would not
            from ..run import report_internal_error
            os._exit(report_internal_error(e))

    threading.Thread(target=host_main, name="guest-thread", daemon=True).start()
    started.wait()


def become_fork_child(t):
    """In a host fork child: t is the process's only thread, on a fresh host process."""
    from . import hostsig
    proc = t.proc
    proc.pid = t.tid = os.getpid()
    proc.pending = []
    t.pending = []
    proc.threads = [t]
    t.host_ident = threading.get_ident()
    t.kernel.main_thread = t
    t.kernel.close_log_in_child()
    t.kernel.host_signals = []
    proc.engine.after_fork_in_child(t.vcpu)
    hostsig.install(t.kernel, proc)
    for hook in proc.fork_child_hooks:
        hook()


def cloned_thread(t, proc, stack, tls, settls):
    """The Thread a clone() of t starts in proc: t's registers, clone's result 0, the
    given stack and TLS, t's signal mask."""
    vcpu = t.proc.engine.new_vcpu(copy_of=t.vcpu)
    regs = vcpu.get_regs()
    regs.rax = 0
    if stack:
        regs.rsp = stack
    if settls:
        regs.fs_base = tls
    vcpu.set_regs(regs)
    child = Thread(proc, vcpu)
    child.sigmask = t.sigmask
    return child


def spawn_thread(t, stack, tls, settls):
    """clone(CLONE_THREAD): a new guest thread on a new host thread; returns it."""
    proc = t.proc
    child = cloned_thread(t, proc, stack, tls, settls)

    def body():
        try:
            child.run()
        except ThreadExit:
            return
        except ProcessExit as e:
            from ..run import finish
            finish(proc, e.status, e.signal)

    spawn_host_thread(child, body)
    if t.kernel.debugger is not None:
        t.kernel.debugger.on_clone(t, child)
    return child


class ProcessExit(Exception):
    """The process ends: exit status, or the signal that killed it."""

    def __init__(self, status=0, signal=0, core=False):
        super().__init__(status, signal)
        self.status, self.signal, self.core = status, signal, core


class ThreadExit(Exception):
    """exit(2) of one thread while others live on."""


class Process:
    def __init__(self, kernel, engine):
        self.kernel = kernel
        self.engine = engine
        self.mem = None                 # blinkroot.memory.Memory, set by exec
        self.fds = FdTable()
        self.pid = os.getpid()
        self.cwd = os.getcwd().encode() if kernel.vfs.identity else b"/"
        self.umask = os.umask(0o022)
        os.umask(self.umask)
        self.sigactions = [S.SigAction() for _ in range(S.NSIG + 1)]
        self.exe = b""                  # guest path of the executable
        self.argv = []
        self.envp = []
        self.cwd_stack = None           # the cwd's walked stack (vfs/walk.py), or None
        self.comm = b""
        self.rlimits = {}               # resource -> (soft, hard) overrides of the host's
        self.threads = []
        self.pending = []               # process-directed signals (SigInfo)
        self.sigio_fds = {}             # host fd -> guest fd that asked for SIGIO (si_fd)
        self.itimer_real = None         # host ITIMER_REAL stands for the guest's
        self.vfork_done = None          # vfork child: pipe end whose closing frees the parent
        self.vfork_parent = None        # CLONE_VM|CLONE_VFORK child before exec (vfork.py)
        # Per-process state owned by a syscall area (POSIX timers, ...) registers what a
        # fork child or an exec must do to it, so the process manager needs no list of them.
        self.fork_child_hooks = []
        self.exec_hooks = []
        # In the parent: hook(pid, what) after a fork ("fork", "vfork") and, for vfork,
        # once the child has exec'd or exited ("vforkdone").  A debugger's.
        self.fork_parent_hooks = []

    def main_thread(self):
        return self.threads[0]


class Thread:
    """A guest thread.  Each runs on a host thread of its own, so a blocking host call
    blocks only it; with Unicorn they take turns on the process's one instance.  Thread
    ids are host thread ids, so host futexes (PI ones included) see the guest's own."""

    def __init__(self, proc, vcpu=None, tid=None):
        self.proc = proc
        self.kernel = proc.kernel
        self.tid = proc.pid if tid is None else tid
        self.vcpu = vcpu if vcpu is not None else proc.engine.new_vcpu()
        self.host_ident = threading.get_ident()
        self.host_job_mask = 0          # job-control signals blocked on the host thread
        self.in_host_call = False
        self.sigmask = 0
        self.pending = []               # thread-directed signals (SigInfo)
        self.altstack = S.AltStack()
        self.clear_child_tid = 0
        self.robust_list = (0, 0)
        self.saved_sigmask = None       # restored after a handler (sigsuspend, pselect)
        self.deferred = None            # work to do outside the engine (see defer)
        proc.threads.append(self)

    @property
    def mem(self):
        return self.proc.mem

    # -- signals ---------------------------------------------------------------------------
    def set_sigmask(self, mask):
        self.sigmask = mask & ~S.UNBLOCKABLE & 0xFFFFFFFFFFFFFFFF
        job = self.sigmask & JOB_CONTROL_BITS
        if job != self.host_job_mask and self.host_ident == threading.get_ident():
            # The host's tty driver looks at the job-control signals' mask (a blocked
            # SIGTTOU lets a background tcsetpgrp through): the host thread mirrors it.
            block = [s for s in S.JOB_CONTROL if job & S.bit(s)]
            host_signal.pthread_sigmask(host_signal.SIG_SETMASK, FORWARDED_MASK | set(block))
            self.host_job_mask = job

    def queue(self, info, process_wide=False):
        """Queue a signal; standard signals coalesce, realtime ones queue."""
        queue = self.proc.pending if process_wide else self.pending
        act = self.proc.sigactions[info.signo]
        if act.ignored(info.signo) and not (self.sigmask & S.bit(info.signo)):
            return
        if info.signo < 32 and any(i.signo == info.signo for i in queue):
            return
        queue.append(info)
        for hook in QUEUE_HOOKS:
            hook(self)
        if process_wide:
            for th in self.proc.threads:
                if not th.sigmask & S.bit(info.signo):
                    th.notify()
                    break
        else:
            self.notify()

    def notify(self):
        """Make the thread look at its pending signals soon: stop its guest code, or
        cut short the host call it is blocked in."""
        if self.host_ident == threading.get_ident():
            return      # the caller itself: it looks before returning to guest code
        self.vcpu.kick()
        self.notify_host_call()
        self.kernel.poke_signal_watcher()   # it wakes us again until we have looked

    def notify_host_call(self):
        """Cut short the host call this thread is blocked in, if any."""
        if self.in_host_call and self.host_ident != threading.get_ident():
            try:
                host_signal.pthread_kill(self.host_ident, WAKE_SIGNAL)
            except (ProcessLookupError, OSError):
                pass

    def pending_mask(self):
        m = 0
        for i in self.pending:
            m |= S.bit(i.signo)
        for i in self.proc.pending:
            m |= S.bit(i.signo)
        return m

    def has_deliverable(self):
        return bool((self.pending or self.proc.pending)
                    and self.pending_mask() & ~self.sigmask)

    def take_signal(self, allowed=None):
        """Dequeue the lowest-numbered deliverable signal (thread queue first)."""
        mask = ~self.sigmask if allowed is None else allowed
        best = None
        for queue in (self.pending, self.proc.pending):
            for i in queue:
                if mask & S.bit(i.signo) and (best is None or i.signo < best[1].signo):
                    best = (queue, i)
        if best is None:
            return None
        best[0].remove(best[1])
        return best[1]

    def collect_host_signals(self):
        """Signals the host delivered to blinkroot become the guest's (Ctrl-C, kill, alarm,
        SIGCHLD), with the siginfo the host gave them."""
        for info in self.kernel.take_host_signals():
            if info.tid:
                # Sent from outside to one of our threads (hostsig.send_to_thread); if
                # it has exited since, the signal goes with it, as in Linux.
                target = next((th for th in self.proc.threads if th.tid == info.tid), None)
                if target is not None:
                    target.queue(info)
                continue
            if info.fd is not None:
                info.fd = self._guest_fd(info.fd)
            self.queue(info, True)

    def _guest_fd(self, host_fd):
        """si_fd of a SIGIO-style signal names the host descriptor: the guest's is the
        one that armed it (fcntl), else any referring to the same host descriptor."""
        files = self.proc.fds.files
        fd = self.proc.sigio_fds.get(host_fd)
        if fd is not None and fd in files and files[fd].host_fd == host_fd:
            return fd
        return next((g for g, f in sorted(files.items()) if f.host_fd == host_fd), -1)

    def deliver_signals(self, regs=None):
        """Run default actions or set up handler frames for every deliverable signal."""
        self.collect_host_signals()
        while self.has_deliverable():
            info = self.take_signal()
            sig = info.signo
            act = self.proc.sigactions[sig]
            if act.handler in (S.SIG_IGN, S.SIG_DFL):
                self._act_by_default(sig)
                continue
            self.kernel.stats["signals"] += 1
            regs = self.vcpu.get_regs() if regs is None else regs
            if not S.build_frame(self, sig, act, info, regs, *self._trap_details(info)):
                raise ProcessExit(signal=S.SIGSEGV, core=True)
            if self.saved_sigmask is not None:
                # sigsuspend & co: the frame saves the mask from before the call.
                self._fix_saved_mask()
            mask = self.sigmask | act.mask
            if not act.flags & S.SA_NODEFER:
                mask |= S.bit(sig)
            self.set_sigmask(mask)
            if act.flags & S.SA_RESETHAND:
                self.proc.sigactions[sig] = S.SigAction()
            regs = None

    def _act_by_default(self, sig):
        """A signal without a handler: ignored, a stop (returns once continued), or the
        end of the process."""
        if self.proc.sigactions[sig].handler == S.SIG_IGN:
            return
        action = S.default_action(sig)
        if action == "stop":
            self.stop_self(sig)
        elif action != "ignore":
            raise ProcessExit(signal=sig, core=action == "core")

    def _unhandled_mask(self):
        acts = self.proc.sigactions
        return sum(S.bit(sig) for sig in range(1, S.NSIG + 1)
                   if acts[sig].handler in (S.SIG_DFL, S.SIG_IGN))

    def handler_pending(self):
        """Will a guest handler run for one of the signals the thread may take now?"""
        return bool(self.pending_mask() & ~self.sigmask & ~self._unhandled_mask())

    def take_default_actions(self):
        """Act now on the signals the thread may take that have no handler (a stop stops
        here until SIGCONT); the handled ones stay queued for deliver_signals."""
        self.collect_host_signals()
        while True:
            info = self.take_signal(allowed=~self.sigmask & self._unhandled_mask())
            if info is None:
                return
            self._act_by_default(info.signo)

    def _trap_details(self, info):
        trap = getattr(self, "_trap", None)
        if trap and trap[0] == info.signo:
            self._trap = None
            return trap[1:]
        return (0, 0, 0)

    def _fix_saved_mask(self):
        regs = self.vcpu.get_regs()
        self.mem.write_u64(regs.rsp + S.MASK_OFF, self.saved_sigmask)
        self.saved_sigmask = None

    def stop_self(self, sig):
        """Default action of SIGSTOP & co: stop the host process with that very signal,
        so the parent's wait4 reports it (WSTOPSIG) as it would natively."""
        if sig == S.SIGSTOP or threading.current_thread() is not threading.main_thread():
            os.kill(os.getpid(), host_signal.SIGSTOP)
            return
        old = host_signal.signal(sig, host_signal.SIG_DFL)
        try:
            host_signal.pthread_sigmask(host_signal.SIG_UNBLOCK, [sig])
            os.kill(os.getpid(), sig)       # stops here until SIGCONT
        finally:
            host_signal.signal(sig, old)

    # -- the run loop ------------------------------------------------------------------------
    def run(self):
        """Run until the process exits (raises ProcessExit) or this thread exits
        (raises ThreadExit, after cleaning up)."""
        try:
            while True:
                dbg = self.kernel.debugger
                if dbg is None:
                    self.vcpu.run(self.on_event)
                else:
                    # A debugger (blinkroot.debug) sees every event first and passes it
                    # on to on_event; it may hold the thread stopped in either call.
                    dbg.thread_resumes(self)
                    self.vcpu.run(lambda ev: dbg.on_event(self, ev))
                work, self.deferred = self.deferred, None
                if work is not None:
                    work()
        except ThreadExit:
            self.exit_thread()
            raise
        except ProcessExit as e:
            if self.kernel.debugger is not None:
                self.kernel.debugger.on_exit(self, e)
            raise

    def exit_thread(self):
        """What Linux does when a thread ends: robust futexes, clear_child_tid, gone."""
        from . import futex
        futex.release_robust_list(self)
        if self.clear_child_tid:
            try:
                self.mem.write_u32(self.clear_child_tid, 0)
                futex.wake(self, self.clear_child_tid, 1)
            except Errno:
                pass
        if self in self.proc.threads:
            self.proc.threads.remove(self)
        if self.kernel.debugger is not None:
            self.kernel.debugger.on_thread_exit(self)
        self.vcpu.close()

    def defer(self, work):
        """Run `work` once the engine has stopped (execve replaces the engine's state,
        which cannot happen from inside one of its hooks)."""
        self.deferred = work

    def on_event(self, ev):
        kind = ev.kind
        if kind is E.SYSCALL:
            return self.on_syscall()
        if kind is E.CPUID:
            regs = self.vcpu.get_regs()
            a, b, c, d = cpuid.answer(self.proc.engine.native_cpuid, regs.rax & 0xFFFFFFFF,
                                      regs.rcx & 0xFFFFFFFF)
            regs.rax, regs.rbx, regs.rcx, regs.rdx = a, b, c, d
            self.vcpu.set_regs(regs)
            return True
        if kind is E.FAULT or kind is E.TRAP:
            self.kernel.stats["faults"] += 1
            self.on_fault(ev)
            return True
        if kind is E.KICKED:
            self.deliver_signals()
            return True
        if kind is E.STEP or kind is E.BREAK or kind is E.WATCH:
            return True     # a debugger's; without one, nothing to do
        return False

    def on_syscall(self):
        args = self.vcpu.syscall_args()
        nr = args[0]
        if self.vcpu.shares_engine():
            entry = table.TABLE.get(nr)
            if entry is not None and entry.may_block(args[1:]):
                # It may block: leave the engine first, so other threads can run on it.
                self.deferred = lambda: self.finish_syscall(nr, args)
                return False
        return self.finish_syscall(nr, args)

    def finish_syscall(self, nr, args):
        self._restart_nr = nr
        self.kernel.stats["syscalls"] += 1
        strace = self.kernel.options.strace
        if strace:
            entry = table.TABLE.get(nr)
            if strace > 1 and entry is not None and entry.may_block(args[1:]):
                self.kernel.log(format_call(self, nr, args[1:], None) + " ...")
        ret = table.call(self, nr, args[1:])
        if ret is table.KEEP_REGS:
            if strace:
                self.kernel.log(format_call(self, nr, args[1:], 0, done=True))
        else:
            if strace:
                self.kernel.log(format_call(self, nr, args[1:], ret))
            if -4096 < ret < 0 and -ret in (ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND,
                                              ERESTART_RESTARTBLOCK):
                self.restart_or_eintr(-ret)
            else:
                self.vcpu.set_result(ret)
        if self.deferred is not None:
            return False
        if self.kernel.sigio_armed:
            # A host descriptor may signal us (O_ASYNC, F_NOTIFY, a lease): what this
            # very syscall made the host send arrives before the guest runs on.
            self.kernel.collect_signalfd()
        if self.pending or self.proc.pending or self.kernel.host_signals:
            self.deliver_signals()
        if self.saved_sigmask is not None:
            # No handler frame took the mask saved by ppoll/pselect/sigsuspend (the call
            # restarts, or the signal was ignored): it comes back now, as in Linux.
            self.set_sigmask(self.saved_sigmask)
            self.saved_sigmask = None
        return True

    def restart_or_eintr(self, code):
        """A blocking call was interrupted: restart it (SA_RESTART) or fail with EINTR."""
        self.collect_host_signals()
        info = None
        for queue in (self.pending, self.proc.pending):
            for i in queue:
                if ~self.sigmask & S.bit(i.signo):
                    info = i if info is None or i.signo < info.signo else info
        act = self.proc.sigactions[info.signo] if info else None
        handled = act is not None and act.handler not in (S.SIG_DFL, S.SIG_IGN)
        if code == ERESTARTNOINTR or (code == ERESTARTSYS and (not handled or act.flags & S.SA_RESTART)) \
                or (code == ERESTARTNOHAND and not handled):
            regs = self.vcpu.get_regs()       # rewind to the syscall instruction
            regs.rip -= 2
            regs.rax = self._restart_nr
            self.vcpu.set_regs(regs)
        else:
            self.vcpu.set_result(-errno.EINTR)

    def on_fault(self, ev):
        """A CPU exception becomes the signal Linux would send."""
        if ev.kind is E.FAULT:
            v = self.mem.find(ev.addr)
            if v is not None and ev.addr >= v.backed_end:
                info = S.SigInfo(S.SIGBUS, S.BUS_ADRERR, addr=ev.addr)
            else:
                info = S.SigInfo(S.SIGSEGV, S.SEGV_ACCERR if v is not None else S.SEGV_MAPERR,
                                 addr=ev.addr)
            err = 4 | (2 if ev.access == E.WRITE else 0) | (16 if ev.access == E.EXEC else 0) \
                | (1 if v is not None else 0)
            self._trap = (info.signo, 14, err, ev.addr)
        else:
            vec = ev.vector
            if vec == E.VEC_DE:
                info = S.SigInfo(S.SIGFPE, S.FPE_INTDIV, addr=ev.rip)
            elif vec == E.VEC_UD:
                info = S.SigInfo(S.SIGILL, S.ILL_ILLOPN, addr=ev.rip)
            elif vec in (E.VEC_BP, E.VEC_DB):
                info = S.SigInfo(S.SIGTRAP, S.SI_KERNEL if vec == E.VEC_BP else S.TRAP_BRKPT)
            elif vec in (E.VEC_MF, E.VEC_XM):
                info = S.SigInfo(S.SIGFPE, 0, addr=ev.rip)
            elif vec == E.VEC_AC:
                info = S.SigInfo(S.SIGBUS, 1, addr=ev.rip)
            else:
                info = S.SigInfo(S.SIGSEGV, S.SI_KERNEL)
            self._trap = (info.signo, vec, 0, 0)
        sig = info.signo
        act = self.proc.sigactions[sig]
        blocked = self.sigmask & S.bit(sig)
        if blocked or act.handler == S.SIG_IGN:
            # Linux forces a synchronous fault signal through: unblock and reset to default.
            self.proc.sigactions[sig] = S.SigAction()
            self.set_sigmask(self.sigmask & ~S.bit(sig))
        self.pending.insert(0, info)
        self.deliver_signals()


def errno_text(ret):
    return f"-1 {errno_name(-ret)}"
