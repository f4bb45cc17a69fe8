/* Core helpers: vector table, reset, code placed in SRAM. */
#ifndef FOTA_CPU_H
#define FOTA_CPU_H

#include <stdint.h>

/* Core clock in MHz, the bound of every busy-wait (drivers/wait.h, the flash driver): 16 (the HSI)
 * from reset, kept up to date by clock_init (drivers/clock.c). */
extern volatile uint32_t g_core_mhz;

/* 16 Cortex-M4 exceptions + 82 STM32F407 interrupts (RM0090 table 61). */
#define CPU_VECTOR_COUNT 98u

/* Code that must run while the flash is busy (erase/program: any fetch from flash stalls the
 * CPU, RM0090 section 3.5) lives in .ramfunc, copied to SRAM by Reset_Handler. long_call because
 * SRAM is out of reach of a Thumb BL from flash. A RAMFUNC must call only other RAMFUNCs and
 * static inline functions. */
#define RAMFUNC __attribute__((section(".ramfunc"), noinline, long_call))

/* Copy the vector table to SRAM and point VTOR at it (idempotent); returns the SRAM table so that
 * a caller can install handlers that also live in SRAM. */
typedef void (*cpu_vector_t)(void);
cpu_vector_t *cpu_vectors_to_sram(void);

/* SYSRESETREQ through AIRCR; never returns. */
__attribute__((noreturn)) void cpu_system_reset(void);

#endif /* FOTA_CPU_H */
