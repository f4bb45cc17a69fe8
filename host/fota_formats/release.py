"""Where a release lives in the bucket and on the server's disk, and what its manifest may weigh.

Under the configured prefix (the names of the product brief, so an existing bucket keeps working)::

    slot-a.bin  slot-b.bin  manifest.json  manifest.json.sig  version.txt      the current release
    releases/<version>/{slot-a.bin,slot-b.bin,manifest.json,manifest.json.sig,version.txt}   every release

``manifest.json`` (format 2) names each file's size and SHA-256, and for each image its slot, load
address, version, build number and security counter; ``signing_key`` is the hash of the public key
that signed it (:func:`key_hash`). ``manifest.json.sig`` is the detached Ed25519 signature (RFC 8032,
raw 64 bytes) over the exact bytes of ``manifest.json``, made with the release key, the same
Ed25519 key that signs the images (docs/security.md).

The publisher (``stm32_fota.release``) writes this layout and the server (``fota_server.firmware``)
reads it; both take the names from here.
"""

from __future__ import annotations

import hashlib
import re

from .image import SLOTS

MANIFEST_FORMAT = 2
VERSION_FILE = "version.txt"
MANIFEST_FILE = "manifest.json"
SIGNATURE_FILE = "manifest.json.sig"
SIGNATURE_SIZE = 64  # a raw Ed25519 signature (R || S)
PUBLIC_KEY_SIZE = 32  # a raw Ed25519 public key
# DER of an Ed25519 SubjectPublicKeyInfo up to the raw key (RFC 8410): imgtool hashes the whole DER
ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")
KEY_HASH = re.compile(r"[0-9a-f]{64}")
RELEASES_DIR = "releases"
# file name -> slot number: the image for each slot, as the bridge asks for it
SLOT_FILES: dict[str, int] = {f"slot-{name.lower()}.bin": num for num, name in SLOTS.items()}
MAX_MANIFEST_SIZE = 64 * 1024


def key_hash(public_key: bytes) -> str:
    """The hash that names an Ed25519 public key (32 raw bytes): SHA-256 of its DER
    SubjectPublicKeyInfo, as imgtool computes an image's KEYHASH TLV; lower-case hex."""
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise ValueError(f"an Ed25519 public key is {PUBLIC_KEY_SIZE} bytes, not {len(public_key)}")
    return hashlib.sha256(ED25519_SPKI_PREFIX + public_key).hexdigest()
