/* Test build (APP_VARIANT=noconfirm): the application runs normally (LED, temperature, link) but
 * its self-test never passes, so a trial boot is never confirmed: the self-test gives up at its
 * deadline, the watchdog resets, and after the last attempt the bootloader reverts (tests/link). */
#include "link.h"

int app_variant_selftest(void)
{
    return 0;
}
