"""The one path walk: guest path -> (mount, path inside its filesystem), one component at
a time, through the mount table, with Linux's rules.

State is a stack of (name, mount, rel) entries, one per component of the canonical guest
path walked so far (the first is the root: (b"", root mount, its root)).  So:

- a component whose canonical guest path is a mount point enters that mount's root;
- ``..`` pops one entry: at a mount's root that lands in the parent mount, on the
  directory the mount point is in; at the root it stays (Linux's rule);
- a symlink's target is walked in its place; an absolute one restarts from the root of
  the guest's namespace (never the host's): absolute targets stay inside;
- procfs magic links (/proc/PID/fd/N and friends) are followed to the object itself;
- at most 40 symlinks (ELOOP), 255-byte names and 4095-byte paths (ENAMETOOLONG);
- openat2's RESOLVE_* rules: BENEATH (no escaping the starting directory: EXDEV),
  IN_ROOT (the starting directory is the root for `..` and absolute links),
  NO_SYMLINKS, NO_MAGICLINKS (ELOOP), NO_XDEV (no mount crossing: EXDEV).

The common case costs one lstat per component and a set lookup (is this name the last
component of any mount point?); the full mount point path is built only on a hit.
"""

import errno
import os
import stat as S

from ..errors import Errno
from .fs import MagicLink

MAXSYMLINKS = 40
PATH_MAX = 4096
NAME_MAX = 255

RESOLVE_NO_XDEV, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS = 0x01, 0x02, 0x04
RESOLVE_BENEATH, RESOLVE_IN_ROOT = 0x08, 0x10

_S_ISLNK, _S_ISDIR = S.S_ISLNK, S.S_ISDIR
_lstat = os.lstat

# Instrumentation for tests: called with every walked path when set.
TRACE = None


class Node:
    """A walked path: its stack (see above), its stat (None: the last name does not exist;
    its parent does), or an open file a magic link named."""
    __slots__ = ("stack", "st", "file", "trailing")

    def __init__(self, stack, st, file=None, trailing=False):
        self.stack, self.st, self.file, self.trailing = stack, st, file, trailing

    @property
    def mount(self):
        return self.stack[-1][1]

    @property
    def fs(self):
        return self.stack[-1][1].fs

    @property
    def rel(self):
        return self.stack[-1][2]

    @property
    def name(self):
        return self.stack[-1][0]

    @property
    def exists(self):
        return self.st is not None or self.file is not None

    @property
    def guest(self):
        """The canonical guest path."""
        if len(self.stack) == 1:
            return b"/"
        return b"/".join(e[0] for e in self.stack)


def walk(table, start, path, follow=True, resolve=0):
    """Walk path (bytes) from the stack ``start`` (relative paths) or the root."""
    if TRACE is not None:
        TRACE(path)
    if len(path) >= PATH_MAX:
        raise Errno(errno.ENAMETOOLONG)
    root = (b"", table.root, table.root.root)
    if resolve & (RESOLVE_BENEATH | RESOLVE_IN_ROOT):
        floor = len(start)
        if path[:1] == b"/":
            if resolve & RESOLVE_BENEATH:
                raise Errno(errno.EXDEV)
        stack = list(start)
    else:
        floor = 1
        stack = [root] if path[:1] == b"/" or start is None else list(start)
    trailing = path[-1:] == b"/"
    todo = path.split(b"/")
    todo.reverse()
    links = 0
    st = None
    names = table.names
    at = table.at
    lstat = _lstat
    while todo:
        name = todo.pop()
        if not name or name == b".":
            continue
        if name == b"..":
            if len(stack) > floor:
                stack.pop()
            elif resolve & RESOLVE_BENEATH:
                raise Errno(errno.EXDEV)
            st = None
            continue
        if len(name) > NAME_MAX:
            raise Errno(errno.ENAMETOOLONG)
        _, mount, rel = stack[-1]
        if name in names:
            m = at.get(b"/".join([e[0] for e in stack]) + b"/" + name)
            if m is not None:
                if resolve & RESOLVE_NO_XDEV:
                    raise Errno(errno.EXDEV)
                stack.append((name, m, m.root))
                st = None
                continue
        crel = rel + b"/" + name if rel else name
        fs = mount.fs
        prefix = fs.walk_prefix         # hostfs: one host lstat, no method call
        try:
            st = lstat(prefix + crel) if prefix is not None else fs.lstat(crel)
        except FileNotFoundError:
            st = None
        except Errno as e:
            if e.errno != errno.ENOENT:
                raise
            st = None
        if st is None:
            if any(todo):
                raise Errno(errno.ENOENT)
            stack.append((name, mount, crel))
            return Node(stack, None, trailing=trailing)
        mode = st.st_mode
        if mode & 0o170000 == 0o040000:                 # a directory: the common case
            stack.append((name, mount, crel))
            continue
        if mode & 0o170000 == 0o120000 and (follow or trailing or any(todo)):
            links += 1
            if links > MAXSYMLINKS or resolve & RESOLVE_NO_SYMLINKS:
                raise Errno(errno.ELOOP)
            target = fs.readlink(crel)
            if isinstance(target, MagicLink):
                if resolve & (RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS):
                    raise Errno(errno.ELOOP)
                if target.file is not None:
                    node = getattr(target.file, "node", None)
                    if node is not None and node.st is not None:
                        stack = list(node.stack)
                        st = None
                        continue
                    if any(todo):
                        raise Errno(errno.ENOTDIR)
                    return Node(stack + [(name, mount, crel)], None, file=target.file)
                target = target.path
            if not target:
                raise Errno(errno.ENOENT)
            if target[:1] == b"/":
                if resolve & RESOLVE_BENEATH:
                    raise Errno(errno.EXDEV)
                stack = stack[:floor] if resolve & RESOLVE_IN_ROOT else [root]
            parts = target.split(b"/")
            parts.reverse()
            todo.extend(parts)
            st = None
            continue
        stack.append((name, mount, crel))
        if any(todo):
            raise Errno(errno.ENOTDIR)
    if st is None:
        _, mount, rel = stack[-1]
        st = mount.fs.lstat(rel)
    if trailing and not _S_ISDIR(st.st_mode):
        raise Errno(errno.ENOTDIR)
    return Node(stack, st, trailing=trailing)
