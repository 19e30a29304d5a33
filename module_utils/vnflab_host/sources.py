# Copyright: vnflab contributors
# Apache License 2.0
"""Pinned upstream sources: a git commit, or an archive from a source mirror checked against SHA256SUMS.

A mirror is a directory on the build host or a URL base (http, https, file) holding the archives and a
``SHA256SUMS`` file in ``sha256sum`` format. An archive unpacks into one top folder, which becomes the
destination; a Debian source package (``.dsc``) pulls in the files its ``Checksums-Sha256`` field lists and is
unpacked with ``dpkg-source -x``. A stamp file in the destination records what it holds, so a second call with
the same inputs changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

STAMP = ".vnflab-source.json"
SUMS = "SHA256SUMS"
COMMIT = re.compile(r"^[0-9a-f]{40}$")
# A Debian source version (the .dsc kind): epoch-less upstream-revision, as in 4.17.5+72-g01140da4e8-1.
DEBIAN_VERSION = re.compile(r"^[0-9][A-Za-z0-9.+~-]*$")
CHUNK = 1 << 20


class SourceError(Exception):
    """A source cannot be obtained or does not match its pin; the message names what is wrong."""


@dataclass(frozen=True)
class Source:
    name: str
    version: str
    git_url: str = ""
    mirror: str = ""
    archive: str = ""
    sha256: str = ""

    @property
    def is_dsc(self) -> bool:
        return self.archive.endswith(".dsc")

    def problems(self) -> list[str]:
        """What is wrong with the pin itself, before anything is fetched."""
        found = []
        if self.is_dsc:
            if not DEBIAN_VERSION.match(self.version):
                found.append(f"version {self.version!r} is not a Debian source version")
        elif not COMMIT.match(self.version):
            found.append(f"version {self.version!r} is not a full 40-digit commit id")
        if self.mirror and not self.archive:
            found.append("a mirror needs the archive's file name (archive)")
        if not self.mirror and not self.git_url:
            found.append("no git_url and no mirror: nowhere to get it from")
        if not self.mirror and self.is_dsc:
            found.append("a Debian source package (.dsc) comes from a mirror, not git")
        if self.sha256 and not re.match(r"^[0-9a-f]{64}$", self.sha256):
            found.append(f"sha256 {self.sha256!r} is not a SHA-256 digest")
        return found

    @property
    def origin(self) -> str:
        return f"{self.mirror.rstrip('/')}/{self.archive}" if self.mirror else f"{self.git_url}@{self.version}"


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def parse_sums(text: str) -> dict[str, str]:
    """``sha256sum`` output -> {file name: digest}; binary-mode markers (``*name``) are accepted."""
    sums: dict[str, str] = {}
    for line in text.splitlines():
        match = re.match(r"^([0-9a-fA-F]{64}) [ *](.+)$", line.strip())
        if match:
            sums[match.group(2)] = match.group(1).lower()
    return sums


def dsc_files(text: str) -> list[tuple[str, str]]:
    """(digest, name) of the files a .dsc's Checksums-Sha256 field lists."""
    files, inside = [], False
    for line in text.splitlines():
        if line.startswith("Checksums-Sha256:"):
            inside = True
            continue
        if inside:
            if not line.startswith(" "):
                break
            digest, _size, name = line.split()
            files.append((digest.lower(), name))
    return files


Fetcher = Callable[[str, str], None]  # (url, destination path)


class Mirror:
    """A source mirror: a directory, or a URL base read with ``fetch``."""

    def __init__(self, base: str, fetch: Fetcher | None = None) -> None:
        self.base = base.rstrip("/")
        self.is_url = re.match(r"^(https?|file)://", base) is not None
        self.fetch = fetch
        self._sums: dict[str, str] | None = None

    def _local(self, name: str, workdir: str) -> str:
        if not self.is_url:
            path = os.path.join(self.base, name)
            if not os.path.isfile(path):
                raise SourceError(f"the mirror {self.base} has no {name}")
            return path
        if self.fetch is None:
            raise SourceError(f"no way to fetch from {self.base}")
        path = os.path.join(workdir, name)
        try:
            self.fetch(f"{self.base}/{name}", path)
        except Exception as exc:  # noqa: BLE001 - any transport error is the same verdict
            raise SourceError(f"cannot fetch {self.base}/{name}: {exc}") from exc
        return path

    def sums(self, workdir: str) -> dict[str, str]:
        if self._sums is None:
            with open(self._local(SUMS, workdir), encoding="utf-8") as handle:
                self._sums = parse_sums(handle.read())
        return self._sums

    def verified(self, name: str, workdir: str, pinned: str = "") -> tuple[str, str]:
        """(local path, digest) of a mirror file whose digest matches SHA256SUMS (and the pin, if any)."""
        expected = self.sums(workdir).get(name)
        if expected is None:
            raise SourceError(f"{name} is not listed in {self.base}/{SUMS}")
        if pinned and pinned != expected:
            raise SourceError(f"{name}: {SUMS} says {expected}, the pin says {pinned}")
        path = self._local(name, workdir)
        actual = file_sha256(path)
        if actual != expected:
            raise SourceError(f"checksum mismatch for {self.base}/{name}: {actual}, {SUMS} says {expected}")
        return path, actual


@dataclass
class Result:
    changed: bool
    path: str
    name: str
    version: str
    origin: str
    sha256: str
    msg: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_stamp(dest: str) -> dict[str, Any]:
    try:
        with open(os.path.join(dest, STAMP), encoding="utf-8") as handle:
            stamp = json.load(handle)
    except (OSError, ValueError):
        return {}
    return stamp if isinstance(stamp, dict) else {}


