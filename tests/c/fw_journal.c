/* journal: newest record wins, torn records are skipped, compaction, and power cuts at every
 * flash operation of an append and of a compaction (the device must always boot a valid image). */
#include <string.h>
#include "boot_decide.h"
#include "flash_ram.h"
#include "fota_layout.h"
#include "fixture.h"

#define REC_SIZE ((uint32_t)sizeof(struct fota_meta_record))
#define POSITIONS (FOTA_REGION_METADATA_SIZE / REC_SIZE)

static const struct img_spec a_v1 = {FOTA_SLOT_A, {1, 0, 0}, 1, 2000};
static const struct img_spec b_v2 = {FOTA_SLOT_B, {2, 0, 0}, 1, 2000};

static int append(uint8_t slot, uint8_t state, uint8_t attempts, uint8_t prev)
{
    struct journal_state js;
    struct fota_meta_record r = fw_record(slot, state, attempts, prev);
    (void)journal_scan(fw_meta(), &js);
    return journal_append(fw_meta(), &js, &r, withdraw_unwanted_image);
}

TEST(journal_empty)
{
    fw_flash_fresh();
    struct journal_state js;
    CHECK_EQ(journal_scan(fw_meta(), &js), FOTA_E_NOT_FOUND);
    CHECK_EQ(js.have_record, 0);
    CHECK_EQ(js.next_pos, 0);
    CHECK_EQ(js.torn_records, 0);
}

TEST(journal_newest_record_wins)
{
    fw_flash_fresh();
    CHECK_EQ(append(FOTA_SLOT_A, FOTA_META_STATE_CONFIRMED, 0, 0), FOTA_OK);
    CHECK_EQ(append(FOTA_SLOT_B, FOTA_META_STATE_TRIAL, 3, 0), FOTA_OK);
    CHECK_EQ(append(FOTA_SLOT_B, FOTA_META_STATE_TRIAL, 2, 0), FOTA_OK);
    struct journal_state js;
    CHECK_EQ(journal_scan(fw_meta(), &js), FOTA_OK);
    CHECK_EQ(js.valid_records, 3);
    CHECK_EQ(js.latest.mr_seq, 3);
    CHECK_EQ(js.latest.mr_active_slot, FOTA_SLOT_B);
    CHECK_EQ(js.latest.mr_attempts_left, 2);
    CHECK_EQ(js.next_pos, 3 * REC_SIZE);
}

TEST(journal_sequence_beats_position)
{
    /* Records are found by sequence number, not by where they are. */
    fw_flash_fresh();
    const uint32_t seqs[] = {5, 9, 7};
    for (int i = 0; i < 3; i++) {
        struct journal_state js = {0};
        js.have_record = 1;
        js.latest.mr_seq = seqs[i] - 1u;
        js.next_pos = (uint32_t)i * REC_SIZE;
        struct fota_meta_record r = fw_record((uint8_t)(i % 2), FOTA_META_STATE_CONFIRMED, 0, 0);
        CHECK_EQ(journal_append(fw_meta(), &js, &r, withdraw_unwanted_image), FOTA_OK);
    }
    struct journal_state js;
    CHECK_EQ(journal_scan(fw_meta(), &js), FOTA_OK);
    CHECK_EQ(js.latest.mr_seq, 9);
    CHECK_EQ(js.latest.mr_active_slot, 1);
}

TEST(journal_bad_crc_or_magic_ignored)
{
    fw_flash_fresh();
    CHECK_EQ(append(FOTA_SLOT_A, FOTA_META_STATE_CONFIRMED, 0, 0), FOTA_OK);
    CHECK_EQ(append(FOTA_SLOT_B, FOTA_META_STATE_CONFIRMED, 0, 0), FOTA_OK);
    uint8_t *meta = flash_ram_mem() + (FOTA_REGION_METADATA_BASE - FOTA_FLASH_BASE);
    meta[REC_SIZE + 8] ^= 0x01u; /* slot byte of the second record: CRC no longer matches */
    struct journal_state js;
    CHECK_EQ(journal_scan(fw_meta(), &js), FOTA_OK);
    CHECK_EQ(js.latest.mr_seq, 1);
    CHECK_EQ(js.torn_records, 1);
    meta[REC_SIZE + 8] ^= 0x01u;
    meta[REC_SIZE + 0] ^= 0x01u; /* magic */
    CHECK_EQ(journal_scan(fw_meta(), &js), FOTA_OK);
    CHECK_EQ(js.latest.mr_seq, 1);
}

