"""The lab's run lock: one lab run (site.yml, scripts/lab.sh, the e2e and Molecule suites) at a time.

Every lab name is fixed (``vnflab-a``, ``vbr-*``, ``vnflab-docker-N``, ``/run/vnflab/...``), so two runs at once
destroy each other's instances. A run takes an exclusive ``flock`` on one file before it changes anything and keeps
it until its process ends; the kernel drops the lock when the holder dies, even by ``kill -9``, so a killed run
never leaves a stale lock behind. A process that inherits the holder's descriptor (``flock FILE cmd``,
``scripts/lab.sh``) holds the same lock and may run the lab inside it.

The lock file also carries a small JSON record (PID, start time, command, run id) that the holder writes in place:
the refusal a second run gets names the holder from ``/proc/locks`` (the kernel's word on who holds it) and
adds the run id from the record. Standard library only: ``scripts/lab.sh`` runs this file with the system
Python before the virtual environment exists (``python3 analysis/vnflab/run/runlock.py describe``).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

DEFAULT_LOCK = "/run/lock/vnflab-run.lock"
LOCK_ENV = "VNFLAB_RUN_LOCK"
# Set by the callback plugin in ansible-playbook's own process, read by the vnflab_run_lock action in its workers.
STATE_ENV = "VNFLAB_RUN_LOCK_STATE"


def lock_path() -> Path:
    """The lock file: $VNFLAB_RUN_LOCK, else /run/lock/vnflab-run.lock."""
    return Path(os.environ.get(LOCK_ENV) or DEFAULT_LOCK)


@dataclass(frozen=True)
class Holder:
    """A process that holds the lock, as /proc and the lock's record describe it."""

    pid: int
    command: str
    started: str
    run_id: str

    def describe(self) -> str:
        started = self.started or "at an unknown time"
        return (f"PID {self.pid} ({self.command or 'command unknown'}), started {started}, "
                f"run id {self.run_id or 'not yet known'}")


def _boot_time() -> float:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise RuntimeError("/proc/stat has no btime line")


def process_start(pid: int) -> str:
    """UTC start time of a process (ISO 8601, seconds), or '' when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # Field 22 (starttime, clock ticks since boot) counted after the command name, which may hold spaces.
    ticks = int(stat.rsplit(")", 1)[1].split()[19])
    started = _boot_time() + ticks / os.sysconf("SC_CLK_TCK")
    return dt.datetime.fromtimestamp(started, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def process_command(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)


def read_record(path: Path) -> dict[str, object]:
    """The holder's record, {} when there is none or it is being rewritten."""
    try:
        record = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def write_record(path: Path, **fields: object) -> None:
    """Update the record in place (never by rename: the lock lives on this inode)."""
    record = {**read_record(path), **fields}
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(record, sort_keys=True) + "\n").encode())
    finally:
        os.close(fd)


def lock_pids(path: Path, proc_locks: str | None = None) -> list[int]:
    """PIDs /proc/locks names as holding a FLOCK on the file (normally one)."""
    try:
        st = os.stat(path)
    except OSError:
        return []
    text = Path("/proc/locks").read_text() if proc_locks is None else proc_locks
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    pids = []
    for line in text.splitlines():
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 24037 fe:00:16637955 0 EOF" (blocked waiters carry "->" and are skipped)
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[3] == "WRITE" and fields[5] == device:
            pids.append(int(fields[4]))
    return pids


def holder(path: Path) -> Holder:
    """Who holds the lock now: the kernel's PID, that process's command and start time, the record's run id."""
    record = read_record(path)
    pids = lock_pids(path)
    pid = pids[0] if pids else int(str(record.get("pid", 0)) or 0)
    run_id = str(record.get("run_id") or "")
    # The record may name a child of the kernel's holder (ansible-playbook under scripts/lab.sh or flock);
    # its run id still belongs to the run that holds the lock, since only a holder writes the record.
    return Holder(pid=pid, command=process_command(pid), started=process_start(pid), run_id=run_id)


def _inherited_descriptor(path: Path) -> int | None:
    """A descriptor this process inherited on the lock file (from scripts/lab.sh or `flock FILE cmd`)."""
    try:
        target = os.stat(path)
    except OSError:
        return None
    for entry in Path("/proc/self/fd").iterdir():
        try:
            st = os.stat(entry)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino):
            return int(entry.name)
    return None


class Refused(Exception):
    """Another process holds the lock."""

    def __init__(self, path: Path, who: Holder) -> None:
        self.path = path
        self.holder = who
        super().__init__(
            f"another lab run holds the run lock {path}: {who.describe()}. Lab names are fixed, so two runs would "
            "destroy each other's instances; wait for it to end (its teardown and exit release the lock) or stop it.")


def acquire(path: Path | None = None) -> int:
    """Take the lock without waiting and return its descriptor (kept open, close-on-exec, until the process ends).

    An inherited descriptor on the file is used when this process's parent took the lock for it.
    Raises Refused, naming the holder, when another process holds it.
    """
    path = path or lock_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    inherited = _inherited_descriptor(path)
    if inherited is not None:
        try:
            fcntl.flock(inherited, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # a descriptor on the file, but not the holder's: take the lock as anyone would
        else:
            os.set_inheritable(inherited, False)  # daemons the run starts must not keep the lab locked
            return inherited
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise Refused(path, holder(path)) from None
    return fd


def take(path: Path | None = None) -> int:
    """acquire() and write this process's record (PID, start time, command; the run id comes later)."""
    path = path or lock_path()
    fd = acquire(path)
    pid = os.getpid()
    write_record(path, pid=pid, started=process_start(pid), command=process_command(pid), run_id="")
    return fd


_held_by_this_process: list[int] = []


def hold_for_process(path: Path | None = None) -> int:
    """take() once per process and keep the lock until the process ends (test harnesses whose set-up, checks and
    teardown are several playbooks). The descriptor is inheritable: pass it (``pass_fds``) to the playbooks."""
    if not _held_by_this_process:
        fd = take(path)
        os.set_inheritable(fd, True)
        _held_by_this_process.append(fd)
    return _held_by_this_process[0]


def main(argv: list[str]) -> int:
    """``runlock.py describe``: print who holds the lock (for shell scripts that failed to take it)."""
    if argv[1:] != ["describe"]:
        print("usage: runlock.py describe", file=sys.stderr)
        return 2
    path = lock_path()
    print(str(Refused(path, holder(path))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
