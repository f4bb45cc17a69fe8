/* The one test harness of the firmware's host tests (tests/c/test_fw_modules.py builds every C
 * file of tests/c into one runner, harness.c). TEST(name) registers a case; CHECK(cond) or
 * CHECK(cond, fmt, ...) fails the current case, printing the condition and the message. */
#ifndef FW_HARNESS_H
#define FW_HARNESS_H

#include <stdint.h>
#include <stdio.h>

typedef void (*test_fn)(void);
void test_register(const char *name, test_fn fn);
void test_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
extern int test_failed;

#define TEST(name)                                                                   \
    static void name(void);                                                          \
    __attribute__((constructor)) static void register_##name(void) { test_register(#name, name); } \
    static void name(void)

/* Stop the case at the first failed check: later checks would only report consequences. The
 * message, when given, is a format string literal and its arguments. */
#define CHECK(cond, ...)                                           \
    do {                                                           \
        if (!(cond)) {                                             \
            test_fail(__FILE__, __LINE__, #cond ": " __VA_ARGS__); \
            return;                                                \
        }                                                          \
    } while (0)

/* a == b as integers, each evaluated once. */
#define CHECK_EQ(a, b)                                                                                \
    do {                                                                                              \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                               \
        if (check_a_ != check_b_) {                                                                   \
            test_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld (0x%llx)", #a, #b, check_a_, check_b_, \
                      (unsigned long long)check_a_);                                                  \
            return;                                                                                   \
        }                                                                                             \
    } while (0)

#endif /* FW_HARNESS_H */
