"""Loading a program into a fresh guest address space, as Linux's binfmt handlers do.

ELF (static, static-pie, dynamic through the guest's own PT_INTERP), `#!` scripts and
blink's flat ``.bin`` images.  The ELF headers are parsed with struct: the loader runs at
every start and every execve, and only needs the file header and program headers.
"""

import errno
import os
import struct

from .errors import Errno
from .memory import (PAGE, STACK_SIZE, STACK_TOP, MAP_PRIVATE, MAP_ANONYMOUS, page_up,
                     page_down)
from .cpu.engine import PROT_READ, PROT_WRITE, PROT_EXEC

ELF_MAGIC = b"\x7fELF"
EM_X86_64 = 62
ET_EXEC, ET_DYN = 2, 3
PT_LOAD, PT_INTERP, PT_PHDR, PT_GNU_STACK = 1, 3, 6, 0x6474E551
PIE_BASE = 0x555555554000          # ELF_ET_DYN_BASE without ASLR
FLAT_BASE = 0x400000
FLAT_EXTRA = 16 << 20               # zeroed memory after a flat image, as blink gives
BINPRM_BUF_SIZE = 256
MAX_INTERP_DEPTH = 4

AT_NULL, AT_PHDR, AT_PHENT, AT_PHNUM, AT_PAGESZ, AT_BASE, AT_FLAGS, AT_ENTRY = 0, 3, 4, 5, 6, 7, 8, 9
AT_UID, AT_EUID, AT_GID, AT_EGID, AT_PLATFORM, AT_HWCAP, AT_CLKTCK = 11, 12, 13, 14, 15, 16, 17
AT_SECURE, AT_RANDOM, AT_HWCAP2, AT_EXECFN, AT_MINSIGSTKSZ = 23, 25, 26, 31, 51

_MACHINES = {3: "i386", 8: "MIPS", 20: "PowerPC", 21: "PowerPC64", 22: "s390", 40: "ARM",
             183: "AArch64", 243: "RISC-V", 258: "LoongArch"}


class ExecError(Errno):
    """execve failed before the point of no return; `errno` is what execve returns."""


class Image:
    """What the kernel needs from a loaded program."""

    def __init__(self):
        self.entry = 0          # where the first instruction runs (the interpreter's entry)
        self.stack = 0          # initial rsp
        self.brk = 0
        self.exe_path = ""      # guest path of the main executable (/proc/self/exe)
        self.argv = []


class ElfFile:
    def __init__(self, data, size):
        if len(data) < 64:
            raise ExecError(errno.ENOEXEC, "truncated ELF header")
        if data[4] != 2:
            raise ExecError(errno.ENOEXEC, "not a 64-bit ELF (32-bit programs are not supported)")
        if data[5] != 1:
            raise ExecError(errno.ENOEXEC, "big-endian ELF")
        (self.type, self.machine, _v, self.entry, self.phoff, _sh, _f, _eh, self.phentsize,
         self.phnum) = struct.unpack_from("<HHIQQQIHHH", data, 16)
        if self.machine != EM_X86_64:
            name = _MACHINES.get(self.machine, f"machine {self.machine}")
            raise ExecError(errno.ENOEXEC, f"foreign architecture ({name}), not x86-64")
        if self.type not in (ET_EXEC, ET_DYN):
            raise ExecError(errno.ENOEXEC, "ELF file is not an executable")
        if self.phentsize != 56 or not 0 < self.phnum <= 512:
            raise ExecError(errno.ENOEXEC, "corrupt ELF program headers")
        self.size = size
        self.phdrs = []

    def read_phdrs(self, fd):
        raw = os.pread(fd, 56 * self.phnum, self.phoff)
        if len(raw) != 56 * self.phnum:
            raise ExecError(errno.ENOEXEC, "truncated ELF program headers")
        self.phdr_bytes = raw
        for i in range(self.phnum):
            self.phdrs.append(struct.unpack_from("<IIQQQQQQ", raw, 56 * i))
        loads = self.loads
        if not loads:
            raise ExecError(errno.ENOEXEC, "ELF has no loadable segments")
        for (_t, _fl, off, vaddr, _pa, filesz, memsz, _al) in loads:
            if filesz > memsz or off + filesz > self.size:
                raise ExecError(errno.ENOEXEC, "truncated or corrupt ELF segment")
            if (off - vaddr) % PAGE:
                raise ExecError(errno.ENOEXEC, "misaligned ELF segment")

    @property
    def loads(self):
        return [p for p in self.phdrs if p[0] == PT_LOAD]

    def interp(self, fd):
        for p in self.phdrs:
            if p[0] == PT_INTERP:
                raw = os.pread(fd, min(p[5], 4096), p[2])
                return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        return None

    def span(self):
        loads = self.loads
        lo = page_down(min(p[3] for p in loads))
        hi = page_up(max(p[3] + p[6] for p in loads))
        return lo, hi


