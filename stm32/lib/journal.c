/* Metadata journal (journal.h) in the metadata sector: 36-byte records, appended, never rewritten.
 *
 * Writing a record programs its nine words in order, the CRC last: a power cut part-way leaves a
 * record whose CRC (or magic) fails, which scan counts as torn and skips. The newest valid record
 * (highest mr_seq) wins, so an append is atomic from the reader's point of view.
 *
 * Compaction (journal_compact, and journal_append when no erased position is left). The order
 * matters, because between the erase and the first record the journal is empty and the bootloader
 * then boots the newer valid image (boot_pick_highest), and because an erase cut short leaves the
 * sector partly erased and partly old records (any of which may then be the newest survivor):
 *   0. Only a CONFIRMED record compacts. A TRIAL record never does (FOTA_E_FULL): written right
 *      after the erase, it would leave a window in which the journal is empty, and an empty
 *      journal boots the highest version, normally the very image on trial, untried. Room for the
 *      TRIAL records is made beforehand: the update agent compacts at BEGIN, after erasing the
 *      target slot (only the running image is then valid), when fewer than
 *      JOURNAL_UPDATE_RESERVE positions are free, and ACTIVATE refuses when fewer than
 *      JOURNAL_TRIAL_RECORDS are (agent.c). A bootloader that cannot append a trial attempt
 *      because the journal is full reverts instead (boot_decide_trial_unrecorded).
 *   1-2. The caller's guard (journal_guard_fn) runs with the new record; this file knows nothing of
 *      images. The firmware's guard (withdraw.c) validates both slots and asks boot_pick_highest
 *      what an empty journal would boot; if the new record is for slot S (its image valid) and
 *      the pick is the other slot, it withdraws that other image: programs its ii_magic to
 *      IMAGE_INVALIDATED_MAGIC (zero, which programming can always do). Now an empty or
 *      half-erased journal boots S: the other slot cannot be picked by the fallback nor by a stale
 *      surviving record (it no longer validates). The withdrawn image is one the device no longer
 *      wants (a reverted trial, or an older upload superseded by S); the update agent writes a new
 *      one when needed.
 *   3. Erase the sector.
 *   4. Write the new record at offset 0, with the sequence continuing from the old journal.
 * A cut before 2 completes leaves the old journal intact (a cut inside 2 leaves ii_magic partly
 * cleared, i.e. already invalid); a cut in 3 or before 4 completes boots the fallback of step 1-2,
 * the slot the new record confirms; after 4 the new record rules. In every case the device boots
 * a valid image, and never one that is neither confirmed nor on a counted trial. */
#include <string.h>
#include "crc32.h"
#include "journal.h"

#define REC_SIZE ((uint32_t)sizeof(struct fota_meta_record))
#define REC_CRC_SPAN offsetof(struct fota_meta_record, mr_crc32)

static int record_valid(const struct fota_meta_record *r)
{
    return r->mr_magic == FOTA_META_RECORD_MAGIC && crc32_update(0, r, REC_CRC_SPAN) == r->mr_crc32;
}

#define REC_WORDS (REC_SIZE / 4u)

/* 1 when the n words at w all read erased. Four words per step: the scan below runs over the whole
 * sector at every boot, and most of it is erased, so this loop sets the confirmed boot's time. */
static int words_erased(const uint32_t *w, uint32_t n)
{
    uint32_t all = 0xFFFFFFFFu;
    uint32_t i = 0;
    for (; i + 4u <= n; i += 4u) {
        all &= w[i] & w[i + 1u] & w[i + 2u] & w[i + 3u];
    }
    for (; i < n; i++) {
        all &= w[i];
    }
    return all == 0xFFFFFFFFu;
}

