"""clone(CLONE_VM | CLONE_VFORK): a child that shares its parent's memory until it execs.

glibc's posix_spawn (and so system() and popen()) runs its child on a stack of its own
in the parent's memory and hands an exec failure back through that memory.  A host fork
would copy the memory and lose the answer, so the child runs first as a host thread of
the parent's host process, on the same memory, with its own descriptor table and signal
dispositions, while the parent waits as vfork makes it.  When the child execs, a host
fork gives it a process of its own (whose pid the parent's clone returns); if it exits
before that, a host fork that exits at once stands for it, so the parent's wait4 sees
the status.

Until it execs, getpid() in the child returns the parent's pid (README, Known
differences).  Not fixed, for want of a sound design: the child's pid is the host pid
of the process the exec-time fork creates, so no pid exists before then.  Forking at
clone time to reserve one would need that process to stay idle while the child runs in
the parent's, and a pid the guest saw would then have to be kept for it (an exec that
fails and a later exit, kill() or wait4() naming it all depend on that); a made-up pid
would name no host process at all.  Programs that vfork and call getpid() before exec
are rare (posix_spawn does not).
"""

import os
import queue

from ..vfs.files import FdTable
from . import signals as S


class VforkDone(Exception):
    """The vfork child's host thread is done here (its process lives on elsewhere)."""


def copy_process(parent, share_files, share_sighand):
    """The child's Process: the parent's memory and engine, its own fds and actions."""
    from .process import Process
    child = Process.__new__(Process)
    child.__dict__.update(parent.__dict__)
    child.threads = []
    child.pending = []
    child.pid = parent.pid              # its own is not known until it has a host process
    child.fork_child_hooks = list(parent.fork_child_hooks)
    child.exec_hooks = list(parent.exec_hooks)
    child.fork_parent_hooks = list(parent.fork_parent_hooks)
    if not share_files:
        fds = FdTable()
        fds.limit = parent.fds.limit
        for fd, f in parent.fds.files.items():
            fds.install(f, cloexec=fd in parent.fds.cloexec, at=fd)
        child.fds = fds
    if not share_sighand:
        child.sigactions = [S.SigAction(a.handler, a.flags, a.restorer, a.mask)
                            for a in parent.sigactions]
    child.vfork_parent = parent
    child.vfork_result = queue.Queue(1)
    return child


def start(t, flags, stack, tls, settls):
    """Start the child thread; returns a function that waits for its pid."""
    from .process import ProcessExit, cloned_thread, spawn_host_thread
    from ..syscalls.process import CLONE_FILES, CLONE_SIGHAND
    proc = copy_process(t.proc, bool(flags & CLONE_FILES), bool(flags & CLONE_SIGHAND))
    child = cloned_thread(t, proc, stack, tls, settls)

    def body():
        try:
            child.run()
        except VforkDone:
            return
        except ProcessExit as e:
            if proc.vfork_parent is not None:
                exit_before_exec(child, e.status, e.signal)
                return
            from ..run import finish
            finish(proc, e.status, e.signal)

    spawn_host_thread(child, body)
    return lambda: proc.vfork_result.get()


def _leave(child, pid):
    """In the parent's host process: the child's thread and descriptors go away."""
    proc = child.proc
    parent = proc.vfork_parent
    if proc.fds is not parent.fds:
        proc.fds.drop_references()
    child.vcpu.close()
    proc.vfork_result.put(pid)


def exit_before_exec(child, status, sig):
    pid = os.fork()
    if pid == 0:
        from ..run import die_by_signal
        if sig:
            die_by_signal(sig)
        os._exit(status & 0xFF)
    _leave(child, pid)


def fork_for_exec(child):
    """Called by exec in the vfork child: from here on it is a process of its own.
    Returns in the new host process; ends the thread in the parent's."""
    from .process import become_fork_child
    proc = child.proc
    parent = proc.vfork_parent
    pid = os.fork()
    if pid:
        _leave(child, pid)
        raise VforkDone()
    # The parent's descriptors that the child's table does not hold are not the child's.
    if proc.fds is not parent.fds:
        parent.fds.drop_references()
    proc.vfork_parent = None
    become_fork_child(child)
