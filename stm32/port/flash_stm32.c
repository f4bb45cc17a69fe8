/* STM32F407 flash program/erase driver (RM0090 section 3.5-3.6, DS8626 table 42).
 *
 * The erase and program functions run from SRAM (RAMFUNC): the F407 has a single bank, so any
 * instruction fetch from flash while an operation runs stalls the CPU (RM0090 section 3.5); in SRAM
 * the wait loop keeps its own time and code serving interrupts from SRAM keeps running.
 * They call nothing that lives in flash. Every wait on BSY is bounded by the datasheet's maximum
 * time for the operation; the controller is locked again on every exit path. A block of words is
 * programmed under one unlock (flash_program): per word the store, the bounded BSY wait, the error
 * flags and the read-back, without an unlock, a set-up and a lock for every word. */
#include <string.h>
#include "cpu.h"
#include "flash_stm32.h"
#include "fota_layout.h"
#include "stm32f407_regs.h"

/* DS8626 table 42 at x32 parallelism, maximum times. */
#define T_PROG_WORD_MAX_US 100u
#define T_ERASE_16K_MAX_US 500000u
#define T_ERASE_64K_MAX_US 1100000u
#define T_ERASE_128K_MAX_US 2000000u
/* Before starting, a previous operation may still be running (a mass erase at most, 16 s, is never
 * used here; the longest we start is a 128 KB erase). */
#define T_IDLE_MAX_US T_ERASE_128K_MAX_US

/* Poll BSY until clear; at least max_us (one iteration is at least one cycle). */
RAMFUNC static int wait_not_busy(uint32_t max_us)
{
    uint32_t limit = max_us * g_core_mhz;
    for (uint32_t i = 0; i <= limit; i++) {
        if ((FLASH_SR & FLASH_SR_BSY) == 0u) {
            return FOTA_OK;
        }
    }
    return FOTA_E_TIMEOUT;
}

/* Steps common to erase and program: idle, unlocked, no stale error flag. */
RAMFUNC static int prepare(void)
{
    if (wait_not_busy(T_IDLE_MAX_US) != FOTA_OK) {
        return FOTA_E_TIMEOUT;
    }
    /* Unlock CR: KEY1 then KEY2 (RM0090 section 3.5.1). A wrong sequence locks CR until reset,
     * which is why this is only tried when LOCK is set. */
    if (FLASH_CR & FLASH_CR_LOCK) {
        FLASH_KEYR = FLASH_KEYR_KEY1;
        FLASH_KEYR = FLASH_KEYR_KEY2;
        if (FLASH_CR & FLASH_CR_LOCK) {
            return FOTA_E_LOCKED;
        }
    }
    /* Error flags are write-1-to-clear: write exactly the mask with =, not |= (which would write
     * back every flag that is set, EOP included). */
    FLASH_SR = FLASH_SR_ERRORS | FLASH_SR_EOP;
    return FOTA_OK;
}

/* Check the outcome, then leave CR cleared and locked, whatever happened. */
RAMFUNC static int finish(int rc)
{
    if (rc == FOTA_OK && (FLASH_SR & FLASH_SR_ERRORS) != 0u) {
        rc = FOTA_E_FLASH;
    }
    FLASH_SR = FLASH_SR_ERRORS | FLASH_SR_EOP;
    FLASH_CR = 0u;
    FLASH_CR = FLASH_CR_LOCK;
    return rc;
}

/* Program a block of words: one unlock and one PG set-up for the block, then per word one store,
 * a bounded BSY wait, the error flags and the read-back (RM0090 section 3.6.2: PG stays set
 * between programming operations). Stops at the first error; locked again on every exit path. */
RAMFUNC static int flash_program(uint32_t addr, const uint8_t *src, size_t words)
{
    if ((addr % 4u) != 0u || addr < FOTA_FLASH_BASE || addr - FOTA_FLASH_BASE > FOTA_FLASH_SIZE ||
        words > (FOTA_FLASH_SIZE - (addr - FOTA_FLASH_BASE)) / 4u || (src == NULL && words != 0u)) {
        return FOTA_E_ARG;
    }
    if (words == 0u) {
        return FOTA_OK;
    }
    int rc = prepare();
    if (rc == FOTA_E_LOCKED) {
        return rc; /* nothing to lock again */
    }
    if (rc == FOTA_OK) {
        volatile uint32_t *dst = (volatile uint32_t *)(uintptr_t)addr;
        FLASH_CR = (FLASH_CR_PSIZE_X32 << FLASH_CR_PSIZE_SHIFT) | FLASH_CR_PG;
        for (size_t i = 0; i < words; i++, src += 4) {
            /* One load, aligned or not (the Cortex-M4 allows unaligned LDR from SRAM); the
             * builtin is expanded inline, no call into flash. */
            uint32_t value;
            __builtin_memcpy(&value, src, sizeof(value));
            uint32_t old = dst[i];
            if (old == value) {
                continue; /* already there: programming it again is not needed */
            }
            if (!fa_overwrite_ok(old, value)) {
                rc = FOTA_E_NOT_ERASED;
                break;
            }
            dst[i] = value;
            __asm__ volatile("dsb 0xF" ::: "memory");
            if (fa_idle.fn != NULL) {
                fa_idle.fn(fa_idle.ctx); /* SRAM work while the word programs (flash_area.h) */
            }
            rc = wait_not_busy(T_PROG_WORD_MAX_US);
            if (rc == FOTA_OK && (FLASH_SR & FLASH_SR_ERRORS) != 0u) {
                rc = FOTA_E_FLASH;
            }
            if (rc == FOTA_OK && dst[i] != value) {
                rc = FOTA_E_VERIFY;
            }
            if (rc != FOTA_OK) {
                break;
            }
        }
    }
    return finish(rc);
}

