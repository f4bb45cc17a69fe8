"""The device under test of the bridge scenarios (tests/bridge): the fake STM32 or the STM32 twin
running the real firmware, behind one interface, so that one scenario with one set of assertions
runs on both and the fake cannot drift from the firmware.

    device = FakeDevice()  or  TwinDevice(fw_build.build_dir)
    img = device.image(1, (1, 1, 0), 150_000)      # an image of Slot B that this device can run
    port = device.port()                           # a fresh port, as a restarted bridge opens one
    port.mosi = lambda n, req: ...                 # change the bytes on the wire (both devices alike)
    port.before = lambda n, req: device.power_cycle()   # cut the power before a transaction
    device.slot_bytes(1, len(img)) == img

Faults on the wire and power cuts are done here, at the port, the same way for both devices.
Faults inside the device (READY stuck low, a failing journal append, an application that never
confirms) exist on the fake only (``FakeSTM32.faults``): the scenarios that need them say so.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fota_formats.spec import LAYOUT, PROTOCOL
from fota_lab.images import make_image, restamp

from .fake_stm32 import Clock, FakePort, FakeSTM32, frame

P = PROTOCOL.constants
CMD = PROTOCOL.tables["commands"]
HDR = PROTOCOL.structs["frame_header"]
INFO_RESP = PROTOCOL.structs["info_resp"]
# INFO fields that differ between two devices running the same firmware: identity and physics.
# INFO fields that differ between the fake and the twin: the chip's own, and the running image's
# signing key (the fake's images are signed by the lab key, the twin's by the build's key).
INFO_OF_THE_CHIP = ("uid", "temp_centi", "uptime_ms", "reserved", "run_key")
OLD_VERSION = (1, 0, 0)          # what both devices run at the start, build 0


class WirePort:
    """The bridge's port to a device, with hooks on the wire: ``before(n, request)`` runs before the
    n-th transaction reaches the device (a power cut there loses that request), ``mosi(n, buf)``
    may change or shorten the request, ``miso(n, buf)`` the bytes the bridge receives. ``exact_wait``
    False hides ``wait_ready``, so that the bridge polls READY. Counts transactions and NRST pulses."""

    def __init__(self, inner: Any, exact_wait: bool = True) -> None:
        self.inner = inner
        self.n = 0
        self.resets = 0
        self.before: Callable[[int, bytes], None] | None = None
        self.mosi: Callable[[int, bytearray], None] | None = None
        self.miso: Callable[[int, bytearray], None] | None = None
        if exact_wait:
            self.wait_ready = inner.wait_ready

    def transfer(self, tx: memoryview, rx: memoryview) -> None:
        self.n += 1
        if self.before is not None:
            self.before(self.n, bytes(tx))
        req = bytearray(tx)
        if self.mosi is not None:
            self.mosi(self.n, req)
        got = bytearray(len(req))
        self.inner.transfer(memoryview(req), memoryview(got))
        got += b"\xff" * (len(rx) - len(got))       # clocking stopped early: nothing came in
        if self.miso is not None:
            self.miso(self.n, got)
        rx[:] = got

    def ready(self) -> bool:
        return bool(self.inner.ready())

    def ticks_ms(self) -> int:
        return int(self.inner.ticks_ms())

    def now_ms(self) -> float:
        return float(self.inner.now_ms())

    def sleep_ms(self, n: int) -> None:
        self.inner.sleep_ms(n)

    def reset_target(self) -> None:
        self.resets += 1
        self.inner.reset_target()


class Device:
    """What a scenario needs of the STM32 (see the module docstring)."""

    kind = ""
    uid = b""

    def port(self, exact_wait: bool = True) -> WirePort:
        raise NotImplementedError

    def image(self, slot: int, version: tuple[int, int, int], size: int, build: int = 7,
              confirms: bool = True, counter: int = 1) -> bytes:
        """An image of ``version`` (+``build``) and security ``counter`` for ``slot``, ``size`` bytes
        when that is larger than the device's smallest image, that this device validates and boots,
        and that confirms itself on trial unless ``confirms`` is False (then its self-test never
        passes)."""
        raise NotImplementedError

    def slot_bytes(self, slot: int, n: int) -> bytes:
        raise NotImplementedError

    def flash(self) -> bytes:
        """Both slots and the metadata journal, as the flash holds them."""
        raise NotImplementedError

    def power_cycle(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class FakeDevice(Device):
    """The fake STM32 (fota_testkit.fake_stm32) running a fake 1.0.0+0 in Slot A."""

    kind = "fake"

    def __init__(self) -> None:
        self.dev = FakeSTM32(Clock(), {0: make_image(0, OLD_VERSION, 12 * 1024, build=0)})
        self.uid = self.dev.uid

    def port(self, exact_wait: bool = True) -> WirePort:
        return WirePort(FakePort(self.dev), exact_wait)

    def image(self, slot: int, version: tuple[int, int, int], size: int, build: int = 7,
              confirms: bool = True, counter: int = 1) -> bytes:
        self.dev.faults.app_confirms[slot] = confirms
        return make_image(slot, version, size, build=build, counter=counter)

    def slot_bytes(self, slot: int, n: int) -> bytes:
        return bytes(self.dev.flash[slot][:n])

    def flash(self) -> bytes:
        return bytes(self.dev.flash[0] + self.dev.flash[1]) + repr(self.dev.record).encode()

    def power_cycle(self) -> None:
        self.dev.power_cut()


class TwinDevice(Device):
    """The STM32 twin with a firmware build's bootloader and Slot A (1.0.0+0), booted; images for
    it are the build's own slot images with another version (fota_lab.images.restamp), an image that
    never confirms the build's noconfirm variant (``variants()``: the folder of a build with the
    application variants, asked for only then)."""

    kind = "twin"

    def __init__(self, build_dir: Path, variants: Callable[[], Path] | None = None) -> None:
        from fota_lab.devices import boot_twin
        from fota_lab.master import TwinPort
        from stm32_twin import DEFAULT_UID

        self.build_dir = build_dir
        self.variants = variants
        self.board = boot_twin(build_dir)
        self.uid = DEFAULT_UID
        self._port_type = TwinPort

    def port(self, exact_wait: bool = True) -> WirePort:
        return WirePort(self._port_type(self.board), exact_wait)

    def image(self, slot: int, version: tuple[int, int, int], size: int, build: int = 7,
              confirms: bool = True, counter: int = 1) -> bytes:
        name = f"slot-{'ab'[slot]}.bin"
        folder = self.build_dir
        if not confirms:
            if self.variants is None:
                raise AssertionError("TwinDevice: no build with the application variants given")
            name, folder = f"slot-{'ab'[slot]}-noconfirm.bin", self.variants()
        return restamp((folder / name).read_bytes(), version, build=build, size=size, counter=counter)

    def slot_bytes(self, slot: int, n: int) -> bytes:
        return bytes(self.board.flash_bytes(LAYOUT.slot_region(slot).base, n))

    def flash(self) -> bytes:
        regions = [LAYOUT.slot_region(0), LAYOUT.slot_region(1), LAYOUT.region("metadata")]
        return b"".join(bytes(self.board.flash_bytes(r.base, r.size)) for r in regions)

    def power_cycle(self) -> None:
        self.board.power_cycle()

    def close(self) -> None:
        self.board.close()


def chip_neutral(info: dict[str, Any]) -> dict[str, Any]:
    """INFO without the fields that differ from chip to chip (UID, temperature, uptime)."""
    return {k: v for k, v in info.items() if k not in INFO_OF_THE_CHIP}


def exchange(port: WirePort, request: bytes, timeout_ms: int = P["BOOT_TIMEOUT_MS"]) -> bytes:
    """Clock one request frame (filled to MIN_TRANSACTION), then a NOP transaction that clocks its
    response out; returns the response frame (header, payload, CRC) or what came instead."""
    nop = frame(CMD["NOP"], 0, 0)
    rx = b""
    for tx in (request, nop):
        if not port.wait_ready(timeout_ms):
            raise AssertionError(f"READY stayed low for {timeout_ms} ms")
        buf = memoryview(bytearray(max(len(tx), P["MIN_TRANSACTION"])))
        buf[: len(tx)] = tx
        out = memoryview(bytearray(len(buf)))
        port.transfer(buf, out)
        rx = bytes(out)
    if struct.unpack_from("<H", rx)[0] != P["FRAME_MARKER"]:
        return rx[: HDR.size]
    return rx[: HDR.size + HDR.unpack(rx)["len"] + 4]


__all__ = ["CMD", "INFO_RESP", "OLD_VERSION", "Device", "FakeDevice", "TwinDevice", "WirePort",
           "chip_neutral", "exchange", "frame"]
