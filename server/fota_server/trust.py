"""The keys the server trusts, and the check of a release's manifest signature.

    >>> ring = KeyRing.load(["/etc/fota/release-key.pub.pem"])     # doctest: +SKIP
    >>> ring.verify_manifest(raw, signature, "s3://fw/releases/1.2.0")  # doctest: +SKIP
    '3f2a...'                                                        # the hash of the key that signed

A trusted key is given (``[server] trusted_keys``, ``FOTA_SERVER_TRUSTED_KEYS``) as a PEM file
holding an Ed25519 public key (``imgtool getpub -k key.pem -e pem``, ``openssl pkey -pubout``) or
as 64 hex digits (the raw 32-byte public key). Each key is known by its hash
(:func:`fota_formats.release.key_hash`, the imgtool KEYHASH of the key). ``cryptography`` verifies
(RFC 8032 Ed25519); imgtool itself is not needed on the server.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fota_formats.errors import FotaError
from fota_formats.release import KEY_HASH, SIGNATURE_FILE, SIGNATURE_SIZE, key_hash

from fota_server.release_check import ReleaseError


class TrustError(FotaError):
    """A configured trusted key is unusable."""


_P = 2**255 - 19
_Y8 = 0x7A03AC9277FDC74EC6CC392CFA53202A0F67100D760B3CBA4FD84D3D706A17C7
# The y coordinates of the eight points of small order on edwards25519 (the torsion subgroup):
# identity (1), order 2 (-1), order 4 (0), order 8 (+-_Y8). Such a "key" verifies a forged
# signature (R = identity, S = 0) for every message in a cofactored verifier, and OpenSSL accepts
# that forgery for the identity key: refused here, as the firmware's ed25519_verify refuses it.
_SMALL_ORDER_Y = frozenset({1, _P - 1, 0, _Y8, _P - _Y8})


def _small_order(raw: bytes) -> bool:
    return (int.from_bytes(raw, "little") & ((1 << 255) - 1)) % _P in _SMALL_ORDER_Y


@dataclass(frozen=True)
class TrustedKey:
    hash: str           # fota_formats.release.key_hash of the raw key
    public: Ed25519PublicKey
    source: str         # where it was configured, for messages

    @property
    def short(self) -> str:
        return self.hash[:16]


def load_key(spec: str) -> TrustedKey:
    """One trusted key from 64 hex digits or a PEM file; raise TrustError naming what is wrong."""
    if len(spec) == 64 and all(c in "0123456789abcdefABCDEF" for c in spec):
        raw = bytes.fromhex(spec)
        try:
            pub = Ed25519PublicKey.from_public_bytes(raw)
        except ValueError as e:
            raise TrustError(f"trusted key {spec[:16]}...: not an Ed25519 public key ({e})") from None
        return _checked(raw, pub, f"hex {spec[:16]}...")
    path = Path(spec)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise TrustError(f"cannot read the trusted key {path}: {e.strerror or e}") from None
    if b"PRIVATE KEY" in data:
        raise TrustError(f"the trusted key {path} holds a private key; the server needs only the public half "
                         "(imgtool getpub -k KEY -e pem, or openssl pkey -in KEY -pubout): keep the private "
                         "key off the server")
    try:
        pub = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise TrustError(f"the trusted key {path} is not a PEM public key: {e}") from None
    if not isinstance(pub, Ed25519PublicKey):
        raise TrustError(f"the trusted key {path} is a {type(pub).__name__.removeprefix('_')}, not an "
                         "Ed25519 public key")
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return _checked(raw, pub, str(path))


def _checked(raw: bytes, pub: Ed25519PublicKey, source: str) -> TrustedKey:
    if _small_order(raw):
        raise TrustError(f"the trusted key {source} is a point of small order (a weak key that verifies "
                         "forged signatures): not a real Ed25519 public key")
    return TrustedKey(key_hash(raw), pub, source)


class KeyRing:
    """The trusted keys, by hash."""

    def __init__(self, keys: Iterable[TrustedKey] = ()) -> None:
        self.keys: dict[str, TrustedKey] = {}
        for k in keys:
            self.keys.setdefault(k.hash, k)

    @classmethod
    def load(cls, specs: Iterable[str]) -> KeyRing:
        return cls(load_key(s) for s in specs)

    def __bool__(self) -> bool:
        return bool(self.keys)

    def describe(self) -> str:
        return ", ".join(k.short for k in self.keys.values()) or "none"

    def get(self, hash_hex: str) -> TrustedKey | None:
        return self.keys.get(hash_hex.lower())

    def verify_image(self, key_hash: bytes, digest: bytes, signature: bytes) -> str | None:
        """The signature check of fota_formats.image.validate_image: None when the trusted key the
        image's KEYHASH names signed its SHA-256 (imgtool's Ed25519 over the 32-byte digest), else
        "unknown-key" or "bad-signature"."""
        key = self.keys.get(bytes(key_hash).hex())
        if key is None:
            return "unknown-key"
        try:
            key.public.verify(bytes(signature), bytes(digest))
        except InvalidSignature:
            return "bad-signature"
        return None

    def verify_manifest(self, raw: bytes, signature: bytes | None, where: str) -> str:
        """Check the detached signature of a manifest's exact bytes; return the signing key's hash.
        Refused (ReleaseError): no trusted key configured, no signature, a signature of the wrong
        size, a manifest naming a key that is not trusted, a signature that does not verify."""
        refused = f"Refused the release in {where}"
        if not self.keys:
            raise ReleaseError(f"{refused}: no trusted release key is configured on this server, so no "
                               "release is accepted (set [server] trusted_keys or FOTA_SERVER_TRUSTED_KEYS "
                               "to the release key's public half)")
        if signature is None:
            raise ReleaseError(f"{refused}: unsigned: {SIGNATURE_FILE} is missing (release it with "
                               "`invoke release` and a signing key)")
        if len(signature) != SIGNATURE_SIZE:
            raise ReleaseError(f"{refused}: {SIGNATURE_FILE} is {len(signature)} bytes, not a "
                               f"{SIGNATURE_SIZE}-byte Ed25519 signature")
        named = _named_key(raw)
        candidates = [self.keys[named]] if named in self.keys else list(self.keys.values())
        for key in candidates:
            try:
                key.public.verify(signature, raw)
            except InvalidSignature:
                continue
            return key.hash
        if named is not None and named not in self.keys:
            raise ReleaseError(f"{refused}: signed by key {named[:16]}..., which this server does not trust "
                               f"(trusted: {self.describe()})")
        tried = ("key " if len(candidates) == 1 else "keys ") + ", ".join(k.short for k in candidates)
        raise ReleaseError(f"{refused}: the signature in {SIGNATURE_FILE} does not verify with the trusted "
                           f"{tried}: the manifest or its signature was changed after signing")


def _named_key(raw: bytes) -> str | None:
    """The ``signing_key`` a manifest names (not yet verified: used to pick a key and word the error)."""
    try:
        value = json.loads(raw).get("signing_key")
    except (ValueError, AttributeError):
        return None
    return value.lower() if isinstance(value, str) and KEY_HASH.fullmatch(value.lower()) else None
