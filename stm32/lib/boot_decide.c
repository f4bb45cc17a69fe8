/* The boot decision (boot_decide.h): decode the inputs into a small state, look the action up in
 * a table, then one switch carries it out. Pure: no flash access, no globals.
 *
 * Decoded state: the kind of the newest journal record x is its active slot valid x is the other
 * slot valid. A slot is bootable only when image_validate said VALID (magic, slot, load address,
 * size, trailer, vectors and SHA-256), so no action below can ever jump into an erased or invalid
 * slot. Anti-rollback: boot_enforce_floor, run on the inputs first, makes a valid image whose
 * security counter is below the journal's floor INVALID (IMAGE_ROLLBACK), so the table never boots
 * one, not even as a fallback or a last resort. */
#include <string.h>
#include "boot_decide.h"
#include "journal.h"
#include "version.h"

enum rec_kind {
    REC_NONE = 0,      /* no valid record, or one with values out of range */
    REC_CONFIRMED,     /* META_STATE_CONFIRMED */
    REC_TRIAL_LEFT,    /* META_STATE_TRIAL, attempts_left > 0 */
    REC_TRIAL_SPENT,   /* META_STATE_TRIAL, attempts_left == 0 */
    REC_KINDS,
};

enum action {
    ACT_STAY = 0,         /* nothing valid: stay in the bootloader */
    ACT_HIGHEST,          /* no record (first boot): highest-version valid image, recorded as
                           * CONFIRMED so that a later update is never started without a trial */
    ACT_ACTIVE,           /* boot the record's active slot, confirmed */
    ACT_OTHER,            /* active slot invalid: the other (valid) slot */
    ACT_TRIAL,            /* consume one trial attempt and boot the trial slot with the watchdog */
    ACT_REVERT_ATTEMPTS,  /* trial attempts used up: back to the other slot, record the revert */
    ACT_REVERT_INVALID,   /* trial image invalid: back to the other slot, record the revert */
    ACT_LAST_RESORT,      /* attempts used up but the previous slot is gone: the trial image again,
                           * with the watchdog, so that it can still confirm itself */
};

/* [record kind][active slot valid][other slot valid] */
static const uint8_t action_table[REC_KINDS][2][2] = {
    [REC_NONE] = {{ACT_HIGHEST, ACT_HIGHEST}, {ACT_HIGHEST, ACT_HIGHEST}},
    [REC_CONFIRMED] = {{ACT_STAY, ACT_OTHER}, {ACT_ACTIVE, ACT_ACTIVE}},
    [REC_TRIAL_LEFT] = {{ACT_STAY, ACT_REVERT_INVALID}, {ACT_TRIAL, ACT_TRIAL}},
    [REC_TRIAL_SPENT] = {{ACT_STAY, ACT_REVERT_INVALID}, {ACT_LAST_RESORT, ACT_REVERT_ATTEMPTS}},
};

static int is_valid(const struct image_summary *s)
{
    return s->state == FOTA_SLOT_STATE_VALID;
}

int boot_pick_highest(const struct image_summary slot[2])
{
    int a = is_valid(&slot[FOTA_SLOT_A]);
    int b = is_valid(&slot[FOTA_SLOT_B]);
    if (a && b) {
        const struct image_summary *sa = &slot[FOTA_SLOT_A];
        const struct image_summary *sb = &slot[FOTA_SLOT_B];
        if (sa->security_counter != sb->security_counter) {
            return sb->security_counter > sa->security_counter ? (int)FOTA_SLOT_B : (int)FOTA_SLOT_A;
        }
        return version_cmp(&sb->ver, &sa->ver) > 0 ? (int)FOTA_SLOT_B : (int)FOTA_SLOT_A;
    }
    if (a) {
        return (int)FOTA_SLOT_A;
    }
    return b ? (int)FOTA_SLOT_B : -1;
}

uint32_t boot_floor(const struct boot_input *in)
{
    return in->have_record ? in->rec.mr_security_counter : 0u;
}

void boot_enforce_floor(struct boot_input *in)
{
    uint32_t floor = boot_floor(in);
    for (uint8_t s = FOTA_SLOT_A; s <= FOTA_SLOT_B; s++) {
        struct image_summary *img = &in->slot[s];
        if (is_valid(img) && img->security_counter < floor) {
            img->state = FOTA_SLOT_STATE_INVALID;
            img->fault = IMAGE_ROLLBACK;
        }
    }
}

static enum rec_kind decode_record(const struct boot_input *in)
{
    if (!in->have_record || in->rec.mr_active_slot > FOTA_SLOT_B) {
        return REC_NONE;
    }
    switch (in->rec.mr_state) {
    case FOTA_META_STATE_CONFIRMED:
        return REC_CONFIRMED;
    case FOTA_META_STATE_TRIAL:
        return in->rec.mr_attempts_left > 0u ? REC_TRIAL_LEFT : REC_TRIAL_SPENT;
    default:
        return REC_NONE;
    }
}

