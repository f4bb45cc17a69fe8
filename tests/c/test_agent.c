/* Host tests of the update agent (stm32/agent/agent.c) over a RAM-backed flash.
 *
 * The real flash-area, journal, image, SHA-256 and CRC-32 modules are linked in; only the
 * flash_port backend (below) and the agent_port (clock, temperature, uid, reset) are fakes. The
 * fake flash has the chip's semantics that matter here: erased = 0xFF, programming only clears bits
 * (programming a non-erased word is reported), sector erase, and it counts every operation so that
 * tests can prove what was (not) touched.
 *
 * Usage: test_agent            run every test
 *        test_agent NAME       run one test (tests/c/test_agent.py runs each as a pytest case)
 * Output: "ok NAME" or "FAIL NAME: file:line: expression", exit status 1 on any failure. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "crc32.h"
#include "flash_area.h"
#include "fota_layout.h"
#include "journal.h"
#include "withdraw.h"
#include "sha256.h"

/* ---- tiny test framework ------------------------------------------------------------------ */

static const char *cur_test;
static int cur_failed;

#define CHECK(expr)                                                                         \
    do {                                                                                    \
        if (!(expr)) {                                                                      \
            if (!cur_failed) {                                                              \
                printf("FAIL %s: %s:%d: %s\n", cur_test, __FILE__, __LINE__, #expr);        \
            }                                                                               \
            cur_failed = 1;                                                                 \
            return;                                                                         \
        }                                                                                   \
    } while (0)

#define CHECK_EQ(a, b)                                                                      \
    do {                                                                                    \
        long long va_ = (long long)(a), vb_ = (long long)(b);                               \
        if (va_ != vb_) {                                                                   \
            if (!cur_failed) {                                                              \
                printf("FAIL %s: %s:%d: %s == %s (0x%llx != 0x%llx)\n", cur_test, __FILE__, \
                       __LINE__, #a, #b, va_, vb_);                                         \
            }                                                                               \
            cur_failed = 1;                                                                 \
            return;                                                                         \
        }                                                                                   \
    } while (0)

/* ---- RAM flash ---------------------------------------------------------------------------- */

static uint8_t flash[FOTA_FLASH_SIZE];
static const struct { uint32_t base, size; } sector_tab[FOTA_SECTOR_COUNT] = FOTA_SECTOR_TABLE;
static unsigned erase_count[FOTA_SECTOR_COUNT];
static unsigned program_count;
static unsigned program_over_data; /* words programmed where flash was not erased */
static long fail_program_at = -1;  /* program operation number that fails (FOTA_E_FLASH) */
static long fail_erase_at = -1;
static unsigned erase_total;

static int ram_read(uint32_t addr, void *dst, size_t len)
{
    if (addr < FOTA_FLASH_BASE || addr - FOTA_FLASH_BASE + len > FOTA_FLASH_SIZE) {
        return FOTA_E_ARG;
    }
    memcpy(dst, flash + (addr - FOTA_FLASH_BASE), len);
    return FOTA_OK;
}

static int ram_program_word(uint32_t addr, uint32_t value)
{
    uint32_t old;
    if (addr < FOTA_FLASH_BASE || (addr & 3u) || addr - FOTA_FLASH_BASE + 4 > FOTA_FLASH_SIZE) {
        return FOTA_E_ARG;
    }
    if (fail_program_at >= 0 && (long)program_count == fail_program_at) {
        program_count++;
        return FOTA_E_FLASH;
    }
    program_count++;
    memcpy(&old, flash + (addr - FOTA_FLASH_BASE), 4);
    if (old != 0xFFFFFFFFu) {
        program_over_data++;
    }
    old &= value; /* programming only clears bits */
    memcpy(flash + (addr - FOTA_FLASH_BASE), &old, 4);
    return FOTA_OK;
}

static int ram_program(uint32_t addr, const uint8_t *src, size_t words)
{
    for (size_t i = 0; i < words; i++, addr += 4u, src += 4) {
        uint32_t value, now;
        memcpy(&value, src, 4);
        if (ram_read(addr, &now, 4) != FOTA_OK) {
            return FOTA_E_ARG;
        }
        if (now == value) {
            continue;
        }
        if (!fa_overwrite_ok(now, value)) {
            return FOTA_E_NOT_ERASED;
        }
        int rc = ram_program_word(addr, value);
        if (rc != FOTA_OK) {
            return rc;
        }
        (void)ram_read(addr, &now, 4);
        if (now != value) {
            return FOTA_E_VERIFY;
        }
    }
    return FOTA_OK;
}

static int ram_erase_sector(uint32_t sector)
{
    if (sector >= FOTA_SECTOR_COUNT) {
        return FOTA_E_ARG;
    }
    if (fail_erase_at >= 0 && (long)erase_total == fail_erase_at) {
        erase_total++;
        return FOTA_E_FLASH;
    }
    erase_total++;
    erase_count[sector]++;
    memset(flash + (sector_tab[sector].base - FOTA_FLASH_BASE), 0xFF, sector_tab[sector].size);
    return FOTA_OK;
}

static const struct flash_port ram_port = {ram_read, ram_program, ram_erase_sector};

static uint8_t *slot_mem(uint8_t slot)
{
    return flash + (fa_slot(slot)->base - FOTA_FLASH_BASE);
}

static uint8_t *meta_mem(void)
{
    return flash + (FOTA_REGION_METADATA_BASE - FOTA_FLASH_BASE);
}

/* ---- agent port --------------------------------------------------------------------------- */

static uint32_t now_ms;
static unsigned resets;
static unsigned kicks;

static uint32_t p_millis(void) { return now_ms; }
static int16_t p_temp(void) { return 2512; }
static void p_uid(uint8_t uid[12])
{
    for (int i = 0; i < 12; i++) {
        uid[i] = (uint8_t)(0xA0 + i);
    }
}
static void p_reset(void) { resets++; }
static void p_kick(void) { kicks++; }

static const struct agent_port port = {p_millis, p_temp, p_uid, p_reset, p_kick};

/* ---- images ------------------------------------------------------------------------------- */

struct image {
    uint8_t data[FOTA_MAX_IMAGE_SIZE];
    uint32_t size; /* file size: image + trailer */
    uint8_t sha[32];
    struct fota_image_info info;
};

static struct image img;
static struct image img2;

/* A valid image file for `slot`: vector table, information block, pattern, trailer. */
static void make_image(struct image *im, uint8_t slot, uint8_t maj, uint8_t min, uint16_t pat,
                       uint32_t body_size, uint32_t seed)
{
    uint32_t base = fa_slot(slot)->base;
    struct fota_image_info ii;
    struct fota_image_trailer tr;
    struct sha256_ctx ctx;
    uint32_t x = seed * 2654435761u + 1u;

    body_size = (body_size + FOTA_IMAGE_ALIGN - 1) & ~(FOTA_IMAGE_ALIGN - 1);
    memset(im, 0, sizeof(*im));
    for (uint32_t i = 0; i < body_size; i++) {
        x = x * 1103515245u + 12345u;
        im->data[i] = (uint8_t)(x >> 16);
    }
    uint32_t sp = FOTA_SRAM_BASE + FOTA_SRAM_SIZE;
    uint32_t reset = base + 0x301u; /* Thumb */
    memcpy(im->data, &sp, 4);
    memcpy(im->data + 4, &reset, 4);
    memset(&ii, 0, sizeof(ii));
    ii.ii_magic = FOTA_IMAGE_INFO_MAGIC;
    ii.ii_format = FOTA_IMAGE_FORMAT_VERSION;
    ii.ii_slot = slot;
    ii.ii_load_addr = base;
    ii.ii_ver_major = maj;
    ii.ii_ver_minor = min;
    ii.ii_ver_patch = pat;
    ii.ii_build = 7;
    ii.ii_image_size = body_size;
    memcpy(im->data + FOTA_IMAGE_INFO_OFFSET, &ii, sizeof(ii));
    memset(&tr, 0, sizeof(tr));
    tr.it_magic = FOTA_IMAGE_TRAILER_MAGIC;
    tr.it_format = FOTA_IMAGE_FORMAT_VERSION;
    tr.it_sig_type = FOTA_SIG_NONE;
    tr.it_trailer_size = sizeof(tr);
    memset(tr.it_signature, 0xFF, sizeof(tr.it_signature));
    memset(tr.it_reserved1, 0xFF, sizeof(tr.it_reserved1));
    sha256_init(&ctx);
    sha256_update(&ctx, im->data, body_size);
    sha256_final(&ctx, tr.it_sha256);
    memcpy(im->data + body_size, &tr, sizeof(tr));
    im->size = body_size + (uint32_t)sizeof(tr);
    sha256_init(&ctx);
    sha256_update(&ctx, im->data, im->size);
    sha256_final(&ctx, im->sha);
    im->info = ii;
}

/* Put an image straight into a slot (as a previous update would have). */
static void install(const struct image *im, uint8_t slot)
{
    memcpy(slot_mem(slot), im->data, im->size);
}

static void journal_put(uint8_t active, uint8_t state, uint8_t attempts, uint8_t prev)
{
    struct journal_state st;
    struct fota_meta_record rec;
    const struct flash_area *meta = fa_get(FOTA_REGION_METADATA_ID);
    static const struct fw_version v1 = {1, 0, 0, 0};
    journal_record(&rec, active, state, attempts, FOTA_RESULT_NONE, prev, &v1);
    (void)journal_scan(meta, &st);
    if (journal_append(meta, &st, &rec, withdraw_unwanted_image) != FOTA_OK) {
        printf("setup: journal_append failed\n");
        exit(2);
    }
}

/* ---- the device under test and a minimal master ------------------------------------------- */

static struct agent ag;
static struct image running_img; /* the image in slot A, running */
static uint8_t tx[AGENT_RESP_MAX];
static size_t tx_len;
static uint8_t rx_buf[2][FOTA_MAX_FRAME + 64];
static unsigned rx_sel;
static uint16_t seq;

/* Fresh flash: running image v1.0.0 in slot A, journal says A confirmed, agent started in A. */
static void setup(void)
{
    memset(flash, 0xFF, sizeof(flash));
    memset(erase_count, 0, sizeof(erase_count));
    program_count = program_over_data = erase_total = 0;
    fail_program_at = fail_erase_at = -1;
    now_ms = 1000;
    resets = kicks = 0;
    fa_init(&ram_port);
    make_image(&running_img, FOTA_SLOT_A, 1, 0, 0, 20000, 1);
    install(&running_img, FOTA_SLOT_A);
    journal_put(FOTA_SLOT_A, FOTA_META_STATE_CONFIRMED, 0, FOTA_SLOT_A);
    seq = 100;
}

static void start_agent(void)
{
    struct fota_image_info ii;
    memcpy(&ii, running_img.data + FOTA_IMAGE_INFO_OFFSET, sizeof(ii));
    agent_init(&ag, &port, FOTA_SLOT_A, &ii);
    program_count = 0;
    memset(erase_count, 0, sizeof(erase_count));
    erase_total = 0;
}

static size_t build(uint8_t *f, uint8_t cmd, uint16_t s, const void *payload, uint16_t plen)
{
    f[0] = 0xA5;
    f[1] = 0x5A;
    f[2] = cmd;
    f[3] = 0;
    f[4] = (uint8_t)s;
    f[5] = (uint8_t)(s >> 8);
    f[6] = (uint8_t)plen;
    f[7] = (uint8_t)(plen >> 8);
    if (plen) {
        memcpy(f + 8, payload, plen);
    }
    uint32_t c = crc32_update(0, f, 8u + plen);
    memcpy(f + 8 + plen, &c, 4);
    return 12u + plen;
}

/* Deliver n raw bytes (padded with FILL_BYTE to MIN_TRANSACTION as the master clocks them). */
static uint8_t deliver(uint8_t *f, size_t n)
{
    size_t clocked = n < FOTA_MIN_TRANSACTION ? FOTA_MIN_TRANSACTION : n;
    memset(f + n, FOTA_FILL_BYTE, clocked - n);
    tx_len = agent_request(&ag, f, clocked, tx, sizeof(tx));
    return tx_len >= 12 ? tx[3] : 0xFF;
}

/* Send one request with an explicit seq; returns the response status. The receive buffers
 * alternate like link.c's, and the pending WRITE is programmed after the response is "armed". */
static uint8_t req_seq(uint8_t cmd, uint16_t s, const void *payload, uint16_t plen)
{
    uint8_t *f = rx_buf[rx_sel];
    rx_sel ^= 1u;
    size_t n = build(f, cmd, s, payload, plen);
    uint8_t st = deliver(f, n);
    agent_work(&ag);
    return st;
}

static uint8_t req(uint8_t cmd, const void *payload, uint16_t plen)
{
    return req_seq(cmd, ++seq, payload, plen);
}

static uint16_t resp_seq(void) { return (uint16_t)(tx[4] | (tx[5] << 8)); }
static uint16_t resp_plen(void) { return (uint16_t)(tx[6] | (tx[7] << 8)); }

static int resp_crc_ok(void)
{
    uint32_t c;
    uint16_t plen = resp_plen();
    memcpy(&c, tx + 8 + plen, 4);
    return tx[0] == 0xA5 && tx[1] == 0x5A && crc32_update(0, tx, 8u + plen) == c;
}

static uint32_t resp_next(void)
{
    struct fota_offset_resp o;
    memcpy(&o, tx + 8, sizeof(o));
    return o.or_next_offset;
}

static struct fota_info_resp info(void)
{
    struct fota_info_resp ir;
    memset(&ir, 0, sizeof(ir));
    if (req(FOTA_CMD_INFO, NULL, 0) == FOTA_ST_OK && resp_plen() == sizeof(ir)) {
        memcpy(&ir, tx + 8, sizeof(ir));
    }
    return ir;
}

static struct fota_begin_req begin_of(const struct image *im, uint8_t target)
{
    struct fota_begin_req br;
    memset(&br, 0, sizeof(br));
    br.br_target_slot = target;
    br.br_ver_major = im->info.ii_ver_major;
    br.br_ver_minor = im->info.ii_ver_minor;
    br.br_ver_patch = im->info.ii_ver_patch;
    br.br_build = im->info.ii_build;
    br.br_image_size = im->size;
    memcpy(br.br_sha256, im->sha, 32);
    memcpy(br.br_info, im->data + FOTA_IMAGE_INFO_OFFSET, sizeof(br.br_info));
    return br;
}

static uint8_t begin(const struct fota_begin_req *br)
{
    return req(FOTA_CMD_BEGIN, br, sizeof(*br));
}

static uint8_t write_chunk(const struct image *im, uint32_t off, uint32_t len)
{
    static uint8_t p[FOTA_MAX_PAYLOAD];
    memcpy(p, &off, 4);
    memcpy(p + 4, im->data + off, len);
    return req(FOTA_CMD_WRITE, p, (uint16_t)(len + 4));
}

/* WRITE [from, to) of the image in chunks; returns the first non-OK status, or OK. */
static uint8_t write_range(const struct image *im, uint32_t from, uint32_t to, uint32_t chunk)
{
    for (uint32_t off = from; off < to; off += chunk) {
        uint32_t n = to - off < chunk ? to - off : chunk;
        uint8_t st = write_chunk(im, off, n);
        if (st != FOTA_ST_OK) {
            return st;
        }
    }
    return FOTA_ST_OK;
}

static uint8_t flash_copy[FOTA_FLASH_SIZE];

static uint8_t *snapshot(void)
{
    memcpy(flash_copy, flash, sizeof(flash));
    return flash_copy;
}

/* ---- tests -------------------------------------------------------------------------------- */

#define TEST(name) static void name(void)

TEST(test_frame_errors_are_refused_and_change_nothing)
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

    CHECK(memcmp(before, flash, sizeof(flash)) == 0);
    CHECK_EQ(program_count, 0);
    CHECK_EQ(erase_total, 0);
    CHECK_EQ(ag.stats.frame_errors, 7);
    /* the same BEGIN, intact, with the seq the corrupted ones carried, is executed */
    CHECK_EQ(begin(&br), FOTA_ST_OK);
}

TEST(test_seq_rules)
{
    struct fota_begin_req br;
    setup();
    memset(slot_mem(FOTA_SLOT_B), 0, 64); /* so that BEGIN has to erase sector 7 */
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
    CHECK_EQ(erase_total, 0);
    CHECK_EQ(req_seq(FOTA_CMD_BEGIN, 41, &br, sizeof(br)), FOTA_ST_OK);
    CHECK_EQ(erase_total, 1); /* 30 KB into slot B: sector 7 */
    uint8_t first[AGENT_RESP_MAX];
    size_t first_len = tx_len;
    memcpy(first, tx, tx_len);
    /* retransmission: same response, not executed again (no second erase) */
    CHECK_EQ(req_seq(FOTA_CMD_BEGIN, 41, &br, sizeof(br)), FOTA_ST_OK);
    CHECK_EQ(tx_len, first_len);
    CHECK(memcmp(tx, first, first_len) == 0);
    CHECK_EQ(erase_total, 1);
    CHECK_EQ(ag.stats.retransmits, 1);
    /* pipelining: WRITE 42 executed, then BEGIN 41 resent (seq = last - 1): still cached */
    CHECK_EQ(req_seq(FOTA_CMD_NOP, 0, NULL, 0), FOTA_ST_OK);
    seq = 41;
    CHECK_EQ(write_chunk(&img, 0, 4096), FOTA_ST_OK);
    CHECK_EQ(req_seq(FOTA_CMD_BEGIN, 41, &br, sizeof(br)), FOTA_ST_OK);
    CHECK(memcmp(tx, first, first_len) == 0);
    CHECK_EQ(erase_total, 1);
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

TEST(test_command_and_length_errors)
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
    CHECK_EQ(erase_total + program_count, 0);
}

/* Every refusal of BEGIN gives its own status and touches no flash at all. */
TEST(test_begin_refusals_touch_nothing)
{
    struct fota_begin_req br;
    struct fota_image_info ii;
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
    br.br_info[0] ^= 1; /* magic */
    CHECK_EQ(begin(&br), FOTA_ST_ERR_IMAGE);
    br = begin_of(&img, FOTA_SLOT_B);
    br.br_ver_minor = 2; /* BEGIN's version differs from the information block's */
    CHECK_EQ(begin(&br), FOTA_ST_ERR_IMAGE);
    br = begin_of(&img, FOTA_SLOT_B);
    br.br_image_size += 8; /* size differs from ii_image_size + trailer */
    CHECK_EQ(begin(&br), FOTA_ST_ERR_IMAGE);

    /* linked for slot A, sent to slot B */
    make_image(&img, FOTA_SLOT_A, 1, 1, 0, 30000, 2);
    br = begin_of(&img, FOTA_SLOT_A);
    br.br_target_slot = FOTA_SLOT_B;
    CHECK_EQ(begin(&br), FOTA_ST_ERR_WRONG_SLOT);
    /* right slot number, wrong load address */
    make_image(&img, FOTA_SLOT_B, 1, 1, 0, 30000, 2);
    br = begin_of(&img, FOTA_SLOT_B);
    memcpy(&ii, br.br_info, sizeof(ii));
    ii.ii_load_addr = FOTA_REGION_SLOT_A_BASE;
    memcpy(br.br_info, &ii, sizeof(ii));
    CHECK_EQ(begin(&br), FOTA_ST_ERR_WRONG_SLOT);

    /* same version as the running one, and older ones */
    make_image(&img, FOTA_SLOT_B, 1, 0, 0, 30000, 2);
    br = begin_of(&img, FOTA_SLOT_B);
    CHECK_EQ(begin(&br), FOTA_ST_ERR_VERSION);
    make_image(&img, FOTA_SLOT_B, 0, 99, 999, 30000, 2);
    br = begin_of(&img, FOTA_SLOT_B);
    CHECK_EQ(begin(&br), FOTA_ST_ERR_VERSION);

    CHECK(memcmp(before, flash, sizeof(flash)) == 0);
    CHECK_EQ(erase_total + program_count, 0);
    struct fota_info_resp ir = info();
    CHECK_EQ(ir.ir_session_state, FOTA_SESSION_IDLE);
    CHECK_EQ(ir.ir_b_state, FOTA_SLOT_STATE_VALID);
    CHECK_EQ(ir.ir_b_minor, 9);

    /* the downgrade flag lets the older one through */
    br.br_flags = FOTA_BEGIN_FLAG_DOWNGRADE;
    CHECK_EQ(begin(&br), FOTA_ST_OK);
    CHECK_EQ(erase_count[7], 1);
}

TEST(test_begin_refused_while_on_trial)
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
    CHECK_EQ(erase_total, 0);
    /* once confirmed, the update is accepted */
    CHECK_EQ(req(FOTA_CMD_CONFIRM, NULL, 0), FOTA_ST_OK);
    CHECK(!agent_on_trial(&ag));
    CHECK_EQ(begin(&br), FOTA_ST_OK);
}

