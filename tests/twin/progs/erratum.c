/* Cortex-M4 erratum 838869: a handler whose last instruction before the exception return is a store
 * (IRQ_Handler), and one with a DSB between (SysTick_Handler). Config 0: IRQ 0 and IRQ 1 pended
 * together, so that IRQ 0's return tail-chains into IRQ 1 right after the store. Config 1: SysTick
 * and IRQ 0 pended together: SysTick runs first and its return tail-chains into IRQ 0 after a DSB.
 * Each round twice; handlers record their exception numbers in order. */
#include "prog.h"

static volatile uint32_t order[8];
static volatile uint32_t n;

static uint32_t ipsr(void)
{
    uint32_t v;
    __asm volatile("mrs %0, ipsr" : "=r"(v));
    return v;
}

void IRQ_Handler(void)
{
    order[n++] = ipsr(); /* the last store, then the return */
}

void SysTick_Handler(void)
{
    order[n++] = ipsr();
    DSB();
}

int main(void)
{
    uart_init();
    uint32_t mode = *(volatile uint32_t *)0x08003F00u;
    NVIC_ISER(0) = 0x3u;
    for (int round = 0; round < 2; round++) {
        __asm volatile("cpsid i");
        if (mode == 0u) {
            NVIC_ISPR(0) = 0x3u;
        } else {
            SCB_ICSR = 1u << 26; /* PENDSTSET */
            NVIC_ISPR(0) = 0x1u;
        }
        __asm volatile("cpsie i");
        __asm volatile("wfi"); /* returns at once: the interrupts are pending (and end the slice) */
    }
    put("order");
    for (uint32_t i = 0; i < n; i++) {
        put(" ");
        putdec(order[i]);
    }
    put("\n");
    for (;;) {
        __asm volatile("wfi");
    }
}
