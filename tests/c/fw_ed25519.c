/* SHA-512 against the FIPS 180-4 example vectors (NIST "SHA512.pdf" examples and the FIPS 180-2
 * appendix C messages), Ed25519 verification against RFC 8032 section 7.1 (TEST 1, 2, 3 and
 * SHA(abc); TEST 1024 and 10,000 random cases against Python's cryptography are in
 * test_fw_crypto.py) and the refusals docs/security.md decides: S >= L, small-order keys,
 * non-canonical encodings of A and R, keys off the curve. */
#include <string.h>
#include "ed25519.h"
#include "harness.h"
#include "monocypher.h"
#include "sha512.h"

static void unhex(const char *hex, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
}

/* SHA-512 of data fed in pieces of 1, 4, 13, ... bytes (the block buffering), as hex. */
static void sha512_hex(const void *data, size_t len, char out[129])
{
    struct sha512_ctx ctx;
    uint8_t d[64];
    const uint8_t *p = data;
    size_t off = 0, step = 1;
    sha512_init(&ctx);
    while (off < len) {
        size_t k = len - off < step ? len - off : step;
        sha512_update(&ctx, p + off, k);
        off += k;
        step = step * 3 + 1;
    }
    sha512_final(&ctx, d);
    for (int i = 0; i < 64; i++) {
        snprintf(out + 2 * i, 3, "%02x", d[i]);
    }
}

TEST(sha512_fips_abc)
{
    char h[129];
    sha512_hex("abc", 3, h);
    CHECK(strcmp(h, "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
                    "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f") == 0, "got %s", h);
}

TEST(sha512_fips_empty)
{
    char h[129];
    sha512_hex("", 0, h);
    CHECK(strcmp(h, "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
                    "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e") == 0, "got %s", h);
}

TEST(sha512_fips_448_bits)
{
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    char h[129];
    sha512_hex(m, strlen(m), h);
    CHECK(strcmp(h, "204a8fc6dda82f0a0ced7beb8e08a41657c16ef468b228a8279be331a703c335"
                    "96fd15c13b1b07f9aa1d3bea57789ca031ad85c7a71dd70354ec631238ca3445") == 0, "got %s", h);
}

TEST(sha512_fips_two_blocks)
{
    /* 896 bits: the length field no longer fits the first block's padding. */
    const char *m = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
                    "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    char h[129];
    sha512_hex(m, strlen(m), h);
    CHECK(strcmp(h, "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018"
                    "501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909") == 0, "got %s", h);
}

TEST(sha512_fips_million_a)
{
    static uint8_t a[1000000];
    memset(a, 'a', sizeof(a));
    char h[129];
    sha512_hex(a, sizeof(a), h);
    CHECK(strcmp(h, "e718483d0ce769644e2e42c7bc15b4638e1f98b13b2044285632a803afa973eb"
                    "de0ff244877ea60a4cb0432ce577c31beb009c5c2c49aa2e4eadb217ad8cc09b") == 0, "got %s", h);
}

struct vector {
    const char *pub, *msg, *sig;
};

