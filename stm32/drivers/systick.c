/* SysTick timer (PM0214 section 4.5). */
#include "systick.h"
#include "stm32f407_regs.h"

static volatile uint32_t ticks_ms;

void SysTick_Handler(void);
void SysTick_Handler(void)
{
    ticks_ms++;
}

void systick_init(uint32_t hclk_hz)
{
    SYSTICK_CTRL = 0u;
    SYSTICK_LOAD = hclk_hz / 1000u - 1u; /* 24-bit: fine up to 16.7 GHz / 1000 */
    SYSTICK_VAL = 0u;
    SYSTICK_CTRL = SYSTICK_CTRL_CLKSOURCE | SYSTICK_CTRL_TICKINT | SYSTICK_CTRL_ENABLE;
}

void systick_stop(void)
{
    SYSTICK_CTRL = 0u;
    SCB_ICSR = SCB_ICSR_PENDSTCLR;
}

uint32_t millis(void)
{
    return ticks_ms;
}