/* A whole update, pipelined as link.c runs it; the running slot, the bootloader and metadata stay
 * untouched until ACTIVATE, which appends exactly one TRIAL record. */
TEST(test_full_update_and_activate)
{
    struct fota_begin_req br;
    setup();
    memset(flash, 0x5A, FOTA_REGION_BOOTLOADER_SIZE); /* a "bootloader" to watch */
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
    CHECK_EQ(erase_count[7], 1);
    CHECK_EQ(erase_count[8], 1);
    CHECK_EQ(erase_total, 2);
    CHECK_EQ(write_range(&img, 0, img.size, FOTA_MAX_CHUNK), FOTA_ST_OK);
    CHECK_EQ(resp_next(), img.size);
    unsigned words = 0; /* fa_write skips words that are already right (0xFFFFFFFF) */
    for (uint32_t i = 0; i < img.size; i += 4) {
        uint32_t w;
        memcpy(&w, img.data + i, 4);
        words += w != 0xFFFFFFFFu;
    }
    CHECK_EQ(program_count, words);
    CHECK_EQ(program_over_data, 0);
    CHECK(memcmp(slot_mem(FOTA_SLOT_B), img.data, img.size) == 0);
    CHECK_EQ(req(FOTA_CMD_VERIFY, NULL, 0), FOTA_ST_OK);
    ir = info();
    CHECK_EQ(ir.ir_session_state, FOTA_SESSION_VERIFIED);
    CHECK_EQ(ir.ir_b_state, FOTA_SLOT_STATE_VALID);
    CHECK_EQ(ir.ir_b_minor, 2);
    CHECK_EQ(ir.ir_b_patch, 3);
    /* nothing outside slot B changed so far: bootloader, slot A, metadata */
    CHECK(memcmp(before, flash, FOTA_REGION_SLOT_B_BASE - FOTA_FLASH_BASE) == 0);
    CHECK(memcmp(before + (FOTA_REGION_METADATA_BASE - FOTA_FLASH_BASE), meta_mem(),
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
    CHECK(memcmp(before, flash, FOTA_REGION_SLOT_B_BASE - FOTA_FLASH_BASE) == 0);
}

/* Only the sectors the image touches are erased, and only when they are not erased already. */
TEST(test_erase_only_needed_sectors)
{
    struct fota_begin_req br;
    setup();
    memset(slot_mem(FOTA_SLOT_B), 0x00, FOTA_REGION_SLOT_B_SIZE); /* all of slot B dirty */
    start_agent();
    CHECK_EQ(req(FOTA_CMD_INFO, NULL, 0), FOTA_ST_OK);
    make_image(&img, FOTA_SLOT_B, 1, 1, 0, 60000, 5);
    br = begin_of(&img, FOTA_SLOT_B);
    CHECK_EQ(begin(&br), FOTA_ST_OK);
    CHECK_EQ(erase_count[7], 1);
    CHECK_EQ(erase_total, 1);
    CHECK_EQ(slot_mem(FOTA_SLOT_B)[0x20000], 0x00); /* sector 8 kept */
    CHECK_EQ(ag.stats.sectors_erased, 1);

    /* a new image (other hash) of 140 KB: sector 7 is dirty only where nothing was written yet?
       No: it is clean, so only sector 8 (dirty) is erased. */
    CHECK_EQ(req(FOTA_CMD_ABORT, NULL, 0), FOTA_ST_OK);
    make_image(&img, FOTA_SLOT_B, 1, 1, 0, 140000, 6);
    br = begin_of(&img, FOTA_SLOT_B);
    CHECK_EQ(begin(&br), FOTA_ST_OK);
    CHECK_EQ(erase_count[7], 1);
    CHECK_EQ(erase_count[8], 1);
    CHECK_EQ(erase_count[9], 0);
    CHECK_EQ(erase_count[10], 0);
    CHECK_EQ(ag.stats.sectors_skipped, 1);
    CHECK_EQ(erase_count[FOTA_REGION_METADATA_FIRST_SECTOR], 0);
    for (unsigned s = 0; s <= FOTA_REGION_SLOT_A_LAST_SECTOR; s++) {
        CHECK_EQ(erase_count[s], 0);
    }
}

TEST(test_write_rules)
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
    /* the information block must arrive whole */
    CHECK_EQ(write_chunk(&img, 0, 0x204), FOTA_ST_ERR_LENGTH);
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
    unsigned programs = program_count;
    CHECK_EQ(write_chunk(&img, 0, 1024), FOTA_ST_OK);
    CHECK_EQ(resp_next(), 1024);
    CHECK_EQ(write_chunk(&img, 512, 512), FOTA_ST_OK);
    CHECK_EQ(program_count, programs);
    /* an old range with other data is refused */
    img.data[700] ^= 1;
    CHECK_EQ(write_chunk(&img, 512, 512), FOTA_ST_ERR_RANGE);
    img.data[700] ^= 1;
    CHECK_EQ(program_count, programs);
    CHECK_EQ(ag.s.state, FOTA_SESSION_RECEIVING);
    CHECK_EQ(write_range(&img, 1024, img.size, 1000), FOTA_ST_OK);
    CHECK_EQ(req(FOTA_CMD_VERIFY, NULL, 0), FOTA_ST_OK);
    /* WRITE after VERIFY */
    CHECK_EQ(write_chunk(&img, 0, 4), FOTA_ST_ERR_STATE);
}

/* The chunk carrying the information block must match BEGIN's copy; else the session fails
 * before anything of that chunk is written. */
TEST(test_info_block_checked_before_write)
{
    struct fota_begin_req br;
    setup();
    start_agent();
    CHECK_EQ(req(FOTA_CMD_INFO, NULL, 0), FOTA_ST_OK);
    make_image(&img, FOTA_SLOT_B, 1, 1, 0, 20000, 7);
    br = begin_of(&img, FOTA_SLOT_B);
    CHECK_EQ(begin(&br), FOTA_ST_OK);
    CHECK_EQ(write_chunk(&img, 0, 256), FOTA_ST_OK);
    img.data[FOTA_IMAGE_INFO_OFFSET + 6] ^= 1; /* ii_slot */
    CHECK_EQ(write_chunk(&img, 256, 1024), FOTA_ST_ERR_IMAGE);
    CHECK_EQ(program_count, 64);
    CHECK(fa_is_erased(fa_slot(FOTA_SLOT_B), 256, 1024));
    struct fota_info_resp ir = info();
    CHECK_EQ(ir.ir_session_state, FOTA_SESSION_FAILED);
    CHECK_EQ(ir.ir_session_status, FOTA_ST_ERR_IMAGE);
    img.data[FOTA_IMAGE_INFO_OFFSET + 6] ^= 1;
    CHECK_EQ(write_chunk(&img, 256, 1024), FOTA_ST_ERR_IMAGE); /* failed: needs a new BEGIN */
    CHECK_EQ(req(FOTA_CMD_VERIFY, NULL, 0), FOTA_ST_ERR_IMAGE);
    CHECK_EQ(req(FOTA_CMD_ACTIVATE, NULL, 0), FOTA_ST_ERR_NOT_VERIFIED);
}

/* A session survives a master restart: the same BEGIN answers the next offset without erasing. */
TEST(test_resume)
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
    unsigned erases = erase_total;
    CHECK_EQ(begin(&br), FOTA_ST_OK);
    CHECK_EQ(resp_next(), 40960);
    CHECK_EQ(erase_total, erases);
    CHECK_EQ(write_range(&img, 40960, img.size, FOTA_MAX_CHUNK), FOTA_ST_OK);
    CHECK_EQ(req(FOTA_CMD_VERIFY, NULL, 0), FOTA_ST_OK);
    CHECK_EQ(program_over_data, 0);
    /* a BEGIN for another image starts over */
    make_image(&img2, FOTA_SLOT_B, 2, 0, 1, 100000, 9);
    br = begin_of(&img2, FOTA_SLOT_B);
    CHECK_EQ(begin(&br), FOTA_ST_OK);
    CHECK_EQ(resp_next(), 0);
    CHECK_EQ(erase_total, erases + 1);
}

