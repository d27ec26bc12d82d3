"""Sockets: AF_UNIX, AF_INET, AF_INET6 and AF_NETLINK sockets are host sockets.

The guest's bytes (sockaddrs, msghdr payloads, ancillary data, option values) go to the
host's libc calls as they are (vfs/hostcall.py), so every protocol and option behaves as
the host kernel says.  What the kernel here translates: guest descriptors <-> host
descriptors (the socket itself, SCM_RIGHTS, BPF program fds), guest pointers inside
option values (SO_ATTACH_FILTER), and AF_UNIX path names, which are guest paths resolved
through the VFS (so they work under -C) and are reported back as the guest named them.
"""

import ctypes
import errno
import fcntl
import os
import struct

from ..errors import Errno, ERESTARTSYS, linux_errno
from ..vfs import AT_FDCWD
from ..vfs.files import File, O_RDWR
from ..vfs.hostcall import call, address, libc, PollFd
from .blocking import host_call, signal_waiting, deadline
from .files import _iovecs, epipe
from .table import syscall, s32

AF_UNIX, AF_INET, AF_INET6, AF_NETLINK = 1, 2, 10, 16
FAMILIES = (AF_UNIX, AF_INET, AF_INET6, AF_NETLINK)
SOCK_NONBLOCK, SOCK_CLOEXEC, SOCK_TYPE_MASK = 0o4000, 0o2000000, 0xF
O_NONBLOCK = 0o4000
SOL_SOCKET, SCM_RIGHTS = 1, 1
SO_ATTACH_FILTER, SO_ATTACH_BPF, SO_ATTACH_REUSEPORT_CBPF, SO_ATTACH_REUSEPORT_EBPF = 26, 50, 51, 52
SO_ERROR, SO_PEERPIDFD = 4, 77
POLLOUT = 0x4
MSG_NOSIGNAL, MSG_WAITFORONE, MSG_DONTWAIT, MSG_OOB = 0x4000, 0x10000, 0x40, 0x1
MSG_CTRUNC, MSG_CMSG_CLOEXEC = 0x8, 0x40000000
UIO_MAXIOV = 1024
SOCKADDR_MAX = 128              # sizeof(struct sockaddr_storage)
SUN_PATH_MAX = 108
CONTROL_MAX = 1 << 20           # host buffer for received ancillary data
OPT_MAX = 1 << 16               # host buffer for option values
MSGHDR = struct.Struct("<QI4xQQQQi4x")     # struct msghdr; struct mmsghdr adds msg_len
MMSGHDR_SIZE = 64

_unix_names = {}                # host sun_path used -> the guest's sun_path


class _MsgHdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32),
                ("iov", ctypes.c_void_p), ("iovlen", ctypes.c_size_t),
                ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]


class _IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def _sock(t, fd):
    return t.proc.fds.get(s32(fd))


def _install(t, host_fd, nonblock, cloexec, flags=None):
    f = File(host_fd, O_RDWR | (O_NONBLOCK if nonblock else 0) if flags is None else flags)
    try:
        return t.proc.fds.install(f, cloexec=cloexec)
    except Errno:
        f.release()
        raise


# -- addresses ---------------------------------------------------------------------------
class _HostAddr:
    """A guest sockaddr as the host needs it; a context manager because an AF_UNIX path
    too long for sun_path once translated goes through an O_PATH descriptor of its
    directory (/proc/self/fd/N/name), closed afterwards."""

    def __init__(self, t, raw, bind=False):
        self.raw, self._dir = raw, -1
        if len(raw) <= 2 or int.from_bytes(raw[:2], "little") != AF_UNIX or raw[2] == 0:
            return                              # not a path: abstract, unnamed, not unix
        if len(raw) > 2 + SUN_PATH_MAX:
            raise Errno(errno.EINVAL)
        path = raw[2:].split(b"\0")[0]
        host = t.kernel.vfs.host_path(t.proc, AT_FDCWD, path, follow=not bind)
        if host == path:
            return
        if len(host) >= SUN_PATH_MAX:
            head, tail = os.path.split(host)
            self._dir = os.open(head or b".", os.O_PATH | os.O_CLOEXEC)
            host = b"/proc/self/fd/%d/%s" % (self._dir, tail)
        _unix_names[host] = path
        self.raw = raw[:2] + host + b"\0"

    def __enter__(self):
        return self.raw

    def __exit__(self, *exc):
        if self._dir >= 0:
            os.close(self._dir)


