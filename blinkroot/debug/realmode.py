"""`blinkenlights -r PROG`: a 16-bit boot-sector program in real mode, with a PC BIOS.

PROG is a flat binary (a boot sector is 512 bytes ending in 55h AAh, but any image up to
64 KiB is taken), loaded at 0000:7C00 of a 1 MiB machine (blinkroot.cpu's RealModeMachine)
and started there with DL=80h, SS:SP=0000:7C00 and interrupts enabled.  The BIOS services
are blinkroot/debug/bios.py.  The run ends, with an exit status, at:

* HLT (no hardware interrupt would ever wake the CPU): status 0;
* int 20h or int 19h: status 0;
* SYSCALL with AX=60 or 231 (Linux's exit, exit_group), blink's convention for real-mode
  tests: status DI & 255.  (SYSCALL with AX=1 and DI=1 or 2 writes DX bytes at DS:SI to
  the terminal, as write(2) would; any other SYSCALL returns AX=-38, ENOSYS);
* the end of keyboard input while the program waits in int 16h: status 0;
* an unsupported BIOS call, an invalid instruction or a CPU exception nobody handles:
  a message on stderr and status 1.

Unlike ELF programs, which blinkenlights debugs in a `blinkroot -g` child through the GDB
stub, a real-mode machine has no kernel: it runs in the debugger's own process, on a
thread of its own (RealModeSession has the same methods the TUI uses of Session).
"""

import os
import select
import sys
import threading

import capstone

from ..cpu import create_real_mode_machine
from ..cpu import engine as E
from .bios import Bios, Exit, Interrupted, Keyboard, Stop
from .rsp import StopReply
from .session import GuestTerminal
from .symbols import SymbolTable

LOAD_ADDR = 0x7C00
MAX_IMAGE = 0x10000
REG_ORDER = ("ax", "bx", "cx", "dx", "si", "di", "bp", "sp", "cs", "ip", "ds", "es",
             "ss", "flags", "fs", "gs")


class ImageError(Exception):
    pass


def load_image(path):
    try:
        with open(path, "rb") as f:
            image = f.read(MAX_IMAGE + 1)
    except OSError as e:
        raise ImageError(f"{path}: {e.strerror}") from None
    if not image:
        raise ImageError(f"{path}: empty file")
    if len(image) > MAX_IMAGE:
        raise ImageError(f"{path}: larger than {MAX_IMAGE // 1024} KiB")
    return image


class Machine:
    """A booted real-mode program and what ends it: the part -t and the TUI share."""

    def __init__(self, image, write, keyboard=None):
        self.m = create_real_mode_machine()
        self.write = write
        self.bios = Bios(self.m, write, keyboard)
        self.m.write(LOAD_ADDR, image)
        self.m.set_regs(cs=0, ip=LOAD_ADDR, ss=0, sp=LOAD_ADDR, ds=0, es=0, dx=0x0080,
                        flags=0x202)
        self.ended = None       # ("exit", status, how) or ("error", message)

    def pc(self):
        r = self.m.get_regs()
        return (r["cs"] * 16 + r["ip"]) & 0xFFFFF

    def _back_to_int(self, vector):
        """Put IP back on the `int n` just run (to show it, or to run it again)."""
        r = self.m.get_regs()
        if self.m.read(self.pc() - 2, 2) == bytes([0xCD, vector]):
            self.m.set_regs(ip=r["ip"] - 2)

    def serve(self, event):
        """Handle an event that is the machine's own business.  Returns True to carry on,
        False when the run has ended (self.ended) or must stop (Interrupted: the INT will
        run again), None for events that are the debugger's (STEP, BREAK, KICKED)."""
        try:
            if event.kind == E.INTERRUPT:
                try:
                    self.bios.interrupt(event.vector)
                except Stop:
                    self._back_to_int(event.vector)
                    raise
                except Interrupted:
                    self._back_to_int(event.vector)
                    return False
                return True
            if event.kind == E.SYSCALL:
                return self._syscall()
            if event.kind == E.HALT:
                raise Exit(0, "hlt")
            if event.kind == E.TRAP:
                r = self.m.get_regs()
                what = "invalid instruction" if event.vector == E.VEC_UD else \
                    f"CPU exception {event.vector}"
                raise Stop(f"{what} at {r['cs']:04x}:{r['ip']:04x}")
            if event.kind == E.FAULT:
                raise Stop(f"memory {event.access} at {event.addr:#x}, beyond the machine's "
                           f"1 MiB")
        except Exit as e:
            self.ended = ("exit", e.status, e.how)
            return False
        except Stop as e:
            self.ended = ("error", str(e))
            return False
        return None

    def _syscall(self):
        r = self.m.get_regs()
        if r["ax"] in (60, 231):
            raise Exit(r["di"] & 0xFF, "exit")
        if r["ax"] == 1 and r["di"] in (1, 2):
            data = self.m.read(r["ds"] * 16 + r["si"], r["dx"])
            self.write(data)
            self.m.set_regs(ax=len(data))
        else:
            self.m.set_regs(ax=-38)     # ENOSYS
        return True