TEST(test_verify_hash_mismatch)
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
    slot_mem(FOTA_SLOT_B)[30000] &= 0xEF; /* a bit of flash decays after it was written */
    CHECK_EQ(req(FOTA_CMD_VERIFY, NULL, 0), FOTA_ST_ERR_HASH);
    CHECK_EQ(req(FOTA_CMD_ACTIVATE, NULL, 0), FOTA_ST_ERR_NOT_VERIFIED);
    struct fota_info_resp ir = info();
    CHECK_EQ(ir.ir_session_state, FOTA_SESSION_FAILED);
    CHECK_EQ(ir.ir_session_status, FOTA_ST_ERR_HASH);
    CHECK(memcmp(meta_before, meta_mem(), FOTA_REGION_METADATA_SIZE) == 0);
}

/* BEGIN's hash matches the file, but the image inside is not valid for the bootloader. */
TEST(test_verify_validates_as_the_bootloader)
{
    struct fota_begin_req br;
    struct sha256_ctx ctx;
    setup();
    start_agent();
    CHECK_EQ(req(FOTA_CMD_INFO, NULL, 0), FOTA_ST_OK);
    make_image(&img, FOTA_SLOT_B, 1, 1, 0, 50000, 11);
    img.data[1000] ^= 0x55; /* the trailer's hash no longer matches the image */
    sha256_init(&ctx);
    sha256_update(&ctx, img.data, img.size);
    sha256_final(&ctx, img.sha);
    br = begin_of(&img, FOTA_SLOT_B);
    CHECK_EQ(begin(&br), FOTA_ST_OK);
    CHECK_EQ(write_range(&img, 0, img.size, FOTA_MAX_CHUNK), FOTA_ST_OK);
    CHECK_EQ(req(FOTA_CMD_VERIFY, NULL, 0), FOTA_ST_ERR_IMAGE);
    CHECK_EQ(req(FOTA_CMD_ACTIVATE, NULL, 0), FOTA_ST_ERR_NOT_VERIFIED);
    CHECK_EQ(info().ir_b_state, FOTA_SLOT_STATE_INVALID);
}

