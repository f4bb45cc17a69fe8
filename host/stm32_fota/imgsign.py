"""Signing slot images and making signing keys with imgtool, MCUboot's own tool.

    >>> signed = sign_image(raw, slot=1, version=(1, 2, 0), build=7, security_counter=1,
    ...                     key_path=Path("~/.config/stm32-fota/signing-key.pem"))   # doctest: +SKIP
    >>> keygen(Path("~/.config/stm32-fota/signing-key.pem"))                        # doctest: +SKIP
    '3fa2c1d0...'

``sign_image`` does what ``imgtool sign --header-size 0x200 --version M.m.p+b --security-counter N
--custom-tlv 0xA0 <slot base> --key K`` does (imgtool's Python API, the same code): the header into
the 0x200 zero bytes the linker reserved, the protected TLVs (security counter, slot), the SHA-256,
the key hash and the Ed25519 signature of the SHA-256. The result is checked with
:func:`fota_formats.mcuboot.validate_image` and the key's public half before it is returned.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path

import click
from fota_formats.errors import ImageError
from fota_formats.mcuboot import BODY_ALIGN, HDR_SIZE, TLV_SLOT, validate_image
from fota_formats.spec import LAYOUT
from imgtool import image as imgtool_image
from imgtool import keys as imgtool_keys
from imgtool.version import decode_version

from .errors import BuildError
from .signing import SigningKeyError, load_signing_key, public_key_hash, ring_verifier

MAX_SECURITY_COUNTER = 0xFFFF_FFFF


def check_security_counter(value: int) -> int:
    if not 0 <= value <= MAX_SECURITY_COUNTER:
        raise BuildError(f"Failed to use security counter {value}: must be 0..{MAX_SECURITY_COUNTER}")
    return value


def sign_image(raw: bytes, *, slot: int, version: tuple[int, int, int], build: int, security_counter: int,
               key_path: Path, name: str = "image") -> bytes:
    """Sign the linked binary ``raw`` (from the slot base: IMAGE_HDR_SIZE zero bytes, then the vector
    table) for ``slot``; padded with 0xFF to a multiple of IMAGE_BODY_ALIGN first."""
    key_path = key_path.expanduser()
    private = load_signing_key(key_path)          # names a missing, encrypted or non-Ed25519 key
    check_security_counter(security_counter)
    if len(raw) <= HDR_SIZE or any(raw[:HDR_SIZE]):
        raise BuildError(f"Failed to sign {name}: it must start with {HDR_SIZE} zero bytes for the image "
                         "header (the linker reserves them) and hold more than that")
    data = bytes(raw) + b"\xff" * (-(len(raw) - HDR_SIZE) % BODY_ALIGN)
    key = imgtool_keys.load(str(key_path))
    img = imgtool_image.Image(version=decode_version(f"{version[0]}.{version[1]}.{version[2]}+{build}"),
                              header_size=HDR_SIZE, pad_header=False, security_counter=security_counter,
                              endian="little")
    with tempfile.TemporaryDirectory(prefix="fota-sign-") as tmp:
        src = Path(tmp) / "unsigned.bin"
        src.write_bytes(data)
        try:
            with contextlib.redirect_stdout(io.StringIO()):   # imgtool prints "sign the digest"
                img.load(str(src))
                img.create(key, "hash", None, custom_tlvs={
                    TLV_SLOT: LAYOUT.slot_region(slot).base.to_bytes(4, "little")})
        except (click.UsageError, ValueError) as e:
            raise BuildError(f"Failed to sign {name} with imgtool: {e}") from None
    signed = bytes(img.payload)
    try:
        validate_image(signed, slot, name=name, verify=ring_verifier([private.public_key()]))
    except ImageError as e:
        raise BuildError(f"Failed to sign {name}: imgtool's output does not check: {e}") from None
    return signed


def keygen(path: Path) -> str:
    """Make an Ed25519 signing key at ``path`` (``imgtool keygen -t ed25519``), mode 0600, never over
    an existing file; return the public key's hash (hex)."""
    path = path.expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)   # refuses an existing file
    except FileExistsError:
        raise SigningKeyError(f"Failed to make a signing key: {path} exists; it is never overwritten "
                              "(move it away first, or give another --key)") from None
    os.close(fd)
    try:
        imgtool_keys.Ed25519.generate().export_private(str(path))      # rewrites the 0600 file
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return public_key_hash(load_signing_key(path))
