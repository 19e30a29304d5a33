"""platform_xen without a Xen server: the ClickOS path (image, build from sources, control tool) passes
`ansible-playbook --check`, the Click configurations of Algorithm 1 render with the path's addresses,
the domain lifecycle script writes the xl configuration it should, and bad input fails naming the variable."""

from __future__ import annotations

import hashlib
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


SOURCE_NAMES = ("clickos", "mini-os", "toolchain", "lwip", "newlib", "clickos-ctl")


def source_mirror(tmp_path: Path) -> tuple[Path, list[dict[str, str]]]:
    """A source mirror like ../shared/unikernels/sources: one archive per source (one top folder each), a Debian
    xen source package (.dsc listing its orig tarball), SHA256SUMS over all; and the pins naming them."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    pins = []
    for name in SOURCE_NAMES:
        tree = tmp_path / "trees" / name
        tree.mkdir(parents=True)
        (tree / "README").write_text(name)
        subprocess.run(["tar", "-C", str(tree.parent), "-czf", str(mirror / f"{name}.tar.gz"), name], check=True)
        pins.append({"name": name, "archive": f"{name}.tar.gz", "version": "0123456789abcdef0123456789abcdef01234567",
                     "git_url": f"https://example.invalid/{name}.git"})
    orig = mirror / "xen_4.17.5.orig.tar.xz"
    orig.write_bytes(b"not really xz")
    digest = hashlib.sha256(orig.read_bytes()).hexdigest()
    (mirror / "xen_4.17.5-1.dsc").write_text(
        f"Format: 3.0 (quilt)\nSource: xen\nVersion: 4.17.5-1\nChecksums-Sha256:\n {digest} {len(orig.read_bytes())}"
        f" {orig.name}\n")
    pins.append({"name": "xen", "archive": "xen_4.17.5-1.dsc", "version": "4.17.5-1"})
    sums = subprocess.run(["sha256sum", *sorted(p.name for p in mirror.iterdir())], cwd=mirror, capture_output=True,
                          text=True, check=True).stdout
    (mirror / "SHA256SUMS").write_text(sums)
    return mirror, pins


def test_clickos_from_an_image_passes_check_mode(tmp_path: Path) -> None:
    image = tmp_path / "clickos_x86_64"
    image.write_bytes(b"\x7fELF not really")
    done = run_playbook("xen-clickos.yml", "--check", "-e", f"out_dir={tmp_path}",
                        "-e", json.dumps({"platform_xen_clickos_image": str(image)}))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ClickOS image from the controller" in done.stdout
    assert "Build ClickOS and clickos-ctl (build host" not in done.stdout
    assert not (tmp_path / "cache" / "clickos_x86_64").exists(), "check mode must not copy"


def test_clickos_build_from_a_source_mirror_passes_check_mode(tmp_path: Path) -> None:
    mirror, pins = source_mirror(tmp_path)
    done = run_playbook("xen-clickos.yml", "--check", "-e", f"out_dir={tmp_path}", "-e", f"mirror={mirror}",
                        "-e", json.dumps({"platform_xen_clickos_sources": pins,
                                          "platform_xen_clickos_ctl": "clickos-ctl"}))
    assert done.returncode == 0, done.stdout + done.stderr
    for task in ("Sources at their pins", "Build ClickOS and clickos-ctl (build host"):
        assert task in done.stdout
    assert not (tmp_path / "build" / "src").exists(), "check mode must not unpack"


def test_clickos_build_refuses_an_archive_that_does_not_match_the_mirror(tmp_path: Path) -> None:
    mirror, pins = source_mirror(tmp_path)
    (mirror / "mini-os.tar.gz").write_bytes(b"tampered")
    done = run_playbook("xen-clickos.yml", "--check", "-e", f"out_dir={tmp_path}", "-e", f"mirror={mirror}",
                        "-e", json.dumps({"platform_xen_clickos_sources": pins}))
    assert done.returncode != 0
    assert "mini-os" in done.stdout and "SHA256SUMS" in done.stdout


@pytest.mark.parametrize(("change", "named"), [
    ({"version": "master"}, "is not a full 40-digit commit id"),
    ({"drop": "newlib"}, "needs exactly one entry each"),
])
def test_clickos_pins_are_validated_naming_the_variable(tmp_path: Path, change: dict[str, str], named: str) -> None:
    mirror, pins = source_mirror(tmp_path)
    if "drop" in change:
        pins = [pin for pin in pins if pin["name"] != change["drop"]]
    else:
        pins[0].update(change)
    done = run_playbook("xen-clickos.yml", "-e", f"out_dir={tmp_path}", "-e", f"mirror={mirror}",
                        "-e", "entry=validate", "-e", json.dumps({"platform_xen_clickos_sources": pins}))
    assert done.returncode != 0
    assert "platform_xen_clickos_sources" in done.stdout and named in done.stdout


@pytest.mark.parametrize(("settings", "named"), [
    ({"platform_xen_clickos_idle_spin_us": -1}, "platform_xen_clickos_idle_spin_us"),
    ({"platform_xen_clickos_idle_max_us": 999}, "platform_xen_clickos_idle_max_us"),
    ({"platform_xen_clickos_idle_max_us": "50ms"}, "platform_xen_clickos_idle_max_us"),
])
def test_idle_router_settings_are_validated_naming_the_variable(tmp_path: Path, settings: dict[str, object],
                                                                 named: str) -> None:
    mirror, pins = source_mirror(tmp_path)
    done = run_playbook("xen-clickos.yml", "-e", f"out_dir={tmp_path}", "-e", f"mirror={mirror}",
                        "-e", "entry=validate", "-e", json.dumps({"platform_xen_clickos_sources": pins, **settings}))
    assert done.returncode != 0
    assert named in done.stdout


def test_idle_router_settings_within_range_pass_validation(tmp_path: Path) -> None:
    mirror, pins = source_mirror(tmp_path)
    done = run_playbook("xen-clickos.yml", "-e", f"out_dir={tmp_path}", "-e", f"mirror={mirror}",
                        "-e", "entry=validate", "-e", json.dumps({"platform_xen_clickos_sources": pins,
                                                                  "platform_xen_clickos_idle_spin_us": 0,
                                                                  "platform_xen_clickos_idle_max_us": 1000}))
    assert done.returncode == 0, done.stdout[-3000:]


def test_xen_headers_need_a_mirror_in_git_mode(tmp_path: Path) -> None:
    """Debian's xen source package comes from a mirror, never from git: git mode says which variable to set."""
    _, pins = source_mirror(tmp_path)
    done = run_playbook("xen-clickos.yml", "-e", f"out_dir={tmp_path}", "-e", "entry=validate",
                        "-e", json.dumps({"platform_xen_clickos_sources": pins}))
    assert done.returncode != 0
    assert "platform_xen_clickos_sources[xen]" in done.stdout and ".dsc" in done.stdout


