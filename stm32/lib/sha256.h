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
/* sha256_update of exactly one 64-byte block, when no partial block is buffered (returns 1);
 * else nothing (returns 0). Runs from SRAM on the chip (lib_ramfunc.h): the update agent hashes
 * received data with it while the flash programs. */
int sha256_block(struct sha256_ctx *ctx, const uint8_t block[64]);

#endif /* FOTA_SHA256_H */
