"""blinkenlights on a tree of processes (headless, textual's Pilot): the process panel,
focus sets (ITSET syntax), scoped breakpoints, the stop policy, break-exec in a pipeline."""

import asyncio
import shutil
import subprocess
import time

import pytest

pytest.importorskip("textual")

from test_blinkenlights import make_app, settle

FORK = r"""
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
int work(int x) { return x + 1; }
int child_work(int x) { return x * 2; }
int parent_work(int x) { return x - 1; }
int main(int argc, char **argv) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        child_work(21);
        work(1);
        _exit(42);
    }
    parent_work(1);
    struct timespec ts = {0, 500000000};
    nanosleep(&ts, 0);
    write(1, "parent alive\n", 13);
    work(2);
    int status = 0;
    waitpid(pid, &status, 0);
    printf("parent: child exited %d\n", WEXITSTATUS(status));
    return 5;
}
"""

PIPE_A = r"""
#include <stdio.h>
int main(void) { puts("hello through the pipe"); return 0; }
"""

PIPE_B = r"""
#include <ctype.h>
#include <stdio.h>
int main(void) {
    int c, n = 0;
    while ((c = getchar()) != EOF) { putchar(toupper(c)); n++; }
    return n ? 0 : 1;
}
"""


@pytest.fixture(scope="module")
def progs(tmp_path_factory):
    if shutil.which("gcc") is None:
        pytest.skip("gcc missing")
    d = tmp_path_factory.mktemp("blfocus")
    out = {}
    for name, src in (("fork", FORK), ("pipe_a", PIPE_A), ("pipe_b", PIPE_B)):
        (d / f"{name}.c").write_text(src)
        subprocess.run(["gcc", "-g", "-O0", str(d / f"{name}.c"), "-o", str(d / name)],
                       check=True)
        out[name] = d / name
    return out


KEYS = {" ": "space", ".": "full_stop", "/": "slash", "-": "minus", ",": "comma",
        "_": "underscore", ":": "colon", "'": "apostrophe", "|": "vertical_line"}


async def command(app, pilot, line):
    """Type a command on the TUI's command line (`:`)."""
    await pilot.press("colon")
    await pilot.pause(0.05)
    assert app.query("#cmdline"), "the command line did not open"
    await pilot.press(*[KEYS.get(ch, ch) for ch in line], "enter")
    await settle(app, pilot)


def panel(app):
    return str(app.query_one("#threads").render())


def rip_of(s, inf_num):
    """A stopped process's rip, asked of the stub."""
    inf = s.inferior(num=inf_num)
    s._select(inf.pid, None, force=True)
    r = s.client.request("p10")
    s._hg = None
    return int.from_bytes(bytes.fromhex(r), "little")


async def wait_for(pilot, cond, timeout=20):
    for _ in range(int(timeout / 0.1)):
        if cond():
            return True
        await pilot.pause(0.1)
    return cond()


def test_focus_runs_only_the_focused_process(progs):
    async def scenario():
        app = make_app([progs["fork"]])
        async with app.run_test(size=(160, 60)) as pilot:
            s = app.session
            await command(app, pilot, "break parent_work in i1")
            await command(app, pilot, "b child_work")
            await command(app, pilot, "break work in i2")
            await command(app, pilot, "focus i1")
            assert "focus i1" in app.message
            await pilot.press("c")
            await settle(app, pilot)
            # the fork made inferior 2, stopped (not in focus); i1 ran to parent_work
            assert s.cur.num == 1 and s.symbols.describe(s.rip) == "parent_work"
            text = panel(app)
            assert "i1 pid" in text and "i2 pid" in text and "from i1" in text, text
            assert len(s.inferiors) == 2
            parent_rip = rip_of(s, 1)
            # the process panel's rows: i1, i1.t1, i2, i2.t1: mark i2 -> focus i2
            await pilot.press("j", "j", "x")
            await settle(app, pilot)
            assert str(s.focus) == "i2"
            await pilot.press("c")
            await settle(app, pilot)
            assert s.cur.num == 2 and s.symbols.describe(s.rip) == "child_work"
            assert rip_of(s, 1) == parent_rip                  # the parent stayed put
            assert b"parent alive" not in bytes(s.output)
            text = panel(app)
            assert "parent_work" in text and "child_work" in text, text
            # all: the scoped `work` stops in the child only (right after child_work)
            await command(app, pilot, "focus all")
            await pilot.press("c")
            await settle(app, pilot)
            assert s.cur.num == 2 and s.symbols.describe(s.rip) == "work"
            # policy all (the default): the parent was stopped too, and stays so
            await pilot.pause(1.5)
            assert b"parent alive" not in bytes(s.output)
            assert s.inferior(num=1).threads[s.inferior(num=1).pid].state == "stopped"
            assert "policy all" in str(app.query_one("#status").render())
            # on: the child exits (not the end), the parent's work(2) is outside the
            # breakpoint's set and passes, the program ends
            await pilot.press("c")
            await settle(app, pilot)
            out = bytes(s.output)
            assert b"parent alive" in out and b"parent: child exited 42" in out, out
            assert app.dialogs[-1] == ("exited", "the program exited with status 5")
            assert "exited (status 42)" in panel(app)
    asyncio.run(scenario())


