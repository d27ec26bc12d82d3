"""debian-tree: build a root tree from Debian binary packages, without apt or dpkg.

Steps: fetch the suite's InRelease (or Release) and check its signature when
gpgv and a keyring are at hand; fetch main/binary-ARCH/Packages.xz and check
it against the SHA256 in Release; resolve Depends and Pre-Depends; download
the .debs into the cache checking each SHA256 from Packages; unpack them with
the safe extractor; then do the few things maintainer scripts would do for a
minimal usable tree (merged-/usr links, /bin/sh, busybox applet links,
/etc/passwd and friends, /tmp, /proc, /dev, ...) and write dpkg's database.
"""

import argparse
import hashlib
import io
import lzma
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import OrderedDict

from . import cache
from .ar import read_ar
from .common import Error, Log, StagedTree, download, fetch_bytes, human_size, report_done
from .extract import Extractor, resolve_in_tree

PROG = "debian-tree"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
MIRROR_ENV = "BLINKROOT_DEBIAN_MIRROR"
DEFAULT_SUITE = "bookworm"
DEFAULT_ARCH = "amd64"
DEFAULT_PACKAGES = ["base-files", "base-passwd", "dash", "busybox-static",
                    "coreutils", "libc6", "grep", "sed"]
DEFAULT_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
# Suites whose trees are not merged-/usr (debootstrap's default changed in bullseye).
UNMERGED_SUITES = {"jessie", "stretch", "buster", "oldoldstable"}
MERGED_USR_DIRS = ["bin", "sbin", "lib", "lib64"]
PRIORITY_RANK = {"required": 0, "important": 1, "standard": 2, "optional": 3, "extra": 4}
FIELDS = {"Package", "Version", "Architecture", "Depends", "Pre-Depends", "Provides",
          "Filename", "Size", "SHA256", "Priority", "Essential"}
# update-alternatives links that postinst scripts would make: link -> candidates.
ALTERNATIVES = [
    ("usr/bin/awk", ["usr/bin/mawk", "usr/bin/gawk", "usr/bin/original-awk"]),
    ("usr/bin/which", ["usr/bin/which.debianutils"]),
    ("usr/bin/pager", ["usr/bin/less", "usr/bin/more"]),
]


# ---------------------------------------------------------------- indexes

def parse_release_sha256(text):
    """{path: (sha256, size)} from the SHA256 section of a Release/InRelease text."""
    out = {}
    in_section = False
    for line in text.splitlines():
        if line.startswith("-----BEGIN PGP SIGNATURE"):
            break
        if not line[:1].isspace():
            in_section = line.rstrip() == "SHA256:"
            continue
        if in_section:
            f = line.split()
            if len(f) == 3:
                out[f[2]] = (f[0].lower(), int(f[1]))
    return out


def parse_packages(text):
    """Parse a Packages file: {name: {field: value}} (first stanza of a name wins)."""
    pkgs = {}
    for para in text.split("\n\n"):
        rec = {}
        for line in para.split("\n"):
            if not line or line[0] in " \t":
                continue
            key, sep, value = line.partition(":")
            if sep and key in FIELDS:
                rec[key] = value.strip()
        name = rec.get("Package")
        if name and name not in pkgs:
            pkgs[name] = rec
    return pkgs


_DEP_JUNK = re.compile(r"\([^)]*\)|\[[^\]]*\]|<[^>]*>")


def parse_depends(value):
    """'a (>= 1) | b, c:any' -> [['a', 'b'], ['c']] (versions/arch/profiles dropped)."""
    groups = []
    if not value:
        return groups
    for group in value.split(","):
        alts = []
        for alt in group.split("|"):
            alt = _DEP_JUNK.sub("", alt).strip()
            if alt:
                alts.append(alt.split(":", 1)[0])
        if alts:
            groups.append(alts)
    return groups


