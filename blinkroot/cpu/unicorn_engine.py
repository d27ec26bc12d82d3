"""The Unicorn engine (QEMU's TCG JIT): portable, guest threads share one instance.

Hot paths talk to libunicorn through raw ctypes calls: the Python binding's register
API costs 20-40 us per syscall where raw batched calls cost a few (shared notes).
Guest memory is host memory owned by the kernel, mapped here with mem_map_ptr; the
guest's own mappings are merged into few Unicorn regions, because Unicorn's cost per
region grows faster than linearly.
"""

import bisect
import collections
import contextlib
import ctypes
import functools
import struct
import threading
import time
from array import array

import unicorn
from unicorn import unicorn_const as UC
from unicorn import x86_const as X
from unicorn.unicorn_py3.unicorn import uclib
from unicorn.unicorn_py3.arch.intel import HOOK_INSN_SYSCALL_CFUNC, HOOK_INSN_CPUID_CFUNC
from unicorn.unicorn_py3.unicorn import (HOOK_INTR_CFUNC, HOOK_MEM_INVALID_CFUNC,
                                         HOOK_INSN_INVALID_CFUNC, HOOK_CODE_CFUNC,
                                         HOOK_MEM_ACCESS_CFUNC)

from . import engine as E

_U64 = ctypes.c_uint64

_GPR_IDS = {
    "r8": X.UC_X86_REG_R8, "r9": X.UC_X86_REG_R9, "r10": X.UC_X86_REG_R10,
    "r11": X.UC_X86_REG_R11, "r12": X.UC_X86_REG_R12, "r13": X.UC_X86_REG_R13,
    "r14": X.UC_X86_REG_R14, "r15": X.UC_X86_REG_R15, "rdi": X.UC_X86_REG_RDI,
    "rsi": X.UC_X86_REG_RSI, "rbp": X.UC_X86_REG_RBP, "rbx": X.UC_X86_REG_RBX,
    "rdx": X.UC_X86_REG_RDX, "rax": X.UC_X86_REG_RAX, "rcx": X.UC_X86_REG_RCX,
    "rsp": X.UC_X86_REG_RSP, "rip": X.UC_X86_REG_RIP, "eflags": X.UC_X86_REG_RFLAGS,
    "fs_base": X.UC_X86_REG_FS_BASE, "gs_base": X.UC_X86_REG_GS_BASE,
}
_SYSCALL_REGS = (X.UC_X86_REG_RAX, X.UC_X86_REG_RDI, X.UC_X86_REG_RSI, X.UC_X86_REG_RDX,
                 X.UC_X86_REG_R10, X.UC_X86_REG_R8, X.UC_X86_REG_R9)

_FAULT_KIND = {
    UC.UC_MEM_READ_UNMAPPED: (E.READ, False), UC.UC_MEM_WRITE_UNMAPPED: (E.WRITE, False),
    UC.UC_MEM_FETCH_UNMAPPED: (E.EXEC, False), UC.UC_MEM_READ_PROT: (E.READ, True),
    UC.UC_MEM_WRITE_PROT: (E.WRITE, True), UC.UC_MEM_FETCH_PROT: (E.EXEC, True),
}

_uc_emu_start = uclib.uc_emu_start
_uc_emu_stop = uclib.uc_emu_stop
_uc_reg_write = uclib.uc_reg_write
_uc_reg_read = uclib.uc_reg_read


def _raw(fn, *argtypes):
    """A libunicorn function taking plain integers and keeping the GIL: the cheapest call
    ctypes can make, for the per-syscall register traffic."""
    addr = ctypes.cast(fn, ctypes.c_void_p).value
    return ctypes.PYFUNCTYPE(ctypes.c_int, *argtypes)(addr)


_vp, _int = ctypes.c_void_p, ctypes.c_int
_NO_UNTIL = 0xFFFFFFFFFFFFFFFF   # a non-canonical address: guest code never reaches it
_uc_reg_read_batch = _raw(uclib.uc_reg_read_batch, _vp, _vp, _vp, _int)
_uc_reg_write_batch = _raw(uclib.uc_reg_write_batch, _vp, _vp, _vp, _int)
_uc_reg_write_raw = _raw(uclib.uc_reg_write, _vp, _int, _vp)


def _find_no_exit_request():
    """The offset in Unicorn's uc_struct of `no_exit_request`, read off the machine code
    of check_exit_request, whose first test is that byte; None for a build not known.

    Why it matters: Unicorn's translator puts a stop check after every guest load and
    store, and a stop taken there rewinds rip to the start of the instruction whose store
    already happened, so `add [m], r` or `xchg` runs twice.  uc_emu_stop from another
    thread (preemption, a signal) lands there at random and corrupts the guest.  With
    the flag set, blocks are translated without those checks and a stop is taken only at
    a block's start, between instructions; it also saves a helper call per access.

    Two fixed instruction shapes are matched (capstone would cost 20 ms at start-up):
    x86-64 `cmp byte [reg+disp32], 0` (80 /7, mod 10) and arm64 `ldrb wT, [xN, #imm]`."""
    import platform
    try:
        addr = ctypes.cast(uclib.check_exit_request_x86_64, ctypes.c_void_p).value
    except AttributeError:
        return None
    code = ctypes.string_at(addr, 32)
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        for i in range(len(code) - 6):
            if code[i] == 0x80 and code[i + 1] & 0xF8 == 0xB8 and code[i + 1] != 0xBC \
                    and code[i + 6] == 0:
                return int.from_bytes(code[i + 2:i + 6], "little")
    elif machine in ("aarch64", "arm64"):
        for i in range(0, 16, 4):
            insn = int.from_bytes(code[i:i + 4], "little")
            if insn & 0xFFC00000 == 0x39400000:
                return (insn >> 10) & 0xFFF
    return None


