"""Finding the tests of a built suite from its on-disk layout.

LTP install prefix (what ``make install`` lays out under ``--prefix``)::

    PREFIX/runtest/syscalls      one test a line: ``NAME COMMAND [ARGS...]``,
                                 ``#`` comments and blank lines ignored
    PREFIX/testcases/bin/        the test programs COMMAND names
    PREFIX/Version               LTP's version string (the revision)

Each command runs with PATH starting with ``PREFIX/testcases/bin`` and with
LTPROOT=PREFIX, as LTP's own runners (runltp, kirk) do. A command that is a
plain word list runs directly; one with shell syntax runs under ``/bin/sh -c``
(under blinkroot the shell is emulated too).

libc-test tree (its Makefile builds in the source tree, B=src)::

    TREE/src/DIR/NAME.exe          dynamically linked test
    TREE/src/DIR/NAME-static.exe   statically linked test (functional, regression)
    TREE/src/common/runtest.exe    libc-test's own runner (timeout + FAIL line)

DIR is functional, regression, math, musl, ... (every directory but common and
api: api is a compile-time test whose main.exe only checks it linked). A test
passes when it exits 0; on failure it prints why on stdout.
"""

import os
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

LTP = "ltp"
LIBC_TEST = "libc-test"

# Characters that make a runtest command a shell command rather than a word list.
_SHELL_CHARS = re.compile(r"""[;&|<>$`"'*?()\[\]{}~\\]|^\s*\w+=""")


@dataclass
class Test:
    suite: str                      # "ltp" or "libc-test"
    name: str                       # "read01", "functional/argv-static"
    argv: List[str]                 # argv the test sees (argv[0] as written)
    program: Optional[str]          # absolute path executed, None for shell commands
    shell: Optional[str] = None     # command text run with /bin/sh -c instead
    env: Dict[str, str] = field(default_factory=dict)
    group: str = ""                 # tests of one group never run at the same time
    machine_wide: bool = False      # set by the runner
    missing: Optional[str] = None   # why it cannot run (not built), or None
    command: str = ""               # the command as the suite lists it

    @property
    def id(self) -> str:
        return f"{self.suite}/{self.name}"


def _revision_of_dir(path: Path) -> str:
    """The git revision of PATH if it is (inside) a git work tree, else ''."""
    try:
        out = subprocess.run(["git", "-C", str(path), "describe", "--always", "--tags", "--dirty"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


# ---- LTP ----------------------------------------------------------------------


def parse_runtest(text: str):
    """Yield (name, command) from the text of a runtest file."""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 1)
        if len(parts) < 2:
            continue
        yield parts[0], parts[1]


def ltp_revision(prefix: Path) -> str:
    version = prefix / "Version"
    if version.is_file():
        return version.read_text(errors="replace").strip()
    return _revision_of_dir(prefix)


def find_ltp_tests(prefix, runtest_files=("syscalls",)) -> List[Test]:
    prefix = Path(prefix).resolve()
    bindir = prefix / "testcases" / "bin"
    if not bindir.is_dir():
        raise FileNotFoundError(f"{bindir}: no such directory (not an LTP install prefix?)")
    env = {
        "LTPROOT": str(prefix),
        "PATH": f"{bindir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    }
    tests, seen = [], set()
    for rt in runtest_files:
        rtpath = Path(rt) if os.sep in str(rt) else prefix / "runtest" / rt
        if not rtpath.is_file():
            raise FileNotFoundError(f"{rtpath}: no such runtest file")
        for name, command in parse_runtest(rtpath.read_text(errors="replace")):
            if name in seen:
                continue
            seen.add(name)
            t = Test(suite=LTP, name=name, argv=[], program=None, env=dict(env),
                     group=f"{LTP}/{name}", command=command)
            if _SHELL_CHARS.search(command):
                t.shell = command
                first = command.split()[0]
                t.argv = ["/bin/sh", "-c", command]
            else:
                t.argv = shlex.split(command)
                first = t.argv[0]
                exe = bindir / first if "/" not in first else Path(first)
                t.program = str(exe)
            exe = bindir / first if "/" not in first else Path(first)
            if "/" not in first and not exe.exists() and not _in_system_path(first):
                t.missing = f"{first} not built (not in testcases/bin)"
            elif t.program and not os.access(t.program, os.X_OK):
                t.missing = f"{first} not executable"
            tests.append(t)
    return tests


def _in_system_path(name: str) -> bool:
    return any(os.access(os.path.join(d, name), os.X_OK)
               for d in ("/usr/sbin", "/usr/bin", "/sbin", "/bin"))


# ---- libc-test ----------------------------------------------------------------

LIBC_TEST_SKIP_DIRS = {"common", "api"}


def libc_test_revision(tree: Path) -> str:
    for name in ("REVISION", "VERSION"):
        f = tree / name
        if f.is_file():
            return f.read_text(errors="replace").strip()
    return _revision_of_dir(tree)


def find_libc_tests(tree, use_runtest: bool = False, timeout: float = 0) -> List[Test]:
    """The built test executables of a libc-test tree.

    With use_runtest, each test runs through the tree's own runner,
    ``src/common/runtest.exe -t TIMEOUT TEST`` (under blinkroot the runner is
    emulated too, and so is the test it forks and execs)."""
    tree = Path(tree).resolve()
    src = tree / "src"
    if not src.is_dir():
        raise FileNotFoundError(f"{src}: no such directory (not a libc-test tree?)")
    runtest = src / "common" / "runtest.exe"
    if use_runtest and not runtest.is_file():
        raise FileNotFoundError(f"{runtest}: not built")
    tests = []
    for d in sorted(p for p in src.iterdir() if p.is_dir()):
        if d.name in LIBC_TEST_SKIP_DIRS:
            continue
        # every NAME.exe the Makefile built is a test (helpers are .so files)
        names = {p.name[:-4] for p in d.glob("*.exe")}
        # a test whose link failed leaves NAME.exe.ld.err and no NAME.exe
        failed = {p.name[:-len(".exe.ld.err")] for p in d.glob("*.exe.ld.err")} - names
        names |= failed
        for n in sorted(names):
            exe = d / f"{n}.exe"
            base = n[:-7] if n.endswith("-static") else n
            if use_runtest:
                argv = [str(runtest), "-t", str(max(1, int(timeout or 5))), str(exe)]
                program = str(runtest)
            else:
                argv = [str(exe)]
                program = str(exe)
            t = Test(suite=LIBC_TEST, name=f"{d.name}/{n}", argv=argv, program=program,
                     # libc-test's Makefile never runs NAME and NAME-static at
                     # once ("matters for some tests eg ipc")
                     group=f"{LIBC_TEST}/{d.name}/{base}", command=" ".join(argv))
            if n in failed:
                t.missing = f"{exe.name} not built (link failed)"
            elif not os.access(exe, os.X_OK):
                t.missing = f"{exe.name} not executable"
            tests.append(t)
    return tests
