/* Fuzz target: the bootloader's image checks (stm32/lib/image.c, image_validate) on arbitrary bytes
 * at the base of slot A of the RAM flash, the rest of the slot erased. Invariants: a verdict of
 * IMAGE_OK means the whole image and its trailer (up to its hash) lay in what was written, and the slot is never
 * changed by validating it. The seed is a valid small image. */
#include <string.h>
#include "flash_ram.h"
#include "fota_image.h"
#include "fota_layout.h"
#include "fuzz.h"
#include "image.h"
#include "sha256.h"

static uint8_t *slot_a;

void fuzz_target_init(void)
{
    flash_ram_reset();
    fa_init(&flash_ram_port);
    slot_a = flash_ram_mem() + (FOTA_REGION_SLOT_A_BASE - FOTA_FLASH_BASE);
}

static void put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, sizeof(v));
}

void fuzz_target_seeds(void (*add)(const uint8_t *data, size_t len))
{
    static uint8_t img[1024];
    uint32_t size = sizeof(img) - sizeof(struct fota_image_trailer);
    memset(img, 0, sizeof(img));
    put32(img, FOTA_SRAM_BASE + FOTA_SRAM_SIZE);
    put32(img + 4, (FOTA_REGION_SLOT_A_BASE + 0x101u));
    struct fota_image_info ii = {
        .ii_magic = FOTA_IMAGE_INFO_MAGIC,
        .ii_format = FOTA_IMAGE_FORMAT_VERSION,
        .ii_slot = FOTA_SLOT_A,
        .ii_load_addr = FOTA_REGION_SLOT_A_BASE,
        .ii_ver_major = 1,
        .ii_image_size = size,
    };
    memcpy(img + FOTA_IMAGE_INFO_OFFSET, &ii, sizeof(ii));
    struct fota_image_trailer tr;
    memset(&tr, 0xFF, sizeof(tr));
    tr.it_magic = FOTA_IMAGE_TRAILER_MAGIC;
    tr.it_format = FOTA_IMAGE_FORMAT_VERSION;
    tr.it_sig_type = FOTA_SIG_NONE;
    tr.it_trailer_size = sizeof(tr);
    tr.it_reserved0 = 0;
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, img, size);
    sha256_final(&ctx, tr.it_sha256);
    memcpy(img + size, &tr, sizeof(tr));
    add(img, size + sizeof(tr));
}

void fuzz_target(const uint8_t *data, size_t len)
{
    memcpy(slot_a, data, len);
    struct image_summary sum;
    image_validate(FOTA_SLOT_A, &sum);
    if (sum.fault == IMAGE_OK) {
        if (len < FOTA_IMAGE_INFO_OFFSET + sizeof(struct fota_image_info)) {
            fuzz_fail("IMAGE_OK with the information block not written (%zu bytes)", len);
        }
        uint32_t size;
        memcpy(&size, data + FOTA_IMAGE_INFO_OFFSET + offsetof(struct fota_image_info, ii_image_size), 4);
        /* The trailer's signature and reserved bytes are 0xFF like erased flash: only up to its
         * SHA-256 must have been written. */
        if ((size_t)size + offsetof(struct fota_image_trailer, it_signature) > len) {
            fuzz_fail("IMAGE_OK for an image of %u bytes with only %zu bytes written", (unsigned)size, len);
        }
    }
    if (memcmp(slot_a, data, len) != 0) {
        fuzz_fail("validation changed the slot");
    }
    memset(slot_a, 0xFF, len);
}
