/* image.c over mcuboot.c: a good image passes in full, by CRC and by digest; a withdrawn one is
 * refused; every signed byte and the vectors are checked; the file digest covers the whole image.
 * The parser's own rules are in fw_mcuboot.c. */
#include <string.h>
#include "fota_layout.h"
#include "fixture.h"
#include "crc32.h"
#include "mcuboot_fixture.h"
#include "sha256.h"

static const struct img_spec spec_a = {FOTA_SLOT_A, {1, 2, 3}, 45, 3000};
static const struct img_spec spec_b = {FOTA_SLOT_B, {2, 0, 0}, 7, 5000};

static uint8_t fault_of(uint8_t slot, uint8_t *state)
{
    struct image_summary s;
    int rc = image_validate(slot, &s);
    *state = s.state;
    if ((rc == FOTA_OK) != (s.fault == IMAGE_OK)) {
        return 0xEE; /* return code and summary disagree */
    }
    return s.fault;
}

#define CHECK_FAULT(slot, expected_fault, expected_state)                                             \
    do {                                                                                              \
        uint8_t st_;                                                                                  \
        uint8_t f_ = fault_of(slot, &st_);                                                            \
        CHECK(f_ == (expected_fault), "fault %s, expected %s", image_fault_str(f_),                   \
              image_fault_str(expected_fault));                                                       \
        CHECK_EQ(st_, expected_state);                                                                \
    } while (0)

TEST(image_valid_both_slots)
{
    fw_flash_fresh();
    uint32_t size = fw_put_image(FOTA_SLOT_A, &spec_a);
    fw_put_image(FOTA_SLOT_B, &spec_b);
    struct image_summary s;
    CHECK_EQ(image_validate(FOTA_SLOT_A, &s), FOTA_OK);
    CHECK_EQ(s.state, FOTA_SLOT_STATE_VALID);
    CHECK(s.ver.major == 1 && s.ver.minor == 2 && s.ver.patch == 3 && s.ver.build == 45, "version %u.%u.%u+%u",
          s.ver.major, s.ver.minor, s.ver.patch, s.ver.build);
    CHECK_EQ(s.image_size, size);
    CHECK_EQ(s.security_counter, 1);
    CHECK(memcmp(s.key_id, fw_test_key(0)->hash, sizeof(s.key_id)) == 0);
    CHECK_FAULT(FOTA_SLOT_B, IMAGE_OK, FOTA_SLOT_STATE_VALID);
}

TEST(image_erased_slot_is_empty_and_withdrawn_is_refused)
{
    fw_flash_fresh();
    CHECK_FAULT(FOTA_SLOT_A, IMAGE_ERASED, FOTA_SLOT_STATE_EMPTY);
    CHECK_FAULT(FOTA_SLOT_B, IMAGE_ERASED, FOTA_SLOT_STATE_EMPTY);
    fw_put_image(FOTA_SLOT_A, &spec_a);
    CHECK_EQ(image_withdraw(FOTA_SLOT_A), FOTA_OK);
    CHECK_FAULT(FOTA_SLOT_A, IMAGE_BAD_MAGIC, FOTA_SLOT_STATE_INVALID);
    uint32_t magic;
    memcpy(&magic, fw_slot_mem(FOTA_SLOT_A), 4);
    CHECK_EQ(magic, FOTA_IMAGE_WITHDRAWN_MAGIC);
}

TEST(image_without_a_key_ring_trusts_no_key)
{
    fw_flash_fresh();
    fw_put_image(FOTA_SLOT_A, &spec_a);
    image_set_keyring(NULL);
    CHECK_FAULT(FOTA_SLOT_A, IMAGE_UNKNOWN_KEY, FOTA_SLOT_STATE_INVALID);
    image_set_keyring(fw_test_ring());
    CHECK_FAULT(FOTA_SLOT_A, IMAGE_OK, FOTA_SLOT_STATE_VALID);
}

TEST(image_hash_and_signature_cover_every_signed_byte)
{
    fw_flash_fresh();
    fw_put_image(FOTA_SLOT_A, &spec_a);
    struct image_summary s;
    CHECK_EQ(image_validate(FOTA_SLOT_A, &s), FOTA_OK);
    uint8_t *m = fw_slot_mem(FOTA_SLOT_A);
    /* header version, header padding, vectors (beyond the checked words), code, the security counter */
    const uint32_t where[] = {20, 0x100, FOTA_IMAGE_HDR_SIZE + 8u, 0x400, s.signed_size - 9u};
    for (unsigned i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
        m[where[i]] ^= 0x01u;
        CHECK_FAULT(FOTA_SLOT_A, IMAGE_BAD_HASH, FOTA_SLOT_STATE_INVALID);
        m[where[i]] ^= 0x01u;
        CHECK_FAULT(FOTA_SLOT_A, IMAGE_OK, FOTA_SLOT_STATE_VALID);
    }
    m[s.image_size - 1u] ^= 0x80u; /* the signature's last byte */
    CHECK_FAULT(FOTA_SLOT_A, IMAGE_BAD_SIGNATURE, FOTA_SLOT_STATE_INVALID);
}

