"""Symbols for the debugger: ELF symbol tables (pyelftools) and PLT stubs named
``puts@plt`` from the PLT relocations, for the main executable and loaded libraries."""

import bisect

from elftools.elf.elffile import ELFFile
from elftools.elf.relocation import RelocationSection
from elftools.elf.sections import SymbolTableSection

R_X86_64_JUMP_SLOT = 7
R_X86_64_IRELATIVE = 37


def elf_symbols(path):
    """([(value, size, name)], e_type, e_entry, first PT_LOAD vaddr) of one ELF file."""
    out = []
    with open(path, "rb") as f:
        elf = ELFFile(f)
        for secname in (".symtab", ".dynsym"):
            sec = elf.get_section_by_name(secname)
            if not isinstance(sec, SymbolTableSection):
                continue
            for sym in sec.iter_symbols():
                if sym.name and sym["st_info"]["type"] in ("STT_FUNC", "STT_OBJECT",
                                                           "STT_GNU_IFUNC", "STT_NOTYPE") \
                        and sym["st_shndx"] != "SHN_UNDEF" and sym["st_value"]:
                    out.append((sym["st_value"], sym["st_size"], sym.name))
        out += _plt_symbols(elf)
        load = min((s["p_vaddr"] for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"),
                   default=0)
        return out, elf["e_type"], elf["e_entry"], load


def _plt_symbols(elf):
    """PLT stubs: the n-th JUMP_SLOT relocation of .rela.plt is the n-th stub of
    .plt.sec (IBT layout) or entry n+1 of .plt (entry 0 is the resolver's)."""
    rela = elf.get_section_by_name(".rela.plt")
    if not isinstance(rela, RelocationSection):
        return []
    symtab = elf.get_section(rela["sh_link"]) if rela["sh_link"] else None
    names = []
    for r in rela.iter_relocations():
        if r["r_info_type"] == R_X86_64_JUMP_SLOT and symtab is not None:
            names.append(symtab.get_symbol(r["r_info_sym"]).name)
        elif r["r_info_type"] == R_X86_64_IRELATIVE:
            names.append("*ABS*+0x%x" % r["r_addend"])
        else:
            names.append(None)
    sec = elf.get_section_by_name(".plt.sec")
    if sec is not None:
        base, first = sec["sh_addr"], 0
        entsize = 16
    else:
        sec = elf.get_section_by_name(".plt")
        if sec is None:
            return []
        base, first = sec["sh_addr"], 1
        entsize = sec["sh_entsize"] or 16
        if entsize < 16:
            entsize = 16
    return [(base + entsize * (i + first), entsize, f"{n}@plt")
            for i, n in enumerate(names) if n]


class SymbolTable:
    def __init__(self):
        self.addrs = []
        self.syms = []          # (addr, size, name), sorted
        self.by_name = {}

    def add_file(self, path, bias=0):
        try:
            syms, _t, _e, _l = elf_symbols(path)
        except (OSError, Exception):
            return False
        for value, size, name in syms:
            self.syms.append((value + bias, size, name))
            self.by_name.setdefault(name, value + bias)
        self.syms.sort()
        self.addrs = [s[0] for s in self.syms]
        return True

    def lookup(self, addr):
        """(name, offset) of the symbol covering addr, or None."""
        i = bisect.bisect_right(self.addrs, addr) - 1
        while i >= 0:
            value, size, name = self.syms[i]
            if addr < value + max(size, 1) or (size == 0 and addr - value < 0x1000):
                return name, addr - value
            if value != self.addrs[i - 1] if i else True:
                break
            i -= 1
        return None

    def describe(self, addr):
        hit = self.lookup(addr)
        if hit is None:
            return ""
        name, off = hit
        return f"{name}+{off:#x}" if off else name

    def resolve(self, text):
        """An address from hex text or a symbol name (name@plt included)."""
        text = text.strip()
        if text in self.by_name:
            return self.by_name[text]
        try:
            return int(text, 16)
        except ValueError:
            return None
