/* Slot image validation (docs/image-format.md) over mcuboot.c: cheap checks first, then the SHA-256
 * and the signature; or, for an image validated before (a CONFIRMED journal record holds its CRC),
 * the CRC unit's pass instead. The slot is only read, through the flash-area API. */
#include <string.h>
#include "fota_layout.h"
#include "image.h"

static const struct keyring *ring;

void image_set_keyring(const struct keyring *r)
{
    ring = r;
}

enum check {
    CHECK_FULL,   /* SHA-256 and signature */
    CHECK_CRC,    /* CRC of the image against the expected value */
    CHECK_HEADER, /* the cheap checks only */
    CHECK_DIGEST, /* a digest taken elsewhere against the SHA256 TLV, and the signature */
};

static uint8_t check_crc(const struct flash_area *fa, uint32_t size, uint32_t expected)
{
    uint32_t crc;
    if (fa_crc(fa, 0, (size + 3u) & ~3u, &crc) != FOTA_OK) {
        return IMAGE_READ_ERROR;
    }
    return expected != 0u && crc == expected ? IMAGE_OK : IMAGE_BAD_CRC;
}

static uint8_t validate(uint8_t slot, struct image_summary *sum, enum check check, uint32_t crc,
                        const uint8_t *digest, uint8_t *file_digest)
{
    const struct flash_area *fa = fa_slot(slot);
    struct mcuboot_image img;
    if (fa == NULL) {
        return IMAGE_READ_ERROR;
    }
    uint8_t fault = mcuboot_parse(fa, ring, &img);
    const struct fota_image_header *h = &img.hdr;
    if (fault != IMAGE_ERASED && fault != IMAGE_BAD_MAGIC && fault != IMAGE_READ_ERROR) {
        struct fw_version v = {h->ih_ver_major, h->ih_ver_minor, h->ih_ver_revision, h->ih_ver_build};
        sum->ver = v;
        sum->image_size = img.total_size;
        sum->signed_size = img.signed_size;
        sum->security_counter = img.security_counter;
        memcpy(sum->key_id, img.key_hash, sizeof(sum->key_id));
    }
    if (fault != IMAGE_OK) {
        return fault;
    }
    switch (check) {
    case CHECK_CRC:
        return check_crc(fa, img.total_size, crc);
    case CHECK_HEADER:
        return IMAGE_NOT_CHECKED;
    case CHECK_DIGEST:
        if (memcmp(digest, img.sha256, sizeof(img.sha256)) != 0) {
            return IMAGE_BAD_HASH;
        }
        return mcuboot_check_signature(&img);
    default:
        fault = mcuboot_check_hash(fa, &img, file_digest);
        return fault == IMAGE_OK ? mcuboot_check_signature(&img) : fault;
    }
}

static int summarise(uint8_t slot, struct image_summary *sum, enum check check, uint32_t crc, const uint8_t *digest,
                     uint8_t *file_digest)
{
    memset(sum, 0, sizeof(*sum));
    sum->fault = validate(slot, sum, check, crc, digest, file_digest);
    switch (sum->fault) {
    case IMAGE_OK:
        sum->state = FOTA_SLOT_STATE_VALID;
        return FOTA_OK;
    case IMAGE_ERASED:
        sum->state = FOTA_SLOT_STATE_EMPTY;
        return FOTA_E_IMAGE;
    default:
        sum->state = FOTA_SLOT_STATE_INVALID;
        return FOTA_E_IMAGE;
    }
}

int image_validate(uint8_t slot, struct image_summary *sum)
{
    return summarise(slot, sum, CHECK_FULL, 0u, NULL, NULL);
}

int image_validate_crc(uint8_t slot, uint32_t crc, struct image_summary *sum)
{
    return summarise(slot, sum, CHECK_CRC, crc, NULL, NULL);
}

int image_inspect(uint8_t slot, struct image_summary *sum)
{
    return summarise(slot, sum, CHECK_HEADER, 0u, NULL, NULL);
}

int image_validate_digest(uint8_t slot, const uint8_t digest[32], struct image_summary *sum)
{
    return summarise(slot, sum, CHECK_DIGEST, 0u, digest, NULL);
}

int image_crc(uint8_t slot, uint32_t image_size, uint32_t *crc)
{
    *crc = 0u;
    const struct flash_area *fa = fa_slot(slot);
    if (fa == NULL || image_size == 0u || image_size > fa->size) {
        return FOTA_E_ARG;
    }
    return fa_crc(fa, 0, (image_size + 3u) & ~3u, crc);
}

int image_validate_file(uint8_t slot, struct image_summary *sum, uint8_t file_sha256[32], int *hashed)
{
    *hashed = 0;
    memset(file_sha256, 0, 32);
    int rc = summarise(slot, sum, CHECK_FULL, 0u, NULL, file_sha256);
    *hashed = sum->fault == IMAGE_OK || sum->fault == IMAGE_BAD_HASH || sum->fault == IMAGE_BAD_SIGNATURE;
    return rc;
}

int image_withdraw(uint8_t slot)
{
    static const uint32_t withdrawn = FOTA_IMAGE_WITHDRAWN_MAGIC;
    return fa_write(fa_slot(slot), offsetof(struct fota_image_header, ih_magic), &withdrawn, sizeof(withdrawn));
}

const char *image_fault_str(uint8_t fault)
{
    switch (fault) {
    case IMAGE_BAD_CRC:
        return "crc-mismatch";
    case IMAGE_NOT_CHECKED:
        return "not-checked";
    case IMAGE_ROLLBACK:
        return "rollback";
    default:
        return mcuboot_fault_str(fault);
    }
}
