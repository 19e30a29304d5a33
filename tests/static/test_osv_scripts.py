"""The OSv build and compose scripts of platform_kvm without building OSv: argument errors, a fake OSv tree whose
scripts/build leaves known files, a fake Capstan that checks how it is called, and the OSv options of
vnflab-microvm that are refused before anything starts."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FILES = ROOT / "roles" / "platform_kvm" / "files"
BUILD_OSV = FILES / "vnflab-build-osv"
BUILD_CAPSTAN = FILES / "vnflab-build-capstan"
COMPOSE = FILES / "vnflab-osv-compose"
MICROVM = FILES / "vnflab-microvm"
CAPSTAN_PATCH = FILES / "patches" / "capstan-gophercloud-debian.patch"
OSV_PATCH = FILES / "patches" / "osv-udp-max-datagram.patch"
MIRROR = Path(os.environ.get("VNFLAB_SOURCE_MIRROR", ROOT.parent / "shared" / "unikernels" / "sources"))


def run(*args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, check=False,
                          env=env, cwd=cwd)


def executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def fake_dpkg_env(tmp_path: Path, missing: tuple[str, ...] = ()) -> dict[str, str]:
    """PATH with a dpkg-query that reports every package installed at version 1.0, except `missing`."""
    bindir = tmp_path / "fakebin"
    bindir.mkdir(exist_ok=True)
    cases = "".join(f'    "{name}") exit 1 ;;\n' for name in missing)
    executable(bindir / "dpkg-query", "#!/bin/sh\n"
               'for last; do :; done\ncase "$last" in\n' + cases + '    *) printf "ii |1.0" ;;\nesac\n')
    return dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}")


# --- vnflab-build-osv ----------------------------------------------------------------------------------------


def preimage(patch: Path) -> dict[str, str]:
    """The files a one-hunk-per-file unified diff applies to, rebuilt from its context and '-' lines (with the
    hunk's start line kept by padding), so a fake tree can take the project's real patch."""
    files: dict[str, list[str]] = {}
    current: list[str] = []
    for line in patch.read_text().splitlines():
        if line.startswith("--- a/"):
            current = files.setdefault(line[6:].split("\t")[0], [])
        elif line.startswith("@@"):
            start = int(line.split()[1][1:].split(",")[0])
            current.extend(["// padding"] * (start - 1 - len(current)))
        elif line.startswith((" ", "-")) and not line.startswith("---"):
            current.append(line[1:])
    return {name: "\n".join(lines) + "\n" for name, lines in files.items()}


def fake_osv_tree(tmp_path: Path, build_script: str | None = None) -> Path:
    tree = tmp_path / "osv"
    for name, text in preimage(OSV_PATCH).items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text(text)
    for sub in ("scripts", "musl_1.2.1", "musl_0.9.12", "kbuild", "external/x64/acpica/source"):
        (tree / sub).mkdir(parents=True, exist_ok=True)
    for name in ("Makefile", "musl_1.2.1/Makefile", "musl_0.9.12/Makefile", "kbuild/Makefile.osv"):
        (tree / name).write_text("")
    executable(tree / "scripts" / "build", build_script or (
        "#!/bin/sh\n"
        'echo "fake build: $*"\n'
        "mkdir -p build/release && ln -sfn release build/last\n"
        "printf 'LOADER' > build/release/loader.img\n"
        "printf 'ELF' > build/release/loader-stripped.elf\n"))
    return tree


@pytest.mark.parametrize(("args", "message"), [
    ((), "usage"),
    (("--src",), "usage"),
    (("--src", "/nonexistent/osv", "--out", "OUT"), "not a directory"),
    (("--src", "TREE", "--out", "OUT", "--jobs", "0"), "--jobs must be a positive integer"),
    (("--src", "TREE", "--out", "OUT", "--jobs", "two"), "--jobs must be a positive integer"),
    (("--src", "TREE", "--out", "OUT", "--commit", "0e34e4dc2b278b7f64e4169abbf297b7de46fb6bZZ"), "hex digits"),
    (("--src", "TREE", "--out", "OUT", "--commit", "abcdef1", "--commit-file", "/etc/hostname"), "not both"),
    (("--src", "TREE", "--out", "OUT", "--bogus"), "unknown argument"),
])
def test_build_osv_refuses_bad_arguments(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    tree = fake_osv_tree(tmp_path)
    argv = [a.replace("TREE", str(tree)).replace("OUT", str(tmp_path / "out")) for a in args]
    done = run(BUILD_OSV, *argv, env=fake_dpkg_env(tmp_path))
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert not (tmp_path / "out").exists()


def test_build_osv_names_a_missing_submodule(tmp_path: Path) -> None:
    tree = fake_osv_tree(tmp_path)
    shutil.rmtree(tree / "musl_0.9.12")
    done = run(BUILD_OSV, "--src", tree, "--out", tmp_path / "out", env=fake_dpkg_env(tmp_path))
    assert done.returncode == 2
    assert "musl_0.9.12/Makefile is missing" in done.stderr


def test_build_osv_names_missing_packages(tmp_path: Path) -> None:
    tree = fake_osv_tree(tmp_path)
    done = run(BUILD_OSV, "--src", tree, "--out", tmp_path / "out",
               env=fake_dpkg_env(tmp_path, missing=("libboost-dev", "flex")))
    assert done.returncode == 3
    assert "missing build packages: libboost-dev flex" in done.stderr


def test_build_osv_copies_the_outputs_and_records_the_build(tmp_path: Path) -> None:
    tree = fake_osv_tree(tmp_path)
    commit_file = tmp_path / "COMMIT"
    commit_file.write_text("0e34e4dc2b278b7f64e4169abbf297b7de46fb6b\n")
    out = tmp_path / "out"
    done = run(BUILD_OSV, "--src", tree, "--out", out, "--jobs", "3", "--commit-file", commit_file,
               env=fake_dpkg_env(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out)
    assert (out / "loader.img").read_bytes() == b"LOADER"
    assert (out / "loader-stripped.elf").read_bytes() == b"ELF"
    assert "fake build: -j3 fs=rofs image=empty" in (out / "build.log").read_text()
    info = json.loads((out / "build-info.json").read_text())
    assert info["osv_commit"] == "0e34e4dc2b278b7f64e4169abbf297b7de46fb6b"
    gcc = subprocess.run(["gcc", "-dumpfullversion"], capture_output=True, text=True, check=True).stdout.strip()
    assert info["gcc_version"] == gcc
    assert info["jobs"] == 3 and info["build_seconds"] >= 0
    listed = run(BUILD_OSV, "--print-packages").stdout.split()
    assert sorted(p.split("=")[0] for p in info["packages"]) == sorted(listed)
    assert all(p.endswith("=1.0") for p in info["packages"])
    digest = hashlib.sha256(OSV_PATCH.read_bytes()).hexdigest()
    assert info["patches"] == [f"{digest}:osv-udp-max-datagram.patch"]
    udp = (tree / "bsd/sys/netinet/udp_usrreq.cc").read_text()
    assert "> IP_MAXPACKET) {" in udp and "> IP_MAXSEGMENT) {" not in udp
    # A second build of the same tree finds the patch applied and builds again.
    again = run(BUILD_OSV, "--src", tree, "--out", out, env=fake_dpkg_env(tmp_path))
    assert again.returncode == 0, again.stderr
    assert "already applied" in again.stderr
    assert (tree / "bsd/sys/netinet/udp_usrreq.cc").read_text() == udp


def test_build_osv_fails_on_a_patch_that_does_not_apply(tmp_path: Path) -> None:
    tree = fake_osv_tree(tmp_path)
    (tree / "bsd/sys/netinet/udp_usrreq.cc").write_text("something else\n")
    done = run(BUILD_OSV, "--src", tree, "--out", tmp_path / "out", env=fake_dpkg_env(tmp_path))
    assert done.returncode == 4
    assert "osv-udp-max-datagram.patch does not apply" in done.stderr
    assert not (tmp_path / "out" / "loader.img").exists()


def test_build_osv_fails_when_the_build_fails_or_leaves_no_loader(tmp_path: Path) -> None:
    tree = fake_osv_tree(tmp_path, "#!/bin/sh\necho 'compiler exploded' >&2\nexit 7\n")
    done = run(BUILD_OSV, "--src", tree, "--out", tmp_path / "out", env=fake_dpkg_env(tmp_path))
    assert done.returncode == 4
    assert "compiler exploded" in done.stderr
    executable(tree / "scripts" / "build", "#!/bin/sh\nmkdir -p build/last\n")
    done = run(BUILD_OSV, "--src", tree, "--out", tmp_path / "out", env=fake_dpkg_env(tmp_path))
    assert done.returncode == 4
    assert "loader.img is missing" in done.stderr


def test_build_osv_lists_its_packages_at_the_top() -> None:
    listed = run(BUILD_OSV, "--print-packages").stdout.split()
    assert {"build-essential", "libboost-dev", "flex", "bison", "libncurses-dev", "qemu-utils"} <= set(listed)
    head = BUILD_OSV.read_text().split("set -euo pipefail")[0]
    assert "VNFLAB_OSV_BUILD_PACKAGES=" in head


# --- vnflab-build-capstan ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "code", "message"), [
    ((), 2, "usage"),
    (("--src", "/nonexistent", "--out", "OUT"), 2, "not a Capstan tree"),
    (("--src", "TREE", "--out", "OUT", "--patch", "/nonexistent.patch"), 2, "cannot read patch"),
    (("--src", "TREE", "--out", "OUT", "--commit", "nothex"), 2, "hex digits"),
])
def test_build_capstan_refuses_bad_arguments(tmp_path: Path, args: tuple[str, ...], code: int, message: str) -> None:
    tree = tmp_path / "capstan"
    tree.mkdir()
    (tree / "capstan.go").write_text("package main\n")
    argv = [a.replace("TREE", str(tree)).replace("OUT", str(tmp_path / "out")) for a in args]
    done = run(BUILD_CAPSTAN, *argv, env=fake_dpkg_env(tmp_path))
    assert done.returncode == code, done.stderr
    assert message in done.stderr


def test_build_capstan_fails_on_a_patch_that_does_not_apply(tmp_path: Path) -> None:
    tree = tmp_path / "capstan"
    tree.mkdir()
    (tree / "capstan.go").write_text("package main\n")
    done = run(BUILD_CAPSTAN, "--src", tree, "--out", tmp_path / "out", env=fake_dpkg_env(tmp_path))
    assert done.returncode == 4
    assert "capstan-gophercloud-debian.patch does not apply" in done.stderr
    assert (tree / "capstan.go").read_text() == "package main\n"  # the caller's tree is untouched


@pytest.mark.skipif(not (MIRROR / "capstan.tar.gz").exists(), reason=f"no source mirror at {MIRROR}")
def test_capstan_patch_applies_to_the_pinned_source(tmp_path: Path) -> None:
    with tarfile.open(MIRROR / "capstan.tar.gz") as archive:
        member = archive.extractfile("capstan/provider/openstack/openstack.go")
        assert member is not None
        original = member.read()
    target = tmp_path / "provider" / "openstack" / "openstack.go"
    target.parent.mkdir(parents=True)
    target.write_bytes(original)
    done = run("patch", "-p1", "--forward", "--batch", "-i", CAPSTAN_PATCH, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    patched = target.read_text()
    assert "flavorutils.IDFromName(clientNova, flavorName)" in patched
    assert "FlavorRef: flavorID" in patched and "ImageRef:  imageID" in patched
    assert "FlavorName:" not in patched and "ServiceClient: clientNova" not in patched


# --- vnflab-osv-compose --------------------------------------------------------------------------------------

FAKE_CAPSTAN = r"""#!/bin/bash
# Fake capstan: checks the call, records it, writes the image where Capstan would.
set -eu
[ "$1" = compose ] || { echo "fake capstan: not compose: $*" >&2; exit 9; }
shift
loader="" fs="" cmd=""
while [ $# -gt 2 ]; do
  case $1 in
    -l) loader=$2; shift 2 ;; --fs) fs=$2; shift 2 ;; -c) cmd=$2; shift 2 ;; *) echo "bad $1" >&2; exit 9 ;;
  esac