TEST(journal_torn_record_ignored_at_every_word)
{
    for (int32_t cut = 0; cut < (int32_t)(REC_SIZE / 4u); cut++) {
        fw_flash_fresh();
        CHECK_EQ(append(FOTA_SLOT_A, FOTA_META_STATE_CONFIRMED, 0, 0), FOTA_OK);
        flash_ram_power_on();
        flash_ram_cut_at(cut);
        CHECK(append(FOTA_SLOT_B, FOTA_META_STATE_TRIAL, 3, 0) != FOTA_OK, "cut %d: append succeeded", cut);
        flash_ram_power_on();
        struct journal_state js;
        CHECK_EQ(journal_scan(fw_meta(), &js), FOTA_OK);
        CHECK(js.latest.mr_seq == 1 && js.latest.mr_active_slot == FOTA_SLOT_A, "cut %d: torn record won", cut);
        CHECK_EQ(js.torn_records, 1);
        CHECK_EQ(js.next_pos, 2 * REC_SIZE);
        /* The next append goes after the torn one and wins. */
        CHECK_EQ(append(FOTA_SLOT_B, FOTA_META_STATE_TRIAL, 3, 0), FOTA_OK);
        CHECK_EQ(journal_scan(fw_meta(), &js), FOTA_OK);
        CHECK(js.latest.mr_seq == 2 && js.latest.mr_active_slot == FOTA_SLOT_B, "cut %d: retry lost", cut);
        CHECK_EQ(flash_ram_violations(), 0);
    }
}

TEST(journal_skips_position_that_will_not_program)
{
    fw_flash_fresh();
    CHECK_EQ(append(FOTA_SLOT_A, FOTA_META_STATE_CONFIRMED, 0, 0), FOTA_OK);
    flash_ram_stuck_word(FOTA_REGION_METADATA_BASE + REC_SIZE + 4u);
    CHECK_EQ(append(FOTA_SLOT_B, FOTA_META_STATE_CONFIRMED, 0, 0), FOTA_OK);
    struct journal_state js;
    CHECK_EQ(journal_scan(fw_meta(), &js), FOTA_OK);
    CHECK_EQ(js.latest.mr_active_slot, FOTA_SLOT_B);
    CHECK_EQ(js.next_pos, 3 * REC_SIZE);
}

/* Fill every position; the last record is `last`, all earlier ones CONFIRMED A. */
static int fill_journal(struct fota_meta_record last)
{
    struct journal_state js;
    (void)journal_scan(fw_meta(), &js);
    for (uint32_t i = 0; i + 1u < POSITIONS; i++) {
        struct fota_meta_record r = fw_record(FOTA_SLOT_A, FOTA_META_STATE_CONFIRMED, 0, 0);
        if (journal_append(fw_meta(), &js, &r, withdraw_unwanted_image) != FOTA_OK) {
            return -1;
        }
    }
    return journal_append(fw_meta(), &js, &last, withdraw_unwanted_image) == FOTA_OK && js.next_pos == POSITIONS * REC_SIZE ? 0 : -1;
}

TEST(journal_compaction_when_full)
{
    fw_flash_fresh();
    fw_put_image(FOTA_SLOT_A, &a_v1);
    CHECK_EQ(fill_journal(fw_record(FOTA_SLOT_A, FOTA_META_STATE_CONFIRMED, 0, 0)), 0);
    flash_ram_power_on();
    CHECK_EQ(append(FOTA_SLOT_A, FOTA_META_STATE_CONFIRMED, 0, 0), FOTA_OK);
    CHECK_EQ(flash_ram_erases(), 1);
    struct journal_state js;
    CHECK_EQ(journal_scan(fw_meta(), &js), FOTA_OK);
    CHECK_EQ(js.valid_records, 1);
    CHECK_EQ(js.latest.mr_seq, POSITIONS + 1u); /* the sequence continues across the compaction */
    CHECK_EQ(js.next_pos, REC_SIZE);
    CHECK_EQ(flash_ram_violations(), 0);
}

struct cut_case {
    const char *name;
    struct fota_meta_record last;   /* newest record before the append */
    struct fota_meta_record append; /* the record appended into the full journal */
    unsigned allowed;               /* bit mask of slots a boot may pick after any cut */
    int final_slot;                 /* what boots once the append is done */
};

