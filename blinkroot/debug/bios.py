"""The PC BIOS that `blinkenlights -r` programs call, in Python (services by INT vector).

The machine (blinkroot.cpu RealModeMachine) reports `INT n` as an INTERRUPT event with IP
past the instruction and nothing pushed; `Bios.interrupt` then does one of two things:

* the program installed its own handler (IVT[n] is no longer the BIOS's): push FLAGS, CS
  and IP and jump to it, as the CPU would;
* otherwise serve it here and carry on after the INT.  Results go in the registers and in
  CF/ZF of the live FLAGS (and of the stacked FLAGS when the call came through the ROM
  stub, i.e. a program chaining to the BIOS with `pushf; call far [old]`).

The IVT points every vector at a 4-byte stub in the ROM segment F000h (`int n; iret`), so
saving and chaining to an old vector works.  Served:

* int 10h video: 0Eh teletype (AL to the terminal), 00h set mode (remembered, nothing
  cleared), 0Fh get mode, 02h/03h set/get cursor (ANSI cursor moves), 09h/0Ah character
  CX times, 13h write string;
* int 16h keyboard: 00h/10h wait for a key (AL ASCII, AH scan code), 01h/11h peek (ZF=1:
  none), 02h shift flags (none);
* int 1Ah clock: 00h ticks since midnight in CX:DX at 18.2 Hz (AL=1 once past midnight),
  02h/04h RTC time and date in BCD;
* int 11h equipment word, int 12h conventional memory (640 KiB);
* int 20h (DOS's terminate) and int 19h (reboot) end the run with status 0.

An unknown function of a served vector returns CF=1, AH=86h, as BIOSes do; an unknown
vector, or a CPU exception (vectors 0-7) nobody handles, stops the run with a message.
"""

import collections
import datetime
import threading

ROM_SEG = 0xF000            # the IVT's stubs live at F000:0000 + 4*vector
ZF, CF, IF, TF = 0x40, 0x01, 0x200, 0x100
TICKS_PER_SECOND = 1193182 / 65536      # 18.2065 Hz, the 8254 PIT at its slowest

EXCEPTIONS = {0: "divide error", 1: "debug exception", 3: "breakpoint (int3)",
              4: "overflow (into)", 5: "bound range exceeded", 6: "invalid opcode",
              7: "no coprocessor"}

# Scan codes of a US keyboard, for int 16h's AH.
_SCAN = {}
for _row, _first in (("1234567890-=", 0x02), ("qwertyuiop[]", 0x10), ("asdfghjkl;'`", 0x1E),
                     ("\\zxcvbnm,./", 0x2B)):
    for _i, _c in enumerate(_row):
        _SCAN[_c] = _first + _i
for _row, _first in (('!@#$%^&*()_+', 0x02), ("QWERTYUIOP{}", 0x10), ('ASDFGHJKL:"~', 0x1E),
                     ("|ZXCVBNM<>?", 0x2B)):
    for _i, _c in enumerate(_row):
        _SCAN[_c] = _first + _i
_SCAN.update({" ": 0x39, "\r": 0x1C, "\x08": 0x0E, "\t": 0x0F, "\x1b": 0x01})
_ARROWS = {b"A": 0x48, b"B": 0x50, b"C": 0x4D, b"D": 0x4B, b"H": 0x47, b"F": 0x4F}


class Exit(Exception):
    """The program ended (HLT, int 20h, SYSCALL exit): status is the exit status."""

    def __init__(self, status=0, how=""):
        super().__init__(how)
        self.status, self.how = status, how


class Stop(Exception):
    """The run cannot go on (an unsupported interrupt, an unhandled CPU exception)."""


class Interrupted(Exception):
    """A blocking service was interrupted (the debugger's `i`): the INT runs again."""


def key_of(data):
    """(ascii, scan) of the keystroke at the start of data, and its length in bytes."""
    if data[:2] == b"\x1b[" and len(data) >= 3 and data[2:3] in _ARROWS:
        return (0, _ARROWS[data[2:3]]), 3
    c = chr(data[0])
    if c == "\n":
        c = "\r"                # Enter is CR on a PC
    elif c == "\x7f":
        c = "\x08"              # Backspace
    ascii_ = ord(c)
    scan = _SCAN.get(c)
    if scan is None and 1 <= ascii_ <= 26:          # Ctrl+letter
        scan = _SCAN.get(chr(ascii_ + 96), 0)
    return (ascii_, scan or 0), 1


