"""`blinkroot [FLAG...] PROGRAM [ARG...]`: blink's command line, blink's meanings."""

import os
import sys

import click

from . import __version__

USAGE_EPILOG = """\b
PROGRAM is found as blink finds it: an absolute path, a relative path
containing a slash, or a name searched in $PATH (inside ROOT with -C).
Exit status: the guest's; 127 if PROGRAM is missing; 126 if it cannot be
executed. A guest killed by a signal kills blinkroot with that signal.
Environment: BLINK_LOG_FILENAME (log path when -L is not given).
`blinkroot suite --help`: run LTP and libc-test natively and emulated;
`blinkroot mount --help`, `blinkroot umount MOUNTPOINT`: a root tree or a
running session's file system mounted on the host (FUSE).  A guest program
named `suite`, `mount` or `umount` runs as ./NAME or by its full path."""


def _version_text():
    from .cpu import create_engine
    lines = [f"blinkroot {__version__}"]
    try:
        eng = create_engine()
        caps = eng.capabilities
        lines.append(f"engine: {caps.name} {caps.version} ({caps.details.get('cpu_model', '')})")
    except Exception as e:  # report, don't crash
        lines.append(f"engine: unavailable ({e})")
    for mod in ("elftools", "capstone", "click", "psutil"):
        try:
            m = __import__(mod)
            lines.append(f"{mod}: {getattr(m, '__version__', '?')}")
        except ImportError:
            lines.append(f"{mod}: not installed")
    lines.append(f"python: {sys.version.split()[0]}")
    lines.append("host: " + " ".join(os.uname()[i] for i in (0, 2, 4)))
    return "\n".join(lines)


def _print_syscalls(ctx, _param, value):
    if not value or ctx.resilient_parsing:
        return
    from .syscalls import table
    from .syscalls.numbers import NAMES
    table.load_areas()
    for nr, name in sorted(NAMES.items()):
        e = table.TABLE.get(nr)
        status = e.support if e else "ENOSYS"
        note = f"  {e.note}" if e and e.note else ""
        click.echo(f"{nr:4} {name:<24} {status}{note}")
    ctx.exit(0)


def _print_version(ctx, _param, value):
    if not value or ctx.resilient_parsing:
        return
    click.echo(_version_text())
    ctx.exit(0)


@click.command(context_settings=dict(help_option_names=["-h", "--help"],
                                     ignore_unknown_options=True,
                                     allow_interspersed_args=False),
               epilog=USAGE_EPILOG)
@click.option("-v", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Show version, engine and the versions of its parts.")
@click.option("-e", "log_stderr", is_flag=True, help="Log to standard error too.")
@click.option("-L", "log_path", metavar="PATH", help="Log file (default blink.log, created on first use).")
@click.option("-s", "strace", count=True, help="Log system calls (twice: blocking calls at entry too).")
@click.option("-Z", "stats", is_flag=True, help="Print statistics to standard error at exit.")
@click.option("-0", "argv0", is_flag=True, help="Take argv[0] from the command line: PROGRAM ARGV0 ARG...")
@click.option("-C", "root", metavar="ROOT", help="Run in a chroot'd environment: ROOT is the guest's /.")
@click.option("--overlay", "overlay", metavar="DIR", help="Writable upper directory over the root (Linux overlayfs): ROOT itself is never modified.")
@click.option("-g", "gdb_port", metavar="PORT", type=int,
              help="Wait for gdb on 127.0.0.1:PORT (0: any free port, printed) before the first instruction.")
@click.option("-j", "no_jit", is_flag=True, help="Accepted for blink compatibility; the Unicorn engine always JITs.")
@click.option("-m", "no_linear", is_flag=True, help="Accepted for blink compatibility; guest memory is always checked.")
@click.option("--syscalls", is_flag=True, expose_value=False, is_eager=True,
              callback=_print_syscalls, help="List every x86-64 syscall and its support.")
@click.argument("program")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def command(log_stderr, log_path, strace, stats, argv0, root, overlay, gdb_port, no_jit, no_linear, program, args):
    """Run an x86-64 Linux PROGRAM, emulated."""
    from .kernel import Options
    from .run import run_program
    opts = Options()
    opts.log_stderr = log_stderr
    opts.log_path = log_path or os.environ.get("BLINK_LOG_FILENAME") or None
    opts.strace = strace
    opts.stats = stats
    opts.root = root
    opts.overlay = overlay
    if gdb_port is not None:
        from .debug.gdbstub import GdbStub
        opts.debugger = GdbStub(gdb_port)
        if gdb_port == 0:
            sys.stderr.write(f"blinkroot: gdb stub listening on 127.0.0.1:{opts.debugger.port}\n")
            sys.stderr.flush()
    if argv0:
        if not args:
            raise click.UsageError("-0 needs PROGRAM ARGV0 [ARG...]")
        argv = list(args)
    else:
        argv = [program] + list(args)
    sys.exit(run_program(opts, program, argv))


@click.command(context_settings=dict(help_option_names=["-h", "--help"]))
@click.option("-C", "root", metavar="ROOT", help="The root tree (as for `blinkroot -C ROOT PROGRAM`).")
@click.option("--overlay", "overlay", metavar="DIR", help="Writable upper directory over the root: ROOT itself is never modified.")
@click.option("--session", "session", metavar="DIR|PID",
              help="Attach to a running session (its state directory, or the pid of any of its processes): its mounts, tmpfs and live /proc.")
@click.option("-f", "--foreground", is_flag=True, help="Stay in the foreground; Ctrl-C unmounts.")
@click.option("-d", "--debug", is_flag=True, help="libfuse's debug output (implies -f).")
@click.argument("mountpoint")
def mount_command(root, overlay, session, foreground, debug, mountpoint):
    """Mount, at MOUNTPOINT on the host, the file system as a guest process of the
    session sees it (FUSE).  Backgrounds itself once mounted unless -f;
    `blinkroot umount MOUNTPOINT` unmounts."""
    if session is not None and (root or overlay):
        raise click.UsageError("--session takes the session's own root; no -C or --overlay")
    from .vfs.fusemount import mount_main
    sys.exit(mount_main(root, overlay, session, mountpoint, foreground or debug, debug))


@click.command(context_settings=dict(help_option_names=["-h", "--help"]))
@click.argument("mountpoint")
def umount_command(mountpoint):
    """Unmount a `blinkroot mount` (fusermount3 -u)."""
    from .vfs.fusemount import umount_main
    sys.exit(umount_main(mountpoint))


def main():
    # `blinkroot suite|mount|umount ...` are subcommands (the conformance suites,
    # FUSE mounts); a guest program of one of these names is still run as ./NAME
    # or by its full path
    if len(sys.argv) > 1 and sys.argv[1] == "suite":
        from .suite.cli import main as suite_main
        return suite_main(sys.argv[2:])
    if len(sys.argv) > 1 and sys.argv[1] in ("mount", "umount"):
        cmd = mount_command if sys.argv[1] == "mount" else umount_command
        return cmd.main(sys.argv[2:], prog_name="blinkroot " + sys.argv[1])
    from .run import note_inherited_fds
    from .proc.hostsig import block_forwarded
    note_inherited_fds()
    block_forwarded()       # before any thread exists: every thread inherits the mask
    try:
        command.main(prog_name="blinkroot")
    except SystemExit:
        raise
    except KeyboardInterrupt:
        sys.exit(130)
    except BaseException as e:  # never a traceback for the user; the log keeps it
        from .run import report_internal_error
        sys.exit(report_internal_error(e))
