/* Resets: a boot counter in backup register 0 chooses the step. Boot 1 requests a software reset
 * (AIRCR), boot 2 starts the watchdog and stops refreshing it after 5 refreshes, boot 3 and later
 * only log. Every boot logs the reset flags (RCC_CSR) and clears them (RMVF). */
#include "prog.h"

#define PWR_CR REG(0x40007000)
#define RTC_BKP0R REG(0x40002850)

int main(void)
{
    uart_init();
    RCC_APB1ENR |= 1u << 28; DSB(); /* PWR */
    PWR_CR |= 1u << 8;       /* DBP: backup domain writable */
    uint32_t boot = RTC_BKP0R + 1u;
    RTC_BKP0R = boot;
    line("boot", boot);
    line("csr", RCC_CSR & 0xFE000000u);
    RCC_CSR |= 1u << 24; /* RMVF */
    line("csr_cleared", RCC_CSR & 0xFE000000u);
    if (boot == 1u) {
        SCB_AIRCR = 0x05FA0004u;
        for (;;) {
        }
    }
    if (boot == 2u) {
        SYST_RVR = 16000u - 1u; /* 1 ms */
        SYST_CVR = 0;
        SYST_CSR = 5; /* no interrupt: poll COUNTFLAG */
        IWDG_KR = 0xCCCCu;
        IWDG_KR = 0x5555u;
        IWDG_PR = 0;      /* /4: 8 kHz */
        IWDG_RLR = 79u;   /* 80 / 8 kHz = 10 ms */
        IWDG_KR = 0xAAAAu;
        for (uint32_t ms = 0;; ms++) {
            while (!(SYST_CSR & (1u << 16))) {
            }
            if (ms < 50u) {
                IWDG_KR = 0xAAAAu; /* refreshed every ms for 50 ms, then never */
            }
            if (ms == 50u) {
                put("stop refresh\n");
            }
        }
    }
    for (;;) {
        __asm volatile("wfi");
    }
}
