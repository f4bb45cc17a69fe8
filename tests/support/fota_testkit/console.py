"""Helpers of the web console's tests (tests/console) and of ``invoke screenshots``: the tokens of
their servers, device IDs, a registry of simulated devices, and a headless Chromium through the
system's chromedriver (Debian's chromium and chromium-driver; scripts/setup.sh installs them)."""

from __future__ import annotations

import re
import shutil
from typing import Any

from fota_server.registry import Registry

OP_TOKEN = "console-operator-token-0123456789"
DEV_TOKEN = "console-device-token-0123456789"
OP = {"Authorization": f"Bearer {OP_TOKEN}"}
DEVICE = {"Authorization": f"Bearer {DEV_TOKEN}"}
SHA = "ab" * 32


def dev(i: int) -> str:
    return f"{i:024x}"


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    if m is None:
        raise AssertionError("no CSRF field in the page")
    return m.group(1)


def seed(registry: Registry, n: int, *, groups: tuple[str, ...] = ("east", "west"), start: int = 1,
         outcomes: bool = True) -> None:
    """``n`` simulated devices: versions 1.0.0 / 1.1.0, alternating groups; with ``outcomes``, every
    third device has an update, ending confirmed, reverted (with the STM32's reason), failed or in
    progress in turn."""
    for i in range(start, start + n):
        version = "1.1.0" if i % 4 == 0 else "1.0.0"
        slot = "B" if version == "1.1.0" else "A"
        slots: dict[str, dict[str, Any]] = {"A": {"state": "valid", "version": "1.0.0"},
                                            "B": {"state": "valid" if slot == "B" else "empty",
                                                  "version": "1.1.0" if slot == "B" else None}}
        registry.record_checkin(dev(i), slot, version, slots, groups[i % len(groups)] if groups else None)
        if not outcomes or i % 3:
            continue
        target = "B" if slot == "A" else "A"
        uid, _ = registry.open_update(dev(i), "1.2.0", target, f"slot-{target.lower()}.bin", 100_000, SHA,
                                      False, slot, version)
        kind = (i // 3) % 4
        if kind == 3:
            registry.report(dev(i), uid, "progress", 40_000, None, None, None, None, None)
        else:
            outcome = ("confirmed", "reverted", "failed")[kind]
            reason = {"confirmed": None, "reverted": "REVERTED_NO_CONFIRM: the new image did not confirm",
                      "failed": "STM32 refused BEGIN: ERR_VERSION"}[outcome]
            registry.report(dev(i), uid, "result", 100_000, outcome, reason, 3200, slot, version)


def chromium(width: int = 1280, height: int = 900) -> Any:
    """A headless Chromium (selenium.webdriver.Chrome) on the system's chromedriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if binary is None or driver is None:
        raise RuntimeError("the console's browser tests need Chromium and its chromedriver: "
                           "apt-get install chromium chromium-driver (scripts/setup.sh does)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--force-device-scale-factor=1", "--hide-scrollbars"):
        options.add_argument(arg)
    chrome = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    chrome.set_page_load_timeout(20)
    return chrome


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
