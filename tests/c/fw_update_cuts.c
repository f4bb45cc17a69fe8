/* A whole update (update agent, bootloader, self-test confirmation) into a nearly full journal,
 * with a power cut at every flash operation: BEGIN's erase and journal compaction, every word of
 * the image, ACTIVATE's record, the bootloader's trial record and the confirmation. After each cut
 * the device boots the old confirmed image or the new one on trial, never the new one untried; and
 * the update, retried from what the device then runs, ends with the new image confirmed.
 * The new image raises the security counter (1 -> 2): the anti-rollback floor rises only with its
 * confirmation, never before, and once risen the old image never boots again. */
#include <string.h>
#include "agent.h"
#include "boot_decide.h"
#include "crc32.h"
#include "flash_ram.h"
#include "fota_layout.h"
#include "fixture.h"
#include "mcuboot_fixture.h"
#include "sha256.h"

#define REC_SIZE ((uint32_t)sizeof(struct fota_meta_record))
#define POSITIONS (FOTA_REGION_METADATA_SIZE / REC_SIZE)
#define CHUNK 256u
enum { A = FOTA_SLOT_A, B = FOTA_SLOT_B };

static const struct img_spec old_a = {A, {1, 0, 0}, 1, 300};
static const struct img_spec new_b = {B, {2, 0, 0}, 1, 300};
#define OLD_COUNTER 1u /* fw_put_image's */
#define NEW_COUNTER 2u /* the update's image */

/* ---- the agent's port and a minimal master ------------------------------------------------- */

static uint32_t clock_ms;
static uint32_t p_millis(void) { return clock_ms += 10u; }
static int16_t p_temp(void) { return 2500; }
static void p_uid(uint8_t uid[12]) { memset(uid, 0x5A, 12); }
static void p_reset(void) {}
static const struct agent_port port = {p_millis, p_temp, p_uid, p_reset, NULL};

static struct agent ag;
static uint16_t seq;
static uint8_t frame[FOTA_MAX_FRAME + 64];
static uint8_t resp[AGENT_RESP_MAX];

static uint8_t request(uint8_t cmd, const void *payload, uint16_t plen)
{
    uint16_t s = ++seq;
    frame[0] = (uint8_t)FOTA_FRAME_MARKER;
    frame[1] = (uint8_t)(FOTA_FRAME_MARKER >> 8);
    frame[2] = cmd;
    frame[3] = 0;
    frame[4] = (uint8_t)s;
    frame[5] = (uint8_t)(s >> 8);
    frame[6] = (uint8_t)plen;
    frame[7] = (uint8_t)(plen >> 8);
    if (plen != 0) {
        memcpy(frame + FOTA_FRAME_HEADER_SIZE, payload, plen);
    }
    uint32_t c = crc32_update(0, frame, FOTA_FRAME_HEADER_SIZE + plen);
    memcpy(frame + FOTA_FRAME_HEADER_SIZE + plen, &c, 4);
    size_t n = FOTA_FRAME_OVERHEAD + plen;
    if (n < FOTA_MIN_TRANSACTION) {
        memset(frame + n, FOTA_FILL_BYTE, FOTA_MIN_TRANSACTION - n);
        n = FOTA_MIN_TRANSACTION;
    }
    size_t len = agent_request(&ag, frame, n, resp, sizeof(resp));
    agent_work(&ag);
    return len >= FOTA_FRAME_OVERHEAD ? resp[3] : 0xFF;
}

/* ---- the image to install ------------------------------------------------------------------ */

static uint8_t file[FOTA_MAX_IMAGE_SIZE];
static uint32_t file_size;

static void make_file(void)
{
    struct signed_spec s = {B, {new_b.ver[0], new_b.ver[1], new_b.ver[2]}, new_b.build, NEW_COUNTER,
                            new_b.payload, 0, 0};
    file_size = fw_put_signed(B, &s);
    memcpy(file, fw_slot_mem(B), file_size);
}