def _addr_in(t, ptr, length, bind=False):
    length = s32(length)
    if length < 0 or length > SOCKADDR_MAX:
        raise Errno(errno.EINVAL)
    return _HostAddr(t, t.mem.read(ptr, length) if length else b"", bind)


def _guest_addr(t, raw):
    """A sockaddr from the host, as the guest sees it (AF_UNIX paths back to guest's)."""
    if len(raw) <= 2 or int.from_bytes(raw[:2], "little") != AF_UNIX or raw[2] == 0:
        return raw
    host = raw[2:].split(b"\0")[0]
    path = _unix_names.get(host)
    if path is None:
        path = t.kernel.vfs.to_guest(host) if host.startswith(b"/") else host
    return raw[:2] + path + b"\0"


def _addr_out(t, raw, ptr, len_ptr):
    """move_addr_to_user: as much as fits, and the full length."""
    klen = len(raw)
    ulen = struct.unpack("<i", t.mem.read(len_ptr, 4))[0]
    if ulen < 0:
        raise Errno(errno.EINVAL)
    t.mem.write(ptr, raw[:min(ulen, klen)])
    t.mem.write(len_ptr, struct.pack("<i", klen))


# -- sockets -----------------------------------------------------------------------------
def _check_type(family, type_):
    if type_ & ~SOCK_TYPE_MASK & ~(SOCK_NONBLOCK | SOCK_CLOEXEC):
        raise Errno(errno.EINVAL)
    if family not in FAMILIES:
        raise Errno(errno.EAFNOSUPPORT)


@syscall("socket", "int hex int")
def socket(t, family, type_, protocol):
    family, type_ = s32(family), s32(type_)
    _check_type(family, type_)
    host = call("socket", family, type_ | SOCK_CLOEXEC, s32(protocol))
    return _install(t, host, type_ & SOCK_NONBLOCK, type_ & SOCK_CLOEXEC)


@syscall("socketpair", "int hex int ptr")
def socketpair(t, family, type_, protocol, sv_ptr):
    family, type_ = s32(family), s32(type_)
    _check_type(family, type_)
    t.mem.check(sv_ptr, 8, 2)
    pair = (ctypes.c_int * 2)()
    call("socketpair", family, type_ | SOCK_CLOEXEC, s32(protocol), pair)
    a = _install(t, pair[0], type_ & SOCK_NONBLOCK, type_ & SOCK_CLOEXEC)
    try:
        b = _install(t, pair[1], type_ & SOCK_NONBLOCK, type_ & SOCK_CLOEXEC)
    except Errno:
        t.proc.fds.close(a)
        raise
    t.mem.write(sv_ptr, struct.pack("<ii", a, b))
    return 0


@syscall("bind", "fd ptr int")
def bind(t, fd, addr, length):
    f = _sock(t, fd)
    with _addr_in(t, addr, length, bind=True) as raw:
        call("bind", f.host_fd, raw, len(raw))
    return 0


@syscall("connect", "fd ptr int", blocking=True)
def connect(t, fd, addr, length):
    f = _sock(t, fd)
    with _addr_in(t, addr, length) as raw:
        try:
            host_call(t, libc.connect, f.host_fd, raw, len(raw), woken=lambda: True)
            return 0
        except Errno as e:
            blocking_socket = not f.flags & O_NONBLOCK
            if not (e.errno == errno.EALREADY and blocking_socket or
                    e.errno == ERESTARTSYS and not signal_waiting(t)):
                raise
    # The host's wait ended early (a signal the guest does not act on) or this is the
    # restart of one: the attempt goes on, and a blocking connect waits for its outcome.
    pfd = PollFd(f.host_fd, POLLOUT, 0)
    host_call(t, libc.poll, ctypes.byref(pfd), 1, -1)
    err, size = ctypes.c_int(0), ctypes.c_uint32(4)
    call("getsockopt", f.host_fd, SOL_SOCKET, SO_ERROR, ctypes.byref(err), ctypes.byref(size))
    if err.value:
        raise Errno(linux_errno(err.value))
    return 0


@syscall("listen", "fd int")
def listen(t, fd, backlog):
    call("listen", _sock(t, fd).host_fd, s32(backlog))
    return 0


