#include "sched.h"

struct task {
    sched_fn fn;
    uint32_t period_ms;
    uint32_t due_ms;
};

static struct task tasks[SCHED_MAX_TASKS];
static uint32_t task_count;

int sched_add(sched_fn fn, uint32_t period_ms, uint32_t first_ms)
{
    if (task_count >= SCHED_MAX_TASKS || fn == 0 || period_ms == 0u) {
        return -1;
    }
    tasks[task_count].fn = fn;
    tasks[task_count].period_ms = period_ms;
    tasks[task_count].due_ms = first_ms;
    task_count++;
    return 0;
}

void sched_run(uint32_t now_ms)
{
    for (uint32_t i = 0; i < task_count; i++) {
        struct task *t = &tasks[i];
        /* Signed difference: correct across the 49-day wrap of the millisecond counter. */
        if ((int32_t)(now_ms - t->due_ms) >= 0) {
            t->due_ms += t->period_ms;
            if ((int32_t)(now_ms - t->due_ms) >= 0) {
                t->due_ms = now_ms + t->period_ms; /* fell behind: do not run a burst */
            }
            t->fn(now_ms);
        }
    }
}
