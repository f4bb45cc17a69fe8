/* The MCUboot image checks (stm32/lib/mcuboot.c): a signed image passes; each malformed one is
 * refused by its own rule; the signature binds every signed byte; nothing past the slot is read. */
#include <string.h>
#include "fixture.h"
#include "fota_layout.h"
#include "harness.h"
#include "mcuboot_fixture.h"
#include "sha256.h"

static const struct signed_spec SPEC = {FOTA_SLOT_B, {1, 2, 3}, 9, 4, 1000, 0};

static uint8_t check(uint8_t slot, struct mcuboot_image *img)
{
    return mcuboot_validate(fa_slot(slot), fw_test_ring(), img, NULL);
}

/* Offsets in the image of SPEC. */
static uint32_t prot_off(void) { return FOTA_IMAGE_HDR_SIZE + ((8u + SPEC.payload + 7u) & ~7u); }
static uint32_t unprot_off(void) { return prot_off() + FOTA_IMAGE_PROT_TLV_SIZE; }
static uint32_t sha_tlv(void) { return unprot_off() + 4u; }
static uint32_t keyhash_tlv(void) { return sha_tlv() + 36u; }
static uint32_t sig_tlv(void) { return keyhash_tlv() + 36u; }

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

TEST(mcuboot_signed_image_is_valid_and_described)
{
    fw_flash_fresh();
    uint32_t total = fw_put_signed(FOTA_SLOT_B, &SPEC);
    struct mcuboot_image img;
    uint8_t file_sha[32];
    CHECK_EQ(mcuboot_validate(fa_slot(FOTA_SLOT_B), fw_test_ring(), &img, file_sha), MCUBOOT_OK);
    CHECK_EQ(img.total_size, total);
    CHECK_EQ(img.signed_size, unprot_off());
    CHECK_EQ(img.security_counter, 4);
    CHECK_EQ(img.hdr.ih_ver_revision, 3);
    CHECK(img.key == &fw_test_ring()->keys[0]);
    struct sha256_ctx c;
    uint8_t want[32];
    sha256_init(&c);
    sha256_update(&c, fw_slot_mem(FOTA_SLOT_B), total);
    sha256_final(&c, want);
    CHECK(memcmp(want, file_sha, 32) == 0, "the file digest covers header, image and both TLV areas");
}

struct bad_case {
    const char *name;
    uint32_t off;
    uint8_t bytes[4];
    uint8_t len;
    int resign; /* recompute hash and signature: only the edited field is wrong */
    uint8_t fault;
};

TEST(mcuboot_each_refusal_has_its_own_fault)
{
    const struct bad_case cases[] = {
        {"withdrawn", 0, {0, 0, 0, 0}, 4, 0, MCUBOOT_BAD_MAGIC},
        {"header size", 8, {0x00, 0x01}, 2, 0, MCUBOOT_BAD_HEADER},
        {"load address", 4, {1}, 1, 0, MCUBOOT_BAD_HEADER},
        {"flags", 16, {0x20}, 1, 0, MCUBOOT_BAD_HEADER},
        {"image size past the slot", 12, {0, 0, 0x08, 0}, 4, 0, MCUBOOT_BAD_SIZE},
        {"image size misaligned", 12, {0xEC, 0x03}, 2, 0, MCUBOOT_BAD_SIZE},
        {"protected size differs", 10, {24}, 1, 0, MCUBOOT_BAD_TLV_INFO},
        {"protected magic", 0, {0x34, 0x12}, 2, 0, MCUBOOT_BAD_TLV_INFO},
        {"unprotected magic", 1, {0x08, 0x69}, 2, 0, MCUBOOT_BAD_TLV_INFO},
        {"unprotected area overlong", 2, {0xF0, 0xFF}, 2, 0, MCUBOOT_BAD_TLV},
        {"TLV past its area", 3, {0x24, 0x00, 200, 0}, 4, 0, MCUBOOT_BAD_TLV},
        {"counter unprotected", 3, {0x50, 0x00, 64, 0}, 4, 0, MCUBOOT_MISPLACED_TLV},
        {"second hash", 4, {0x10, 0x00, 32, 0}, 4, 0, MCUBOOT_DUPLICATE_TLV},
        {"no signature", 3, {0x7F, 0x00, 64, 0}, 4, 0, MCUBOOT_UNSIGNED},
        {"no key hash", 4, {0x7F, 0x00, 32, 0}, 4, 0, MCUBOOT_UNSIGNED},
        {"unknown protected", 5, {0x60, 0x00, 4, 0}, 4, 1, MCUBOOT_UNKNOWN_TLV},
        {"counter length", 5, {0x50, 0x00, 2, 0}, 4, 1, MCUBOOT_BAD_TLV},
        {"no slot TLV", 6, {0x50, 0x00, 4, 0}, 4, 1, MCUBOOT_DUPLICATE_TLV},
        {"slot A in slot B", 7, {0x00, 0x00, 0x02, 0x08}, 4, 1, MCUBOOT_WRONG_SLOT},
        {"flipped body byte", FOTA_IMAGE_HDR_SIZE + 100u, {0xAA}, 1, 0, MCUBOOT_BAD_HASH},
        {"flipped counter", 8, {5}, 1, 0, MCUBOOT_BAD_HASH},
        {"flipped version", 20, {2}, 1, 0, MCUBOOT_BAD_HASH},
        {"flipped signature", 9, {0xA5}, 1, 0, MCUBOOT_BAD_SIGNATURE},
        {"stack outside SRAM", FOTA_IMAGE_HDR_SIZE + 3u, {0x30}, 1, 1, MCUBOOT_BAD_VECTORS},
        {"reset before the body", FOTA_IMAGE_HDR_SIZE + 4u, {0x01, 0x00, 0x06, 0x08}, 4, 1, MCUBOOT_BAD_VECTORS},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct bad_case *bc = &cases[i];
        fw_flash_fresh();
        (void)fw_put_signed(FOTA_SLOT_B, &SPEC);
        uint8_t *m = fw_slot_mem(FOTA_SLOT_B);
        /* Small offsets name places relative to the TLV areas (see the table). */
        uint32_t at = bc->off;
        switch (i) {
        case 7: at = prot_off(); break;
        case 8: at = unprot_off(); break;
        case 9: at = unprot_off(); break;
        case 10: case 11: case 13: at = sig_tlv(); break;
        case 12: case 14: at = keyhash_tlv(); break;
        case 15: case 16: at = prot_off() + 4u; break;
        case 17: at = prot_off() + 12u; break;
        case 18: at = prot_off() + 16u; break;
        case 20: at = prot_off() + 8u; break;
        case 22: at = sig_tlv() + 4u + 10u; break;
        default: break;
        }
        if (i == 9) {
            at += 2u; /* the area's tlv_tot */
        }
        memcpy(m + at, bc->bytes, bc->len);
        if (bc->resign) {
            fw_resign(FOTA_SLOT_B);
        }
        struct mcuboot_image img;
        uint8_t fault = check(FOTA_SLOT_B, &img);
        CHECK(fault == bc->fault, "%s: %s, expected %s", bc->name, mcuboot_fault_str(fault),
              mcuboot_fault_str(bc->fault));
    }
}

