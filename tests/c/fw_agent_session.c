/* Update agent (stm32/agent/agent.c), INFO, RESET and ABORT: what INFO reports, the delayed reset,
 * an aborted session. */
#include <string.h>
#include "agent_fixture.h"

TEST(agent_info_contents)
{
    setup();
    make_image(&img2, FOTA_SLOT_B, 3, 4, 5, 8000, 14);
    install(&img2, FOTA_SLOT_B);
    now_ms = 5000;
    start_agent();
    now_ms = 6234;
    struct fota_info_resp ir = info();
    CHECK_EQ(tx_len, FOTA_FRAME_OVERHEAD + sizeof(ir));
    CHECK(resp_crc_ok());
    CHECK_EQ(ir.ir_proto_version, FOTA_PROTOCOL_VERSION);
    CHECK_EQ(ir.ir_max_chunk, FOTA_MAX_CHUNK);
    CHECK_EQ(ir.ir_running_slot, FOTA_SLOT_A);
    CHECK_EQ(ir.ir_run_major, 1);
    CHECK_EQ(ir.ir_run_minor, 0);
    CHECK_EQ(ir.ir_run_build, 7);
    CHECK_EQ(ir.ir_a_state, FOTA_SLOT_STATE_VALID);
    CHECK_EQ(ir.ir_a_major, 1);
    CHECK_EQ(ir.ir_b_state, FOTA_SLOT_STATE_VALID);
    CHECK_EQ(ir.ir_b_major, 3);
    CHECK_EQ(ir.ir_b_minor, 4);
    CHECK_EQ(ir.ir_b_patch, 5);
    CHECK_EQ(ir.ir_b_build, 7);
    CHECK_EQ(ir.ir_meta_active, FOTA_SLOT_A);
    CHECK_EQ(ir.ir_meta_state, FOTA_META_STATE_CONFIRMED);
    CHECK_EQ(ir.ir_session_state, FOTA_SESSION_IDLE);
    CHECK_EQ(ir.ir_session_status, FOTA_ST_OK);
    CHECK_EQ(ir.ir_uid[0], 0xA0);
    CHECK_EQ(ir.ir_uid[11], 0xAB);
    CHECK_EQ(ir.ir_temp_centi, 2512);
    CHECK_EQ(ir.ir_uptime_ms, 1234);
    /* an empty slot and no journal at all */
    setup();
    memset(fw_meta_mem(), 0xFF, FOTA_REGION_METADATA_SIZE);
    start_agent();
    ir = info();
    CHECK_EQ(ir.ir_b_state, FOTA_SLOT_STATE_EMPTY);
    CHECK_EQ(ir.ir_meta_active, 0xFF);
    CHECK_EQ(ir.ir_meta_state, 0);
}

TEST(agent_reset_after_delay)
{
    setup();
    start_agent();
    CHECK_EQ(req(FOTA_CMD_INFO, NULL, 0), FOTA_ST_OK);
    CHECK_EQ(req(FOTA_CMD_RESET, NULL, 0), FOTA_ST_OK);
    agent_poll(&ag);
    CHECK_EQ(resets, 0);
    now_ms += FOTA_RESET_DELAY_MS - 1;
    agent_poll(&ag);
    CHECK_EQ(resets, 0);
    now_ms += 1;
    agent_poll(&ag);
    CHECK_EQ(resets, 1);
    agent_poll(&ag);
    CHECK_EQ(resets, 1);
}

TEST(agent_abort)
{
    struct fota_begin_req br;
    setup();
    start_agent();
    CHECK_EQ(req(FOTA_CMD_INFO, NULL, 0), FOTA_ST_OK);
    make_image(&img, FOTA_SLOT_B, 1, 1, 0, 30000, 15);
    br = begin_of(&img, FOTA_SLOT_B);
    CHECK_EQ(begin(&br), FOTA_ST_OK);
    CHECK_EQ(write_chunk(&img, 0, 4096), FOTA_ST_OK);
    CHECK_EQ(req(FOTA_CMD_ABORT, NULL, 0), FOTA_ST_OK);
    CHECK_EQ(info().ir_session_state, FOTA_SESSION_IDLE);
    CHECK_EQ(write_chunk(&img, 4096, 4096), FOTA_ST_ERR_STATE);
    CHECK_EQ(req(FOTA_CMD_VERIFY, NULL, 0), FOTA_ST_ERR_STATE);
    CHECK_EQ(req(FOTA_CMD_ACTIVATE, NULL, 0), FOTA_ST_ERR_NOT_VERIFIED);
    CHECK_EQ(memcmp(fw_slot_mem(FOTA_SLOT_B), img.data, 4096), 0); /* left as it is */
}
