"""The single definitions of the flash layout, the image format and the SPI link protocol.

    >>> from fota_formats.spec import LAYOUT, IMAGE, PROTOCOL
    >>> hex(LAYOUT.region("slot_b").base)
    '0x8060000'
    >>> IMAGE.structs["image_header"].size
    32

The TOML files beside this module are the source of truth. C headers, linker-script memory
regions and MicroPython constants are generated from them (`stm32_fota.gen`); Python code reads
them here. Structs are exposed with a ``struct`` format so that Python packs exactly what C reads.
"""

from __future__ import annotations

import struct
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

_TYPES: dict[str, tuple[str, str, int]] = {
    # spec type: (struct code, C type, size)
    "u8": ("B", "uint8_t", 1),
    "u16": ("H", "uint16_t", 2),
    "u32": ("I", "uint32_t", 4),
    "i16": ("h", "int16_t", 2),
    "i32": ("i", "int32_t", 4),
}


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # "u32" or "u8[32]"
    comment: str
    offset: int

    @property
    def count(self) -> int:
        """Array length (1 for a scalar)."""
        if "[" in self.type:
            return int(self.type[self.type.index("[") + 1 : -1])
        return 1

    @property
    def base(self) -> str:
        return self.type.split("[")[0]

    @property
    def size(self) -> int:
        return _TYPES[self.base][2] * self.count

    @property
    def struct_code(self) -> str:
        code = _TYPES[self.base][0]
        if self.count > 1:
            if self.base != "u8":
                raise ValueError(f"arrays of {self.base} are not supported (field {self.name})")
            return f"{self.count}s"
        return code


@dataclass(frozen=True)
class StructDef:
    name: str
    prefix: str
    fields: tuple[Field, ...]
    comment: str = ""

    @property
    def fmt(self) -> str:
        """``struct`` format, little-endian, no implicit padding."""
        return "<" + "".join(f.struct_code for f in self.fields)

    @property
    def size(self) -> int:
        return struct.calcsize(self.fmt)

    def pack(self, **values: Any) -> bytes:
        """Pack fields by name; missing fields are zero (bytes fields: zero-filled)."""
        unknown = set(values) - {f.name for f in self.fields}
        if unknown:
            raise KeyError(f"{self.name}: unknown field(s) {sorted(unknown)}")
        args: list[Any] = []
        for f in self.fields:
            v = values.get(f.name)
            if v is None:
                v = bytes(f.count) if f.count > 1 else 0
            args.append(v)
        return struct.pack(self.fmt, *args)

    def unpack(self, data: bytes | bytearray | memoryview, offset: int = 0) -> dict[str, Any]:
        vals = struct.unpack_from(self.fmt, data, offset)
        return {f.name: v for f, v in zip(self.fields, vals, strict=True)}


def _parse_structs(raw: dict[str, Any]) -> dict[str, StructDef]:
    out: dict[str, StructDef] = {}
    for name, body in raw.items():
        fields: list[Field] = []
        offset = 0
        for fname, ftype, comment in body["fields"]:
            base = ftype.split("[")[0]
            if base not in _TYPES:
                raise ValueError(f"struct {name}: field {fname} has unknown type {ftype!r}")
            f = Field(fname, ftype, comment, offset)
            # Natural alignment, so that the C struct has no implicit padding.
            align = _TYPES[base][2]
            if offset % align:
                raise ValueError(f"struct {name}: field {fname} at offset {offset} is not {align}-aligned")
            fields.append(f)
            offset += f.size
        if offset % 4:
            raise ValueError(f"struct {name}: size {offset} is not a multiple of 4")
        out[name] = StructDef(name, body["prefix"], tuple(fields))
    return out


def _load(name: str) -> dict[str, Any]:
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    return tomllib.loads(text)


@dataclass(frozen=True)
class Sector:
    number: int
    base: int
    size: int


@dataclass(frozen=True)
class Region:
    name: str
    id: int
    base: int
    size: int
    first_sector: int
    last_sector: int

    @property
    def end(self) -> int:
        return self.base + self.size

    def contains(self, addr: int, length: int = 1) -> bool:
        return self.base <= addr and addr + length <= self.end


@dataclass(frozen=True)
class Layout:
    flash_base: int
    flash_size: int
    sectors: tuple[Sector, ...]
    regions: dict[str, Region]
    max_image_size: int
    sram_base: int
    sram_size: int
    ccm_base: int
    ccm_size: int

    def region(self, name: str) -> Region:
        try:
            return self.regions[name]
        except KeyError:
            raise KeyError(f"no flash region {name!r}; known: {', '.join(self.regions)}") from None

    def slot_region(self, slot: int) -> Region:
        """Region of slot number ``slot`` (SLOT_A = 0, SLOT_B = 1)."""
        return self.region(("slot_a", "slot_b")[slot])

    def sectors_of(self, region: Region) -> tuple[Sector, ...]:
        return tuple(s for s in self.sectors if region.first_sector <= s.number <= region.last_sector)

    def sector_at(self, addr: int) -> Sector:
        for s in self.sectors:
            if s.base <= addr < s.base + s.size:
                return s
        raise ValueError(f"address 0x{addr:08X} is outside the flash")


def _layout(raw: dict[str, Any]) -> Layout:
    fl = raw["flash"]
    sectors = tuple(Sector(n, b, s) for n, b, s in fl["sectors"])
    regions = {
        name: Region(name, r["id"], r["base"], r["size"], r["first_sector"], r["last_sector"])
        for name, r in raw["regions"].items()
    }
    ram = raw["ram"]
    return Layout(fl["base"], fl["size"], sectors, regions, raw["image"]["max_size"],
                  ram["sram_base"], ram["sram_size"], ram["ccm_base"], ram["ccm_size"])


@dataclass(frozen=True)
class Spec:
    """Constants and structs of one definition file."""

    constants: dict[str, int]
    structs: dict[str, StructDef]
    tables: dict[str, dict[str, int]] = field(default_factory=dict)

    def name_of(self, table: str, value: int) -> str:
        """Reverse lookup: ``PROTOCOL.name_of("status", 0x0D)`` -> ``"ERR_HASH"``."""
        for k, v in self.tables[table].items():
            if v == value:
                return k
        return f"0x{value:02X}"


def _spec(raw: dict[str, Any], tables: tuple[str, ...] = ()) -> Spec:
    return Spec(dict(raw.get("constants", {})), _parse_structs(raw.get("structs", {})),
                {t: dict(raw[t]) for t in tables})


RAW_LAYOUT = _load("layout.toml")
RAW_IMAGE = _load("image.toml")
RAW_PROTOCOL = _load("protocol.toml")
LAYOUT = _layout(RAW_LAYOUT)
IMAGE = _spec(RAW_IMAGE)
PROTOCOL = _spec(RAW_PROTOCOL, ("commands", "status", "session"))
