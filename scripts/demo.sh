#!/usr/bin/env bash
# Build a static hello world with musl and run it, then busybox, under blinkroot.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/install.sh

blinkroot=.venv/bin/blinkroot
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

src=tests/guest/hello.c
if [ ! -f "$src" ]; then
    src=$tmp/hello.c
    cat > "$src" <<'C'
#include <stdio.h>

int main(int argc, char **argv) {
    printf("hello from %s (argc=%d)\n", argv[0], argc);
    return 0;
}
C
fi

echo "==> musl-gcc -static $src"
musl-gcc -static -O2 -o "$tmp/hello" "$src"
# tests/guest/hello.c exits with a status of its own: compare it with native.
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

busybox=/bin/busybox
if [ ! -x "$busybox" ]; then
    busybox=$(command -v busybox) || { echo "demo: busybox not found" >&2; exit 1; }
fi
echo "==> $blinkroot $busybox sh -c 'echo hello from busybox \$((6*7))'"
# shellcheck disable=SC2016  # the guest shell expands it, not this one
"$blinkroot" "$busybox" sh -c 'echo hello from busybox $((6*7))'
