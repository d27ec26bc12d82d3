"""`blinkroot suite` on a tiny fake LTP prefix and libc-test tree.

The fake suites are built here, in a temporary directory, from the C sources
below, in the layouts of the real ones (LTP: testcases/bin and
runtest/syscalls; libc-test: src/DIR/NAME.exe and NAME-static.exe). The
emulated runs go through a wrapper around `python -m blinkroot` that sets
FAKE_EMULATED=1, so that one test ("differs") passes natively and fails
emulated whatever blinkroot can do."""

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import guestlib
from blinkroot.suite import layouts, runner

SOURCES = {
    "pass": r"""
        int main(void) { return 0; }
    """,
    "fail": r"""
        #include <stdio.h>
        int main(void) { printf("fake: TFAIL: it failed: EINVAL (22)\n"); return 1; }
    """,
    "conf": r"""
        #include <stdio.h>
        int main(void) { printf("fake: TCONF: not configured\n"); return 32; }
    """,
    "brok": r"""
        int main(void) { return 2 | 32; }
    """,
    "hang": r"""
        #include <unistd.h>
        int main(void) { for (;;) pause(); }
    """,
    "args": r"""
        #include <stdlib.h>
        #include <string.h>
        int main(int argc, char **argv) {
            const char *root = getenv("LTPROOT"), *path = getenv("PATH");
            if (argc != 3 || strcmp(argv[0], "fake_args") || strcmp(argv[1], "-a")
                || strcmp(argv[2], "b c"))
                return 1;
            if (!root || !path || !strstr(path, "/testcases/bin"))
                return 1;
            return 0;
        }
    """,
    "differs": r"""
        #include <stdio.h>
        #include <stdlib.h>
        int main(void) {
            if (getenv("FAKE_EMULATED")) { printf("fake: TBROK: emulated: ENOSYS (38)\n"); return 2; }
            return 0;
        }
    """,
    "segv": r"""
        #include <signal.h>
        int main(void) { raise(SIGSEGV); return 0; }
    """,
}

TIMEOUT = 4


def _compile(toolchain, name, out: Path):
    src = out.parent / f"{name}.src.c"
    src.write_text(SOURCES[name])
    cmd = guestlib.TOOLCHAINS[toolchain] + ["-o", str(out), str(src)]
    subprocess.run(cmd, check=True, capture_output=True)
    src.unlink()


@pytest.fixture(scope="module")
def fake_suites(tmp_path_factory):
    toolchain = next((n for n in guestlib.TOOLCHAINS if guestlib.toolchain_available(n)), None)
    if toolchain is None:
        pytest.skip("no C toolchain for guest programs is installed")
    top = tmp_path_factory.mktemp("suites")
    # LTP install prefix
    ltp = top / "ltp"
    bindir = ltp / "testcases" / "bin"
    bindir.mkdir(parents=True)
    (ltp / "runtest").mkdir()
    (ltp / "Version").write_text("fake-ltp-1\n")
    built = {}
    for name in SOURCES:
        exe = bindir / f"fake_{name}"
        _compile(toolchain, name, exe)
        built[name] = exe
    (ltp / "runtest" / "syscalls").write_text(
        "#DESCRIPTION:fake syscalls\n"
        "pass01 fake_pass\n"
        "\n"
        "fail01 fake_fail\n"
        "conf01 fake_conf\n"
        "brok01 fake_brok\n"
        "hang01 fake_hang\n"
        "args01 fake_args -a 'b c'\n"       # shell quoting: runs under /bin/sh
        "differs01 fake_differs\n"
        "settimeofday01 fake_pass\n"        # machine-wide by its name
        "missing01 fake_not_built\n"
    )
    # libc-test tree
    lt = top / "libc-test"
    for d in ("functional", "regression", "math", "common", "api"):
        (lt / "src" / d).mkdir(parents=True)
    import shutil
    for dst, name in (("functional/ok.exe", "pass"), ("functional/ok-static.exe", "pass"),
                      ("functional/bad.exe", "fail"), ("functional/bad-static.exe", "fail"),
                      ("regression/rlimit-open-files-static.exe", "pass"),
                      ("math/crash.exe", "segv"), ("math/differs.exe", "differs"),
                      ("common/runtest.exe", "pass"), ("api/main.exe", "fail")):
        shutil.copy(built[name], lt / "src" / dst)
    (lt / "src" / "functional" / "nolink.exe.ld.err").write_text("undefined reference\n")
    (lt / "REVISION").write_text("fake-libc-test-1\n")
    # the emulated runs: real blinkroot, with FAKE_EMULATED=1 in the guest's environment
    wrapper = top / "emulate"
    wrapper.write_text(f"#!/bin/sh\nFAKE_EMULATED=1 exec {sys.executable} -m blinkroot \"$@\"\n")
    wrapper.chmod(0o755)
    return dict(ltp=ltp, libc_test=lt, wrapper=wrapper, top=top)


