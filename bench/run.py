#!/usr/bin/env python3
"""Time guest workloads natively, under qemu-x86_64 and under blinkroot.

    python3 bench/run.py [--reps N] [--only NAME[,NAME...]] [--timeout SEC] [--out FILE]

Workloads are the C files in bench/workloads (built with `musl-gcc -static -O2`
into bench/.build) plus a busybox shell loop.  Each is run --reps times per
engine, interleaved; a cell is the median wall-clock time in seconds, or
`fail` (non-zero exit, or stdout differing from the native run) or `timeout`.
The markdown table goes to stdout, progress and failure details to stderr;
--out also writes the table with machine information to FILE.

Standard library only.
"""

import argparse
import datetime
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SOURCES = BENCH / "workloads"
BUILD = BENCH / ".build"
BUSYBOX = "/bin/busybox" if os.path.exists("/bin/busybox") else shutil.which("busybox")
PIPE_INPUT = ["head", "-c", "100M", "/dev/zero"]  # 100 MiB, run natively
SHELL_LOOP = "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done"


class Workload:
    def __init__(self, name, what, argv=None, piped=False):
        self.name = name
        self.what = what
        self.argv = argv or [str(BUILD / name)]  # default: the built C program
        self.piped = piped  # stdin from PIPE_INPUT, stdout to /dev/null

    @property
    def source(self):
        path = SOURCES / f"{self.name}.c"
        return path if path.exists() else None


WORKLOADS = [
    Workload("hello", "static hello world: process startup, one write, exit"),
    Workload("intloop", "integer loop: Collatz step count below 1.8M"),
    Workload("fploop", "floating point: 5-body simulation, 4M steps"),
    Workload("getppid", "syscall round trips: 200k getppid()"),
    Workload("memory", "sort 1M ints, FNV-1a hash, 20M random updates of a 64 MiB table"),
    Workload(
        "pipe",
        "stdin to stdout copy in 64 KiB read/write calls; time from starting a "
        "native `head -c 100M /dev/zero` feeding its stdin until both exit, "
        "stdout to /dev/null",
        piped=True,
    ),
    Workload(
        "busybox",
        f"`busybox sh -c '{SHELL_LOOP}'` (shell builtins only, no fork)",
        argv=[BUSYBOX or "busybox", "sh", "-c", SHELL_LOOP],
    ),
]


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def first_line(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout
        return out.splitlines()[0].strip() if out.strip() else None
    except (OSError, subprocess.SubprocessError):
        return None


# ---------------------------------------------------------------- engines


def find_qemu():
    for name in ("qemu-x86_64", "qemu-x86_64-static"):
        path = shutil.which(name)
        if path:
            return path
    return None


def blinkroot_command():
    """(command prefix, environment or None, python) for running blinkroot."""
    venv = ROOT / ".venv" / "bin"
    if (venv / "blinkroot").exists():
        return [str(venv / "blinkroot")], None, str(venv / "python")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return [sys.executable, "-m", "blinkroot"], env, sys.executable


def engines():
    """[(column name, command prefix, environment or None)] in table order."""
    found = [("native", [], None)]
    qemu = find_qemu()
    if qemu:
        found.append(("qemu", [qemu], None))
    else:
        log("qemu-x86_64 not found: no qemu column")
    prefix, env, _ = blinkroot_command()
    if env is not None:
        log("no .venv/bin/blinkroot (run scripts/install.sh): using python -m blinkroot")
    found.append(("blinkroot", prefix, env))
    return found


# ---------------------------------------------------------------- running


def build(workloads):
    todo = [w for w in workloads if w.source]
    if not todo:
        return
    cc = shutil.which("musl-gcc")
    if not cc:
        sys.exit("bench: musl-gcc not found (run scripts/install.sh)")
    BUILD.mkdir(parents=True, exist_ok=True)
    for w in todo:
        exe = Path(w.argv[0])
        if exe.exists() and exe.stat().st_mtime >= w.source.stat().st_mtime:
            continue
        log(f"building {exe.relative_to(ROOT)}")
        subprocess.run([cc, "-static", "-O2", "-o", str(exe), str(w.source)], check=True)


def kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_once(workload, prefix, env, timeout):
    """Run once: (seconds, stdout) on success, else ("fail" | "timeout", reason)."""
    cmd = prefix + workload.argv
    feeder = None
    start = time.perf_counter()
    try:
        if workload.piped:
            feeder = subprocess.Popen(PIPE_INPUT, stdout=subprocess.PIPE)
            stdin, stdout = feeder.stdout, subprocess.DEVNULL
        else:
            stdin, stdout = subprocess.DEVNULL, subprocess.PIPE
        proc = subprocess.Popen(cmd, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE,
                                env=env, start_new_session=True)
    except OSError as e:
        if feeder:
            feeder.kill()
            feeder.wait()
        return "fail", str(e)
    if feeder:
        feeder.stdout.close()  # the guest holds the only read end now
    try:
        out, err = proc.communicate(timeout=timeout)
        if feeder:
            feeder.wait(timeout=max(1.0, timeout - (time.perf_counter() - start)))
    except subprocess.TimeoutExpired:
        kill_group(proc)
        proc.communicate()
        if feeder:
            feeder.kill()
            feeder.wait()
        return "timeout", f"killed after {timeout:g} s"
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        lines = err.decode(errors="replace").strip().splitlines()
        return "fail", f"exit status {proc.returncode}" + (f": {lines[-1]}" if lines else "")
    if feeder and feeder.returncode != 0:
        return "fail", f"input feeder exited with {feeder.returncode} (input not fully read)"
    return elapsed, out


def measure(workload, columns, reps, timeout):
    """{column: median seconds or "fail"/"timeout"} for one workload."""
    times = {name: [] for name, _, _ in columns}
    result = {}
    expected = None  # native stdout, which the other engines must reproduce
    for rep in range(reps):
        for name, prefix, env in columns:
            if name in result:
                continue  # already failed
            value, info = run_once(workload, prefix, env, timeout)
            if isinstance(value, float) and name == "native":
                expected = info
            elif isinstance(value, float) and expected is not None and info != expected:
                value, info = "fail", "stdout differs from the native run"
            if isinstance(value, str):
                log(f"{workload.name} under {name}: {value}: {info}")
                result[name] = value
            else:
                log(f"{workload.name} under {name} #{rep + 1}: {value:.3f} s")
                times[name].append(value)
    for name, samples in times.items():
        result.setdefault(name, statistics.median(samples) if samples else "fail")
    return result


# ---------------------------------------------------------------- output


def seconds(value):
    if isinstance(value, str):
        return value
    return f"{value:.4f}" if value < 10 else f"{value:.1f}"


def ratio(a, b):
    if isinstance(a, str) or isinstance(b, str) or b <= 0:
        return "-"
    return f"{a / b:.1f}x"


def table(results, names):
    have_qemu = "qemu" in names
    head = ["workload", "native"] + (["qemu"] if have_qemu else []) + ["blinkroot", "blinkroot/native"]
    head += ["blinkroot/qemu"] if have_qemu else []
    rows = []
    for workload, r in results:
        row = [workload.name, seconds(r["native"])]
        row += [seconds(r["qemu"])] if have_qemu else []
        row += [seconds(r["blinkroot"]), ratio(r["blinkroot"], r["native"])]
        row += [ratio(r["blinkroot"], r["qemu"])] if have_qemu else []
        rows.append(row)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]

    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(head), sep] + [line(r) for r in rows])


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for entry in f:
                if entry.startswith("model name"):
                    return entry.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blinkroot_python():
    """Python and unicorn versions of the interpreter that runs blinkroot."""
    python = blinkroot_command()[2]
    probe = ("import sys, importlib.metadata as m\n"
             "try: u = m.version('unicorn')\n"
             "except Exception: u = 'not installed'\n"
             "print(sys.version.split()[0], u)")
    answer = first_line([python, "-c", probe])
    return answer.split(" ", 1) if answer else (platform.python_version(), "unknown")