static struct fota_image_header info_of(uint8_t slot)
{
    struct fota_image_header h;
    memcpy(&h, fw_slot_mem(slot), sizeof(h));
    return h;
}

/* The master's update from the image running in A: INFO, BEGIN, WRITE..., VERIFY. Returns 0 when
 * every step answered OK. */
static int update_until_verify(void)
{
    struct fota_image_header run = info_of(A);
    struct fota_begin_req br;
    static uint8_t chunk[4 + CHUNK];

    (void)agent_init(&ag, &port, A, &run);
    if (request(FOTA_CMD_INFO, NULL, 0) != FOTA_ST_OK) {
        return -1;
    }
    memset(&br, 0, sizeof(br));
    br.br_target_slot = B;
    br.br_ver_major = new_b.ver[0];
    br.br_ver_minor = new_b.ver[1];
    br.br_ver_patch = new_b.ver[2];
    br.br_build = new_b.build;
    br.br_image_size = file_size;
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, file, file_size);
    sha256_final(&ctx, br.br_sha256);
    memcpy(br.br_header, file, sizeof(br.br_header));
    br.br_security_counter = NEW_COUNTER;
    if (request(FOTA_CMD_BEGIN, &br, sizeof(br)) != FOTA_ST_OK) {
        return -1;
    }
    for (uint32_t off = 0; off < file_size; off += CHUNK) {
        uint32_t n = file_size - off < CHUNK ? file_size - off : CHUNK;
        memcpy(chunk, &off, 4);
        memcpy(chunk + 4, file + off, n);
        if (request(FOTA_CMD_WRITE, chunk, (uint16_t)(4u + n)) != FOTA_ST_OK) {
            return -1;
        }
    }
    return request(FOTA_CMD_VERIFY, NULL, 0) == FOTA_ST_OK ? 0 : -1;
}

/* The whole update: up to VERIFY, then ACTIVATE. */
static int update(void)
{
    if (update_until_verify() != 0 || request(FOTA_CMD_ACTIVATE, NULL, 0) != FOTA_ST_OK) {
        return -1;
    }
    return 0;
}

/* The bootloader (boot/main.c): decide, append the decision's record, and when a trial record
 * cannot be appended, boot_decide_trial_unrecorded. Returns the slot it jumps to. */
static int boot(struct boot_decision *d)
{
    struct boot_input in;
    struct journal_state js;
    memset(&in, 0, sizeof(in));
    (void)image_validate(A, &in.slot[A]);
    (void)image_validate(B, &in.slot[B]);
    (void)journal_scan(fw_meta(), &js);
    in.have_record = js.have_record;
    in.rec = js.latest;
    boot_enforce_floor(&in);
    boot_decide(&in, d);
    if (d->append) {
        int rc = journal_append(fw_meta(), &js, &d->record, withdraw_unwanted_image);
        if (rc != FOTA_OK) {
            boot_decide_trial_unrecorded(&in, rc, d);
            if (d->append) {
                (void)journal_append(fw_meta(), &js, &d->record, withdraw_unwanted_image);
            }
        }
    }
    return d->boot_slot;
}

/* The new image's self-test passed (app/trial.c): agent_confirm. */
static int confirm_in_b(void)
{
    struct fota_image_header run = info_of(B);
    (void)agent_init(&ag, &port, B, &run);
    return agent_confirm(&ag) == AGENT_OK ? 0 : -1;
}

/* ---- set-up: A v1 confirmed, old data in B, `room` erased journal positions ----------------- */

static uint8_t snapshot[FOTA_FLASH_SIZE];