def _prot(flags):
    return (PROT_READ if flags & 4 else 0) | (PROT_WRITE if flags & 2 else 0) | \
        (PROT_EXEC if flags & 1 else 0)


def map_elf(mem, elf, fd, st, name, base):
    """Map elf's PT_LOAD segments at load bias `base`; returns the end of the last one."""
    end = 0
    for (_t, flags, off, vaddr, _pa, filesz, memsz, _al) in elf.loads:
        prot = _prot(flags)
        start = page_down(base + vaddr)
        file_end = base + vaddr + filesz
        mem_end = page_up(base + vaddr + memsz)
        if filesz:
            length = page_up(file_end) - start
            mem.map(start, length, prot, MAP_PRIVATE, host_fd=fd, offset=page_down(off),
                    name=name, dev=st.st_dev, ino=st.st_ino)
            tail = page_up(file_end) - file_end
            if tail and memsz > filesz:
                mem.write_force(file_end, bytes(tail))  # the start of .bss shares a page
            anon_start = page_up(file_end)
        else:
            anon_start = start
        if mem_end > anon_start:
            mem.map(anon_start, mem_end - anon_start, prot, MAP_PRIVATE | MAP_ANONYMOUS)
        end = max(end, mem_end)
    return end


def load_elf(mem, elf, fd, st, name, is_interp):
    lo, hi = elf.span()
    if elf.type == ET_DYN:
        base = (PIE_BASE if not is_interp else mem.find_free(hi - lo)) - lo
    else:
        base = 0
    end = map_elf(mem, elf, fd, st, name, base)
    return base, end


def read_header(fd):
    return os.pread(fd, BINPRM_BUF_SIZE, 0)


def parse_shebang(head):
    """`#!interp [arg]` -> (interp, arg or None), with Linux's rules."""
    line = head[2:].split(b"\n", 1)[0]
    if b"\n" not in head[2:] and len(head) >= BINPRM_BUF_SIZE:
        line = line  # Linux truncates an over-long line at the buffer size
    line = line.replace(b"\t", b" ").strip(b" ")
    if not line:
        raise ExecError(errno.ENOEXEC, "empty #! line")
    parts = line.split(b" ", 1)
    interp = parts[0].decode("utf-8", "surrogateescape")
    arg = parts[1].strip(b" ").decode("utf-8", "surrogateescape") if len(parts) > 1 else None
    return interp, (arg or None)


def build_stack(mem, argv, envp, auxv, execfn, random_bytes):
    """Map the stack and lay out argc, argv, envp, auxv and their strings as Linux does."""
    mem.map(STACK_TOP - STACK_SIZE, STACK_SIZE, PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS | 0x100, name="[stack]")
    sp = STACK_TOP - 8
    strings = bytearray()

    def push_string(s):
        nonlocal sp
        data = (s.encode("utf-8", "surrogateescape") if isinstance(s, str) else s) + b"\0"
        sp -= len(data)
        mem.write_force(sp, data)
        return sp

    execfn_addr = push_string(execfn)
    env_addrs = [push_string(s) for s in reversed(envp)][::-1]
    arg_addrs = [push_string(s) for s in reversed(argv)][::-1]
    platform = push_string("x86_64")
    sp &= ~15
    sp -= 16
    mem.write_force(sp, random_bytes)
    rand_addr = sp
    del strings
    aux = list(auxv) + [(AT_RANDOM, rand_addr), (AT_EXECFN, execfn_addr),
                        (AT_PLATFORM, platform), (AT_NULL, 0)]
    words = [len(argv)] + arg_addrs + [0] + env_addrs + [0]
    for k, v in aux:
        words += [k, v]
    sp -= 8 * len(words)
    sp &= ~15
    mem.write_force(sp, struct.pack(f"<{len(words)}Q", *words))
    return sp


def elf_phdr_addr(elf, base):
    for p in elf.phdrs:
        if p[0] == PT_PHDR:
            return base + p[3]
    for (_t, _f, off, vaddr, _pa, filesz, _m, _a) in elf.loads:
        if off <= elf.phoff < off + filesz:
            return base + vaddr + (elf.phoff - off)
    return 0
