/* The update agent: device side of the SPI link protocol. docs/protocol.md is the contract; each
 * rule it states is implemented in one place below and tested in tests/c/fw_agent_*.c.
 *
 * Safety rules kept here:
 * - nothing is written to flash for a frame that is not fully valid (marker, length, CRC, seq);
 * - every refusal of BEGIN happens before the erase, so a refused update leaves flash untouched;
 * - only the target slot is erased or programmed (never the running slot: BEGIN refuses it), and
 *   only the sectors the image needs; metadata changes only through the journal: at BEGIN (a
 *   compaction when the journal lacks room for an update, after the target slot is erased), at
 *   ACTIVATE and at CONFIRM;
 * - no TRIAL record ever needs a compaction (journal.c, step 0): BEGIN makes room for all of them,
 *   ACTIVATE refuses without it;
 * - no BEGIN while the running image is on trial: the other slot holds the image to return to. */
#include "agent.h"

#include <string.h>

#include "crc32.h"
#include "flash_area.h"
#include "lib_ramfunc.h"
#include "fota_layout.h"
#include "withdraw.h"

/* Payload structs are copied with memcpy: the wire is little-endian, and so are the Cortex-M4
 * and the hosts the tests run on. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "agent.c assumes a little-endian CPU");

#define HEADER_END ((uint32_t)sizeof(struct fota_image_header)) /* the header: file bytes [0, 32) */

/* End of the signed part (header + image + protected TLVs): where the image digest forks off. The
 * header's sizes were checked against the announced size by BEGIN. */
static uint32_t signed_end(const struct fota_image_header *h)
{
    return FOTA_IMAGE_HDR_SIZE + h->ih_img_size + h->ih_protect_tlv_size;
}

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void kick(const struct agent *ag)
{
    if (ag->port->kick != NULL) {
        ag->port->kick();
    }
}

/* Build a response frame; returns its length (0 if cap is too small, which is a caller bug). */
static size_t frame_build(uint8_t *tx, size_t cap, uint8_t cmd, uint16_t seq, uint8_t status,
                          const void *payload, uint16_t plen)
{
    size_t end = FOTA_FRAME_HEADER_SIZE + plen;
    if (cap < end + FOTA_FRAME_CRC_SIZE) {
        return 0;
    }
    put16(tx, FOTA_FRAME_MARKER);
    tx[2] = (uint8_t)(cmd | FOTA_RESPONSE_FLAG);
    tx[3] = status;
    put16(tx + 4, seq);
    put16(tx + 6, plen);
    if (plen != 0) {
        memcpy(tx + FOTA_FRAME_HEADER_SIZE, payload, plen);
    }
    put32(tx + end, crc32_update(0, tx, end));
    return end + FOTA_FRAME_CRC_SIZE;
}

size_t agent_no_response(uint8_t *tx, size_t cap)
{
    return frame_build(tx, cap, FOTA_CMD_NOP, 0, FOTA_ST_ERR_NO_RESPONSE, NULL, 0);
}

/* ---- state helpers ------------------------------------------------------------------------ */

/* The one translation of the lower layers' codes (enum fota_err of flash, journal and image) into
 * the agent's error, at the boundary towards the application. */
static enum agent_err agent_err_of(int rc)
{
    return rc == FOTA_OK ? AGENT_OK : rc == FOTA_E_FULL ? AGENT_E_JOURNAL_FULL : AGENT_E_FLASH;
}

/* The wire status of the agent's error (the link's CONFIRM). */
static uint8_t status_of(enum agent_err err)
{
    return err == AGENT_OK ? FOTA_ST_OK : err == AGENT_E_STATE ? FOTA_ST_ERR_STATE : FOTA_ST_ERR_FLASH;
}

enum agent_err agent_last_error(const struct agent *ag)
{
    return agent_err_of(ag->journal_err);
}

static void journal_refresh(struct agent *ag)
{
    ag->journal_rc = journal_scan(fa_get(FOTA_REGION_METADATA_ID), &ag->journal);
}

int agent_on_trial(const struct agent *ag)
{
    return ag->journal_rc == FOTA_OK && ag->journal.have_record &&
           ag->journal.latest.mr_state == FOTA_META_STATE_TRIAL &&
           ag->journal.latest.mr_active_slot == ag->running_slot;
}

static void slot_refresh(struct agent *ag, uint8_t slot)
{
    kick(ag);
    (void)image_validate(slot, &ag->slot[slot]);
    kick(ag);
}

enum agent_err agent_init(struct agent *ag, const struct agent_port *port, uint8_t running_slot,
                          const struct fota_image_header *running)
{
    memset(ag, 0, sizeof(*ag));
    ag->port = port;
    ag->running_slot = running_slot;
    ag->running = *running;
    ag->start_ms = port->millis();
    ag->s.state = FOTA_SESSION_IDLE;
    ag->s.status = FOTA_ST_OK;
    journal_refresh(ag);
    slot_refresh(ag, FOTA_SLOT_A);
    slot_refresh(ag, FOTA_SLOT_B);
    return ag->journal_rc == FOTA_E_NOT_FOUND ? AGENT_OK : agent_err_of(ag->journal_rc);
}

