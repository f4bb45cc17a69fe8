/* MCUboot image checks (mcuboot.h). Every length from the image is checked against the end of the
 * area it must lie in before anything is read at it; sums are done in 32 bits from values bounded
 * by the slot size (at most 1 MB), so they cannot wrap. */
#include "mcuboot.h"
#include <string.h>
#include "ed25519.h"
#include "fota_layout.h"
#include "sha256.h"

#define VECTORS_SIZE 8u /* initial SP and reset handler */

static uint32_t limit_of(const struct flash_area *fa)
{
    return fa->size < FOTA_MAX_IMAGE_SIZE ? fa->size : FOTA_MAX_IMAGE_SIZE;
}

/* The info header of a TLV area at off, which must end by end. On success start and stop bound the
 * area's TLVs. */
static uint8_t read_area(const struct flash_area *fa, uint32_t off, uint32_t end, uint16_t magic, uint32_t *start,
                         uint32_t *stop)
{
    struct fota_image_tlv_info info;
    if (off > end || end - off < sizeof(info)) {
        return MCUBOOT_BAD_SIZE;
    }
    if (fa_read(fa, off, &info, sizeof(info)) != FOTA_OK) {
        return MCUBOOT_READ_ERROR;
    }
    if (info.ti_magic != magic) {
        return MCUBOOT_BAD_TLV_INFO;
    }
    if (info.ti_tlv_tot < sizeof(info) || info.ti_tlv_tot > end - off) {
        return MCUBOOT_BAD_TLV;
    }
    *start = off + (uint32_t)sizeof(info);
    *stop = off + info.ti_tlv_tot;
    return MCUBOOT_OK;
}

/* Known kinds: where each belongs, its length, where its value goes, and a bit to catch doubles. */
struct kind {
    uint16_t type;
    uint8_t protected_area;
    uint8_t len;
    size_t value_off; /* offsetof(struct mcuboot_image, ...) */
    uint8_t bit;
};

static const struct kind KINDS[] = {
    {FOTA_IMAGE_TLV_SEC_CNT, 1u, 4u, offsetof(struct mcuboot_image, security_counter), 1u},
    {FOTA_IMAGE_TLV_SLOT, 1u, 4u, offsetof(struct mcuboot_image, slot_base), 2u},
    {FOTA_IMAGE_TLV_SHA256, 0u, 32u, offsetof(struct mcuboot_image, sha256), 4u},
    {FOTA_IMAGE_TLV_KEYHASH, 0u, 32u, offsetof(struct mcuboot_image, key_hash), 8u},
    {FOTA_IMAGE_TLV_ED25519, 0u, 64u, offsetof(struct mcuboot_image, signature), 16u},
};
#define SEEN_PROTECTED (1u | 2u)
#define SEEN_SIGNED (8u | 16u)

static uint8_t walk(const struct flash_area *fa, uint32_t off, uint32_t stop, uint8_t protected_area,
                    struct mcuboot_image *img, uint8_t *seen)
{
    while (off < stop) {
        struct fota_image_tlv t;
        if (stop - off < sizeof(t)) {
            return MCUBOOT_BAD_TLV;
        }
        if (fa_read(fa, off, &t, sizeof(t)) != FOTA_OK) {
            return MCUBOOT_READ_ERROR;
        }
        off += (uint32_t)sizeof(t);
        if (t.tl_len > stop - off) {
            return MCUBOOT_BAD_TLV;
        }
        const struct kind *k = NULL;
        for (size_t i = 0; i < sizeof(KINDS) / sizeof(KINDS[0]); i++) {
            if (KINDS[i].type == t.tl_type) {
                k = &KINDS[i];
            }
        }
        if (k == NULL) {
            if (protected_area) {
                return MCUBOOT_UNKNOWN_TLV; /* signed but not understood: refused, never skipped */
            }
        } else if (k->protected_area != protected_area) {
            return MCUBOOT_MISPLACED_TLV;
        } else if (t.tl_len != k->len) {
            return MCUBOOT_BAD_TLV;
        } else if (*seen & k->bit) {
            return MCUBOOT_DUPLICATE_TLV;
        } else {
            if (fa_read(fa, off, (uint8_t *)img + k->value_off, k->len) != FOTA_OK) {
                return MCUBOOT_READ_ERROR;
            }
            *seen |= k->bit;
        }
        off += t.tl_len;
    }
    return MCUBOOT_OK;
}

