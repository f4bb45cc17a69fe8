"""Fixtures of the bridge tests.

The bridge's modules are top-level MicroPython modules in esp32_mpy/ (``import fotalink`` on the
device): the tests import them the same way, so esp32_mpy/ goes on ``sys.path`` here. This is the
code under test, not a helper; the helpers come from fota_testkit.

``device`` is the STM32 of a scenario: every test that takes it runs twice, on the fake STM32
(fota_testkit.fake_stm32) and on the STM32 twin running the real firmware of the session's build,
with the same assertions (fota_testkit.bridge).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from fota_testkit.bridge import Device, FakeDevice, TwinDevice
from stm32_fota.project import current

BRIDGE = str(current().bridge_dir)
if BRIDGE not in sys.path:
    sys.path.insert(0, BRIDGE)


# The twin variants need the firmware build (taken when the test runs, so it is not among the
# fixtures markers are derived from) and take seconds each: the inner loop runs the fake ones.
TWIN_MARKS = (pytest.mark.twin, pytest.mark.firmware, pytest.mark.slow)


@pytest.fixture(params=["fake", pytest.param("twin", marks=TWIN_MARKS)])
def device(request: pytest.FixtureRequest) -> Iterator[Device]:
    """The fake STM32, or the STM32 twin booted on the session's firmware build (1.0.0+0 in Slot A)."""
    if request.param == "fake":
        dev: Device = FakeDevice()
    else:
        build_dir = request.getfixturevalue("fw_build").build_dir
        dev = TwinDevice(build_dir, variants=lambda: request.getfixturevalue("fw_build_variants").build_dir)
    try:
        yield dev
    finally:
        dev.close()
