"""Symbol lookup from the firmware ELF files, for readable fault messages."""

from __future__ import annotations

import bisect
import os

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from .errors import TwinError


class Symbols:
    """Address -> "function+0x12" over any number of ELF files."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._entries: list[tuple[int, int, str]] = []  # (start, size, name) sorted by start

    def add_elf(self, path: str | os.PathLike[str]) -> None:
        try:
            with open(path, "rb") as f:
                elf = ELFFile(f)
                for sec in elf.iter_sections():
                    if not isinstance(sec, SymbolTableSection):
                        continue
                    for sym in sec.iter_symbols():
                        kind = sym["st_info"]["type"]
                        if kind not in ("STT_FUNC", "STT_OBJECT") or not sym.name:
                            continue
                        start = sym["st_value"] & ~1 if kind == "STT_FUNC" else sym["st_value"]
                        self._entries.append((start, sym["st_size"], sym.name))
        except (OSError, ELFError) as e:
            raise TwinError(f"Failed to read symbols from {path}: {e}") from e
        self._entries.sort()
        self._starts = [e[0] for e in self._entries]

    def lookup(self, addr: int) -> str | None:
        i = bisect.bisect_right(self._starts, addr) - 1
        while i >= 0:
            start, size, name = self._entries[i]
            if start <= addr < start + max(size, 1):
                return name if addr == start else f"{name}+0x{addr - start:X}"
            if start < addr - 0x10000:
                break
            i -= 1
        return None

    def address_of(self, name: str) -> int | None:
        for start, _, n in self._entries:
            if n == name:
                return start
        return None
