"""Differential tests: every tests/guest/*.c, built with every toolchain, must
print the same stdout and stderr and end with the same status natively and
under blinkroot."""

import pytest

from guestlib import TOOLCHAINS, guest_names, run_guest

# How each program ends natively, when not with status 0: checked so that a
# program that stopped doing what it is for does not pass unnoticed.
NATIVE_STATUS = {"hello": 3, "sigdie": -15, "sigabort": -6, "sigsegv": -11}


@pytest.mark.parametrize("toolchain", list(TOOLCHAINS))
@pytest.mark.parametrize("name", guest_names())
def test_guest_program(name, toolchain, tmp_path):
    comparison = run_guest(name, toolchain, workdir=tmp_path)
    assert comparison.native.returncode == NATIVE_STATUS.get(name, 0)
