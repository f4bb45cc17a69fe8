/* SysTick interrupts at 1 kHz, exception return, WFI, FPU context in the handler: toggles the
 * green LED every 100 ticks and logs the tick count and a float computed across interrupts. */
#include "prog.h"

static volatile uint32_t ticks;
static volatile float acc;

void SysTick_Handler(void)
{
    ticks++;
    acc = acc + 0.5f; /* FP in the handler: the extended frame must keep main's FP registers */
    if (ticks % 100 == 0) {
        GPIOD_ODR ^= 1u << 12;
    }
}

int main(void)
{
    uart_init();
    leds_init();
    SYST_RVR = 16000 - 1; /* 1 ms at 16 MHz HSI */
    SYST_CVR = 0;
    SYST_CSR = 7;
    float x = 1.25f;
    uint32_t last = 0;
    for (;;) {
        __asm volatile("wfi");
        x = x * 1.0f + 0.0f;
        if (ticks - last >= 250) {
            last = ticks;
            line("ticks", ticks);
            line("x", (uint32_t)(x * 100.0f));
            line("acc", (uint32_t)acc);
        }
    }
}
