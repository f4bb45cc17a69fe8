/* SysTick: 1 kHz tick from the core clock, millis(). */
#ifndef FOTA_SYSTICK_H
#define FOTA_SYSTICK_H

#include <stdint.h>

void systick_init(uint32_t hclk_hz);
/* Stop the tick and drop a pending tick exception (before jumping to an application). */
void systick_stop(void);
uint32_t millis(void);

#endif /* FOTA_SYSTICK_H */
