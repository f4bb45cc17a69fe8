/* Trial boot self-test and confirmation. The bootloader starts a freshly activated image with the
 * watchdog running (journal: state TRIAL, active slot = this slot). The application confirms
 * itself once it has run TRIAL_CONFIRM_AFTER_MS with the temperature sensor answering (and the
 * optional app_selftest_extra hook agreeing); if that has not happened by TRIAL_DEADLINE_MS it stops
 * refreshing the watchdog, which resets the chip, and the bootloader counts the attempt.
 * The CONFIRMED record is written by the update agent (agent_confirm, agent/agent.c), for the
 * self-test here as for the link's CONFIRM command. */
#ifndef FOTA_TRIAL_H
#define FOTA_TRIAL_H

#include <stdint.h>

#define TRIAL_CONFIRM_AFTER_MS 3000u
#define TRIAL_DEADLINE_MS 8000u

/* Read the journal: is this boot a trial of this slot? */
void trial_init(void);
/* Called periodically with the uptime and whether the last sensor reading succeeded. */
void trial_poll(uint32_t now_ms, int sensor_ok);
/* 1 while the main loop may refresh the watchdog. */
int trial_watchdog_ok(void);
/* 1 on a trial boot that has not been confirmed yet. */
int trial_pending(void);
/* Extra self-test condition (e.g. "the link is up"); weak, returns 1 by default. */
int app_selftest_extra(void);

#endif /* FOTA_TRIAL_H */
