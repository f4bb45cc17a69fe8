"""Publish a build to the release bucket.

    >>> from fota_formats.config import load_config
    >>> from fota_lab.locals3 import open_store
    >>> cfg = load_config()
    >>> result = release(open_store(cfg), cfg.build_dir)     # doctest: +SKIP
    >>> print(result.summary())                              # doctest: +SKIP

The bucket layout is :mod:`fota_formats.release`'s.

Every check runs before the first upload, so a refused release uploads nothing: the build's
images and ELF checks, each image signed by the release key, and the release key itself (an
Ed25519 PEM, :mod:`stm32_fota.signing`), which also signs ``manifest.json`` (the detached signature
``manifest.json.sig``). In each folder the images go first and the manifest with its signature
after them; the versioned copy goes first, then the top-level files, and ``version.txt`` last: a
reader that sees a new version finds its files complete (the update server reads them from
``releases/<version>/``), and an upload that fails half-way leaves ``version.txt`` on the previous
release.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fota_formats.errors import FotaError, ImageError
from fota_formats.image import SLOTS, ImageInfo, validate_image
from fota_formats.release import (
    MANIFEST_FILE,
    MANIFEST_FORMAT,
    RELEASES_DIR,
    SIGNATURE_FILE,
    SLOT_FILES,
    VERSION_FILE,
)
from fota_formats.semver import Version, VersionError
from fota_s3.store import S3Error, S3Store

from stm32_fota.elfcheck import TARGETS, check_elf
from stm32_fota.signing import public_key_hash, ring_verifier, sign

# The image format carries an imgtool signature (checked by check_signed).
IMAGE_SIGNATURES = True


class ReleaseError(FotaError):
    """A release was refused or failed; nothing (or, for an upload failure, not all) was uploaded."""


class Reporter(Protocol):
    def upload_started(self, key: str, size: int) -> None: ...
    def upload_progress(self, key: str, done: int, size: int) -> None: ...
    def upload_finished(self, key: str, size: int, seconds: float) -> None: ...


class SilentReporter:
    def upload_started(self, key: str, size: int) -> None:
        pass

    def upload_progress(self, key: str, done: int, size: int) -> None:
        pass

    def upload_finished(self, key: str, size: int, seconds: float) -> None:
        pass


@dataclass(frozen=True)
class ReleaseFiles:
    """A checked build: the bytes to upload and what they are."""

    version: Version
    images: dict[str, bytes]        # slot file name -> image file bytes
    infos: dict[str, ImageInfo]
    version_text: bytes
    build_time: str
    facts: dict[str, ImageFacts] = field(default_factory=dict)  # slot file name -> what it says


@dataclass(frozen=True)
class ImageFacts:
    """What the manifest says of an image beyond its size and hash."""

    version: str
    build: int
    security_counter: int
    key_hash: str | None            # the public key hash the image names (None: unsigned)


@dataclass
class ReleaseResult:
    version: Version
    previous: Version | None
    location: str
    manifest: dict[str, Any]
    uploaded: list[tuple[str, int]] = field(default_factory=list)  # (key, bytes)
    seconds: float = 0.0

    def summary(self) -> str:
        total = sum(n for _, n in self.uploaded)
        prev = f" (previous: {self.previous})" if self.previous else " (first release in this bucket)"
        lines = [f"Released {self.version}{prev} to {self.location}"
                 + (" as a DOWNGRADE" if self.manifest.get("downgrade") else "")]
        for name, meta in self.manifest["files"].items():
            slot = f" slot {meta['slot']}" if "slot" in meta else ""
            lines.append(f"  {name:<12} {meta['size']:>8} bytes{slot:<8} sha256 {meta['sha256']}")
        lines.append(f"  {len(self.uploaded)} objects, {total} bytes uploaded in {self.seconds:.2f} s; "
                     f"git {self.manifest['git_revision']}")
        return "\n".join(lines)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ReleaseError(f"Failed to release: {path} is missing ({what}); run `invoke build` "
                           "first") from None
    except OSError as e:
        raise ReleaseError(f"Failed to release: cannot read {path}: {e.strerror or e}") from None


def check_build(build_dir: Path) -> ReleaseFiles:
    """Read and validate the build's images and version; raise ReleaseError naming the problem."""
    version_text = _read(build_dir / VERSION_FILE, "the release version")
    try:
        version = Version.parse(version_text.decode("utf-8", "replace"), str(build_dir / VERSION_FILE))
    except VersionError as e:
        raise ReleaseError(f"Failed to release: {e}") from None
    images: dict[str, bytes] = {}
    infos: dict[str, ImageInfo] = {}
    for name, slot in SLOT_FILES.items():
        data = _read(build_dir / name, f"the slot {SLOTS[slot]} image")
        try:
            info = validate_image(data, slot, name=name)
        except ImageError as e:
            raise ReleaseError(f"Failed to release: image check failed: {e}") from None
        if Version(*info.version) != version:
            raise ReleaseError(f"Failed to release: {name} is version {info.version_str}, but the release "
                               f"({build_dir / VERSION_FILE}) is {version}; rebuild both slots")
        images[name] = data
        infos[name] = info
    _check_elves(build_dir, version, infos)
    mtime = max((build_dir / n).stat().st_mtime for n in SLOT_FILES)
    build_time = datetime.fromtimestamp(mtime, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    facts = {name: image_facts(info, build_dir) for name, info in infos.items()}
    return ReleaseFiles(version, images, infos, version_text.strip() + b"\n", build_time, facts)


def image_facts(info: ImageInfo, build_dir: Path) -> ImageFacts:
    """Version, build number, security counter (SEC_CNT TLV) and signing key (KEYHASH TLV) of a
    validated image."""
    return ImageFacts(info.version_str, info.build, info.security_counter, info.key_hash.hex())


def check_signed(files: ReleaseFiles, key_hash: str, image_signatures: bool) -> None:
    """Refuse images that the release key did not sign. ``image_signatures`` False: the image
    format carries no signature, and the manifest's signature is the only one."""
    if not image_signatures:
        return
    for name, facts in files.facts.items():
        if facts.key_hash is None:
            raise ReleaseError(f"Failed to release: {name} is not signed; build it with the signing key "
                               "(invoke build)")
        if facts.key_hash != key_hash:
            raise ReleaseError(f"Failed to release: {name} is signed by key {facts.key_hash[:16]}..., not by "
                               f"the release key {key_hash[:16]}...; rebuild with the release key, or "
                               "release with the key that built it")


def _check_elves(build_dir: Path, version: Version, infos: dict[str, ImageInfo]) -> None:
    """Run the build's ELF checks on the slot ELFs next to the images (a build leaves them there;
    a folder holding only the .bin files, e.g. a downloaded release, is checked by the image rules)."""
    for name in SLOT_FILES:
        stem = name.removesuffix(".bin")
        elf = build_dir / f"{stem}.elf"
        if not elf.is_file():
            continue
        try:
            check_elf(elf, TARGETS[stem])
        except FotaError as e:
            raise ReleaseError(f"Failed to release: ELF check failed:\n{e}") from None


def git_revision(root: Path) -> str:
    """``git rev-parse HEAD`` of ``root`` (+ ``-dirty`` with uncommitted changes), or ``unknown``."""
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return rev + ("-dirty" if dirty else "")


def make_manifest(files: ReleaseFiles, revision: str, downgrade: bool, key_hash: str) -> dict[str, Any]:
    """The manifest (fota_formats.release): ``key_hash`` names the key that signs it."""
    entries: dict[str, Any] = {}
    for name, data in files.images.items():
        info = files.infos[name]
        facts = files.facts.get(name) or ImageFacts(info.version_str, info.build, 0, None)
        entries[name] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                         "slot": info.slot_name, "load_addr": f"0x{info.load_addr:08X}",
                         "version": facts.version, "build": facts.build,
                         "security_counter": facts.security_counter}
    entries[VERSION_FILE] = {"size": len(files.version_text),
                             "sha256": hashlib.sha256(files.version_text).hexdigest()}
    return {"format": MANIFEST_FORMAT, "version": str(files.version), "downgrade": downgrade,
            "build_time": files.build_time,
            "released_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "git_revision": revision, "signing_key": key_hash, "files": entries}


def signed_manifest(manifest: dict[str, Any], key: Ed25519PrivateKey) -> tuple[bytes, bytes]:
    """The manifest's bytes as uploaded and their detached signature (64 raw bytes)."""
    raw = (json.dumps(manifest, indent=2) + "\n").encode()
    return raw, sign(key, raw)


def read_bucket_version(store: S3Store, key: str = VERSION_FILE) -> Version | None:
    """The version in the bucket's ``version.txt`` (None when absent); malformed text is an error."""
    text = store.get_text(key)
    if text is None:
        return None
    return Version.parse(text, store.url(key))


def release(store: S3Store, build_dir: Path, *, signing_key: Ed25519PrivateKey | None, force: bool = False,
            downgrade: bool = False, reporter: Reporter | None = None, revision: str | None = None,
            root: Path | None = None) -> ReleaseResult:
    """Check the build in ``build_dir`` and upload it; see the module docstring for the layout.

    ``signing_key``: the release key (:func:`stm32_fota.signing.load_signing_key`); None is
    refused. ``force`` accepts a version that is not higher than the bucket's (a re-release or a
    correction); ``downgrade`` publishes a lower version marked as a downgrade, which the update
    server then offers to devices running a higher one.
    """
    reporter = reporter or SilentReporter()
    started = time.monotonic()
    if signing_key is None:
        raise ReleaseError("Failed to release: no signing key; the server and the devices refuse an unsigned "
                           "release (set FOTA_SIGNING_KEY or fota.toml signing_key; `invoke keygen` makes "
                           "one)")
    key_hash = public_key_hash(signing_key)
    files = check_build(build_dir)
    check_signed(files, key_hash, IMAGE_SIGNATURES)
    verify = ring_verifier([signing_key.public_key()])
    for name, data in files.images.items():
        try:
            validate_image(data, SLOT_FILES[name], name=name, verify=verify)
        except ImageError as e:
            raise ReleaseError(f"Failed to release: {e}") from None
    try:
        current = read_bucket_version(store)
    except VersionError as e:
        if not force:
            raise ReleaseError(f"Failed to release: {e}; use --force to overwrite it") from None
        current = None
    except S3Error as e:
        raise ReleaseError(f"Failed to release: {e}") from None
    if current is not None:
        if downgrade and files.version >= current:
            raise ReleaseError(f"Failed to release: --downgrade given, but {files.version} is not lower than "
                               f"{current} in {store.url(VERSION_FILE)}")
        if not downgrade and not force and files.version <= current:
            raise ReleaseError(f"Failed to release: version {files.version} is not higher than {current} in "
                               f"{store.url(VERSION_FILE)}; bump the version (invoke build --version X.Y.Z), "
                               "use --force to overwrite, or --downgrade to publish an older version")
    manifest = make_manifest(files, revision or git_revision(root or build_dir.parent), downgrade, key_hash)
    manifest_bytes, signature = signed_manifest(manifest, signing_key)
    result = ReleaseResult(files.version, current, store.url(""), manifest)
    for key, data, ctype in upload_plan(files, manifest_bytes, signature):
        _upload(store, key, data, ctype, reporter)
        result.uploaded.append((key, len(data)))
    result.seconds = time.monotonic() - started
    return result


def upload_plan(files: ReleaseFiles, manifest: bytes, signature: bytes) -> list[tuple[str, bytes, str]]:
    """(key, bytes, content type) in upload order: in each folder the images, then the signature and
    the manifest; ``releases/<version>/`` whole before the top level; ``version.txt`` last."""
    ver_dir = f"{RELEASES_DIR}/{files.version}"
    plan: list[tuple[str, bytes, str]] = []
    for prefix in (ver_dir, ""):
        for name, data in files.images.items():
            plan.append((f"{prefix}/{name}".lstrip("/"), data, "application/octet-stream"))
        plan.append((f"{prefix}/{SIGNATURE_FILE}".lstrip("/"), signature, "application/octet-stream"))
        plan.append((f"{prefix}/{MANIFEST_FILE}".lstrip("/"), manifest, "application/json"))
        plan.append((f"{prefix}/{VERSION_FILE}".lstrip("/"), files.version_text, "text/plain"))
    return plan


def _upload(store: S3Store, key: str, data: bytes, ctype: str, reporter: Reporter) -> None:
    size = len(data)
    done = 0
    reporter.upload_started(key, size)
    t0 = time.monotonic()

    def on_bytes(n: int) -> None:
        nonlocal done
        done += n
        reporter.upload_progress(key, min(done, size), size)

    try:
        store.put_bytes(key, data, ctype, progress=on_bytes)
    except S3Error as e:
        raise ReleaseError(f"Failed to release: {e} (objects uploaded before it stay; version.txt was not "
                           "changed, so readers still see the previous release)") from None
    reporter.upload_finished(key, size, time.monotonic() - t0)


class ConsoleReporter:
    """Progress lines for a terminal: one line per object, rewritten in place while it uploads."""

    def __init__(self, write: Callable[[str], None], tty: bool) -> None:
        self._write = write
        self._tty = tty

    def upload_started(self, key: str, size: int) -> None:
        if self._tty:
            self._write(f"\r  uploading {key:<36} {0:>3}% of {size} bytes")

    def upload_progress(self, key: str, done: int, size: int) -> None:
        if self._tty:
            pct = 100 * done // size if size else 100
            self._write(f"\r  uploading {key:<36} {pct:>3}% of {size} bytes")

    def upload_finished(self, key: str, size: int, seconds: float) -> None:
        self._write(f"\r  uploaded  {key:<36} 100% of {size} bytes in {seconds * 1000:.0f} ms\n")

