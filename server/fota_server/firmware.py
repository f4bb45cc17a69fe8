"""The local firmware folder: the release the server hands out, and its sync from S3.

    >>> from pathlib import Path
    >>> folder = FirmwareFolder(Path(".fota/firmware"))
    >>> folder.load()                    # doctest: +SKIP
    LocalRelease(version=Version(major=1, minor=1, patch=0), ...)
    >>> sync_once(store, folder)         # doctest: +SKIP

Layout::

    <firmware_dir>/current -> releases/1.1.0-3f2a9c1e      (a relative symbolic link)
    <firmware_dir>/releases/1.1.0-3f2a9c1e/{slot-a.bin,slot-b.bin,manifest.json,version.txt}

A sync downloads into a temporary folder beside them, checks sizes and SHA-256 against the
manifest (and the images against the image format), renames the folder into ``releases/`` and
then replaces the ``current`` link with ``rename(2)``: a reader sees the old release or the new one,
never a mixture. Any failure leaves ``current`` as it was. The previous release is kept, so a
bridge that is in the middle of a download can finish it.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fota_formats.errors import FotaError, ImageError
from fota_formats.image import validate_image
from fota_formats.release import MANIFEST_FILE, MAX_MANIFEST_SIZE, RELEASES_DIR, SLOT_FILES, VERSION_FILE
from fota_formats.semver import Version, VersionError
from fota_formats.spec import LAYOUT
from fota_s3.store import S3Error, S3Store

CURRENT_LINK = "current"
KEEP_RELEASES = 2  # the current one and the one before it


class SyncError(FotaError):
    """A sync (or loading the local folder) failed; the local folder is unchanged."""


@dataclass(frozen=True)
class LocalRelease:
    """A verified release held in memory (images are at most 256 KB each)."""

    version: Version
    downgrade: bool
    manifest: dict[str, Any] = field(repr=False)
    files: dict[str, bytes] = field(repr=False)  # slot file name -> bytes
    sha256: dict[str, str] = field(repr=False)
    path: Path | None = None

    def file_for_slot(self, slot_name: str) -> str:
        """Image file name for target slot ``"A"`` / ``"B"``."""
        return f"slot-{slot_name.lower()}.bin"


def parse_manifest(raw: bytes, where: str, expect: Version) -> dict[str, Any]:
    """Decode and check a manifest: its version and an entry with size and SHA-256 for each file."""
    try:
        manifest = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SyncError(f"Failed to read {where}: not JSON ({e})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise SyncError(f"Failed to read {where}: no 'files' table")
    try:
        mver = Version.parse(str(manifest.get("version", "")), f"{where} (version)")
    except VersionError as e:
        raise SyncError(f"Failed to read {where}: {e}") from None
    if mver != expect:
        raise SyncError(f"Failed to read {where}: it describes version {mver}, version.txt says {expect}")
    for name in (*SLOT_FILES, VERSION_FILE):
        entry = manifest["files"].get(name)
        ok = (isinstance(entry, dict) and isinstance(entry.get("size"), int)
              and isinstance(entry.get("sha256"), str) and len(entry["sha256"]) == 64)
        if not ok:
            raise SyncError(f"Failed to read {where}: no valid entry (size, sha256) for {name}")
        if not 0 <= entry["size"] <= LAYOUT.max_image_size:
            raise SyncError(f"Failed to read {where}: {name} size {entry['size']} is out of range")
    if not isinstance(manifest.get("downgrade", False), bool):
        raise SyncError(f"Failed to read {where}: 'downgrade' must be true or false")
    return manifest


def check_files(files: dict[str, bytes], manifest: dict[str, Any], version: Version, where: str) -> None:
    """Sizes and SHA-256 against the manifest; images against the image format and the version."""
    for name, data in files.items():
        entry = manifest["files"][name]
        if len(data) != entry["size"]:
            raise SyncError(f"Failed to check {where}/{name}: {len(data)} bytes, the manifest says "
                            f"{entry['size']}")
        digest = hashlib.sha256(data).hexdigest()
        if digest != entry["sha256"].lower():
            raise SyncError(f"Failed to check {where}/{name}: SHA-256 {digest} differs from the manifest's "
                            f"{entry['sha256']}")
    for name, slot in SLOT_FILES.items():
        try:
            info = validate_image(files[name], slot, name=f"{where}/{name}")
        except ImageError as e:
            raise SyncError(f"Failed to check {e}") from None
        if Version(*info.version) != version:
            raise SyncError(f"Failed to check {where}/{name}: image version {info.version_str}, "
                            f"release {version}")


class FirmwareFolder:
    """The firmware folder on disk."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def current(self) -> Path:
        return self.root / CURRENT_LINK

    def local_version(self) -> Version | None:
        """The version in ``current/version.txt``; None without a release; malformed is an error."""
        path = self.current / VERSION_FILE
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return None
        except OSError as e:
            raise SyncError(f"Failed to read {path}: {e.strerror or e}") from None
        try:
            return Version.parse(text, str(path))
        except VersionError as e:
            raise SyncError(str(e)) from None

    def load(self, path: Path | None = None) -> LocalRelease | None:
        """Read and verify the release in ``path`` (default: current); None when there is none."""
        path = path or self.current
        version = self.local_version() if path == self.current else None
        if path == self.current and version is None:
            return None
        try:
            if version is None:
                version = Version.parse((path / VERSION_FILE).read_text(encoding="utf-8", errors="replace"),
                                        str(path / VERSION_FILE))
            manifest = parse_manifest((path / MANIFEST_FILE).read_bytes(), str(path / MANIFEST_FILE), version)
            files = {name: (path / name).read_bytes() for name in (*SLOT_FILES, VERSION_FILE)}
        except (OSError, VersionError) as e:
            raise SyncError(f"Failed to load the local release in {path}: {e}") from None
        check_files(files, manifest, version, str(path))
        images = {n: files[n] for n in SLOT_FILES}
        return LocalRelease(version, bool(manifest.get("downgrade", False)), manifest, images,
                            {n: manifest["files"][n]["sha256"].lower() for n in SLOT_FILES},
                            path.resolve())

    def install(self, version: Version, files: dict[str, bytes], manifest_raw: bytes) -> Path:
        """Write a verified release and switch ``current`` to it atomically; prune old ones."""
        releases = self.root / RELEASES_DIR
        releases.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".incoming-{secrets.token_hex(4)}"
        tmp.mkdir()
        try:
            for name, data in {**files, MANIFEST_FILE: manifest_raw}.items():
                with open(tmp / name, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
            final = releases / f"{version}-{secrets.token_hex(4)}"
            os.rename(tmp, final)
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise SyncError(f"Failed to write the release into {self.root}: {e.strerror or e}") from None
        link_tmp = self.root / f".current-{secrets.token_hex(4)}"
        os.symlink(os.path.relpath(final, self.root), link_tmp)
        os.replace(link_tmp, self.current)  # the atomic switch
        self._prune(final)
        return final

    def _prune(self, keep: Path) -> None:
        releases = self.root / RELEASES_DIR
        dirs = sorted((d for d in releases.iterdir() if d.is_dir()), key=lambda d: d.stat().st_mtime,
                      reverse=True)
        kept = [keep] + [d for d in dirs if d != keep][: KEEP_RELEASES - 1]
        for d in dirs:
            if d not in kept:
                shutil.rmtree(d, ignore_errors=True)
        for leftover in self.root.glob(".incoming-*"):
            shutil.rmtree(leftover, ignore_errors=True)

    def releases(self) -> list[Path]:
        d = self.root / RELEASES_DIR
        return sorted(p for p in d.iterdir() if p.is_dir()) if d.is_dir() else []


@dataclass(frozen=True)
class SyncResult:
    status: str  # "updated" | "up-to-date" | "older" | "empty" | "error"
    message: str
    local_version: str | None
    remote_version: str | None
    at: float = field(default_factory=time.time)
    duration_ms: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "message": self.message, "local_version": self.local_version,
                "remote_version": self.remote_version,
                "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.at)),
                "duration_ms": self.duration_ms}


