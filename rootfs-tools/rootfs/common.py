"""Errors, progress messages, downloads and the build-in-a-temp-dir wrapper."""

import hashlib
import os
import shutil
import stat
import sys
import tempfile
import time
import urllib.error
import urllib.request

USER_AGENT = "blinkroot-rootfs-tools/0.1"


class Error(Exception):
    """A failure reported to the user as one line, without a traceback."""


class Log:
    """Progress lines on stderr, prefixed with the command's name."""

    def __init__(self, prog, quiet=False):
        self.prog = prog
        self.quiet = quiet

    def __call__(self, msg):
        if not self.quiet:
            print(f"{self.prog}: {msg}", file=sys.stderr, flush=True)

    def warn(self, msg):
        print(f"{self.prog}: warning: {msg}", file=sys.stderr, flush=True)


def human_size(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # not reached


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _open_url(url, timeout):
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    return urllib.request.urlopen(req, timeout=timeout)


def fetch_bytes(url, timeout=60, attempts=3, missing_ok=False):
    """GET url into memory. Returns None on 404/410 when missing_ok."""
    for attempt in range(attempts):
        try:
            with _open_url(url, timeout) as r:
                return r.read()
        except urllib.error.HTTPError as e:
            if missing_ok and e.code in (404, 410):
                return None
            raise Error(f"{url}: HTTP {e.code} {e.reason}") from None
        except FileNotFoundError:  # file:// URLs
            if missing_ok:
                return None
            raise Error(f"{url}: not found") from None
        except (urllib.error.URLError, OSError) as e:
            if isinstance(getattr(e, "reason", None), FileNotFoundError):  # file:// URLs
                if missing_ok:
                    return None
                raise Error(f"{url}: not found") from None
            if attempt + 1 == attempts:
                reason = getattr(e, "reason", e)
                raise Error(f"{url}: {reason}") from None
            time.sleep(1 + attempt)
    return None  # not reached


def download(url, dest, sha256=None, size=None, timeout=60, attempts=3):
    """Download url to dest (atomically, via dest.part), checking size and sha256.

    A file already at dest whose checksum matches is kept and not fetched again.
    Returns True if it downloaded, False if the cached copy was used.
    """
    if sha256 and os.path.isfile(dest) and sha256_file(dest) == sha256.lower():
        return False
    os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
    part = f"{dest}.part{os.getpid()}"
    try:
        for attempt in range(attempts):
            h = hashlib.sha256()
            got = 0
            try:
                with _open_url(url, timeout) as r, open(part, "wb") as f:
                    for block in iter(lambda: r.read(1 << 16), b""):
                        f.write(block)
                        h.update(block)
                        got += len(block)
                break
            except urllib.error.HTTPError as e:
                raise Error(f"{url}: HTTP {e.code} {e.reason}") from None
            except FileNotFoundError:
                raise Error(f"{url}: not found") from None
            except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
                if isinstance(getattr(e, "reason", None), FileNotFoundError):
                    raise Error(f"{url}: not found") from None
                if attempt + 1 == attempts:
                    raise Error(f"{url}: {getattr(e, 'reason', e)}") from None
                time.sleep(1 + attempt)
        if size is not None and got != size:
            raise Error(f"{url}: size mismatch: expected {size} bytes, got {got}")
        if sha256 and h.hexdigest() != sha256.lower():
            raise Error(
                f"{url}: SHA256 mismatch: expected {sha256.lower()}, got {h.hexdigest()}"
            )
        os.replace(part, dest)
        return True
    finally:
        if os.path.exists(part):
            os.unlink(part)


def _rmtree(path):
    """shutil.rmtree that also removes trees containing read-only directories."""

    def onerror(func, p, exc_info):
        parent = os.path.dirname(p)
        try:
            os.chmod(parent, stat.S_IRWXU)
            if os.path.isdir(p) and not os.path.islink(p):
                os.chmod(p, stat.S_IRWXU)
            func(p)
        except OSError:
            pass

    if not os.path.lexists(path):
        return
    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=lambda func, p, exc: onerror(func, p, None))
    else:
        shutil.rmtree(path, onerror=onerror)


class StagedTree:
    """Build a tree in a temporary directory next to OUT_DIR, rename it at the end.

    with StagedTree(out, force) as tmp: ... build in tmp ...
    On an exception the temporary directory is removed and OUT_DIR is untouched.
    """

    def __init__(self, out, force=False):
        self.out = os.path.abspath(out)
        self.force = force
        self.tmp = None

    def check(self):
        """Fail early, before any download, if OUT_DIR is in the way."""
        if os.path.lexists(self.out) and not self.force:
            raise Error(f"{self.out} already exists (use --force to replace it)")
        parent = os.path.dirname(self.out)
        if not os.path.isdir(parent):
            raise Error(f"{parent}: no such directory")

    def __enter__(self):
        self.check()
        name = os.path.basename(self.out)
        self.tmp = tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=os.path.dirname(self.out))
        os.chmod(self.tmp, 0o755)
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            _rmtree(self.tmp)
            return False
        old = None
        if os.path.lexists(self.out):
            old = tempfile.mkdtemp(prefix=f".{os.path.basename(self.out)}.old-",
                                   dir=os.path.dirname(self.out))
            os.rmdir(old)
            os.rename(self.out, old)
        try:
            os.rename(self.tmp, self.out)
        except OSError:
            if old:
                os.rename(old, self.out)
            _rmtree(self.tmp)
            raise
        if old:
            _rmtree(old)
        return False


def tree_size(root):
    """(bytes, files) of regular files under root, hard links counted once."""
    seen = set()
    total = files = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for n in filenames:
            st = os.lstat(os.path.join(dirpath, n))
            if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
                files += 1
    return total, files


def report_done(log, out, start, what=""):
    """The last progress line of a build: the tree, its size and the time it took."""
    size, files = tree_size(out)
    log(f"done: {out}: {what}{files} files, {human_size(size)}, "
        f"{time.monotonic() - start:.1f} s")


def run_main(prog, func, argv):
    """Run func(argv); turn Error/OSError into `prog: error: ...` and exit 1."""
    try:
        func(argv)
    except Error as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(130)
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        print(f"{prog}: error: {where}{e.strerror or e}", file=sys.stderr)
        sys.exit(1)
    except Exception as e:  # a bug; still one line, but say what it was
        print(f"{prog}: error: internal error: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
