"""The release key: the Ed25519 private key (an imgtool PEM) that signs the images and the manifest.

    >>> key = load_signing_key(Path("~/.config/stm32-fota/signing-key.pem"))   # doctest: +SKIP
    >>> signature = sign(key, manifest_bytes)                                   # doctest: +SKIP

``imgtool keygen -t ed25519`` (``invoke keygen``) writes an unencrypted PKCS#8 PEM; ``cryptography``
reads it as it is. A key with a password is refused here (``imgtool keygen`` without ``-p``): the
release runs unattended. The signature is RFC 8032 Ed25519 over the exact bytes given (64 bytes).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fota_formats.release import key_hash

from .errors import FotaError


class SigningKeyError(FotaError):
    """The release key is missing or is not an Ed25519 private key."""


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """Read the release key; raise SigningKeyError naming the file and what is wrong with it."""
    what = f"the signing key {path}"
    try:
        data = path.expanduser().read_bytes()
    except FileNotFoundError:
        raise SigningKeyError(f"{what} does not exist (make one with `invoke keygen`, or point "
                              "FOTA_SIGNING_KEY / fota.toml signing_key at yours)") from None
    except OSError as e:
        raise SigningKeyError(f"cannot read {what}: {e.strerror or e}") from None
    if b"-----BEGIN" not in data:
        raise SigningKeyError(f"{what} is not a PEM file")
    if b"ENCRYPTED" in data:
        raise SigningKeyError(f"{what} is protected by a password; the release needs an unencrypted "
                              "key (imgtool keygen -t ed25519 without -p), kept outside the repository")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        hint = " (it holds a public key: give the private key)" if b"PUBLIC KEY" in data else ""
        raise SigningKeyError(f"{what} is not a readable private key{hint}: {e}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{what} is a {type(key).__name__.removeprefix('_')}, not an Ed25519 key "
                              "(imgtool keygen -t ed25519)")
    return key


def raw_public(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_hash(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The key's name in manifests and images (fota_formats.release.key_hash)."""
    return key_hash(raw_public(key))


def sign(key: Ed25519PrivateKey, data: bytes) -> bytes:
    """The detached Ed25519 signature of ``data`` (64 raw bytes)."""
    return key.sign(data)


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A trusted key: a public PEM (SubjectPublicKeyInfo, ``imgtool getpub --encoding pem``) or the
    public half of a private one. Raises SigningKeyError naming the file and what is wrong."""
    what = f"the public key {path}"
    try:
        data = path.expanduser().read_bytes()
    except OSError as e:
        raise SigningKeyError(f"cannot read {what}: {e.strerror or e}") from None
    if b"PRIVATE KEY" in data:
        return load_signing_key(path).public_key()
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise SigningKeyError(f"{what} is not a readable PEM public key: {e}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"{what} is a {type(key).__name__.removeprefix('_')}, not an Ed25519 key")
    return key


def ring_verifier(keys: list[Ed25519PublicKey]) -> Callable[[bytes, bytes, bytes], str | None]:
    """The signature check of fota_formats.mcuboot.validate_image over ``keys``: None when the key
    named by the image's key hash signed the digest, else "unknown-key" or "bad-signature"."""
    ring = {bytes.fromhex(public_key_hash(k)): k for k in keys}

    def verify(key_hash: bytes, digest: bytes, signature: bytes) -> str | None:
        key = ring.get(bytes(key_hash))
        if key is None:
            return "unknown-key"
        try:
            key.verify(signature, digest)
        except InvalidSignature:
            return "bad-signature"
        return None

    return verify
