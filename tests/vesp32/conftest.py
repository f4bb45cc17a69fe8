"""Fixtures of the virtual ESP32 tests: a running device on a pty, and mpremote against it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from esp32_twin import FakePeer, VirtualEsp32
from esp32_twin.device import NPM_PACKAGE, find_node_modules
from fota_testkit.mpremote import Mp


@pytest.fixture(scope="session")
def node_runtime() -> None:
    """Skip (with the fix) when `npm ci` has not been run in the repository root."""
    if find_node_modules() is None:
        pytest.skip(f"npm package {NPM_PACKAGE} not installed: run `npm ci` in the repository root")


@pytest.fixture
def fake_peer() -> FakePeer:
    return FakePeer()


@pytest.fixture
def esp(node_runtime: None, fake_peer: FakePeer, tmp_path: Path) -> Iterator[VirtualEsp32]:
    """A virtual ESP32 wired to a FakePeer, its filesystem in tmp_path/fs."""
    device = VirtualEsp32(fake_peer, fs_dir=tmp_path / "fs", log_path=tmp_path / "node.log")
    device.start()
    try:
        yield device
    finally:
        device.stop()


@pytest.fixture
def mp(esp: VirtualEsp32) -> Mp:
    return Mp(esp.port)