static int prepare(uint32_t room)
{
    fw_flash_fresh();
    make_file();
    memset(fw_slot_mem(B), 0, FOTA_IMAGE_HDR_SIZE + 64u); /* old data: B must be erased */
    fw_put_image(A, &old_a);
    struct journal_state js;
    (void)journal_scan(fw_meta(), &js);
    for (uint32_t i = 0; i + room < POSITIONS; i++) {
        struct fota_meta_record r = fw_record(A, FOTA_META_STATE_CONFIRMED, 0, A);
        r.mr_ver_major = old_a.ver[0];
        r.mr_security_counter = OLD_COUNTER; /* as A's first boot recorded it */
        if (journal_append(fw_meta(), &js, &r, withdraw_unwanted_image) != FOTA_OK) {
            return -1;
        }
    }
    if (journal_room(fw_meta(), &js) != room) {
        return -1;
    }
    memcpy(snapshot, flash_ram_mem(), sizeof(snapshot));
    return 0;
}

static void restore(void)
{
    memcpy(flash_ram_mem(), snapshot, sizeof(snapshot));
    flash_ram_power_on();
}

/* The update up to the new image confirmed. *stage tells how far it got: 1 update done, 2 first
 * trial boot done, 3 confirmation done. */
static int run_all(int *stage)
{
    struct boot_decision d;
    *stage = 0;
    if (update() != 0) {
        return -1;
    }
    *stage = 1;
    if (boot(&d) != B || d.reason != BOOT_R_TRIAL || flash_ram_is_cut()) {
        return -1;
    }
    *stage = 2;
    if (confirm_in_b() != 0) {
        return -1;
    }
    *stage = 3;
    return 0;
}

static int journal_latest(struct fota_meta_record *r)
{
    struct journal_state js;
    int rc = journal_scan(fw_meta(), &js);
    *r = js.latest;
    return rc;
}

static void cut_everywhere(uint32_t room, uint32_t *points)
{
    struct boot_decision d;
    int stage;
    CHECK(prepare(room) == 0, "room %u: set-up failed", room);
    restore();
    CHECK(update() == 0, "room %u: clean update failed", room);
    /* BEGIN compacted exactly when the room was short of the reserve. */
    CHECK_EQ(ag.stats.journal_compactions, room < JOURNAL_UPDATE_RESERVE);
    struct journal_state js;
    CHECK_EQ(journal_scan(fw_meta(), &js), FOTA_OK);
    CHECK(room < JOURNAL_UPDATE_RESERVE ? js.valid_records == 2 : js.valid_records == POSITIONS - room + 1u,
          "room %u: %u records after ACTIVATE", room, js.valid_records);
    restore();
    CHECK(run_all(&stage) == 0, "room %u: clean update failed at stage %d", room, stage);
    uint32_t ops = flash_ram_ops();
    CHECK(boot(&d) == B && d.reason == BOOT_R_CONFIRMED, "room %u: clean run ends %d/%s", room, d.boot_slot,
          boot_reason_str(d.reason));
    struct fota_meta_record last;
    CHECK_EQ(journal_latest(&last), FOTA_OK);
    CHECK(last.mr_active_slot == B && last.mr_last_result == FOTA_RESULT_CONFIRMED, "room %u: last record", room);
    CHECK(last.mr_security_counter == NEW_COUNTER, "room %u: floor %u after the confirmation", room,
          last.mr_security_counter);

    for (uint32_t k = 0; k < ops; k++) {
        restore();
        flash_ram_cut_at((int32_t)k);
        CHECK(run_all(&stage) != 0 && flash_ram_is_cut(), "room %u: cut at op %u not seen", room, k);
        flash_ram_power_on();
        int slot = boot(&d);
        struct image_summary s;
        CHECK(slot >= 0 && image_validate((uint8_t)slot, &s) == FOTA_OK, "room %u cut %u: boots %d", room, k, slot);
        /* The rule: the new image runs only on a counted trial, until its confirmation began. */
        CHECK(slot == A || d.reason == BOOT_R_TRIAL || stage >= 2,
              "room %u cut %u (stage %d): new image boots untried (%s)", room, k, stage, boot_reason_str(d.reason));
        CHECK(slot == B || d.reason == BOOT_R_CONFIRMED || d.reason == BOOT_R_NO_RECORD ||
                  d.reason == BOOT_R_REVERT_INVALID || d.reason == BOOT_R_FALLBACK,
              "room %u cut %u: old image boots as %s", room, k, boot_reason_str(d.reason));
        CHECK(!(slot == A && d.reason == BOOT_R_NO_RECORD) || s.ver.major == old_a.ver[0],
              "room %u cut %u: first-boot rule", room, k);
        /* Anti-rollback: the floor is the old counter until the confirmation began, and once it is
         * the new counter the old image never boots. */
        struct fota_meta_record now;
        CHECK_EQ(journal_latest(&now), FOTA_OK);
        CHECK(now.mr_security_counter == OLD_COUNTER || (now.mr_security_counter == NEW_COUNTER && stage >= 2),
              "room %u cut %u (stage %d): floor %u", room, k, stage, now.mr_security_counter);
        CHECK(now.mr_security_counter == OLD_COUNTER || slot == B, "room %u cut %u: floor %u boots %d", room, k,
              now.mr_security_counter, slot);
        /* Recovery: from A, the master updates again; from B on trial, the self-test confirms. */
        int done = 0;
        for (int round = 0; round < 4 && !done; round++) {
            if (slot == A) {
                CHECK(update() == 0, "room %u cut %u: retried update failed", room, k);
                slot = boot(&d);
                CHECK(slot == B && d.reason == BOOT_R_TRIAL, "room %u cut %u: after the retry %d/%s", room, k, slot,
                      boot_reason_str(d.reason));
            }
            if (d.reason == BOOT_R_TRIAL) {
                CHECK(confirm_in_b() == 0, "room %u cut %u: confirm failed", room, k);
            }
            slot = boot(&d);
            done = slot == B && d.reason == BOOT_R_CONFIRMED;
        }
        CHECK(done, "room %u cut %u: never ends confirmed", room, k);
        CHECK(journal_latest(&now) == FOTA_OK && now.mr_security_counter == NEW_COUNTER,
              "room %u cut %u: ends with floor %u", room, k, now.mr_security_counter);
        CHECK(flash_ram_violations() == 0, "room %u cut %u: 0->1 programming", room, k);
        (*points)++;
    }
}

