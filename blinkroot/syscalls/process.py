"""Process lifetime: exit, exit_group, execve, fork, vfork, clone, wait4, waitid."""

import ctypes
import errno
import os as _os

from ..errors import Errno
from ..proc.process import ProcessExit, ThreadExit, spawn_thread, become_fork_child
from ..proc import vfork as shared_vfork
from ..proc import exec as pexec
from .table import syscall, KEEP_REGS


@syscall("exit", "int")
def exit(t, status):
    # The last thread's exit ends the process.
    if len(t.proc.threads) > 1:
        raise ThreadExit()
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


# -- fork, vfork, clone, wait ------------------------------------------------------------
# A guest process is a host process: fork is os.fork, and copy-on-write of guest memory
# comes for free because guest memory is ordinary host memory.  A guest thread is a host
# thread of the same process (proc/process.py: spawn_thread).

CLONE_VM, CLONE_FS, CLONE_FILES, CLONE_SIGHAND = 0x100, 0x200, 0x400, 0x800
CLONE_PIDFD, CLONE_PTRACE, CLONE_VFORK, CLONE_PARENT, CLONE_THREAD = 0x1000, 0x2000, 0x4000, 0x8000, 0x10000
CLONE_NEWNS, CLONE_SYSVSEM, CLONE_SETTLS, CLONE_PARENT_SETTID = 0x20000, 0x40000, 0x80000, 0x100000
CLONE_CHILD_CLEARTID, CLONE_DETACHED, CLONE_UNTRACED, CLONE_CHILD_SETTID = 0x200000, 0x400000, 0x800000, 0x1000000
CSIGNAL = 0xFF


def do_fork(t, flags=0, stack=0, parent_tid=0, child_tid=0, tls=0):
    vfork = bool(flags & CLONE_VFORK)
    if vfork:
        r, w = _os.pipe()
    pid = _os.fork()
    if pid == 0:
        proc = t.proc
        become_fork_child(t)            # only the forking thread lives on in the child
        if vfork:
            _os.close(r)
            proc.vfork_done = w      # closed when the child execs or exits
        if stack:
            t.vcpu.set_reg("rsp", stack)
        if flags & CLONE_SETTLS:
            t.vcpu.set_reg("fs_base", tls)
        if flags & CLONE_CHILD_SETTID:
            t.mem.write_u32(child_tid, proc.pid)
        if flags & CLONE_CHILD_CLEARTID:
            t.clear_child_tid = child_tid
        return 0
    # /proc/PID exists at once, before the child has run to write its own facts.
    t.kernel.vfs.session.publish_child(t.proc, pid)
    for hook in t.proc.fork_parent_hooks:
        hook(pid, "vfork" if vfork else "fork")
    if flags & CLONE_PARENT_SETTID:
        t.mem.write_u32(parent_tid, pid)
    if vfork:
        _os.close(w)
        t.in_host_call = True           # blocked in a host call (a debugger may stop us)
        try:
            while _os.read(r, 1):
                pass
        except OSError:
            pass
        finally:
            t.in_host_call = False
        _os.close(r)
        for hook in t.proc.fork_parent_hooks:
            hook(pid, "vforkdone")
    return pid


@syscall("fork")
def fork(t):
    return do_fork(t)


@syscall("vfork")
def vfork(t):
    return do_fork(t, CLONE_VFORK)


@syscall("clone", "hex ptr ptr ptr ptr", support="partial",
         note="CLONE_VM without CLONE_THREAD or CLONE_VFORK copies memory (as a fork)")
def clone(t, flags, stack, parent_tid, child_tid, tls):
    if flags & CLONE_SIGHAND and not flags & CLONE_VM or flags & CLONE_THREAD and not flags & CLONE_SIGHAND:
        raise Errno(errno.EINVAL)
    if flags & CLONE_VM and flags & CLONE_VFORK and not flags & CLONE_THREAD:
        wait_for_pid = shared_vfork.start(t, flags, stack, tls, bool(flags & CLONE_SETTLS))

        def parent_waits():
            with t.vcpu.released():
                pid = wait_for_pid()
            if flags & CLONE_PARENT_SETTID:
                t.mem.write_u32(parent_tid, pid)
            t.vcpu.set_result(pid)
        t.defer(parent_waits)       # the child needs the engine: leave it first
        return KEEP_REGS
    if flags & CLONE_THREAD:
        child = spawn_thread(t, stack, tls, bool(flags & CLONE_SETTLS))
        if flags & CLONE_PARENT_SETTID:
            t.mem.write_u32(parent_tid, child.tid)
        if flags & CLONE_CHILD_SETTID:
            t.mem.write_u32(child_tid, child.tid)
        if flags & CLONE_CHILD_CLEARTID:
            child.clear_child_tid = child_tid
        return child.tid
    return do_fork(t, flags, stack, parent_tid, child_tid, tls)


@syscall("clone3", "ptr size", support="partial", note="ENOSYS: libcs fall back to clone")
def clone3(t, args, size):
    raise Errno(errno.ENOSYS)


@syscall("wait4", "pid ptr flags ptr", blocking=True)
def wait4(t, pid, status_ptr, options, rusage_ptr):
    from .blocking import host_call, LIBC
    from .table import s32
    if options & ~(1 | 2 | 8 | 0x20000000 | 0x40000000 | 0x80000000):
        raise Errno(errno.EINVAL)
    status = ctypes.c_int(0)
    rusage = ctypes.create_string_buffer(144)
    # The host's wait4: guest processes are host processes, children of this one.
    wpid = host_call(t, LIBC.wait4, s32(pid), ctypes.byref(status), options & 0xFFFFFFFF,
                     rusage)
    if wpid and status_ptr:
        t.mem.write_u32(status_ptr, status.value)
    if wpid and rusage_ptr:
        t.mem.write(rusage_ptr, rusage.raw)
    return wpid


@syscall("waitid", "int pid ptr flags ptr", blocking=True)
def waitid(t, idtype, id_, info_ptr, options, rusage_ptr):
    from .blocking import host_call, LIBC
    from .table import s32
    info = ctypes.create_string_buffer(128)
    rusage = ctypes.create_string_buffer(144)
    host_call(t, LIBC.syscall, ctypes.c_long(247), ctypes.c_long(idtype),
              ctypes.c_long(s32(id_)), info, ctypes.c_long(options & 0xFFFFFFFF), rusage)
    if info_ptr:
        t.mem.write(info_ptr, info.raw)
    if rusage_ptr:
        t.mem.write(rusage_ptr, rusage.raw)
    return 0
