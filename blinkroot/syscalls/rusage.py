"""struct rusage, shared by getrusage and wait4."""

import struct


def _tv(seconds):
    sec = int(seconds)
    return sec, int((seconds - sec) * 1_000_000)


def pack_rusage(ru):
    """Pack a resource.struct_rusage (or os.wait4's) into Linux's 144-byte struct rusage."""
    fields = (*_tv(ru.ru_utime), *_tv(ru.ru_stime), ru.ru_maxrss, ru.ru_ixrss, ru.ru_idrss,
              ru.ru_isrss, ru.ru_minflt, ru.ru_majflt, ru.ru_nswap, ru.ru_inblock,
              ru.ru_oublock, ru.ru_msgsnd, ru.ru_msgrcv, ru.ru_nsignals, ru.ru_nvcsw,
              ru.ru_nivcsw)
    return struct.pack("<18q", *fields)
