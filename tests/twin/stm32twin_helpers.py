"""Helpers of the twin tests (a unique module name: every test directory has a conftest)."""

from __future__ import annotations

from stm32_twin import Stm32Twin


def values(board: Stm32Twin) -> dict[str, int]:
    """The "<name> 0x<hex>" lines a program logged, as a dict."""
    out = {}
    for line in board.uart_lines:
        parts = line.split()
        if len(parts) == 2 and parts[1].startswith("0x"):
            out[parts[0]] = int(parts[1], 16)
    return out
