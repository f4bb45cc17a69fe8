/* Flash-area API: every access is an offset inside a named area of the layout (bootloader,
 * slot A, slot B, metadata), never a raw address, and is bounds-checked here.
 * The backend (struct flash_port) is the register driver on the chip (flash_stm32.c) and a
 * RAM-backed flash in host unit tests (test/flash_ram.c), so the policy code above it runs on
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
    /* Program one 32-bit word at a 4-aligned addr (PSIZE x32). */
    int (*program_word)(uint32_t addr, uint32_t value);
    /* Erase one sector by number (RM0090 table 5). */
    int (*erase_sector)(uint32_t sector);
};

struct flash_area {
    uint8_t id;        /* FOTA_REGION_*_ID */
    uint32_t base;     /* absolute address of offset 0 */
    uint32_t size;     /* bytes */
    uint8_t first_sector;
    uint8_t last_sector;
};

/* Install the backend (once, at start-up). */
void fa_init(const struct flash_port *port);

/* The area with the given FOTA_REGION_*_ID, or NULL. */
const struct flash_area *fa_get(uint8_t id);
/* The slot area for SLOT_A (0) or SLOT_B (1), or NULL. */
const struct flash_area *fa_slot(uint8_t slot);

int fa_read(const struct flash_area *fa, uint32_t off, void *dst, size_t len);
/* Program len bytes (len and off multiples of 4) as 32-bit words, each read back. */
int fa_write(const struct flash_area *fa, uint32_t off, const void *src, size_t len);
/* Erase every sector of the area that overlaps [off, off + len). */
int fa_erase(const struct flash_area *fa, uint32_t off, size_t len);
/* Number of sectors that [off, off + len) touches. */
uint32_t fa_sectors_touched(const struct flash_area *fa, uint32_t off, size_t len);
/* 1 when [off, off + len) reads all 0xFF. */
int fa_is_erased(const struct flash_area *fa, uint32_t off, size_t len);

#endif /* FOTA_FLASH_AREA_H */
