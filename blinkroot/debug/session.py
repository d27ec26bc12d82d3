"""A debugging session as blinkenlights sees it: a `blinkroot -g` child on a pty, driven
through the GDB remote protocol, with symbols, disassembly and stepping commands.

The guest runs in a host process of its own (as under a real kernel), so its terminal
output, signals and exit cannot disturb the TUI; the TUI only needs a socket and a pty.
"""

import os
import pty
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading

import capstone

from .focus import POLICIES, BreakSpec, FocusError, FocusSet, Inferior
from .rsp import Client, RspError, StopReply
from .symbols import SymbolTable, elf_symbols

SIGNAL_NAMES = {1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP",
                6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL", 11: "SIGSEGV",
                13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM"}
FAULT_TEXT = {4: "illegal instruction", 7: "bus error", 8: "arithmetic exception",
              11: "segmentation fault", 6: "aborted"}
GPR_ORDER = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10",
             "r11", "r12", "r13", "r14", "r15", "rip", "eflags", "fs_base")


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def find_program(name):
    if "/" in name:
        return name
    return shutil.which(name) or name


class GuestTerminal:
    """What the guest wrote to its terminal, and who wants to hear of more (the TUI's
    terminal panel): shared by Session and realmode.RealModeSession."""

    def __init__(self):
        self.output = bytearray()
        self.output_listeners = []

    def _output(self, data):
        self.output += data
        for fn in list(self.output_listeners):
            try:
                fn(data)
            except Exception:
                pass


