"""strace-like lines for `-s`: name(decoded arguments) = result or -1 ERRNO (strerror)."""

import os

from ..errors import Errno, errno_name
from .numbers import NAMES
from . import table

MAX_STR = 32


def _quote(data, limit=MAX_STR):
    more = len(data) > limit
    data = data[:limit]
    out = []
    for b in data:
        c = chr(b)
        if c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        elif c in "\"\\":
            out.append("\\" + c)
        elif 32 <= b < 127:
            out.append(c)
        else:
            out.append(f"\\x{b:02x}")
    return '"' + "".join(out) + '"' + ("..." if more else "")


def _arg(t, kind, value, args, i, ret):
    if kind == "fd":
        v = table.s32(value)
        return "AT_FDCWD" if v == -100 else str(v)
    if kind in ("int", "pid", "sig"):
        return str(table.s32(value))
    if kind in ("size", "uint", "off"):
        return str(value)
    if kind in ("path", "str"):
        if not value:
            return "NULL"
        try:
            return _quote(t.mem.read_cstr(value, 4096), 256)
        except Errno:
            return hex(value)
    if kind in ("wbuf", "rbuf"):
        # buffer followed by its length; read buffers are shown after the call
        if kind == "rbuf" and (ret is None or ret < 0):
            return hex(value)
        n = ret if kind == "rbuf" else args[i + 1]
        try:
            return _quote(t.mem.read(value, min(n, MAX_STR + 1)))
        except Errno:
            return hex(value)
    if kind in ("oflags", "mode", "prot", "mflags", "flags", "hex"):
        return hex(value) if kind != "mode" else oct(value)
    return hex(value) if value else "0" if kind != "ptr" else "NULL"


def format_call(t, nr, args, ret, done=False):
    entry = table.TABLE.get(nr)
    name = NAMES.get(nr, f"syscall_{nr}")
    if entry is None:
        shown = ", ".join(hex(a) for a in args[:6])
        kinds = ()
    else:
        kinds = entry.args
        shown = ", ".join(_arg(t, k, args[i], args, i, ret) for i, k in enumerate(kinds))
    head = f"{os.getpid()} {name}({shown})"
    if ret is None:
        return head
    if done:
        return f"{head} = ?"
    if -4096 < ret < 0:
        code = -ret
        text = os.strerror(code) if code < 512 else "restart"
        return f"{head} = -1 {errno_name(code)} ({text})"
    return f"{head} = {ret if ret < 4096 or name not in ('mmap', 'brk', 'mremap') else hex(ret)}"