def stamp_for(source: Source) -> dict[str, str]:
    return {"name": source.name, "version": source.version, "origin": source.origin}


def run(argv: list[str], cwd: str | None = None) -> str:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, errors="replace", check=False,
                          timeout=3600)
    if proc.returncode != 0:
        raise SourceError(f"{' '.join(argv)} exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-800:]}")
    return proc.stdout


def single_top(tmp: str, what: str) -> str:
    entries = [e for e in os.listdir(tmp) if not e.startswith(".vnflab-")]
    if len(entries) != 1 or not os.path.isdir(os.path.join(tmp, entries[0])):
        raise SourceError(f"{what} does not unpack into one top folder (found {sorted(entries)[:5]})")
    return os.path.join(tmp, entries[0])


def safe_extract(archive: str, into: str) -> None:
    with tarfile.open(archive) as tar:
        root = os.path.realpath(into)
        for member in tar.getmembers():
            target = os.path.realpath(os.path.join(into, member.name))
            if target != root and not target.startswith(root + os.sep):
                raise SourceError(f"{os.path.basename(archive)}: member {member.name!r} leaves the folder")
        tar.extractall(into)  # noqa: S202 - every member checked above


def unpack_archive(source: Source, mirror: Mirror, tmp: str) -> tuple[str, str]:
    """(unpacked top folder, archive digest) of a mirror source, inside ``tmp``."""
    path, digest = mirror.verified(source.archive, tmp, source.sha256)
    out = os.path.join(tmp, "unpacked")
    os.mkdir(out)
    if source.is_dsc:
        with open(path, encoding="utf-8") as handle:
            listed = dsc_files(handle.read())
        if not listed:
            raise SourceError(f"{source.archive} lists no Checksums-Sha256 files")
        staged = os.path.join(tmp, "dsc")
        os.mkdir(staged)
        shutil.copy(path, staged)
        for listed_digest, name in listed:
            file_path, file_digest = mirror.verified(name, tmp)
            if file_digest != listed_digest:
                raise SourceError(f"{name}: {source.archive} says {listed_digest}, the file is {file_digest}")
            if os.path.dirname(file_path) != staged:
                shutil.copy(file_path, staged)
        tree = os.path.join(out, source.name)  # dpkg-source also leaves the orig tarball beside it
        run(["dpkg-source", "--no-check", "-x", os.path.join(staged, source.archive), tree])
        return tree, digest
    else:
        safe_extract(path, out)
    return single_top(out, source.archive), digest


def clone_commit(source: Source, tmp: str) -> tuple[str, str]:
    """(checked-out tree, commit) of a git source at exactly its pinned commit."""
    tree = os.path.join(tmp, source.name)
    run(["git", "init", "--quiet", tree])
    run(["git", "-C", tree, "fetch", "--quiet", "--depth", "1", source.git_url, source.version])
    run(["git", "-C", tree, "checkout", "--quiet", "--detach", "FETCH_HEAD"])
    head = run(["git", "-C", tree, "rev-parse", "HEAD"]).strip()
    if head != source.version:
        raise SourceError(f"{source.git_url} gave commit {head}, not the pinned {source.version}")
    return tree, head


def place(tree: str, dest: str) -> None:
    """Moves ``tree`` to ``dest``, replacing what was there (an empty submodule folder, an older version)."""
    if os.path.lexists(dest):
        if os.path.isdir(dest) and not os.path.islink(dest):
            shutil.rmtree(dest)
        else:
            os.unlink(dest)
    os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
    os.rename(tree, dest)


def ensure(source: Source, dest: str, check_mode: bool = False, fetch: Fetcher | None = None) -> Result:
    """Makes ``dest`` hold ``source`` at its pin; in check mode only verifies what would be fetched."""
    problems = source.problems()
    if problems:
        raise SourceError(f"{source.name}: " + "; ".join(problems))
    dest = os.path.abspath(dest)
    stamp = read_stamp(dest)
    if stamp.get("name") == source.name and stamp.get("version") == source.version \
            and stamp.get("origin") == source.origin:
        return Result(False, dest, source.name, source.version, source.origin, str(stamp.get("sha256", "")),
                      f"{source.name} {source.version} is in place")
    parent = os.path.dirname(dest)
    if not check_mode:
        os.makedirs(parent, exist_ok=True)
    mirror = Mirror(source.mirror, fetch) if source.mirror else None
    if check_mode:
        digest = ""
        if mirror is not None:
            with tempfile.TemporaryDirectory(prefix=".vnflab-check-") as tmp:
                digest = mirror.verified(source.archive, tmp, source.sha256)[1]
        return Result(True, dest, source.name, source.version, source.origin, digest,
                      f"would place {source.origin} at {dest}")
    tmp = tempfile.mkdtemp(prefix=".vnflab-source-", dir=parent)
    try:
        if mirror is not None:
            tree, digest = unpack_archive(source, mirror, tmp)
        else:
            tree, digest = clone_commit(source, tmp)
        with open(os.path.join(tree, STAMP), "w", encoding="utf-8") as handle:
            json.dump({**stamp_for(source), "sha256": digest}, handle, indent=1)
            handle.write("\n")
        place(tree, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Result(True, dest, source.name, source.version, source.origin, digest,
                  f"placed {source.origin} at {dest}")
