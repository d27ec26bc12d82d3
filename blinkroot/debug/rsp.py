"""A small GDB remote protocol client: what blinkenlights drives `blinkroot -g` with."""

import socket
import struct
import threading
import time

from .gdbstub import GPRS, _size, NREGS, R_FS_BASE, R_GS_BASE, unescape


class StopReply:
    def __init__(self, text):
        self.text = text
        self.kind = text[:1]            # "T" (stopped), "W" (exited), "X" (killed)
        self.signal = int(text[1:3], 16) if len(text) >= 3 else 0
        self.info = {}
        if self.kind == "T":
            for item in text[3:].split(";"):
                if ":" in item:
                    k, v = item.split(":", 1)
                    self.info[k] = v

    @property
    def exited(self):
        return self.kind in ("W", "X")

    @property
    def thread(self):
        v = self.info.get("thread")
        return int(v.split(".")[-1], 16) if v else None

    @property
    def pid(self):
        """The process (multiprocess thread ids pPID.TID; W/X replies' ;process:PID)."""
        v = self.info.get("thread")
        if v and v.startswith("p"):
            return int(v[1:].split(".")[0], 16)
        if self.exited and ";process:" in self.text:
            return int(self.text.split(";process:")[1], 16)
        return None

    @property
    def event(self):
        """fork, vfork, vforkdone, exec, swbreak, watch, rwatch, awatch, or ""."""
        for k in ("fork", "vfork", "vforkdone", "exec", "swbreak", "watch", "rwatch",
                  "awatch"):
            if k in self.info:
                return k
        return ""

    @property
    def child(self):
        """A fork/vfork stop's child pid."""
        v = self.info.get("fork") or self.info.get("vfork")
        return int(v[1:].split(".")[0], 16) if v and v.startswith("p") else None

    @property
    def exec_path(self):
        v = self.info.get("exec")
        return bytes.fromhex(v).decode("utf-8", "replace") if v else None

    def __repr__(self):
        return f"StopReply({self.text!r})"


class RspError(Exception):
    pass


