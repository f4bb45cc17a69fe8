"""Every file of a release checked for content, not only against the manifest's hash.

    >>> from fota_formats.semver import Version
    >>> parse_manifest(b"{}", "manifest.json", Version(1, 2, 0))
    Traceback (most recent call last):
    ...
    fota_server.release_check.ReleaseError: Failed to read manifest.json: no 'files' table

:func:`parse_manifest`: the manifest's format, version, downgrade flag, signing key hash, and for
each file a size in range and a SHA-256 (for an image also its slot, load address, version and
security counter); its signature is checked before (:mod:`fota_server.trust`).
:func:`check_files`: each file's size and hash against it, ``version.txt`` parsed and equal to
the release version, each image valid for its slot, of that version, with the manifest's build
number. The sync runs both before anything reaches the disk, and loading a local release runs them
again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Any

from fota_formats.errors import FotaError, ImageError
from fota_formats.image import SLOTS, Verifier, validate_image
from fota_formats.release import KEY_HASH, MANIFEST_FORMAT, SLOT_FILES, VERSION_FILE
from fota_formats.semver import Version, VersionError
from fota_formats.spec import LAYOUT

MAX_VERSION_FILE = 64
MAX_SECURITY_COUNTER = 0xFFFF_FFFF  # MCUboot's IMAGE_TLV_SEC_CNT is a u32
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


class ReleaseError(FotaError):
    """A release (from the bucket or on disk) fails a check."""


def parse_manifest(raw: bytes, where: str, expect: Version) -> dict[str, Any]:
    """Decode and check a manifest: format, version, downgrade flag, and for each file an entry
    with size and SHA-256 (and, for an image, its slot and load address)."""
    def bad(what: str) -> ReleaseError:
        return ReleaseError(f"Failed to read {where}: {what}")

    try:
        manifest = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise bad(f"not JSON ({e})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise bad("no 'files' table")
    if manifest.get("format") != MANIFEST_FORMAT:
        old = (" (an unsigned manifest of an older release tool: release it again)"
               if manifest.get("format") == 1 else "")
        raise bad(f"format {manifest.get('format')!r} is not {MANIFEST_FORMAT}, the one this server "
                  f"reads{old}")
    signer = manifest.get("signing_key")
    if not isinstance(signer, str) or KEY_HASH.fullmatch(signer) is None:
        raise bad(f"'signing_key' {signer!r} is not a key hash (64 lower-case hex digits)")
    try:
        mver = Version.parse(str(manifest.get("version", "")), f"{where} (version)")
    except VersionError as e:
        raise bad(str(e)) from None
    if mver != expect:
        raise bad(f"it describes version {mver}, version.txt says {expect}")
    for name in (*SLOT_FILES, VERSION_FILE):
        entry = manifest["files"].get(name)
        ok = (isinstance(entry, dict) and isinstance(entry.get("size"), int)
              and not isinstance(entry.get("size"), bool) and isinstance(entry.get("sha256"), str)
              and _SHA256.fullmatch(entry["sha256"]) is not None)
        if not ok:
            raise bad(f"no valid entry (size, sha256) for {name}")
        limit = LAYOUT.max_image_size if name in SLOT_FILES else MAX_VERSION_FILE
        if not 0 < entry["size"] <= limit:
            raise bad(f"{name} size {entry['size']} is out of range (1 to {limit})")
    for name, slot in SLOT_FILES.items():
        entry = manifest["files"][name]
        if entry.get("slot") != SLOTS[slot]:
            raise bad(f"{name} is marked for slot {entry.get('slot')!r}, not {SLOTS[slot]!r}")
        base = f"0x{LAYOUT.slot_region(slot).base:08X}"
        if not isinstance(entry.get("load_addr"), str) or entry["load_addr"].upper() != base.upper():
            raise bad(f"{name} load address {entry.get('load_addr')!r} is not Slot {SLOTS[slot]}'s {base}")
        if "build" in entry and (not isinstance(entry["build"], int) or isinstance(entry["build"], bool)):
            raise bad(f"{name} build {entry['build']!r} is not an integer")
        if entry.get("version") != str(mver):
            raise bad(f"{name} version {entry.get('version')!r} is not the release's {str(mver)!r}")
        counter = entry.get("security_counter")
        if (not isinstance(counter, int) or isinstance(counter, bool)
                or not 0 <= counter <= MAX_SECURITY_COUNTER):
            raise bad(f"{name} security_counter {counter!r} is not an integer within "
                      f"0..{MAX_SECURITY_COUNTER}")
    if not isinstance(manifest.get("downgrade", False), bool):
        raise bad("'downgrade' must be true or false")
    return manifest


def check_files(files: dict[str, bytes], manifest: dict[str, Any], version: Version, where: str,
                verify: Verifier | None = None) -> dict[str, int]:
    """Every file of a release, for content and not only hash: sizes and SHA-256 against the
    manifest, ``version.txt`` parsed and equal to ``version``, each image valid for its slot, of
    ``version``, with the manifest's build number and security counter, and (``verify``: the trusted
    keys' check, :meth:`fota_server.trust.KeyRing.verify_image`) signed by a trusted key. Returns
    each image's security counter (its SEC_CNT TLV) by file name."""
    counters: dict[str, int] = {}
    for name in (*SLOT_FILES, VERSION_FILE):
        if name not in files:
            raise ReleaseError(f"Failed to check {where}: {name} is missing")
    for name, data in files.items():
        entry = manifest["files"][name]
        if len(data) != entry["size"]:
            raise ReleaseError(f"Failed to check {where}/{name}: {len(data)} bytes, the manifest says "
                            f"{entry['size']}")
        digest = hashlib.sha256(data).hexdigest()
        if not hmac.compare_digest(digest, entry["sha256"].lower()):
            raise ReleaseError(f"Failed to check {where}/{name}: SHA-256 {digest} differs from the "
                               f"manifest's {entry['sha256']}")
    text = files[VERSION_FILE].decode("utf-8", errors="replace")
    try:
        stated = Version.parse(text, f"{where}/{VERSION_FILE}")
    except VersionError as e:
        raise ReleaseError(f"Failed to check {e}") from None
    if stated != version:
        raise ReleaseError(f"Failed to check {where}/{VERSION_FILE}: it says {stated}, the release is "
                           f"{version}")
    for name, slot in SLOT_FILES.items():
        try:
            info = validate_image(files[name], slot, name=f"{where}/{name}", verify=verify)
        except ImageError as e:
            raise ReleaseError(f"Failed to check {e}") from None
        if Version(*info.version) != version:
            raise ReleaseError(f"Failed to check {where}/{name}: image version {info.version_str}, "
                            f"release {version}")
        counters[name] = info.security_counter
        counter = manifest["files"][name].get("security_counter")
        if counter is not None and counter != info.security_counter:
            raise ReleaseError(f"Failed to check {where}/{name}: image security counter "
                               f"{info.security_counter}, the manifest says {counter}")
        build = manifest["files"][name].get("build")
        if build is not None and build != info.build:
            raise ReleaseError(f"Failed to check {where}/{name}: image build {info.build}, the manifest says "
                            f"{build}")
    return counters