_NO_EXIT_REQUEST = _find_no_exit_request()


@functools.cache
def _find_emu_counter():
    """The offset in uc_struct of `emu_counter`, the instructions uc_emu_start's count
    hook has seen (followed by `emu_count`, the limit), found by running known counts on
    a scratch instance; None if this build does not show it."""
    try:
        offsets = None
        for n, limit in ((7, 0x5A5A1234567), (3, 0x3C3C7654321)):
            uc = unicorn.Uc(UC.UC_ARCH_X86, UC.UC_MODE_64)
            uc.mem_map(0x1000, 0x1000)
            uc.mem_write(0x1000, b"\x90" * 8)
            uc.emu_start(0x1000, 0x1000 + n, 0, limit)
            blob = ctypes.string_at(uc._uch.value, 4096)
            found = {i - 8 for i in range(8, len(blob) - 8, 8)
                     if struct.unpack_from("<QQ", blob, i - 8) == (n, limit)}
            offsets = found if offsets is None else offsets & found
        return offsets.pop() if offsets and len(offsets) == 1 else None
    except Exception:
        return None


_COUNT_ALL = 1 << 62        # "no limit" while counting


class _RegBatch:
    """A fixed list of registers read or written with one raw libunicorn call."""

    def __init__(self, uch, ids, width=8):
        self.uch = uch.value
        self.n = len(ids)
        self.ids = (ctypes.c_int * self.n)(*ids)
        self.bufs = [(ctypes.c_uint8 * width)() for _ in ids]
        self.ptrs = (ctypes.c_void_p * self.n)(*(ctypes.addressof(b) for b in self.bufs))
        self.width = width
        if width == 8:
            self.vals = (_U64 * self.n)()
            self.ptrs = (ctypes.c_void_p * self.n)(
                *(ctypes.addressof(self.vals) + 8 * i for i in range(self.n)))
            self.view = memoryview(self.vals).cast("B").cast("Q")
        self.args = (self.uch, ctypes.addressof(self.ids), ctypes.addressof(self.ptrs), self.n)

    def read(self):
        _uc_reg_read_batch(*self.args)
        if self.width == 8:
            return self.view.tolist()
        return [bytes(b) for b in self.bufs]

    def write(self, values):
        if self.width == 8:
            self.view[:] = array("Q", [v & 0xFFFFFFFFFFFFFFFF for v in values])
        else:
            for b, v in zip(self.bufs, values):
                ctypes.memmove(b, v, self.width)
        _uc_reg_write_batch(*self.args)


def _uc_perms(prot):
    perms = prot & 7
    if perms & (E.PROT_WRITE | E.PROT_EXEC):
        perms |= E.PROT_READ  # x86 pages that are writable or executable are readable
    return perms


class UnicornAddressSpace(E.AddressSpace):
    """Guest segments (va, end, prot, host) kept in Python; Unicorn sees merged regions."""

    def __init__(self, uc):
        self.uc = uc
        self.segs = []      # sorted [start, end, prot, host]
        self.regions = []   # sorted [start, end, perms, host] as mapped in Unicorn

    # -- segment bookkeeping ------------------------------------------------------
    def _cut(self, lo, hi):
        """Remove [lo, hi) from self.segs, splitting segments that straddle it."""
        out = []
        for s in self.segs:
            start, end, prot, host = s
            if end <= lo or start >= hi:
                out.append(s)
                continue
            if start < lo:
                out.append([start, lo, prot, host])
            if end > hi:
                out.append([hi, end, prot, host + (hi - start)])
        self.segs = out

    def _covered(self, lo, hi):
        return [s for s in self.segs if s[0] < hi and s[1] > lo]

    def map(self, va, length, prot, host):
        self._cut(va, va + length)
        bisect.insort(self.segs, [va, va + length, prot, host])
        self._sync(va, va + length)

    def unmap(self, va, length):
        self._cut(va, va + length)
        self._sync(va, va + length)

    def protect(self, va, length, prot):
        lo, hi = va, va + length
        pieces = [[max(s[0], lo), min(s[1], hi), prot, s[3] + max(s[0], lo) - s[0]]
                  for s in self._covered(lo, hi)]
        self._cut(lo, hi)
        for p in pieces:
            bisect.insort(self.segs, p)
        self._sync(lo, hi)

    def code_changed(self, va, length):
        self.uc.ctl_remove_cache(va, va + length)

    # -- Unicorn regions ------------------------------------------------------------
    def _sync(self, lo, hi):
        """Re-map the Unicorn regions touching [lo, hi) from the segments."""
        old = [r for r in self.regions if r[0] <= hi and r[1] >= lo]
        if old:
            lo, hi = min(lo, old[0][0]), max(hi, old[-1][1])
        for r in old:
            self.uc.mem_unmap(r[0], r[1] - r[0])
            self.regions.remove(r)
        merged = []
        for start, end, prot, host in self._covered(lo, hi):
            start, host = max(start, lo), host + max(start, lo) - start
            end = min(end, hi)
            perms = _uc_perms(prot)
            if not perms:
                continue  # PROT_NONE: absent from Unicorn; the kernel knows it is mapped
            if merged and merged[-1][1] == start and merged[-1][2] == perms \
                    and merged[-1][3] + (start - merged[-1][0]) == host:
                merged[-1][1] = end
            else:
                merged.append([start, end, perms, host])
        for r in merged:
            self.uc.mem_map_ptr(r[0], r[1] - r[0], r[2], r[3])
            bisect.insort(self.regions, r)
        # Unmapping flushes translations of the old range; remapped code is retranslated.


