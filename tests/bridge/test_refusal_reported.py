"""The STM32 is the judge of an image: when it refuses one at BEGIN or VERIFY, the bridge (its own
updater, net and fotalink under CPython) reports the refusal, and the real update server records the
STM32's status name verbatim in the update history. Every refusal status of the link is tried, so a
status added to the protocol spec is covered as it lands."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import net
import pytest
from fota_formats.spec import PROTOCOL
from fota_server.app import ServerSettings, create_app
from fota_server.firmware import FirmwareFolder
from fota_testkit.bridge import FakeDevice
from fota_testkit.server import LiveServer, install_release
from fotalink import Link
from updater import Updater

ST = PROTOCOL.tables["status"]
# Refusals of the image or of the request; not the link-level retries (CRC, frame, sequence, no
# response), which the bridge resends or recovers from, nor the reserved ERR_BUSY.
LINK_LEVEL = {"OK", "ERR_CRC", "ERR_FRAME", "ERR_SEQ", "ERR_NO_RESPONSE", "ERR_BUSY", "ERR_LENGTH",
              "ERR_COMMAND"}
REFUSALS = sorted(name for name in ST if name not in LINK_LEVEL)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("refusals")
    folder = FirmwareFolder(tmp / "fw")
    install_release(folder, tmp, "1.1.0", body=8_000)
    with LiveServer(create_app(ServerSettings(firmware_dir=folder.root, db_path=tmp / "db"))) as srv:
        yield srv


def run_bridge(device: FakeDevice, url: str) -> list[str]:
    lines: list[str] = []
    conf = {"http_retries": 1, "confirm_timeout_s": 5, "reset": "command"}
    updater = Updater(Link(device.port()), net.Http(url, "", 5), conf, log=lines.append)
    assert updater.cycle() == "failed", lines
    return lines


def history(server: LiveServer, device: FakeDevice) -> list[dict]:
    r = httpx.get(f"{server.url}/api/v1/updates", params={"device_id": device.uid.hex()})
    assert r.status_code == 200, r.text
    return r.json()["items"]


@pytest.mark.parametrize("status", REFUSALS)
@pytest.mark.parametrize("command", ["BEGIN", "VERIFY"])
def test_the_stm32s_refusal_reaches_the_update_history_verbatim(server: LiveServer, command: str,
                                                                status: str) -> None:
    device = FakeDevice()
    dev = device.dev
    dev.uid = device.uid = secrets.token_bytes(12)  # a device of its own in the history
    before = bytes(dev.flash[1][:4096])
    if command == "BEGIN":
        dev._begin_check = lambda _req: ST[status]  # type: ignore[method-assign]
    else:
        dev._verify = lambda: (ST[status], b"", 0.02)  # type: ignore[method-assign]
    lines = run_bridge(device, server.url)
    reason = f"STM32 refused {command}: {status}"
    assert any(line.startswith("fota: result failed ") and line.endswith(reason) for line in lines), lines
    (update,) = history(server, device)
    assert update["status"] == "failed" and update["reason"] == reason, update
    if command == "BEGIN":
        assert bytes(dev.flash[1][:4096]) == before  # refused before anything was erased