/* A program failure fails the session; the next request and the cached response say so. */
TEST(test_program_failure_reported)
{
    struct fota_begin_req br;
    setup();
    start_agent();
    CHECK_EQ(req(FOTA_CMD_INFO, NULL, 0), FOTA_ST_OK);
    make_image(&img, FOTA_SLOT_B, 1, 1, 0, 50000, 12);
    br = begin_of(&img, FOTA_SLOT_B);
    CHECK_EQ(begin(&br), FOTA_ST_OK);
    CHECK_EQ(write_chunk(&img, 0, 4096), FOTA_ST_OK);
    fail_program_at = (long)program_count + 100; /* inside the next chunk */
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
    fail_program_at = -1;
    CHECK_EQ(begin(&br), FOTA_ST_OK);
    CHECK_EQ(resp_next(), 0);
    CHECK_EQ(write_range(&img, 0, img.size, FOTA_MAX_CHUNK), FOTA_ST_OK);
    CHECK_EQ(req(FOTA_CMD_VERIFY, NULL, 0), FOTA_ST_OK);
}

TEST(test_erase_failure_reported)
{
    struct fota_begin_req br;
    setup();
    memset(slot_mem(FOTA_SLOT_B), 0, 4096);
    start_agent();
    CHECK_EQ(req(FOTA_CMD_INFO, NULL, 0), FOTA_ST_OK);
    make_image(&img, FOTA_SLOT_B, 1, 1, 0, 50000, 12);
    br = begin_of(&img, FOTA_SLOT_B);
    fail_erase_at = 0;
    CHECK_EQ(begin(&br), FOTA_ST_ERR_FLASH);
    CHECK_EQ(info().ir_session_state, FOTA_SESSION_FAILED);
    CHECK_EQ(write_chunk(&img, 0, 4096), FOTA_ST_ERR_FLASH);
    fail_erase_at = -1;
    CHECK_EQ(begin(&br), FOTA_ST_OK);
}

