/* Shared fixture of the firmware module tests (fixture.h). */
#include "fixture.h"
#include <string.h>
#include "flash_ram.h"
#include "fota_layout.h"
#include "sha256.h"

#define TEST_SP (FOTA_SRAM_BASE + FOTA_SRAM_SIZE)
#define ENTRY_OFFSET 0x241u /* inside the code after the information block, Thumb bit set */

void fw_flash_fresh(void)
{
    flash_ram_reset();
    fa_init(&flash_ram_port);
}

uint8_t *fw_slot_mem(uint8_t slot)
{
    return flash_ram_mem() + (fa_slot(slot)->base - FOTA_FLASH_BASE);
}

uint8_t *fw_meta_mem(void)
{
    return flash_ram_mem() + (FOTA_REGION_METADATA_BASE - FOTA_FLASH_BASE);
}

static void put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4); /* host and target are both little-endian */
}

void fw_rehash(uint8_t slot)
{
    uint8_t *m = fw_slot_mem(slot);
    struct fota_image_info ii;
    memcpy(&ii, m + FOTA_IMAGE_INFO_OFFSET, sizeof(ii));
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, m, ii.ii_image_size);
    sha256_final(&ctx, m + ii.ii_image_size + offsetof(struct fota_image_trailer, it_sha256));
}

uint32_t fw_put_image(uint8_t where, const struct img_spec *spec)
{
    const struct flash_area *linked = fa_slot(spec->slot);
    uint8_t *m = fw_slot_mem(where);
    uint32_t size = FOTA_IMAGE_INFO_OFFSET + (uint32_t)sizeof(struct fota_image_info) + spec->payload;
    size = (size + FOTA_IMAGE_ALIGN - 1u) & ~(FOTA_IMAGE_ALIGN - 1u);

    memset(m, 0, size);
    put32(m, TEST_SP);
    put32(m + 4, linked->base + ENTRY_OFFSET);
    struct fota_image_info ii = {
        .ii_magic = FOTA_IMAGE_INFO_MAGIC,
        .ii_format = FOTA_IMAGE_FORMAT_VERSION,
        .ii_slot = spec->slot,
        .ii_load_addr = linked->base,
        .ii_ver_major = spec->ver[0],
        .ii_ver_minor = spec->ver[1],
        .ii_ver_patch = spec->ver[2],
        .ii_build = spec->build,
        .ii_image_size = size,
    };
    memcpy(m + FOTA_IMAGE_INFO_OFFSET, &ii, sizeof(ii));
    for (uint32_t i = FOTA_IMAGE_INFO_OFFSET + sizeof(ii); i < size; i++) {
        m[i] = (uint8_t)(i * 7u + spec->build);
    }
    struct fota_image_trailer tr;
    memset(&tr, 0xFF, sizeof(tr));
    tr.it_magic = FOTA_IMAGE_TRAILER_MAGIC;
    tr.it_format = FOTA_IMAGE_FORMAT_VERSION;
    tr.it_sig_type = FOTA_SIG_NONE;
    tr.it_trailer_size = sizeof(tr);
    tr.it_reserved0 = 0;
    memcpy(m + size, &tr, sizeof(tr));
    fw_rehash(where);
    return size;
}

struct fota_meta_record fw_record(uint8_t slot, uint8_t state, uint8_t attempts, uint8_t prev)
{
    static const struct fw_version none = {0, 0, 0, 0};
    struct fota_meta_record r;
    journal_record(&r, slot, state, attempts, FOTA_RESULT_NONE, prev, &none);
    return r;
}

const struct flash_area *fw_meta(void)
{
    return fa_get(FOTA_REGION_METADATA_ID);
}

int fw_boot(struct boot_decision *d, int watchdog_reset)
{
    struct boot_input in;
    struct journal_state js;
    memset(&in, 0, sizeof(in));
    (void)image_validate(FOTA_SLOT_A, &in.slot[FOTA_SLOT_A]);
    (void)image_validate(FOTA_SLOT_B, &in.slot[FOTA_SLOT_B]);
    (void)journal_scan(fw_meta(), &js);
    in.have_record = js.have_record;
    in.rec = js.latest;
    in.watchdog_reset = watchdog_reset;
    boot_decide(&in, d);
    return d->boot_slot;
}