/* RFC 8032 section 7.1: public key, message, signature (the secret keys are not needed here). */
static const struct vector rfc8032[] = {
    {"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
    {"3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
    {"fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"},
    {"ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
     "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
     "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704"},
};

struct loaded {
    uint8_t pub[32], sig[64], msg[64];
    size_t len;
};

static void load(const struct vector *v, struct loaded *l)
{
    unhex(v->pub, l->pub, 32);
    unhex(v->sig, l->sig, 64);
    l->len = strlen(v->msg) / 2;
    unhex(v->msg, l->msg, l->len);
}

TEST(ed25519_rfc8032_vectors_verify)
{
    for (unsigned i = 0; i < sizeof(rfc8032) / sizeof(rfc8032[0]); i++) {
        struct loaded l;
        load(&rfc8032[i], &l);
        enum ed25519_result r = ed25519_verify(l.sig, l.pub, l.len ? l.msg : NULL, l.len);
        CHECK(r == ED25519_OK, "vector %u: %s", i, ed25519_result_name(r));
    }
}

TEST(ed25519_rfc8032_vectors_tampered)
{
    /* Every vector with one bit changed in the message, in R, in S and in the key is refused. */
    for (unsigned i = 0; i < sizeof(rfc8032) / sizeof(rfc8032[0]); i++) {
        struct loaded l;
        load(&rfc8032[i], &l);
        uint8_t longer[65];
        memcpy(longer, l.msg, l.len);
        longer[l.len] = 0;
        CHECK_EQ(ed25519_verify(l.sig, l.pub, longer, l.len + 1), ED25519_BAD_SIGNATURE);
        if (l.len > 0) {
            l.msg[l.len - 1] ^= 0x01u;
            CHECK_EQ(ed25519_verify(l.sig, l.pub, l.msg, l.len), ED25519_BAD_SIGNATURE);
            l.msg[l.len - 1] ^= 0x01u;
        }
        l.sig[5] ^= 0x10u; /* R */
        CHECK(ed25519_verify(l.sig, l.pub, l.msg, l.len) != ED25519_OK, "vector %u, R changed", i);
        l.sig[5] ^= 0x10u;
        l.sig[40] ^= 0x02u; /* S, low bytes: still below L */
        CHECK_EQ(ed25519_verify(l.sig, l.pub, l.msg, l.len), ED25519_BAD_SIGNATURE);
        l.sig[40] ^= 0x02u;
        l.pub[7] ^= 0x04u;
        enum ed25519_result r = ed25519_verify(l.sig, l.pub, l.msg, l.len);
        CHECK(r == ED25519_BAD_SIGNATURE || r == ED25519_BAD_KEY, "vector %u, key changed: %s", i,
              ed25519_result_name(r));
        l.pub[7] ^= 0x04u;
        CHECK_EQ(ed25519_verify(l.sig, l.pub, l.msg, l.len), ED25519_OK);
    }
}

/* L, little-endian. */
static const char *const order_hex = "edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010";

/* The little-endian 32-byte number n plus a small k (k < 256). */
static void add_small(uint8_t n[32], unsigned k)
{
    unsigned carry = k;
    for (unsigned i = 0; i < 32u && carry != 0u; i++) {
        carry += n[i];
        n[i] = (uint8_t)carry;
        carry >>= 8;
    }
}

TEST(ed25519_s_at_or_above_order_refused)
{
    struct loaded l;
    load(&rfc8032[0], &l);
    /* S = L, L + 1, S + L (the classic malleation: same point, other encoding), 2^256 - 1. */
    unhex(order_hex, l.sig + 32, 32);
    CHECK_EQ(ed25519_verify(l.sig, l.pub, NULL, 0), ED25519_NONCANONICAL_S);
    add_small(l.sig + 32, 1);
    CHECK_EQ(ed25519_verify(l.sig, l.pub, NULL, 0), ED25519_NONCANONICAL_S);

    load(&rfc8032[0], &l);
    uint8_t order[32];
    unhex(order_hex, order, 32);
    unsigned carry = 0;
    for (unsigned i = 0; i < 32u; i++) {
        carry += (unsigned)l.sig[32 + i] + order[i];
        l.sig[32 + i] = (uint8_t)carry;
        carry >>= 8;
    }
    CHECK_EQ(carry, 0); /* S + L still fits 256 bits (S < 2^253) */
    CHECK_EQ(ed25519_verify(l.sig, l.pub, NULL, 0), ED25519_NONCANONICAL_S);
    /* Monocypher alone refuses it too, without saying why. */
    CHECK(crypto_eddsa_check_equation(l.sig, l.pub, l.sig + 32) != 0);

    memset(l.sig + 32, 0xff, 32);
    CHECK_EQ(ed25519_verify(l.sig, l.pub, NULL, 0), ED25519_NONCANONICAL_S);
}

TEST(ed25519_s_just_below_order_is_checked)
{
    /* S = L - 1 is canonical: it reaches the equation (and fails it), NONCANONICAL_S is only >= L. */
    struct loaded l;
    load(&rfc8032[0], &l);
    unhex(order_hex, l.sig + 32, 32);
    l.sig[32] -= 1u;
    CHECK_EQ(ed25519_verify(l.sig, l.pub, NULL, 0), ED25519_BAD_SIGNATURE);
}

/* The 8 points of small order, canonical encodings (generated from the order-8 point in
 * test_fw_crypto.py too, which checks this list). */
static const char *const small_order_hex[8] = {
    "0100000000000000000000000000000000000000000000000000000000000000",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
};

TEST(ed25519_small_order_keys_refused)
{
    /* With a small-order key, R = the identity and S = 0 satisfy the cofactored equation for every
     * message: Monocypher accepts that forgery, ed25519_verify refuses the key. */
    uint8_t sig[64] = {1};
    uint8_t zero_k[32] = {0};
    const uint8_t msg[3] = {'a', 'b', 'c'};
    for (unsigned i = 0; i < 8u; i++) {
        uint8_t pub[32];
        unhex(small_order_hex[i], pub, 32);
        CHECK(crypto_eddsa_check_equation(sig, pub, zero_k) == 0, "point %u decodes and forges", i);
        enum ed25519_result r = ed25519_verify(sig, pub, msg, sizeof(msg));
        CHECK(r == ED25519_BAD_KEY, "point %u: %s", i, ed25519_result_name(r));
    }
}

/* Non-canonical encodings: y >= p (y - p in 0..18), and the sign bit on x = 0 (y = 1, y = p - 1). */
static const char *const noncanonical_hex[] = {
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", /* y = p: the point y = 0 */
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", /* y = p + 1: the identity */
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", /* y = p + 1, sign bit */
    "0100000000000000000000000000000000000000000000000000000000000080", /* identity, -0 */
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", /* (0, -1), -0 */
};

TEST(ed25519_noncanonical_key_refused)
{
    uint8_t sig[64] = {1};
    uint8_t zero_k[32] = {0};
    for (unsigned i = 0; i < sizeof(noncanonical_hex) / sizeof(noncanonical_hex[0]); i++) {
        uint8_t pub[32];
        unhex(noncanonical_hex[i], pub, 32);
        if (i == 1u) {
            /* Monocypher reads y mod p: the identity in disguise forges like the plain one. */
            CHECK(crypto_eddsa_check_equation(sig, pub, zero_k) == 0);
        }
        enum ed25519_result r = ed25519_verify(sig, pub, NULL, 0);
        CHECK(r == ED25519_BAD_KEY, "encoding %u: %s", i, ed25519_result_name(r));
    }
}

TEST(ed25519_noncanonical_r_refused)
{
    struct loaded l;
    load(&rfc8032[2], &l);
    for (unsigned i = 0; i < sizeof(noncanonical_hex) / sizeof(noncanonical_hex[0]); i++) {
        unhex(noncanonical_hex[i], l.sig, 32);
        enum ed25519_result r = ed25519_verify(l.sig, l.pub, l.msg, l.len);
        CHECK(r == ED25519_BAD_SIGNATURE, "encoding %u: %s", i, ed25519_result_name(r));
    }
}

TEST(ed25519_key_off_curve_refused)
{
    /* y = 2 gives no point (x^2 = 3 / (4d + 1) is not a square mod p); the signature is valid
     * otherwise, so only the key can be at fault. */
    struct loaded l;
    load(&rfc8032[0], &l);
    memset(l.pub, 0, 32);
    l.pub[0] = 2;
    CHECK_EQ(ed25519_verify(l.sig, l.pub, NULL, 0), ED25519_BAD_KEY);
}

TEST(ed25519_null_message_with_a_length_refused)
{
    struct loaded l;
    load(&rfc8032[0], &l);
    CHECK_EQ(ed25519_verify(l.sig, l.pub, NULL, 0), ED25519_OK); /* TEST 1: the empty message */
    CHECK_EQ(ed25519_verify(l.sig, l.pub, NULL, 1), ED25519_BAD_SIGNATURE);
}

TEST(ed25519_result_names)
{
    CHECK(strcmp(ed25519_result_name(ED25519_OK), "ok") == 0);
    CHECK(strcmp(ed25519_result_name(ED25519_BAD_SIGNATURE), "bad-signature") == 0);
    CHECK(strcmp(ed25519_result_name(ED25519_NONCANONICAL_S), "noncanonical-s") == 0);
    CHECK(strcmp(ed25519_result_name(ED25519_BAD_KEY), "bad-key") == 0);
    CHECK(strcmp(ed25519_result_name((enum ed25519_result)7), "unknown") == 0);
}