TEST(image_bad_vectors)
{
    const uint32_t body = FOTA_REGION_SLOT_A_BASE + FOTA_IMAGE_HDR_SIZE;
    /* {initial SP, reset handler}: each pair has exactly one thing wrong. */
    const uint32_t cases[][2] = {
        {FOTA_CCM_BASE + 0x1000u, body + 0x41u},                /* stack in CCM, not SRAM */
        {FOTA_SRAM_BASE + FOTA_SRAM_SIZE + 8u, body + 0x41u},   /* above SRAM */
        {FOTA_SRAM_BASE, body + 0x41u},                         /* empty stack at SRAM base */
        {FOTA_SRAM_BASE + 0x1004u, body + 0x41u},               /* not 8-byte aligned */
        {FOTA_SRAM_BASE + FOTA_SRAM_SIZE, body + 0x40u},        /* Thumb bit clear */
        {FOTA_SRAM_BASE + FOTA_SRAM_SIZE, FOTA_REGION_SLOT_B_BASE + FOTA_IMAGE_HDR_SIZE + 0x41u}, /* other slot */
        {FOTA_SRAM_BASE + FOTA_SRAM_SIZE, FOTA_REGION_SLOT_A_BASE + 0x41u}, /* in the header */
        {FOTA_SRAM_BASE + FOTA_SRAM_SIZE, 0xFFFFFFFFu},         /* erased */
    };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fw_flash_fresh();
        fw_put_image(FOTA_SLOT_A, &spec_a);
        uint32_t *v = (uint32_t *)(fw_slot_mem(FOTA_SLOT_A) + FOTA_IMAGE_HDR_SIZE);
        v[0] = cases[i][0];
        v[1] = cases[i][1];
        fw_rehash(FOTA_SLOT_A);
        CHECK_FAULT(FOTA_SLOT_A, IMAGE_BAD_VECTORS, FOTA_SLOT_STATE_INVALID);
    }
    /* Past the image body is outside too, even inside the slot. */
    fw_flash_fresh();
    fw_put_image(FOTA_SLOT_A, &spec_a);
    struct fota_image_header h;
    memcpy(&h, fw_slot_mem(FOTA_SLOT_A), sizeof(h));
    uint32_t *v = (uint32_t *)(fw_slot_mem(FOTA_SLOT_A) + FOTA_IMAGE_HDR_SIZE);
    v[1] = (body + h.ih_img_size) | 1u;
    fw_rehash(FOTA_SLOT_A);
    CHECK_FAULT(FOTA_SLOT_A, IMAGE_BAD_VECTORS, FOTA_SLOT_STATE_INVALID);
}

/* image_validate_file: the SHA-256 of the whole image (header to the last TLV) from the same pass
 * over the slot as the validation. */
TEST(image_validate_file_hashes_the_whole_file)
{
    struct image_summary sum;
    uint8_t digest[32], file_sha[32];
    int hashed = -1;
    fw_flash_fresh();
    uint32_t file = fw_put_image(FOTA_SLOT_B, &spec_b);
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, fw_slot_mem(FOTA_SLOT_B), file);
    sha256_final(&ctx, file_sha);
    CHECK_EQ(image_validate_file(FOTA_SLOT_B, &sum, digest, &hashed), FOTA_OK);
    CHECK_EQ(hashed, 1);
    CHECK_EQ(sum.state, FOTA_SLOT_STATE_VALID);
    CHECK(memcmp(digest, file_sha, 32) == 0);
    /* a bit of the image decays: invalid (bad hash), but the pass ran and the hash differs */
    fw_slot_mem(FOTA_SLOT_B)[3000] ^= 0x04;
    CHECK_EQ(image_validate_file(FOTA_SLOT_B, &sum, digest, &hashed), FOTA_E_IMAGE);
    CHECK_EQ(sum.fault, IMAGE_BAD_HASH);
    CHECK_EQ(hashed, 1);
    CHECK(memcmp(digest, file_sha, 32) != 0);
    /* a broken TLV area stops before hashing */
    fw_slot_mem(FOTA_SLOT_B)[3000] ^= 0x04;
    fw_slot_mem(FOTA_SLOT_B)[sum.signed_size] ^= 0x01; /* the unprotected area's magic */
    CHECK_EQ(image_validate_file(FOTA_SLOT_B, &sum, digest, &hashed), FOTA_E_IMAGE);
    CHECK_EQ(sum.fault, IMAGE_BAD_TLV_INFO);
    CHECK_EQ(hashed, 0);
}

