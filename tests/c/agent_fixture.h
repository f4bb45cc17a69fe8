/* Fixture of the update agent's host tests (fw_agent_*.c): a fake agent_port, valid image files,
 * the device (agent started for slot A over the RAM flash) and a minimal master that pipelines
 * like stm32/app/link.c (the WRITE is programmed after its response is "armed"). */
#ifndef FW_AGENT_FIXTURE_H
#define FW_AGENT_FIXTURE_H

#include <stddef.h>
#include <stdint.h>
#include "agent.h"
#include "fixture.h"
#include "flash_ram.h"
#include "fota_layout.h"

/* The port: clock (now_ms), temperature 25.12 degC, uid A0..AB, counted resets and kicks. */
extern uint32_t now_ms;
extern unsigned resets;
extern unsigned kicks;

/* An image file as the master sends it. */
struct image {
    uint8_t data[FOTA_MAX_IMAGE_SIZE];
    uint32_t size; /* file size: header, image, both TLV areas */
    uint8_t sha[32];
    struct fota_image_header header;
    uint32_t counter; /* its SEC_CNT */
};

extern struct image img;
extern struct image img2;
extern struct image running_img; /* the image in slot A, running */

/* A valid image file for `slot` (header, vectors, pseudo-random body, TLVs signed by test key 0,
 * security counter 1) of version maj.min.pat, build 7 (make_image) or `build`; body_size bytes of
 * body rounded up to 8. */
void make_image(struct image *im, uint8_t slot, uint8_t maj, uint8_t min, uint16_t pat, uint32_t body_size,
                uint32_t seed);
void make_image_build(struct image *im, uint8_t slot, uint8_t maj, uint8_t min, uint16_t pat, uint32_t build,
                      uint32_t body_size, uint32_t seed);
/* The same with security counter `counter`. */
void make_image_full(struct image *im, uint8_t slot, uint8_t maj, uint8_t min, uint16_t pat, uint32_t build,
                     uint32_t counter, uint32_t body_size, uint32_t seed);
/* After editing im->data: the header copy and the file hash again (image_rehash), and also the
 * SHA256 TLV and the signature (image_resign, so that only the edited field is wrong). */
void image_rehash(struct image *im);
void image_resign(struct image *im);
/* Put an image straight into a slot (as a previous update would have). */
void install(const struct image *im, uint8_t slot);
/* Append a record for version 1.0.0 to the journal. */
void journal_put(uint8_t active, uint8_t state, uint8_t attempts, uint8_t prev);

/* The device under test and the master's last exchange. */
extern struct agent ag;
extern uint8_t tx[AGENT_RESP_MAX];
extern size_t tx_len;
extern uint8_t rx_buf[2][FOTA_MAX_FRAME + 64];
extern unsigned rx_sel;
extern uint16_t seq;

/* Fresh flash: running image v1.0.0 in slot A, journal says A confirmed, seq 100. */
void setup(void);
/* agent_init for slot A; the flash counters start from zero (flash_ram_power_on). */
void start_agent(void);
/* agent_init for the image im running in slot (after a trial boot into it). */
void start_agent_in(uint8_t slot, const struct image *im);

/* Build a request frame into f; returns its length. */
size_t build(uint8_t *f, uint8_t cmd, uint16_t s, const void *payload, uint16_t plen);
/* Deliver n raw bytes (padded with FILL_BYTE to MIN_TRANSACTION as the master clocks them);
 * returns the response status (0xFF without a response header). */
uint8_t deliver(uint8_t *f, size_t n);
/* Send one request with an explicit seq, then let the agent program a pending WRITE; returns the
 * response status. The receive buffers alternate like link.c's. */
uint8_t req_seq(uint8_t cmd, uint16_t s, const void *payload, uint16_t plen);
/* req_seq with the next seq. */
uint8_t req(uint8_t cmd, const void *payload, uint16_t plen);
uint16_t resp_seq(void);
uint16_t resp_plen(void);
int resp_crc_ok(void);
uint32_t resp_next(void);
/* INFO's payload (zeroed when INFO failed). */
struct fota_info_resp info(void);
/* The BEGIN request for an image file. */
struct fota_begin_req begin_of(const struct image *im, uint8_t target);
uint8_t begin(const struct fota_begin_req *br);
uint8_t write_chunk(const struct image *im, uint32_t off, uint32_t len);
/* WRITE [from, to) of the image in chunks; returns the first non-OK status, or OK. */
uint8_t write_range(const struct image *im, uint32_t from, uint32_t to, uint32_t chunk);
/* A copy of the whole flash as it is now. */
uint8_t *snapshot(void);

#endif /* FW_AGENT_FIXTURE_H */
