"""platform_xen without a Xen server: the ClickOS path (image, build from sources, control tool) passes
`ansible-playbook --check`, the Click configurations of Algorithm 1 render with the path's addresses,
the domain lifecycle script writes the xl configuration it should, and bad input fails naming the variable."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")
DOMU = ROOT / "roles" / "platform_xen" / "files" / "vnflab-xen-domu"


def run_playbook(name: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PLAYBOOK, "-i", "localhost,", "-c", "local", str(ROOT / "tests/static/playbooks" / name),
                           "-e", f"ansible_python_interpreter={sys.executable}", *extra],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
                          env=dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_CONFIG=str(ROOT / "ansible.cfg")))


def local_mirror(tmp_path: Path, name: str) -> str:
    """A local git repository standing in for an upstream one (an air-gapped lab's mirror)."""
    repo = tmp_path / "mirrors" / name
    repo.mkdir(parents=True)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run(["git", "init", "-q", "-b", "master", str(repo)], check=True)
    (repo / "README").write_text(name)
    subprocess.run([*git, "add", "README"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "mirror"], check=True)
    return str(repo)


def test_clickos_from_an_image_passes_check_mode(tmp_path: Path) -> None:
    image = tmp_path / "clickos_x86_64"
    image.write_bytes(b"\x7fELF not really")
    done = run_playbook("xen-clickos.yml", "--check", "-e", f"out_dir={tmp_path}",
                        "-e", json.dumps({"platform_xen_clickos_image": str(image)}))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ClickOS image from the controller" in done.stdout
    assert not (tmp_path / "cache" / "clickos_x86_64").exists(), "check mode must not copy"


@pytest.mark.parametrize("ctl", ["xenstore", "clickos-ctl"])
def test_clickos_build_from_mirrors_passes_check_mode(tmp_path: Path, ctl: str) -> None:
    sources = {name: {"repo": local_mirror(tmp_path, name), "version": "master"}
               for name in ("clickos", "minios", "toolchain", "xen")}
    variables = {"platform_xen_clickos_build": True, "platform_xen_clickos_sources": sources,
                 "platform_xen_clickos_ctl": ctl,
                 "platform_xen_clickos_ctl_repo": {"repo": local_mirror(tmp_path, "clickos-ctl"), "version": "master"}}
    done = run_playbook("xen-clickos.yml", "--check", "-e", f"out_dir={tmp_path}", "-e", json.dumps(variables))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Build ClickOS (make elemlist, make minios)" in done.stdout
    assert ("Build clickos-ctl" in done.stdout) == (ctl == "clickos-ctl")
    assert not (tmp_path / "cache" / "src").exists(), "check mode must not clone"


def test_clickos_needs_an_image_or_a_build(tmp_path: Path) -> None:
    done = run_playbook("xen-clickos.yml", "-e", f"out_dir={tmp_path}")
    assert done.returncode != 0
    assert "platform_xen_clickos_image" in done.stdout and "platform_xen_clickos_build" in done.stdout


@pytest.mark.parametrize(("variables", "named"), [
    ({"platform_xen_guest": "unikraft"}, "platform_xen_guest"),
    ({"platform_xen_clickos_ctl": "ssh"}, "platform_xen_clickos_ctl"),
    ({"platform_xen_memory_mb": "lots"}, "platform_xen_memory_mb"),
    ({"platform_xen_clickos_sources": {"clickos": {"repo": "x", "version": "y"}}}, "minios"),
    ({"platform_xen_guest": "linux-pv", "platform_xen_memory_mb": 32}, "platform_xen_memory_mb"),
    ({"platform_xen_domu_type": "hvm"}, "platform_xen_domu_type"),
    ({"platform_xen_guest": "clickos", "platform_xen_domu_type": "pvh"}, "platform_xen_domu_type"),
])
def test_bad_input_fails_naming_the_variable(tmp_path: Path, variables: dict[str, object], named: str) -> None:
    done = run_playbook("xen-clickos.yml", "-e", f"out_dir={tmp_path}", "-e", "entry=main", "-e", json.dumps(variables))
    assert done.returncode != 0
    assert named in done.stdout + done.stderr


def test_click_configurations_implement_algorithm_1(tmp_path: Path) -> None:
    done = run_playbook("xen-click-render.yml", "-e", f"out_dir={tmp_path}")
    assert done.returncode == 0, done.stdout + done.stderr
    proxy = (tmp_path / "proxy.click").read_text()
    info = re.search(r"AddressInfo\((.*?)\);", proxy, re.S)
    assert info is not None
    lines = [line.split() for line in info.group(1).replace(",", "\n").splitlines() if line.strip()]
    entries = {words[0]: words[1:] for words in lines}
    assert entries["proxy_a"][0] == "198.18.31.1" and entries["proxy_b"][0] == "198.18.32.1"
    assert entries["host_a"] == ["198.18.31.2"] and entries["host_b"] == ["198.18.32.2"]
    assert entries["proxy_a"][1] == "02:00:c6:12:1f:01"
    # A -> B: destination Host B, source the B-side address; B -> A mirrored; both re-resolve the next hop.
    assert "IPClassifier(src host host_a and dst host proxy_a, -)" in proxy
    for side, peer, out in (("a", "b", "b"), ("b", "a", "a")):
        rewrite = f"StoreIPAddress(host_{peer}, dst) -> StoreIPAddress(proxy_{peer}, src) -> GetIPAddress(16)"
        assert f"from_{side}[0] -> {rewrite} -> [0]arp_{out};" in proxy
    assert proxy.count("FromDevice(") == 2 and proxy.count("ToDevice(") == 2
    responder = (tmp_path / "responder.click").read_text()
    assert "AddressInfo(me @ADDRESS@ @MAC@);" in responder and "ICMPPingResponder" in responder


@pytest.fixture()
def fake_xl(tmp_path: Path) -> Path:
    """xl and xenstore-write that record their arguments (and the domain config they are given)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    (bin_dir / "xl").write_text(f"""#!/bin/sh
echo "xl $*" >>{log}
if [ -f {tmp_path}/xl-hangs ]; then exec sleep 60; fi
if [ -f {tmp_path}/xl-fails ]; then exit "$(cat {tmp_path}/xl-fails)"; fi
case "$1" in
  domid) [ -f {tmp_path}/created ] && echo 7 || exit 1 ;;
  create) cp "$3" {tmp_path}/domain.cfg; touch {tmp_path}/created ;;
  list) state=$(cat {tmp_path}/state 2>/dev/null || echo -b----)
        printf 'Name ID Mem VCPUs State Time(s)\\nDomain-0 0 768 2 r----- 10.0\\n'
        # vnflab-xen-0 is missing from as many lists as the file "vanishes" has lines (a transient of xl)
        if [ -s {tmp_path}/vanishes ]; then sed -i 1d {tmp_path}/vanishes; exit 0; fi
        printf 'vnflab-xen-0 7 128 1 %s 0.5\\n' "$state" ;;
  info) printf 'total_memory           : 3071\\nfree_memory            : 2270\\n' ;;
  destroy) rm -f {tmp_path}/created ;;
