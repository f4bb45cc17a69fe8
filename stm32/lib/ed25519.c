/* Ed25519 verification (RFC 8032 5.1.7) over Monocypher's low-level EdDSA API with SHA-512:
 *   1. S < L, else ED25519_NONCANONICAL_S;
 *   2. A (the public key): a canonical encoding of a point of the curve that is not of small order,
 *      else ED25519_BAD_KEY; R: a canonical encoding, else ED25519_BAD_SIGNATURE;
 *   3. k = SHA-512(R || A || M) mod L;
 *   4. the cofactored equation [8][S]B = [8]R + [8][k]A (crypto_eddsa_check_equation).
 * Monocypher itself accepts non-canonical encodings of A and R and small-order keys; steps 1-2 make
 * this verifier strict (docs/security.md, "Signature verification"). */
#include "ed25519.h"
#include "monocypher.h"
#include "sha512.h"

/* L = 2^252 + 27742317777372353535851937790883648493, little-endian. */
static const uint8_t group_order[32] = {
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
};

/* The canonical encodings of the 8 points of small order (the torsion subgroup of order 8): with one
 * of them as the key, [8][k]A vanishes and a signature (R, S) = (small-order point, 0) verifies for
 * every message. Their non-canonical encodings are refused by is_canonical_point already. */
static const uint8_t small_order[8][32] = {
    /* order 1: (0, 1) */
    {0x01},
    /* order 2: (0, -1) */
    {0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
    /* order 4: (+-sqrt(-1), 0) */
    {0x00},
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
     0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80},
    /* order 8 */
    {0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
     0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05},
    {0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
     0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x85},
    {0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f,
     0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a},
    {0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f,
     0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0xfa},
};

/* a < b, both 32-byte little-endian numbers. */
static int less_than(const uint8_t a[32], const uint8_t b[32])
{
    for (int i = 31; i >= 0; i--) {
        if (a[i] != b[i]) {
            return a[i] < b[i];
        }
    }
    return 0;
}

static int equal32(const uint8_t a[32], const uint8_t b[32])
{
    for (unsigned i = 0; i < 32u; i++) {
        if (a[i] != b[i]) {
            return 0;
        }
    }
    return 1;
}

/* RFC 8032 5.1.3 rules Monocypher skips: y < p = 2^255 - 19, and no sign bit on x = 0 (the points
 * with y = 1 or y = p - 1). Whether y gives a point of the curve at all is Monocypher's check. */
static int is_canonical_point(const uint8_t s[32])
{
    uint8_t y_top = s[31] & 0x7fu;
    int all_ff = y_top == 0x7fu;
    for (unsigned i = 1; i < 31u && all_ff; i++) {
        all_ff = s[i] == 0xffu;
    }
    if (all_ff && s[0] >= 0xedu) {
        return 0; /* y >= p */
    }
    if ((s[31] & 0x80u) != 0u && y_top == 0u) {
        /* y = 1 with the sign bit set: bytes 01 00 .. 00 80 */
        int rest_zero = 1;
        for (unsigned i = 1; i < 31u; i++) {
            rest_zero &= s[i] == 0u;
        }
        if (rest_zero && s[0] == 0x01u) {
            return 0;
        }
    }
    if ((s[31] & 0x80u) != 0u && all_ff && s[0] == 0xecu) {
        return 0; /* y = p - 1 with the sign bit set */
    }
    return 1;
}

static int is_small_order(const uint8_t pub[32])
{
    for (unsigned i = 0; i < 8u; i++) {
        if (equal32(pub, small_order[i])) {
            return 1;
        }
    }
    return 0;
}

/* Whether pub decodes to a curve point: the equation with R = identity, S = 0 and k = 0 holds for
 * every point A, and Monocypher refuses it only when A (or R) does not decode. */
static int decodes(const uint8_t pub[32])
{
    static const uint8_t identity_zero[64] = {1};
    static const uint8_t zero[32] = {0};
    return crypto_eddsa_check_equation(identity_zero, pub, zero) == 0;
}

enum ed25519_result ed25519_verify(const uint8_t sig[64], const uint8_t pub[32], const uint8_t *msg, size_t len)
{
    if (msg == NULL && len > 0u) {
        return ED25519_BAD_SIGNATURE; /* no message to check: refused, never read */
    }
    if (!less_than(sig + 32, group_order)) {
        return ED25519_NONCANONICAL_S;
    }
    if (!is_canonical_point(pub) || is_small_order(pub)) {
        return ED25519_BAD_KEY;
    }
    if (!is_canonical_point(sig)) {
        return ED25519_BAD_SIGNATURE;
    }
    struct sha512_ctx ctx;
    uint8_t hram[64];
    uint8_t k[32];
    sha512_init(&ctx);
    sha512_update(&ctx, sig, 32);
    sha512_update(&ctx, pub, 32);
    if (len > 0u) {
        sha512_update(&ctx, msg, len);
    }
    sha512_final(&ctx, hram);
    crypto_eddsa_reduce(k, hram);
    if (crypto_eddsa_check_equation(sig, pub, k) == 0) {
        return ED25519_OK;
    }
    /* Failed: the key, or the signature? Only on this path, so a valid signature costs one check. */
    return decodes(pub) ? ED25519_BAD_SIGNATURE : ED25519_BAD_KEY;
}

const char *ed25519_result_name(enum ed25519_result r)
{
    switch (r) {
    case ED25519_OK:
        return "ok";
    case ED25519_BAD_SIGNATURE:
        return "bad-signature";
    case ED25519_NONCANONICAL_S:
        return "noncanonical-s";
    case ED25519_BAD_KEY:
        return "bad-key";
    }
    return "unknown";
}