class Client:
    def __init__(self, host, port, timeout=30.0, multiprocess=False):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.create_connection((host, port), timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.sock.settimeout(None)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.lock = threading.Lock()
        self.noack = False
        self.features = self.request(
            "qSupported:swbreak+;exec-events+"
            + (";multiprocess+;fork-events+;vfork-events+" if multiprocess else ""))
        self.multi = "multiprocess+" in self.features
        if "QStartNoAckMode+" in self.features and self.request("QStartNoAckMode") == "OK":
            self.noack = True

    # -- framing -------------------------------------------------------------------------
    def _send(self, payload):
        data = payload.encode("latin-1") if isinstance(payload, str) else payload
        self.sock.sendall(b"$" + data + b"#%02x" % (sum(data) & 0xFF))

    def _recv_packet(self):
        while True:
            start = self.buf.find(b"$")
            if start >= 0:
                end = self.buf.find(b"#", start)
                if end >= 0 and len(self.buf) >= end + 3:
                    payload = self.buf[start + 1:end]
                    self.buf = self.buf[end + 3:]
                    if not self.noack:
                        self.sock.sendall(b"+")
                    return self._expand(payload)
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("the stub closed the connection")
            self.buf += data

    @staticmethod
    def _expand(payload):
        """Undo run-length encoding (x*n)."""
        if b"*" not in payload:
            return payload
        out = bytearray()
        i = 0
        while i < len(payload):
            c = payload[i]
            if c == 0x2A and out:
                out += bytes([out[-1]]) * (payload[i + 1] - 29)
                i += 2
            else:
                out.append(c)
                i += 1
        return bytes(out)

    def request_raw(self, payload):
        with self.lock:
            self._send(payload)
            return self._recv_packet()

    def request(self, payload):
        return self.request_raw(payload).decode("latin-1")

    def interrupt(self):
        self.sock.sendall(b"\x03")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # -- commands -------------------------------------------------------------------------
    def stop_reason(self):
        return StopReply(self.request("?"))

    def resume(self, step_thread=None):
        """Continue (or step one thread); blocks until the stop reply."""
        if step_thread is not None:
            return StopReply(self.request(f"vCont;s:{step_thread:x}"))
        return StopReply(self.request("vCont;c"))

    def reverse(self, step=False):
        """reverse-stepi (bs) or reverse-continue (bc); the stop reply, or None when the
        stub refuses (no recording: reverse execution off, several threads, ...)."""
        r = self.request("bs" if step else "bc")
        return StopReply(r) if r[:1] in ("T", "S", "W", "X") else None

    @property
    def can_reverse(self):
        return "ReverseStep+" in self.features

    def set_thread(self, tid, pid=None):
        if pid is not None and self.multi:
            self.request(f"Hgp{pid:x}.{tid:x}")
        else:
            self.request(f"Hg{tid:x}")

    def vcont(self, actions):
        """vCont with the given actions ["c:p1.-1", "s:p2.3", ...]; blocks until the
        stop reply (threads not named stay stopped)."""
        return StopReply(self.request("vCont;" + ";".join(actions)))

    def thread_ids(self):
        """[(pid or None, tid)] of every thread of every debugged process."""
        out = []
        r = self.request("qfThreadInfo")
        while r.startswith("m"):
            for x in r[1:].split(","):
                if not x:
                    continue
                if x.startswith("p"):
                    pid, _, tid = x[1:].partition(".")
                    out.append((int(pid, 16), int(tid, 16)))
                else:
                    out.append((None, int(x, 16)))
            r = self.request("qsThreadInfo")
        return out

    def registers(self):
        """{name: int} of the general registers (of the Hg thread)."""
        data = bytes.fromhex(self.request("g"))
        regs, off = {}, 0
        names = list(GPRS) + ["eflags"]
        for n in range(NREGS):
            size = _size(n)
            chunk = data[off:off + size]
            off += size
            if n < len(names):
                regs[names[n]] = int.from_bytes(chunk, "little")
            elif n == R_FS_BASE:
                regs["fs_base"] = int.from_bytes(chunk, "little")
            elif n == R_GS_BASE:
                regs["gs_base"] = int.from_bytes(chunk, "little")
        return regs

    def read(self, addr, length):
        """Bytes at addr (possibly fewer: up to the first unmapped page); b"" if none."""
        out = b""
        while length > 0:
            n = min(length, 4096)
            r = self.request(f"m{addr:x},{n:x}")
            if not r or r.startswith("E"):
                break
            chunk = bytes.fromhex(r)
            out += chunk
            if len(chunk) < n:
                break
            addr += n
            length -= n
        return out

    def read_u64(self, addr):
        data = self.read(addr, 8)
        return struct.unpack("<Q", data)[0] if len(data) == 8 else None

    def insert_breakpoint(self, addr):
        return self.request(f"Z0,{addr:x},1") == "OK"

    def remove_breakpoint(self, addr):
        return self.request(f"z0,{addr:x},1") == "OK"

    def insert_watchpoint(self, addr, length):
        """A write watchpoint (Z2): the stop comes after whatever changed the bytes."""
        return self.request(f"Z2,{addr:x},{length:x}") == "OK"

    def threads(self):
        out = []
        r = self.request("qfThreadInfo")
        while r.startswith("m"):
            out += [int(x.split(".")[-1], 16) for x in r[1:].split(",") if x]
            r = self.request("qsThreadInfo")
        return out

    def xfer(self, obj, annex=""):
        data, off = b"", 0
        while True:
            r = self.request_raw(f"qXfer:{obj}:read:{annex}:{off:x},4000".encode())
            if not r or r[:1] == b"E":
                return None
            chunk = unescape(r[1:])
            data += chunk
            off += len(chunk)
            if r[:1] == b"l":
                return data

    def siginfo(self):
        """(signo, code, addr) of the stop's signal, or None."""
        data = self.xfer("siginfo")
        if not data or len(data) < 24:
            return None
        signo, _errno, code, _pad, addr = struct.unpack_from("<iiiiQ", data)
        return signo, code, addr

    def kill(self):
        try:
            with self.lock:
                self._send("k")
        except OSError:
            pass
        self.close()
