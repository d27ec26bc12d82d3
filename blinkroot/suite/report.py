"""Reports of a suite run: text, JSON, JUnit XML, expected-results lists.

Expected-results file (one test a line, ``#`` comments; the header lines
``# revision SUITE: REV`` record what was measured)::

    # revision ltp: 20260529-222-g695827725
    ltp/read01          PASS     FAIL
    <test id>           <native> <emulated>

Comparing a run with such a file: a test regressed when its emulated status
got worse (PASS > SKIP > FAIL = TIMEOUT), improved when it got better; tests
of the file that were not run (filtered out) are not compared.
"""

import json
import re
import time
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from .runner import EMULATED, FAIL, MODES, NATIVE, PASS, SKIP, STATUSES, TIMEOUT, TestResult

RANK = {PASS: 2, SKIP: 1, FAIL: 0, TIMEOUT: 0}


def _status(r: TestResult, mode: str) -> Optional[str]:
    rr = getattr(r, mode)
    return rr.status if rr else None


def totals(results: List[TestResult]) -> Dict[str, Dict[str, Dict[str, int]]]:
    """{suite: {mode: {status: count}}}, with an "all" suite."""
    out: Dict[str, Dict[str, Dict[str, int]]] = {}
    for r in results:
        for suite in (r.test.suite, "all"):
            s = out.setdefault(suite, {m: {st: 0 for st in STATUSES} for m in MODES})
            for m in MODES:
                st = _status(r, m)
                if st:
                    s[m][st] += 1
    return out


def work_list(results: List[TestResult]) -> List[TestResult]:
    """Tests that pass natively but not emulated: what to fix next."""
    return [r for r in results if _status(r, NATIVE) == PASS and _status(r, EMULATED) not in (None, PASS)]


_LTP_MSG = re.compile(r"\bT(FAIL|BROK)\s*:?\s*(.*)")
_ERRNO = re.compile(r"\b(E[A-Z0-9]{2,})\b")


def failure_reason(out_dir: Path, r: TestResult) -> str:
    """A short reason for an emulated failure, from its log."""
    rr = r.emulated
    if rr is None:
        return ""
    if rr.unsupported:
        return "ENOSYS: " + ", ".join(rr.unsupported)
    if rr.status == TIMEOUT:
        return "timeout"
    try:
        text = (out_dir / rr.log).read_text(errors="replace") if rr.log else ""
    except OSError:
        text = ""
    for line in text.splitlines():
        m = _LTP_MSG.search(line)
        if m:
            return f"T{m.group(1)}: {m.group(2).strip()[:160]}"
    for line in text.splitlines():
        if line.strip() and not line.startswith("tst_"):
            return line.strip()[:160]
    return rr.detail


def _reason_kind(reason: str) -> str:
    """'src/math/log.h:11: bad fp exception: RN log(0)...' -> 'bad fp exception'."""
    line = re.sub(r"^\S+:\d+:\s*", "", reason)
    head = line.split(":", 1)[0]
    if 0 < len(head) <= 48 and head != line:
        return head
    line = re.sub(r'"[^"]*"', "S", line)
    line = re.sub(r"0x[0-9a-fA-Fp+.-]+|[-+]?\b\d[\w.+-]*", "N", line)
    line = re.sub(r"\b[A-Za-z_]\w*\(", "F(", line)
    return " ".join(line.split()[:6])


def failure_categories(out_dir: Path, results: List[TestResult]) -> List[Tuple[str, int]]:
    """Most common causes among the work list: unsupported syscalls, errnos, signals."""
    c: Counter = Counter()
    for r in work_list(results):
        rr = r.emulated
        if rr.unsupported:
            for name in rr.unsupported:
                c[f"unsupported syscall {name}"] += 1
            continue
        if rr.status == TIMEOUT:
            c["timeout"] += 1
            continue
        if rr.detail.startswith("killed by"):
            c[rr.detail] += 1
            continue
        reason = failure_reason(out_dir, r)
        m = _ERRNO.search(reason)
        if m:
            c[f"{rr.detail}: {m.group(1)}"] += 1
        elif reason and reason != rr.detail:
            c[_reason_kind(reason)] += 1
        else:
            c[rr.detail or "fail"] += 1
    return c.most_common()


# ---- expected-results lists -------------------------------------------------------


