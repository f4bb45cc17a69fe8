/* Flash-area API: every access is an offset inside a named area of the layout (bootloader,
 * slot A, slot B, metadata), never a raw address, and is bounds-checked here.
 * The backend (struct flash_port) is the register driver on the chip (flash_stm32.c) and a
 * RAM-backed flash in host unit tests (tests/c/flash_ram.c), so the policy code above it runs on
 * both unchanged. Model: MCUboot's flash_area_*. */
#ifndef FOTA_FLASH_AREA_H
#define FOTA_FLASH_AREA_H

#include <stdint.h>
#include <stddef.h>
#include "fota_err.h"

/* Backend operations on absolute flash addresses. Implementations check nothing but what the
 * hardware needs; bounds are checked by the area layer. */
struct flash_port {
    /* Copy len bytes at addr into dst. */
    int (*read)(uint32_t addr, void *dst, size_t len);
    /* Program `words` 32-bit words (PSIZE x32) at the 4-aligned addr from src (little-endian
     * bytes, any alignment). Per word: skipped when it already holds its value,
     * FOTA_E_NOT_ERASED unless fa_overwrite_ok(), else programmed and read back (FOTA_E_VERIFY
     * when it differs). Stops at the first error; the words before it stay programmed. */
    int (*program)(uint32_t addr, const uint8_t *src, size_t words);
    /* Erase one sector by number (RM0090 table 5). */
    int (*erase_sector)(uint32_t sector);
    /* Optional: crc32_words_update(CRC32_WORDS_INIT, flash at addr, words) by a faster means (the
     * chip's CRC unit); NULL: fa_crc computes it from read(). */
    uint32_t (*crc_words)(uint32_t addr, size_t words);
    /* Optional: the flash is memory-mapped, so an absolute address can be read in place. */
    int mapped;
};

/* Work to do while the flash programs: the port calls fa_idle.fn(fa_idle.ctx) (when set) once for
 * every word it has started programming, before it waits for the word to finish. On the chip the
 * function runs while the flash is busy, so it must live in SRAM and read nothing from flash
 * (LIB_RAMFUNC, lib_ramfunc.h); under a word's programming time (16 us, 2 688 cycles at 168 MHz)
 * it costs nothing. Set it only around one's own fa_write. */
struct fa_idle_hook {
    void (*fn)(void *ctx);
    void *ctx;
};
extern struct fa_idle_hook fa_idle;

/* The programming rule every port applies to a word holding `old` that is to become `value`
 * (value != old). Programming can only clear bits. Over data that is not erased, the one write
 * allowed is an all-zero word: it withdraws a record or an image (IMAGE_INVALIDATED_MAGIC) and
 * cannot produce a value that was never meant. */
static inline int fa_overwrite_ok(uint32_t old, uint32_t value)
{
    return old == 0xFFFFFFFFu || value == 0u;
}

struct flash_area {
    uint8_t id;        /* FOTA_REGION_*_ID */
    uint32_t base;     /* absolute address of offset 0 */
    uint32_t size;     /* bytes */
    uint8_t first_sector;
    uint8_t last_sector;
};

/* One flash sector: absolute base address and size in bytes. */
struct fa_sector {
    uint32_t base;
    uint32_t size;
};

/* Sector n of the flash (RM0090 table 5, from the generated layout), or NULL past the last one.
 * The one place the firmware and its host tests look sectors up. */
const struct fa_sector *fa_sector(uint32_t n);

/* Install the backend (once, at start-up). */
void fa_init(const struct flash_port *port);

/* The area with the given FOTA_REGION_*_ID, or NULL. */
const struct flash_area *fa_get(uint8_t id);
/* The slot area for SLOT_A (0) or SLOT_B (1), or NULL. */
const struct flash_area *fa_slot(uint8_t slot);

int fa_read(const struct flash_area *fa, uint32_t off, void *dst, size_t len);
/* Program len bytes (len and off multiples of 4) as 32-bit words in one block operation of the
 * port, each read back. A word that already holds its value is left alone (a repeated write);
 * FOTA_E_NOT_ERASED when a word is neither erased nor to become all-zero (fa_overwrite_ok). */
int fa_write(const struct flash_area *fa, uint32_t off, const void *src, size_t len);
/* Erase every sector of the area that overlaps [off, off + len). */
int fa_erase(const struct flash_area *fa, uint32_t off, size_t len);
/* Number of sectors that [off, off + len) touches. */
uint32_t fa_sectors_touched(const struct flash_area *fa, uint32_t off, size_t len);
/* [off, off + len) in place when the port's flash is memory-mapped (and the range is in bounds),
 * else NULL: then read it with fa_read. Saves a copy in scans of a whole sector. */
const void *fa_mapped(const struct flash_area *fa, uint32_t off, size_t len);
/* crc32_words_update(CRC32_WORDS_INIT, ...) of [off, off + len), len and off multiples of 4. */
int fa_crc(const struct flash_area *fa, uint32_t off, size_t len, uint32_t *crc);
/* 1 when [off, off + len) reads all 0xFF. */
int fa_is_erased(const struct flash_area *fa, uint32_t off, size_t len);

#endif /* FOTA_FLASH_AREA_H */