@syscall("accept4", "fd ptr ptr flags", blocking=True)
def accept4(t, fd, addr, len_ptr, flags):
    if flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC):
        raise Errno(errno.EINVAL)
    f = _sock(t, fd)
    name = ctypes.create_string_buffer(SOCKADDR_MAX)
    namelen = ctypes.c_uint32(SOCKADDR_MAX)
    host = host_call(t, libc.accept4, f.host_fd, name, ctypes.byref(namelen),
                     SOCK_CLOEXEC | (flags & SOCK_NONBLOCK))
    try:
        if addr:
            _addr_out(t, _guest_addr(t, name.raw[:namelen.value]), addr, len_ptr)
    except Errno:
        os.close(host)
        raise
    return _install(t, host, flags & SOCK_NONBLOCK, flags & SOCK_CLOEXEC)


@syscall("accept", "fd ptr ptr", blocking=True)
def accept(t, fd, addr, len_ptr):
    return accept4(t, fd, addr, len_ptr, 0)


def _getname(t, fd, addr, len_ptr, which):
    f = _sock(t, fd)
    name = ctypes.create_string_buffer(SOCKADDR_MAX)
    namelen = ctypes.c_uint32(SOCKADDR_MAX)
    call(which, f.host_fd, name, ctypes.byref(namelen))
    _addr_out(t, _guest_addr(t, name.raw[:namelen.value]), addr, len_ptr)
    return 0


@syscall("getsockname", "fd ptr ptr")
def getsockname(t, fd, addr, len_ptr):
    return _getname(t, fd, addr, len_ptr, "getsockname")


@syscall("getpeername", "fd ptr ptr")
def getpeername(t, fd, addr, len_ptr):
    return _getname(t, fd, addr, len_ptr, "getpeername")


@syscall("shutdown", "fd int")
def shutdown(t, fd, how):
    call("shutdown", _sock(t, fd).host_fd, s32(how))
    return 0


# -- data --------------------------------------------------------------------------------
def _ptr(buf):
    return ctypes.addressof(buf) if buf is not None else None


def _iov(views):
    return (_IoVec * max(1, len(views)))(*[(address(v), len(v)) for v in views])


def _host_send(t, f, views, name, control, flags):
    namebuf = ctypes.create_string_buffer(name, len(name)) if name else None
    ctl = ctypes.create_string_buffer(bytes(control), len(control)) if control else None
    iov = _iov(views)
    hdr = _MsgHdr(_ptr(namebuf), len(name),
                  ctypes.addressof(iov), len(views),
                  _ptr(ctl), len(control), 0)
    try:
        return host_call(t, libc.sendmsg, f.host_fd, ctypes.byref(hdr), flags)
    except Errno as e:
        if not flags & MSG_NOSIGNAL:
            epipe(t, e)
        raise


def _host_recv(t, f, views, want_name, ctl_size, flags):
    """(count, sockaddr bytes, control bytes, msg_flags) of one host recvmsg."""
    namebuf = ctypes.create_string_buffer(SOCKADDR_MAX) if want_name else None
    ctl = ctypes.create_string_buffer(ctl_size) if ctl_size else None
    iov = _iov(views)
    hdr = _MsgHdr(_ptr(namebuf), SOCKADDR_MAX if want_name else 0,
                  ctypes.addressof(iov), len(views),
                  _ptr(ctl), ctl_size, 0)
    n = host_call(t, libc.recvmsg, f.host_fd, ctypes.byref(hdr), flags | MSG_CMSG_CLOEXEC)
    name = namebuf.raw[:hdr.namelen] if want_name else b""
    control = ctl.raw[:hdr.controllen] if ctl_size else b""
    # The host saw MSG_CMSG_CLOEXEC always; Linux echoes it only if the caller gave it.
    return n, name, control, hdr.flags & ~MSG_CMSG_CLOEXEC | flags & MSG_CMSG_CLOEXEC


@syscall("sendto", "fd wbuf size flags ptr int", blocking=True)
def sendto(t, fd, buf, length, flags, addr, addrlen):
    f = _sock(t, fd)
    views = t.mem.views(buf, min(length, 0x7FFFF000), writable=False)
    with _addr_in(t, addr, addrlen if addr else 0) as name:
        return _host_send(t, f, views, name, b"", s32(flags))


