"""Errors that travel through the kernel.

A syscall handler raises ``Errno(ENOENT)``; the dispatcher (syscalls/table.py) is the one
place that turns it into -errno.  Host OSErrors are translated there too, by name, so
that a non-Linux host's errno numbers never reach the guest.
"""

import errno as _errno
import os


class Errno(Exception):
    def __init__(self, code, message=""):
        super().__init__(code, message or os.strerror(code))
        self.errno = code


# Linux x86-64 errno numbers by name (the guest's ABI, whatever the host is).
LINUX_ERRNO = {
    "EPERM": 1, "ENOENT": 2, "ESRCH": 3, "EINTR": 4, "EIO": 5, "ENXIO": 6, "E2BIG": 7,
    "ENOEXEC": 8, "EBADF": 9, "ECHILD": 10, "EAGAIN": 11, "ENOMEM": 12, "EACCES": 13,
    "EFAULT": 14, "ENOTBLK": 15, "EBUSY": 16, "EEXIST": 17, "EXDEV": 18, "ENODEV": 19,
    "ENOTDIR": 20, "EISDIR": 21, "EINVAL": 22, "ENFILE": 23, "EMFILE": 24, "ENOTTY": 25,
    "ETXTBSY": 26, "EFBIG": 27, "ENOSPC": 28, "ESPIPE": 29, "EROFS": 30, "EMLINK": 31,
    "EPIPE": 32, "EDOM": 33, "ERANGE": 34, "EDEADLK": 35, "ENAMETOOLONG": 36, "ENOLCK": 37,
    "ENOSYS": 38, "ENOTEMPTY": 39, "ELOOP": 40, "ENOMSG": 42, "EIDRM": 43, "ENOSTR": 60,
    "ENODATA": 61, "ETIME": 62, "ENOSR": 63, "EREMOTE": 66, "ENOLINK": 67, "EPROTO": 71,
    "EMULTIHOP": 72, "EBADMSG": 74, "EOVERFLOW": 75, "EILSEQ": 84, "EUSERS": 87,
    "ENOTSOCK": 88, "EDESTADDRREQ": 89, "EMSGSIZE": 90, "EPROTOTYPE": 91, "ENOPROTOOPT": 92,
    "EPROTONOSUPPORT": 93, "ESOCKTNOSUPPORT": 94, "EOPNOTSUPP": 95, "EPFNOSUPPORT": 96,
    "EAFNOSUPPORT": 97, "EADDRINUSE": 98, "EADDRNOTAVAIL": 99, "ENETDOWN": 100,
    "ENETUNREACH": 101, "ENETRESET": 102, "ECONNABORTED": 103, "ECONNRESET": 104,
    "ENOBUFS": 105, "EISCONN": 106, "ENOTCONN": 107, "ESHUTDOWN": 108, "ETOOMANYREFS": 109,
    "ETIMEDOUT": 110, "ECONNREFUSED": 111, "EHOSTDOWN": 112, "EHOSTUNREACH": 113,
    "EALREADY": 114, "EINPROGRESS": 115, "ESTALE": 116, "EDQUOT": 122, "ECANCELED": 125,
    "EOWNERDEAD": 130, "ENOTRECOVERABLE": 131,
    "ECHRNG": 44, "EL2NSYNC": 45, "EL3HLT": 46, "EL3RST": 47, "ELNRNG": 48, "EUNATCH": 49,
    "ENOCSI": 50, "EL2HLT": 51, "EBADE": 52, "EBADR": 53, "EXFULL": 54, "ENOANO": 55,
    "EBADRQC": 56, "EBADSLT": 57, "EBFONT": 59, "ENONET": 64, "ENOPKG": 65, "EADV": 68,
    "ESRMNT": 69, "ECOMM": 70, "EDOTDOT": 73, "ENOTUNIQ": 76, "EBADFD": 77, "EREMCHG": 78,
    "ELIBACC": 79, "ELIBBAD": 80, "ELIBSCN": 81, "ELIBMAX": 82, "ELIBEXEC": 83,
    "ERESTART": 85, "ESTRPIPE": 86, "EUCLEAN": 117, "ENOTNAM": 118, "ENAVAIL": 119,
    "EISNAM": 120, "EREMOTEIO": 121, "ENOMEDIUM": 123, "EMEDIUMTYPE": 124, "ENOKEY": 126,
    "EKEYEXPIRED": 127, "EKEYREVOKED": 128, "EKEYREJECTED": 129, "ERFKILL": 132,
    "EHWPOISON": 133,
}
LINUX_ERRNO_NAMES = {v: k for k, v in LINUX_ERRNO.items()}
LINUX_ERRNO_NAMES[11] = "EAGAIN"
LINUX_ERRNO_NAMES[95] = "EOPNOTSUPP"

# Restart codes (never seen by the guest): a syscall interrupted by a signal.
ERESTARTSYS = 512
ERESTARTNOINTR = 513
ERESTARTNOHAND = 514
ERESTART_RESTARTBLOCK = 516


def linux_errno(host_errno):
    """The guest's errno for a host errno."""
    name = _errno.errorcode.get(host_errno)
    if name == "EWOULDBLOCK":
        name = "EAGAIN"
    if name == "ENOTSUP":
        name = "EOPNOTSUPP"
    if name == "EDEADLOCK":         # Python's name for 35 on Linux hosts
        name = "EDEADLK"
    return LINUX_ERRNO.get(name, LINUX_ERRNO["EIO"])


def errno_name(code):
    return LINUX_ERRNO_NAMES.get(code, str(code))
