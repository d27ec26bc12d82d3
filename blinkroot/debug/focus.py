"""Focus sets: which processes and threads of a debugged tree a command acts on.

The syntax is that of the inferior/thread sets (ITSET) proposed for gdb: inferiors are
numbered as gdb numbers them (i1 is the first process, then in order of appearance), and
threads per inferior (t1 is an inferior's first thread).

    all             every live thread of every process
    stopped         the stopped threads;  running  the running ones
    i2              every thread of inferior 2;  i1-3  inferiors 1 to 3;  i*  all
    i1.t2           thread 2 of inferior 1;  i1.t1-4  threads 1 to 4;  i2.t*
    t3              thread 3 of the current inferior
    p1234           the process whose pid is 1234
    A,B             union;  A&B  intersection (binds tighter than ,);  ~A  complement

A set is kept as text and evaluated when used (a dynamic set: `i2` covers the threads
inferior 2 has at that moment, `all` includes processes forked since).
"""

import re
from dataclasses import dataclass, field


class FocusError(ValueError):
    pass


def _range(text, what):
    """'3' -> (3, 3); '1-4' -> (1, 4); '*' -> (1, inf)."""
    if text == "*":
        return 1, float("inf")
    m = re.fullmatch(r"(\d+)(?:-(\d+))?", text)
    if not m:
        raise FocusError(f"bad {what} number {text!r}")
    lo = int(m.group(1))
    hi = int(m.group(2)) if m.group(2) else lo
    if hi < lo:
        raise FocusError(f"empty range {text!r}")
    return lo, hi


def _atom(text):
    """A predicate (inferior, thread, current inferior) -> bool for one atom."""
    t = text.strip()
    if not t:
        raise FocusError("empty set")
    if t.startswith("~"):
        inner = _atom(t[1:])
        return lambda inf, th, cur: not inner(inf, th, cur)
    if t in ("all", "*"):
        return lambda inf, th, cur: True
    if t == "stopped":
        return lambda inf, th, cur: th.state == "stopped"
    if t == "running":
        return lambda inf, th, cur: th.state == "running"
    m = re.fullmatch(r"p(\d+)", t)
    if m:
        pid = int(m.group(1))
        return lambda inf, th, cur: inf.pid == pid
    m = re.fullmatch(r"i([0-9*-]+)(?:\.t([0-9*-]+))?", t)
    if m:
        ilo, ihi = _range(m.group(1), "inferior")
        tlo, thi = _range(m.group(2), "thread") if m.group(2) else (1, float("inf"))
        return lambda inf, th, cur: ilo <= inf.num <= ihi and tlo <= th.num <= thi
    m = re.fullmatch(r"t([0-9*-]+)", t)
    if m:
        tlo, thi = _range(m.group(1), "thread")
        return lambda inf, th, cur: inf is cur and tlo <= th.num <= thi
    raise FocusError(f"not a set: {t!r} (try i1, i1.t2, i1.t1-4, i2, stopped, all)")


class FocusSet:
    def __init__(self, text):
        self.text = text.strip() or "all"
        self.terms = []         # union of intersections of atoms
        for part in self.text.split(","):
            self.terms.append([_atom(a) for a in part.split("&")])

    @classmethod
    def parse(cls, text):
        return cls(text)

    def __str__(self):
        return self.text

    def __repr__(self):
        return f"FocusSet({self.text!r})"

    def matches(self, inf, th, cur=None):
        return any(all(p(inf, th, cur) for p in term) for term in self.terms)

    def select(self, inferiors, cur=None):
        """[(inferior, thread)] of the live threads in the set."""
        return [(inf, th) for inf in inferiors if inf.alive
                for th in inf.live_threads() if self.matches(inf, th, cur)]

    def may_include(self, inf, cur=None):
        """Could a thread of inf be in the set (now or later)?  For scoping breakpoints:
        each thread is checked again when it hits."""
        probe = [ThreadState(num=n, tid=0, state=s) for n in (1, 2, 3, 4, 5, 6, 7, 8)
                 for s in ("stopped", "running")]
        return any(self.matches(inf, th, cur) for th in list(inf.live_threads()) + probe)


@dataclass
class ThreadState:
    num: int
    tid: int
    state: str = "stopped"      # stopped, running, exited
    rip: int = None
    where: str = ""


@dataclass
class Inferior:
    num: int
    pid: int
    program: str
    symbols: object = None
    libraries: bytes = None
    state: str = "stopped"          # stopped, running, exited
    exit_text: str = ""
    parent: int = None              # the parent inferior's number
    threads: dict = field(default_factory=dict)     # tid -> ThreadState
    bp_addrs: dict = field(default_factory=dict)    # address -> {breakpoint number}
    next_thread: int = 1

    @property
    def alive(self):
        return self.state != "exited"

    def live_threads(self):
        return [t for t in self.threads.values() if t.state != "exited"]

    def thread(self, tid):
        """The thread's state, numbered on first sight."""
        th = self.threads.get(tid)
        if th is None:
            th = self.threads[tid] = ThreadState(num=self.next_thread, tid=tid)
            self.next_thread += 1
        return th

    def summary(self):
        if not self.alive:
            return "exited" + (f" ({self.exit_text})" if self.exit_text else "")
        states = {t.state for t in self.live_threads()}
        return "running" if states == {"running"} else \
            "stopped" if states <= {"stopped"} else "partly running"


@dataclass
class BreakSpec:
    """A breakpoint as the user gave it: where (symbol or address), in which set, and
    for break-exec the program whose processes get it when they exec it."""
    num: int
    where: str
    scope: FocusSet = None
    exec_path: str = None

    def describe(self):
        s = f"{self.num}: {self.where}"
        if self.scope is not None:
            s += f" in {self.scope}"
        if self.exec_path:
            s += f" (after exec of {self.exec_path})"
        return s


POLICIES = ("thread", "process", "all")
