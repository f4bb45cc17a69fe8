/* boot_decide: the decision for each case of the boot table (stm32/README.md), then every
 * combination of slot states x journal records x reset cause against the rules the bootloader must
 * never break. */
#include <string.h>
#include "boot_decide.h"
#include "flash_ram.h"
#include "fota_layout.h"
#include "fixture.h"

enum { S_EMPTY, S_INVALID, S_V1, S_V2, S_KINDS };

static struct image_summary slot_state(int kind)
{
    struct image_summary s;
    memset(&s, 0, sizeof(s));
    switch (kind) {
    case S_EMPTY: s.state = FOTA_SLOT_STATE_EMPTY; s.fault = IMAGE_ERASED; break;
    case S_INVALID: s.state = FOTA_SLOT_STATE_INVALID; s.fault = IMAGE_BAD_HASH; break;
    case S_V1: s.state = FOTA_SLOT_STATE_VALID; s.ver.major = 1; break;
    default: s.state = FOTA_SLOT_STATE_VALID; s.ver.major = 2; break;
    }
    return s;
}

static struct boot_decision decide(int a, int b, int have, struct fota_meta_record rec, int wd)
{
    struct boot_input in;
    struct boot_decision d;
    memset(&in, 0, sizeof(in));
    in.slot[FOTA_SLOT_A] = slot_state(a);
    in.slot[FOTA_SLOT_B] = slot_state(b);
    in.have_record = have;
    in.rec = rec;
    in.watchdog_reset = wd;
    boot_decide(&in, &d);
    return d;
}

static struct fota_meta_record rec(uint8_t slot, uint8_t state, uint8_t attempts)
{
    return fw_record(slot, state, attempts, slot == FOTA_SLOT_A ? FOTA_SLOT_B : FOTA_SLOT_A);
}

#define CONF(s) rec(s, FOTA_META_STATE_CONFIRMED, 0)
#define TRIAL(s, n) rec(s, FOTA_META_STATE_TRIAL, n)
enum { A = FOTA_SLOT_A, B = FOTA_SLOT_B };

TEST(boot_no_record_highest_version)
{
    struct fota_meta_record none = {0};
    struct boot_decision d = decide(S_V1, S_V2, 0, none, 0);
    CHECK_EQ(d.boot_slot, B);
    CHECK_EQ(d.reason, BOOT_R_NO_RECORD);
    CHECK_EQ(d.start_watchdog, 0);
    /* First boot: the slot that boots is recorded as confirmed (no update happened: RESULT_NONE). */
    CHECK_EQ(d.append, 1);
    CHECK_EQ(d.record.mr_state, FOTA_META_STATE_CONFIRMED);
    CHECK_EQ(d.record.mr_active_slot, B);
    CHECK_EQ(d.record.mr_prev_slot, B);
    CHECK_EQ(d.record.mr_attempts_left, 0);
    CHECK_EQ(d.record.mr_last_result, FOTA_RESULT_NONE);
    CHECK_EQ(d.record.mr_ver_major, 2);
    d = decide(S_V2, S_V1, 0, none, 0);
    CHECK_EQ(d.boot_slot, A);
    d = decide(S_V1, S_V1, 0, none, 0); /* tie: slot A, the initial active slot */
    CHECK_EQ(d.boot_slot, A);
    d = decide(S_EMPTY, S_V1, 0, none, 0);
    CHECK_EQ(d.boot_slot, B);
    d = decide(S_V2, S_INVALID, 0, none, 0);
    CHECK_EQ(d.boot_slot, A);
    CHECK_EQ(d.record.mr_active_slot, A);
    d = decide(S_EMPTY, S_INVALID, 0, none, 0); /* nothing to boot: nothing recorded */
    CHECK_EQ(d.boot_slot, -1);
    CHECK_EQ(d.append, 0);
}

