/* Update agent (stm32/agent/agent.c), the frame layer: marker, length, CRC, sequence numbers and
 * the retransmission cache, unknown commands and lengths, and random or mutated frames. */
#include <string.h>
#include "agent_fixture.h"

TEST(agent_frame_errors_are_refused_and_change_nothing)
{
    uint8_t *f = rx_buf[0];
    struct fota_begin_req br;
    size_t n;
    setup();
    start_agent();
    CHECK_EQ(req(FOTA_CMD_INFO, NULL, 0), FOTA_ST_OK);
    make_image(&img, FOTA_SLOT_B, 1, 1, 0, 30000, 2);
    br = begin_of(&img, FOTA_SLOT_B);
    uint8_t *before = snapshot();

    n = build(f, FOTA_CMD_BEGIN, (uint16_t)(seq + 1), &br, sizeof(br));
    f[0] ^= 0xFF; /* bad marker */
    CHECK_EQ(deliver(f, n), FOTA_ST_ERR_FRAME);
    CHECK(resp_crc_ok());

    n = build(f, FOTA_CMD_BEGIN, (uint16_t)(seq + 1), &br, sizeof(br));
    f[20] ^= 0x04; /* bit flip in the payload */
    CHECK_EQ(deliver(f, n), FOTA_ST_ERR_CRC);
    CHECK_EQ(resp_seq(), seq + 1);

    n = build(f, FOTA_CMD_BEGIN, (uint16_t)(seq + 1), &br, sizeof(br));
    f[6] = 0xFF; /* length beyond MAX_PAYLOAD */
    f[7] = 0xFF;
    CHECK_EQ(deliver(f, n), FOTA_ST_ERR_FRAME);

    /* truncated: the master clocked fewer bytes than the length field says */
    static uint8_t big[FOTA_MAX_FRAME];
    memcpy(big, &(uint32_t){0}, 4);
    n = build(f, FOTA_CMD_WRITE, (uint16_t)(seq + 1), big, 2000);
    tx_len = agent_request(&ag, f, n - 100, tx, sizeof(tx));
    CHECK_EQ(tx[3], FOTA_ST_ERR_FRAME);

    /* dropped byte: everything after it shifts, the CRC no longer matches */
    n = build(f, FOTA_CMD_BEGIN, (uint16_t)(seq + 1), &br, sizeof(br));
    memmove(f + 30, f + 31, n - 31);
    CHECK_EQ(deliver(f, n - 1), FOTA_ST_ERR_CRC);

    /* fewer bytes than a header */
    tx_len = agent_request(&ag, f, 5, tx, sizeof(tx));
    CHECK_EQ(tx[3], FOTA_ST_ERR_FRAME);
    tx_len = agent_request(&ag, f, 0, tx, sizeof(tx));
    CHECK_EQ(tx[3], FOTA_ST_ERR_FRAME);

    CHECK(memcmp(before, flash_ram_mem(), FOTA_FLASH_SIZE) == 0);
    CHECK_EQ(flash_ram_programs(), 0);
    CHECK_EQ(flash_ram_erases(), 0);
    CHECK_EQ(ag.stats.frame_errors, 7);
    /* the same BEGIN, intact, with the seq the corrupted ones carried, is executed */
    CHECK_EQ(begin(&br), FOTA_ST_OK);
}

