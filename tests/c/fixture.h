/* Shared fixture of the firmware module tests (fixture.c): the RAM flash as the flash_area
 * backend, valid test images, journal records and what a boot would decide. */
#ifndef FW_FIXTURE_H
#define FW_FIXTURE_H

#include <stdint.h>
#include "boot_decide.h"
#include "fota_image.h"
#include "harness.h"
#include "image.h"
#include "journal.h"
#include "withdraw.h"

struct img_spec {
    uint8_t slot;          /* slot the image is linked for */
    uint8_t ver[3];        /* major minor patch */
    uint32_t build;
    uint32_t payload;      /* bytes of code after the vector words */
};

/* Power-on RAM flash, installed as the flash_area backend. */
void fw_flash_fresh(void);
/* Write a valid image (signed by test key 0, security counter 1) for spec into slot `where`
 * (normally spec->slot); returns its total size (header to the last TLV). */
uint32_t fw_put_image(uint8_t where, const struct img_spec *spec);
/* Pointer to the bytes of slot `slot` in the RAM flash. */
uint8_t *fw_slot_mem(uint8_t slot);
/* Pointer to the metadata sector in the RAM flash. */
uint8_t *fw_meta_mem(void);
/* Recompute the SHA256 TLV and the signature after editing the signed part of an image in RAM (so
 * only the edited field is wrong). */
void fw_rehash(uint8_t slot);
/* A record for the journal (seq, magic and CRC are set by journal_append). */
struct fota_meta_record fw_record(uint8_t slot, uint8_t state, uint8_t attempts, uint8_t prev);
const struct flash_area *fw_meta(void);
/* What a boot would do now: validate both slots, scan the journal, decide. Returns boot_slot. */
int fw_boot(struct boot_decision *d, int watchdog_reset);

#endif /* FW_FIXTURE_H */