class UnicornVcpu(E.Vcpu):
    """One guest thread's CPU state on the process's single Unicorn instance.

    Threads of a process take turns on the instance (atomics are not atomic across
    instances), so the register state of an idle thread lives in a saved context."""

    def __init__(self, eng, context):
        self.eng = eng
        self.uc = eng.uc
        self.uch = eng.uc._uch
        self.context = context      # this thread's registers while another one runs
        self.pending_regs = None    # set_regs() before the first run (clone)
        self.kicked = False
        self.preempt = False
        self.single_step = False
        self.resume_bp = None       # the breakpoint this vcpu stopped at (run steps over it)
        self.step_owed = False      # a step ended with the handler leaving run() early
        self._sys = _RegBatch(self.uch, _SYSCALL_REGS)
        self._gprs = _RegBatch(self.uch, [_GPR_IDS[n] for n in E.GPR_NAMES])
        self._xmm = _RegBatch(self.uch, [X.UC_X86_REG_XMM0 + i for i in range(16)], 16)
        self._st = _RegBatch(self.uch, [X.UC_X86_REG_ST0 + i for i in range(8)], 10)
        self._fpctl = _RegBatch(self.uch, [X.UC_X86_REG_FPCW, X.UC_X86_REG_FPSW,
                                           X.UC_X86_REG_FPTAG, X.UC_X86_REG_MXCSR])
        self._rax = _U64()
        self._rax_args = (self.uch.value, X.UC_X86_REG_RAX, ctypes.addressof(self._rax))
        self._rip = _U64()

    # -- registers --------------------------------------------------------------------
    def syscall_args(self):
        return self._sys.read()

    def set_result(self, value):
        self._rax.value = value & 0xFFFFFFFFFFFFFFFF
        _uc_reg_write_raw(*self._rax_args)

    # Inside the SYSCALL hook Unicorn's rip still points at the 2-byte instruction and
    # is advanced after the hook returns; the kernel sees Linux's view (rip past it).
    def _rip_bias(self):
        return 2 if self.eng.in_syscall else 0

    def get_regs(self):
        if self.eng.cpu.loaded is not self:
            return self._context_regs()
        regs = E.Regs(*self._gprs.read())
        regs.rip += self._rip_bias()
        return regs

    def _context_regs(self):
        if self.pending_regs is not None:
            return self.pending_regs.copy()
        return E.Regs(*(self.context.reg_read(_GPR_IDS[n]) for n in E.GPR_NAMES))

    def set_regs(self, regs):
        if self.eng.cpu.loaded is not self:
            self.pending_regs = regs.copy()     # applied when this vcpu is loaded
            return
        values = [getattr(regs, n) for n in E.GPR_NAMES]
        values[E.GPR_NAMES.index("rip")] -= self._rip_bias()
        self._gprs.write(values)

    def set_reg(self, name, value):
        if self.eng.cpu.loaded is not self:
            regs = self.get_regs()
            setattr(regs, name, value)
            self.set_regs(regs)
            return
        if name == "rip":
            value -= self._rip_bias()
        self.uc.reg_write(_GPR_IDS[name], value & 0xFFFFFFFFFFFFFFFF)

    def get_reg(self, name):
        if self.eng.cpu.loaded is not self:
            return getattr(self.get_regs(), name)
        value = self.uc.reg_read(_GPR_IDS[name])
        return value + self._rip_bias() if name == "rip" else value

    def get_fpu(self):
        """The x87/SSE state as a 512-byte FXSAVE image (what Linux puts in a signal frame)."""
        fcw, fsw, ftw, mxcsr = self._fpctl.read()
        abridged = 0
        for i in range(8):
            if (ftw >> (2 * i)) & 3 != 3:
                abridged |= 1 << i
        head = struct.pack("<HHBBHQQII", fcw, fsw, abridged, 0, 0, 0, 0, mxcsr, 0xFFFF)
        st = b"".join(v.ljust(16, b"\0") for v in self._st.read())
        xmm = b"".join(self._xmm.read())
        return (head + st + xmm).ljust(512, b"\0")

    def set_fpu(self, image):
        fcw, fsw, abridged, _, _, _, _, mxcsr, _ = struct.unpack_from("<HHBBHQQII", image)
        ftw = 0
        for i in range(8):
            if not (abridged >> i) & 1:
                ftw |= 3 << (2 * i)
        self._fpctl.write([fcw, fsw, ftw, mxcsr & 0xFFFF])
        self._st.write([image[32 + 16 * i: 32 + 16 * i + 10] for i in range(8)])
        self._xmm.write([image[160 + 16 * i: 176 + 16 * i] for i in range(16)])

    def reset_fpu(self):
        """The state a new program starts with (execve)."""
        self._fpctl.write([0x37F, 0, 0xFFFF, 0x1F80])
        self._xmm.write([bytes(16)] * 16)

    # -- running ------------------------------------------------------------------------
    def kick(self):
        self.kicked = True
        if self.eng.cpu.owner is self:
            _uc_emu_stop(self.uch)

    def shares_engine(self):
        return len(self.eng.cpu.vcpus) > 1

    def activate(self):
        """Take the instance for this vcpu on the calling host thread."""
        if self.eng.cpu.owner is not self:
            self.eng.cpu.acquire(self)

    def released(self):
        """Let other threads run on the instance during a blocking host call."""
        return self.eng.cpu.released(self)

    def close(self):
        """The thread is gone: give the instance up for good."""
        self.eng.cpu.forget(self)

    def run(self, handler):
        eng = self.eng
        cpu = eng.cpu
        self.activate()
        eng.handler = handler
        while True:
            if self.preempt and not self.single_step:   # a debugger's step keeps the CPU
                self.preempt = False
                cpu.release(self)
                cpu.acquire(self)
                eng.handler = handler
            if self.kicked:
                self.kicked = False
                if not handler(E.Event(E.KICKED)):
                    return
                continue
            if self.step_owed:
                # The stepped instruction (a syscall) left run() from its hook.
                self.step_owed = False
                if self.single_step:
                    event = E.Event(E.STEP, rip=self.get_reg("rip"))
                    if not handler(event):
                        return
                    continue
            eng.stop_event = None
            eng.fault = None
            eng.trap = None
            _uc_reg_read(self.uch, X.UC_X86_REG_RIP, ctypes.byref(self._rip))
            count = eng.step_count
            if self.single_step or eng.watches:
                count = 1
            if eng.counting:
                if eng.stop_at is not None:
                    left = eng.stop_at - eng.insn_count
                    if left <= 0:
                        eng.stop_at = None
                        event = E.Event(E.STEP, rip=self._rip.value)
                        if not handler(event):
                            return
                        continue
                    count = min(count or left, left)
                elif not count:
                    count = _COUNT_ALL
            if eng.breakpoints:
                eng.bp_hit = None
                eng.bp_skip = self.resume_bp if self.resume_bp == self._rip.value else None
            self.resume_bp = None
            eng.watch_hit = None
            eng.precise_stops(bool(count or eng.breakpoints))
            err = _uc_emu_start(self.uch, self._rip.value, _NO_UNTIL, 0, count)
            if eng.counting:
                eng.count_after(count, err)
            if eng.exception is not None:
                exc, eng.exception = eng.exception, None
                raise exc
            if eng.stop_event is not None:
                self.step_owed = self.single_step
                return  # the handler asked to stop from inside a hook
            if eng.bp_hit is not None:
                self.resume_bp = eng.bp_hit
                event = E.Event(E.BREAK, addr=eng.bp_hit)
                eng.bp_hit = None
            elif err != UC.UC_ERR_OK or eng.fault or eng.trap is not None:
                eng.watch_hit = None
                event = self._exception_event(err)
            elif eng.watch_hit is not None:
                (addr, access), eng.watch_hit = eng.watch_hit, None
                event = E.Event(E.WATCH, addr=addr, access=access)
            elif (self.kicked or self.preempt) and not (
                    self.single_step and self.get_reg("rip") != self._rip.value):
                continue
            elif count and count != _COUNT_ALL:
                if eng.counting and eng.stop_at is not None \
                        and eng.insn_count >= eng.stop_at:
                    eng.stop_at = None
                elif not (eng.step_count or self.single_step):
                    continue    # stepping for watchpoints or counting only
                event = E.Event(E.STEP)
            elif self._after_hlt():
                # HLT, which is a #GP in user mode (reported at the HLT itself).
                self.set_reg("rip", self.get_reg("rip") - 1)
                event = E.Event(E.TRAP, vector=E.VEC_GP)
            else:
                continue    # a stop asked for before this emu_start began (a stale kick)
            event.rip = self.get_reg("rip")
            if not handler(event):
                return

    def _after_hlt(self):
        rip = self.get_reg("rip")
        try:
            return rip > 0 and bytes(self.uc.mem_read(rip - 1, 1)) == b"\xf4"
        except unicorn.UcError:
            return False

    def _forget_exception(self):
        """QEMU remembers the exception "in flight" until its (unused, here) interrupt
        delivery ends, so a second #DE or #GP would become a double fault.  Restore a
        pristine CPU context around the current registers to forget it."""
        regs, fpu = self.get_regs(), self.get_fpu()
        self.uc.context_restore(self.eng.clean_context)
        self.set_regs(regs)
        self.set_fpu(fpu)

    def _noncanonical_operand(self):
        """Unicorn truncates a non-canonical address to 48 bits and reports a page fault
        near 0; x86 raises #GP.  Decode the instruction to tell the two apart."""
        try:
            import capstone
            from capstone import x86_const as CX
            rip = self.get_reg("rip")
            code = bytes(self.uc.mem_read(rip, 16))
        except Exception:
            return False
        md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
        md.detail = True
        for insn in md.disasm(code, rip, 1):
            for op in insn.operands:
                if op.type != CX.X86_OP_MEM:
                    continue
                m = op.mem
                ea = m.disp
                for reg, scale in ((m.base, 1), (m.index, m.scale)):
                    if reg == CX.X86_REG_RIP:
                        ea += rip + insn.size
                    elif reg:
                        name = insn.reg_name(reg)
                        ea += scale * self.uc.reg_read(getattr(X, "UC_X86_REG_" + name.upper()))
                ea &= 0xFFFFFFFFFFFFFFFF
                if 0x800000000000 <= ea < 0xFFFF800000000000:
                    return True
        return False

    def _exception_event(self, err):
        eng = self.eng
        if eng.fault is not None:
            access, mapped, addr = eng.fault
            if addr < 0x10000 and access != E.EXEC and self._noncanonical_operand():
                return E.Event(E.TRAP, vector=E.VEC_GP)
            return E.Event(E.FAULT, addr=addr, access=access, mapped=mapped)
        if eng.trap is not None:
            self._forget_exception()
            return E.Event(E.TRAP, vector=eng.trap)
        if err == UC.UC_ERR_INSN_INVALID:
            return E.Event(E.TRAP, vector=E.VEC_UD)
        if err in (UC.UC_ERR_FETCH_UNMAPPED, UC.UC_ERR_FETCH_PROT):
            rip = self.get_reg("rip")
            return E.Event(E.FAULT, addr=rip, access=E.EXEC, mapped=err == UC.UC_ERR_FETCH_PROT)
        return E.Event(E.TRAP, vector=E.VEC_GP)


