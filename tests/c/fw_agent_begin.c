/* Update agent (stm32/agent/agent.c), BEGIN: every refusal before any erase, the erase of only the
 * sectors needed, resuming a session, a failed erase. */
#include <string.h>
#include "agent_fixture.h"

/* Every refusal of BEGIN gives its own status and touches no flash at all. */
TEST(agent_begin_refusals_touch_nothing)
{
    struct fota_begin_req br;
    struct fota_image_header h;
    setup();
    install(&running_img, FOTA_SLOT_A);
    make_image(&img2, FOTA_SLOT_B, 0, 9, 0, 50000, 9); /* an old image in slot B */
    install(&img2, FOTA_SLOT_B);
    start_agent();
    CHECK_EQ(req(FOTA_CMD_INFO, NULL, 0), FOTA_ST_OK);
    uint8_t *before = snapshot();
    make_image(&img, FOTA_SLOT_B, 1, 1, 0, 30000, 2);

    br = begin_of(&img, FOTA_SLOT_B);
    br.br_target_slot = 2;
    CHECK_EQ(begin(&br), FOTA_ST_ERR_RANGE);

    make_image(&img, FOTA_SLOT_A, 1, 1, 0, 30000, 2);
    br = begin_of(&img, FOTA_SLOT_A);
    CHECK_EQ(begin(&br), FOTA_ST_ERR_TARGET_RUNNING);

    make_image(&img, FOTA_SLOT_B, 1, 1, 0, 30000, 2);
    br = begin_of(&img, FOTA_SLOT_B);
    br.br_image_size = FOTA_MAX_IMAGE_SIZE + 8;
    CHECK_EQ(begin(&br), FOTA_ST_ERR_TOO_LARGE);
    br.br_image_size = 0;
    CHECK_EQ(begin(&br), FOTA_ST_ERR_TOO_LARGE);

    br = begin_of(&img, FOTA_SLOT_B);
    br.br_header[0] ^= 1; /* magic */
    CHECK_EQ(begin(&br), FOTA_ST_ERR_IMAGE);
    br = begin_of(&img, FOTA_SLOT_B);
    br.br_ver_minor = 2; /* BEGIN's version differs from the header's */
    CHECK_EQ(begin(&br), FOTA_ST_ERR_IMAGE);
    br = begin_of(&img, FOTA_SLOT_B);
    br.br_image_size = FOTA_IMAGE_HDR_SIZE + img.header.ih_img_size + 8u; /* no room for the TLVs */
    CHECK_EQ(begin(&br), FOTA_ST_ERR_IMAGE);
    /* a header MCUboot would execute from elsewhere (load address), or encrypted (flags) */
    br = begin_of(&img, FOTA_SLOT_B);
    memcpy(&h, br.br_header, sizeof(h));
    h.ih_load_addr = FOTA_REGION_SLOT_B_BASE;
    memcpy(br.br_header, &h, sizeof(h));
    CHECK_EQ(begin(&br), FOTA_ST_ERR_IMAGE);
    br = begin_of(&img, FOTA_SLOT_B);
    memcpy(&h, br.br_header, sizeof(h));
    h.ih_flags = 4u;
    memcpy(br.br_header, &h, sizeof(h));
    CHECK_EQ(begin(&br), FOTA_ST_ERR_IMAGE);

    /* same version as the running one, and older ones */
    make_image(&img, FOTA_SLOT_B, 1, 0, 0, 30000, 2);
    br = begin_of(&img, FOTA_SLOT_B);
    CHECK_EQ(begin(&br), FOTA_ST_ERR_VERSION);
    make_image(&img, FOTA_SLOT_B, 0, 99, 999, 30000, 2);
    br = begin_of(&img, FOTA_SLOT_B);
    CHECK_EQ(begin(&br), FOTA_ST_ERR_VERSION);

    CHECK(memcmp(before, flash_ram_mem(), FOTA_FLASH_SIZE) == 0);
    CHECK_EQ(flash_ram_erases() + flash_ram_programs(), 0);
    struct fota_info_resp ir = info();
    CHECK_EQ(ir.ir_session_state, FOTA_SESSION_IDLE);
    CHECK_EQ(ir.ir_b_state, FOTA_SLOT_STATE_VALID);
    CHECK_EQ(ir.ir_b_minor, 9);

    /* the downgrade flag lets the older one through */
    br.br_flags = FOTA_BEGIN_FLAG_DOWNGRADE;
    CHECK_EQ(begin(&br), FOTA_ST_OK);
    CHECK_EQ(flash_ram_sector_erases(7), 1);
}

