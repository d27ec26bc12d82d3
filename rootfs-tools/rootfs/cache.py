"""Where the rootfs tools keep downloads: one cache shared by all of them."""

import os


def cache_root(override=None):
    """The cache directory: override, else $BLINKROOT_CACHE, else
    $XDG_CACHE_HOME/blinkroot, else ~/.cache/blinkroot."""
    if override:
        return os.path.abspath(os.path.expanduser(override))
    env = os.environ.get("BLINKROOT_CACHE")
    if env:
        return os.path.abspath(os.path.expanduser(env))
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):
        base = xdg
    else:
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "blinkroot")


def cache_dir(kind, override=None):
    """The cache subdirectory for one kind of download ("debs", "alpine", ...).

    With an explicit override (a --cache flag) that directory is used as is.
    """
    if override:
        return os.path.abspath(os.path.expanduser(override))
    return os.path.join(cache_root(), kind)
