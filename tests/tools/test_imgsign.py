"""imgtool signs the slot images: its output is what fota_formats.mcuboot builds and checks, byte for
byte; `imgtool verify` and `imgtool dumpinfo` accept it; keygen never overwrites a key."""

from __future__ import annotations

import stat
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from fota_formats.mcuboot import HDR_SIZE, build_image, validate_image
from fota_formats.spec import IMAGE, LAYOUT
from fota_testkit.keys import RELEASE_KEY
from stm32_fota.errors import BuildError
from stm32_fota.imgsign import keygen, sign_image
from stm32_fota.signing import SigningKeyError, load_signing_key, public_key_hash, ring_verifier

SLOT_A = IMAGE.constants["SLOT_A"]
ENTRY = LAYOUT.slot_region(SLOT_A).base + HDR_SIZE + 0x1C1
RAW = (bytes(HDR_SIZE) + struct.pack("<II", LAYOUT.sram_base + 0x8000, ENTRY)
       + bytes(range(256)) * 4 + b"\x01\x02")


def test_imgtool_signs_what_the_parser_builds_and_checks(signing_key: Path) -> None:
    signed = sign_image(RAW, slot=SLOT_A, version=(1, 2, 3), build=4, security_counter=7,
                        key_path=signing_key)
    info = validate_image(signed, SLOT_A, verify=ring_verifier([RELEASE_KEY.public_key()]))
    assert (info.version, info.build, info.security_counter, info.slot) == ((1, 2, 3), 4, 7, SLOT_A)
    assert info.key_hash.hex() == public_key_hash(RELEASE_KEY)
    body = RAW[HDR_SIZE:] + b"\xff" * 6              # padded to IMAGE_BODY_ALIGN before signing
    assert signed == build_image(body, SLOT_A, (1, 2, 3), 4, 7, info.key_hash, RELEASE_KEY.sign)


def test_imgtool_verify_and_dumpinfo_accept_the_image(signing_key: Path, tmp_path: Path) -> None:
    out = tmp_path / "slot-a.bin"
    out.write_bytes(sign_image(RAW, slot=SLOT_A, version=(2, 0, 1), build=0, security_counter=1,
                               key_path=signing_key))
    imgtool = [sys.executable, "-m", "imgtool.main"]
    verify = subprocess.run([*imgtool, "verify", "-k", str(signing_key), str(out)], capture_output=True,
                            text=True, timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "Image was correctly validated" in verify.stdout
    dump = subprocess.run([*imgtool, "dumpinfo", str(out)], capture_output=True, text=True, timeout=60)
    assert dump.returncode == 0, dump.stderr
    assert "0x96f3b83d" in dump.stdout.lower() and "sec_cnt" in dump.stdout.lower()


def test_signing_refuses_a_binary_without_header_room(signing_key: Path) -> None:
    with pytest.raises(BuildError, match="must start with 512 zero bytes"):
        sign_image(b"\x01" + RAW[1:], slot=SLOT_A, version=(1, 0, 0), build=0, security_counter=1,
                   key_path=signing_key)
    with pytest.raises(BuildError, match="security counter -1"):
        sign_image(RAW, slot=SLOT_A, version=(1, 0, 0), build=0, security_counter=-1, key_path=signing_key)


def test_keygen_makes_a_private_key_and_never_overwrites_one(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "signing-key.pem"
    digest = keygen(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert digest == public_key_hash(load_signing_key(path))
    before = path.read_bytes()
    with pytest.raises(SigningKeyError, match="never overwritten"):
        keygen(path)
    assert path.read_bytes() == before
