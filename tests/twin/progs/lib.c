/* Start-up and helpers shared by the twin's test programs. */
#include "prog.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);
void reset_handler(void);
void default_handler(void);
void default_handler(void) { for (;;) { } }
void NMI_Handler(void) __attribute__((weak, alias("default_handler")));
void HardFault_Handler(void) __attribute__((weak, alias("default_handler")));
void SVC_Handler(void) __attribute__((weak, alias("default_handler")));
void PendSV_Handler(void) __attribute__((weak, alias("default_handler")));
void SysTick_Handler(void) __attribute__((weak, alias("default_handler")));
void IRQ_Handler(void) __attribute__((weak, alias("default_handler")));

__attribute__((section(".vectors"), used)) void (*const vectors[16 + 82])(void) = {
    (void (*)(void))&_estack, reset_handler, NMI_Handler, HardFault_Handler, default_handler,
    default_handler, default_handler, 0, 0, 0, 0, SVC_Handler, default_handler, 0, PendSV_Handler,
    SysTick_Handler,
    [16 ... 16 + 81] = IRQ_Handler,
};

void reset_handler(void)
{
    uint32_t *src = &_sidata;
    for (uint32_t *dst = &_sdata; dst < &_edata;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &_sbss; dst < &_ebss;) {
        *dst++ = 0;
    }
    REG(0xE000ED88) |= 0xFu << 20; /* CPACR: FPU on */
    main();
    for (;;) {
        __asm volatile("wfi");
    }
}

void uart_init(void)
{
    RCC_AHB1ENR |= 1u << 0; DSB();
    RCC_APB1ENR |= 1u << 17; DSB();
    GPIOA_MODER = (GPIOA_MODER & ~(3u << 4)) | (2u << 4);
    GPIOA_AFRL = (GPIOA_AFRL & ~(0xFu << 8)) | (7u << 8);
    USART2_BRR = 16; /* 1 Mbaud at 16 MHz: keeps test logs short in virtual time */
    USART2_CR1 = (1u << 13) | (1u << 3);
}

void put(const char *s)
{
    while (*s) {
        while (!(USART2_SR & (1u << 7))) {
        }
        USART2_DR = (uint8_t)*s++;
    }
}

void puthex(uint32_t v)
{
    char buf[11] = "0x";
    for (int i = 0; i < 8; i++) {
        buf[2 + i] = "0123456789ABCDEF"[(v >> (28 - 4 * i)) & 0xF];
    }
    buf[10] = 0;
    put(buf);
}

void putdec(uint32_t v)
{
    char buf[11];
    int i = 10;
    buf[i] = 0;
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(&buf[i]);
}

void line(const char *key, uint32_t v)
{
    put(key);
    put(" ");
    puthex(v);
    put("\n");
}

void leds_init(void)
{
    RCC_AHB1ENR |= 1u << 3; DSB();
    GPIOD_MODER = (GPIOD_MODER & ~(0xFFu << 24)) | (0x55u << 24);
}