def run_suite(fake, out, *extra):
    env = dict(os.environ, PYTHONPATH=str(guestlib.REPO_ROOT))
    cmd = [sys.executable, "-m", "blinkroot", "suite", "--ltp", str(fake["ltp"]),
           "--libc-test", str(fake["libc_test"]), "--timeout", str(TIMEOUT), "--jobs", "2",
           "--out", str(out), "--blinkroot", str(fake["wrapper"])] + list(extra)
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def first_run(fake_suites):
    out = fake_suites["top"] / "out"
    r = run_suite(fake_suites, out, "--save-expected", str(fake_suites["top"] / "saved.txt"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    return r, out, json.loads((out / "results.json").read_text())


EXPECTED = {
    # id: (native, emulated); emulated runs under real blinkroot, so only the
    # programs whose result does not depend on blinkroot's coverage are listed
    "ltp/pass01": ("PASS", "PASS"),
    "ltp/fail01": ("FAIL", "FAIL"),
    "ltp/conf01": ("SKIP", "SKIP"),
    "ltp/brok01": ("FAIL", "FAIL"),
    "ltp/hang01": ("TIMEOUT", "TIMEOUT"),
    "ltp/args01": ("PASS", None),
    "ltp/differs01": ("PASS", "FAIL"),
    "ltp/settimeofday01": ("PASS", "PASS"),
    "ltp/missing01": ("SKIP", "SKIP"),
    "libc-test/functional/ok": ("PASS", "PASS"),
    "libc-test/functional/ok-static": ("PASS", "PASS"),
    "libc-test/functional/bad": ("FAIL", "FAIL"),
    "libc-test/functional/bad-static": ("FAIL", "FAIL"),
    "libc-test/functional/nolink": ("SKIP", "SKIP"),
    "libc-test/regression/rlimit-open-files-static": ("PASS", "PASS"),
    "libc-test/math/crash": ("FAIL", "FAIL"),
    "libc-test/math/differs": ("PASS", "FAIL"),
}


def test_statuses(first_run):
    _, _, doc = first_run
    tests = {t["id"]: t for t in doc["tests"]}
    assert set(tests) == set(EXPECTED)          # common/ and api/ are not tests
    for tid, (native, emulated) in EXPECTED.items():
        assert tests[tid]["native"]["status"] == native, (tid, tests[tid])
        if emulated:
            assert tests[tid]["emulated"]["status"] == emulated, (tid, tests[tid])
    assert tests["ltp/conf01"]["native"]["detail"] == "TCONF"
    assert tests["ltp/brok01"]["native"]["detail"] == "TBROK|TCONF"
    assert tests["ltp/fail01"]["native"]["returncode"] == 1
    assert tests["libc-test/math/crash"]["native"]["detail"] == "killed by SIGSEGV"
    assert "not built" in tests["ltp/missing01"]["native"]["detail"]
    assert "link failed" in tests["libc-test/functional/nolink"]["emulated"]["detail"]
    assert doc["meta"]["revisions"] == {"ltp": "fake-ltp-1", "libc-test": "fake-libc-test-1"}


def test_machine_wide_run_alone_and_last(first_run):
    r, _, doc = first_run
    wide = {t["id"] for t in doc["tests"] if t["machine_wide"]}
    assert wide == {"ltp/settimeofday01", "libc-test/regression/rlimit-open-files-static"}
    progress = [l for l in r.stderr.splitlines() if l.startswith("[")]
    assert len(progress) == len(EXPECTED)
    assert progress[-1].startswith(f"[{len(EXPECTED)}/{len(EXPECTED)}] ")
    assert {l.split()[1] for l in progress[-2:]} == wide
    assert all("(serial)" in l for l in progress[-2:])
    line = next(l for l in progress if " ltp/differs01 " in l)
    assert "native PASS emulated FAIL" in line and line.endswith("s")


def test_text_report_and_work_list(first_run):
    r, out, doc = first_run
    assert sorted(doc["work_list"]) == ["libc-test/math/differs", "ltp/differs01"]
    text = (out / "report.txt").read_text()
    assert "revision ltp: fake-ltp-1" in text
    section = text.split("the list to work on", 1)[1].split("All tests", 1)[0]
    assert "ltp/differs01" in section and "ltp/pass01" not in section
    assert "TBROK: emulated: ENOSYS (38)" in section
    assert "TBROK: ENOSYS" in section                 # the categories
    assert doc["totals"]["ltp"]["native"]["TIMEOUT"] == 1
    assert "ltp          native" in r.stdout          # the totals on stdout
    for tid in EXPECTED:
        assert tid in text


def test_junit(first_run):
    _, out, _ = first_run
    root = ET.parse(out / "junit.xml").getroot()
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert set(suites) == {"ltp", "libc-test"}
    ltp = suites["ltp"]
    assert ltp.get("tests") == "9"
    cases = {c.get("name"): c for c in ltp.iter("testcase")}
    assert cases["differs01"].find("failure") is not None
    assert cases["pass01"].find("failure") is None and cases["pass01"].find("skipped") is None
    assert cases["conf01"].find("skipped") is not None
    # fails natively too: not blinkroot's failure
    assert cases["fail01"].find("skipped") is not None
    assert ltp.find("properties/property[@name='revision']").get("value") == "fake-ltp-1"


def test_expected_list_and_regressions(fake_suites, first_run):
    saved = (fake_suites["top"] / "saved.txt").read_text()
    assert "# revision ltp: fake-ltp-1" in saved
    assert any(l.split() == ["ltp/differs01", "PASS", "FAIL"] for l in saved.splitlines())
    # an expected list in which differs01 passed emulated and pass01 failed
    lines = []
    for l in saved.splitlines():
        parts = l.split()
        if parts and parts[0] == "ltp/differs01":
            l = "ltp/differs01 PASS PASS"
        elif parts and parts[0] == "ltp/pass01":
            l = "ltp/pass01 PASS FAIL"
        elif parts and parts[0] == "libc-test/functional/ok":
            continue                                    # a new test
        lines.append(l)
    lines.append("ltp/gone01 PASS PASS")                # not run any more
    exp = fake_suites["top"] / "expected.txt"
    exp.write_text("\n".join(lines) + "\n")
    out = fake_suites["top"] / "out2"
    r = run_suite(fake_suites, out, "--expected", str(exp), "--filter", "^ltp/(differs|pass)|functional/ok$")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "REGRESSION ltp/differs01: PASS -> FAIL" in r.stdout
    doc = json.loads((out / "results.json").read_text())
    comp = doc["comparison"]
    assert comp["regressions"] == [["ltp/differs01", "PASS", "FAIL"]]
    assert comp["improvements"] == [["ltp/pass01", "FAIL", "PASS"]]
    assert comp["new"] == ["libc-test/functional/ok"]
    assert "REGRESSION  ltp/differs01" in (out / "report.txt").read_text()
    # the same run against its own results: no regression, exit 0
    r = run_suite(fake_suites, fake_suites["top"] / "out3", "--expected", str(out / "expected.txt"),
                  "--filter", "^ltp/(differs|pass)|functional/ok$")
    assert r.returncode == 0, r.stdout + r.stderr


# ---- units ----------------------------------------------------------------------


def test_parse_runtest_and_shell_commands(tmp_path):
    text = "#c\n\nread01 read01\nfork06 fork_procs -n 1000\nx01 cd /tmp && x01\n"
    assert list(layouts.parse_runtest(text)) == [
        ("read01", "read01"), ("fork06", "fork_procs -n 1000"), ("x01", "cd /tmp && x01")]
    (tmp_path / "testcases" / "bin").mkdir(parents=True)
    (tmp_path / "runtest").mkdir()
    (tmp_path / "runtest" / "syscalls").write_text(text)
    tests = {t.name: t for t in layouts.find_ltp_tests(tmp_path)}
    assert tests["fork06"].argv == ["fork_procs", "-n", "1000"] and tests["fork06"].shell is None
    assert tests["x01"].shell == "cd /tmp && x01"
    assert tests["read01"].missing and tests["read01"].env["LTPROOT"] == str(tmp_path.resolve())


@pytest.mark.parametrize("rc,status,detail", [
    (0, "PASS", ""), (32, "SKIP", "TCONF"), (1, "FAIL", "TFAIL"), (2, "FAIL", "TBROK"),
    (4, "FAIL", "TWARN"), (33, "FAIL", "TFAIL|TCONF"), (-9, "FAIL", "killed by SIGKILL"),
    (127, "FAIL", "exit 127 (could not execute)"), (70, "FAIL", "exit 70"),
])
def test_classify_ltp(rc, status, detail):
    assert runner.classify("ltp", rc) == (status, detail)


def test_classify_libc_test():
    assert runner.classify("libc-test", 0) == ("PASS", "")
    assert runner.classify("libc-test", 32) == ("FAIL", "status 32")


@pytest.mark.parametrize("name,wide", [
    ("settimeofday01", True), ("clock_settime03", True), ("umount2_02", True), ("mount01", True),
    ("setrlimit06", True), ("sethostname01", True), ("swapon01", True), ("adjtimex02", True),
    ("regression/rlimit-open-files", True), ("read01", False), ("mountx", False),
    ("clock_gettime01", False), ("getrlimit01", False), ("functional/setjmp", False),
])
def test_machine_wide_names(name, wide):
    t = layouts.Test(suite="ltp", name=name, argv=[name], program=None)
    assert runner.is_machine_wide(t) is wide


def test_suite_word_only_when_not_a_path(tmp_path):
    """`blinkroot suite` is the subcommand; `blinkroot ./suite` runs a guest named suite."""
    env = dict(os.environ, PYTHONPATH=str(guestlib.REPO_ROOT))
    r = subprocess.run([sys.executable, "-m", "blinkroot", "suite", "--help"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0 and "--libc-test" in r.stdout
    r = subprocess.run([sys.executable, "-m", "blinkroot", "suite"], capture_output=True, text=True,
                       env=env)
    assert r.returncode == 2 and "--ltp" in r.stderr
    r = subprocess.run([sys.executable, "-m", "blinkroot", "./suite"], capture_output=True,
                       text=True, env=env, cwd=tmp_path)
    assert r.returncode == 127 and "suite" in r.stderr


def test_from_json_rewrites_reports(fake_suites, first_run):
    _, out, doc = first_run
    env = dict(os.environ, PYTHONPATH=str(guestlib.REPO_ROOT))
    copy = fake_suites["top"] / "again"
    import shutil
    shutil.copytree(out, copy)
    (copy / "report.txt").unlink()
    r = subprocess.run([sys.executable, "-m", "blinkroot", "suite", "--from-json",
                        str(copy / "results.json")], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert "ltp/differs01" in (copy / "report.txt").read_text()
    assert json.loads((copy / "results.json").read_text())["work_list"] == doc["work_list"]
