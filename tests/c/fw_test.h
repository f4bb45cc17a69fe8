/* Minimal test harness for the host tests of the firmware modules (tests/c/test_fw_modules.py).
 * TEST(name) registers a case; CHECK(cond, fmt, ...) fails the current case with a message. */
#ifndef FW_TEST_H
#define FW_TEST_H

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

/* Stop the case at the first failed check: later checks would only report consequences. */
#define CHECK(cond, ...)                                   \
    do {                                                   \
        if (!(cond)) {                                     \
            test_fail(__FILE__, __LINE__, __VA_ARGS__);    \
            return;                                        \
        }                                                  \
    } while (0)

#define CHECK_EQ(a, b)                                                                         \
    CHECK((long long)(a) == (long long)(b), "%s == %s: %lld != %lld", #a, #b, (long long)(a), \
          (long long)(b))

/* Test images and journal helpers (fw_util.c). */
#include "fota_image.h"
#include "image.h"
#include "journal.h"
#include "withdraw.h"

struct img_spec {
    uint8_t slot;          /* slot the image is linked for */
    uint8_t ver[3];        /* major minor patch */
    uint32_t build;
    uint32_t payload;      /* bytes of code after the information block */
};

/* Power-on RAM flash, installed as the flash_area backend. */
void fw_flash_fresh(void);
/* Write a valid image for spec into slot `where` (normally spec->slot); returns ii_image_size. */
uint32_t fw_put_image(uint8_t where, const struct img_spec *spec);
/* Pointer to the bytes of slot `slot` in the RAM flash. */
uint8_t *fw_slot_mem(uint8_t slot);
/* Recompute the trailer's SHA-256 after editing an image in RAM (so only the edited field is wrong). */
void fw_rehash(uint8_t slot);
/* A record for the journal (seq, magic and CRC are set by journal_append). */
struct fota_meta_record fw_record(uint8_t slot, uint8_t state, uint8_t attempts, uint8_t prev);
const struct flash_area *fw_meta(void);
/* What a boot would do now: validate both slots, scan the journal, decide. Returns boot_slot. */
struct boot_decision;
int fw_boot(struct boot_decision *d, int watchdog_reset);

#endif /* FW_TEST_H */
