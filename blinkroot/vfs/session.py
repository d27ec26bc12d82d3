"""The session: what all processes of one blinkroot run share, kept in host files.

A guest process is a host process (fork is a host fork), so whatever the guest's kernel
would keep in shared kernel memory (the mount namespace, tmpfs contents, the process
list procfs shows) must live where every one of those host processes can reach it at
once.  The design:

- the session's first process creates one state directory (mode 0700, under
  $XDG_RUNTIME_DIR or /tmp) and owns it: it removes it when it exits.  One owner, one
  protocol, no copies drifting apart: nothing is copied into forked children, they all
  read the same files;
- ``mounts``: the mount table (JSON).  Writers take ``lock`` (flock, exclusive), rewrite
  the file (write + rename) and bump a generation counter held in ``gen``, an 8-byte file
  every process has mmap'd shared.  Every path walk compares the counter with the one it
  last saw (one memory read) and re-reads the table only when it moved, so a mount or
  umount by any process is seen by all the others at their next path lookup;
- ``tmpfs/``, ``dev/``: host directories holding tmpfs and devfs contents (host files:
  sharing and fork come for free);
- ``procs/PID``: one small JSON file per live process of the session, written by that
  process itself when its guest-visible facts change (start, fork, exec, chdir, comm)
  and removed when it exits.  procfs lists these pids and nothing else of the host's.
"""

import fcntl
import json
import mmap
import os
import shutil
import struct
import tempfile


def _state_parent():
    run = os.environ.get("XDG_RUNTIME_DIR")
    if run and os.path.isdir(run) and os.access(run, os.W_OK | os.X_OK):
        return run
    return tempfile.gettempdir()


def host_start_time(pid):
    """The host's start time of pid (clock ticks since boot): with the pid, it names one
    process for good (pids are reused)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return int(data[data.rindex(b")") + 2:].split()[19])


def find_session(pid):
    """The state directory of the live session that guest process pid belongs to."""
    parent = _state_parent()
    prefix = f"blinkroot-{os.getuid()}-"
    try:
        names = sorted(os.listdir(parent))
    except OSError:
        return None
    for name in names:
        d = os.path.join(parent, name)
        if name.startswith(prefix) and (name[len(prefix):].split("-", 1)[0] == str(pid) or
                                        os.path.exists(os.path.join(d, "procs", str(pid)))):
            return d
    return None


def _sweep(parent):
    """Remove state directories of sessions whose first process died without cleaning
    up (killed by SIGKILL): their names carry the owner's pid."""
    prefix = f"blinkroot-{os.getuid()}-"
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        if not name.startswith(prefix):
            continue
        try:
            pid = int(name[len(prefix):].split("-", 1)[0])
            os.kill(pid, 0)
            continue                # its owner lives
        except ProcessLookupError:
            pass
        except (ValueError, PermissionError):
            continue
        shutil.rmtree(os.path.join(parent, name), ignore_errors=True)


