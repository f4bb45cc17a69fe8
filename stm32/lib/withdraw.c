/* The compaction guard (withdraw.h); journal.c, steps 1 and 2, explains the order it is part of. */
#include "withdraw.h"
#include "boot_decide.h"
#include "image.h"

int withdraw_unwanted_image(const struct fota_meta_record *rec)
{
    struct image_summary slot[2];
    if (rec->mr_active_slot > FOTA_SLOT_B) {
        return FOTA_OK;
    }
    (void)image_validate(FOTA_SLOT_A, &slot[FOTA_SLOT_A]);
    (void)image_validate(FOTA_SLOT_B, &slot[FOTA_SLOT_B]);
    int pick = boot_pick_highest(slot);
    if (pick < 0 || pick == rec->mr_active_slot || slot[rec->mr_active_slot].state != FOTA_SLOT_STATE_VALID) {
        return FOTA_OK;
    }
    return image_withdraw((uint8_t)pick);
}
