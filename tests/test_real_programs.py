"""Real programs, natively and under blinkroot: Debian's static busybox applets
and the host's dynamically linked coreutils, on a small directory tree that the
tests build with fixed contents and timestamps."""

import gzip
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from guestlib import assert_same, run_native

BUSYBOX = "/bin/busybox"
FIXED_TIME = 1_000_000_000  # 2001-09-09, for stable `ls -l` and tar/gzip headers

WORDS = ["pear", "apple", "fig", "banana", "cherry", "date", "apple", "grape", "kiwi", "lemon"]
NUMBERS = [3, 1, 41, 5, 9, 26, 5, 35, 8, 97, 93, 2, 38, 46, 26]


def lines(items) -> bytes:
    return "".join(f"{item}\n" for item in items).encode()


def make_tree(root: Path):
    """The input every test gets in its scratch directory:

    data/words.txt data/numbers.txt data/text.txt data/text.txt.gz
    data/sub/nested.txt data/sub/deeper/leaf.txt data/empty/ data/link -> words.txt
    """
    data = root / "data"
    (data / "sub" / "deeper").mkdir(parents=True)
    (data / "empty").mkdir()
    (data / "words.txt").write_bytes(lines(WORDS))
    (data / "numbers.txt").write_bytes(lines(NUMBERS))
    text = lines(f"line {i}: the quick brown fox jumps over the lazy dog {i * i}" for i in range(2000))
    (data / "text.txt").write_bytes(text)
    (data / "text.txt.gz").write_bytes(gzip.compress(text, mtime=FIXED_TIME))
    (data / "sub" / "nested.txt").write_bytes(b"nested\n")
    (data / "sub" / "deeper" / "leaf.txt").write_bytes(b"leaf\n")
    (data / "link").symlink_to("words.txt")
    for path in sorted(root.rglob("*"), reverse=True) + [root]:  # children before parents
        os.utime(path, (FIXED_TIME, FIXED_TIME), follow_symlinks=False)


def sorted_lines(output: bytes) -> bytes:
    return b"".join(sorted(output.splitlines(keepends=True)))


def same(argv, **kw):
    return assert_same(argv, setup=make_tree, **kw)


# ---- busybox ---------------------------------------------------------------------

needs_busybox = pytest.mark.skipif(not os.path.exists(BUSYBOX), reason=f"{BUSYBOX} is not installed")

SHELL_SCRIPT = (
    "for i in 1 2 3; do echo $i; done; x=$((6*7)); echo $x; "
    "case a in a) echo A;; esac; test -f /etc/passwd && echo yes; printf '%s\\n' a b; "
    "read first < data/words.txt; echo \"first=$first\"; "
    "f() { echo \"args: $# $*\"; return 3; }; f one two; echo \"status $?\"; "
    "set -- p q r; shift; echo \"$@\"; s=abcdef; echo ${#s} ${s#ab} ${s%ef}; "
    "while [ ${n:=0} -lt 3 ]; do n=$((n+1)); done; echo n=$n; "
    "cd data/sub && echo ${PWD##*/}; cd ../..; echo done"
)

