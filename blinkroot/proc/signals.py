"""Signals inside a process: dispositions, pending sets, frames, default actions.

Frames are laid out as Linux lays out ``struct rt_sigframe`` on x86-64, so handlers that
read or edit their ucontext (REG_RIP, the saved mask, the FPU image) see what they would
see natively, and rt_sigreturn restores from the guest's memory, edits included.
"""

import struct

from ..errors import Errno
from ..cpu.engine import Regs

NSIG = 64
SIGHUP, SIGINT, SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGKILL = 1, 2, 3, 4, 5, 6, 7, 8, 9
SIGUSR1, SIGSEGV, SIGUSR2, SIGPIPE, SIGALRM, SIGTERM, SIGSTKFLT, SIGCHLD = 10, 11, 12, 13, 14, 15, 16, 17
SIGCONT, SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU, SIGURG, SIGXCPU, SIGXFSZ = 18, 19, 20, 21, 22, 23, 24, 25
SIGVTALRM, SIGPROF, SIGWINCH, SIGIO, SIGPWR, SIGSYS = 26, 27, 28, 29, 30, 31

SIG_DFL, SIG_IGN = 0, 1
SA_SIGINFO, SA_ONSTACK, SA_RESTART, SA_NODEFER, SA_RESETHAND, SA_RESTORER = \
    4, 0x08000000, 0x10000000, 0x40000000, 0x80000000, 0x04000000
SS_ONSTACK, SS_DISABLE, SS_AUTODISARM = 1, 2, 1 << 31
MINSIGSTKSZ = 2048

# si_code values
SI_USER, SI_KERNEL, SI_QUEUE, SI_TIMER, SI_TKILL = 0, 0x80, -1, -2, -6
SEGV_MAPERR, SEGV_ACCERR, BUS_ADRERR, ILL_ILLOPN, FPE_INTDIV, TRAP_BRKPT = 1, 2, 2, 2, 1, 1

_CORE = {SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGSEGV, SIGXCPU, SIGXFSZ, SIGSYS}
_STOP = {SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU}
JOB_CONTROL = (SIGTSTP, SIGTTIN, SIGTTOU)
_IGNORE = {SIGCHLD, SIGURG, SIGWINCH, SIGCONT}
UNBLOCKABLE = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1))


def bit(sig):
    return 1 << (sig - 1)


def default_action(sig):
    if sig in _IGNORE:
        return "ignore"
    if sig in _STOP:
        return "stop"
    if sig in _CORE:
        return "core"
    return "terminate"


class SigAction:
    __slots__ = ("handler", "flags", "restorer", "mask")

    def __init__(self, handler=SIG_DFL, flags=0, restorer=0, mask=0):
        self.handler, self.flags, self.restorer, self.mask = handler, flags, restorer, mask

    def pack(self):
        return struct.pack("<QQQQ", self.handler, self.flags, self.restorer, self.mask)

    @classmethod
    def unpack(cls, raw):
        return cls(*struct.unpack("<QQQQ", raw))

    def ignored(self, sig):
        return self.handler == SIG_IGN or (self.handler == SIG_DFL and default_action(sig) == "ignore")


class SigInfo:
    """A queued signal with its siginfo_t fields."""
    __slots__ = ("signo", "code", "errno", "pid", "uid", "addr", "status", "value", "raw",
                 "tid", "band", "fd")

    def __init__(self, signo, code=SI_USER, pid=0, uid=0, addr=0, status=0, value=0, raw=None,
                 tid=0, band=0, fd=None):
        self.signo, self.code, self.errno = signo, code, 0
        self.pid, self.uid, self.addr, self.status, self.value = pid, uid, addr, status, value
        self.raw = raw          # rt_sigqueueinfo: the caller's own 128 bytes
        self.tid = tid          # from the host: the thread it is for (0: the process)
        self.band, self.fd = band, fd   # SIGIO-style (poll layout): si_band, si_fd

    def pack(self):
        if self.raw is not None:
            return self.raw[:128].ljust(128, b"\0")
        head = struct.pack("<iii4x", self.signo, self.errno, self.code)
        if self.signo in (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP) and self.code > 0:
            body = struct.pack("<Q", self.addr)
        elif self.fd is not None:
            body = struct.pack("<qi", self.band, self.fd)
        elif self.signo == SIGCHLD and self.code > 0:
            body = struct.pack("<IIi4xQQ", self.pid, self.uid, self.status, 0, 0)
        else:
            body = struct.pack("<IIQ", self.pid & 0xFFFFFFFF, self.uid, self.value)
        return (head + body).ljust(128, b"\0")


