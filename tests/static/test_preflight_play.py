"""The pre-flight play's fallbacks for platform variables are the platform roles' own defaults, and site.yml runs
it right after the input validation, before the first play that changes a host."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PREFLIGHT = (ROOT / "playbooks/preflight.yml").read_text()


@pytest.mark.parametrize(("role", "variable"), [
    ("platform_kvm", "platform_kvm_memory_mb"),
    ("platform_kvm", "platform_kvm_vm_overhead_mb"),
    ("platform_xen", "platform_xen_memory_mb"),
    ("platform_xen", "platform_xen_dom0_memory_mb"),
])
def test_fallbacks_are_the_role_defaults(role: str, variable: str) -> None:
    defaults = yaml.safe_load((ROOT / "roles" / role / "defaults/main.yml").read_text())
    fallbacks = {int(value) for value in re.findall(rf"{variable} \| default\((\d+)\)", PREFLIGHT)}
    assert fallbacks == {defaults[variable]}


def test_site_runs_the_preflight_after_validation_and_before_the_lab() -> None:
    imports = [entry["ansible.builtin.import_playbook"] for entry in yaml.safe_load((ROOT / "site.yml").read_text())]
    assert imports[:3] == ["playbooks/validate.yml", "playbooks/preflight.yml", "playbooks/lab.yml"]


def test_the_preflight_runs_with_every_tag_and_alone() -> None:
    for play in yaml.safe_load(PREFLIGHT):
        assert set(play["tags"]) == {"preflight", "always"}, play["name"]
