/* Firmware versions, MAJOR.MINOR.PATCH+BUILD as the image information block carries them, and the
 * one order the firmware puts them in (version_cmp). */
#ifndef FOTA_VERSION_H
#define FOTA_VERSION_H

#include <stdint.h>
#include "fota_image.h"

struct fw_version {
    uint8_t major;
    uint8_t minor;
    uint16_t patch;
    uint32_t build; /* build number: carried, recorded and logged, but not ordered (version_cmp) */
};

/* The version of the image a header describes (MCUboot's revision is our patch). */
static inline struct fw_version version_of(const struct fota_image_header *h)
{
    struct fw_version v = {h->ih_ver_major, h->ih_ver_minor, h->ih_ver_revision, h->ih_ver_build};
    return v;
}

/* <0, 0 or >0 as a is an older release than b, the same release, or a newer one: major, minor and
 * patch compared in that order. The build number takes no part, and this is right for both users:
 * - a build number counts builds, not releases: a rebuild of 1.2.0 is release 1.2.0 again, as the
 *   host tools, the server and the bridge see it (they compare MAJOR.MINOR.PATCH; SemVer 2.0.0
 *   gives build metadata no precedence either);
 * - the update agent refuses BEGIN for an image that is not newer than the running one unless the
 *   master asks for a downgrade: counting the build would let a rebuild of the running release in
 *   without that flag, which no other part of the system would ever offer;
 * - the bootloader, when the journal has no usable record (first boot, a compaction cut short),
 *   boots the newer valid slot and slot A when both hold the same release. Safety needs only that
 *   this is a fixed total order with a fixed tie-break, applied alike by the boot decision and by a
 *   compaction preparing for that moment (withdraw.c): both call boot_pick_highest, which calls
 *   this. */
int version_cmp(const struct fw_version *a, const struct fw_version *b);

#endif /* FOTA_VERSION_H */
