"""The one syscall table: number -> handler, and the one place errno becomes -errno.

Handlers live in the module of their area (files.py, memory.py, signals.py, ...) and are
registered with the ``@syscall`` decorator:

    @syscall("openat", "fd path oflags mode")
    def openat(t, dirfd, path, flags, mode):
        ...
        return newfd

``t`` is the calling guest thread (blinkroot.proc.process.Thread); arguments arrive as
unsigned 64-bit integers; the argument spec names their types for the strace-like log
(see strace.py).  A handler returns the result or raises ``Errno``; host OSErrors are
translated here.  A handler that has set every register itself (rt_sigreturn, execve)
returns ``KEEP_REGS``.
"""

import errno
import importlib
from dataclasses import dataclass

from ..errors import Errno, linux_errno, ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND
from .numbers import NAMES, NUMBERS

KEEP_REGS = object()

# Support levels, as gVisor's table keeps them, so `blinkroot --syscalls` can say.
FULL, PARTIAL = "supported", "partial"


@dataclass
class Syscall:
    nr: int
    name: str
    fn: object
    args: tuple          # argument type names for the log
    support: str
    note: str
    blocking: object     # True, or a predicate of the raw arguments (may this call block?)
    nargs: int

    def may_block(self, args):
        """Could the call block (so it must run outside the engine's hook)?  Logged at
        entry too with -ss."""
        b = self.blocking
        return b(*args) if callable(b) else bool(b)


TABLE = {}              # nr -> Syscall

# Area modules, imported once to fill TABLE.
AREAS = ("files", "fsmeta", "memory", "time", "identity", "signals", "process", "futex",
         "poll", "net", "ipc", "mounts", "misc")
_loaded = False


def syscall(name, args="", support=FULL, note="", blocking=False):
    nr = NUMBERS[name]

    def register(fn):
        if nr in TABLE:
            raise RuntimeError(f"syscall {name} registered twice")
        TABLE[nr] = Syscall(nr, name, fn, tuple(args.split()), support, note, blocking,
                            fn.__code__.co_argcount - 1)
        return fn
    return register


def load_areas():
    global _loaded
    if not _loaded:
        for area in AREAS:
            importlib.import_module(f"{__package__}.{area}")
        _loaded = True
    return TABLE


def s32(x):
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x & 0x80000000 else x


def s64(x):
    x &= 0xFFFFFFFFFFFFFFFF
    return x - (1 << 64) if x & (1 << 63) else x


def call(t, nr, args):
    """Run syscall nr for thread t; returns the raw result (or -errno, or KEEP_REGS)."""
    entry = TABLE.get(nr)
    if entry is None:
        name = NAMES.get(nr, f"syscall_{nr}")
        t.kernel.log(f"unsupported syscall {name} ({nr}): ENOSYS")
        return -errno.ENOSYS
    try:
        return entry.fn(t, *args[:entry.nargs])
    except Errno as e:
        return -e.errno
    except OSError as e:
        if e.errno is None:
            raise
        return -linux_errno(e.errno)


RESTART_CODES = (ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND)