static void setup(const struct cut_case *c)
{
    fw_flash_fresh();
    fw_put_image(FOTA_SLOT_A, &a_v1);
    fw_put_image(FOTA_SLOT_B, &b_v2); /* newer: what an empty journal would boot */
    (void)fill_journal(c->last);
    flash_ram_power_on();
}

/* Count the flash operations of a clean append, then cut the power at each one in turn. After
 * every cut: a boot picks a valid, allowed slot; then the append, retried, completes. */
static void run_cut_case(const struct cut_case *c, uint32_t *cut_points)
{
    struct boot_decision d;
    struct fota_meta_record r = c->append;
    struct journal_state js;
    setup(c);
    (void)journal_scan(fw_meta(), &js);
    CHECK(journal_append(fw_meta(), &js, &r, withdraw_unwanted_image) == FOTA_OK, "%s: clean append failed", c->name);
    uint32_t ops = flash_ram_ops();
    CHECK(fw_boot(&d, 0) == c->final_slot, "%s: clean run boots %d", c->name, d.boot_slot);
    CHECK(ops >= 9, "%s: only %u operations (erase + 8 words expected at least)", c->name, ops);
    for (uint32_t k = 0; k < ops; k++) {
        setup(c);
        flash_ram_cut_at((int32_t)k);
        r = c->append;
        (void)journal_scan(fw_meta(), &js);
        CHECK(journal_append(fw_meta(), &js, &r, withdraw_unwanted_image) != FOTA_OK, "%s: cut at %u not seen", c->name, k);
        flash_ram_power_on();
        int slot = fw_boot(&d, 0);
        CHECK(slot >= 0, "%s: cut at op %u leaves nothing bootable", c->name, k);
        struct image_summary s;
        CHECK(image_validate((uint8_t)slot, &s) == FOTA_OK, "%s: cut at op %u boots invalid slot", c->name, k);
        CHECK((c->allowed >> slot) & 1u, "%s: cut at op %u boots slot %d (%s)", c->name, k, slot,
              boot_reason_str(d.reason));
        r = c->append;
        (void)journal_scan(fw_meta(), &js);
        CHECK(journal_append(fw_meta(), &js, &r, withdraw_unwanted_image) == FOTA_OK, "%s: retry after cut at %u failed", c->name, k);
        CHECK(fw_boot(&d, 0) == c->final_slot, "%s: after cut at %u and retry boots %d", c->name, k, d.boot_slot);
        CHECK(flash_ram_violations() == 0, "%s: 0->1 programming", c->name);
        (*cut_points)++;
    }
}

TEST(journal_compaction_power_cut_confirm)
{
    /* Slot A confirmed, a newer image sits in B unactivated: a confirm-type record for A must
     * never let a cut boot B (the compaction withdraws B first). */
    struct cut_case c = {"confirm", fw_record(FOTA_SLOT_A, FOTA_META_STATE_CONFIRMED, 0, 0),
                         fw_record(FOTA_SLOT_A, FOTA_META_STATE_CONFIRMED, 0, 0), 1u << FOTA_SLOT_A, FOTA_SLOT_A};
    uint32_t points = 0;
    run_cut_case(&c, &points);
    CHECK(!test_failed && points >= 10, "covered %u cut points", points);
    printf("  cut points: %u\n", points);
}

TEST(journal_compaction_power_cut_revert)
{
    /* The trial of B used up its attempts: the revert record for A must never boot B again. */
    struct fota_meta_record revert = fw_record(FOTA_SLOT_A, FOTA_META_STATE_CONFIRMED, 0, FOTA_SLOT_A);
    revert.mr_last_result = FOTA_RESULT_REVERTED_NO_CONFIRM;
    struct cut_case c = {"revert", fw_record(FOTA_SLOT_B, FOTA_META_STATE_TRIAL, 0, FOTA_SLOT_A), revert,
                         1u << FOTA_SLOT_A, FOTA_SLOT_A};
    uint32_t points = 0;
    run_cut_case(&c, &points);
    CHECK(!test_failed && points >= 10, "covered %u cut points", points);
    printf("  cut points: %u\n", points);
}