static uint32_t slot_limit(uint8_t slot)
{
    const struct flash_area *fa = fa_slot(slot);
    uint32_t limit = FOTA_MAX_IMAGE_SIZE;
    if (fa != NULL && fa->size < limit) {
        limit = fa->size;
    }
    return limit;
}

static void fail(struct agent *ag, uint8_t status)
{
    ag->s.state = FOTA_SESSION_FAILED;
    ag->s.status = status;
}

/* ---- commands ----------------------------------------------------------------------------- */

struct reply {
    uint8_t status;
    uint16_t plen;
    union {
        struct fota_offset_resp off;
        struct fota_info_resp info;
    } u;
};

static void reply_offset(const struct agent *ag, struct reply *r)
{
    r->u.off.or_next_offset = ag->s.next;
    r->u.off.or_image_size = ag->s.size;
    r->plen = sizeof(r->u.off);
}

/* The anti-rollback floor of the journal (journal.h): images below it are refused. */
static uint32_t agent_floor(const struct agent *ag)
{
    return ag->journal_rc == FOTA_OK && ag->journal.have_record ? ag->journal.latest.mr_security_counter : 0u;
}

static void cmd_info(struct agent *ag, struct reply *r)
{
    struct fota_info_resp *ir = &r->u.info;
    const struct image_summary *a = &ag->slot[FOTA_SLOT_A];
    const struct image_summary *b = &ag->slot[FOTA_SLOT_B];

    journal_refresh(ag);
    memset(ir, 0, sizeof(*ir));
    ir->ir_proto_version = FOTA_PROTOCOL_VERSION;
    ir->ir_running_slot = ag->running_slot;
    ir->ir_max_chunk = FOTA_MAX_CHUNK;
    ir->ir_run_major = ag->running.ih_ver_major;
    ir->ir_run_minor = ag->running.ih_ver_minor;
    ir->ir_run_patch = ag->running.ih_ver_revision;
    ir->ir_run_build = ag->running.ih_ver_build;
    ir->ir_a_state = a->state;
    ir->ir_a_major = a->ver.major;
    ir->ir_a_minor = a->ver.minor;
    ir->ir_a_patch = a->ver.patch;
    ir->ir_a_build = a->ver.build;
    ir->ir_b_state = b->state;
    ir->ir_b_major = b->ver.major;
    ir->ir_b_minor = b->ver.minor;
    ir->ir_b_patch = b->ver.patch;
    ir->ir_b_build = b->ver.build;
    if (ag->journal_rc == FOTA_OK && ag->journal.have_record) {
        const struct fota_meta_record *m = &ag->journal.latest;
        ir->ir_meta_active = m->mr_active_slot;
        ir->ir_meta_state = m->mr_state;
        ir->ir_meta_seq = m->mr_seq;
        ir->ir_meta_attempts = m->mr_attempts_left;
        ir->ir_last_result = m->mr_last_result;
    } else {
        ir->ir_meta_active = 0xFF;
        ir->ir_meta_state = 0;
        ir->ir_last_result = FOTA_RESULT_NONE;
    }
    ir->ir_session_state = ag->s.state;
    ir->ir_session_status = ag->s.status;
    ir->ir_session_next = ag->s.next;
    ag->port->read_uid(ir->ir_uid);
    ir->ir_temp_centi = ag->port->temp_centi();
    ir->ir_uptime_ms = ag->port->millis() - ag->start_ms;
    ir->ir_security_floor = agent_floor(ag);
    const struct image_summary *run = &ag->slot[ag->running_slot];
    ir->ir_run_counter = run->security_counter;
    memcpy(ir->ir_run_key, run->key_id, sizeof(ir->ir_run_key));
    r->plen = sizeof(*ir);
    r->status = FOTA_ST_OK;
}

