"""A GDB remote stub: ``blinkroot -g PORT PROGRAM`` (qemu-user's flag).

blinkroot waits on 127.0.0.1:PORT before the first instruction; gdb connects with
``target remote :PORT``.  Served: qSupported, target.xml (i386:x86-64, SSE, orig_rax,
fs_base/gs_base), g/G/p/P, m/M/X, Z0/Z1 breakpoints, Z2/Z3/Z4 watchpoints, s/c/S/C,
vCont, ?, qXfer auxv/exec-file/libraries-svr4/features/siginfo/threads, vFile (guest
files through blinkroot's VFS, so ``-C ROOT`` needs no sysroot), threads (qfThreadInfo,
Hg/Hc, T, qC), k and D, exec events, no-ack mode.

Each debugged process serves the protocol for itself alone, on a unix socket to the
hub (hub.py), which owns gdb's connection and makes several processes one multiprocess
target (fork/vfork events: a fork's child is debugged on, by its own copy of this stub).
"""

import errno
import os
import select
import signal as host_signal
import socket
import struct
import sys
import threading

from ..errors import Errno
from ..cpu import engine as E
from .core import Debugger

# -- registers: amd64-linux's order --------------------------------------------------------
GPRS = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
        "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip")
SEGS = ("cs", "ss", "ds", "es", "fs", "gs")
SEG_VALUES = (0x33, 0x2B, 0, 0, 0, 0)
FPCTL = ("fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop")
R_EFLAGS, R_SEG0, R_ST0, R_FCTL, R_XMM0, R_MXCSR, R_ORIG_RAX, R_FS_BASE, R_GS_BASE, NREGS = \
    17, 18, 24, 32, 40, 56, 57, 58, 59, 60


def _size(n):
    if n < 17 or n in (R_ORIG_RAX, R_FS_BASE, R_GS_BASE):
        return 8
    if R_ST0 <= n < R_FCTL:
        return 10
    if R_XMM0 <= n < R_MXCSR:
        return 16
    return 4


def _target_xml():
    def reg(name, bits, typ, n=None, group=None):
        extra = f' regnum="{n}"' if n is not None else ""
        extra += f' group="{group}"' if group else ""
        return f'<reg name="{name}" bitsize="{bits}" type="{typ}"{extra}/>'
    flags = "".join(f'<field name="{f}" start="{i}" end="{i}"/>' for i, f in (
        (0, "CF"), (1, ""), (2, "PF"), (4, "AF"), (6, "ZF"), (7, "SF"), (8, "TF"), (9, "IF"),
        (10, "DF"), (11, "OF"), (14, "NT"), (16, "RF"), (17, "VM"), (18, "AC"), (19, "VIF"),
        (20, "VIP"), (21, "ID")))
    core = [f'<flags id="i386_eflags" size="4">{flags}</flags>']
    for i, r in enumerate(GPRS):
        typ = "code_ptr" if r == "rip" else "data_ptr" if r in ("rbp", "rsp") else "int64"
        core.append(reg(r, 64, typ, i))
    core.append(reg("eflags", 32, "i386_eflags", R_EFLAGS))
    core += [reg(s, 32, "int32", R_SEG0 + i) for i, s in enumerate(SEGS)]
    core += [reg(f"st{i}", 80, "i387_ext", R_ST0 + i) for i in range(8)]
    core += [reg(f, 32, "int", R_FCTL + i, "float") for i, f in enumerate(FPCTL)]
    mx = "".join(f'<field name="{f}" start="{i}" end="{i}"/>' for i, f in enumerate(
        ("IE", "DE", "ZE", "OE", "UE", "PE", "DAZ", "IM", "DM", "ZM", "OM", "UM", "PM", "FZ")))
    sse = ['<vector id="v4f" type="ieee_single" count="4"/>',
           '<vector id="v2d" type="ieee_double" count="2"/>',
           '<vector id="v16i8" type="int8" count="16"/>',
           '<vector id="v8i16" type="int16" count="8"/>',
           '<vector id="v4i32" type="int32" count="4"/>',
           '<vector id="v2i64" type="int64" count="2"/>',
           '<union id="vec128"><field name="v4_float" type="v4f"/>'
           '<field name="v2_double" type="v2d"/><field name="v16_int8" type="v16i8"/>'
           '<field name="v8_int16" type="v8i16"/><field name="v4_int32" type="v4i32"/>'
           '<field name="v2_int64" type="v2i64"/><field name="uint128" type="uint128"/>'
           '</union>', f'<flags id="i386_mxcsr" size="4">{mx}</flags>']
    sse += [reg(f"xmm{i}", 128, "vec128", R_XMM0 + i) for i in range(16)]
    sse.append(reg("mxcsr", 32, "i386_mxcsr", R_MXCSR, "vector"))
    return ('<?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd">'
            '<target version="1.0"><architecture>i386:x86-64</architecture>'
            '<osabi>GNU/Linux</osabi>'
            '<feature name="org.gnu.gdb.i386.core">' + "".join(core) + '</feature>'
            '<feature name="org.gnu.gdb.i386.sse">' + "".join(sse) + '</feature>'
            '<feature name="org.gnu.gdb.i386.linux">'
            + reg("orig_rax", 64, "int", R_ORIG_RAX) + '</feature>'
            '<feature name="org.gnu.gdb.i386.segments">'
            + reg("fs_base", 64, "int", R_FS_BASE) + reg("gs_base", 64, "int", R_GS_BASE)
            + '</feature></target>')


