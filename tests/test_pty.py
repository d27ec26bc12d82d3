"""Pseudo-terminals: util-linux's `script` opens /dev/ptmx, runs a shell on the pts."""

import shutil

import pytest

from guestlib import run_blinkroot, run_native

SCRIPT = shutil.which("script", path="/usr/bin:/bin")


@pytest.mark.skipif(SCRIPT is None, reason="util-linux's script is not installed")
def test_script_runs_a_shell_on_a_pseudo_terminal():
    argv = [SCRIPT, "-qc", "echo in-pty; tty; test -t 0 && echo stdin-is-a-tty", "/dev/null"]
    native = run_native(argv)
    emulated = run_blinkroot(argv)
    assert emulated.returncode == native.returncode == 0, emulated.stderr
    lines = emulated.stdout.decode().replace("\r", "").splitlines()
    assert lines[0] == "in-pty"
    assert lines[1].startswith("/dev/pts/")
    assert lines[2] == "stdin-is-a-tty"
    assert len(lines) == len(native.stdout.decode().replace("\r", "").splitlines())