class Session:
    def __init__(self):
        self.owner = os.getpid()
        _sweep(_state_parent())
        self.dir = tempfile.mkdtemp(prefix=f"blinkroot-{os.getuid()}-{os.getpid()}-",
                                    dir=_state_parent())
        os.chmod(self.dir, 0o700)
        for sub in ("procs", "tmpfs", "dev"):
            os.mkdir(os.path.join(self.dir, sub), 0o700)
        self.lock_fd = os.open(os.path.join(self.dir, "lock"), os.O_RDWR | os.O_CREAT |
                               os.O_CLOEXEC, 0o600)
        gen_path = os.path.join(self.dir, "gen")
        with open(gen_path, "wb") as f:
            f.write(b"\0" * 8)
        fd = os.open(gen_path, os.O_RDWR | os.O_CLOEXEC)
        self.gen_map = mmap.mmap(fd, 8, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        os.close(fd)
        self.mounts_path = os.path.join(self.dir, "mounts")
        self.proc = None            # this host process's guest Process
        self._write_table({"next_dev": 0x40, "next_id": 20, "mounts": []})
        import atexit       # ordinary exits (errors before the guest ran); finish() too
        atexit.register(self.close)

    @classmethod
    def attach(cls, path):
        """Join the running session whose state directory is path (``blinkroot mount
        --session``): its table, tmpfs contents and process list, never its ownership."""
        self = cls.__new__(cls)
        self.owner = None
        self.dir = os.fspath(path)
        self.lock_fd = os.open(os.path.join(self.dir, "lock"), os.O_RDWR | os.O_CLOEXEC)
        fd = os.open(os.path.join(self.dir, "gen"), os.O_RDWR | os.O_CLOEXEC)
        self.gen_map = mmap.mmap(fd, 8, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        os.close(fd)
        self.mounts_path = os.path.join(self.dir, "mounts")
        self.proc = None
        return self

    def owner_pid(self):
        """The pid of the session's first process (its state directory's name says it)."""
        try:
            return int(os.path.basename(self.dir).split("-")[2])
        except (IndexError, ValueError):
            return None

    # -- the mount table ---------------------------------------------------------------------
    def generation(self):
        return struct.unpack_from("<Q", self.gen_map)[0]

    def _write_table(self, table):
        tmp = f"{self.mounts_path}.{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump(table, f)
        os.rename(tmp, self.mounts_path)

    def read_table(self):
        """(generation, table) read under the shared lock."""
        fcntl.flock(self.lock_fd, fcntl.LOCK_SH)
        try:
            gen = self.generation()
            with open(self.mounts_path) as f:
                return gen, json.load(f)
        finally:
            fcntl.flock(self.lock_fd, fcntl.LOCK_UN)

    def update_table(self, change):
        """Run change(table) under the exclusive lock; the new table is everyone's."""
        fcntl.flock(self.lock_fd, fcntl.LOCK_EX)
        try:
            with open(self.mounts_path) as f:
                table = json.load(f)
            result = change(table)
            self._write_table(table)
            struct.pack_into("<Q", self.gen_map, 0, self.generation() + 1)
            return result
        finally:
            fcntl.flock(self.lock_fd, fcntl.LOCK_UN)

    def new_dir(self, kind):
        return tempfile.mkdtemp(prefix="", dir=os.path.join(self.dir, kind))

    # -- processes ---------------------------------------------------------------------------
    def publish(self, proc, **extra):
        """Write this process's guest-visible facts (it is the only writer of its file,
        but for the first version of a forked child's: see publish_child)."""
        facts = self._facts_of(proc, os.getpid())
        facts.update(extra)
        path = os.path.join(self.dir, "procs", str(os.getpid()))
        tmp = path + ".tmp"
        try:
            with open(tmp, "w") as f:
                json.dump(facts, f)
            os.rename(tmp, path)
        except OSError:
            pass

    def publish_child(self, proc, pid):
        """Right after fork, in the parent: the child's facts are the parent's (it has not
        run yet, it may not have written its own), so that /proc/PID exists at once.  Never
        replaces a file the child wrote itself."""
        start = host_start_time(pid)
        if start is None:
            return                  # gone already
        facts = self._facts_of(proc, pid, start)
        path = os.path.join(self.dir, "procs", str(pid))
        tmp = f"{path}.{os.getpid()}.parent.tmp"
        try:
            with open(tmp, "w") as f:
                json.dump(facts, f)
            try:
                os.link(tmp, path)  # EEXIST: the child was first
            except FileExistsError:
                old = self.facts(pid)
                if old is None:     # a stale file of a dead process with this pid
                    os.rename(tmp, path)
        except OSError:
            pass
        finally:
            try:
                os.unlink(tmp)
            except OSError:
                pass

    @staticmethod
    def _facts_of(proc, pid, start=None):
        return {
            "pid": pid,
            "start": host_start_time(pid) if start is None else start,
            "exe": os.fsdecode(proc.exe),
            "cwd": os.fsdecode(proc.cwd),
            "comm": os.fsdecode(proc.comm),
            "cmdline": [os.fsdecode(a) for a in proc.argv],
            "environ": [os.fsdecode(e) for e in getattr(proc, "envp", [])],
        }

    def withdraw(self):
        try:
            os.unlink(os.path.join(self.dir, "procs", str(os.getpid())))
        except OSError:
            pass

    def facts(self, pid):
        try:
            with open(os.path.join(self.dir, "procs", str(pid))) as f:
                facts = json.load(f)
        except (OSError, ValueError):
            return None
        if facts.get("start") != host_start_time(pid):
            return None             # gone (killed without a word), or a reused pid
        return facts

    def pids(self):
        out = []
        try:
            names = os.listdir(os.path.join(self.dir, "procs"))
        except OSError:
            return out
        for name in names:
            if name.isdigit():
                pid = int(name)
                if pid == os.getpid() or self.facts(pid) is not None:
                    out.append(pid)
                else:
                    try:
                        os.unlink(os.path.join(self.dir, "procs", name))
                    except OSError:
                        pass
        return sorted(out)

    def close(self, zombie=False):
        """At exit: the owner removes the whole state directory, others their entry --
        but for a guest process (zombie): until its parent reaps it, /proc/PID stays, as
        on Linux (facts() and pids() forget it once the host process is gone)."""
        if not zombie:
            self.withdraw()
        if os.getpid() == self.owner:
            shutil.rmtree(self.dir, ignore_errors=True)
