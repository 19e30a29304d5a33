"""The run lock's parts that need no second process: /proc/locks parsing, the record, inheritance."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

from vnflab.run import runlock


def test_lock_pids_reads_the_flock_holders_of_this_file_only(tmp_path: Path) -> None:
    lock = tmp_path / "run.lock"
    lock.touch()
    st = os.stat(lock)
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}"
    proc_locks = (f"1: FLOCK  ADVISORY  WRITE 4242 {device}:{st.st_ino} 0 EOF\n"
                  f"1: -> FLOCK  ADVISORY  WRITE 4343 {device}:{st.st_ino} 0 EOF\n"
                  f"2: POSIX  ADVISORY  WRITE 77 {device}:{st.st_ino} 0 EOF\n"
                  f"3: FLOCK  ADVISORY  WRITE 88 {device}:{st.st_ino + 1} 0 EOF\n")
    assert runlock.lock_pids(lock, proc_locks) == [4242]


def test_the_record_is_rewritten_in_place_keeping_the_inode(tmp_path: Path) -> None:
    lock = tmp_path / "run.lock"
    fd = runlock.take(lock)
    try:
        inode = os.stat(lock).st_ino
        runlock.write_record(lock, run_id="20261207T000000Z-abcdef")
        record = runlock.read_record(lock)
        assert record["pid"] == os.getpid()
        assert record["run_id"] == "20261207T000000Z-abcdef"
        assert os.stat(lock).st_ino == inode
        who = runlock.holder(lock)
        assert who.pid == os.getpid() and who.run_id == "20261207T000000Z-abcdef"
        assert who.started.endswith("Z") and sys.executable.split("/")[-1] in who.command
    finally:
        os.close(fd)


def test_another_process_is_refused_naming_the_holder(tmp_path: Path) -> None:
    lock = tmp_path / "run.lock"
    fd = runlock.take(lock)
    try:
        runlock.write_record(lock, run_id="20261207T000000Z-abcdef")
        done = subprocess.run([sys.executable, "-c", "from pathlib import Path; from vnflab.run import runlock; "
                               f"runlock.acquire(Path({str(lock)!r}))"], capture_output=True, text=True, check=False)
    finally:
        os.close(fd)
    assert done.returncode != 0
    assert f"another lab run holds the run lock {lock}: PID {os.getpid()} (" in done.stderr, done.stderr
    assert "run id 20261207T000000Z-abcdef" in done.stderr


def test_the_lock_goes_when_its_descriptor_closes(tmp_path: Path) -> None:
    lock = tmp_path / "run.lock"
    os.close(runlock.take(lock))
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)
