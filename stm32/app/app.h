/* The application's shared pieces: identity, hooks for the update agent, the self-test. */
#ifndef FOTA_APP_H
#define FOTA_APP_H

#include <stdint.h>
#include "fota_image.h"

/* This build's slot (FOTA_SLOT_A / _B, from the Makefile) and its image header at the slot base,
 * written by the post-link signing (version): app/image_info.c. */
extern const uint8_t app_slot;
extern const struct fota_image_header *const app_header;

/* Update-agent hooks: weak no-ops in app/main.c, overridden by app/link.c. link_init runs once
 * before the main loop, link_poll on every iteration of it. */
void link_init(void);
void link_poll(void);
/* Nonzero when the link has a frame waiting for link_poll (called with interrupts disabled, right
 * before the main loop's WFI). */
int link_pending(void);

/* The main loop sleeps (WFI) after each iteration until the next interrupt, SysTick at the latest
 * (1 ms). Code that has more work to do right away calls this to skip the next sleep. */
void app_stay_awake(void);

/* Latest die temperature in 0.01 degC; 0 when no conversion succeeded yet (returns 0 then). */
int app_temperature(int32_t *centi_c);

#endif /* FOTA_APP_H */
