/* Anti-rollback: the journal's floor (mr_security_counter) carried forward by every append and
 * compaction, raised only by a larger value; the boot's enforcement (boot_enforce_floor) and the
 * first boot's pick; the update agent's checks at BEGIN and VERIFY and the raise at CONFIRM. */
#include <string.h>
#include "agent_fixture.h"
#include "boot_decide.h"
#include "flash_ram.h"
#include "fota_layout.h"
#include "fixture.h"
#include "mcuboot_fixture.h"

enum { A = FOTA_SLOT_A, B = FOTA_SLOT_B };

static int append_floor(uint8_t slot, uint8_t state, uint32_t floor, struct journal_state *js)
{
    struct fota_meta_record r = fw_record(slot, state, state == FOTA_META_STATE_TRIAL ? 3u : 0u, slot ^ 1u);
    r.mr_security_counter = floor;
    (void)journal_scan(fw_meta(), js);
    return journal_append(fw_meta(), js, &r, withdraw_unwanted_image);
}

TEST(rollback_floor_never_goes_down)
{
    struct journal_state js;
    fw_flash_fresh();
    fw_put_image(A, &(struct img_spec){A, {1, 0, 0}, 1, 200});
    CHECK_EQ(append_floor(A, FOTA_META_STATE_CONFIRMED, 3, &js), FOTA_OK);
    CHECK_EQ(js.latest.mr_security_counter, 3);
    /* A record that does not raise it (0: "keep") or asks for less keeps 3. */
    CHECK_EQ(append_floor(B, FOTA_META_STATE_TRIAL, 0, &js), FOTA_OK);
    CHECK_EQ(js.latest.mr_security_counter, 3);
    CHECK_EQ(append_floor(A, FOTA_META_STATE_CONFIRMED, 2, &js), FOTA_OK);
    CHECK_EQ(journal_scan(fw_meta(), &js), FOTA_OK);
    CHECK_EQ(js.latest.mr_security_counter, 3);
    CHECK_EQ(append_floor(A, FOTA_META_STATE_CONFIRMED, 7, &js), FOTA_OK);
    CHECK_EQ(js.latest.mr_security_counter, 7);
    /* A compaction keeps it too. */
    struct fota_meta_record r = fw_record(A, FOTA_META_STATE_CONFIRMED, 0, A);
    CHECK_EQ(journal_compact(fw_meta(), &js, &r, withdraw_unwanted_image), FOTA_OK);
    CHECK_EQ(journal_scan(fw_meta(), &js), FOTA_OK);
    CHECK_EQ(js.valid_records, 1);
    CHECK_EQ(js.latest.mr_security_counter, 7);
}

TEST(rollback_torn_record_keeps_the_previous_floor)
{
    struct journal_state js;
    fw_flash_fresh();
    CHECK_EQ(append_floor(A, FOTA_META_STATE_CONFIRMED, 1, &js), FOTA_OK);
    flash_ram_power_on();
    flash_ram_cut_at(3); /* the raising record torn in its fourth word */
    CHECK(append_floor(B, FOTA_META_STATE_CONFIRMED, 2, &js) != FOTA_OK, "append survived the cut");
    flash_ram_power_on();
    CHECK_EQ(journal_scan(fw_meta(), &js), FOTA_OK);
    CHECK_EQ(js.torn_records, 1);
    CHECK_EQ(js.latest.mr_security_counter, 1);
    CHECK_EQ(js.latest.mr_active_slot, A);
}

static struct image_summary valid(uint8_t major, uint32_t counter)
{
    struct image_summary s;
    memset(&s, 0, sizeof(s));
    s.state = FOTA_SLOT_STATE_VALID;
    s.ver.major = major;
    s.security_counter = counter;
    return s;
}