esac
""")
    (bin_dir / "xenstore-write").write_text(f"#!/bin/sh\necho \"xenstore-write $1 $2\" >>{log}\n")
    # xenstore-read answers dom0's domid, or hangs (sleeps) once the test says xenstored died, or aborts (as
    # a crashing process in the nested dom0 did) as many times as the file "xenstore-read-aborts" has lines
    (bin_dir / "xenstore-read").write_text(f"""#!/bin/sh
echo "xenstore-read $*" >>{log}
if [ -f {tmp_path}/xenstored-dead ]; then exec sleep 60; fi
if [ -s {tmp_path}/xenstore-read-aborts ]; then sed -i 1d {tmp_path}/xenstore-read-aborts; kill -ABRT $$; fi
echo 0
""")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    return tmp_path


def domu(fake: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PATH=f"{fake / 'bin'}:{os.environ['PATH']}", VNFLAB_XEN_CONSOLE_DIR=str(fake / "console"),
               VNFLAB_XENSTORE_TIMEOUT_S="1", VNFLAB_XL_TIMEOUT_S="1", VNFLAB_XEN_CONFIRM_S="0.1")
    return subprocess.run(["bash", str(DOMU), *args], capture_output=True, text=True, env=env, check=False, timeout=30)


def test_domu_start_writes_the_xl_config_and_loads_click_through_xenstore(fake_xl: Path) -> None:
    kernel = fake_xl / "clickos_x86_64"
    kernel.write_bytes(b"k")
    click = fake_xl / "responder.click"
    click.write_text("AddressInfo(me @ADDRESS@ @MAC@);\n" + "// padding\n" * 60)
    done = domu(fake_xl, "start", "vnflab-xen-0", "--kernel", str(kernel), "--memory", "12", "--state-dir",
                str(fake_xl / "state"), "--vif", "lo=02:00:c6:13:18:02", "--click", str(click),
                "--set", "ADDRESS=198.19.24.2", "--set", "MAC=02:00:c6:13:18:02")
    # lo is no bridge: the script must refuse it before calling xl
    assert done.returncode == 2 and "bridge lo does not exist" in done.stderr
    bridge = next((p.name for p in Path("/sys/class/net").iterdir() if (p / "bridge").is_dir()), None)
    if bridge is None:
        pytest.skip("no bridge on this machine to attach the vif to")
    done = domu(fake_xl, "start", "vnflab-xen-0", "--kernel", str(kernel), "--memory", "12", "--state-dir",
                str(fake_xl / "state"), "--vif", f"{bridge}=02:00:c6:13:18:02", "--click", str(click),
                "--set", "ADDRESS=198.19.24.2", "--set", "MAC=02:00:c6:13:18:02")
    assert done.returncode == 0, done.stderr
    cfg = (fake_xl / "domain.cfg").read_text()
    assert 'name = "vnflab-xen-0"' in cfg and "memory = 12" in cfg and 'type = "pv"' in cfg
    for event in ("on_crash", "on_reboot", "on_poweroff"):  # kept for the health check, never restarted
        assert f'{event} = "preserve"' in cfg
    assert f"vif = [ 'mac=02:00:c6:13:18:02,bridge={bridge}' ]" in cfg
    calls = (fake_xl / "calls.log").read_text().splitlines()
    writes = [c for c in calls if c.startswith("xenstore-write /local/domain/7/data/clickos/0/config/")]
    assert len(writes) == 2, "the configuration goes in chunks of at most 512 bytes"
    assert calls[-1] == "xenstore-write /local/domain/7/data/clickos/0/status Running"
    assert "198.19.24.2" in (fake_xl / "state" / "vnflab-xen-0.click").read_text()


@pytest.mark.parametrize(("domain_type", "tsc_native"), [("pv", False), ("pvh", True)])
def test_domu_start_of_a_linux_domain_by_type(fake_xl: Path, domain_type: str, tsc_native: bool) -> None:
    """PVH domains get tsc_mode native (they die on RDTSCP emulation under nested TCG); PV ones do not."""
    bridge = next((p.name for p in Path("/sys/class/net").iterdir() if (p / "bridge").is_dir()), None)
    if bridge is None:
        pytest.skip("no bridge on this machine to attach the vif to")
    kernel, initrd = fake_xl / "vmlinux", fake_xl / "initramfs.cpio.gz"
    kernel.write_bytes(b"k")
    initrd.write_bytes(b"i")
    done = domu(fake_xl, "start", "vnflab-xen-1", "--kernel", str(kernel), "--initrd", str(initrd), "--memory", "128",
                "--type", domain_type, "--state-dir", str(fake_xl / "state"), "--vif", f"{bridge}=02:00:c6:13:18:03",
                "--extra", "console=hvc0 vnflab.role=instance")
    assert done.returncode == 0, done.stderr
    cfg = (fake_xl / "domain.cfg").read_text()
    assert f'type = "{domain_type}"' in cfg and 'extra = "console=hvc0 vnflab.role=instance"' in cfg
    assert ('tsc_mode = "native"' in cfg) == tsc_native
    done = domu(fake_xl, "start", "vnflab-xen-2", "--kernel", str(kernel), "--memory", "128", "--type", "hvm",
                "--state-dir", str(fake_xl / "state"), "--vif", f"{bridge}=02:00:c6:13:18:04")
    assert done.returncode == 2 and "--type must be pv or pvh" in done.stderr


@pytest.mark.parametrize(("state", "why"), [("----c-", "crashed"), ("---s--", "shut down"), ("-----d", "dying")])
def test_domu_health_says_why_a_domain_is_dead(fake_xl: Path, state: str, why: str) -> None:
    (fake_xl / "created").touch()
    (fake_xl / "state").write_text(state)
    (fake_xl / "console").mkdir()
    (fake_xl / "console" / "guest-vnflab-xen-0.log").write_text(
        "vnflab: network up\n[    6.908695] Kernel panic - not syncing: kmem_cache_create_usercopy: Failed\n"
        "[    6.908695] CPU: 0 PID: 1 Comm: swapper/0\n")
    done = domu(fake_xl, "health", "vnflab-xen-0")
    assert done.returncode == 1
    assert done.stderr.strip() == (f"domain vnflab-xen-0 {why} (xl list state {state}): "
                                   "Kernel panic - not syncing: kmem_cache_create_usercopy: Failed")


def test_domu_health_of_a_live_or_missing_domain(fake_xl: Path) -> None:
    done = domu(fake_xl, "health", "vnflab-xen-3")  # not in xl list
    assert (done.returncode, done.stderr.strip()) == (1, "domain vnflab-xen-3 is gone")
    for state in ("-b----", "r-----"):
        (fake_xl / "state").write_text(state)
        done = domu(fake_xl, "health", "vnflab-xen-0")
        assert (done.returncode, done.stderr) == (0, "")


def test_domu_health_is_no_verdict_when_xl_list_does_not_answer(fake_xl: Path) -> None:
    (fake_xl / "xl-hangs").touch()
    done = domu(fake_xl, "health", "vnflab-xen-0")
    assert done.returncode == 3, "a hung xl list must not say the domain is gone (exit 1)"
    assert "xl list did not answer within 1 s" in done.stderr


@pytest.mark.parametrize("exit_status", [1, 139])
def test_domu_health_is_no_verdict_when_xl_list_fails(fake_xl: Path, exit_status: int) -> None:
    (fake_xl / "xl-fails").write_text(str(exit_status))
    done = domu(fake_xl, "health", "vnflab-xen-0")
    assert (done.returncode, done.stderr.strip()) == (3, f"vnflab-xen-domu: xl list failed (exit {exit_status})")


@pytest.mark.parametrize(("lists_without_it", "verdict"), [(1, 0), (2, 1)])
def test_domu_health_confirms_a_domain_gone_with_a_second_list(fake_xl: Path, lists_without_it: int,
                                                               verdict: int) -> None:
    (fake_xl / "vanishes").write_text("x\n" * lists_without_it)
    done = domu(fake_xl, "health", "vnflab-xen-0")
    assert done.returncode == verdict, done.stderr
    assert (fake_xl / "calls.log").read_text().splitlines().count("xl list") == 2


@pytest.mark.parametrize("command", [["start", "vnflab-xen-0", "--kernel", "/nonexistent"],
                                     ["stop", "vnflab-xen-0", "--state-dir", "/nonexistent"],
                                     ["health", "vnflab-xen-0"], ["memory-kib", "vnflab-xen-0"], ["free-mb"],
                                     ["stop-all", "--prefix", "vnflab-xen-"]])
def test_every_command_fails_fast_when_xenstore_is_dead(fake_xl: Path, command: list[str]) -> None:
    """xenstored died in the nested dom0: xl then hangs forever. Say so at once, exit 3, never call xl."""
    (fake_xl / "xenstored-dead").touch()
    started = time.monotonic()
    done = domu(fake_xl, *command)
    assert done.returncode == 3
    assert "xenstore does not answer (xenstored is not running); the server needs a reboot" in done.stderr
    assert time.monotonic() - started < 10
    calls = (fake_xl / "calls.log").read_text().splitlines()
    assert calls == ["xenstore-read domid"], "a hung xenstore is asked once, and xl is never called"


@pytest.mark.parametrize(("aborts", "status"), [(2, 0), (3, 3)])
def test_a_crashed_xenstore_read_is_asked_again(fake_xl: Path, aborts: int, status: int) -> None:
    (fake_xl / "xenstore-read-aborts").write_text("abort\n" * aborts)
    done = domu(fake_xl, "free-mb")
    assert done.returncode == status, done.stderr
    assert (fake_xl / "calls.log").read_text().splitlines().count("xenstore-read domid") == 3


def test_domu_memory_and_stop(fake_xl: Path) -> None:
    assert domu(fake_xl, "memory-kib", "vnflab-xen-0").stdout.strip() == str(128 * 1024)
    assert domu(fake_xl, "free-mb").stdout.strip() == "2270"
    assert domu(fake_xl, "stop", "vnflab-xen-0", "--state-dir", str(fake_xl / "state")).returncode == 0
    assert "xl destroy" not in (fake_xl / "calls.log").read_text(), "no domain: stop must not destroy"
    (fake_xl / "created").touch()
    assert domu(fake_xl, "stop", "vnflab-xen-0", "--state-dir", str(fake_xl / "state")).returncode == 0
    assert "xl destroy vnflab-xen-0" in (fake_xl / "calls.log").read_text()


@pytest.mark.parametrize(("vcpus", "expected"), [(0, "dom0_mem=768M,max:768M"),
                                                 (1, "dom0_mem=768M,max:768M dom0_max_vcpus=1")])
def test_grub_settings_fix_dom0_memory_and_vcpus(tmp_path: Path, vcpus: int, expected: str) -> None:
    done = run_playbook("xen-grub-render.yml", "-e", f"out_dir={tmp_path}", "-e", f"platform_xen_dom0_vcpus={vcpus}")
    assert done.returncode == 0, done.stdout + done.stderr
    settings = (tmp_path / "zz-vnflab-xen.cfg").read_text()
    assert f'GRUB_CMDLINE_XEN_DEFAULT="{expected}"' in settings
    assert 'GRUB_CMDLINE_XEN="console=com1 com1=115200,8n1"' in settings
    assert "GRUB_CMDLINE_LINUX_XEN_REPLACE" not in settings
