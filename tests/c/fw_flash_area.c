/* flash_area: bounds, alignment, erase granularity, programming rules, read-back. */
#include <string.h>
#include "flash_ram.h"
#include "fota_layout.h"
#include "fixture.h"

TEST(fa_layout_from_spec)
{
    fw_flash_fresh();
    const struct flash_area *a = fa_slot(FOTA_SLOT_A), *b = fa_slot(FOTA_SLOT_B), *m = fw_meta();
    CHECK(a && b && m, "areas missing");
    CHECK_EQ(a->base, FOTA_REGION_SLOT_A_BASE);
    CHECK_EQ(b->size, FOTA_REGION_SLOT_B_SIZE);
    CHECK_EQ(m->first_sector, 11);
    CHECK(fa_slot(2) == NULL, "slot 2 must not exist");
    CHECK(fa_get(42) == NULL, "area 42 must not exist");
}

TEST(fa_sector_table_is_rm0090)
{
    /* Four 16 KB sectors, one of 64 KB, seven of 128 KB, back to back from the flash base. */
    uint32_t base = FOTA_FLASH_BASE;
    for (uint32_t n = 0; n < FOTA_SECTOR_COUNT; n++) {
        const struct fa_sector *s = fa_sector(n);
        CHECK(s != NULL, "sector %u missing", n);
        CHECK_EQ(s->base, base);
        CHECK_EQ(s->size, n < 4u ? 0x4000u : n == 4u ? 0x10000u : 0x20000u);
        base += s->size;
    }
    CHECK_EQ(base, FOTA_FLASH_BASE + FOTA_FLASH_SIZE);
    CHECK(fa_sector(FOTA_SECTOR_COUNT) == NULL, "a sector past the last one");
}

TEST(fa_bounds_checked)
{
    fw_flash_fresh();
    const struct flash_area *a = fa_slot(FOTA_SLOT_A);
    uint8_t buf[16] = {0};
    CHECK_EQ(fa_read(a, a->size - 16, buf, 16), FOTA_OK);
    CHECK_EQ(fa_read(a, a->size - 15, buf, 16), FOTA_E_ARG);
    CHECK_EQ(fa_read(a, 0xFFFFFFF0u, buf, 32), FOTA_E_ARG); /* off + len overflows */
    CHECK_EQ(fa_write(a, a->size, buf, 4), FOTA_E_ARG);
    CHECK_EQ(fa_write(a, 2, buf, 4), FOTA_E_ARG);  /* misaligned offset */
    CHECK_EQ(fa_write(a, 0, buf, 6), FOTA_E_ARG);  /* length not whole words */
    CHECK_EQ(fa_erase(a, a->size, 1), FOTA_E_ARG);
    CHECK_EQ(fa_read(NULL, 0, buf, 4), FOTA_E_ARG);
    /* Nothing outside slot A was touched by the refused calls. */
    CHECK_EQ(flash_ram_ops(), 0);
}

TEST(fa_write_and_read_back)
{
    fw_flash_fresh();
    const struct flash_area *b = fa_slot(FOTA_SLOT_B);
    uint8_t data[64], back[64];
    for (int i = 0; i < 64; i++) {
        data[i] = (uint8_t)(i + 1);
    }
    CHECK_EQ(fa_write(b, 0x100, data, sizeof(data)), FOTA_OK);
    CHECK_EQ(fa_read(b, 0x100, back, sizeof(back)), FOTA_OK);
    CHECK(memcmp(data, back, sizeof(data)) == 0, "read back differs");
    CHECK_EQ(flash_ram_ops(), 16); /* one program per 32-bit word */
    /* The same data again: nothing to program (idempotent rewrite). */
    CHECK_EQ(fa_write(b, 0x100, data, sizeof(data)), FOTA_OK);
    CHECK_EQ(flash_ram_ops(), 16);
    CHECK_EQ(flash_ram_violations(), 0);
}

TEST(fa_refuses_program_over_data)
{
    fw_flash_fresh();
    const struct flash_area *a = fa_slot(FOTA_SLOT_A);
    uint32_t v = 0x12345678u, w = 0x12345670u, zero = 0;
    CHECK_EQ(fa_write(a, 0, &v, 4), FOTA_OK);
    /* Even a value that only clears bits is refused, except all-zero (invalidation). */
    CHECK_EQ(fa_write(a, 0, &w, 4), FOTA_E_NOT_ERASED);
    CHECK_EQ(fa_write(a, 0, &zero, 4), FOTA_OK);
    uint32_t back;
    CHECK_EQ(fa_read(a, 0, &back, 4), FOTA_OK);
    CHECK_EQ(back, 0);
    CHECK_EQ(flash_ram_violations(), 0);
}

