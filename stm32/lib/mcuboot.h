/* Checks of an MCUboot image in a slot (docs/image-format.md, "Signed images"): the header, the
 * protected and unprotected TLV areas walked defensively, the slot binding, the vectors, the
 * signing key looked up in a key ring by the image's KEYHASH, the SHA-256 over header + image +
 * protected TLVs, and the Ed25519 signature of that SHA-256. The same rules, in the same order and
 * with the same names, as fota_formats.mcuboot.validate_image. The slot is only read, through the
 * flash-area API; no offset read is taken from the image before it is checked against the slot. */
#ifndef FOTA_MCUBOOT_H
#define FOTA_MCUBOOT_H

#include <stddef.h>
#include <stdint.h>
#include "flash_area.h"
#include "fota_image.h"

enum mcuboot_fault {
    MCUBOOT_OK = 0,
    MCUBOOT_ERASED,        /* the header reads 0xFF */
    MCUBOOT_BAD_MAGIC,     /* ih_magic wrong; 0 = withdrawn */
    MCUBOOT_BAD_HEADER,    /* ih_hdr_size, ih_load_addr or ih_flags not ours */
    MCUBOOT_BAD_SIZE,      /* ih_img_size too small, misaligned, or header + image + TLVs past the slot */
    MCUBOOT_BAD_TLV_INFO,  /* a TLV area's magic, or the protected area's size against the header */
    MCUBOOT_BAD_TLV,       /* a TLV or a TLV area runs past its end, or a known TLV has the wrong length */
    MCUBOOT_UNKNOWN_TLV,   /* a kind this bootloader does not know, in the protected area */
    MCUBOOT_MISPLACED_TLV, /* a protected-only kind in the unprotected area, or the reverse */
    MCUBOOT_DUPLICATE_TLV, /* a known kind twice */
    MCUBOOT_UNSIGNED,      /* no KEYHASH or no ED25519 */
    MCUBOOT_MISSING_TLV,   /* no SHA256, SEC_CNT or SLOT */
    MCUBOOT_WRONG_SLOT,    /* the SLOT TLV names another slot */
    MCUBOOT_BAD_VECTORS,   /* initial SP outside SRAM, or reset handler not in this slot's image */
    MCUBOOT_UNKNOWN_KEY,   /* no key of the ring has the image's KEYHASH */
    MCUBOOT_BAD_HASH,      /* the SHA-256 differs from the SHA256 TLV */
    MCUBOOT_BAD_SIGNATURE, /* Ed25519 refuses the signature */
    MCUBOOT_READ_ERROR,
    MCUBOOT_FAULT_COUNT
};

/* A trusted public key: the raw 32 bytes and the SHA-256 of its DER SubjectPublicKeyInfo (what
 * imgtool writes into KEYHASH). The firmware's ring is generated into the build folder. */
struct keyring_key {
    uint8_t pub[32];
    uint8_t hash[32];
};

struct keyring {
    const struct keyring_key *keys;
    size_t count;
};

/* What the checks found; filled as far as they got. */
struct mcuboot_image {
    struct fota_image_header hdr;
    uint32_t signed_size;      /* header + image + protected TLVs: what the SHA-256 covers */
    uint32_t total_size;       /* + the unprotected TLV area: the bytes of the image on flash */
    uint32_t security_counter;
    uint32_t slot_base;        /* the SLOT TLV */
    uint8_t sha256[32];        /* the SHA256 TLV */
    uint8_t key_hash[32];      /* the KEYHASH TLV */
    uint8_t signature[64];     /* the ED25519 TLV */
    const struct keyring_key *key; /* the ring's key with key_hash, or NULL */
};

/* The cheap checks: header, TLV areas, slot, vectors, key lookup; nothing is hashed. */
uint8_t mcuboot_parse(const struct flash_area *fa, const struct keyring *ring, struct mcuboot_image *img);
/* The SHA-256 of [0, signed_size) against the SHA256 TLV; with file_sha256, the same pass continues
 * over the unprotected TLVs to the SHA-256 of the whole image (what BEGIN announces). */
uint8_t mcuboot_check_hash(const struct flash_area *fa, const struct mcuboot_image *img, uint8_t *file_sha256);
/* The Ed25519 signature of the SHA256 TLV under img->key. */
uint8_t mcuboot_check_signature(const struct mcuboot_image *img);
/* All of it: parse, hash, signature. */
uint8_t mcuboot_validate(const struct flash_area *fa, const struct keyring *ring, struct mcuboot_image *img,
                         uint8_t *file_sha256);
/* The fault's name, as fota_formats.mcuboot names it ("ok", "erased", ..., "bad-signature"). */
const char *mcuboot_fault_str(uint8_t fault);

#endif /* FOTA_MCUBOOT_H */
