"""alpine-tree: unpack Alpine Linux's x86_64 minirootfs, checked against its .sha256."""

import argparse
import os
import re
import time

from . import cache
from .common import Error, Log, StagedTree, download, fetch_bytes, report_done
from .extract import Extractor

PROG = "alpine-tree"
DEFAULT_RELEASE = "3.20.3"
MIRROR_ENV = "BLINKROOT_ALPINE_MIRROR"
ARCH = "x86_64"
_RELEASE_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)(_rc\d+)?$")


def tarball_name(release):
    return f"alpine-minirootfs-{release}-{ARCH}.tar.gz"


def release_url(mirror, release):
    """<mirror>/v<major.minor>/releases/x86_64/alpine-minirootfs-<release>-x86_64.tar.gz"""
    m = _RELEASE_RE.match(release or "")
    if not m:
        raise Error(f"invalid release {release!r} (expected a version such as "
                    f"{DEFAULT_RELEASE})")
    return (f"{mirror.rstrip('/')}/v{m.group(1)}.{m.group(2)}/releases/{ARCH}/"
            f"{tarball_name(release)}")


def parse_sha256_file(text, filename):
    """The hex digest from a `HEX  NAME` .sha256 file (the line for filename, or the only one)."""
    found = []
    for line in text.splitlines():
        f = line.split()
        if not f:
            continue
        if re.fullmatch(r"[0-9a-fA-F]{64}", f[0]):
            name = f[1].lstrip("*") if len(f) > 1 else None
            found.append((f[0].lower(), name))
    for digest, name in found:
        if name == filename:
            return digest
    if len(found) == 1:
        return found[0][0]
    raise Error(f"no SHA256 for {filename} in its .sha256 file")


def build(out, release=DEFAULT_RELEASE, url=None, sha256=None, mirror=None,
          cachedir=None, force=False, log=None):
    log = log or Log(PROG)
    start = time.monotonic()
    if url is None:
        if not mirror:
            raise Error(f"no Alpine mirror: pass --mirror URL (or --url) or set ${MIRROR_ENV}; "
                        "see rootfs-tools/README.md")
        url = release_url(mirror, release)
    filename = url.rstrip("/").rsplit("/", 1)[-1]
    if sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise Error(f"--sha256 {sha256!r} is not a 64-digit hex SHA256")
    staged = StagedTree(out, force)
    staged.check()
    if sha256 is None:
        log(f"fetching {url}.sha256")
        text = fetch_bytes(f"{url}.sha256", missing_ok=True)
        if text is None:
            raise Error(f"{url}.sha256: not found (HTTP 404): no such release "
                        f"{release!r}?" if release else f"{url}.sha256: not found")
        sha256 = parse_sha256_file(text.decode("utf-8", "replace"), filename)
    dest = os.path.join(cache.cache_dir("alpine", cachedir), filename)
    log(f"downloading {filename}")
    try:
        download(url, dest, sha256=sha256)
    except Error as e:
        if "HTTP 404" in str(e):
            raise Error(f"{e}: no such release {release!r}?") from None
        raise
    with staged as tmp:
        log(f"unpacking {filename}")
        ex = Extractor(tmp)
        with open(dest, "rb") as f:
            ex.extract_tar(f, filename)
        ex.finish()
        if not os.path.lexists(os.path.join(tmp, "bin")):
            raise Error(f"{filename}: no /bin in the tarball: not a root tree")
        for d in ("proc", "dev", "sys", "tmp"):
            os.makedirs(os.path.join(tmp, d), exist_ok=True)
    report_done(log, staged.out, start)


def main(argv=None):
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Build a root tree for `blinkroot -C` from Alpine Linux's x86_64 "
                    "minirootfs tarball, checked against the .sha256 published next to it.",
        epilog="The tarball is cached in $XDG_CACHE_HOME/blinkroot/alpine "
               "(~/.cache/blinkroot/alpine).")
    p.add_argument("--release", default=DEFAULT_RELEASE,
                   help="Alpine release, e.g. %(default)s (default: %(default)s)")
    p.add_argument("--mirror", default=os.environ.get(MIRROR_ENV),
                   help=f"Alpine mirror base URL, the directory holding v3.20/ etc. "
                        f"(default: ${MIRROR_ENV})")
    p.add_argument("--url", help="the minirootfs tarball's URL (overrides --mirror/--release)")
    p.add_argument("--sha256", metavar="HEX",
                   help="expected SHA256 of the tarball (default: fetch URL.sha256)")
    p.add_argument("--cache", metavar="DIR", help="where the tarball is cached")
    p.add_argument("--force", action="store_true", help="replace OUT_DIR if it exists")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p.add_argument("out", metavar="OUT_DIR", help="the tree to create")
    a = p.parse_args(argv)
    build(a.out, release=a.release, url=a.url, sha256=a.sha256, mirror=a.mirror,
          cachedir=a.cache, force=a.force, log=Log(PROG, a.quiet))
