"""Fixtures of the end-to-end scenarios: the whole product through its real path (embedded S3 ->
update server -> virtual ESP32 running the bridge, driven by mpremote -> STM32 twin running the
real bootloader and application). The firmware is built once per session (fw_build_variants);
newer versions are re-stamped copies of it (fota_testkit.e2e), so no scenario builds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fota_lab.lab import Lab
from fota_testkit.e2e import flashed_lab, make_release
from stm32_fota.build import BuildResult


@pytest.fixture(scope="session")
def node_runtime() -> None:
    from esp32_twin.device import NPM_PACKAGE, find_node_modules

    if find_node_modules() is None:
        pytest.skip(f"npm package {NPM_PACKAGE} not installed: run `npm ci` in the repository root")


@pytest.fixture(scope="module")
def releases(fw_build_variants: BuildResult, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Release folders: 1.1.0, 1.2.0, 1.3.0 (normal), 1.1.0-big (64 KB), 1.1.0-max (240 KB),
    1.1.0-hang (hangs after boot)."""
    d = fw_build_variants.build_dir
    out = tmp_path_factory.mktemp("releases")
    return {"1.1.0": make_release(d, out / "1.1.0", "1.1.0"),
            "1.2.0": make_release(d, out / "1.2.0", "1.2.0"),
            "1.3.0": make_release(d, out / "1.3.0", "1.3.0"),
            "1.1.0-big": make_release(d, out / "1.1.0-big", "1.1.0", size=64 * 1024),
            "1.1.0-max": make_release(d, out / "1.1.0-max", "1.1.0", size=240 * 1024),
            "1.1.0-hang": make_release(d, out / "1.1.0-hang", "1.1.0", variant="hang")}


@pytest.fixture
def lab(node_runtime: None, fw_build_variants: BuildResult, tmp_path: Path) -> Iterator[Lab]:
    """A fresh lab per scenario: STM32 on 1.0.0 in Slot A, bridge deployed, no release."""
    lab = flashed_lab(tmp_path / "lab", fw_build_variants.build_dir)
    try:
        yield lab
    finally:
        lab.stop()
