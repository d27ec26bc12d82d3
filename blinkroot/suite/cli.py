"""`blinkroot suite` / `blinkroot-suite`: the command line."""

import re
import sys
from pathlib import Path

import click

from . import layouts, report, runner

EPILOG = """\b
Runs each test natively and under blinkroot (ordinary tests --jobs at a
time, machine-wide ones -- clock, mounts, rlimits, hostname, ... -- one at a
time afterwards) and writes to --out: report.txt, results.json, junit.xml,
expected.txt (this run as an expected-results list) and logs/.
Progress goes to stderr. Exit status: 1 when --expected is given and a test
regressed, 2 on a usage error, else 0."""


@click.command(context_settings=dict(help_option_names=["-h", "--help"]), epilog=EPILOG)
@click.option("--ltp", "ltp_prefix", metavar="PREFIX", type=click.Path(exists=True, file_okay=False),
              help="LTP install prefix (testcases/bin, runtest/).")
@click.option("--ltp-runtest", "ltp_runtest", metavar="NAME", multiple=True,
              help="runtest file under PREFIX/runtest, or a path (default: syscalls; repeatable).")
@click.option("--libc-test", "libc_test", metavar="DIR", type=click.Path(exists=True, file_okay=False),
              help="Built libc-test tree (src/*/NAME.exe, NAME-static.exe).")
@click.option("--libc-test-runtest", is_flag=True,
              help="Run libc-test tests through its own src/common/runtest.exe (emulated too).")
@click.option("-j", "--jobs", type=int, default=2, show_default=True, help="Tests run at once.")
@click.option("--timeout", type=float, default=60.0, show_default=True,
              help="Seconds before a run is killed (TIMEOUT).")
@click.option("--filter", "filter_re", metavar="REGEX",
              help="Run only tests whose id (ltp/NAME, libc-test/DIR/NAME) matches.")
@click.option("--limit", type=int, default=0, help="Run only the first N tests (after --filter).")
@click.option("--out", "out_dir", metavar="DIR", default="blinkroot-suite-out", show_default=True,
              type=click.Path(file_okay=False), help="Where reports and logs go.")
@click.option("--expected", metavar="FILE", type=click.Path(exists=True, dir_okay=False),
              help="Expected-results list to compare with; regressions make the exit status 1.")
@click.option("--save-expected", metavar="FILE", type=click.Path(dir_okay=False),
              help="Also write this run's expected-results list to FILE.")
@click.option("--note", default="", help="A line for the header of the expected-results list.")
@click.option("--blinkroot-flag", "blinkroot_flags", metavar="F", multiple=True,
              help="Flag passed to blinkroot for emulated runs (repeatable), e.g. -s.")
@click.option("--blinkroot", "blinkroot_cmd", metavar="CMD",
              help="Command that runs blinkroot (default: this Python's -m blinkroot).")
@click.option("--env", "env", metavar="NAME=VALUE", multiple=True,
              help="Environment variable for every run (repeatable), e.g. LTP_TIMEOUT_MUL=10.")
@click.option("--native-only", is_flag=True, help="Do not run emulated.")
@click.option("--emulated-only", is_flag=True, help="Do not run natively.")
@click.option("--keep-work", is_flag=True, help="Keep each run's scratch directory under OUT/work.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines.")
@click.option("--from-json", metavar="FILE", type=click.Path(exists=True, dir_okay=False),
              help="Run nothing: rewrite the reports beside an earlier results.json (and "
                   "compare with --expected).")
def command(ltp_prefix, ltp_runtest, libc_test, libc_test_runtest, jobs, timeout, filter_re, limit,
            out_dir, expected, save_expected, note, blinkroot_flags, blinkroot_cmd, env,
            native_only, emulated_only, keep_work, quiet, from_json):
    """Run LTP and libc-test natively and under blinkroot; report the differences."""
    if from_json:
        results, meta = report.load_results(from_json)
        _finish(Path(from_json).resolve().parent, results, meta, meta.get("revisions", {}),
                expected, save_expected, note)
    if not ltp_prefix and not libc_test:
        raise click.UsageError("give --ltp PREFIX and/or --libc-test DIR")
    if native_only and emulated_only:
        raise click.UsageError("--native-only and --emulated-only exclude each other")
    extra_env = {}
    for item in env:
        if "=" not in item:
            raise click.UsageError(f"--env {item}: want NAME=VALUE")
        k, v = item.split("=", 1)
        extra_env[k] = v
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    cfg = runner.Config(out_dir=out, timeout=timeout, jobs=jobs,
                        blinkroot_flags=list(blinkroot_flags), env=extra_env, keep_work=keep_work)
    if blinkroot_cmd:
        import shlex
        cfg.blinkroot_cmd = shlex.split(blinkroot_cmd)
    if native_only:
        cfg.modes = (runner.NATIVE,)
    elif emulated_only:
        cfg.modes = (runner.EMULATED,)

    tests, revisions = [], {}
    try:
        if ltp_prefix:
            tests += layouts.find_ltp_tests(ltp_prefix, ltp_runtest or ("syscalls",))
            revisions[layouts.LTP] = layouts.ltp_revision(Path(ltp_prefix))
        if libc_test:
            tests += layouts.find_libc_tests(libc_test, use_runtest=libc_test_runtest, timeout=timeout)
            revisions[layouts.LIBC_TEST] = layouts.libc_test_revision(Path(libc_test))
    except FileNotFoundError as e:
        raise click.UsageError(str(e))
    if filter_re:
        try:
            rx = re.compile(filter_re)
        except re.error as e:
            raise click.UsageError(f"--filter: {e}")
        tests = [t for t in tests if rx.search(t.id)]
    if limit:
        tests = tests[:limit]
    if not tests:
        click.echo("blinkroot suite: no tests found", err=True)

    def progress(done, total, r):
        if not quiet:
            click.echo(runner.progress_line(done, total, r), err=True)

    results = runner.run_tests(cfg, tests, progress)
    _finish(out, results, report.meta_for(cfg, revisions), revisions, expected, save_expected, note)


def _finish(out, results, meta, revisions, expected, save_expected, note):
    """Write the reports, print the summary and exit."""
    comparison = report.compare(results, report.read_expected(expected)) if expected else None
    text = report.text_report(out, results, meta, comparison)
    (out / "report.txt").write_text(text)
    (out / "results.json").write_text(report.json_report(results, meta, comparison))
    (out / "junit.xml").write_text(report.junit_xml(out, results, meta))
    exp = report.expected_text(results, revisions, note)
    (out / "expected.txt").write_text(exp)
    if save_expected:
        Path(save_expected).write_text(exp)

    # the summary on stdout: totals, work list size, regressions
    click.echo("\n".join(report.totals_table(report.totals(results))))
    wl = report.work_list(results)
    click.echo(f"pass natively, not emulated: {len(wl)} (see {out / 'report.txt'})")
    if comparison is not None:
        click.echo(f"regressions: {len(comparison.regressions)}, improvements: "
                   f"{len(comparison.improvements)}, new: {len(comparison.new)}")
        for tid, was, now in comparison.regressions:
            click.echo(f"REGRESSION {tid}: {was} -> {now}")
        if comparison.regressions:
            sys.exit(1)
    sys.exit(0)


def main(argv=None):
    import signal

    def on_term(signum, _frame):
        runner.kill_running()
        sys.exit(128 + signum)
    signal.signal(signal.SIGTERM, on_term)
    try:
        command.main(args=argv, prog_name="blinkroot suite")
    except KeyboardInterrupt:
        runner.kill_running()
        sys.exit(130)