/* The image end need not be word-aligned: the last word is padded with 0xFF. */
TEST(test_unaligned_image_end_padded)
{
    struct fota_begin_req br;
    struct fota_image_info ii;
    setup();
    start_agent();
    CHECK_EQ(req(FOTA_CMD_INFO, NULL, 0), FOTA_ST_OK);
    make_image(&img, FOTA_SLOT_B, 1, 1, 0, 4096, 13);
    /* claim a size 2 bytes shorter (not a multiple of 4): the agent stores what it gets */
    memcpy(&ii, img.data + FOTA_IMAGE_INFO_OFFSET, sizeof(ii));
    ii.ii_image_size -= 2;
    memcpy(img.data + FOTA_IMAGE_INFO_OFFSET, &ii, sizeof(ii));
    img.size -= 2;
    br = begin_of(&img, FOTA_SLOT_B);
    CHECK_EQ(begin(&br), FOTA_ST_OK);
    CHECK_EQ(write_range(&img, 0, img.size - 6, 4096), FOTA_ST_OK);
    CHECK_EQ(write_chunk(&img, img.size - 6, 6), FOTA_ST_OK);
    CHECK(memcmp(slot_mem(FOTA_SLOT_B), img.data, img.size) == 0);
    CHECK_EQ(slot_mem(FOTA_SLOT_B)[img.size], 0xFF);
    CHECK_EQ(slot_mem(FOTA_SLOT_B)[img.size + 1], 0xFF);
    CHECK_EQ(program_over_data, 0);
    /* the bootloader's rules refuse the misaligned size */
    uint8_t st = req(FOTA_CMD_VERIFY, NULL, 0);
    CHECK(st == FOTA_ST_ERR_IMAGE || st == FOTA_ST_ERR_HASH);
}

