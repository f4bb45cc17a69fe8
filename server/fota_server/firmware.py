"""The local firmware folder: the release the server hands out, and its sync from S3.

    >>> from pathlib import Path
    >>> folder = FirmwareFolder(Path(".fota/firmware"))
    >>> folder.recover()                 # doctest: +SKIP
    Version(major=1, minor=1, patch=0)
    >>> sync_once(store, folder)         # doctest: +SKIP

Layout::

    <firmware_dir>/current -> releases/1.1.0-3f2a9c1e      (a relative symbolic link)
    <firmware_dir>/releases/1.1.0-3f2a9c1e/{slot-a.bin,slot-b.bin,manifest.json,manifest.json.sig,version.txt}
    <firmware_dir>/.lock                                    (one writer at a time)

A release is checked whole before it is installed: the manifest's detached signature with the
trusted keys (:mod:`fota_server.trust`; nothing of the manifest is believed before), its fields,
each file's size and SHA-256, ``version.txt`` parsed and equal to the release version, each image
valid for its slot, of that version, at the manifest's load address. Installing (every step made
durable, :mod:`fota_server.durable`): write the files into ``.incoming-<random>/``, rename it to
``releases/<version>-<random>/``, switch ``current`` with one ``rename(2)`` of a ``.current-<random>``
link, then prune: move each old release to ``.trash-<name>`` and delete it. Whatever instant the
process dies (kill -9, power loss), the next start or sync finds ``current`` on the old release or
the new one, and :meth:`FirmwareFolder.recover` removes the leftovers, recognised by these names.

Kept: the current release and the previous one (the one ``current`` pointed to before the switch;
failing that, the highest other version), so a bridge in the middle of a download can finish.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fota_formats.errors import FotaError
from fota_formats.release import (
    MANIFEST_FILE,
    MAX_MANIFEST_SIZE,
    RELEASES_DIR,
    SIGNATURE_FILE,
    SIGNATURE_SIZE,
    SLOT_FILES,
    VERSION_FILE,
)
from fota_formats.semver import Version, VersionError
from fota_formats.spec import LAYOUT
from fota_s3.store import S3Error, S3Store

from fota_server import durable
from fota_server.release_check import ReleaseError, check_files, parse_manifest
from fota_server.trust import KeyRing

log = logging.getLogger("fota_server")

CURRENT_LINK = "current"
KEEP_RELEASES = 2  # the current one and the one before it
RELEASE_NAME = re.compile(r"(?P<version>[0-9]{1,5}\.[0-9]{1,5}\.[0-9]{1,5})-[0-9a-f]{8}")
MAX_SIGNATURE_OBJECT = 16 * SIGNATURE_SIZE  # read whole up to this size, so its size can be named
ORPHAN_PREFIXES = (".incoming-", ".current-", ".trash-")  # leftovers of an interrupted install/prune


class SyncError(FotaError):
    """A sync (or loading the local folder) failed; the local folder is unchanged. (A release
    that fails a content check raises :class:`~fota_server.release_check.ReleaseError`.)"""


@dataclass(frozen=True)
class LocalRelease:
    """A verified release held in memory (images are at most 256 KB each)."""

    version: Version
    downgrade: bool
    manifest: dict[str, Any] = field(repr=False)
    files: dict[str, bytes] = field(repr=False)  # slot file name -> bytes
    sha256: dict[str, str] = field(repr=False)
    path: Path | None = None
    # slot file name -> the image's security counter (SEC_CNT TLV), which BEGIN announces
    security_counter: dict[str, int] = field(default_factory=dict, repr=False)

    def file_for_slot(self, slot_name: str) -> str:
        """Image file name for target slot ``"A"`` / ``"B"``."""
        return f"slot-{slot_name.lower()}.bin"


def release_version(path: Path) -> Version | None:
    """The version in a release folder's name (``1.2.0-3f2a9c1e``); None for any other name."""
    m = RELEASE_NAME.fullmatch(path.name)
    if m is None:
        return None
    try:
        return Version.parse(m["version"])
    except VersionError:
        return None