/* The agent's VERIFY: a digest taken elsewhere against the SHA256 TLV, then the signature. */
TEST(image_validate_digest_compares_and_verifies)
{
    struct image_summary s;
    uint8_t digest[32];
    fw_flash_fresh();
    fw_put_image(FOTA_SLOT_B, &spec_b);
    CHECK_EQ(image_inspect(FOTA_SLOT_B, &s), FOTA_E_IMAGE);
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, fw_slot_mem(FOTA_SLOT_B), s.signed_size);
    sha256_final(&ctx, digest);
    CHECK_EQ(image_validate_digest(FOTA_SLOT_B, digest, &s), FOTA_OK);
    CHECK_EQ(s.state, FOTA_SLOT_STATE_VALID);
    digest[0] ^= 1u;
    CHECK_EQ(image_validate_digest(FOTA_SLOT_B, digest, &s), FOTA_E_IMAGE);
    CHECK_EQ(s.fault, IMAGE_BAD_HASH);
    digest[0] ^= 1u;
    fw_slot_mem(FOTA_SLOT_B)[s.image_size - 3u] ^= 0x10u; /* the signature */
    CHECK_EQ(image_validate_digest(FOTA_SLOT_B, digest, &s), FOTA_E_IMAGE);
    CHECK_EQ(s.fault, IMAGE_BAD_SIGNATURE);
}

TEST(crc_words_is_the_stm32_crc_unit)
{
    /* The CRC unit over the words of "12345678" (loaded little-endian) is CRC-32/MPEG-2 of the
     * byte-swapped "43218765" (catalogue check: CRC-32/MPEG-2("123456789") = 0x0376E6E7). */
    CHECK_EQ(crc32_words_update(CRC32_WORDS_INIT, "12345678", 2), 0xFEFC54F9u);
    CHECK_EQ(crc32_words_update(crc32_words_update(CRC32_WORDS_INIT, "1234", 1), "5678", 1), 0xFEFC54F9u);
}

TEST(image_validate_crc_checks_the_recorded_crc)
{
    fw_flash_fresh();
    uint32_t file = fw_put_image(FOTA_SLOT_B, &spec_b);
    struct image_summary s;
    uint32_t crc;
    CHECK_EQ(image_crc(FOTA_SLOT_B, file, &crc), FOTA_OK);
    CHECK_EQ(crc, crc32_words_update(CRC32_WORDS_INIT, fw_slot_mem(FOTA_SLOT_B), file / 4u));
    CHECK_EQ(image_validate_crc(FOTA_SLOT_B, crc, &s), FOTA_OK);
    CHECK_EQ(s.state, FOTA_SLOT_STATE_VALID);
    CHECK(s.ver.major == 2 && s.ver.build == 7, "version %u+%u", s.ver.major, s.ver.build);
    /* no CRC recorded, or another one: not valid by this check (the caller hashes) */
    CHECK_EQ(image_validate_crc(FOTA_SLOT_B, 0u, &s), FOTA_E_IMAGE);
    CHECK_EQ(s.fault, IMAGE_BAD_CRC);
    CHECK_EQ(image_validate_crc(FOTA_SLOT_B, crc ^ 1u, &s), FOTA_E_IMAGE);
    CHECK_EQ(s.fault, IMAGE_BAD_CRC);
    /* one bit of the image decays: caught */
    fw_slot_mem(FOTA_SLOT_B)[4000] ^= 0x10;
    CHECK_EQ(image_validate_crc(FOTA_SLOT_B, crc, &s), FOTA_E_IMAGE);
    CHECK_EQ(s.fault, IMAGE_BAD_CRC);
    fw_slot_mem(FOTA_SLOT_B)[4000] ^= 0x10;
    /* the signature's last word too, which the SHA-256 does not cover */
    fw_slot_mem(FOTA_SLOT_B)[file - 1u] ^= 0x01;
    CHECK_EQ(image_validate_crc(FOTA_SLOT_B, crc, &s), FOTA_E_IMAGE);
    CHECK_EQ(s.fault, IMAGE_BAD_CRC);
    fw_slot_mem(FOTA_SLOT_B)[file - 1u] ^= 0x01;
    /* the cheap checks still come first: an image for slot B copied into slot A */
    memcpy(fw_slot_mem(FOTA_SLOT_A), fw_slot_mem(FOTA_SLOT_B), file);
    CHECK_EQ(image_validate_crc(FOTA_SLOT_A, crc, &s), FOTA_E_IMAGE);
    CHECK_EQ(s.fault, IMAGE_WRONG_SLOT);
}

TEST(image_inspect_reads_no_contents)
{
    fw_flash_fresh();
    struct image_summary s;
    CHECK_EQ(image_inspect(FOTA_SLOT_A, &s), FOTA_E_IMAGE);
    CHECK_EQ(s.state, FOTA_SLOT_STATE_EMPTY);
    fw_put_image(FOTA_SLOT_A, &spec_a);
    fw_slot_mem(FOTA_SLOT_A)[2000] ^= 0x01; /* a bad hash that inspect does not look for */
    CHECK_EQ(image_inspect(FOTA_SLOT_A, &s), FOTA_E_IMAGE);
    CHECK_EQ(s.fault, IMAGE_NOT_CHECKED);
    CHECK_EQ(s.state, FOTA_SLOT_STATE_INVALID); /* never bootable on the cheap checks alone */
    CHECK(s.ver.major == 1 && s.ver.patch == 3, "version %u.%u.%u", s.ver.major, s.ver.minor, s.ver.patch);
}
