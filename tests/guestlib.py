"""Helpers for blinkroot's differential tests.

A test builds a guest program (a C file under tests/guest/) with one of three
toolchains, runs it natively and under ``python -m blinkroot``, each in a fresh
scratch directory with identical contents and the same fixed environment, and
asserts that stdout, stderr and the exit status are identical.

Directives in the leading ``//`` comment lines of a guest C file:

    // cflags: -lm           appended to the compiler command line
    // args: a "b c" ''      the program's arguments (shell-quoted)
    // stdin: some text      one line of standard input (repeatable)
    // oracle: none          not a differential test (what it prints is blinkroot's own,
                             e.g. its CPUID): other tests run it and check the output
"""

import difflib
import hashlib
import os
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple, Optional, Sequence

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
TESTS_DIR = REPO_ROOT / "tests"
GUEST_DIR = TESTS_DIR / "guest"
BUILD_DIR = TESTS_DIR / ".build"

DEFAULT_TIMEOUT = 60

# toolchain name -> compiler command (without the output and source files)
TOOLCHAINS = {
    "musl": ["musl-gcc", "-static", "-O1"],
    "glibc-static": ["gcc", "-static", "-O1"],
    "glibc-dynamic": ["gcc", "-O1"],
}
WARNINGS = ["-Wall", "-Wno-unused-result"]

# The whole environment of every run, native and emulated alike. PYTHONPATH
# makes the blinkroot package importable without installing it; it is given to
# the native run too, so that both guests see exactly the same envp.
GUEST_ENV = {
    "PATH": "/usr/bin:/bin",
    "LC_ALL": "C",
    "HOME": "/tmp",
    "TZ": "UTC",
    "PYTHONPATH": str(REPO_ROOT),
}


class Result(NamedTuple):
    stdout: bytes
    stderr: bytes
    returncode: int


# ---- guest sources and their compilation ---------------------------------


@dataclass(frozen=True)
class GuestSource:
    """A C program under tests/guest/ and the directives in its header."""

    name: str
    path: Path
    cflags: list = field(default_factory=list)
    args: list = field(default_factory=list)
    stdin: Optional[bytes] = None

    @classmethod
    def load(cls, name: str) -> "GuestSource":
        path = GUEST_DIR / f"{name}.c"
        cflags, args, stdin_lines = [], [], []
        for line in path.read_text().splitlines():
            if not line.startswith("//"):
                break
            key, sep, value = line[2:].strip().partition(":")
            if not sep:
                continue
            value = value.strip()
            if key == "cflags":
                cflags += shlex.split(value)
            elif key == "args":
                args += shlex.split(value)
            elif key == "stdin":
                stdin_lines.append(value + "\n")
        stdin = "".join(stdin_lines).encode() if stdin_lines else None
        return cls(name, path, cflags, args, stdin)


def guest_names() -> list:
    """Names of the guest programs whose oracle is native Linux, sorted."""
    return sorted(p.stem for p in GUEST_DIR.glob("*.c")
                  if "// oracle: none" not in p.read_text().split("\n\n", 1)[0])


def toolchain_available(toolchain: str) -> bool:
    return shutil.which(TOOLCHAINS[toolchain][0]) is not None


