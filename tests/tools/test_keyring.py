"""The key ring the firmware trusts: from fota.toml's trusted keys (public or private PEMs, only the
public half used) or the signing key's public half; as a C table of raw keys and their KEYHASH."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fota_lab.releasekey import write_key
from stm32_fota.errors import BuildError
from stm32_fota.keyring import keyring_header, trusted_keys
from stm32_fota.signing import SigningKeyError, public_key_hash, raw_public

ROOT = Path(__file__).resolve().parents[2]


def test_the_signing_keys_public_half_by_default_and_the_configured_ring_otherwise(tmp_path: Path) -> None:
    current, nxt = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    cur_files, next_files = write_key(current, tmp_path, "current"), write_key(nxt, tmp_path, "next")
    ring = trusted_keys(cur_files.private)
    assert [public_key_hash(k) for k in ring] == [cur_files.hash]
    ring = trusted_keys(cur_files.private, [cur_files.public, next_files.private, next_files.public])
    assert [public_key_hash(k) for k in ring] == [cur_files.hash, next_files.hash]   # duplicates dropped


def test_the_header_holds_each_raw_key_and_its_hash_and_no_secret(tmp_path: Path) -> None:
    keys = [Ed25519PrivateKey.generate() for _ in range(2)]
    text = keyring_header([k.public_key() for k in keys])
    for k in keys:
        assert ", ".join(f"0x{b:02x}" for b in raw_public(k)) in text
        assert ", ".join(f"0x{b:02x}" for b in bytes.fromhex(public_key_hash(k))) in text
        secret = k.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                 serialization.NoEncryption())
        assert ", ".join(f"0x{b:02x}" for b in secret) not in text
    # It compiles with the firmware's keys/keyring.c, and holds two entries.
    (tmp_path / "fota_keyring.h").write_text(text)
    src = tmp_path / "count.c"
    src.write_text('#include "keyring.h"\n#include <stdio.h>\n'
                   'int main(void) { printf("%zu\\n", fota_keyring.count); return 0; }\n')
    exe = tmp_path / "count"
    proc = subprocess.run(["gcc", "-std=c11", "-Wall", "-Werror", f"-I{tmp_path}", f"-I{ROOT}/stm32/keys",
                           f"-I{ROOT}/stm32/lib", f"-I{ROOT}/stm32/gen", str(src),
                           str(ROOT / "stm32" / "keys" / "keyring.c"), "-o", str(exe)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert subprocess.run([str(exe)], capture_output=True, text=True, timeout=10).stdout.strip() == "2"
    assert re.search(r"/\* [0-9a-f]{8} \*/", text)


def test_bad_keys_are_named(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="no trusted key"):
        keyring_header([])
    with pytest.raises(SigningKeyError, match="cannot read the public key"):
        trusted_keys(tmp_path / "k.pem", [tmp_path / "missing.pub.pem"])
    ec_pub = tmp_path / "ec.pub.pem"
    ec_pub.write_bytes(ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    with pytest.raises(SigningKeyError, match="not an Ed25519 key"):
        trusted_keys(tmp_path / "k.pem", [ec_pub])
