"""The CPU engine interface: the only thing the kernel knows about how guest code runs.

Shapes follow what both Unicorn and KVM can do cheaply (see shared notes on both):

* ``AddressSpace`` (one per guest mm): map/unmap/protect guest ranges onto host memory
  that blinkroot owns.  The Linux layer owns the VMAs; the engine owns its page tables
  (Unicorn regions, or KVM PTEs).
* ``Vcpu`` (one per guest thread): ``run(handler)`` executes guest code and calls
  ``handler(event)`` for every event; the handler returns True to resume and False to
  make ``run`` return.  ``kick()`` stops a running vcpu from any thread.
* Debugging (blinkroot.debug drives it; the kernel never does): ``Vcpu.single_step``
  makes ``run`` report a STEP event after each instruction; ``Engine.add_breakpoint``
  makes any vcpu report BREAK *before* executing the instruction at an address (resuming
  from that very stop executes it, like x86's RF flag); ``Engine.add_watchpoint`` reports
  WATCH after an instruction that read or wrote a watched range.  A handler that does
  not return holds its thread stopped; ``kick()`` makes a running vcpu report KICKED.
* Real mode (blinkenlights -r): ``RealModeMachine`` is a separate, small machine: one
  16-bit i8086-style CPU and 1 MiB of memory at linear address 0, with no kernel behind
  it.  ``INT n`` reports INTERRUPT (the caller emulates the BIOS service) and ``HLT``
  reports HALT; addresses in its events and breakpoints are linear (CS*16 + IP).
* Registers are read and written in bulk, once per event: ``syscall_args()`` and
  ``set_result()`` on the hot path, ``get_regs()/set_regs()`` for signals and fork,
  ``get_fpu()/set_fpu()`` as a 512-byte FXSAVE image.
"""

from dataclasses import dataclass, field

# Event kinds.
SYSCALL = "syscall"     # rip is past the SYSCALL instruction
FAULT = "fault"         # memory access fault: addr, access, rip at the faulting insn
TRAP = "trap"           # CPU exception: vector (0 #DE, 1 #DB, 3 #BP, 6 #UD, 13 #GP, ...)
CPUID = "cpuid"         # the handler answers through set_regs(rax=..., ...)
STEP = "step"           # single-step completed
KICKED = "kicked"       # kick() from another thread (signal, preemption)
BREAK = "break"         # a breakpoint: rip (= addr) is at the instruction, not yet run
WATCH = "watch"         # an instruction (rip is past it) accessed a watched range:
                        # addr is the watchpoint's address, access READ or WRITE
INTERRUPT = "interrupt"  # real mode: INT n (or a CPU exception) with vector n; IP is past
                        # the instruction and nothing was pushed: the handler does the work
HALT = "halt"           # real mode: HLT ran (IP is past it)

# Fault access kinds.
READ, WRITE, EXEC = "read", "write", "exec"

# x86 exception vectors the kernel turns into signals.
VEC_DE, VEC_DB, VEC_BP, VEC_OF, VEC_UD, VEC_GP, VEC_MF, VEC_AC, VEC_XM = 0, 1, 3, 4, 6, 13, 16, 17, 19

# Protection bits, as in mmap(2).
PROT_READ, PROT_WRITE, PROT_EXEC = 1, 2, 4

# Register names in the order of the bulk register struct (and of Linux's sigcontext
# minus the segment/err/trapno/oldmask/cr2 fields, which the kernel fills itself).
GPR_NAMES = ("r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
             "rdi", "rsi", "rbp", "rbx", "rdx", "rax", "rcx", "rsp", "rip", "eflags",
             "fs_base", "gs_base")


@dataclass
class Event:
    kind: str
    addr: int = 0           # FAULT: the faulting address
    access: str = ""        # FAULT: READ, WRITE or EXEC
    mapped: bool = False    # FAULT: True if the page was mapped (a protection fault)
    vector: int = 0         # TRAP: exception vector
    rip: int = 0            # address of the instruction concerned


@dataclass
class Regs:
    """General registers, rip, eflags and the FS/GS bases, read in one bulk call."""
    r8: int = 0
    r9: int = 0
    r10: int = 0
    r11: int = 0
    r12: int = 0
    r13: int = 0
    r14: int = 0
    r15: int = 0
    rdi: int = 0
    rsi: int = 0
    rbp: int = 0
    rbx: int = 0
    rdx: int = 0
    rax: int = 0
    rcx: int = 0
    rsp: int = 0
    rip: int = 0
    eflags: int = 0x202
    fs_base: int = 0
    gs_base: int = 0

    def copy(self):
        return Regs(*(getattr(self, n) for n in GPR_NAMES))