static uint8_t check_vectors(const struct flash_area *fa, const struct mcuboot_image *img)
{
    uint32_t v[2];
    if (fa_read(fa, FOTA_IMAGE_HDR_SIZE, v, sizeof(v)) != FOTA_OK) {
        return MCUBOOT_READ_ERROR;
    }
    /* The stack grows down from the initial SP: it may equal the end of SRAM, not lie below its base. */
    if (v[0] <= FOTA_SRAM_BASE || v[0] > FOTA_SRAM_BASE + FOTA_SRAM_SIZE || (v[0] % 8u) != 0u) {
        return MCUBOOT_BAD_VECTORS;
    }
    /* Thumb bit set, and the handler inside this slot's image body: a binding to the slot that does
     * not depend on the SLOT TLV. */
    uint32_t body = fa->base + FOTA_IMAGE_HDR_SIZE;
    uint32_t entry = v[1] & ~1u;
    if ((v[1] & 1u) == 0u || entry < body || entry - body >= img->hdr.ih_img_size) {
        return MCUBOOT_BAD_VECTORS;
    }
    return MCUBOOT_OK;
}

static const struct keyring_key *find_key(const struct keyring *ring, const uint8_t hash[32])
{
    const struct keyring_key *found = NULL;
    for (size_t i = 0; ring != NULL && i < ring->count; i++) {
        if (memcmp(ring->keys[i].hash, hash, 32) == 0) {
            found = &ring->keys[i];
        }
    }
    return found;
}

uint8_t mcuboot_parse(const struct flash_area *fa, const struct keyring *ring, struct mcuboot_image *img)
{
    memset(img, 0, sizeof(*img));
    if (fa == NULL || fa_read(fa, 0, &img->hdr, sizeof(img->hdr)) != FOTA_OK) {
        return MCUBOOT_READ_ERROR;
    }
    const struct fota_image_header *h = &img->hdr;
    if (fa_is_erased(fa, 0, sizeof(img->hdr))) {
        return MCUBOOT_ERASED;
    }
    if (h->ih_magic != FOTA_IMAGE_MAGIC) {
        return MCUBOOT_BAD_MAGIC;
    }
    if (h->ih_hdr_size != FOTA_IMAGE_HDR_SIZE || h->ih_load_addr != 0u || h->ih_flags != 0u) {
        return MCUBOOT_BAD_HEADER;
    }
    uint32_t limit = limit_of(fa);
    if (h->ih_img_size < VECTORS_SIZE || (h->ih_img_size % FOTA_IMAGE_BODY_ALIGN) != 0u ||
        h->ih_img_size > limit ||
        limit - h->ih_img_size < FOTA_IMAGE_HDR_SIZE + (uint32_t)h->ih_protect_tlv_size +
                                     sizeof(struct fota_image_tlv_info)) {
        return MCUBOOT_BAD_SIZE;
    }
    uint32_t prot_off = FOTA_IMAGE_HDR_SIZE + h->ih_img_size;
    img->signed_size = prot_off + h->ih_protect_tlv_size;
    uint8_t seen = 0;
    uint8_t fault;
    if (h->ih_protect_tlv_size != 0u) {
        uint32_t start;
        uint32_t stop;
        fault = read_area(fa, prot_off, img->signed_size, FOTA_IMAGE_TLV_PROT_INFO_MAGIC, &start, &stop);
        if (fault == MCUBOOT_OK && stop != img->signed_size) {
            fault = MCUBOOT_BAD_TLV_INFO; /* the area's own size disagrees with the header's */
        }
        if (fault == MCUBOOT_OK) {
            fault = walk(fa, start, stop, 1u, img, &seen);
        }
        if (fault != MCUBOOT_OK) {
            return fault;
        }
    }
    uint32_t start;
    uint32_t stop;
    fault = read_area(fa, img->signed_size, limit, FOTA_IMAGE_TLV_INFO_MAGIC, &start, &stop);
    if (fault == MCUBOOT_OK) {
        fault = walk(fa, start, stop, 0u, img, &seen);
    }
    if (fault != MCUBOOT_OK) {
        return fault;
    }
    img->total_size = stop;
    if ((seen & SEEN_SIGNED) != SEEN_SIGNED) {
        return MCUBOOT_UNSIGNED;
    }
    if ((seen & SEEN_PROTECTED) != SEEN_PROTECTED || !(seen & 4u)) {
        return MCUBOOT_MISSING_TLV;
    }
    if (img->slot_base != fa->base) {
        return MCUBOOT_WRONG_SLOT;
    }
    fault = check_vectors(fa, img);
    if (fault != MCUBOOT_OK) {
        return fault;
    }
    img->key = find_key(ring, img->key_hash);
    return img->key == NULL ? MCUBOOT_UNKNOWN_KEY : MCUBOOT_OK;
}

