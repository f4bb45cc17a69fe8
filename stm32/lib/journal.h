/* Metadata journal in sector 11: append-only records (struct fota_meta_record, fota_image.h).
 * The valid record (magic and CRC) with the highest sequence wins; a torn record fails its CRC and
 * is skipped; appends go to the position after the last one that is not erased. When the sector is
 * full, journal_append compacts with a CONFIRMED record, never with a TRIAL one (FOTA_E_FULL): see
 * journal.c for the order that keeps a bootable device at any power cut, and why. The journal is
 * storage only: what the boot policy needs before a compaction erases the sector is the caller's
 * guard (journal_guard_fn).
 *
 * Anti-rollback floor (mr_security_counter): every append and compaction writes the larger of the
 * record's value and the newest record's, so the floor never goes down while the journal holds a
 * record, whatever a caller passes; a caller raises it by passing a larger value (the agent's
 * CONFIRM: the confirming image's security counter; the bootloader's first boot: the booted
 * image's). A torn record leaves the previous one, and its floor, in force. */
#ifndef FOTA_JOURNAL_H
#define FOTA_JOURNAL_H

#include <string.h>
#include "flash_area.h"
#include "fota_image.h"
#include "version.h"

/* Records an update needs after BEGIN, none of which may compact: ACTIVATE's TRIAL record and one
 * TRIAL record per trial boot (the bootloader counts the attempt down). */
#define JOURNAL_TRIAL_RECORDS (1u + FOTA_META_TRIAL_ATTEMPTS)
/* Free positions BEGIN makes sure of: the trial records, the closing CONFIRMED record (confirm or
 * revert) and a margin for records torn by power cuts during the update. */
#define JOURNAL_TORN_MARGIN 8u
#define JOURNAL_UPDATE_RESERVE (JOURNAL_TRIAL_RECORDS + 1u + JOURNAL_TORN_MARGIN)

/* A compaction's guard, called with the record the compaction is about to write, before the
 * sector is erased: it must leave flash such that an empty or half-erased journal boots the slot
 * that record confirms (journal.c, steps 1 and 2). The firmware's guard is
 * withdraw_unwanted_image (withdraw.h). An error stops the compaction before the erase and is
 * returned. */
typedef int (*journal_guard_fn)(const struct fota_meta_record *rec);

struct journal_state {
    int have_record;                 /* 0: no valid record in the sector */
    struct fota_meta_record latest;  /* valid when have_record */
    uint32_t next_pos;               /* offset after the last non-erased position (may be the area size) */
    uint32_t valid_records;
    uint32_t torn_records;           /* positions neither erased nor valid */
};

/* The one builder of a record's contents: `slot` becomes the active slot, in `state`
 * (META_STATE_*) with `attempts` trial boots left; `result` is the outcome of the last update
 * (RESULT_*), `prev` the slot to go back to, `ver` the version of the image in `slot`. Sequence,
 * magic, reserved fields and CRC are journal_append's (and journal_compact's); mr_image_crc starts
 * 0 (none) and is set by the writer of a CONFIRMED record that knows it (image_crc);
 * mr_security_counter starts 0 (keep the journal's floor) and is set by a writer that raises it. */
static inline void journal_record(struct fota_meta_record *rec, uint8_t slot, uint8_t state, uint8_t attempts,
                                  uint8_t result, uint8_t prev, const struct fw_version *ver)
{
    memset(rec, 0, sizeof(*rec));
    rec->mr_active_slot = slot;
    rec->mr_state = state;
    rec->mr_attempts_left = attempts;
    rec->mr_last_result = result;
    rec->mr_prev_slot = prev;
    rec->mr_ver_major = ver->major;
    rec->mr_ver_minor = ver->minor;
    rec->mr_ver_patch = ver->patch;
    rec->mr_build = ver->build;
}

int journal_scan(const struct flash_area *fa, struct journal_state *st);
/* Fill seq (latest + 1), magic and CRC of rec and append it; when full, compacts (with guard) for
 * a CONFIRMED record and returns FOTA_E_FULL for a TRIAL one (journal.c, step 0). A guard is
 * required (FOTA_E_ARG without one), so that no caller can forget it. On success st describes the
 * journal with rec as the latest record. */
int journal_append(const struct flash_area *fa, struct journal_state *st, struct fota_meta_record *rec,
                   journal_guard_fn guard);
/* Erased positions left after the last used one (appends without compaction still possible). */
uint32_t journal_room(const struct flash_area *fa, const struct journal_state *st);
/* Compact now, whatever the room: the sector afresh with rec (seq continuing) as its only record,
 * in the order of journal.c, guard first. rec must be CONFIRMED (else FOTA_E_FULL, nothing
 * touched). */
int journal_compact(const struct flash_area *fa, struct journal_state *st, struct fota_meta_record *rec,
                    journal_guard_fn guard);

#endif /* FOTA_JOURNAL_H */
