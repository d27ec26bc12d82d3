"""A tiny reader (and writer, for tests) of Unix `ar` archives, the container of .deb files."""

from .common import Error

MAGIC = b"!<arch>\n"
HEADER_SIZE = 60


def read_ar(data):
    """Yield (name, bytes) for each member of the ar archive in `data` (bytes).

    Understands the common format plus GNU trailing-slash names and BSD
    `#1/LEN` long names (enough for .deb files, which use short names).
    """
    if not data.startswith(MAGIC):
        raise Error("not an ar archive (bad magic)")
    pos = len(MAGIC)
    end = len(data)
    while pos < end:
        if data[pos:pos + 1] == b"\n":  # stray padding
            pos += 1
            continue
        hdr = data[pos:pos + HEADER_SIZE]
        if len(hdr) < HEADER_SIZE:
            raise Error("truncated ar archive (short member header)")
        if hdr[58:60] != b"`\n":
            raise Error("corrupt ar archive (bad member header)")
        name = hdr[0:16].decode("ascii", "replace").rstrip(" ")
        try:
            size = int(hdr[48:58].decode("ascii").strip() or "0")
        except ValueError:
            raise Error("corrupt ar archive (bad member size)") from None
        pos += HEADER_SIZE
        if pos + size > end:
            raise Error(f"truncated ar archive (member {name!r})")
        body = data[pos:pos + size]
        if name.startswith("#1/"):  # BSD: name stored before the data
            n = int(name[3:])
            name, body = body[:n].rstrip(b"\0").decode("utf-8", "replace"), body[n:]
        elif name.endswith("/") and name not in ("/", "//"):
            name = name[:-1]
        pos += size + (size & 1)
        yield name, body


def write_ar(members):
    """Return the bytes of an ar archive holding (name, bytes) pairs (short names)."""
    out = [MAGIC]
    for name, body in members:
        raw = name.encode()
        if len(raw) > 16:
            raise ValueError(f"ar member name too long: {name}")
        hdr = b"%-16s%-12d%-6d%-6d%-8s%-10d`\n" % (raw, 0, 0, 0, b"100644", len(body))
        assert len(hdr) == HEADER_SIZE
        out.append(hdr)
        out.append(body)
        if len(body) & 1:
            out.append(b"\n")
    return b"".join(out)
