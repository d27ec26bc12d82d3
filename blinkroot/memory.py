"""A guest process's memory: its VMAs, the host memory behind them, brk and mmap placement.

Guest memory is host memory that blinkroot allocates: each 4 GiB chunk of guest address
space the guest touches gets a host reservation (PROT_NONE, MAP_NORESERVE), and guest
address ``va`` lives at ``window[va >> 32] + (va & 0xffffffff)``.  Neighbouring guest
mappings are therefore neighbours in host memory too, which lets the engine merge them
into few regions; a host fork copies private memory on write and MAP_SHARED mappings are
the file's (or the shared anonymous object's) real pages.

Permissions are the guest's: the engine enforces them for guest code, and ``check``
enforces them for the kernel's own accesses (EFAULT), like copy_from/to_user.
"""

import bisect
import ctypes
import errno
import mmap as _mmap
import os

from .errors import Errno
from .cpu.engine import PROT_READ, PROT_WRITE, PROT_EXEC

PAGE = 4096
CHUNK_SHIFT = 32
CHUNK = 1 << CHUNK_SHIFT
TASK_SIZE = 0x7FFFFFFFF000          # top of the x86-64 user address space
STACK_TOP = 0x7FFFFFFFF000
STACK_SIZE = 8 << 20                # RLIMIT_STACK's default, mapped at once
MMAP_TOP = 0x7FFFF7FFF000           # where top-down mmap placement starts (no ASLR, as gdb)
MMAP_MIN = 0x10000                  # vm.mmap_min_addr

MAP_SHARED, MAP_PRIVATE, MAP_FIXED, MAP_ANONYMOUS = 0x01, 0x02, 0x10, 0x20
MAP_GROWSDOWN, MAP_NORESERVE, MAP_POPULATE, MAP_FIXED_NOREPLACE = 0x100, 0x4000, 0x8000, 0x100000
MAP_SHARED_VALIDATE = 0x03

# The C library is already loaded into Python: no find_library (it runs ldconfig or a compiler).
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                       ctypes.c_int, ctypes.c_long)
_libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
_libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
_libc.msync.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
_libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
_MAP_FAILED = ctypes.c_void_p(-1).value
_HOST_NORESERVE = getattr(_mmap, "MAP_NORESERVE", 0x4000)
_HOST_FIXED = 0x10
_F_GET_SEALS, _F_SEAL_WRITE, _F_SEAL_FUTURE_WRITE = 1034, 0x8, 0x10


def _x86_prot(prot):
    """Writable or executable pages are readable on x86."""
    return prot | PROT_READ if prot & (PROT_WRITE | PROT_EXEC) else prot


def page_up(n):
    return (n + PAGE - 1) & ~(PAGE - 1)


def page_down(n):
    return n & ~(PAGE - 1)


def host_mmap(addr, length, prot, flags, fd=-1, offset=0):
    p = _libc.mmap(addr, length, prot, flags, fd, offset)
    if p == _MAP_FAILED or p is None:
        e = ctypes.get_errno()
        raise Errno(e or errno.ENOMEM)
    return p


def host_fd_writable(fd):
    """Can a MAP_SHARED mapping of host descriptor fd be writable?  Not if it is open
    read-only, nor if it is a memfd sealed against writing (Linux clears VM_MAYWRITE)."""
    import fcntl
    try:
        if (fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE) == os.O_RDONLY:
            return False
    except OSError:
        return False
    try:
        return not fcntl.fcntl(fd, _F_GET_SEALS) & (_F_SEAL_WRITE | _F_SEAL_FUTURE_WRITE)
    except OSError:
        return True             # not a memfd: no seals


