"""Memory syscalls: brk, mmap, munmap, mprotect, mremap, madvise, msync, mlock & co."""

import errno
import os
import stat

from ..errors import Errno
from ..memory import (PAGE, TASK_SIZE, MMAP_MIN, MAP_SHARED, MAP_PRIVATE, MAP_FIXED,
                      MAP_ANONYMOUS, MAP_FIXED_NOREPLACE, MAP_SHARED_VALIDATE, page_up,
                      page_down, host_fd_writable)
from ..cpu.engine import PROT_READ, PROT_WRITE, PROT_EXEC
from ..vfs.files import O_ACCMODE, O_RDONLY, O_WRONLY
from .table import syscall, s32

MREMAP_MAYMOVE, MREMAP_FIXED, MREMAP_DONTUNMAP = 1, 2, 4
MADV_DONTNEED, MADV_FREE, MADV_REMOVE = 4, 8, 9
# Every advice Linux 6.x knows; the others are hints with nothing to do here.
MADV_KNOWN = {0, 1, 2, 3, 4, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,
              24, 25, 100, 101, 102}
MS_ASYNC, MS_INVALIDATE, MS_SYNC = 1, 2, 4
PROT_GROWSDOWN, PROT_GROWSUP = 0x01000000, 0x02000000
_MAP_KNOWN = 0x1FFFFF  # every MAP_* flag Linux defines on x86-64
BRK_MAX = 1 << 30


@syscall("brk", "ptr")
def brk(t, addr):
    mem = t.mem
    if addr < mem.brk_start or addr > mem.brk_start + BRK_MAX:
        return mem.brk
    old_top, new_top = page_up(mem.brk), page_up(addr)
    if new_top > old_top:
        if not mem.is_free(old_top, new_top):
            return mem.brk
        mem.map(old_top, new_top - old_top, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS, name="[heap]")
    elif new_top < old_top:
        mem.unmap(new_top, old_top - new_top)
    mem.brk = addr
    return addr


def _placement(mem, addr, length, flags):
    if flags & MAP_FIXED:
        if addr & (PAGE - 1) or addr + length > TASK_SIZE or addr < MMAP_MIN and addr + length > 0 \
                and addr < MMAP_MIN:
            raise Errno(errno.EINVAL if addr & (PAGE - 1) else errno.EPERM)
        return addr
    if flags & MAP_FIXED_NOREPLACE:
        if addr & (PAGE - 1):
            raise Errno(errno.EINVAL)
        if not mem.is_free(addr, addr + length):
            raise Errno(errno.EEXIST)
        return addr
    return mem.find_free(length, addr)


@syscall("mmap", "ptr size prot mflags fd off")
def mmap(t, addr, length, prot, flags, fd, offset):
    mem = t.mem
    fd = s32(fd)
    if not length or length > TASK_SIZE:
        raise Errno(errno.EINVAL if not length else errno.ENOMEM)
    if offset & (PAGE - 1):
        raise Errno(errno.EINVAL)
    kind = flags & MAP_SHARED_VALIDATE
    if kind not in (MAP_SHARED, MAP_PRIVATE, MAP_SHARED_VALIDATE):
        raise Errno(errno.EINVAL)
    if kind == MAP_SHARED_VALIDATE:
        if flags & ~_MAP_KNOWN:
            raise Errno(errno.EOPNOTSUPP)
        flags = (flags & ~MAP_SHARED_VALIDATE) | MAP_SHARED
    length = page_up(length)
    prot &= PROT_READ | PROT_WRITE | PROT_EXEC
    if flags & MAP_ANONYMOUS:
        start = _placement(mem, addr, length, flags)
        return mem.map(start, length, prot, flags)
    f = t.proc.fds.get(fd)
    if f.host_fd < 0:
        raise Errno(errno.ENODEV)
    st = os.fstat(f.host_fd)
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode) or stat.S_ISCHR(st.st_mode)):
        raise Errno(errno.ENODEV)       # directories, pipes, sockets have no mmap

    acc = f.flags & O_ACCMODE
    if acc == O_WRONLY:
        raise Errno(errno.EACCES)
    shared = bool(flags & MAP_SHARED)
    if shared and prot & PROT_WRITE and acc == O_RDONLY:
        raise Errno(errno.EACCES)
    if shared and prot & PROT_WRITE and not host_fd_writable(f.host_fd):
        raise Errno(errno.EPERM)        # a memfd sealed against writing
    if stat.S_ISCHR(st.st_mode):
        # /dev/zero & co: an anonymous mapping is what Linux gives.
        start = _placement(mem, addr, length, flags)
        return mem.map(start, length, prot, flags | MAP_ANONYMOUS)
    start = _placement(mem, addr, length, flags)
    return mem.map(start, length, prot, flags, host_fd=f.host_fd, offset=offset,
                   name=f.path.decode("utf-8", "surrogateescape"), dev=st.st_dev,
                   ino=st.st_ino, file_size=st.st_size,
                   host_writable=not shared or host_fd_writable(f.host_fd))


