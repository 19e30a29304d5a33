"""roles/emulated_server/files/vnflab-emulated-server without QEMU: argument checks, the state of a VM
that is not running, and the pruning of superseded server images (each ~1.3 GB)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[2] / "roles" / "emulated_server" / "files" / "vnflab-emulated-server"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(TOOL), *args], capture_output=True, text=True, timeout=60, check=False)


def make_image(images: Path, name: str, mtime: int) -> Path:
    image = images / name
    image.mkdir(parents=True)
    (image / "disk.img").write_bytes(b"")
    (image / "BUILD-INFO").write_text("suite=bookworm\n")
    os.utime(image, (mtime, mtime))
    return image


@pytest.fixture
def cache(tmp_path: Path) -> tuple[Path, Path]:
    images, vms = tmp_path / "images", tmp_path / "vms"
    vms.mkdir()
    for age, name in enumerate(["debian-newest", "debian-second", "debian-third", "debian-oldest"]):
        make_image(images, name, 1_700_000_000 - age * 1000)
    return images, vms


def test_prune_keeps_the_most_recent_images(cache: tuple[Path, Path]) -> None:
    images, vms = cache
    done = run("prune-images", "--images", str(images), "--state-dir", str(vms), "--keep", "2")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in images.iterdir()) == ["debian-newest", "debian-second"]
    assert sorted(Path(line).name for line in done.stdout.split()) == ["debian-oldest", "debian-third"]


def test_prune_spares_an_image_a_server_disk_is_based_on(cache: tuple[Path, Path]) -> None:
    images, vms = cache
    (vms / "vnflab-xen.base").write_text(f"{images / 'debian-oldest' / 'disk.img'} 8589934592 1700000000\n")
    done = run("prune-images", "--images", str(images), "--state-dir", str(vms), "--keep", "1")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in images.iterdir()) == ["debian-newest", "debian-oldest"]


def test_prune_with_nothing_to_do_prints_nothing(cache: tuple[Path, Path]) -> None:
    images, vms = cache
    done = run("prune-images", "--images", str(images), "--state-dir", str(vms), "--keep", "4")
    assert (done.returncode, done.stdout) == (0, "")
    assert len(list(images.iterdir())) == 4


def test_prune_leaves_other_directories_alone(cache: tuple[Path, Path]) -> None:
    images, vms = cache
    (images / "key").mkdir()
    run("prune-images", "--images", str(images), "--state-dir", str(vms), "--keep", "1")
    assert (images / "key").is_dir()


@pytest.mark.parametrize("keep", ["0", "-1", "two"])
def test_prune_refuses_to_keep_nothing(cache: tuple[Path, Path], keep: str) -> None:
    images, vms = cache
    done = run("prune-images", "--images", str(images), "--state-dir", str(vms), "--keep", keep)
    assert done.returncode == 2
    assert "--keep" in done.stderr
    assert len(list(images.iterdir())) == 4


def test_a_server_that_is_not_running_has_no_pid_and_stops_cleanly(tmp_path: Path) -> None:
    assert run("pid", "vnflab-none", "--state-dir", str(tmp_path)).returncode == 1
    assert run("stop", "vnflab-none", "--state-dir", str(tmp_path), "--purge").returncode == 0


@pytest.mark.parametrize("name", ["Upper", "a-name-too-long", "-dash", "dot.ted"])
def test_bad_server_names_are_refused(tmp_path: Path, name: str) -> None:
    done = run("pid", name, "--state-dir", str(tmp_path))
    assert done.returncode == 2
    assert "NAME must be" in done.stderr


def test_help_lists_every_command() -> None:
    done = run("--help")
    assert done.returncode == 0
    for command in ("start", "wait", "stop", "pid", "probe-accel", "prune-images"):
        assert f"vnflab-emulated-server {command}" in done.stdout


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--tcg-thread", "one", "--tcg-thread must be multi or single"),
    ("--accel", "hvf", "--accel must be kvm or tcg"),
    ("--mem", "2G", "--mem must be MB"),
    ("--cpu", "max -smap", "--cpu must be a QEMU CPU model"),
    ("--cpu", "-smap", "--cpu must be a QEMU CPU model"),
])
def test_bad_qemu_settings_are_refused_before_anything_starts(tmp_path: Path, option: str, value: str,
                                                             message: str) -> None:
    image, config = tmp_path / "disk.img", tmp_path / "config"
    image.write_bytes(b"")
    config.write_text("hostname=x\n")
    done = run("start", "vnflab-none", "--image", str(image), "--state-dir", str(tmp_path / "vms"),
               "--config", str(config), "--nic", "vbr-none=02:00:00:00:00:01", option, value)
    assert done.returncode == 2
    assert message in done.stderr
    assert not (tmp_path / "vms").exists()


BUILDER = TOOL.parent / "vnflab-build-server-image"


@pytest.mark.skipif(os.geteuid() != 0, reason="loop devices and mounts need root")
def test_clean_stale_removes_what_a_killed_build_left_and_spares_a_running_one(tmp_path: Path) -> None:
    """A build killed with SIGKILL runs no trap: its loop device, its mounts and its work directory stay. The next
    build (or --clean-stale) removes them, unless the build that owns them is still running."""
    from stand_in import sleeping_process

    killed = tmp_path / "vnflab-server-image.AAAAAA"
    (killed / "root").mkdir(parents=True)
    (killed / "builder.pid").write_text("999999999\n")  # no such process
    subprocess.run(["truncate", "-s", "8M", str(killed / "disk.img")], check=True)
    loop = subprocess.run(["losetup", "--find", "--show", str(killed / "disk.img")], capture_output=True,
                          text=True, check=True).stdout.strip()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "vnflab-stale-test", str(killed / "root")], check=True)
    running = tmp_path / "vnflab-server-image.BBBBBB"
    running.mkdir()
    try:
        with sleeping_process(str(BUILDER)) as builder:
            (running / "builder.pid").write_text(f"{builder.pid}\n")
            done = subprocess.run(["bash", str(BUILDER), "--clean-stale"], capture_output=True, text=True,
                                  timeout=60, check=False, env={**os.environ, "TMPDIR": str(tmp_path)})
        assert done.returncode == 0, done.stderr
        assert f"removed what a killed build left in {killed}" in done.stderr
        assert not killed.exists() and running.is_dir()
        assert str(killed) not in Path("/proc/mounts").read_text()
        attached = subprocess.run(["losetup", "--noheadings", "--output", "NAME,BACK-FILE"], capture_output=True,
                                  text=True, check=True).stdout
        assert str(killed) not in attached
    finally:
        subprocess.run(["umount", "-l", str(killed / "root")], capture_output=True, check=False)
        if str(killed / "disk.img") in subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout:
            subprocess.run(["losetup", "-d", loop], check=False)
