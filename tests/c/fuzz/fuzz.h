/* A small coverage-guided mutation fuzzer for the firmware's parsers on the host (fuzz_main.c), for
 * when libFuzzer (clang) is not there: gcc's -fsanitize-coverage=trace-pc,trace-cmp on the code under
 * test (edges, and the constants it compares with), ASan + UBSan on everything. A target file defines the three functions below and is linked with
 * fuzz_main.c into one driver per target (tests/c/test_fw_fuzz.py builds and runs them). */
#ifndef FW_FUZZ_H
#define FW_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* Largest input the engine makes. */
#define FUZZ_MAX_INPUT 4096u

/* Called once before the first input. */
void fuzz_target_init(void);
/* Seeds of the corpus: call add() for each (in addition to any corpus files given). */
void fuzz_target_seeds(void (*add)(const uint8_t *data, size_t len));
/* Run one input. A memory error or undefined behaviour stops the run (the sanitizers); a broken
 * invariant is reported with fuzz_fail. */
void fuzz_target(const uint8_t *data, size_t len);

/* Report a broken invariant of the target: prints the message and the input, exits with status 3. */
void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif /* FW_FUZZ_H */
