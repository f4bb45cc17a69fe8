/* A cooperative scheduler: periodic tasks run from the main loop, each to completion. */
#ifndef FOTA_SCHED_H
#define FOTA_SCHED_H

#include <stdint.h>

#define SCHED_MAX_TASKS 8u

typedef void (*sched_fn)(uint32_t now_ms);

/* Add a task run every period_ms, first at now + first_ms. Returns 0, or -1 when full. */
int sched_add(sched_fn fn, uint32_t period_ms, uint32_t first_ms);
/* Run every task that is due at now_ms. A late task runs once, then keeps its period from now. */
void sched_run(uint32_t now_ms);

#endif /* FOTA_SCHED_H */
