"""The pre-flight play's fallbacks for platform variables are the platform roles' own defaults, and site.yml runs
it right after the input validation, before the first play that changes a host."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
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


def test_a_controller_without_room_for_the_journals_stops_the_run_naming_the_variable(tmp_path: Path) -> None:
    # The validation play checks it before it opens the run directory. The results directory does not exist yet:
    # its nearest existing parent's file system is judged.
    env = {**os.environ, "VNFLAB_RESULTS_DIR": str(tmp_path / "results" / "not-yet"), "ANSIBLE_NOCOLOR": "1",
           "VNFLAB_RUN_LOCK": str(tmp_path / "run.lock")}
    overrides = json.dumps({"vnflab_platforms": ["docker"], "vnflab_preflight_results_mb": 10**9})
    done = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "site.yml", "--tags", "preflight",
                           "-e", overrides], cwd=ROOT, env=env, capture_output=True, text=True, check=False,
                          timeout=300)
    assert done.returncode != 0, done.stdout[-3000:]
    text = " ".join(done.stdout.split())
    assert "vnflab_preflight_results_mb (free space for vnflab_results_dir on the controller): " \
           "1000000000 MB free needed under " + str(tmp_path / "results" / "not-yet") in text, done.stdout[-3000:]
    assert not (tmp_path / "results").exists()


def test_the_controller_check_passes_with_room(tmp_path: Path) -> None:
    env = {**os.environ, "VNFLAB_RESULTS_DIR": str(tmp_path / "results"), "ANSIBLE_NOCOLOR": "1",
           "VNFLAB_RUN_LOCK": str(tmp_path / "run.lock")}
    done = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "site.yml", "--tags", "preflight",
                           "-e", json.dumps({"vnflab_platforms": ["docker"], "vnflab_preflight_results_mb": 1})],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
