"""scripts/lab.sh: the teardown gets the user's inventory (never their tags), run with a fake ansible-playbook."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_lab_sh(tmp_path: Path, *args: str) -> list[str]:
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "lab.sh", tmp_path / "scripts" / "lab.sh")
    (tmp_path / "scripts" / "install.sh").write_text("exit 0\n")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "activate").write_text(f'PATH="{bin_dir}:$PATH"\n')
    log = tmp_path / "calls"
    fake = bin_dir / "ansible-playbook"
    fake.write_text(f'#!/bin/bash\nprintf "%s\\n" "$*" >> "{log}"\n')
    fake.chmod(0o755)
    done = subprocess.run(["bash", str(tmp_path / "scripts" / "lab.sh"), *args], capture_output=True, text=True,
                          timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    return log.read_text().splitlines()


@pytest.mark.parametrize(("args", "teardown"), [
    ((), "site.yml --tags teardown"),
    (("-i", "inventory/example-real", "--tags", "response"), "site.yml -i inventory/example-real --tags teardown"),
    (("--inventory=inv/x", "-e", "vnflab_profile=quick"), "site.yml --inventory=inv/x --tags teardown"),
    (("-iinv/y",), "site.yml -iinv/y --tags teardown"),
])
def test_teardown_gets_the_users_inventory_and_nothing_else(tmp_path: Path, args: tuple[str, ...],
                                                            teardown: str) -> None:
    calls = run_lab_sh(tmp_path, *args)
    assert calls == [" ".join(("site.yml", *args)), teardown]