/* The BEGIN checks that need no flash access, in the order docs/protocol.md lists them. */
static uint8_t begin_check(const struct agent *ag, const struct fota_begin_req *br)
{
    struct fota_image_header h;

    if (br->br_target_slot != FOTA_SLOT_A && br->br_target_slot != FOTA_SLOT_B) {
        return FOTA_ST_ERR_RANGE;
    }
    if (agent_on_trial(ag) || ag->s.state == FOTA_SESSION_ACTIVATED) {
        return FOTA_ST_ERR_STATE;
    }
    if (br->br_target_slot == ag->running_slot) {
        return FOTA_ST_ERR_TARGET_RUNNING;
    }
    if (br->br_image_size == 0 || br->br_image_size > slot_limit(br->br_target_slot)) {
        return FOTA_ST_ERR_TOO_LARGE;
    }
    /* The header as the bootloader reads it, and its sizes inside the announced file. The slot the
     * image is for is in its protected TLVs, which VERIFY checks with the signature. */
    memcpy(&h, br->br_header, sizeof(h));
    if (h.ih_magic != FOTA_IMAGE_MAGIC || h.ih_hdr_size != FOTA_IMAGE_HDR_SIZE || h.ih_load_addr != 0u ||
        h.ih_flags != 0u || h.ih_ver_major != br->br_ver_major || h.ih_ver_minor != br->br_ver_minor ||
        h.ih_ver_revision != br->br_ver_patch || h.ih_ver_build != br->br_build ||
        (h.ih_img_size % FOTA_IMAGE_BODY_ALIGN) != 0u || h.ih_img_size > br->br_image_size ||
        br->br_image_size - h.ih_img_size <
            FOTA_IMAGE_HDR_SIZE + (uint32_t)h.ih_protect_tlv_size + sizeof(struct fota_image_tlv_info)) {
        return FOTA_ST_ERR_IMAGE;
    }
    /* Anti-rollback first: no flag lifts it. The downgrade flag lifts only the version rule, so a
     * lower version is possible at a counter not below the floor, never below it. */
    if (br->br_security_counter < agent_floor(ag)) {
        return FOTA_ST_ERR_ROLLBACK;
    }
    struct fw_version offered = version_of(&h);
    struct fw_version running = version_of(&ag->running);
    if (!(br->br_flags & FOTA_BEGIN_FLAG_DOWNGRADE) && version_cmp(&offered, &running) <= 0) {
        return FOTA_ST_ERR_VERSION;
    }
    return FOTA_ST_OK;
}

/* A CONFIRMED record for the running slot and image. */
static void running_confirmed(const struct agent *ag, struct fota_meta_record *rec, uint8_t result)
{
    struct fw_version ver = version_of(&ag->running);
    journal_record(rec, ag->running_slot, FOTA_META_STATE_CONFIRMED, 0, result, ag->running_slot, &ver);
    /* The bootloader's "validate once": with this CRC it checks the running image by a CRC pass
     * instead of its SHA-256 on later boots. The running image passed the SHA-256 at agent_init
     * (and the trial boot's). A failed pass leaves 0: full validation on every boot. */
    if (ag->slot[ag->running_slot].state == FOTA_SLOT_STATE_VALID &&
        image_crc(ag->running_slot, ag->slot[ag->running_slot].image_size, &rec->mr_image_crc) != FOTA_OK) {
        rec->mr_image_crc = 0u;
    }
}

/* Erase the sectors of the slot that [0, size) touches, skipping those already erased there. */
static int erase_for(struct agent *ag, const struct flash_area *fa, uint32_t size)
{
    for (uint32_t n = fa->first_sector; n <= fa->last_sector; n++) {
        const struct fa_sector *sec = fa_sector(n);
        uint32_t off = sec->base - fa->base;
        if (off >= size) {
            break;
        }
        uint32_t need = size - off < sec->size ? size - off : sec->size;
        kick(ag);
        if (fa_is_erased(fa, off, need)) {
            ag->stats.sectors_skipped++;
            continue;
        }
        int rc = fa_erase(fa, off, sec->size);
        kick(ag);
        if (rc != FOTA_OK) {
            return FOTA_E_FLASH; /* (an erase that left bits set would fail the read-back of WRITE) */
        }
        ag->stats.sectors_erased++;
    }
    return FOTA_OK;
}

/* BEGIN, once the target slot is erased: when fewer than JOURNAL_UPDATE_RESERVE positions are
 * free, compact the journal now, with a CONFIRMED record for the running slot. The target slot's
 * first sector (with the image header) has just been erased, so the running image is the only
 * valid one: a power cut inside the compaction leaves an empty (or half-erased) journal that boots
 * it, and the update's TRIAL records later find room without compacting (journal.c, step 0). */
static int journal_make_room(struct agent *ag)
{
    const struct flash_area *meta = fa_get(FOTA_REGION_METADATA_ID);
    struct fota_meta_record rec;

    journal_refresh(ag);
    if (ag->journal_rc != FOTA_OK && ag->journal_rc != FOTA_E_NOT_FOUND) {
        ag->journal_err = ag->journal_rc;
        return ag->journal_rc;
    }
    if (journal_room(meta, &ag->journal) >= JOURNAL_UPDATE_RESERVE) {
        return FOTA_OK;
    }
    /* The outcome of the last update stays what INFO reports. */
    running_confirmed(ag, &rec, ag->journal.have_record ? ag->journal.latest.mr_last_result : FOTA_RESULT_NONE);
    kick(ag);
    int rc = journal_compact(meta, &ag->journal, &rec, withdraw_unwanted_image);
    kick(ag);
    if (rc != FOTA_OK) {
        ag->journal_err = rc;
        journal_refresh(ag);
        return rc;
    }
    ag->journal_rc = FOTA_OK;
    ag->stats.journal_compactions++;
    return FOTA_OK;
}

