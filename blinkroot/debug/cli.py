"""`blinkenlights`: the debugger TUI is not built yet."""

import sys


def main():
    sys.stderr.write("blinkenlights: the debugger is not built yet; use blinkroot to run programs\n")
    sys.exit(2)
