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
};

struct image_summary {
    uint8_t state;  /* SLOT_STATE_EMPTY / _VALID / _INVALID */
    uint8_t fault;  /* enum image_fault */
    struct fw_version ver;
    uint32_t image_size;  /* ii_image_size; + trailer = bytes on flash */
};

/* Validate the image in slot (SLOT_A / SLOT_B). Always fills sum. Returns FOTA_OK when valid. */
int image_validate(uint8_t slot, struct image_summary *sum);
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