/* The build number takes no part in the version order (stm32/lib/version.h): a rebuild of the
 * running release is not newer, refused like an older version unless the master asks for it. */
TEST(agent_begin_refuses_a_rebuild_of_the_running_release)
{
    struct fota_begin_req br;
    setup();
    start_agent();
    CHECK_EQ(req(FOTA_CMD_INFO, NULL, 0), FOTA_ST_OK);
    make_image_build(&img, FOTA_SLOT_B, 1, 0, 0, running_img.header.ih_ver_build + 1u, 30000, 2);
    br = begin_of(&img, FOTA_SLOT_B);
    CHECK_EQ(begin(&br), FOTA_ST_ERR_VERSION);
    CHECK_EQ(flash_ram_erases() + flash_ram_programs(), 0);
    br.br_flags = FOTA_BEGIN_FLAG_DOWNGRADE;
    CHECK_EQ(begin(&br), FOTA_ST_OK);
    /* One patch level up is newer, whatever the build number. */
    make_image_build(&img, FOTA_SLOT_B, 1, 0, 1, 0, 30000, 3);
    br = begin_of(&img, FOTA_SLOT_B);
    CHECK_EQ(begin(&br), FOTA_ST_OK);
}

TEST(agent_begin_refused_while_on_trial)
{
    struct fota_begin_req br;
    setup();
    journal_put(FOTA_SLOT_A, FOTA_META_STATE_TRIAL, 2, FOTA_SLOT_B);
    start_agent();
    CHECK(agent_on_trial(&ag));
    CHECK_EQ(req(FOTA_CMD_INFO, NULL, 0), FOTA_ST_OK);
    make_image(&img, FOTA_SLOT_B, 1, 1, 0, 30000, 2);
    br = begin_of(&img, FOTA_SLOT_B);
    CHECK_EQ(begin(&br), FOTA_ST_ERR_STATE);
    CHECK_EQ(flash_ram_erases(), 0);
    /* once confirmed, the update is accepted */
    CHECK_EQ(req(FOTA_CMD_CONFIRM, NULL, 0), FOTA_ST_OK);
    CHECK(!agent_on_trial(&ag));
    CHECK_EQ(begin(&br), FOTA_ST_OK);
}

