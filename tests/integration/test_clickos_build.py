"""ClickOS built from the source mirror, as the role builds it on the controller: platform_xen's clickos-build
tasks (vnflab_source unpacks and checks every pinned archive, files/vnflab-build-clickos applies the project's
patches and builds toolchain, ClickOS and clickos-ctl), then checks on the result that do not trust the script:
readelf finds the PV guest section Xen's domain builder reads, the image carries the patched functions, and the
build record names every pin and patch.

About 5-6 minutes on 2 cores (the first build; nothing is cached between test runs). Skipped where the source
mirror (../shared/unikernels/sources, or VNFLAB_SOURCE_MIRROR) or the build packages are missing. Booting the
image needs the emulated Xen server: tests/e2e/test_xen_lab.py (heavy).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")
MIRROR = Path(os.environ.get("VNFLAB_SOURCE_MIRROR", ROOT.parent / "shared" / "unikernels" / "sources"))
PATCHES = sorted((ROOT / "roles" / "platform_xen" / "files" / "patches").glob("*.patch"))
# The idle router's settings, other than the role's defaults (200 us, 50 ms): the build must compile these in.
IDLE_SPIN_US, IDLE_MAX_US = 150, 40000

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the build tasks install Debian packages (root)"),
    pytest.mark.skipif(not (MIRROR / "SHA256SUMS").is_file(), reason=f"no source mirror at {MIRROR}"),
    pytest.mark.skipif(shutil.which("makeinfo") is None or not Path("/usr/include/xenstore.h").exists(),
                       reason="build packages missing (texinfo, libxen-dev: the role installs them)"),
]


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clickos")
    done = subprocess.run(
        [PLAYBOOK, "-i", "localhost,", "-c", "local", str(ROOT / "tests/static/playbooks/xen-clickos.yml"),
         "-e", f"ansible_python_interpreter={sys.executable}", "-e", f"out_dir={out}", "-e", f"mirror={MIRROR}",
         "-e", "entry=clickos-build", "-e", f"platform_xen_clickos_idle_spin_us={IDLE_SPIN_US}",
         "-e", f"platform_xen_clickos_idle_max_us={IDLE_MAX_US}"],
        cwd=ROOT, capture_output=True, text=True, timeout=1800, check=False,
        env=dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0"))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    folders = [p for p in (out / "build").iterdir() if (p / "build-info.json").is_file()]
    assert len(folders) == 1, folders
    return folders[0]


def test_the_image_is_a_pv_kernel(build: Path) -> None:
    image = build / "clickos_x86_64"
    header = subprocess.run(["readelf", "-h", str(image)], capture_output=True, text=True, check=True).stdout
    assert "ELF64" in header and "X86-64" in header and "EXEC" in header
    guest = subprocess.run(["readelf", "-p", "__xen_guest", str(image)], capture_output=True, text=True,
                           check=True).stdout
    assert "GUEST_OS=Mini-OS" in guest and "XEN_VER=xen-3.0" in guest
    assert 1_000_000 < image.stat().st_size < 4_000_000


def test_the_patches_are_in_the_image(build: Path) -> None:
    symbols = subprocess.run(["nm", str(build / "clickos_x86_64.debug")], capture_output=True, text=True,
                             check=True).stdout
    names = {line.split()[-1] for line in symbols.splitlines() if line.strip()}
    # clickos-01 and mini-os-05: the router sleeps on netfront's receive events
    assert {"netfront_rx_events", "clickos_rx_frames"} <= names
    assert "blkfront_aio_enqueue" in names  # mini-os-03 made blkfront link
    # mini-os-04: the event callback aligns the stack before it calls C
    disassembly = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "--disassemble=hypervisor_callback2",
                                  str(build / "clickos_x86_64.debug")], capture_output=True, text=True,
                                 check=True).stdout
    assert "and    $0xfffffffffffffff0,%rsp" in disassembly, disassembly[-1500:]


def test_the_build_record_names_every_input(build: Path) -> None:
    info = json.loads((build / "build-info.json").read_text())
    assert set(info["sources"]) == {"clickos", "mini-os", "toolchain", "lwip", "newlib", "clickos-ctl", "xen"}
    assert info["sources"]["clickos"]["version"] == "a092d40e53ddca514cd9a0bff56b1cd1e0228399"
    sums = dict(line.split()[::-1] for line in (MIRROR / "SHA256SUMS").read_text().splitlines() if line.strip())
    assert info["sources"]["clickos"]["sha256"] == sums["clickos.tar.gz"]
    assert info["patches"] == {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in PATCHES}
    assert info["image_sha256"] == hashlib.sha256((build / "clickos_x86_64").read_bytes()).hexdigest()
    assert info["gcc"].startswith("gcc ") and info["click_elements"] > 200
    assert info["idle"] == {"spin_us": IDLE_SPIN_US, "max_us": IDLE_MAX_US}
    assert not (build / "work").exists(), "the work tree is dropped after a build"


def test_clickos_ctl_runs(build: Path) -> None:
    usage = subprocess.run([str(build / "clickos-ctl"), "--help"], capture_output=True, text=True, check=False)
    assert "install [option]... <domain> <config_file>" in usage.stdout
