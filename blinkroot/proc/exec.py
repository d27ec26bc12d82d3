"""execve: replace the guest image of the calling process (the host process stays)."""

import errno
import os
import stat

from ..errors import Errno
from ..memory import Memory, page_up
from ..cpu.engine import Regs
from .. import loader as L
from . import signals as S


def open_executable(proc, path):
    """Open a guest path for exec: (host fd, stat), with execve's errors."""
    vfs = proc.kernel.vfs
    host = vfs.host_path(proc, -100, path)
    try:
        fd = os.open(host, os.O_RDONLY | os.O_CLOEXEC)
    except IsADirectoryError:
        raise L.ExecError(errno.EACCES, "is a directory")
    except OSError as e:
        raise L.ExecError(e.errno, os.strerror(e.errno))
    st = os.fstat(fd)
    if stat.S_ISDIR(st.st_mode):
        os.close(fd)
        raise L.ExecError(errno.EACCES, "is a directory")
    if not stat.S_ISREG(st.st_mode) or not os.access(host, os.X_OK) \
            or not st.st_mode & 0o111:
        os.close(fd)
        raise L.ExecError(errno.EACCES, "permission denied")
    return fd, st


def prepare(proc, path, argv, envp, depth=0):
    """Read and check everything execve needs before its point of no return.

    Returns a plan: (kind, fd, st, elf, interp (fd, st, elf) or None, argv, path)."""
    if depth > L.MAX_INTERP_DEPTH:
        raise L.ExecError(errno.ELOOP, "too many levels of #! interpreters")
    fd, st = open_executable(proc, path)
    try:
        head = L.read_header(fd)
        if head.startswith(b"#!"):
            interp, arg = L.parse_shebang(head)
            new_argv = [interp.encode("utf-8", "surrogateescape")]
            if arg is not None:
                new_argv.append(arg.encode("utf-8", "surrogateescape"))
            new_argv.append(path)
            new_argv += list(argv[1:])
            os.close(fd)
            try:
                return prepare(proc, interp.encode("utf-8", "surrogateescape"),
                               new_argv, envp, depth + 1)
            except L.ExecError as e:
                if e.errno == errno.ENOENT:
                    raise L.ExecError(errno.ENOENT, f"bad interpreter {interp}: "
                                      "No such file or directory")
                raise
        if head.startswith(L.ELF_MAGIC):
            elf = L.ElfFile(head, st.st_size)
            elf.read_phdrs(fd)
            interp = None
            interp_path = elf.interp(fd)
            if interp_path:
                ifd, ist = open_executable_interp(proc, interp_path.encode("utf-8", "surrogateescape"))
                ihead = L.read_header(ifd)
                if not ihead.startswith(L.ELF_MAGIC):
                    os.close(ifd)
                    raise L.ExecError(errno.ELIBBAD, "bad ELF interpreter")
                ielf = L.ElfFile(ihead, ist.st_size)
                ielf.read_phdrs(ifd)
                interp = (ifd, ist, ielf, interp_path)
            return ("elf", fd, st, elf, interp, list(argv), path)
        if path.endswith(b".bin"):
            return ("flat", fd, st, None, None, list(argv), path)
        if len(head) < 4 and head[:len(head)] == L.ELF_MAGIC[:len(head)] and head:
            raise L.ExecError(errno.ENOEXEC, "truncated ELF header")
        raise L.ExecError(errno.ENOEXEC, "exec format error")
    except BaseException:
        try:
            os.close(fd)
        except OSError:
            pass
        raise


def open_executable_interp(proc, path):
    try:
        return open_executable(proc, path)
    except L.ExecError as e:
        if e.errno == errno.ENOENT:
            raise L.ExecError(errno.ENOENT, f"interpreter {path.decode(errors='replace')} "
                              "not found")
        raise