@pytest.mark.parametrize("policy", ["all", "process"])
def test_stop_policy_decides_what_keeps_running(progs, policy):
    async def scenario():
        app = make_app([progs["fork"]])
        async with app.run_test(size=(160, 60)) as pilot:
            s = app.session
            await command(app, pilot, "break child_work")
            await command(app, pilot, f"policy {policy}")
            assert f"policy {policy}" in str(app.query_one("#status").render())
            await pilot.press("c")
            await settle(app, pilot)
            assert s.cur.num == 2 and s.symbols.describe(s.rip) == "child_work"
            parent = s.inferior(num=1)
            if policy == "process":
                # the parent runs on (its process is not the one that stopped)
                assert await wait_for(pilot, lambda: b"parent alive" in bytes(s.output))
                assert parent.threads[parent.pid].state == "running"
                assert "running" in panel(app)
            else:
                await pilot.pause(1.5)
                assert b"parent alive" not in bytes(s.output)
                assert parent.threads[parent.pid].state == "stopped"
            await pilot.press("c")          # stops the background run first
            await settle(app, pilot)
            assert await wait_for(pilot, lambda: bool(app.dialogs))
            assert app.dialogs[-1] == ("exited", "the program exited with status 5")
            assert b"parent: child exited 42" in bytes(s.output)
    asyncio.run(scenario())


def test_break_exec_in_a_pipeline(progs):
    if not shutil.which("sh"):
        pytest.skip("no sh")
    a, b = progs["pipe_a"], progs["pipe_b"]

    async def scenario():
        app = make_app(["/bin/sh", "-c", f"{a} | {b}"])
        async with app.run_test(size=(160, 60)) as pilot:
            s = app.session
            await command(app, pilot, f"break-exec {a} main")
            await command(app, pilot, "break-exec pipe_b main")
            stops = []
            for _ in range(2):
                await pilot.press("c")
                await settle(app, pilot)
                assert not s.stop.exited, app.dialogs
                stops.append((s.program.rsplit("/", 1)[-1], s.symbols.describe(s.rip)))
            assert sorted(stops) == [("pipe_a", "main"), ("pipe_b", "main")], stops
            assert len(s.inferiors) >= 3
            text = panel(app)
            assert "pipe_a" in text and "pipe_b" in text, text
            await pilot.press("c")
            await settle(app, pilot)
            assert await wait_for(pilot, lambda: bool(app.dialogs))
            assert app.dialogs[-1] == ("exited", "the program exited with status 0")
            assert b"HELLO THROUGH THE PIPE" in bytes(s.output)
    asyncio.run(scenario())


def test_focus_set_syntax():
    from blinkroot.debug.focus import FocusError, FocusSet, Inferior
    i1 = Inferior(num=1, pid=100, program="a")
    i2 = Inferior(num=2, pid=200, program="b")
    for inf in (i1, i2):
        for tid in range(inf.pid, inf.pid + 5):
            inf.thread(tid)
    i2.threads[201].state = "running"
    infs = [i1, i2]

    def sel(text, cur=i1):
        return sorted(f"i{i.num}.t{t.num}" for i, t in FocusSet(text).select(infs, cur))
    assert sel("i1.t1-4") == ["i1.t1", "i1.t2", "i1.t3", "i1.t4"]
    assert sel("i1.t1,i2.t2") == ["i1.t1", "i2.t2"]
    assert sel("i2") == [f"i2.t{n}" for n in range(1, 6)]
    assert sel("running") == ["i2.t2"]
    assert len(sel("stopped")) == 9 and len(sel("all")) == 10
    assert sel("t2", cur=i2) == ["i2.t2"] and sel("p100&t1") == ["i1.t1"]
    assert sel("i2&~stopped") == ["i2.t2"]
    with pytest.raises(FocusError):
        FocusSet("x7")


THREADS = r"""
#include <pthread.h>
#include <time.h>
#include <unistd.h>
void worker_stop(void) {}
void *worker(void *a) { worker_stop(); return a; }
int main(void) {
    pthread_t t;
    pthread_create(&t, 0, worker, 0);
    struct timespec ts = {0, 500000000};
    nanosleep(&ts, 0);
    write(1, "main alive\n", 11);
    pthread_join(t, 0);
    return 3;
}
"""


@pytest.mark.parametrize("policy", ["thread", "process"])
def test_thread_policy_runs_the_other_threads(tmp_path, policy):
    """policy thread: a thread's breakpoint stops it alone (the stub runs the threads
    vCont names, holding the others); policy process: its whole process stops."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc missing")
    (tmp_path / "t.c").write_text(THREADS)
    exe = tmp_path / "t"
    subprocess.run(["gcc", "-g", "-O0", "-pthread", str(tmp_path / "t.c"), "-o", str(exe)],
                   check=True)
    from blinkroot.debug.session import Session
    s = Session([str(exe)])
    try:
        s.execute(f"policy {policy}")
        s.execute("break worker_stop")
        s.cont()
        assert s.symbols.describe(s.rip) == "worker_stop"
        assert s.cur_tid != s.cur.pid and s.cur.thread(s.cur_tid).num == 2
        stopped = []
        assert s.start_background(stopped.append) == (policy == "thread")
        deadline = time.monotonic() + (20 if policy == "thread" else 1.5)
        while time.monotonic() < deadline and b"main alive" not in bytes(s.output):
            time.sleep(0.1)
        assert (b"main alive" in bytes(s.output)) == (policy == "thread")
        s.quiesce()
        assert not s.bg_running and s.symbols.describe(s.rip) == "worker_stop"
        s.execute("delete 1")
        s.cont()
        assert s.stop.exited and s.stop.signal == 3, s.stop
    finally:
        s.close()