class Index:
    def __init__(self, packages):
        self.packages = packages
        self.providers = {}
        for name, rec in packages.items():
            for group in parse_depends(rec.get("Provides", "")):
                for virt in group:
                    self.providers.setdefault(virt, []).append(name)

    @classmethod
    def from_text(cls, text):
        return cls(parse_packages(text))

    def pick(self, name, chosen=()):
        """The real package that satisfies `name`, or None."""
        if name in self.packages:
            return name
        provs = self.providers.get(name)
        if not provs:
            return None
        for p in provs:
            if p in chosen:
                return p
        return min(provs, key=lambda p: (
            PRIORITY_RANK.get(self.packages[p].get("Priority", "optional"), 9), p))

    def resolve(self, requested, exclude=()):
        """Requested names plus everything they Depend/Pre-Depend on, recursively.

        Takes the first alternative that exists (or is provided), ignoring
        versions. Excluded names count as satisfied but are not installed.
        Returns the list of real package names, requested ones first.
        """
        exclude = set(exclude)
        chosen = OrderedDict()
        missing = []
        for name in requested:
            real = self.pick(name, chosen)
            if real is None:
                missing.append(name)
            elif real not in exclude:
                chosen[real] = None
        if missing:
            raise Error(f"no such package{'s' if len(missing) > 1 else ''} "
                        f"in the index: {', '.join(missing)}")
        queue = list(chosen)
        while queue:
            name = queue.pop(0)
            rec = self.packages[name]
            for field in ("Pre-Depends", "Depends"):
                for alts in parse_depends(rec.get(field, "")):
                    if any(self._satisfied(a, chosen, exclude) for a in alts):
                        continue
                    for alt in alts:
                        real = self.pick(alt, chosen)
                        if real is not None:
                            chosen[real] = None
                            queue.append(real)
                            break
                    else:
                        raise Error(f"{name}: cannot satisfy {field} on "
                                    f"{' | '.join(alts)}: not in the index")
        return list(chosen)

    def _satisfied(self, name, chosen, exclude):
        if name in chosen or name in exclude:
            return True
        return any(p in chosen or p in exclude for p in self.providers.get(name, ()))


# ---------------------------------------------------------------- .deb files

def deb_data_member(data, label):
    """(name, bytes) of the data.tar* member of a .deb, after sanity checks."""
    members = list(read_ar(data))
    if not members or members[0][0] != "debian-binary" or not members[0][1].startswith(b"2."):
        raise Error(f"{label}: not a Debian binary package (no debian-binary 2.x)")
    for name, body in members:
        if name.startswith("data.tar"):
            return name, body
    raise Error(f"{label}: no data.tar member")


def open_data_tar(name, body, label):
    """A file object yielding the uncompressed tar stream of a data.tar* member."""
    if name == "data.tar":
        return io.BytesIO(body)
    if name == "data.tar.xz":
        return lzma.open(io.BytesIO(body))
    if name == "data.tar.gz":
        import gzip
        return gzip.open(io.BytesIO(body))
    if name == "data.tar.bz2":
        import bz2
        return bz2.open(io.BytesIO(body))
    if name == "data.tar.zst":
        raise Error(f"{label}: {name} is zstd-compressed, which Python's standard "
                    "library cannot read; pick another package or suite")
    raise Error(f"{label}: unknown data member compression {name}")


def deb_control_members(data, label):
    """{name: bytes} of the control.tar* member of a .deb (control, md5sums, postinst, ...)."""
    for name, body in read_ar(data):
        if name.startswith("control.tar"):
            stream = open_data_tar(name.replace("control", "data", 1), body, label)
            out = {}
            try:
                with tarfile.open(fileobj=stream, mode="r|*") as tf:
                    for m in tf:
                        parts = [p for p in m.name.split("/") if p not in ("", ".")]
                        if m.isreg() and len(parts) == 1:
                            out[parts[0]] = tf.extractfile(m).read()
            except (tarfile.TarError, lzma.LZMAError, EOFError) as e:
                raise Error(f"{label}: corrupt {name}: {e}") from None
            return out
    raise Error(f"{label}: no control.tar member")