int journal_scan(const struct flash_area *fa, struct journal_state *st)
{
    /* Read a few records at a time: the whole sector is scanned on every boot (a cut-short erase
     * can leave old records anywhere), so this loop is part of the boot time. */
    uint32_t buf[8u * REC_WORDS];
    memset(st, 0, sizeof(*st));
    if (fa == NULL) {
        return FOTA_E_ARG;
    }
    /* Memory-mapped flash (the chip) is scanned in place, without a copy. */
    const uint32_t *mapped = fa_mapped(fa, 0, fa->size);
    for (uint32_t base = 0; base + REC_SIZE <= fa->size; base += sizeof(buf)) {
        uint32_t n = (fa->size - base) / REC_SIZE;
        n = n < 8u ? n : 8u;
        const uint32_t *words = buf;
        if (mapped != NULL) {
            words = mapped + base / 4u;
        } else {
            int rc = fa_read(fa, base, buf, n * REC_SIZE);
            if (rc != FOTA_OK) {
                return rc;
            }
        }
        if (words_erased(words, n * REC_WORDS)) {
            continue; /* n erased positions: nothing to read, next_pos unchanged */
        }
        for (uint32_t i = 0; i < n; i++) {
            if (words_erased(&words[i * REC_WORDS], REC_WORDS)) {
                continue;
            }
            struct fota_meta_record r;
            memcpy(&r, &words[i * REC_WORDS], sizeof(r));
            st->next_pos = base + (i + 1u) * REC_SIZE;
            if (!record_valid(&r)) {
                st->torn_records++;
                continue;
            }
            st->valid_records++;
            if (!st->have_record || r.mr_seq > st->latest.mr_seq) {
                st->latest = r;
                st->have_record = 1;
            }
        }
    }
    return st->have_record ? FOTA_OK : FOTA_E_NOT_FOUND;
}

static int compact(const struct flash_area *fa, struct journal_state *st, const struct fota_meta_record *rec,
                   journal_guard_fn guard)
{
    if (rec->mr_state != FOTA_META_STATE_CONFIRMED) {
        return FOTA_E_FULL; /* step 0 */
    }
    int rc = guard(rec); /* steps 1 and 2 */
    if (rc != FOTA_OK) {
        return rc;
    }
    rc = fa_erase(fa, 0, fa->size);
    if (rc != FOTA_OK) {
        return rc;
    }
    rc = fa_write(fa, 0, rec, REC_SIZE);
    if (rc != FOTA_OK) {
        return rc;
    }
    st->next_pos = REC_SIZE;
    st->valid_records = 1;
    st->torn_records = 0;
    return FOTA_OK;
}

/* Sequence (after the newest record), the anti-rollback floor carried forward, magic, reserved
 * fields and CRC. */
static void finish_record(const struct journal_state *st, struct fota_meta_record *rec)
{
    rec->mr_magic = FOTA_META_RECORD_MAGIC;
    rec->mr_seq = st->have_record ? st->latest.mr_seq + 1u : 1u;
    if (st->have_record && st->latest.mr_security_counter > rec->mr_security_counter) {
        rec->mr_security_counter = st->latest.mr_security_counter;
    }
    memset(rec->mr_reserved, 0, sizeof(rec->mr_reserved));
    rec->mr_crc32 = crc32_update(0, rec, REC_CRC_SPAN);
}

uint32_t journal_room(const struct flash_area *fa, const struct journal_state *st)
{
    if (fa == NULL || st == NULL || st->next_pos >= fa->size) {
        return 0;
    }
    return (fa->size - st->next_pos) / REC_SIZE;
}

int journal_compact(const struct flash_area *fa, struct journal_state *st, struct fota_meta_record *rec,
                    journal_guard_fn guard)
{
    if (fa == NULL || st == NULL || rec == NULL || guard == NULL) {
        return FOTA_E_ARG;
    }
    finish_record(st, rec);
    int rc = compact(fa, st, rec, guard);
    if (rc == FOTA_OK) {
        st->latest = *rec;
        st->have_record = 1;
    }
    return rc;
}

int journal_append(const struct flash_area *fa, struct journal_state *st, struct fota_meta_record *rec,
                   journal_guard_fn guard)
{
    if (fa == NULL || st == NULL || rec == NULL || guard == NULL) {
        return FOTA_E_ARG;
    }
    finish_record(st, rec);

    int rc = FOTA_E_FULL;
    /* A position that reads erased but does not take the record (a weak bit left by a cut-short
     * erase) is left behind as a torn record; try the next one. */
    while (st->next_pos + REC_SIZE <= fa->size) {
        uint32_t pos = st->next_pos;
        st->next_pos += REC_SIZE;
        if (!fa_is_erased(fa, pos, REC_SIZE)) {
            st->torn_records++;
            continue;
        }
        rc = fa_write(fa, pos, rec, REC_SIZE);
        if (rc == FOTA_OK) {
            st->valid_records++;
            break;
        }
        st->torn_records++;
        if (rc != FOTA_E_VERIFY && rc != FOTA_E_NOT_ERASED) {
            return rc; /* the controller failed, not the position */
        }
        rc = FOTA_E_FULL;
    }
    if (rc == FOTA_E_FULL) {
        rc = compact(fa, st, rec, guard);
    }
    if (rc == FOTA_OK) {
        st->latest = *rec;
        st->have_record = 1;
    }
    return rc;
}
