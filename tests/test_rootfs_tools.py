"""Tests for rootfs-tools/ (debian-tree, alpine-tree and their helpers).

Most tests are offline: they make their own .debs, Packages/Release files and
Alpine tarballs and serve them from an HTTP server on 127.0.0.1. One session
fixture builds the real default Debian tree from the machine's Debian mirror
(read from /etc/apt/sources.list*) into tests/.build/debian-tree; its
downloads are cached in the user cache directory.
"""

import functools
import glob
import hashlib
import http.server
import io
import lzma
import os
import platform
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "rootfs-tools"
BUILD = Path(__file__).resolve().parent / ".build"
sys.path.insert(0, str(TOOLS))

from rootfs import alpine, cache, debian  # noqa: E402
from rootfs.ar import read_ar, write_ar  # noqa: E402
from rootfs.common import Error, Log  # noqa: E402
from rootfs.extract import Extractor, UnsafeArchive  # noqa: E402

QUIET = Log("test", quiet=True)


# ---------------------------------------------------------------- helpers

def make_tar(entries, compression="xz"):
    """entries: (name, kind, payload, mode); kind in file/dir/symlink/hardlink."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for name, kind, payload, mode in entries:
            ti = tarfile.TarInfo(name)
            ti.mode = mode
            ti.mtime = 1700000000
            if kind == "file":
                data = payload.encode() if isinstance(payload, str) else payload
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
                continue
            if kind == "dir":
                ti.type = tarfile.DIRTYPE
            elif kind == "symlink":
                ti.type = tarfile.SYMTYPE
                ti.linkname = payload
            elif kind == "hardlink":
                ti.type = tarfile.LNKTYPE
                ti.linkname = payload
            elif kind == "fifo":
                ti.type = tarfile.FIFOTYPE
            tf.addfile(ti)
    raw = buf.getvalue()
    if compression == "xz":
        return lzma.compress(raw)
    if compression == "gz":
        import gzip
        return gzip.compress(raw)
    return raw


def make_deb(entries, compression="xz", data=None):
    ext = {"xz": ".xz", "gz": ".gz", None: "", "zst": ".zst"}[compression]
    body = data if data is not None else make_tar(entries, compression)
    control = make_tar([("./control", "file", "Package: x\n", 0o644)], "xz")
    return write_ar([("debian-binary", b"2.0\n"), ("control.tar.xz", control),
                     ("data.tar" + ext, body)])


def sha(data):
    return hashlib.sha256(data).hexdigest()


class Server:
    """A static HTTP server on 127.0.0.1 serving one directory, in a thread."""

    def __init__(self, directory):
        handler = functools.partial(_QuietHandler, directory=str(directory))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def serve(tmp_path):
    servers = []

    def start(directory):
        s = Server(directory)
        servers.append(s)
        return s.url

    yield start
    for s in servers:
        s.close()


def leftovers(out):
    """Temp/old siblings of OUT_DIR that a build could have left behind."""
    out = Path(out)
    return [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


def run_tool(name, *args, env=None):
    e = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, str(TOOLS / name), *map(str, args)],
                          capture_output=True, text=True, env=e, timeout=300)


def assert_one_line_error(r, prog, pattern):
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith(f"{prog}: error: ")]
    assert len(errors) == 1, r.stderr
    assert re.search(pattern, errors[0]), errors[0]


# ---------------------------------------------------------------- ar

def test_ar_roundtrip_and_padding():
    members = [("debian-binary", b"2.0\n"), ("odd", b"abc"), ("empty", b""), ("x", b"yz")]
    assert list(read_ar(write_ar(members))) == members


def test_ar_gnu_and_bsd_names():
    data = b"!<arch>\n"
    data += b"%-16s%-12d%-6d%-6d%-8s%-10d`\n" % (b"gnu/", 0, 0, 0, b"644", 1) + b"A\n"
    data += b"%-16s%-12d%-6d%-6d%-8s%-10d`\n" % (b"#1/20", 0, 0, 0, b"644", 22)
    data += b"a-rather-long-name.x" + b"hi"
    assert list(read_ar(data)) == [("gnu", b"A"), ("a-rather-long-name.x", b"hi")]


@pytest.mark.parametrize("data, msg", [
    (b"notanarchive", "bad magic"),
    (b"!<arch>\nshort", "short member header"),
    (b"!<arch>\n" + b"x" * 58 + b"??", "bad member header"),
    (write_ar([("a", b"12345")])[:-2], "truncated"),
])
def test_ar_errors(data, msg):
    with pytest.raises(Error, match=msg):
        list(read_ar(data))


# ---------------------------------------------------------------- indexes

FAKE_PACKAGES = """\
Package: app
Version: 1.0
Pre-Depends: libc (>= 2.34)
Depends: libfoo (>= 1) | libfoo-alt, awk, tool:any, helper [amd64] <!nocheck>
Description: an app
 with a long description
 Depends: not-a-field

