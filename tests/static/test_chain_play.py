"""playbooks/chain.yml end to end without a lab: fake platforms in a network namespace of its own.

Host A, Host B and three VNF servers are local hosts. The fake ``chain`` of one platform logs each hop's options and
brings the chain's entry address up on the namespace's loopback 200 ms after its first hop (started last) starts (a
real first echo to wait for); its stop takes it away. One platform's hop exits 3 (the mechanism is not here: a skip
with its reason, once), the native one has no chain key. The play's parts must run as in the lab: the chain bridges
made and removed, Host A's chain address and Host B's route set and removed, every hop stopped, samples.jsonl holding
each chain.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")
PATH = {"a_side_cidr": "198.18.61.0/29", "b_side_cidr": "198.18.61.8/29"}
ENTRY, CLIENT, EXIT = "198.18.61.3", "198.18.61.4", "198.18.61.11"
LABELS = {"fakeq": "fakeq/img (tcg, real)", "fakeskip": "fakeskip/img (native, real)",
          "native": "native/img (native, real)"}

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                                reason="needs root and unshare (a network namespace of its own)")


def test_chain_play_journals_boot_rtt_skips_and_cleans_up(tmp_path: Path) -> None:
    hops_log, stopped_log, state = tmp_path / "hops.log", tmp_path / "stopped.log", tmp_path / "state.log"
    start = tmp_path / "start"
    start.write_text(f"""#!/bin/sh
echo "$*" >>{hops_log}
case "$*" in *"--address-a {ENTRY}/29"*) (sleep 0.2; ip address add {ENTRY}/32 dev lo) & ;; esac
""")
    stop = tmp_path / "stop"
    stop.write_text(f"#!/bin/sh\necho \"$1\" >>{stopped_log}\nip address del {ENTRY}/32 dev lo 2>/dev/null || true\n"
                    f"exit 0\n")
    not_here = tmp_path / "not-here"
    not_here.write_text("#!/bin/sh\necho 'no bridges on this server' >&2\nexit 3\n")
    for script in (start, stop, not_here):
        script.chmod(0o755)
    run_dir = tmp_path / "run"
    (run_dir / "manifest.d").mkdir(parents=True)
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    chain = {"fakeq": {"start": [str(start)], "stop": [str(stop)]},
             "fakeskip": {"start": [str(not_here)], "stop": [str(stop)]}, "native": None}
    servers = {
        name: {**local, "vnflab_platform": name, "vnflab_path": PATH, "vnflab_chain_cidr": "198.18.62.0/24",
               "vnflab_driver": {"name": name, "label": LABELS[name],
                                 **({"chain": chain[name]} if chain[name] else {})}}
        for name in LABELS}
    inventory = tmp_path / "hosts.yml"
    lab_vars = {"vnflab_lab_iface_pattern": "p-{platform}"}
    inventory.write_text(yaml.safe_dump({"all": {"vars": lab_vars, "children": {
        "controller": {"hosts": {"localhost": {**local, "vnflab_run_dir": str(run_dir), "vnflab_run_id": "t",
                                               "vnflab_servers": list(LABELS)}}},
        "host_a": {"hosts": {"vnflab-a": local}},
        "host_b": {"hosts": {"vnflab-b": local}},
        "vnf_servers": {"hosts": servers}}}}))
    extra = {"vnflab_profile": "quick", "vnflab_chain": {"lengths": [1, 2], "sizes": [64, 1472], "samples": 5,
                                                         "repetitions": 1, "boot_timeout_s": 20}}
    # Host A's lab interfaces for fakeq (p-fakeq, Host A at .2) and fakeskip, Host B's side (.10), each a veth with
    # its peer up; then the play, then what it left: addresses, routes, bridges and rules.
    script = (f"ip link set lo up && ip link add p-fakeq type veth peer name p-fakeq-x && ip link set p-fakeq-x up && "
              f"ip address add 198.18.61.2/29 dev p-fakeq && ip link set p-fakeq up && "
              f"ip link add p-fakeskip type veth peer name p-fakeskip-x && ip link set p-fakeskip up && "
              f"ip link set p-fakeskip-x up && ip link add d-b type veth peer name d-b-x && ip link set d-b-x up && "
              f"ip address add 198.18.61.10/29 dev d-b && ip link set d-b up && "
              f"{PLAYBOOK} -i {inventory} {ROOT / 'playbooks/chain.yml'} -e '{json.dumps(extra)}'"
              f"; rc=$?; {{ ip -o address show; ip route show; ip -o link show type bridge; iptables -S FORWARD; "
              f"echo retrans $(sysctl -n net.ipv4.neigh.p-fakeq.retrans_time_ms); }} "
              f">{state}; exit $rc")
    done = subprocess.run(["unshare", "--net", "sh", "-c", script], capture_output=True, text=True, check=False,
                          timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    records = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    assert {r["metric"] for r in records} == {"chain"}
    boots = {r["x"]: r for r in records if r["platform"] == "fakeq" and r["quantity"] == "boot_chain_ms"}
    assert set(boots) == {1, 2}
    assert all(b["status"] == "ok" and 200 <= b["value"] < 5000 for b in boots.values()), boots
    rtts = [r for r in records if r["platform"] == "fakeq" and r["quantity"] == "rtt_chain_us"]
    assert {(r["x"], r["mode"]) for r in rtts} == {(k, f"icmp {s} B") for k in (1, 2) for s in (64, 1472)}
    assert len(rtts) == 2 * 2 * 5 and all(r["status"] == "ok" for r in rtts)
    skip = [r for r in records if r["platform"] == "fakeskip"]
    assert len(skip) == 1 and skip[0]["status"] == "skipped" and skip[0]["reason"] == "no bridges on this server"
    [native] = [r for r in records if r["platform"] == "native"]
    assert native["status"] == "skipped" and "no chain key" in native["reason"]
    hops = hops_log.read_text().splitlines()
    assert hops[0].startswith("vnflab-fakeq-c1-1 --bridge-a vbr-fakeq-a --address-a 198.18.61.3/29 "
                              "--bridge-b vbr-fakeq-b --address-b 198.18.61.11/29")
    # the last hop first, the first hop (Host A's entry) last
    assert hops[1].startswith("vnflab-fakeq-c2-2 --bridge-a vbr-fakeq-1") and "--address-a 198.18.62.2/30" in hops[1]
    assert hops[2].startswith("vnflab-fakeq-c2-1 --bridge-a vbr-fakeq-a") and "--bridge-b vbr-fakeq-1" in hops[2]
    assert f"--client {CLIENT}" in hops[1] and f"--client {CLIENT}" in hops[2]
    # every hop of every chain stopped, and the play took back what it set up
    assert set(stopped_log.read_text().split()) >= {"vnflab-fakeq-c1-1", "vnflab-fakeq-c2-1", "vnflab-fakeq-c2-2"}
    left = state.read_text()
    assert CLIENT not in left and "vbr-fakeq-1" not in left and "vnflab chain bridge" not in left, left
    assert "retrans 1000\n" in left, "Host A's ARP retry time on its chain interface was not put back"
