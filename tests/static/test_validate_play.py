"""The validate play (run first by site.yml) refuses bad per-server settings before a lab is touched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")


def validate(tmp_path: Path, **extra: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VNFLAB_RESULTS_DIR": str(tmp_path / "results"), "ANSIBLE_NOCOLOR": "1",
           "VNFLAB_RUN_LOCK": str(tmp_path / "run.lock")}  # the test's own lock: it may run beside a lab
    overrides = json.dumps({"vnflab_platforms": ["docker"], **extra})
    return subprocess.run([PLAYBOOK, "playbooks/validate.yml", "-e", overrides],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=120)


@pytest.mark.parametrize("value", ["-1", "many", "1.5", [2]])
def test_a_bad_allowance_of_failed_starts_fails_naming_the_server_and_variable(tmp_path: Path, value: object) -> None:
    done = validate(tmp_path, vnflab_max_failed_batches=value)
    assert done.returncode != 0
    assert "coreos: vnflab_max_failed_batches must be a whole number of at least 0" in done.stdout, done.stdout


def test_the_allowance_of_failed_starts_is_in_the_manifest(tmp_path: Path) -> None:
    done = validate(tmp_path, vnflab_max_failed_batches=6)
    assert done.returncode == 0, done.stdout
    [parameters] = (tmp_path / "results").glob("*/manifest.d/parameters.json")
    assert json.loads(parameters.read_text())["parameters"]["max_failed_batches"] == {"docker": 6}