TEST(test_confirm)
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
TEST(test_confirm_record_and_journal_error)
{
    struct fota_image_info ii;
    setup();
    memcpy(&ii, running_img.data + FOTA_IMAGE_INFO_OFFSET, sizeof(ii));
    journal_put(FOTA_SLOT_A, FOTA_META_STATE_TRIAL, 1, FOTA_SLOT_B);
    start_agent();
    fail_program_at = 0; /* the record's first word */
    CHECK_EQ(agent_confirm(&ag), AGENT_E_FLASH);
    CHECK_EQ(agent_last_error(&ag), AGENT_E_FLASH);
    CHECK(agent_on_trial(&ag));
    fail_program_at = -1;
    CHECK_EQ(agent_confirm(&ag), AGENT_OK);
    struct journal_state js;
    CHECK_EQ(journal_scan(fa_get(FOTA_REGION_METADATA_ID), &js), FOTA_OK);
    const struct fota_meta_record *r = &js.latest;
    CHECK_EQ(r->mr_active_slot, FOTA_SLOT_A);
    CHECK_EQ(r->mr_state, FOTA_META_STATE_CONFIRMED);
    CHECK_EQ(r->mr_attempts_left, 0);
    CHECK_EQ(r->mr_last_result, FOTA_RESULT_CONFIRMED);
    CHECK_EQ(r->mr_prev_slot, FOTA_SLOT_A);
    CHECK_EQ(r->mr_ver_major, ii.ii_ver_major);
    CHECK_EQ(r->mr_ver_minor, ii.ii_ver_minor);
    CHECK_EQ(r->mr_ver_patch, ii.ii_ver_patch);
    CHECK_EQ(r->mr_build, ii.ii_build);
    CHECK(!agent_on_trial(&ag));
}