class Keyboard:
    """Keystrokes for int 16h, fed from a host terminal (bytes) by any thread."""

    def __init__(self):
        self.cond = threading.Condition()
        self.pending = bytearray()
        self.keys = collections.deque()
        self.closed = False         # no more input will come
        self.waiting = False        # the guest is blocked in int 16h
        self.cancelled = False

    def feed(self, data):
        with self.cond:
            self.pending += data
            while self.pending:
                if self.pending == b"\x1b" or self.pending == b"\x1b[":
                    break           # maybe the start of an arrow key: wait for the rest
                key, n = key_of(bytes(self.pending))
                del self.pending[:n]
                self.keys.append(key)
            self.cond.notify_all()

    def close(self):
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def cancel(self):
        with self.cond:
            self.cancelled = True
            self.cond.notify_all()

    def _flush_escape(self):
        if self.pending and not self.keys:
            key, n = key_of(bytes(self.pending))
            del self.pending[:n]
            self.keys.append(key)

    def peek(self):
        with self.cond:
            self._flush_escape()
            return self.keys[0] if self.keys else None

    def get(self):
        """The next key, waiting for it; None at the end of input."""
        with self.cond:
            self.waiting = True
            try:
                while True:
                    if self.cancelled:
                        self.cancelled = False
                        raise Interrupted()
                    if self.keys:
                        return self.keys.popleft()
                    if self.pending:
                        if self.cond.wait(0.05) is False or not self.keys:
                            self._flush_escape()
                        continue
                    if self.closed:
                        return None
                    self.cond.wait()
            finally:
                self.waiting = False


