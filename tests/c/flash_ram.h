/* The RAM-backed STM32F407 flash of the host tests: the flash_port of flash_area.h over a 1 MB
 * array with the chip's rules (erase per sector to 0xFF, programming only clears bits), counters
 * of what was erased and programmed, power-cut injection at the N-th operation (as MCUboot's
 * simulator does) and single failing operations with the power left on. */
#ifndef FOTA_FLASH_RAM_H
#define FOTA_FLASH_RAM_H

#include <stdint.h>
#include "flash_area.h"

extern const struct flash_port flash_ram_port;

/* Power on with every byte erased; clears counters, cut point and failures. */
void flash_ram_reset(void);
/* The flash contents (FOTA_FLASH_SIZE bytes, offset 0 = FOTA_FLASH_BASE). */
uint8_t *flash_ram_mem(void);
/* Power back on (a reboot): contents kept, counters cleared, no cut or failure scheduled. */
void flash_ram_power_on(void);

/* Counted since the last power-on. Operations are erases plus word programs (a word that already
 * holds its value is not programmed); they are the cut points. */
uint32_t flash_ram_ops(void);
uint32_t flash_ram_erases(void);
uint32_t flash_ram_sector_erases(uint32_t sector);
uint32_t flash_ram_programs(void);
/* Words programmed over data that was not erased (the all-zero withdrawals, fa_overwrite_ok). */
uint32_t flash_ram_programs_over_data(void);
/* Programs that would have needed a 0 -> 1 transition (the chip ANDs instead); since reset. */
uint32_t flash_ram_violations(void);

/* Cut the power during operation number n (0-based, counted from the last power-on); -1: never.
 * The cut operation is left half done: an erase erases the first half of the sector only, a
 * program clears only the low half-word's bits. Every later operation fails with FOTA_E_FLASH. */
void flash_ram_cut_at(int32_t n);
/* 1 once the cut happened. */
int flash_ram_is_cut(void);
/* Word program number n (as flash_ram_programs counts them) fails with FOTA_E_FLASH and changes
 * nothing; later operations work. -1: never. */
void flash_ram_fail_program_at(int32_t n);
/* Likewise erase number n (as flash_ram_erases counts them). */
void flash_ram_fail_erase_at(int32_t n);
/* Make the word at addr ignore programming (a worn cell): flash_area's read-back must catch it. */
void flash_ram_stuck_word(uint32_t addr);

#endif /* FOTA_FLASH_RAM_H */
