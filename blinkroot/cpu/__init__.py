"""CPU engines behind one interface (engine.py).  Nothing outside this package imports one."""

from .engine import Engine


def create_engine(name="unicorn") -> Engine:
    if name == "unicorn":
        from .unicorn_engine import UnicornEngine
        return UnicornEngine()
    raise ValueError(f"unknown engine {name!r}")


def create_real_mode_machine(name="unicorn"):
    """A 16-bit i8086-style machine with 1 MiB of memory (blinkenlights -r)."""
    if name == "unicorn":
        from .unicorn_engine import UnicornRealMode
        return UnicornRealMode()
    raise ValueError(f"unknown engine {name!r}")


def engine_names():
    return ("unicorn",)
