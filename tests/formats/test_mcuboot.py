"""The MCUboot image parser refuses each malformed image by its own rule, and accepts a good one."""

from __future__ import annotations

import struct

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fota_formats.errors import ImageError
from fota_formats.mcuboot import (
    HDR_SIZE,
    PROT_INFO_MAGIC,
    TLV_ED25519,
    TLV_SEC_CNT,
    TLV_SHA256,
    TLV_SLOT,
    build_image,
    validate_image,
)
from fota_formats.spec import IMAGE, LAYOUT
from stm32_fota.signing import public_key_hash, ring_verifier

C = IMAGE.constants
KEY = Ed25519PrivateKey.generate()
OTHER = Ed25519PrivateKey.generate()
VERIFY = ring_verifier([KEY.public_key()])
SLOT_B = C["SLOT_B"]
SRAM_END = LAYOUT.sram_base + LAYOUT.sram_size


def body(slot: int = SLOT_B, size: int = 1024) -> bytes:
    entry = LAYOUT.slot_region(slot).base + HDR_SIZE + 0x189
    return struct.pack("<II", SRAM_END, entry) + bytes(i % 251 for i in range(size - 8))


def image(slot: int = SLOT_B, counter: int = 3, key: Ed25519PrivateKey = KEY,
          b: bytes | None = None) -> bytes:
    return build_image(body(slot) if b is None else b, slot, (1, 2, 3), 9, counter,
                       bytes.fromhex(public_key_hash(key)), key.sign)


def fault(data: bytes | bytearray, slot: int | None = SLOT_B) -> str:
    with pytest.raises(ImageError) as e:
        validate_image(bytes(data), slot, verify=VERIFY)
    assert e.value.fault is not None
    return e.value.fault


def test_a_signed_image_checks_and_says_what_it_holds() -> None:
    data = image()
    info = validate_image(data, SLOT_B, verify=VERIFY)
    assert (info.slot, info.version, info.build, info.security_counter) == (SLOT_B, (1, 2, 3), 9, 3)
    assert info.key_hash.hex() == public_key_hash(KEY) and info.signature_checked
    assert info.size == len(data) == HDR_SIZE + 1024 + C["IMAGE_TLV_AREA_SIZE"]


def offsets(data: bytes) -> dict[str, int]:
    img, prot = struct.unpack_from("<I", data, 12)[0], struct.unpack_from("<H", data, 10)[0]
    signed = HDR_SIZE + img + prot
    return {"prot": HDR_SIZE + img, "unprot": signed, "sha": signed + 4, "keyhash": signed + 40,
            "sig": signed + 76}


def test_each_refusal_has_its_own_rule() -> None:
    data = image()
    o = offsets(data)
    cases: dict[str, tuple[bytearray, str]] = {}

    def case(name: str, at: int, raw: bytes, want: str) -> None:
        d = bytearray(data)
        d[at:at + len(raw)] = raw
        cases[name] = (d, want)

    case("erased", 0, b"\xff" * 32, "erased")
    case("withdrawn", 0, bytes(4), "bad-magic")
    case("header size", 8, struct.pack("<H", 0x100), "bad-header")
    case("flags", 16, struct.pack("<I", 0x20), "bad-header")
    case("image size past the slot", 12, struct.pack("<I", 0x80000), "bad-size")
    case("protected magic", o["prot"], struct.pack("<H", 0x1234), "bad-tlv-info")
    case("unprotected magic", o["unprot"], struct.pack("<H", PROT_INFO_MAGIC), "bad-tlv-info")
    case("unprotected area overlong", o["unprot"] + 2, struct.pack("<H", 0xFFF0), "truncated")
    case("TLV past its area", o["sig"], struct.pack("<HH", TLV_ED25519, 200), "bad-tlv")
    case("counter in the unprotected area", o["sig"], struct.pack("<HH", TLV_SEC_CNT, 64), "misplaced-tlv")
    case("second hash", o["keyhash"], struct.pack("<HH", TLV_SHA256, 32), "duplicate-tlv")
    case("no signature", o["sig"], struct.pack("<HH", 0x7F, 64), "unsigned")
    case("unknown protected", o["prot"] + 4, struct.pack("<HH", 0x60, 4), "unknown-tlv")
    case("flipped body byte", HDR_SIZE + 100, bytes([data[HDR_SIZE + 100] ^ 1]), "bad-hash")
    case("flipped counter", o["prot"] + 8, b"\x02", "bad-hash")
    case("flipped signature", o["sig"] + 10, bytes([data[o["sig"] + 10] ^ 1]), "bad-signature")
    for name, (d, want) in cases.items():
        assert fault(d) == want, name
    # In a slot the bytes after an overlong area are erased flash: the TLV walk meets 0xFFFF lengths.
    overlong = bytes(cases["unprotected area overlong"][0]) + b"\xff" * 0x10000
    with pytest.raises(ImageError) as e:
        validate_image(overlong, SLOT_B, allow_trailing=True)
    assert e.value.fault == "bad-tlv"


def test_unknown_key_wrong_slot_bad_vectors_truncated_trailing() -> None:
    assert fault(image(key=OTHER)) == "unknown-key"
    assert fault(image(slot=C["SLOT_A"])) == "wrong-slot"
    assert fault(image(b=body(C["SLOT_A"]))) == "bad-vectors"   # the slot TLV says B, the reset vector A
    assert fault(image()[:-1]) == "truncated"
    assert fault(image() + b"\xff") == "trailing"
    assert validate_image(image() + b"\xff" * 8, SLOT_B, allow_trailing=True).size == len(image())


def test_missing_protected_tlvs_are_refused() -> None:
    d = bytearray(image())
    o = offsets(bytes(d))
    d[o["prot"] + 4:o["prot"] + 6] = struct.pack("<H", TLV_SLOT)   # SEC_CNT -> a second SLOT
    assert fault(d) == "duplicate-tlv"