static uint8_t hash_range(const struct flash_area *fa, struct sha256_ctx *ctx, uint32_t off, uint32_t end)
{
    uint8_t buf[256];
    while (off < end) {
        uint32_t n = end - off < sizeof(buf) ? end - off : (uint32_t)sizeof(buf);
        if (fa_read(fa, off, buf, n) != FOTA_OK) {
            return MCUBOOT_READ_ERROR;
        }
        sha256_update(ctx, buf, n);
        off += n;
    }
    return MCUBOOT_OK;
}

uint8_t mcuboot_check_hash(const struct flash_area *fa, const struct mcuboot_image *img, uint8_t *file_sha256)
{
    struct sha256_ctx ctx;
    uint8_t digest[32];
    sha256_init(&ctx);
    if (hash_range(fa, &ctx, 0u, img->signed_size) != MCUBOOT_OK) {
        return MCUBOOT_READ_ERROR;
    }
    if (file_sha256 != NULL) {
        struct sha256_ctx file = ctx;
        if (hash_range(fa, &file, img->signed_size, img->total_size) != MCUBOOT_OK) {
            return MCUBOOT_READ_ERROR;
        }
        sha256_final(&file, file_sha256);
    }
    sha256_final(&ctx, digest);
    return memcmp(digest, img->sha256, sizeof(digest)) == 0 ? MCUBOOT_OK : MCUBOOT_BAD_HASH;
}

uint8_t mcuboot_check_signature(const struct mcuboot_image *img)
{
    if (img->key == NULL) {
        return MCUBOOT_UNKNOWN_KEY;
    }
    return ed25519_verify(img->signature, img->key->pub, img->sha256, sizeof(img->sha256)) == ED25519_OK
               ? MCUBOOT_OK
               : MCUBOOT_BAD_SIGNATURE;
}

uint8_t mcuboot_validate(const struct flash_area *fa, const struct keyring *ring, struct mcuboot_image *img,
                         uint8_t *file_sha256)
{
    uint8_t fault = mcuboot_parse(fa, ring, img);
    if (fault == MCUBOOT_OK) {
        fault = mcuboot_check_hash(fa, img, file_sha256);
    }
    if (fault == MCUBOOT_OK) {
        fault = mcuboot_check_signature(img);
    }
    return fault;
}

const char *mcuboot_fault_str(uint8_t fault)
{
    static const char *const names[MCUBOOT_FAULT_COUNT] = {
        "ok", "erased", "bad-magic", "bad-header", "bad-size", "bad-tlv-info", "bad-tlv", "unknown-tlv",
        "misplaced-tlv", "duplicate-tlv", "unsigned", "missing-tlv", "wrong-slot", "bad-vectors",
        "unknown-key", "bad-hash", "bad-signature", "read-error",
    };
    return fault < MCUBOOT_FAULT_COUNT ? names[fault] : "?";
}
