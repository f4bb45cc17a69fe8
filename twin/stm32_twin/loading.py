"""Image loading: what a programmer writes into the flash before power-on (no flash operations).

A .bin says nothing of where it goes: its address is given, or found beside it, in the Intel HEX
file (its first data record) or the ELF file (the lowest loadable segment) of the same name. An
Intel HEX or ELF file carries its own addresses. So the twin never needs to know where a product
keeps its images.
"""

from __future__ import annotations

import os
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from .chip import FLASH_BASE, FLASH_SIZE
from .errors import TwinError
from .memory import Memory
from .symbols import Symbols

BUILD_IMAGES = ("bootloader", "slot-a", "slot-b")   # the .bin files of a build directory


def _read(path: str | os.PathLike[str], what: str = "") -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise TwinError(f"Failed to load {what}{path}: {e.strerror}") from e


def hex_records(path: str | os.PathLike[str]) -> list[tuple[int, bytes]]:
    """The data records of an Intel HEX file (I8HEX, I16HEX, I32HEX) as (address, bytes)."""
    out: list[tuple[int, bytes]] = []
    upper = 0
    text = _read(path).decode("ascii", "replace")
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        try:
            rec = bytes.fromhex(line[1:]) if line[0] == ":" else b""
        except ValueError:
            rec = b""
        if len(rec) < 5 or len(rec) != rec[0] + 5 or sum(rec) & 0xFF:
            raise TwinError(f"Failed to load {path}: line {n} is not an Intel HEX record")
        kind, addr, data = rec[3], (rec[1] << 8) | rec[2], rec[4:-1]
        if kind == 0x00:
            out.append((upper + addr, data))
        elif kind == 0x01:
            break
        elif kind == 0x02:
            upper = int.from_bytes(data, "big") << 4
        elif kind == 0x04:
            upper = int.from_bytes(data, "big") << 16
    return out


def _hex_first_address(path: Path) -> int | None:
    """The address of the first data record, reading no further than needed."""
    upper = 0
    try:
        with path.open("r", encoding="ascii", errors="replace") as f:
            for line in f:
                rec = bytes.fromhex(line.strip()[1:])
                if len(rec) < 5:
                    continue
                if rec[3] == 0x00:
                    return upper + ((rec[1] << 8) | rec[2])
                if rec[3] == 0x02:
                    upper = int.from_bytes(rec[4:-1], "big") << 4
                elif rec[3] == 0x04:
                    upper = int.from_bytes(rec[4:-1], "big") << 16
    except (OSError, ValueError):
        return None
    return None


def _elf_segments(path: str | os.PathLike[str]) -> list[tuple[int, bytes]]:
    """The loadable segments of an ELF file with their load (physical) addresses."""
    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            return [(seg["p_paddr"], seg.data()[:seg["p_filesz"]]) for seg in elf.iter_segments()
                    if seg["p_type"] == "PT_LOAD" and seg["p_filesz"] > 0]
    except (OSError, ELFError) as e:
        raise TwinError(f"Failed to read {path}: {e}") from e


def bin_address(path: str | os.PathLike[str]) -> int:
    """Where a .bin goes: the first data record of the .hex beside it, else the lowest load
    address of the .elf beside it."""
    p = Path(path)
    hex_path, elf_path = p.with_suffix(".hex"), p.with_suffix(".elf")
    if hex_path.exists():
        address = _hex_first_address(hex_path)
        if address is not None:
            return address
    if elf_path.exists():
        segments = _elf_segments(elf_path)
        if segments:
            return min(a for a, _ in segments)
    raise TwinError(f"Failed to load {p}: its address is unknown (no {hex_path.name} or {elf_path.name} "
                    "beside it): give it (load_bin(path, address), or PATH@ADDRESS on the command line)")


class Loader:
    def __init__(self, memory: Memory, symbols: Symbols) -> None:
        self.memory = memory
        self.symbols = symbols

    def load_bytes(self, data: bytes, address: int, name: str = "data") -> None:
        if not (address >= FLASH_BASE and address + len(data) <= FLASH_BASE + FLASH_SIZE):
            raise TwinError(f"Failed to load {name}: {len(data)} bytes at 0x{address:08X} do not fit the "
                            f"flash (0x{FLASH_BASE:08X}-0x{FLASH_BASE + FLASH_SIZE:08X})")
        self.memory.write_flash(address - FLASH_BASE, data)

    def load_bin(self, path: str | os.PathLike[str], address: int | None = None) -> int:
        """A binary at ``address`` (default: ``bin_address``). Returns the address."""
        data = _read(path)
        if address is None:
            address = bin_address(path)
        self.load_bytes(data, address, name=str(path))
        return address

    def load_hex(self, path: str | os.PathLike[str]) -> None:
        for address, data in hex_records(path):
            self.load_bytes(data, address, name=str(path))

    def load_elf(self, path: str | os.PathLike[str]) -> None:
        """The ELF's loadable segments as linked (a post-link step's changes are in its .bin only),
        and its symbols."""
        for address, data in _elf_segments(path):
            self.load_bytes(data, address, name=str(path))
        self.symbols.add_elf(path)

    def load_image(self, path: str | os.PathLike[str], address: int | None = None) -> None:
        """A .hex or .elf file at its own addresses, anything else as a binary (``load_bin``), with
        the symbols of the .elf beside it when there is one."""
        p = Path(path)
        suffix = p.suffix.lower() if address is None else ".bin"
        if suffix == ".elf":
            self.load_elf(p)
            return
        if suffix in (".hex", ".ihex"):
            self.load_hex(p)
        else:
            self.load_bin(p, address)
        elf = p.with_suffix(".elf")
        if elf.exists():
            self.symbols.add_elf(elf)

    def load_flash_file(self, path: str | os.PathLike[str]) -> None:
        """Copy a whole flash image into the flash."""
        data = _read(path, "flash file ")
        if len(data) != FLASH_SIZE:
            raise TwinError(f"Failed to load flash file {path}: {len(data)} bytes, "
                            f"a flash image has {FLASH_SIZE}")
        self.memory.write_flash(0, data)

    def load_build(self, build_dir: str | os.PathLike[str], *, bootloader: bool = True, slot_a: bool = True,
                   slot_b: bool = True) -> list[str]:
        """bootloader.bin, slot-a.bin and slot-b.bin of a build directory, each at the address of
        its .hex (or .elf), with the symbols of the ELF files. Returns the files loaded."""
        d = Path(build_dir)
        loaded = []
        for name, want in zip(BUILD_IMAGES, (bootloader, slot_a, slot_b), strict=True):
            if not want:
                continue
            binf = d / f"{name}.bin"
            if not binf.exists():
                raise TwinError(f"Failed to load the build: {binf} does not exist (run `invoke build`)")
            self.load_bin(binf)
            loaded.append(str(binf))
            elf = d / f"{name}.elf"
            if elf.exists():
                self.symbols.add_elf(elf)
        return loaded
