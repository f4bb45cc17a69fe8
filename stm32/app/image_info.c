/* The image information block of this build (docs/image-format.md), placed by the linker at
 * IMAGE_INFO_OFFSET from the slot base (.image_info, stm32/ld/app_sections.ld). Slot identity and
 * version come from the Makefile (-DFW_SLOT, -DFW_VER_*, -DFW_BUILD) and only this file sees them;
 * the rest of the application reads them from here. ii_image_size is filled in after linking. */
#include "app.h"
#include "fota_layout.h"

#if FW_SLOT == 0
#define FW_LOAD_ADDR FOTA_REGION_SLOT_A_BASE
#elif FW_SLOT == 1
#define FW_LOAD_ADDR FOTA_REGION_SLOT_B_BASE
#else
#error "FW_SLOT must be 0 (slot A) or 1 (slot B)"
#endif

__attribute__((section(".image_info"), used)) const struct fota_image_info app_image_info = {
    .ii_magic = FOTA_IMAGE_INFO_MAGIC,
    .ii_format = FOTA_IMAGE_FORMAT_VERSION,
    .ii_slot = FW_SLOT,
    .ii_flags = 0,
    .ii_load_addr = FW_LOAD_ADDR,
    .ii_ver_major = FW_VER_MAJOR,
    .ii_ver_minor = FW_VER_MINOR,
    .ii_ver_patch = FW_VER_PATCH,
    .ii_build = FW_BUILD,
    .ii_image_size = FOTA_IMAGE_SIZE_UNSET,
    .ii_reserved = {0},
};