static void cmd_begin(struct agent *ag, const uint8_t *p, uint16_t plen, struct reply *r)
{
    struct fota_begin_req br;
    struct agent_session *s = &ag->s;

    if (plen != sizeof(br)) {
        r->status = FOTA_ST_ERR_LENGTH;
        return;
    }
    memcpy(&br, p, sizeof(br));
    r->status = begin_check(ag, &br);
    if (r->status != FOTA_ST_OK) {
        return;
    }
    if ((s->state == FOTA_SESSION_RECEIVING || s->state == FOTA_SESSION_VERIFIED) &&
        s->target == br.br_target_slot && s->size == br.br_image_size &&
        s->security_counter == br.br_security_counter && memcmp(s->sha256, br.br_sha256, sizeof(s->sha256)) == 0 &&
        memcmp(&s->header, br.br_header, sizeof(s->header)) == 0) {
        reply_offset(ag, r); /* resume: same image, nothing erased */
        return;
    }
    /* A new session. Until the erase has succeeded it counts as failed. */
    memset(s, 0, sizeof(*s));
    ag->job_active = 0;
    s->target = br.br_target_slot;
    s->flags = br.br_flags;
    s->size = br.br_image_size;
    s->security_counter = br.br_security_counter;
    memcpy(s->sha256, br.br_sha256, sizeof(s->sha256));
    memcpy(&s->header, br.br_header, sizeof(s->header));
    sha256_init(&s->file_sha);
    s->rx_crc = CRC32_WORDS_INIT;
    fail(ag, FOTA_ST_ERR_FLASH);
    if (erase_for(ag, fa_slot(s->target), s->size) != FOTA_OK) {
        r->status = FOTA_ST_ERR_FLASH;
        slot_refresh(ag, s->target);
        reply_offset(ag, r);
        return;
    }
    memset(&ag->slot[s->target], 0, sizeof(ag->slot[s->target]));
    ag->slot[s->target].state = FOTA_SLOT_STATE_EMPTY;
    ag->slot[s->target].fault = IMAGE_ERASED;
    if (journal_make_room(ag) != FOTA_OK) {
        r->status = FOTA_ST_ERR_FLASH;
        reply_offset(ag, r);
        return;
    }
    s->state = FOTA_SESSION_RECEIVING;
    s->status = FOTA_ST_OK;
    s->next = 0;
    reply_offset(ag, r);
}

/* 1 when flash at [off, off + len) of the target slot holds exactly data. */
static int flash_equals(const struct flash_area *fa, uint32_t off, const uint8_t *data, uint32_t len)
{
    uint8_t buf[64];
    while (len != 0) {
        uint32_t n = len < sizeof(buf) ? len : sizeof(buf);
        if (fa_read(fa, off, buf, n) != FOTA_OK || memcmp(buf, data, n) != 0) {
            return 0;
        }
        off += n;
        data += n;
        len -= n;
    }
    return 1;
}

static void cmd_write(struct agent *ag, const uint8_t *p, uint16_t plen, uint16_t seq, struct reply *r)
{
    struct agent_session *s = &ag->s;

    reply_offset(ag, r);
    if (plen <= sizeof(struct fota_write_req)) {
        r->status = FOTA_ST_ERR_LENGTH;
        return;
    }
    if (s->state != FOTA_SESSION_RECEIVING) {
        r->status = s->state == FOTA_SESSION_FAILED ? s->status : FOTA_ST_ERR_STATE;
        return;
    }
    uint32_t off = get32(p);
    const uint8_t *data = p + sizeof(struct fota_write_req);
    uint32_t len = (uint32_t)plen - (uint32_t)sizeof(struct fota_write_req);

    if (off > s->size || len > s->size - off) {
        r->status = FOTA_ST_ERR_RANGE;
        return;
    }
    if (off + len <= s->next) {
        /* Already written: idempotent when the data is what flash holds. */
        r->status = flash_equals(fa_slot(s->target), off, data, len) ? FOTA_ST_OK : FOTA_ST_ERR_RANGE;
        return;
    }
    if (off != s->next) {
        r->status = FOTA_ST_ERR_RANGE;
        return;
    }
    if ((len & 3u) != 0 && off + len != s->size) {
        r->status = FOTA_ST_ERR_LENGTH;
        return;
    }
    if (off < HEADER_END) {
        if (off != 0u || len < HEADER_END) {
            r->status = FOTA_ST_ERR_LENGTH; /* the header must arrive whole */
            return;
        }
        if (memcmp(data, &s->header, sizeof(s->header)) != 0) {
            fail(ag, FOTA_ST_ERR_IMAGE);
            r->status = FOTA_ST_ERR_IMAGE;
            return;
        }
    }
    ag->pend_data = data;
    ag->pend_off = off;
    ag->pend_len = len;
    ag->pend_seq = seq;
    ag->pend = 1;
    s->next = off + len;
    r->status = FOTA_ST_OK;
    reply_offset(ag, r);
}

