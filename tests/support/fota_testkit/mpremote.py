"""Helpers of the virtual ESP32 tests."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

MPREMOTE_TIMEOUT_S = 60


@dataclass
class Mp:
    """mpremote against one port: mp("exec", "print(1)") -> CompletedProcess (text)."""

    port: str

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "mpremote", "connect", self.port, *args],
            capture_output=True, text=True, timeout=MPREMOTE_TIMEOUT_S, stdin=subprocess.DEVNULL,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"mpremote {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result