class _Token:
    """The owner of the instance while a debugger has it to itself (exclusive())."""
    single_step = True      # the watchdog does not preempt it
    kicked = False
    preempt = False
    parked = False


class _Instance:
    """The process's one Unicorn instance, shared by its threads in turn.

    A thread holds the instance whenever it runs guest code or kernel code; it lets go
    only around blocking host calls (released()) and when preempted.  Hand-over is FIFO.
    The registers of the thread that ran last stay loaded until another one takes over,
    so a lone thread never pays for a context switch."""

    SLICE = 0.010       # seconds a thread may run while others wait

    def __init__(self, uc):
        self.uc = uc
        self.cond = threading.Condition()
        self.owner = None
        self.loaded = None
        self.queue = collections.deque()
        self.vcpus = []
        self.since = 0.0
        self._watchdog = None

    def acquire(self, vcpu):
        with self.cond:
            if self.owner is not None or self.queue:
                self.queue.append(vcpu)
                while self.owner is not None or self.queue[0] is not vcpu:
                    self.cond.wait()
                self.queue.popleft()
            self.owner = vcpu
        self.since = time.monotonic()
        if self.loaded is not vcpu:
            if self.loaded is not None:
                self.uc.context_update(self.loaded.context)
            self.uc.context_restore(vcpu.context)
            self.loaded = vcpu
            if vcpu.pending_regs is not None:
                regs, vcpu.pending_regs = vcpu.pending_regs, None
                vcpu.set_regs(regs)

    def release(self, vcpu):
        with self.cond:
            if self.owner is vcpu:
                self.owner = None
                self.cond.notify_all()

    @contextlib.contextmanager
    def released(self, vcpu):
        if len(self.vcpus) < 2 or self.owner is not vcpu:
            yield           # nobody to hand over to
            return
        if vcpu.eng.in_syscall:
            raise RuntimeError("a blocking call inside an engine hook cannot release the CPU")
        handler = vcpu.eng.handler      # another thread's run() sets its own meanwhile
        self.release(vcpu)
        try:
            yield
        finally:
            self.acquire(vcpu)
            vcpu.eng.handler = handler

    @contextlib.contextmanager
    def exclusive(self):
        """No guest thread touches the instance meanwhile (a debugger reading or changing
        a stopped thread's registers, or breakpoints, while its siblings run): wait for
        the owner to let go (preempted after its slice), or for it to be parked by the
        debugger (held inside a hook: it touches nothing until resumed)."""
        token = _Token()
        took = False
        self.start_watchdog()
        with self.cond:
            self.queue.append(token)
            while True:
                if self.owner is None and self.queue[0] is token:
                    self.queue.popleft()
                    self.owner = token
                    took = True
                    break
                if self.owner is not None and getattr(self.owner, "parked", False):
                    self.queue.remove(token)
                    self.cond.notify_all()
                    break
                self.cond.wait(0.02)
        try:
            yield
        finally:
            if took:
                self.release(token)

    def forget(self, vcpu):
        if vcpu in self.vcpus:
            self.vcpus.remove(vcpu)
        if self.loaded is vcpu:
            self.loaded = None
        self.release(vcpu)

    def start_watchdog(self):
        if self._watchdog is None:
            self._watchdog = threading.Thread(target=self._watch, name="blinkroot-sched",
                                              daemon=True)
            self._watchdog.start()

    def stop_watchdog(self):
        self._watchdog_stop = True

    def _watch(self):
        """Preempt a thread that ran its slice while others wait; re-send lost kicks."""
        self._watchdog_stop = False
        while not self._watchdog_stop:
            time.sleep(self.SLICE / 2)
            owner = self.owner
            if owner is None:
                continue
            if self.queue and time.monotonic() - self.since > self.SLICE \
                    and not owner.single_step:
                owner.preempt = True
                _uc_emu_stop(owner.uch)
            elif owner.kicked:
                _uc_emu_stop(owner.uch)