class Vma:
    """One guest mapping: [start, end), prot, flags, and what is behind it (for /proc/maps)."""
    __slots__ = ("start", "end", "prot", "flags", "name", "offset", "dev", "ino",
                 "backed_end", "host_fd", "attached", "maywrite", "in_engine")

    def __init__(self, start, end, prot, flags, name="", offset=0, dev=0, ino=0,
                 backed_end=None, host_fd=-1, attached=False, maywrite=True, in_engine=True):
        self.start, self.end, self.prot, self.flags = start, end, prot, flags
        self.name, self.offset, self.dev, self.ino = name, offset, dev, ino
        # File mappings past the end of the file have no pages: touching them is SIGBUS.
        self.backed_end = end if backed_end is None else backed_end
        self.host_fd = host_fd
        # Host memory mapped by the host kernel itself (a SysV segment's shmat), not by
        # Memory.map; read-only attachments can never become writable (VM_MAYWRITE).
        self.attached, self.maywrite = attached, maywrite
        # Whether the engine has it as a region.  A PROT_NONE mapping is left out until an
        # mprotect makes it accessible: touching it faults either way, and the engine's
        # cost grows with its regions (a 96 TiB reservation, as Go's or libc-test's, was
        # 24576 of them: 21 s to map).
        self.in_engine = in_engine

    def split(self, at):
        """Cut at `at`; self keeps the low part, the high part is returned."""
        hi = Vma(at, self.end, self.prot, self.flags, self.name,
                 self.offset + (at - self.start) if self.ino or self.name else 0,
                 self.dev, self.ino, max(at, self.backed_end), self.host_fd,
                 self.attached, self.maywrite, self.in_engine)
        self.end = at
        self.backed_end = min(self.backed_end, at)
        return hi

    @property
    def shared(self):
        return bool(self.flags & MAP_SHARED)