class AltStack:
    def __init__(self):
        self.sp, self.flags, self.size = 0, SS_DISABLE, 0

    def on(self, rsp):
        return self.flags != SS_DISABLE and self.sp < rsp <= self.sp + self.size

    def pack(self, rsp):
        flags = SS_DISABLE if self.flags == SS_DISABLE else (SS_ONSTACK if self.on(rsp) else 0)
        return struct.pack("<QI4xQ", self.sp, flags | (self.flags & SS_AUTODISARM), self.size)


# struct rt_sigframe: pretcode(8) ucontext(304) siginfo(128); fpstate separately, 64-aligned.
UC_OFF, INFO_OFF, FRAME_SIZE = 8, 8 + 304, 8 + 304 + 128
MCTX_OFF = UC_OFF + 40          # uc_flags, uc_link, uc_stack precede uc_mcontext
MASK_OFF = UC_OFF + 40 + 256
FPSTATE_SIZE = 512
_GREGS = ("r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rdi", "rsi", "rbp", "rbx",
          "rdx", "rax", "rcx", "rsp", "rip", "eflags")
UC_FLAGS = 0x2 | 0x4            # UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS


def build_frame(t, sig, act, info, regs, trapno=0, err=0, cr2=0):
    """Push an rt_sigframe for `sig` and point the registers at the handler."""
    mem = t.mem
    sp = regs.rsp
    if act.flags & SA_ONSTACK and t.altstack.flags != SS_DISABLE and not t.altstack.on(sp):
        sp = t.altstack.sp + t.altstack.size
        altstack_in_use = True
    else:
        sp -= 128                   # the red zone
        altstack_in_use = False
    fp = (sp - FPSTATE_SIZE) & ~63
    frame = ((fp - FRAME_SIZE) & ~15) - 8
    sigcontext = struct.pack("<18Q", *(getattr(regs, n) & 0xFFFFFFFFFFFFFFFF for n in _GREGS))
    sigcontext += struct.pack("<HHHH", 0x33, 0, 0, 0x2B)
    sigcontext += struct.pack("<QQQQQ", err, trapno, t.sigmask & 0xFFFFFFFF, cr2, fp)
    sigcontext = sigcontext.ljust(256, b"\0")
    uc = struct.pack("<QQ", UC_FLAGS, 0) + t.altstack.pack(regs.rsp) + sigcontext \
        + struct.pack("<Q", t.sigmask)
    data = struct.pack("<Q", act.restorer) + uc + info.pack()
    try:
        mem.write(fp, t.vcpu.get_fpu())
        mem.write(frame, data)
    except Errno:
        return False                # no room: the caller kills with SIGSEGV, as Linux
    if altstack_in_use and t.altstack.flags & SS_AUTODISARM:
        t.altstack.flags = SS_DISABLE
    new = regs.copy()
    new.rsp = frame
    new.rip = act.handler
    new.rdi = sig
    new.rsi = frame + INFO_OFF
    new.rdx = frame + UC_OFF
    new.rax = 0
    new.eflags &= ~(0x400 | 0x100 | 0x40000)   # DF, TF, AC cleared for the handler
    t.vcpu.set_regs(new)
    t.vcpu.reset_fpu()
    return True


def restore_frame(t):
    """rt_sigreturn: registers, mask, FPU state and altstack from the frame at rsp-8."""
    regs = t.vcpu.get_regs()
    frame = regs.rsp - 8
    raw = t.mem.read(frame, FRAME_SIZE)
    g = struct.unpack_from("<18Q", raw, MCTX_OFF)
    new = Regs(**dict(zip(_GREGS, g)), fs_base=regs.fs_base, gs_base=regs.gs_base)
    new.eflags = (regs.eflags & ~0x254FD5) | (new.eflags & 0x254FD5)   # user-changeable flags
    fpstate = struct.unpack_from("<Q", raw, MCTX_OFF + 184)[0]
    mask = struct.unpack_from("<Q", raw, MASK_OFF)[0]
    t.set_sigmask(mask)
    if fpstate:
        t.vcpu.set_fpu(t.mem.read(fpstate, FPSTATE_SIZE))
    t.vcpu.set_regs(new)
    return new