TARGET_XML = _target_xml().encode()


def read_registers(t):
    """[bytes] for every register number, as gdb expects them (little-endian)."""
    regs = t.vcpu.get_regs()
    fx = t.vcpu.get_fpu()
    out = [struct.pack("<Q", getattr(regs, r) & 0xFFFFFFFFFFFFFFFF) for r in GPRS]
    out.append(struct.pack("<I", regs.eflags & 0xFFFFFFFF))
    out += [struct.pack("<I", v) for v in SEG_VALUES]
    out += [fx[32 + 16 * i: 42 + 16 * i] for i in range(8)]
    fcw, fsw, ftw_abridged, _, fop = struct.unpack_from("<HHBBH", fx)
    ftag = 0
    for i in range(8):
        if not (ftw_abridged >> i) & 1:
            ftag |= 3 << (2 * i)
    out += [struct.pack("<I", v) for v in (fcw, fsw, ftag, 0, 0, 0, 0, fop)]
    out += [fx[160 + 16 * i: 176 + 16 * i] for i in range(16)]
    out.append(fx[24:28])
    out.append(struct.pack("<q", -1))
    out += [struct.pack("<Q", regs.fs_base), struct.pack("<Q", regs.gs_base)]
    return out


def write_register(t, n, data):
    """Set register n from gdb's bytes."""
    data = bytes(data)
    if n < 17 or n in (R_EFLAGS, R_FS_BASE, R_GS_BASE):
        value = int.from_bytes(data, "little")
        name = GPRS[n] if n < 17 else {R_EFLAGS: "eflags", R_FS_BASE: "fs_base",
                                       R_GS_BASE: "gs_base"}[n]
        regs = t.vcpu.get_regs()
        setattr(regs, name, value)
        t.vcpu.set_regs(regs)
        return
    fx = bytearray(t.vcpu.get_fpu())
    if R_ST0 <= n < R_FCTL:
        i = n - R_ST0
        fx[32 + 16 * i: 42 + 16 * i] = data[:10]
    elif n == R_FCTL:
        fx[0:2] = data[:2]
    elif n == R_FCTL + 1:
        fx[2:4] = data[:2]
    elif n == R_FCTL + 2:
        tag = int.from_bytes(data[:2], "little")
        fx[4] = sum(1 << i for i in range(8) if (tag >> (2 * i)) & 3 != 3)
    elif R_XMM0 <= n < R_MXCSR:
        i = n - R_XMM0
        fx[160 + 16 * i: 176 + 16 * i] = data[:16]
    elif n == R_MXCSR:
        fx[24:28] = data[:4]
    else:
        return      # segment selectors, fiseg & co, orig_rax: fixed here
    t.vcpu.set_fpu(bytes(fx))


# -- packets --------------------------------------------------------------------------
def escape(data):
    out = bytearray()
    for b in data:
        if b in (0x23, 0x24, 0x7D, 0x2A):
            out += bytes((0x7D, b ^ 0x20))
        else:
            out.append(b)
    return bytes(out)


def unescape(data):
    out = bytearray()
    it = iter(data)
    for b in it:
        if b == 0x7D:
            out.append(next(it) ^ 0x20)
        else:
            out.append(b)
    return bytes(out)


def split_packet(buf):
    """(what, rest) for bytes received from gdb: `what` is b"\x03" for an interrupt, a
    packet's payload, or None until a whole one is there.  Acks (+/-) before it and
    garbage up to the next `$` are dropped from `rest`."""
    while True:
        buf = buf.lstrip(b"+-")
        if buf[:1] == b"\x03":
            return b"\x03", buf[1:]
        if buf[:1] == b"$":
            end = buf.find(b"#")
            if end >= 0 and len(buf) >= end + 3:
                return buf[1:end], buf[end + 3:]
            return None, buf
        if not buf:
            return None, buf
        buf = buf[buf.find(b"$"):] if b"$" in buf else b""