RAMFUNC static int flash_erase_sector(uint32_t sector)
{
    if (sector >= FOTA_SECTOR_COUNT) {
        return FOTA_E_ARG;
    }
    /* RM0090 table 5: sectors 0-3 16 KB, 4 64 KB, 5-11 128 KB. */
    uint32_t max_us = sector < 4u ? T_ERASE_16K_MAX_US : sector == 4u ? T_ERASE_64K_MAX_US : T_ERASE_128K_MAX_US;
    int rc = prepare();
    if (rc == FOTA_E_LOCKED) {
        return rc;
    }
    if (rc == FOTA_OK) {
        /* An erase may take 2 s of the 4 s trial watchdog (iwdg.h): start it with a full period.
         * Harmless when the watchdog is not running. */
        IWDG_KR = IWDG_KR_RELOAD;
        /* RM0090 section 3.6.3: PSIZE x32, SER and SNB, then STRT. */
        FLASH_CR = (FLASH_CR_PSIZE_X32 << FLASH_CR_PSIZE_SHIFT) | FLASH_CR_SER | (sector << FLASH_CR_SNB_SHIFT);
        FLASH_CR |= FLASH_CR_STRT;
        rc = wait_not_busy(max_us);
    }
    rc = finish(rc);
    /* The data and instruction caches may hold the erased sector's old contents: reset them (they
     * may only be reset while disabled, RM0090 section 3.5.2). */
    uint32_t acr = FLASH_ACR;
    FLASH_ACR = acr & ~(FLASH_ACR_ICEN | FLASH_ACR_DCEN);
    FLASH_ACR = (acr & ~(FLASH_ACR_ICEN | FLASH_ACR_DCEN)) | FLASH_ACR_ICRST | FLASH_ACR_DCRST;
    FLASH_ACR = acr & ~(FLASH_ACR_ICRST | FLASH_ACR_DCRST);
    return rc;
}

static int flash_read(uint32_t addr, void *dst, size_t len)
{
    if (addr < FOTA_FLASH_BASE || addr - FOTA_FLASH_BASE > FOTA_FLASH_SIZE || len > FOTA_FLASH_SIZE - (addr - FOTA_FLASH_BASE)) {
        return FOTA_E_ARG;
    }
    memcpy(dst, (const void *)(uintptr_t)addr, len);
    return FOTA_OK;
}

/* The CRC calculation unit (RM0090 section 4): CRC_DR takes one word per write and holds the
 * running CRC (polynomial 0x04C11DB7, reset value 0xFFFFFFFF by CRC_CR RESET); each word costs
 * 4 AHB cycles, so the pass runs at about the speed of reading the flash (a 256 KB image in about
 * 1.6 ms at 168 MHz). Same result as crc32_words_update (lib/crc32.c). */
#define CRC_BASE 0x40023000u
#define CRC_DR MMIO32(CRC_BASE + 0x00u)
#define CRC_CR MMIO32(CRC_BASE + 0x08u)
#define CRC_CR_RESET (1u << 0)
#define RCC_AHB1ENR_CRCEN (1u << 12)

static uint32_t flash_crc_words(uint32_t addr, size_t words)
{
    RCC_AHB1ENR |= RCC_AHB1ENR_CRCEN;
    cpu_dsb(); /* ES0182 2.1.13: no peripheral access right after its clock enable */
    CRC_CR = CRC_CR_RESET;
    const volatile uint32_t *p = (const volatile uint32_t *)(uintptr_t)addr;
    while (words--) {
        CRC_DR = *p++;
    }
    return CRC_DR;
}

const struct flash_port flash_stm32_port = {
    .read = flash_read,
    .program = flash_program,
    .erase_sector = flash_erase_sector,
    .crc_words = flash_crc_words,
    .mapped = 1,
};