def _fetch_manifest(store: S3Store, remote: Version) -> tuple[str, bytes, dict[str, Any]]:
    """The manifest of ``remote``: from releases/<v>/ (immutable), else the top-level one."""
    for base in (f"{RELEASES_DIR}/{remote}", ""):
        key = f"{base}/{MANIFEST_FILE}".lstrip("/")
        raw = store.get_bytes(key, MAX_MANIFEST_SIZE)
        if raw is not None:
            return base, raw, parse_manifest(raw, store.url(key), remote)
    raise SyncError(f"Failed to sync: no {MANIFEST_FILE} for {remote} in {store.url('')}")


def sync_once(store: S3Store, folder: FirmwareFolder) -> SyncResult:
    """Bring the local folder to the bucket's release if that is newer (or a marked downgrade)."""
    t0 = time.monotonic()
    local: Version | None = None

    def result(status: str, message: str, remote: Version | None) -> SyncResult:
        return SyncResult(status, message, str(local) if local else None, str(remote) if remote else None,
                          duration_ms=int((time.monotonic() - t0) * 1000))

    remote: Version | None = None
    try:
        local = folder.local_version()
        text = store.get_text(VERSION_FILE)
        if text is None:
            return result("empty", f"no {VERSION_FILE} in {store.url('')}: nothing released yet", None)
        remote = Version.parse(text, store.url(VERSION_FILE))
        if local is not None and remote == local:
            return result("up-to-date", f"local release {local} is the bucket's", remote)
        base, manifest_raw, manifest = _fetch_manifest(store, remote)
        if local is not None and remote < local and not manifest.get("downgrade", False):
            return result("older", f"the bucket's {remote} is older than the local {local} and not marked as "
                          "a downgrade: keeping the local release", remote)
        files: dict[str, bytes] = {}
        for name in (*SLOT_FILES, VERSION_FILE):
            key = f"{base}/{name}".lstrip("/")
            data = store.get_bytes(key, LAYOUT.max_image_size)
            if data is None:
                raise SyncError(f"Failed to sync: {store.url(key)} is missing")
            files[name] = data
        check_files(files, manifest, remote, store.url(base).rstrip("/"))
        folder.install(remote, files, manifest_raw)
    except (S3Error, SyncError, VersionError) as e:
        return result("error", str(e), remote)
    what = "downgraded" if local is not None and remote < local else "updated"
    return result("updated", f"{what} the local release from {local or 'none'} to {remote}", remote)


__all__ = ["FirmwareFolder", "LocalRelease", "SyncError", "SyncResult", "sync_once"]
