/* Update agent (stm32/agent/agent.c), ACTIVATE and CONFIRM: a whole update up to the TRIAL record,
 * and the confirmation with its record and error. */
#include <string.h>
#include "agent_fixture.h"

/* A whole update, pipelined as link.c runs it; the running slot, the bootloader and metadata stay
 * untouched until ACTIVATE, which appends exactly one TRIAL record. */
TEST(agent_full_update_and_activate)
{
    struct fota_begin_req br;
    setup();
    memset(flash_ram_mem(), 0x5A, FOTA_REGION_BOOTLOADER_SIZE); /* a "bootloader" to watch */
    make_image(&img2, FOTA_SLOT_B, 0, 5, 0, 200000, 3);
    install(&img2, FOTA_SLOT_B); /* an old image: the sectors need erasing */
    start_agent();
    uint8_t *before = snapshot();
    struct fota_info_resp ir = info();
    CHECK_EQ(ir.ir_running_slot, FOTA_SLOT_A);
    CHECK_EQ(ir.ir_a_state, FOTA_SLOT_STATE_VALID);
    CHECK_EQ(ir.ir_b_state, FOTA_SLOT_STATE_VALID);

    make_image(&img, FOTA_SLOT_B, 1, 2, 3, 150000, 4);
    br = begin_of(&img, FOTA_SLOT_B);
    CHECK_EQ(begin(&br), FOTA_ST_OK);
    CHECK_EQ(resp_next(), 0);
    /* 150 KB into slot B touches sectors 7 and 8 only */
    CHECK_EQ(flash_ram_sector_erases(7), 1);
    CHECK_EQ(flash_ram_sector_erases(8), 1);
    CHECK_EQ(flash_ram_erases(), 2);
    CHECK_EQ(write_range(&img, 0, img.size, FOTA_MAX_CHUNK), FOTA_ST_OK);
    CHECK_EQ(resp_next(), img.size);
    unsigned words = 0; /* fa_write skips words that are already right (0xFFFFFFFF) */
    for (uint32_t i = 0; i < img.size; i += 4) {
        uint32_t w;
        memcpy(&w, img.data + i, 4);
        words += w != 0xFFFFFFFFu;
    }
    CHECK_EQ(flash_ram_programs(), words);
    CHECK_EQ(flash_ram_programs_over_data(), 0);
    CHECK(memcmp(fw_slot_mem(FOTA_SLOT_B), img.data, img.size) == 0);
    CHECK_EQ(req(FOTA_CMD_VERIFY, NULL, 0), FOTA_ST_OK);
    ir = info();
    CHECK_EQ(ir.ir_session_state, FOTA_SESSION_VERIFIED);
    CHECK_EQ(ir.ir_b_state, FOTA_SLOT_STATE_VALID);
    CHECK_EQ(ir.ir_b_minor, 2);
    CHECK_EQ(ir.ir_b_patch, 3);
    /* nothing outside slot B changed so far: bootloader, slot A, metadata */
    CHECK(memcmp(before, flash_ram_mem(), FOTA_REGION_SLOT_B_BASE - FOTA_FLASH_BASE) == 0);
    CHECK(memcmp(before + (FOTA_REGION_METADATA_BASE - FOTA_FLASH_BASE), fw_meta_mem(),
                 FOTA_REGION_METADATA_SIZE) == 0);
    uint32_t meta_seq = ir.ir_meta_seq;

    CHECK_EQ(req(FOTA_CMD_ACTIVATE, NULL, 0), FOTA_ST_OK);
    ir = info();
    CHECK_EQ(ir.ir_session_state, FOTA_SESSION_ACTIVATED);
    CHECK_EQ(ir.ir_meta_active, FOTA_SLOT_B);
    CHECK_EQ(ir.ir_meta_state, FOTA_META_STATE_TRIAL);
    CHECK_EQ(ir.ir_meta_attempts, FOTA_META_TRIAL_ATTEMPTS);
    CHECK_EQ(ir.ir_meta_seq, meta_seq + 1);
    CHECK_EQ(ag.journal.latest.mr_prev_slot, FOTA_SLOT_A);
    CHECK_EQ(ag.journal.latest.mr_ver_minor, 2);
    /* a second ACTIVATE appends nothing; ABORT and BEGIN are refused now */
    CHECK_EQ(req(FOTA_CMD_ACTIVATE, NULL, 0), FOTA_ST_OK);
    CHECK_EQ(info().ir_meta_seq, meta_seq + 1);
    CHECK_EQ(req(FOTA_CMD_ABORT, NULL, 0), FOTA_ST_ERR_STATE);
    CHECK_EQ(begin(&br), FOTA_ST_ERR_STATE);
    /* slot A and the bootloader still untouched */
    CHECK(memcmp(before, flash_ram_mem(), FOTA_REGION_SLOT_B_BASE - FOTA_FLASH_BASE) == 0);
}

