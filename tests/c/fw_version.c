/* version: the one version order (major, minor, patch; the build number takes no part). */
#include "fixture.h"
#include "version.h"

static int cmp(struct fw_version a, struct fw_version b)
{
    return version_cmp(&a, &b);
}

TEST(version_order_major_minor_patch)
{
    CHECK(cmp((struct fw_version){2, 0, 0, 0}, (struct fw_version){1, 255, 65535, 99}) > 0, "major first");
    CHECK(cmp((struct fw_version){1, 2, 0, 0}, (struct fw_version){1, 1, 65535, 99}) > 0, "then minor");
    CHECK(cmp((struct fw_version){1, 1, 10, 0}, (struct fw_version){1, 1, 9, 99}) > 0, "then patch");
    CHECK(cmp((struct fw_version){1, 1, 9, 99}, (struct fw_version){1, 1, 10, 0}) < 0, "and the other way");
    CHECK_EQ(cmp((struct fw_version){1, 1, 9, 0}, (struct fw_version){1, 1, 9, 0}), 0);
}

TEST(version_build_number_is_not_ordered)
{
    /* A rebuild of a release is the same release, for the update agent and the bootloader alike. */
    CHECK_EQ(cmp((struct fw_version){1, 2, 3, 8}, (struct fw_version){1, 2, 3, 7}), 0);
    CHECK_EQ(cmp((struct fw_version){1, 2, 3, 0}, (struct fw_version){1, 2, 3, 0xFFFFFFFFu}), 0);
}

TEST(version_of_information_block)
{
    struct fota_image_header ii = {.ih_ver_major = 3, .ih_ver_minor = 4, .ih_ver_revision = 500, .ih_ver_build = 6};
    struct fw_version v = version_of(&ii);
    CHECK(v.major == 3 && v.minor == 4 && v.patch == 500 && v.build == 6, "%u.%u.%u+%u", v.major, v.minor, v.patch,
          v.build);
}
