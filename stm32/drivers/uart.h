/* USART2 transmit-only console: PA2 (AF7), 115200 8N1.
 *
 * Writers never wait for the wire: characters go into a ring in CCM RAM and the USART2 TXE
 * interrupt (RM0090 section 30.4, TXEIE) moves them out one at a time. The ring sits at a fixed
 * address that neither program uses otherwise, and CCM keeps its contents across a jump and a
 * system reset (only a power-on clears it), so the bootloader's lines still pending at the jump
 * are sent by the application, which adopts the ring in uart_init, and lines pending at a
 * watchdog or software reset come out after it. A full ring is drained synchronously by the
 * writer (oldest byte first), so nothing is lost while the USART works. */
#ifndef FOTA_UART_H
#define FOTA_UART_H

#include <stdint.h>

#define UART_BAUD 115200u
/* The ring: 1 KB of characters and a 16-byte header in the last 2 KB of CCM
 * (FOTA_CCM_BASE + FOTA_CCM_SIZE - UART_RING_AREA). */
#define UART_RING_CHARS 1024u
#define UART_RING_AREA 2048u
#define UART_RING_ADDR (0x10000000u + 0x10000u - UART_RING_AREA)
#define UART_RING_MAGIC 0x474F4C52u /* "RLOG" */
#define USART2_IRQN 38u             /* RM0090 table 61 */

void uart_init(uint32_t pclk1_hz);
void uart_putc(char c);
void uart_puts(const char *s);
/* Send everything still in the ring and wait (bounded) until the last byte has left the shift
 * register: before a reset that the CPU triggers itself, from any context. */
void uart_flush(void);
/* Before the bootloader's jump: stop the interrupt and leave the pending bytes in the ring for
 * the application's uart_init. Takes no time. */
void uart_handoff(void);
/* Bytes still waiting in the ring. */
uint32_t uart_pending(void);
/* Bytes dropped because TXE did not come in time (a stuck or unclocked USART). */
extern uint32_t g_uart_dropped;

#endif /* FOTA_UART_H */