def _bcd(v):
    return ((v // 10) << 4) | (v % 10)


class Bios:
    """BIOS services over a RealModeMachine; `write(bytes)` is the terminal."""

    def __init__(self, machine, write, keyboard=None, now=None):
        self.m = machine
        self.write = write
        self.keyboard = keyboard or Keyboard()
        self.now = now or datetime.datetime.now
        self.video_mode = 3
        self.row = self.col = 0
        self.last_day = None
        self.install()

    def install(self):
        """The IVT (every vector at its ROM stub) and the stubs: `int n; iret; nop`."""
        ivt = bytearray()
        rom = bytearray()
        for v in range(256):
            ivt += (4 * v).to_bytes(2, "little") + ROM_SEG.to_bytes(2, "little")
            rom += bytes([0xCD, v, 0xCF, 0x90])
        self.m.write(0, bytes(ivt))
        self.m.write(ROM_SEG * 16, bytes(rom))
        # The BIOS data area's equipment word and memory size, and the reset vector.
        self.m.write(0x410, (0x0021).to_bytes(2, "little"))
        self.m.write(0x413, (640).to_bytes(2, "little"))

    # -- the dispatcher ------------------------------------------------------------------
    def interrupt(self, vector):
        """Handle INT vector (IP is past it).  Raises Exit, Stop or Interrupted."""
        r = self.m.get_regs()
        from_rom = r["cs"] == ROM_SEG and r["ip"] <= 0x400
        if not from_rom:
            seg_off = self.m.read(4 * vector, 4)
            off, seg = int.from_bytes(seg_off[:2], "little"), int.from_bytes(seg_off[2:], "little")
            if (seg, off) != (ROM_SEG, 4 * vector):
                self._deliver(r, seg, off)
                return
        service = getattr(self, f"int{vector:02x}h", None)
        if service is None:
            if vector in EXCEPTIONS:
                raise Stop(f"CPU exception {vector}: {EXCEPTIONS[vector]} at "
                           f"{r['cs']:04x}:{r['ip']:04x}")
            raise Stop(f"unsupported BIOS interrupt int {vector:02x}h (AH={r['ax'] >> 8:02x}h)")
        self.from_rom = from_rom
        service(r)

    def _deliver(self, r, seg, off):
        """What the CPU does for INT n: push FLAGS, CS, IP; clear IF and TF; far jump."""
        sp = (r["sp"] - 6) & 0xFFFF
        frame = b"".join(v.to_bytes(2, "little") for v in (r["ip"], r["cs"], r["flags"]))
        self._write_stack(r["ss"], sp, frame)
        self.m.set_regs(sp=sp, cs=seg, ip=off, flags=r["flags"] & ~(IF | TF))

    def _write_stack(self, ss, sp, data):
        for i, b in enumerate(data):
            self.m.write(ss * 16 + ((sp + i) & 0xFFFF), bytes([b]))

    def _flags(self, r, set_=0, clear=0):
        """Set/clear flags in the live FLAGS and, through the ROM stub, the stacked ones."""
        self.m.set_regs(flags=(r["flags"] | set_) & ~clear)
        if self.from_rom:
            addr = r["ss"] * 16 + ((r["sp"] + 4) & 0xFFFF)
            old = int.from_bytes(self.m.read(addr, 2), "little")
            self._write_stack(r["ss"], r["sp"] + 4, ((old | set_) & ~clear).to_bytes(2, "little"))

    def _unsupported(self, r):
        self.m.set_regs(ax=(0x86 << 8) | (r["ax"] & 0xFF))
        self._flags(r, set_=CF)

    # -- int 10h: video --------------------------------------------------------------------
    def _put(self, ch):
        """A character through the teletype, tracking the cursor as the BIOS does."""
        if ch == 0x0D:
            self.col = 0
        elif ch == 0x0A:
            self.row = min(self.row + 1, 24)
        elif ch == 0x08:
            self.col = max(self.col - 1, 0)
        elif ch != 0x07:
            self.col += 1
            if self.col >= 80:
                self.col, self.row = 0, min(self.row + 1, 24)
        self.write(bytes([ch]) if ch < 0x80 else bytes([ch]).decode("cp437").encode())

    def _goto(self, row, col):
        self.row, self.col = row, col
        self.write(f"\x1b[{row + 1};{col + 1}H".encode())

    def int10h(self, r):
        ah, al = r["ax"] >> 8, r["ax"] & 0xFF
        if ah == 0x0E:
            self._put(al)
        elif ah == 0x00:
            self.video_mode = al & 0x7F
        elif ah == 0x0F:
            self.m.set_regs(ax=(80 << 8) | self.video_mode, bx=r["bx"] & 0xFF)
        elif ah == 0x02:
            self._goto(r["dx"] >> 8, r["dx"] & 0xFF)
        elif ah == 0x03:
            self.m.set_regs(dx=(self.row << 8) | self.col, cx=0x0607)
        elif ah in (0x09, 0x0A):
            n = r["cx"]
            if n:
                self.write(bytes([al]) * n if al < 0x80 else
                           (bytes([al]).decode("cp437") * n).encode())
                self.write(f"\x1b[{n}D".encode())
        elif ah == 0x13:
            mode, count = al, r["cx"]
            addr = r["es"] * 16 + r["bp"]
            data = self.m.read(addr, count * (2 if mode & 2 else 1))
            chars = data[::2] if mode & 2 else data
            row, col = self.row, self.col
            self._goto(r["dx"] >> 8, r["dx"] & 0xFF)
            for ch in chars:
                self._put(ch)
            if not mode & 1:
                self._goto(row, col)
        elif ah in (0x01, 0x05, 0x06, 0x07, 0x0B, 0x10, 0x11, 0x12):
            pass        # cursor shape, pages, scrolling, palette, fonts: nothing to show
        else:
            self._unsupported(r)

    # -- int 16h: keyboard -------------------------------------------------------------------
    def int16h(self, r):
        ah = r["ax"] >> 8
        if ah in (0x00, 0x10):
            key = self.keyboard.get()
            if key is None:
                raise Exit(0, "end of keyboard input")
            self.m.set_regs(ax=(key[1] << 8) | key[0])
        elif ah in (0x01, 0x11):
            key = self.keyboard.peek()
            if key is None:
                self._flags(r, set_=ZF)
            else:
                self.m.set_regs(ax=(key[1] << 8) | key[0])
                self._flags(r, clear=ZF)
        elif ah in (0x02, 0x12):
            self.m.set_regs(ax=r["ax"] & 0xFF00)
        else:
            self._unsupported(r)

    # -- int 1ah: clock ---------------------------------------------------------------------
    def int1ah(self, r):
        ah = r["ax"] >> 8
        now = self.now()
        if ah == 0x00:
            midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
            ticks = int((now - midnight).total_seconds() * TICKS_PER_SECOND)
            rolled = self.last_day is not None and self.last_day != now.date()
            self.last_day = now.date()
            self.m.set_regs(cx=ticks >> 16, dx=ticks & 0xFFFF,
                            ax=(r["ax"] & 0xFF00) | int(rolled))
        elif ah == 0x02:
            self.m.set_regs(cx=(_bcd(now.hour) << 8) | _bcd(now.minute),
                            dx=_bcd(now.second) << 8)
            self._flags(r, clear=CF)
        elif ah == 0x04:
            self.m.set_regs(cx=(_bcd(now.year // 100) << 8) | _bcd(now.year % 100),
                            dx=(_bcd(now.month) << 8) | _bcd(now.day))
            self._flags(r, clear=CF)
        else:
            self._unsupported(r)

    # -- the rest ---------------------------------------------------------------------------
    def int11h(self, r):
        self.m.set_regs(ax=0x0021)

    def int12h(self, r):
        self.m.set_regs(ax=640)

    def int19h(self, r):
        raise Exit(0, "int 19h (reboot)")

    def int20h(self, r):
        raise Exit(0, "int 20h")


def ticks_now():
    """For tests: int 1Ah's tick count right now."""
    now = datetime.datetime.now()
    return int((now - now.replace(hour=0, minute=0, second=0, microsecond=0)).total_seconds()
               * TICKS_PER_SECOND)

