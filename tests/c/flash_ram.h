/* A RAM-backed STM32F407 flash for host unit tests: the flash_port of flash_area.h over a 1 MB
 * array with the chip's rules (erase per sector to 0xFF, programming only clears bits) and
 * power-cut injection at the N-th operation (erase or word program), as MCUboot's simulator does. */
#ifndef FOTA_FLASH_RAM_H
#define FOTA_FLASH_RAM_H

#include <stdint.h>
#include "flash_area.h"

extern const struct flash_port flash_ram_port;

/* Power on with every byte erased; clears counters and the cut point. */
void flash_ram_reset(void);
/* The flash contents (FOTA_FLASH_SIZE bytes, offset 0 = FOTA_FLASH_BASE). */
uint8_t *flash_ram_mem(void);
/* Operations (erases + word programs) carried out since the last reset / flash_ram_power_on. */
uint32_t flash_ram_ops(void);
uint32_t flash_ram_erases(void);
/* Cut the power during operation number n (0-based, counted from now); -1: never. The cut
 * operation is left half done: an erase erases the first half of the sector only, a program
 * clears only the low half-word's bits. Every later operation fails with FOTA_E_FLASH. */
void flash_ram_cut_at(int32_t n);
/* 1 once the cut happened. */
int flash_ram_is_cut(void);
/* Power back on (a reboot): contents kept, counters cleared, no cut scheduled. */
void flash_ram_power_on(void);
/* Programs that would have needed a 0 -> 1 transition (the chip ANDs instead). */
uint32_t flash_ram_violations(void);
/* Make the word at addr ignore programming (a worn cell): flash_area's read-back must catch it. */
void flash_ram_stuck_word(uint32_t addr);

#endif /* FOTA_FLASH_RAM_H */
