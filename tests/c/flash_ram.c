/* The RAM flash of the host tests (flash_ram.h). */
#include "flash_ram.h"
#include <string.h>
#include "fota_layout.h"

static uint8_t mem[FOTA_FLASH_SIZE];
static uint32_t ops, erases, programs, over_data, violations;
static uint32_t sector_erases[FOTA_SECTOR_COUNT];
static int32_t cut_at = -1;
static int32_t fail_program_at = -1;
static int32_t fail_erase_at = -1;
static int cut;
static uint32_t stuck_addr;

void flash_ram_reset(void)
{
    memset(mem, 0xFF, sizeof(mem));
    flash_ram_power_on();
    violations = 0;
    stuck_addr = 0;
}

uint8_t *flash_ram_mem(void) { return mem; }
uint32_t flash_ram_ops(void) { return ops; }
uint32_t flash_ram_erases(void) { return erases; }
uint32_t flash_ram_sector_erases(uint32_t sector) { return sector < FOTA_SECTOR_COUNT ? sector_erases[sector] : 0; }
uint32_t flash_ram_programs(void) { return programs; }
uint32_t flash_ram_programs_over_data(void) { return over_data; }
uint32_t flash_ram_violations(void) { return violations; }
int flash_ram_is_cut(void) { return cut; }
void flash_ram_stuck_word(uint32_t addr) { stuck_addr = addr; }
void flash_ram_cut_at(int32_t n) { cut_at = n; }
void flash_ram_fail_program_at(int32_t n) { fail_program_at = n; }
void flash_ram_fail_erase_at(int32_t n) { fail_erase_at = n; }

void flash_ram_power_on(void)
{
    ops = 0;
    erases = 0;
    programs = 0;
    over_data = 0;
    memset(sector_erases, 0, sizeof(sector_erases));
    cut_at = -1;
    fail_program_at = -1;
    fail_erase_at = -1;
    cut = 0;
}

/* 1 when this operation is the one the power is cut in. */
static int cutting_now(void)
{
    int now = cut_at >= 0 && (int32_t)ops == cut_at;
    ops++;
    if (now) {
        cut = 1;
    }
    return now;
}

static int ram_read(uint32_t addr, void *dst, size_t len)
{
    if (addr < FOTA_FLASH_BASE || addr - FOTA_FLASH_BASE > FOTA_FLASH_SIZE ||
        len > FOTA_FLASH_SIZE - (addr - FOTA_FLASH_BASE)) {
        return FOTA_E_ARG;
    }
    memcpy(dst, &mem[addr - FOTA_FLASH_BASE], len);
    return FOTA_OK;
}

static int ram_program_word(uint32_t addr, uint32_t value)
{
    if (cut) {
        return FOTA_E_FLASH;
    }
    if (addr % 4u != 0u || addr < FOTA_FLASH_BASE || addr - FOTA_FLASH_BASE > FOTA_FLASH_SIZE - 4u) {
        return FOTA_E_ARG;
    }
    if ((int32_t)programs++ == fail_program_at) {
        ops++;
        return FOTA_E_FLASH;
    }
    uint32_t old;
    memcpy(&old, &mem[addr - FOTA_FLASH_BASE], 4);
    if (old != 0xFFFFFFFFu) {
        over_data++;
    }
    if ((old & value) != value) {
        violations++;
    }
    if (cutting_now()) {
        value |= 0xFFFF0000u; /* only the low half-word got programmed */
    }
    if (addr != stuck_addr) {
        uint32_t now = old & value;
        memcpy(&mem[addr - FOTA_FLASH_BASE], &now, 4);
    }
    return cut ? FOTA_E_FLASH : FOTA_OK;
}

/* The block operation of the port, word by word as the chip does it: each programmed word is one
 * operation (cut point), then read back. */
static int ram_program(uint32_t addr, const uint8_t *src, size_t words)
{
    for (size_t i = 0; i < words; i++, addr += 4u, src += 4) {
        uint32_t value = (uint32_t)src[0] | ((uint32_t)src[1] << 8) | ((uint32_t)src[2] << 16) |
                         ((uint32_t)src[3] << 24);
        uint32_t now;
        int rc = ram_read(addr, &now, sizeof(now));
        if (rc != FOTA_OK) {
            return rc;
        }
        if (now == value) {
            continue;
        }
        if (!fa_overwrite_ok(now, value)) {
            return FOTA_E_NOT_ERASED;
        }
        rc = ram_program_word(addr, value);
        if (fa_idle.fn != NULL) {
            fa_idle.fn(fa_idle.ctx); /* as the chip's port: once per word started */
        }
        if (rc != FOTA_OK) {
            return rc;
        }
        (void)ram_read(addr, &now, sizeof(now));
        if (now != value) {
            return FOTA_E_VERIFY;
        }
    }
    return FOTA_OK;
}

static int ram_erase_sector(uint32_t sector)
{
    if (cut) {
        return FOTA_E_FLASH;
    }
    const struct fa_sector *sec = fa_sector(sector);
    if (sec == NULL) {
        return FOTA_E_ARG;
    }
    if ((int32_t)erases++ == fail_erase_at) {
        ops++;
        return FOTA_E_FLASH;
    }
    uint32_t len = sec->size;
    sector_erases[sector]++;
    if (cutting_now()) {
        len /= 2u; /* the erase stopped half way: old data in the upper half */
    }
    memset(&mem[sec->base - FOTA_FLASH_BASE], 0xFF, len);
    return cut ? FOTA_E_FLASH : FOTA_OK;
}

const struct flash_port flash_ram_port = {
    .read = ram_read,
    .program = ram_program,
    .erase_sector = ram_erase_sector,
};
