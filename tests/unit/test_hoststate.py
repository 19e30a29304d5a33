"""Host settings the lab changes: recorded once before the first change, put back by the teardown
(module_utils/vnflab_host/hoststate.py), on a fake host."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from ansible.module_utils.vnflab_host.hoststate import plan, snapshot, unit_commands


@dataclass
class FakeHost:
    sysctls: dict[str, str] = field(default_factory=dict)
    modules: set[str] = field(default_factory=set)
    policies: dict[str, str] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    units: dict[str, dict[str, str]] = field(default_factory=dict)

    def sysctl(self, key: str) -> str | None:
        return self.sysctls.get(key)

    def module_loaded(self, name: str) -> bool:
        return name in self.modules

    def policy(self, chain: str) -> str | None:
        return self.policies.get(chain)

    def read_file(self, path: str) -> bytes | None:
        return self.files.get(path)

    def unit(self, name: str) -> dict[str, str] | None:
        return self.units.get(name)


DAEMON = "/etc/docker/daemon.json"
SETTINGS = {"sysctls": ["net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables"], "modules": ["br_netfilter"],
            "policies": ["FORWARD"], "files": [DAEMON, "/etc/other.json"], "units": ["apt-cacher-ng.service"]}


def before() -> FakeHost:
    return FakeHost(sysctls={"net.ipv4.ip_forward": "0"}, policies={"FORWARD": "ACCEPT"},
                    files={DAEMON: b'{"log-driver": "journald"}\n'},
                    units={"apt-cacher-ng.service": {"active": "active", "enabled": "enabled", "masked": "no"}})


def after_dockerd(host: FakeHost) -> FakeHost:
    """What dockerd, the lab's daemon.json and the mask of the apt proxy's unit do to the host."""
    host.sysctls.update({"net.ipv4.ip_forward": "1", "net.bridge.bridge-nf-call-iptables": "1"})
    host.modules.add("br_netfilter")
    host.policies["FORWARD"] = "DROP"
    host.files[DAEMON] = b'{"bip": "198.19.252.1/24", "log-driver": "journald"}\n'
    host.files["/etc/other.json"] = b"{}"
    host.units["apt-cacher-ng.service"] = {"active": "inactive", "enabled": "masked", "masked": "yes"}
    return host


def test_the_record_keeps_what_it_holds_and_adds_only_what_it_lacks() -> None:
    host = before()
    record = snapshot(host, {}, **SETTINGS)
    assert record["sysctls"] == {"net.ipv4.ip_forward": "0", "net.bridge.bridge-nf-call-iptables": None}
    assert record["modules"] == {"br_netfilter": False}
    assert record["files"] == {DAEMON: base64.b64encode(b'{"log-driver": "journald"}\n').decode(),
                               "/etc/other.json": None}
    # A second run (or a killed run's successor) records again after the lab changed things: the first values stay.
    again = snapshot(after_dockerd(host), record, **SETTINGS)
    assert again == record


def test_the_plan_puts_back_only_what_differs_modules_before_sysctls() -> None:
    record = snapshot(before(), {}, **SETTINGS)
    steps = plan(after_dockerd(before()), record)
    assert [(step["kind"], step["name"]) for step in steps] == [
        ("file", DAEMON), ("file", "/etc/other.json"), ("unit", "apt-cacher-ng.service"), ("policy", "FORWARD"),
        ("module", "br_netfilter"), ("sysctl", "net.ipv4.ip_forward")]
    assert steps[1]["content"] is None  # a file the lab created goes
    assert plan(before(), record) == []


def test_unit_commands_undo_a_mask_and_restart_what_ran() -> None:
    was = {"active": "active", "enabled": "enabled", "masked": "no"}
    now = {"active": "inactive", "enabled": "masked", "masked": "yes"}
    assert unit_commands("apt-cacher-ng.service", was, now) == [
        ["systemctl", "unmask", "apt-cacher-ng.service"], ["systemctl", "enable", "apt-cacher-ng.service"],
        ["systemctl", "start", "apt-cacher-ng.service"]]
    assert unit_commands("docker.service", {"active": "inactive", "enabled": "disabled", "masked": "no"},
                         {"active": "active", "enabled": "enabled", "masked": "no"}) == [
        ["systemctl", "disable", "docker.service"], ["systemctl", "stop", "docker.service"]]
