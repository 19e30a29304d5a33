"""The chain design of the destination-rewriting proxies (Docker's two DNAT rules, roles/platform_docker/files/
vnflab-proxy-entrypoint): chains of k = 1 and 2 hops, each hop a network namespace running that entrypoint's rules
with a chain hop's settings as vnflab-docker-chain gives them (VNFLAB_HOST_A = Host A's chain address, VNFLAB_HOST_B =
the next hop), cabled as vnflab_chain_hops says, the route back to Host A's chain address through the upstream hop,
and Host B's route to it through the last hop (playbooks/tasks/chain-server.yml); and the native platform's hop
script itself (vnflab-native-chain, its rules from vnflab-native configure). Host A pings through the chain.

Runs in a network and mount namespace of its own (bridges wt23da, wt23d1, wt23db; 198.18.248.0/24 A side,
198.18.249.0/24 B side, 198.18.247.0/24 the links), without Docker: the engine belongs to the lab.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ENTRYPOINT = REPO / "roles" / "platform_docker" / "files" / "vnflab-proxy-entrypoint"
NATIVE = REPO / "roles" / "platform_native" / "files"
PATH = {"a_side_cidr": "198.18.248.0/24", "b_side_cidr": "198.18.249.0/24"}
BRIDGES = {"vbr-wt23-a": "wt23da", "vbr-wt23-1": "wt23d1", "vbr-wt23-b": "wt23db"}

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare"),
    pytest.mark.skipif(shutil.which("iptables") is None, reason="iptables not installed"),
]


def filters():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("vnflab_filters", REPO / "filter_plugins" / "vnflab.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("hop_kind", ["docker-entrypoint", "native-chain"])
@pytest.mark.parametrize("k", [1, 2])
def test_a_dnat_chain_relays_host_a_to_host_b_and_back(k: int, hop_kind: str, tmp_path: Path) -> None:
    flt = filters()
    ends = flt.vnflab_chain_ends(PATH)
    lines = ["set -eu", "mkdir -p /run/netns && mount -t tmpfs tmpfs /run/netns", "ip link set lo up",
             *[f"ip link add {br} type bridge && ip link set {br} up" for br in BRIDGES.values()],
             "ip netns add ha && ip netns add hb",
             "ip link add ha0 type veth peer name eth0 netns ha && ip link set ha0 master wt23da up",
             "ip link add hb0 type veth peer name eth0 netns hb && ip link set hb0 master wt23db up",
             "ip -n ha link set eth0 up && ip -n ha address add 198.18.248.2/24 dev eth0",
             f"ip -n ha address add {ends['client_cidr']} dev eth0",
             "ip -n hb link set eth0 up && ip -n hb address add 198.18.249.2/24 dev eth0",
             f"ip -n hb route add {ends['client']}/32 via {ends['exit']}"]
    hops = flt.vnflab_chain_hops(PATH, "198.18.247.0/24", k, "wt23")
    for hop in hops:
        if hop_kind == "native-chain":
            options = " ".join(f"--{key.replace('_', '-')} {BRIDGES.get(hop[key], hop[key])}" for key in
                               ("bridge_a", "address_a", "bridge_b", "address_b", "upstream", "downstream", "client",
                                "veth_a", "veth_b"))
            lines.append(f"{NATIVE / 'vnflab-native-chain'} start --native {NATIVE / 'vnflab-native'} "
                         f"--state-dir {tmp_path} --variant iptables {hop['name']} {options}")
            continue
        ns = f"hop{hop['index']}"
        lines += [f"ip netns add {ns}", f"ip netns exec {ns} sysctl -qw net.ipv4.ip_forward=1"]
        for side in ("a", "b"):
            lines += [f"ip link add {hop['veth_' + side]} type veth peer name eth-{side} netns {ns}",
                      f"ip link set {hop['veth_' + side]} master {BRIDGES[hop['bridge_' + side]]} up",
                      f"ip -n {ns} address add {hop['address_' + side]} dev eth-{side}",
                      f"ip -n {ns} link set eth-{side} up"]
        if hop["upstream"] != hop["client"]:
            lines.append(f"ip -n {ns} route add {hop['client']}/32 via {hop['upstream']}")
        lines.append(f"VNFLAB_HOST_A={hop['client']} VNFLAB_HOST_B={hop['downstream']} "
                     f"VNFLAB_PROXY_A_SIDE={hop['address_a'].split('/')[0]} "
                     f"VNFLAB_PROXY_B_SIDE={hop['address_b'].split('/')[0]} "
                     f"ip netns exec {ns} sh {ENTRYPOINT} >/dev/null 2>&1 &")
    lines += ["sleep 1", f"ip netns exec ha ping -c 3 -W 2 -I {ends['client']} {ends['entry']}",
              f"ip netns exec ha ping -c 3 -W 2 -s 1472 -I {ends['client']} {ends['entry']}",
              "kill $(jobs -p) 2>/dev/null || true"]
    if hop_kind == "native-chain":  # the hop's stop removes its namespace and devices
        lines += [f"{NATIVE / 'vnflab-native-chain'} stop --native {NATIVE / 'vnflab-native'} --state-dir {tmp_path} "
                  f"{hop['name']}" for hop in hops]
        lines += ["test -z \"$(ip netns list | grep vnflab-)\"", "! ip link show | grep -q vp-wt23"]
    # a PID namespace of its own too: the hops' entrypoints (and their sleeps) end with it
    done = subprocess.run(["unshare", "--net", "--mount", "--pid", "--fork", "bash", "-c", "\n".join(lines)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # the replies came from the chain's entry: Host A's requests were answered by Host B through every hop
    assert done.stdout.count(f"from {ends['entry']}") == 6, done.stdout