def unpack_deb(path, extractor, label=None):
    """Unpack a .deb's data into the tree; returns (member paths, control members)."""
    label = label or os.path.basename(path)
    with open(path, "rb") as f:
        data = f.read()
    name, body = deb_data_member(data, label)
    stream = open_data_tar(name, body, label)
    extractor.record = names = []
    try:
        extractor.extract_tar(stream, label)
    except (lzma.LZMAError, OSError, EOFError) as e:
        if isinstance(e, OSError) and e.errno is not None:
            raise
        raise Error(f"{label}: corrupt {name}: {e}") from None
    finally:
        extractor.record = None
    return names, deb_control_members(data, label)


# ---------------------------------------------------------------- dpkg database

# Control members dpkg keeps in /var/lib/dpkg/info/PKG.NAME ("control" goes to status).
DPKG_INFO_SKIP = {"control"}


# The order dpkg writes a status stanza's fields in (lib/dpkg/parse.c's fieldinfos);
# other fields follow in their control-file order.
DPKG_FIELD_ORDER = [
    "Package", "Essential", "Protected", "Status", "Priority", "Section", "Installed-Size",
    "Origin", "Maintainer", "Bugs", "Architecture", "Multi-Arch", "Source", "Version",
    "Config-Version", "Replaces", "Provides", "Depends", "Pre-Depends", "Recommends",
    "Suggests", "Breaks", "Conflicts", "Enhances", "Conffiles", "Filename", "Size", "MD5sum",
    "MSDOS-Filename", "Description", "Triggers-Pending", "Triggers-Awaited"]
_ORDER = {f.lower(): i for i, f in enumerate(DPKG_FIELD_ORDER)}


def _control_fields(text):
    """[(name, 'Name: value\\n continuation...')] of a control stanza, in file order."""
    fields = []
    for ln in text.rstrip("\n").split("\n"):
        if ln[:1] in (" ", "\t") and fields:
            fields[-1] = (fields[-1][0], fields[-1][1] + "\n" + ln)
        elif ":" in ln:
            fields.append((ln.split(":", 1)[0].strip(), ln))
    return fields


def status_stanza(control_text, conffiles=()):
    """The status stanza dpkg writes for an installed package with this control file."""
    fields = [f for f in _control_fields(control_text) if f[0].lower() != "status"]
    fields.append(("Status", "Status: install ok installed"))
    if conffiles:
        fields.append(("Conffiles", "Conffiles:\n" + "\n".join(
            f" {path} {digest}" for path, digest in conffiles)))
    known = sorted((f for f in fields if f[0].lower() in _ORDER),
                   key=lambda f: _ORDER[f[0].lower()])
    rest = [f for f in fields if f[0].lower() not in _ORDER]
    return "".join(line + "\n" for _, line in known + rest)


