/* Start-up code shared by the bootloader and the application: the STM32F407 vector table (16
 * Cortex-M4 entries + 82 device interrupts = 98, RM0090 table 61), FPU enable, .data/.ramfunc copy,
 * .bss clear, and the optional copy of the vector table to SRAM (VTOR).
 *
 * Every interrupt handler is a weak alias of Default_Handler: a module that needs one (SysTick,
 * SPI2, DMA1 streams) defines a function with the CMSIS name. */
#include <stdint.h>
#include "cpu.h"
#include "stm32f407_regs.h"

typedef void (*vector_t)(void);

volatile uint32_t g_core_mhz = 16u; /* HSI after reset (cpu.h) */

/* Linker script symbols (stm32/ld/common_sections.ld). */
extern uint32_t _estack;
extern uint32_t __data_start, __data_end, __data_load;
extern uint32_t __bss_start, __bss_end;

int main(void);
void Reset_Handler(void);
void Default_Handler(void);

/* Reported by the log module when it is linked in; a weak no-op otherwise. */
__attribute__((weak)) void fault_report(uint32_t exception_number) { (void)exception_number; }

#define WEAK_ALIAS __attribute__((weak, alias("Default_Handler")))
void NMI_Handler(void) WEAK_ALIAS;
void HardFault_Handler(void) WEAK_ALIAS;
void MemManage_Handler(void) WEAK_ALIAS;
void BusFault_Handler(void) WEAK_ALIAS;
void UsageFault_Handler(void) WEAK_ALIAS;
void SVC_Handler(void) WEAK_ALIAS;
void DebugMon_Handler(void) WEAK_ALIAS;
void PendSV_Handler(void) WEAK_ALIAS;
void SysTick_Handler(void) WEAK_ALIAS;
#define IRQ(name) void name##_IRQHandler(void) WEAK_ALIAS;
#include "irq_list.h"
#undef IRQ

__attribute__((section(".isr_vector"), used)) const vector_t vector_table[CPU_VECTOR_COUNT] = {
    (vector_t)(uintptr_t)&_estack,
    Reset_Handler,
    NMI_Handler,
    HardFault_Handler,
    MemManage_Handler,
    BusFault_Handler,
    UsageFault_Handler,
    0, 0, 0, 0, /* reserved */
    SVC_Handler,
    DebugMon_Handler,
    0, /* reserved */
    PendSV_Handler,
    SysTick_Handler,
#define IRQ(name) name##_IRQHandler,
#include "irq_list.h"
#undef IRQ
};
/* The initialiser above must have exactly one entry per vector: a shorter list would leave
 * zeros, which the size check below cannot see, so count the IRQ list too. */
enum {
#define IRQ(name) IRQN_##name,
#include "irq_list.h"
#undef IRQ
    IRQN_COUNT
};
_Static_assert(16 + IRQN_COUNT == CPU_VECTOR_COUNT, "STM32F407 has 82 device interrupts (RM0090 table 61)");
_Static_assert(IRQN_EXTI15_10 == NVIC_IRQN_EXTI15_10, "the register header's EXTI15_10 number matches the vector table");

/* Copy of the vector table in SRAM (VTOR needs the table size rounded up to a power of two as
 * alignment: 98 words -> 512 bytes, PM0214 section 4.4.4). */
__attribute__((section(".ram_vectors"), aligned(512))) static vector_t ram_vectors[CPU_VECTOR_COUNT];

void Reset_Handler(void)
{
    /* The FPU first: with -mfloat-abi=hard the compiler may use FP registers anywhere after this
     * (PM0214 section 4.6.6: CP10/CP11 full access, then DSB and ISB). */
    SCB_CPACR |= SCB_CPACR_CP10_CP11_FULL;
    cpu_dsb();
    cpu_isb();

    /* .data (with .ramfunc at its start) from its load address in flash, then .bss. */
    const uint32_t *src = &__data_load;
    for (uint32_t *dst = &__data_start; dst < &__data_end;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &__bss_start; dst < &__bss_end;) {
        *dst++ = 0u;
    }
    /* Our own vector table, whoever jumped here (the bootloader sets VTOR too). */
    SCB_VTOR = (uint32_t)(uintptr_t)vector_table;
    cpu_dsb();

    (void)main();
    cpu_system_reset();
}

void Default_Handler(void)
{
    uint32_t ipsr;
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    fault_report(ipsr & 0x1FFu);
    cpu_system_reset();
}

vector_t *cpu_vectors_to_sram(void)
{
    const vector_t *active = (const vector_t *)(uintptr_t)SCB_VTOR;
    if (active == ram_vectors) {
        return ram_vectors;
    }
    for (uint32_t i = 0; i < CPU_VECTOR_COUNT; i++) {
        ram_vectors[i] = vector_table[i];
    }
    cpu_dsb();
    SCB_VTOR = (uint32_t)(uintptr_t)ram_vectors;
    cpu_dsb();
    cpu_isb();
    return ram_vectors;
}

void cpu_system_reset(void)
{
    cpu_dsb();
    SCB_AIRCR = SCB_AIRCR_VECTKEY | SCB_AIRCR_SYSRESETREQ;
    cpu_dsb();
    /* The reset takes a few cycles to assert (PM0214 section 4.4.5); nothing else to do. */
    for (;;) {
    }
}
