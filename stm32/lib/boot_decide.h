/* The boot decision as a pure function: decoded slot states + newest journal record + reset
 * cause -> which slot to boot, and which journal record (if any) to append first.
 * A table maps the decoded state to an action (model: MCUboot's boot_swap_tables). */
#ifndef FOTA_BOOT_DECIDE_H
#define FOTA_BOOT_DECIDE_H

#include <stdint.h>
#include "fota_image.h"
#include "image.h"

enum boot_reason {
    BOOT_R_CONFIRMED = 0,      /* journal: active slot confirmed */
    BOOT_R_TRIAL,              /* journal: active slot on trial, attempt consumed */
    BOOT_R_REVERT_ATTEMPTS,    /* trial attempts used up: back to the previous slot */
    BOOT_R_REVERT_INVALID,     /* trial image does not validate: back to the previous slot */
    BOOT_R_FALLBACK,           /* journal's slot invalid: the other valid slot */
    BOOT_R_NO_RECORD,          /* no valid record (first boot): highest-version valid image, recorded
                                * as CONFIRMED (RESULT_NONE) */
    BOOT_R_NONE_VALID,         /* nothing bootable: stay in the bootloader */
};

struct boot_input {
    struct image_summary slot[2];
    int have_record;
    struct fota_meta_record rec;  /* newest valid record when have_record */
    int watchdog_reset;           /* RCC_CSR IWDGRSTF was set */
};

struct boot_decision {
    int boot_slot;                /* SLOT_A, SLOT_B, or -1 for none */
    uint8_t reason;               /* enum boot_reason */
    int start_watchdog;           /* trial boot: start the IWDG before jumping */
    int append;                   /* 1: append `record` before jumping */
    struct fota_meta_record record;  /* seq, magic, crc filled by journal_append */
};

/* The anti-rollback floor: the newest record's mr_security_counter, 0 without a record. */
uint32_t boot_floor(const struct boot_input *in);
/* Anti-rollback: a VALID slot whose security counter is below boot_floor(in) becomes INVALID
 * with IMAGE_ROLLBACK. Run before boot_decide (which then never boots it). */
void boot_enforce_floor(struct boot_input *in);
void boot_decide(const struct boot_input *in, struct boot_decision *out);
/* The bootloader could not append the record of a trial boot (append_rc): an attempt that is not
 * counted could repeat forever, so d (a BOOT_R_TRIAL decision) becomes a boot of the other slot
 * when it is valid. With FOTA_E_FULL (a TRIAL record never compacts the journal) that is a revert,
 * recorded as CONFIRMED other (RESULT_REVERTED_NO_CONFIRM; d->append set again: a CONFIRMED record
 * compacts safely); after any other error a plain fallback for this boot, without a record. When
 * the other slot is not valid the trial slot still boots (uncounted). d->append tells whether a
 * record is still to be appended. No change when d is not a trial boot. */
void boot_decide_trial_unrecorded(const struct boot_input *in, int append_rc, struct boot_decision *d);
/* The rule for a journal without a usable record: the valid slot with the higher security
 * counter, between equal counters the newer version (version_cmp: major, minor, patch), slot A
 * when both hold the same release; -1 when neither is valid. The journal's
 * compaction uses it too, to know what a power cut in the middle would boot. */
int boot_pick_highest(const struct image_summary slot[2]);
const char *boot_reason_str(uint8_t reason);

#endif /* FOTA_BOOT_DECIDE_H */
