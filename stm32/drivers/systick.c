/* SysTick timer (PM0214 section 4.5).
 *
 * The handler runs from SRAM (RAMFUNC) and its counter is in SRAM: during a flash erase (1 s
 * typical for 128 KB) the CPU waits in a RAM loop and any fetch from flash would stall it (single
 * bank, RM0090 section 3.5). The vector must be read from SRAM too, which the application arranges
 * with cpu_vectors_to_sram() (link_init); with the vector table still in flash the tick exception
 * waits for the erase and millis() loses its duration (a pending exception counts once). */
#include "systick.h"
#include "cpu.h"
#include "stm32f407_regs.h"

static volatile uint32_t ticks_ms;

void SysTick_Handler(void);
RAMFUNC void SysTick_Handler(void)
{
    ticks_ms++;
    /* Cortex-M4 erratum 838869 (ARM ID, ES0182 section 1): a store right before the exception
     * return may let the wrong interrupt be taken; a DSB completes it first. */
    cpu_dsb();
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