_warned_imprecise = False


def _warn_imprecise():
    global _warned_imprecise
    _warned_imprecise = True
    import sys
    print("blinkroot: warning: unknown libunicorn build; preempting threads and "
          "delivering signals may corrupt guest state", file=sys.stderr)


class UnicornEngine(E.Engine):
    def __init__(self):
        self.capabilities = E.Capabilities(
            name="unicorn", version=unicorn.__version__, parallel_vcpus=False,
            details={"cpu_model": "Haswell (AVX masked)"})
        self.handler = None
        self.stop_event = None
        self.exception = None
        self.fault = None
        self.trap = None
        self.in_syscall = False
        self.step_count = 0
        self.vcpu_current = None
        self.breakpoints = {}       # addr -> Unicorn hook handle
        self.bp_hit = None
        self.bp_skip = None
        self.watches = {}           # (addr, length, access) -> Unicorn hook handle
        self.watch_hit = None
        self.counting = False       # keep insn_count (a debugger's reverse execution)
        self.insn_count = 0         # instructions run while counting
        self.stop_at = None         # while counting: report STEP when insn_count gets here
        self._open()

    def _open(self):
        self.uc = unicorn.Uc(UC.UC_ARCH_X86, UC.UC_MODE_64)
        self.uc.ctl_set_cpu_model(X.UC_CPU_X86_HASWELL)
        self._no_exit_request = None
        self._precise = True        # how Unicorn translates by default
        if _NO_EXIT_REQUEST is not None:
            self._no_exit_request = ctypes.c_bool.from_address(
                self.uc._uch.value + _NO_EXIT_REQUEST)
            self.precise_stops(False)
        elif not _warned_imprecise:
            _warn_imprecise()
        self.address_space = UnicornAddressSpace(self.uc)
        self._install_hooks()
        for addr in list(self.breakpoints):     # a debugger's, kept across execve
            self.breakpoints[addr] = self._add_hook(UC.UC_HOOK_CODE, self._bp_cb, addr, addr)
        for w in list(self.watches):
            self.watches[w] = self._add_watch_hook(*w)
        self.clean_context = self.uc.context_save()
        self.cpu = _Instance(self.uc)

    def new_address_space(self):
        """execve: a fresh instance, so nothing of the old image (code cache) survives.
        The caller is the process's only thread (exec ends the others first)."""
        self.cpu.stop_watchdog()
        del self.uc
        self._open()
        return self.address_space

    def native_cpuid(self, leaf, subleaf):
        return native_cpuid(leaf, subleaf)

    def new_vcpu(self, copy_of=None):
        """A vcpu for a new thread; with copy_of, its registers start as that vcpu's
        (clone), else as a reset CPU."""
        if copy_of is not None:
            context = self.uc.context_save()
            vcpu = UnicornVcpu(self, context)
            vcpu.pending_regs = copy_of.get_regs()
        else:
            vcpu = UnicornVcpu(self, self.uc.context_save())
        self.cpu.vcpus.append(vcpu)
        if len(self.cpu.vcpus) > 1:
            self.cpu.start_watchdog()
        return vcpu

    def after_fork_in_child(self, vcpu):
        """Only the forking thread lives on, and no lock state or watchdog survives."""
        cpu = self.cpu
        fresh = _Instance(self.uc)
        fresh.vcpus = [vcpu]
        fresh.owner = fresh.loaded = vcpu if cpu.loaded is vcpu else None
        if fresh.owner is None:
            fresh.acquire(vcpu)
        self.cpu = fresh

    def precise_stops(self, wanted):
        """Whether a stop may end a block mid-way (a breakpoint, a step or a watchpoint
        needs it).  Without it a stop waits for the next block's start, which is the
        only kind another thread may ask for safely (see _find_no_exit_request)."""
        if wanted == self._precise or self._no_exit_request is None:
            return
        self._precise = wanted
        self._no_exit_request.value = not wanted
        self.uc.ctl_flush_tb()      # blocks translated the other way must go

    def kick_running(self):
        """Stop whichever vcpu is running (a host signal arrived for the process)."""
        owner = self.cpu.owner
        if owner is not None:
            owner.kick()

    # -- debugging ----------------------------------------------------------------------
    def can_count(self):
        return _find_emu_counter() is not None

    def count_instructions(self, on=True):
        """Keep insn_count: instructions retired, counted by Unicorn's own count hook
        (one C call per instruction, no Python), so a replay can stop at the very same
        instruction a recording passed."""
        if on and _find_emu_counter() is None:
            raise RuntimeError("this libunicorn build does not show its instruction counter")
        self.counting = on

    def count_after(self, limit, err):
        """Add what the last emu_start ran.  Unicorn's count hook runs first for every
        instruction it starts; the last one it saw did not retire if the limit stopped it,
        a breakpoint held it, or it faulted."""
        seen = _U64.from_address(self.uc._uch.value + _find_emu_counter()).value
        if seen > limit or self.bp_hit is not None or err != UC.UC_ERR_OK \
                or self.fault is not None or self.trap is not None:
            seen = max(0, seen - 1)
        self.insn_count += seen

    def _add_hook(self, htype, fptr, begin, end):
        h = ctypes.c_size_t()
        status = uclib.uc_hook_add(self.uc._uch, ctypes.byref(h), htype, fptr, None,
                                   _U64(begin), _U64(end))
        if status != UC.UC_ERR_OK:
            raise unicorn.UcError(status)
        return h.value

    def _del_hook(self, handle):
        uclib.uc_hook_del(self.uc._uch, ctypes.c_size_t(handle))

    def add_breakpoint(self, addr):
        """A code hook on that one address: code elsewhere runs without any hook."""
        if addr in self.breakpoints:
            return
        self.breakpoints[addr] = self._add_hook(UC.UC_HOOK_CODE, self._bp_cb, addr, addr)
        self.uc.ctl_remove_cache(addr, addr + 1)    # retranslate with the hook call

    def remove_breakpoint(self, addr):
        handle = self.breakpoints.pop(addr, None)
        if handle is not None:
            self._del_hook(handle)
            self.uc.ctl_remove_cache(addr, addr + 1)

    _WATCH_REACH = 64   # widest access that may start before a watched byte (AVX-512: 64)

    def _add_watch_hook(self, addr, length, access):
        types = {E.READ: UC.UC_HOOK_MEM_READ, E.WRITE: UC.UC_HOOK_MEM_WRITE}.get(
            access, UC.UC_HOOK_MEM_READ | UC.UC_HOOK_MEM_WRITE)
        return self._add_hook(types, self._watch_cb, max(0, addr - self._WATCH_REACH + 1),
                              addr + length - 1)

    def add_watchpoint(self, addr, length, access):
        key = (addr, length, access)
        if key not in self.watches:
            self.watches[key] = self._add_watch_hook(addr, length, access)

    def remove_watchpoint(self, addr, length, access):
        handle = self.watches.pop((addr, length, access), None)
        if handle is not None:
            self._del_hook(handle)

    def _on_breakpoint(self, addr):
        if addr == self.bp_skip:
            self.bp_skip = None     # resuming from this breakpoint: run its instruction
            return
        if addr in self.breakpoints:
            self.bp_hit = addr
            _uc_emu_stop(self.uc._uch)

    def _on_watched_access(self, type_, addr, size):
        kind = E.WRITE if type_ == UC.UC_MEM_WRITE else E.READ
        for (wa, wl, wk) in self.watches:
            if addr < wa + wl and addr + size > wa and wk in (kind, "access"):
                if self.watch_hit is None or kind == E.WRITE:
                    self.watch_hit = (wa, kind)
                return

    # -- hooks: each catches everything, since an exception cannot cross libunicorn ------
    def _deliver(self, event):
        try:
            if not self.handler(event):
                self.stop_event = event
                _uc_emu_stop(self.uc._uch)
        except BaseException as exc:  # re-raised by run() after emu_start returns
            self.exception = exc
            _uc_emu_stop(self.uc._uch)

    def _deliver_syscall(self, event):
        self.in_syscall = True      # see UnicornVcpu._rip_bias
        self._deliver(event)
        self.in_syscall = False

    def _install_hooks(self):
        uch = self.uc._uch
        self._hooks = []

        def add(htype, fptr, *extra):
            h = ctypes.c_size_t()
            status = uclib.uc_hook_add(uch, ctypes.byref(h), htype, fptr, None,
                                       _U64(1), _U64(0), *extra)
            if status != UC.UC_ERR_OK:
                raise unicorn.UcError(status)
            self._hooks.append(fptr)

        syscall_event = E.Event(E.SYSCALL)

        def on_syscall(_uc, _user):
            self._deliver_syscall(syscall_event)

        def on_cpuid(_uc, _user):
            self._deliver(E.Event(E.CPUID))
            return 1

        def on_mem_invalid(_uc, access, addr, _size, _value, _user):
            self.fault = _FAULT_KIND.get(access, (E.READ, False)) + (addr,)
            return False

        def on_intr(_uc, intno, _user):
            self.trap = intno
            _uc_emu_stop(uch)

        def on_insn_invalid(_uc, _user):
            self.trap = E.VEC_UD
            return False

        def on_breakpoint(_uc, addr, _size, _user):
            self._on_breakpoint(addr)

        def on_watched(_uc, type_, addr, size, _value, _user):
            self._on_watched_access(type_, addr, size)

        self._bp_cb = HOOK_CODE_CFUNC(on_breakpoint)
        self._watch_cb = HOOK_MEM_ACCESS_CFUNC(on_watched)
        self._hooks += [self._bp_cb, self._watch_cb]
        add(UC.UC_HOOK_INSN, HOOK_INSN_SYSCALL_CFUNC(on_syscall), ctypes.c_int(X.UC_X86_INS_SYSCALL))
        add(UC.UC_HOOK_INSN, HOOK_INSN_CPUID_CFUNC(on_cpuid), ctypes.c_int(X.UC_X86_INS_CPUID))
        add(UC.UC_HOOK_MEM_INVALID, HOOK_MEM_INVALID_CFUNC(on_mem_invalid))
        add(UC.UC_HOOK_INTR, HOOK_INTR_CFUNC(on_intr))
        add(UC.UC_HOOK_INSN_INVALID, HOOK_INSN_INVALID_CFUNC(on_insn_invalid))


