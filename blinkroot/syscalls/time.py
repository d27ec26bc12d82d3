"""time syscalls."""

from .table import syscall  # noqa: F401