TEST(agent_seq_rules)
{
    struct fota_begin_req br;
    setup();
    memset(fw_slot_mem(FOTA_SLOT_B), 0, 64); /* so that BEGIN has to erase sector 7 */
    start_agent();
    make_image(&img, FOTA_SLOT_B, 1, 1, 0, 30000, 2);
    br = begin_of(&img, FOTA_SLOT_B);

    /* after a reset only INFO and NOP are accepted */
    CHECK_EQ(req_seq(FOTA_CMD_BEGIN, 5, &br, sizeof(br)), FOTA_ST_ERR_SEQ);
    CHECK_EQ(req_seq(FOTA_CMD_NOP, 77, NULL, 0), FOTA_ST_OK);
    CHECK_EQ(req_seq(FOTA_CMD_INFO, 40, NULL, 0), FOTA_ST_OK);
    CHECK_EQ(resp_seq(), 40);
    /* NOP does not consume a number */
    CHECK_EQ(req_seq(FOTA_CMD_NOP, 999, NULL, 0), FOTA_ST_OK);
    CHECK_EQ(resp_seq(), 999);
    CHECK_EQ(req_seq(FOTA_CMD_BEGIN, 42, &br, sizeof(br)), FOTA_ST_ERR_SEQ); /* skips 41 */
    CHECK_EQ(req_seq(FOTA_CMD_BEGIN, 40, &br, sizeof(br)), FOTA_ST_ERR_SEQ); /* not new, not a copy */
    CHECK_EQ(flash_ram_erases(), 0);
    CHECK_EQ(req_seq(FOTA_CMD_BEGIN, 41, &br, sizeof(br)), FOTA_ST_OK);
    CHECK_EQ(flash_ram_erases(), 1); /* 30 KB into slot B: sector 7 */
    uint8_t first[AGENT_RESP_MAX];
    size_t first_len = tx_len;
    memcpy(first, tx, tx_len);
    /* retransmission: same response, not executed again (no second erase) */
    CHECK_EQ(req_seq(FOTA_CMD_BEGIN, 41, &br, sizeof(br)), FOTA_ST_OK);
    CHECK_EQ(tx_len, first_len);
    CHECK(memcmp(tx, first, first_len) == 0);
    CHECK_EQ(flash_ram_erases(), 1);
    CHECK_EQ(ag.stats.retransmits, 1);
    /* pipelining: WRITE 42 executed, then BEGIN 41 resent (seq = last - 1): still cached */
    CHECK_EQ(req_seq(FOTA_CMD_NOP, 0, NULL, 0), FOTA_ST_OK);
    seq = 41;
    CHECK_EQ(write_chunk(&img, 0, 4096), FOTA_ST_OK);
    CHECK_EQ(req_seq(FOTA_CMD_BEGIN, 41, &br, sizeof(br)), FOTA_ST_OK);
    CHECK(memcmp(tx, first, first_len) == 0);
    CHECK_EQ(flash_ram_erases(), 1);
    CHECK_EQ(ag.s.next, 4096);
    /* seq = last with a different frame is not a retransmission */
    seq = 41;
    CHECK_EQ(write_chunk(&img, 4096, 4096), FOTA_ST_ERR_SEQ);
    CHECK_EQ(ag.s.next, 4096);
    /* INFO restarts the numbering */
    CHECK_EQ(req_seq(FOTA_CMD_INFO, 7, NULL, 0), FOTA_ST_OK);
    seq = 7;
    CHECK_EQ(write_chunk(&img, 4096, 4096), FOTA_ST_OK);
    CHECK_EQ(resp_next(), 8192);
}

TEST(agent_command_and_length_errors)
{
    uint8_t junk[8] = {0};
    struct fota_begin_req br;
    setup();
    start_agent();
    CHECK_EQ(req(FOTA_CMD_INFO, NULL, 0), FOTA_ST_OK);
    CHECK_EQ(req(0x42, NULL, 0), FOTA_ST_ERR_COMMAND);
    CHECK_EQ(tx[2], 0x42 | FOTA_RESPONSE_FLAG);
    CHECK_EQ(req(FOTA_CMD_VERIFY, junk, 1), FOTA_ST_ERR_LENGTH);
    CHECK_EQ(req(FOTA_CMD_ACTIVATE, junk, 4), FOTA_ST_ERR_LENGTH);
    CHECK_EQ(req_seq(FOTA_CMD_NOP, 0, junk, 2), FOTA_ST_ERR_LENGTH);
    make_image(&img, FOTA_SLOT_B, 1, 1, 0, 30000, 2);
    br = begin_of(&img, FOTA_SLOT_B);
    CHECK_EQ(req(FOTA_CMD_BEGIN, &br, sizeof(br) - 1), FOTA_ST_ERR_LENGTH);
    CHECK_EQ(req(FOTA_CMD_WRITE, junk, 4), FOTA_ST_ERR_LENGTH); /* an offset but no data */
    CHECK_EQ(flash_ram_erases() + flash_ram_programs(), 0);
}

