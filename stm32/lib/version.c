/* Firmware versions (version.h). */
#include "version.h"

int version_cmp(const struct fw_version *a, const struct fw_version *b)
{
    if (a->major != b->major) {
        return a->major < b->major ? -1 : 1;
    }
    if (a->minor != b->minor) {
        return a->minor < b->minor ? -1 : 1;
    }
    if (a->patch != b->patch) {
        return a->patch < b->patch ? -1 : 1;
    }
    return 0; /* the build number is not compared: see version.h */
}
