/* System clock: 168 MHz from the Discovery board's 8 MHz HSE through the main PLL, with a bounded
 * wait on every ready bit and a fallback to the HSI (PLL from HSI, or the bare 16 MHz HSI) that is
 * reported to the caller, which logs it. */
#ifndef FOTA_CLOCK_H
#define FOTA_CLOCK_H

#include <stdint.h>

enum clock_source {
    CLOCK_HSE_PLL = 0, /* normal: 8 MHz HSE -> PLL -> 168 MHz */
    CLOCK_HSI_PLL,     /* HSE did not start: 16 MHz HSI -> PLL -> 168 MHz */
    CLOCK_HSI,         /* PLL did not lock either: 16 MHz HSI, prescalers /1 */
};

struct clock_info {
    uint8_t source;     /* enum clock_source */
    uint32_t sysclk_hz; /* = HCLK */
    uint32_t pclk1_hz;  /* APB1: USART2, SPI2, IWDG interface */
    uint32_t pclk2_hz;  /* APB2: ADC1 */
};

/* Configure the clock tree; fills ci. Returns FOTA_OK on HSE_PLL, FOTA_E_TIMEOUT when it had to
 * fall back (ci->source says to what). */
int clock_init(struct clock_info *ci);
const char *clock_source_str(uint8_t source);

#endif /* FOTA_CLOCK_H */
