"""`blinkroot mount`: a real FUSE mount of a root tree with an overlay, and of a running
session's file system (its live /proc).  Skipped, saying why, where FUSE is unavailable."""

import os
import shutil
import subprocess
import sys
import time

import pytest

from guestlib import REPO_ROOT

BUSYBOX = shutil.which("busybox")
FUSERMOUNT = shutil.which("fusermount3")
ENV = dict(os.environ, PYTHONPATH=str(REPO_ROOT))


def _fuse_problem():
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is absent"
    if not FUSERMOUNT:
        return "fusermount3 is not installed (package fuse3)"
    try:
        import mfusepy  # noqa: F401
    except ImportError:
        return "mfusepy is not installed"
    except OSError as e:
        return f"libfuse3 cannot be loaded: {e}"
    return None


pytestmark = pytest.mark.skipif(_fuse_problem() is not None, reason=str(_fuse_problem()))


def _blinkroot(*args, **kw):
    return subprocess.run([sys.executable, "-m", "blinkroot", *args], env=ENV,
                          capture_output=True, text=True, timeout=20, **kw)


def _mounted(mnt):
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == str(mnt) for line in f)


def _mount(mnt, *args):
    r = _blinkroot("mount", *args, str(mnt))
    if r.returncode != 0:
        err = r.stderr.strip()
        if any(s in err for s in ("ermission denied", "Operation not permitted",
                                  "fuse: device not found")):
            pytest.skip(f"FUSE mounts are not permitted here: {err[-200:]}")
        pytest.fail(f"blinkroot mount failed: {err}")
    assert _mounted(mnt)


def _umount(mnt):
    if _mounted(mnt):
        _blinkroot("umount", str(mnt))
    if _mounted(mnt):                       # a mount left behind: lazily, whatever it takes
        subprocess.run([FUSERMOUNT, "-uz", str(mnt)], capture_output=True)


@pytest.fixture
def tree(tmp_path):
    lower = tmp_path / "lower"
    for d in ("bin", "etc", "proc", "dev", "tmp"):
        (lower / d).mkdir(parents=True)
    (lower / "etc/hostname").write_text("fusetree\n")
    (lower / "etc/victim").write_text("delete me\n")
    os.symlink("hostname", lower / "etc/link")
    if BUSYBOX:
        shutil.copy(BUSYBOX, lower / "bin/busybox")
    upper = tmp_path / "upper"
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    return lower, upper, mnt


def test_overlay_tree(tree):
    lower, upper, mnt = tree
    _mount(mnt, "-C", str(lower), "--overlay", str(upper))
    try:
        # ls, cat, stat, readlink
        assert {"bin", "etc", "proc", "dev", "tmp"} <= set(os.listdir(mnt))
        assert sorted(os.listdir(mnt / "etc")) == ["hostname", "link", "victim"]
        assert (mnt / "etc/hostname").read_text() == "fusetree\n"
        st, lst = os.stat(mnt / "etc/hostname"), os.stat(lower / "etc/hostname")
        assert (st.st_size, st.st_mode, st.st_ino) == (lst.st_size, lst.st_mode, lst.st_ino)
        assert os.readlink(mnt / "etc/link") == "hostname"
        assert (mnt / "etc/link").read_text() == "fusetree\n"
        # write: copy-up into the upper layer, the lower one untouched
        with open(mnt / "etc/hostname", "a") as f:
            f.write("more\n")
        assert (mnt / "etc/hostname").read_text() == "fusetree\nmore\n"
        assert (upper / "etc/hostname").read_text() == "fusetree\nmore\n"
        assert (lower / "etc/hostname").read_text() == "fusetree\n"
        # a new file, a copy, a rename, a directory
        (mnt / "tmp/new").write_text("new\n")
        shutil.copy(mnt / "etc/hostname", mnt / "tmp/copy")
        os.rename(mnt / "tmp/new", mnt / "tmp/renamed")
        (mnt / "tmp/dir").mkdir()
        assert sorted(os.listdir(mnt / "tmp")) == ["copy", "dir", "renamed"]
        assert (upper / "tmp/renamed").read_text() == "new\n"
        assert not (lower / "tmp/renamed").exists()
        # rm of a lower file: a whiteout in the upper layer, the lower file stays
        os.unlink(mnt / "etc/victim")
        assert not (mnt / "etc/victim").exists()
        assert "victim" not in os.listdir(mnt / "etc")
        assert (upper / "etc/.wh.victim").exists()
        assert (lower / "etc/victim").read_text() == "delete me\n"
        # /proc and /dev are the guest's
        assert "filesystems" in os.listdir(mnt / "proc")
        mounts = (mnt / "proc/mounts").read_text()
        assert "overlay / overlay" in mounts and "devtmpfs /dev" in mounts
        assert {"null", "zero", "shm", "pts"} <= set(os.listdir(mnt / "dev"))
    finally:
        _umount(mnt)
    assert not _mounted(mnt)
    assert os.listdir(mnt) == []