def expected_text(results: List[TestResult], revisions: Dict[str, str], note: str = "") -> str:
    lines = ["# blinkroot suite expected results: <test> <native status> <emulated status>"]
    for suite, rev in sorted(revisions.items()):
        lines.append(f"# revision {suite}: {rev or 'unknown'}")
    if note:
        for n in note.splitlines():
            lines.append(f"# {n}")
    for r in sorted(results, key=lambda r: r.test.id):
        lines.append(f"{r.test.id:<48} {_status(r, NATIVE) or '-':<8} {_status(r, EMULATED) or '-'}")
    return "\n".join(lines) + "\n"


def read_expected(path) -> Dict[str, Tuple[str, str]]:
    out = {}
    for raw in Path(path).read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) == 2:          # <test> <emulated>
            out[parts[0]] = ("-", parts[1])
        elif len(parts) >= 3:
            out[parts[0]] = (parts[1], parts[2])
    return out


@dataclass
class Comparison:
    regressions: List[Tuple[str, str, str]] = field(default_factory=list)   # id, was, now
    improvements: List[Tuple[str, str, str]] = field(default_factory=list)
    native_changes: List[Tuple[str, str, str]] = field(default_factory=list)
    new: List[str] = field(default_factory=list)
    not_run: int = 0

    def to_dict(self):
        return dict(regressions=self.regressions, improvements=self.improvements,
                    native_changes=self.native_changes, new=self.new, not_run=self.not_run)


def compare(results: List[TestResult], expected: Dict[str, Tuple[str, str]]) -> Comparison:
    c = Comparison()
    ran = set()
    for r in results:
        tid = r.test.id
        ran.add(tid)
        if tid not in expected:
            c.new.append(tid)
            continue
        was_native, was = expected[tid]
        now = _status(r, EMULATED)
        if now and was in RANK and now != was:
            if RANK[now] < RANK[was]:
                c.regressions.append((tid, was, now))
            elif RANK[now] > RANK[was]:
                c.improvements.append((tid, was, now))
        now_native = _status(r, NATIVE)
        if now_native and was_native in RANK and now_native != was_native:
            c.native_changes.append((tid, was_native, now_native))
    c.not_run = len(set(expected) - ran)
    return c


# ---- text, JSON, JUnit ------------------------------------------------------------


def totals_table(tot) -> List[str]:
    lines = [f"{'suite':<12} {'mode':<9} " + " ".join(f"{s:>7}" for s in STATUSES) + f" {'total':>7}"]
    for suite in sorted(tot, key=lambda s: (s == "all", s)):
        for m in MODES:
            counts = tot[suite][m]
            n = sum(counts.values())
            if n == 0:
                continue
            lines.append(f"{suite:<12} {m:<9} " + " ".join(f"{counts[s]:>7}" for s in STATUSES)
                         + f" {n:>7}")
    return lines


def text_report(out_dir: Path, results: List[TestResult], meta: dict,
                comparison: Optional[Comparison] = None) -> str:
    L = ["blinkroot suite report", ""]
    for k in ("date", "blinkroot", "host", "timeout", "jobs", "blinkroot_flags"):
        if k in meta:
            L.append(f"{k}: {meta[k]}")
    for suite, rev in sorted(meta.get("revisions", {}).items()):
        L.append(f"revision {suite}: {rev or 'unknown'}")
    L += ["", "Totals", ""] + totals_table(totals(results))
    wl = work_list(results)
    L += ["", f"Pass natively, not emulated ({len(wl)}): the list to work on", ""]
    for r in wl:
        L.append(f"  {r.test.id:<44} {r.emulated.status:<7} {failure_reason(out_dir, r)}")
    cats = failure_categories(out_dir, results)
    if cats:
        L += ["", "Most common causes among them", ""]
        L += [f"  {n:>5}  {what}" for what, n in cats[:30]]
    if comparison is not None:
        L += ["", f"Compared with the expected results: {len(comparison.regressions)} regressions, "
                  f"{len(comparison.improvements)} improvements, {len(comparison.new)} new tests, "
                  f"{comparison.not_run} expected tests not run", ""]
        for tid, was, now in comparison.regressions:
            L.append(f"  REGRESSION  {tid:<44} {was} -> {now}")
        for tid, was, now in comparison.improvements:
            L.append(f"  improved    {tid:<44} {was} -> {now}")
        for tid, was, now in comparison.native_changes:
            L.append(f"  native      {tid:<44} {was} -> {now}")
    L += ["", "All tests", "", f"  {'test':<44} {'native':<8} {'emulated':<8} details"]
    for r in results:
        n, e = r.native, r.emulated
        det = "; ".join(f"{m}: {x.detail}" for m, x in ((NATIVE, n), (EMULATED, e)) if x and x.detail)
        flag = " (serial)" if r.test.machine_wide else ""
        L.append(f"  {r.test.id:<44} {n.status if n else '-':<8} {e.status if e else '-':<8} {det}{flag}")
    return "\n".join(L) + "\n"