TEST(rollback_boot_refuses_images_below_the_floor)
{
    struct boot_input in;
    struct boot_decision d;
    memset(&in, 0, sizeof(in));
    in.slot[A] = valid(1, 1);
    in.slot[B] = valid(2, 2);
    in.have_record = 1;
    in.rec = fw_record(B, FOTA_META_STATE_CONFIRMED, 0, B);
    in.rec.mr_security_counter = 2;
    boot_enforce_floor(&in);
    CHECK_EQ(in.slot[A].state, FOTA_SLOT_STATE_INVALID);
    CHECK_EQ(in.slot[A].fault, IMAGE_ROLLBACK);
    CHECK_EQ(in.slot[B].state, FOTA_SLOT_STATE_VALID);
    CHECK(strcmp(image_fault_str(IMAGE_ROLLBACK), "rollback") == 0, "fault name");
    /* B damaged: the fallback to A is refused too; nothing boots (the bootloader stays). */
    in.slot[B].state = FOTA_SLOT_STATE_INVALID;
    in.slot[B].fault = IMAGE_BAD_HASH;
    boot_decide(&in, &d);
    CHECK_EQ(d.boot_slot, -1);
    CHECK_EQ(d.reason, BOOT_R_NONE_VALID);
    /* A trial of A (counter 1) under floor 2: reverted to B as invalid. */
    memset(&in, 0, sizeof(in));
    in.slot[A] = valid(3, 1);
    in.slot[B] = valid(2, 2);
    in.have_record = 1;
    in.rec = fw_record(A, FOTA_META_STATE_TRIAL, 3, B);
    in.rec.mr_security_counter = 2;
    boot_enforce_floor(&in);
    boot_decide(&in, &d);
    CHECK_EQ(d.boot_slot, B);
    CHECK_EQ(d.reason, BOOT_R_REVERT_INVALID);
    /* Equal to the floor boots. */
    memset(&in, 0, sizeof(in));
    in.slot[A] = valid(1, 2);
    in.have_record = 1;
    in.rec = fw_record(A, FOTA_META_STATE_CONFIRMED, 0, A);
    in.rec.mr_security_counter = 2;
    boot_enforce_floor(&in);
    boot_decide(&in, &d);
    CHECK_EQ(d.boot_slot, A);
}

TEST(rollback_first_boot_picks_the_higher_counter_and_records_it)
{
    struct boot_input in;
    struct boot_decision d;
    memset(&in, 0, sizeof(in));
    in.slot[A] = valid(2, 3); /* older version, higher counter */
    in.slot[B] = valid(3, 2);
    boot_enforce_floor(&in); /* no record: floor 0, nothing refused */
    CHECK_EQ(in.slot[B].state, FOTA_SLOT_STATE_VALID);
    boot_decide(&in, &d);
    CHECK_EQ(d.boot_slot, A);
    CHECK_EQ(d.reason, BOOT_R_NO_RECORD);
    CHECK_EQ(d.record.mr_security_counter, 3);
    /* Equal counters: the newer version, as before. */
    in.slot[A] = valid(2, 2);
    boot_decide(&in, &d);
    CHECK_EQ(d.boot_slot, B);
    CHECK_EQ(d.record.mr_security_counter, 2);
}

/* ---- the update agent ---------------------------------------------------------------------- */

static void floor_to(uint32_t floor)
{
    struct journal_state js;
    CHECK_EQ(append_floor(A, FOTA_META_STATE_CONFIRMED, floor, &js), FOTA_OK);
    start_agent();
    (void)info(); /* a link session starts with INFO */
}