def commit(thread, plan, envp):
    """The point of no return: build the new image in the calling process."""
    kind, fd, st, elf, interp, argv, path = plan
    proc = thread.proc
    kernel = proc.kernel
    if proc.mem is not None:
        proc.mem.release()
    # Other threads end with the old image (Linux's de_thread); the caller takes the
    # process's id as its thread id.  Their host threads wait on the old instance forever.
    proc.threads[:] = [thread]
    thread.tid = proc.pid
    aspace = proc.engine.new_address_space()
    thread.vcpu = proc.engine.new_vcpu()
    thread.vcpu.activate()
    mem = proc.mem = Memory(aspace)
    try:        # /proc/self/exe and the maps speak the guest's canonical path
        guest_exe = kernel.vfs.resolve(proc, -100, path).guest
    except Errno:
        guest_exe = path
    name = guest_exe.decode("utf-8", "surrogateescape")
    regs = Regs()
    try:
        if kind == "flat":
            size = st.st_size
            length = page_up(size) + L.FLAT_EXTRA
            mem.map(L.FLAT_BASE, length, 7, 0x22, name=name)
            mem.write_force(L.FLAT_BASE, os.pread(fd, size, 0))
            entry = L.FLAT_BASE
            brk = L.FLAT_BASE + length
            auxv = [(L.AT_PAGESZ, 4096), (L.AT_ENTRY, entry)]
        else:
            base, end = L.load_elf(mem, elf, fd, st, name, is_interp=False)
            entry = base + elf.entry
            brk = page_up(end)
            at_base = 0
            if interp is not None:
                ifd, ist, ielf, ipath = interp
                try:
                    iname = kernel.vfs.resolve(proc, -100, ipath.encode()).guest
                except Errno:
                    iname = ipath.encode()
                ibase, _ = L.load_elf(mem, ielf, ifd, ist, iname.decode(
                    "utf-8", "surrogateescape"), is_interp=True)
                os.close(ifd)
                at_base = ibase
                start = ibase + ielf.entry
            else:
                start = entry
            creds = os.getuid(), os.geteuid(), os.getgid(), os.getegid()
            hwcap = proc.engine.native_cpuid(1, 0)[3]
            auxv = [
                (L.AT_HWCAP, hwcap), (L.AT_PAGESZ, 4096), (L.AT_CLKTCK, 100),
                (L.AT_PHDR, L.elf_phdr_addr(elf, base)), (L.AT_PHENT, 56),
                (L.AT_PHNUM, elf.phnum), (L.AT_BASE, at_base), (L.AT_FLAGS, 0),
                (L.AT_ENTRY, entry), (L.AT_UID, creds[0]), (L.AT_EUID, creds[1]),
                (L.AT_GID, creds[2]), (L.AT_EGID, creds[3]), (L.AT_SECURE, 0),
                (L.AT_HWCAP2, 0), (L.AT_MINSIGSTKSZ, S.MINSIGSTKSZ)]
            entry = start
    finally:
        os.close(fd)
    mem.brk_start = mem.brk = brk
    execfn = path
    regs.rsp = L.build_stack(mem, argv, envp, auxv, execfn, os.urandom(16))
    regs.rip = entry
    thread.vcpu.set_regs(regs)
    thread.vcpu.reset_fpu()
    # What execve resets: handlers (not ignores), the altstack, close-on-exec descriptors.
    for i, act in enumerate(proc.sigactions):
        if act.handler not in (S.SIG_DFL, S.SIG_IGN):
            proc.sigactions[i] = S.SigAction()
    thread.altstack = S.AltStack()
    proc.fds.close_on_exec()
    for hook in proc.exec_hooks:
        hook()
    if proc.vfork_done is not None:
        os.close(proc.vfork_done)       # the vfork parent may run again
        proc.vfork_done = None
    proc.exe = guest_exe
    proc.argv = argv
    proc.envp = list(envp)
    proc.comm = os.path.basename(path)[:15]
    kernel.vfs.session.publish(proc)
    kernel.stats["execs"] += 1


def execve(thread, path, argv, envp):
    """Check everything now (errors return to the caller), replace the image once the
    engine has stopped, then deliver what is pending."""
    plan = prepare(thread.proc, path, argv, envp)

    def replace_image():
        if thread.proc.vfork_parent is not None:
            from .vfork import fork_for_exec
            fork_for_exec(thread)       # returns in the child's own new host process
        commit(thread, plan, envp)
        if thread.pending or thread.proc.pending:
            thread.deliver_signals()
    thread.defer(replace_image)
