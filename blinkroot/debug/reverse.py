"""Reverse execution by checkpoints and replay (single-threaded guest processes).

One guest process is one host process, so a host fork is a copy-on-write snapshot of
all of it: guest memory is host memory, the registers are in the engine, the kernel's
state is Python objects.  While a debugger is attached:

* the engine counts retired instructions (``Engine.count_instructions``): a position in
  the recording is an instruction count;
* at a stop, if enough instructions ran since the last one, the reporting guest thread
  forks a *checkpoint*: a child that waits on a pipe, holding the stopped state;
* every system call is logged in order: its number, and for those whose effect comes
  from outside the process (``FROM_LOG``: I/O, time, randomness) the registers after it
  and the guest memory it wrote.  The others (mmap, brk, sigaction, open, ...) only
  change the process's own state and are performed again on replay, from the same state.

Going back to count T: the nearest checkpoint at or before T forks a copy of itself
(so it stays a checkpoint), the copy takes over the gdb connection, the old process
exits, and the copy runs forward to exactly T (``Engine.stop_at``) with system calls
answered from the log, so a ``write`` is not performed twice.  Forward execution after
that also reads the log until it runs out, then is live again.

A fork is logged as the I/O calls are: replayed, it returns the child's pid again and
makes no second child.  The child itself is not recorded (a debugged child has no
reverse execution); a clone(CLONE_VM) child (posix_spawn) ends the recording.
"""

import os
import pickle
import select
import socket
import struct
import sys
import threading
import time

from ..cpu import engine as E

# x86-64 system calls answered from the log on replay: what they do reaches outside
# the process (writes) or depends on it (reads, time, randomness, other processes).
FROM_LOG = {
    0, 1, 7, 8, 16, 17, 18, 19, 20, 23, 34, 35, 40, 42, 43, 44, 45, 46, 47, 61, 96, 98,
    99, 100, 128, 201, 217, 228, 230, 232, 247, 270, 271, 275, 276, 278, 281, 288, 295,
    296, 299, 307, 318, 326,
}
# At stops: a checkpoint when this many instructions ran since the last one.
INTERVAL = int(os.environ.get("BLINKROOT_CHECKPOINT_INTERVAL", "2000"))
# While running (continue, or a replay): one every this many seconds; the engine stops
# every TICK instructions to look at the clock.
SECONDS = float(os.environ.get("BLINKROOT_CHECKPOINT_SECONDS", "1"))
TICK = 1 << 21
# Kept: the first, the newest, and in between fewer the older they are (thin_out).
MAX_CHECKPOINTS = max(3, int(os.environ.get("BLINKROOT_CHECKPOINTS", "16")))
POLLRDHUP = 0x2000
TRACE = os.environ.get("BLINKROOT_REVERSE_TRACE") == "1"


def trace(text):
    """BLINKROOT_REVERSE_TRACE=1: checkpoints and replays on stderr (what they cost)."""
    if TRACE:
        sys.stderr.write(f"blinkroot: reverse: pid {os.getpid()} cpu {time.process_time():.2f}"
                         f" s: {text}\n")


class Syscall:
    __slots__ = ("nr", "regs", "writes")

    def __init__(self, nr, regs=None, writes=()):
        self.nr, self.regs, self.writes = nr, regs, writes


class Checkpoint:
    def __init__(self, count, pid, wfd, log_len):
        self.count, self.pid, self.wfd, self.log_len = count, pid, wfd, log_len


def _send_msg(sock, obj, fds):
    """A pickled message, with descriptors (gdb's connection) passed along."""
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    data = struct.pack("<Q", len(data)) + data
    socket.send_fds(sock, [data[:8]], fds)
    sock.sendall(data[8:])


def _recv_msg(sock):
    head, fds, _flags, _addr = socket.recv_fds(sock, 8, 4)
    if len(head) < 8:
        return None, fds
    n = struct.unpack("<Q", head)[0]
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None, fds
        data += chunk
    return pickle.loads(data), fds