def test_clickos_needs_an_image_or_a_build(tmp_path: Path) -> None:
    done = run_playbook("xen-clickos.yml", "-e", f"out_dir={tmp_path}", "-e", "platform_xen_clickos_build=false")
    assert done.returncode != 0
    assert "platform_xen_clickos_image" in done.stdout and "platform_xen_clickos_build" in done.stdout


@pytest.mark.parametrize(("variables", "named"), [
    ({"platform_xen_guest": "unikraft"}, "platform_xen_guest"),
    ({"platform_xen_clickos_ctl": "ssh"}, "platform_xen_clickos_ctl"),
    ({"platform_xen_memory_mb": "lots"}, "platform_xen_memory_mb"),
    ({"platform_xen_clickos_sources": [{"name": "minios", "version": "y"}]}, "platform_xen_clickos_sources"),
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


def click_statements(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("//")]


def test_a_chain_hop_runs_the_path_proxys_configuration_with_its_own_addresses(tmp_path: Path) -> None:
    done = run_playbook("xen-click-render.yml", "-e", f"out_dir={tmp_path}")
    assert done.returncode == 0, done.stdout + done.stderr
    hop = (tmp_path / "chain-hop.click").read_text()
    keys = set(re.findall(r"@([A-Z_]+)@", "\n".join(click_statements(hop))))
    assert keys == {"PROXY_A", "PROXY_A_MAC", "PROXY_B", "PROXY_B_MAC", "HOST_A", "HOST_B"}
    # the path's values in the placeholders give the path proxy, statement for statement
    path = {"PROXY_A": "198.18.31.1", "PROXY_A_MAC": "02:00:c6:12:1f:01", "PROXY_B": "198.18.32.1",
            "PROXY_B_MAC": "02:00:c6:12:20:01", "HOST_A": "198.18.31.2", "HOST_B": "198.18.32.2"}
    for key, value in path.items():
        hop = hop.replace(f"@{key}@", value)
    assert click_statements(hop) == click_statements((tmp_path / "proxy.click").read_text())


CHAIN = ROOT / "roles" / "platform_xen" / "files" / "vnflab-xen-chain"
HOP = ["vnflab-xen-c2-1", "--bridge-a", "vbr-xen-a", "--address-a", "198.18.31.3/24", "--bridge-b", "vbr-xen-1",
       "--address-b", "198.18.33.1/30", "--upstream", "198.18.31.4", "--downstream", "198.18.33.2",
       "--client", "198.18.31.4", "--veth-a", "vp-xen-1a", "--veth-b", "vp-xen-1b"]


def run_chain(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """vnflab-xen-chain with a vnflab-xen-domu that records its argv, one argument per line."""
    fake = tmp_path / "domu"
    fake.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" >{tmp_path}/domu-argv\n")
    fake.chmod(0o755)
    (tmp_path / "chain-hop.click").write_text("AddressInfo(proxy_a @PROXY_A@ @PROXY_A_MAC@);\n")
    done = subprocess.run(["bash", str(CHAIN), *args[:1], "--domu", str(fake), *args[1:]], capture_output=True,
                          text=True, check=False, timeout=30)
    argv_file = tmp_path / "domu-argv"
    return done, argv_file.read_text().splitlines() if argv_file.exists() else []


def test_a_chain_hop_starts_a_clickos_domain_on_its_two_bridges(tmp_path: Path) -> None:
    done, argv = run_chain(tmp_path, "start", "--guest", "clickos", "--click", str(tmp_path / "chain-hop.click"),
                           "--domu-arg", "--memory", "--domu-arg", "12", "--domu-arg", "--state-dir",
                           "--domu-arg", "/run/x", *HOP)
    assert done.returncode == 0, done.stderr
    assert argv[:6] == ["start", "vnflab-xen-c2-1", "--vif", "vbr-xen-a=02:00:c6:12:1f:03",
                        "--vif", "vbr-xen-1=02:00:c6:12:21:01"]
    assert argv[6:10] == ["--memory", "12", "--state-dir", "/run/x"]
    sets = dict(argv[i + 1].split("=", 1) for i, arg in enumerate(argv) if arg == "--set")
    assert sets == {"PROXY_A": "198.18.31.3", "PROXY_A_MAC": "02:00:c6:12:1f:03", "PROXY_B": "198.18.33.1",
                    "PROXY_B_MAC": "02:00:c6:12:21:01", "HOST_A": "198.18.31.4", "HOST_B": "198.18.33.2"}
    assert argv[argv.index("--click") + 1] == str(tmp_path / "chain-hop.click")


def test_a_chain_hop_of_the_linux_stand_in_is_not_here(tmp_path: Path) -> None:
    done, argv = run_chain(tmp_path, "start", "--guest", "linux-pv", "--click", str(tmp_path / "chain-hop.click"),
                           *HOP)
    assert done.returncode == 3 and "ClickOS guest only" in done.stderr and argv == []


def test_a_chain_hop_refuses_a_bad_address_and_stops_by_name(tmp_path: Path) -> None:
    bad = [arg if arg != "198.18.33.2" else "198.18.33" for arg in HOP]
    done, argv = run_chain(tmp_path, "start", "--guest", "clickos", "--click", str(tmp_path / "chain-hop.click"), *bad)
    assert done.returncode == 2 and "not an IPv4 address" in done.stderr and argv == []
    done, argv = run_chain(tmp_path, "stop", "--state-dir", "/run/x", "vnflab-xen-c2-1")
    assert done.returncode == 0 and argv == ["stop", "vnflab-xen-c2-1", "--state-dir", "/run/x"]


@pytest.fixture()
def fake_xl(tmp_path: Path) -> Path:
    """xl and xenstore tools that record their arguments, and a fake ClickOS guest behind xenstore.

    The guest (domain 7) creates /local/domain/7/data/clickos only after xenstore-exists was asked as many
    times as the file "boots-after" says (0 by default), as ClickOS does once booted; a write under that key
    before then is recorded as EARLY and fails. Writing status=Running makes it read its config/<n> chunks
    (into "loaded.click") and print on its console (console/guest-NAME.log, appended) what the file
    "router-says" holds, or the router's start marker.
    """
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "console").mkdir()
    (tmp_path / "sysfs" / "vbr-xen-i" / "bridge").mkdir(parents=True)
    log = tmp_path / "calls.log"
    xs = tmp_path / "xs"
    (bin_dir / "xl").write_text(f"""#!/bin/sh
echo "xl $*" >>{log}
if [ -f {tmp_path}/xl-hangs ]; then exec sleep 60; fi
if [ -f {tmp_path}/xl-fails ]; then exit "$(cat {tmp_path}/xl-fails)"; fi
case "$1" in
  domid) [ -f {tmp_path}/created ] && echo 7 || exit 1 ;;
  create) [ "$2 $3" = "-q -e" ] || {{ echo "xl create without -q -e" >&2; exit 1; }}
          cp "$4" {tmp_path}/domain.cfg; touch {tmp_path}/created
          name=$(sed -n 's/^name = "\\(.*\\)"$/\\1/p' "$4")
          [ ! -f {tmp_path}/boot-console ] || cat {tmp_path}/boot-console >>{tmp_path}/console/guest-$name.log ;;
  list) state=$(cat {tmp_path}/state 2>/dev/null || echo -b----)
        printf 'Name ID Mem VCPUs State Time(s)\\nDomain-0 0 768 2 r----- 10.0\\n'
        # vnflab-xen-0 is missing from as many lists as the file "vanishes" has lines (a transient of xl)
        if [ -s {tmp_path}/vanishes ]; then sed -i 1d {tmp_path}/vanishes; exit 0; fi
        printf 'vnflab-xen-0 7 128 1 %s 0.5\\n' "$state" ;;
  info) printf 'total_memory           : 3071\\nfree_memory            : 2270\\n' ;;
  destroy) rm -f {tmp_path}/created ;;
esac
""")
    (bin_dir / "xenstore-write").write_text(f"""#!/bin/bash
# KEY VALUE [KEY VALUE ...], written in order, as xenstore-write does
while [ $# -ge 2 ]; do
  key=$1 value=$2; shift 2
  echo "xenstore-write $key $value" >>{log}
  case "$key" in
    /local/domain/7/data/clickos/*)
      if [ ! -e {xs}/local/domain/7/data/clickos ]; then echo "EARLY $key" >>{log}; exit 1; fi ;;
  esac
  mkdir -p "{xs}$(dirname "$key")"
  printf '%s' "$value" >"{xs}$key"
  if [ "$key" = /local/domain/7/data/clickos/0/status ] && [ "$value" = Running ]; then  # the router starts
    n=0; : >{tmp_path}/loaded.click
    while [ -f "{xs}/local/domain/7/data/clickos/0/config/$n" ]; do
      cat "{xs}/local/domain/7/data/clickos/0/config/$n" >>{tmp_path}/loaded.click; n=$((n + 1))
    done
    name=$(sed -n 's/^name = "\\(.*\\)"$/\\1/p' {tmp_path}/domain.cfg)
    if [ -f {tmp_path}/router-says ]; then cat {tmp_path}/router-says
    else printf '[router_thread:158] Starting driver...\\n\\n'; fi >>{tmp_path}/console/guest-$name.log
  fi
done
[ $# -eq 0 ] || {{ echo "xenstore-write: odd argument count" >&2; exit 1; }}
""")
    (bin_dir / "xenstore-exists").write_text(f"""#!/bin/bash
echo "xenstore-exists $1" >>{log}
asked=$(( $(cat {tmp_path}/exists-asked 2>/dev/null || echo 0) + 1 )); echo $asked >{tmp_path}/exists-asked
if [ "$1" = /local/domain/7/data/clickos ] && [ -f {tmp_path}/created ] && [ ! -f {tmp_path}/never-boots ] \\
   && [ "$asked" -gt "$(cat {tmp_path}/boots-after 2>/dev/null || echo 0)" ]; then
  mkdir -p {xs}/local/domain/7/data/clickos
fi
[ -e "{xs}$1" ]
""")
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


def domu(fake: Path, *args: str, **env_extra: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PATH=f"{fake / 'bin'}:{os.environ['PATH']}", VNFLAB_XEN_CONSOLE_DIR=str(fake / "console"),
               VNFLAB_XENSTORE_TIMEOUT_S="1", VNFLAB_XL_TIMEOUT_S="1", VNFLAB_XEN_CONFIRM_S="0.1",
               VNFLAB_SYSFS_NET=str(fake / "sysfs"), VNFLAB_CLICKOS_POLL_S="0.05", **env_extra)
    return subprocess.run(["bash", str(DOMU), *args], capture_output=True, text=True, env=env, check=False, timeout=30)


def start_clickos(fake: Path, click: Path, *extra: str, **env_extra: str) -> subprocess.CompletedProcess[str]:
    kernel = fake / "clickos_x86_64"
    kernel.write_bytes(b"k")
    return domu(fake, "start", "vnflab-xen-0", "--kernel", str(kernel), "--memory", "12", "--state-dir",
                str(fake / "run"), "--vif", "vbr-xen-i=02:00:c6:13:18:02", "--click", str(click),
                "--set", "ADDRESS=198.19.24.2", "--set", "MAC=02:00:c6:13:18:02", *extra, **env_extra)


# A configuration whose comments, blank lines and chunk boundaries are the loader's pitfalls: byte 512 of
# the stripped text is a newline (a command substitution would drop it and join two lines), "//" inside a
# string is no comment, a block comment spans lines.
CLICK_LINES = [f"e{i:02d} :: Counter; // element {i}" for i in range(40)]
CLICK = ("// vnflab test configuration\n\n/* a block\n   comment */ AddressInfo(me @ADDRESS@ @MAC@);\n"
         + "padding :: Null;  /* aligns */\n"
         + "\n".join(CLICK_LINES) + "\n"
         + 'msg :: Script(print "http://not/a/comment" /* gone */);\n\t \nFromDevice(0) -> Discard; // last\n')


def click_stripped() -> str:
    body = "".join(f"e{i:02d} :: Counter;\n" for i in range(40))
    return ("AddressInfo(me 198.19.24.2 02:00:c6:13:18:02);\npadding :: Null;\n" + body
            + 'msg :: Script(print "http://not/a/comment" );\nFromDevice(0) -> Discard;\n')


def test_domu_start_writes_the_xl_config_and_loads_click_through_xenstore(fake_xl: Path) -> None:
    click = fake_xl / "responder.click"
    click.write_text(CLICK)
    done = domu(fake_xl, "start", "vnflab-xen-0", "--kernel", str(click), "--memory", "12", "--state-dir",
                str(fake_xl / "state"), "--vif", "lo=02:00:c6:13:18:02", "--click", str(click))
    # lo is no bridge: the script must refuse it before calling xl
    assert done.returncode == 2 and "bridge lo does not exist" in done.stderr
    done = start_clickos(fake_xl, click, "--cpus", "1")
    assert done.returncode == 0, done.stderr
    cfg = (fake_xl / "domain.cfg").read_text()
    assert 'name = "vnflab-xen-0"' in cfg and "memory = 12" in cfg and 'type = "pv"' in cfg
    assert 'cpus = "1"' in cfg
    for event in ("on_crash", "on_reboot", "on_poweroff"):  # kept for the health check, never restarted
        assert f'{event} = "preserve"' in cfg
    assert "vif = [ 'mac=02:00:c6:13:18:02,bridge=vbr-xen-i' ]" in cfg
    expected = click_stripped()
    assert expected[511] == "\n", "the test's chunk boundary must fall on a newline"
    assert (fake_xl / "run" / "vnflab-xen-0.click").read_text() == expected
    # what the guest reads back, chunk after chunk, is exactly the stripped configuration
    assert (fake_xl / "loaded.click").read_text() == expected
    calls = (fake_xl / "calls.log").read_text().splitlines()
    writes = [c for c in calls if c.startswith("xenstore-write /local/domain/7/data/clickos/0/config/")]
    assert len(writes) == -(-len(expected) // 512), "chunks of at most 512 bytes"
    assert [c for c in calls if c.startswith("xenstore-write")][-1] == \
        "xenstore-write /local/domain/7/data/clickos/0/status Running"


def test_clickos_loader_waits_for_the_guest_to_create_data_clickos(fake_xl: Path) -> None:
    """ClickOS sets its watch on data/clickos only once booted: nothing may be written before it exists."""
    (fake_xl / "boots-after").write_text("6")
    click = fake_xl / "responder.click"
    click.write_text(CLICK)
    done = start_clickos(fake_xl, click)
    assert done.returncode == 0, done.stderr
    calls = (fake_xl / "calls.log").read_text().splitlines()
    assert not [c for c in calls if c.startswith("EARLY")], "a write reached xenstore before data/clickos existed"
    asked = [i for i, c in enumerate(calls) if c == "xenstore-exists /local/domain/7/data/clickos"]
    first_write = next(i for i, c in enumerate(calls) if c.startswith("xenstore-write /local/domain/7/"))
    assert len(asked) == 7 and asked[-1] < first_write, "the loader asked until the key was there, then wrote"
    assert (fake_xl / "loaded.click").read_text() == click_stripped()


def test_clickos_loader_gives_up_when_the_guest_never_boots(fake_xl: Path) -> None:
    (fake_xl / "never-boots").touch()
    click = fake_xl / "responder.click"
    click.write_text(CLICK)
    started = time.monotonic()
    done = start_clickos(fake_xl, click, VNFLAB_CLICKOS_BOOT_TIMEOUT_S="2")
    assert done.returncode == 1
    assert "no /local/domain/7/data/clickos within 2 s" in done.stderr
    assert time.monotonic() - started < 15
    assert "xenstore-write" not in (fake_xl / "calls.log").read_text()


def test_clickos_start_fails_with_the_consoles_words_when_the_router_does_not_start(fake_xl: Path) -> None:
    """An earlier domain of the same name left "Starting driver" in the appended console log: only this
    domain's part counts, and its "Router init failed" fails the start with Click's own error."""
    (fake_xl / "console" / "guest-vnflab-xen-0.log").write_text(
        "[router_thread:158] Starting driver...\n\n[router_thread:162] Stopping driver...\n")
    (fake_xl / "router-says").write_text(
        "[on_status:218] status change to Running\nconfig:41: unknown element class 'Conter'\n"
        "[router_thread:149] Router init failed!\n")
    click = fake_xl / "responder.click"
    click.write_text(CLICK)
    done = start_clickos(fake_xl, click)
    assert done.returncode == 1, done.stderr
    assert "ClickOS domain vnflab-xen-0: Router init failed" in done.stderr
    assert "config:41: unknown element class 'Conter'" in done.stderr
    assert "Stopping driver" not in done.stderr, "the earlier domain's console lines are not this domain's"
    assert "xl destroy vnflab-xen-0" in (fake_xl / "calls.log").read_text(), "a failed router's domain is removed"


def test_clickos_start_fails_when_the_guest_crashes_while_booting(fake_xl: Path) -> None:
    (fake_xl / "boots-after").write_text("1000")
    (fake_xl / "state").write_text("----c-")
    (fake_xl / "boot-console").write_text(
        "Xen Minimal OS!\nGPF rip: 0x5e2f1, error_code=0\nThread: xenstore\nRIP: e033:[<00000000000005e2f1>]\n")
    click = fake_xl / "responder.click"
    click.write_text(CLICK)
    done = start_clickos(fake_xl, click, VNFLAB_XEN_KEEP_FAILED="1")
    assert done.returncode == 1
    assert "is dead (xl list state ----c-) before it created data/clickos" in done.stderr
    assert "GPF rip: 0x5e2f1" in done.stderr
    assert "xl destroy" not in (fake_xl / "calls.log").read_text(), "VNFLAB_XEN_KEEP_FAILED=1 keeps the domain"


@pytest.mark.parametrize(("says", "ok"), [
    ("[ vnflab-xen-0 ][ 0 ]: installed new router.\n[ vnflab-xen-0 ][ 0 ]: started router.\n", True),
    ("[ vnflab-xen-0 ] failed to install router.\n", False),
])
def test_clickos_ctl_is_judged_by_what_it_prints(fake_xl: Path, says: str, ok: bool) -> None:
    """clickos-ctl exits 0 even when it refuses a domain."""
    ctl = fake_xl / "bin" / "clickos"
    ctl.write_text(f"""#!/bin/bash
echo "clickos $*" >>{fake_xl}/calls.log
printf '%s' '{says}'
if [[ '{says}' == *started* ]]; then xenstore-write /local/domain/7/data/clickos/0/status Running; fi
exit 0
""")
    ctl.chmod(0o755)
    click = fake_xl / "responder.click"
    click.write_text(CLICK)
    done = start_clickos(fake_xl, click, "--click-ctl", "clickos-ctl")
    calls = (fake_xl / "calls.log").read_text()
    assert f"clickos install -s vnflab-xen-0 {fake_xl}/run/vnflab-xen-0.click" in calls
    if ok:
        assert done.returncode == 0, done.stderr
    else:
        assert done.returncode == 2
        assert "clickos-ctl did not install and start the router in vnflab-xen-0 (exit 0)" in done.stderr
        assert "failed to install router." in done.stderr


def test_cosmos_is_refused_with_a_reason(fake_xl: Path) -> None:
    click = fake_xl / "responder.click"
    click.write_text(CLICK)
    done = start_clickos(fake_xl, click, "--click-ctl", "cosmos")
    assert done.returncode == 2 and "Cosmos (sysml/cosmos) cannot be obtained" in done.stderr
    assert "xl create" not in (fake_xl / "calls.log").read_text()


@pytest.mark.parametrize(("domain_type", "tsc_native"), [("pv", False), ("pvh", True)])
def test_domu_start_of_a_linux_domain_by_type(fake_xl: Path, domain_type: str, tsc_native: bool) -> None:
    """PVH domains get tsc_mode native (they die on RDTSCP emulation under nested TCG); PV ones do not."""
    bridge = "vbr-xen-i"  # a bridge in the fixture's fake /sys/class/net
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


def test_stop_all_counts_a_domain_destroyed_meanwhile_as_stopped(fake_xl: Path) -> None:
    """The boot play's own stops and the teardown's stop-all raced: xl destroy of a domain that had just gone
    failed with 'invalid domain identifier' and the teardown failed. Only a domain still there is a failure."""
    xl = fake_xl / "bin" / "xl"
    fails = (f"[ ! -f {fake_xl}/destroy-fails ] || {{ echo \"$2 is an invalid domain identifier (rc=-6)\" >&2;"
             f" [ -f {fake_xl}/still-there ] || rm -f {fake_xl}/created; exit 1; }}")
    xl.write_text(xl.read_text().replace("  destroy) rm -f", f"  destroy) {fails}\n           rm -f"))
    for still_there, status in ((False, 0), (True, 1)):
        (fake_xl / "created").touch()
        (fake_xl / "destroy-fails").touch()
        if still_there:
            (fake_xl / "still-there").touch()
        done = domu(fake_xl, "stop-all", "--prefix", "vnflab-xen-")
        assert done.returncode == status, done.stderr
        assert "vnflab-xen-0 is an invalid domain identifier" in done.stderr


def test_domu_migrate_runs_xl_migrate_to_this_server_without_ssh(fake_xl: Path) -> None:
    (fake_xl / "created").touch()
    done = domu(fake_xl, "migrate", "vnflab-xen-proxy")
    assert done.returncode == 0, done.stderr
    calls = (fake_xl / "calls.log").read_text().splitlines()
    assert "xl migrate -s env vnflab-xen-proxy VNFLAB_LOCAL_MIGRATION=1" in calls
    # what xl runs under /bin/sh on the receiving end: this server's xl, no ssh
    done = subprocess.run(["/bin/sh", "-c", "exec env VNFLAB_LOCAL_MIGRATION=1 echo migrate-receive"],
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "migrate-receive"


def migrate_a_guest_that_does_not_suspend(fake: Path, console: str, xl_says: str) -> subprocess.CompletedProcess[str]:
    """`migrate` of the proxy domain, its console log CONSOLE, with an `xl migrate` that fails saying XL_SAYS."""
    (fake / "created").touch()
    (fake / "console" / "guest-vnflab-xen-proxy.log").write_text(console)
    xl = fake / "bin" / "xl"
    xl.write_text(xl.read_text().replace('case "$1" in', f'case "$1" in\n  migrate) echo "{xl_says}" >&2; exit 1 ;;'))
    return domu(fake, "migrate", "vnflab-xen-proxy")


def test_domu_migrate_of_a_guest_that_cannot_suspend_is_a_result_with_console_evidence(fake_xl: Path) -> None:
    done = migrate_a_guest_that_does_not_suspend(fake_xl, "Mini-OS: no suspend support\n",
                                                 "libxl: error: guest did not suspend")
    assert done.returncode == 3
    assert "did not suspend" in done.stderr and "Mini-OS: no suspend support" in done.stderr


def test_a_failed_suspend_is_told_by_the_consoles_own_lines_not_its_flood(fake_xl: Path) -> None:
    """As ClickOS crashed on suspend on the emulated server: the fault's lines come after some 100 000 warnings."""
    console = ("[app_shutdown:394] Requested shutdown reason=suspend\nMiniOS will suspend ...\n"
               + "WARNING: g.e. still in use! (19)\n" * 5000
               + "c72d0: 0f b7 53 0c 48 8b 7d a8 c7 43 08 00 00 00 00 41\nPagetable walk from virt 8, base 1c5000:\n")
    done = migrate_a_guest_that_does_not_suspend(fake_xl, console,
                                                 "xc: error: Dom 1 not suspended: (shutdown 0, reason 3)")
    assert done.returncode == 3
    assert "MiniOS will suspend" in done.stderr and "Pagetable walk from virt 8" in done.stderr
    assert "still in use" not in done.stderr


def test_domu_migrate_other_failures_fail(fake_xl: Path) -> None:
    (fake_xl / "created").touch()
    xl = fake_xl / "bin" / "xl"
    xl.write_text(xl.read_text().replace(
        'case "$1" in', 'case "$1" in\n  migrate) echo "libxl: error: receiver failed" >&2; exit 1 ;;'))
    done = domu(fake_xl, "migrate", "vnflab-xen-proxy")
    assert done.returncode == 2 and "xl migrate vnflab-xen-proxy failed" in done.stderr