TEST(journal_trial_record_never_compacts)
{
    /* ACTIVATE of B (trial) into a full journal: compacting would erase the sector before the
     * TRIAL record exists, and an empty journal boots the highest version (B) untried. So the
     * append is refused, flash untouched, and A stays confirmed. journal_compact refuses it too. */
    struct cut_case c = {"activate", fw_record(FOTA_SLOT_A, FOTA_META_STATE_CONFIRMED, 0, 0),
                         fw_record(FOTA_SLOT_B, FOTA_META_STATE_TRIAL, FOTA_META_TRIAL_ATTEMPTS, FOTA_SLOT_A), 0, 0};
    static uint8_t before[FOTA_REGION_METADATA_SIZE];
    const uint8_t *meta = flash_ram_mem() + (FOTA_REGION_METADATA_BASE - FOTA_FLASH_BASE);
    setup(&c);
    memcpy(before, meta, sizeof(before));
    struct journal_state js;
    CHECK_EQ(journal_scan(fw_meta(), &js), FOTA_OK);
    CHECK_EQ(journal_room(fw_meta(), &js), 0);
    struct fota_meta_record r = c.append;
    CHECK_EQ(journal_append(fw_meta(), &js, &r, withdraw_unwanted_image), FOTA_E_FULL);
    r = c.append;
    CHECK_EQ(journal_scan(fw_meta(), &js), FOTA_OK);
    CHECK_EQ(journal_compact(fw_meta(), &js, &r, withdraw_unwanted_image), FOTA_E_FULL);
    CHECK_EQ(flash_ram_ops(), 0);
    CHECK(memcmp(before, meta, sizeof(before)) == 0, "journal changed");
    struct image_summary s;
    CHECK_EQ(image_validate(FOTA_SLOT_B, &s), FOTA_OK); /* nothing withdrawn either */
    struct boot_decision d;
    CHECK_EQ(fw_boot(&d, 0), FOTA_SLOT_A);
    CHECK_EQ(d.reason, BOOT_R_CONFIRMED);
    /* With one position left the same record is appended normally. */
    fw_flash_fresh();
    CHECK_EQ(append(FOTA_SLOT_A, FOTA_META_STATE_CONFIRMED, 0, 0), FOTA_OK);
    CHECK_EQ(journal_scan(fw_meta(), &js), FOTA_OK);
    CHECK_EQ(journal_room(fw_meta(), &js), POSITIONS - 1u);
}

TEST(journal_compact_on_demand_power_cut)
{
    /* journal_compact (BEGIN's, with room left): same order as a full journal's compaction. A
     * confirmed, a newer image in B: a cut anywhere never boots B, and the retry completes. */
    fw_flash_fresh();
    fw_put_image(FOTA_SLOT_A, &a_v1);
    fw_put_image(FOTA_SLOT_B, &b_v2);
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(append(FOTA_SLOT_A, FOTA_META_STATE_CONFIRMED, 0, 0), FOTA_OK);
    }
    static uint8_t before[FOTA_FLASH_SIZE];
    memcpy(before, flash_ram_mem(), sizeof(before));
    struct journal_state js;
    struct fota_meta_record r = fw_record(FOTA_SLOT_A, FOTA_META_STATE_CONFIRMED, 0, 0);
    flash_ram_power_on();
    CHECK_EQ(journal_scan(fw_meta(), &js), FOTA_OK);
    CHECK_EQ(journal_compact(fw_meta(), &js, &r, withdraw_unwanted_image), FOTA_OK);
    CHECK_EQ(js.latest.mr_seq, 6);
    uint32_t ops = flash_ram_ops();
    CHECK_EQ(flash_ram_erases(), 1);
    CHECK(ops >= 10, "%u operations (withdraw + erase + 8 words)", ops);
    struct boot_decision d;
    for (uint32_t k = 0; k < ops; k++) {
        memcpy(flash_ram_mem(), before, sizeof(before));
        flash_ram_power_on();
        flash_ram_cut_at((int32_t)k);
        r = fw_record(FOTA_SLOT_A, FOTA_META_STATE_CONFIRMED, 0, 0);
        CHECK_EQ(journal_scan(fw_meta(), &js), FOTA_OK);
        CHECK(journal_compact(fw_meta(), &js, &r, withdraw_unwanted_image) != FOTA_OK, "cut at %u not seen", k);
        flash_ram_power_on();
        CHECK(fw_boot(&d, 0) == FOTA_SLOT_A, "cut at %u boots %d (%s)", k, d.boot_slot, boot_reason_str(d.reason));
        r = fw_record(FOTA_SLOT_A, FOTA_META_STATE_CONFIRMED, 0, 0);
        (void)journal_scan(fw_meta(), &js);
        CHECK(journal_compact(fw_meta(), &js, &r, withdraw_unwanted_image) == FOTA_OK, "retry after cut at %u", k);
        CHECK(fw_boot(&d, 0) == FOTA_SLOT_A && d.reason == BOOT_R_CONFIRMED, "after cut at %u", k);
        CHECK_EQ(flash_ram_violations(), 0);
    }
    printf("  cut points: %u\n", ops);
}

