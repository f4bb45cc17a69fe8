/* Busy-waits: HSE start-up polled with an iteration bound. The green LED is on while waiting. */
#include "prog.h"

#define RCC_CR REG(0x40023800)

int main(void)
{
    uart_init();
    leds_init();
    GPIOD_BSRR = 1u << 12;
    RCC_CR |= 1u << 16; /* HSEON */
    uint32_t i;
    for (i = 0; i < 20000u; i++) {
        if (RCC_CR & (1u << 17)) {
            break;
        }
    }
    GPIOD_BSRR = 1u << (12 + 16);
    line("hserdy", (RCC_CR >> 17) & 1u);
    line("polls", i);
    for (;;) {
        __asm volatile("wfi");
    }
}
