/* Update agent (stm32/agent/agent.c), VERIFY: the whole-file hash against BEGIN's, and the
 * bootloader's validation. */
#include <string.h>
#include "agent_fixture.h"
#include "sha256.h"

TEST(agent_verify_hash_mismatch)
{
    struct fota_begin_req br;
    setup();
    start_agent();
    CHECK_EQ(req(FOTA_CMD_INFO, NULL, 0), FOTA_ST_OK);
    make_image(&img, FOTA_SLOT_B, 1, 1, 0, 50000, 10);
    br = begin_of(&img, FOTA_SLOT_B);
    CHECK_EQ(begin(&br), FOTA_ST_OK);
    CHECK_EQ(req(FOTA_CMD_VERIFY, NULL, 0), FOTA_ST_ERR_STATE); /* nothing written yet */
    CHECK_EQ(write_range(&img, 0, 40000, FOTA_MAX_CHUNK), FOTA_ST_OK);
    CHECK_EQ(req(FOTA_CMD_VERIFY, NULL, 0), FOTA_ST_ERR_STATE); /* not all of it */
    CHECK_EQ(write_range(&img, 40000, img.size, FOTA_MAX_CHUNK), FOTA_ST_OK);
    uint8_t *meta_before = snapshot() + (FOTA_REGION_METADATA_BASE - FOTA_FLASH_BASE);
    fw_slot_mem(FOTA_SLOT_B)[30000] &= 0xEF; /* a bit of flash decays after it was written */
    CHECK_EQ(req(FOTA_CMD_VERIFY, NULL, 0), FOTA_ST_ERR_HASH);
    CHECK_EQ(req(FOTA_CMD_ACTIVATE, NULL, 0), FOTA_ST_ERR_NOT_VERIFIED);
    struct fota_info_resp ir = info();
    CHECK_EQ(ir.ir_session_state, FOTA_SESSION_FAILED);
    CHECK_EQ(ir.ir_session_status, FOTA_ST_ERR_HASH);
    CHECK(memcmp(meta_before, fw_meta_mem(), FOTA_REGION_METADATA_SIZE) == 0);
}

/* BEGIN's hash matches the file, but the image inside is not valid for the bootloader. */
TEST(agent_verify_validates_as_the_bootloader)
{
    struct fota_begin_req br;
    struct sha256_ctx ctx;
    setup();
    start_agent();
    CHECK_EQ(req(FOTA_CMD_INFO, NULL, 0), FOTA_ST_OK);
    make_image(&img, FOTA_SLOT_B, 1, 1, 0, 50000, 11);
    img.data[1000] ^= 0x55; /* a signed byte changed: the SHA256 TLV no longer matches */
    sha256_init(&ctx);
    sha256_update(&ctx, img.data, img.size);
    sha256_final(&ctx, img.sha);
    br = begin_of(&img, FOTA_SLOT_B);
    CHECK_EQ(begin(&br), FOTA_ST_OK);
    CHECK_EQ(write_range(&img, 0, img.size, FOTA_MAX_CHUNK), FOTA_ST_OK);
    CHECK_EQ(req(FOTA_CMD_VERIFY, NULL, 0), FOTA_ST_ERR_SIGNATURE);
    CHECK_EQ(req(FOTA_CMD_ACTIVATE, NULL, 0), FOTA_ST_ERR_NOT_VERIFIED);
    CHECK_EQ(info().ir_b_state, FOTA_SLOT_STATE_INVALID);
}
