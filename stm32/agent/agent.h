/* The update agent: the device side of the SPI link protocol (docs/protocol.md), as pure C over
 * the flash-area, journal and image APIs. No register access: the hardware it needs beyond flash
 * (clock, temperature, unique ID, reset, watchdog) is behind struct agent_port, so the whole
 * protocol and update policy runs in host tests over a RAM flash (tests/c/fw_agent_*.c) and on the
 * chip behind the SPI glue (stm32/app/link.c). Model: esp-serial-flasher's port struct.
 *
 * Pipelining: agent_request() decides and builds the response to one request frame; the
 * programming of an accepted WRITE is left pending so that the glue can arm the response (and the
 * next receive buffer) first and then call agent_work(), receiving the next chunk while this one is
 * programmed. The WRITE data stays in the caller's receive buffer until agent_work() returns: the
 * glue must not reuse that buffer before then. agent_request() finishes pending work itself
 * first, so calling it in any order is safe; only the overlap is lost. */
#ifndef FOTA_AGENT_H
#define FOTA_AGENT_H

#include <stddef.h>
#include <stdint.h>
#include "fota_image.h"
#include "fota_proto.h"
#include "image.h"
#include "journal.h"
#include "sha256.h"

/* The agent's one error type towards the application (agent_init, agent_confirm,
 * agent_last_error). The lower layers' codes (enum fota_err of flash, journal and image) are
 * translated into it once, inside the agent; the link's wire status (FOTA_ST_*) is derived from it
 * there too and never reaches the application. */
enum agent_err {
    AGENT_OK = 0,
    AGENT_E_STATE = 1,        /* not in this state: confirming an image that is not on trial */
    AGENT_E_FLASH = 2,        /* a flash operation failed: controller error, time-out, read-back */
    AGENT_E_JOURNAL_FULL = 3, /* the journal lacks room for the records an update needs */
};

/* Largest response frame: INFO. */
#define AGENT_RESP_MAX (FOTA_FRAME_OVERHEAD + sizeof(struct fota_info_resp))
/* Responses kept for retransmissions (docs/protocol.md: seq = last and last - 1). */
#define AGENT_CACHE_DEPTH 2u

struct agent_port {
    /* Milliseconds since start-up (wraps). */
    uint32_t (*millis)(void);
    /* Latest die temperature in 0.01 degC (the application measures it; this only reads it). */
    int16_t (*temp_centi)(void);
    /* The 96-bit unique device ID. */
    void (*read_uid)(uint8_t uid[12]);
    /* Reset the device now (on the chip: AIRCR SYSRESETREQ, does not return). */
    void (*reset)(void);
    /* Keep the independent watchdog alive during long operations (erase, hash). May be NULL. */
    void (*kick)(void);
};

struct agent_session {
    uint8_t state;    /* FOTA_SESSION_* */
    uint8_t status;   /* FOTA_ST_* of the step that failed, else OK */
    uint8_t target;   /* SLOT_A / SLOT_B */
    uint8_t flags;    /* BEGIN_FLAG_* */
    uint32_t size;    /* whole image file: header, image, both TLV areas */
    uint32_t security_counter;  /* BEGIN's: VERIFY requires the image's SEC_CNT to equal it */
    uint32_t next;    /* next offset expected (bytes accepted so far) */
    uint8_t sha256[32];
    struct fota_image_header header;  /* BEGIN's copy of the image header */
    /* Digests of the received stream, in order (agent.c, "digest"): SHA-256 of the whole file
     * and, forked at the end of the protected TLVs, of the signed part; the CRC-unit CRC of the
     * file's words. */
    struct sha256_ctx file_sha;
    struct sha256_ctx image_sha;
    uint8_t image_sha_taken;      /* image_sha holds the signed part: [0, header + image + protected TLVs) */
    uint8_t digests_final;        /* file_digest and image_digest are set */
    uint32_t sha_off;             /* bytes hashed into file_sha */
    uint32_t crc_off;             /* bytes in rx_crc */
    uint32_t rx_crc;
    uint8_t file_digest[32];
    uint8_t image_digest[32];
};

struct agent_cached {
    uint8_t valid;
    uint16_t seq;
    uint32_t req_crc;  /* CRC field of the request frame: a retransmission is identical */
    uint16_t len;
    uint8_t frame[AGENT_RESP_MAX];
};

