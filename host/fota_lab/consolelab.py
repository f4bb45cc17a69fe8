"""The web console in the lab: a registry of simulated devices, a headless Chromium, and the
screenshots of every page that docs/fleet.md shows (``invoke screenshots``).

    >>> from fota_lab.consolelab import screenshots       # doctest: +SKIP
    >>> screenshots(Path("docs/img"))                      # doctest: +SKIP
    [PosixPath('docs/img/console-overview.png'), ...]

The browser is the system's Chromium with its chromedriver (Debian: chromium, chromium-driver),
driven by Selenium (the dev extra).
"""

from __future__ import annotations

import shutil
from typing import Any

from fota_server.registry import Registry

SHA = "ab" * 32


def dev(i: int) -> str:
    """The device ID of simulated device ``i`` (24 hex digits, like an STM32's unique ID)."""
    return f"{i:024x}"


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




PAGES = (("overview", "/"), ("devices", "/devices?group=east"), ("device", "/devices/{device}"),
         ("releases", "/releases"), ("rollouts", "/rollouts"), ("rollout", "/rollouts/{rollout}"))


def _staged_fleet(url: str, device_token: str, operator_token: str, clock: list[float]) -> dict[str, str]:
    """A rollout of 1.1.0 to group east with results spread over an hour of the server's clock,
    one update in progress; the IDs the pages are shown for."""
    import httpx

    op = {"Authorization": f"Bearer {operator_token}"}
    de = {"Authorization": f"Bearer {device_token}"}
    r = httpx.post(f"{url}/api/v1/rollouts", headers=op, timeout=10, json={
        "version": "1.1.0", "name": "1.1.0 to east", "target": {"group": "east"},
        "stages": [{"percent": 20}, {"percent": 100}], "min_sample": 40, "success_threshold": 0.6,
        "failure_threshold": 0.5, "by": "ana", "reason": "1.1.0 passed the bench"})
    r.raise_for_status()
    rollout = r.json()["id"]
    shown = ""
    moving = ""
    east = [i for i in range(2, 241, 2) if i % 4]  # the others run 1.1.0 already
    done: set[int] = set()
    for round_ in range(2):
        if round_:  # the first stage's devices confirmed: the operator opens the next one
            httpx.post(f"{url}/api/v1/rollouts/{rollout}/advance", headers=op, timeout=10,
                       json={"reason": "stage 1 confirmed", "by": "ana"}).raise_for_status()
        for i in east:
            if i in done:
                continue
            slots = {"A": {"state": "valid", "version": "1.0.0"}, "B": {"state": "empty", "version": None}}
            body = {"device_id": dev(i), "running_slot": "A", "running_version": "1.0.0", "group": "east",
                    "slots": slots, "temp_centi": 2400 + 7 * i, "uptime_ms": 3_600_000 + 61_000 * i,
                    "security_counter": 1, "key_id": "3fa2c1d0"}   # what a bridge reads from INFO
            offer = httpx.post(f"{url}/api/v1/checkin", headers=de, json=body, timeout=10).json()
            if not offer.get("update"):
                continue
            done.add(i)
            clock[0] += 60
            report = {"device_id": dev(i), "update_id": offer["update_id"], "stage": "result",
                      "duration_ms": 41_000 + i * 10}
            if round_ and not moving:
                moving = dev(i)
                report.update(stage="progress", offset=offer["size"] * 45 // 100)
            elif len(done) % 7 == 3:
                shown = shown or dev(i)
                report.update(outcome="reverted", reason="REVERTED_WATCHDOG: the new image stopped answering",
                              running_slot="A", running_version="1.0.0")
            else:
                report.update(outcome="confirmed", running_slot="B", running_version="1.1.0")
            httpx.post(f"{url}/api/v1/report", headers=de, json=report, timeout=10).raise_for_status()
    return {"rollout": str(rollout), "device": shown or dev(2), "moving": moving}


def screenshots(out_dir: Any, devices: int = 240, log: Any = print) -> list[Any]:
    """PNG screenshots of every console page (and the device page at phone width) into ``out_dir``,
    from a server on loopback with ``devices`` simulated devices and a staged rollout."""
    import secrets
    import tempfile
    import threading
    import time
    from pathlib import Path

    import uvicorn
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    from fota_server.app import ServerSettings, create_app
    from fota_server.firmware import FirmwareFolder
    from fota_server.trust import KeyRing, load_key

    from .images import install_release
    from .locals3 import free_port

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    operator, device = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    clock = [time.time() - 3 * 3600]
    written: list[Path] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        key = Ed25519PrivateKey.generate()
        folder = FirmwareFolder(tmp / "fw")
        install_release(folder, tmp, "1.0.0", key=key)
        install_release(folder, tmp, "1.1.0", key=key)
        raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        reg = Registry(tmp / "server.db")
        seed(reg, devices)
        reg.close()
        settings = ServerSettings(firmware_dir=folder.root, db_path=tmp / "server.db", token=device,
                                  operator_token=operator, sync_on_start=False, device_rate="100000/minute",
                                  trusted_keys=KeyRing([load_key(raw.hex())]), clock=lambda: clock[0],
                                  source="s3://fota-releases/stm32 (moto, local)")
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                               log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        url = f"http://127.0.0.1:{port}"
        browser = chromium(1200, 900)
        try:
            ids = _staged_fleet(url, device, operator, clock)
            browser.get(url + "/login")
            written.append(_shot(browser, out / "console-login.png"))
            browser.find_element("id", "token").send_keys(operator + "\n")
            time.sleep(0.3)
            for name, page in PAGES:
                browser.get(url + page.format(**ids))
                time.sleep(0.8 if name == "overview" else 0.2)  # the live list's first poll
                written.append(_shot(browser, out / f"console-{name}.png"))
            browser.set_window_size(390, 844)
            browser.get(url + "/devices/" + ids["device"])
            written.append(_shot(browser, out / "console-device-phone.png"))
        finally:
            browser.quit()
            server.should_exit = True
            thread.join(10)
    for path in written:
        log(f"screenshots: {path}")
    return written


def _shot(browser: Any, path: Any) -> Any:
    """The whole page (the window grown to its height), as PNG."""
    width = browser.get_window_size()["width"]
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(width, max(300, min(int(height) + 20, 4000)))
    browser.save_screenshot(str(path))
    return path