def run_plain(path):
    """`blinkenlights -t -r PROG`: the program on this terminal; returns the exit status."""
    try:
        image = load_image(path)
    except ImageError as e:
        print(f"blinkenlights: {e}", file=sys.stderr)
        return 127
    out = sys.stdout.buffer

    def write(data):
        out.write(data)
        out.flush()

    keyboard = Keyboard()
    mach = Machine(image, write, keyboard)
    saved_tty = None
    if os.isatty(0):
        import termios
        import tty
        saved_tty = termios.tcgetattr(0)
        tty.setcbreak(0)
    stop_reading = os.pipe()

    def read_stdin():
        while True:
            ready, _, _ = select.select([0, stop_reading[0]], [], [])
            if stop_reading[0] in ready:
                return
            try:
                data = os.read(0, 4096)
            except OSError:
                data = b""
            if not data:
                keyboard.close()
                return
            keyboard.feed(data)

    threading.Thread(target=read_stdin, daemon=True).start()
    failure = []

    def handler(event):
        go = mach.serve(event)
        return True if go is None and event.kind != E.KICKED else bool(go)

    def work():
        try:
            mach.m.run(handler)
        except BaseException as e:      # reported by the main thread
            failure.append(e)

    worker = threading.Thread(target=work, name="blinkenlights-realmode", daemon=True)
    worker.start()
    status = 0
    try:
        while worker.is_alive():
            worker.join(0.1)
    except KeyboardInterrupt:
        keyboard.cancel()
        mach.m.kick()
        worker.join(5)
        status = 130
    finally:
        os.write(stop_reading[1], b"x")
        if saved_tty is not None:
            import termios
            termios.tcsetattr(0, termios.TCSADRAIN, saved_tty)
    if failure:
        raise failure[0]
    if status:
        return status
    if mach.ended and mach.ended[0] == "error":
        print(f"blinkenlights: {mach.ended[1]}", file=sys.stderr)
        return 1
    return mach.ended[1] if mach.ended else 0