def write_dpkg_database(root, installed, arch, log):
    """A dpkg database for the unpacked packages, as dpkg itself leaves it:

    status (each control stanza in dpkg's field order with `Status: install ok
    installed`, and Conffiles with the md5sums of the installed files), info/PKG.list
    (the data members, "/." first), info/PKG.{md5sums,conffiles,postinst,...} from
    control.tar, info/format, available, diversions, statoverride, updates/,
    triggers/ (File, NAME: the interests; nothing pending). Multi-Arch: same packages use PKG:ARCH as their info name.
    installed: [(name, member paths, control members)].
    """
    db = resolve_in_tree(root, ["var", "lib", "dpkg"], follow_last=True)
    info = os.path.join(db, "info")
    for d in (db, info, os.path.join(db, "updates"), os.path.join(db, "triggers"),
              os.path.join(db, "alternatives"), os.path.join(db, "parts")):
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o755)
    stanzas = {}
    for name, members, control in installed:
        text = control.get("control", b"").decode("utf-8", "replace")
        fields = parse_packages(text).get(name, {})
        pkg_arch = fields.get("Architecture", arch)
        multi_same = re.search(r"^Multi-Arch:\s*same\s*$", text, re.M | re.I)
        iname = f"{name}:{pkg_arch}" if multi_same else name
        conffiles = []
        for c in control.get("conffiles", b"").decode().split():
            try:
                with open(_tree_path(root, c.lstrip("/")), "rb") as f:
                    digest = hashlib.md5(f.read()).hexdigest()
            except (OSError, Error):
                digest = "newconffile"
            conffiles.append((c, digest))
        stanzas[iname] = status_stanza(text, conffiles)
        with open(os.path.join(info, f"{iname}.list"), "w") as f:
            f.write("".join(f"{m.rstrip('/') or '/.'}\n" for m in members))
        for member, body in control.items():
            if member in DPKG_INFO_SKIP:
                continue
            path = os.path.join(info, f"{iname}.{member}")
            with open(path, "wb") as f:
                f.write(body)
            os.chmod(path, 0o755 if body.startswith(b"#!") else 0o644)
    with open(os.path.join(db, "status"), "w") as f:
        f.write("".join(stanzas[k] + "\n" for k in sorted(stanzas)))
    # The triggers database: interests from each package's triggers file (file
    # triggers in triggers/File, named ones in triggers/NAME), nothing pending.
    files, named = [], {}
    for iname in sorted(stanzas):
        path = os.path.join(info, f"{iname}.triggers")
        if not os.path.isfile(path):
            continue
        with open(path) as f:
            for ln in f:
                w = ln.split()
                if len(w) == 2 and w[0] in ("interest", "interest-await", "interest-noawait"):
                    who = iname + ("/noawait" if w[0].endswith("noawait") else "")
                    if w[1].startswith("/"):
                        files.append(f"{w[1]} {who}\n")
                    else:
                        named.setdefault(w[1], []).append(f"{who}\n")
    trig = os.path.join(db, "triggers")
    for fname, lines in [("File", files), ("Unincorp", [])] + sorted(named.items()):
        if fname == "File" and not lines:
            continue
        with open(os.path.join(trig, fname), "w") as f:
            f.write("".join(lines))
    for fname, content in (("available", ""), ("diversions", ""), ("statoverride", ""),
                           ("info/format", "1\n")):
        path = os.path.join(db, fname)
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write(content)
            os.chmod(path, 0o644)
    log(f"wrote the dpkg database ({len(stanzas)} packages)")


# ---------------------------------------------------------------- tree setup

def _tree_path(root, rel):
    """Host path of a tree path, following in-tree symlinks on the way (not the last)."""
    return resolve_in_tree(root, rel.split("/"), follow_last=False, create_dirs=False)


def _exists(root, rel):
    try:
        return os.path.lexists(_tree_path(root, rel))
    except (OSError, Error):
        return False


def _symlink(root, rel, target):
    path = _tree_path(root, rel)
    if not os.path.lexists(path):
        os.symlink(target, path)
        return True
    return False


def make_merged_usr(root):
    for d in MERGED_USR_DIRS:
        os.makedirs(os.path.join(root, "usr", d), mode=0o755, exist_ok=True)
        os.symlink(f"usr/{d}", os.path.join(root, d))


def busybox_applets(root, busybox_rel, log):
    """[(dir, name)] for busybox's applets, dir being e.g. 'usr/bin' or 'sbin'.

    Asks busybox itself (`--list-full`): natively when the host is x86-64
    Linux, else under blinkroot if it is importable. Failing both, reads the
    applet name table embedded in the binary (every applet then goes to
    usr/bin, as install locations are not recoverable that way).
    """
    host = os.path.realpath(_tree_path(root, busybox_rel))
    cmds = []
    if sys.platform.startswith("linux") and platform.machine() in ("x86_64", "AMD64"):
        cmds.append([host, "--list-full"])
    try:
        import blinkroot  # noqa: F401
        cmds.append([sys.executable, "-m", "blinkroot", host, "--list-full"])
    except ImportError:
        pass
    for cmd in cmds:
        try:
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               timeout=120)
        except (OSError, subprocess.SubprocessError):
            continue
        lines = r.stdout.decode("ascii", "replace").split()
        if r.returncode == 0 and lines:
            out = []
            for line in lines:
                d, _, n = line.rpartition("/")
                if n and "/" not in n and n not in (".", ".."):
                    out.append((d, n))
            return out
    with open(host, "rb") as f:
        names = applet_names_from_binary(f.read())
    if names:
        log("busybox could not be run here; using its embedded applet table")
        return [("usr/bin", n) for n in names]
    log.warn("busybox applet list not found; no applet links made")
    return []