# Linux errno -> gdb's File-I/O errno
_FIO_ERRNO = {errno.EPERM: 1, errno.ENOENT: 2, errno.EINTR: 4, errno.EBADF: 9,
              errno.EACCES: 13, errno.EFAULT: 14, errno.EBUSY: 16, errno.EEXIST: 17,
              errno.ENODEV: 19, errno.ENOTDIR: 20, errno.EISDIR: 21, errno.EINVAL: 22,
              errno.ENFILE: 23, errno.EMFILE: 24, errno.EFBIG: 27, errno.ENOSPC: 28,
              errno.ESPIPE: 29, errno.EROFS: 30, errno.ENAMETOOLONG: 91}


def _fio_error(e):
    return b"F-1,%x" % _FIO_ERRNO.get(e, 9999)


class GdbStub(Debugger):
    """The debugger hooks plus a server thread speaking gdb's remote protocol."""

    def __init__(self, port, host="127.0.0.1"):
        super().__init__()
        from . import hub
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(1)
        self.port = listener.getsockname()[1]
        self.conn = hub.start(listener, os.getpid())     # our socket to the hub
        self.noack = True           # the hub frames reliably
        self.exec_events = False
        self.fork_events = False
        self.vfork_events = False
        self.fork_pair = None       # (ours, the child's) socket pair of a fork underway
        self.g_thread = None        # Hg: the thread g/p/m talk about
        self.c_thread = None        # Hc
        self.files = {}             # vFile descriptors -> host fds
        self.exit_told = threading.Event()
        self.last_stop = None
        self.rxbuf = b""
        self.trace = bool(os.environ.get("BLINKROOT_GDB_TRACE"))
        self.send_lock = threading.Lock()   # non-stop: guest threads send notifications
        self.server = threading.Thread(target=self._serve, name="gdbstub", daemon=True)
        self.server.start()

    # -- plumbing --------------------------------------------------------------------------
    def forked_child_cleanup(self):
        pair, self.fork_pair = self.fork_pair, None
        for s in (self.conn,) + (pair or ()):
            try:
                if s is not None:
                    os.close(s.detach())    # the child's copies only; gdb keeps the parent
            except OSError:
                pass
        for fd in self.files.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self.files = {}

    # -- forks -------------------------------------------------------------------------------
    def prepare_fork(self, what):
        if self.fork_pair is not None:
            for s in self.fork_pair:
                s.close()
            self.fork_pair = None
        if what == "fork" and self.fork_events or what == "vfork" and self.vfork_events:
            self.fork_pair = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)

    def fork_told(self, stop):
        pair, self.fork_pair = self.fork_pair, None
        if pair is None:
            return False
        ours, theirs = pair
        theirs.close()
        stop.extra["fd"] = ours
        return True

    def adopt_fork_child(self):
        """In the child: serve the hub on the pair's other end, stopped."""
        pair, self.fork_pair = self.fork_pair, None
        if pair is None:
            return False
        ours, theirs = pair
        self.fork_pair = (ours,)
        self.forked_child_cleanup()     # the parent's socket, our copy of its end, files
        self.conn = theirs
        self.rxbuf = b""
        self.g_thread = self.c_thread = None
        self.last_stop = None
        self.ns_stops, self.ns_halt, self.ns_signal = {}, {}, {}
        self.send_lock = threading.Lock()
        self.exit_told = threading.Event()
        self.started = threading.Event()
        self.started.set()
        self.server = threading.Thread(target=self._serve_child, name="gdbstub",
                                       daemon=True)
        self.server.start()
        return True

    def _serve_child(self):
        if not self.nonstop:
            self.wait_stop()
        self._serve_loop()

    def wait_exit_told(self):
        self.exit_told.wait()       # the hub closes our socket (it may be gone)

    def frontend_state(self):
        return {"noack": self.noack, "exec_events": self.exec_events,
                "fork_events": self.fork_events, "vfork_events": self.vfork_events}

    def frontend_fds(self):
        return [self.conn.fileno()]

    def took_over(self, state, fds):
        """A checkpoint's copy serves gdb from now on, on the inherited connection: its
        first words are the stop reply to the reverse command the old process took."""
        if self.conn is not None:
            try:
                os.close(self.conn.detach())
            except OSError:
                pass
        self.conn = socket.socket(fileno=fds[0])
        self.noack = state["noack"]
        self.exec_events = state["exec_events"]
        self.fork_events = state.get("fork_events", False)
        self.vfork_events = state.get("vfork_events", False)
        self.rxbuf = b""
        self.started.set()
        self.server = threading.Thread(target=self._serve_resumed, name="gdbstub",
                                       daemon=True)
        self.server.start()

    def _serve_resumed(self):
        while True:
            stop = self.wait_stop(timeout=0.05)
            if stop is not None:
                break
            pkt = self._packet(block=False)
            if pkt == b"\x03":
                self.request_interrupt()
        if stop.reason in ("exited", "killed"):
            self._send(self.stop_reply(stop))
            self.exit_told.set()
            return
        self._send(self.stop_reply(stop))
        self._serve_loop()

    def _recv(self):
        data = self.conn.recv(65536)
        if not data:
            raise EOFError
        self.rxbuf += data

    def _packet(self, block=True):
        """The next packet's payload, b"\x03" for an interrupt, None if none (non-block)."""
        while True:
            pkt, self.rxbuf = split_packet(self.rxbuf)
            if pkt is not None:
                if pkt != b"\x03" and not self.noack:
                    self.conn.sendall(b"+")
                return pkt
            if not block:
                r, _, _ = select.select([self.conn], [], [], 0)
                if not r:
                    return None
            self._recv()

    def _send(self, payload, fds=(), start=b"$"):
        if isinstance(payload, str):
            payload = payload.encode()
        with self.send_lock:
            self._send_locked(payload, fds, start)

    def _send_locked(self, payload, fds, start):
        pkt = start + payload + b"#%02x" % (sum(payload) & 0xFF)
        if fds:
            socket.send_fds(self.conn, [pkt[:1]], fds)
            pkt = pkt[1:]
        while True:
            self.conn.sendall(pkt)
            if self.noack:
                return
            while not self.rxbuf[:1] in (b"+", b"-"):
                if self.rxbuf[:1] in (b"$", b"\x03"):
                    return      # gdb went on without acking
                self._recv()
            ack, self.rxbuf = self.rxbuf[:1], self.rxbuf[1:]
            if ack == b"+":
                return

    def _serve(self):
        self.started.wait()
        self.wait_stop()
        self._serve_loop()

    def _serve_loop(self):
        try:
            while True:
                pkt = self._packet()
                if pkt == b"\x03":
                    continue
                if self.trace:
                    sys.stderr.write(f"gdb> {pkt[:200]!r}\n")
                if self.nonstop and not pkt.startswith((b"vCont", b"vCtrlC", b"D", b"k",
                                                        b"vKill", b"QNonStop")):
                    with self.quiet():      # its siblings run: the engine is ours a while
                        reply = self.handle(pkt)
                else:
                    reply = self.handle(pkt)
                if self.trace and reply is not None:
                    sys.stderr.write(f"gdb< {reply[:200]!r}\n")
                if reply is not None:
                    self._send(reply)
        except (EOFError, OSError):
            pass
        except Exception as e:      # report, and let the guest go on undebugged
            sys.stderr.write(f"blinkroot: gdb stub: {type(e).__name__}: {e}\n")
        if self.detached:
            return
        if not self.detached and self.last_stop is not None \
                and self.last_stop.reason in ("exited", "killed"):
            self.exit_told.set()
            return
        # gdb went away: the program is killed, as under qemu -g.
        self.reverse.discard(self.reverse.checkpoints)
        os.kill(os.getpid(), host_signal.SIGKILL)

    # -- stop replies ------------------------------------------------------------------------
    def ns_stopped(self, stop):
        """Non-stop: tell the hub at once, in a notification (it queues them for gdb)."""
        if stop.reason == "forked":
            return          # a fork's child: gdb knows it stopped
        if stop.reason in ("exited", "killed"):
            self.last_stop = stop
        sock = stop.extra.pop("fd", None)
        if stop.thread is not None and stop.thread.host_ident != threading.get_ident():
            with self.quiet():
                reply = self.stop_reply(stop, track=False)
        else:
            reply = self.stop_reply(stop, track=False)
        if self.trace:
            sys.stderr.write(f"gdb< %Stop:{reply[:200]!r}\n")
        try:
            self._send(b"Stop:" + reply, [sock.fileno()] if sock is not None else (),
                       start=b"%")
        except OSError:
            pass
        if sock is not None:
            sock.close()

    def stop_reply(self, stop, track=True):
        if track:
            self.last_stop = stop
        if stop.reason == "exited":
            return b"W%02x" % stop.status
        if stop.reason == "killed":
            return b"X%02x" % stop.status
        t = stop.thread
        if track:
            self.g_thread = self.c_thread = t
        parts = [b"T%02x" % stop.signal, b"thread:%x;" % t.tid]
        if stop.reason == "swbreak":
            parts.append(b"swbreak:;")
        elif stop.reason in ("watch", "rwatch", "awatch"):
            parts.append(b"%s:%x;" % (stop.reason.encode(), stop.addr))
        elif stop.reason == "exec" and self.exec_events:
            parts.append(b"exec:%s;" % bytes(self.proc.exe).hex().encode())
        elif stop.reason in ("fork", "vfork"):
            parts.append(b"%s:p%x.%x;" % (stop.reason.encode(), stop.child, stop.child))
        elif stop.reason == "vforkdone":
            parts.append(b"vforkdone:;")
        if stop.extra.get("replaylog"):
            parts.append(b"replaylog:begin;")
        try:
            regs = read_registers(t)
            for n in (6, 7, 16):
                parts.append(b"%02x:%s;" % (n, regs[n].hex().encode()))
        except Exception:
            pass
        return b"".join(parts)

    def _run_until_stop(self, step=None, signal=0, others=True, running=None):
        self.resume(step, signal, others, running)
        while True:
            stop = self.wait_stop(timeout=0.05)
            if stop is not None:
                # An exit is told and the process lingers (in on_exit) until the hub
                # closes our socket: the hub may keep the news for later (all-stop),
                # and gdb may look at the process meanwhile.
                sock = stop.extra.pop("fd", None)
                if sock is not None:        # a fork's: the hub reaches the child by it
                    self._send(self.stop_reply(stop), [sock.fileno()])
                    sock.close()
                    return None
                return self.stop_reply(stop)
            pkt = self._packet(block=False)
            if pkt == b"\x03":
                self.request_interrupt()
            elif pkt is not None:
                pass    # all-stop: nothing else is valid while running

    def reverse_command(self, pkt):
        """bs / bc: a checkpoint's copy takes over and answers (this process ends), or we
        are at the start of the recording already."""
        why = self.reverse.check()
        if why is not None:
            sys.stderr.write(f"blinkroot: {why}\n")
            return b"E01"
        if pkt == b"bs":
            self.reverse.reverse_step()
        else:
            self.reverse.reverse_continue()
        stop = self.stopped or self.last_stop
        from dataclasses import replace
        return self.stop_reply(replace(stop, extra={"replaylog": "begin"}))

    # -- commands -----------------------------------------------------------------------------
    def _thread_arg(self, s):
        s = s.decode()
        if s.startswith("p"):
            s = s.split(".")[-1]
        tid = int(s, 16) if s not in ("-1", "") else -1
        if tid in (0, -1):
            return None
        return self.thread(tid)

    def _cur(self, which="g"):
        t = self.g_thread if which == "g" else self.c_thread
        if t is None or t not in self.threads():
            if self.nonstop and self.ns_stops:
                return next((th for th in self.threads() if th in self.ns_stops), None) \
                    or (self.threads() or [None])[0]
            t = self.stopped.thread if self.stopped and self.stopped.thread in self.threads() \
                else (self.threads() or [None])[0]
        return t

    def handle(self, pkt):
        cmd = pkt[:1]
        body = pkt[1:]
        if cmd == b"?":
            if self.nonstop:
                stops = self.ns_stop_replies()
                return stops[0] if stops else b"OK"
            return self.stop_reply(self.stopped or self.last_stop)
        if cmd == b"g":
            return b"".join(read_registers(self._cur())).hex().encode()
        if cmd == b"G":
            data = bytes.fromhex(body.decode())
            t, off = self._cur(), 0
            for n in range(NREGS):
                size = _size(n)
                if off + size > len(data):
                    break
                write_register(t, n, data[off:off + size])
                off += size
            return b"OK"
        if cmd == b"p":
            n = int(body, 16)
            if n >= NREGS:
                return b"E00"
            return read_registers(self._cur())[n].hex().encode()
        if cmd == b"P":
            n, value = body.split(b"=")
            n = int(n, 16)
            if n >= NREGS:
                return b"E00"
            write_register(self._cur(), n, bytes.fromhex(value.decode()))
            return b"OK"
        if cmd == b"m":
            addr, length = (int(x, 16) for x in body.split(b","))
            data = self.read_memory(addr, length)
            return data.hex().encode() if data else b"E14"
        if cmd == b"M":
            where, hexdata = body.split(b":", 1)
            addr, _length = (int(x, 16) for x in where.split(b","))
            return self.write_memory(addr, bytes.fromhex(hexdata.decode()))
        if cmd == b"X":
            colon = body.index(b":")
            addr, _length = (int(x, 16) for x in body[:colon].split(b","))
            return self.write_memory(addr, unescape(body[colon + 1:]))
        if cmd in (b"Z", b"z"):
            kind, addr, length = body.split(b",")[:3]
            kind, addr, length = int(kind), int(addr, 16), int(length.split(b";")[0], 16)
            if kind in (0, 1):
                (self.add_breakpoint if cmd == b"Z" else self.remove_breakpoint)(addr)
                return b"OK"
            if kind in (2, 3, 4):
                if cmd == b"Z":
                    self.add_watchpoint(kind, addr, length)
                else:
                    self.remove_watchpoint(kind, addr, length)
                return b"OK"
            return b""
        if cmd == b"H":
            t = self._thread_arg(body[1:])
            if body[:1] == b"g":
                self.g_thread = t
            else:
                self.c_thread = t
            return b"OK"
        if cmd == b"T":
            return b"OK" if self._thread_arg(body) is not None else b"E01"
        if cmd in (b"c", b"s", b"C", b"S"):
            sig = 0
            if cmd in (b"C", b"S"):
                sig = int(body.split(b";")[0], 16)
            step = self._cur("c") if cmd in (b"s", b"S") else None
            return self._run_until_stop(step, sig, others=step is None)
        if pkt in (b"bs", b"bc"):
            return self.reverse_command(pkt)
        if cmd == b"k":
            self.reverse.discard(self.reverse.checkpoints)
            os.kill(os.getpid(), host_signal.SIGKILL)
            return None
        if cmd == b"D":
            self._send(b"OK")
            self.detach()
            raise EOFError
        if cmd == b"v":
            return self.handle_v(pkt)
        if cmd == b"q":
            return self.handle_q(pkt)
        if cmd == b"Q":
            if pkt == b"QStartNoAckMode":
                self._send(b"OK")
                self.noack = True
                return None
            if pkt.startswith(b"QNonStop:"):
                return b"OK" if self.set_nonstop(pkt[9:] == b"1") else b"E01"
            return b""
        return b""

    def ns_stop_replies(self):
        """Non-stop: a stop reply for each stopped thread (gdb's ? and the hub's)."""
        with self.cond:
            stops = [self.ns_stops[t] for t in self.threads() if t in self.ns_stops]
        return [self.stop_reply(s, track=False) for s in stops]

    def ns_vcont(self, pkt):
        """Non-stop vCont: each thread takes the first action naming it (or all); the
        reply is OK at once, stops come as notifications."""
        actions = {}
        for action in pkt[6:].split(b";"):
            what, _, tid = action.partition(b":")
            op = what[:1].lower().decode()
            sig = int(what[1:], 16) if what[:1] in (b"C", b"S") and what[1:] else 0
            if tid:
                t = self._thread_arg(tid)
                if t is None and tid.split(b".")[-1] not in (b"-1", b"0"):
                    continue
            else:
                t = None
            for th in ([t] if t is not None else self.threads()):
                actions.setdefault(th, (op, sig))
        self.ns_resume(actions)
        return b"OK"

    def handle_v(self, pkt):
        if pkt == b"vCont?":
            return b"vCont;c;C;s;S;t"
        if pkt.startswith(b"vCont;") and self.nonstop:
            return self.ns_vcont(pkt)
        if pkt == b"vCtrlC":
            if self.nonstop:
                self.ns_interrupt()
            else:
                self.request_interrupt()
            return b"OK"
        if pkt == b"vStopped":
            return b"OK"        # the hub keeps gdb's notification queue
        if pkt.startswith(b"vCont;"):
            step, sig, default_sig, others, running = None, 0, 0, False, set()
            for action in pkt[6:].split(b";"):
                what, _, tid = action.partition(b":")
                op = what[:1]
                t = self._thread_arg(tid) if tid else None
                if op in (b"s", b"S"):
                    step = t or self._cur("c")
                    if op == b"S":
                        sig = int(what[1:], 16)
                if op in (b"c", b"C"):
                    if t is None:
                        others = True
                    elif t is not step:
                        running.add(t)      # threads not named stay stopped
                if op == b"C":
                    if t is None or t is (self.stopped and self.stopped.thread):
                        default_sig = int(what[1:], 16)
            if not running and step is None:
                others = True
            return self._run_until_stop(step, sig or default_sig, others, running)
        if pkt.startswith(b"vFile:"):
            return self.handle_vfile(pkt[6:])
        if pkt.startswith(b"vKill"):
            self.reverse.discard(self.reverse.checkpoints)
            os.kill(os.getpid(), host_signal.SIGKILL)
        return b""

    def handle_q(self, pkt):
        if pkt.startswith(b"qSupported"):
            features = pkt.partition(b":")[2].split(b";")
            self.exec_events = b"exec-events+" in features
            multi = b"multiprocess+" in features
            self.fork_events = multi and b"fork-events+" in features
            self.vfork_events = multi and b"vfork-events+" in features
            return (b"PacketSize=20000;QStartNoAckMode+;qXfer:features:read+;"
                    b"qXfer:auxv:read+;qXfer:exec-file:read+;qXfer:libraries-svr4:read+;"
                    b"qXfer:siginfo:read+;qXfer:threads:read+;vContSupported+;"
                    b"swbreak+;exec-events+;QNonStop+"
                    + (b";ReverseStep+;ReverseContinue+" if self.reverse.enabled else b""))
        if pkt.startswith(b"qXfer:"):
            parts = pkt.split(b":")
            obj, annex, offlen = parts[1], parts[3], parts[4]
            off, length = (int(x, 16) for x in offlen.split(b","))
            data = self.xfer(obj, annex)
            if data is None:
                return b"E00"
            chunk = data[off:off + length]
            return (b"m" if off + length < len(data) else b"l") + escape(chunk)
        if pkt == b"qfThreadInfo":
            return b"m" + b",".join(b"%x" % t.tid for t in self.threads())
        if pkt == b"qsThreadInfo":
            return b"l"
        if pkt == b"qC":
            t = self._cur()
            return b"QC%x" % t.tid if t else b""
        if pkt.startswith(b"qAttached"):
            return b"0"
        if pkt == b"qBlinkStopped":     # the hub's: every stopped thread's stop reply
            return b"|".join(self.ns_stop_replies()) if self.nonstop else b""
        if pkt.startswith(b"qSymbol"):
            return b"OK"
        if pkt.startswith(b"qThreadExtraInfo,"):
            t = self._thread_arg(pkt.split(b",")[1])
            name = b"main" if t is not None and t.tid == self.proc.pid else b"thread"
            return name.hex().encode()
        return b""

    # -- memory -------------------------------------------------------------------------------
    def read_memory(self, addr, length):
        """What is readable from addr on (gdb takes short reads), through the guest's
        checks: nothing (E14) if addr itself is not mapped."""
        mem = self.proc.mem
        out = b""
        while length > 0:
            n = min(length, 4096 - (addr & 4095))
            try:
                mem.check(addr, n, 0)
                out += mem.read_raw(addr, n)
            except (Errno, Exception):
                break
            addr += n
            length -= n
        return out

    def write_memory(self, addr, data):
        """ptrace's POKEDATA: any mapped page, even read-only code."""
        mem = self.proc.mem
        if not data:
            return b"OK"        # gdb's probe of X (an empty range confuses Unicorn)
        try:
            mem.check(addr, len(data), 0)
            for a in (addr, addr + len(data) - 1):
                v = mem.find(a)
                if v is None or (v.flags & 1 and v.host_fd >= 0):  # MAP_SHARED file: no
                    return b"E14"
            mem.write_force(addr, data)
        except Exception:
            return b"E14"
        return b"OK"

    # -- qXfer objects --------------------------------------------------------------------
    def xfer(self, obj, annex):
        if obj == b"features":
            return TARGET_XML if annex == b"target.xml" else None
        if obj == b"auxv":
            return self.auxv
        if obj == b"exec-file":
            return bytes(self.proc.exe) if self.proc.exe else None
        if obj == b"libraries-svr4":
            return self.libraries_svr4().encode()
        if obj == b"siginfo":
            stop = self.stopped or self.last_stop
            if stop is None:
                return None
            code = 0x80 if stop.event is not None else 0
            if stop.event is not None and stop.event.kind is E.FAULT:
                v = self.proc.mem.find(stop.addr)
                code = 2 if v is not None else 1        # SEGV_ACCERR / SEGV_MAPERR
            return struct.pack("<iiiiQ", stop.signal, 0, code, 0, stop.addr).ljust(128, b"\0")
        if obj == b"threads":
            items = "".join(f'<thread id="{t.tid:x}" core="0" name="'
                            f'{bytes(self.proc.comm).decode(errors="replace")}"/>'
                            for t in self.threads())
            return f'<?xml version="1.0"?><threads>{items}</threads>'.encode()
        return None

    def libraries_svr4(self):
        """The loaded objects, from the r_debug that DT_DEBUG of the main executable's
        dynamic section points to (0 until ld.so has filled it in)."""
        empty = '<library-list-svr4 version="1.0"/>'
        mem = self.proc.mem
        aux = dict(struct.iter_unpack("<QQ", self.auxv[: len(self.auxv) // 16 * 16]))
        phdr, phnum = aux.get(3), aux.get(5)
        if not phdr or not phnum:
            return empty
        try:
            bias, dyn = None, None
            for i in range(phnum):
                p_type, _flags, _off, vaddr, _pa, _fs, memsz, _al = struct.unpack(
                    "<IIQQQQQQ", mem.read(phdr + 56 * i, 56))
                if p_type == 6:                 # PT_PHDR
                    bias = phdr - vaddr
                elif p_type == 2:               # PT_DYNAMIC
                    dyn = (vaddr, memsz)
            if dyn is None:
                return empty
            if bias is None:
                bias = 0 if aux.get(9, 0) < 0x400000 else 0
            r_debug = 0
            addr = dyn[0] + bias
            for _ in range(dyn[1] // 16):
                tag, val = struct.unpack("<qQ", mem.read(addr, 16))
                if tag == 0:
                    break
                if tag == 21:                   # DT_DEBUG
                    r_debug = val
                addr += 16
            if not r_debug:
                return empty
            lm = mem.read_u64(r_debug + 8)
            out, main_lm, seen = [], 0, 0
            while lm and seen < 1024:
                l_addr, l_name, l_ld, l_next = struct.unpack("<QQQQ", mem.read(lm, 32))
                name = mem.read_cstr(l_name) if l_name else b""
                if seen == 0:
                    main_lm = lm
                else:
                    esc = (name.decode("utf-8", "replace").replace("&", "&amp;")
                           .replace('"', "&quot;").replace("<", "&lt;"))
                    out.append(f'<library name="{esc}" lm="0x{lm:x}" l_addr="0x{l_addr:x}" '
                               f'l_ld="0x{l_ld:x}" lmid="0x0"/>')
                lm = l_next
                seen += 1
            return (f'<library-list-svr4 version="1.0" main-lm="0x{main_lm:x}">'
                    + "".join(out) + "</library-list-svr4>")
        except Exception:
            return empty

    # -- vFile: the guest's files through blinkroot's VFS ---------------------------------
    def handle_vfile(self, body):
        op, _, args = body.partition(b":")
        args = args.split(b",")
        try:
            if op == b"setfs":
                return b"F0"
            if op == b"open":
                path = bytes.fromhex(args[0].decode())
                flags = int(args[1], 16)
                if flags & 3:
                    return _fio_error(errno.EACCES)
                host = self.kernel.vfs.host_path(self.proc, -100, path)
                fd = os.open(host, os.O_RDONLY | os.O_CLOEXEC)
                n = 3
                while n in self.files:
                    n += 1
                self.files[n] = fd
                return b"F%x" % n
            if op == b"pread":
                fd, count, offset = (int(x, 16) for x in args[:3])
                data = os.pread(self.files[fd], min(count, 16384), offset)
                return b"F%x;" % len(data) + escape(data)
            if op == b"close":
                os.close(self.files.pop(int(args[0], 16)))
                return b"F0"
            if op == b"fstat":
                st = os.fstat(self.files[int(args[0], 16)])
                data = struct.pack(">IIIIIIIQQQIII", st.st_dev & 0xFFFFFFFF,
                                   st.st_ino & 0xFFFFFFFF, st.st_mode, st.st_nlink,
                                   st.st_uid, st.st_gid, st.st_rdev & 0xFFFFFFFF, st.st_size,
                                   st.st_blksize, st.st_blocks, int(st.st_atime),
                                   int(st.st_mtime), int(st.st_ctime))
                return b"F%x;" % len(data) + escape(data)
            if op == b"readlink":
                path = bytes.fromhex(args[0].decode())
                host = self.kernel.vfs.host_path(self.proc, -100, path, follow=False)
                data = os.readlink(host)
                return b"F%x;" % len(data) + escape(data)
        except KeyError:
            return _fio_error(errno.EBADF)
        except Errno as e:
            return _fio_error(e.errno)
        except OSError as e:
            return _fio_error(e.errno)
        return b""
