/* The guard of a journal compaction (journal_guard_fn, journal.h). Between a compaction's erase
 * and its one new record the journal is empty, and an empty (or half-erased) journal boots what
 * boot_pick_highest picks; so before the erase the image that would be picked instead of the slot
 * the new record confirms is withdrawn. Storage (journal.c) stays apart from the boot policy
 * (boot_decide.c): the bootloader and the update agent hand this guard to the journal. */
#ifndef FOTA_WITHDRAW_H
#define FOTA_WITHDRAW_H

#include "fota_image.h"

/* Validate both slots; when rec confirms slot S, S holds a valid image and boot_pick_highest picks
 * the other slot, withdraw that other image (image_withdraw). FOTA_OK when nothing was to be done
 * or the image is withdrawn; else the flash error. */
int withdraw_unwanted_image(const struct fota_meta_record *rec);

#endif /* FOTA_WITHDRAW_H */
