"""blinkroot: run x86-64 Linux programs and root trees on any POSIX host, emulated."""

__version__ = "0.1.0"
