/* Shared fixture of the firmware module tests (fixture.h). */
#include "fixture.h"
#include <string.h>
#include "flash_ram.h"
#include "fota_layout.h"
#include "mcuboot_fixture.h"
#include "sha256.h"

void fw_flash_fresh(void)
{
    flash_ram_reset();
    fa_init(&flash_ram_port);
    image_set_keyring(fw_test_ring());
}

uint8_t *fw_slot_mem(uint8_t slot)
{
    return flash_ram_mem() + (fa_slot(slot)->base - FOTA_FLASH_BASE);
}

uint8_t *fw_meta_mem(void)
{
    return flash_ram_mem() + (FOTA_REGION_METADATA_BASE - FOTA_FLASH_BASE);
}

void fw_rehash(uint8_t slot)
{
    fw_resign(slot);
}

uint32_t fw_put_image(uint8_t where, const struct img_spec *spec)
{
    struct signed_spec s = {spec->slot, {spec->ver[0], spec->ver[1], spec->ver[2]}, spec->build, 1u, spec->payload, 0,
                            0};
    return fw_put_signed(where, &s);
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
    boot_enforce_floor(&in);
    boot_decide(&in, d);
    return d->boot_slot;
}
