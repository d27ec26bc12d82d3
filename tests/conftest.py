"""pytest configuration shared by blinkroot's tests (helpers live in guestlib.py)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import guestlib  # noqa: E402


def pytest_report_header(config):
    found = [
        f"{name} ({'found' if guestlib.toolchain_available(name) else 'MISSING'})"
        for name in guestlib.TOOLCHAINS
    ]
    return "guest toolchains: " + ", ".join(found)


@pytest.fixture(scope="session")
def toolchain():
    """The first available toolchain, for tests that need some guest binary."""
    for name in guestlib.TOOLCHAINS:
        if guestlib.toolchain_available(name):
            return name
    pytest.skip("no C toolchain for guest programs is installed")


@pytest.fixture
def guest(toolchain):
    """guest(NAME) -> path of tests/guest/NAME.c built with `toolchain`."""
    return lambda name: guestlib.build(name, toolchain)
