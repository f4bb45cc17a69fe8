"""Small, real ARM ELF files for the ELF-check and post-link tests.

A tiny Cortex-M4 program (the room for the image header, a vector table, code, .data and .bss) is
compiled with arm-none-eabi-gcc and linked with a linker script written here, so that each test can
break exactly one thing: the link address, the header room, the size, a section in the metadata
sector.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from fota_formats.image import HDR_SIZE
from fota_formats.spec import LAYOUT

ROOT = Path(__file__).resolve().parents[3]
GEN = ROOT / "stm32" / "gen"
CFLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-std=c11", "-Os",
          "-Wall", "-Wextra", "-Werror", "-nostdlib", "-ffreestanding"]

SOURCE = r"""
#include <stdint.h>

extern uint32_t _estack;
void Reset_Handler(void);

__attribute__((section(".isr_vector"), used))
const uintptr_t vectors[2] = { (uintptr_t)&_estack, (uintptr_t)Reset_Handler };

volatile uint32_t counter = 5;
volatile uint32_t zeroed;

void Reset_Handler(void)
{
    for (;;) {
        counter++;
        zeroed++;
    }
}
"""


@dataclass(frozen=True)
class ElfRecipe:
    """How to link one test ELF; each field can be set wrong on purpose."""

    region: str = "slot_b"           # the flash region it is linked into
    base_offset: int = 0             # link the whole image this far above the region base
    header: int = HDR_SIZE           # zero bytes reserved for the image header (0: none)
    header_fill: int = 0             # the value of those bytes
    pad: int = 0                     # extra bytes of constant data (to make it oversize)
    meta: bool = False               # put one byte in the metadata sector
    ram_base: int | None = None      # where .data/.bss run; default: the SRAM base

    def linker_script(self) -> str:
        r = LAYOUT.region(self.region)
        meta = LAYOUT.region("metadata")
        origin = r.base + self.base_offset
        ram = LAYOUT.sram_base if self.ram_base is None else self.ram_base
        lines = [
            "MEMORY",
            "{",
            f"    FLASH (rx) : ORIGIN = 0x{origin:08X}, LENGTH = 0x{r.size - self.base_offset:X}",
            f"    RAM (rwx)  : ORIGIN = 0x{ram:08X}, LENGTH = 0x{LAYOUT.sram_size:X}",
            "}",
            "ENTRY(Reset_Handler)",
            "SECTIONS",
            "{",
            *([f"    .image_header ORIGIN(FLASH) : {{ LONG(0x{self.header_fill * 0x01010101:08X}) "
               f". = ORIGIN(FLASH) + 0x{self.header:X}; }} > FLASH =0x{self.header_fill:02X}"]
              if self.header else []),
            f"    .isr_vector ORIGIN(FLASH) + 0x{self.header:X} : {{ KEEP(*(.isr_vector)) }} > FLASH",
            "    .text : { *(.text*) *(.rodata*) } > FLASH",
        ]
        if self.pad:
            lines.append(f"    .pad : {{ BYTE(0xA5); . += 0x{self.pad - 1:X}; }} > FLASH")
        lines += [
            "    .data : { *(.data*) } > RAM AT > FLASH",
            "    .bss (NOLOAD) : { *(.bss*) *(COMMON) } > RAM",
        ]
        if self.meta:
            lines.append(f"    .meta 0x{meta.base:08X} : {{ BYTE(0x01) }}")
        # The stack stays in SRAM, so that only the sections are wrong when RAM is moved.
        lines += [f"    _estack = 0x{LAYOUT.sram_base + LAYOUT.sram_size:08X};", "}", ""]
        return "\n".join(lines)

    def link(self, out_dir: Path, name: str) -> Path:
        """Compile and link into ``out_dir/name.elf``; return its path."""
        out_dir.mkdir(parents=True, exist_ok=True)
        src = out_dir / f"{name}.c"
        ld = out_dir / f"{name}.ld"
        elf = out_dir / f"{name}.elf"
        src.write_text(SOURCE, encoding="utf-8")
        ld.write_text(self.linker_script(), encoding="utf-8")
        argv = ["arm-none-eabi-gcc", *CFLAGS, f"-I{GEN}", "-T", str(ld), str(src),
                "-o", str(elf)]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 0, f"linking test ELF {name} failed:\n{proc.stderr}"
        return elf