TEST(test_info_contents)
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
    memset(meta_mem(), 0xFF, FOTA_REGION_METADATA_SIZE);
    start_agent();
    ir = info();
    CHECK_EQ(ir.ir_b_state, FOTA_SLOT_STATE_EMPTY);
    CHECK_EQ(ir.ir_meta_active, 0xFF);
    CHECK_EQ(ir.ir_meta_state, 0);
}

TEST(test_reset_after_delay)
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

TEST(test_abort)
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
    CHECK_EQ(memcmp(slot_mem(FOTA_SLOT_B), img.data, 4096), 0); /* left as it is */
}

/* The receive buffer of a WRITE is not reused before it is programmed: agent_request finishes the
 * pending WRITE itself when the glue did not call agent_work. */
TEST(test_pending_write_finished_before_next_request)
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
    CHECK(memcmp(slot_mem(FOTA_SLOT_B), img.data, 12288) == 0);
}


/* Garbage and mutated frames: no crash (the runner is built with ASan/UBSan), no flash outside the
 * target slot touched, metadata unchanged (an ACTIVATE can only pass after a VERIFY, which random
 * frames never reach). */
TEST(test_fuzz_frames)
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
    CHECK(memcmp(before, flash, FOTA_REGION_SLOT_B_BASE - FOTA_FLASH_BASE) == 0);
    CHECK(memcmp(before + (FOTA_REGION_METADATA_BASE - FOTA_FLASH_BASE), meta_mem(),
                 FOTA_REGION_METADATA_SIZE) == 0);
    CHECK(ag.stats.frame_errors > 1000);
    CHECK(ag.stats.frames == 20000);
    CHECK(ag.stats.chunks > 0);      /* some WRITEs got through and were programmed */
    CHECK(ag.stats.retransmits > 0);
    CHECK(ag.stats.seq_errors > 0);
}


