/* Slot image validation (docs/image-format.md). Cheap checks first, the SHA-256 over the whole
 * image last; or, for an image validated before (a CONFIRMED journal record holds its CRC), the
 * CRC unit's pass instead of the SHA-256. The slot is only read, through the flash-area API. */
#include <string.h>
#include "fota_layout.h"
#include "image.h"
#include "sha256.h"

/* Cortex-M vector table: word 0 initial MSP, word 1 reset handler (PM0214 section 2.3.4). */
struct vectors_head {
    uint32_t initial_sp;
    uint32_t reset_handler;
};

static int check_vectors(const struct flash_area *fa, uint32_t image_size)
{
    struct vectors_head v;
    if (fa_read(fa, 0, &v, sizeof(v)) != FOTA_OK) {
        return IMAGE_READ_ERROR;
    }
    /* The stack grows down from initial_sp: it may equal the end of SRAM, not lie below its base. */
    if (v.initial_sp <= FOTA_SRAM_BASE || v.initial_sp > FOTA_SRAM_BASE + FOTA_SRAM_SIZE ||
        (v.initial_sp % 8u) != 0u) {
        return IMAGE_BAD_VECTORS;
    }
    /* Thumb bit set, and the handler inside the image itself. */
    uint32_t entry = v.reset_handler & ~1u;
    if ((v.reset_handler & 1u) == 0u || entry < fa->base || entry >= fa->base + image_size) {
        return IMAGE_BAD_VECTORS;
    }
    return IMAGE_OK;
}

/* Hash [0, image_size) and compare with the trailer's it_sha256. With file_digest, the same pass
 * also yields the SHA-256 of the whole file (image + trailer): the hash state is forked at the
 * trailer, so the update agent's VERIFY reads and hashes the slot once, not twice. */
static int check_hash(const struct flash_area *fa, uint32_t image_size, const struct fota_image_trailer *tr,
                      uint8_t *file_digest)
{
    const uint8_t *expected = tr->it_sha256;
    struct sha256_ctx ctx;
    uint8_t buf[256];
    uint8_t digest[32];
    sha256_init(&ctx);
    for (uint32_t off = 0; off < image_size;) {
        uint32_t n = image_size - off < sizeof(buf) ? image_size - off : (uint32_t)sizeof(buf);
        if (fa_read(fa, off, buf, n) != FOTA_OK) {
            return IMAGE_READ_ERROR;
        }
        sha256_update(&ctx, buf, n);
        off += n;
    }
    if (file_digest != NULL) {
        struct sha256_ctx file = ctx;
        sha256_update(&file, tr, sizeof(*tr));
        sha256_final(&file, file_digest);
    }
    sha256_final(&ctx, digest);
    return memcmp(digest, expected, sizeof(digest)) == 0 ? IMAGE_OK : IMAGE_BAD_HASH;
}

enum check {
    CHECK_HASH,   /* SHA-256 against the trailer */
    CHECK_CRC,    /* CRC of image + trailer against the expected value */
    CHECK_HEADER, /* the cheap checks only */
};

static uint8_t check_crc(const struct flash_area *fa, uint32_t image_size, uint32_t expected)
{
    uint32_t crc;
    if (fa_crc(fa, 0, image_size + sizeof(struct fota_image_trailer), &crc) != FOTA_OK) {
        return IMAGE_READ_ERROR;
    }
    return expected != 0u && crc == expected ? IMAGE_OK : IMAGE_BAD_CRC;
}