/* Only the sectors the image touches are erased, and only when they are not erased already. */
TEST(agent_erase_only_needed_sectors)
{
    struct fota_begin_req br;
    setup();
    memset(fw_slot_mem(FOTA_SLOT_B), 0x00, FOTA_REGION_SLOT_B_SIZE); /* all of slot B dirty */
    start_agent();
    CHECK_EQ(req(FOTA_CMD_INFO, NULL, 0), FOTA_ST_OK);
    make_image(&img, FOTA_SLOT_B, 1, 1, 0, 60000, 5);
    br = begin_of(&img, FOTA_SLOT_B);
    CHECK_EQ(begin(&br), FOTA_ST_OK);
    CHECK_EQ(flash_ram_sector_erases(7), 1);
    CHECK_EQ(flash_ram_erases(), 1);
    CHECK_EQ(fw_slot_mem(FOTA_SLOT_B)[0x20000], 0x00); /* sector 8 kept */
    CHECK_EQ(ag.stats.sectors_erased, 1);

    /* A new image (another hash) of 140 KB needs sectors 7 and 8: 7 is still erased (nothing was
     * written into it), so only 8, which holds old data, is erased. */
    CHECK_EQ(req(FOTA_CMD_ABORT, NULL, 0), FOTA_ST_OK);
    make_image(&img, FOTA_SLOT_B, 1, 1, 0, 140000, 6);
    br = begin_of(&img, FOTA_SLOT_B);
    CHECK_EQ(begin(&br), FOTA_ST_OK);
    CHECK_EQ(flash_ram_sector_erases(7), 1);
    CHECK_EQ(flash_ram_sector_erases(8), 1);
    CHECK_EQ(flash_ram_sector_erases(9), 0);
    CHECK_EQ(flash_ram_sector_erases(10), 0);
    CHECK_EQ(ag.stats.sectors_skipped, 1);
    CHECK_EQ(flash_ram_sector_erases(FOTA_REGION_METADATA_FIRST_SECTOR), 0);
    for (unsigned s = 0; s <= FOTA_REGION_SLOT_A_LAST_SECTOR; s++) {
        CHECK_EQ(flash_ram_sector_erases(s), 0);
    }
}

/* A session survives a master restart: the same BEGIN answers the next offset without erasing. */
TEST(agent_resume)
{
    struct fota_begin_req br;
    setup();
    start_agent();
    CHECK_EQ(req(FOTA_CMD_INFO, NULL, 0), FOTA_ST_OK);
    make_image(&img, FOTA_SLOT_B, 2, 0, 0, 100000, 8);
    br = begin_of(&img, FOTA_SLOT_B);
    CHECK_EQ(begin(&br), FOTA_ST_OK);
    CHECK_EQ(write_range(&img, 0, 40960, FOTA_MAX_CHUNK), FOTA_ST_OK);
    /* the master restarts: new numbering, INFO, same BEGIN */
    seq = 3000;
    struct fota_info_resp ir = info();
    CHECK_EQ(ir.ir_session_state, FOTA_SESSION_RECEIVING);
    CHECK_EQ(ir.ir_session_next, 40960);
    unsigned erases = flash_ram_erases();
    CHECK_EQ(begin(&br), FOTA_ST_OK);
    CHECK_EQ(resp_next(), 40960);
    CHECK_EQ(flash_ram_erases(), erases);
    CHECK_EQ(write_range(&img, 40960, img.size, FOTA_MAX_CHUNK), FOTA_ST_OK);
    CHECK_EQ(req(FOTA_CMD_VERIFY, NULL, 0), FOTA_ST_OK);
    CHECK_EQ(flash_ram_programs_over_data(), 0);
    /* a BEGIN for another image starts over */
    make_image(&img2, FOTA_SLOT_B, 2, 0, 1, 100000, 9);
    br = begin_of(&img2, FOTA_SLOT_B);
    CHECK_EQ(begin(&br), FOTA_ST_OK);
    CHECK_EQ(resp_next(), 0);
    CHECK_EQ(flash_ram_erases(), erases + 1);
}

TEST(agent_erase_failure_reported)
{
    struct fota_begin_req br;
    setup();
    memset(fw_slot_mem(FOTA_SLOT_B), 0, 4096);
    start_agent();
    CHECK_EQ(req(FOTA_CMD_INFO, NULL, 0), FOTA_ST_OK);
    make_image(&img, FOTA_SLOT_B, 1, 1, 0, 50000, 12);
    br = begin_of(&img, FOTA_SLOT_B);
    flash_ram_fail_erase_at(0);
    CHECK_EQ(begin(&br), FOTA_ST_ERR_FLASH);
    CHECK_EQ(info().ir_session_state, FOTA_SESSION_FAILED);
    CHECK_EQ(write_chunk(&img, 0, 4096), FOTA_ST_ERR_FLASH);
    flash_ram_fail_erase_at(-1);
    CHECK_EQ(begin(&br), FOTA_ST_OK);
}
