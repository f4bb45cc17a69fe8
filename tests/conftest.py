"""Fixtures shared by the whole suite: the ARM toolchain and one real firmware build per session;
and the markers of every test, so that nobody has to know which folders to pick.

``fw_build`` runs the same code as ``invoke build`` (stm32_fota.build) into a temporary directory,
once per pytest worker; tests that need the real bootloader.bin / slot-a.bin / slot-b.bin (the
ELF checks, the simulator, the link tests) take it instead of building again.

Every test is marked (unit, firmware, twin, vesp32, e2e, slow, fast) from its folder, its file and
its fixtures by ``pytest_collection_modifyitems`` below; the map is fota_testkit.markers, the
markers are registered in pyproject.toml and described in docs/architecture.md ("Tests").
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from fota_testkit.markers import MarkerError, markers_for
from fota_testkit.s3 import aws_env, cfg, moto_url, store  # noqa: F401 (fixtures for every folder)
from stm32_fota.build import BuildResult, build
from stm32_fota.errors import ToolchainError
from stm32_fota.toolchain import check_toolchain

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
os.environ.setdefault("FOTA_ROOT", str(ROOT))  # the checkout under test (stm32_fota.project)
FW_VERSION = "1.0.0"
FW_BUILD_NUMBER = 0


def pytest_configure(config: pytest.Config) -> None:
    """One throwaway signing key for the whole run, made before any xdist worker starts (they inherit
    its path through the environment): fota_testkit.keys."""
    import fota_testkit.keys  # noqa: F401


@pytest.fixture(scope="session")
def signing_key() -> Path:
    """The run's throwaway Ed25519 signing key file (imgtool PEM), outside the repository."""
    from fota_testkit.keys import SIGNING_KEY_FILE

    return SIGNING_KEY_FILE


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """In CI every dependency is installed by .ci/run, so a skipped test means a broken set-up:
    report it as failed instead of letting it pass silently. Outside CI, skips keep their reason."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("CI") == "true" and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped in CI (CI=true), the set-up is incomplete: {reason}"


@pytest.fixture(scope="session")
def arm_toolchain() -> None:
    """Skip (with the reason and the fix) when the ARM toolchain is not installed."""
    try:
        check_toolchain()
    except ToolchainError as e:
        pytest.skip(f"ARM toolchain missing, run scripts/setup.sh: {e}")


@pytest.fixture(scope="session")
def fw_build(arm_toolchain: None, tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    """The firmware built (v1.0.0+0) into a temporary directory: .elf .bin .hex .map per target.

    One directory for the whole run, shared by the pytest-xdist workers: the first worker builds,
    the others wait on the build directory's lock (stm32_fota.build) and find everything up to
    date. Treat it as read-only (``fw_build_copy`` gives a private copy).
    """
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # common to every worker of this run
    return build(FW_VERSION, FW_BUILD_NUMBER, root / "fw-build")


@pytest.fixture(scope="session")
def fw_build_variants(arm_toolchain: None, tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    """Like ``fw_build``, plus every application variant in stm32/app/variants/ (slot-b-hang.bin, ...).

    A separate shared directory, so that tests which need no variant never pay for them.
    """
    variants = sorted(p.stem for p in (ROOT / "stm32" / "app" / "variants").glob("*.c"))
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    return build(FW_VERSION, FW_BUILD_NUMBER, root / "fw-build-variants", variants)


@pytest.fixture
def fw_build_copy(fw_build: BuildResult, tmp_path: Path) -> Path:
    """A private copy of the session build directory (timestamps kept), for tests that rebuild."""
    dst = tmp_path / "build"
    shutil.copytree(fw_build.build_dir, dst, copy_function=shutil.copy2)
    return dst


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test by its folder, file and fixtures (fota_testkit.markers)."""
    for item in items:
        try:
            rel = item.path.resolve().relative_to(TESTS).as_posix()
        except ValueError:       # a doctest or a test outside tests/: only its own markers
            continue
        own = {m.name for m in item.iter_markers()}
        try:
            callspec = getattr(item, "callspec", None)
            marks = markers_for(rel, set(getattr(item, "fixturenames", ())), own,
                                dict(callspec.params) if callspec is not None else None)
        except MarkerError as e:
            raise pytest.UsageError(f"{item.nodeid}: {e}") from None
        for name in sorted(marks - own):
            item.add_marker(name)