class Session(GuestTerminal):
    """The whole tree of the program's processes is debugged: the stub follows forks
    and execs, keeping both sides (gdb's detach-on-fork off); `inferiors` lists them,
    `cur` is the one shown, `focus` the set continue and step act on (focus.py)."""

    def __init__(self, argv, blinkroot_flags=(), root=None):
        program = find_program(argv[0])
        self.root = root
        port = _free_port()
        fd, self.log_path = tempfile.mkstemp(prefix="blinkenlights-", suffix=".log")
        os.close(fd)
        self.master, slave = pty.openpty()
        env = dict(os.environ)
        pkg_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = pkg_parent + (os.pathsep + env["PYTHONPATH"]
                                          if env.get("PYTHONPATH") else "")
        cmd = [sys.executable, "-m", "blinkroot", "-g", str(port), "-s", "-L", self.log_path,
               *blinkroot_flags, program, *argv[1:]]
        self.child = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env,
                                      start_new_session=True, close_fds=True)
        os.close(slave)
        GuestTerminal.__init__(self)
        threading.Thread(target=self._pump, daemon=True).start()
        self.client = Client("127.0.0.1", port, multiprocess=True)
        self.md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
        self.md.detail = True
        self.exited = None                  # exit text once the program is gone
        self.stop = self.client.stop_reason()
        self._init_processes(program)
        self.regs = {}
        self.prev_regs = {}
        self._load_main_symbols()
        self.refresh()

    # -- the child's terminal ---------------------------------------------------------------
    def _pump(self):
        while True:
            try:
                data = os.read(self.master, 4096)
            except OSError:
                break
            if not data:
                break
            self._output(data)

    def send_input(self, data):
        try:
            os.write(self.master, data)
        except OSError:
            pass

    # -- symbols ----------------------------------------------------------------------------
    def _host_path(self, guest_path):
        if self.root and guest_path.startswith("/"):
            return os.path.join(self.root, guest_path.lstrip("/"))
        return guest_path

    def _auxv(self):
        data = self.client.xfer("auxv") or b""
        return dict(struct.iter_unpack("<QQ", data[: len(data) // 16 * 16]))

    @property
    def program(self):
        return self.cur.program

    @property
    def symbols(self):
        return self.cur.symbols

    @property
    def breakpoints(self):
        """The addresses of the current process's breakpoints."""
        return self.cur.bp_addrs.keys()

    def _load_main_symbols(self):
        try:
            _syms, etype, entry, _load = elf_symbols(self.program)
        except Exception:
            return
        bias = 0
        if etype == "ET_DYN":
            at_entry = self._auxv().get(9, 0)
            bias = at_entry - entry if at_entry else 0
        self.symbols.add_file(self.program, bias)
        self._add_interpreter(self.symbols)

    def _add_interpreter(self, table):
        """ld.so, at AT_BASE, before it has listed itself in r_debug."""
        base = self._auxv().get(7, 0)
        if not base:
            return
        try:
            from elftools.elf.elffile import ELFFile
            with open(self.program, "rb") as f:
                for seg in ELFFile(f).iter_segments():
                    if seg["p_type"] == "PT_INTERP":
                        table.add_file(self._host_path(seg.get_interp_name()), base)
        except Exception:
            pass

    def _load_libraries(self):
        data = self.client.xfer("libraries-svr4")
        if data is None or data == self.cur.libraries:
            return
        self.cur.libraries = data
        import xml.etree.ElementTree as ET
        try:
            root = ET.fromstring(data.decode())
        except ET.ParseError:
            return
        fresh = SymbolTable()
        fresh.add_file(self.program, self._main_bias())
        libs = root.findall("library")
        for lib in libs:
            fresh.add_file(self._host_path(lib.get("name")), int(lib.get("l_addr"), 16))
        if not libs:
            self._add_interpreter(fresh)
        self.cur.symbols = fresh

    def _main_bias(self):
        try:
            _s, etype, entry, _l = elf_symbols(self.program)
        except Exception:
            return 0
        if etype != "ET_DYN":
            return 0
        at_entry = self._auxv().get(9, 0)
        return at_entry - entry if at_entry else 0

    # -- state -------------------------------------------------------------------------------
    def refresh(self):
        if self.stop.exited:
            return
        self._refresh_table()
        self._select(self.cur.pid, self.cur_tid, force=True)
        self.prev_regs = self.regs
        self.regs = self.client.registers()
        self._load_libraries()

    @property
    def rip(self):
        return self.regs.get("rip", 0)

    # What the TUI draws, the same for realmode.RealModeSession.
    addr_digits = 12
    reg_digits = 16

    @property
    def pid_text(self):
        return f"i{self.cur.num} pid {self.cur.pid}"

    def position_text(self):
        return f"rip={self.rip:#x}"

    def register_view(self):
        return [(name, self.regs.get(name, 0)) for name in GPR_ORDER]

    def read(self, addr, length):
        return self.client.read(addr, length)

    def stack_pointer(self):
        return self.regs.get("rsp", 0)

    def waiting_for_key(self):
        return False        # the guest's terminal input is its pty's

    def stop_message(self):
        """(title, text) for a dialog, or None for an ordinary stop."""
        s = self.stop
        if s.kind == "W":
            return "exited", f"the program exited with status {s.signal}"
        if s.kind == "X":
            return "killed", f"the program was killed by {SIGNAL_NAMES.get(s.signal, s.signal)}"
        if s.signal not in (0, 5, 2):
            info = self.client.siginfo()
            name = SIGNAL_NAMES.get(s.signal, f"signal {s.signal}")
            what = FAULT_TEXT.get(s.signal, "signal")
            addr = f" at address {info[2]:#x}" if info and s.signal in (7, 11) else ""
            where = self.symbols.describe(self.rip)
            where = f" ({where})" if where else ""
            return name, f"{name}: {what}{addr}\nrip {self.rip:#x}{where}"
        if "watch" in s.info or "awatch" in s.info or "rwatch" in s.info:
            addr = int(next(s.info[k] for k in ("watch", "rwatch", "awatch") if k in s.info), 16)
            return "watchpoint", f"watchpoint at {addr:#x} {self.symbols.describe(addr)}"
        return None

    def _after(self, stop):
        if stop is None:
            return self.stop
        self.stop = stop
        if stop.exited:
            self.exited = self.stop_message()[1]
        self.refresh()
        return stop

    # -- commands ------------------------------------------------------------------------------
    def insn_at(self, addr):
        code = self.client.read(addr, 16)
        for insn in self.md.disasm(code, addr, 1):
            return insn
        return None

    def _step_raw(self):
        """One instruction of the focused thread (the others stay stopped)."""
        key = self.step_key()
        return self._resume(set(), step=key)

    def step(self):
        if self.stop.exited:
            return self.stop
        return self._after(self._step_raw())

    def cont(self):
        """Continue the focus set (the rest stays stopped)."""
        if self.stop.exited:
            return self.stop
        keys = self.focus_keys()
        if not keys:
            self.note = f"nothing to continue in {self.focus}"
            return self.stop
        return self._after(self._resume(keys))

    @staticmethod
    def _reason(stop):
        return any(k in stop.info for k in ("swbreak", "watch", "rwatch", "awatch"))

    def run_to(self, target, min_rsp=None):
        """Continue until rip == target (with rsp above min_rsp), or any other stop."""
        temp = target not in self.breakpoints
        if temp:
            self._select(self.cur.pid, self.cur_tid)
            self.client.insert_breakpoint(target)
            temp = self.cur.pid
        try:
            while True:
                stop = self.cont()
                if stop.exited or stop.signal != 5 or self.rip != target:
                    return stop
                if min_rsp is None or self.regs.get("rsp", 0) > min_rsp:
                    return stop
        finally:
            if temp and not self.stop.exited and temp in self.live_pids():
                self._select(temp, None)
                self.client.remove_breakpoint(target)

    def next(self):
        """Step over calls."""
        insn = self.insn_at(self.rip)
        if insn is not None and insn.mnemonic.startswith("call"):
            return self.run_to(self.rip + insn.size, min_rsp=self.regs["rsp"] - 1)
        return self.step()

    def finish(self):
        """Run until the current function returns to its caller."""
        rsp, rbp = self.regs["rsp"], self.regs["rbp"]
        hit = self.symbols.lookup(self.rip)
        insn = self.insn_at(self.rip)
        if (hit and hit[1] == 0) or (insn is not None and insn.mnemonic == "ret"):
            slot = rsp
        elif insn is not None and hit and hit[1] <= 4 and rbp != rsp:
            slot = rsp + 8          # after push rbp, before mov rbp,rsp
        else:
            slot = rbp + 8
        ret = self.client.read_u64(slot)
        if ret is None:
            return self.step()
        return self.run_to(ret, min_rsp=slot)

    # -- reverse execution (the stub's bs/bc: reverse.py's checkpoints and replay) --------
    @property
    def can_reverse(self):
        return self.client.can_reverse

    def _reverse(self, step):
        if self.stop.exited:
            return self.stop
        if not self.can_reverse:
            raise RspError("reverse execution is not available (BLINKROOT_REVERSE=0?)")
        stop = self.client.reverse(step)
        if stop is None:
            raise RspError("reverse execution refused (see the terminal panel)")
        return self._after(stop)

    def reverse_step(self):
        """Back one instruction (gdb's reverse-stepi)."""
        return self._reverse(True)

    def reverse_cont(self):
        """Back to the last breakpoint hit before here, or the start of the recording
        (gdb's reverse-continue)."""
        return self._reverse(False)

    @property
    def at_history_start(self):
        return self.stop.info.get("replaylog") == "begin"

    def toggle_breakpoint(self, addr):
        """At an address of the current process (no breakpoint number: unscoped)."""
        inf = self.cur
        if addr in inf.bp_addrs:
            self._remove_location(inf, addr)
            return False
        self._add_location(inf, addr, 0)
        return True

    def add_watchpoint(self, addr, length=8):
        return self.client.insert_watchpoint(addr, length)

    def interrupt(self):
        self.client.interrupt()

    def threads(self):
        if self.stop.exited:
            return []
        if self.bg_running:
            return [t.tid for t in self.cur.live_threads()]
        return self.client.threads()

    # -- the process tree: inferiors, focus sets, scoped breakpoints, stop policy -----------
    def _init_processes(self, program):
        pid = self.stop.pid or self.child.pid
        root = Inferior(num=1, pid=pid, program=program, symbols=SymbolTable())
        self.inferiors = [root]
        self.cur = root
        self.cur_tid = self.stop.thread or pid
        root.thread(self.cur_tid)
        self.focus = FocusSet("all")
        self.policy = "all"
        self.bspecs = []                # BreakSpec, numbered from 1
        self.note = ""                  # what internal events did (fork, exec, exits)
        self.keep = set()               # what the policy keeps running after a stop
        self._hg = None
        self._at_bp = {}                # (pid, tid) -> breakpoint address it stopped at
        self._watch_scopes = {}         # (pid, address) -> BreakSpec of a watchpoint
        self._bg_lock = threading.Lock()
        self._bg_thread = None
        self._quiescing = False
        self._in_flight = False

    def inferior(self, pid=None, num=None):
        for inf in self.inferiors:
            if (pid is not None and inf.pid == pid) or (num is not None and inf.num == num):
                return inf
        return None

    def live_pids(self):
        return {inf.pid for inf in self.inferiors if inf.alive}

    def _select(self, pid, tid, force=False):
        """Hg: the process (and thread) later packets are about."""
        if not force and self._hg == (pid, tid):
            return
        self.client.request(f"Hgp{pid:x}." + (f"{tid:x}" if tid else "-1"))
        self._hg = (pid, tid)

    def focus_keys(self):
        return {(inf.pid, th.tid) for inf, th in self.focus.select(self.inferiors, self.cur)}

    def step_key(self):
        """The thread a step steps: the current one if it is in focus, else the focus's
        first."""
        keys = self.focus_keys()
        here = (self.cur.pid, self.cur_tid)
        if here in keys or not keys:
            return here
        order = {inf.pid: inf.num for inf in self.inferiors}
        return min(keys, key=lambda k: (order.get(k[0], 0), self.inferior(k[0]).thread(k[1]).num))

    def set_focus(self, text):
        fs = FocusSet(text)
        self.focus = fs
        n = len(self.focus_keys())
        return f"focus {fs}: {n} thread{'s' if n != 1 else ''}"

    def set_policy(self, policy):
        if policy not in POLICIES:
            raise FocusError(f"policy is one of {', '.join(POLICIES)}")
        self.policy = policy
        return f"stop policy: {policy}"

    def _actions(self, keys, step=None):
        acts = []
        by_pid = {}
        for pid, tid in keys:
            if step != (pid, tid):
                by_pid.setdefault(pid, set()).add(tid)
        if step is not None:
            acts.append(f"s:p{step[0]:x}.{step[1]:x}")
        for pid, tids in by_pid.items():
            inf = self.inferior(pid)
            live = {t.tid for t in inf.live_threads()} if inf else set()
            if step is None or step[0] != pid:
                if live and live <= tids:
                    acts.append(f"c:p{pid:x}.-1")
                    continue
            acts += [f"c:p{pid:x}.{tid:x}" for tid in sorted(tids)]
        return acts

    def _vcont(self, actions, background=False):
        with self._bg_lock:
            if background and self._quiescing:
                return None
            self._in_flight = True
        try:
            return self.client.vcont(actions)
        finally:
            with self._bg_lock:
                self._in_flight = False
            self._hg = None

    @staticmethod
    def _stop_rip(stop):
        v = stop.info.get("10")
        return int.from_bytes(bytes.fromhex(v), "little") if v else None

    def _in_scope(self, inf, tid, addr):
        nums = inf.bp_addrs.get(addr)
        if not nums:
            return True         # not one of ours (a temporary one of next/finish)
        for n in nums:
            spec = next((b for b in self.bspecs if b.num == n), None)
            if spec is None or spec.scope is None or spec.scope.matches(
                    inf, inf.thread(tid), self.cur):
                return True
        return False

    def _step_over(self, key, addr, background=False):
        """Step thread key (alone) off the breakpoint at addr."""
        pid, tid = key
        self._select(pid, tid)
        self.client.remove_breakpoint(addr)
        try:
            return self._vcont([f"s:p{pid:x}.{tid:x}"], background)
        finally:
            self._at_bp.pop(key, None)
            if pid in self.live_pids():
                self._select(pid, tid)
                self.client.insert_breakpoint(addr)

    @staticmethod
    def _plain_step(stop, key):
        return (stop is not None and stop.kind == "T" and stop.signal == 5
                and not stop.event and (stop.pid, stop.thread) == key)

    def _resume(self, keys, step=None, background=False):
        """Run `keys` (and step `step`), the rest staying stopped, through the internal
        events (forks, execs, exits of some, breakpoints hit outside their set) to the
        stop the user sees; None if a background run was stopped by quiesce()."""
        if not background:
            self.quiesce()
            self.note = ""
        keys = {k for k in keys if k[0] in self.live_pids()}
        here = (self.cur.pid, self.cur_tid)
        if here in keys | {step} and self.rip in self.cur.bp_addrs:
            self._at_bp[here] = self.rip
        for inf in self.inferiors:
            for th in inf.live_threads():
                if (inf.pid, th.tid) in keys or (inf.pid, th.tid) == step:
                    th.state = "running"
        stop = None
        for key in sorted(k for k in self._at_bp if k in keys or k == step):
            stop = self._step_over(key, self._at_bp[key], background)
            if key == step:
                step = None
                break
            if not self._plain_step(stop, key):
                break
            stop = None
        while True:
            if stop is None:
                if not keys and step is None:
                    break
                stop = self._vcont(self._actions(keys, step), background)
                if stop is None:
                    break
            if background and self._quiescing and stop.kind == "T" and stop.signal == 2 \
                    and not stop.event:
                stop = None
                break
            pid, tid = stop.pid, stop.thread
            inf = self.inferior(pid) if pid is not None else self.cur
            ev = stop.event
            if stop.exited:
                if inf is not None:
                    inf.state = "exited"
                    inf.exit_text = ("status %d" % stop.signal if stop.kind == "W"
                                     else "killed by signal %d" % stop.signal)
                    for th in inf.threads.values():
                        th.state = "exited"
                    self.note = f"i{inf.num} exited, {inf.exit_text}"
                    keys = {k for k in keys if k[0] != inf.pid}
                    if step is not None and step[0] == inf.pid:
                        step = None
                if not self.live_pids():
                    break
                if keys:
                    stop = None
                    continue
                live = next(i for i in self.inferiors if i.alive)
                th = (live.live_threads() or [live.thread(live.pid)])[0]
                stop = StopReply(f"T00thread:p{live.pid:x}.{th.tid:x};")
                break
            if ev in ("fork", "vfork") and stop.child:
                child = self._add_child(inf, stop.child)
                th = child.thread(stop.child)
                if self.focus.matches(child, th, self.cur):
                    keys.add((child.pid, th.tid))
                self.note = f"i{inf.num} {ev}ed i{child.num} (pid {child.pid})"
                stop = None
                continue
            if ev == "vforkdone":
                stop = None
                continue
            if ev == "exec" and inf is not None:
                self._on_exec(inf, stop.exec_path)
                self.note = f"i{inf.num} exec'd {stop.exec_path}"
                if step is None:
                    stop = None
                    continue
                break
            if ev == "swbreak" and inf is not None:
                rip = self._stop_rip(stop)
                if rip is not None and not self._in_scope(inf, tid, rip):
                    stop = self._step_over((pid, tid), rip, background)
                    if self._plain_step(stop, (pid, tid)):
                        stop = None
                    continue
                if rip is not None:
                    self._at_bp[(pid, tid)] = rip
            if ev in ("watch", "rwatch", "awatch") and inf is not None:
                spec = self._watch_scopes.get((inf.pid, int(stop.info[ev], 16)))
                if spec is not None and spec.scope is not None and not spec.scope.matches(
                        inf, inf.thread(tid), self.cur):
                    stop = None         # outside its set: on (it stops after the access)
                    continue
            break
        for inf in self.inferiors:
            for th in inf.live_threads():
                th.state = "stopped"
        if stop is not None and not stop.exited and stop.pid is not None:
            inf = self.inferior(stop.pid)
            if inf is not None:
                self.cur, self.cur_tid = inf, stop.thread
                inf.thread(stop.thread)
                key = (stop.pid, stop.thread)
                resumed = keys | ({step} if step else set())
                if self.policy == "process":
                    self.keep = {k for k in resumed if k[0] != stop.pid}
                elif self.policy == "thread":
                    self.keep = {k for k in resumed if k != key}
                else:
                    self.keep = set()
        return stop

    def _add_child(self, parent, pid):
        inf = self.inferior(pid)
        if inf is None:
            inf = Inferior(num=max(i.num for i in self.inferiors) + 1, pid=pid,
                           program=parent.program, symbols=parent.symbols,
                           libraries=parent.libraries, parent=parent.num,
                           bp_addrs={a: set(n) for a, n in parent.bp_addrs.items()})
            self.inferiors.append(inf)
            # the breakpoints whose set takes the new process in (the fork's copy has
            # the parent's already)
            for spec in self.bspecs:
                if spec.exec_path is None and spec.scope is not None and \
                        spec.scope.may_include(inf, self.cur):
                    addr = inf.symbols.resolve(spec.where)
                    if addr is not None:
                        self._add_location(inf, addr, spec.num)
        return inf

    def _exec_matches(self, rule, path):
        if not path:
            return False
        if "/" not in rule:
            return os.path.basename(path) == rule
        return (rule == path or os.path.realpath(self._host_path(path))
                == os.path.realpath(rule))

    def _on_exec(self, inf, path):
        """A new program in inf: its symbols, and the breakpoints that apply to it."""
        if path:
            inf.program = self._host_path(path)
        inf.bp_addrs = {}
        inf.libraries = None
        for k in [k for k in self._at_bp if k[0] == inf.pid]:
            del self._at_bp[k]
        saved = self.cur
        self.cur = inf
        try:
            self._select(inf.pid, None, force=True)
            inf.symbols = SymbolTable()
            self._load_main_symbols()
        finally:
            self.cur = saved
        for spec in self.bspecs:
            if spec.exec_path is not None and not self._exec_matches(spec.exec_path, path):
                continue
            if spec.scope is not None and not spec.scope.may_include(inf, self.cur):
                continue
            addr = inf.symbols.resolve(spec.where)
            if addr is not None:
                self._add_location(inf, addr, spec.num)

    def _add_location(self, inf, addr, num):
        if addr not in inf.bp_addrs:
            self._select(inf.pid, None)
            self.client.insert_breakpoint(addr)
        inf.bp_addrs.setdefault(addr, set()).add(num)

    def _remove_location(self, inf, addr, num=None):
        nums = inf.bp_addrs.get(addr)
        if nums is None:
            return
        if num is not None:
            nums.discard(num)
        if num is None or not nums:
            del inf.bp_addrs[addr]
            if inf.alive:
                self._select(inf.pid, None)
                self.client.remove_breakpoint(addr)

    def add_break(self, where, scope=None, exec_path=None):
        """A breakpoint on `where` (symbol, name@plt, hex address) in every process the
        set `scope` may include (a hit outside it is continued silently); with exec_path,
        in each process right after it execs that program."""
        self.quiesce()
        fs = FocusSet(scope) if scope else None
        spec = BreakSpec(num=max([b.num for b in self.bspecs], default=0) + 1, where=where,
                         scope=fs, exec_path=exec_path)
        placed = []
        if exec_path is None:
            for inf in self.inferiors:
                if not inf.alive or (fs is not None and not fs.may_include(inf, self.cur)):
                    continue
                addr = inf.symbols.resolve(where)
                if addr is not None:
                    self._add_location(inf, addr, spec.num)
                    placed.append(f"i{inf.num}")
            if not placed and (fs is None or self.cur.symbols.resolve(where) is None):
                raise FocusError(f"no symbol {where!r}" + (f" in {fs}" if fs else ""))
        self.bspecs.append(spec)
        if exec_path is not None:
            return f"breakpoint {spec.num}: {where} in each process that execs {exec_path}"
        return f"breakpoint {spec.num}: {where} in {', '.join(placed) or 'none yet'}" + (
            f" (scope {fs})" if fs else "")

    def delete_break(self, num):
        self.quiesce()
        spec = next((b for b in self.bspecs if b.num == num), None)
        if spec is None:
            raise FocusError(f"no breakpoint {num}")
        self.bspecs.remove(spec)
        for inf in self.inferiors:
            for addr, nums in list(inf.bp_addrs.items()):
                if num in nums:
                    self._remove_location(inf, addr, num)
        return f"deleted breakpoint {num}"

    def select(self, inf_num, thread_num=None):
        """Show inferior inf_num (its thread thread_num, else its first)."""
        self.quiesce()
        inf = self.inferior(num=inf_num)
        if inf is None or not inf.alive:
            raise FocusError(f"no live inferior {inf_num}")
        ths = inf.live_threads()
        th = next((t for t in ths if t.num == thread_num), None) if thread_num else \
            (ths[0] if ths else None)
        if th is None:
            raise FocusError(f"no thread {thread_num} in i{inf_num}")
        self.cur, self.cur_tid = inf, th.tid
        self.stop = StopReply(f"T00thread:p{inf.pid:x}.{th.tid:x};")
        self.regs = {}
        self.refresh()
        return f"i{inf.num}.t{th.num} (pid {inf.pid}, tid {th.tid})"

    def _refresh_table(self):
        """Thread lists, and where each stopped thread is."""
        try:
            ids = self.client.thread_ids()
        except Exception:
            return
        seen = {}
        for pid, tid in ids:
            pid = pid if pid is not None else self.cur.pid
            inf = self.inferior(pid)
            if inf is None:
                inf = self._add_child(self.cur, pid)
            seen.setdefault(pid, set()).add(tid)
            inf.thread(tid)
        for inf in self.inferiors:
            if not inf.alive:
                continue
            for th in inf.threads.values():
                if th.tid not in seen.get(inf.pid, ()):
                    th.state = "exited"
                elif th.state == "stopped":
                    self._select(inf.pid, th.tid)
                    r = self.client.request("p10")
                    try:
                        th.rip = int.from_bytes(bytes.fromhex(r), "little")
                        th.where = inf.symbols.describe(th.rip) or f"{th.rip:#x}"
                    except ValueError:
                        pass
        if self.cur_tid not in seen.get(self.cur.pid, ()) and seen.get(self.cur.pid):
            self.cur_tid = min(seen[self.cur.pid])

    def process_rows(self):
        """[(inferior, thread or None)] as the process panel lists them."""
        rows = []
        for inf in self.inferiors:
            rows.append((inf, None))
            for th in inf.threads.values():
                if th.state != "exited" or not inf.alive:
                    rows.append((inf, th))
        return rows

    # -- the stop policy: what keeps running after a stop ---------------------------------------
    @property
    def bg_running(self):
        t = self._bg_thread
        return t is not None and t.is_alive()

    def start_background(self, on_stop):
        """Resume what the policy keeps running (after a stop was shown); on_stop(stop)
        is called (from another thread) when one of them stops by itself."""
        keep = {k for k in self.keep if k[0] in self.live_pids()}
        self.keep = set()
        if not keep or self.stop.exited or self.bg_running:
            return False
        self._quiescing = False
        for inf in self.inferiors:
            for th in inf.live_threads():
                if (inf.pid, th.tid) in keep:
                    th.state = "running"

        def run():
            saved = (self.cur, self.cur_tid, self.stop)
            stop = self._resume(keep, background=True)
            if stop is None:            # stopped by quiesce(): the old stop stays shown
                self.cur, self.cur_tid, self.stop = saved
                self.keep = set()
                return
            self.stop = stop
            if stop.exited:
                self.exited = self.stop_message()[1]
            else:
                try:
                    self.refresh()
                except Exception:
                    pass
            if not self._quiescing:
                on_stop(stop)

        self._bg_thread = threading.Thread(target=run, daemon=True)
        self._bg_thread.start()
        return True

    def quiesce(self):
        """Stop a background run (the stop policy's), before talking to the stub."""
        t = self._bg_thread
        if t is None or threading.current_thread() is t:
            return
        while t.is_alive():
            with self._bg_lock:
                self._quiescing = True
                if self._in_flight:
                    self.client.interrupt()
            t.join(0.5)
        self._bg_thread = None
        self._quiescing = False

    # -- the command line ---------------------------------------------------------------------
    COMMANDS_HELP = """\
 focus SET            step/continue act on SET: i1.t1-4, i1.t1,i2.t2, i2, stopped, all
 break SYM [in SET]   breakpoint (b SYM SET too); a hit outside SET is continued
 watch ADDR|SYM [LEN] [in SET]   write watchpoint (scoped as break)
 break-exec PATH SYM  SYM's breakpoint in each process right after it execs PATH
 delete N             delete breakpoint N;   info break
 policy thread|process|all   what stops when one thread stops (the rest runs on)
 inferior N / thread iN.tM   show that process / thread
 continue, step       as c and s"""

    def execute(self, line):
        """One command-line command; returns the message to show (raises FocusError)."""
        words = line.strip().split()
        if not words:
            return ""
        cmd, args = words[0], words[1:]
        if cmd == "focus":
            return self.set_focus(" ".join(args) or "all")
        if cmd == "policy":
            if not args:
                return f"stop policy: {self.policy}"
            return self.set_policy(args[0])
        if cmd in ("break", "b", "watch"):
            if not args:
                raise FocusError(f"usage: {cmd} SYMBOL [in SET]")
            where, rest = args[0], args[1:]
            if rest and rest[0] == "in":
                rest = rest[1:]
            length = 4
            if cmd == "watch" and rest and rest[0].isdigit():
                length, rest = int(rest[0]), rest[1:]
            scope = " ".join(rest) or None
            if scope is not None:
                FocusSet(scope)         # a bad set is an error before anything is set
            if cmd == "watch":
                return self.add_watch(where, length, scope)
            return self.add_break(where, scope)
        if cmd == "break-exec":
            if len(args) != 2:
                raise FocusError("usage: break-exec PATH SYMBOL")
            return self.add_break(args[1], exec_path=args[0])
        if cmd in ("delete", "d"):
            return self.delete_break(int(args[0]))
        if cmd == "info":
            return "; ".join(b.describe() for b in self.bspecs) or "no breakpoints"
        if cmd == "inferior":
            return self.select(int(args[0].lstrip("i")))
        if cmd == "thread":
            part = args[0]
            if "." in part:
                i, t = part.split(".")
                return self.select(int(i.lstrip("i")), int(t.lstrip("t")))
            return self.select(self.cur.num, int(part.lstrip("t")))
        if cmd in ("continue", "c"):
            self.cont()
            return ""
        if cmd in ("step", "s", "stepi", "si"):
            self.step()
            return ""
        if cmd == "help":
            return self.COMMANDS_HELP
        raise FocusError(f"unknown command {cmd!r} (help lists them)")

    def add_watch(self, where, length=4, scope=None):
        """A write watchpoint in every process `scope` may include."""
        self.quiesce()
        fs = FocusSet(scope) if scope else None
        spec = BreakSpec(num=max([b.num for b in self.bspecs], default=0) + 1,
                         where=f"watch {where}", scope=fs)
        placed = []
        for inf in self.inferiors:
            if not inf.alive or (fs is not None and not fs.may_include(inf, self.cur)):
                continue
            addr = inf.symbols.resolve(where)
            if addr is None:
                continue
            self._select(inf.pid, None)
            if self.client.request(f"Z2,{addr:x},{length:x}") == "OK":
                placed.append(f"i{inf.num}")
                self._watch_scopes[(inf.pid, addr)] = spec
                spec.where = f"watch {where}@{addr:#x}"
        if not placed:
            raise FocusError(f"no symbol {where!r}")
        self.bspecs.append(spec)
        return f"watchpoint {spec.num}: {where} in {', '.join(placed)}"

    # -- views ----------------------------------------------------------------------------------
    def disassembly(self, count=30):
        """[(addr, bytes, text, label)] from a little before rip."""
        rip = self.rip
        hit = self.symbols.lookup(rip)
        start = rip - hit[1] if hit and hit[1] < 0x180 else rip
        code = self.client.read(start, (rip - start) + count * 15)
        lines = []
        for insn in self.md.disasm(code, start):
            text = f"{insn.mnemonic} {insn.op_str}".strip()
            if insn.mnemonic.startswith(("call", "j")) and insn.op_str.startswith("0x"):
                try:
                    name = self.symbols.describe(int(insn.op_str, 16))
                    if name:
                        text += f" <{name}>"
                except ValueError:
                    pass
            label = None
            s = self.symbols.lookup(insn.address)
            if s and s[1] == 0:
                label = s[0]
            lines.append((insn.address, bytes(insn.bytes), text, label))
            if len(lines) >= count * 2:
                break
        if start != rip and not any(a == rip for a, *_ in lines):
            return self._disasm_from(rip, count)
        idx = next((i for i, l in enumerate(lines) if l[0] == rip), 0)
        first = max(0, idx - count // 3)
        return lines[first:first + count]

    def _disasm_from(self, addr, count):
        code = self.client.read(addr, count * 15)
        return [(i.address, bytes(i.bytes), f"{i.mnemonic} {i.op_str}".strip(), None)
                for i in self.md.disasm(code, addr)][:count]

    def stack(self, count=16):
        rsp = self.regs.get("rsp", 0)
        data = self.client.read(rsp, 8 * count)
        return [(rsp + 8 * i, struct.unpack_from("<Q", data, 8 * i)[0])
                for i in range(len(data) // 8)]

    def memory_focus(self):
        """The address the current instruction's memory operand points to, else rsp."""
        insn = self.insn_at(self.rip)
        if insn is not None:
            from capstone import x86_const as CX
            for op in insn.operands:
                if op.type == CX.X86_OP_MEM:
                    ea = op.mem.disp
                    ok = True
                    for reg, scale in ((op.mem.base, 1), (op.mem.index, op.mem.scale)):
                        if reg == CX.X86_REG_RIP:
                            ea += insn.address + insn.size
                        elif reg:
                            name = insn.reg_name(reg)
                            if name not in self.regs:
                                ok = False
                                break
                            ea += scale * self.regs[name]
                    if ok and op.mem.segment == 0:
                        return ea & 0xFFFFFFFFFFFFFFFF
        return self.regs.get("rsp", 0)

    def syscall_log(self, lines=200):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, 2)
                size = f.tell()
                f.seek(max(0, size - 16384))
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return []
        return text.splitlines()[-lines:]

    def close(self):
        try:
            if self.exited is None:
                self.client.kill()
            else:
                self.client.close()
        except Exception:
            pass
        try:
            self.child.kill()
        except OSError:
            pass
        try:
            self.child.wait(5)
        except Exception:
            pass
        try:
            os.close(self.master)
        except OSError:
            pass
        try:
            os.unlink(self.log_path)
        except OSError:
            pass
