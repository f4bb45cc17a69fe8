/* The identity of this build (app.h): the slot it is linked for comes from the Makefile (-DFW_SLOT)
 * and only this file sees it; the version is read from the MCUboot image header at the slot base,
 * which the post-link step (imgtool) writes into the zero bytes the linker reserves there. */
#include "app.h"
#include "fota_layout.h"

#if FW_SLOT == 0
#define FW_LOAD_ADDR FOTA_REGION_SLOT_A_BASE
#elif FW_SLOT == 1
#define FW_LOAD_ADDR FOTA_REGION_SLOT_B_BASE
#else
#error "FW_SLOT must be 0 (slot A) or 1 (slot B)"
#endif

const uint8_t app_slot = FW_SLOT;
const struct fota_image_header *const app_header = (const struct fota_image_header *)FW_LOAD_ADDR;