TEST(journal_compaction_withdraws_only_when_needed)
{
    /* A confirmed and already the newest: B (older) stays valid after the compaction. */
    fw_flash_fresh();
    struct img_spec a_v3 = a_v1;
    a_v3.ver[0] = 3;
    fw_put_image(FOTA_SLOT_A, &a_v3);
    fw_put_image(FOTA_SLOT_B, &b_v2);
    CHECK_EQ(fill_journal(fw_record(FOTA_SLOT_A, FOTA_META_STATE_CONFIRMED, 0, 0)), 0);
    CHECK_EQ(append(FOTA_SLOT_A, FOTA_META_STATE_CONFIRMED, 0, 0), FOTA_OK);
    struct image_summary s;
    CHECK_EQ(image_validate(FOTA_SLOT_B, &s), FOTA_OK);
    /* B newer than the confirmed A: withdrawn. */
    fw_flash_fresh();
    fw_put_image(FOTA_SLOT_A, &a_v1);
    fw_put_image(FOTA_SLOT_B, &b_v2);
    CHECK_EQ(fill_journal(fw_record(FOTA_SLOT_A, FOTA_META_STATE_CONFIRMED, 0, 0)), 0);
    CHECK_EQ(append(FOTA_SLOT_A, FOTA_META_STATE_CONFIRMED, 0, 0), FOTA_OK);
    CHECK_EQ(image_validate(FOTA_SLOT_B, &s), FOTA_E_IMAGE);
    CHECK_EQ(s.fault, IMAGE_BAD_MAGIC);
    CHECK_EQ(image_validate(FOTA_SLOT_A, &s), FOTA_OK);
}

static unsigned guard_calls;
static struct fota_meta_record guard_saw;

static int refusing_guard(const struct fota_meta_record *rec)
{
    guard_calls++;
    guard_saw = *rec;
    return FOTA_E_FLASH;
}

TEST(journal_compaction_asks_the_guard_before_the_erase)
{
    /* The journal is storage only: the caller's guard sees the record first, and its error stops
     * the compaction before anything is erased. */
    fw_flash_fresh();
    CHECK_EQ(fill_journal(fw_record(FOTA_SLOT_A, FOTA_META_STATE_CONFIRMED, 0, 0)), 0);
    flash_ram_power_on();
    struct journal_state js;
    CHECK_EQ(journal_scan(fw_meta(), &js), FOTA_OK);
    struct fota_meta_record r = fw_record(FOTA_SLOT_B, FOTA_META_STATE_CONFIRMED, 0, FOTA_SLOT_B);
    CHECK_EQ(journal_append(fw_meta(), &js, &r, refusing_guard), FOTA_E_FLASH);
    CHECK_EQ(guard_calls, 1);
    CHECK_EQ(guard_saw.mr_active_slot, FOTA_SLOT_B);
    CHECK_EQ(guard_saw.mr_seq, POSITIONS + 1u);
    CHECK_EQ(flash_ram_ops(), 0);
    r = fw_record(FOTA_SLOT_B, FOTA_META_STATE_CONFIRMED, 0, FOTA_SLOT_B);
    CHECK_EQ(journal_compact(fw_meta(), &js, &r, refusing_guard), FOTA_E_FLASH);
    CHECK_EQ(guard_calls, 2);
    CHECK_EQ(flash_ram_ops(), 0);
    /* A TRIAL record never gets as far as the guard (step 0), and no call goes without a guard. */
    r = fw_record(FOTA_SLOT_B, FOTA_META_STATE_TRIAL, 3, FOTA_SLOT_A);
    CHECK_EQ(journal_append(fw_meta(), &js, &r, refusing_guard), FOTA_E_FULL);
    CHECK_EQ(guard_calls, 2);
    r = fw_record(FOTA_SLOT_A, FOTA_META_STATE_CONFIRMED, 0, FOTA_SLOT_A);
    CHECK_EQ(journal_append(fw_meta(), &js, &r, NULL), FOTA_E_ARG);
    CHECK_EQ(journal_compact(fw_meta(), &js, &r, NULL), FOTA_E_ARG);
    CHECK_EQ(flash_ram_ops(), 0);
    CHECK_EQ(journal_scan(fw_meta(), &js), FOTA_OK);
    CHECK_EQ(js.valid_records, POSITIONS);
}
