"""Throwaway release keys for the lab, the demo, the tests and the benchmarks.

    >>> key = throwaway_key(Path("/tmp/lab/keys"))          # doctest: +SKIP
    >>> key.private, key.public, key.hash                   # doctest: +SKIP

The private key is written as ``imgtool keygen -t ed25519`` writes it (unencrypted PKCS#8 PEM,
mode 0600), the public half as a SubjectPublicKeyInfo PEM, what the server's ``trusted_keys`` take.
Never use one outside the folder it was made for.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from stm32_fota.signing import public_key_hash

PRIVATE_NAME = "release-key.pem"
PUBLIC_NAME = "release-key.pub.pem"


@dataclass(frozen=True)
class KeyFiles:
    private: Path
    public: Path
    hash: str


def write_key(key: Ed25519PrivateKey, folder: Path, stem: str = "release-key") -> KeyFiles:
    """Write ``key`` as ``<stem>.pem`` (0600) and ``<stem>.pub.pem`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    private, public = folder / f"{stem}.pem", folder / f"{stem}.pub.pem"
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return KeyFiles(private, public, public_key_hash(key))


def throwaway_key(folder: Path, stem: str = "release-key") -> KeyFiles:
    """A fresh Ed25519 release key in ``folder`` (kept when it exists already)."""
    private = folder / f"{stem}.pem"
    if private.is_file():
        from stm32_fota.signing import load_signing_key

        return write_key(load_signing_key(private), folder, stem)
    return write_key(Ed25519PrivateKey.generate(), folder, stem)