def build(name: str, toolchain: str) -> Path:
    """Compile tests/guest/NAME.c with TOOLCHAIN, cached by content; returns the binary.

    Skips the calling test if the toolchain's compiler is not installed.
    """
    if not toolchain_available(toolchain):
        pytest.skip(f"toolchain {toolchain}: {TOOLCHAINS[toolchain][0]} is not installed")
    source = GuestSource.load(name)
    command = TOOLCHAINS[toolchain] + WARNINGS
    digest = hashlib.sha1()
    digest.update(" ".join(command + source.cflags).encode())
    for dependency in [source.path, *sorted(GUEST_DIR.glob("*.h"))]:
        digest.update(dependency.read_bytes())
    binary = BUILD_DIR / toolchain / f"{name}-{digest.hexdigest()}"
    if binary.exists():
        return binary
    binary.parent.mkdir(parents=True, exist_ok=True)
    partial = binary.with_name(f"{binary.name}.{os.getpid()}.tmp")
    proc = subprocess.run(
        [*command, "-o", str(partial), str(source.path), *source.cflags],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.fail(f"compiling {name}.c with {toolchain} failed:\n{proc.stderr}", pytrace=False)
    os.replace(partial, binary)  # atomic, so parallel test runs can share the cache
    return binary


# ---- running programs --------------------------------------------------------


def _no_core_dumps():
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _run(argv, *, stdin=None, cwd=None, env=None, timeout=DEFAULT_TIMEOUT, **kw) -> Result:
    argv = [str(a) for a in argv]
    try:
        proc = subprocess.run(
            argv,
            input=stdin,
            stdin=subprocess.DEVNULL if stdin is None else None,
            capture_output=True,
            cwd=cwd,
            env=GUEST_ENV if env is None else env,
            timeout=timeout,
            preexec_fn=_no_core_dumps,
            **kw,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"timed out after {timeout} s: {shlex.join(argv)}", pytrace=False)
    return Result(proc.stdout, proc.stderr, proc.returncode)


def run_native(argv: Sequence, **kw) -> Result:
    """Run argv natively. stdin (bytes) defaults to /dev/null; see _run for the rest."""
    return _run(argv, **kw)


def blinkroot_command(argv: Sequence, flags: Sequence = ()) -> list:
    return [sys.executable, "-m", "blinkroot", *flags, *argv]


def run_blinkroot(argv: Sequence, flags: Sequence = (), **kw) -> Result:
    """Run argv under `python -m blinkroot FLAGS...`, otherwise exactly like run_native."""
    return _run(blinkroot_command(argv, flags), **kw)


# ---- differential comparison -------------------------------------------------


@dataclass
class Comparison:
    native: Result
    emulated: Result
    native_cwd: Path
    emulated_cwd: Path


def _fresh_directory(path: Path, setup: Optional[Callable[[Path], None]]) -> Path:
    path.mkdir()
    if setup is not None:
        setup(path)
    return path


def assert_same(
    argv: Sequence,
    *,
    stdin: Optional[bytes] = None,
    flags: Sequence = (),
    setup: Optional[Callable[[Path], None]] = None,
    transform: Optional[Callable[[bytes], bytes]] = None,
    workdir: Optional[Path] = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Comparison:
    """Run argv natively and under blinkroot and assert identical results.

    Each run gets its own fresh scratch directory as cwd, filled by
    setup(path). Both runs use the same absolute path (WORKDIR/cwd: the native
    one is renamed to cwd.native afterwards), so even getcwd() agrees.
    blinkroot logs to WORKDIR/blink.log, outside the scratch directory.
    transform, if given, is applied to both stdouts before comparing (e.g. to
    sort lines whose order is not defined).
    """
    base = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="blinkroot-test-"))
    base.mkdir(parents=True, exist_ok=True)
    scratch = base / "cwd"
    native_cwd = base / "cwd.native"
    log = base / "blink.log"

    native = run_native(argv, stdin=stdin, cwd=_fresh_directory(scratch, setup), timeout=timeout)
    scratch.rename(native_cwd)
    emulated = run_blinkroot(
        argv,
        flags=["-L", str(log), *flags],
        stdin=stdin,
        cwd=_fresh_directory(scratch, setup),
        timeout=timeout,
    )

    if transform is not None:
        native = native._replace(stdout=transform(native.stdout))
        emulated = emulated._replace(stdout=transform(emulated.stdout))
    problems = [
        p
        for p in (
            describe_difference("stdout", native.stdout, emulated.stdout),
            describe_difference("stderr", native.stderr, emulated.stderr),
        )
        if p
    ]
    if native.returncode != emulated.returncode:
        problems.append(
            f"exit status: native {native.returncode}, blinkroot {emulated.returncode}"
        )
    if problems:
        report = [f"blinkroot differs from native for: {shlex.join(map(str, argv))}", *problems]
        report.append(_log_tail(log))
        pytest.fail("\n\n".join(report), pytrace=False)
    return Comparison(native, emulated, native_cwd, scratch)


def describe_difference(label: str, native: bytes, emulated: bytes, context: int = 15) -> Optional[str]:
    """A readable diff around the first difference of two outputs, or None if equal."""
    if native == emulated:
        return None
    a = native.decode(errors="backslashreplace").splitlines(keepends=True)
    b = emulated.decode(errors="backslashreplace").splitlines(keepends=True)
    first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    start = max(0, first - context)
    window = slice(start, first + 2 * context)
    diff = difflib.unified_diff(
        a[window], b[window], f"native {label}", f"blinkroot {label}", n=context, lineterm="\n"
    )
    summary = (
        f"{label} differs ({len(native)} bytes native, {len(emulated)} bytes blinkroot), "
        f"first at line {first + 1}:"
    )
    return summary + "\n" + "".join(line if line.endswith("\n") else line + "\n" for line in diff)


def _log_tail(log: Path, lines: int = 30) -> str:
    if not log.exists():
        return "(blinkroot wrote no log)"
    tail = log.read_text(errors="backslashreplace").splitlines()[-lines:]
    return f"last lines of {log}:\n" + "\n".join(tail)


def run_guest(name: str, toolchain: str, **kw) -> Comparison:
    """Build a guest program and assert_same on it with its own args and stdin."""
    source = GuestSource.load(name)
    binary = build(name, toolchain)
    kw.setdefault("stdin", source.stdin)
    return assert_same([binary, *source.args], **kw)
