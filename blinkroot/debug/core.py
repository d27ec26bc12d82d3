"""The debugger's side of the kernel hooks: all-stop control of one guest process.

The kernel knows only ``kernel.debugger`` and calls, from each guest thread's own host
thread, ``thread_resumes(t)`` before the thread runs guest code, ``on_event(t, ev)``
for every engine event (we pass it on to ``t.on_event`` when the kernel is to handle
it), ``on_clone``, ``on_thread_exit`` and ``on_exit``.  Exec and fork come through the
process's own ``exec_hooks``, ``fork_child_hooks`` and ``fork_parent_hooks``.

Forks: a frontend that follows them (``prepare_fork`` makes what the child needs to be
reached, before the fork) gets a fork/vfork stop in the parent, and in the child the
same Debugger object (a copy, by the host fork) keeps debugging the child
(``adopt_fork_child``), stopped before its first instruction.  Otherwise the child is
not debugged.

A frontend (the GDB stub) runs on a host thread of its own and talks to ``Debugger``:
``wait_stop()`` blocks until the process stops (a ``Stop``), ``resume()`` lets it run.
While stopped, every guest thread is held: the reporting one inside its event handler
(it holds the engine's instance, so no other thread runs guest code), the others in
``thread_resumes`` or waiting for the instance.
"""

import signal as host_signal
import threading
from dataclasses import dataclass, field

from ..cpu import engine as E
from .reverse import Recorder

SIGTRAP, SIGINT = int(host_signal.SIGTRAP), int(host_signal.SIGINT)


def fault_signal(ev):
    """The signal a FAULT/TRAP event becomes (as Thread.on_fault decides)."""
    if ev.kind is E.FAULT:
        return int(host_signal.SIGSEGV)
    return {E.VEC_DE: int(host_signal.SIGFPE), E.VEC_UD: int(host_signal.SIGILL),
            E.VEC_BP: SIGTRAP, E.VEC_DB: SIGTRAP, E.VEC_MF: int(host_signal.SIGFPE),
            E.VEC_XM: int(host_signal.SIGFPE), E.VEC_AC: int(host_signal.SIGBUS)
            }.get(ev.vector, int(host_signal.SIGSEGV))


# fork-like system calls: fork, vfork, and clone making a process with memory of its own
NR_CLONE, NR_FORK, NR_VFORK = 56, 57, 58
CLONE_VM, CLONE_VFORK, CLONE_THREAD = 0x100, 0x4000, 0x10000


def fork_kind(args):
    """"fork", "vfork" for a system call that host-forks the process, "spawn" for a
    clone(CLONE_VM) child that shares our memory (not followed), else None."""
    nr = args[0]
    if nr == NR_FORK:
        return "fork"
    if nr == NR_VFORK:
        return "vfork"
    if nr == NR_CLONE:
        flags = args[1]
        if flags & CLONE_THREAD:
            return None
        if flags & CLONE_VM:
            return "spawn"
        return "vfork" if flags & CLONE_VFORK else "fork"
    return None


@dataclass
class Stop:
    """Why the process stopped (what gdb's stop reply says)."""
    thread: object = None
    signal: int = SIGTRAP
    reason: str = ""            # "", "swbreak", "watch", "rwatch", "awatch", "exec",
                                # "exited", "killed", "fork", "vfork", "vforkdone"
    addr: int = 0               # watchpoint or fault address
    status: int = 0             # exit status, or the killing signal
    event: object = None        # the engine event (FAULT/TRAP) held for the kernel
    child: int = 0              # fork: the child's pid
    extra: dict = field(default_factory=dict)


