"""The GDB stub's hub: one gdb connection, several debugged host processes.

One guest process is one host process, and each debugged one serves gdb's remote
protocol for itself alone (``GdbStub``: plain thread ids, one process), on a unix socket
to the hub.  The hub is a process of its own (forked twice at start-up, so no guest
waits for it and no guest's exit ends it); it owns gdb's TCP connection and is the
multiprocess stub gdb sees: ``pPID.TID`` thread ids, fork/vfork/exec events, several
inferiors, all-stop over all of them.

A debugged process that forks makes a socket pair first; its child keeps one end (and
serves on it, stopped), and the parent passes the other to the hub with the fork stop
reply (SCM_RIGHTS), so the hub reaches the child through it from then on.

Routing: packets about memory, registers, breakpoints, files go to the process of the
``Hg`` thread; thread lists are gathered from all; ``vCont`` resumes the processes its
actions name; the first stop of any is gdb's, the others are interrupted (a stop that
is not that interrupt is kept and reported at the next resume instead of running).
"""

import os
import re
import select
import signal
import socket
import sys

from .gdbstub import escape, split_packet, unescape

SIGINT = 2


class Agent:
    """The hub's end of one debugged process's unix socket."""

    def __init__(self, sock, pid):
        self.sock, self.pid = sock, pid
        self.buf = b""
        self.fds = []
        self.running = False
        self.pending = []       # stop replies not told to gdb yet (raw, of this agent)
        self.notes = []         # non-stop: its stop notifications not queued for gdb yet
        self.gone = False

    def send(self, payload):
        self.sock.sendall(b"$" + payload + b"#%02x" % (sum(payload) & 0xFF))

    def interrupt(self):
        try:
            self.sock.sendall(b"\x03")
        except OSError:
            pass

    def fill(self):
        """Read what is there (with descriptors); EOFError at the end."""
        data, fds, _flags, _addr = socket.recv_fds(self.sock, 65536, 8)
        self.fds += fds
        if not data:
            raise EOFError
        self.buf += data

    def take(self):
        """A complete packet from the buffer, or None.  Notifications (non-stop's
        %Stop:...) met on the way go to self.notes."""
        while True:
            m = re.search(rb"[$%]", self.buf)
            if m is None:
                self.buf = b""
                return None
            start = m.start()
            end = self.buf.find(b"#", start)
            if end < 0 or len(self.buf) < end + 3:
                return None
            payload = self.buf[start + 1:end]
            self.buf = self.buf[end + 3:]
            if m.group() == b"%":
                self.notes.append(payload.partition(b":")[2])
                continue
            return payload

    def recv(self):
        while True:
            pkt = self.take()
            if pkt is not None:
                return pkt
            self.fill()

    def request(self, payload):
        self.send(payload)
        return self.recv()