TEST(rollback_agent_begin_refuses_a_lower_counter_before_any_erase)
{
    setup(); /* A 1.0.0 running and confirmed, counter 1 */
    floor_to(2);
    make_image_full(&img, B, 1, 1, 0, 7, 1, 2000, 0);
    struct fota_info_resp ir = info();
    CHECK_EQ(ir.ir_security_floor, 2);
    CHECK_EQ(ir.ir_run_counter, 1);
    CHECK(memcmp(ir.ir_run_key, fw_test_key(0)->hash, 4) == 0, "run_key");
    flash_ram_power_on();
    struct fota_begin_req br = begin_of(&img, B);
    CHECK_EQ(begin(&br), FOTA_ST_ERR_ROLLBACK);
    br.br_flags = FOTA_BEGIN_FLAG_DOWNGRADE; /* no flag lifts it */
    CHECK_EQ(begin(&br), FOTA_ST_ERR_ROLLBACK);
    CHECK_EQ(flash_ram_ops(), 0);
    make_image_full(&img, B, 1, 1, 0, 7, 2, 2000, 0);
    br = begin_of(&img, B);
    CHECK_EQ(begin(&br), FOTA_ST_OK);
}

TEST(rollback_agent_verify_checks_the_image_counter)
{
    /* A sender that announces a counter the image does not carry: the image decides. */
    setup();
    floor_to(2);
    make_image_full(&img, B, 1, 1, 0, 7, 1, 2000, 0);
    struct fota_begin_req br = begin_of(&img, B);
    br.br_security_counter = 2; /* a lie: the image says 1 */
    CHECK_EQ(begin(&br), FOTA_ST_OK);
    CHECK_EQ(write_range(&img, 0, img.size, FOTA_MAX_CHUNK), FOTA_ST_OK);
    uint8_t meta_before[256];
    memcpy(meta_before, fw_meta_mem(), sizeof(meta_before));
    CHECK_EQ(req(FOTA_CMD_VERIFY, NULL, 0), FOTA_ST_ERR_ROLLBACK);
    CHECK_EQ(req(FOTA_CMD_ACTIVATE, NULL, 0), FOTA_ST_ERR_NOT_VERIFIED);
    CHECK(memcmp(meta_before, fw_meta_mem(), sizeof(meta_before)) == 0, "metadata changed");
    /* Counter 3 announced as 2: above the floor but not what BEGIN said. */
    make_image_full(&img, B, 1, 1, 0, 7, 3, 2000, 0);
    br = begin_of(&img, B);
    br.br_security_counter = 2;
    CHECK_EQ(begin(&br), FOTA_ST_OK);
    CHECK_EQ(write_range(&img, 0, img.size, FOTA_MAX_CHUNK), FOTA_ST_OK);
    CHECK_EQ(req(FOTA_CMD_VERIFY, NULL, 0), FOTA_ST_ERR_IMAGE);
}

TEST(rollback_agent_confirm_raises_the_floor_to_the_running_counter)
{
    setup();
    floor_to(1);
    make_image_full(&img, B, 1, 1, 0, 7, 5, 2000, 0);
    struct fota_begin_req br = begin_of(&img, B);
    CHECK_EQ(begin(&br), FOTA_ST_OK);
    CHECK_EQ(write_range(&img, 0, img.size, FOTA_MAX_CHUNK), FOTA_ST_OK);
    CHECK_EQ(req(FOTA_CMD_VERIFY, NULL, 0), FOTA_ST_OK);
    CHECK_EQ(req(FOTA_CMD_ACTIVATE, NULL, 0), FOTA_ST_OK);
    struct journal_state js;
    CHECK_EQ(journal_scan(fw_meta(), &js), FOTA_OK);
    CHECK_EQ(js.latest.mr_state, FOTA_META_STATE_TRIAL);
    CHECK_EQ(js.latest.mr_security_counter, 1); /* not before it confirmed itself */
    /* The new image runs on trial and confirms itself. */
    start_agent_in(B, &img);
    CHECK_EQ(agent_confirm(&ag), AGENT_OK);
    CHECK_EQ(journal_scan(fw_meta(), &js), FOTA_OK);
    CHECK_EQ(js.latest.mr_state, FOTA_META_STATE_CONFIRMED);
    CHECK_EQ(js.latest.mr_security_counter, 5);
}