Package: libc
Version: 2.36
Depends: libgcc
Priority: required

Package: libgcc
Depends: libc

Package: libfoo-alt
Version: 1

Package: mawk
Provides: awk
Priority: required

Package: gawk
Provides: awk (= 5.2)
Priority: optional

Package: tool
Depends: dpkg | install-info

Package: install-info

Package: helper
Depends: mail-transport-agent

Package: exim
Provides: mail-transport-agent

Package: app
Version: 0.9-duplicate-ignored

Package: broken
Depends: nothing-provides-this (>= 1) | nor-this
"""


def test_parse_depends():
    assert debian.parse_depends("a (>= 1) | b, c:any, d [amd64] <!nocheck>,  ") == \
        [["a", "b"], ["c"], ["d"]]
    assert debian.parse_depends("") == []


def test_parse_packages():
    pkgs = debian.parse_packages(FAKE_PACKAGES)
    assert pkgs["app"]["Version"] == "1.0"
    assert pkgs["app"]["Pre-Depends"] == "libc (>= 2.34)"
    assert "not-a-field" not in str(pkgs["app"])
    assert set(pkgs) == {"app", "libc", "libgcc", "libfoo-alt", "mawk", "gawk", "tool",
                         "install-info", "helper", "exim", "broken"}


def test_resolve_alternatives_virtuals_and_cycles():
    idx = debian.Index.from_text(FAKE_PACKAGES)
    got = idx.resolve(["app"])
    assert got[0] == "app"
    # libfoo missing -> libfoo-alt; awk -> mawk (required beats optional gawk);
    # dpkg missing -> install-info; mail-transport-agent -> exim; libc<->libgcc cycle ok.
    assert set(got) == {"app", "libc", "libgcc", "libfoo-alt", "mawk", "tool",
                        "install-info", "helper", "exim"}
    assert len(got) == len(set(got))


def test_resolve_prefers_chosen_provider_and_exclude():
    idx = debian.Index.from_text(FAKE_PACKAGES)
    got = idx.resolve(["gawk", "app"], exclude=["exim", "libc"])
    assert "gawk" in got and "mawk" not in got
    assert "exim" not in got and "libc" not in got and "libgcc" not in got
    assert idx.resolve(["awk"]) == ["mawk"]  # a virtual name may be asked for


def test_resolve_errors():
    idx = debian.Index.from_text(FAKE_PACKAGES)
    with pytest.raises(Error, match="no such packages in the index: nope, nada"):
        idx.resolve(["app", "nope", "nada"])
    with pytest.raises(Error, match="broken: cannot satisfy Depends on "
                                    "nothing-provides-this | nor-this"):
        idx.resolve(["broken"])


def test_parse_release_sha256():
    text = """-----BEGIN PGP SIGNED MESSAGE-----
Hash: SHA256

Suite: bookworm
MD5Sum:
 d41d8cd98f00b204e9800998ecf8427e 0 main/binary-amd64/Packages.xz
SHA256:
 %s 123 main/binary-amd64/Packages.xz
 %s 9 main/binary-arm64/Packages.xz
-----BEGIN PGP SIGNATURE-----
 zzz