/* Garbage and mutated frames: no crash (the runner is built with ASan/UBSan), no flash outside the
 * target slot touched, metadata unchanged (an ACTIVATE can only pass after a VERIFY, which random
 * frames never reach). */
TEST(agent_fuzz_frames)
{
    static uint8_t f[FOTA_MAX_FRAME + 64];
    static uint8_t p[FOTA_MAX_PAYLOAD];
    struct fota_begin_req br;
    uint32_t x = 12345;
    setup();
    start_agent();
    make_image(&img, FOTA_SLOT_B, 1, 1, 0, 30000, 17);
    br = begin_of(&img, FOTA_SLOT_B);
    uint8_t *before = snapshot();
    for (int i = 0; i < 20000; i++) {
        x = x * 1103515245u + 12345u;
        uint8_t kind = (uint8_t)(x >> 24) % 4u;
        /* mostly the seq the agent expects, so that intact frames execute */
        uint16_t s = (x >> 8) % 4u ? (uint16_t)(ag.last_seq + 1u) : (uint16_t)((x >> 10) % 8u);
        size_t n;
        if (kind == 0) { /* random bytes */
            n = 12u + (x >> 12) % 200u;
            for (size_t k = 0; k < n; k++) {
                x = x * 1103515245u + 12345u;
                f[k] = (uint8_t)(x >> 16);
            }
        } else {
            /* a valid frame of a random command, then one mutation */
            uint8_t cmd = (uint8_t)((x >> 4) % 10u);
            uint16_t plen = 0;
            if (cmd == FOTA_CMD_BEGIN) {
                memcpy(p, &br, sizeof(br));
                plen = sizeof(br);
            } else if (cmd == FOTA_CMD_WRITE) {
                uint32_t off = (x >> 3) % 2u ? ((x >> 5) % 8u) * 1024u : ag.s.next;
                if (off + 1024u > img.size) {
                    off = 0;
                }
                memcpy(p, &off, 4);
                memcpy(p + 4, img.data + off, 1024);
                plen = 1028;
            }
            n = build(f, cmd, s, p, plen);
            x = x * 1103515245u + 12345u;
            if (kind == 1) {
                f[(x >> 8) % n] ^= (uint8_t)(1u << ((x >> 4) % 8u)); /* bit flip */
            } else if (kind == 2) {
                n -= 1u + (x >> 8) % (n - 1u); /* truncated */
            } /* kind 3: intact (executes when its seq happens to fit) */
        }
        memset(f + n, 0, 64);
        tx_len = agent_request(&ag, f, n < FOTA_MIN_TRANSACTION ? FOTA_MIN_TRANSACTION : n, tx, sizeof(tx));
        CHECK(tx_len >= FOTA_FRAME_OVERHEAD && tx_len <= sizeof(tx));
        CHECK(resp_crc_ok());
        agent_work(&ag);
    }
    CHECK(memcmp(before, flash_ram_mem(), FOTA_REGION_SLOT_B_BASE - FOTA_FLASH_BASE) == 0);
    CHECK(memcmp(before + (FOTA_REGION_METADATA_BASE - FOTA_FLASH_BASE), fw_meta_mem(),
                 FOTA_REGION_METADATA_SIZE) == 0);
    CHECK(ag.stats.frame_errors > 1000);
    CHECK(ag.stats.frames == 20000);
    CHECK(ag.stats.chunks > 0);      /* some WRITEs got through and were programmed */
    CHECK(ag.stats.retransmits > 0);
    CHECK(ag.stats.seq_errors > 0);
}
