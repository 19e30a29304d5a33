"""`vnflab-kvm-chain`: chains of k = 1 and 2 OSv proxy VMs in series, Host A -> VNF1 [-> VNF2] -> Host B, measured with
the chain metric's own parts (module_utils/vnflab_host/chain.py: the first echo through all k, then RTTs).

Runs in a network and mount namespace of its own: bridges wt23ca (A side, 198.18.250.0/24), wt23c1 (the link,
198.18.252.0/30), wt23cb (B side, 198.18.251.0/24), Host A and Host B in network namespaces of that namespace (Host B
runs a UDP echo on port 7007), the hops' addresses from the filter vnflab_chain_hops; boots the OSv proxy image the
kvm role built (/var/cache/vnflab/kvm/osv) under TCG.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from testkit import load_file

REPO = Path(__file__).resolve().parents[2]
FILES = REPO / "roles" / "platform_kvm" / "files"
OSV_CACHE = Path("/var/cache/vnflab/kvm/osv")
OSV_LOADERS = sorted(OSV_CACHE.glob("kernel-*/loader-stripped.elf"), key=lambda p: p.stat().st_mtime)
OSV_IMAGES = sorted(OSV_CACHE.glob("images/vnflab-proxy-*.qemu"), key=lambda p: p.stat().st_mtime)
PATH = {"a_side_cidr": "198.18.250.0/24", "b_side_cidr": "198.18.251.0/24"}

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare"),
    pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="QEMU not installed"),
    pytest.mark.skipif(not (OSV_LOADERS and OSV_IMAGES), reason="no OSv build in /var/cache/vnflab/kvm/osv"),
]


PROBE = r"""
import ansible.module_utils, json, sys
ansible.module_utils.__path__.append("{module_utils}")
from ansible.module_utils.vnflab_host.chain import first_echo
from ansible.module_utils.vnflab_host.rtt_probe import EchoProber
echo = first_echo("{entry}", timeout_s=120, mode="udp", bind_address="{client}")
rtt = {{}}
if echo.reply_ns:
    with EchoProber(mode="udp", bind_address="{client}") as prober:
        for size in (64, 1472):
            rtt[size] = prober.measure({{"chain": "{entry}"}}, payload_bytes=size, samples=30).rtt_us["chain"]
