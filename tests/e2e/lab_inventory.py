"""Which platforms a lab test runs, read from the inventory (never a hard-coded list of names).

A VNF server is *emulated* when its host_vars define ``vnflab_emulated_server`` (a QEMU VM booting a
whole server, reached over SSH): standing it up takes about ten minutes, so tests treat its platform
as heavy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
LOCAL = ROOT / "inventory" / "local"


@dataclass(frozen=True)
class Server:
    host: str
    platform: str
    variables: dict[str, Any]

    @property
    def emulated(self) -> bool:
        return "vnflab_emulated_server" in self.variables


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()) or {}


def _host_vars(inventory: Path, host: str) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    single = inventory / "host_vars" / f"{host}.yml"
    if single.is_file():
        merged.update(_load(single))
    directory = inventory / "host_vars" / host
    if directory.is_dir():
        for part in sorted(directory.glob("*.yml")):
            merged.update(_load(part))
    return merged


def vnf_servers(inventory: Path = LOCAL) -> list[Server]:
    """The hosts of group vnf_servers with their variables (inline in hosts.yml, then host_vars/)."""
    hosts = _load(inventory / "hosts.yml")["all"]["children"]["vnf_servers"]["hosts"] or {}
    servers = []
    for host, inline in hosts.items():
        variables = dict(inline or {})
        variables.update(_host_vars(inventory, host))
        servers.append(Server(host=host, platform=str(variables["vnflab_platform"]), variables=variables))
    return servers


def selected_platforms(inventory: Path = LOCAL) -> list[str]:
    """vnflab_platforms of the inventory's group_vars/all."""
    for part in sorted((inventory / "group_vars" / "all").glob("*.yml")):
        platforms = _load(part).get("vnflab_platforms")
        if platforms is not None:
            return [str(p) for p in platforms]
    raise AssertionError(f"{inventory}: no vnflab_platforms in group_vars/all")


def selected_servers(inventory: Path = LOCAL) -> list[Server]:
    """The server of each selected platform, in the order of vnflab_platforms."""
    by_platform = {server.platform: server for server in vnf_servers(inventory)}
    missing = [p for p in selected_platforms(inventory) if p not in by_platform]
    assert not missing, f"{inventory}: no VNF server serves {missing}"
    return [by_platform[p] for p in selected_platforms(inventory)]


def light_platforms(inventory: Path = LOCAL) -> list[str]:
    """Selected platforms whose server runs on this machine directly (not an emulated server)."""
    return [server.platform for server in selected_servers(inventory) if not server.emulated]