TEST(boot_version_order)
{
    struct image_summary s[2];
    memset(s, 0, sizeof(s));
    s[0].state = s[1].state = FOTA_SLOT_STATE_VALID;
    /* Each field decides only when the ones before it are equal. */
    s[0].ver = (struct fw_version){1, 9, 9, 9};
    s[1].ver = (struct fw_version){2, 0, 0, 0};
    CHECK_EQ(boot_pick_highest(s), B);
    s[1].ver = (struct fw_version){1, 9, 10, 0};
    CHECK_EQ(boot_pick_highest(s), B);
    s[1].ver = (struct fw_version){1, 10, 0, 0};
    CHECK_EQ(boot_pick_highest(s), B);
    s[1].ver = (struct fw_version){1, 9, 8, 99};
    CHECK_EQ(boot_pick_highest(s), A);
    /* The same release with another build number is a tie (version_cmp): slot A. */
    s[1].ver = (struct fw_version){1, 9, 9, 8};
    CHECK_EQ(boot_pick_highest(s), A);
    s[1].ver = (struct fw_version){1, 9, 9, 10};
    CHECK_EQ(boot_pick_highest(s), A);
    s[1].state = FOTA_SLOT_STATE_INVALID;
    CHECK_EQ(boot_pick_highest(s), A);
    s[0].state = FOTA_SLOT_STATE_EMPTY;
    CHECK_EQ(boot_pick_highest(s), -1);
}

TEST(boot_confirmed_record)
{
    struct boot_decision d = decide(S_V2, S_V1, 1, CONF(B), 0); /* record beats version */
    CHECK_EQ(d.boot_slot, B);
    CHECK_EQ(d.reason, BOOT_R_CONFIRMED);
    CHECK_EQ(d.append, 0);
    d = decide(S_V1, S_INVALID, 1, CONF(B), 0);
    CHECK_EQ(d.boot_slot, A);
    CHECK_EQ(d.reason, BOOT_R_FALLBACK);
    d = decide(S_EMPTY, S_INVALID, 1, CONF(B), 0);
    CHECK_EQ(d.boot_slot, -1);
    CHECK_EQ(d.reason, BOOT_R_NONE_VALID);
}

TEST(boot_trial_consumes_attempt)
{
    struct boot_decision d = decide(S_V1, S_V2, 1, TRIAL(B, 3), 0);
    CHECK_EQ(d.boot_slot, B);
    CHECK_EQ(d.reason, BOOT_R_TRIAL);
    CHECK_EQ(d.start_watchdog, 1);
    CHECK_EQ(d.append, 1);
    CHECK_EQ(d.record.mr_state, FOTA_META_STATE_TRIAL);
    CHECK_EQ(d.record.mr_active_slot, B);
    CHECK_EQ(d.record.mr_attempts_left, 2);
    CHECK_EQ(d.record.mr_prev_slot, A);
    d = decide(S_V1, S_V2, 1, TRIAL(B, 1), 1); /* a watchdog reset only counts down */
    CHECK_EQ(d.boot_slot, B);
    CHECK_EQ(d.record.mr_attempts_left, 0);
}

TEST(boot_trial_attempts_used_up_reverts)
{
    struct boot_decision d = decide(S_V1, S_V2, 1, TRIAL(B, 0), 0);
    CHECK_EQ(d.boot_slot, A);
    CHECK_EQ(d.reason, BOOT_R_REVERT_ATTEMPTS);
    CHECK_EQ(d.start_watchdog, 0);
    CHECK_EQ(d.append, 1);
    CHECK_EQ(d.record.mr_active_slot, A);
    CHECK_EQ(d.record.mr_state, FOTA_META_STATE_CONFIRMED);
    CHECK_EQ(d.record.mr_last_result, FOTA_RESULT_REVERTED_NO_CONFIRM);
    CHECK_EQ(d.record.mr_ver_major, 1); /* the version of what now runs */
    d = decide(S_V1, S_V2, 1, TRIAL(B, 0), 1);
    CHECK_EQ(d.record.mr_last_result, FOTA_RESULT_REVERTED_WATCHDOG);
}