TEST(mcuboot_unknown_key_erased_and_other_slot)
{
    struct mcuboot_image img;
    fw_flash_fresh();
    CHECK_EQ(check(FOTA_SLOT_B, &img), MCUBOOT_ERASED);
    struct signed_spec s = SPEC;
    s.key = 1;
    (void)fw_put_signed(FOTA_SLOT_B, &s);
    CHECK_EQ(check(FOTA_SLOT_B, &img), MCUBOOT_UNKNOWN_KEY);
    s.key = 0;
    s.slot = FOTA_SLOT_A;
    (void)fw_put_signed(FOTA_SLOT_B, &s); /* an image for slot A, written into slot B */
    CHECK_EQ(check(FOTA_SLOT_B, &img), MCUBOOT_WRONG_SLOT);
    (void)fw_put_signed(FOTA_SLOT_A, &s);
    CHECK_EQ(check(FOTA_SLOT_A, &img), MCUBOOT_OK);
    /* Every signed byte is bound: flip each byte of header, body and protected TLVs in turn. */
    uint8_t *m = fw_slot_mem(FOTA_SLOT_A);
    for (uint32_t off = 0; off < img.signed_size; off += 37u) {
        m[off] ^= 0x01u;
        uint8_t fault = check(FOTA_SLOT_A, &img);
        m[off] ^= 0x01u;
        CHECK(fault != MCUBOOT_OK, "byte %u flipped, still accepted", (unsigned)off);
    }
}

TEST(mcuboot_lengths_never_reach_past_the_slot)
{
    struct mcuboot_image img;
    fw_flash_fresh();
    (void)fw_put_signed(FOTA_SLOT_A, &SPEC);
    uint8_t *m = fw_slot_mem(FOTA_SLOT_A);
    /* The largest image size whose protected area still fits: the unprotected info falls at the
     * slot's end, where the slot B image begins; its bytes are not this slot's. */
    put32(m + 12, FOTA_REGION_SLOT_A_SIZE - FOTA_IMAGE_HDR_SIZE - FOTA_IMAGE_PROT_TLV_SIZE - 8u);
    CHECK_EQ(check(FOTA_SLOT_A, &img), MCUBOOT_BAD_SIZE);
    put32(m + 12, 0xFFFFFFF8u);
    CHECK_EQ(check(FOTA_SLOT_A, &img), MCUBOOT_BAD_SIZE);
    put32(m + 12, (8u + SPEC.payload + 7u) & ~7u);
    put16(m + 10, 0xFFFFu);
    CHECK_EQ(check(FOTA_SLOT_A, &img), MCUBOOT_BAD_TLV_INFO);
    CHECK_EQ(strcmp(mcuboot_fault_str(MCUBOOT_BAD_SIGNATURE), "bad-signature"), 0);
    CHECK_EQ(strcmp(mcuboot_fault_str(200), "?"), 0);
}