class Recorder:
    """The recording and the checkpoints of one debugged process (a Debugger's)."""

    def __init__(self, dbg):
        self.dbg = dbg
        self.enabled = False
        self.log = []
        self.replay_idx = 0         # next log entry to answer from (== len(log): live)
        self.checkpoints = []
        self.goal = None            # replaying to this count: (count, Stop fields)
        self.rc_end = None          # reverse-continue search: hits before this count
        self.rc_hits = []
        self.refused = None         # why reverse execution is off, for the frontend
        self.rc_from = None         # the checkpoint the reverse-continue search began at
        self.tick_at = None         # the next look at the clock (an instruction count)
        self.near = None            # replaying: a checkpoint here, just before the goal
        self.last_time = 0.0        # when the newest checkpoint was taken

    # -- switching on ---------------------------------------------------------------------
    def attach(self, proc):
        if os.environ.get("BLINKROOT_REVERSE", "1") == "0":
            self.refused = "reverse execution is switched off (BLINKROOT_REVERSE=0)"
            return
        eng = proc.engine
        if not getattr(eng, "can_count", lambda: False)():
            self.refused = "this engine cannot count instructions"
            return
        eng.count_instructions(True)
        self.enabled = True

    def stop(self, why):
        """Multi-threaded, forked: the recording ends here."""
        if not self.enabled:
            return
        self.enabled = False
        self.refused = why
        self.discard(self.checkpoints)
        self.checkpoints = []
        self.log = []
        self.replay_idx = 0
        proc = self.dbg.proc
        if proc is not None:
            proc.engine.count_instructions(False)

    def discard(self, cps):
        for cp in cps:
            try:
                os.kill(cp.pid, 9)
            except OSError:
                pass
            try:
                cp.wfd.close()
            except OSError:
                pass

    @property
    def count(self):
        return self.dbg.proc.engine.insn_count

    # -- system calls -----------------------------------------------------------------------
    def on_syscall(self, t, ev):
        if not self.enabled:
            return t.on_event(ev)
        nr = t.vcpu.syscall_args()[0]
        if self.replay_idx < len(self.log):
            rec = self.log[self.replay_idx]
            if rec.nr == nr:
                self.replay_idx += 1
                if rec.regs is None:
                    return t.on_event(ev)       # the process's own state: do it again
                mem = t.proc.mem
                for va, data in rec.writes:
                    mem.write_force(va, data)
                t.vcpu.set_regs(rec.regs)
                return True
            sys.stderr.write(f"blinkroot: replay diverged at system call {nr} (the log "
                             f"has {rec.nr}): running live from here\n")
            del self.log[self.replay_idx:]
        from .core import fork_kind
        forking = fork_kind(t.vcpu.syscall_args())
        if forking == "spawn":
            sys.stderr.write("blinkroot: reverse execution: the recording ends at a "
                             "clone(CLONE_VM) child (posix_spawn)\n")
            self.stop("reverse execution past a clone(CLONE_VM) child is not supported")
            return t.on_event(ev)
        if nr not in FROM_LOG and forking is None:
            self.log.append(Syscall(nr))
            self.replay_idx = len(self.log)
            return t.on_event(ev)
        mem = t.proc.mem
        mem.written = []
        me = os.getpid()
        try:
            ok = t.on_event(ev)
        finally:
            written, mem.written = mem.written, None
        if os.getpid() != me:
            return ok           # a fork's child: not recorded
        writes = []
        for va, n in written:
            try:
                writes.append((va, mem.read_raw(va, n)))
            except Exception:
                pass
        self.log.append(Syscall(nr, t.vcpu.get_regs(), writes))
        self.replay_idx = len(self.log)
        return ok

    # -- checkpoints ------------------------------------------------------------------------
    def _arm(self):
        """The engine stops (a STEP event) at the next of: a look at the clock, the
        checkpoint before the goal, the goal (or where a reverse-continue began)."""
        goal = self.goal[0] if self.goal is not None else self.rc_end
        marks = [m for m in (self.tick_at, self.near, goal) if m is not None]
        self.dbg.proc.engine.stop_at = min(marks) if marks else None

    def at_stop(self, t):
        """The process is stopping (in the reporting guest thread): maybe fork a
        checkpoint.  True in a checkpoint's copy that was resumed: it runs on."""
        if not self.enabled or len(self.dbg.proc.threads) != 1:
            return
        count = self.count
        if self.tick_at is None or self.tick_at <= count:
            self.tick_at = count + TICK
        self._arm()
        if self.checkpoints and count - self.checkpoints[-1].count < INTERVAL:
            return
        return self.checkpoint(t)

    def tick(self, t):
        """The engine stopped at _arm's mark while running: a checkpoint if the last one
        is SECONDS old (or this is the one just before a replay's goal).  Always True: the
        thread runs on (in a resumed checkpoint's copy too)."""
        if not self.enabled or len(self.dbg.proc.threads) != 1:
            return True
        count = self.count
        due = False
        if self.near is not None and count >= self.near:
            self.near = None
            due = True
        if self.tick_at is not None and count >= self.tick_at:
            self.tick_at = count + TICK
            due = due or time.monotonic() - self.last_time >= SECONDS
        if due and self.checkpoint(t):
            return True
        self._arm()
        return True

    def checkpoint(self, t):
        """Fork a checkpoint here.  True in its copy when that is resumed."""
        count = self.count
        if self.checkpoints and self.checkpoints[-1].count >= count:
            return
        t0 = time.perf_counter()
        # Fork twice, so the checkpoint is no child of the guest's: its wait4(-1) must not
        # reap it, nor its end be a SIGCHLD to the guest.
        r, w = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        rp, wp = os.pipe()
        mid = os.fork()
        if mid == 0:
            os.close(rp)
            pid = os.fork()
            if pid:
                os.write(wp, struct.pack("<q", pid))
                os._exit(0)
            os.close(wp)
            return self._checkpoint_child(t, r, w)     # returns in a resumed copy
        os.close(wp)
        pid = struct.unpack("<q", os.read(rp, 8))[0]
        os.close(rp)
        os.waitpid(mid, 0)
        r.close()
        # The middle process's end is a host SIGCHLD, which the signal watcher turns
        # into a kick of the vcpu.  Let it land now, between two runs of the engine,
        # where it is harmless: a stop requested in the middle of a run may end it
        # after Unicorn counted an instruction it did not run, and the counts of the
        # recording and the replay would part.
        deadline = time.monotonic() + 0.2
        while not t.vcpu.kicked and time.monotonic() < deadline:
            time.sleep(0.0005)
        self.checkpoints.append(Checkpoint(count, pid, w, self.replay_idx))
        self.last_time = time.monotonic()
        while len(self.checkpoints) > MAX_CHECKPOINTS:
            self.discard([self.checkpoints.pop(self.thin_out())])
        trace(f"checkpoint at {count} pid {pid} fork {1000 * (time.perf_counter() - t0):.1f} ms"
              f" kept {len(self.checkpoints)}: {' '.join(str(c.count) for c in self.checkpoints)}")

    def thin_out(self):
        """Which checkpoint to drop: never the first (the start of the recording) nor
        the newest; of the others, the one whose loss leaves the smallest gap for its age
        (the gap over the distance from its older end to now).  Steady running so keeps
        gaps that grow geometrically with age: a recent position is reached with little
        replay, an old one with replay in proportion to how far back it is."""
        cps = self.checkpoints
        now = cps[-1].count
        best, pick = None, 1
        for i in range(1, len(cps) - 1):
            if cps[i] is self.rc_from and self.rc_end is not None:
                continue            # a reverse-continue search goes back to it
            score = (cps[i + 1].count - cps[i - 1].count) / (now - cps[i - 1].count + 1)
            if best is None or score < best:
                best, pick = score, i
        return pick

    def _checkpoint_child(self, t, r, w):
        """A checkpoint: wait until asked to go on, then fork a copy that does (and wait
        again).  Dies when gdb's connection closes."""
        poller = select.poll()
        poller.register(r.fileno(), select.POLLIN)
        conn_fd = -1
        me = Checkpoint(self.count, os.getpid(), w, self.replay_idx)
        while True:
            if conn_fd < 0:
                conn = getattr(self.dbg, "conn", None)
                if conn is not None:
                    conn_fd = conn.fileno()
                    poller.register(conn_fd, POLLRDHUP)
            ready = dict(poller.poll(500 if conn_fd < 0 else None))
            try:
                while os.waitpid(-1, os.WNOHANG)[0]:
                    pass
            except ChildProcessError:
                pass
            if conn_fd in ready:
                os._exit(0)                     # gdb is gone
            if r.fileno() not in ready:
                continue
            msg, fds = _recv_msg(r)
            if msg is None:
                os._exit(0)
            if os.fork() == 0:
                r.close()
                self._become_live(t, me, msg, fds)
                return True
            for fd in fds:
                os.close(fd)

    def _become_live(self, t, me, msg, fds):
        """In the copy of a checkpoint that takes over: the process goes on from here."""
        from ..proc import hostsig
        dbg = self.dbg
        proc = t.proc
        # The guest keeps its pid and tid (gdb's thread id too), as rr shows recorded ones.
        proc.threads = [t]
        t.host_ident = threading.get_ident()
        t.kernel.main_thread = t
        t.kernel.host_signals = []
        proc.engine.after_fork_in_child(t.vcpu)
        hostsig.install(t.kernel, proc)
        # Checkpoints dropped since this one was made (thin_out) are gone: the process
        # that handed over knows which live.
        alive = msg["alive"]
        gone = [c for c in self.checkpoints if c.pid not in alive]
        for c in gone:
            c.wfd.close()
        self.checkpoints = [c for c in self.checkpoints if c.pid in alive] + [me]
        self.log = self.log[:me.log_len] + msg["log"]
        self.replay_idx = me.log_len
        dbg.cond = threading.Condition()
        eng = proc.engine
        for addr in set(dbg.breakpoints) - set(msg["breakpoints"]):
            eng.remove_breakpoint(addr)
        for addr in set(msg["breakpoints"]) - set(dbg.breakpoints):
            eng.add_breakpoint(addr)
        dbg.breakpoints = set(msg["breakpoints"])
        for wp in set(dbg.watchpoints) - set(msg["watchpoints"]):
            eng.remove_watchpoint(*wp)
        for wp in set(msg["watchpoints"]) - set(dbg.watchpoints):
            eng.add_watchpoint(*wp)
        dbg.watchpoints = dict(msg["watchpoints"])
        self.goal = self.rc_end = self.near = None
        self.rc_hits = []
        self.rc_from = me
        self.tick_at = me.count + TICK
        self.last_time = time.monotonic()
        if msg["mode"] == "goto":
            target = msg["target"]
            self.goal = (target, msg.get("reason", ""), msg.get("addr", 0),
                         msg.get("begin", False))
            if target - me.count > 2 * INTERVAL:
                self.near = target - INTERVAL   # the next reverse-stepi starts there
        else:
            self.rc_end = msg["end"]
            t.vcpu.resume_bp = None     # a breakpoint right here is a hit too
        self._arm()
        dbg.took_over(msg["frontend"], fds)
        # Back in report(): the thread runs on, as if resumed.

    def handover(self, cp, msg):
        """Let checkpoint cp go on with msg, and end this process."""
        msg["breakpoints"] = set(self.dbg.breakpoints)
        msg["watchpoints"] = dict(self.dbg.watchpoints)
        msg["frontend"] = self.dbg.frontend_state()
        while True:
            msg["log"] = self.log[cp.log_len:]
            msg["alive"] = {c.pid for c in self.checkpoints}
            trace(f"{msg['mode']} from the checkpoint at {cp.count} (pid {cp.pid}) to "
                  f"{msg.get('target', msg.get('end'))}, now at {self.count}"
                  + (f" (a hit at {msg['addr']:#x})" if msg.get("addr") else ""))
            try:
                _send_msg(cp.wfd, msg, self.dbg.frontend_fds())
                break
            except OSError as e:            # it died: an earlier one replays further
                sys.stderr.write(f"blinkroot: reverse: the checkpoint at {cp.count} is "
                                 f"gone ({e})\n")
                i = self.checkpoints.index(cp)
                self.discard([self.checkpoints.pop(i)])
                if i == 0:
                    raise
                cp = self.checkpoints[i - 1]
        self.discard([c for c in self.checkpoints if c.count > cp.count])
        os._exit(0)

    # -- reverse commands (frontend thread, process stopped) -------------------------------
    def check(self):
        """None if reverse execution can go, else why not."""
        if not self.enabled:
            return self.refused or "reverse execution is not available"
        if len(self.dbg.threads()) != 1:
            return "reverse execution of multi-threaded processes is not supported yet"
        if not self.checkpoints:
            return "no checkpoint yet"
        return None

    def reverse_step(self):
        """Back one instruction; returns "begin" (no history) or does not return."""
        target = self.count - 1
        cps = [c for c in self.checkpoints if c.count <= target]
        if not cps:
            return "begin"
        self.handover(cps[-1], {"mode": "goto", "target": target})

    def reverse_continue(self):
        cps = [c for c in self.checkpoints if c.count < self.count]
        if not cps:
            return "begin"
        self.handover(cps[-1], {"mode": "rc", "end": self.count})

    # -- replay events (guest thread) --------------------------------------------------------
    def replay_event(self, t, ev):
        """An event while replaying to a goal or searching for reverse-continue's hit:
        True when handled (the thread runs on), None when the debugger should handle it
        as usual, or a Stop to report."""
        from .core import Stop, SIGTRAP
        count = self.count
        kind = ev.kind
        if self.goal is not None:
            target, reason, addr, begin = self.goal
            if count < target:
                if kind is E.STEP:
                    return self.tick(t)
                if kind is E.BREAK or kind is E.WATCH:
                    return True
                return "kernel"
            self.goal = None
            trace(f"arrived at {count}, rip {t.vcpu.get_regs().rip:#x}")
            stop = Stop(signal=SIGTRAP, reason=reason, addr=addr)
            if begin:
                stop.extra["replaylog"] = "begin"
            return stop
        if self.rc_end is not None:
            if count < self.rc_end:
                if kind is E.BREAK and ev.addr in self.dbg.breakpoints:
                    self.rc_hits.append((count, "swbreak", ev.addr))
                    return True
                if kind is E.WATCH:
                    self.rc_hits.append((count, self.dbg.watch_reason(ev), ev.addr))
                    return True
                if kind is E.STEP:
                    return self.tick(t)
                if kind is E.BREAK:
                    return True
                return "kernel"
            # Arrived where the search began.
            me = self.rc_from
            if self.rc_hits:
                count, reason, addr = self.rc_hits[-1]
                # From the newest checkpoint before the hit (maybe one made on the way).
                cp = ([c for c in self.checkpoints if c.count < count] or [me])[-1]
                self.handover(cp, {"mode": "goto", "target": count, "reason": reason,
                                   "addr": addr})
            earlier = [c for c in self.checkpoints if c.count < me.count]
            if earlier:
                self.handover(earlier[-1], {"mode": "rc", "end": me.count})
            self.handover(me, {"mode": "goto", "target": me.count, "begin": True})
        return None
