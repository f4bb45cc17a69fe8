"""The demo's fleet: STM32 twins behind the reference master, each with a minimal bridge on the host.

    >>> fleet = [FleetDevice.start(i, build, "east") for i in range(1, 5)]   # doctest: +SKIP
    >>> [d.cycle(client) for d in fleet]                                     # doctest: +SKIP

A :class:`FleetDevice` is an STM32 twin (its own 96-bit unique ID, so its own device ID) running
the real bootloader and application, driven by the bridge's own link code through
:class:`fota_lab.master.Master`. Its :meth:`~FleetDevice.cycle` does what the bridge's update cycle
does, on the host: INFO, check-in (with the device's group), download of the offered image, the
update over the link, and the result report. Only the device on the virtual ESP32 needs
MicroPython; these make a fleet cheap (about a second of wall time per update).

A *faulty* device's temperature sensor breaks as the new image starts (the twin's ADC stops
converting: ``Adc.stuck``), so the new image's self-test cannot pass, the watchdog takes it and
the bootloader goes back to the previous slot: a release that some boards cannot confirm.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import LabError
from .master import LinkError, Master, TwinPort

UID_PREFIX = b"FLEET-"  # 6 bytes + 6 of the device's number: 12 bytes, the STM32's UID size
CONFIRM_TIMEOUT_MS = 120_000  # virtual: three trial boots and the watchdog fit well inside
TIMEOUT_S = 20.0


class DeviceClient:
    """The device role's JSON requests (check-in, report) and image downloads, like the bridge's."""

    def __init__(self, base_url: str, token: str | None, context: ssl.SSLContext | None = None) -> None:
        self.base_url = base_url
        self.token = token
        self.context = context

    def _open(self, method: str, path: str, body: dict[str, Any] | None = None) -> bytes:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        url = path if "://" in path else self.base_url + path
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT_S, context=self.context) as resp:
                out: bytes = resp.read()
                return out
        except urllib.error.HTTPError as e:
            raise LabError(f"Failed to {method} {path}: HTTP {e.code} {e.read()[:200]!r}") from None
        except (urllib.error.URLError, OSError) as e:
            raise LabError(f"Failed to {method} {path}: {e}") from None

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = json.loads(self._open("POST", "/api/v1" + path, body))
        return answer

    def download(self, url: str) -> bytes:
        return self._open("GET", url)


@dataclass
class Cycle:
    """What one update cycle of a fleet device did."""

    device: str
    offered: bool
    reason: str  # the server's reason when nothing was offered; the outcome's reason otherwise
    before: str
    after: str  # the version running afterwards
    offered_version: str = "-"
    outcome: str = "-"  # confirmed, reverted, failed; "-" without an offer
    slot: str = "?"

    def line(self) -> str:
        if not self.offered:
            return f"{self.device}: no update ({self.reason})"
        why = f" ({self.reason})" if self.reason else ""
        return (f"{self.device}: {self.before} -> {self.offered_version}: {self.outcome}{why}; "
                f"runs {self.after} in slot {self.slot}")


def _slot(info: dict[str, Any], p: str) -> dict[str, Any]:
    if info[f"{p}_state"] == 1:  # SLOT_STATE_VALID
        version = f"{info[p + '_major']}.{info[p + '_minor']}.{info[p + '_patch']}"
        return {"state": "valid", "version": version}
    return {"state": "empty" if info[f"{p}_state"] == 0 else "invalid", "version": None}


def _running(info: dict[str, Any]) -> tuple[str, str]:
    return "AB"[info["running_slot"]], f"{info['run_major']}.{info['run_minor']}.{info['run_patch']}"


class FleetDevice:
    def __init__(self, number: int, board: Any, group: str | None, faulty: bool) -> None:
        self.number = number
        self.board = board
        self.group = group
        self.faulty = faulty
        self.master = Master(TwinPort(board))
        self.last: Cycle | None = None

    @classmethod
    def start(cls, number: int, build_dir: Path, group: str | None = None, faulty: bool = False,
              ) -> FleetDevice:
        """A powered twin with the bootloader and Slot A of ``build_dir``."""
        from stm32_twin import Stm32Twin

        board = Stm32Twin(uid=UID_PREFIX + number.to_bytes(6, "big"))
        board.load_build(build_dir)
        board.power_on()
        board.run(ms=300)
        return cls(number, board, group, faulty)

    @property
    def device_id(self) -> str:
        return (UID_PREFIX + self.number.to_bytes(6, "big")).hex()

    @property
    def name(self) -> str:
        return f"twin-{self.number}"

    def _break_sensor(self) -> None:
        self.board.adc.stuck = True

    def cycle(self, client: DeviceClient) -> Cycle:
        """Check in; when offered, update over the link and report the result."""
        info = self.master.info()
        slot, version = _running(info)
        body: dict[str, Any] = {"device_id": self.device_id, "running_slot": slot, "running_version": version,
                                "slots": {"A": _slot(info, "a"), "B": _slot(info, "b")},
                                "temp_centi": info["temp_centi"], "uptime_ms": info["uptime_ms"],
                                "security_counter": info["security_floor"],
                                "key_id": bytes(info["run_key"]).hex()}
        if self.group is not None:
            body["group"] = self.group
        offer = client.post("/checkin", body)
        if not offer["update"]:
            self.last = Cycle(self.name, False, offer["reason"], version, version, slot=slot)
            return self.last
        image = client.download(offer["url"])
        t = time.monotonic()
        try:
            r = self.master.update(image, downgrade=bool(offer.get("downgrade")),
                                   confirm_timeout_ms=CONFIRM_TIMEOUT_MS,
                                   before_reset=self._break_sensor if self.faulty else None)
            outcome, reason = r.outcome, r.reason
        except LinkError as e:
            outcome, reason = "failed", str(e)
        after_slot, after = _running(self.master.info())
        client.post("/report", {"device_id": self.device_id, "update_id": offer["update_id"],
                                "stage": "result", "outcome": outcome, "reason": reason or None,
                                "duration_ms": round((time.monotonic() - t) * 1000),
                                "running_slot": after_slot, "running_version": after})
        self.last = Cycle(self.name, True, reason, version, after, offer["version"], outcome, after_slot)
        return self.last