TEST(boot_trial_invalid_reverts)
{
    struct boot_decision d = decide(S_V2, S_INVALID, 1, TRIAL(B, 3), 0);
    CHECK_EQ(d.boot_slot, A);
    CHECK_EQ(d.reason, BOOT_R_REVERT_INVALID);
    CHECK_EQ(d.append, 1);
    CHECK_EQ(d.record.mr_active_slot, A);
    CHECK_EQ(d.record.mr_last_result, FOTA_RESULT_REVERTED_INVALID);
    CHECK_EQ(d.record.mr_ver_major, 2);
    d = decide(S_EMPTY, S_EMPTY, 1, TRIAL(A, 3), 0);
    CHECK_EQ(d.boot_slot, -1);
    CHECK_EQ(d.append, 0);
}

TEST(boot_trial_spent_without_previous)
{
    /* Attempts used up, and the slot to return to is gone: the trial image is still valid and the
     * only thing bootable, so it runs again under the watchdog (it can still confirm itself). */
    struct boot_decision d = decide(S_EMPTY, S_V2, 1, TRIAL(B, 0), 0);
    CHECK_EQ(d.boot_slot, B);
    CHECK_EQ(d.reason, BOOT_R_FALLBACK);
    CHECK_EQ(d.start_watchdog, 1);
    CHECK_EQ(d.append, 0);
}

TEST(boot_garbage_record_is_no_record)
{
    struct fota_meta_record r = CONF(A);
    r.mr_active_slot = 7;
    struct boot_decision d = decide(S_V1, S_V2, 1, r, 0);
    CHECK_EQ(d.boot_slot, B);
    CHECK_EQ(d.reason, BOOT_R_NO_RECORD);
    r = CONF(A);
    r.mr_state = 0x55;
    d = decide(S_V1, S_V2, 1, r, 0);
    CHECK_EQ(d.reason, BOOT_R_NO_RECORD);
}

TEST(boot_every_combination_keeps_the_rules)
{
    /* Records: none, garbage, confirmed A/B, trial A/B with 3, 1 and 0 attempts left. */
    struct fota_meta_record recs[10];
    int have[10];
    int n = 0;
    memset(recs, 0, sizeof(recs));
    have[n] = 0; n++;
    recs[n] = CONF(A); recs[n].mr_state = 9; have[n] = 1; n++;
    for (uint8_t s = A; s <= B; s++) {
        recs[n] = CONF(s); have[n] = 1; n++;
        const uint8_t att[] = {3, 1, 0};
        for (int i = 0; i < 3 && n < 10; i++) {
            recs[n] = TRIAL(s, att[i]); have[n] = 1; n++;
        }
    }
    int combos = 0;
    for (int a = 0; a < S_KINDS; a++) {
        for (int b = 0; b < S_KINDS; b++) {
            for (int r = 0; r < n; r++) {
                for (int wd = 0; wd <= 1; wd++) {
                    struct boot_decision d = decide(a, b, have[r], recs[r], wd);
                    int a_ok = a >= S_V1, b_ok = b >= S_V1;
                    int kinds[2] = {a, b};
                    combos++;
                    /* 1. Never an invalid or empty slot; stay only when nothing is valid. */
                    if (d.boot_slot < 0) {
                        CHECK(!a_ok && !b_ok, "a=%d b=%d r=%d: stays with a valid slot", a, b, r);
                        CHECK_EQ(d.reason, BOOT_R_NONE_VALID);
                        CHECK(!d.append && !d.start_watchdog, "a=%d b=%d r=%d: acts without booting", a, b, r);
                        continue;
                    }
                    CHECK(kinds[d.boot_slot] >= S_V1, "a=%d b=%d r=%d wd=%d: boots invalid slot %d", a, b, r, wd,
                          d.boot_slot);
                    int trial = have[r] && recs[r].mr_state == FOTA_META_STATE_TRIAL;
                    int conf = have[r] && recs[r].mr_state == FOTA_META_STATE_CONFIRMED;
                    uint8_t act = recs[r].mr_active_slot;
                    int act_ok = (act == A ? a_ok : b_ok);
                    /* 2. The watchdog runs exactly when an unconfirmed image is started. */
                    CHECK(d.start_watchdog == (trial && act_ok && d.boot_slot == act),
                          "a=%d b=%d r=%d: watchdog %d", a, b, r, d.start_watchdog);
                    /* 3. A confirmed record whose slot is valid is obeyed. */
                    if (conf && act_ok) {
                        CHECK(d.boot_slot == act && !d.append, "a=%d b=%d r=%d: confirmed record ignored", a, b, r);
                    }
                    /* 4. A trial with attempts left boots the trial slot and counts down by one. */
                    if (trial && act_ok && recs[r].mr_attempts_left > 0) {
                        CHECK(d.boot_slot == act && d.append && d.record.mr_state == FOTA_META_STATE_TRIAL &&
                                  d.record.mr_attempts_left == recs[r].mr_attempts_left - 1,
                              "a=%d b=%d r=%d: trial not counted", a, b, r);
                    }
                    /* 5. Any other append is a CONFIRMED record for the slot that boots: a revert
                     * after a trial, or the first record of a journal without a usable one. */
                    if (d.append && d.record.mr_state != FOTA_META_STATE_TRIAL) {
                        CHECK(d.record.mr_active_slot == d.boot_slot &&
                                  d.record.mr_state == FOTA_META_STATE_CONFIRMED,
                              "a=%d b=%d r=%d: unexpected record", a, b, r);
                        CHECK((trial && d.boot_slot != act &&
                               d.record.mr_last_result >= FOTA_RESULT_REVERTED_NO_CONFIRM) ||
                                  (!trial && !conf && d.record.mr_last_result == FOTA_RESULT_NONE),
                              "a=%d b=%d r=%d: unexpected record result %d", a, b, r, d.record.mr_last_result);
                    }
                    /* 6. Without a usable record: the highest version (A on a tie), recorded. */
                    if (!trial && !conf) {
                        int want = a_ok && (!b_ok || a >= b) ? A : B;
                        CHECK(d.boot_slot == want && d.reason == BOOT_R_NO_RECORD && d.append,
                              "a=%d b=%d r=%d: picks %d", a, b, r, d.boot_slot);
                    }
                    if (test_failed) {
                        return;
                    }
                }
            }
        }
    }
    CHECK_EQ(combos, S_KINDS * S_KINDS * 10 * 2);
}

