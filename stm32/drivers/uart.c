/* USART2 TX (RM0090 section 30.3.2 character transmission). */
#include "uart.h"
#include "gpio.h"
#include "stm32f407_regs.h"
#include "wait.h"

uint32_t g_uart_dropped;

/* One character at 115200 8N1 takes 87 us; allow two. */
#define CHAR_US 200u
#define USART2_PIN_TX 2u
#define GPIO_AF7_USART 7u

void uart_init(uint32_t pclk1_hz)
{
    rcc_enable(&RCC_AHB1ENR, RCC_AHB1ENR_GPIOAEN);
    rcc_enable(&RCC_APB1ENR, RCC_APB1ENR_USART2EN);
    gpio_set_af(GPIOA, USART2_PIN_TX, GPIO_AF7_USART);
    USART_CR1(USART2_BASE) = 0u;
    /* OVER8 = 0: USARTDIV = pclk / (16 baud); BRR holds it in 12.4 fixed point, i.e. pclk / baud
     * rounded (RM0090 section 30.3.4). */
    USART_BRR(USART2_BASE) = (pclk1_hz + UART_BAUD / 2u) / UART_BAUD;
    USART_CR1(USART2_BASE) = USART_CR1_UE | USART_CR1_TE;
}

void uart_putc(char c)
{
    if (!wait_reg(&USART_SR(USART2_BASE), USART_SR_TXE, USART_SR_TXE, CHAR_US)) {
        g_uart_dropped++;
        return;
    }
    USART_DR(USART2_BASE) = (uint8_t)c;
}

void uart_puts(const char *s)
{
    while (*s != '\0') {
        uart_putc(*s++);
    }
}

void uart_flush(void)
{
    (void)wait_reg(&USART_SR(USART2_BASE), USART_SR_TC, USART_SR_TC, 2u * CHAR_US);
}