def json_report(results: List[TestResult], meta: dict, comparison: Optional[Comparison] = None) -> str:
    doc = dict(meta=meta, totals=totals(results),
               work_list=[r.test.id for r in work_list(results)],
               tests=[r.to_dict() for r in results])
    if comparison is not None:
        doc["comparison"] = comparison.to_dict()
    return json.dumps(doc, indent=1)


def _tail(out_dir: Path, rel: str, limit: int = 4000) -> str:
    if not rel:
        return ""
    try:
        data = (out_dir / rel).read_bytes()
    except OSError:
        return ""
    return data[-limit:].decode(errors="replace")


def junit_xml(out_dir: Path, results: List[TestResult], meta: dict) -> str:
    """One <testsuite> per suite, one <testcase> per test, judged emulated.

    A test fails when it runs worse emulated than natively (PASS natively, FAIL
    or TIMEOUT emulated: an error for a timeout); it is skipped when it was
    skipped emulated, or fails natively too."""
    root = ET.Element("testsuites", name="blinkroot suite")
    by_suite: Dict[str, List[TestResult]] = {}
    for r in results:
        by_suite.setdefault(r.test.suite, []).append(r)
    for suite, rs in by_suite.items():
        ts = ET.SubElement(root, "testsuite", name=suite)
        props = ET.SubElement(ts, "properties")
        ET.SubElement(props, "property", name="revision", value=meta.get("revisions", {}).get(suite, ""))
        counts = Counter()
        total_time = 0.0
        for r in rs:
            e, n = r.emulated, r.native
            t = e.duration if e else 0.0
            total_time += t
            tc = ET.SubElement(ts, "testcase", classname=suite, name=r.test.name, time=f"{t:.3f}")
            native_status = n.status if n else None
            if e is None:
                ET.SubElement(tc, "skipped", message="not run emulated")
                counts["skipped"] += 1
            elif e.status == PASS:
                pass
            elif e.status == SKIP:
                ET.SubElement(tc, "skipped", message=e.detail or "TCONF")
                counts["skipped"] += 1
            elif native_status not in (None, PASS):
                ET.SubElement(tc, "skipped",
                              message=f"{e.status} emulated, {native_status} natively too")
                counts["skipped"] += 1
            else:
                tag = "error" if e.status == TIMEOUT else "failure"
                el = ET.SubElement(tc, tag, message=f"{e.status} emulated ({e.detail}), "
                                   f"{native_status or 'not run'} natively", type=e.status)
                el.text = failure_reason(out_dir, r)
                counts["errors" if tag == "error" else "failures"] += 1
                ET.SubElement(tc, "system-out").text = _tail(out_dir, e.log)
        ts.set("tests", str(len(rs)))
        ts.set("failures", str(counts["failures"]))
        ts.set("errors", str(counts["errors"]))
        ts.set("skipped", str(counts["skipped"]))
        ts.set("time", f"{total_time:.3f}")
    ET.indent(root) if hasattr(ET, "indent") else None
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def load_results(path) -> Tuple[List[TestResult], dict]:
    """The results and meta of a results.json written by an earlier run."""
    from .layouts import Test
    from .runner import RunResult
    doc = json.loads(Path(path).read_text())
    results = []
    for t in doc["tests"]:
        test = Test(suite=t["suite"], name=t["name"], argv=[], program=None,
                    machine_wide=t.get("machine_wide", False), command=t.get("command", ""))
        r = TestResult(test)
        for m in MODES:
            if t.get(m):
                setattr(r, m, RunResult(**t[m]))
        results.append(r)
    return results, doc.get("meta", {})


def meta_for(cfg, revisions: Dict[str, str]) -> dict:
    import os
    from .. import __version__
    return dict(date=time.strftime("%Y-%m-%d %H:%M:%S %z"), blinkroot=__version__,
                host=" ".join(os.uname()[i] for i in (0, 2, 4)), timeout=cfg.timeout,
                jobs=cfg.jobs, blinkroot_flags=" ".join(cfg.blinkroot_flags),
                revisions=revisions)