class Memory:
    """The guest's address space (Linux's mm_struct) over an engine AddressSpace."""

    def __init__(self, address_space):
        self.aspace = address_space
        self.vmas = []          # sorted by start, non-overlapping
        self.starts = []        # vma starts, for bisect
        self.windows = {}       # chunk index -> host base address
        self.brk_start = self.brk = 0
        self.mmap_top = MMAP_TOP
        self.written = None     # a list: every kernel write's (va, length) is added to it
                                # (a debugger records what a system call wrote)

    # -- host windows ----------------------------------------------------------------
    def _window(self, chunk):
        base = self.windows.get(chunk)
        if base is None:
            base = host_mmap(None, CHUNK, 0, _mmap.MAP_PRIVATE | _mmap.MAP_ANONYMOUS
                             | _HOST_NORESERVE)
            self.windows[chunk] = base
        return base

    def host(self, va):
        """Host address of guest address va (whose chunk must exist)."""
        return self.windows[va >> CHUNK_SHIFT] + (va & (CHUNK - 1))

    def host_window(self, start, length):
        """Host address of guest [start, start+length), creating its window: for host
        memory the host kernel places itself (shmat).  The range must be inside one
        window, since neighbouring windows are not neighbours on the host."""
        if not self.one_window(start, length):
            raise Errno(errno.EINVAL)
        return self._window(start >> CHUNK_SHIFT) + (start & (CHUNK - 1))

    @staticmethod
    def one_window(start, length):
        return length > 0 and start >> CHUNK_SHIFT == (start + length - 1) >> CHUNK_SHIFT

    @staticmethod
    def _pieces(start, end):
        """Split [start, end) at chunk boundaries."""
        while start < end:
            stop = min(end, ((start >> CHUNK_SHIFT) + 1) << CHUNK_SHIFT)
            yield start, stop
            start = stop

    def release(self):
        """Give all host memory back (execve, exit)."""
        for base in self.windows.values():
            _libc.munmap(base, CHUNK)
        self.windows.clear()
        self.vmas, self.starts = [], []

    # -- VMA list --------------------------------------------------------------------
    def find(self, va):
        i = bisect.bisect_right(self.starts, va) - 1
        if i >= 0 and self.vmas[i].end > va:
            return self.vmas[i]
        return None

    def _split_at(self, va):
        i = bisect.bisect_right(self.starts, va) - 1
        if i >= 0:
            v = self.vmas[i]
            if v.start < va < v.end:
                hi = v.split(va)
                self.vmas.insert(i + 1, hi)
                self.starts.insert(i + 1, va)

    def _range(self, start, end):
        """Indexes [i, j) of the VMAs inside [start, end) after splitting at both ends."""
        self._split_at(start)
        self._split_at(end)
        i = bisect.bisect_left(self.starts, start)
        j = bisect.bisect_left(self.starts, end)
        return i, j

    def _insert(self, vma):
        i = bisect.bisect_left(self.starts, vma.start)
        self.vmas.insert(i, vma)
        self.starts.insert(i, vma.start)
        self._merge(i)

    @staticmethod
    def _mergeable(a, b):
        """Linux merges neighbouring VMAs that differ in nothing but their range."""
        return (a.end == b.start and a.prot == b.prot and a.flags == b.flags
                and a.name == b.name and a.host_fd < 0 and b.host_fd < 0 and not a.ino
                and not a.attached and not b.attached and a.in_engine == b.in_engine
                and not b.ino and a.backed_end == a.end and b.backed_end == b.end)

    def _merge(self, i):
        """Merge vmas[i] with its neighbours where they are mergeable."""
        if i + 1 < len(self.vmas) and self._mergeable(self.vmas[i], self.vmas[i + 1]):
            nxt = self.vmas.pop(i + 1)
            del self.starts[i + 1]
            self.vmas[i].end = self.vmas[i].backed_end = nxt.end
        if i > 0 and self._mergeable(self.vmas[i - 1], self.vmas[i]):
            cur = self.vmas.pop(i)
            del self.starts[i]
            self.vmas[i - 1].end = self.vmas[i - 1].backed_end = cur.end

    def is_free(self, start, end):
        i = bisect.bisect_left(self.starts, end) - 1
        return i < 0 or self.vmas[i].end <= start

    def find_free(self, length, hint=0, top=None):
        """Top-down placement below mmap_top (or `top`), as Linux's default allocator does."""
        if hint:
            hint = page_down(hint)
            if hint >= MMAP_MIN and hint + length <= TASK_SIZE and self.is_free(hint, hint + length):
                return hint
        top = self.mmap_top if top is None else top
        for v in reversed(self.vmas):
            if v.start >= top:
                continue
            if v.end <= top - length:
                if top - length >= v.end:
                    return top - length
            top = min(top, v.start)
        if top - length >= MMAP_MIN:
            return top - length
        raise Errno(errno.ENOMEM)

    # -- mapping ---------------------------------------------------------------------
    def map(self, start, length, prot, flags, host_fd=-1, offset=0, name="", dev=0, ino=0,
            file_size=None, host_writable=True):
        """Map [start, start+length) (page aligned; replaces what was there)."""
        end = start + length
        self.unmap(start, length)
        backed_end = end
        if host_fd >= 0 and file_size is not None:
            backed_end = min(end, start + max(0, page_up(file_size - offset)))
        vma = Vma(start, end, prot, flags, name, offset, dev, ino, backed_end, host_fd,
                  in_engine=bool(prot))
        host_prot = _mmap.PROT_READ | (_mmap.PROT_WRITE if host_writable else 0)
        for lo, hi in self._pieces(start, end):
            base = self._window(lo >> CHUNK_SHIFT)
            haddr = base + (lo & (CHUNK - 1))
            blo, bhi = lo, min(hi, backed_end)
            if host_fd >= 0 and bhi > blo:
                share = _mmap.MAP_SHARED if flags & MAP_SHARED else _mmap.MAP_PRIVATE
                host_mmap(haddr, bhi - blo, host_prot, share | _HOST_FIXED, host_fd,
                          offset + (blo - start))
            elif host_fd < 0:
                share = _mmap.MAP_SHARED if flags & MAP_SHARED else _mmap.MAP_PRIVATE
                host_mmap(haddr, hi - lo, _mmap.PROT_READ | _mmap.PROT_WRITE,
                          share | _mmap.MAP_ANONYMOUS | _HOST_FIXED | _HOST_NORESERVE)
            if host_fd < 0:
                bhi = hi
            if bhi > blo and vma.in_engine:
                self.aspace.map(blo, bhi - blo, prot, haddr)
        self._insert(vma)
        return start

    def map_attached(self, start, length, prot, name, ino, maywrite):
        """Register host memory the host kernel has just mapped at host_window(start) (a
        SysV segment) as the guest's [start, start+length), which must be unmapped.
        unmap() puts the reservation back over it, which detaches it on the host too."""
        if not self.is_free(start, start + length):
            raise Errno(errno.EINVAL)
        self._insert(Vma(start, start + length, prot, MAP_SHARED, name, 0, 0, ino,
                         attached=True, maywrite=maywrite))
        self.aspace.map(start, length, prot, self.host_window(start, length))
        return start

    def unmap(self, start, length):
        end = start + length
        i, j = self._range(start, end)
        if i == j:
            return
        for v in self.vmas[i:j]:
            for lo, hi in self._pieces(v.start, v.end):
                host_mmap(self.host(lo), hi - lo, 0, _mmap.MAP_PRIVATE | _mmap.MAP_ANONYMOUS
                          | _HOST_FIXED | _HOST_NORESERVE)
                if v.in_engine:
                    self.aspace.unmap(lo, hi - lo)
        del self.vmas[i:j]
        del self.starts[i:j]

    def protect(self, start, length, prot):
        end = start + length
        # Linux: ENOMEM if any part of the range is unmapped.
        va = start
        i, j = self._range(start, end)
        for v in self.vmas[i:j]:
            if v.start != va:
                raise Errno(errno.ENOMEM)
            va = v.end
        if va < end:
            raise Errno(errno.ENOMEM)
        for v in self.vmas[i:j]:
            if prot & PROT_WRITE and (not v.maywrite or v.shared and v.host_fd >= 0
                                      and not self._host_writable(v)):
                raise Errno(errno.EACCES)
        for v in self.vmas[i:j]:
            v.prot = prot
            if v.backed_end > v.start:
                for lo, hi in self._pieces(v.start, v.backed_end):
                    if v.in_engine:
                        self.aspace.protect(lo, hi - lo, prot)
                    elif prot:
                        self.aspace.map(lo, hi - lo, prot, self.host(lo))
            v.in_engine = v.in_engine or bool(prot)
        for k in range(min(j, len(self.vmas) - 1), i - 1, -1):
            if k < len(self.vmas):
                self._merge(k)

    def _host_writable(self, v):
        return host_fd_writable(v.host_fd)

    # -- kernel access to guest memory (copy_from_user / copy_to_user) ----------------
    def check(self, va, length, need):
        """Raise EFAULT unless [va, va+length) is mapped with `need` protections."""
        if length <= 0:
            return
        end = va + length
        if va < 0 or end > TASK_SIZE:
            raise Errno(errno.EFAULT)
        i = bisect.bisect_right(self.starts, va) - 1
        while va < end:
            v = self.vmas[i] if 0 <= i < len(self.vmas) else None
            if v is None or not v.start <= va < v.backed_end or (_x86_prot(v.prot) & need) != need:
                raise Errno(errno.EFAULT)
            va = v.backed_end
            i += 1

    def read(self, va, length):
        if length <= 0:
            return b""
        self.check(va, length, PROT_READ)
        if (va >> CHUNK_SHIFT) == ((va + length - 1) >> CHUNK_SHIFT):
            return ctypes.string_at(self.host(va), length)
        return b"".join(ctypes.string_at(self.host(lo), hi - lo)
                        for lo, hi in self._pieces(va, va + length))

    def read_raw(self, va, length):
        """Read ignoring guest protections (mremap moving pages)."""
        return b"".join(ctypes.string_at(self.host(lo), hi - lo)
                        for lo, hi in self._pieces(va, va + length))

    def write(self, va, data):
        length = len(data)
        if not length:
            return
        self.check(va, length, PROT_WRITE)
        if (va >> CHUNK_SHIFT) == ((va + length - 1) >> CHUNK_SHIFT):
            ctypes.memmove(self.host(va), data, length)
        else:
            off = 0
            for lo, hi in self._pieces(va, va + length):
                ctypes.memmove(self.host(lo), bytes(data[off:off + hi - lo]), hi - lo)
                off += hi - lo
        self._code_written(va, length)

    def write_force(self, va, data):
        """Write ignoring guest protections (loading an image, building a stack)."""
        off = 0
        for lo, hi in self._pieces(va, va + len(data)):
            ctypes.memmove(self.host(lo), bytes(data[off:off + hi - lo]), hi - lo)
            off += hi - lo
        self._code_written(va, len(data))

    def host_ranges(self, va, length, writable):
        """[(host address, length)] covering guest [va, va+length), checked like views."""
        if length <= 0:
            return []
        self.check(va, length, PROT_WRITE if writable else PROT_READ)
        if writable:
            self._code_written(va, length)
        return [(self.host(lo), hi - lo) for lo, hi in self._pieces(va, va + length)]

    def views(self, va, length, writable):
        """memoryviews over guest memory (zero-copy I/O), one per chunk piece."""
        if length <= 0:
            return []
        self.check(va, length, PROT_WRITE if writable else PROT_READ)
        out = []
        for lo, hi in self._pieces(va, va + length):
            buf = (ctypes.c_char * (hi - lo)).from_address(self.host(lo))
            out.append(memoryview(buf).cast("B"))
        if writable:
            self._code_written(va, length)
        return out

    def _code_written(self, va, length):
        """Host-side writes leave stale translations of code (shared notes): drop the
        translations of the executable part of [va, va+length), and only that (asking
        Unicorn to drop non-code ranges has cost seconds)."""
        if self.written is not None:
            self.written.append((va, length))
        end = va + length
        i = bisect.bisect_right(self.starts, va) - 1
        for v in self.vmas[max(i, 0):]:
            if v.start >= end:
                break
            if v.end > va and v.prot & PROT_EXEC:
                lo, hi = page_down(max(v.start, va)), page_up(min(v.end, end))
                self.aspace.code_changed(lo, hi - lo)

    def read_cstr(self, va, limit=4096):
        """A NUL-terminated string; ENAMETOOLONG past `limit`."""
        out = bytearray()
        while True:
            page_end = page_down(va) + PAGE
            n = min(page_end - va, limit + 1 - len(out))
            chunk = self.read(va, n)
            k = chunk.find(b"\0")
            if k >= 0:
                out += chunk[:k]
                return bytes(out)
            out += chunk
            va += n
            if len(out) > limit:
                raise Errno(errno.ENAMETOOLONG)

    def read_u64(self, va):
        return int.from_bytes(self.read(va, 8), "little")

    def write_u64(self, va, value):
        self.write(va, (value & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little"))

    def read_u32(self, va):
        return int.from_bytes(self.read(va, 4), "little")

    def write_u32(self, va, value):
        self.write(va, (value & 0xFFFFFFFF).to_bytes(4, "little"))

    def msync(self, start, length, flags):
        for lo, hi in self._pieces(start, start + length):
            v = self.find(lo)
            if v is not None and v.shared and v.host_fd >= 0:
                if _libc.msync(self.host(lo), hi - lo, flags) != 0:
                    raise Errno(ctypes.get_errno())

    def discard(self, start, length):
        """madvise(MADV_DONTNEED): private pages read back as zero or as the file's."""
        for lo, hi in self._pieces(start, start + length):
            _libc.madvise(self.host(lo), hi - lo, 4)