TEST(boot_trial_unrecorded)
{
    /* The trial record could not be appended: journal full -> revert recorded; another error ->
     * the other slot for this boot only; no other slot -> the trial slot anyway, uncounted. */
    struct boot_input in;
    struct boot_decision d = decide(S_V1, S_V2, 1, TRIAL(B, 2), 0);
    memset(&in, 0, sizeof(in));
    in.slot[A] = slot_state(S_V1);
    in.slot[B] = slot_state(S_V2);
    boot_decide_trial_unrecorded(&in, FOTA_E_FULL, &d);
    CHECK_EQ(d.boot_slot, A);
    CHECK_EQ(d.reason, BOOT_R_REVERT_ATTEMPTS);
    CHECK_EQ(d.start_watchdog, 0);
    CHECK_EQ(d.append, 1);
    CHECK(d.record.mr_active_slot == A && d.record.mr_state == FOTA_META_STATE_CONFIRMED &&
              d.record.mr_last_result == FOTA_RESULT_REVERTED_NO_CONFIRM && d.record.mr_ver_major == 1,
          "revert record");
    d = decide(S_V1, S_V2, 1, TRIAL(B, 2), 0);
    boot_decide_trial_unrecorded(&in, FOTA_E_FLASH, &d);
    CHECK(d.boot_slot == A && d.reason == BOOT_R_FALLBACK && !d.append && !d.start_watchdog, "fallback");
    in.slot[A] = slot_state(S_INVALID);
    d = decide(S_INVALID, S_V2, 1, TRIAL(B, 2), 0);
    boot_decide_trial_unrecorded(&in, FOTA_E_FULL, &d);
    CHECK(d.boot_slot == B && d.reason == BOOT_R_TRIAL && d.start_watchdog && !d.append, "no way back");
    d = decide(S_V1, S_V2, 1, CONF(B), 0); /* not a trial boot: unchanged */
    in.slot[A] = slot_state(S_V1);
    boot_decide_trial_unrecorded(&in, FOTA_E_FULL, &d);
    CHECK(d.boot_slot == B && d.reason == BOOT_R_CONFIRMED && !d.append, "confirmed boot changed");
}

