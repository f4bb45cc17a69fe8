/* USART2 TX through a RAM ring drained by the TXE interrupt (uart.h; RM0090 sections 30.3.2
 * character transmission, 30.4 USART interrupts). */
#include "uart.h"
#include "cpu.h"
#include "gpio.h"
#include "stm32f407_regs.h"
#include "wait.h"

uint32_t g_uart_dropped;

/* One character at 115200 8N1 takes 87 us; allow two. */
#define CHAR_US 200u
#define USART2_PIN_TX 2u
#define GPIO_AF7_USART 7u
#define USART_CR1_TXEIE (1u << 7)
#define RING_SIZE UART_RING_CHARS
#define RING_MASK (RING_SIZE - 1u)
/* The lowest priority: the log must never delay the link's NSS interrupt. */
#define USART2_PRIORITY 0xF0u

struct uart_ring {
    uint32_t magic;
    volatile uint32_t head; /* next free position; written by the writers only */
    volatile uint32_t tail; /* next byte to send; written by the drain only */
    uint32_t reserved;
    volatile char buf[RING_SIZE];
};
_Static_assert(sizeof(struct uart_ring) <= UART_RING_AREA, "the ring fits its CCM block");
_Static_assert((RING_SIZE & RING_MASK) == 0u, "ring size is a power of two");

static inline struct uart_ring *ring(void)
{
    return (struct uart_ring *)(uintptr_t)UART_RING_ADDR;
}

static inline uint32_t irq_save(void)
{
    uint32_t primask;
    __asm__ volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask)::"memory");
    return primask;
}

static inline void irq_restore(uint32_t primask)
{
    __asm__ volatile("msr primask, %0" ::"r"(primask) : "memory");
}

/* Runs from SRAM with its data in CCM: it may fire while the flash is busy (the application's
 * vector table is then in SRAM, link.c) without stalling on a flash fetch. */
RAMFUNC void USART2_IRQHandler(void)
{
    struct uart_ring *r = ring();
    uint32_t tail = r->tail;
    if ((USART_SR(USART2_BASE) & USART_SR_TXE) != 0u && tail != r->head) {
        USART_DR(USART2_BASE) = (uint8_t)r->buf[tail];
        r->tail = (tail + 1u) & RING_MASK;
    }
    if (r->tail == r->head) {
        USART_CR1(USART2_BASE) &= ~USART_CR1_TXEIE;
    }
    cpu_dsb(); /* Cortex-M4 erratum 838869: no store right before the exception return */
}

void uart_init(uint32_t pclk1_hz)
{
    rcc_enable(&RCC_AHB1ENR, RCC_AHB1ENR_GPIOAEN); /* with its DSB (ES0182 2.1.13) */
    rcc_enable(&RCC_APB1ENR, RCC_APB1ENR_USART2EN);
    struct uart_ring *r = ring();
    if (r->magic != UART_RING_MAGIC || r->head > RING_MASK || r->tail > RING_MASK) {
        r->head = 0u; /* power-on (or garbage): an empty ring */
        r->tail = 0u;
        r->magic = UART_RING_MAGIC;
    }
    /* OVER8 = 0: USARTDIV = pclk / (16 baud); BRR holds it in 12.4 fixed point, i.e. pclk / baud
     * rounded (RM0090 section 30.3.4). */
    uint32_t brr = (pclk1_hz + UART_BAUD / 2u) / UART_BAUD;
    uint32_t on = USART_CR1_UE | USART_CR1_TE;
    if ((USART_CR1(USART2_BASE) & on) != on || USART_BRR(USART2_BASE) != brr) {
        gpio_set_af(GPIOA, USART2_PIN_TX, GPIO_AF7_USART);
        USART_CR1(USART2_BASE) = 0u;
        USART_BRR(USART2_BASE) = brr;
        USART_CR1(USART2_BASE) = on;
    } /* else: the bootloader left it running at this rate, a byte may still be shifting out */
    NVIC_IPR_BYTE(USART2_IRQN) = USART2_PRIORITY;
    NVIC_ICPR(USART2_IRQN / 32u) = 1u << (USART2_IRQN % 32u);
    NVIC_ISER(USART2_IRQN / 32u) = 1u << (USART2_IRQN % 32u);
    if (r->head != r->tail) {
        USART_CR1(USART2_BASE) |= USART_CR1_TXEIE; /* the bootloader's lines, or a reset's */
    }
}

/* Send the oldest byte by polling; 0 when the USART did not take it in time. Interrupts off. */
static int send_oldest(struct uart_ring *r)
{
    if (!wait_reg(&USART_SR(USART2_BASE), USART_SR_TXE, USART_SR_TXE, CHAR_US)) {
        return 0;
    }
    uint32_t tail = r->tail;
    USART_DR(USART2_BASE) = (uint8_t)r->buf[tail];
    r->tail = (tail + 1u) & RING_MASK;
    return 1;
}

void uart_putc(char c)
{
    struct uart_ring *r = ring();
    uint32_t head = r->head;
    uint32_t next = (head + 1u) & RING_MASK;
    if (next == r->tail) {
        uint32_t pm = irq_save();
        int ok = next != r->tail || send_oldest(r);
        irq_restore(pm);
        if (!ok) {
            g_uart_dropped++;
            return;
        }
    }
    r->buf[head] = c;
    r->head = next;
    uint32_t pm = irq_save();
    USART_CR1(USART2_BASE) |= USART_CR1_TXEIE;
    irq_restore(pm);
}

void uart_puts(const char *s)
{
    while (*s != '\0') {
        uart_putc(*s++);
    }
}

uint32_t uart_pending(void)
{
    struct uart_ring *r = ring();
    return (r->head - r->tail) & RING_MASK;
}

void uart_flush(void)
{
    struct uart_ring *r = ring();
    uint32_t pm = irq_save();
    while (r->tail != r->head) {
        if (!send_oldest(r)) {
            g_uart_dropped += uart_pending();
            r->tail = r->head;
        }
    }
    USART_CR1(USART2_BASE) &= ~USART_CR1_TXEIE;
    irq_restore(pm);
    (void)wait_reg(&USART_SR(USART2_BASE), USART_SR_TC, USART_SR_TC, 2u * CHAR_US);
}

void uart_handoff(void)
{
    uint32_t pm = irq_save();
    USART_CR1(USART2_BASE) &= ~USART_CR1_TXEIE;
    NVIC_ICER(USART2_IRQN / 32u) = 1u << (USART2_IRQN % 32u);
    NVIC_ICPR(USART2_IRQN / 32u) = 1u << (USART2_IRQN % 32u);
    irq_restore(pm);
}
