#!/usr/bin/env python3
"""Run one vnflab probe call and print its result as JSON (used inside a network namespace).

Usage: probe_runner.py '<json job>'
  {"call": "measure", "mode": "icmp"|"udp", "udp_port": 7007, "targets": {...}, "payload_bytes": N,
   "samples": N, "warmup": N, "interval_s": S, "timeout_s": S}
  {"call": "boot", "addresses": [...], "deadline_s": S, "poll_interval_s": S, "max_pps": N,
   "give_up": {address: reason}, "give_up_every_s": S, "give_up_sleep_s": S}
   (give_up: those addresses are dead; give_up_sleep_s: a health check that takes that long and finds none)
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import install_module_utils_path  # tests/conftest.py (stdlib only)

install_module_utils_path()

from ansible.module_utils.vnflab_host.boot_probe import wait_first_replies
from ansible.module_utils.vnflab_host.rtt_probe import EchoProber


def main() -> int:
    job = json.loads(sys.argv[1])
    if job["call"] == "measure":
        with EchoProber(job["mode"], udp_port=job.get("udp_port", 7007)) as prober:
            result = prober.measure(
                job["targets"],
                job["payload_bytes"],
                job["samples"],
                job["warmup"],
                job["interval_s"],
                job["timeout_s"],
            )
        print(json.dumps(result.as_dict()))
    elif job["call"] == "boot":
        dead: dict[str, str] = job.get("give_up") or {}
        sleep_s: float = job.get("give_up_sleep_s", 0.0)

        def give_up(pending: list[str]) -> dict[str, str]:
            time.sleep(sleep_s)
            return {a: dead[a] for a in pending if a in dead}

        boot = wait_first_replies(
            job["addresses"], job["deadline_s"], job["poll_interval_s"], job["max_pps"],
            give_up=give_up if dead or sleep_s else None, give_up_every_s=job.get("give_up_every_s", 5.0))
        print(json.dumps(boot.as_dict()))
    else:
        raise SystemExit(f"unknown call {job['call']!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
