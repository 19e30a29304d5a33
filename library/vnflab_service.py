#!/usr/bin/python
# Copyright: vnflab contributors
# Apache License 2.0
"""Ansible module: a supervised lab service on hosts without systemd."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vnflab_service
short_description: Start or stop a lab service under vnflab_supervise on a host without systemd
description:
  - Network-namespace hosts of the local lab have no init system. This module keeps one command running under
    C(vnflab_supervise.py) (restarted when it exits) and stops it again, idempotently.
  - Hosts with systemd use a unit file instead (see the host_b role).
version_added: "0.1.0"
author: vnflab contributors
options:
  name:
    description: Service name; names the pid and log files.
    type: str
    required: true
  state:
    description: C(started) runs the supervisor unless it is already alive; C(stopped) sends it SIGTERM and waits.
    type: str
    choices: [started, stopped]
    default: started
  command:
    description: Argv of the supervised command (needed for O(state=started)).
    type: list
    elements: str
  supervisor:
    description: Path of vnflab_supervise.py on the host.
    type: path
    default: /usr/local/lib/vnflab/vnflab_supervise.py
  run_dir:
    description: Directory of the pid files.
    type: path
    default: /run/vnflab
  log_dir:
    description: Directory of the log files.
    type: path
    default: /var/log/vnflab
  stop_timeout_s:
    description: Seconds to wait for the supervisor to exit after SIGTERM before SIGKILL.
    type: float
    default: 15
extends_documentation_fragment:
  - vnflab_attributes
  - vnflab_attributes.check_mode_full
"""

EXAMPLES = r"""
- name: UDP echo service on Host B
  vnflab_service:
    name: vnflab-b-udp-echo
    command: [/usr/bin/python3, /usr/local/lib/vnflab/vnflab_udp_echo.py, --bind, 0.0.0.0, --port, "7007"]
"""

RETURN = r"""
pid:
  description: PID of the supervisor (null when stopped).
  returned: always
  type: int
  sample: 4242
pidfile:
  description: The supervisor's pid file.
  returned: always
  type: str
  sample: /run/vnflab/vnflab-b-udp-echo.pid
"""

import os
import signal
import time

from ansible.module_utils.basic import AnsibleModule


def read_pid(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as handle:
            return int(handle.read().strip() or "0") or None
    except (OSError, ValueError):
        return None


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2:][:1] not in (b"Z", b"X", b"")


def process_start(pid: int) -> float | None:
    """When a process started (seconds since the epoch), None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
        with open("/proc/stat", encoding="ascii") as handle:
            boot = next(float(line.split()[1]) for line in handle if line.startswith("btime "))
    except (OSError, StopIteration):
        return None
    ticks = int(stat[stat.rfind(b")") + 2:].split()[19])
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def supervises(pid: int | None, pidfile: str, supervisor: str) -> bool:
    """Whether the live process the pid file names is the supervisor that wrote it: its command line runs the
    supervisor with this pid file, and it started before the file was written (a process that started later
    got a recycled PID). A stale pid file must never get another process killed."""
    if not alive(pid):
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            argv = [part.decode(errors="replace") for part in handle.read().split(b"\0") if part]
        written = os.stat(pidfile).st_mtime
    except OSError:
        return False
    started = process_start(pid)  # type: ignore[arg-type]
    runs_supervisor = any(os.path.basename(arg) == os.path.basename(supervisor) for arg in argv)
    return runs_supervisor and pidfile in argv and started is not None and started <= written + 1.0


def wait_gone(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return not alive(pid)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", default="started", choices=["started", "stopped"]),
            command=dict(type="list", elements="str"),
            supervisor=dict(type="path", default="/usr/local/lib/vnflab/vnflab_supervise.py"),
            run_dir=dict(type="path", default="/run/vnflab"),
            log_dir=dict(type="path", default="/var/log/vnflab"),
            stop_timeout_s=dict(type="float", default=15.0),
        ),
        required_if=[("state", "started", ("command",))],
        supports_check_mode=True,
    )
    params = module.params
    pidfile = os.path.join(params["run_dir"], f"{params['name']}.pid")
    logfile = os.path.join(params["log_dir"], f"{params['name']}.log")
    pid = read_pid(pidfile)
    running = supervises(pid, pidfile, params["supervisor"])
    stale = bool(pid and not running and alive(pid))
    if stale:
        module.warn(f"{pidfile} names PID {pid}, which is not its supervisor (another command, or started after "
                    "the file was written): the file is stale, and that process is left alone")
        if not module.check_mode:
            os.unlink(pidfile)
    if params["state"] == "started":
        if running:
            module.exit_json(changed=False, pid=pid, pidfile=pidfile)
        if module.check_mode:
            module.exit_json(changed=True, pid=None, pidfile=pidfile)
        os.makedirs(params["run_dir"], exist_ok=True)
        os.makedirs(params["log_dir"], exist_ok=True)
        argv = [module.get_bin_path("python3", required=True), params["supervisor"],
                "--pidfile", pidfile, "--log", logfile, "--", *params["command"]]
        rc, out, err = module.run_command(argv)
        new_pid = read_pid(pidfile)
        if rc != 0 or not alive(new_pid):
            module.fail_json(msg=f"service {params['name']} did not start (rc={rc}): {err or out}", pidfile=pidfile)
        module.exit_json(changed=True, pid=new_pid, pidfile=pidfile)
    if not running:
        module.exit_json(changed=stale, pid=None, pidfile=pidfile)
    if not module.check_mode:
        os.kill(pid, signal.SIGTERM)
        if not wait_gone(pid, params["stop_timeout_s"]):
            os.kill(pid, signal.SIGKILL)
            wait_gone(pid, 5.0)
    module.exit_json(changed=True, pid=None, pidfile=pidfile)


if __name__ == "__main__":
    main()