def machine_info(columns, args):
    names = {name: prefix for name, prefix, _ in columns}
    py, unicorn = blinkroot_python()
    info = [
        ("date", datetime.datetime.now().astimezone().isoformat(timespec="seconds")),
        ("CPU", cpu_model()),
        ("cores", str(os.cpu_count())),
        ("kernel", f"{platform.system()} {platform.release()} {platform.machine()}"),
        ("Python (blinkroot)", py),
        ("unicorn", unicorn),
        ("blinkroot command", " ".join(names["blinkroot"])),
        ("blinkroot commit", first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])),
        ("qemu", first_line([names["qemu"][0], "--version"]) if "qemu" in names else "absent"),
        ("compiler", (first_line(["musl-gcc", "--version"]) or "?") + " via musl-gcc -static -O2"),
        ("busybox", first_line([BUSYBOX, "--help"]) if BUSYBOX else "absent"),
        ("repetitions", f"{args.reps} (median wall-clock seconds), timeout {args.timeout:g} s"),
    ]
    return "\n".join(f"- {k}: {v}" for k, v in info if v)


def report(results, columns, args):
    names = [name for name, _, _ in columns]
    parts = [
        "# blinkroot benchmark",
        "",
        table(results, names),
        "",
        "Workloads:",
        "",
        *[f"- {w.name}: {w.what}" for w, _ in results],
        "",
        "Machine:",
        "",
        machine_info(columns, args),
    ]
    return "\n".join(parts) + "\n"


# ---------------------------------------------------------------- main


def select(only):
    if not only:
        return WORKLOADS
    wanted = [n for item in only for n in item.split(",") if n]
    known = {w.name: w for w in WORKLOADS}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        sys.exit(f"bench: unknown workload {', '.join(unknown)} (have: {', '.join(known)})")
    return [known[n] for n in dict.fromkeys(wanted)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=3, help="runs per engine (default 3)")
    ap.add_argument("--only", action="append", metavar="NAME[,NAME]",
                    help="run only these workloads: " + ", ".join(w.name for w in WORKLOADS))
    ap.add_argument("--timeout", type=float, default=300, help="seconds per run (default 300)")
    ap.add_argument("--out", type=Path, help="also write table and machine info to this file")
    args = ap.parse_args(argv)
    if args.reps < 1:
        ap.error("--reps must be at least 1")

    workloads = select(args.only)
    build(workloads)
    columns = engines()
    if not BUSYBOX and any(w.name == "busybox" for w in workloads):
        log("busybox not found: the busybox workload will fail")

    results = [(w, measure(w, columns, args.reps, args.timeout)) for w in workloads]
    names = [name for name, _, _ in columns]
    print(table(results, names))
    if args.out:
        args.out.write_text(report(results, columns, args))
        log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