""" % ("A" * 64, "b" * 64)
    assert debian.parse_release_sha256(text) == {
        "main/binary-amd64/Packages.xz": ("a" * 64, 123),
        "main/binary-arm64/Packages.xz": ("b" * 64, 9),
    }


def test_applet_names_from_binary():
    blob = b"\x7fELF junk\0[\0[[\0ash\0cat\0ls\0zcat\0\0\x01more junk"
    assert debian.applet_names_from_binary(blob) == ["[", "[[", "ash", "cat", "ls", "zcat"]
    assert debian.applet_names_from_binary(b"nothing here") == []


def test_cache_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("BLINKROOT_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir("debs") == str(tmp_path / "xdg" / "blinkroot" / "debs")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.cache_dir("alpine") == str(tmp_path / "home" / ".cache" / "blinkroot" / "alpine")
    assert cache.cache_dir("debs", str(tmp_path / "mine")) == str(tmp_path / "mine")
    monkeypatch.setenv("BLINKROOT_CACHE", str(tmp_path / "c"))
    assert cache.cache_dir("debs") == str(tmp_path / "c" / "debs")


# ---------------------------------------------------------------- extraction

def unpack(tmp_path, entries, compression="xz", name="pkg"):
    root = tmp_path / "tree"
    root.mkdir(exist_ok=True)
    deb = tmp_path / f"{name}.deb"
    deb.write_bytes(make_deb(entries, compression))
    ex = Extractor(str(root))
    debian.unpack_deb(str(deb), ex, name)
    ex.finish()
    return root


def test_extract_keeps_modes_symlinks_hardlinks(tmp_path):
    (tmp_path / "tree").mkdir()
    debian.make_merged_usr(str(tmp_path / "tree"))
    root = unpack(tmp_path, [
        ("./", "dir", None, 0o755),
        ("./bin/", "dir", None, 0o755),
        ("./bin/prog", "file", "#!/bin/sh\n", 0o4755),
        ("./bin/same", "hardlink", "./bin/prog", 0o4755),
        ("./lib64/ld.so", "symlink", "/lib/x86_64-linux-gnu/ld.so", 0o777),
        ("./etc/", "dir", None, 0o755),
        ("./etc/conf", "file", "x=1\n", 0o600),
        ("./etc/rel", "symlink", "../usr/lib/os-release", 0o777),
        ("./dev/fifo", "fifo", None, 0o644),
        ("./var/", "dir", None, 0o2775),
    ], compression="gz")
    prog = root / "usr/bin/prog"  # ./bin/ went through the merged-/usr link
    assert (root / "bin").is_symlink() and prog.read_text() == "#!/bin/sh\n"
    assert stat.S_IMODE(prog.stat().st_mode) == 0o4755
    assert (root / "usr/bin/same").stat().st_ino == prog.stat().st_ino
    assert os.readlink(root / "usr/lib64/ld.so") == "/lib/x86_64-linux-gnu/ld.so"
    assert os.readlink(root / "etc/rel") == "../usr/lib/os-release"
    assert stat.S_IMODE((root / "etc/conf").stat().st_mode) == 0o600
    assert stat.S_IMODE((root / "var").stat().st_mode) == 0o2775
    assert (root / "etc/conf").stat().st_mtime == 1700000000
    assert not (root / "dev/fifo").exists()


@pytest.mark.parametrize("entries, msg", [
    ([("../evil", "file", "pwned", 0o644)], r"'\.\./evil'.*'\.\.'"),
    ([("./a/../../evil", "file", "pwned", 0o644)], r"contains '\.\.'"),
    ([("/evil", "file", "pwned", 0o644)], "absolute path"),
    ([("./ok", "file", "x", 0o644), ("./h", "hardlink", "../../evil", 0o644)], r"'\.\.'"),
    ([("./s", "symlink", "/etc", 0o777), ("./h", "hardlink", "s", 0o644)],
     "hard link to non-regular"),
])
def test_extract_refuses_malicious_deb(tmp_path, entries, msg):
    with pytest.raises(UnsafeArchive, match=msg):
        unpack(tmp_path, entries, name="evil")
    assert not (tmp_path / "evil").exists()
    assert not (tmp_path.parent / "evil").exists()


def test_symlink_tricks_stay_inside_tree(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = unpack(tmp_path, [
        ("./up", "symlink", "../../../../outside", 0o777),
        ("./up/evil1", "file", "1", 0o644),
        ("./abs", "symlink", str(outside), 0o777),
        ("./abs/evil2", "file", "2", 0o644),
        ("./loop", "symlink", "loop", 0o777),
    ])
    assert list(outside.iterdir()) == []
    # `..` stops at the tree root and absolute targets are taken inside it, as in a chroot.
    assert (root / "outside/evil1").read_text() == "1"
    assert (root / str(outside).lstrip("/") / "evil2").read_text() == "2"
    with pytest.raises(UnsafeArchive, match="too many levels"):
        unpack(tmp_path, [("./loop/x", "file", "x", 0o644)], name="more")


def test_extract_replaces_symlink_not_following_it(tmp_path):
    target = tmp_path / "victim"
    target.write_text("safe")
    root = unpack(tmp_path, [("./f", "symlink", str(target), 0o777),
                             ("./f", "file", "new", 0o644)])
    assert target.read_text() == "safe" and (root / "f").read_text() == "new"


def test_zstd_deb_is_a_clear_error(tmp_path):
    deb = tmp_path / "z.deb"
    deb.write_bytes(make_deb(None, compression="zst", data=b"(not really zstd)"))
    with pytest.raises(Error, match="coolpkg: data.tar.zst is zstd-compressed"):
        debian.unpack_deb(str(deb), Extractor(str(tmp_path)), "coolpkg")


def test_not_a_deb(tmp_path):
    deb = tmp_path / "n.deb"
    deb.write_bytes(write_ar([("foo", b"bar")]))
    with pytest.raises(Error, match="not a Debian binary package"):
        debian.unpack_deb(str(deb), Extractor(str(tmp_path)), "n")


# ---------------------------------------------------------------- fake mirror

def fake_mirror(tmp_path, debs, packages_extra="", release_tamper=False):
    """A Debian mirror layout under tmp_path/mirror with the given {name: (deb, stanza)}."""
    m = tmp_path / "mirror"
    stanzas = []
    for name, (data, fields) in debs.items():
        fn = f"pool/main/{name[0]}/{name}/{name}_1_amd64.deb"
        (m / fn).parent.mkdir(parents=True, exist_ok=True)
        (m / fn).write_bytes(data)
        stanzas.append(f"Package: {name}\nVersion: 1\nArchitecture: amd64\n{fields}"
                       f"Filename: {fn}\nSize: {len(data)}\nSHA256: {sha(data)}\n")
    text = "\n".join(stanzas) + packages_extra
    pxz = lzma.compress(text.encode())
    d = m / "dists/testing-fake/main/binary-amd64"
    d.mkdir(parents=True)
    (d / "Packages.xz").write_bytes(pxz)
    digest = sha(pxz) if not release_tamper else "0" * 64
    (m / "dists/testing-fake/Release").write_text(
        f"Suite: testing-fake\nSHA256:\n {digest} {len(pxz)} main/binary-amd64/Packages.xz\n")
    return m


def fake_debs():
    busybox_blob = b"\x7fELF\0stuff\0[\0[[\0cat\0ls\0sh\0vi\0\0"
    return {
        "base-files": (make_deb([
            ("./", "dir", None, 0o755), ("./etc/", "dir", None, 0o755),
            ("./usr/lib/os-release", "file", 'NAME="Fake"\n', 0o644),
            ("./etc/os-release", "symlink", "../usr/lib/os-release", 0o777)]), ""),
        "dash": (make_deb([("./bin/dash", "file", "dash", 0o755)]),
                 "Pre-Depends: libc6 (>= 2)\n"),
        "libc6": (make_deb([("./lib64/ld-linux-x86-64.so.2", "symlink",
                             "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", 0o777),
                            ("./lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "file", "ld",
                             0o755)]), ""),
        "busybox-static": (make_deb([("./bin/busybox", "file", busybox_blob, 0o755)]),
                           "Provides: busybox\n"),
    }


def fake_build(tmp_path, url, out=None, packages=("dash", "busybox"), **kw):
    out = out or tmp_path / "out" / "tree"
    out.parent.mkdir(exist_ok=True)
    kw.setdefault("cachedir", str(tmp_path / "cache"))
    debian.build(str(out), list(packages), mirror=url, suite="testing-fake",
                 keyring="none", log=QUIET, **kw)
    return out


def test_fake_mirror_build(tmp_path, serve, monkeypatch):
    # Keep the busybox applet step off the fake (non-runnable) binary: table path.
    monkeypatch.setattr(debian.platform, "machine", lambda: "not-x86")
    monkeypatch.setitem(sys.modules, "blinkroot", None)
    url = serve(fake_mirror(tmp_path, fake_debs()))
    out = fake_build(tmp_path, url, packages=["base-files", "dash", "busybox"])
    for d in ("bin", "sbin", "lib", "lib64"):
        assert os.readlink(out / d) == f"usr/{d}"
    assert (out / "usr/bin/dash").read_text() == "dash"
    assert os.readlink(out / "usr/bin/sh") == "dash"  # dash wins over busybox's sh
    assert os.readlink(out / "usr/bin/vi") == "busybox"
    assert os.readlink(out / "usr/bin/[[") == "busybox"
    assert (out / "etc/os-release").read_text() == 'NAME="Fake"\n'
    assert (out / "etc/passwd").read_text().startswith("root:x:0:0:root:/root:/bin/sh\n")
    assert (out / "etc/group").exists() and (out / "etc/hostname").exists()
    assert stat.S_IMODE((out / "tmp").stat().st_mode) == 0o1777
    assert (out / "proc").is_dir() and (out / "dev").is_dir()
    assert (out / "lib64/ld-linux-x86-64.so.2").is_symlink()
    assert leftovers(out) == []
    assert sorted(os.listdir(tmp_path / "cache")) == [
        "base-files_1_amd64.deb", "busybox-static_1_amd64.deb", "dash_1_amd64.deb", "indexes",
        "libc6_1_amd64.deb"]
    # --force replaces the tree; a cached, valid .deb is not fetched again.
    (tmp_path / "mirror/pool/main/d/dash/dash_1_amd64.deb").unlink()
    fake_build(tmp_path, url, packages=["dash"], force=True)
    assert not (out / "usr/bin/busybox").exists() and (out / "usr/bin/dash").exists()
    assert leftovers(out) == []


def test_file_url_mirror(tmp_path):
    m = fake_mirror(tmp_path, fake_debs())
    out = fake_build(tmp_path, m.as_uri(), packages=["dash"])
    assert (out / "usr/bin/dash").read_text() == "dash"
    (m / "pool/main/d/dash/dash_1_amd64.deb").unlink()
    with pytest.raises(Error, match="dash: file://.*not found"):
        fake_build(tmp_path, m.as_uri(), out=tmp_path / "out/t2", packages=["dash"],
                   cachedir=str(tmp_path / "cache2"))


def test_fake_mirror_checksum_mismatches(tmp_path, serve):
    debs = fake_debs()
    url = serve(fake_mirror(tmp_path, debs, release_tamper=True))
    with pytest.raises(Error, match="Packages.xz does not match the Release file.*SHA256 mismatch"):
        fake_build(tmp_path, url)
    assert not (tmp_path / "out/tree").exists() and leftovers(tmp_path / "out/tree") == []


def test_fake_mirror_deb_checksum_mismatch_leaves_nothing(tmp_path, serve):
    m = fake_mirror(tmp_path, fake_debs())
    deb = m / "pool/main/l/libc6/libc6_1_amd64.deb"
    deb.write_bytes(deb.read_bytes()[:-1] + b"X")  # same size, different bytes
    url = serve(m)
    with pytest.raises(Error, match="libc6: .*SHA256 mismatch"):
        fake_build(tmp_path, url)
    assert not (tmp_path / "out/tree").exists() and leftovers(tmp_path / "out/tree") == []
    assert not list((tmp_path / "cache").glob("libc6*"))


def test_failed_unpack_leaves_nothing(tmp_path, serve):
    debs = fake_debs()
    debs["evil"] = (make_deb([("./ok", "file", "x", 0o644), ("../evil", "file", "x", 0o644)]),
                    "")
    url = serve(fake_mirror(tmp_path, debs))
    out = tmp_path / "out" / "tree"
    with pytest.raises(UnsafeArchive):
        fake_build(tmp_path, url, packages=["dash", "evil"])
    assert not out.exists() and leftovers(out) == []
    assert not (tmp_path / "out/evil").exists() and not (tmp_path / "evil").exists()
    # An existing tree survives a failed --force rebuild.
    fake_build(tmp_path, url, packages=["dash"])
    with pytest.raises(UnsafeArchive):
        fake_build(tmp_path, url, packages=["dash", "evil"], force=True)
    assert (out / "usr/bin/dash").exists() and leftovers(out) == []


def test_cli_errors(tmp_path, serve):
    url = serve(fake_mirror(tmp_path, fake_debs()))
    (tmp_path / "out").mkdir()
    out = tmp_path / "out/tree"
    common = ["--mirror", url, "--suite", "testing-fake", "--keyring", "none",
              "--cache", tmp_path / "cache"]
    r = run_tool("debian-tree", *common, out, "dash", "no-such-pkg", "nor-this")
    assert_one_line_error(r, "debian-tree", "no such packages in the index: no-such-pkg, nor-this")
    assert not out.exists() and leftovers(out) == []
    r = run_tool("debian-tree", *common, "--arch", "s390x", out)
    assert_one_line_error(r, "debian-tree", "lists no main/binary-s390x/Packages.xz")
    r = run_tool("debian-tree", *common, tmp_path / "nodir/tree")
    assert_one_line_error(r, "debian-tree", "no such directory")
    r = run_tool("debian-tree", *common, "-q", out, "dash")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    r = run_tool("debian-tree", *common, out, "dash")
    assert_one_line_error(r, "debian-tree", "already exists.*--force")
    r = run_tool("debian-tree", "--mirror", "http://127.0.0.1:9", tmp_path / "out/t2", env={})
    assert_one_line_error(r, "debian-tree", "127.0.0.1:9")


@pytest.mark.parametrize("tool", ["debian-tree", "alpine-tree", "alpine-from-quicksand"])
def test_help(tool):
    r = run_tool(tool, "--help")
    assert r.returncode == 0 and "OUT_DIR" in r.stdout and "--force" in r.stdout


# ---------------------------------------------------------------- alpine

def alpine_mirror(tmp_path, release="3.20.3", tamper=False):
    tgz = make_tar([
        ("./", "dir", None, 0o755), ("./bin/", "dir", None, 0o755),
        ("./bin/busybox", "file", "bb", 0o755), ("./bin/sh", "symlink", "/bin/busybox", 0o777),
        ("./etc/", "dir", None, 0o755), ("./etc/alpine-release", "file", release, 0o644),
        ("./tmp/", "dir", None, 0o1777),
    ], compression="gz")
    mm = ".".join(release.split(".")[:2])
    d = tmp_path / "alpine" / f"v{mm}" / "releases" / "x86_64"
    d.mkdir(parents=True)
    name = f"alpine-minirootfs-{release}-x86_64.tar.gz"
    (d / name).write_bytes(tgz)
    digest = sha(tgz if not tamper else tgz + b"x")
    (d / f"{name}.sha256").write_text(f"{digest}  {name}\n")
    return tmp_path / "alpine", tgz


def test_alpine_from_local_server(tmp_path, serve):
    m, tgz = alpine_mirror(tmp_path)
    url = serve(m)
    out = tmp_path / "alp"
    r = run_tool("alpine-tree", "--mirror", url, "--cache", tmp_path / "c", out)
    assert r.returncode == 0, r.stderr
    assert (out / "bin/busybox").read_text() == "bb"
    assert os.readlink(out / "bin/sh") == "/bin/busybox"
    assert stat.S_IMODE((out / "bin/busybox").stat().st_mode) == 0o755
    assert stat.S_IMODE((out / "tmp").stat().st_mode) == 0o1777
    assert (out / "proc").is_dir()
    assert (tmp_path / "c/alpine-minirootfs-3.20.3-x86_64.tar.gz").read_bytes() == tgz
    # --url with --sha256, env var mirror, --force
    r = run_tool("alpine-tree", "--force", "--url",
                 f"{url}/v3.20/releases/x86_64/alpine-minirootfs-3.20.3-x86_64.tar.gz",
                 "--sha256", sha(tgz), "--cache", tmp_path / "c2", out)
    assert r.returncode == 0, r.stderr
    assert leftovers(out) == []


def test_alpine_errors(tmp_path, serve):
    m, tgz = alpine_mirror(tmp_path)
    url = serve(m)
    out = tmp_path / "alp"
    c = ["--cache", tmp_path / "c"]
    r = run_tool("alpine-tree", "--mirror", url, "--release", "3.99.1", *c, out)
    assert_one_line_error(r, "alpine-tree", "HTTP 404.*no such release '3.99.1'")
    r = run_tool("alpine-tree", "--mirror", url, "--release", "latest-stable", *c, out)
    assert_one_line_error(r, "alpine-tree", "invalid release 'latest-stable'")
    r = run_tool("alpine-tree", *c, out, env={"BLINKROOT_ALPINE_MIRROR": ""})
    assert_one_line_error(r, "alpine-tree", "no Alpine mirror")
    r = run_tool("alpine-tree", "--mirror", url, "--sha256", "0" * 64, *c, out)
    assert_one_line_error(r, "alpine-tree", "SHA256 mismatch")
    r = run_tool("alpine-tree", "--mirror", url, "--sha256", "xyz", *c, out)
    assert_one_line_error(r, "alpine-tree", "not a 64-digit hex")
    assert not out.exists() and leftovers(out) == []
    assert not list((tmp_path / "c").glob("*")) if (tmp_path / "c").exists() else True


def test_alpine_published_checksum_mismatch(tmp_path, serve):
    m, _ = alpine_mirror(tmp_path, release="3.19.4", tamper=True)
    url = serve(m)
    out = tmp_path / "alp"
    r = run_tool("alpine-tree", "--mirror", url, "--release", "3.19.4",
                 "--cache", tmp_path / "c", out, env={})
    assert_one_line_error(r, "alpine-tree", "alpine-minirootfs-3.19.4-x86_64.tar.gz: "
                                            "SHA256 mismatch")
    assert not out.exists() and leftovers(out) == []


def test_alpine_sha256_file_parsing():
    h = "ab" * 32
    assert alpine.parse_sha256_file(f"{h}  x.tar.gz\n", "x.tar.gz") == h
    assert alpine.parse_sha256_file(f"{'cd' * 32}  y\n{h} *x.tar.gz\n", "x.tar.gz") == h
    assert alpine.parse_sha256_file(f"{h}\n", "x.tar.gz") == h
    with pytest.raises(Error, match="no SHA256 for x.tar.gz"):
        alpine.parse_sha256_file("garbage\n", "x.tar.gz")
    assert alpine.release_url("http://m/alpine/", "3.20.3") == \
        "http://m/alpine/v3.20/releases/x86_64/alpine-minirootfs-3.20.3-x86_64.tar.gz"


# ---------------------------------------------------------------- the real thing

def machine_debian_mirror():
    """The Debian mirror this machine's apt uses, else $BLINKROOT_DEBIAN_MIRROR or the default."""
    env = os.environ.get(debian.MIRROR_ENV)
    if env:
        return env
    files = glob.glob("/etc/apt/sources.list") + sorted(glob.glob("/etc/apt/sources.list.d/*"))
    for f in files:
        try:
            text = Path(f).read_text()
        except OSError:
            continue
        uris = re.findall(r"^URIs:\s*(\S+)", text, re.M)
        uris += re.findall(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\s", text, re.M)
        for u in uris:
            if u.rstrip("/").endswith("/debian"):
                return u.rstrip("/")
    return debian.DEFAULT_MIRROR


@pytest.fixture(scope="session")
def debian_tree():
    mirror = machine_debian_mirror()
    try:
        urllib.request.urlopen(f"{mirror}/dists/bookworm/Release", timeout=20).close()
    except OSError as e:
        pytest.skip(f"Debian mirror {mirror} unreachable: {e}")
    BUILD.mkdir(exist_ok=True)
    out = BUILD / "debian-tree"
    start = time.monotonic()
    r = run_tool("debian-tree", "--force", "--mirror", mirror, out)
    assert r.returncode == 0, r.stderr
    print(f"\ndebian-tree built {out} in {time.monotonic() - start:.1f} s")
    return out


def test_debian_tree_default_packages(debian_tree):
    t = debian_tree
    for d in ("bin", "sbin", "lib", "lib64"):
        assert os.readlink(t / d) == f"usr/{d}"
    assert (t / "bin/dash").is_file() and (t / "usr/bin/busybox").is_file()
    assert os.readlink(t / "bin/sh") == "dash"
    assert (t / "usr/bin/ls").is_file() and not (t / "usr/bin/ls").is_symlink()  # coreutils
    assert (t / "usr/bin/grep").is_file() and (t / "usr/bin/sed").is_file()
    assert os.readlink(t / "usr/bin/vi") == "busybox"
    assert os.readlink(t / "usr/sbin/ifconfig") in ("../bin/busybox", "busybox")
    assert os.readlink(t / "usr/bin/awk") == "mawk"
    assert (t / "etc/passwd").read_text().startswith("root:")
    assert ":/root:/bin/sh\n" in (t / "etc/passwd").read_text()
    assert (t / "etc/group").exists() and (t / "etc/hostname").exists()
    assert "bookworm" in (t / "etc/os-release").read_text()
    assert (t / "lib64/ld-linux-x86-64.so.2").is_symlink()
    assert (t / "usr/lib/x86_64-linux-gnu/libc.so.6").exists()
    assert stat.S_IMODE((t / "tmp").stat().st_mode) == 0o1777
    assert (t / "proc").is_dir() and (t / "dev").is_dir() and (t / "root").is_dir()
    assert leftovers(t) == []


@pytest.mark.skipif(not (sys.platform.startswith("linux") and platform.machine() == "x86_64"
                         and os.geteuid() == 0), reason="needs root on x86-64 Linux (chroot)")
def test_debian_tree_runs_natively_in_chroot(debian_tree):
    r = subprocess.run(["chroot", str(debian_tree), "/bin/sh", "-c",
                        "echo hi | sed s/hi/ok/; ls /usr/bin/dash; busybox true && "
                        "grep -c root /etc/passwd; vi --help 2>&1 | head -n1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:3] == ["ok", "/usr/bin/dash", "1"] and lines[3].startswith("BusyBox")


# ---------------------------------------------------------------- dpkg database

def test_status_stanza_in_dpkg_field_order():
    control = ("Package: p\nVersion: 1\nArchitecture: amd64\nMaintainer: M <m@x>\n"
               "Installed-Size: 3\nDepends: a\nHomepage: https://x\nSection: utils\n"
               "Priority: optional\nDescription: short\n long\n .\n more\n")
    assert debian.status_stanza(control, [("/etc/p.conf", "0" * 32)]) == (
        "Package: p\nStatus: install ok installed\nPriority: optional\nSection: utils\n"
        "Installed-Size: 3\nMaintainer: M <m@x>\nArchitecture: amd64\nVersion: 1\n"
        "Depends: a\nConffiles:\n /etc/p.conf " + "0" * 32 + "\n"
        "Description: short\n long\n .\n more\nHomepage: https://x\n")


def test_debian_tree_dpkg_database(debian_tree):
    db = debian_tree / "var/lib/dpkg"
    status = (db / "status").read_text()
    names = re.findall(r"^Package: (\S+)$", status, re.M)
    assert names == sorted(names) and {"dpkg", "coreutils", "libc6", "sed"} <= set(names)
    assert status.count("Status: install ok installed\n") == len(names)
    assert (db / "info/sed.list").read_text().startswith("/.\n/bin\n/bin/sed\n")
    assert (db / "info/libc6:amd64.list").is_file()  # Multi-Arch: same
    assert (db / "info/sed.md5sums").is_file() and (db / "info/format").read_text() == "1\n"
    assert "/usr/share/debianutils/shells.d debianutils/noawait" in \
        (db / "triggers/File").read_text()


def dpkg_queries(run):
    return [run(["/usr/bin/dpkg", "-l"]), run(["/usr/bin/dpkg", "-L", "sed"]),
            run(["/usr/bin/dpkg", "-s", "coreutils"])]


def _blink_in(tree):
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C", "COLUMNS": "120"}
    return lambda argv: subprocess.run(
        [sys.executable, "-m", "blinkroot", "-C", str(tree), *argv], capture_output=True,
        text=True, env=env, timeout=120, stdin=subprocess.DEVNULL)


def test_debian_tree_dpkg_under_blinkroot(debian_tree):
    dl, dL, ds = dpkg_queries(_blink_in(debian_tree))
    assert dl.returncode == 0, dl.stderr
    rows = [ln.split() for ln in dl.stdout.splitlines() if ln.startswith("ii ")]
    assert {"dash", "dpkg", "sed", "libc6:amd64"} <= {r[1] for r in rows}
    assert dL.returncode == 0 and "/bin/sed" in dL.stdout.splitlines(), dL.stderr
    assert ds.returncode == 0 and "Status: install ok installed" in ds.stdout, ds.stderr


@pytest.mark.skipif(not (sys.platform.startswith("linux") and platform.machine() == "x86_64"
                         and os.geteuid() == 0), reason="needs root on x86-64 Linux (chroot)")
def test_debian_tree_dpkg_same_as_chroot(debian_tree, tmp_path):
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C", "COLUMNS": "120"}

    def native(argv):
        return subprocess.run(["chroot", str(debian_tree), *argv], capture_output=True,
                              text=True, env=env, timeout=120, stdin=subprocess.DEVNULL)
    for emu, nat in zip(dpkg_queries(_blink_in(debian_tree)), dpkg_queries(native)):
        assert (emu.returncode, emu.stdout, emu.stderr) == \
            (nat.returncode, nat.stdout, nat.stderr)
    # dpkg itself rewrites the status file it reads the same: nothing pending, nothing lost.
    copy = tmp_path / "t"
    shutil.copytree(debian_tree, copy, symlinks=True)
    subprocess.run(["chroot", str(copy), "/usr/bin/dpkg", "--configure", "-a"],
                   capture_output=True, env=env, timeout=120)
    assert (copy / "var/lib/dpkg/status").read_text() == \
        (debian_tree / "var/lib/dpkg/status").read_text()