TEST(fa_read_back_catches_bad_cell)
{
    fw_flash_fresh();
    const struct flash_area *a = fa_slot(FOTA_SLOT_A);
    uint32_t v = 0xA5A5A5A5u;
    flash_ram_stuck_word(a->base + 8);
    CHECK_EQ(fa_write(a, 8, &v, 4), FOTA_E_VERIFY);
}

TEST(fa_erase_touches_only_its_sectors)
{
    fw_flash_fresh();
    const struct flash_area *a = fa_slot(FOTA_SLOT_A), *b = fa_slot(FOTA_SLOT_B);
    uint8_t *mem = flash_ram_mem();
    memset(mem, 0x00, FOTA_FLASH_SIZE);
    /* 1 byte at the end of sector 5 and 1 at the start of sector 6: both sectors. */
    CHECK_EQ(fa_sectors_touched(a, 0x1FFFF, 2), 2);
    CHECK_EQ(fa_sectors_touched(a, 0, 1), 1);
    CHECK_EQ(fa_sectors_touched(a, 0, 0), 0);
    CHECK_EQ(fa_sectors_touched(b, 0, 0x40000 + 1), 3);
    CHECK_EQ(fa_erase(b, 0x20000, 0x20000), FOTA_OK); /* exactly sector 8 */
    CHECK_EQ(flash_ram_erases(), 1);
    CHECK(fa_is_erased(b, 0x20000, 0x20000), "sector 8 not erased");
    CHECK(!fa_is_erased(b, 0x1FFFC, 4), "sector 7 erased too");
    CHECK(!fa_is_erased(b, 0x40000, 4), "sector 9 erased too");
    CHECK_EQ(fa_erase(a, 0, a->size), FOTA_OK);
    CHECK(fa_is_erased(a, 0, a->size), "slot A not erased");
    CHECK_EQ(mem[a->base - FOTA_FLASH_BASE - 1], 0x00); /* bootloader's last byte */
    CHECK_EQ(mem[b->base - FOTA_FLASH_BASE], 0x00);     /* slot B's first byte */
}

TEST(fa_block_stops_at_a_word_over_data)
{
    /* A block stops at the first word over data (NOT_ERASED), the words before it programmed,
     * none after it. */
    fw_flash_fresh();
    const struct flash_area *b = fa_slot(FOTA_SLOT_B);
    uint32_t old = 0x11111111u;
    uint32_t data[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    CHECK_EQ(fa_write(b, 5 * 4, &old, 4), FOTA_OK);
    uint32_t ops = flash_ram_ops();
    CHECK_EQ(fa_write(b, 0, data, sizeof(data)), FOTA_E_NOT_ERASED);
    CHECK_EQ(flash_ram_ops(), ops + 5);
    CHECK(fa_is_erased(b, 6 * 4, 2 * 4), "words after the refused one were programmed");
    /* Words that already hold their value are skipped inside a block, the others programmed. */
    data[5] = old;
    CHECK_EQ(fa_write(b, 0, data, sizeof(data)), FOTA_OK);
    CHECK_EQ(flash_ram_ops(), ops + 5 + 2);
    uint32_t back[8];
    CHECK_EQ(fa_read(b, 0, back, sizeof(back)), FOTA_OK);
    CHECK(memcmp(back, data, sizeof(data)) == 0, "read back differs");
}

TEST(fa_write_unaligned_source_and_long_block)
{
    /* A block longer than the check buffer, from a source at an odd address (the agent's WRITE
     * data sits inside a frame). */
    fw_flash_fresh();
    const struct flash_area *b = fa_slot(FOTA_SLOT_B);
    static uint8_t raw[4096 + 1];
    for (size_t i = 0; i < sizeof(raw); i++) {
        raw[i] = (uint8_t)(i * 13u + 5u);
    }
    CHECK_EQ(fa_write(b, 0x1000, raw + 1, 4096), FOTA_OK);
    CHECK_EQ(flash_ram_ops(), 4096 / 4);
    CHECK(memcmp(fw_slot_mem(FOTA_SLOT_B) + 0x1000, raw + 1, 4096) == 0, "contents differ");
    /* A cut in the middle of the block: the words before it stay programmed, the error returns. */
    flash_ram_power_on();
    flash_ram_cut_at(10);
    CHECK_EQ(fa_write(b, 0x3000, raw + 1, 4096), FOTA_E_FLASH);
    CHECK(memcmp(fw_slot_mem(FOTA_SLOT_B) + 0x3000, raw + 1, 40) == 0, "words before the cut lost");
    CHECK(fa_is_erased(b, 0x3000 + 44, 4096 - 44), "words after the cut were programmed");
}