static uint8_t validate(uint8_t slot, struct image_summary *sum, enum check check, uint32_t crc,
                        uint8_t *file_digest)
{
    const struct flash_area *fa = fa_slot(slot);
    struct fota_image_info ii;
    struct fota_image_trailer tr;

    if (fa == NULL) {
        return IMAGE_READ_ERROR;
    }
    if (fa_read(fa, FOTA_IMAGE_INFO_OFFSET, &ii, sizeof(ii)) != FOTA_OK) {
        return IMAGE_READ_ERROR;
    }
    if (fa_is_erased(fa, FOTA_IMAGE_INFO_OFFSET, sizeof(ii))) {
        return IMAGE_ERASED;
    }
    if (ii.ii_magic != FOTA_IMAGE_INFO_MAGIC) {
        return IMAGE_BAD_MAGIC; /* includes IMAGE_INVALIDATED_MAGIC: a withdrawn image */
    }
    sum->ver = version_of(&ii);
    sum->image_size = ii.ii_image_size;
    if (ii.ii_format != FOTA_IMAGE_FORMAT_VERSION) {
        return IMAGE_BAD_FORMAT;
    }
    if (ii.ii_slot != slot) {
        return IMAGE_WRONG_SLOT;
    }
    if (ii.ii_load_addr != fa->base) {
        return IMAGE_BAD_LOAD_ADDR;
    }
    /* The image and its trailer must fit the smaller of the slot and the largest image (so that an
     * image can live in either slot); the trailer starts IMAGE_ALIGN-aligned after the block. */
    uint32_t limit = fa->size < FOTA_MAX_IMAGE_SIZE ? fa->size : FOTA_MAX_IMAGE_SIZE;
    uint32_t size = ii.ii_image_size;
    if (size == FOTA_IMAGE_SIZE_UNSET || (size % FOTA_IMAGE_ALIGN) != 0u ||
        size < FOTA_IMAGE_INFO_OFFSET + sizeof(ii) || size > limit - sizeof(tr)) {
        return IMAGE_BAD_SIZE;
    }
    if (fa_read(fa, size, &tr, sizeof(tr)) != FOTA_OK) {
        return IMAGE_READ_ERROR;
    }
    /* Only unsigned images are accepted: a signature this bootloader cannot check proves nothing. */
    if (tr.it_magic != FOTA_IMAGE_TRAILER_MAGIC || tr.it_format != FOTA_IMAGE_FORMAT_VERSION ||
        tr.it_trailer_size != sizeof(tr) || tr.it_sig_type != FOTA_SIG_NONE) {
        return IMAGE_BAD_TRAILER;
    }
    uint8_t fault = (uint8_t)check_vectors(fa, size);
    if (fault != IMAGE_OK) {
        return fault;
    }
    switch (check) {
    case CHECK_CRC:
        return check_crc(fa, size, crc);
    case CHECK_HEADER:
        return IMAGE_NOT_CHECKED;
    default:
        return (uint8_t)check_hash(fa, size, &tr, file_digest);
    }
}

static int summarise(uint8_t slot, struct image_summary *sum, enum check check, uint32_t crc,
                     uint8_t *file_digest)
{
    memset(sum, 0, sizeof(*sum));
    sum->fault = validate(slot, sum, check, crc, file_digest);
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
    return summarise(slot, sum, CHECK_HASH, 0u, NULL);
}

int image_validate_crc(uint8_t slot, uint32_t crc, struct image_summary *sum)
{
    return summarise(slot, sum, CHECK_CRC, crc, NULL);
}

int image_inspect(uint8_t slot, struct image_summary *sum)
{
    return summarise(slot, sum, CHECK_HEADER, 0u, NULL);
}

int image_crc(uint8_t slot, uint32_t image_size, uint32_t *crc)
{
    *crc = 0u;
    const struct flash_area *fa = fa_slot(slot);
    if (fa == NULL || image_size > fa->size - sizeof(struct fota_image_trailer)) {
        return FOTA_E_ARG;
    }
    return fa_crc(fa, 0, image_size + sizeof(struct fota_image_trailer), crc);
}

int image_validate_file(uint8_t slot, struct image_summary *sum, uint8_t file_sha256[32], int *hashed)
{
    *hashed = 0;
    memset(file_sha256, 0, 32);
    int rc = summarise(slot, sum, CHECK_HASH, 0u, file_sha256);
    *hashed = sum->fault == IMAGE_OK || sum->fault == IMAGE_BAD_HASH;
    return rc;
}

int image_withdraw(uint8_t slot)
{
    static const uint32_t invalidated = FOTA_IMAGE_INVALIDATED_MAGIC;
    return fa_write(fa_slot(slot), FOTA_IMAGE_INFO_OFFSET + offsetof(struct fota_image_info, ii_magic), &invalidated,
                    sizeof(invalidated));
}

const char *image_fault_str(uint8_t fault)
{
    switch (fault) {
    case IMAGE_OK:
        return "ok";
    case IMAGE_ERASED:
        return "erased";
    case IMAGE_BAD_MAGIC:
        return "bad-magic";
    case IMAGE_BAD_FORMAT:
        return "bad-format";
    case IMAGE_WRONG_SLOT:
        return "wrong-slot";
    case IMAGE_BAD_LOAD_ADDR:
        return "bad-load-addr";
    case IMAGE_BAD_SIZE:
        return "bad-size";
    case IMAGE_BAD_TRAILER:
        return "bad-trailer";
    case IMAGE_BAD_HASH:
        return "bad-hash";
    case IMAGE_BAD_VECTORS:
        return "bad-vectors";
    case IMAGE_READ_ERROR:
        return "read-error";
    case IMAGE_BAD_CRC:
        return "crc-mismatch";
    case IMAGE_NOT_CHECKED:
        return "not-checked";
    default:
        return "?";
    }
}
