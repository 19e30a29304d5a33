# Copyright: vnflab contributors
# Apache License 2.0
"""The host settings the lab changes, recorded before it changes them and put back on teardown.

A record is one JSON file on the host. Each setting is recorded once, the first time a run asks (so a killed
run's record survives, and the next teardown still restores the host as it was before the first run):

- sysctls: the value, or None where the key did not exist (a module the lab loaded adds keys);
- modules: whether the module was loaded;
- iptables policies: the built-in chain's policy (dockerd turns FORWARD to DROP);
- files: the content, or None where the file did not exist (/etc/docker/daemon.json);
- units: systemd's enabled/active/masked words for a unit (where systemd runs).

The reading and the planning are pure functions over a Host interface, so tests need neither root nor a host.
"""

from __future__ import annotations

import base64
from typing import Any, Protocol


class Host(Protocol):
    """What the record needs from a host."""

    def sysctl(self, key: str) -> str | None: ...
    def module_loaded(self, name: str) -> bool: ...
    def policy(self, chain: str) -> str | None: ...
    def read_file(self, path: str) -> bytes | None: ...
    def unit(self, name: str) -> dict[str, str] | None: ...


def snapshot(host: Host, record: dict[str, Any], sysctls: list[str], modules: list[str], policies: list[str],
             files: list[str], units: list[str]) -> dict[str, Any]:
    """The record with every setting it does not hold yet read from the host (settings it holds are kept)."""
    new = {kind: dict(record.get(kind) or {}) for kind in ("sysctls", "modules", "policies", "files", "units")}
    for key in sysctls:
        new["sysctls"].setdefault(key, host.sysctl(key))
    for name in modules:
        new["modules"].setdefault(name, host.module_loaded(name))
    for chain in policies:
        new["policies"].setdefault(chain, host.policy(chain))
    for path in files:
        if path not in new["files"]:
            content = host.read_file(path)
            new["files"][path] = None if content is None else base64.b64encode(content).decode()
    for name in units:
        if name not in new["units"]:
            new["units"][name] = host.unit(name)
    return new


def plan(host: Host, record: dict[str, Any]) -> list[dict[str, Any]]:
    """What to do to put the host back as the record says, in order: files, units, policies, then modules before
    sysctls (a module that goes takes its keys with it) - only what differs now."""
    steps: list[dict[str, Any]] = []
    for path, encoded in sorted((record.get("files") or {}).items()):
        content = None if encoded is None else base64.b64decode(encoded)
        if host.read_file(path) != content:
            steps.append({"kind": "file", "name": path, "content": encoded})
    for name, was in sorted((record.get("units") or {}).items()):
        now = host.unit(name)
        if was is not None and now is not None and now != was:
            steps.append({"kind": "unit", "name": name, "was": was, "now": now})
    for chain, policy in sorted((record.get("policies") or {}).items()):
        if policy is not None and host.policy(chain) != policy:
            steps.append({"kind": "policy", "name": chain, "value": policy})
    for name, loaded in sorted((record.get("modules") or {}).items()):
        if not loaded and host.module_loaded(name):
            steps.append({"kind": "module", "name": name, "value": "unload"})
    for key, value in sorted((record.get("sysctls") or {}).items()):
        if value is not None and host.sysctl(key) not in (None, value):
            steps.append({"kind": "sysctl", "name": key, "value": value})
    return steps


def unit_commands(name: str, was: dict[str, str], now: dict[str, str]) -> list[list[str]]:
    """systemctl commands that take a unit from now back to was (masked, enabled, active words)."""
    commands = []
    if was.get("masked") != now.get("masked"):
        commands.append(["systemctl", "mask" if was.get("masked") == "yes" else "unmask", name])
    if was.get("enabled") != now.get("enabled") and was.get("masked") != "yes":
        if was.get("enabled") in ("enabled", "disabled"):
            commands.append(["systemctl", "enable" if was["enabled"] == "enabled" else "disable", name])
    if was.get("active") != now.get("active"):
        commands.append(["systemctl", "start" if was.get("active") == "active" else "stop", name])
    return commands
