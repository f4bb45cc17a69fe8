"""The releases on the server's disk as the console lists them, with their signature state."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fota_formats.errors import FotaError
from fota_formats.image import SLOTS, ImageError, validate_image
from fota_formats.release import MANIFEST_FILE, SIGNATURE_FILE

from fota_server.firmware import FirmwareFolder
from fota_server.trust import KeyRing


@dataclass(frozen=True)
class ReleaseRow:
    version: str
    current: bool
    downgrade: bool
    files: list[tuple[str, int, str, str]]  # name, size, SHA-256, the image's own signature state
    signature: str


def signature_state(path: Path, keys: KeyRing) -> str:
    """The one place the console reads a release's signature from: its manifest's detached
    signature checked again with the server's trusted keys (``fota_server.trust``)."""
    try:
        raw = (path / MANIFEST_FILE).read_bytes()
    except OSError as e:
        return f"cannot read {MANIFEST_FILE}: {e.strerror or e}"
    sig_path = path / SIGNATURE_FILE
    signature = sig_path.read_bytes() if sig_path.is_file() else None
    try:
        key = keys.verify_manifest(raw, signature, str(path))
    except FotaError as e:
        return f"not verified: {str(e).split(': ', 1)[-1]}"
    return f"signed, verified with key {key[:16]}"


def image_state(name: str, data: bytes, keys: KeyRing) -> str:
    """An image's security counter and signing key, its imgtool signature checked again with the
    server's trusted keys (what the STM32 checks at VERIFY with its own key ring)."""
    slot = next((s for s in SLOTS if name == f"slot-{'ab'[s]}.bin"), None)
    try:
        info = validate_image(data, slot, name=name, verify=keys.verify_image)
    except ImageError as e:
        return f"not verified: {str(e).split(': ', 1)[-1]}"
    return f"counter {info.security_counter}, key {info.key_id}, signature verified"


def release_rows(folder: FirmwareFolder, keys: KeyRing) -> list[ReleaseRow]:
    """The installed releases, newest first; one that does not load says why in its signature column."""
    current = folder.current_target()
    rows = []
    for version, path in reversed(folder.installed()):
        try:
            rel = folder.load(path)
        except FotaError as e:
            rows.append(ReleaseRow(str(version), path == current, False, [], f"does not load: {e}"))
            continue
        if rel is None:
            continue
        files = [(name, len(rel.files[name]), sha, image_state(name, rel.files[name], keys))
                 for name, sha in sorted(rel.sha256.items())]
        rows.append(ReleaseRow(str(version), path == current, rel.downgrade, files,
                               signature_state(path, keys)))
    return rows