_native_cpuid_uc = None
_native_cpuid_cache = {}


def native_cpuid(leaf, subleaf):
    """What the engine's CPU model answers natively (run once on a scratch instance)."""
    global _native_cpuid_uc
    key = (leaf, subleaf)
    if key in _native_cpuid_cache:
        return _native_cpuid_cache[key]
    if _native_cpuid_uc is None:
        uc = unicorn.Uc(UC.UC_ARCH_X86, UC.UC_MODE_64)
        uc.ctl_set_cpu_model(X.UC_CPU_X86_HASWELL)
        uc.mem_map(0x1000, 0x1000)
        uc.mem_write(0x1000, b"\x0f\xa2")  # cpuid
        _native_cpuid_uc = uc
    uc = _native_cpuid_uc
    uc.reg_write(X.UC_X86_REG_RAX, leaf)
    uc.reg_write(X.UC_X86_REG_RCX, subleaf)
    uc.emu_start(0x1000, 0x1002)
    result = tuple(uc.reg_read(r) & 0xFFFFFFFF for r in
                   (X.UC_X86_REG_RAX, X.UC_X86_REG_RBX, X.UC_X86_REG_RCX, X.UC_X86_REG_RDX))
    _native_cpuid_cache[key] = result
    return result


_REAL_REGS = {name: getattr(X, "UC_X86_REG_" + name.upper()) for name in E.RealModeMachine.REGS}
_REAL_REGS["flags"] = X.UC_X86_REG_FLAGS