class FirmwareFolder:
    """The firmware folder on disk."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def current(self) -> Path:
        return self.root / CURRENT_LINK

    @property
    def releases_dir(self) -> Path:
        return self.root / RELEASES_DIR

    def installed(self) -> list[tuple[Version, Path]]:
        """The release folders (named ``<version>-<hex>``), in version order."""
        d = self.releases_dir
        if not d.is_dir():
            return []
        found = [(v, p) for p in d.iterdir() if (v := release_version(p)) is not None and p.is_dir()]
        return sorted(found, key=lambda vp: (vp[0], vp[1].name))

    def releases(self) -> list[Path]:
        return [p for _, p in self.installed()]

    def current_target(self) -> Path | None:
        """The release folder ``current`` points to (None: no link, or a dangling one)."""
        if not self.current.is_symlink():
            return None
        target = self.current.resolve()
        return target if target.is_dir() else None

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
            raw = (path / MANIFEST_FILE).read_bytes()
            if len(raw) > MAX_MANIFEST_SIZE:
                raise SyncError(f"Failed to load the local release in {path}: {MANIFEST_FILE} is larger "
                                f"than {MAX_MANIFEST_SIZE} bytes")
            manifest = parse_manifest(raw, str(path / MANIFEST_FILE), version)
            files = {name: (path / name).read_bytes() for name in (*SLOT_FILES, VERSION_FILE)}
            counters = check_files(files, manifest, version, str(path))
        except ReleaseError as e:
            raise SyncError(str(e)) from None
        except (OSError, VersionError) as e:
            raise SyncError(f"Failed to load the local release in {path}: {e}") from None
        images = {n: files[n] for n in SLOT_FILES}
        return LocalRelease(version, bool(manifest.get("downgrade", False)), manifest, images,
                            {n: manifest["files"][n]["sha256"].lower() for n in SLOT_FILES},
                            path.resolve(), counters)

    # -- changing the folder (each under the folder lock) ----------------------------------------
    def recover(self) -> Version | None:
        """Make the folder consistent after a crash: remove the leftovers of an interrupted install
        or prune, and when ``current`` is missing or broken while a valid release is installed,
        point it at the newest valid one (saying so in the log). Returns the version ``current``
        now serves (None: no valid release on disk)."""
        if not self.root.is_dir():
            return None
        try:
            with durable.folder_lock(self.root):
                return self._recover()
        except OSError as e:  # a read-only folder (served as it is, with sync off): no repair
            log.warning("cannot repair %s (%s): serving it as it is", self.root, e.strerror or e)
            try:
                rel = self.load()
            except SyncError:
                return None
            return rel.version if rel is not None else None

    def _recover(self) -> Version | None:
        self._clean_orphans()
        try:
            rel = self.load()
        except SyncError as e:
            problem = str(e)
        else:
            if rel is not None:
                self._drop_copies(rel.path, rel.version)
                return rel.version
            problem = f"no release linked as {self.current}"
        broken = self.current_target()
        for version, path in reversed(self.installed()):
            if path == broken:
                continue
            try:
                self.load(path)
            except SyncError as e:
                log.warning("skipping the installed release %s: %s", path.name, e)
                continue
            self._switch(path)
            log.warning("%s; now serving %s, the newest valid release installed (%s)", problem, version,
                        path.name)
            return version
        if self.current.is_symlink() or self.installed():
            log.error("%s, and no other valid release is installed", problem)
        return None

    def install(self, version: Version, files: dict[str, bytes], manifest_raw: bytes,
                signature: bytes | None = None) -> Path:
        """Write a verified release (with the manifest's signature, kept for audit) and switch
        ``current`` to it atomically; prune old ones."""
        try:
            if not self.root.is_dir():
                self.root.mkdir(parents=True)
                durable.fsync_dir(self.root.parent)
            with durable.folder_lock(self.root):
                self._clean_orphans()
                durable.make_dir(self.releases_dir)
                previous = self.current_target()
                tmp = self._orphan(".incoming-")
                os.mkdir(tmp)
                extra = {SIGNATURE_FILE: signature} if signature is not None else {}
                for name, data in {**files, MANIFEST_FILE: manifest_raw, **extra}.items():
                    durable.write_file(tmp / name, data)
                durable.fsync_dir(tmp)
                final = self.releases_dir / f"{version}-{secrets.token_hex(4)}"
                durable.rename(tmp, final)
                self._switch(final)
                self._prune(final, previous)
                return final
        except OSError as e:
            raise SyncError(f"Failed to write the release into {self.root}: {e.strerror or e}") from None

    def _switch(self, release: Path) -> None:
        durable.switch_link(self.current, os.path.relpath(release, self.root), self._orphan(".current-"))

    def _orphan(self, prefix: str) -> Path:
        return self.root / f"{prefix}{secrets.token_hex(4)}"

    def _clean_orphans(self) -> None:
        """Remove what an interrupted install or prune left, recognised by its name."""
        found = [p for p in self.root.iterdir() if p.name.startswith(ORPHAN_PREFIXES)]
        for p in found:
            log.info("removing %s, left by an interrupted install", p.name)
            durable.remove_tree(p)
        if found:
            durable.fsync_dir(self.root)

    def _drop_copies(self, current: Path | None, version: Version) -> None:
        """Remove other folders of the current version: an install of it interrupted after its
        rename (they are never served, and must not count as the previous release)."""
        copies = [p for v, p in self.installed() if v == version and p != current]
        for p in copies:
            self._trash(p)
        if copies:
            durable.fsync_dir(self.root)

    def _trash(self, release: Path) -> None:
        log.info("removing the release folder %s", release.name)
        trash = self.root / f".trash-{release.name}"
        durable.rename(release, trash)
        durable.remove_tree(trash)

    def _prune(self, keep: Path, previous: Path | None) -> None:
        """Keep ``keep`` (now current) and one previous release: ``previous`` (what current was)
        when it is another version, else the highest other version. Releases of the current
        version in other folders (an install interrupted after its rename) go too."""
        new_version = release_version(keep)
        others = [(v, p) for v, p in self.installed() if p != keep and v != new_version]
        kept = next((p for v, p in others if p == previous), None)
        if kept is None and others:
            kept = others[-1][1]
        victims = [p for _, p in self.installed() if p not in (keep, kept)]
        for p in victims:
            self._trash(p)
        if victims:
            durable.fsync_dir(self.root)


@dataclass(frozen=True)
class SyncResult:
    status: str  # "updated" | "up-to-date" | "older" | "empty" | "error" | "disabled"
    message: str
    local_version: str | None
    remote_version: str | None
    at: float = field(default_factory=time.time)
    duration_ms: int = 0

    @property
    def failed(self) -> bool:
        return self.status in ("error", "disabled")

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "message": self.message, "local_version": self.local_version,
                "remote_version": self.remote_version,
                "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.at)),
                "duration_ms": self.duration_ms}


@dataclass(frozen=True)
class SignedManifest:
    base: str                # the folder in the bucket: releases/<v> or "" (the top level)
    raw: bytes
    signature: bytes
    manifest: dict[str, Any]
    key_hash: str            # the trusted key that signed it


def _fetch_manifest(store: S3Store, remote: Version, keys: KeyRing) -> SignedManifest:
    """The manifest of ``remote`` (from releases/<v>/, immutable, else the top-level one) and its
    signature from the same folder, verified with ``keys`` before anything in it is read."""
    for base in (f"{RELEASES_DIR}/{remote}", ""):
        key = f"{base}/{MANIFEST_FILE}".lstrip("/")
        raw = store.get_bytes(key, MAX_MANIFEST_SIZE)
        if raw is None:
            continue
        where = store.url(base).rstrip("/")
        # a signature of another size is refused by verify_manifest, which names the size
        signature = store.get_bytes(f"{base}/{SIGNATURE_FILE}".lstrip("/"), MAX_SIGNATURE_OBJECT)
        signer = keys.verify_manifest(raw, signature, where)
        manifest = parse_manifest(raw, store.url(key), remote)
        if manifest["signing_key"] != signer:
            raise ReleaseError(f"Refused the release in {where}: {MANIFEST_FILE} names signing key "
                               f"{manifest['signing_key'][:16]}..., but key {signer[:16]}... signed it")
        assert signature is not None  # verify_manifest refuses a missing one
        return SignedManifest(base, raw, signature, manifest, signer)
    raise SyncError(f"Failed to sync: no {MANIFEST_FILE} for {remote} in {store.url('')}")


def sync_once(store: S3Store, folder: FirmwareFolder, keys: KeyRing) -> SyncResult:
    """Bring the local folder to the bucket's release if that is newer (or a marked downgrade),
    once its manifest's signature verifies with one of ``keys`` and every file matches it."""
    t0 = time.monotonic()
    local: Version | None = None

    def result(status: str, message: str, remote: Version | None) -> SyncResult:
        return SyncResult(status, message, str(local) if local else None, str(remote) if remote else None,
                          duration_ms=int((time.monotonic() - t0) * 1000))

    remote: Version | None = None
    try:
        local = folder.recover()  # a broken local release is not compared with: it is replaced
        text = store.get_text(VERSION_FILE)
        if text is None:
            return result("empty", f"no {VERSION_FILE} in {store.url('')}: nothing released yet", None)
        remote = Version.parse(text, store.url(VERSION_FILE))
        if local is not None and remote == local:
            return result("up-to-date", f"local release {local} is the bucket's", remote)
        signed = _fetch_manifest(store, remote, keys)
        base, manifest = signed.base, signed.manifest
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
        check_files(files, manifest, remote, store.url(base).rstrip("/"), verify=keys.verify_image)
        folder.install(remote, files, signed.raw, signed.signature)
    except (S3Error, ReleaseError, SyncError, VersionError) as e:
        return result("error", str(e), remote)
    what = "downgraded" if local is not None and remote < local else "updated"
    return result("updated", f"{what} the local release from {local or 'none'} to {remote} (signed by key "
                  f"{signed.key_hash[:16]}...)", remote)


__all__ = ["FirmwareFolder", "LocalRelease", "SyncError", "SyncResult", "check_files", "parse_manifest",
           "sync_once"]