class Debugger:
    def __init__(self):
        self.cond = threading.Condition()
        self.proc = None
        self.kernel = None
        self.stopped = None             # a Stop while the process is stopped
        self.started = threading.Event()   # the first thread is about to run
        self.detached = False
        self.interrupt = False
        self.resume_signal = 0
        self.resume_gen = 0
        self.only = None                # the threads allowed to run (a lone step, or
                                        # vCont's actions naming threads), None: all
        self.breakpoints = set()
        self.watchpoints = {}           # (addr, length, access) -> gdb's kind (2, 3, 4)
        self.auxv = b""
        self.exec_pending = None        # thread that just exec'd (report at its next run)
        self.on_stop = None             # frontend callback(Stop), from the guest thread
        self.stop_at_start = True
        self.syscall_log = []           # (tid, nr) of the last syscalls, for frontends
        self.reverse = Recorder(self)   # checkpoints and the system call log (reverse.py)
        self.child_stop = False         # a followed fork child: stop before running on
        self.vfork_told = False         # a vfork stop was reported: vforkdone follows
        # non-stop mode (gdb's QNonStop:1): each thread stops and resumes on its own
        self.nonstop = False
        self.ns_stops = {}              # thread -> Stop: the threads stopped (held)
        self.ns_halt = {}               # thread -> signal: asked to stop (vCont;t, vCtrlC)
        self.ns_signal = {}             # thread -> the signal it was resumed with

    # -- kernel hooks (guest threads) -------------------------------------------------------
    def _attach(self, t):
        proc = t.proc
        if self.proc is proc:
            return
        self.proc, self.kernel = proc, t.kernel
        proc.exec_hooks.append(lambda: self._on_exec(proc))
        proc.fork_child_hooks.append(self._in_fork_child)
        proc.fork_parent_hooks.append(self._in_fork_parent)
        self._read_auxv(t)
        self.reverse.attach(proc)

    def _read_auxv(self, t):
        """The auxiliary vector from the fresh stack (argc, argv, envp, auxv)."""
        try:
            mem = t.mem
            sp = t.vcpu.get_regs().rsp
            argc = mem.read_u64(sp)
            p = sp + 8 * (argc + 2)
            while mem.read_u64(p):
                p += 8
            p += 8
            start = p
            while mem.read_u64(p):
                p += 16
            self.auxv = mem.read(start, p + 16 - start)
        except Exception:
            self.auxv = b""

    def _on_exec(self, proc):
        """execve replaced the image: the old breakpoints mean nothing any more."""
        for addr in list(self.breakpoints):
            proc.engine.remove_breakpoint(addr)
        self.breakpoints.clear()
        for (a, n, k) in list(self.watchpoints):
            proc.engine.remove_watchpoint(a, n, k)
        self.watchpoints.clear()
        self.exec_pending = proc.threads[0] if proc.threads else None
        if self.exec_pending is not None:
            self._read_auxv(self.exec_pending)

    def _in_fork_child(self):
        """In a forked child: debugged on if the frontend follows forks, else let go.
        Either way it is not recorded for reverse execution (the checkpoints are the
        parent's)."""
        proc = self.proc
        self.cond = threading.Condition()   # the parent's may have been held at the fork
        self.reverse.enabled = False
        self.reverse.refused = "a forked child is not recorded"
        self.reverse.checkpoints = []
        self.reverse.log = []
        self.reverse.replay_idx = 0
        self.reverse.goal = self.reverse.rc_end = None
        proc.engine.count_instructions(False)
        self.vfork_told = False
        if not self.detached and self.adopt_fork_child():
            self.stopped = None
            self.only = None
            self.interrupt = False
            self.child_stop = True
            return
        self.detached = True
        self.kernel.debugger = None
        self.reverse.enabled = False        # the checkpoints are the parent's
        self.reverse.checkpoints = []
        proc.engine.count_instructions(False)
        for addr in list(proc.engine.breakpoints):
            proc.engine.remove_breakpoint(addr)
        for w in list(proc.engine.watches):
            proc.engine.remove_watchpoint(*w)
        for t in proc.threads:
            t.vcpu.single_step = False
        self.forked_child_cleanup()

    def forked_child_cleanup(self):
        """Frontends close what the child must not keep (sockets)."""

    def prepare_fork(self, what):
        """Before a fork (what: "fork", "vfork"): a frontend that follows forks gets
        ready to reach the child."""

    def adopt_fork_child(self):
        """In the child of a prepared fork: True if the frontend debugs it on."""
        return False

    def fork_told(self, stop):
        """In the parent: the fork stop for the child stop.child; False if the frontend
        does not follow (then nothing is reported)."""
        return False

    def _in_fork_parent(self, pid, what):
        if self.detached or self.proc is None:
            return
        t = self._current_thread()
        if t is None:
            return
        if what == "vforkdone":
            if self.vfork_told:
                self.vfork_told = False
                self.report(t, Stop(signal=SIGTRAP, reason="vforkdone"), checkpoint=False)
            return
        stop = Stop(signal=SIGTRAP, reason=what, child=pid)
        if self.fork_told(stop):
            self.vfork_told = what == "vfork"
            self.report(t, stop, checkpoint=False)     # inside the system call

    def _current_thread(self):
        me = threading.get_ident()
        for t in list(self.proc.threads):
            if t.host_ident == me:
                return t
        return None

    def _child_stops(self, t):
        """A followed fork child stops before its first instruction (gdb knows it as
        stopped from the parent's fork stop: nothing is reported)."""
        if self.child_stop:
            self.child_stop = False
            self.report(t, Stop(signal=0, reason="forked"), checkpoint=False)

    def thread_resumes(self, t):
        if t.proc.vfork_parent is not None and self.proc is not None:
            return      # a CLONE_VM vfork child (posix_spawn) in our process: not debugged
        self._attach(t)
        if self.detached:
            return
        if self.child_stop:
            self._child_stops(t)
            return
        if self.stop_at_start:
            self.stop_at_start = False
            self.started.set()
            self.report(t, Stop(signal=SIGTRAP))
            return
        if self.exec_pending is t:
            self.exec_pending = None
            self.report(t, Stop(signal=SIGTRAP, reason="exec"))
            return
        if self.nonstop:
            if t in self.ns_halt:
                self.report(t, Stop(signal=self.ns_halt.get(t, 0)))
            else:
                self._hold(t)
            return
        self._hold(t)
        if self.interrupt:
            self.report(t, Stop(signal=SIGINT))

    def on_event(self, t, ev):
        if self.detached or t.proc is not self.proc:
            return t.on_event(ev)
        kind = ev.kind
        if kind is E.SYSCALL:
            args = t.vcpu.syscall_args()
            if len(self.syscall_log) > 200:
                del self.syscall_log[:100]
            self.syscall_log.append((t.tid, args[0]))
            forking = fork_kind(args)
            if forking is not None:
                self.prepare_fork(forking)
            before = self._watched_bytes(t)
            ok = self.reverse.on_syscall(t, ev)
            changed = self._changed_watch(t, before)
            if self.child_stop:
                self._child_stops(t)
            elif changed is not None:
                # blink's -w: a watchpoint stops whatever changed the bytes, the kernel too
                self.report(t, Stop(signal=SIGTRAP, reason="watch", addr=changed))
            else:
                self._hold(t)   # stopped while blocked in the call (request_interrupt)
            return ok
        if self.reverse.goal is not None or self.reverse.rc_end is not None:
            r = self.reverse.replay_event(t, ev)
            if r is True:
                return True
            if r == "kernel":
                return t.on_event(ev)
            if isinstance(r, Stop):
                self.report(t, r)
                return True
        if kind is E.CPUID:
            return t.on_event(ev)
        if kind is E.KICKED:
            ok = t.on_event(ev)
            if self.nonstop:
                if t in self.ns_halt:
                    self.report(t, Stop(signal=self.ns_halt.get(t, 0)))
                else:
                    self._hold(t)
            elif self.interrupt:
                self.report(t, Stop(signal=SIGINT))
            else:
                self._hold(t)
            return ok
        if kind is E.STEP:
            if t.vcpu.single_step:
                self.report(t, Stop(signal=SIGTRAP))
            elif self.reverse.enabled:
                self.reverse.tick(t)        # a periodic checkpoint while running
            return True
        if kind is E.BREAK:
            if ev.addr in self.breakpoints:
                if not self.report(t, Stop(signal=SIGTRAP, reason="swbreak", addr=ev.addr)):
                    t.vcpu.resume_bp = None     # not reported: hit it again
            return True
        if kind is E.WATCH:
            gdbkind = self._watch_kind(ev)
            reason = {2: "watch", 3: "rwatch", 4: "awatch"}.get(gdbkind, "awatch")
            self.report(t, Stop(signal=SIGTRAP, reason=reason, addr=ev.addr))
            return True
        if kind is E.FAULT or kind is E.TRAP:
            stop = Stop(signal=fault_signal(ev), addr=ev.addr, event=ev)
            if not self.report(t, stop):
                return True             # the instruction runs (and faults) again
            if self._resumed_with(t) == stop.signal:
                return t.on_event(ev)   # passed on: the kernel delivers the signal
            return True                 # suppressed: the instruction runs again
        return t.on_event(ev)

    def _watched_bytes(self, t):
        """The bytes under each write (or access) watchpoint, before a system call."""
        out = {}
        for (a, n, k), gk in self.watchpoints.items():
            if gk in (2, 4):
                try:
                    out[a] = t.mem.read(a, n)
                except Exception:
                    out[a] = None
        return out

    def _changed_watch(self, t, before):
        """The address of a watchpoint whose bytes the system call changed, or None."""
        for a, old in before.items():
            n = next((n for (wa, n, _k) in self.watchpoints if wa == a), 0)
            try:
                now = t.mem.read(a, n)
            except Exception:
                now = None
            if now != old:
                return a
        return None

    def watch_reason(self, ev):
        return {2: "watch", 3: "rwatch", 4: "awatch"}.get(self._watch_kind(ev), "awatch")

    def _watch_kind(self, ev):
        for (a, n, k), gk in self.watchpoints.items():
            if a == ev.addr and (k == "access" or k == ev.access):
                return gk
        return 4

    def on_clone(self, parent, child):
        if self.reverse.enabled:
            import sys
            sys.stderr.write("blinkroot: reverse execution: the recording ends at the "
                             "first clone (multi-threaded processes are not supported)\n")
            self.reverse.stop("reverse execution of multi-threaded processes is not "
                              "supported yet")

    def on_thread_exit(self, t):
        with self.cond:
            self.cond.notify_all()

    def on_exit(self, t, exc):
        """The process ends (exit_group or a fatal signal): say so, then let it go."""
        if self.detached:
            return
        self.reverse.discard(self.reverse.checkpoints)
        self.reverse.checkpoints = []
        if exc.signal:
            stop = Stop(thread=t, signal=exc.signal, reason="killed", status=exc.signal)
        else:
            stop = Stop(thread=t, signal=0, reason="exited", status=exc.status & 0xFF)
        self.report(t, stop, wait=False)
        self.wait_exit_told()

    def wait_exit_told(self):
        """Frontends override: block until the exit was reported to the user."""

    def frontend_state(self):
        """What a checkpoint's copy taking over needs of the frontend (picklable)."""
        return {}

    def frontend_fds(self):
        """Descriptors the copy must get (the connection to the frontend)."""
        return []

    def took_over(self, state, fds):
        """In a checkpoint's copy that takes over: frontends start serving again."""

    # -- stopping -------------------------------------------------------------------------
    def _held(self, t):
        if self.detached:
            return False
        if self.nonstop:
            return t in self.ns_stops
        return self.stopped is not None or (self.only is not None and t not in self.only)

    def _resumed_with(self, t):
        return self.ns_signal.get(t, 0) if self.nonstop else self.resume_signal

    def _hold(self, t):
        with self.cond:
            while self._held(t):
                if self.nonstop:
                    break
                self.cond.wait()
            else:
                return
        self._park(t)

    def _park(self, t):
        """Non-stop: hold t while its siblings run.  It gives the engine's instance up
        if it can (not inside an engine hook); else it is marked parked, so a frontend
        may use the instance meanwhile (it touches nothing until resumed)."""
        vcpu = t.vcpu
        try:
            ctx = vcpu.released()
            ctx.__enter__()
        except Exception:
            ctx = None
        try:
            with self.cond:
                vcpu.parked = True
                try:
                    while self._held(t):
                        self.cond.wait()
                finally:
                    vcpu.parked = False
        finally:
            if ctx is not None:
                ctx.__exit__(None, None, None)

    def _ns_report(self, t, stop, wait):
        with self.cond:
            if self.detached:
                return False
            if t in self.ns_stops:
                held = True
            else:
                held = False
                stop.thread = t
                self.ns_halt.pop(t, None)
                t.vcpu.single_step = False
                self.ns_stops[t] = stop
                self.ns_signal[t] = 0
                self.cond.notify_all()
        if held:
            self._park(t)
            return False
        self.ns_stopped(stop)
        if wait:
            self._park(t)
        return True

    def ns_stopped(self, stop):
        """Non-stop: a thread stopped (frontends tell gdb); from that thread, or from the
        frontend's for a thread blocked in a host call."""

    def report(self, t, stop, wait=True, checkpoint=True):
        """Stop the process with `stop` (reported by thread t) and hold t until resumed.
        Returns False if another thread's stop came first (t was only held)."""
        if self.nonstop:
            return self._ns_report(t, stop, wait)
        if wait and checkpoint and self.reverse.at_stop(t):
            return True         # a checkpoint's copy, resumed: it runs on
        with self.cond:
            if self.detached:
                return False
            if self._held(t):
                while self._held(t):
                    self.cond.wait()
                return False
            stop.thread = t
            self.interrupt = False
            for th in list(self.proc.threads):
                th.vcpu.single_step = False
            self.stopped = stop
            self.only = None
            self.resume_signal = 0
            gen = self.resume_gen
            self.cond.notify_all()
        if self.on_stop is not None:
            self.on_stop(stop)
        if not wait:
            return True
        with self.cond:
            while (self.resume_gen == gen or self._held(t)) and not self.detached:
                if self.nonstop:
                    break       # gdb switched to non-stop mode while we were stopped
                if self.resume_gen != gen and self.stopped is None and self._held(t):
                    break       # resumed, but not this thread: hold it off the engine
                self.cond.wait()
            else:
                return True
        if self.nonstop:
            self._park(t)
            return True
        self._hold_released(t)
        return True

    def _hold_released(self, t):
        """Held while other threads of the process run (vCont named them, not t): give
        the engine's instance up meanwhile, if it can be (not inside an engine hook)."""
        try:
            ctx = t.vcpu.released()
            ctx.__enter__()
        except Exception:
            ctx = None
        try:
            self._hold(t)
        finally:
            if ctx is not None:
                ctx.__exit__(None, None, None)

    # -- frontend side ----------------------------------------------------------------------
    def quiet(self):
        """Context manager: no guest thread uses the engine meanwhile (non-stop: look at
        or change a stopped thread while its siblings run)."""
        cpu = getattr(self.proc.engine, "cpu", None) if self.proc is not None else None
        if not self.nonstop or cpu is None or not hasattr(cpu, "exclusive"):
            import contextlib
            return contextlib.nullcontext()
        return cpu.exclusive()

    def set_nonstop(self, on):
        """gdb's QNonStop: switch modes while the process is stopped (every thread)."""
        with self.cond:
            if on == self.nonstop:
                return True
            if on:
                if self.stopped is None and self.proc is not None:
                    return False
                stop = self.stopped
                self.ns_stops = {}
                for th in self.threads():
                    self.ns_stops[th] = stop if stop is not None and stop.thread is th \
                        else Stop(thread=th, signal=0)
                self.ns_halt, self.ns_signal = {}, {}
                self.reverse.stop("reverse execution is not supported in non-stop mode")
                self.nonstop = True
                self.stopped = None
                self.only = None
                self.cond.notify_all()
                return True
            if len(self.ns_stops) < len(self.threads()):
                return False            # all-stop again: only with every thread stopped
            first = next(iter(self.ns_stops.values()), None)
            self.nonstop = False
            self.stopped = first
            self.ns_stops = {}
            self.cond.notify_all()
        return True

    def ns_resume(self, actions):
        """Non-stop vCont: actions {thread: (op, signal)}, op "c", "s" or "t"; threads
        not named are left as they are."""
        halt = []
        with self.cond:
            for t, (op, sig) in actions.items():
                if op == "t":
                    if t not in self.ns_stops and t not in self.ns_halt:
                        self.ns_halt[t] = sig
                        halt.append(t)
                elif t in self.ns_stops:
                    t.vcpu.single_step = op == "s"
                    del self.ns_stops[t]
                    self.ns_signal[t] = sig
            self.resume_gen += 1
            self.cond.notify_all()
        for t in halt:
            self._halt(t)

    def _halt(self, t):
        """Stop a running thread soon: kick it; one blocked in a host call (sleep, read)
        is stopped as it is (held when it comes back)."""
        with self.cond:
            if t.in_host_call and t in self.ns_halt and t not in self.ns_stops:
                stop = Stop(thread=t, signal=self.ns_halt.pop(t))
                self.ns_stops[t] = stop
                self.ns_signal[t] = 0
                self.cond.notify_all()
            else:
                stop = None
        if stop is not None:
            self.ns_stopped(stop)
            return
        try:
            t.notify()
        except Exception:
            pass

    def ns_interrupt(self):
        """Non-stop ^C (vCtrlC): stop one running thread with SIGINT."""
        with self.cond:
            running = [t for t in self.threads() if t not in self.ns_stops]
            if not running:
                return
            t = running[0]
            self.ns_halt[t] = SIGINT
        self._halt(t)

    def wait_stop(self, timeout=None):
        with self.cond:
            if self.stopped is None:
                self.cond.wait_for(lambda: self.stopped is not None, timeout)
            return self.stopped

    def resume(self, step_thread=None, signal=0, others=True, running=None):
        """Let the process run; with step_thread, that thread executes one instruction
        (alone unless `others`: the rest stay stopped, as gdb steps over a breakpoint).
        `running` (with others false): the threads that continue besides step_thread,
        the rest stay stopped (vCont actions naming threads)."""
        with self.cond:
            if self.stopped is None:
                return
            self.only = None
            if step_thread is not None:
                step_thread.vcpu.single_step = True
            if not others and (step_thread is not None or running):
                self.only = frozenset(running or ()) | (
                    {step_thread} if step_thread is not None else set())
            self.resume_signal = signal
            self.stopped = None
            self.resume_gen += 1
            self.cond.notify_all()

    def request_interrupt(self):
        """Stop the running process soon (gdb's ^C): kick whatever runs."""
        with self.cond:
            if self.stopped is not None or self.proc is None:
                return
            self.interrupt = True
            threads = list(self.proc.threads)
            if threads and all(th.in_host_call or (self.only is not None
                                                   and th not in self.only)
                               for th in threads):
                # Every thread is blocked in a host call (wait4, read, a vfork parent):
                # the process is stopped as it is; a thread coming back is held.
                self.interrupt = False
                for th in threads:
                    th.vcpu.single_step = False
                self.stopped = Stop(thread=threads[0], signal=SIGINT)
                self.only = None
                self.resume_signal = 0
                self.cond.notify_all()
                if self.on_stop is not None:
                    self.on_stop(self.stopped)
        for th in list(self.proc.threads):
            try:
                th.notify()
            except Exception:
                pass

    def detach(self):
        proc = self.proc
        self.reverse.stop("detached")
        for addr in list(self.breakpoints):
            proc.engine.remove_breakpoint(addr)
        self.breakpoints.clear()
        for w in list(self.watchpoints):
            proc.engine.remove_watchpoint(*w)
        self.watchpoints.clear()
        with self.cond:
            self.detached = True
            self.nonstop = False
            self.ns_stops = {}
            self.stopped = None
            self.resume_gen += 1
            self.cond.notify_all()

    def threads(self):
        return list(self.proc.threads) if self.proc is not None else []

    def thread(self, tid):
        for t in self.threads():
            if t.tid == tid:
                return t
        return None

    def add_breakpoint(self, addr):
        self.breakpoints.add(addr)
        self.proc.engine.add_breakpoint(addr)

    def remove_breakpoint(self, addr):
        self.breakpoints.discard(addr)
        self.proc.engine.remove_breakpoint(addr)

    def add_watchpoint(self, gdbkind, addr, length):
        access = {2: E.WRITE, 3: E.READ}.get(gdbkind, "access")
        self.watchpoints[(addr, length, access)] = gdbkind
        self.proc.engine.add_watchpoint(addr, length, access)

    def remove_watchpoint(self, gdbkind, addr, length):
        access = {2: E.WRITE, 3: E.READ}.get(gdbkind, "access")
        self.watchpoints.pop((addr, length, access), None)
        self.proc.engine.remove_watchpoint(addr, length, access)
