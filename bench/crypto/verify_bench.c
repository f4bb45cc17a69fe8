/* Bench firmware of bench/bench_crypto.py: Ed25519 verification (stm32/lib/ed25519.c) on the STM32
 * twin, timed by the DWT cycle counter, its stack measured by painting. Standalone: its own vector
 * table and reset handler, no clock set-up (the count of cycles does not depend on the clock). The
 * inputs are in bench_vectors.h, written by the bench script; the results go to `bench_result`,
 * first in SRAM, which the script reads once `magic` is set. With -DBENCH_BASELINE nothing is
 * verified: the size of that link is the baseline of the code size. */
#include <stdint.h>
#include "bench_vectors.h"
#include "ed25519.h"

#define DEMCR (*(volatile uint32_t *)0xE000EDFCu)
#define CPACR (*(volatile uint32_t *)0xE000ED88u)
#define DWT_CTRL (*(volatile uint32_t *)0xE0001000u)
#define DWT_CYCCNT (*(volatile uint32_t *)0xE0001004u)
#define PAINT 0xA5A5A5A5u
#define PAINT_BYTES 16384u

struct bench_result {
    uint32_t magic;        /* BENCH_DONE when the rest is valid */
    uint32_t ok_verdict;   /* ed25519_verify of the valid case: ED25519_OK */
    uint32_t bad_verdict;  /* of the case with one bit of the message flipped: BAD_SIGNATURE */
    uint32_t ok_cycles;    /* DWT cycles of one valid verification (the twin: in slices) */
    uint32_t bad_cycles;   /* of the refused one */
    uint32_t stack_bytes;  /* deepest stack use of the two, bytes below the caller's frame */
};
#define BENCH_DONE 0x600DCAFEu

__attribute__((section(".bench_result"))) volatile struct bench_result bench_result;

extern uint32_t _estack;
void reset_handler(void);
static void fault_handler(void)
{
    for (;;) {
    }
}

__attribute__((section(".isr_vector"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))(uintptr_t)&_estack, reset_handler, fault_handler, fault_handler, fault_handler,
    fault_handler, fault_handler,
};

#ifndef BENCH_BASELINE
static uint32_t sp_now(void)
{
    uint32_t sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    return sp;
}

/* Paint PAINT_BYTES below the current stack pointer (minus a margin for this frame). */
__attribute__((noinline)) static uint32_t paint(void)
{
    uint32_t top = (sp_now() - 64u) & ~3u;
    for (uint32_t a = top - PAINT_BYTES; a < top; a += 4u) {
        *(volatile uint32_t *)a = PAINT;
    }
    return top;
}

__attribute__((noinline)) static uint32_t used_below(uint32_t top)
{
    uint32_t a = top - PAINT_BYTES;
    while (a < top && *(volatile uint32_t *)a == PAINT) {
        a += 4u;
    }
    return top - a;
}

__attribute__((noinline)) static uint32_t timed(const uint8_t *msg, uint32_t *verdict)
{
    uint32_t t0 = DWT_CYCCNT;
    *verdict = (uint32_t)ed25519_verify(bench_sig, bench_pub, msg, sizeof(bench_msg));
    return DWT_CYCCNT - t0;
}
#endif

void reset_handler(void)
{
    CPACR |= 0xFu << 20; /* the FPU, as the firmware's start-up does */
    DEMCR |= 1u << 24;   /* TRCENA */
    DWT_CYCCNT = 0;
    DWT_CTRL |= 1u;      /* CYCCNTENA */
#ifndef BENCH_BASELINE
    uint8_t bad[sizeof(bench_msg)];
    for (unsigned i = 0; i < sizeof(bad); i++) {
        bad[i] = bench_msg[i];
    }
    bad[0] ^= 1u;
    uint32_t verdict;
    uint32_t top = paint();
    bench_result.ok_cycles = timed(bench_msg, &verdict);
    bench_result.ok_verdict = verdict;
    bench_result.bad_cycles = timed(bad, &verdict);
    bench_result.bad_verdict = verdict;
    bench_result.stack_bytes = used_below(top);
#endif
    bench_result.magic = BENCH_DONE;
    for (;;) {
        __asm__ volatile("wfi");
    }
}
