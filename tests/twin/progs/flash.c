/* Flash interface semantics: lock/unlock, each error flag, 1 -> 0 programming, erase timing and
 * the bus stall. Each step logs "<name> <value>"; LED pins mark instants the test measures.
 * The step list runs from SRAM where the CPU must not touch the flash while it is busy. */
#include "prog.h"

#define SR_BSY (1u << 16)
#define CR_PG (1u << 0)
#define CR_SER (1u << 1)
#define CR_STRT (1u << 16)
#define CR_LOCK (1u << 31)
#define PSIZE_X32 (2u << 8)
#define PSIZE_X8 (0u << 8)
#define TARGET 0x08008000u /* sector 2, 16 KB */

__attribute__((section(".ramfunc"), noinline)) static void erase_from_ram(uint32_t sector, int wait)
{
    FLASH_CR = PSIZE_X32 | CR_SER | (sector << 3);
    FLASH_CR |= CR_STRT;
    GPIOD_BSRR = 1u << 13; /* orange on: the erase started (from SRAM, no stall) */
    if (wait) {
        while (FLASH_SR & SR_BSY) {
        }
        GPIOD_BSRR = 1u << (13 + 16); /* orange off: BSY cleared */
    }
}

static void wait_bsy(void)
{
    while (FLASH_SR & SR_BSY) {
    }
}

int main(void)
{
    uart_init();
    leds_init();
    line("cr_after_reset", FLASH_CR);
    /* Programming while locked: PGSERR, nothing written. */
    *(volatile uint32_t *)TARGET = 0x11111111u;
    line("sr_locked_write", FLASH_SR);
    line("data_locked_write", *(volatile uint32_t *)TARGET);
    FLASH_SR = 0xF3u;
    line("sr_cleared", FLASH_SR);
    FLASH_KEYR = 0x45670123u;
    FLASH_KEYR = 0xCDEF89ABu;
    line("cr_unlocked", FLASH_CR);
    /* Access width differs from PSIZE: PGPERR. */
    FLASH_CR = PSIZE_X32 | CR_PG;
    *(volatile uint8_t *)TARGET = 0x00u;
    wait_bsy();
    line("sr_pgperr", FLASH_SR);
    FLASH_SR = 0xF3u;
    /* A word that crosses a 128-bit row: PGAERR. */
    *(volatile uint32_t *)(TARGET + 14u) = 0u;
    wait_bsy();
    line("sr_pgaerr", FLASH_SR);
    FLASH_SR = 0xF3u;
    /* Write without PG: PGSERR. */
    FLASH_CR = PSIZE_X32;
    *(volatile uint32_t *)TARGET = 0u;
    wait_bsy();
    line("sr_pgserr", FLASH_SR);
    FLASH_SR = 0xF3u;
    /* Write-protected sector 3 (the test protects it): WRPERR. */
    FLASH_CR = PSIZE_X32 | CR_PG;
    *(volatile uint32_t *)0x0800C000u = 0u;
    wait_bsy();
    line("sr_wrperr", FLASH_SR);
    FLASH_SR = 0xF3u;
    /* A word program: 16 us, then bits only go 1 -> 0. */
    GPIOD_BSRR = 1u << 12;
    *(volatile uint32_t *)TARGET = 0x12345678u;
    wait_bsy();
    GPIOD_BSRR = 1u << (12 + 16);
    line("sr_ok", FLASH_SR);
    line("word", *(volatile uint32_t *)TARGET);
    if (*(volatile uint32_t *)0x08003F00u == 1u) { /* over-programming step, non-strict runs only */
        *(volatile uint32_t *)TARGET = 0x0000FFFFu;
        wait_bsy();
        line("word_and", *(volatile uint32_t *)TARGET);
    }
    FLASH_CR = PSIZE_X32;
    /* Erase of a 16 KB sector, waiting from SRAM: the orange pulse is the erase time. */
    erase_from_ram(2, 1);
    line("word_erased", *(volatile uint32_t *)TARGET);
    /* Erase started from SRAM, then back to flash code at once: the fetch stalls until the end. */
    erase_from_ram(1, 0);
    GPIOD_BSRR = 1u << 14; /* red on: first instruction fetched from flash after the start */
    line("sr_after_stall", FLASH_SR);
    /* Lock again; a wrong key sequence is a bus error (HardFault) and locks until reset. */
    FLASH_CR = CR_LOCK;
    line("cr_locked", FLASH_CR);
    FLASH_KEYR = 0x12345678u;
    line("not_reached", 0);
    return 0;
}

void HardFault_Handler(void)
{
    line("hardfault_cr", FLASH_CR); /* still locked: only a reset unlocks the sequence again */
    for (;;) {
        __asm volatile("wfi");
    }
}
