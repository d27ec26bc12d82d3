"""Process lifetime: exit, exit_group, execve (fork, clone and wait come with the process manager)."""

import errno

from ..errors import Errno
from ..proc.process import ProcessExit
from ..proc import exec as pexec
from .table import syscall, KEEP_REGS


@syscall("exit", "int")
def exit(t, status):
    # The last (only) thread's exit ends the process.
    raise ProcessExit(status & 0xFF)


@syscall("exit_group", "int")
def exit_group(t, status):
    raise ProcessExit(status & 0xFF)


def _read_ptr_array(mem, addr, limit=1 << 17):
    out = []
    if not addr:
        return out
    while True:
        p = mem.read_u64(addr + 8 * len(out))
        if not p:
            return out
        out.append(mem.read_cstr(p, 1 << 17))
        if len(out) > limit:
            raise Errno(errno.E2BIG)


@syscall("execve", "path ptr ptr")
def execve(t, path, argv, envp):
    mem = t.mem
    p = mem.read_cstr(path)
    a = _read_ptr_array(mem, argv)
    e = _read_ptr_array(mem, envp)
    pexec.execve(t, p, a, e)
    return KEEP_REGS


@syscall("execveat", "fd path ptr ptr flags")
def execveat(t, dirfd, path, argv, envp, flags):
    from .table import s32
    p = t.mem.read_cstr(path)
    if not p.startswith(b"/") and s32(dirfd) != -100:
        base = t.proc.fds.get(s32(dirfd)).path
        p = (base.rstrip(b"/") + b"/" + p) if p else base
    pexec.execve(t, p, _read_ptr_array(t.mem, argv), _read_ptr_array(t.mem, envp))
    return KEEP_REGS
