#!/usr/bin/python
# Copyright: vnflab contributors
# Apache License 2.0
"""Ansible module: record the host settings the lab changes, and put them back on teardown."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vnflab_host_state
short_description: Record host settings before the lab changes them, and restore them on teardown
description:
  - O(state=recorded) reads the given sysctls, kernel modules, iptables built-in chain policies, files and
    systemd units and adds each to the record O(path) unless the record already holds it. The first run's
    values are kept; a killed run's record survives, and the next teardown restores the host as it was before.
  - O(state=restored) puts back every recorded setting that differs now (a file's content or absence, a unit's
    mask, enablement and activity, a chain's policy, a module the lab loaded that nothing uses any more, a
    sysctl's value), then removes the record. A module still in use is left loaded and reported.
version_added: "0.1.0"
author: vnflab contributors
options:
  state:
    description: Record or restore.
    type: str
    choices: [recorded, restored]
    required: true
  path:
    description: The record on the host.
    type: path
    default: /var/lib/vnflab/host-state.json
  sysctls:
    description: Sysctl keys (dotted) to record.
    type: list
    elements: str
    default: []
  modules:
    description: Kernel modules whose loaded state to record.
    type: list
    elements: str
    default: []
  policies:
    description: Built-in iptables chains of the filter table whose policy to record.
    type: list
    elements: str
    default: []
  files:
    description: Files whose content (or absence) to record.
    type: list
    elements: path
    default: []
  units:
    description: systemd units whose state to record (ignored where systemd does not run).
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - vnflab_attributes
  - vnflab_attributes.check_mode_full
"""

EXAMPLES = r"""
- name: Record what dockerd will change
  vnflab_host_state:
    state: recorded
    sysctls: [net.ipv4.ip_forward]
    modules: [br_netfilter]
    policies: [FORWARD]
    files: [/etc/docker/daemon.json]
    units: [docker.service]

- name: Put it back
  vnflab_host_state:
    state: restored
  register: restored
"""

RETURN = r"""
record:
  description: The record (recorded) or the record that was restored from (restored); file contents in base64.
  returned: always
  type: dict
  sample: {"sysctls": {"net.ipv4.ip_forward": "0"}, "modules": {"br_netfilter": false}}
steps:
  description: What was (or, in check mode, would be) put back.
  returned: when state is restored
  type: list
  elements: dict
  sample: [{"kind": "sysctl", "name": "net.ipv4.ip_forward", "value": "0"}]
kept:
  description: Settings that could not be put back, with the reason (e.g. a module still in use).
  returned: when state is restored
  type: list
  elements: str
  sample: ["module br_netfilter: still in use (modprobe -r: Module br_netfilter is in use)"]
"""

import base64
import fcntl
import json
import os
import traceback
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.vnflab_host.hoststate import plan, snapshot, unit_commands


