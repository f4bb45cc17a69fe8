/* Update agent (stm32/agent/agent.c), WRITE: offsets, lengths and idempotence, the information
 * block checked before it is written, a failed program, the padded image end, the pipelined
 * programming. */
#include <string.h>
#include "agent_fixture.h"

TEST(agent_write_rules)
{
    struct fota_begin_req br;
    uint8_t p[64];
    setup();
    start_agent();
    CHECK_EQ(req(FOTA_CMD_INFO, NULL, 0), FOTA_ST_OK);
    make_image(&img, FOTA_SLOT_B, 1, 1, 0, 20000, 7);
    /* no session */
    CHECK_EQ(write_chunk(&img, 0, 1024), FOTA_ST_ERR_STATE);
    br = begin_of(&img, FOTA_SLOT_B);
    CHECK_EQ(begin(&br), FOTA_ST_OK);
    /* the image header must arrive whole */
    CHECK_EQ(write_chunk(&img, 0, 16), FOTA_ST_ERR_LENGTH);
    CHECK_EQ(ag.s.next, 0);
    /* not a multiple of 4 before the end */
    CHECK_EQ(write_chunk(&img, 0, 1023), FOTA_ST_ERR_LENGTH);
    CHECK_EQ(write_chunk(&img, 0, 1024), FOTA_ST_OK);
    CHECK_EQ(resp_next(), 1024);
    /* not at next_offset: refused, the payload says where to continue */
    CHECK_EQ(write_chunk(&img, 2048, 1024), FOTA_ST_ERR_RANGE);
    CHECK_EQ(resp_next(), 1024);
    CHECK_EQ(resp_plen(), sizeof(struct fota_offset_resp));
    /* beyond the announced image */
    CHECK_EQ(write_chunk(&img, img.size - 8, 16), FOTA_ST_ERR_RANGE);
    uint32_t off = img.size + 4;
    memcpy(p, &off, 4);
    CHECK_EQ(req(FOTA_CMD_WRITE, p, 8), FOTA_ST_ERR_RANGE);
    off = 0xFFFFFFF0u; /* would wrap */
    memcpy(p, &off, 4);
    CHECK_EQ(req(FOTA_CMD_WRITE, p, 36), FOTA_ST_ERR_RANGE);
    /* idempotent: an old chunk with the same data is OK without programming */
    unsigned programs = flash_ram_programs();
    CHECK_EQ(write_chunk(&img, 0, 1024), FOTA_ST_OK);
    CHECK_EQ(resp_next(), 1024);
    CHECK_EQ(write_chunk(&img, 512, 512), FOTA_ST_OK);
    CHECK_EQ(flash_ram_programs(), programs);
    /* an old range with other data is refused */
    img.data[700] ^= 1;
    CHECK_EQ(write_chunk(&img, 512, 512), FOTA_ST_ERR_RANGE);
    img.data[700] ^= 1;
    CHECK_EQ(flash_ram_programs(), programs);
    CHECK_EQ(ag.s.state, FOTA_SESSION_RECEIVING);
    CHECK_EQ(write_range(&img, 1024, img.size, 1000), FOTA_ST_OK);
    CHECK_EQ(req(FOTA_CMD_VERIFY, NULL, 0), FOTA_ST_OK);
    /* WRITE after VERIFY */
    CHECK_EQ(write_chunk(&img, 0, 4), FOTA_ST_ERR_STATE);
}

/* The chunk carrying the image header must match BEGIN's copy; else the session fails before
 * anything of that chunk is written. */
TEST(agent_info_block_checked_before_write)
{
    struct fota_begin_req br;
    setup();
    start_agent();
    CHECK_EQ(req(FOTA_CMD_INFO, NULL, 0), FOTA_ST_OK);
    make_image(&img, FOTA_SLOT_B, 1, 1, 0, 20000, 7);
    br = begin_of(&img, FOTA_SLOT_B);
    CHECK_EQ(begin(&br), FOTA_ST_OK);
    img.data[20] ^= 1; /* ih_ver_major */
    CHECK_EQ(write_chunk(&img, 0, 256), FOTA_ST_ERR_IMAGE);
    CHECK_EQ(flash_ram_programs(), 0);
    CHECK(fa_is_erased(fa_slot(FOTA_SLOT_B), 0, 256));
    struct fota_info_resp ir = info();
    CHECK_EQ(ir.ir_session_state, FOTA_SESSION_FAILED);
    CHECK_EQ(ir.ir_session_status, FOTA_ST_ERR_IMAGE);
    img.data[20] ^= 1;
    CHECK_EQ(write_chunk(&img, 0, 256), FOTA_ST_ERR_IMAGE); /* failed: needs a new BEGIN */
    CHECK_EQ(req(FOTA_CMD_VERIFY, NULL, 0), FOTA_ST_ERR_IMAGE);
    CHECK_EQ(req(FOTA_CMD_ACTIVATE, NULL, 0), FOTA_ST_ERR_NOT_VERIFIED);
}

