"""Any order of test paths collects the same tests: no folder depends on another one having been
collected first (helpers come from the importable fota_testkit, never from a bare module name or
``from conftest import``). Collection only (a few seconds per order), but of the whole suite, so
these are slow tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
FOLDERS = sorted(p.name for p in TESTS.iterdir() if p.is_dir() and any(p.glob("test_*.py")))
# Sorted, reversed, and each folder with modules of its own (a conftest.py or helpers) first once,
# the rest after it in reverse order; each must collect what `pytest tests` collects.
FIRST = [f for f in FOLDERS if any(p.name != "__init__.py" and not p.name.startswith("test_")
                                   for p in (TESTS / f).glob("*.py"))]
ORDERS = {"sorted": FOLDERS, "reversed": FOLDERS[::-1]} | {
    f"{first} first": [first, *[f for f in FOLDERS[::-1] if f != first]] for first in FIRST}

pytestmark = pytest.mark.slow


def collect(paths: list[str]) -> tuple[int, list[str], str]:
    """Exit code, node ids and output of ``pytest --collect-only -q PATH...``."""
    p = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                        *paths],
                       cwd=TESTS.parent, capture_output=True, text=True, timeout=300, check=False,
                       env={**os.environ, "PYTEST_ADDOPTS": ""})
    ids = [ln for ln in p.stdout.splitlines() if "::" in ln and not ln.startswith(("ERROR", "FAILED"))]
    return p.returncode, sorted(ids), p.stdout + p.stderr


@pytest.fixture(scope="module")
def whole_suite() -> list[str]:
    """What ``pytest tests`` collects (one path: the way CI runs the suite)."""
    code, ids, out = collect(["tests"])
    assert code == 0, f"the suite does not collect:\n{out[-4000:]}"
    return ids


@pytest.mark.parametrize("order", ORDERS.values(), ids=ORDERS.keys())
def test_collects_the_same_tests_in_this_order(order: list[str], whole_suite: list[str]) -> None:
    code, ids, out = collect([f"tests/{f}" for f in order])
    errors = [ln for ln in out.splitlines() if ln.startswith("ERROR") or "Error: " in ln]
    assert code == 0, f"collection failed with tests/{' tests/'.join(order)}:\n" + "\n".join(errors[:20])
    assert len(ids) == len(whole_suite) and ids == whole_suite
