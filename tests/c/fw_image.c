/* image_validate: a good image passes; each field, the trailer, the vectors and the hash, when
 * wrong on its own (the hash recomputed so that only that field is wrong), give their fault. */
#include <string.h>
#include "fota_layout.h"
#include "fixture.h"
#include "crc32.h"
#include "sha256.h"

static const struct img_spec spec_a = {FOTA_SLOT_A, {1, 2, 3}, 45, 3000};
static const struct img_spec spec_b = {FOTA_SLOT_B, {2, 0, 0}, 7, 5000};

static struct fota_image_info *info(uint8_t slot)
{
    return (struct fota_image_info *)(fw_slot_mem(slot) + FOTA_IMAGE_INFO_OFFSET);
}

static struct fota_image_trailer *trailer(uint8_t slot)
{
    return (struct fota_image_trailer *)(fw_slot_mem(slot) + info(slot)->ii_image_size);
}

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
    fw_put_image(FOTA_SLOT_A, &spec_a);
    fw_put_image(FOTA_SLOT_B, &spec_b);
    struct image_summary s;
    CHECK_EQ(image_validate(FOTA_SLOT_A, &s), FOTA_OK);
    CHECK_EQ(s.state, FOTA_SLOT_STATE_VALID);
    CHECK(s.ver.major == 1 && s.ver.minor == 2 && s.ver.patch == 3 && s.ver.build == 45, "version %u.%u.%u+%u",
          s.ver.major, s.ver.minor, s.ver.patch, s.ver.build);
    CHECK_EQ(s.image_size, info(FOTA_SLOT_A)->ii_image_size);
    CHECK_FAULT(FOTA_SLOT_B, IMAGE_OK, FOTA_SLOT_STATE_VALID);
}

TEST(image_erased_slot_is_empty)
{
    fw_flash_fresh();
    CHECK_FAULT(FOTA_SLOT_A, IMAGE_ERASED, FOTA_SLOT_STATE_EMPTY);
    CHECK_FAULT(FOTA_SLOT_B, IMAGE_ERASED, FOTA_SLOT_STATE_EMPTY);
}

TEST(image_bad_magic)
{
    fw_flash_fresh();
    fw_put_image(FOTA_SLOT_A, &spec_a);
    info(FOTA_SLOT_A)->ii_magic ^= 1u;
    fw_rehash(FOTA_SLOT_A);
    CHECK_FAULT(FOTA_SLOT_A, IMAGE_BAD_MAGIC, FOTA_SLOT_STATE_INVALID);
}

TEST(image_invalidated_magic)
{
    fw_flash_fresh();
    fw_put_image(FOTA_SLOT_B, &spec_b);
    info(FOTA_SLOT_B)->ii_magic = FOTA_IMAGE_INVALIDATED_MAGIC;
    CHECK_FAULT(FOTA_SLOT_B, IMAGE_BAD_MAGIC, FOTA_SLOT_STATE_INVALID);
}

TEST(image_bad_format)
{
    fw_flash_fresh();
    fw_put_image(FOTA_SLOT_A, &spec_a);
    info(FOTA_SLOT_A)->ii_format = FOTA_IMAGE_FORMAT_VERSION + 1u;
    fw_rehash(FOTA_SLOT_A);
    CHECK_FAULT(FOTA_SLOT_A, IMAGE_BAD_FORMAT, FOTA_SLOT_STATE_INVALID);
}

TEST(image_linked_for_other_slot)
{
    /* A slot-B image copied into slot A: everything checks out except where it belongs. */
    fw_flash_fresh();
    fw_put_image(FOTA_SLOT_A, &spec_b);
    CHECK_FAULT(FOTA_SLOT_A, IMAGE_WRONG_SLOT, FOTA_SLOT_STATE_INVALID);
    fw_put_image(FOTA_SLOT_B, &spec_a);
    CHECK_FAULT(FOTA_SLOT_B, IMAGE_WRONG_SLOT, FOTA_SLOT_STATE_INVALID);
}

TEST(image_bad_load_address)
{
    fw_flash_fresh();
    fw_put_image(FOTA_SLOT_A, &spec_a);
    info(FOTA_SLOT_A)->ii_load_addr = FOTA_REGION_SLOT_B_BASE;
    fw_rehash(FOTA_SLOT_A);
    CHECK_FAULT(FOTA_SLOT_A, IMAGE_BAD_LOAD_ADDR, FOTA_SLOT_STATE_INVALID);
}

TEST(image_size_unset_or_misaligned_or_tiny)
{
    static const uint32_t bad[] = {FOTA_IMAGE_SIZE_UNSET, 0, 0x1004, FOTA_IMAGE_INFO_OFFSET};
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fw_flash_fresh();
        fw_put_image(FOTA_SLOT_A, &spec_a);
        info(FOTA_SLOT_A)->ii_image_size = bad[i];
        CHECK_FAULT(FOTA_SLOT_A, IMAGE_BAD_SIZE, FOTA_SLOT_STATE_INVALID);
    }
}