/* image_validate_file (image.c): the file hash of the one validation pass that VERIFY uses. */
TEST(test_image_validate_file_hashes_the_whole_file)
{
    struct image_summary sum;
    uint8_t digest[32];
    int hashed = -1;
    setup();
    make_image(&img, FOTA_SLOT_B, 1, 1, 0, 30000, 18);
    install(&img, FOTA_SLOT_B);
    CHECK_EQ(image_validate_file(FOTA_SLOT_B, &sum, digest, &hashed), FOTA_OK);
    CHECK_EQ(hashed, 1);
    CHECK_EQ(sum.state, FOTA_SLOT_STATE_VALID);
    CHECK(memcmp(digest, img.sha, 32) == 0);
    /* a bit of the image decays: invalid (bad hash), but the pass ran and the hash differs */
    uint8_t *decay = slot_mem(FOTA_SLOT_B) + 5000;
    while (*decay == 0) {
        decay++;
    }
    *decay &= (uint8_t)(*decay - 1u); /* clears the lowest bit that is set */
    CHECK_EQ(image_validate_file(FOTA_SLOT_B, &sum, digest, &hashed), FOTA_E_IMAGE);
    CHECK_EQ(sum.fault, IMAGE_BAD_HASH);
    CHECK_EQ(hashed, 1);
    CHECK(memcmp(digest, img.sha, 32) != 0);
    /* a broken trailer stops before hashing */
    install(&img, FOTA_SLOT_B);
    slot_mem(FOTA_SLOT_B)[img.size - 128] ^= 0x01;
    CHECK_EQ(image_validate_file(FOTA_SLOT_B, &sum, digest, &hashed), FOTA_E_IMAGE);
    CHECK_EQ(sum.fault, IMAGE_BAD_TRAILER);
    CHECK_EQ(hashed, 0);
}

/* ---- runner ------------------------------------------------------------------------------- */

struct test_case {
    const char *name;
    void (*fn)(void);
};

#define T(name) {#name, name}
static const struct test_case tests[] = {
    T(test_frame_errors_are_refused_and_change_nothing),
    T(test_seq_rules),
    T(test_command_and_length_errors),
    T(test_begin_refusals_touch_nothing),
    T(test_begin_refused_while_on_trial),
    T(test_full_update_and_activate),
    T(test_erase_only_needed_sectors),
    T(test_write_rules),
    T(test_info_block_checked_before_write),
    T(test_resume),
    T(test_verify_hash_mismatch),
    T(test_verify_validates_as_the_bootloader),
    T(test_program_failure_reported),
    T(test_erase_failure_reported),
    T(test_unaligned_image_end_padded),
    T(test_confirm),
    T(test_confirm_record_and_journal_error),
    T(test_info_contents),
    T(test_reset_after_delay),
    T(test_abort),
    T(test_pending_write_finished_before_next_request),
    T(test_fuzz_frames),
    T(test_image_validate_file_hashes_the_whole_file),
};

int main(int argc, char **argv)
{
    int failed = 0, ran = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
        if (argc > 1 && strcmp(argv[1], tests[i].name) != 0) {
            continue;
        }
        cur_test = tests[i].name;
        cur_failed = 0;
        tests[i].fn();
        ran++;
        if (cur_failed) {
            failed++;
        } else {
            printf("ok %s\n", cur_test);
        }
    }
    if (ran == 0) {
        printf("FAIL no test named %s\n", argc > 1 ? argv[1] : "(any)");
        return 1;
    }
    return failed ? 1 : 0;
}
