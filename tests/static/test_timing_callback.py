"""The vnflab_timing callback (callback_plugins/vnflab_timing.py) on a real ansible-playbook run: a throttled
task's hosts start one after another, and each host's record starts when its own worker did, so the time a host
waits for its turn is counted neither in its phase nor as Ansible's overhead (scripts/bench.sh)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")

PLAY = """
- name: Two hosts, one at a time
  hosts: all
  gather_facts: false
  tasks:
    - name: Half a second each
      ansible.builtin.command: sleep 0.5
      changed_when: false
      throttle: 1
"""


def test_a_throttled_hosts_record_starts_when_its_worker_did(tmp_path: Path) -> None:
    (tmp_path / "play.yml").write_text(PLAY)
    timing = tmp_path / "timing.jsonl"
    done = subprocess.run(
        [PLAYBOOK, "-i", "first,second,", "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}",
         str(tmp_path / "play.yml")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
        env=dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), VNFLAB_TIMING_FILE=str(timing),
                 VNFLAB_RUN_LOCK=str(tmp_path / "run.lock")))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    tasks = [record for line in timing.read_text().splitlines()
             if (record := json.loads(line)).get("event") == "task" and record["task"] == "Half a second each"]
    assert sorted(record["host"] for record in tasks) == ["first", "second"]
    earlier, later = sorted(tasks, key=lambda record: record["start"])
    assert later["start"] >= earlier["end"] - 0.05, (earlier, later)  # the second waited for the first
    for record in tasks:
        assert 0.45 <= record["end"] - record["start"] < 5, record  # its own half second, not its wait