/* What the bootloader does (boot/main.c): decide, then append the decision's record. */
static int boot_and_record(struct boot_decision *d)
{
    struct journal_state js;
    int slot = fw_boot(d, 0);
    if (d->append) {
        (void)journal_scan(fw_meta(), &js);
        if (journal_append(fw_meta(), &js, &d->record, withdraw_unwanted_image) != FOTA_OK) {
            return -2;
        }
    }
    return slot;
}

TEST(boot_first_boot_record_keeps_a_torn_activation_on_the_old_image)
{
    /* A fresh device: v1 in slot A, journal erased. Its first boot records A as confirmed. */
    static uint8_t meta_after_verify[FOTA_REGION_METADATA_SIZE];
    struct img_spec v1 = {A, {1, 0, 0}, 0, 600};
    struct img_spec v2 = {B, {2, 0, 0}, 0, 900};
    struct boot_decision d;
    fw_flash_fresh();
    fw_put_image(A, &v1);
    CHECK_EQ(boot_and_record(&d), A);
    CHECK_EQ(d.reason, BOOT_R_NO_RECORD);
    struct journal_state js;
    CHECK_EQ(journal_scan(fw_meta(), &js), FOTA_OK);
    CHECK(js.latest.mr_state == FOTA_META_STATE_CONFIRMED && js.latest.mr_active_slot == A, "first record");
    CHECK_EQ(boot_and_record(&d), A); /* the next boot obeys the record and appends nothing */
    CHECK_EQ(d.reason, BOOT_R_CONFIRMED);
    CHECK_EQ(d.append, 0);

    /* The update writes and verifies v2 in slot B. A reset before ACTIVATE: still A, confirmed. */
    fw_put_image(B, &v2);
    CHECK_EQ(boot_and_record(&d), A);
    CHECK_EQ(d.reason, BOOT_R_CONFIRMED);
    CHECK_EQ(d.start_watchdog, 0);
    uint8_t *meta = flash_ram_mem() + (FOTA_REGION_METADATA_BASE - FOTA_FLASH_BASE);
    memcpy(meta_after_verify, meta, sizeof(meta_after_verify));

    /* Power cut in every flash operation of ACTIVATE's journal append (the TRIAL record for B). */
    int cuts = 0;
    for (int32_t op = 0;; op++) {
        memcpy(meta, meta_after_verify, sizeof(meta_after_verify));
        flash_ram_power_on();
        flash_ram_cut_at(op);
        struct fota_meta_record rec = fw_record(B, FOTA_META_STATE_TRIAL, FOTA_META_TRIAL_ATTEMPTS, A);
        CHECK_EQ(journal_scan(fw_meta(), &js), FOTA_OK);
        int rc = journal_append(fw_meta(), &js, &rec, withdraw_unwanted_image);
        if (!flash_ram_is_cut()) {
            CHECK_EQ(rc, FOTA_OK); /* op is past the last operation: the append completed */
            break;
        }
        cuts++;
        flash_ram_power_on();
        CHECK(fw_boot(&d, 0) == A && d.reason == BOOT_R_CONFIRMED && !d.start_watchdog,
              "cut at op %d: boots slot %d reason %d watchdog %d", (int)op, d.boot_slot, d.reason,
              d.start_watchdog);
    }
    CHECK_EQ(cuts, (int)(sizeof(struct fota_meta_record) / 4u)); /* one program per record word */
    /* With the record complete, the next boot is v2's first trial. */
    flash_ram_power_on();
    CHECK_EQ(fw_boot(&d, 0), B);
    CHECK_EQ(d.reason, BOOT_R_TRIAL);
    CHECK_EQ(d.start_watchdog, 1);

    /* Without the first-boot record the same torn activation would have started v2 untried: this
     * is what the record prevents. */
    memset(meta, 0xFF, sizeof(meta_after_verify));
    CHECK_EQ(fw_boot(&d, 0), B);
    CHECK_EQ(d.reason, BOOT_R_NO_RECORD);
    CHECK_EQ(d.start_watchdog, 0);
}