@pytest.mark.skipif(not BUSYBOX, reason="busybox is not installed")
def test_running_session(tree):
    lower, _, mnt = tree
    guest = subprocess.Popen([sys.executable, "-m", "blinkroot", "-C", str(lower),
                              "/bin/busybox", "sleep", "30"], env=ENV,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while True:                     # the session is there once the guest published
            r = _blinkroot("mount", "--session", str(guest.pid), str(mnt))
            if r.returncode == 0 or time.time() > deadline or guest.poll() is not None:
                break
            time.sleep(0.2)
        if r.returncode != 0:
            if "ermission" in r.stderr or "not permitted" in r.stderr:
                pytest.skip(f"FUSE mounts are not permitted here: {r.stderr.strip()}")
            pytest.fail(f"blinkroot mount --session failed: {r.stderr}")
        while True:     # the session is published a moment before its first process
            entries = os.listdir(mnt / "proc")
            if str(guest.pid) in entries or time.time() > deadline:
                break
            time.sleep(0.1)
        assert str(guest.pid) in entries
        pids = [e for e in entries if e.isdigit()]
        assert pids == [str(guest.pid)]     # the session's processes, no host's others
        cmdline = (mnt / "proc" / str(guest.pid) / "cmdline").read_bytes()
        assert cmdline == b"/bin/busybox\0sleep\0" + b"30\0"
        assert "busybox" in os.listdir(mnt / "bin")
        # the session ends: the mount goes with it
        guest.kill()
        guest.wait(5)
        deadline = time.time() + 5
        while _mounted(mnt) and time.time() < deadline:
            time.sleep(0.1)
        assert not _mounted(mnt)
    finally:
        if guest.poll() is None:
            guest.kill()
            guest.wait(5)
        _umount(mnt)


def test_foreground_and_errors(tree, tmp_path):
    lower, _, mnt = tree
    r = _blinkroot("mount", "--session", "999999999", str(mnt))
    assert r.returncode == 1 and "no running session" in r.stderr
    r = _blinkroot("mount", "-C", str(lower), str(tmp_path / "missing"))
    assert r.returncode == 1 and "not a directory" in r.stderr
    p = subprocess.Popen([sys.executable, "-m", "blinkroot", "mount", "-f", "-C", str(lower),
                          str(mnt)], env=ENV, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 10
        while not _mounted(mnt) and p.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        if not _mounted(mnt):
            err = p.stderr.read() if p.poll() is not None else ""
            if "ermission" in err or "not permitted" in err:
                pytest.skip(f"FUSE mounts are not permitted here: {err.strip()}")
            pytest.fail(f"foreground mount did not appear: {err}")
        assert (mnt / "etc/hostname").read_text() == "fusetree\n"
        p.send_signal(2)                # Ctrl-C: unmount and exit
        assert p.wait(10) == 0
        assert not _mounted(mnt)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
        _umount(mnt)
