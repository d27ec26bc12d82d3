#!/usr/bin/env bash
# The newcomer's demo: install everything, build the small default root tree from
# Debian packages, and run a shell command inside it under blinkroot; then a static
# hello world built here, compared with its native run.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/install.sh

blinkroot=.venv/bin/blinkroot
cache=${XDG_CACHE_HOME:-$HOME/.cache}/blinkroot
tree=$cache/trees/debian-default
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ ! -x "$tree/bin/sh" ]; then
    echo "==> rootfs-tools/debian-tree $tree"
    mkdir -p "$(dirname "$tree")"
    .venv/bin/python rootfs-tools/debian-tree --force "$tree"
fi

echo "==> $blinkroot -C $tree /bin/sh -c '...'"
# shellcheck disable=SC2016  # the guest shell expands these, not this one
"$blinkroot" -C "$tree" /bin/sh -c '
    echo "hello from Debian $(cat /etc/debian_version) on $(uname -m)"
    echo "/ holds: $(ls / | tr "\n" " ")"
    echo "a pipeline: $(seq 1 100 | sort -rn | head -3 | tr "\n" " ")"
    echo "processes in this session:"; ps -o pid,args
    echo "mounts:"; cat /proc/mounts'

echo "==> musl-gcc -static tests/guest/hello.c"
musl-gcc -static -O2 -o "$tmp/hello" tests/guest/hello.c
native=0
"$tmp/hello" >/dev/null 2>&1 || native=$?
echo "==> $blinkroot $tmp/hello"
status=0
"$blinkroot" "$tmp/hello" || status=$?
echo "==> exit status $status (native: $native)"
if [ "$status" -ne "$native" ]; then
    echo "demo: exit status differs from the native run" >&2
    exit 1
fi
