"""The post-link step fills size, hash and trailer; validation catches every corrupted field.

Images come from small real ARM ELF files (fota_testkit.elf) and from the real firmware build.
Expected values are computed independently (hashlib, objcopy, a separate Intel HEX reader), never
taken from the code under test.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from fota_formats.image import (
    INFO,
    INFO_OFFSET,
    TRAILER,
    TRAILER_SIZE,
    finish_image,
    parse_version,
    read_image,
    validate_image,
)
from fota_formats.spec import IMAGE, LAYOUT
from fota_testkit.elf import ElfRecipe
from stm32_fota.build import BuildResult
from stm32_fota.elfcheck import TARGETS
from stm32_fota.errors import ImageError
from stm32_fota.postlink import postlink

C = IMAGE.constants
SLOT_A, SLOT_B = C["SLOT_A"], C["SLOT_B"]
SLOT_B_BASE = LAYOUT.region("slot_b").base


def _off(struct_name: str, field: str) -> int:
    return next(f.offset for f in IMAGE.structs[struct_name].fields if f.name == field)


II = {f.name: INFO_OFFSET + f.offset for f in INFO.fields}


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


@pytest.fixture(scope="module")
def slot_b_elf(arm_toolchain: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ElfRecipe(version=(2, 3, 4), build=56).link(tmp_path_factory.mktemp("postlink"), "slot-b")


@pytest.fixture(scope="module")
def slot_b(slot_b_elf: Path) -> bytes:
    """The post-linked image of the small slot-B ELF."""
    postlink(slot_b_elf, TARGETS["slot-b"])
    return slot_b_elf.with_suffix(".bin").read_bytes()


# --- the post-link step ---------------------------------------------------------------------------

def test_size_hash_and_trailer_are_filled(slot_b_elf: Path, slot_b: bytes, tmp_path: Path) -> None:
    raw = objcopy_bin(slot_b_elf, tmp_path / "raw.bin")
    size = int.from_bytes(slot_b[II["image_size"]:II["image_size"] + 4], "little")
    assert size % C["IMAGE_ALIGN"] == 0
    assert len(raw) <= size < len(raw) + C["IMAGE_ALIGN"]
    assert len(slot_b) == size + TRAILER_SIZE
    # Bytes before the trailer: objcopy's output with only ii_image_size changed, then 0xFF padding.
    expected = bytearray(raw + b"\xff" * (size - len(raw)))
    expected[II["image_size"]:II["image_size"] + 4] = size.to_bytes(4, "little")
    assert slot_b[:size] == bytes(expected)
    t = TRAILER.unpack(slot_b, size)
    assert t["magic"] == C["IMAGE_TRAILER_MAGIC"]
    assert t["format"] == C["IMAGE_FORMAT_VERSION"]
    assert t["sig_type"] == C["SIG_NONE"]
    assert t["trailer_size"] == TRAILER_SIZE
    assert t["reserved0"] == 0
    assert t["sha256"] == hashlib.sha256(slot_b[:size]).digest()
    assert set(t["signature"]) == {0xFF}
    assert set(t["reserved1"]) == {0xFF}


def test_image_info_describes_the_image(slot_b_elf: Path, slot_b: bytes) -> None:
    info = read_image(slot_b_elf.with_suffix(".bin"), SLOT_B)
    assert (info.slot, info.slot_name, info.load_addr) == (SLOT_B, "B", SLOT_B_BASE)
    assert (info.version, info.version_str, info.build) == ((2, 3, 4), "2.3.4", 56)
    assert info.file_size == len(slot_b)
    assert info.file_sha256 == hashlib.sha256(slot_b).digest()
    assert info.sha256 == hashlib.sha256(slot_b[:info.image_size]).digest()


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


def test_finish_refuses_an_image_already_finished(slot_b: bytes) -> None:
    size = len(slot_b) - TRAILER_SIZE
    with pytest.raises(ImageError, match=r"ii_image_size is already set"):
        finish_image(slot_b[:size], SLOT_B)


def test_finish_refuses_an_image_too_large_for_the_slot(slot_b: bytes) -> None:
    size = len(slot_b) - TRAILER_SIZE
    raw = bytearray(slot_b[:size])
    raw[II["image_size"]:II["image_size"] + 4] = C["IMAGE_SIZE_UNSET"].to_bytes(4, "little")
    raw += b"\x00" * (LAYOUT.max_image_size - len(raw))
    with pytest.raises(ImageError, match=rf"exceeds the limit of slot B \({LAYOUT.max_image_size} bytes\)"):
        finish_image(raw, SLOT_B, name="big.bin")


def test_finish_refuses_the_wrong_slot(slot_b_elf: Path, tmp_path: Path) -> None:
    raw = objcopy_bin(slot_b_elf, tmp_path / "raw.bin")
    with pytest.raises(ImageError, match=r"ii_slot is 1 \(slot B\), expected 0 \(slot A\)"):
        finish_image(raw, SLOT_A)


def test_bootloader_bin_is_the_plain_flash_contents(fw_build: BuildResult, tmp_path: Path) -> None:
    boot = fw_build.target("bootloader")
    data = boot.bin.read_bytes()
    assert data == objcopy_bin(boot.elf, tmp_path / "boot.bin")
    mem = read_ihex(boot.hex)
    base = LAYOUT.region("bootloader").base
    assert bytes(mem[base + i] for i in range(len(data))) == data


@pytest.mark.parametrize("name", ["slot-a", "slot-b"])
def test_real_slot_images_validate(fw_build: BuildResult, name: str, tmp_path: Path) -> None:
    t = fw_build.target(name)
    data = t.bin.read_bytes()
    info = validate_image(data, TARGETS[name].slot, name=t.bin.name)
    raw = objcopy_bin(t.elf, tmp_path / "raw.bin")
    assert data[:len(raw)][:II["image_size"]] == raw[:II["image_size"]]
    assert info.load_addr == TARGETS[name].region.base


# --- validation catches each corrupted field -------------------------------------------------------

def _put(at: int, value: int, width: int) -> Callable[[bytearray], None]:
    def patch(b: bytearray) -> None:
        b[at:at + width] = value.to_bytes(width, "little")
    return patch


def _trailer_at(b: bytearray) -> int:
    return len(b) - TRAILER_SIZE


def _put_trailer(field: str, value: int, width: int) -> Callable[[bytearray], None]:
    def patch(b: bytearray) -> None:
        at = _trailer_at(b) + _off("image_trailer", field)
        b[at:at + width] = value.to_bytes(width, "little")
    return patch


def _rehash(patch: Callable[[bytearray], None]) -> Callable[[bytearray], None]:
    """Apply ``patch`` to the image bytes, then fix the hash, so that only the patched rule fails."""
    def apply(b: bytearray) -> None:
        patch(b)
        size = _trailer_at(b)
        at = size + _off("image_trailer", "sha256")
        b[at:at + 32] = hashlib.sha256(b[:size]).digest()
    return apply


def _flip(at: int) -> Callable[[bytearray], None]:
    def patch(b: bytearray) -> None:
        b[at] ^= 0x01
    return patch


def _flip_code(b: bytearray) -> None:
    b[II["reserved"] + 8 + 4] ^= 0x80   # a byte of code after the information block


def _flip_stored_hash(b: bytearray) -> None:
    b[_trailer_at(b) + _off("image_trailer", "sha256")] ^= 0xFF


CORRUPTIONS: dict[str, tuple[Callable[[bytearray], None], str]] = {
    "magic": (_put(II["magic"], 0x12345678, 4), r"ii_magic is 0x12345678, expected 0x41544F46"),
    "magic-erased": (_put(II["magic"], 0xFFFFFFFF, 4), r"ii_magic is 0xFFFFFFFF"),
    "withdrawn": (_put(II["magic"], C["IMAGE_INVALIDATED_MAGIC"], 4), r"withdrawn: ii_magic is 0x00000000"),
    "format": (_put(II["format"], 2, 2), r"ii_format is 2, expected 1"),
    "slot-unknown": (_put(II["slot"], 7, 1), r"ii_slot is 7, expected 0 or 1"),
    "slot-other": (_put(II["slot"], 0, 1), r"ii_load_addr is 0x08060000, expected 0x08020000"),
    "load-addr": (_put(II["load_addr"], 0x08060100, 4), r"ii_load_addr is 0x08060100, expected 0x08060000"),
    "size-unset": (_put(II["image_size"], 0xFFFFFFFF, 4), r"ii_image_size is unset"),
    "size-misaligned": (_put(II["image_size"], 0x301, 4), r"ii_image_size 769 is not a multiple of 8"),
    "size-tiny": (_put(II["image_size"], 0x100, 4), r"ii_image_size 256 ends before the information block"),
    "size-over-limit": (_put(II["image_size"], LAYOUT.max_image_size, 4), r"exceeds the limit of slot B"),
    "size-beyond-file": (_put(II["image_size"], 0x1000, 4), r"the file is truncated"),
    "trailer-magic": (_put_trailer("magic", 0, 4), r"it_magic is 0x00000000, expected 0x52544F46"),
    "trailer-format": (_put_trailer("format", 9, 2), r"it_format is 9, expected 1"),
    "trailer-size": (_put_trailer("trailer_size", 64, 4), r"it_trailer_size is 64, expected 128"),
    "sig-type": (_put_trailer("sig_type", 5, 2), r"it_sig_type is 5, expected 0"),
    "signed": (_put_trailer("sig_type", C["SIG_ED25519"], 2), r"signed images are not supported"),
    "code-byte": (_flip_code, r"SHA-256 of bytes \[0, \d+\) is [0-9a-f]{64}, it_sha256 says"),
    "vector-byte": (_flip(4), r"reset handler 0x[0-9A-F]{8} has the Thumb bit clear"),
    "sp-byte": (_flip(0), r"initial stack pointer 0x[0-9A-F]{8} is outside SRAM"),
    "nmi-vector-byte": (_flip(8), r"SHA-256 of bytes"),
    "stored-hash": (_flip_stored_hash, r"it_sha256 says"),
    "sp-outside-sram": (_rehash(_put(0, 0x10010000, 4)), r"initial stack pointer 0x10010000 is outside SRAM"),
    "sp-at-sram-base": (_rehash(_put(0, LAYOUT.sram_base, 4)), r"stack pointer 0x20000000 is outside SRAM"),
    "sp-misaligned": (_rehash(_put(0, LAYOUT.sram_base + 0x1004, 4)), r"0x20001004 is not 8-byte aligned"),
    "reset-no-thumb": (_rehash(lambda b: b.__setitem__(4, b[4] & 0xFE)), r"has the Thumb bit clear"),
    "reset-outside": (_rehash(_put(4, 0x08020101, 4)), r"reset handler 0x08020101 is outside the image"),
    "reset-past-image": (_rehash(lambda b: _put(4, SLOT_B_BASE + len(b) - TRAILER_SIZE + 1, 4)(b)),
                         r"reset handler 0x[0-9A-F]{8} is outside the image \(0x08060000-0x"),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_validate_catches_corruption(slot_b: bytes, case: str) -> None:
    patch, message = CORRUPTIONS[case]
    bad = bytearray(slot_b)
    patch(bad)
    assert bad != slot_b
    slot = SLOT_A if case == "slot-other" else None
    with pytest.raises(ImageError, match=message) as e:
        validate_image(bytes(bad), slot, name="bad.bin")
    assert str(e.value).startswith("bad.bin: ")


def test_validate_refuses_the_other_slot(slot_b: bytes) -> None:
    with pytest.raises(ImageError, match=r"ii_slot is 1 \(slot B\), expected 0 \(slot A\): .*other slot"):
        validate_image(slot_b, SLOT_A)


def test_validate_length_rules(slot_b: bytes) -> None:
    with pytest.raises(ImageError, match=r"too short for the information block"):
        validate_image(slot_b[:INFO_OFFSET + 4])
    with pytest.raises(ImageError, match=r"the file is truncated"):
        validate_image(slot_b[:-1])
    with pytest.raises(ImageError, match=r"3 unexpected bytes after the trailer"):
        validate_image(slot_b + b"\xff" * 3)
    # A dump of a whole slot carries erased flash after the trailer.
    assert validate_image(slot_b + b"\xff" * 64, allow_trailing=True).file_size == len(slot_b)


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
