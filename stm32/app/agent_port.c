/* The update agent's port on the STM32 (struct agent_port, agent.h) and the application's side of
 * the trial self-test: the link must be up too. */
#include <string.h>

#include "app.h"
#include "cpu.h"
#include "iwdg.h"
#include "link.h"
#include "stm32f407_regs.h"
#include "systick.h"
#include "trial.h"

static uint32_t port_millis(void)
{
    return millis();
}

static int16_t port_temp_centi(void)
{
    int32_t c = 0;
    (void)app_temperature(&c);
    if (c > INT16_MAX) {
        c = INT16_MAX;
    } else if (c < INT16_MIN) {
        c = INT16_MIN;
    }
    return (int16_t)c;
}

static void port_read_uid(uint8_t uid[12])
{
    /* Three word reads: the unique ID is word-aligned (RM0090 section 39.1). */
    for (uint32_t i = 0; i < 3u; i++) {
        uint32_t w = MMIO32(UID_BASE + 4u * i);
        memcpy(uid + 4u * i, &w, 4);
    }
}

static void port_reset(void)
{
    cpu_system_reset();
}

static void port_kick(void)
{
    /* Never keep alive an application whose self-test gave up: the watchdog must take it. */
    if (trial_watchdog_ok()) {
        iwdg_refresh();
    }
}

const struct agent_port agent_port_stm32 = {
    .millis = port_millis,
    .temp_centi = port_temp_centi,
    .read_uid = port_read_uid,
    .reset = port_reset,
    .kick = port_kick,
};

/* Overrides the weak hook of app/trial.c. */
int app_selftest_extra(void)
{
    return link_up() && app_variant_selftest();
}

__attribute__((weak)) void app_variant_start(void)
{
}

__attribute__((weak)) int app_variant_selftest(void)
{
    return 1;
}
