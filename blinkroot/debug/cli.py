"""`blinkenlights [FLAG...] PROGRAM [ARG...]`: blink's debugger TUI, on textual.

Flags as blink's: -b ADDR|SYMBOL (repeatable) pushes a breakpoint, -w ADDR|SYMBOL a
watchpoint (it stops after whatever changed the 8 bytes there, a system call included),
-t runs without the TUI (as blinkroot does), -r runs a 16-bit boot-sector program in real
mode (realmode.py), -z zooms the memory panel out (each -z halves it, as blink's magic
kernel does), -L PATH, -C ROOT, -s and -Z pass through to blinkroot, -v prints the
version, -h help; -j, -m, -R, -H and -V are accepted as blink's and change nothing here.
"""

import os
import sys

import click

USAGE_EPILOG = """\b
Keys: s step, n next, f finish, c continue, b toggle breakpoint at rip,
i interrupt, m memory panel mode, ? help, q quit."""


@click.command(context_settings=dict(help_option_names=["-h", "--help"],
                                     ignore_unknown_options=True,
                                     allow_interspersed_args=False),
               epilog=USAGE_EPILOG)
@click.option("-b", "breakpoints", multiple=True, metavar="ADDR|SYMBOL",
              help="Push a breakpoint: a hex address or a symbol (name@plt too).")
@click.option("-w", "watchpoints", multiple=True, metavar="ADDR|SYMBOL",
              help="Push a watchpoint: stop after the 8 bytes there change.")
@click.option("-t", "no_tui", is_flag=True, help="No TUI: run the program as blinkroot does.")
@click.option("-r", "real_mode", is_flag=True,
              help="Real mode: PROGRAM is a flat 16-bit i8086 image (a boot sector) "
                   "loaded at 0x7c00, with a PC BIOS.")
@click.option("-C", "root", metavar="ROOT", help="Run in a chroot'd environment (blinkroot -C).")
@click.option("-L", "log_path", metavar="PATH", help="Log file (with -t).")
@click.option("-j", "jit", is_flag=True, help="Accepted for blink compatibility.")
@click.option("-m", "linear", is_flag=True, help="Accepted for blink compatibility.")
@click.option("-s", "strace", count=True, help="Log system calls (blinkroot -s).")
@click.option("-Z", "stats", is_flag=True, help="Print statistics at exit (blinkroot -Z).")
@click.option("-R", "no_reactive", is_flag=True, help="Accepted for blink compatibility.")
@click.option("-H", "no_highlight", is_flag=True, help="Accepted for blink compatibility.")
@click.option("-V", "verbose", count=True, help="Accepted for blink compatibility.")
@click.option("-v", "version", is_flag=True, help="Print the version and exit.")
@click.option("-z", "zoom", count=True,
              help="Zoom the memory panel out (repeatable): each cell is 2**N bytes.")
@click.argument("program", required=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def command(breakpoints, watchpoints, no_tui, real_mode, root, log_path, jit, linear,
            strace, stats, no_reactive, no_highlight, verbose, version, zoom, program, args):
    """Debug an x86-64 Linux PROGRAM in a terminal user interface."""
    if version:
        from .. import __version__
        print(f"blinkenlights (blinkroot) {__version__}")
        return
    if program is None:
        raise click.UsageError("Missing argument 'PROGRAM'.")
    if real_mode:
        from . import realmode
        if no_tui:
            status = realmode.run_plain(program)
            sys.stdout.flush()
            sys.stderr.flush()
            # As blinkroot's run.py: no interpreter teardown after a run.  (Unicorn's
            # teardown after a Ctrl-C that landed in its JIT code can crash.)
            os._exit(status)
        try:
            session = realmode.RealModeSession([program])
        except realmode.ImageError as e:
            print(f"blinkenlights: {e}", file=sys.stderr)
            sys.exit(127)
        from .tui import Blinkenlights
        app = Blinkenlights([program], breakpoints=breakpoints, session=session)
        app.run()
        if session.exited:
            print(session.exited)
        return
    if no_tui:
        from ..cli import main as blinkroot_main
        argv = ["blinkroot"] + ["-s"] * strace + ["-Z"] * stats
        if root:
            argv += ["-C", root]
        if log_path:
            argv += ["-L", log_path]
        sys.argv = argv + [program, *args]
        blinkroot_main()
        return
    from .tui import Blinkenlights
    flags = (["-C", root] if root else []) + ["-Z"] * stats
    app = Blinkenlights([program, *args], breakpoints=breakpoints, blinkroot_flags=flags,
                        root=root, watchpoints=watchpoints, zoom=zoom)
    app.run()
    s = app.session
    if s is not None and s.exited:
        print(s.exited)


def main():
    from ..run import note_inherited_fds
    note_inherited_fds()
    command.main(prog_name="blinkenlights")
