/* The SPI link glue (stm32/app/link.c) and the update agent's port on the chip
 * (stm32/app/agent_port.c). link_init()/link_poll() are declared in app.h. */
#ifndef FOTA_LINK_H
#define FOTA_LINK_H

#include <stdint.h>
#include "agent.h"

/* The agent's hardware port: SysTick clock, the application's temperature, the unique ID,
 * AIRCR reset, watchdog refresh. */
extern const struct agent_port agent_port_stm32;

/* 1 once link_init armed SPI2 and both DMA streams (part of the trial self-test). */
int link_up(void);

/* The update agent the link serves (set up by link_init). app/trial.c confirms a trial boot
 * through it (agent_confirm), so the CONFIRMED record is written in one place. */
struct agent *link_agent(void);

/* Test-build hooks (stm32/app/variants/): weak defaults in agent_port.c.
 * app_variant_start runs at the end of link_init; app_variant_selftest is ANDed into the
 * self-test. */
void app_variant_start(void);
int app_variant_selftest(void);

#endif /* FOTA_LINK_H */
