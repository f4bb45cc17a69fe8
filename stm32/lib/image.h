/* Validation of a slot image: information block, trailer and SHA-256 (docs/image-format.md). */
#ifndef FOTA_IMAGE_CHECK_H
#define FOTA_IMAGE_CHECK_H

#include "flash_area.h"
#include "fota_image.h"
#include "version.h"

enum image_fault {
    IMAGE_OK = 0,
    IMAGE_ERASED,        /* slot is erased at the information block */
    IMAGE_BAD_MAGIC,
    IMAGE_BAD_FORMAT,
    IMAGE_WRONG_SLOT,    /* ii_slot is the other slot */
    IMAGE_BAD_LOAD_ADDR, /* ii_load_addr is not this slot's base */
    IMAGE_BAD_SIZE,      /* ii_image_size unset, misaligned, or trailer beyond the slot / 256 KB */
    IMAGE_BAD_TRAILER,   /* trailer magic, format or size */
    IMAGE_BAD_HASH,      /* SHA-256 differs from the trailer's */
    IMAGE_BAD_VECTORS,   /* initial SP outside SRAM or reset handler outside the slot / not Thumb */
    IMAGE_READ_ERROR,
    IMAGE_BAD_CRC,       /* image_validate_crc: the CRC differs from the recorded one (or none) */
    IMAGE_NOT_CHECKED,   /* image_inspect: the cheap checks passed, the contents were not read */
};

struct image_summary {
    uint8_t state;  /* SLOT_STATE_EMPTY / _VALID / _INVALID */
    uint8_t fault;  /* enum image_fault */
    struct fw_version ver;
    uint32_t image_size;  /* ii_image_size; + trailer = bytes on flash */
};

/* Validate the image in slot (SLOT_A / SLOT_B). Always fills sum. Returns FOTA_OK when valid. */
int image_validate(uint8_t slot, struct image_summary *sum);
/* "Validate once" (MCUboot's term): the checks of image_validate with, in place of the SHA-256,
 * the CRC of image + trailer (image_crc) compared with crc, the value a CONFIRMED journal record
 * took after a full validation of the same slot. Equal CRCs mean the flash still holds the bytes
 * that passed the SHA-256 (a corrupted word changes the CRC: CRC-32 detects every burst up to 32
 * bits and misses other random damage with probability 2^-32); an adversary who can write the
 * slot could also write the journal, so this check is no weaker than the trailer's hash, which
 * is unsigned. FOTA_E_IMAGE with IMAGE_BAD_CRC when they differ or crc is 0 (none recorded):
 * the caller then runs image_validate. */
int image_validate_crc(uint8_t slot, uint32_t crc, struct image_summary *sum);
/* The cheap checks only (information block, size, trailer, vectors); the contents are not read.
 * sum->state is never VALID: at best INVALID with IMAGE_NOT_CHECKED and the version filled in. */
int image_inspect(uint8_t slot, struct image_summary *sum);
/* CRC of [0, image_size + trailer) of the slot: the flash port's CRC unit, else software
 * (crc32_words_update). */
int image_crc(uint8_t slot, uint32_t image_size, uint32_t *crc);
/* image_validate, and in the same pass over the flash the SHA-256 of the whole image file
 * (ii_image_size bytes + the trailer): what the update agent's VERIFY compares with BEGIN's hash.
 * *hashed is 1 when that pass ran (the image is valid, or only its hash is wrong); file_sha256 is
 * meaningful only then. */
int image_validate_file(uint8_t slot, struct image_summary *sum, uint8_t file_sha256[32], int *hashed);
/* Withdraw the image in slot: program its ii_magic to IMAGE_INVALIDATED_MAGIC (all zero, which
 * programming can always do, fa_overwrite_ok). It then fails validation (IMAGE_BAD_MAGIC). */
int image_withdraw(uint8_t slot);
const char *image_fault_str(uint8_t fault);

#endif /* FOTA_IMAGE_CHECK_H */