TEST(update_nearly_full_journal_power_cut_everywhere)
{
    /* Room for: nothing, one record, fewer than the trial records, exactly those, one short of
     * BEGIN's reserve (all compact at BEGIN), and the reserve itself (no compaction). */
    const uint32_t rooms[] = {0, 1, JOURNAL_TRIAL_RECORDS - 1u, JOURNAL_TRIAL_RECORDS, JOURNAL_UPDATE_RESERVE - 1u,
                              JOURNAL_UPDATE_RESERVE};
    uint32_t points = 0;
    for (unsigned i = 0; i < sizeof(rooms) / sizeof(rooms[0]) && !test_failed; i++) {
        cut_everywhere(rooms[i], &points);
    }
    CHECK(!test_failed, "see above");
    CHECK(points > 6u * 100u, "only %u cut points", points);
    printf("  cut points: %u\n", points);
}

TEST(boot_trial_into_full_journal_reverts_power_cut_everywhere)
{
    /* Should the journal be full during a trial anyway (more torn records than BEGIN's margin),
     * the bootloader cannot count the attempt: a TRIAL record never compacts. It reverts to A
     * with a CONFIRMED record, which compacts safely (B, the newer image, is withdrawn first).
     * A cut at any operation of that boots A, or B on a counted trial, never B untried. */
    struct boot_decision d;
    CHECK_EQ(prepare(1), 0);
    fw_put_image(B, &new_b);
    struct journal_state js;
    (void)journal_scan(fw_meta(), &js);
    struct fota_meta_record t = fw_record(B, FOTA_META_STATE_TRIAL, 2, A);
    CHECK_EQ(journal_append(fw_meta(), &js, &t, withdraw_unwanted_image), FOTA_OK);
    CHECK_EQ(journal_room(fw_meta(), &js), 0);
    memcpy(snapshot, flash_ram_mem(), sizeof(snapshot));
    restore();
    CHECK_EQ(boot(&d), A);
    CHECK_EQ(d.reason, BOOT_R_REVERT_ATTEMPTS);
    uint32_t ops = flash_ram_ops();
    CHECK(ops >= 10, "%u operations (withdraw + erase + 8 words)", ops);
    struct fota_meta_record last;
    CHECK_EQ(journal_latest(&last), FOTA_OK);
    CHECK(last.mr_active_slot == A && last.mr_state == FOTA_META_STATE_CONFIRMED &&
              last.mr_last_result == FOTA_RESULT_REVERTED_NO_CONFIRM && last.mr_seq == POSITIONS + 1u,
          "revert record");
    struct image_summary s;
    CHECK_EQ(image_validate(B, &s), FOTA_E_IMAGE); /* withdrawn */
    CHECK_EQ(boot(&d), A);
    CHECK_EQ(d.reason, BOOT_R_CONFIRMED);
    for (uint32_t k = 0; k < ops; k++) {
        restore();
        flash_ram_cut_at((int32_t)k);
        (void)boot(&d);
        CHECK(flash_ram_is_cut(), "cut at %u not seen", k);
        flash_ram_power_on();
        for (int round = 0; round < 2; round++) { /* the boot after the cut, and the one after it */
            int slot = boot(&d);
            CHECK(slot == A || (slot == B && d.reason == BOOT_R_TRIAL), "cut at %u, boot %d: %d (%s)", k, round,
                  slot, boot_reason_str(d.reason));
        }
        CHECK(d.boot_slot == A && d.reason == BOOT_R_CONFIRMED, "cut at %u: ends %d (%s)", k, d.boot_slot,
              boot_reason_str(d.reason));
    }
    printf("  cut points: %u\n", ops);
}

