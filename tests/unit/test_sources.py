"""Pinned sources: mirror archives checked against SHA256SUMS, Debian source packages, git commits, stamps."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from ansible.module_utils.vnflab_host import sources
from ansible.module_utils.vnflab_host.sources import Source, SourceError, ensure

COMMIT = "0e34e4dc2b278b7f64e4169abbf297b7de46fb6b"


def make_tar(path: Path, top: str, files: dict[str, bytes]) -> str:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_sums(mirror: Path) -> None:
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}" for p in sorted(mirror.iterdir())
             if p.name != "SHA256SUMS"]
    (mirror / "SHA256SUMS").write_text("\n".join(lines) + "\n")


@pytest.fixture()
def mirror(tmp_path: Path) -> Path:
    base = tmp_path / "mirror"
    base.mkdir()
    make_tar(base / "osv.tar.gz", "osv", {"Makefile": b"all:\n", "musl_1.2.1/.keep": b""})
    make_tar(base / "musl_1.2.1.tar.gz", "musl_1.2.1", {"README": b"musl\n"})
    write_sums(base)
    return base


def osv(mirror: Path, **kw: str) -> Source:
    return Source(name="osv", version=COMMIT, git_url="https://example.invalid/osv.git", mirror=str(mirror),
                  archive="osv.tar.gz", **kw)


def test_mirror_archive_is_unpacked_then_left_alone(mirror: Path, tmp_path: Path) -> None:
    dest = tmp_path / "cache" / "osv"
    first = ensure(osv(mirror), str(dest))
    assert first.changed and (dest / "Makefile").read_text() == "all:\n"
    assert first.sha256 == hashlib.sha256((mirror / "osv.tar.gz").read_bytes()).hexdigest()
    assert json.loads((dest / sources.STAMP).read_text())["version"] == COMMIT
    second = ensure(osv(mirror), str(dest))
    assert not second.changed and second.sha256 == first.sha256
    assert [p.name for p in dest.parent.iterdir()] == ["osv"], "no temporary folder is left beside dest"


def test_submodule_replaces_the_empty_folder_of_its_parent(mirror: Path, tmp_path: Path) -> None:
    dest = tmp_path / "osv"
    ensure(osv(mirror), str(dest))
    musl = Source(name="musl_1.2.1", version="73cc775bee53300c7cf759f37580220b18ac13d3", mirror=str(mirror),
                  archive="musl_1.2.1.tar.gz")
    assert ensure(musl, str(dest / "musl_1.2.1")).changed
    assert (dest / "musl_1.2.1" / "README").read_text() == "musl\n"
    assert not ensure(osv(mirror), str(dest)).changed, "the parent's stamp still holds"


def test_a_new_pin_replaces_the_tree(mirror: Path, tmp_path: Path) -> None:
    dest = tmp_path / "osv"
    ensure(osv(mirror), str(dest))
    (dest / "stale").write_text("x")
    other = Source(name="osv", version="1" * 40, mirror=str(mirror), archive="osv.tar.gz")
    assert ensure(other, str(dest)).changed
    assert not (dest / "stale").exists()


def test_checksum_mismatch_fails_and_changes_nothing(mirror: Path, tmp_path: Path) -> None:
    make_tar(mirror / "osv.tar.gz", "osv", {"Makefile": b"tampered\n"})  # SHA256SUMS still lists the old one
    dest = tmp_path / "osv"
    with pytest.raises(SourceError, match="checksum mismatch for .*osv.tar.gz"):
        ensure(osv(mirror), str(dest))
    assert not dest.exists()
    assert list(tmp_path.iterdir()) == [mirror]


def test_pinned_sha256_must_agree_with_the_mirror(mirror: Path, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="the pin says"):
        ensure(osv(mirror, sha256="0" * 64), str(tmp_path / "osv"))


@pytest.mark.parametrize(("change", "message"), [
    ("missing", "has no osv.tar.gz"),
    ("unlisted", "not listed in"),
])
def test_missing_or_unlisted_archive(mirror: Path, tmp_path: Path, change: str, message: str) -> None:
    if change == "missing":
        (mirror / "osv.tar.gz").unlink()
    else:
        (mirror / "SHA256SUMS").write_text("")
    with pytest.raises(SourceError, match=message):
        ensure(osv(mirror), str(tmp_path / "osv"))


@pytest.mark.parametrize(("source", "message"), [
    (Source(name="x", version="master", git_url="u"), "not a full 40-digit commit"),
    (Source(name="x", version="0e34e4dc", git_url="u"), "not a full 40-digit commit"),
    (Source(name="x", version=COMMIT), "nowhere to get it from"),
    (Source(name="x", version=COMMIT, mirror="/m"), "needs the archive"),
    (Source(name="x", version="4.17.5-1", archive="x.dsc", git_url="u"), "comes from a mirror"),
    (Source(name="x", version="not a version", mirror="/m", archive="x.dsc"), "not a Debian source version"),
])
def test_bad_pins_fail_before_any_change(tmp_path: Path, source: Source, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        ensure(source, str(tmp_path / "dest"))
    assert not (tmp_path / "dest").exists()


def test_check_mode_verifies_without_unpacking(mirror: Path, tmp_path: Path) -> None:
    dest = tmp_path / "osv"
    result = ensure(osv(mirror), str(dest), check_mode=True)
    assert result.changed and not dest.exists()
    (mirror / "osv.tar.gz").write_bytes(b"corrupt")
    with pytest.raises(SourceError, match="checksum mismatch"):
        ensure(osv(mirror), str(dest), check_mode=True)


def test_url_mirror_goes_through_the_fetcher(mirror: Path, tmp_path: Path) -> None:
    fetched: list[str] = []

    def fetch(url: str, path: str) -> None:
        fetched.append(url)
        shutil.copy(mirror / url.rsplit("/", 1)[1], path)

    source = Source(name="osv", version=COMMIT, mirror="https://mirror.example/src/", archive="osv.tar.gz")
    ensure(source, str(tmp_path / "osv"), fetch=fetch)
    assert fetched == ["https://mirror.example/src/SHA256SUMS", "https://mirror.example/src/osv.tar.gz"]


def test_archive_member_outside_the_folder_is_refused(tmp_path: Path) -> None:
    base = tmp_path / "mirror"
    base.mkdir()
    with tarfile.open(base / "evil.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("../escape")
        tar.addfile(info, io.BytesIO(b""))
    write_sums(base)
    with pytest.raises(SourceError, match="leaves the folder"):
        ensure(Source(name="evil", version=COMMIT, mirror=str(base), archive="evil.tar.gz"), str(tmp_path / "d"))


@pytest.mark.skipif(shutil.which("dpkg-source") is None, reason="dpkg-dev is not installed")
def test_debian_source_package(tmp_path: Path) -> None:
    base = tmp_path / "mirror"
    base.mkdir()
    orig = base / "demo_1.0.orig.tar.gz"
    make_tar(orig, "demo-1.0", {"README": b"demo\n"})
    debian = base / "demo_1.0-1.debian.tar.xz"
    with tarfile.open(debian, "w:xz") as tar:
        for name, data in {"debian/source/format": b"3.0 (quilt)\n"}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    md5, sha = [], []
    for path in (orig, debian):
        data = path.read_bytes()
        md5.append(f" {hashlib.md5(data).hexdigest()} {len(data)} {path.name}")  # noqa: S324 - the .dsc format
        sha.append(f" {hashlib.sha256(data).hexdigest()} {len(data)} {path.name}")
    (base / "demo_1.0-1.dsc").write_text(
        "Format: 3.0 (quilt)\nSource: demo\nVersion: 1.0-1\nChecksums-Sha256:\n" + "\n".join(sha)
        + "\nFiles:\n" + "\n".join(md5) + "\n")
    write_sums(base)
    dest = tmp_path / "src" / "xen"
    source = Source(name="xen", version="1.0-1", mirror=str(base), archive="demo_1.0-1.dsc")
    assert ensure(source, str(dest)).changed
    assert (dest / "README").read_text() == "demo\n"
    # A listed file that does not match the .dsc is refused even when SHA256SUMS agrees with it.
    make_tar(orig, "demo-1.0", {"README": b"other\n"})
    write_sums(base)
    with pytest.raises(SourceError, match="demo_1.0.orig.tar.gz: .*says"):
        ensure(source, str(tmp_path / "src" / "xen2"))


def test_git_source_is_checked_out_at_the_pin(tmp_path: Path) -> None:
    upstream = tmp_path / "upstream"
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    subprocess.run(["git", "init", "-q", str(upstream)], check=True)
    (upstream / "f").write_text("one\n")
    subprocess.run(["git", "-C", str(upstream), "add", "f"], check=True)
    subprocess.run(["git", "-C", str(upstream), "commit", "-qm", "one"], check=True, env=env)
    first = subprocess.run(["git", "-C", str(upstream), "rev-parse", "HEAD"], check=True, capture_output=True,
                           text=True).stdout.strip()
    (upstream / "f").write_text("two\n")
    subprocess.run(["git", "-C", str(upstream), "commit", "-qam", "two"], check=True, env=env)
    dest = tmp_path / "clone"
    result = ensure(Source(name="demo", version=first, git_url=f"file://{upstream}"), str(dest))
    assert result.changed and result.sha256 == first
    assert (dest / "f").read_text() == "one\n"
    with pytest.raises(SourceError, match="exited"):
        ensure(Source(name="demo", version="f" * 40, git_url=f"file://{upstream}"), str(tmp_path / "nope"))
