/* Validation of a slot image: an MCUboot image signed with imgtool (docs/image-format.md), checked
 * by mcuboot.c against the key ring set with image_set_keyring. */
#ifndef FOTA_IMAGE_CHECK_H
#define FOTA_IMAGE_CHECK_H

#include "flash_area.h"
#include "fota_image.h"
#include "mcuboot.h"
#include "version.h"

/* The faults of mcuboot.c, and two of this module's. */
enum image_fault {
    IMAGE_OK = MCUBOOT_OK,
    IMAGE_ERASED = MCUBOOT_ERASED,
    IMAGE_BAD_MAGIC = MCUBOOT_BAD_MAGIC,
    IMAGE_BAD_HEADER = MCUBOOT_BAD_HEADER,
    IMAGE_BAD_SIZE = MCUBOOT_BAD_SIZE,
    IMAGE_BAD_TLV_INFO = MCUBOOT_BAD_TLV_INFO,
    IMAGE_BAD_TLV = MCUBOOT_BAD_TLV,
    IMAGE_UNKNOWN_TLV = MCUBOOT_UNKNOWN_TLV,
    IMAGE_MISPLACED_TLV = MCUBOOT_MISPLACED_TLV,
    IMAGE_DUPLICATE_TLV = MCUBOOT_DUPLICATE_TLV,
    IMAGE_UNSIGNED = MCUBOOT_UNSIGNED,
    IMAGE_MISSING_TLV = MCUBOOT_MISSING_TLV,
    IMAGE_WRONG_SLOT = MCUBOOT_WRONG_SLOT,
    IMAGE_BAD_VECTORS = MCUBOOT_BAD_VECTORS,
    IMAGE_UNKNOWN_KEY = MCUBOOT_UNKNOWN_KEY,
    IMAGE_BAD_HASH = MCUBOOT_BAD_HASH,
    IMAGE_BAD_SIGNATURE = MCUBOOT_BAD_SIGNATURE,
    IMAGE_READ_ERROR = MCUBOOT_READ_ERROR,
    IMAGE_BAD_CRC = MCUBOOT_FAULT_COUNT, /* image_validate_crc: the CRC differs from the recorded one (or none) */
    IMAGE_NOT_CHECKED,                   /* image_inspect: the cheap checks passed, the contents were not read */
    IMAGE_ROLLBACK,                      /* valid, but its security counter is below the journal's floor
                                          * (boot_enforce_floor): never booted */
};

struct image_summary {
    uint8_t state;  /* SLOT_STATE_EMPTY / _VALID / _INVALID */
    uint8_t fault;  /* enum image_fault */
    uint8_t key_id[4];  /* the first 4 bytes of the image's KEYHASH (logs: 8 hex digits) */
    struct fw_version ver;
    uint32_t image_size;        /* header + image + both TLV areas: the bytes on flash */
    uint32_t signed_size;       /* header + image + protected TLVs: what the SHA-256 covers */
    uint32_t security_counter;
};

/* The public keys images may be signed with (the firmware's is generated into the build folder,
 * stm32/keys/keyring.c). Until it is set, every image is IMAGE_UNKNOWN_KEY. */
void image_set_keyring(const struct keyring *ring);

/* Validate the image in slot (SLOT_A / SLOT_B): every check, the SHA-256 and the signature. Always
 * fills sum. Returns FOTA_OK when valid. */
int image_validate(uint8_t slot, struct image_summary *sum);
/* "Validate once" (MCUboot's term): the cheap checks of image_validate with, in place of the SHA-256
 * and the signature, the CRC of the whole image (image_crc) compared with crc, the value a CONFIRMED
 * journal record took after a full validation of the same slot. Equal CRCs mean the flash still holds
 * the bytes that passed the signature check (a corrupted word changes the CRC: CRC-32 detects every
 * burst up to 32 bits and misses other random damage with probability 2^-32). Flash corruption is
 * caught this way; an adversary who can write the slot and the journal is outside what a CRC or the
 * boot-time signature could stop (docs/security.md). FOTA_E_IMAGE with IMAGE_BAD_CRC when they
 * differ or crc is 0 (none recorded): the caller then runs image_validate. */
int image_validate_crc(uint8_t slot, uint32_t crc, struct image_summary *sum);
/* The cheap checks only (header, TLV areas, slot, vectors, key); the contents are not hashed.
 * sum->state is never VALID: at best INVALID with IMAGE_NOT_CHECKED and the version filled in. */
int image_inspect(uint8_t slot, struct image_summary *sum);
/* CRC of [0, image_size) of the slot (rounded up to whole words): the flash port's CRC unit, else
 * software (crc32_words_update). */
int image_crc(uint8_t slot, uint32_t image_size, uint32_t *crc);
/* image_validate, and in the same pass over the flash the SHA-256 of the whole image (what BEGIN
 * announces). *hashed is 1 when that pass ran; file_sha256 is meaningful only then. */
int image_validate_file(uint8_t slot, struct image_summary *sum, uint8_t file_sha256[32], int *hashed);
/* The update agent's VERIFY: the cheap checks on flash, then digest (the SHA-256 of the signed part,
 * taken while the image arrived) against the SHA256 TLV, then the signature. */
int image_validate_digest(uint8_t slot, const uint8_t digest[32], struct image_summary *sum);
/* Withdraw the image in slot: program its ih_magic to 0 (which programming can always do,
 * fa_overwrite_ok). It then fails validation (IMAGE_BAD_MAGIC). */
int image_withdraw(uint8_t slot);
const char *image_fault_str(uint8_t fault);

#endif /* FOTA_IMAGE_CHECK_H */
