"""A live progress bar in the browser, driven by a real update: the bridge's own updater (under
CPython) streams a release from a real server to the STM32 twin running the real firmware, and its
progress reports move the bar on the device page without a reload, up to the confirmed outcome.

The bridge waits after each of its first progress reports until the browser has shown it, so the
test sees each step whatever the speed of the machine."""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fota_server.app import ServerSettings, create_app
from fota_server.firmware import FirmwareFolder
from fota_testkit.bridge import TwinDevice
from fota_testkit.console import DEV_TOKEN, OP_TOKEN, install_images
from fota_testkit.server import LiveServer
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait
from stm32_fota.project import current

BRIDGE = str(current().bridge_dir)
if BRIDGE not in sys.path:
    sys.path.insert(0, BRIDGE)

import net  # noqa: E402  (the bridge's modules, as the bridge tests import them)
from fotalink import Link  # noqa: E402
from updater import Updater  # noqa: E402

SIZE = 96 * 1024
WAIT_S = 15


class GatedHttp(net.Http):  # type: ignore[misc]
    """The bridge's HTTP client; after each of its first ``gated`` progress reports it waits until
    the test lets it go on."""

    def __init__(self, url: str, gated: int) -> None:
        super().__init__(url, DEV_TOKEN, 10)
        self.gated = gated
        self.reported: queue.Queue[int] = queue.Queue()
        self.go = threading.Semaphore(0)

    def post_json(self, path: str, doc: dict[str, Any], answer: bool = True) -> Any:
        reply = super().post_json(path, doc, answer)
        if doc.get("stage") == "progress" and self.gated > 0:
            self.gated -= 1
            self.reported.put(doc["offset"] * 100 // SIZE)
            if not self.go.acquire(timeout=WAIT_S):
                raise RuntimeError("the test did not let the bridge go on")
        return reply


@pytest.fixture
def twin(fw_build: Any) -> Iterator[TwinDevice]:
    device = TwinDevice(fw_build.build_dir)
    try:
        yield device
    finally:
        device.close()


@pytest.fixture
def server(tmp_path: Path, twin: TwinDevice) -> Iterator[LiveServer]:
    folder = FirmwareFolder(tmp_path / "fw")
    install_images(folder, tmp_path, "1.1.0", twin.image(0, (1, 1, 0), SIZE, build=3),
                   twin.image(1, (1, 1, 0), SIZE, build=3))
    settings = ServerSettings(firmware_dir=folder.root, db_path=tmp_path / "server.db", token=DEV_TOKEN,
                              operator_token=OP_TOKEN, sync_on_start=False, device_rate="1000/minute")
    with LiveServer(create_app(settings)) as srv:
        yield srv


def bar_text(b: webdriver.Chrome) -> str:
    items = b.find_elements(By.CSS_SELECTOR, "ul.live li .live-text")
    return items[0].text if items else ""


def test_the_bar_moves_with_the_bridges_progress_reports(logged_out: webdriver.Chrome, server: LiveServer,
                                                        twin: TwinDevice) -> None:
    http = GatedHttp(server.url, gated=2)
    conf = {"http_retries": 1, "confirm_timeout_s": 30, "reset": "command"}
    updater = Updater(Link(twin.port()), http, conf, log=lambda _line: None)
    outcome: list[str] = []
    bridge = threading.Thread(target=lambda: outcome.append(updater.cycle()), daemon=True)
    bridge.start()
    try:
        first = http.reported.get(timeout=WAIT_S)  # the update is on its way: 20 % written
        b = logged_out
        b.get(f"{server.url}/devices/{twin.uid.hex()}")
        b.find_element(By.ID, "token").send_keys(OP_TOKEN, Keys.ENTER)
        WebDriverWait(b, WAIT_S).until(lambda d: f"{first}% · writing the image" in bar_text(d))
        b.execute_script("window.sameDocument = true")  # gone if the page reloaded
        bar = b.find_element(By.CSS_SELECTOR, "ul.live progress")
        assert bar.get_attribute("value") == str(first)
        http.go.release()
        second = http.reported.get(timeout=WAIT_S)
        assert second > first
        WebDriverWait(b, WAIT_S).until(lambda d: f"{second}% · writing the image" in bar_text(d))
        http.go.release()
        WebDriverWait(b, 60).until(lambda d: "100% · confirmed" in bar_text(d))
        assert b.execute_script("return window.sameDocument") is True
    finally:
        for _ in range(2):
            http.go.release()
        bridge.join(60)
    assert outcome == ["confirmed"]