class Hub:
    def __init__(self, listener, root_sock, root_pid):
        self.listener = listener
        self.agents = {root_pid: Agent(root_sock, root_pid)}
        self.order = [root_pid]
        self.conn = None
        self.rxbuf = b""
        self.noack = False
        self.multi = False
        self.extended = False
        self.g_pid = root_pid
        self.last = None            # the last stop reply told (translated)
        self.threads_doc = b""
        self.trace = bool(os.environ.get("BLINKROOT_GDB_TRACE"))
        self.nonstop = False
        self.ns_queue = []          # non-stop: stop replies for gdb (translated), the
        self.ns_told = False        # first one told in a %Stop notification not acked

    # -- gdb's side ------------------------------------------------------------------------
    def _recv(self):
        data = self.conn.recv(65536)
        if not data:
            raise EOFError
        self.rxbuf += data

    def packet(self, block=True):
        while True:
            pkt, self.rxbuf = split_packet(self.rxbuf)
            if pkt is not None:
                if pkt != b"\x03" and not self.noack:
                    self.conn.sendall(b"+")
                return pkt
            if not block:
                return None
            self._recv()

    def send(self, payload):
        pkt = b"$" + payload + b"#%02x" % (sum(payload) & 0xFF)
        if self.trace:
            sys.stderr.write(f"hub< {payload[:200]!r}\n")
        while True:
            self.conn.sendall(pkt)
            if self.noack:
                return
            while self.rxbuf.lstrip(b"")[:1] not in (b"+", b"-"):
                if self.rxbuf[:1] in (b"$", b"\x03"):
                    return
                self._recv()
            ack, self.rxbuf = self.rxbuf[:1], self.rxbuf[1:]
            if ack == b"+":
                return

    # -- thread ids ------------------------------------------------------------------------
    def tid_text(self, pid, tid):
        if self.multi:
            return b"p%x.%x" % (pid, tid)
        return b"%x" % tid

    def parse_tid(self, text):
        """gdb's thread id -> (pid or None for all, tid text for the agent)."""
        text = text.decode() if isinstance(text, bytes) else text
        if text.startswith("p"):
            pid, _, tid = text[1:].partition(".")
            pid = int(pid, 16) if pid != "-1" else None
            return pid, (tid or "-1")
        if text in ("-1", "0", ""):
            return None, text or "-1"
        tid = int(text, 16)
        for pid, a in self.agents.items():
            if tid == pid:
                return pid, text
        for pid in self.order:
            if self.agents[pid].request(b"T%x" % tid) == b"OK":
                return pid, text
        return None, text

    def current(self):
        a = self.agents.get(self.g_pid)
        if a is None and self.agents:
            a = self.agents[self.order[0]]
            self.g_pid = a.pid
        return a

    def forget(self, pid):
        a = self.agents.pop(pid, None)
        if pid in self.order:
            self.order.remove(pid)
        if a is not None:
            a.gone = True
            for fd in a.fds:
                os.close(fd)
            try:
                a.sock.close()
            except OSError:
                pass

    # -- stop replies ----------------------------------------------------------------------
    def translate(self, agent, reply, focus=True):
        """An agent's stop reply as gdb is told it; registers a fork's child."""
        kind = reply[:1]
        if kind in (b"W", b"X"):
            self.forget(agent.pid)
            return reply + (b";process:%x" % agent.pid if self.multi else b"")
        if kind != b"T":
            return reply
        m = re.search(rb"(?:^|;)v?fork:p([0-9a-f]+)\.", reply[3:])
        if m:
            child = int(m.group(1), 16)
            if agent.fds:
                fd = agent.fds.pop(0)
                self.agents[child] = Agent(socket.socket(fileno=fd), child)
                self.order.append(child)
        reply = re.sub(rb"thread:([0-9a-f]+);",
                       lambda m: b"thread:" + self.tid_text(agent.pid, int(m.group(1), 16))
                       + b";", reply)
        if focus:
            self.g_pid = agent.pid
        return reply

    def tell(self, agent, reply):
        out = self.translate(agent, reply)
        self.last = out
        return out

    def is_interrupt(self, reply):
        return reply[:3] == b"T%02x" % SIGINT and not re.search(
            rb";(v?fork|vforkdone|exec|swbreak|watch|rwatch|awatch):", reply)

    def resume(self, per_agent):
        """Resume the agents {pid: vCont packet}; the stop reply gdb gets, or None (gdb
        went away)."""
        for pid in per_agent:
            a = self.agents[pid]
            if a.pending:
                return self.tell(a, a.pending.pop(0))
        for pid, pkt in per_agent.items():
            a = self.agents[pid]
            a.send(pkt)
            a.running = True
        while True:
            running = [a for a in self.agents.values() if a.running]
            if not running:
                return b"E01"
            socks = [self.conn] + [a.sock for a in running]
            r, _, _ = select.select(socks, [], [])
            if self.conn in r:
                try:
                    self._recv()
                except (EOFError, OSError):
                    return None
                while True:
                    pkt = self.packet(block=False)
                    if pkt is None:
                        break
                    if pkt == b"\x03":
                        for a in running:
                            a.interrupt()
            for a in running:
                if a.sock not in r:
                    continue
                try:
                    a.fill()
                except (EOFError, OSError):
                    a.running = False
                    self.forget(a.pid)
                    return b"X09" + (b";process:%x" % a.pid if self.multi else b"")
                reply = a.take()
                if reply is None:
                    continue
                a.running = False
                self.stop_others()
                return self.tell(a, reply)

    def stop_others(self):
        for a in list(self.agents.values()):
            if not a.running:
                continue
            a.interrupt()
            try:
                reply = a.recv()
            except (EOFError, OSError):
                self.forget(a.pid)
                continue
            a.running = False
            if not self.is_interrupt(reply):
                a.pending.append(reply)

    # -- non-stop --------------------------------------------------------------------------
    def collect(self):
        """Queue the agents' stop notifications for gdb (translated)."""
        for a in list(self.agents.values()):
            while a.take() is not None:
                pass        # notifications read along with a reply (no reply is due)
            while a.notes:
                self.ns_queue.append(self.translate(a, a.notes.pop(0), focus=False))

    def notify(self):
        """Tell gdb of the first queued stop, unless a notification is outstanding."""
        if self.nonstop and self.ns_queue and not self.ns_told:
            self.ns_told = True
            payload = b"Stop:" + self.ns_queue[0]
            if self.trace:
                sys.stderr.write(f"hub< %{payload[:200]!r}\n")
            self.conn.sendall(b"%" + payload + b"#%02x" % (sum(payload) & 0xFF))

    def pump(self):
        """Non-stop, between packets: wait for gdb's next packet, queueing (and telling)
        the processes' stops meanwhile."""
        while True:
            self.collect()
            self.notify()
            if b"\x03" in self.rxbuf or re.search(rb"\$[^#]*#..", self.rxbuf, re.S):
                return
            agents = [a for a in self.agents.values()]
            r, _, _ = select.select([self.conn] + [a.sock for a in agents], [], [])
            if self.conn in r:
                self._recv()
            for a in agents:
                if a.sock in r and not a.gone:
                    try:
                        a.fill()
                        while a.take() is not None:
                            pass        # a stray reply: nothing asked
                    except (EOFError, OSError):
                        self.collect()
                        self.forget(a.pid)
                        self.ns_queue.append(b"X09" + (b";process:%x" % a.pid
                                                       if self.multi else b""))

    def ns_vcont(self, pkt):
        """vCont in non-stop: each process gets the actions naming it (or all); OK."""
        per = {}
        for action in pkt[6:].split(b";"):
            if not action:
                continue
            what, _, tid = action.partition(b":")
            if not tid:
                for p in self.order:
                    per.setdefault(p, []).append(what)
                continue
            pid, t = self.parse_tid(tid)
            for p in ([pid] if pid is not None else list(self.order)):
                if p in self.agents:
                    per.setdefault(p, []).append(
                        what + (b"" if t == "-1" else b":" + t.encode()))
        for p, acts in per.items():
            self.agents[p].request(b"vCont;" + b";".join(acts))
        return b"OK"

    def ns_status(self):
        """? in non-stop: every stopped thread of every process, the first in the reply,
        the others through vStopped."""
        self.collect()
        queue = []
        for pid in list(self.order):
            a = self.agents[pid]
            r = a.request(b"qBlinkStopped")
            queue += [self.translate(a, x, focus=False) for x in r.split(b"|") if x]
        self.collect()          # stops are told again below; exits are kept
        self.ns_queue = queue + [x for x in self.ns_queue if x[:1] in (b"W", b"X")]
        queue = self.ns_queue
        self.ns_told = bool(queue)
        return queue[0] if queue else b"OK"

    def vstopped(self):
        if self.ns_queue:
            self.ns_queue.pop(0)
        self.collect()
        if self.ns_queue:
            return self.ns_queue[0]
        self.ns_told = False
        return b"OK"

    # -- commands ----------------------------------------------------------------------------
    def vcont(self, pkt):
        per, default = {}, None
        for action in pkt[6:].split(b";"):
            if not action:
                continue
            what, _, tid = action.partition(b":")
            if not tid:
                default = what
                continue
            pid, t = self.parse_tid(tid)
            pids = [pid] if pid is not None else list(self.order)
            for p in pids:
                if p in self.agents:
                    per.setdefault(p, []).append(what + (b"" if t == "-1" else b":" + t.encode()))
        if default is not None:
            for p in self.order:
                per.setdefault(p, []).append(default)
        return self.resume({p: b"vCont;" + b";".join(acts) for p, acts in per.items()})

    def thread_list(self):
        out = []
        for pid in list(self.order):
            r = self.agents[pid].request(b"qfThreadInfo")
            while r.startswith(b"m"):
                out += [self.tid_text(pid, int(x, 16)) for x in r[1:].split(b",") if x]
                r = self.agents[pid].request(b"qsThreadInfo")
        return out

    def threads_xml(self):
        items = []
        for pid in list(self.order):
            a = self.agents[pid]
            data, off = b"", 0
            while True:
                r = a.request(b"qXfer:threads:read::%x,4000" % off)
                if not r or r[:1] not in (b"m", b"l"):
                    break
                chunk = unescape(r[1:])
                data += chunk
                off += len(chunk)
                if r[:1] == b"l":
                    break
            for m in re.finditer(rb"<thread id=\"([0-9a-f]+)\"([^>]*)/>", data):
                items.append(b'<thread id="' + self.tid_text(pid, int(m.group(1), 16))
                             + b'"' + m.group(2) + b"/>")
        return b'<?xml version="1.0"?><threads>' + b"".join(items) + b"</threads>"

    def handle(self, pkt):
        cmd = pkt[:1]
        if pkt.startswith(b"qSupported"):
            features = pkt.partition(b":")[2].split(b";")
            self.multi = b"multiprocess+" in features
            reply = self.agents[self.order[0]].request(pkt)
            if self.multi:
                reply += b";multiprocess+"
                for f in (b"fork-events+", b"vfork-events+"):
                    if f in features:
                        reply += b";" + f
            return reply
        if pkt == b"QStartNoAckMode":
            self.send(b"OK")
            self.noack = True
            return None
        if pkt == b"!":
            self.extended = True
            return b"OK"
        if pkt.startswith(b"QNonStop:"):
            on = pkt[9:] == b"1"
            for pid in list(self.order):
                if self.agents[pid].request(pkt) != b"OK":
                    return b"E01"
            self.nonstop = on
            self.ns_queue, self.ns_told = [], False
            return b"OK"
        if self.nonstop:
            if pkt == b"vStopped":
                return self.vstopped()
            if pkt == b"?" and self.agents:
                return self.ns_status()
            if pkt.startswith(b"vCont;"):
                return self.ns_vcont(pkt)
            if pkt == b"vCtrlC":
                a = self.current()
                return a.request(pkt) if a is not None else b"OK"
        if not self.agents:
            if cmd == b"?":
                return self.last or b"W00"
            if pkt.startswith((b"vRun", b"vAttach")):
                return b"E01"
            if cmd == b"k":
                raise EOFError
            if pkt in (b"qfThreadInfo", b"qsThreadInfo"):
                return b"l"
            if pkt.startswith(b"qXfer:threads:"):
                return b'l<?xml version="1.0"?><threads></threads>'
            if pkt.startswith(b"qXfer:"):
                return b"E01"
            if pkt.startswith(b"vFile:"):
                return b"F-1,9"         # EBADF: its process is gone
            return b"" if cmd in (b"q", b"Q", b"v") else b"E01"
        if cmd == b"?":
            if self.last is None:
                self.last = self.tell(self.current(), self.current().request(b"?"))
            return self.last
        if cmd == b"H":
            pid, t = self.parse_tid(pkt[2:])
            if pid is not None and pid in self.agents:
                self.g_pid = pid
            if pkt[1:2] != b"g":
                return b"OK"
            return self.current().request(b"Hg" + t.encode())
        if cmd == b"T":
            pid, t = self.parse_tid(pkt[1:])
            a = self.agents.get(pid)
            return a.request(b"T" + t.encode()) if a is not None else b"E01"
        if pkt.startswith(b"vCont;"):
            return self.vcont(pkt)
        if cmd in (b"c", b"C"):
            return self.vcont(b"vCont;" + pkt)
        if cmd in (b"s", b"S"):
            return self.resume({self.current().pid: pkt})
        if pkt in (b"bs", b"bc"):
            a = self.current()
            return self.tell(a, a.request(pkt))
        if pkt == b"qfThreadInfo":
            return b"m" + b",".join(self.thread_list())
        if pkt == b"qsThreadInfo":
            return b"l"
        if pkt == b"qC":
            a = self.current()
            r = a.request(b"qC")
            return b"QC" + self.tid_text(a.pid, int(r[2:], 16)) if r.startswith(b"QC") else r
        if pkt.startswith(b"qAttached"):
            return b"0"
        if pkt.startswith(b"qThreadExtraInfo,"):
            pid, t = self.parse_tid(pkt.split(b",")[1])
            a = self.agents.get(pid) or self.current()
            return a.request(b"qThreadExtraInfo," + t.encode())
        if pkt.startswith(b"qXfer:threads:read:"):
            off, length = (int(x, 16) for x in pkt.split(b":")[4].split(b","))
            if off == 0:
                self.threads_doc = self.threads_xml()
            data = self.threads_doc
            return (b"m" if off + length < len(data) else b"l") + escape(data[off:off + length])
        if pkt.startswith(b"qXfer:exec-file:read:"):
            parts = pkt.split(b":")
            a = self.agents.get(int(parts[3], 16)) if parts[3] else self.current()
            if a is None:
                return b"E01"
            return a.request(b"qXfer:exec-file:read::" + parts[4])
        if cmd == b"D":
            pid = int(pkt[2:], 16) if pkt[1:2] == b";" else None
            pids = [pid] if pid is not None else list(self.order)
            for p in pids:
                a = self.agents.get(p)
                if a is not None:
                    try:
                        a.request(b"D")
                    except (EOFError, OSError):
                        pass
                    self.forget(p)
            if not self.agents and not self.extended:
                self.send(b"OK")
                raise EOFError
            return b"OK"
        if pkt.startswith(b"vKill;") or cmd == b"k":
            pids = [int(pkt[6:], 16)] if cmd == b"v" else list(self.order)
            for p in pids:
                a = self.agents.get(p)
                if a is not None:
                    try:
                        a.send(b"vKill")
                    except OSError:
                        pass
                    self.forget(p)
            if cmd == b"k":
                raise EOFError
            return b"OK"
        if pkt.startswith((b"vRun", b"vAttach")):
            return b"E01"
        return self.current().request(pkt)

    def serve(self):
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        self.listener.close()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn = conn
        try:
            while True:
                if self.nonstop:
                    self.pump()
                pkt = self.packet()
                if pkt == b"\x03":
                    if self.nonstop and self.current() is not None:
                        self.current().request(b"vCtrlC")
                    continue
                if self.trace:
                    sys.stderr.write(f"hub> {pkt[:200]!r}\n")
                reply = self.handle(pkt)
                if reply is None:
                    if self.conn is None:
                        break
                    continue
                self.send(reply)
                if self.nonstop:
                    continue
                if not self.agents and not self.extended and reply[:1] in (b"W", b"X"):
                    break       # the last process is gone: gdb closes the connection
        except (EOFError, OSError):
            pass
        except Exception as e:
            sys.stderr.write(f"blinkroot: gdb stub hub: {type(e).__name__}: {e}\n")
        # gdb went away: the processes still debugged are killed, as under qemu -g.
        for pid in list(self.order):
            a = self.agents[pid]
            try:
                a.send(b"vKill")
            except OSError:
                pass
            self.forget(pid)


def start(listener, root_pid):
    """Fork the hub (twice: it is no guest's child); returns the root process's socket."""
    mine, hubs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:
        try:
            if os.fork() == 0:
                mine.close()
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                null = os.open(os.devnull, os.O_RDWR)
                os.dup2(null, 0)
                os.dup2(null, 1)
                Hub(listener, hubs, root_pid).serve()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    hubs.close()
    listener.close()
    return mine