/* Mark the cached response to seq as failed (its WRITE could not be programmed). */
static void cache_patch_status(struct agent *ag, uint16_t seq, uint8_t status)
{
    for (unsigned i = 0; i < AGENT_CACHE_DEPTH; i++) {
        struct agent_cached *c = &ag->cache[i];
        if (c->valid && c->seq == seq && c->len >= FOTA_FRAME_OVERHEAD) {
            size_t end = c->len - FOTA_FRAME_CRC_SIZE;
            c->frame[3] = status;
            put32(c->frame + end, crc32_update(0, c->frame, end));
        }
    }
}

int agent_pending(const struct agent *ag) { return ag->pend; }

int agent_reset_pending(const struct agent *ag) { return ag->reset_pending; }

/* Digest of the received stream. Every accepted WRITE's data, in order (WRITE takes only the next
 * offset; a repeated chunk is compared with flash, not hashed again), goes into file_sha (forked
 * into image_sha at the end of the signed part) and rx_crc. Most of the work runs while the flash programs the
 * same chunk: digest_idle, called by the flash port once per word started (fa_idle), hashes one
 * 64-byte block and one CRC word per call, about 1 900 cycles against the 2 688 of a word's
 * programming, from SRAM. digest_catch_up does the rest after fa_write (the fork, a partial block,
 * words that needed no programming). VERIFY then needs only a read-back at flash speed. */