struct agent_stats {
    uint32_t frames;         /* requests handled, any status */
    uint32_t frame_errors;   /* ERR_FRAME + ERR_CRC */
    uint32_t seq_errors;
    uint32_t retransmits;    /* answered from the cache */
    uint32_t chunks;         /* WRITEs programmed */
    uint32_t sectors_erased;
    uint32_t sectors_skipped;  /* already erased: not erased again */
    uint32_t journal_compactions;  /* by BEGIN, to make room for an update's records */
};

/* The agent's state. The application allocates it and hands it to the functions below; only the
 * agent (and its host tests) reads the fields. */
struct agent {
    const struct agent_port *port;
    uint8_t running_slot;
    struct fota_image_header running; /* the running image's own header */
    uint32_t start_ms;
    struct journal_state journal;     /* as of the last scan */
    int journal_rc;                   /* result of that scan */
    int journal_err;                  /* fota_err of the last failed journal step (agent_last_error) */
    struct image_summary slot[2];     /* slot A, slot B, as of start-up or the last change */
    struct agent_session s;
    int have_last;                    /* a request was executed since start-up */
    uint16_t last_seq;
    struct agent_cached cache[AGENT_CACHE_DEPTH];  /* [0]: seq last, [1]: seq last - 1 */
    /* The accepted WRITE whose programming is pending (agent_work). */
    const uint8_t *pend_data;
    uint32_t pend_off;
    uint32_t pend_len;
    uint16_t pend_seq;
    uint8_t pend;
    /* The chunk being programmed, for the digest work done while the flash programs it. */
    const uint8_t *dig_data;
    uint32_t dig_off;
    uint32_t dig_len;
    struct sha256_job job;            /* the block of file_sha in progress at s.sha_off */
    uint8_t job_active;
    uint8_t reset_pending;
    uint32_t reset_at;
    struct agent_stats stats;
};

/* Start the agent for the image running in running_slot, whose information block is `running`.
 * Scans the journal and validates both slots (for INFO). Returns AGENT_OK, or AGENT_E_FLASH when
 * the journal cannot be read; the agent serves the link either way. */
enum agent_err agent_init(struct agent *ag, const struct agent_port *port, uint8_t running_slot,
                          const struct fota_image_header *running);

/* Handle one received transaction: rx holds the n bytes clocked in (the request frame and fill).
 * Writes the response frame to tx (cap >= AGENT_RESP_MAX) and returns its length. */
size_t agent_request(struct agent *ag, const uint8_t *rx, size_t n, uint8_t *tx, size_t cap);

/* 1 while an accepted WRITE awaits programming. */
int agent_pending(const struct agent *ag);
/* 1 once a RESET was accepted: the device resets RESET_DELAY_MS later (agent_poll), and the link
 * takes no further transaction meanwhile (READY stays low: app/link.c). */
int agent_reset_pending(const struct agent *ag);
/* Program the pending WRITE (if any). A failure fails the session (ERR_FLASH), reported in the
 * response to the next request, in the cached response of that WRITE and by INFO. */
void agent_work(struct agent *ag);
/* Timers: performs a requested RESET once RESET_DELAY_MS has passed. Call from the main loop. */
void agent_poll(struct agent *ag);

/* The response sent when no request was received (first transaction after reset). */
size_t agent_no_response(uint8_t *tx, size_t cap);

/* 1 when the running image is on trial (journal: TRIAL record for the running slot). */
int agent_on_trial(const struct agent *ag);
/* CONFIRM: the application's self-test passed. Appends a CONFIRMED record (RESULT_CONFIRMED).
 * Returns AGENT_OK, AGENT_E_STATE when not on trial, else the journal's failure (AGENT_E_FLASH).
 * The one writer of the confirmation: the link's CONFIRM command and the application's own
 * self-test (app/trial.c) both call it. */
enum agent_err agent_confirm(struct agent *ag);
/* The cause of the last failed journal step (AGENT_OK when none failed since agent_init): why
 * CONFIRM or ACTIVATE answered ERR_FLASH (AGENT_E_JOURNAL_FULL: ACTIVATE found no room). */
enum agent_err agent_last_error(const struct agent *ag);

#endif /* FOTA_AGENT_H */
