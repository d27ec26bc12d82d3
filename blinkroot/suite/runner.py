"""Running suite tests natively and under blinkroot.

Each test runs twice, natively and then emulated, one after the other, each in
a fresh scratch directory (its cwd and TMPDIR) with the same environment,
standard input from /dev/null and stdout and stderr to one log file. A run
still going after the timeout has its whole process group killed and counts
as TIMEOUT.

Ordinary tests run in a pool of --jobs workers. Tests that touch machine-wide
state (MACHINE_WIDE below, the one place that says which) run afterwards, one
at a time, with nothing else running.

Statuses: PASS, FAIL, SKIP (LTP's TCONF, or a test that was not built) and
TIMEOUT.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

from .layouts import LTP, Test

PASS, FAIL, SKIP, TIMEOUT = "PASS", "FAIL", "SKIP", "TIMEOUT"
STATUSES = (PASS, FAIL, SKIP, TIMEOUT)
NATIVE, EMULATED = "native", "emulated"
MODES = (NATIVE, EMULATED)

# Tests that change state shared by the whole machine, so that no other test
# may run beside them: the clock, mounts, resource limits (LTP's rlimit tests
# count per-user processes and open files), the host and domain names, swap,
# reboot and Ctrl-Alt-Del, process accounting, quotas, kernel modules, the
# kernel log and sysctls. A test is machine-wide when its name (LTP: read01,
# umount2_02; libc-test: regression/rlimit-open-files) starts with one of
# these followed by a digit, '_', '-' or the end.
MACHINE_WIDE = (
    # the clock
    "settimeofday", "clock_settime", "clock_adjtime", "stime", "adjtimex",
    "leapsec", "time_namespace",
    # mounts
    "mount", "umount", "umount2", "fsmount", "fsopen", "fsconfig", "fspick",
    "move_mount", "open_tree", "mount_setattr", "pivot_root",
    # resource limits
    "setrlimit", "prlimit", "rlimit",
    # host and domain names
    "sethostname", "setdomainname",
    # swap, reboot, accounting, quotas, modules, kernel log, sysctl
    "swapon", "swapoff", "reboot", "acct", "quotactl", "init_module",
    "finit_module", "delete_module", "syslog", "sysctl",
)
_MACHINE_WIDE_RE = re.compile(r"^(?:%s)(?:[0-9_-]|$)" % "|".join(map(re.escape, MACHINE_WIDE)))


def is_machine_wide(test: Test) -> bool:
    base = test.name.rsplit("/", 1)[-1]
    return bool(_MACHINE_WIDE_RE.match(base))


# ---- results --------------------------------------------------------------------

# LTP's result bits in a test's exit status (include/tst_res_flags.h)
LTP_TFAIL, LTP_TBROK, LTP_TWARN, LTP_TCONF = 1, 2, 4, 32


@dataclass
class RunResult:
    status: str
    detail: str = ""
    returncode: Optional[int] = None
    duration: float = 0.0
    log: str = ""             # path of the output log, relative to the out dir
    unsupported: List[str] = field(default_factory=list)  # ENOSYS syscalls (emulated)

    def to_dict(self):
        return dict(status=self.status, detail=self.detail, returncode=self.returncode,
                    duration=round(self.duration, 3), log=self.log,
                    unsupported=self.unsupported)


def classify(suite: str, returncode: int) -> (str, str):
    """(status, detail) from a finished test's exit status (negative: signal)."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = str(-returncode)
        return FAIL, f"killed by {name}"
    if returncode == 0:
        return PASS, ""
    if returncode in (126, 127):
        return FAIL, f"exit {returncode} (could not execute)"
    if suite == LTP:
        bits = [n for b, n in ((LTP_TFAIL, "TFAIL"), (LTP_TBROK, "TBROK"), (LTP_TWARN, "TWARN"),
                               (LTP_TCONF, "TCONF")) if returncode & b]
        if returncode == LTP_TCONF:
            return SKIP, "TCONF"
        if returncode & ~(LTP_TFAIL | LTP_TBROK | LTP_TWARN | LTP_TCONF) or not bits:
            return FAIL, f"exit {returncode}"
        return FAIL, "|".join(bits)
    # libc-test: 0 passes, anything else fails (its runtest prints
    # "FAIL NAME [status N]")
    return FAIL, f"status {returncode}"


@dataclass
class TestResult:
    test: Test
    native: Optional[RunResult] = None
    emulated: Optional[RunResult] = None

    def to_dict(self):
        t = self.test
        return dict(id=t.id, suite=t.suite, name=t.name, command=t.command,
                    machine_wide=t.machine_wide,
                    native=self.native.to_dict() if self.native else None,
                    emulated=self.emulated.to_dict() if self.emulated else None)


# ---- running --------------------------------------------------------------------


@dataclass
class Config:
    out_dir: Path
    timeout: float = 60.0
    jobs: int = 2
    blinkroot_cmd: List[str] = field(default_factory=lambda: [sys.executable, "-m", "blinkroot"])
    blinkroot_flags: List[str] = field(default_factory=list)
    env: Dict[str, str] = field(default_factory=dict)   # extra variables, both modes
    modes: tuple = MODES
    keep_work: bool = False


_UNSUPPORTED_RE = re.compile(r"unsupported syscall (\w+) \(\d+\): ENOSYS")