/* A CONFIRMED record for slot, with the version of its image. */
static void confirmed_record(struct fota_meta_record *r, const struct image_summary *img, uint8_t slot,
                             uint8_t result)
{
    journal_record(r, slot, FOTA_META_STATE_CONFIRMED, 0, result, slot, &img->ver);
}

void boot_decide(const struct boot_input *in, struct boot_decision *out)
{
    memset(out, 0, sizeof(*out));
    out->boot_slot = -1;
    out->reason = BOOT_R_NONE_VALID;

    enum rec_kind kind = decode_record(in);
    uint8_t active = kind == REC_NONE ? FOTA_SLOT_A : in->rec.mr_active_slot;
    uint8_t other = active == FOTA_SLOT_A ? FOTA_SLOT_B : FOTA_SLOT_A;
    int active_ok = is_valid(&in->slot[active]);
    int other_ok = is_valid(&in->slot[other]);

    switch ((enum action)action_table[kind][active_ok][other_ok]) {
    case ACT_STAY:
        break;
    case ACT_HIGHEST:
        out->boot_slot = boot_pick_highest(in->slot);
        if (out->boot_slot >= 0) {
            out->reason = BOOT_R_NO_RECORD;
            out->append = 1;
            confirmed_record(&out->record, &in->slot[out->boot_slot], (uint8_t)out->boot_slot, FOTA_RESULT_NONE);
            /* The floor starts at the booted image's counter: the highest of the valid images
             * (boot_pick_highest), so that neither slot's lower-counter image boots later. */
            out->record.mr_security_counter = in->slot[out->boot_slot].security_counter;
        }
        break;
    case ACT_ACTIVE:
        out->boot_slot = active;
        out->reason = BOOT_R_CONFIRMED;
        break;
    case ACT_OTHER:
        out->boot_slot = other;
        out->reason = BOOT_R_FALLBACK;
        break;
    case ACT_TRIAL:
        out->boot_slot = active;
        out->reason = BOOT_R_TRIAL;
        out->start_watchdog = 1;
        out->append = 1;
        out->record = in->rec; /* the same record with one attempt fewer */
        out->record.mr_attempts_left = (uint8_t)(in->rec.mr_attempts_left - 1u);
        break;
    case ACT_REVERT_ATTEMPTS:
        out->boot_slot = other;
        out->reason = BOOT_R_REVERT_ATTEMPTS;
        out->append = 1;
        confirmed_record(&out->record, &in->slot[other], other,
                         in->watchdog_reset ? FOTA_RESULT_REVERTED_WATCHDOG : FOTA_RESULT_REVERTED_NO_CONFIRM);
        break;
    case ACT_REVERT_INVALID:
        out->boot_slot = other;
        out->reason = BOOT_R_REVERT_INVALID;
        out->append = 1;
        confirmed_record(&out->record, &in->slot[other], other, FOTA_RESULT_REVERTED_INVALID);
        break;
    case ACT_LAST_RESORT:
        out->boot_slot = active;
        out->reason = BOOT_R_FALLBACK;
        out->start_watchdog = 1;
        break;
    }
}

void boot_decide_trial_unrecorded(const struct boot_input *in, int append_rc, struct boot_decision *d)
{
    if (d->reason != BOOT_R_TRIAL || d->boot_slot < 0) {
        return;
    }
    d->append = 0; /* the trial record is not written; the revert below has its own */
    uint8_t other = d->boot_slot == FOTA_SLOT_A ? FOTA_SLOT_B : FOTA_SLOT_A;
    if (!is_valid(&in->slot[other])) {
        return;
    }
    d->boot_slot = other;
    d->start_watchdog = 0;
    if (append_rc == FOTA_E_FULL) {
        d->reason = BOOT_R_REVERT_ATTEMPTS;
        d->append = 1;
        confirmed_record(&d->record, &in->slot[other], other, FOTA_RESULT_REVERTED_NO_CONFIRM);
    } else {
        d->reason = BOOT_R_FALLBACK;
    }
}

const char *boot_reason_str(uint8_t reason)
{
    switch (reason) {
    case BOOT_R_CONFIRMED:
        return "confirmed";
    case BOOT_R_TRIAL:
        return "trial";
    case BOOT_R_REVERT_ATTEMPTS:
        return "revert-attempts";
    case BOOT_R_REVERT_INVALID:
        return "revert-invalid";
    case BOOT_R_FALLBACK:
        return "fallback";
    case BOOT_R_NO_RECORD:
        return "no-record";
    case BOOT_R_NONE_VALID:
        return "none-valid";
    default:
        return "?";
    }
}