TEST(image_size_limits)
{
    /* Largest image: image + trailer fill exactly FOTA_MAX_IMAGE_SIZE (all of slot A). */
    struct img_spec big = spec_a;
    big.payload = FOTA_MAX_IMAGE_SIZE - (uint32_t)sizeof(struct fota_image_trailer) - FOTA_IMAGE_INFO_OFFSET -
                  (uint32_t)sizeof(struct fota_image_info);
    fw_flash_fresh();
    CHECK_EQ(fw_put_image(FOTA_SLOT_A, &big) + sizeof(struct fota_image_trailer), FOTA_MAX_IMAGE_SIZE);
    CHECK_FAULT(FOTA_SLOT_A, IMAGE_OK, FOTA_SLOT_STATE_VALID);
    /* One alignment step more does not fit slot A. */
    info(FOTA_SLOT_A)->ii_image_size += FOTA_IMAGE_ALIGN;
    CHECK_FAULT(FOTA_SLOT_A, IMAGE_BAD_SIZE, FOTA_SLOT_STATE_INVALID);
    /* Slot B is 512 KB, but an image must fit either slot: the same limit applies there. */
    struct img_spec big_b = big;
    big_b.slot = FOTA_SLOT_B;
    big_b.payload += FOTA_IMAGE_ALIGN;
    fw_put_image(FOTA_SLOT_B, &big_b);
    CHECK_FAULT(FOTA_SLOT_B, IMAGE_BAD_SIZE, FOTA_SLOT_STATE_INVALID);
    big_b.payload -= FOTA_IMAGE_ALIGN;
    fw_put_image(FOTA_SLOT_B, &big_b);
    CHECK_FAULT(FOTA_SLOT_B, IMAGE_OK, FOTA_SLOT_STATE_VALID);
}

TEST(image_bad_trailer_fields)
{
    for (int field = 0; field < 5; field++) {
        fw_flash_fresh();
        fw_put_image(FOTA_SLOT_B, &spec_b);
        struct fota_image_trailer *t = trailer(FOTA_SLOT_B);
        switch (field) {
        case 0: t->it_magic = 0xFFFFFFFFu; break;
        case 1: t->it_format = 2; break;
        case 2: t->it_trailer_size = 64; break;
        case 3: t->it_sig_type = FOTA_SIG_ED25519; break; /* a signature we cannot check */
        default: t->it_magic ^= 0x100u; break;
        }
        CHECK_FAULT(FOTA_SLOT_B, IMAGE_BAD_TRAILER, FOTA_SLOT_STATE_INVALID);
    }
}

TEST(image_missing_trailer)
{
    /* The post-link step filled the size but the trailer never got written (erased). */
    fw_flash_fresh();
    fw_put_image(FOTA_SLOT_A, &spec_a);
    memset(trailer(FOTA_SLOT_A), 0xFF, sizeof(struct fota_image_trailer));
    CHECK_FAULT(FOTA_SLOT_A, IMAGE_BAD_TRAILER, FOTA_SLOT_STATE_INVALID);
}

TEST(image_hash_covers_every_byte)
{
    fw_flash_fresh();
    uint32_t size = fw_put_image(FOTA_SLOT_A, &spec_a);
    uint8_t *m = fw_slot_mem(FOTA_SLOT_A);
    /* Byte positions: vectors (beyond the checked words), padding before the block, the block's
     * reserved bytes and build number, code, last byte. */
    const uint32_t where[] = {8, 0x100, FOTA_IMAGE_INFO_OFFSET + 24, FOTA_IMAGE_INFO_OFFSET + 16, 0x400, size - 1};
    for (unsigned i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
        m[where[i]] ^= 0x01u;
        CHECK_FAULT(FOTA_SLOT_A, IMAGE_BAD_HASH, FOTA_SLOT_STATE_INVALID);
        m[where[i]] ^= 0x01u;
        CHECK_FAULT(FOTA_SLOT_A, IMAGE_OK, FOTA_SLOT_STATE_VALID);
    }
    trailer(FOTA_SLOT_A)->it_sha256[31] ^= 0x80u;
    CHECK_FAULT(FOTA_SLOT_A, IMAGE_BAD_HASH, FOTA_SLOT_STATE_INVALID);
}

