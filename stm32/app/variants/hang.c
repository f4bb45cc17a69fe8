/* Test build (APP_VARIANT=hang): the application starts, logs its start line, then hangs before
 * its main loop, so it never refreshes the watchdog nor confirms itself. On a trial boot the
 * watchdog resets it at every attempt and the bootloader reverts (tests/link). */
#include "app.h"
#include "link.h"
#include "log.h"
#include "stm32f407_regs.h"

void app_variant_start(void)
{
    log_begin();
    log_str("variant hang: stopping here");
    log_end();
    cpu_irq_enable();
    for (;;) {
        cpu_wfi(); /* a dead lock: interrupts still run, the main loop never again */
    }
}
