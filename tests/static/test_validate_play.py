"""The validate play (run first by site.yml) refuses bad inputs before a lab is touched, naming the variable.

Every bad-input case runs the real validate play and checks that it failed, that its message names the variable,
and that it failed before anything changed: no run directory was opened (the lab play, which makes the
namespaces, bridges and instances, comes after the validate play). The cases run a few at a time, in one fixture.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
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


PATH_OF_COREOS = {"a_side_cidr": "198.18.11.0/24", "b_side_cidr": "198.18.12.0/24"}

# case id -> (overrides, a text the failure must contain). The default inventory's networks: direct 198.18.0.0/24;
# coreos (docker) paths 198.18.11/12.0/24, instances 198.19.8.0/21, engine bridge 198.19.252.1/24, pools
# 198.19.248.0/22; osv (kvm) 198.18.21/22.0/24, 198.19.16.0/21; clickos (xen) management 198.18.200.0/24.
BAD_INPUTS: dict[str, tuple[dict[str, object], str]] = {
    "sizes-empty": ({"vnflab_response_sizes": []}, "vnflab_response_sizes is empty"),
    "boot-counts-empty": ({"vnflab_boot_counts": []}, "vnflab_boot_counts is empty"),
    "memory-counts-empty": ({"vnflab_memory_counts": []}, "vnflab_memory_counts is empty"),
    "sizes-repeated": ({"vnflab_response_sizes": [64, 1472, 64]}, "vnflab_response_sizes: [64] appear more than once"),
    "boot-counts-repeated": ({"vnflab_boot_counts": [1, 4, 1]}, "vnflab_boot_counts: [1] appear more than once"),
    "memory-counts-repeated": ({"vnflab_memory_counts": [4, 4]}, "vnflab_memory_counts: [4] appear more than once"),
    "size-zero": ({"vnflab_response_sizes": [0]}, "vnflab_response_sizes: every value must be between 1 and 65507"),
    "size-too-big": ({"vnflab_response_sizes": [65508]}, "vnflab_response_sizes: every value must be between 1"),
    "boot-count-zero": ({"vnflab_boot_counts": [0, 1]}, "vnflab_boot_counts: every value must be between 1 and 1024"),
    "memory-count-too-big": ({"vnflab_memory_counts": [2000]}, "vnflab_memory_counts: every value must be between"),
    "response-batch-zero": ({"vnflab_repeat": {
        "boot": {"min_samples": 1, "max_samples": 2}, "memory": {"min_samples": 1, "max_samples": 2},
        "response": {"min_samples": 20, "max_samples": 40, "batch": 0}}}, "vnflab_repeat.response: need"),
    "boot-batch-negative": ({"vnflab_repeat": {
        "boot": {"min_samples": 1, "max_samples": 2, "batch": -1}, "memory": {"min_samples": 1, "max_samples": 2},
        "response": {"min_samples": 20, "max_samples": 40}}}, "vnflab_repeat.boot: need"),
    "boot-batch-of-several": ({"vnflab_repeat": {
        "boot": {"min_samples": 1, "max_samples": 2, "batch": 4}, "memory": {"min_samples": 1, "max_samples": 2},
        "response": {"min_samples": 20, "max_samples": 40}}},
        "vnflab_repeat.boot.batch: boot measures one value per batch (one start of its instances); batch, the samples "
        "of one module run, applies to response"),
    "loss-threshold-above-one": ({"vnflab_repeat": {
        "boot": {"min_samples": 1, "max_samples": 2}, "memory": {"min_samples": 1, "max_samples": 2},
        "response": {"min_samples": 20, "max_samples": 40, "max_loss_fraction": 1.5}}}, "vnflab_repeat.response: need"),
    "server-budget-zero": ({"vnflab_repeat": {
        "boot": {"min_samples": 1, "max_samples": 2, "server_budget_s": 0},
        "memory": {"min_samples": 1, "max_samples": 2},
        "response": {"min_samples": 20, "max_samples": 40}}}, "vnflab_repeat.boot: need"),
    "budget-floor-above-pilot": ({"vnflab_repeat": {
        "boot": {"min_samples": 1, "max_samples": 2}, "memory": {"min_samples": 3, "max_samples": 6, "budget_floor": 4},
        "response": {"min_samples": 20, "max_samples": 40}}}, "vnflab_repeat.memory: need"),
    "direct-host-bits": ({"vnflab_direct_cidr": "198.18.0.1/24"},
                         "vnflab_direct_cidr = 198.18.0.1/24 has host bits set (the network is 198.18.0.0/24)"),
    "direct-overlaps-path": ({"vnflab_direct_cidr": "198.18.11.0/25"},
                             "vnflab_direct_cidr = 198.18.11.0/25 overlaps coreos: vnflab_path.a_side_cidr"),
    "direct-is-a-path": ({"vnflab_direct_cidr": "198.18.12.0/24"},
                         "vnflab_direct_cidr = 198.18.12.0/24 is the same network as coreos: vnflab_path.b_side_cidr"),
    "direct-outside-range": ({"vnflab_direct_cidr": "192.0.2.0/24"}, "vnflab_direct_cidr = 192.0.2.0/24 is outside"),
    "direct-ipv6": ({"vnflab_direct_cidr": "2001:db8::/64"}, "vnflab_direct_cidr = 2001:db8::/64 is outside"),
    "path-host-bits": ({"vnflab_path": {**PATH_OF_COREOS, "a_side_cidr": "198.18.11.7/24"}},
                       "coreos: vnflab_path.a_side_cidr = 198.18.11.7/24 has host bits set"),
    "path-sides-equal": ({"vnflab_path": {"a_side_cidr": "198.18.11.0/24", "b_side_cidr": "198.18.11.0/24"}},
                         "coreos: vnflab_path.a_side_cidr = 198.18.11.0/24 is the same network as coreos: "
                         "vnflab_path.b_side_cidr"),
    "instance-host-bits": ({"vnflab_instance_cidr": "198.19.8.1/21"},
                           "coreos: vnflab_instance_cidr = 198.19.8.1/21 has host bits set"),
    "instance-overlaps-docker-pool": ({"vnflab_instance_cidr": "198.19.248.0/21"},
                                      "coreos: vnflab_instance_cidr = 198.19.248.0/21 overlaps coreos: "
                                      "platform_docker_address_pools[0].base"),
    "docker-bridge-in-instances": ({"platform_docker_bip": "198.19.8.1/24"},
                                   "coreos: vnflab_instance_cidr = 198.19.8.0/21 overlaps coreos: platform_docker_bip"),
    "docker-pool-on-a-path": ({"platform_docker_address_pools": [{"base": "198.18.11.0/24", "size": 24}]},
                              "coreos: vnflab_path.a_side_cidr = 198.18.11.0/24 is the same network as coreos: "
                              "platform_docker_address_pools[0].base"),
    "docker-pool-host-bits": ({"platform_docker_address_pools": [{"base": "198.19.248.1/22", "size": 24}]},
                              "coreos: platform_docker_address_pools[0].base = 198.19.248.1/22 has host bits set"),
    "two-servers-one-path": ({"vnflab_platforms": ["docker", "native"], "vnflab_path": PATH_OF_COREOS},
                             "coreos: vnflab_path.a_side_cidr = 198.18.11.0/24 is the same network as native: "
                             "vnflab_path.a_side_cidr"),
    "two-servers-one-instance-network": ({"vnflab_platforms": ["docker", "kvm"],
                                          "vnflab_instance_cidr": "198.19.8.0/21"},
                                         "coreos: vnflab_instance_cidr = 198.19.8.0/21 is the same network as osv: "
                                         "vnflab_instance_cidr"),
    "direct-is-the-management-network": ({"vnflab_platforms": ["docker", "xen"],
                                          "vnflab_direct_cidr": "198.18.200.0/24"},
                                         "vnflab_direct_cidr = 198.18.200.0/24 is the same network as clickos: "
                                         "vnflab_emulated_server.address (management network)"),
}


Outcome = tuple[subprocess.CompletedProcess[str], Path]


@pytest.fixture(scope="module")
def bad_input_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """Every bad-input case through the validate play, three at a time (each is about 3 s of CPU)."""
    tmp_dirs = {case: tmp_path_factory.mktemp(case) for case in BAD_INPUTS}  # not from threads: mktemp races

    def one(case: str) -> Outcome:
        return validate(tmp_dirs[case], **BAD_INPUTS[case][0]), tmp_dirs[case]
    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(zip(BAD_INPUTS, pool.map(one, BAD_INPUTS), strict=True))


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_a_bad_input_fails_before_any_change_naming_the_variable(
        bad_input_runs: dict[str, Outcome], case: str) -> None:
    done, tmp = bad_input_runs[case]
    assert done.returncode != 0, done.stdout[-3000:]
    assert BAD_INPUTS[case][1] in " ".join(done.stdout.split()), done.stdout[-3000:]
    assert not list((tmp / "results").glob("*/")), "a run directory was opened: the play got past its checks"


def test_the_inventories_as_shipped_pass_the_network_checks(tmp_path: Path) -> None:
    done = validate(tmp_path, vnflab_platforms=["docker", "kvm", "native", "xen"])
    assert done.returncode == 0, done.stdout[-3000:]


def test_a_run_directory_given_again_is_resumed_with_its_sweep_or_refused_with_another(tmp_path: Path) -> None:
    """vnflab_run_dir naming a killed run: the validate play records the resume and says what it keeps; with another
    sweep (here the sizes) it fails, naming the parameter, before the parameters recorded are overwritten."""
    first = validate(tmp_path, vnflab_profile="quick")
    assert first.returncode == 0, first.stdout
    [run_dir] = (tmp_path / "results").iterdir()
    parameters = (run_dir / "manifest.d" / "parameters.json").read_text()
    sample = {"run_id": run_dir.name, "platform": "docker", "label": "l", "metric": "boot", "quantity": "all_ms",
              "x": 1, "x_unit": "instances", "value": 900.0, "unit": "ms", "status": "ok", "repetition": 0,
              "instance": None, "seq": 0, "time": "2026-12-07T04:00:00.000000Z", "host": "coreos", "mode": None}
    (run_dir / "samples.jsonl").write_text(json.dumps(sample) + "\n")

    again = validate(tmp_path, vnflab_profile="quick", vnflab_run_dir=str(run_dir))
    assert again.returncode == 0, again.stdout
    assert (f"resuming {run_dir.name}: 0 finished point(s) kept and skipped, 1 sample(s) kept; 1 point(s) cut by the "
            "kill continue from their next repetition (docker boot x=1 instances on coreos)") in " ".join(
        again.stdout.split())  # the callback wraps long messages
    assert len(list((run_dir / "manifest.d").glob("resume-*.json"))) == 1

    other = validate(tmp_path, vnflab_profile="quick", vnflab_run_dir=str(run_dir), vnflab_response_sizes=[64, 128])
    assert other.returncode != 0
    assert "was measured with other response_sizes" in other.stdout, other.stdout
    assert (run_dir / "manifest.d" / "parameters.json").read_text() == parameters
    assert len(list((run_dir / "manifest.d").glob("resume-*.json"))) == 1
