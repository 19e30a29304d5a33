# Copyright: vnflab contributors
# Apache License 2.0
"""Thin, testable wrapper over iproute2 for network namespaces, veths and bridges."""

from __future__ import annotations

import json
from typing import Callable, Sequence

Runner = Callable[[list[str]], "tuple[int, str, str]"]


class IpError(Exception):
    pass


class NetnsRef:
    """Where a command runs: the current namespace, a named namespace, or a process's namespace."""

    def __init__(self, name: str | None = None, pid: int | None = None) -> None:
        if name and pid:
            raise ValueError("give a namespace name or a pid, not both")
        self.name = name
        self.pid = pid

    def prefix(self) -> list[str]:
        if self.pid:
            return ["nsenter", "-t", str(self.pid), "-n", "--"]
        return []

    def ip(self, *args: str) -> list[str]:
        if self.name:
            return ["ip", "-n", self.name, *args]
        return [*self.prefix(), "ip", *args]

    def link_target(self) -> list[str]:
        """Arguments of ``ip link set DEV netns X`` that move a device here."""
        if self.pid:
            return ["netns", str(self.pid)]
        if self.name:
            return ["netns", self.name]
        raise ValueError("the current namespace is not a move target")


class IpRoute:
    def __init__(self, run: Runner) -> None:
        self._run = run

    def _call(self, argv: Sequence[str]) -> str:
        rc, out, err = self._run(list(argv))
        if rc != 0:
            raise IpError(f"{' '.join(argv)}: {err.strip() or out.strip()}")
        return out

    def netns_list(self) -> list[str]:
        out = self._call(["ip", "-j", "netns", "list"])
        return [entry["name"] for entry in json.loads(out or "[]")]

    def netns_add(self, name: str) -> None:
        self._call(["ip", "netns", "add", name])

    def netns_delete(self, name: str) -> None:
        self._call(["ip", "netns", "delete", name])

    def link(self, where: NetnsRef, name: str) -> dict | None:
        rc, out, _err = self._run(where.ip("-j", "-d", "link", "show", "dev", name))
        if rc != 0:
            return None
        entries = json.loads(out or "[]")
        return entries[0] if entries else None

    def addresses(self, where: NetnsRef, name: str) -> list[str]:
        out = self._call(where.ip("-j", "-4", "addr", "show", "dev", name))
        result = []
        for entry in json.loads(out or "[]"):
            for info in entry.get("addr_info", []):
                result.append(f"{info['local']}/{info['prefixlen']}")
        return result

    def routes(self, where: NetnsRef, to: str) -> list[dict]:
        out = self._call(where.ip("-j", "-4", "route", "show", "to", "exact", to))
        return json.loads(out or "[]")

    def run(self, where: NetnsRef, *args: str) -> None:
        self._call(where.ip(*args))