_APPLET_RE = re.compile(rb"^[A-Za-z0-9_.+\[\]-]+$")


def applet_names_from_binary(data):
    """Applet names from busybox's sorted NUL-separated name table ('[', '[[', ...)."""
    start = data.find(b"[\0[[\0")
    if start < 0:
        return []
    names = []
    pos = start
    while True:
        end = data.find(b"\0", pos)
        if end < 0:
            break
        s = data[pos:end]
        if not _APPLET_RE.match(s) or (names and s <= names[-1]):
            break
        names.append(s)
        pos = end + 1
    return [n.decode() for n in names]


PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
bin:x:2:2:bin:/bin:/usr/sbin/nologin
sys:x:3:3:sys:/dev:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
"""
GROUP = """root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
staff:x:50:
users:x:100:
nogroup:x:65534:
"""


def _write_if_missing(root, rel, text, mode=0o644):
    path = _tree_path(root, rel)
    if os.path.lexists(path):
        return
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def _fix_login_shells(root):
    """Point login shells that the tree lacks (base-passwd's /bin/bash) at /bin/sh."""
    path = _tree_path(root, "etc/passwd")
    with open(path) as f:
        lines = f.read().splitlines()
    out = []
    for line in lines:
        f = line.split(":")
        if len(f) == 7 and f[6] and not f[6].endswith("nologin") and f[6] != "/bin/false" \
                and not _exists(root, f[6].lstrip("/")):
            f[6] = "/bin/sh"
        out.append(":".join(f))
    with open(path, "w") as fh:
        fh.write("\n".join(out) + "\n")


def finish_tree(root, log):
    """What maintainer scripts would do, enough for a minimal usable tree."""
    for rel, mode in (("tmp", 0o1777), ("var/tmp", 0o1777), ("root", 0o700),
                      ("proc", 0o555), ("sys", 0o555), ("dev", 0o755), ("run", 0o755),
                      ("home", 0o755), ("etc", 0o755), ("usr/bin", 0o755),
                      ("usr/sbin", 0o755)):
        path = resolve_in_tree(root, rel.split("/"), follow_last=True)
        os.makedirs(path, exist_ok=True)
        os.chmod(path, mode)
    # /etc/passwd and /etc/group: base-passwd's postinst copies its masters.
    for name in ("passwd", "group"):
        master = _tree_path(root, f"usr/share/base-passwd/{name}.master")
        if os.path.isfile(master) and not _exists(root, f"etc/{name}"):
            shutil.copyfile(master, _tree_path(root, f"etc/{name}"))
            os.chmod(_tree_path(root, f"etc/{name}"), 0o644)
    _write_if_missing(root, "etc/passwd", PASSWD)
    _fix_login_shells(root)
    _write_if_missing(root, "etc/group", GROUP)
    _write_if_missing(root, "etc/hostname", "blinkroot\n")
    _write_if_missing(root, "etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n")
    # update-alternatives links.
    for link, candidates in ALTERNATIVES:
        for cand in candidates:
            if _exists(root, cand) and _symlink(root, link, os.path.basename(cand)):
                break
    # /bin/sh: dash's postinst makes it; else busybox.
    busybox = next((p for p in ("usr/bin/busybox", "bin/busybox") if _exists(root, p)), None)
    if _exists(root, "usr/bin/dash") or _exists(root, "bin/dash"):
        _symlink(root, "usr/bin/sh", "dash")
    elif busybox:
        _symlink(root, "usr/bin/sh", "busybox")
    # busybox --install -s, without replacing anything that exists.
    if busybox:
        made = 0
        bb_dir = os.path.dirname(os.path.realpath(_tree_path(root, busybox)))
        for d, name in busybox_applets(root, busybox, log):
            d = d or "usr/bin"
            base = name
            if any(_exists(root, f"{x}/{base}") for x in ("usr/bin", "usr/sbin", "bin", "sbin")):
                continue
            linkdir = resolve_in_tree(root, d.split("/"), follow_last=True)
            os.makedirs(linkdir, exist_ok=True)
            target = os.path.relpath(os.path.join(bb_dir, "busybox"), os.path.realpath(linkdir))
            os.symlink(target, os.path.join(linkdir, base))
            made += 1
        log(f"made {made} busybox applet links")


# ---------------------------------------------------------------- main

def _check_signature(inrelease, keyring, log):
    """Check a clearsigned InRelease with gpgv when gpgv and the keyring exist."""
    gpgv = shutil.which("gpgv")
    if keyring == "none":
        return
    if not gpgv or not os.path.isfile(keyring):
        log(f"InRelease signature not checked (needs gpgv and {keyring})")
        return
    with tempfile.TemporaryDirectory() as td:
        f = os.path.join(td, "InRelease")
        with open(f, "wb") as fh:
            fh.write(inrelease)
        r = subprocess.run([gpgv, "--keyring", keyring, f],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if r.returncode != 0:
        first = (r.stderr.decode(errors="replace").strip().splitlines() or ["?"])[-1]
        raise Error(f"InRelease signature check failed with {keyring} ({first}); "
                    "pass --keyring FILE, or --keyring none to skip the check")
    log("InRelease signature OK")


def load_index(mirror, suite, arch, cachedir, keyring, log):
    """Fetch and verify Packages.xz for suite/main/arch; return an Index."""
    base = f"{mirror.rstrip('/')}/dists/{suite}"
    rel_path = f"main/binary-{arch}/Packages.xz"
    log(f"fetching {base}/InRelease")
    release = fetch_bytes(f"{base}/InRelease", missing_ok=True)
    if release is not None:
        _check_signature(release, keyring, log)
    else:
        release = fetch_bytes(f"{base}/Release", missing_ok=True)
    expected = None
    if release is None:
        log.warn(f"no InRelease or Release for {suite}; Packages.xz is not verified")
    else:
        sums = parse_release_sha256(release.decode("utf-8", "replace"))
        if not sums:
            raise Error(f"{base}: Release file has no SHA256 section")
        if rel_path not in sums:
            raise Error(f"{base}: Release file lists no {rel_path} "
                        f"(wrong --arch {arch!r}?)")
        expected = sums[rel_path]
    dest = os.path.join(cachedir, "indexes", f"{suite}_main_{arch}_Packages.xz")
    log(f"fetching Packages.xz ({suite}/main/binary-{arch})")
    try:
        download(f"{base}/{rel_path}", dest,
                 sha256=expected[0] if expected else None,
                 size=expected[1] if expected else None)
    except Error as e:
        if "mismatch" in str(e):
            raise Error(f"Packages.xz does not match the Release file: {e}") from None
        raise
    try:
        with lzma.open(dest) as f:
            text = f.read().decode("utf-8", "replace")
    except lzma.LZMAError as e:
        raise Error(f"{dest}: corrupt Packages.xz: {e}") from None
    if expected is None:
        os.unlink(dest)  # unverified: do not keep it as if it were
    return Index.from_text(text)


def fetch_debs(index, names, mirror, cachedir, log):
    """Download (or find cached) each package's .deb; return [(name, path)]."""
    out = []
    n = len(names)
    total = sum(int(index.packages[p].get("Size", 0) or 0) for p in names)
    log(f"{n} packages, {human_size(total)} of .debs")
    for i, name in enumerate(names, 1):
        rec = index.packages[name]
        fn = rec.get("Filename")
        sha = rec.get("SHA256")
        if not fn or not sha:
            raise Error(f"{name}: Packages entry has no Filename or SHA256")
        size = int(rec.get("Size", 0) or 0) or None
        dest = os.path.join(cachedir, os.path.basename(fn))
        url = f"{mirror.rstrip('/')}/{fn}"
        if not (os.path.isfile(dest) and os.path.getsize(dest) == (size or -1)):
            log(f"downloading {name} ({i}/{n}, {human_size(size or 0)})")
        try:
            download(url, dest, sha256=sha, size=size)
        except Error as e:
            raise Error(f"{name}: {e}") from None
        out.append((name, dest))
    return out


def build(out, packages, mirror=DEFAULT_MIRROR, suite=DEFAULT_SUITE, arch=DEFAULT_ARCH,
          cachedir=None, force=False, exclude=(), merged_usr=None,
          keyring=DEFAULT_KEYRING, dpkg_db=True, log=None):
    log = log or Log(PROG)
    start = time.monotonic()
    cachedir = cache.cache_dir("debs", cachedir)
    staged = StagedTree(out, force)
    staged.check()
    index = load_index(mirror, suite, arch, cachedir, keyring, log)
    names = index.resolve(packages, exclude)
    debs = fetch_debs(index, names, mirror, cachedir, log)
    if merged_usr is None:
        merged_usr = suite not in UNMERGED_SUITES
    with staged as tmp:
        if merged_usr:
            make_merged_usr(tmp)
        ex = Extractor(tmp)
        installed = []
        for name, path in debs:
            log(f"unpacking {name}")
            members, control = unpack_deb(path, ex, name)
            installed.append((name, members, control))
        ex.finish()
        finish_tree(tmp, log)
        if dpkg_db:
            write_dpkg_database(tmp, installed, arch, log)
    report_done(log, staged.out, start, f"{len(names)} packages, ")
    return names


def main(argv=None):
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Build a root tree for `blinkroot -C` from Debian binary packages, "
                    "with Python's standard library only (no apt, no dpkg).",
        epilog=f"Default packages: {' '.join(DEFAULT_PACKAGES)}. Downloads are cached in "
               "$XDG_CACHE_HOME/blinkroot/debs (~/.cache/blinkroot/debs).")
    p.add_argument("--mirror", default=os.environ.get(MIRROR_ENV) or DEFAULT_MIRROR,
                   help=f"Debian mirror base URL (default: ${MIRROR_ENV}, else {DEFAULT_MIRROR})")
    p.add_argument("--suite", default=DEFAULT_SUITE, help="suite (default: %(default)s)")
    p.add_argument("--arch", default=DEFAULT_ARCH, help="architecture (default: %(default)s)")
    p.add_argument("--cache", metavar="DIR", help="where .debs are cached")
    p.add_argument("--force", action="store_true", help="replace OUT_DIR if it exists")
    p.add_argument("--exclude", metavar="PKG", action="append", default=[],
                   help="leave PKG out, treating dependencies on it as met (repeatable)")
    p.add_argument("--no-merged-usr", dest="merged_usr", action="store_false", default=None,
                   help="do not make /bin, /sbin, /lib, /lib64 links into /usr")
    p.add_argument("--keyring", default=DEFAULT_KEYRING,
                   help="OpenPGP keyring for InRelease, checked with gpgv when both exist; "
                        "'none' skips it (default: %(default)s)")
    p.add_argument("--no-dpkg-db", dest="dpkg_db", action="store_false",
                   help="do not write a dpkg database (/var/lib/dpkg)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p.add_argument("out", metavar="OUT_DIR", help="the tree to create")
    p.add_argument("packages", metavar="PACKAGE", nargs="*", help="packages to install")
    a = p.parse_args(argv)
    build(a.out, a.packages or DEFAULT_PACKAGES, mirror=a.mirror, suite=a.suite,
          arch=a.arch, cachedir=a.cache, force=a.force, exclude=a.exclude,
          merged_usr=a.merged_usr, keyring=a.keyring, dpkg_db=a.dpkg_db,
          log=Log(PROG, a.quiet))