def _base_env(cfg: Config, test: Test, scratch: Path) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "BLINK_LOG"))}
    # the blinkroot package must be importable by `python -m blinkroot`; both
    # modes get the same variable so that the guest sees the same envp
    pkg_parent = str(Path(__file__).resolve().parent.parent.parent)
    pp = env.get("PYTHONPATH", "")
    if pkg_parent not in pp.split(os.pathsep):
        env["PYTHONPATH"] = pkg_parent + (os.pathsep + pp if pp else "")
    env.update(LC_ALL="C", TMPDIR=str(scratch), HOME=str(scratch))
    env.update(test.env)
    env.update(cfg.env)
    return env


def _command(cfg: Config, test: Test, mode: str, blink_log: Path):
    """(executable, argv) for subprocess."""
    if test.shell is not None:
        argv = ["/bin/sh", "-c", test.shell]
        program = "/bin/sh"
    else:
        argv = list(test.argv)
        program = test.program
    if mode == NATIVE:
        return program, argv
    # blinkroot -0 PROGRAM ARGV0 ARGS: the guest sees argv exactly as natively
    cmd = list(cfg.blinkroot_cmd) + ["-L", str(blink_log)] + list(cfg.blinkroot_flags)
    cmd += ["-0", program] + argv
    return cmd[0], cmd


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", name)


def run_one(cfg: Config, test: Test, mode: str) -> RunResult:
    if test.missing:
        return RunResult(SKIP, test.missing)
    if _stopping.is_set():
        return RunResult(FAIL, "interrupted")
    logdir = cfg.out_dir / "logs" / test.suite
    logdir.mkdir(parents=True, exist_ok=True)
    stem = _safe(test.name)
    log = logdir / f"{stem}.{mode}.log"
    blink_log = logdir / f"{stem}.blink.log"
    workroot = cfg.out_dir / "work"
    workroot.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"{stem}.{mode}.", dir=workroot))
    if mode == EMULATED and blink_log.exists():
        blink_log.unlink()
    executable, argv = _command(cfg, test, mode, blink_log)
    env = _base_env(cfg, test, scratch)
    start = time.monotonic()
    timed_out = False
    with open(log, "wb") as out:
        try:
            proc = subprocess.Popen(argv, executable=executable, cwd=scratch, env=env,
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        except OSError as e:
            return RunResult(FAIL, f"could not start: {e}", duration=0.0,
                             log=str(log.relative_to(cfg.out_dir)))
        with _running_lock:
            _running.add(proc.pid)
        try:
            rc = proc.wait(timeout=cfg.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc.pid)
            rc = proc.wait()
        finally:
            with _running_lock:
                _running.discard(proc.pid)
        # whatever the test left running in its group goes too
        _kill_group(proc.pid)
    duration = time.monotonic() - start
    if timed_out:
        res = RunResult(TIMEOUT, f"no exit after {cfg.timeout:g}s", rc, duration)
    else:
        status, detail = classify(test.suite, rc)
        res = RunResult(status, detail, rc, duration)
    res.log = str(log.relative_to(cfg.out_dir))
    if mode == EMULATED and blink_log.exists():
        seen = []
        for m in _UNSUPPORTED_RE.finditer(blink_log.read_text(errors="replace")):
            if m.group(1) not in seen:
                seen.append(m.group(1))
        res.unsupported = seen
    if not cfg.keep_work:
        shutil.rmtree(scratch, ignore_errors=True)
    return res


def _kill_group(pgid: int):
    """Kill the test's process group and every descendant still attached to
    it (a test may have moved some into groups or sessions of their own)."""
    try:
        import psutil
        procs = psutil.Process(pgid).children(recursive=True)
    except Exception:
        procs = []
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for p in procs:
        try:
            p.kill()
        except Exception:
            pass


_running = set()          # pids (= process groups) of the runs under way
_running_lock = threading.Lock()


_stopping = threading.Event()


def kill_running():
    """Kill every run under way and start no more (an interrupted `blinkroot suite`)."""
    _stopping.set()
    with _running_lock:
        pids = list(_running)
    for pid in pids:
        _kill_group(pid)


ProgressFn = Callable[[int, int, TestResult], None]


def run_tests(cfg: Config, tests: List[Test], progress: Optional[ProgressFn] = None) -> List[TestResult]:
    """Run every test in both modes; results in the order of `tests`."""
    for t in tests:
        t.machine_wide = is_machine_wide(t)
    groups: Dict[str, List[Test]] = {}
    for t in tests:
        groups.setdefault(t.group or t.id, []).append(t)
    results: Dict[str, TestResult] = {}
    lock = threading.Lock()
    done = [0]
    total = len(tests)

    def run_group(members: List[Test]):
        for t in members:
            r = TestResult(t)
            for mode in cfg.modes:
                setattr(r, mode, run_one(cfg, t, mode))
            with lock:
                results[t.id] = r
                done[0] += 1
                if progress:
                    progress(done[0], total, r)

    ordinary = [g for g in groups.values() if not any(t.machine_wide for t in g)]
    serial = [g for g in groups.values() if any(t.machine_wide for t in g)]
    with ThreadPoolExecutor(max_workers=max(1, cfg.jobs)) as pool:
        for f in [pool.submit(run_group, g) for g in ordinary]:
            f.result()
    for g in serial:
        run_group(g)
    if not cfg.keep_work:
        shutil.rmtree(cfg.out_dir / "work", ignore_errors=True)
    return [results[t.id] for t in tests]


def progress_line(done: int, total: int, r: TestResult) -> str:
    parts = [f"[{done}/{total}] {r.test.id}"]
    secs = 0.0
    for mode in MODES:
        rr = getattr(r, mode)
        if rr is not None:
            parts.append(f"{mode} {rr.status}")
            secs += rr.duration
    if r.test.machine_wide:
        parts.append("(serial)")
    parts.append(f"{secs:.1f}s")
    return " ".join(parts)