/* A program failure fails the session; the next request and the cached response say so. */
TEST(agent_program_failure_reported)
{
    struct fota_begin_req br;
    setup();
    start_agent();
    CHECK_EQ(req(FOTA_CMD_INFO, NULL, 0), FOTA_ST_OK);
    make_image(&img, FOTA_SLOT_B, 1, 1, 0, 50000, 12);
    br = begin_of(&img, FOTA_SLOT_B);
    CHECK_EQ(begin(&br), FOTA_ST_OK);
    CHECK_EQ(write_chunk(&img, 0, 4096), FOTA_ST_OK);
    flash_ram_fail_program_at((int32_t)flash_ram_programs() + 100); /* inside the next chunk */
    CHECK_EQ(write_chunk(&img, 4096, 4096), FOTA_ST_OK); /* answered before programming */
    uint16_t failed_seq = seq;
    CHECK_EQ(write_chunk(&img, 8192, 4096), FOTA_ST_ERR_FLASH);
    /* the master resends the failed WRITE (its response was lost): cached, patched */
    static uint8_t p[FOTA_MAX_PAYLOAD];
    uint32_t off = 4096;
    memcpy(p, &off, 4);
    memcpy(p + 4, img.data + off, 4096);
    CHECK_EQ(req_seq(FOTA_CMD_WRITE, failed_seq, p, 4100), FOTA_ST_ERR_FLASH);
    CHECK(resp_crc_ok());
    CHECK_EQ(req(FOTA_CMD_VERIFY, NULL, 0), FOTA_ST_ERR_FLASH);
    struct fota_info_resp ir = info();
    CHECK_EQ(ir.ir_session_state, FOTA_SESSION_FAILED);
    CHECK_EQ(ir.ir_session_status, FOTA_ST_ERR_FLASH);
    /* a new BEGIN erases and starts over */
    flash_ram_fail_program_at(-1);
    CHECK_EQ(begin(&br), FOTA_ST_OK);
    CHECK_EQ(resp_next(), 0);
    CHECK_EQ(write_range(&img, 0, img.size, FOTA_MAX_CHUNK), FOTA_ST_OK);
    CHECK_EQ(req(FOTA_CMD_VERIFY, NULL, 0), FOTA_ST_OK);
}

/* The image end need not be word-aligned: the last word is padded with 0xFF. */
TEST(agent_unaligned_image_end_padded)
{
    struct fota_begin_req br;
    setup();
    start_agent();
    CHECK_EQ(req(FOTA_CMD_INFO, NULL, 0), FOTA_ST_OK);
    make_image(&img, FOTA_SLOT_B, 1, 1, 0, 4096, 13);
    /* a file 2 bytes shorter (not a multiple of 4): the agent stores what it gets */
    img.size -= 2;
    image_rehash(&img);
    br = begin_of(&img, FOTA_SLOT_B);
    CHECK_EQ(begin(&br), FOTA_ST_OK);
    CHECK_EQ(write_range(&img, 0, img.size - 6, 4096), FOTA_ST_OK);
    CHECK_EQ(write_chunk(&img, img.size - 6, 6), FOTA_ST_OK);
    CHECK(memcmp(fw_slot_mem(FOTA_SLOT_B), img.data, img.size) == 0);
    CHECK_EQ(fw_slot_mem(FOTA_SLOT_B)[img.size], 0xFF);
    CHECK_EQ(fw_slot_mem(FOTA_SLOT_B)[img.size + 1], 0xFF);
    CHECK_EQ(flash_ram_programs_over_data(), 0);
    /* the signature lost its last two bytes: the TLV area now runs past the file */
    CHECK_EQ(req(FOTA_CMD_VERIFY, NULL, 0), FOTA_ST_ERR_TLV);
}

/* The receive buffer of a WRITE is not reused before it is programmed: agent_request finishes the
 * pending WRITE itself when the glue did not call agent_work. */
TEST(agent_pending_write_finished_before_next_request)
{
    struct fota_begin_req br;
    static uint8_t p[FOTA_MAX_PAYLOAD];
    setup();
    start_agent();
    CHECK_EQ(req(FOTA_CMD_INFO, NULL, 0), FOTA_ST_OK);
    make_image(&img, FOTA_SLOT_B, 1, 1, 0, 30000, 16);
    br = begin_of(&img, FOTA_SLOT_B);
    CHECK_EQ(begin(&br), FOTA_ST_OK);
    for (uint32_t off = 0; off < 12288; off += 4096) {
        uint8_t *f = rx_buf[rx_sel];
        rx_sel ^= 1u;
        memcpy(p, &off, 4);
        memcpy(p + 4, img.data + off, 4096);
        CHECK_EQ(deliver(f, build(f, FOTA_CMD_WRITE, ++seq, p, 4100)), FOTA_ST_OK);
        CHECK(agent_pending(&ag));
    }
    CHECK_EQ(req(FOTA_CMD_NOP, NULL, 0), FOTA_ST_OK); /* the third one is still pending... */
    CHECK(!agent_pending(&ag));                       /* ...until the next request */
    CHECK(memcmp(fw_slot_mem(FOTA_SLOT_B), img.data, 12288) == 0);
}