done
name=$1 dir=$2
cmp -s "$CAPSTAN_ROOT/repository/$loader/$loader.qemu" "$FAKE_EXPECT_LOADER" \
  || { echo "loader not in place" >&2; exit 9; }
{ echo "loader=$loader"; echo "fs=$fs"; echo "cmd=$cmd"; echo "name=$name";
  (cd "$dir" && find . | sort | tr '\n' ' '); echo; } > "$FAKE_RECORD"
[ -z "${FAKE_FAIL:-}" ] || { echo "fake capstan: failing as asked" >&2; exit 1; }
mkdir -p "$CAPSTAN_ROOT/repository/$name"
cat "$dir/vnflab-proxy.so" > "$CAPSTAN_ROOT/repository/$name/$name.qemu"
[ -n "${FAKE_NO_CMDLINE:-}" ] || echo "Command line set to: '$cmd'"
"""


@pytest.fixture()
def compose_inputs(tmp_path: Path) -> dict[str, Path]:
    loader = tmp_path / "loader.img"
    loader.write_bytes(b"\0" * 510 + b"\x55\xaa" + b"kernel")
    app = tmp_path / "build" / "vnflab-proxy.so"
    app.parent.mkdir()
    app.write_bytes(b"\x7fELF proxy")
    return {"capstan": executable(tmp_path / "capstan", FAKE_CAPSTAN), "loader": loader, "app": app,
            "record": tmp_path / "record.txt"}


def compose(inputs: dict[str, Path], tmp_path: Path, *extra: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = dict(os.environ, FAKE_RECORD=str(inputs["record"]), FAKE_EXPECT_LOADER=str(inputs["loader"]), **env)
    return run(COMPOSE, "--capstan", inputs["capstan"], "--loader", inputs["loader"], "--app", inputs["app"],
               "--name", "vnflab-proxy", "--out", tmp_path / "images" / "proxy.qcow2", *extra, env=environment)


def test_compose_calls_capstan_offline_with_the_local_loader(compose_inputs: dict[str, Path], tmp_path: Path) -> None:
    root = tmp_path / "capstan-root"
    cmd = "--ip=eth0,198.18.251.1,255.255.255.252 /vnflab-proxy.so --mode udp"
    done = compose(compose_inputs, tmp_path, "--cmdline", cmd, "--capstan-root", str(root))
    assert done.returncode == 0, done.stderr
    out = tmp_path / "images" / "proxy.qcow2"
    assert done.stdout.strip() == str(out)
    assert out.read_bytes() == b"\x7fELF proxy"
    record = compose_inputs["record"].read_text().splitlines()
    assert record[:4] == ["loader=osv-loader", "fs=rofs", f"cmd={cmd}", "name=vnflab-proxy"]
    assert set(record[4].split()) == {".", "./dev", "./proc", "./tmp", "./vnflab-proxy.so"}
    placed = root / "repository" / "osv-loader" / "osv-loader.qemu"
    assert placed.read_bytes() == compose_inputs["loader"].read_bytes()
    assert not list(root.glob("stage.*")), "the staging folder is removed"


def test_compose_places_the_app_at_the_given_path(compose_inputs: dict[str, Path], tmp_path: Path) -> None:
    done = compose(compose_inputs, tmp_path, "--cmdline", "/usr/bin/p.so", "--app-path", "/usr/bin/p.so",
                   FAKE_NO_CMDLINE="")
    # The fake writes the image from /vnflab-proxy.so, which is not there: capstan "fails".
    assert done.returncode == 4
    assert "./usr/bin/p.so" in compose_inputs["record"].read_text()


@pytest.mark.parametrize(("extra", "env", "code", "message"), [
    (("--cmdline", ""), {}, 2, "--cmdline missing or empty"),
    (("--cmdline", "x" * 512), {}, 2, "at most 511"),
    (("--cmdline", "/p.so", "--app-path", "relative.so"), {}, 2, "must be absolute"),
    (("--cmdline", "/p.so", "--app-path", "/a/../b.so"), {}, 2, "plain path"),
    (("--cmdline", "/p.so", "--app-path", "/proc/p.so"), {}, 2, "cannot be under"),
    (("--cmdline", "/vnflab-proxy.so"), {"FAKE_FAIL": "1"}, 4, "failing as asked"),
    (("--cmdline", "/vnflab-proxy.so"), {"FAKE_NO_CMDLINE": "1"}, 4, "did not report setting the command line"),
])
def test_compose_errors(compose_inputs: dict[str, Path], tmp_path: Path, extra: tuple[str, ...],
                        env: dict[str, str], code: int, message: str) -> None:
    done = compose(compose_inputs, tmp_path, *extra, **env)
    assert done.returncode == code, done.stderr
    assert message in done.stderr
    assert not (tmp_path / "images" / "proxy.qcow2").exists()


def test_compose_refuses_a_loader_that_is_not_raw(compose_inputs: dict[str, Path], tmp_path: Path) -> None:
    compose_inputs["loader"].write_bytes(b"QFI\xfb" + b"\0" * 1020)  # a qcow2 header
    done = compose(compose_inputs, tmp_path, "--cmdline", "/vnflab-proxy.so")
    assert done.returncode == 2
    assert "not a raw OSv loader.img" in done.stderr


def test_compose_without_a_root_leaves_no_temporary_folder(compose_inputs: dict[str, Path], tmp_path: Path) -> None:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    done = compose(compose_inputs, tmp_path, "--cmdline", "/vnflab-proxy.so", TMPDIR=str(tmpdir))
    assert done.returncode == 0, done.stderr
    assert list(tmpdir.iterdir()) == []


# --- vnflab-microvm: OSv options refused before anything starts ----------------------------------------------


@pytest.mark.parametrize(("extra", "message"), [
    (("--ip", "eth0,198.18.251.1,255.255.255.252"), "--ip is an OSv option"),
    (("--osv", "--kernel", "K", "--disk", "D", "--initrd", "I"), "takes no --initrd"),
    (("--osv", "--kernel", "K"), "--disk missing"),
    (("--osv", "--kernel", "K", "--disk", "D", "--ip", "eth0,198.18.251.1"), "--ip must be IF,ADDR,MASK"),
    (("--osv", "--kernel", "K", "--disk", "D", "--ip", "eth0,198.18.251.1,255.255.255.252,x"),
     "--ip must be IF,ADDR,MASK"),
    (("--osv", "--kernel", "K", "--disk", "D", "--ip", "eth0 198.18.251.1 255.255.255.252"),
     "--ip must be IF,ADDR,MASK"),
])
def test_microvm_refuses_bad_osv_options(tmp_path: Path, extra: tuple[str, ...], message: str) -> None:
    (tmp_path / "K").write_bytes(b"elf")
    (tmp_path / "D").write_bytes(b"disk")
    argv = [str(tmp_path / a) if a in ("K", "D", "I") else a for a in extra]
    done = run("bash", MICROVM, "start", "vm0", "--mem", "32", "--accel", "tcg", "--bridge", "nobr0",
               "--mac", "52:54:00:aa:00:01", "--state-dir", tmp_path / "state", *argv)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert not (tmp_path / "state").exists()


@pytest.mark.skipif(not (MIRROR / "osv.tar.gz").exists(), reason=f"no source mirror at {MIRROR}")
def test_osv_patch_applies_to_the_pinned_source(tmp_path: Path) -> None:
    name = "bsd/sys/netinet/udp_usrreq.cc"
    with tarfile.open(MIRROR / "osv.tar.gz") as archive:
        member = archive.extractfile(f"osv/{name}")
        assert member is not None
        original = member.read().decode()
    assert original.count("sizeof(struct udpiphdr) > IP_MAXSEGMENT") == 1
    (tmp_path / name).parent.mkdir(parents=True)
    (tmp_path / name).write_text(original)
    done = run("patch", "-p1", "--forward", "--batch", "-i", OSV_PATCH, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    patched = (tmp_path / name).read_text()
    assert "sizeof(struct udpiphdr) > IP_MAXPACKET" in patched and "IP_MAXSEGMENT) {" not in patched