@syscall("munmap", "ptr size")
def munmap(t, addr, length):
    if addr & (PAGE - 1) or not length or addr + length > TASK_SIZE:
        raise Errno(errno.EINVAL)
    t.mem.unmap(addr, page_up(length))
    return 0


@syscall("mprotect", "ptr size prot")
def mprotect(t, addr, length, prot):
    if addr & (PAGE - 1) or prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_GROWSDOWN
                                     | PROT_GROWSUP):
        raise Errno(errno.EINVAL)
    if not length:
        return 0
    t.mem.protect(addr, page_up(length), prot & 7)
    return 0


@syscall("mremap", "ptr size size flags ptr")
def mremap(t, old, old_len, new_len, flags, new_addr):
    mem = t.mem
    if old & (PAGE - 1) or flags & ~7 or not new_len:
        raise Errno(errno.EINVAL)
    if flags & MREMAP_FIXED and not flags & MREMAP_MAYMOVE:
        raise Errno(errno.EINVAL)
    old_len, new_len = page_up(old_len), page_up(new_len)
    v = mem.find(old)
    if v is None or (old_len and v.end < old + old_len):
        raise Errno(errno.EFAULT)
    if new_len <= old_len and not flags & MREMAP_FIXED:
        if new_len < old_len:
            mem.unmap(old + new_len, old_len - new_len)
        return old
    if v.attached:
        t.kernel.log("mremap: moving or growing a SysV shared memory attachment is not supported: EINVAL")
        raise Errno(errno.EINVAL)
    if not flags & MREMAP_FIXED and v.end >= old + old_len and mem.is_free(old + old_len, old + new_len) \
            and old + new_len <= TASK_SIZE and not v.host_fd >= 0:
        mem.map(old + old_len, new_len - old_len, v.prot, v.flags, name=v.name)
        _merge_name(mem, old, v)
        return old
    if not flags & MREMAP_MAYMOVE:
        raise Errno(errno.ENOMEM)
    dest = new_addr if flags & MREMAP_FIXED else mem.find_free(new_len)
    if flags & MREMAP_FIXED and (dest & (PAGE - 1)):
        raise Errno(errno.EINVAL)
    data = mem.read_raw(old, min(old_len, v.backed_end - old) if v.backed_end > old else 0)
    if v.host_fd >= 0:
        mem.map(dest, new_len, v.prot, v.flags, host_fd=v.host_fd, offset=v.offset + (old - v.start),
                name=v.name, dev=v.dev, ino=v.ino,
                file_size=(v.backed_end - v.start) + v.offset if v.backed_end < v.end else None)
    else:
        mem.map(dest, new_len, v.prot, v.flags, name=v.name)
        if data and not v.shared:
            mem.write_force(dest, data)
    if not flags & MREMAP_DONTUNMAP:
        mem.unmap(old, old_len)
    return dest


def _merge_name(mem, addr, v):
    n = mem.find(addr + (v.end - v.start))
    if n is not None:
        n.name = v.name


@syscall("madvise", "ptr size int")
def madvise(t, addr, length, advice):
    if addr & (PAGE - 1) or advice not in MADV_KNOWN:
        raise Errno(errno.EINVAL)
    length = page_up(length)
    if advice in (MADV_DONTNEED, MADV_FREE, MADV_REMOVE):
        va = addr
        while va < addr + length:
            v = t.mem.find(va)
            if v is None:
                raise Errno(errno.ENOMEM)
            end = min(v.end, addr + length)
            if not v.shared and v.host_fd < 0:
                t.mem.discard(va, end - va)
            va = end
    return 0


@syscall("msync", "ptr size flags")
def msync(t, addr, length, flags):
    if addr & (PAGE - 1) or flags & ~7 or (flags & MS_ASYNC and flags & MS_SYNC):
        raise Errno(errno.EINVAL)
    length = page_up(length)
    va = addr
    while va < addr + length:
        v = t.mem.find(va)
        if v is None:
            raise Errno(errno.ENOMEM)
        va = v.end
    t.mem.msync(addr, length, flags)
    return 0


@syscall("mincore", "ptr size ptr")
def mincore(t, addr, length, vec):
    if addr & (PAGE - 1):
        raise Errno(errno.EINVAL)
    pages = page_up(length) // PAGE
    for i in range(pages):
        if t.mem.find(addr + i * PAGE) is None:
            raise Errno(errno.ENOMEM)
    t.mem.write(vec, b"\1" * pages)
    return 0


def _mlock_ok(t, addr, length):
    va, end = page_down(addr), page_up(addr + length)
    while va < end:
        v = t.mem.find(va)
        if v is None:
            raise Errno(errno.ENOMEM)
        va = v.end
    return 0


@syscall("mlock", "ptr size")
def mlock(t, addr, length):
    return _mlock_ok(t, addr, length)


@syscall("munlock", "ptr size")
def munlock(t, addr, length):
    return _mlock_ok(t, addr, length)


@syscall("mlock2", "ptr size flags")
def mlock2(t, addr, length, flags):
    return _mlock_ok(t, addr, length)


@syscall("mlockall", "flags")
def mlockall(t, flags):
    return 0


@syscall("munlockall")
def munlockall(t):
    return 0