TEST(agent_confirm_command)
{
    setup();
    start_agent();
    CHECK_EQ(req(FOTA_CMD_INFO, NULL, 0), FOTA_ST_OK);
    CHECK_EQ(req(FOTA_CMD_CONFIRM, NULL, 0), FOTA_ST_ERR_STATE); /* confirmed already */
    journal_put(FOTA_SLOT_B, FOTA_META_STATE_TRIAL, 2, FOTA_SLOT_A); /* B on trial, we run A */
    CHECK_EQ(agent_confirm(&ag), AGENT_E_STATE);
    journal_put(FOTA_SLOT_A, FOTA_META_STATE_TRIAL, 2, FOTA_SLOT_B);
    CHECK_EQ(req(FOTA_CMD_CONFIRM, NULL, 0), FOTA_ST_OK);
    struct fota_info_resp ir = info();
    CHECK_EQ(ir.ir_meta_active, FOTA_SLOT_A);
    CHECK_EQ(ir.ir_meta_state, FOTA_META_STATE_CONFIRMED);
    CHECK_EQ(ir.ir_last_result, FOTA_RESULT_CONFIRMED);
    CHECK_EQ(ag.journal.latest.mr_ver_major, 1);
    CHECK_EQ(agent_confirm(&ag), AGENT_E_STATE);
}

/* agent_confirm is the one writer of the confirmation (the link's CONFIRM and the application's
 * self-test, app/trial.c): the record it appends, and the error it keeps for the log. */
TEST(agent_confirm_record_and_journal_error)
{
    struct fota_image_header ii;
    setup();
    memcpy(&ii, running_img.data, sizeof(ii));
    journal_put(FOTA_SLOT_A, FOTA_META_STATE_TRIAL, 1, FOTA_SLOT_B);
    start_agent();
    flash_ram_fail_program_at(0); /* the record's first word */
    CHECK_EQ(agent_confirm(&ag), AGENT_E_FLASH);
    CHECK_EQ(agent_last_error(&ag), AGENT_E_FLASH);
    CHECK(agent_on_trial(&ag));
    flash_ram_fail_program_at(-1);
    CHECK_EQ(agent_confirm(&ag), AGENT_OK);
    struct journal_state js;
    CHECK_EQ(journal_scan(fa_get(FOTA_REGION_METADATA_ID), &js), FOTA_OK);
    const struct fota_meta_record *r = &js.latest;
    CHECK_EQ(r->mr_active_slot, FOTA_SLOT_A);
    CHECK_EQ(r->mr_state, FOTA_META_STATE_CONFIRMED);
    CHECK_EQ(r->mr_attempts_left, 0);
    CHECK_EQ(r->mr_last_result, FOTA_RESULT_CONFIRMED);
    CHECK_EQ(r->mr_prev_slot, FOTA_SLOT_A);
    CHECK_EQ(r->mr_ver_major, ii.ih_ver_major);
    CHECK_EQ(r->mr_ver_minor, ii.ih_ver_minor);
    CHECK_EQ(r->mr_ver_patch, ii.ih_ver_revision);
    CHECK_EQ(r->mr_build, ii.ih_ver_build);
    CHECK(!agent_on_trial(&ag));
}
