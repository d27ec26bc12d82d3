"""The blinkroot command line: flags, program lookup, bad programs, exit
statuses, logging. Every case runs `python -m blinkroot` in a subprocess and
checks that no Python traceback ever reaches the user."""

import os
import re
import shutil

import pytest

from guestlib import GUEST_ENV, assert_same, run_blinkroot, run_native

# ---- helpers -----------------------------------------------------------------


def check_clean(result):
    """No Python traceback anywhere in what blinkroot printed."""
    for output in (result.stdout, result.stderr):
        assert b"Traceback" not in output, output.decode(errors="replace")


def check_one_error_line(result, program):
    """Exactly one line on stderr, `blinkroot: PROGRAM: ...`, and nothing on stdout."""
    check_clean(result)
    lines = result.stderr.decode(errors="replace").splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("blinkroot: "), lines[0]
    assert str(program) in lines[0], lines[0]
    assert result.stdout == b""


def make_executable(path, content: bytes, mode=0o755):
    path.write_bytes(content)
    path.chmod(mode)
    return path


def log_lines(text: str, pattern: str):
    return [line for line in text.splitlines() if re.search(pattern, line)]


# A flat binary, loaded at 0x400000 (blink's convention for *.bin):
#   mov eax, 1; mov edi, 1; mov esi, 0x400022; mov edx, 3; syscall   write(1, "hi\n", 3)
#   mov eax, 60; mov edi, 7; syscall                                  exit(7)
#   "hi\n"                                                            at 0x400022
FLAT_PROGRAM = bytes.fromhex(
    "b801000000" "bf01000000" "be22004000" "ba03000000" "0f05"
    "b83c000000" "bf07000000" "0f05"
) + b"hi\n"
assert FLAT_PROGRAM.index(b"hi\n") == 0x22

EM_AARCH64 = 183

# ---- programs that cannot run --------------------------------------------------


def test_missing_program(tmp_path):
    missing = tmp_path / "no-such-program"
    result = run_blinkroot([missing])
    assert result.returncode == 127
    check_one_error_line(result, missing)


def test_missing_program_on_path():
    result = run_blinkroot(["blinkroot-no-such-command"])
    assert result.returncode == 127
    check_one_error_line(result, "blinkroot-no-such-command")


def _not_executable(tmp_path, elf):
    return make_executable(tmp_path / "prog", elf, mode=0o644)


def _truncated_elf(tmp_path, elf):
    return make_executable(tmp_path / "prog", elf[:100])


def _aarch64_elf(tmp_path, elf):
    header = bytearray(elf)
    header[18:20] = EM_AARCH64.to_bytes(2, "little")  # e_machine
    return make_executable(tmp_path / "prog", bytes(header))


def _text_without_shebang(tmp_path, elf):
    return make_executable(tmp_path / "prog", b"echo this is not a program\n")


def _empty_file(tmp_path, elf):
    return make_executable(tmp_path / "prog", b"")


def _directory(tmp_path, elf):
    (tmp_path / "dir").mkdir()
    return tmp_path / "dir"


@pytest.mark.parametrize(
    "make_program",
    [_not_executable, _truncated_elf, _aarch64_elf, _text_without_shebang, _empty_file, _directory],
)
def test_unrunnable_program(make_program, tmp_path, guest):
    program = make_program(tmp_path, guest("hello").read_bytes())
    result = run_blinkroot([program])
    assert result.returncode == 126
    check_one_error_line(result, program)


# ---- how programs are found and started ------------------------------------------


def test_program_found_on_path(tmp_path, guest):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    shutil.copy(guest("printargs"), bindir / "printargs-on-path")
    env = dict(GUEST_ENV, PATH=f"{bindir}:{GUEST_ENV['PATH']}")
    argv = ["printargs-on-path", "x"]
    native = run_native(argv, env=env)
    emulated = run_blinkroot(argv, env=env)
    check_clean(emulated)
    assert emulated == native


def test_relative_program_path(tmp_path, guest):
    shutil.copy(guest("printargs"), tmp_path / "prog")
    argv = ["./prog", "relative"]
    native = run_native(argv, cwd=tmp_path)
    emulated = run_blinkroot(argv, cwd=tmp_path)
    check_clean(emulated)
    assert emulated == native


