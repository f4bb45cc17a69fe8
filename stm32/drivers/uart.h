/* USART2 transmit-only console: PA2 (AF7), 115200 8N1, polling with bounded waits. */
#ifndef FOTA_UART_H
#define FOTA_UART_H

#include <stdint.h>

#define UART_BAUD 115200u

void uart_init(uint32_t pclk1_hz);
void uart_putc(char c);
void uart_puts(const char *s);
/* Wait (bounded) until the last byte has left the shift register (before a reset or a jump). */
void uart_flush(void);
/* Bytes dropped because TXE did not come in time (a stuck or unclocked USART). */
extern uint32_t g_uart_dropped;

#endif /* FOTA_UART_H */
