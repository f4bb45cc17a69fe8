/* Fuzz target: ed25519_verify and SHA-512 (stm32/lib) on arbitrary bytes. Input: key (32 bytes),
 * signature (64), message (the rest); shorter inputs are padded with zeros. Invariants: the result
 * is one of the four, the same on a second call, and a signature the verifier accepts stays
 * accepted only for its own message (one more byte refuses it). */
#include <string.h>
#include "ed25519.h"
#include "fuzz.h"
#include "sha512.h"

void fuzz_target_init(void) {}

void fuzz_target_seeds(void (*add)(const uint8_t *data, size_t len))
{
    /* RFC 8032 7.1 TEST 2: key, signature, message 0x72. */
    static const uint8_t test2[97] = {
        0x3d, 0x40, 0x17, 0xc3, 0xe8, 0x43, 0x89, 0x5a, 0x92, 0xb7, 0x0a, 0xa7, 0x4d, 0x1b, 0x7e, 0xbc,
        0x9c, 0x98, 0x2c, 0xcf, 0x2e, 0xc4, 0x96, 0x8c, 0xc0, 0xcd, 0x55, 0xf1, 0x2a, 0xf4, 0x66, 0x0c,
        0x92, 0xa0, 0x09, 0xa9, 0xf0, 0xd4, 0xca, 0xb8, 0x72, 0x0e, 0x82, 0x0b, 0x5f, 0x64, 0x25, 0x40,
        0xa2, 0xb2, 0x7b, 0x54, 0x16, 0x50, 0x3f, 0x8f, 0xb3, 0x76, 0x22, 0x23, 0xeb, 0xdb, 0x69, 0xda,
        0x08, 0x5a, 0xc1, 0xe4, 0x3e, 0x15, 0x99, 0x6e, 0x45, 0x8f, 0x36, 0x13, 0xd0, 0xf1, 0x1d, 0x8c,
        0x38, 0x7b, 0x2e, 0xae, 0xb4, 0x30, 0x2a, 0xee, 0xb0, 0x0d, 0x29, 0x16, 0x12, 0xbb, 0x0c, 0x00,
        0x72,
    };
    add(test2, sizeof(test2));
}

void fuzz_target(const uint8_t *data, size_t len)
{
    uint8_t head[96] = {0};
    memcpy(head, data, len < 96u ? len : 96u);
    const uint8_t *msg = len > 96u ? data + 96 : NULL;
    size_t mlen = len > 96u ? len - 96u : 0u;
    enum ed25519_result r = ed25519_verify(head + 32, head, msg, mlen);
    if ((unsigned)r > (unsigned)ED25519_BAD_KEY) {
        fuzz_fail("ed25519_verify returned %u", (unsigned)r);
    }
    if (ed25519_verify(head + 32, head, msg, mlen) != r) {
        fuzz_fail("ed25519_verify gave two answers");
    }
    if (r == ED25519_OK) {
        static uint8_t longer[FUZZ_MAX_INPUT + 1];
        if (mlen > 0u) {
            memcpy(longer, msg, mlen);
        }
        longer[mlen] = 0;
        if (ed25519_verify(head + 32, head, longer, mlen + 1u) == ED25519_OK) {
            fuzz_fail("a signature verified for two messages");
        }
    }
    struct sha512_ctx ctx;
    uint8_t d1[64], d2[64];
    sha512_init(&ctx);
    sha512_update(&ctx, data, len);
    sha512_final(&ctx, d1);
    sha512_init(&ctx);
    sha512_update(&ctx, data, len / 2u);
    sha512_update(&ctx, data + len / 2u, len - len / 2u);
    sha512_final(&ctx, d2);
    if (memcmp(d1, d2, 64) != 0) {
        fuzz_fail("SHA-512 differs when the input comes in two pieces");
    }
}