print(json.dumps({{"echo": echo.as_dict(), "rtt": rtt}}))
"""


def test_osv_chains_of_one_and_two_hops_relay_and_cost_more_per_hop(tmp_path: Path) -> None:
    flt = load_file("filter_plugins", "vnflab_lab")
    ends = flt.vnflab_chain_ends(PATH)
    state = tmp_path / "vms"
    base = [str(FILES / "vnflab-microvm"), "start", "${name}", "--mem", "64", "--accel", "tcg", "--state-dir",
            str(state), "--osv", "--kernel", str(OSV_LOADERS[-1]), "--disk", str(OSV_IMAGES[-1])]
    chain = FILES / "vnflab-kvm-chain"
    lines = ["set -eu", "mount -t sysfs sysfs /sys", "mkdir -p /run/netns && mount -t tmpfs tmpfs /run/netns",
             "ip link set lo up",
             "for br in wt23ca wt23c1 wt23cb; do ip link add $br type bridge; ip link set $br up; done",
             "ip netns add ha && ip netns add hb",
             "ip link add ha0 type veth peer name eth0 netns ha && ip link set ha0 master wt23ca up",
             "ip link add hb0 type veth peer name eth0 netns hb && ip link set hb0 master wt23cb up",
             "ip -n ha link set lo up && ip -n ha link set eth0 up && ip -n ha address add 198.18.250.2/24 dev eth0",
             f"ip -n ha address add {ends['client_cidr']} dev eth0",
             "ip -n hb link set lo up && ip -n hb link set eth0 up && ip -n hb address add 198.18.251.2/24 dev eth0",
             # Host B's UDP echo (the lab's echo service answers the same way: the datagram back to its source)
             f"ip netns exec hb {sys.executable} -c 'import socket; s = socket.socket(socket.AF_INET, "
             f"socket.SOCK_DGRAM); s.bind((\"0.0.0.0\", 7007))\nwhile True:\n d, a = s.recvfrom(65535); "
             f"s.sendto(d, a)' &",
             f"trap 'for n in $(ls {state} 2>/dev/null | sed -n \"s/\\.pid$//p\"); do {chain} stop --microvm "
             f"{FILES / 'vnflab-microvm'} --state-dir {state} $n; done; kill %1' EXIT"]
    for k in (1, 2):
        hops = flt.vnflab_chain_hops(PATH, "198.18.252.0/24", k, "wt23")
        for hop in hops:
            hop = {**hop, "bridge_a": hop["bridge_a"].replace("vbr-wt23-a", "wt23ca").replace("vbr-wt23-1", "wt23c1"),
                   "bridge_b": hop["bridge_b"].replace("vbr-wt23-b", "wt23cb").replace("vbr-wt23-1", "wt23c1")}
            options = " ".join(f"--{key.replace('_', '-')} {hop[key]}" for key in
                               ("bridge_a", "address_a", "bridge_b", "address_b", "upstream", "downstream", "client",
                                "veth_a", "veth_b"))
            lines.append(f"{chain} start --microvm-argv '{json.dumps(base)}' {hop['name']} {options}")
        probe = PROBE.format(module_utils=REPO / "module_utils", entry=ends["entry"], client=ends["client"])
        lines.append(f"ip netns exec ha {sys.executable} - >{tmp_path}/k{k}.json <<'PY'\n{probe}PY")
        # Every hop's frames in and out, per side (its taps' counters, the host's view: tx = to the VM): a chain
        # whose requests skipped a hop would show it here whatever its RTTs.
        for hop in hops:
            lines.append(f"for t in $(cat {state}/{hop['name']}.taps); do echo $(cat /sys/class/net/$t/statistics/"
                         f"tx_packets /sys/class/net/$t/statistics/rx_packets); done >{tmp_path}/{hop['name']}.frames")
        for hop in hops:
            lines.append(f"{chain} stop --microvm {FILES / 'vnflab-microvm'} --state-dir {state} {hop['name']}")
    done = subprocess.run(["unshare", "--net", "--mount", "bash", "-c", "\n".join(lines)], capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = {k: json.loads((tmp_path / f"k{k}.json").read_text()) for k in (1, 2)}
    medians = {}
    for k, result in results.items():
        assert result["echo"]["reply_ns"], f"k={k}: no echo came through the chain"
        for size, rtts in result["rtt"].items():
            answered = sorted(v for v in rtts if v is not None)
            assert len(answered) >= 28, f"k={k} {size} B: {30 - len(answered)} of 30 lost"
            medians[(k, int(size))] = answered[len(answered) // 2]
        # Every answered request crossed each hop's two NICs both ways: each tap carried at least that many frames
        # each way (more: the first echo's requests, warm-ups, ARP).
        replies = sum(v is not None for rtts in result["rtt"].values() for v in rtts)
        for hop in flt.vnflab_chain_hops(PATH, "198.18.252.0/24", k, "wt23"):
            frames = [[int(n) for n in line.split()] for line in
                      (tmp_path / f"{hop['name']}.frames").read_text().splitlines()]
            assert len(frames) == 2, frames
            for side, (to_vm, from_vm) in zip("ab", frames, strict=True):
                assert min(to_vm, from_vm) >= replies, f"k={k} {hop['name']} side {side}: {frames} < {replies}"
    for size in (64, 1472):
        assert medians[(2, size)] > medians[(1, size)], medians
    print(json.dumps({f"k={k} {s} B": v for (k, s), v in medians.items()}))
    assert not list(state.glob("*.pid")), "a hop was left running"