TEST(activate_refused_without_room_for_the_trial_records)
{
    /* Room vanished between BEGIN and VERIFY's end (here: records added behind the agent's back):
     * ACTIVATE answers ERR_FLASH, writes nothing and fails the session, so A stays confirmed; the
     * next BEGIN erases B and compacts, and the update then activates. */
    struct journal_state js;
    struct boot_decision d;
    struct image_summary s;
    CHECK_EQ(prepare(POSITIONS / 2u), 0);
    restore();
    CHECK_EQ(update_until_verify(), 0);
    CHECK_EQ(ag.stats.journal_compactions, 0);
    (void)journal_scan(fw_meta(), &js);
    while (journal_room(fw_meta(), &js) > JOURNAL_TRIAL_RECORDS - 1u) {
        struct fota_meta_record r = fw_record(A, FOTA_META_STATE_CONFIRMED, 0, A);
        CHECK_EQ(journal_append(fw_meta(), &js, &r, withdraw_unwanted_image), FOTA_OK);
    }
    flash_ram_power_on();
    CHECK_EQ(request(FOTA_CMD_ACTIVATE, NULL, 0), FOTA_ST_ERR_FLASH);
    CHECK_EQ(flash_ram_ops(), 0);
    CHECK_EQ(ag.s.state, FOTA_SESSION_FAILED);
    CHECK_EQ(agent_last_error(&ag), AGENT_E_JOURNAL_FULL);
    CHECK(boot(&d) == A && d.reason == BOOT_R_CONFIRMED, "boots %d (%s)", d.boot_slot, boot_reason_str(d.reason));
    CHECK_EQ(image_validate(B, &s), FOTA_OK); /* verified, never activated */
    CHECK_EQ(update(), 0);
    CHECK_EQ(ag.stats.journal_compactions, 1);
    CHECK(boot(&d) == B && d.reason == BOOT_R_TRIAL, "boots %d (%s)", d.boot_slot, boot_reason_str(d.reason));
}
