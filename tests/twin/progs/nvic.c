/* NVIC: pending interrupts taken in priority order, preemption by a higher priority, PRIMASK and
 * BASEPRI masking, tail-chaining. Handlers record their IRQ numbers (from IPSR) in order. */
#include "prog.h"

static volatile uint32_t order[16];
static volatile uint32_t n;

static uint32_t ipsr(void)
{
    uint32_t v;
    __asm volatile("mrs %0, ipsr" : "=r"(v));
    return v;
}

void IRQ_Handler(void)
{
    uint32_t irq = ipsr() - 16u;
    order[n++] = irq;
    if (irq == 0u) {
        NVIC_ISPR(0) = 1u << 2; /* higher priority than IRQ 0: preempts at once */
        order[n++] = 100u;      /* back in IRQ 0 after IRQ 2 returned */
    }
}

static void log_order(const char *key)
{
    put(key);
    for (uint32_t i = 0; i < n; i++) {
        put(" ");
        putdec(order[i]);
    }
    put("\n");
    n = 0;
}

int main(void)
{
    uart_init();
    NVIC_IPR8(0) = 0x80;
    NVIC_IPR8(1) = 0xC0;
    NVIC_IPR8(2) = 0x40;
    NVIC_IPR8(3) = 0x40;
    NVIC_ISER(0) = 0xFu;
    /* Pended together under PRIMASK: taken by priority when it clears (3 before... same priority
     * as 2: the lower number first), then tail-chained. */
    __asm volatile("cpsid i");
    NVIC_ISPR(0) = (1u << 1) | (1u << 3);
    __asm volatile("cpsie i");
    log_order("primask");
    /* IRQ 0 pends IRQ 2 (higher priority) inside its handler: nested. */
    NVIC_ISPR(0) = 1u << 0;
    log_order("preempt");
    /* BASEPRI 0x80 blocks priorities 0x80 and lower (IRQ 0, IRQ 1) but not IRQ 3 (0x40). */
    __asm volatile("msr basepri, %0" : : "r"(0x80u));
    NVIC_ISPR(0) = (1u << 1) | (1u << 3);
    log_order("basepri");
    __asm volatile("msr basepri, %0" : : "r"(0u));
    for (volatile int i = 0; i < 100; i++) {
    }
    log_order("released");
    for (;;) {
        __asm volatile("wfi");
    }
}
