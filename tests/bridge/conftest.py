"""The bridge's modules are top-level MicroPython modules in esp32_mpy/: make them importable."""

from __future__ import annotations

import sys
from pathlib import Path

BRIDGE = Path(__file__).resolve().parents[2] / "esp32_mpy"
if str(BRIDGE) not in sys.path:
    sys.path.insert(0, str(BRIDGE))
