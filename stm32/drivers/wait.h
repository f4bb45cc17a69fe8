/* Bounded busy-waits. The bound is a count of poll iterations computed from a time and the core
 * clock in MHz: one iteration takes at least one cycle, so the wait lasts at least max_us before it
 * gives up (at most a few times longer). No timer needed, so it also works before the clock and
 * SysTick are set up and from SRAM while the flash is busy. */
#ifndef FOTA_WAIT_H
#define FOTA_WAIT_H

#include <stdint.h>
#include "cpu.h" /* g_core_mhz */

/* Poll until (reg & mask) == value; 1 when reached, 0 on timeout. */
static inline int wait_reg(volatile uint32_t *reg, uint32_t mask, uint32_t value, uint32_t max_us)
{
    uint32_t limit = max_us * g_core_mhz;
    for (uint32_t i = 0; i <= limit; i++) {
        if ((*reg & mask) == value) {
            return 1;
        }
    }
    return 0;
}

/* Spin for at least us microseconds (short settling delays only). */
static inline void delay_us_at_least(uint32_t us)
{
    uint32_t n = us * g_core_mhz;
    for (volatile uint32_t i = 0; i < n; i++) {
    }
}

#endif /* FOTA_WAIT_H */
