/* Fixture of the update agent's host tests (agent_fixture.h). */
#include "agent_fixture.h"
#include "mcuboot_fixture.h"
#include <stdlib.h>
#include <string.h>
#include "crc32.h"
#include "sha256.h"

/* ---- the agent's port --------------------------------------------------------------------- */

uint32_t now_ms;
unsigned resets;
unsigned kicks;

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

struct image img;
struct image img2;
struct image running_img;

void make_image_build(struct image *im, uint8_t slot, uint8_t maj, uint8_t min, uint16_t pat, uint32_t build,
                      uint32_t body_size, uint32_t seed)
{
    make_image_full(im, slot, maj, min, pat, build, 1u, body_size, seed);
}

void make_image_full(struct image *im, uint8_t slot, uint8_t maj, uint8_t min, uint16_t pat, uint32_t build,
                     uint32_t counter, uint32_t body_size, uint32_t seed)
{
    struct sha256_ctx ctx;
    memset(im, 0, sizeof(*im));
    struct signed_spec spec = {slot, {maj, min, (uint8_t)pat}, build, counter, body_size > 8u ? body_size - 8u : 0u,
                               0, seed + 1u};
    im->counter = counter;
    im->size = fw_make_signed(im->data, &spec);
    memcpy(&im->header, im->data, sizeof(im->header));
    im->header.ih_ver_revision = pat;
    memcpy(im->data, &im->header, sizeof(im->header));
    fw_resign_buf(im->data, 0);
    sha256_init(&ctx);
    sha256_update(&ctx, im->data, im->size);
    sha256_final(&ctx, im->sha);
}

void image_rehash(struct image *im)
{
    struct sha256_ctx ctx;
    memcpy(&im->header, im->data, sizeof(im->header));
    sha256_init(&ctx);
    sha256_update(&ctx, im->data, im->size);
    sha256_final(&ctx, im->sha);
}

void image_resign(struct image *im)
{
    fw_resign_buf(im->data, 0);
    image_rehash(im);
}

void make_image(struct image *im, uint8_t slot, uint8_t maj, uint8_t min, uint16_t pat, uint32_t body_size,
                uint32_t seed)
{
    make_image_build(im, slot, maj, min, pat, 7, body_size, seed);
}

void install(const struct image *im, uint8_t slot)
{
    memcpy(fw_slot_mem(slot), im->data, im->size);
}

void journal_put(uint8_t active, uint8_t state, uint8_t attempts, uint8_t prev)
{
    static const struct fw_version v1 = {1, 0, 0, 0};
    struct journal_state st;
    struct fota_meta_record rec;
    journal_record(&rec, active, state, attempts, FOTA_RESULT_NONE, prev, &v1);
    (void)journal_scan(fw_meta(), &st);
    if (journal_append(fw_meta(), &st, &rec, withdraw_unwanted_image) != FOTA_OK) {
        printf("setup: journal_append failed\n");
        exit(2);
    }
}

/* ---- the device under test and a minimal master ------------------------------------------- */

struct agent ag;
uint8_t tx[AGENT_RESP_MAX];
size_t tx_len;
uint8_t rx_buf[2][FOTA_MAX_FRAME + 64];
unsigned rx_sel;
uint16_t seq;

void setup(void)
{
    fw_flash_fresh();
    now_ms = 1000;
    resets = kicks = 0;
    make_image(&running_img, FOTA_SLOT_A, 1, 0, 0, 20000, 1);
    install(&running_img, FOTA_SLOT_A);
    journal_put(FOTA_SLOT_A, FOTA_META_STATE_CONFIRMED, 0, FOTA_SLOT_A);
    seq = 100;
}

void start_agent(void)
{
    struct fota_image_header h;
    memcpy(&h, running_img.data, sizeof(h));
    (void)agent_init(&ag, &port, FOTA_SLOT_A, &h);
    flash_ram_power_on();
}

void start_agent_in(uint8_t slot, const struct image *im)
{
    struct fota_image_header h;
    memcpy(&h, im->data, sizeof(h));
    (void)agent_init(&ag, &port, slot, &h);
    flash_ram_power_on();
}

size_t build(uint8_t *f, uint8_t cmd, uint16_t s, const void *payload, uint16_t plen)
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

uint8_t deliver(uint8_t *f, size_t n)
{
    size_t clocked = n < FOTA_MIN_TRANSACTION ? FOTA_MIN_TRANSACTION : n;
    memset(f + n, FOTA_FILL_BYTE, clocked - n);
    tx_len = agent_request(&ag, f, clocked, tx, sizeof(tx));
    return tx_len >= 12 ? tx[3] : 0xFF;
}

uint8_t req_seq(uint8_t cmd, uint16_t s, const void *payload, uint16_t plen)
{
    uint8_t *f = rx_buf[rx_sel];
    rx_sel ^= 1u;
    size_t n = build(f, cmd, s, payload, plen);
    uint8_t st = deliver(f, n);
    agent_work(&ag);
    return st;
}

uint8_t req(uint8_t cmd, const void *payload, uint16_t plen)
{
    return req_seq(cmd, ++seq, payload, plen);
}

uint16_t resp_seq(void) { return (uint16_t)(tx[4] | (tx[5] << 8)); }
uint16_t resp_plen(void) { return (uint16_t)(tx[6] | (tx[7] << 8)); }

int resp_crc_ok(void)
{
    uint32_t c;
    uint16_t plen = resp_plen();
    memcpy(&c, tx + 8 + plen, 4);
    return tx[0] == 0xA5 && tx[1] == 0x5A && crc32_update(0, tx, 8u + plen) == c;
}

uint32_t resp_next(void)
{
    struct fota_offset_resp o;
    memcpy(&o, tx + 8, sizeof(o));
    return o.or_next_offset;
}

struct fota_info_resp info(void)
{
    struct fota_info_resp ir;
    memset(&ir, 0, sizeof(ir));
    if (req(FOTA_CMD_INFO, NULL, 0) == FOTA_ST_OK && resp_plen() == sizeof(ir)) {
        memcpy(&ir, tx + 8, sizeof(ir));
    }
    return ir;
}

struct fota_begin_req begin_of(const struct image *im, uint8_t target)
{
    struct fota_begin_req br;
    memset(&br, 0, sizeof(br));
    br.br_target_slot = target;
    br.br_ver_major = im->header.ih_ver_major;
    br.br_ver_minor = im->header.ih_ver_minor;
    br.br_ver_patch = im->header.ih_ver_revision;
    br.br_build = im->header.ih_ver_build;
    br.br_image_size = im->size;
    memcpy(br.br_sha256, im->sha, 32);
    memcpy(br.br_header, im->data, sizeof(br.br_header));
    br.br_security_counter = im->counter;
    return br;
}

uint8_t begin(const struct fota_begin_req *br)
{
    return req(FOTA_CMD_BEGIN, br, sizeof(*br));
}

uint8_t write_chunk(const struct image *im, uint32_t off, uint32_t len)
{
    static uint8_t p[FOTA_MAX_PAYLOAD];
    memcpy(p, &off, 4);
    memcpy(p + 4, im->data + off, len);
    return req(FOTA_CMD_WRITE, p, (uint16_t)(len + 4));
}

uint8_t write_range(const struct image *im, uint32_t from, uint32_t to, uint32_t chunk)
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

uint8_t *snapshot(void)
{
    static uint8_t copy[FOTA_FLASH_SIZE];
    memcpy(copy, flash_ram_mem(), sizeof(copy));
    return copy;
}
