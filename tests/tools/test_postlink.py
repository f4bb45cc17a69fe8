"""The post-link step signs slot images with imgtool (MCUboot format) and writes .bin and .hex;
the bootloader's files are the plain flash contents.

Images come from small real ARM ELF files (fota_testkit.elf) and from the real firmware build.
Expected values are computed independently (hashlib, objcopy, a separate Intel HEX reader, imgtool's
own verify and dumpinfo), never taken from the code under test.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from fota_formats.image import HDR_SIZE, HEADER, parse_version, read_image, validate_image
from fota_formats.spec import IMAGE, LAYOUT
from fota_testkit.elf import ElfRecipe
from fota_testkit.keys import RELEASE_KEY
from stm32_fota.build import BuildResult
from stm32_fota.elfcheck import TARGETS
from stm32_fota.errors import BuildError, ImageError
from stm32_fota.postlink import Signing, postlink
from stm32_fota.signing import SigningKeyError, public_key_hash, ring_verifier

C = IMAGE.constants
SLOT_A, SLOT_B = C["SLOT_A"], C["SLOT_B"]
SLOT_B_BASE = LAYOUT.region("slot_b").base
VERIFY = ring_verifier([RELEASE_KEY.public_key()])


def objcopy_bin(elf: Path, out: Path) -> bytes:
    """objcopy's view of the flash contents (gaps 0xFF, as erased flash)."""
    subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", "--gap-fill", "0xff", str(elf), str(out)],
                   check=True, capture_output=True, timeout=30)
    return out.read_bytes()


def read_ihex(path: Path) -> dict[int, int]:
    """A minimal independent Intel HEX reader: address -> byte; checks every record's checksum."""
    mem: dict[int, int] = {}
    upper = 0
    for line in path.read_text(encoding="ascii").splitlines():
        assert line.startswith(":")
        rec = bytes.fromhex(line[1:])
        assert sum(rec) & 0xFF == 0, f"bad checksum: {line}"
        n, addr, rtype, payload = rec[0], int.from_bytes(rec[1:3], "big"), rec[3], rec[4:-1]
        assert len(payload) == n
        if rtype == 0x04:
            upper = int.from_bytes(payload, "big") << 16
        elif rtype == 0x00:
            for i, b in enumerate(payload):
                mem[upper + addr + i] = b
        elif rtype == 0x01:
            break
    return mem


def imgtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "imgtool.main", *args], capture_output=True, text=True,
                          timeout=60)


