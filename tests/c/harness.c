/* The runner of the firmware's host tests (harness.h).
 *   fw_tests              run every case: "ok <name>", or the failed check and "FAIL <name>"
 *   fw_tests <name>...    run the named cases
 *   fw_tests crc32 FILE   print zlib-style CRC-32 of FILE (hex)   } compared with Python's
 *   fw_tests sha256 FILE  print the SHA-256 of FILE (hex)         } zlib / hashlib by pytest
 *   fw_tests validate SLOT FILE...
 *                         for each FILE: write it at the base of slot SLOT (0 = A, 1 = B) of an
 *                         erased RAM flash, run image_validate and print its fault ("ok",
 *                         "bad-hash", ...), one line per file: the bootloader's verdict, compared
 *                         with the Python check by pytest
 *   fw_tests mcuboot SLOT FILE...
 *                         the same with mcuboot_validate and the tests' key ring (test key 0 of
 *                         mcuboot_fixture.c): the fault's name per file */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "crc32.h"
#include "flash_ram.h"
#include "fota_layout.h"
#include "harness.h"
#include "image.h"
#include "mcuboot_fixture.h"
#include "sha256.h"

#define MAX_TESTS 256

static struct {
    const char *name;
    test_fn fn;
} tests[MAX_TESTS];
static int test_count;
int test_failed;

void test_register(const char *name, test_fn fn)
{
    if (test_count >= MAX_TESTS) {
        fprintf(stderr, "too many tests\n");
        exit(2);
    }
    tests[test_count].name = name;
    tests[test_count].fn = fn;
    test_count++;
}

void test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    test_failed = 1;
    printf("  %s:%d: ", file, line);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

static int run(int i)
{
    test_failed = 0;
    tests[i].fn();
    printf("%s %s\n", test_failed ? "FAIL" : "ok", tests[i].name);
    fflush(stdout);
    return test_failed;
}

static int hash_file(const char *what, const char *path)
{
    static uint8_t buf[1 << 20];
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return 2;
    }
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    if (strcmp(what, "crc32") == 0) {
        /* Feed it in two uneven parts: crc32_update must continue a CRC. */
        uint32_t crc = crc32_update(0, buf, n / 3);
        crc = crc32_update(crc, buf + n / 3, n - n / 3);
        printf("%08x\n", crc);
    } else {
        struct sha256_ctx ctx;
        uint8_t d[32];
        sha256_init(&ctx);
        /* Uneven pieces exercise the block buffering. */
        size_t off = 0, step = 1;
        while (off < n) {
            size_t k = n - off < step ? n - off : step;
            sha256_update(&ctx, buf + off, k);
            off += k;
            step = step * 3 + 1;
        }
        sha256_final(&ctx, d);
        for (int i = 0; i < 32; i++) {
            printf("%02x", d[i]);
        }
        printf("\n");
    }
    return 0;
}

static int validate_file(const char *slot_arg, const char *path, int mcuboot)
{
    uint8_t slot = (uint8_t)atoi(slot_arg);
    const struct flash_area *fa = NULL;
    flash_ram_reset();
    fa_init(&flash_ram_port);
    fa = fa_slot(slot);
    if (fa == NULL) {
        fprintf(stderr, "validate: slot must be %u or %u\n", FOTA_SLOT_A, FOTA_SLOT_B);
        return 2;
    }
    FILE *f = fopen(path, "rb");
    if (f == NULL || fa == NULL) {
        perror(path);
        return 2;
    }
    /* Everything past the slot's end is not the slot's: it is left out, as on the chip. */
    size_t n = fread(flash_ram_mem() + (fa->base - FOTA_FLASH_BASE), 1, fa->size, f);
    fclose(f);
    (void)n;
    if (mcuboot) {
        struct mcuboot_image img;
        printf("%s\n", mcuboot_fault_str(mcuboot_validate(fa, fw_test_ring(), &img, NULL)));
        return 0;
    }
    struct image_summary sum;
    image_validate(slot, &sum);
    printf("%s\n", image_fault_str(sum.fault));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && (strcmp(argv[1], "crc32") == 0 || strcmp(argv[1], "sha256") == 0)) {
        return hash_file(argv[1], argv[2]);
    }
    if (argc >= 4 && (strcmp(argv[1], "validate") == 0 || strcmp(argv[1], "mcuboot") == 0)) {
        for (int a = 3; a < argc; a++) {
            int rc = validate_file(argv[2], argv[a], strcmp(argv[1], "mcuboot") == 0);
            if (rc != 0) {
                return rc;
            }
        }
        return 0;
    }
    int failures = 0;
    if (argc == 1) {
        for (int i = 0; i < test_count; i++) {
            failures += run(i);
        }
    } else {
        for (int a = 1; a < argc; a++) {
            int found = 0;
            for (int i = 0; i < test_count; i++) {
                if (strcmp(tests[i].name, argv[a]) == 0) {
                    failures += run(i);
                    found = 1;
                }
            }
            if (!found) {
                printf("FAIL %s: no such test\n", argv[a]);
                failures++;
            }
        }
    }
    return failures == 0 ? 0 : 1;
}
