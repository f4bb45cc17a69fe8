/* SHA-256 against the FIPS 180-2 example vectors (NIST "SHA256.pdf" examples and FIPS 180-2
 * appendix B), and CRC-32 against its published check value. Random data against Python's hashlib
 * and zlib is in test_fw_modules.py. */
#include <string.h>
#include "crc32.h"
#include "fixture.h"
#include "sha256.h"

static void sha_hex(const void *data, size_t len, char out[65])
{
    struct sha256_ctx ctx;
    uint8_t d[32];
    sha256_init(&ctx);
    sha256_update(&ctx, data, len);
    sha256_final(&ctx, d);
    for (int i = 0; i < 32; i++) {
        snprintf(out + 2 * i, 3, "%02x", d[i]);
    }
}

TEST(sha256_fips_abc)
{
    char h[65];
    sha_hex("abc", 3, h);
    CHECK(strcmp(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0, "got %s", h);
}

TEST(sha256_fips_empty)
{
    char h[65];
    sha_hex("", 0, h);
    CHECK(strcmp(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0, "got %s", h);
}

TEST(sha256_fips_two_blocks)
{
    /* 448 bits: the padding needs a second block. */
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    char h[65];
    sha_hex(m, strlen(m), h);
    CHECK(strcmp(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1") == 0, "got %s", h);
}

TEST(sha256_fips_million_a)
{
    static uint8_t a[1000000];
    memset(a, 'a', sizeof(a));
    char h[65];
    sha_hex(a, sizeof(a), h);
    CHECK(strcmp(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0, "got %s", h);
}

TEST(sha256_streaming_equals_one_shot)
{
    uint8_t data[300];
    for (size_t i = 0; i < sizeof(data); i++) {
        data[i] = (uint8_t)(i * 31u + 7u);
    }
    char whole[65];
    sha_hex(data, sizeof(data), whole);
    for (size_t split = 0; split <= sizeof(data); split += 13) {
        struct sha256_ctx ctx;
        uint8_t d[32];
        char h[65];
        sha256_init(&ctx);
        sha256_update(&ctx, data, split);
        sha256_update(&ctx, data + split, sizeof(data) - split);
        sha256_final(&ctx, d);
        for (int i = 0; i < 32; i++) {
            snprintf(h + 2 * i, 3, "%02x", d[i]);
        }
        CHECK(strcmp(h, whole) == 0, "split at %zu: %s != %s", split, h, whole);
    }
}

TEST(crc32_check_value)
{
    /* The CRC-32/ISO-HDLC check value (zlib.crc32(b"123456789")). */
    CHECK_EQ(crc32_update(0, "123456789", 9), 0xCBF43926u);
    CHECK_EQ(crc32_update(0, "", 0), 0u);
    /* Continuing equals one pass. */
    CHECK_EQ(crc32_update(crc32_update(0, "1234", 4), "56789", 5), 0xCBF43926u);
}

TEST(sha256_job_steps_equal_update)
{
    /* Blocks hashed in steps of 1, 7, 16 and 64 rounds give sha256_update's digest; a job does
     * not start over a buffered partial block. */
    uint8_t data[64 * 5];
    for (unsigned i = 0; i < sizeof(data); i++) {
        data[i] = (uint8_t)(i * 131u + 7u);
    }
    uint8_t want[32], got[32];
    struct sha256_ctx ref;
    sha256_init(&ref);
    sha256_update(&ref, data, sizeof(data));
    sha256_final(&ref, want);
    static const uint32_t steps[] = {1, 7, 16, 64, 16};
    struct sha256_ctx ctx;
    struct sha256_job job;
    sha256_init(&ctx);
    for (unsigned b = 0; b < 5; b++) {
        CHECK_EQ(sha256_job_start(&ctx, &job, data + 64 * b), 1);
        unsigned calls = 1;
        while (!sha256_job_step(&ctx, &job, steps[b])) {
            calls++;
        }
        CHECK_EQ(calls, (64u + steps[b] - 1u) / steps[b]);
    }
    sha256_final(&ctx, got);
    CHECK(memcmp(want, got, 32) == 0);
    sha256_init(&ctx);
    sha256_update(&ctx, data, 3);
    CHECK_EQ(sha256_job_start(&ctx, &job, data), 0);
}