@syscall("recvfrom", "fd rbuf size flags ptr ptr", blocking=True)
def recvfrom(t, fd, buf, length, flags, addr, len_ptr):
    f = _sock(t, fd)
    views = t.mem.views(buf, min(length, 0x7FFFF000), writable=True)
    n, name, _, _ = _host_recv(t, f, views, bool(addr), 0, s32(flags))
    if addr:
        _addr_out(t, _guest_addr(t, name), addr, len_ptr)
    return n


def _read_msghdr(t, ptr):
    name, namelen, iov, iovlen, control, controllen, _ = MSGHDR.unpack(t.mem.read(ptr, MSGHDR.size))
    if iovlen > UIO_MAXIOV:
        raise Errno(errno.EMSGSIZE)
    return name, namelen, iov, iovlen, control, controllen


def _cmsgs(control):
    """(offset, level, type, data length) of each well-formed cmsghdr."""
    off = 0
    while off + 16 <= len(control):
        clen, level, type_ = struct.unpack_from("<Qii", control, off)
        if clen < 16 or clen > len(control) - off:
            return
        yield off, level, type_, clen - 16
        off += (clen + 7) & ~7


def _sendmsg(t, f, msg_ptr, flags):
    name_ptr, namelen, iov, iovlen, control_ptr, controllen = _read_msghdr(t, msg_ptr)
    views = _iovecs(t, iov, iovlen, False)
    if controllen > 0x7FFFFFFF:
        raise Errno(errno.ENOBUFS)
    control = bytearray(t.mem.read(control_ptr, controllen))
    for off, level, type_, size in _cmsgs(control):
        if level == SOL_SOCKET and type_ == SCM_RIGHTS:       # guest fds -> host fds
            for i in range(off + 16, off + 16 + size // 4 * 4, 4):
                fd = struct.unpack_from("<i", control, i)[0]
                struct.pack_into("<i", control, i, t.proc.fds.get(fd).host_fd)
    with _addr_in(t, name_ptr, namelen if name_ptr else 0) as name:
        return _host_send(t, f, views, name, control, flags)


def _received_fd(t, host_fd, cloexec):
    flags = fcntl.fcntl(host_fd, fcntl.F_GETFL) & ~os.O_CLOEXEC
    try:
        path = t.kernel.vfs.to_guest(os.readlink(f"/proc/self/fd/{host_fd}").encode())
    except OSError:
        path = b""
    f = File(host_fd, flags, path)
    return t.proc.fds.install(f, cloexec=cloexec)


def _guest_control(t, control, msg_flags, cloexec):
    """Received SCM_RIGHTS host fds become new guest fds (as many as the table takes)."""
    control = bytearray(control)
    for off, level, type_, size in _cmsgs(control):
        if level != SOL_SOCKET or type_ != SCM_RIGHTS:
            continue
        fds = [struct.unpack_from("<i", control, i)[0]
               for i in range(off + 16, off + 16 + size // 4 * 4, 4)]
        for k, host_fd in enumerate(fds):
            try:
                struct.pack_into("<i", control, off + 16 + 4 * k, _received_fd(t, host_fd, cloexec))
            except Errno:
                for rest in fds[k:]:
                    os.close(rest)
                struct.pack_into("<Q", control, off, 16 + 4 * k)
                del control[off + 16 + 4 * k:]
                return bytes(control), msg_flags | MSG_CTRUNC
    return bytes(control), msg_flags


def _recvmsg(t, f, msg_ptr, flags):
    name_ptr, _, iov, iovlen, control_ptr, controllen = _read_msghdr(t, msg_ptr)
    views = _iovecs(t, iov, iovlen, True)
    n, name, control, msg_flags = _host_recv(t, f, views, bool(name_ptr),
                                             min(controllen, CONTROL_MAX), flags)
    control, msg_flags = _guest_control(t, control, msg_flags, bool(flags & MSG_CMSG_CLOEXEC))
    if name_ptr:
        _addr_out(t, _guest_addr(t, name), name_ptr, msg_ptr + 8)
    t.mem.write(control_ptr, control)
    t.mem.write(msg_ptr + 40, struct.pack("<Q", len(control)))
    t.mem.write(msg_ptr + 48, struct.pack("<i", msg_flags))
    return n


@syscall("sendmsg", "fd ptr flags", blocking=True)
def sendmsg(t, fd, msg, flags):
    return _sendmsg(t, _sock(t, fd), msg, s32(flags))


@syscall("recvmsg", "fd ptr flags", blocking=True)
def recvmsg(t, fd, msg, flags):
    return _recvmsg(t, _sock(t, fd), msg, s32(flags))


@syscall("sendmmsg", "fd ptr uint flags", blocking=True)
def sendmmsg(t, fd, vec, vlen, flags):
    f = _sock(t, fd)
    sent = 0
    for i in range(min(vlen & 0xFFFFFFFF, UIO_MAXIOV)):
        entry = vec + i * MMSGHDR_SIZE
        try:
            n = _sendmsg(t, f, entry, s32(flags))
        except Errno:
            if sent:
                break
            raise
        t.mem.write(entry + MSGHDR.size, struct.pack("<I", n))
        sent += 1
    return sent


@syscall("recvmmsg", "fd ptr uint flags ptr", blocking=True)
def recvmmsg(t, fd, vec, vlen, flags, ts_ptr):
    import time
    end = deadline(t, ts_ptr)
    f = _sock(t, fd)
    flags = s32(flags)
    got = 0
    for i in range(min(vlen & 0xFFFFFFFF, UIO_MAXIOV)):
        entry = vec + i * MMSGHDR_SIZE
        more = MSG_DONTWAIT if got and flags & MSG_WAITFORONE else 0
        try:
            n = _recvmsg(t, f, entry, flags | more)
        except Errno:
            if got:
                break
            raise
        t.mem.write(entry + MSGHDR.size, struct.pack("<I", n))
        got += 1
        msg_flags = struct.unpack("<i", t.mem.read(entry + 48, 4))[0]
        if msg_flags & MSG_OOB:
            break
        if end is not None and time.monotonic() >= end:
            break
    if end is not None and got:
        left = max(0.0, end - time.monotonic())
        t.mem.write(ts_ptr, struct.pack("<qq", int(left), int(left % 1 * 1e9)))
    return got


# -- options -----------------------------------------------------------------------------
def _host_optval(t, level, name, value):
    """Option values that hold guest pointers or guest fds, made the host's."""
    if level != SOL_SOCKET:
        return value, None
    if name in (SO_ATTACH_FILTER, SO_ATTACH_REUSEPORT_CBPF) and len(value) >= 16:
        count, ptr = struct.unpack_from("<H6xQ", value)
        prog = ctypes.create_string_buffer(t.mem.read(ptr, count * 8), max(1, count * 8))
        return struct.pack("<H6xQ", count, ctypes.addressof(prog)) + value[16:], prog
    if name in (SO_ATTACH_BPF, SO_ATTACH_REUSEPORT_EBPF) and len(value) >= 4:
        fd = struct.unpack_from("<i", value)[0]
        return struct.pack("<i", t.proc.fds.get(fd).host_fd) + value[4:], None
    return value, None


@syscall("setsockopt", "fd int int ptr int")
def setsockopt(t, fd, level, name, optval, optlen):
    optlen = s32(optlen)
    if optlen < 0:
        raise Errno(errno.EINVAL)
    f = _sock(t, fd)
    level, name = s32(level), s32(name)
    size = min(optlen, OPT_MAX)
    try:
        value = t.mem.read(optval, size)
    except Errno:
        value = None            # the host reports EFAULT, after its own checks, as Linux
    keep = None
    if value is not None:
        value, keep = _host_optval(t, level, name, value)
    buf = ctypes.create_string_buffer(value, len(value)) if value is not None else None
    call("setsockopt", f.host_fd, level, name, buf, size)
    del keep
    return 0


@syscall("getsockopt", "fd int int ptr ptr")
def getsockopt(t, fd, level, name, optval, len_ptr):
    f = _sock(t, fd)
    level, name = s32(level), s32(name)
    ulen = struct.unpack("<i", t.mem.read(len_ptr, 4))[0]
    buf = ctypes.create_string_buffer(max(1, min(ulen, OPT_MAX)))
    length = ctypes.c_uint32(ulen & 0xFFFFFFFF if ulen < 0 else min(ulen, OPT_MAX))
    call("getsockopt", f.host_fd, level, name, buf, ctypes.byref(length))
    value = buf.raw[:length.value]
    if level == SOL_SOCKET and name == SO_PEERPIDFD and len(value) >= 4:
        host = struct.unpack_from("<i", value)[0]
        value = struct.pack("<i", _install(t, host, False, True, flags=O_RDWR)) + value[4:]
    t.mem.write(optval, value)
    t.mem.write(len_ptr, struct.pack("<i", length.value))
    return 0