@dataclass
class Capabilities:
    """What an engine can do; the kernel asks instead of assuming."""
    name: str
    version: str
    parallel_vcpus: bool = False        # guest threads may run at once on host threads
    can_trap_cpuid: bool = True
    can_single_step: bool = True
    details: dict = field(default_factory=dict)


class AddressSpace:
    """Guest virtual memory as the engine sees it.  Host memory is allocated by the
    kernel (blinkroot.memory) and only mapped here; ``host`` is its address."""

    def map(self, va, length, prot, host):
        raise NotImplementedError

    def unmap(self, va, length):
        raise NotImplementedError

    def protect(self, va, length, prot):
        raise NotImplementedError

    def code_changed(self, va, length):
        """The host wrote guest memory that may hold translated code."""
        raise NotImplementedError


class Vcpu:
    single_step = False     # set by a debugger: a STEP event after every instruction

    def run(self, handler):
        raise NotImplementedError

    def kick(self):
        raise NotImplementedError

    def shares_engine(self):
        """Do other vcpus take turns on this one's engine?  Then a call that may block
        must leave the engine first (Thread.on_syscall defers it)."""
        return False

    def activate(self):
        """Make this vcpu the calling host thread's (before touching its registers)."""

    def released(self):
        """Context manager around a blocking host call: other vcpus of the process may
        run meanwhile (Unicorn hands its one instance over; KVM vcpus run anyway)."""
        raise NotImplementedError

    def close(self):
        """The guest thread is gone."""

    def syscall_args(self):
        """(rax, rdi, rsi, rdx, r10, r8, r9) in one call."""
        raise NotImplementedError

    def set_result(self, value):
        raise NotImplementedError

    def get_regs(self) -> Regs:
        raise NotImplementedError

    def set_regs(self, regs: Regs):
        raise NotImplementedError

    def set_reg(self, name, value):
        raise NotImplementedError

    def get_fpu(self) -> bytes:
        raise NotImplementedError

    def set_fpu(self, image: bytes):
        raise NotImplementedError

    def reset_fpu(self):
        raise NotImplementedError


class Engine:
    """One engine instance per guest process (a host process)."""
    capabilities: Capabilities
    address_space: AddressSpace

    def new_vcpu(self, copy_of=None) -> Vcpu:
        """A vcpu for a new guest thread; copy_of: start from that vcpu's registers."""
        raise NotImplementedError

    def kick_running(self):
        """Stop whatever guest code runs now, so pending signals are looked at."""
        raise NotImplementedError

    def native_cpuid(self, leaf, subleaf):
        """(eax, ebx, ecx, edx) as the engine's CPU answers; the kernel edits it (cpuid.py)."""
        raise NotImplementedError

    def after_fork_in_child(self, vcpu):
        """In a fork child only `vcpu` lives on.  Unicorn survives a host fork; KVM must
        rebuild its VM here."""

    def new_address_space(self):
        """Start over with an empty address space (execve)."""
        raise NotImplementedError

    # -- debugging: breakpoints and watchpoints are the process's (its address space) ----
    def add_breakpoint(self, addr):
        """Every vcpu reports BREAK before running the instruction at addr."""
        raise NotImplementedError

    def remove_breakpoint(self, addr):
        raise NotImplementedError

    def add_watchpoint(self, addr, length, access):
        """Report WATCH after an instruction accesses [addr, addr+length); access is
        READ, WRITE or "access" (both).  May run slowly (one instruction at a time)."""
        raise NotImplementedError

    def remove_watchpoint(self, addr, length, access):
        raise NotImplementedError


class RealModeMachine:
    """A 16-bit real-mode machine (blinkenlights -r): one CPU, ``memory_size`` bytes at
    linear 0, nothing mapped above.  ``run(handler)`` has Vcpu.run's protocol; its events
    are STEP, BREAK, INTERRUPT, HALT, SYSCALL (IP past it), TRAP, FAULT and KICKED, with
    ``rip`` the linear address CS*16 + IP.  After an INTERRUPT or SYSCALL that ended a
    single step, a STEP event follows.  Registers are 16-bit, by name (REGS)."""

    REGS = ("ax", "bx", "cx", "dx", "si", "di", "bp", "sp", "ip", "flags",
            "cs", "ds", "es", "ss", "fs", "gs")
    memory_size = 1 << 20
    single_step = False

    def run(self, handler):
        raise NotImplementedError

    def kick(self):
        """Stop run() from any thread: it reports KICKED between instructions."""
        raise NotImplementedError

    def read(self, addr, length) -> bytes:
        raise NotImplementedError

    def write(self, addr, data):
        raise NotImplementedError

    def get_regs(self) -> dict:
        raise NotImplementedError

    def set_regs(self, **values):
        raise NotImplementedError

    def add_breakpoint(self, addr):
        """Report BREAK before running the instruction at linear address addr."""
        raise NotImplementedError

    def remove_breakpoint(self, addr):
        raise NotImplementedError
