"""Fixtures of the link tests: firmware builds of three versions and a booted twin.

v1.0.0 is the suite's shared build (``fw_build``); v1.1.0 (with the test variants ``hang`` and
``noconfirm``) and v1.2.0 are built once per run into their own directories, shared by the
pytest-xdist workers under a lock like ``fw_build``.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fota_testkit.link import Builds, boot, new_twin
from stm32_fota.build import BuildResult, build
from stm32_twin.board import Stm32Twin

VARIANTS = ("hang", "noconfirm")


def _shared_build(tmp_path_factory: pytest.TempPathFactory, name: str, version: str,
                  variants: tuple[str, ...] = ()) -> Path:
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    out = root / name
    out.mkdir(exist_ok=True)
    with (root / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            build(version, 0, out, variants)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return out


@pytest.fixture(scope="session")
def builds(fw_build: BuildResult, tmp_path_factory: pytest.TempPathFactory) -> Builds:
    return Builds(Path(fw_build.build_dir),
                  _shared_build(tmp_path_factory, "fw-link-1.1.0", "1.1.0", VARIANTS),
                  _shared_build(tmp_path_factory, "fw-link-1.2.0", "1.2.0"))


@pytest.fixture(scope="session")
def booted_flash(builds: Builds) -> bytes:
    """Flash of a device that ran v1.0.0 from slot A once (slot B erased): restore it per test."""
    twin = new_twin(build=builds.v100)
    boot(twin)
    snap = twin.flash_snapshot()
    twin.close()
    return snap


@pytest.fixture
def twin(booted_flash: bytes) -> Iterator[Stm32Twin]:
    """A twin running v1.0.0 from slot A, its link ready."""
    t = new_twin(booted_flash)
    boot(t)
    yield t
    t.close()
