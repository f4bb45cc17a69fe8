"""The Python MCUboot check (fota_formats.mcuboot) and the bootloader's C check (stm32/lib/mcuboot.c)
give the same verdict, rule for rule: on hand-made bad images that name the rule that must refuse
each, and on random corruptions of header and TLV areas, which both must refuse (or accept) for the
same reason. The C ring trusts test key 0 of tests/c/mcuboot_fixture.c (seed 0x5A * 32)."""

from __future__ import annotations

import random
import struct
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fota_formats.errors import ImageError
from fota_formats.mcuboot import HDR_SIZE, TLV_SLOT, build_image, validate_image
from fota_formats.spec import IMAGE, LAYOUT
from stm32_fota.signing import public_key_hash, ring_verifier

C = IMAGE.constants
KEY = Ed25519PrivateKey.from_private_bytes(b"\x5a" * 32)       # test key 0 of the C fixture
STRANGER = Ed25519PrivateKey.from_private_bytes(b"\x5b" * 32)  # test key 1: not in the ring
VERIFY = ring_verifier([KEY.public_key()])
SLOT = C["SLOT_B"]


def image(slot: int = SLOT, key: Ed25519PrivateKey = KEY, size: int = 2048, counter: int = 2) -> bytes:
    entry = LAYOUT.slot_region(slot).base + HDR_SIZE + 0x101
    body = struct.pack("<II", LAYOUT.sram_base + LAYOUT.sram_size, entry) + \
        bytes((i * 13) & 0xFF for i in range(size - 8))
    return build_image(body, slot, (1, 4, 2), 17, counter, bytes.fromhex(public_key_hash(key)), key.sign)


def python_fault(data: bytes) -> str:
    try:
        validate_image(data, SLOT, verify=VERIFY, allow_trailing=True)
    except ImageError as e:
        assert e.fault is not None, str(e)
        return e.fault
    return "ok"


def c_faults(runner: Path, tmp_path: Path, images: list[bytes]) -> list[str]:
    files = []
    for i, data in enumerate(images):
        f = tmp_path / f"case-{i}.bin"
        f.write_bytes(data)
        files.append(str(f))
    proc = subprocess.run([str(runner), "mcuboot", str(SLOT), *files], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and not proc.stderr, proc.stdout + proc.stderr
    return proc.stdout.split()


def edit(data: bytes, at: int, raw: bytes) -> bytes:
    return data[:at] + raw + data[at + len(raw):]


def test_hand_made_cases_agree_rule_for_rule(runner: Path, tmp_path: Path) -> None:
    good = image()
    signed = HDR_SIZE + struct.unpack_from("<I", good, 12)[0] + C["IMAGE_PROT_TLV_SIZE"]
    cases = {
        "good": (good, "ok"),
        "stranger's key": (image(key=STRANGER), "unknown-key"),
        "for slot A": (image(slot=C["SLOT_A"]), "wrong-slot"),
        "withdrawn": (edit(good, 0, bytes(4)), "bad-magic"),
        "header size": (edit(good, 8, b"\x00\x01"), "bad-header"),
        "unknown protected TLV": (edit(good, signed - 16, struct.pack("<HH", 0x61, 4)), "unknown-tlv"),
        "slot TLV as counter": (edit(good, signed - 8, struct.pack("<H", C["IMAGE_TLV_SEC_CNT"])),
                                "duplicate-tlv"),
        "flipped signature": (edit(good, len(good) - 1, bytes([good[-1] ^ 0x80])), "bad-signature"),
        "flipped body": (edit(good, HDR_SIZE + 600, b"\x00\x00"), "bad-hash"),
        "overlong unprotected area": (edit(good, signed + 2, b"\xf0\xff"), "bad-tlv"),
        "slot TLV kind unprotected": (edit(good, signed + 4, struct.pack("<HH", TLV_SLOT, 32)),
                                      "misplaced-tlv"),
    }
    # A slot holds erased flash after the image: so do the files (the C side reads the whole slot).
    pad = b"\xff" * 0x11000
    datas = [d + pad for d, _ in cases.values()]
    got_c = c_faults(runner, tmp_path, datas)
    for (name, (_, want)), data, c in zip(cases.items(), datas, got_c, strict=True):
        assert (python_fault(data), c) == (want, want), name


@pytest.mark.parametrize("seed", [1, 2])
def test_random_corruptions_agree(runner: Path, tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    good = image()
    signed = HDR_SIZE + struct.unpack_from("<I", good, 12)[0] + C["IMAGE_PROT_TLV_SIZE"]
    regions = [(0, 32), (HDR_SIZE, HDR_SIZE + 8), (signed - 20, len(good))]
    datas = []
    for _ in range(300):
        d = bytearray(good)
        for _ in range(rng.randint(1, 3)):
            lo, hi = rng.choice(regions)
            at = rng.randrange(lo, hi)
            d[at] = rng.randrange(256) if rng.random() < 0.7 else d[at] ^ (1 << rng.randrange(8))
        datas.append(bytes(d) + b"\xff" * 0x11000)
    got_c = c_faults(runner, tmp_path, datas)
    # A corrupted size that points past the file's erased tail: only a file can be "truncated";
    # the bootloader, reading the slot, must still refuse it.
    wrong = [(i, py, c) for i, (d, c) in enumerate(zip(datas, got_c, strict=True))
             if (py := python_fault(d)) != c and not (py == "truncated" and c != "ok")]
    assert not wrong, wrong[:10]
    assert len({c for c in got_c}) >= 6, sorted(set(got_c))   # the corruptions reach many rules