LIB_RAMFUNC static void digest_idle(void *ctx)
{
    struct agent *ag = ctx;
    struct agent_session *s = &ag->s;
    uint32_t end = ag->dig_off + ag->dig_len;
    if (s->crc_off + 4u <= end) {
        const uint8_t *p = ag->dig_data + (s->crc_off - ag->dig_off);
        s->rx_crc = crc32_word_step(s->rx_crc, (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
                                                   ((uint32_t)p[3] << 24));
        s->crc_off += 4u;
    }
    /* A quarter of a block per call (about 1 500 cycles); never across the signed part's end: the
     * fork is digest_catch_up's. */
    if (!ag->job_active && s->sha_off + 64u <= end &&
        (s->image_sha_taken || s->sha_off + 64u <= signed_end(&s->header))) {
        ag->job_active = (uint8_t)sha256_job_start(&s->file_sha, &ag->job, ag->dig_data + (s->sha_off - ag->dig_off));
    } else if (ag->job_active && sha256_job_step(&s->file_sha, &ag->job, 16u)) {
        ag->job_active = 0;
        s->sha_off += 64u;
    }
}

static void digest_catch_up(struct agent *ag)
{
    struct agent_session *s = &ag->s;
    uint32_t end = ag->dig_off + ag->dig_len;
    uint32_t isz = signed_end(&s->header);
    if (ag->job_active) {
        (void)sha256_job_step(&s->file_sha, &ag->job, 64u);
        ag->job_active = 0;
        s->sha_off += 64u;
    }
    while (s->sha_off < end || (!s->image_sha_taken && s->sha_off == isz)) {
        if (!s->image_sha_taken && s->sha_off == isz) {
            s->image_sha = s->file_sha;
            s->image_sha_taken = 1;
            continue;
        }
        uint32_t n = end - s->sha_off;
        if (!s->image_sha_taken && s->sha_off < isz && isz - s->sha_off < n) {
            n = isz - s->sha_off;
        }
        sha256_update(&s->file_sha, ag->dig_data + (s->sha_off - ag->dig_off), n);
        s->sha_off += n;
    }
    while (s->crc_off < end) {
        uint8_t w[4] = {0xFF, 0xFF, 0xFF, 0xFF}; /* the image's last word, padded as programmed */
        uint32_t n = end - s->crc_off < 4u ? end - s->crc_off : 4u;
        memcpy(w, ag->dig_data + (s->crc_off - ag->dig_off), n);
        s->rx_crc = crc32_words_update(s->rx_crc, w, 1);
        s->crc_off += n;
    }
}

void agent_work(struct agent *ag)
{
    if (!ag->pend) {
        return;
    }
    const struct flash_area *fa = fa_slot(ag->s.target);
    uint32_t whole = ag->pend_len & ~3u;
    uint32_t tail = ag->pend_len & 3u;
    int rc = FOTA_OK;

    ag->pend = 0;
    ag->dig_data = ag->pend_data;
    ag->dig_off = ag->pend_off;
    ag->dig_len = ag->pend_len;
    if (whole != 0) {
        fa_idle.fn = digest_idle;
        fa_idle.ctx = ag;
        rc = fa_write(fa, ag->pend_off, ag->pend_data, whole);
        fa_idle.fn = NULL;
    }
    if (rc == FOTA_OK && tail != 0) {
        uint8_t last[4] = {0xFF, 0xFF, 0xFF, 0xFF}; /* pad the image end as erased flash */
        memcpy(last, ag->pend_data + whole, tail);
        rc = fa_write(fa, ag->pend_off + whole, last, sizeof(last));
    }
    ag->slot[ag->s.target].state = FOTA_SLOT_STATE_INVALID; /* partly written */
    ag->slot[ag->s.target].fault = IMAGE_NOT_CHECKED;
    if (rc == FOTA_OK) {
        digest_catch_up(ag);
    }
    if (rc != FOTA_OK) {
        fail(ag, FOTA_ST_ERR_FLASH);
        cache_patch_status(ag, ag->pend_seq, FOTA_ST_ERR_FLASH);
        return;
    }
    ag->stats.chunks++;
}

/* The link's status for an image the checks refused: one per kind of refusal. */
static uint8_t fault_status(uint8_t fault)
{
    switch (fault) {
    case IMAGE_WRONG_SLOT:
        return FOTA_ST_ERR_WRONG_SLOT;
    case IMAGE_UNSIGNED:
        return FOTA_ST_ERR_UNSIGNED;
    case IMAGE_UNKNOWN_KEY:
        return FOTA_ST_ERR_UNKNOWN_KEY;
    case IMAGE_BAD_HASH:
    case IMAGE_BAD_SIGNATURE:
        return FOTA_ST_ERR_SIGNATURE;
    case IMAGE_BAD_TLV_INFO:
    case IMAGE_BAD_TLV:
    case IMAGE_UNKNOWN_TLV:
    case IMAGE_MISPLACED_TLV:
    case IMAGE_DUPLICATE_TLV:
    case IMAGE_MISSING_TLV:
        return FOTA_ST_ERR_TLV;
    default:
        return FOTA_ST_ERR_IMAGE;
    }
}

/* VERIFY: the received stream's digests against BEGIN's hash, a read-back that proves flash holds
 * that stream, then the bootloader's checks and the signature.
 * - file_digest (SHA-256 of every byte accepted, in order) equal to BEGIN's hash: what arrived is
 *   the announced file.
 * - The CRC-unit CRC of the slot's [0, size) read back from flash equal to rx_crc, the CRC of the
 *   same received bytes: flash holds exactly them. Flash damage is not an adversary: a word
 *   programmed wrong, torn or disturbed changes a CRC-32 (every error burst up to 32 bits, other
 *   damage missed with probability 2^-32); the signature below is over what arrived, and flash
 *   holds what arrived. The port's program also reads back every word.
 * - image_validate_digest on the flash copy: header, TLV areas, slot, vectors, key (the cheap
 *   checks, from flash), then image_digest (the SHA-256 of the signed part, taken as it arrived)
 *   against the SHA256 TLV, and the Ed25519 signature of it under the ring's key.
 * Nothing is written before all of this passed: ACTIVATE needs VERIFIED. The bootloader's trial
 * boot checks the image from flash again, in full, before it first runs.
 * Cost: the read-back at about flash speed (CRC unit: 256 KB in about 1.6 ms) and one signature
 * check, instead of a SHA-256 pass over the slot. A mismatch of BEGIN's hash or of the CRC is
 * ERR_HASH (flash does not hold what was announced), whatever else is wrong. */
static void cmd_verify(struct agent *ag, struct reply *r)
{
    struct agent_session *s = &ag->s;
    struct image_summary *sum = &ag->slot[s->target];

    if (s->state == FOTA_SESSION_FAILED) {
        r->status = s->status;
        return;
    }
    if (!(s->state == FOTA_SESSION_VERIFIED ||
          (s->state == FOTA_SESSION_RECEIVING && s->next == s->size))) {
        r->status = FOTA_ST_ERR_STATE;
        return;
    }
    if (!s->digests_final) {
        struct sha256_ctx c = s->file_sha;
        sha256_final(&c, s->file_digest);
        memset(s->image_digest, 0, sizeof(s->image_digest));
        if (s->image_sha_taken) {
            c = s->image_sha;
            sha256_final(&c, s->image_digest);
        }
        s->digests_final = 1;
    }
    kick(ag);
    uint32_t crc = 0;
    int rc = fa_crc(fa_slot(s->target), 0, (s->size + 3u) & ~3u, &crc);
    kick(ag);
    if (rc != FOTA_OK || crc != s->rx_crc || memcmp(s->file_digest, s->sha256, sizeof(s->sha256)) != 0) {
        (void)image_inspect(s->target, sum);
        r->status = FOTA_ST_ERR_HASH;
    } else if (image_inspect(s->target, sum) != FOTA_E_IMAGE || sum->fault != IMAGE_NOT_CHECKED) {
        r->status = fault_status(sum->fault);
    } else if (!s->image_sha_taken || sum->image_size != s->size) {
        sum->fault = IMAGE_BAD_TLV; /* the TLV areas end before or after the announced file */
        r->status = FOTA_ST_ERR_TLV;
    } else if (image_validate_digest(s->target, s->image_digest, sum) != FOTA_OK) {
        r->status = fault_status(sum->fault);
    } else if (sum->security_counter < agent_floor(ag)) {
        sum->fault = IMAGE_ROLLBACK; /* a signed image, but below the floor: never installed */
        r->status = FOTA_ST_ERR_ROLLBACK;
    } else if (sum->security_counter != s->security_counter) {
        r->status = FOTA_ST_ERR_IMAGE; /* not the counter BEGIN announced */
    } else {
        kick(ag);
        s->state = FOTA_SESSION_VERIFIED;
        s->status = FOTA_ST_OK;
        r->status = FOTA_ST_OK;
        return;
    }
    kick(ag);
    fail(ag, r->status);
}

static int journal_add(struct agent *ag, struct fota_meta_record *rec)
{
    journal_refresh(ag);
    if (ag->journal_rc != FOTA_OK && ag->journal_rc != FOTA_E_NOT_FOUND) {
        ag->journal_err = ag->journal_rc;
        return ag->journal_rc;
    }
    kick(ag);
    int rc = journal_append(fa_get(FOTA_REGION_METADATA_ID), &ag->journal, rec, withdraw_unwanted_image);
    kick(ag);
    if (rc != FOTA_OK) {
        ag->journal_err = rc;
        journal_refresh(ag); /* on success journal_append has updated ag->journal itself */
    }
    return rc;
}

static void cmd_activate(struct agent *ag, struct reply *r)
{
    struct agent_session *s = &ag->s;
    struct fota_meta_record rec;

    if (s->state == FOTA_SESSION_ACTIVATED) {
        r->status = FOTA_ST_OK;
        return;
    }
    if (s->state != FOTA_SESSION_VERIFIED) {
        r->status = FOTA_ST_ERR_NOT_VERIFIED;
        return;
    }
    /* The TRIAL records of this update (this one and the bootloader's, one per trial boot) must
     * fit without a compaction (journal.c, step 0). BEGIN made room; should it be gone, the
     * session fails and a new BEGIN (which erases the target slot first) makes room again. */
    journal_refresh(ag);
    if ((ag->journal_rc == FOTA_OK || ag->journal_rc == FOTA_E_NOT_FOUND) &&
        journal_room(fa_get(FOTA_REGION_METADATA_ID), &ag->journal) < JOURNAL_TRIAL_RECORDS) {
        ag->journal_err = FOTA_E_FULL;
        fail(ag, FOTA_ST_ERR_FLASH);
        r->status = FOTA_ST_ERR_FLASH;
        return;
    }
    struct fw_version ver = version_of(&s->header);
    journal_record(&rec, s->target, FOTA_META_STATE_TRIAL, FOTA_META_TRIAL_ATTEMPTS, FOTA_RESULT_NONE,
                   ag->running_slot, &ver);
    r->status = journal_add(ag, &rec) == FOTA_OK ? FOTA_ST_OK : FOTA_ST_ERR_FLASH;
    if (r->status != FOTA_ST_OK) {
        s->status = r->status; /* stays VERIFIED: ACTIVATE may be retried */
        return;
    }
    s->state = FOTA_SESSION_ACTIVATED;
    s->status = FOTA_ST_OK;
}

enum agent_err agent_confirm(struct agent *ag)
{
    struct fota_meta_record rec;

    journal_refresh(ag);
    if (!agent_on_trial(ag)) {
        return AGENT_E_STATE;
    }
    running_confirmed(ag, &rec, FOTA_RESULT_CONFIRMED);
    /* The one place the anti-rollback floor rises: an image that confirmed itself raises it to its
     * own security counter (journal_append keeps the larger of this and the current floor). */
    const struct image_summary *run = &ag->slot[ag->running_slot];
    if (run->state == FOTA_SLOT_STATE_VALID) {
        rec.mr_security_counter = run->security_counter;
    }
    return agent_err_of(journal_add(ag, &rec));
}

static void execute(struct agent *ag, uint8_t cmd, uint16_t seq, const uint8_t *p, uint16_t plen,
                    struct reply *r)
{
    if (cmd != FOTA_CMD_BEGIN && cmd != FOTA_CMD_WRITE && cmd <= FOTA_CMD_CONFIRM && plen != 0) {
        r->status = FOTA_ST_ERR_LENGTH;
        return;
    }
    switch (cmd) {
    case FOTA_CMD_INFO:
        cmd_info(ag, r);
        break;
    case FOTA_CMD_BEGIN:
        cmd_begin(ag, p, plen, r);
        break;
    case FOTA_CMD_WRITE:
        cmd_write(ag, p, plen, seq, r);
        break;
    case FOTA_CMD_VERIFY:
        cmd_verify(ag, r);
        break;
    case FOTA_CMD_ACTIVATE:
        cmd_activate(ag, r);
        break;
    case FOTA_CMD_RESET:
        ag->reset_pending = 1;
        ag->reset_at = ag->port->millis() + FOTA_RESET_DELAY_MS;
        r->status = FOTA_ST_OK;
        break;
    case FOTA_CMD_ABORT:
        if (ag->s.state == FOTA_SESSION_ACTIVATED) {
            r->status = FOTA_ST_ERR_STATE;
        } else {
            memset(&ag->s, 0, sizeof(ag->s));
            ag->s.state = FOTA_SESSION_IDLE;
            r->status = FOTA_ST_OK;
        }
        break;
    case FOTA_CMD_CONFIRM:
        r->status = status_of(agent_confirm(ag));
        break;
    default:
        r->status = FOTA_ST_ERR_COMMAND;
        break;
    }
}

/* ---- frames ------------------------------------------------------------------------------- */

size_t agent_request(struct agent *ag, const uint8_t *rx, size_t n, uint8_t *tx, size_t cap)
{
    struct reply r;
    uint8_t cmd = FOTA_CMD_NOP;
    uint16_t seq = 0;

    agent_work(ag); /* flash must be current before anything is decided */
    ag->stats.frames++;
    if (n >= FOTA_FRAME_HEADER_SIZE) {
        cmd = rx[2];
        seq = get16(rx + 4);
    }
    if (n < FOTA_FRAME_OVERHEAD || get16(rx) != FOTA_FRAME_MARKER) {
        ag->stats.frame_errors++;
        return frame_build(tx, cap, cmd, seq, FOTA_ST_ERR_FRAME, NULL, 0);
    }
    uint16_t plen = get16(rx + 6);
    if (plen > FOTA_MAX_PAYLOAD || (size_t)plen + FOTA_FRAME_OVERHEAD > n) {
        ag->stats.frame_errors++;
        return frame_build(tx, cap, cmd, seq, FOTA_ST_ERR_FRAME, NULL, 0);
    }
    size_t end = FOTA_FRAME_HEADER_SIZE + plen;
    uint32_t crc = get32(rx + end);
    if (crc32_update(0, rx, end) != crc) {
        ag->stats.frame_errors++;
        return frame_build(tx, cap, cmd, seq, FOTA_ST_ERR_CRC, NULL, 0);
    }
    if (cmd == FOTA_CMD_NOP) {
        return frame_build(tx, cap, cmd, seq, plen == 0 ? FOTA_ST_OK : FOTA_ST_ERR_LENGTH, NULL, 0);
    }
    if (cmd != FOTA_CMD_INFO) {
        for (unsigned i = 0; i < AGENT_CACHE_DEPTH; i++) {
            const struct agent_cached *c = &ag->cache[i];
            if (c->valid && c->seq == seq && c->req_crc == crc && c->len <= cap) {
                ag->stats.retransmits++;
                memcpy(tx, c->frame, c->len);
                return c->len;
            }
        }
        if (!ag->have_last || seq != (uint16_t)(ag->last_seq + 1u)) {
            ag->stats.seq_errors++;
            return frame_build(tx, cap, cmd, seq, FOTA_ST_ERR_SEQ, NULL, 0);
        }
    }

    memset(&r, 0, sizeof(r));
    execute(ag, cmd, seq, rx + FOTA_FRAME_HEADER_SIZE, plen, &r);
    size_t len = frame_build(tx, cap, cmd, seq, r.status, &r.u, r.plen);

    ag->have_last = 1;
    ag->last_seq = seq;
    ag->cache[1] = ag->cache[0];
    ag->cache[0].valid = len != 0 && len <= sizeof(ag->cache[0].frame);
    ag->cache[0].seq = seq;
    ag->cache[0].req_crc = crc;
    ag->cache[0].len = (uint16_t)len;
    if (ag->cache[0].valid) {
        memcpy(ag->cache[0].frame, tx, len);
    }
    if (cmd == FOTA_CMD_INFO) {
        ag->cache[1].valid = 0; /* a new session of the master: older responses are stale */
    }
    return len;
}

void agent_poll(struct agent *ag)
{
    if (ag->reset_pending && (int32_t)(ag->port->millis() - ag->reset_at) >= 0) {
        ag->reset_pending = 0;
        ag->port->reset();
    }
}
