#!/usr/bin/env python3
"""vnflab_supervise: keep one command running on hosts without systemd (e.g. network namespaces).

Usage: vnflab_supervise.py --pidfile F --log F [options] -- CMD [ARGS...]

Daemonizes (double fork, setsid), writes its own PID to --pidfile, runs CMD in a new session with
stdout and stderr appended to --log, and restarts it whenever it exits: backoff doubles from
--min-backoff to --max-backoff (reset after a run of --reset-after seconds) and at most
--max-starts starts happen per --window seconds. SIGTERM (or SIGINT/SIGHUP) is forwarded to the
child's process group; after --stop-timeout seconds the group gets SIGKILL; then the supervisor
removes its pidfile(s) and exits 0. The invoking process returns once the pidfile is written
(exit 0) or daemonizing failed (exit 1). Real servers use systemd units instead.
Python 3 standard library only.
"""

from __future__ import annotations

import argparse
import collections
import os
import signal
import subprocess
import sys
import time
from types import FrameType

_stop_signal: int | None = None
_child: subprocess.Popen[bytes] | None = None


def log(message: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime())
    sys.stderr.write(f"{stamp} vnflab_supervise[{os.getpid()}]: {message}\n")
    sys.stderr.flush()


def pid_alive(pid: int) -> bool:
    """True if pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return False
    state = stat[stat.rfind(b")") + 2 :][:1]
    return state not in (b"Z", b"X", b"")


def read_pid(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as handle:
            return int(handle.read().strip() or "0") or None
    except (OSError, ValueError):
        return None


def write_pid(path: str, pid: int) -> None:
    tmp = f"{path}.{pid}.tmp"
    with open(tmp, "w", encoding="ascii") as handle:
        handle.write(f"{pid}\n")
    os.replace(tmp, path)


def remove_pidfile(path: str | None, pid: int) -> None:
    if path and read_pid(path) == pid:
        try:
            os.unlink(path)
        except OSError:
            pass


def _signal_child(signum: int) -> None:
    child = _child
    if child is not None and child.returncode is None:  # not reaped yet: its PID is still ours
        try:
            os.killpg(child.pid, signum)  # the child leads its own session and process group
        except OSError:
            try:
                child.send_signal(signum)
            except OSError:
                pass


def _on_stop(signum: int, _frame: FrameType | None) -> None:
    global _stop_signal
    _stop_signal = signum
    _signal_child(signal.SIGTERM)


def _sleep_unless_stopped(seconds: float) -> None:
    end = time.monotonic() + seconds
    while _stop_signal is None:
        remaining = end - time.monotonic()
        if remaining <= 0:
            return
        time.sleep(min(0.1, remaining))


def daemonize(log_path: str) -> int:
    """Double fork; returns in the daemon with the write end of a pipe to report readiness on.

    The invoking process waits for b"ok" on that pipe and exits 0, or exits 1.
    """
    read_fd, write_fd = os.pipe()
    first = os.fork()
    if first > 0:  # invoking process
        os.close(write_fd)
        chunks = []
        while True:
            chunk = os.read(read_fd, 4096)
            if not chunk:
                break
            chunks.append(chunk)
        os.waitpid(first, 0)
        message = b"".join(chunks).decode(errors="replace")
        if message == "ok":
            os._exit(0)
        sys.stderr.write(f"vnflab_supervise: {message or 'daemon died before it was ready'}\n")
        os._exit(1)
    os.close(read_fd)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    os.chdir("/")
    os.umask(0o022)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    # Drop every other inherited descriptor (e.g. a caller's pipes), or the caller may wait forever.
    try:
        inherited = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        inherited = list(range(3, 1024))
    for fd in inherited:
        if fd > 2 and fd != write_fd:
            try:
                os.close(fd)
            except OSError:
                pass  # e.g. the descriptor listdir itself used
    return write_fd


def supervise(args: argparse.Namespace) -> int:
    """Run args.command until a stop signal; restart it with backoff and a start-rate bound."""
    global _child
    starts: collections.deque[float] = collections.deque()
    backoff = args.min_backoff
    while _stop_signal is None:
        now = time.monotonic()
        while starts and now - starts[0] >= args.window:
            starts.popleft()
        if len(starts) >= args.max_starts:
            wait = starts[0] + args.window - now
            log(f"{len(starts)} starts in {args.window:g} s: waiting {wait:.1f} s before the next")
            _sleep_unless_stopped(wait)
            continue
        starts.append(now)
        try:
            _child = subprocess.Popen(
                args.command, stdin=subprocess.DEVNULL, start_new_session=True, close_fds=True
            )
        except OSError as exc:
            log(f"cannot start {args.command!r}: {exc}")
        else:
            log(f"started child pid {_child.pid}: {' '.join(args.command)}")
            if args.child_pidfile:
                write_pid(args.child_pidfile, _child.pid)
            if _stop_signal is not None:
                _signal_child(signal.SIGTERM)
            code = _wait_child(_child, args.stop_timeout)
            log(f"child pid {_child.pid} exited with {code}")
            remove_pidfile(args.child_pidfile, _child.pid)
        if _stop_signal is not None:
            break
        ran = time.monotonic() - now
        if ran >= args.reset_after:
            backoff = args.min_backoff
        log(f"restarting in {backoff:g} s")
        _sleep_unless_stopped(backoff)
        backoff = min(backoff * 2, args.max_backoff)
    log(f"stopping on signal {_stop_signal}")
    return 0


def _wait_child(child: subprocess.Popen[bytes], stop_timeout: float) -> int:
    """Wait for child; after a stop signal, give it stop_timeout seconds, then SIGKILL its group."""
    stop_deadline: float | None = None
    while True:
        try:
            return child.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            pass
        if _stop_signal is None:
            continue
        if stop_deadline is None:
            stop_deadline = time.monotonic() + stop_timeout
        elif time.monotonic() >= stop_deadline:
            log(f"child pid {child.pid} ignored SIGTERM for {stop_timeout:g} s: SIGKILL")
            _signal_child(signal.SIGKILL)
            stop_deadline = time.monotonic() + 3600


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Supervise one command without systemd.")
    parser.add_argument("--pidfile", required=True, help="file for the supervisor's PID")
    parser.add_argument("--log", required=True, help="file the supervisor and the child append to")
    parser.add_argument("--child-pidfile", help="file for the current child's PID (optional)")
    parser.add_argument("--min-backoff", type=float, default=0.5, help="first restart delay (s)")
    parser.add_argument("--max-backoff", type=float, default=30.0, help="largest restart delay (s)")
    parser.add_argument(
        "--reset-after", type=float, default=10.0, help="a run this long (s) resets the backoff"
    )
    parser.add_argument("--max-starts", type=int, default=10, help="at most this many starts per window")
    parser.add_argument("--window", type=float, default=60.0, help="start-rate window (s)")
    parser.add_argument(
        "--stop-timeout",
        type=float,
        default=10.0,
        help="seconds between SIGTERM and SIGKILL of the child's group",
    )
    parser.add_argument("--foreground", action="store_true", help="do not daemonize (debugging)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")
    args = parser.parse_args(argv)
    if args.command and args.command[0] == "--":
        args.command = args.command[1:]
    if not args.command:
        parser.error("missing command after --")
    if args.min_backoff <= 0 or args.max_backoff < args.min_backoff:
        parser.error("need 0 < --min-backoff <= --max-backoff")
    if args.max_starts < 1 or args.window <= 0 or args.stop_timeout < 0 or args.reset_after < 0:
        parser.error("need --max-starts >= 1, --window > 0, --stop-timeout >= 0, --reset-after >= 0")
    for name in ("pidfile", "log", "child_pidfile"):
        value = getattr(args, name)
        if value:
            setattr(args, name, os.path.abspath(value))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    running = read_pid(args.pidfile)
    if running is not None and running != os.getpid() and pid_alive(running):
        sys.stderr.write(f"vnflab_supervise: already running as pid {running} ({args.pidfile})\n")
        return 1
    ready_fd: int | None = None
    if args.foreground:
        log_fd = os.open(args.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(log_fd, 2)
        os.close(log_fd)
    else:
        ready_fd = daemonize(args.log)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _on_stop)
    try:
        write_pid(args.pidfile, os.getpid())
    except OSError as exc:
        if ready_fd is not None:
            os.write(ready_fd, f"cannot write pidfile {args.pidfile}: {exc}".encode())
            os.close(ready_fd)
        log(f"cannot write pidfile {args.pidfile}: {exc}")
        return 1
    log(f"supervising {args.command!r}")
    if ready_fd is not None:
        os.write(ready_fd, b"ok")
        os.close(ready_fd)
    try:
        return supervise(args)
    finally:
        remove_pidfile(args.pidfile, os.getpid())
        log("exit")


if __name__ == "__main__":
    sys.exit(main())
