/* SHA-512 (FIPS 180-4), streaming, no allocation: the hash of Ed25519 (RFC 8032), ed25519.h. */
#ifndef FOTA_SHA512_H
#define FOTA_SHA512_H

#include <stddef.h>
#include <stdint.h>

struct sha512_ctx {
    uint64_t state[8];
    uint64_t bytes; /* message length so far; 2^64 bytes is far beyond any flash */
    uint8_t block[128];
    uint32_t used;
};

void sha512_init(struct sha512_ctx *ctx);
void sha512_update(struct sha512_ctx *ctx, const void *data, size_t len);
/* Writes the digest and leaves ctx ready for nothing but sha512_init. */
void sha512_final(struct sha512_ctx *ctx, uint8_t digest[64]);

#endif /* FOTA_SHA512_H */
