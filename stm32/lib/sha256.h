/* SHA-256 (FIPS 180-4), streaming, no allocation. */
#ifndef FOTA_SHA256_H
#define FOTA_SHA256_H

#include <stdint.h>
#include <stddef.h>

struct sha256_ctx {
    uint32_t state[8];
    uint64_t bytes;
    uint8_t block[64];
    uint32_t used;
};

void sha256_init(struct sha256_ctx *ctx);
void sha256_update(struct sha256_ctx *ctx, const void *data, size_t len);
void sha256_final(struct sha256_ctx *ctx, uint8_t digest[32]);
/* sha256_update of exactly one 64-byte block, in steps of a few rounds each, so that the work fits
 * the gaps of another job (the update agent hashes received data while the flash programs a word,
 * 16 us each). sha256_job_start returns 0 (and starts nothing) when ctx holds a partial block;
 * sha256_job_step runs up to `rounds` of the 64 rounds and returns 1 when the block is in ctx.
 * Until then ctx must not be used otherwise. Both run from SRAM on the chip (lib_ramfunc.h). */
struct sha256_job {
    uint32_t w[16]; /* the message schedule, rolling */
    uint32_t v[8];  /* working variables a..h */
    uint32_t round;
};
int sha256_job_start(const struct sha256_ctx *ctx, struct sha256_job *job, const uint8_t block[64]);
int sha256_job_step(struct sha256_ctx *ctx, struct sha256_job *job, uint32_t rounds);

#endif /* FOTA_SHA256_H */