BUSYBOX_CASES = {
    "sh": (["sh", "-c", SHELL_SCRIPT], {}),
    "sh-exit-status": (["sh", "-c", "echo out; echo err >&2; exit 5"], {}),
    "ls": (["ls", "-la", "data"], {}),
    "ls-recursive": (["ls", "-lR", "data"], {}),
    "ls-missing": (["ls", "-la", "nothing-here"], {}),
    "cat": (["cat", "data/words.txt", "data/numbers.txt"], {}),
    "cat-missing": (["cat", "data/words.txt", "missing"], {}),
    "cat-stdin": (["cat"], {"stdin": b"from stdin\n"}),
    "sort": (["sort", "data/words.txt"], {}),
    "sort-numeric-unique": (["sort", "-n", "-u", "data/numbers.txt"], {}),
    "sort-reverse": (["sort", "-r", "data/words.txt"], {}),
    "sha256sum": (["sha256sum", "data/words.txt", "data/text.txt"], {}),
    "md5sum": (["md5sum", "data/text.txt"], {}),
    "find": (["find", "data"], {"transform": sorted_lines}),
    "find-type": (["find", "data", "-type", "f", "-name", "*.txt"], {"transform": sorted_lines}),
    "gzip": (["gzip", "-c", "data/text.txt"], {}),
    "gunzip": (["gzip", "-dc", "data/text.txt.gz"], {}),
    "awk": (["awk", "{s+=$1} END {print s}", "data/numbers.txt"], {}),
    "awk-fields": (["awk", "-F:", "{print NR, toupper($2)}", "data/text.txt"], {}),
    "wc": (["wc", "data/words.txt", "data/text.txt"], {}),
    "head": (["head", "-n", "3", "data/text.txt"], {}),
    "tail": (["tail", "-n", "2", "data/text.txt"], {}),
    "sed": (["sed", "-e", "s/a/A/g", "-e", "3d", "data/words.txt"], {}),
    "grep": (["grep", "-n", "an", "data/words.txt"], {}),
    "grep-count": (["grep", "-c", "fox", "data/text.txt"], {}),
    "grep-no-match": (["grep", "zebra", "data/words.txt"], {}),
    "uniq": (["uniq", "-c"], {"stdin": lines(sorted(WORDS))}),
    "tr": (["tr", "a-z", "A-Z"], {"stdin": b"shout this\n"}),
    "od": (["od", "-An", "-tx1", "data/numbers.txt"], {}),
    "stat": (["stat", "-c", "%n %s %a %F", "data/words.txt", "data/empty", "data/link"], {}),
    "readlink": (["readlink", "data/link"], {}),
    "date": (["date", "-u", "-d", "@1234567890"], {}),
    "expr": (["expr", "6", "*", "7"], {}),
    "seq": (["seq", "1", "20"], {}),
    "cut": (["cut", "-d:", "-f1", "/etc/passwd"], {}),
    "env": (["env"], {}),
}


@needs_busybox
@pytest.mark.parametrize("case", list(BUSYBOX_CASES))
def test_busybox(case, tmp_path):
    argv, kw = BUSYBOX_CASES[case]
    same([BUSYBOX, *argv], workdir=tmp_path, **kw)


@needs_busybox
def test_busybox_tar(tmp_path):
    created = same([BUSYBOX, "tar", "cf", "out.tar", "data"], workdir=tmp_path / "create")
    native_tar = created.native_cwd / "out.tar"
    emulated_tar = created.emulated_cwd / "out.tar"

    def listing(archive):
        result = run_native(["tar", "tvf", archive])
        assert result.returncode == 0, result.stderr
        return sorted_lines(result.stdout)

    assert listing(emulated_tar) == listing(native_tar)

    def with_archive(root):
        make_tree(root)
        shutil.copy(native_tar, root / "out.tar")

    assert_same([BUSYBOX, "tar", "tf", "out.tar"], setup=with_archive, workdir=tmp_path / "list")


# ---- host dynamic coreutils ---------------------------------------------------------

COREUTILS_CASES = {
    "ls": (["ls", "-la", "/usr"], {}),
    "ls-tree": (["ls", "-laR", "data"], {}),
    "sort": (["sort", "data/words.txt"], {}),
    "sort-numeric": (["sort", "-n", "data/numbers.txt"], {}),
    "sha256sum": (["sha256sum", "data/text.txt"], {}),
    "cat": (["cat", "data/words.txt"], {}),
    "head": (["head", "-c", "100", "data/text.txt"], {}),
    "wc": (["wc", "data/text.txt"], {}),
    "stat": (["stat", "-c", "%n %s %a %F %Y", "data/words.txt", "data/empty"], {}),
    "date": (["date", "-u", "-d", "@1234567890", "+%Y-%m-%d %H:%M:%S %A"], {}),
    "false": (["false"], {}),
    # tr reads stdin into a .bss buffer that ends where the heap begins: a host write
    # across two VMAs once cost it 70 s of dropped translations.
    "tr": (["tr", "a-z", "A-Z"], {"stdin": b"hello, tr\n"}),
}


def coreutil(name):
    path = shutil.which(name, path="/usr/bin:/bin")
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


@pytest.mark.parametrize("case", list(COREUTILS_CASES))
def test_coreutils(case, tmp_path):
    argv, kw = COREUTILS_CASES[case]
    same([coreutil(argv[0]), *argv[1:]], workdir=tmp_path, **kw)


def test_seq_into_wc(tmp_path):
    """`seq 1 100000 | wc`, with the pipe made here (no fork in the guest needed)."""
    numbers = subprocess.run([coreutil("seq"), "1", "100000"], capture_output=True, check=True).stdout
    same([coreutil("wc")], stdin=numbers, workdir=tmp_path)
