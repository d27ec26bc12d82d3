"""Start a guest program in this host process and turn its end into blinkroot's end."""

import errno
import os
import resource
import signal
import sys
import threading
import traceback

from .errors import Errno
from .kernel import Kernel
from .vfs import Vfs
from .vfs.files import File

EXIT_NOT_FOUND = 127
EXIT_CANNOT_EXEC = 126
EXIT_INTERNAL = 70


def _say(program, message):
    name = program.decode("utf-8", "replace") if isinstance(program, bytes) else program
    sys.stderr.write(f"blinkroot: {name}: {message}\n")
    sys.stderr.flush()


def find_program(vfs, proc, program):
    """blink's rule: a path with a slash as given, else search $PATH (inside the root)."""
    if b"/" in program:
        return program
    for d in os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin").split(":"):
        cand = (d.encode() or b".").rstrip(b"/") + b"/" + program
        try:
            host = vfs.host_path(proc, -100, cand)
        except Errno:
            continue
        if os.path.isfile(host) and os.access(host, os.X_OK):
            return cand
    return None


INHERITED_FDS = []      # host descriptors open when blinkroot started: the guest's


def note_inherited_fds():
    """Called first thing: every descriptor blinkroot inherited is the guest's too (a
    shell's `3<file`, make's jobserver pipe), at the same number."""
    import fcntl
    try:
        names = os.listdir("/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd")
    except OSError:
        names = ["0", "1", "2"]
    fds = []
    for fd in sorted(int(n) for n in names if n.isdigit()):
        try:
            fcntl.fcntl(fd, fcntl.F_GETFD)      # the listing's own descriptor is closed now
            fds.append(fd)
        except OSError:
            pass
    INHERITED_FDS[:] = fds


def give_inherited_fds(proc):
    import fcntl
    for fd in INHERITED_FDS or (0, 1, 2):
        try:
            flags = fcntl.fcntl(fd, fcntl.F_GETFL)
            cloexec = bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC)
        except OSError:
            continue
        proc.fds.install(File(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3), flags, b""),
                         cloexec=cloexec, at=fd)
        if fd > 2:
            os.close(fd)        # the guest's copy is all that stays open


def choose_root(opts):
    """blink's rules: -C wins; then BLINK_PREFIX; then BLINK_OVERLAYS (a colon list, an
    empty entry meaning the host's /; one non-empty entry is a plain root)."""
    if opts.root:
        return opts.root, None
    if os.environ.get("BLINK_PREFIX"):
        return os.environ["BLINK_PREFIX"], None
    spec = os.environ.get("BLINK_OVERLAYS")
    if spec is not None:
        layers = [p or "/" for p in spec.split(":")]
        if len(layers) == 1:
            return layers[0], None
        return "/", layers
    return "/", None


def run_program(opts, program, argv):
    from .cpu import create_engine
    from .proc.process import Process, Thread, ProcessExit, ThreadExit
    from .proc import exec as pexec, hostsig
    from .syscalls import table

    program_b = os.fsencode(program)
    root, overlays = choose_root(opts)
    try:
        vfs = Vfs(root, overlays=overlays, upper=getattr(opts, "overlay", None))
    except Errno:
        _say(root, "root directory not found")
        return EXIT_NOT_FOUND
    kernel = Kernel(opts, vfs)
    if not vfs.identity and vfs.root:
        os.chdir(vfs.root)          # the guest starts in its /, as chroot(8) leaves it
    table.load_areas()
    proc = Process(kernel, create_engine(opts.engine))
    vfs.session.proc = proc
    proc.argv = [program_b]
    vfs.session.publish(proc)
    proc.fork_child_hooks.append(lambda: vfs.session.publish(proc))
    proc.fork_parent_hooks.append(
        lambda pid, how: how != "vforkdone" and vfs.session.publish(proc, pid))
    thread = Thread(proc)
    path = find_program(vfs, proc, program_b)
    if path is None:
        _say(program, "command not found")
        return EXIT_NOT_FOUND
    argv_b = [os.fsencode(a) for a in argv]
    envp = [k + b"=" + v for k, v in os.environb.items()]
    try:
        plan = pexec.prepare(proc, path, argv_b, envp)
    except Errno as e:
        _say(program, e.args[1] if len(e.args) > 1 else os.strerror(e.errno))
        return EXIT_NOT_FOUND if e.errno == errno.ENOENT else EXIT_CANNOT_EXEC
    give_inherited_fds(proc)
    pexec.commit(thread, plan, envp)
    kernel.main_thread = thread
    hostsig.install(kernel, proc)
    try:
        thread.run()
    except ProcessExit as e:
        finish(proc, e.status, e.signal)
    except ThreadExit:
        # The main thread is gone, others live on; the last one ends the process.
        kernel.main_thread = None
        threading.Event().wait()
    return 0


def finish(proc, status, sig=0):
    """End this host process as the guest process ended (from any host thread)."""
    from .proc import futex
    kernel = proc.kernel
    try:
        kernel.vfs.session.close()
    except Exception:
        pass
    for t in list(proc.threads):
        futex.release_robust_list(t)    # robust mutexes shared with other processes
    if kernel.options.stats:
        kernel.print_stats()
    kernel.flush_log()
    if sig:
        die_by_signal(sig)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status & 0xFF)


def die_by_signal(sig):
    """End blinkroot the way the guest ended, so a parent shell sees the same status.
    Callable from any host thread (libc's own calls: Python's signal module is the main
    thread's only)."""
    import ctypes
    libc = ctypes.CDLL(None)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
    except (ValueError, OSError):
        pass
    libc.signal(sig, ctypes.c_void_p(0))                   # SIG_DFL
    mask = ctypes.create_string_buffer(128)
    libc.sigemptyset(mask)
    libc.sigaddset(mask, sig)
    libc.pthread_sigmask(1, mask, None)                     # SIG_UNBLOCK
    # At this thread only: a process-directed kill() could be taken off the queue by
    # the signalfd watcher first, and blinkroot would exit(128+sig) instead of dying.
    signal.pthread_kill(threading.get_ident(), sig)
    os._exit(128 + sig)


def report_internal_error(exc):
    """One line for the user; the whole story in the log."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    path = os.environ.get("BLINK_LOG_FILENAME") or "blink.log"
    try:
        with open(path, "a") as f:
            f.write(text)
        where = f" (details in {path})"
    except OSError:
        where = ""
    sys.stderr.write(f"blinkroot: internal error: {type(exc).__name__}: {exc}{where}\n")
    return EXIT_INTERNAL