class RealModeSession(GuestTerminal):
    """What the TUI drives (Session's interface) for a real-mode machine in-process."""

    pid_text = "real mode (i8086), in-process"
    addr_digits = 5
    reg_digits = 4

    def __init__(self, argv):
        GuestTerminal.__init__(self)
        self.program = argv[0]
        self.keyboard = Keyboard()
        self.mach = Machine(load_image(self.program), self._output, self.keyboard)
        self.m = self.mach.m
        self.md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_16)
        self.md.detail = True
        self.breakpoints = set()
        self.symbols = SymbolTable()
        self.exited = None
        self.message = None         # (title, text) for a dialog after the last command
        self.stop = StopReply("T05thread:1;")
        self.regs = {}
        self.prev_regs = {}
        self.refresh()

    def send_input(self, data):
        self.keyboard.feed(data)

    def waiting_for_key(self):
        return self.keyboard.waiting

    # -- state -----------------------------------------------------------------------------
    def refresh(self):
        if self.stop.exited:
            return
        self.prev_regs = self.regs
        self.regs = self.m.get_regs()
        self.regs["rip"] = self.rip

    @property
    def rip(self):
        return self.mach.pc()

    def read(self, addr, length):
        return self.m.read(addr, length)

    def position_text(self):
        r = self.regs
        return f"cs:ip={r.get('cs', 0):04x}:{r.get('ip', 0):04x}"

    def register_view(self):
        return [(n, self.regs.get(n, 0)) for n in REG_ORDER]

    def stop_message(self):
        if self.message is not None:
            return self.message
        return None

    # -- running -------------------------------------------------------------------------------
    def _go(self, single_step):
        """Run until a stop; returns the stop."""
        self.message = None
        stopped = []

        def handler(event):
            go = self.mach.serve(event)
            if go is None:                  # STEP, BREAK, KICKED: the debugger's
                stopped.append(event)
                return False
            if go is False and self.mach.ended is None:
                stopped.append(E.Event(E.KICKED))   # an interrupted int 16h
            return go

        self.m.single_step = single_step
        try:
            self.m.run(handler)
        finally:
            self.m.single_step = False
        ended = self.mach.ended
        if ended is not None and ended[0] == "exit":
            stop = StopReply(f"W{ended[1] & 0xFF:02x}")
            self.exited = f"the program exited with status {ended[1]} ({ended[2]})"
            self.message = ("exited", self.exited)
        elif ended is not None:
            stop = StopReply("T04thread:1;")
            self.mach.ended = None          # the user may look around, fix and go on
            self.message = ("stopped", ended[1])
        elif stopped and stopped[-1].kind == E.BREAK:
            stop = StopReply("T05swbreak:;thread:1;")
        elif stopped and stopped[-1].kind == E.KICKED:
            stop = StopReply("T02thread:1;")
        else:
            stop = StopReply("T05thread:1;")
        self.stop = stop
        self.refresh()
        return stop

    def _step_raw(self):
        here = self.rip if self.rip in self.breakpoints else None
        if here is not None:
            self.m.remove_breakpoint(here)
        try:
            return self._go(True)
        finally:
            if here is not None:
                self.m.add_breakpoint(here)

    def step(self):
        if self.stop.exited:
            return self.stop
        return self._step_raw()

    def cont(self):
        if self.stop.exited:
            return self.stop
        if self.rip in self.breakpoints:
            stop = self._step_raw()
            if stop.exited or stop.signal != 5 or "swbreak" in stop.info or self.message:
                return stop
        return self._go(False)

    def insn_at(self, addr):
        for insn in self.md.disasm(self.m.read(addr, 16), addr, 1):
            return insn
        return None

    def _insn_here(self):
        """The instruction at CS:IP, decoded with IP as its address (near targets)."""
        r = self.m.get_regs()
        base = r["cs"] * 16
        for insn in self.md.disasm(self.m.read(base + r["ip"], 16), r["ip"], 1):
            return insn
        return None

    def next(self):
        """Step over calls."""
        insn = self._insn_here()
        if insn is not None and insn.mnemonic.startswith("call"):
            target = self.rip + insn.size
            sp = self.regs["sp"]
            temp = target not in self.breakpoints
            if temp:
                self.m.add_breakpoint(target)
            try:
                while True:
                    stop = self.cont()
                    if stop.exited or stop.signal != 5 or self.rip != target \
                            or self.regs["sp"] >= sp:
                        return stop
            finally:
                if temp:
                    self.m.remove_breakpoint(target)
        return self.step()

    def finish(self):
        """Step until a ret/retf/iret leaves the current function (SP above where it was)."""
        sp = self.regs.get("sp", 0)
        self._cancel = False
        while True:
            insn = self._insn_here()
            is_ret = insn is not None and insn.mnemonic.startswith(("ret", "iret"))
            stop = self.step()
            if stop.exited or stop.signal != 5 or self.message or self._cancel:
                return stop
            if is_ret and self.regs["sp"] > sp:
                return stop
            if self.rip in self.breakpoints:
                self.stop = StopReply("T05swbreak:;thread:1;")
                return self.stop

    _cancel = False

    def toggle_breakpoint(self, addr):
        if addr in self.breakpoints:
            self.breakpoints.discard(addr)
            self.m.remove_breakpoint(addr)
            return False
        self.breakpoints.add(addr)
        self.m.add_breakpoint(addr)
        return True

    def interrupt(self):
        self._cancel = True
        if self.keyboard.waiting:
            self.keyboard.cancel()
        self.m.kick()

    def threads(self):
        return []

    # -- views ---------------------------------------------------------------------------------
    def disassembly(self, count=30):
        """[(linear addr, bytes, text, None)] from CS:IP on (with IP-relative targets)."""
        r = self.m.get_regs()
        base = r["cs"] * 16
        lines = []
        for insn in self.md.disasm(self.m.read(base + r["ip"], count * 8), r["ip"]):
            lines.append((base + insn.address, bytes(insn.bytes),
                          f"{insn.mnemonic} {insn.op_str}".strip(), None))
            if len(lines) >= count:
                break
        return lines

    def stack(self, count=16):
        r = self.m.get_regs()
        rows = []
        for i in range(count):
            off = (r["sp"] + 2 * i) & 0xFFFF
            addr = r["ss"] * 16 + off
            rows.append((addr, int.from_bytes(self.m.read(addr, 2).ljust(2, b"\0"), "little")))
        return rows

    def stack_pointer(self):
        r = self.m.get_regs()
        return r["ss"] * 16 + r["sp"]

    def memory_focus(self):
        """The linear address of the current instruction's memory operand (DS by default,
        SS for BP, the segment override if any), else SS:SP."""
        from capstone import x86_const as CX
        insn = self._insn_here()
        r = self.m.get_regs()
        if insn is not None:
            for op in insn.operands:
                if op.type != CX.X86_OP_MEM:
                    continue
                ea = op.mem.disp
                seg = "ds"
                for reg, scale in ((op.mem.base, 1), (op.mem.index, op.mem.scale)):
                    if reg:
                        name = insn.reg_name(reg)
                        if name not in r:
                            return self.stack_pointer()
                        if name in ("bp", "sp"):
                            seg = "ss"
                        ea += scale * r[name]
                if op.mem.segment:
                    seg = insn.reg_name(op.mem.segment)
                if insn.mnemonic.startswith(("stos", "scas")):
                    seg = "es"
                return (r.get(seg, 0) * 16 + (ea & 0xFFFF)) & 0xFFFFF
        return self.stack_pointer()

    def syscall_log(self, lines=200):
        return []

    def close(self):
        self.keyboard.close()
        self.keyboard.cancel()
        self.m.kick()
