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


class Session:
    def __init__(self, argv, blinkroot_flags=(), root=None):
        self.program = find_program(argv[0])
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
               *blinkroot_flags, self.program, *argv[1:]]
        self.child = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env,
                                      start_new_session=True, close_fds=True)
        os.close(slave)
        self.output = bytearray()           # the guest's terminal output
        self.output_listeners = []
        threading.Thread(target=self._pump, daemon=True).start()
        self.client = Client("127.0.0.1", port)
        self.md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
        self.md.detail = True
        self.breakpoints = set()
        self.libraries = None
        self.symbols = SymbolTable()
        self.exited = None                  # exit text once the program is gone
        self.stop = self.client.stop_reason()
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
            self.output += data
            for fn in list(self.output_listeners):
                try:
                    fn(data)
                except Exception:
                    pass

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
        if data is None or data == self.libraries:
            return
        self.libraries = data
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
        self.symbols = fresh

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
        if self.stop.thread:
            self.client.set_thread(self.stop.thread)
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
        return f"pid {self.child.pid}"

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
        """One instruction of the stopped thread, with our breakpoint at rip lifted (the
        engine would stop at it again before running it), as gdb steps over one."""
        here = self.rip if self.rip in self.breakpoints else None
        if here is not None:
            self.client.remove_breakpoint(here)
        try:
            return self.client.resume(step_thread=self.stop.thread)
        finally:
            if here is not None:
                self.client.insert_breakpoint(here)

    def step(self):
        if self.stop.exited:
            return self.stop
        return self._after(self._step_raw())

    def cont(self):
        if self.stop.exited:
            return self.stop
        if self.rip in self.breakpoints:        # step off our own breakpoint first
            stop = self._step_raw()
            if stop.exited or stop.signal != 5 or self._reason(stop):
                return self._after(stop)
            self.stop = stop
        return self._after(self.client.resume())

    @staticmethod
    def _reason(stop):
        return any(k in stop.info for k in ("swbreak", "watch", "rwatch", "awatch"))

    def run_to(self, target, min_rsp=None):
        """Continue until rip == target (with rsp above min_rsp), or any other stop."""
        temp = target not in self.breakpoints
        if temp:
            self.client.insert_breakpoint(target)
        try:
            while True:
                stop = self.cont()
                if stop.exited or stop.signal != 5 or self.rip != target:
                    return stop
                if min_rsp is None or self.regs.get("rsp", 0) > min_rsp:
                    return stop
        finally:
            if temp and not self.stop.exited:
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
        if addr in self.breakpoints:
            self.breakpoints.discard(addr)
            self.client.remove_breakpoint(addr)
            return False
        self.breakpoints.add(addr)
        self.client.insert_breakpoint(addr)
        return True

    def add_watchpoint(self, addr, length=8):
        return self.client.insert_watchpoint(addr, length)

    def interrupt(self):
        self.client.interrupt()

    def threads(self):
        if self.stop.exited:
            return []
        return self.client.threads()

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
