"""`vnflab-microvm migrate`: a live migration of a running microVM to a second QEMU on this machine, measured by the
migration stream (module_utils/vnflab_host/migration.py) as the lab measures the proxy VM.

Runs in a network and mount namespace of its own (a bridge wt23mbr0, 198.18.253.1/24, the VM at .10), so it touches
no lab name; boots the guests the kvm role built (/var/cache/vnflab/kvm: the Linux microVM, and OSv with the
proxy image) under TCG.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MICROVM = REPO / "roles" / "platform_kvm" / "files" / "vnflab-microvm"
BUILDS = sorted(Path("/var/cache/vnflab/kvm").glob("microvm-*/vmlinux"))
OSV_CACHE = Path("/var/cache/vnflab/kvm/osv")
OSV_LOADERS = sorted(OSV_CACHE.glob("kernel-*/loader-stripped.elf"), key=lambda p: p.stat().st_mtime)
OSV_IMAGES = sorted(OSV_CACHE.glob("images/vnflab-proxy-*.qemu"), key=lambda p: p.stat().st_mtime)

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare"),
    pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="QEMU not installed"),
    pytest.mark.skipif(not BUILDS, reason="no microVM image built by the kvm role in /var/cache/vnflab/kvm"),
]

LINUX_START = """--kernel {build}/vmlinux --initrd {build}/initramfs.cpio.gz --mem 128 --append "vnflab.role=instance \\
vnflab.if0=198.18.253.10/24 vnflab.proxy=--mode,raw,--host-a,198.18.253.1,--host-b,198.18.253.1,\\
--proxy-a,198.18.253.10,--proxy-b,198.18.253.10\""""
# OSv answers ping itself; the proxy program (udp mode) only has to start.
OSV_START = """--osv --kernel {loader} --disk {image} --mem 64 --ip eth0,198.18.253.10,255.255.255.0 \\
--append "/vnflab-proxy.so --mode udp --host-a 198.18.253.1 --host-b 198.18.253.2 --udp-port 7007 \\
--proxy-a 198.18.253.10 --proxy-b 198.18.253.10\""""
GUESTS = [pytest.param("linux", id="linux-microvm"),
          pytest.param("osv", id="osv", marks=pytest.mark.skipif(not (OSV_LOADERS and OSV_IMAGES),
                                                                 reason="no OSv build in /var/cache/vnflab/kvm/osv"))]

SCRIPT = r"""
set -eu
mount -t sysfs sysfs /sys
ip link set lo up
ip link add wt23mbr0 type bridge && ip address add 198.18.253.1/24 dev wt23mbr0 && ip link set wt23mbr0 up
# The VMs' state in a directory the -runas user can reach, as the lab's /run/vnflab/kvm (pytest's is root's only).
M={microvm} D=$(mktemp -d /run/vnflab-migration-test.XXXXXX) O={state}
chmod 0755 $D; mkdir -p $O
trap '$M stop vm0 --state-dir $D; rm -rf $D' EXIT
# What is left of the VM: its state files, and every QEMU started with a pidfile in D ("PID" a line).
qemus() {{ pgrep -f -- "^qemu-system-x86_64 .*-pidfile $D/" | sort || true; }}
snapshot() {{ (cd $D && ls vm0.* | sort) >$O/$1.files; qemus >$O/$1.qemu; }}
answers() {{ ping -c3 -W2 198.18.253.10 >/dev/null; }}
$M start vm0 --accel tcg --bridge wt23mbr0 --mac 02:00:c6:12:fd:0a --state-dir $D --runas nobody {start}
i=0; until ping -c1 -W1 198.18.253.10 >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 120 ] || exit 9; sleep 1; done
snapshot started; cat $D/vm0.pid >$O/started.pid
{python} - <<'PY' >$O/stream.json &
import ansible.module_utils, json
ansible.module_utils.__path__.append("{module_utils}")
from ansible.module_utils.vnflab_host.migration import stream
summary, errors = stream("198.18.253.10", duration_s=8, interval_s=0.001)
print(json.dumps({{**summary.as_dict(), "send_errors": errors}}))
PY
sleep 3
$M migrate vm0 --state-dir $D >$O/migrate.json
wait
cat $D/vm0.taps >$O/taps.txt
$M health vm0 --state-dir $D
answers
snapshot moved; cat $D/vm0.pid >$O/moved.pid
$M migrate vm0 --state-dir $D >$O/migrate2.json
cat $D/vm0.taps >$O/taps2.txt
answers
snapshot moved2; cat $D/vm0.pid >$O/moved2.pid
# A move that fails (no time to complete): the destination is ended, the VM goes on where it was.
if $M migrate vm0 --state-dir $D --timeout 0 2>$O/failed.err; then exit 10; fi
answers
snapshot failed; cat $D/vm0.pid >$O/failed.pid
# A move interrupted once its destination runs (the migrate command killed): stop-all, what the kvm teardown runs,
# ends both QEMUs and leaves no file.
setsid $M migrate vm0 --state-dir $D >/dev/null 2>&1 &
mover=$!
i=0; until [ -s $D/vm0.pid.m ]; do i=$((i+1)); [ $i -lt 600 ] || exit 11; sleep 0.05; done
kill -KILL -- -$mover
# the destination's -daemonize parent (its `timeout` is in a process group of its own) exits once QEMU is up
i=0; until [ "$(qemus | wc -l)" -le 2 ]; do i=$((i+1)); [ $i -lt 200 ] || break; sleep 0.05; done
snapshot interrupted
$M stop-all --state-dir $D
snapshot teardown
"""


@pytest.mark.parametrize("guest", GUESTS)
def test_a_migrated_vm_keeps_answering_after_a_short_downtime(tmp_path: Path, guest: str) -> None:
    state = tmp_path / "state"
    start = (LINUX_START.format(build=BUILDS[-1].parent) if guest == "linux"
             else OSV_START.format(loader=OSV_LOADERS[-1], image=OSV_IMAGES[-1]))
    script = SCRIPT.format(microvm=MICROVM, state=state, start=start, python=sys.executable,
                           module_utils=REPO / "module_utils")
    done = subprocess.run(["unshare", "--net", "--mount", "bash", "-c", script], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((state / "migrate.json").read_text())
    assert report["bytes"] > 1_000_000 and report["qemu_total_ms"] > 0 and report["platform_downtime_ms"] >= 0
    streamed = json.loads((state / "stream.json").read_text())
    assert streamed["recovered"] and streamed["send_errors"] == 0
    assert 0 < streamed["downtime_ms"] < 3000 and streamed["sent"] > 7000
    # the taps were handed over to the second QEMU and back to the first names on the next migration
    assert (state / "taps.txt").read_text().split() == ["vm0-m0"]
    assert (state / "taps2.txt").read_text().split() == ["vm0-n0"]
    assert json.loads((state / "migrate2.json").read_text())["bytes"] > 1_000_000
    assert "migration not completed after 0 s" in (state / "failed.err").read_text()

    def lines(name: str) -> list[str]:
        return (state / name).read_text().split()

    # After each move, and after a failed one, the VM is one QEMU, named by the canonical pidfile, with the same
    # state files as after its start (no NAME.pid.m, .qmp.m, .log.m or .migrate left).
    expected = ["vm0.args", "vm0.cmdline", "vm0.console", "vm0.log", "vm0.pid", "vm0.qmp", "vm0.taps"]
    for stage in ("started", "moved", "moved2", "failed"):
        assert lines(f"{stage}.files") == expected, stage
        assert lines(f"{stage}.qemu") == lines(f"{stage}.pid"), stage
    assert len({lines(f"{stage}.pid")[0] for stage in ("started", "moved", "moved2")}) == 3, "each move a new QEMU"
    assert lines("failed.pid") == lines("moved2.pid"), "a failed move keeps the VM's QEMU"
    assert "vm0.pid.m" in lines("interrupted.files")
    assert len(lines("interrupted.qemu")) == 2, "an interrupted move leaves two QEMUs for the teardown"
    assert lines("teardown.qemu") == [] and lines("teardown.files") == [], "stop-all left QEMUs or state files"