@pytest.mark.parametrize("interpreter_arg", ["", " -x"], ids=["plain", "with-argument"])
def test_shebang_script(interpreter_arg, tmp_path, guest):
    script = make_executable(
        tmp_path / "script", f"#!{guest('printargs')}{interpreter_arg}\n".encode()
    )
    comparison = assert_same([script, "a", "b c"], workdir=tmp_path)
    assert b'"a"' in comparison.native.stdout


def test_argv0_flag(guest):
    printargs = guest("printargs")
    native = run_native(["zeroth", "one"], executable=printargs)
    emulated = run_blinkroot([printargs, "zeroth", "one"], flags=["-0"])
    check_clean(emulated)
    assert b'argv[0]="zeroth"' in native.stdout
    assert emulated == native


def test_flat_binary(tmp_path):
    program = make_executable(tmp_path / "hi.bin", FLAT_PROGRAM)
    result = run_blinkroot([program])
    check_clean(result)
    assert (result.stdout, result.returncode) == (b"hi\n", 7)


# ---- exit statuses ----------------------------------------------------------------


def test_exit_status(guest):
    result = run_blinkroot([guest("hello")])
    check_clean(result)
    assert result.returncode == 3


def test_killed_by_sigsegv(guest):
    result = run_blinkroot([guest("sigsegv")])
    check_clean(result)
    assert result.returncode == -11


# ---- informational flags ------------------------------------------------------------


def test_help():
    result = run_blinkroot([], flags=["-h"])
    check_clean(result)
    assert result.returncode == 0
    assert b"usage" in result.stdout.lower()


def test_version():
    result = run_blinkroot([], flags=["-v"])
    check_clean(result)
    assert result.returncode == 0
    text = result.stdout.decode()
    assert "blinkroot" in text
    assert "unicorn" in text.lower()
    assert len(text.splitlines()) >= 2


# ---- logging -------------------------------------------------------------------------

RAW_WRITE = r"write\(1, .*\) = 6\b"  # hello.c's write(1, "raw 1\n", 6)


def test_strace_to_stderr(guest):
    result = run_blinkroot([guest("hello")], flags=["-s", "-e", "-L", os.devnull])
    check_clean(result)
    assert log_lines(result.stderr.decode(errors="replace"), RAW_WRITE), result.stderr


def test_strace_to_log_file(tmp_path, guest):
    log = tmp_path / "strace.log"
    result = run_blinkroot([guest("hello")], flags=["-s", "-L", log])
    check_clean(result)
    assert log_lines(log.read_text(errors="replace"), RAW_WRITE)
    assert not log_lines(result.stderr.decode(errors="replace"), RAW_WRITE)


def test_log_file_from_environment(tmp_path, guest):
    log = tmp_path / "env.log"
    env = dict(GUEST_ENV, BLINK_LOG_FILENAME=str(log))
    result = run_blinkroot([guest("hello")], flags=["-s"], env=env)
    check_clean(result)
    assert log_lines(log.read_text(errors="replace"), RAW_WRITE)


def test_default_log_file_in_cwd(tmp_path, guest):
    result = run_blinkroot([guest("hello")], flags=["-s"], cwd=tmp_path)
    check_clean(result)
    assert log_lines((tmp_path / "blink.log").read_text(errors="replace"), RAW_WRITE)


def test_unimplemented_syscalls_are_logged(guest):
    """Unknown and unimplemented syscalls fail with ENOSYS and the log names them."""
    program = guest("enosys")
    native = run_native([program])
    emulated = run_blinkroot([program], flags=["-e", "-L", os.devnull])
    check_clean(emulated)
    assert emulated.stdout == native.stdout
    log = emulated.stderr.decode(errors="replace")
    assert log_lines(log, r"\bnfsservctl\b"), log
    assert log_lines(log, r"\bafs_syscall\b"), log
    assert log_lines(log, r"\b500\b"), log


def test_no_log_file_unless_something_is_logged(tmp_path, guest):
    result = run_blinkroot([guest("printargs")], cwd=tmp_path)
    check_clean(result)
    assert result.returncode == 0
    assert not (tmp_path / "blink.log").exists()
