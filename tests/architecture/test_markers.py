"""Every test carries the markers of what it needs (fota_testkit.markers, applied by
tests/conftest.py): the map covers every test folder and names only files that exist, a test never
ends up both ``unit`` and something more, and ``fast`` leaves out slow, e2e and vesp32 tests."""

from __future__ import annotations

import doctest
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fota_testkit import markers
from fota_testkit.markers import FILES, FOLDERS, MarkerError, markers_for

TESTS = Path(__file__).resolve().parents[1]


def test_every_test_folder_is_mapped_and_every_listed_file_exists() -> None:
    folders = {p.parent.relative_to(TESTS).parts[0] for p in TESTS.rglob("test_*.py")}
    assert folders - {"support"} == set(FOLDERS), "add the new folder to fota_testkit.markers.FOLDERS"
    assert [f for f in FILES if not (TESTS / f).is_file()] == []


@pytest.mark.parametrize(("rel", "fixtures", "own", "expected"), [
    ("formats/test_journal.py", set(), set(), {"unit", "fast"}),
    ("tools/test_build.py", {"fw_build", "arm_toolchain"}, set(), {"firmware", "fast"}),
    ("tools/test_build.py", {"fw_build_variants", "arm_toolchain"}, {"slow"}, {"firmware", "slow"}),
    ("twin/test_twin_power.py", {"progs", "arm_toolchain"}, set(), {"twin", "firmware", "fast"}),
    ("link/test_power_cuts.py", {"arm_toolchain"}, set(), {"twin", "firmware", "slow"}),
    ("bridge/test_updater.py", set(), set(), {"unit", "fast"}),
    ("bridge/test_fake_matches_twin.py", {"fw_build", "arm_toolchain"}, set(), {"twin", "firmware", "fast"}),
    ("bridge/test_updater.py", set(), {"twin", "firmware", "slow"}, {"twin", "firmware", "slow"}),
    ("vesp32/test_cli.py", {"node_runtime"}, set(), {"vesp32"}),
    ("e2e/test_updates.py", {"node_runtime", "arm_toolchain"}, set(),
     {"e2e", "twin", "vesp32", "firmware", "slow"}),
])
def test_markers_from_folder_file_and_fixtures(rel: str, fixtures: set[str], own: set[str],
                                               expected: set[str]) -> None:
    assert markers_for(rel, fixtures, own) == expected


def test_a_unit_mark_that_contradicts_a_fixture_is_refused() -> None:
    with pytest.raises(MarkerError, match="marked unit, but it needs more: vesp32"):
        markers_for("server/test_api.py", {"node_runtime"}, {"unit"})


def test_the_examples_of_the_module_run() -> None:
    result = doctest.testmod(markers)
    assert result.attempted > 0 and result.failed == 0


def _collect(expression: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                           "-m", expression, str(TESTS)], cwd=TESTS.parent, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTEST_ADDOPTS": ""}, check=False)


@pytest.mark.slow
def test_the_whole_suite_is_marked_consistently() -> None:
    """No test is unit and more, none is fast and slow/e2e/vesp32, and every test has a kind."""
    wrong = _collect("(unit and (firmware or twin or vesp32 or e2e)) or (fast and (slow or e2e or vesp32))"
                     " or not (unit or firmware or twin or vesp32 or e2e)")
    assert wrong.returncode == 5, wrong.stdout[-3000:] + wrong.stderr[-2000:]   # 5: no test selected
    assert "no tests collected" in wrong.stdout