class LiveHost:
    """The host this module runs on."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.systemd = os.path.isdir("/run/systemd/system")

    def sysctl(self, key: str) -> str | None:
        try:
            with open("/proc/sys/" + key.replace(".", "/")) as handle:
                return handle.read().strip()
        except OSError:
            return None

    def module_loaded(self, name: str) -> bool:
        try:
            with open("/proc/modules") as handle:
                return any(line.split()[0] == name for line in handle)
        except FileNotFoundError:  # a kernel without loadable modules: what is built in stays
            return os.path.isdir("/sys/module/" + name)

    def policy(self, chain: str) -> str | None:
        rc, out, _ = self.module.run_command(["iptables", "-w", "-S", chain])
        for line in out.splitlines() if rc == 0 else []:
            fields = line.split()
            if fields[:2] == ["-P", chain] and len(fields) == 3:
                return fields[2]
        return None

    def read_file(self, path: str) -> bytes | None:
        try:
            with open(path, "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            return None

    def unit(self, name: str) -> dict[str, str] | None:
        if not self.systemd:
            return None
        words = {}
        for word, verb in (("active", "is-active"), ("enabled", "is-enabled")):
            _, out, _ = self.module.run_command(["systemctl", verb, name])
            words[word] = out.strip() or "unknown"
        words["masked"] = "yes" if words["enabled"] == "masked" else "no"
        return words


def read_record(path: str) -> dict[str, Any]:
    try:
        with open(path) as handle:
            return json.load(handle)
    except FileNotFoundError:
        return {}


def write_record(path: str, record: dict[str, Any]) -> None:
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    temporary = path + ".new"
    with open(temporary, "w") as handle:
        json.dump(record, handle, indent=1, sort_keys=True)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


def apply_step(module: AnsibleModule, host: LiveHost, step: dict[str, Any]) -> str | None:
    """Do one step; a reason when it could not be done."""
    kind, name = step["kind"], step["name"]
    if kind == "file":
        if step["content"] is None:
            os.remove(name)
        else:
            write_file(name, base64.b64decode(step["content"]))
        return None
    if kind == "unit":
        for command in unit_commands(name, step["was"], step["now"]):
            rc, _, err = module.run_command(command)
            if rc != 0:
                return f"unit {name}: {' '.join(command)} failed: {err.strip()}"
        return None
    if kind == "policy":
        rc, _, err = module.run_command(["iptables", "-w", "-P", name, step["value"]])
        return None if rc == 0 else f"policy {name}: iptables -P failed: {err.strip()}"
    if kind == "module":
        rc, _, err = module.run_command(["modprobe", "-r", name])
        return None if rc == 0 else f"module {name}: still in use (modprobe -r: {err.strip()})"
    if host.sysctl(name) is None:  # its module went with an earlier step
        return None
    with open("/proc/sys/" + name.replace(".", "/"), "w") as handle:
        handle.write(step["value"])
    return None


def write_file(path: str, content: bytes) -> None:
    temporary = path + ".vnflab-restore"
    with open(temporary, "wb") as handle:
        handle.write(content)
    mode = os.stat(path).st_mode & 0o7777 if os.path.exists(path) else 0o644
    os.chmod(temporary, mode)
    os.replace(temporary, path)


def remove_if_empty(directory: str) -> None:
    """The record's directory goes with the last record (the lab made it), unless something else lives there."""
    try:
        os.rmdir(directory)
    except OSError:
        pass


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["recorded", "restored"], required=True),
            path=dict(type="path", default="/var/lib/vnflab/host-state.json"),
            sysctls=dict(type="list", elements="str", default=[]),
            modules=dict(type="list", elements="str", default=[]),
            policies=dict(type="list", elements="str", default=[]),
            files=dict(type="list", elements="path", default=[]),
            units=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    params = module.params
    path = params["path"]
    host = LiveHost(module)
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        # Several lab servers may be this one machine (the local lab): one record, changed by one task at a time.
        # The lock is on the directory, so that nothing but the record is ever left in it.
        lock = os.open(directory, os.O_RDONLY)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            record = read_record(path)
            if params["state"] == "recorded":
                new = snapshot(host, record, params["sysctls"], params["modules"], params["policies"],
                               params["files"], params["units"])
                changed = new != {kind: record.get(kind) or {} for kind in new}
                if changed and not module.check_mode:
                    write_record(path, new)
                module.exit_json(changed=changed, record=new)
            steps = plan(host, record)
            kept: list[str] = []
            if not module.check_mode:
                for step in steps:
                    reason = apply_step(module, host, step)
                    if reason:
                        kept.append(reason)
                if record:
                    os.remove(path)
                remove_if_empty(directory)
        finally:
            os.close(lock)
        module.exit_json(changed=bool(steps) or bool(record), record=record, steps=steps, kept=kept)
    except Exception as exc:  # noqa: BLE001 - reported to the play with the traceback
        module.fail_json(msg=f"host state {params['state']}: {exc}", exception=traceback.format_exc())

if __name__ == "__main__":
    main()
