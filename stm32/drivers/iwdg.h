/* Independent watchdog: started by the bootloader for a trial boot, refreshed by the application.
 * Once started it cannot be stopped until the next reset (RM0090 section 19.3). */
#ifndef FOTA_IWDG_H
#define FOTA_IWDG_H

#include <stdint.h>

/* Timeout of the trial-boot watchdog: long enough for a 128 KB sector erase at its datasheet
 * maximum (2 s, DS8626) plus margin, short enough to catch a hang quickly. */
#define IWDG_TIMEOUT_MS 4000u

/* Start with IWDG_TIMEOUT_MS. Returns FOTA_OK or FOTA_E_TIMEOUT (registers did not update). */
int iwdg_start(void);
void iwdg_refresh(void);

#endif /* FOTA_IWDG_H */