TEST(image_bad_vectors)
{
    const uint32_t base = FOTA_REGION_SLOT_A_BASE;
    /* {initial SP, reset handler}: each pair has exactly one thing wrong. */
    const uint32_t cases[][2] = {
        {FOTA_CCM_BASE + 0x1000u, base + 0x241u},               /* stack in CCM, not SRAM */
        {FOTA_SRAM_BASE + FOTA_SRAM_SIZE + 8u, base + 0x241u},  /* above SRAM */
        {FOTA_SRAM_BASE, base + 0x241u},                        /* empty stack at SRAM base */
        {FOTA_SRAM_BASE + 0x1004u, base + 0x241u},              /* not 8-byte aligned */
        {FOTA_SRAM_BASE + FOTA_SRAM_SIZE, base + 0x240u},       /* Thumb bit clear */
        {FOTA_SRAM_BASE + FOTA_SRAM_SIZE, FOTA_REGION_SLOT_B_BASE + 0x241u}, /* other slot */
        {FOTA_SRAM_BASE + FOTA_SRAM_SIZE, 0xFFFFFFFFu},         /* erased */
    };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fw_flash_fresh();
        uint32_t size = fw_put_image(FOTA_SLOT_A, &spec_a);
        uint32_t *v = (uint32_t *)fw_slot_mem(FOTA_SLOT_A);
        v[0] = cases[i][0];
        v[1] = cases[i][1];
        fw_rehash(FOTA_SLOT_A);
        CHECK_FAULT(FOTA_SLOT_A, IMAGE_BAD_VECTORS, FOTA_SLOT_STATE_INVALID);
        /* Past the image's end is outside too, even inside the slot. */
        v[0] = FOTA_SRAM_BASE + FOTA_SRAM_SIZE;
        v[1] = (base + size) | 1u;
        fw_rehash(FOTA_SLOT_A);
        CHECK_FAULT(FOTA_SLOT_A, IMAGE_BAD_VECTORS, FOTA_SLOT_STATE_INVALID);
    }
}

/* image_validate_file: the SHA-256 of the whole file (image + trailer) from the same pass over the
 * slot as the validation, which the update agent's VERIFY compares with BEGIN's. */
TEST(image_validate_file_hashes_the_whole_file)
{
    struct image_summary sum;
    uint8_t digest[32], file_sha[32];
    int hashed = -1;
    fw_flash_fresh();
    uint32_t file = fw_put_image(FOTA_SLOT_B, &spec_b) + (uint32_t)sizeof(struct fota_image_trailer);
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, fw_slot_mem(FOTA_SLOT_B), file);
    sha256_final(&ctx, file_sha);
    static uint8_t good[FOTA_MAX_IMAGE_SIZE];
    memcpy(good, fw_slot_mem(FOTA_SLOT_B), file);
    CHECK_EQ(image_validate_file(FOTA_SLOT_B, &sum, digest, &hashed), FOTA_OK);
    CHECK_EQ(hashed, 1);
    CHECK_EQ(sum.state, FOTA_SLOT_STATE_VALID);
    CHECK(memcmp(digest, file_sha, 32) == 0);
    /* a bit of the image decays: invalid (bad hash), but the pass ran and the hash differs */
    uint8_t *decay = fw_slot_mem(FOTA_SLOT_B) + 3000;
    while (*decay == 0) {
        decay++;
    }
    *decay &= (uint8_t)(*decay - 1u); /* clears the lowest bit that is set */
    CHECK_EQ(image_validate_file(FOTA_SLOT_B, &sum, digest, &hashed), FOTA_E_IMAGE);
    CHECK_EQ(sum.fault, IMAGE_BAD_HASH);
    CHECK_EQ(hashed, 1);
    CHECK(memcmp(digest, file_sha, 32) != 0);
    /* a broken trailer stops before hashing */
    memcpy(fw_slot_mem(FOTA_SLOT_B), good, file);
    fw_slot_mem(FOTA_SLOT_B)[file - sizeof(struct fota_image_trailer)] ^= 0x01;
    CHECK_EQ(image_validate_file(FOTA_SLOT_B, &sum, digest, &hashed), FOTA_E_IMAGE);
    CHECK_EQ(sum.fault, IMAGE_BAD_TRAILER);
    CHECK_EQ(hashed, 0);
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
    fw_put_image(FOTA_SLOT_B, &spec_b);
    struct image_summary s;
    uint32_t crc;
    CHECK_EQ(image_crc(FOTA_SLOT_B, info(FOTA_SLOT_B)->ii_image_size, &crc), FOTA_OK);
    uint32_t file = info(FOTA_SLOT_B)->ii_image_size + sizeof(struct fota_image_trailer);
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
    /* the trailer's last word too, which the SHA-256 does not cover */
    fw_slot_mem(FOTA_SLOT_B)[file - 1u] ^= 0x01;
    CHECK_EQ(image_validate_crc(FOTA_SLOT_B, crc, &s), FOTA_E_IMAGE);
    CHECK_EQ(s.fault, IMAGE_BAD_CRC);
    fw_slot_mem(FOTA_SLOT_B)[file - 1u] ^= 0x01;
    /* the cheap checks still come first */
    info(FOTA_SLOT_B)->ii_slot = FOTA_SLOT_A;
    CHECK_EQ(image_validate_crc(FOTA_SLOT_B, crc, &s), FOTA_E_IMAGE);
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