class UnicornRealMode(E.RealModeMachine):
    """Unicorn in UC_MODE_16 over 1 MiB of its own memory.  Unicorn reports INT n (and
    CPU exceptions) through UC_HOOK_INTR with IP already past the instruction, without
    touching the stack or the IVT; the hook only notes the vector and stops, and run()
    reports it once emu_start has returned, so a handler may block (int 16h)."""

    def __init__(self):
        self.uc = unicorn.Uc(UC.UC_ARCH_X86, UC.UC_MODE_16)
        self.uc.mem_map(0, self.memory_size)
        self.single_step = False
        self.kicked = False
        self.breakpoints = {}       # linear addr -> hook handle
        self.resume_bp = None
        self._no_exit_request = None
        self._precise = True
        if _NO_EXIT_REQUEST is not None:
            self._no_exit_request = ctypes.c_bool.from_address(
                self.uc._uch.value + _NO_EXIT_REQUEST)
        self._reset_stop()
        self.uc.hook_add(UC.UC_HOOK_INTR, self._on_intr)
        self.uc.hook_add(UC.UC_HOOK_INSN, self._on_syscall, None, 1, 0, X.UC_X86_INS_SYSCALL)
        self.uc.hook_add(UC.UC_HOOK_INSN_INVALID, self._on_invalid)
        self.uc.hook_add(UC.UC_HOOK_MEM_INVALID, self._on_mem_invalid)
        self.set_regs(flags=0x202)

    def _reset_stop(self):
        self.intr = None
        self.syscall = False
        self.invalid = False
        self.fault = None
        self.bp_hit = None
        self.bp_skip = None

    # -- hooks: note what happened and stop; run() reports it --------------------------
    def _on_intr(self, uc, intno, _user):
        self.intr = intno
        uc.emu_stop()

    def _on_syscall(self, uc, _user):
        self.syscall = True
        uc.emu_stop()

    def _on_invalid(self, uc, _user):
        self.invalid = True
        return False

    def _on_mem_invalid(self, uc, access, addr, _size, _value, _user):
        self.fault = _FAULT_KIND.get(access, (E.READ, False)) + (addr,)
        return False

    def _on_bp(self, uc, addr, _size, _user):
        if addr == self.bp_skip:
            self.bp_skip = None
            return
        if addr in self.breakpoints:
            self.bp_hit = addr
            uc.emu_stop()

    # -- state ------------------------------------------------------------------------
    def read(self, addr, length):
        addr = max(0, addr)
        length = max(0, min(length, self.memory_size - addr))
        return bytes(self.uc.mem_read(addr, length)) if length else b""

    def write(self, addr, data):
        self.uc.mem_write(addr, bytes(data))
        self.uc.ctl_remove_cache(addr, addr + max(1, len(data)))

    def get_regs(self):
        return {n: self.uc.reg_read(i) & 0xFFFF for n, i in _REAL_REGS.items()}

    def set_regs(self, **values):
        for name, value in values.items():
            self.uc.reg_write(_REAL_REGS[name], value & 0xFFFF)

    def pc(self):
        return (self.uc.reg_read(X.UC_X86_REG_CS) * 16 + self.uc.reg_read(X.UC_X86_REG_IP)) \
            & 0xFFFFF

    def add_breakpoint(self, addr):
        if addr not in self.breakpoints:
            self.breakpoints[addr] = self.uc.hook_add(UC.UC_HOOK_CODE, self._on_bp, None,
                                                      addr, addr)
            self.uc.ctl_remove_cache(addr, addr + 1)

    def remove_breakpoint(self, addr):
        handle = self.breakpoints.pop(addr, None)
        if handle is not None:
            self.uc.hook_del(handle)
            self.uc.ctl_remove_cache(addr, addr + 1)

    def kick(self):
        self.kicked = True
        self.uc.emu_stop()

    def _precise_stops(self, wanted):
        if wanted == self._precise or self._no_exit_request is None:
            return
        self._precise = wanted
        self._no_exit_request.value = not wanted
        self.uc.ctl_flush_tb()

    def _halted(self, start, count):
        """emu_start returned for no reason we noted: a HLT (Unicorn stops there)."""
        pc = self.pc()
        if count:
            return self.read(start, 1) == b"\xf4" and pc == (start + 1) & 0xFFFFF
        return pc > 0 and self.read(pc - 1, 1) == b"\xf4"

    # -- running ----------------------------------------------------------------------
    def run(self, handler):
        while True:
            if self.kicked:
                self.kicked = False
                if not handler(E.Event(E.KICKED, rip=self.pc())):
                    return
                continue
            self._reset_stop()
            start = self.pc()
            if self.breakpoints:
                self.bp_skip = self.resume_bp if self.resume_bp == start else None
            self.resume_bp = None
            count = 1 if self.single_step else 0
            self._precise_stops(bool(count or self.breakpoints))
            err = UC.UC_ERR_OK
            try:
                self.uc.emu_start(start, _NO_UNTIL, 0, count)
            except unicorn.UcError as e:
                err = e.errno
            ends_step = False
            if self.bp_hit is not None:
                self.resume_bp = self.bp_hit
                event = E.Event(E.BREAK, addr=self.bp_hit)
            elif self.intr is not None:
                event = E.Event(E.INTERRUPT, vector=self.intr)
                ends_step = self.single_step
            elif self.syscall:
                event = E.Event(E.SYSCALL)
                ends_step = self.single_step
            elif self.invalid or err == UC.UC_ERR_INSN_INVALID:
                event = E.Event(E.TRAP, vector=E.VEC_UD)
            elif self.fault is not None:
                access, mapped, addr = self.fault
                event = E.Event(E.FAULT, addr=addr, access=access, mapped=mapped)
            elif err != UC.UC_ERR_OK:
                event = E.Event(E.TRAP, vector=E.VEC_GP)
            elif self.kicked:
                continue
            elif self._halted(start, count):
                event = E.Event(E.HALT)
                ends_step = self.single_step
            elif count:
                event = E.Event(E.STEP)
            else:
                continue
            event.rip = self.pc()
            if not handler(event):
                return
            if ends_step:
                if not handler(E.Event(E.STEP, rip=self.pc())):
                    return
