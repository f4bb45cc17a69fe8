"""`invoke test`: the pytest command it runs for --fast, -m, -k, --path and --jobs (invoke --dry
prints the command instead of running it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def dry(*args: str) -> str:
    r = subprocess.run([sys.executable, "-m", "invoke", "--dry", "test", *args], cwd=ROOT,
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip().removeprefix("\x1b[1;37m").removesuffix("\x1b[0m")


@pytest.mark.parametrize(("args", "tail"), [
    ((), "-m pytest -n 2 --dist loadfile"),
    (("--fast",), "-m pytest -n 2 --dist loadfile -m fast"),
    (("--fast", "-m", "unit and not slow", "-k", "journal"),
     "-m pytest -n 2 --dist loadfile -k journal -m '(fast) and (unit and not slow)'"),
    (("-m", "twin", "--path", "tests/link", "--jobs", "0"), "-m pytest -m twin tests/link"),
])
def test_the_pytest_command(args: tuple[str, ...], tail: str) -> None:
    assert dry(*args).endswith(tail)
