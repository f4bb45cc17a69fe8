"""Helpers of the web console's tests (tests/console) and of ``invoke screenshots``: the tokens of
their servers, device IDs, a registry of simulated devices, and a headless Chromium through the
system's chromedriver (Debian's chromium and chromium-driver; scripts/setup.sh installs them)."""

from __future__ import annotations

import re
from typing import Any

from fota_lab.consolelab import chromium, dev, seed

OP_TOKEN = "console-operator-token-0123456789"
DEV_TOKEN = "console-device-token-0123456789"
OP = {"Authorization": f"Bearer {OP_TOKEN}"}
DEVICE = {"Authorization": f"Bearer {DEV_TOKEN}"}

__all__ = ["DEVICE", "DEV_TOKEN", "OP", "OP_TOKEN", "chromium", "csrf_of", "dev", "install_images", "seed"]


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    if m is None:
        raise AssertionError("no CSRF field in the page")
    return m.group(1)


def install_images(folder: Any, tmp: Any, version: str, slot_a: bytes, slot_b: bytes) -> None:
    """Put a signed release of these two images into a server's firmware folder, as a sync would
    (``folder``: fota_server.firmware.FirmwareFolder; ``tmp``: where to write its build first)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from stm32_fota.release import check_build, make_manifest, signed_manifest
    from stm32_fota.signing import public_key_hash

    build = tmp / f"build-{version}"
    build.mkdir(parents=True, exist_ok=True)
    (build / "slot-a.bin").write_bytes(slot_a)
    (build / "slot-b.bin").write_bytes(slot_b)
    (build / "version.txt").write_text(version + "\n")
    files = check_build(build)
    key = Ed25519PrivateKey.generate()
    raw, signature = signed_manifest(make_manifest(files, "test", False, public_key_hash(key)), key)
    folder.install(files.version, {**files.images, "version.txt": files.version_text}, raw, signature)
