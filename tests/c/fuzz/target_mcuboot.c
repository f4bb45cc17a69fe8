/* Fuzz target: the MCUboot image checks (stm32/lib/mcuboot.c, mcuboot_validate) on arbitrary bytes at
 * the base of slot A of the RAM flash, the rest of the slot erased, with a one-key ring. Invariants:
 * validating never changes the slot; whatever it accepts as parsed lies inside the slot, its signed
 * part before its unprotected TLVs. The seed is a well-formed image whose KEYHASH is the ring's key
 * and whose SHA256 TLV is right (its signature is not: the mutations reach every rule up to the
 * signature check). */
#include <string.h>
#include "flash_ram.h"
#include "fota_image.h"
#include "fota_layout.h"
#include "fuzz.h"
#include "mcuboot.h"
#include "sha256.h"

static uint8_t *slot_a;
static struct keyring_key key = {{1, 2, 3}, {0xA5, 0x5A, 0x11}};
static const struct keyring ring = {&key, 1};

void fuzz_target_init(void)
{
    flash_ram_reset();
    fa_init(&flash_ram_port);
    slot_a = flash_ram_mem() + (FOTA_REGION_SLOT_A_BASE - FOTA_FLASH_BASE);
}

static uint8_t *tlv(uint8_t *p, uint16_t type, const void *value, uint16_t len)
{
    struct fota_image_tlv t = {.tl_type = type, .tl_len = len};
    memcpy(p, &t, sizeof(t));
    memcpy(p + sizeof(t), value, len);
    return p + sizeof(t) + len;
}

void fuzz_target_seeds(void (*add)(const uint8_t *data, size_t len))
{
    static uint8_t img[FOTA_IMAGE_HDR_SIZE + 64u + FOTA_IMAGE_TLV_AREA_SIZE];
    uint32_t body = 64u;
    uint32_t v[2] = {FOTA_SRAM_BASE + FOTA_SRAM_SIZE, FOTA_REGION_SLOT_A_BASE + FOTA_IMAGE_HDR_SIZE + 9u};
    memset(img, 0, sizeof(img));
    struct fota_image_header h = {.ih_magic = FOTA_IMAGE_MAGIC, .ih_hdr_size = FOTA_IMAGE_HDR_SIZE,
                                  .ih_protect_tlv_size = FOTA_IMAGE_PROT_TLV_SIZE, .ih_img_size = body,
                                  .ih_ver_major = 1};
    memcpy(img, &h, sizeof(h));
    memcpy(img + FOTA_IMAGE_HDR_SIZE, v, sizeof(v));
    uint8_t *p = img + FOTA_IMAGE_HDR_SIZE + body;
    struct fota_image_tlv_info prot = {FOTA_IMAGE_TLV_PROT_INFO_MAGIC, FOTA_IMAGE_PROT_TLV_SIZE};
    memcpy(p, &prot, sizeof(prot));
    uint32_t counter = 1;
    uint32_t base = FOTA_REGION_SLOT_A_BASE;
    p = tlv(p + sizeof(prot), FOTA_IMAGE_TLV_SEC_CNT, &counter, 4);
    p = tlv(p, FOTA_IMAGE_TLV_SLOT, &base, 4);
    uint8_t digest[32];
    struct sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, img, (size_t)(p - img));
    sha256_final(&c, digest);
    struct fota_image_tlv_info info = {FOTA_IMAGE_TLV_INFO_MAGIC,
                                       FOTA_IMAGE_TLV_AREA_SIZE - FOTA_IMAGE_PROT_TLV_SIZE};
    memcpy(p, &info, sizeof(info));
    uint8_t sig[64] = {0};
    p = tlv(p + sizeof(info), FOTA_IMAGE_TLV_SHA256, digest, 32);
    p = tlv(p, FOTA_IMAGE_TLV_KEYHASH, key.hash, 32);
    p = tlv(p, FOTA_IMAGE_TLV_ED25519, sig, 64);
    add(img, (size_t)(p - img));
}

void fuzz_target(const uint8_t *data, size_t len)
{
    memcpy(slot_a, data, len);
    const struct flash_area *fa = fa_slot(FOTA_SLOT_A);
    struct mcuboot_image img;
    uint8_t file_sha[32];
    uint8_t fault = mcuboot_validate(fa, &ring, &img, file_sha);
    if (fault == MCUBOOT_OK || fault == MCUBOOT_BAD_HASH || fault == MCUBOOT_BAD_SIGNATURE) {
        if (img.total_size > fa->size || img.total_size > FOTA_MAX_IMAGE_SIZE ||
            img.signed_size >= img.total_size) {
            fuzz_fail("%s with signed %u, total %u bytes", mcuboot_fault_str(fault), (unsigned)img.signed_size,
                      (unsigned)img.total_size);
        }
    }
    if (memcmp(slot_a, data, len) != 0) {
        fuzz_fail("validation changed the slot");
    }
    memset(slot_a, 0xFF, len);
}