@pytest.fixture(scope="module")
def slot_b_elf(arm_toolchain: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ElfRecipe().link(tmp_path_factory.mktemp("postlink"), "slot-b")


@pytest.fixture(scope="module")
def slot_b(slot_b_elf: Path, signing_key: Path) -> bytes:
    """The post-linked image of the small slot-B ELF: v2.3.4+56, security counter 5."""
    postlink(slot_b_elf, TARGETS["slot-b"], Signing(signing_key, (2, 3, 4), 56, 5))
    return slot_b_elf.with_suffix(".bin").read_bytes()


# --- the post-link step ---------------------------------------------------------------------------

def test_the_linked_bytes_are_signed_as_they_are(slot_b_elf: Path, slot_b: bytes, tmp_path: Path) -> None:
    raw = objcopy_bin(slot_b_elf, tmp_path / "raw.bin")
    info = validate_image(slot_b, SLOT_B, verify=VERIFY)
    h = HEADER.unpack(slot_b)
    assert (h["magic"], h["hdr_size"], h["load_addr"], h["flags"]) == (C["IMAGE_MAGIC"], HDR_SIZE, 0, 0)
    body = raw[HDR_SIZE:] + b"\xff" * (-(len(raw) - HDR_SIZE) % C["IMAGE_BODY_ALIGN"])
    assert h["img_size"] == len(body)
    assert slot_b[HDR_SIZE:HDR_SIZE + len(body)] == body            # the linked code, untouched
    assert set(slot_b[HEADER.size:HDR_SIZE]) == {0}                  # header padding
    assert len(slot_b) == HDR_SIZE + len(body) + C["IMAGE_TLV_AREA_SIZE"]
    assert info.digest == hashlib.sha256(slot_b[:info.signed_size]).digest()


def test_the_image_says_what_the_build_asked(slot_b_elf: Path, slot_b: bytes) -> None:
    info = read_image(slot_b_elf.with_suffix(".bin"), SLOT_B, verify=VERIFY)
    assert (info.slot, info.slot_name, info.load_addr) == (SLOT_B, "B", SLOT_B_BASE)
    assert (info.version, info.version_str, info.build, info.security_counter) == ((2, 3, 4), "2.3.4", 56, 5)
    assert info.key_hash.hex() == public_key_hash(RELEASE_KEY)
    assert info.file_size == len(slot_b) and info.file_sha256 == hashlib.sha256(slot_b).digest()


def test_imgtool_verifies_and_dumps_the_image(slot_b_elf: Path, signing_key: Path) -> None:
    out = imgtool("verify", "-k", str(signing_key), str(slot_b_elf.with_suffix(".bin")))
    assert out.returncode == 0 and "Image was correctly validated" in out.stdout, out.stdout + out.stderr
    dump = imgtool("dumpinfo", str(slot_b_elf.with_suffix(".bin")))
    assert dump.returncode == 0, dump.stderr
    text = dump.stdout.lower()
    assert "sec_cnt" in text and "0xa0" in text and "ed25519" in text and "2.3.4+56" in text, dump.stdout


def test_hex_holds_the_bin_at_the_slot_base(slot_b_elf: Path, slot_b: bytes) -> None:
    mem = read_ihex(slot_b_elf.with_suffix(".hex"))
    assert min(mem) == SLOT_B_BASE
    assert bytes(mem[SLOT_B_BASE + i] for i in range(len(slot_b))) == slot_b
    assert len(mem) == len(slot_b)


def test_hex_converts_back_with_objcopy(slot_b_elf: Path, slot_b: bytes, tmp_path: Path) -> None:
    out = tmp_path / "back.bin"
    hex_path = slot_b_elf.with_suffix(".hex")
    subprocess.run(["arm-none-eabi-objcopy", "-I", "ihex", "-O", "binary", str(hex_path), str(out)],
                   check=True, capture_output=True, timeout=30)
    assert out.read_bytes() == slot_b


def test_a_slot_image_is_never_written_unsigned(arm_toolchain: None, tmp_path: Path) -> None:
    elf = ElfRecipe().link(tmp_path, "slot-b")
    with pytest.raises(BuildError, match="must be signed"):
        postlink(elf, TARGETS["slot-b"])
    with pytest.raises(SigningKeyError, match="does not exist"):
        postlink(elf, TARGETS["slot-b"], Signing(tmp_path / "no-key.pem", (1, 0, 0), 0, 1))
    assert not elf.with_suffix(".bin").exists() and not elf.with_suffix(".hex").exists()


def test_bootloader_bin_is_the_plain_flash_contents(fw_build: BuildResult, tmp_path: Path) -> None:
    boot = fw_build.target("bootloader")
    data = boot.bin.read_bytes()
    assert data == objcopy_bin(boot.elf, tmp_path / "boot.bin")
    mem = read_ihex(boot.hex)
    base = LAYOUT.region("bootloader").base
    assert bytes(mem[base + i] for i in range(len(data))) == data


@pytest.mark.parametrize("name", ["slot-a", "slot-b"])
def test_real_slot_images_validate(fw_build: BuildResult, name: str, tmp_path: Path,
                                   signing_key: Path) -> None:
    t = fw_build.target(name)
    data = t.bin.read_bytes()
    info = validate_image(data, TARGETS[name].slot, name=t.bin.name, verify=VERIFY)
    raw = objcopy_bin(t.elf, tmp_path / "raw.bin")
    assert data[HDR_SIZE:len(raw)] == raw[HDR_SIZE:]
    assert info.load_addr == TARGETS[name].region.base and info.security_counter == 1
    out = imgtool("verify", "-k", str(signing_key), str(t.bin))
    assert out.returncode == 0 and "Image was correctly validated" in out.stdout, out.stdout + out.stderr


def test_the_build_folder_holds_no_private_key(fw_build: BuildResult) -> None:
    """Only public keys reach the build folder (the key ring header); no PEM private key, no raw
    private key bytes of the signing key anywhere in it."""
    from cryptography.hazmat.primitives import serialization

    secret = RELEASE_KEY.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                       serialization.NoEncryption())
    files = [p for p in fw_build.build_dir.rglob("*") if p.is_file()]
    assert (fw_build.build_dir / "gen" / "fota_keyring.h").is_file()
    for p in files:
        data = p.read_bytes()
        assert b"PRIVATE KEY" not in data and secret not in data, p


def test_read_image_reports_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match=r"Failed to read image .*nothing\.bin: No such file"):
        read_image(tmp_path / "nothing.bin")


@pytest.mark.parametrize(("text", "message"), [
    ("1.0", r"expected MAJOR.MINOR.PATCH"),
    ("v1.0.0", r"expected MAJOR.MINOR.PATCH"),
    ("256.0.0", r"major 256 exceeds 255"),
    ("1.256.0", r"minor 256 exceeds 255"),
    ("1.0.65536", r"patch 65536 exceeds 65535"),
])
def test_parse_version_rejects(text: str, message: str) -> None:
    with pytest.raises(ImageError, match=rf"Failed to parse version '{text}': {message}"):
        parse_version(text)


def test_parse_version_accepts_the_field_maxima() -> None:
    assert parse_version("255.255.65535") == (255, 255, 65535)
    assert parse_version("1.0.0") == (1, 0, 0)
