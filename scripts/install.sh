#!/usr/bin/env bash
# Install what blinkroot and its tests need, then a development venv in .venv.
#
#   scripts/install.sh          (any cwd; idempotent; fast when nothing changed)
#
# System packages come from apt-get (Debian/Ubuntu; sudo when not root) and
# apt is skipped entirely when everything is already installed.  PYTHON
# (default: python3) is the interpreter the venv is created with.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf 'install: %s\n' "$*"; }
die() { printf 'install: error: %s\n' "$*" >&2; exit 1; }

PYTHON=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.blinkroot-installed

# python3-venv/-dev: the venv and C headers; gcc, make, libc6-dev, musl-tools:
# build the guest test programs; busybox-static: a static guest userland;
# fuse3: pulls in libfuse3, which mfusepy loads at runtime through ctypes;
# coreutils, file: used by tests and scripts; qemu-utils (qemu-img), e2fsprogs
# (debugfs): rootfs-tools/alpine-from-quicksand, for the Alpine tests; debootstrap:
# the minbase tree of the slow VFS tests.  qemu-user is
# handled below.
PACKAGES=(python3 python3-venv python3-dev gcc make libc6-dev musl-tools
          busybox-static fuse3 coreutils file qemu-utils e2fsprogs debootstrap)
# qemu-x86_64 (differential tests, benchmark): the package name differs
# between releases; the first one the archive offers is used.
QEMU_PACKAGES=(qemu-user qemu-user-static qemu-user-binfmt)

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

available() {
    apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [^(]'
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

apt_install() {
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "$@"
}

install_system_packages() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        installed "$p" || missing+=("$p")
    done
    local need_qemu=0
    command -v qemu-x86_64 >/dev/null || command -v qemu-x86_64-static >/dev/null \
        || need_qemu=1

    if [ ${#missing[@]} -eq 0 ] && [ $need_qemu -eq 0 ]; then
        say "system packages: all present"
        return
    fi
    if ! command -v apt-get >/dev/null; then
        if [ $need_qemu -eq 1 ]; then missing+=(qemu-user); fi
        say "warning: no apt-get; install these yourself: ${missing[*]}"
        return
    fi

    say "apt-get update"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null \
        || say "warning: apt-get update failed; trying to install anyway"
    if [ $need_qemu -eq 1 ]; then
        for p in "${QEMU_PACKAGES[@]}"; do
            if available "$p"; then missing+=("$p"); need_qemu=0; break; fi
        done
        [ $need_qemu -eq 0 ] \
            || say "warning: no qemu-user package found; qemu comparisons will be skipped"
    fi
    if [ ${#missing[@]} -gt 0 ]; then
        say "apt-get install ${missing[*]}"
        apt_install "${missing[@]}" >/dev/null
    fi
}

make_venv() {
    if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c '' 2>/dev/null; then
        return
    fi
    command -v "$PYTHON" >/dev/null || die "$PYTHON not found"
    say "creating $VENV with $($PYTHON --version 2>&1)"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
}

pip_install() {
    if [ -x "$VENV/bin/blinkroot" ] && [ -f "$STAMP" ] && [ pyproject.toml -ot "$STAMP" ]; then
        say "venv: up to date"
        return
    fi
    local pip=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
    # Editable installs from pyproject.toml (PEP 660) need pip >= 21.3.
    if ! "$VENV/bin/python" -c 'import sys, pip
sys.exit(tuple(int(x) for x in pip.__version__.split(".")[:2]) < (21, 3))' 2>/dev/null; then
        say "upgrading pip"
        "${pip[@]}" install --upgrade pip
    fi
    say "pip install -e '.[test]'"
    "${pip[@]}" install -e '.[test]'
    touch "$STAMP"
}

install_system_packages
make_venv
pip_install
say "ready: $PWD/$VENV/bin/blinkroot"
