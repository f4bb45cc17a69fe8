/* The engine of the host fuzzer (fuzz.h).
 *   fuzz_<target> RUNS SEED [CORPUS_FILE...]
 * runs RUNS inputs, deterministic for a SEED: each is a corpus entry with 1 to 4 mutations: bit
 * flips, bytes, "interesting" 8/16/32-bit values (0, 0xFFFF, 0x80000000, the input's own length
 * plus or minus one), constants the code under test compares with (trace-cmp), inserted, deleted
 * or repeated ranges, a splice with another entry, truncation. An input that reaches a new edge of
 * the code under test (a pair of consecutive coverage points, hashed into a 64 K-entry map) joins
 * the corpus. The target gets a heap copy of exactly the input's size. Prints "fuzz: RUNS runs, ..."
 * at the end, exit 0. A sanitizer report or fuzz_fail prints the input as hex and writes it to
 * fuzz-crash-<SEED>.bin (exit status 3 for fuzz_fail, the sanitizer's otherwise). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fuzz.h"

#define MAP_SIZE 65536u
#define MAX_CORPUS 8192u

/* --- coverage: gcc -fsanitize-coverage=trace-pc calls this at every edge of the instrumented code */
static uint8_t seen[MAP_SIZE];
static uintptr_t prev_pc;
static size_t fresh; /* map entries seen for the first time since the last new_edges() */
static size_t edges;

void __sanitizer_cov_trace_pc(void);
void __sanitizer_cov_trace_pc(void)
{
    uintptr_t pc = (uintptr_t)__builtin_return_address(0) * 0x9E3779B1u;
    size_t h = (size_t)((pc ^ (prev_pc >> 1)) & (MAP_SIZE - 1u));
    prev_pc = pc;
    if (seen[h] == 0u) {
        seen[h] = 1;
        fresh++;
    }
}

/* New edges since the last call; the next input starts a fresh path. */
static size_t new_edges(void)
{
    size_t n = fresh;
    fresh = 0;
    prev_pc = 0;
    edges += n;
    return n;
}

/* --- comparison operands: gcc -fsanitize-coverage=trace-cmp reports every comparison of the code
 * under test; the constants it compares with (magic numbers, types, limits) and the cases of its
 * switches become a dictionary the mutations write into inputs. */
#define DICT_SIZE 512u
static struct {
    uint64_t value;
    uint8_t width;
} dict[DICT_SIZE];
static size_t dict_len;
static uint8_t dict_seen[4096];

static void remember(uint64_t value, uint8_t width)
{
    size_t h = (size_t)((value * 0x9E3779B97F4A7C15ull) >> 52) ^ width;
    if (dict_seen[h & 4095u] != 0u || value == 0u) {
        return;
    }
    dict_seen[h & 4095u] = 1;
    if (dict_len < DICT_SIZE) {
        dict[dict_len].value = value;
        dict[dict_len].width = width;
        dict_len++;
    }
}

void __sanitizer_cov_trace_const_cmp1(uint8_t c, uint8_t v);
void __sanitizer_cov_trace_const_cmp2(uint16_t c, uint16_t v);
void __sanitizer_cov_trace_const_cmp4(uint32_t c, uint32_t v);
void __sanitizer_cov_trace_const_cmp8(uint64_t c, uint64_t v);
void __sanitizer_cov_trace_cmp1(uint8_t a, uint8_t b);
void __sanitizer_cov_trace_cmp2(uint16_t a, uint16_t b);
void __sanitizer_cov_trace_cmp4(uint32_t a, uint32_t b);
void __sanitizer_cov_trace_cmp8(uint64_t a, uint64_t b);
void __sanitizer_cov_trace_cmpf(float a, float b);
void __sanitizer_cov_trace_cmpd(double a, double b);
void __sanitizer_cov_trace_switch(uint64_t value, uint64_t *cases);

void __sanitizer_cov_trace_const_cmp1(uint8_t c, uint8_t v) { (void)c, (void)v; }
void __sanitizer_cov_trace_const_cmp2(uint16_t c, uint16_t v) { (void)v, remember(c, 2); }
void __sanitizer_cov_trace_const_cmp4(uint32_t c, uint32_t v) { (void)v, remember(c, 4); }
void __sanitizer_cov_trace_const_cmp8(uint64_t c, uint64_t v) { (void)v, remember(c, 8); }
void __sanitizer_cov_trace_cmp1(uint8_t a, uint8_t b) { (void)a, (void)b; }
void __sanitizer_cov_trace_cmp2(uint16_t a, uint16_t b) { (void)a, (void)b; }
void __sanitizer_cov_trace_cmp4(uint32_t a, uint32_t b) { (void)a, (void)b; }
void __sanitizer_cov_trace_cmp8(uint64_t a, uint64_t b) { (void)a, (void)b; }
void __sanitizer_cov_trace_cmpf(float a, float b) { (void)a, (void)b; }
void __sanitizer_cov_trace_cmpd(double a, double b) { (void)a, (void)b; }

/* cases[0]: the number of cases, cases[1]: the width in bits, then the case values. */
void __sanitizer_cov_trace_switch(uint64_t value, uint64_t *cases)
{
    (void)value;
    for (uint64_t i = 0; i < cases[0]; i++) {
        remember(cases[2 + i], (uint8_t)(cases[1] / 8u));
    }
}

/* --- deterministic random numbers: xorshift64* */
static uint64_t rng_state;

static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

static size_t below(size_t n) { return n == 0u ? 0u : (size_t)(rnd() % n); }

/* --- the corpus */
struct entry {
    uint8_t *data;
    size_t len;
};
static struct entry corpus[MAX_CORPUS];
static size_t corpus_len;

static void add_entry(const uint8_t *data, size_t len)
{
    if (corpus_len >= MAX_CORPUS) {
        return;
    }
    if (len > FUZZ_MAX_INPUT) {
        len = FUZZ_MAX_INPUT;
    }
    uint8_t *copy = malloc(len > 0u ? len : 1u);
    if (copy == NULL) {
        fprintf(stderr, "fuzz: out of memory\n");
        exit(2);
    }
    if (len > 0u) {
        memcpy(copy, data, len);
    }
    corpus[corpus_len].data = copy;
    corpus[corpus_len].len = len;
    corpus_len++;
}

/* --- the input being run, for the crash report */
static uint8_t input[FUZZ_MAX_INPUT];
static size_t input_len;
static uint64_t seed_arg;

static void dump_input(void)
{
    char name[64];
    snprintf(name, sizeof(name), "fuzz-crash-%llu.bin", (unsigned long long)seed_arg);
    FILE *f = fopen(name, "wb");
    if (f != NULL) {
        fwrite(input, 1, input_len, f);
        fclose(f);
    }
    fprintf(stderr, "fuzz: input (%zu bytes, also in %s): ", input_len, name);
    for (size_t i = 0; i < input_len; i++) {
        fprintf(stderr, "%02x", input[i]);
    }
    fprintf(stderr, "\n");
}

void __sanitizer_set_death_callback(void (*callback)(void));

void fuzz_fail(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "fuzz: invariant broken: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    dump_input();
    exit(3);
}

/* --- mutations */
static void put_le(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = (uint8_t)(v >> (8u * i));
    }
}

static uint64_t interesting(size_t len)
{
    static const uint64_t values[] = {
        0, 1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 63, 64, 0x7f, 0x80, 0xff, 0x100, 0x1ff, 0x200, 0x3ff, 0x400,
        0x7fff, 0x8000, 0xfffe, 0xffff, 0x10000, 0x20000, 0x40000, 0x7fffffff, 0x80000000u, 0xfffffffe,
        0xffffffff,
    };
    size_t pick = below(sizeof(values) / sizeof(values[0]) + 3u);
    if (pick < sizeof(values) / sizeof(values[0])) {
        return values[pick];
    }
    return (uint64_t)len + pick - sizeof(values) / sizeof(values[0]) - 1u; /* len - 1, len, len + 1 */
}

static void mutate(void)
{
    unsigned steps = 1u + (unsigned)below(4);
    for (unsigned s = 0; s < steps; s++) {
        size_t len = input_len;
        switch (below(10)) {
        case 0: /* flip a bit */
            if (len > 0u) {
                input[below(len)] ^= (uint8_t)(1u << below(8));
            }
            break;
        case 1: /* a random byte */
            if (len > 0u) {
                input[below(len)] = (uint8_t)rnd();
            }
            break;
        case 2: /* an interesting value, 1, 2 or 4 bytes, little-endian */
        case 3: {
            size_t n = (size_t)1u << below(3);
            if (len >= n) {
                put_le(input + below(len - n + 1u), interesting(len), n);
            }
            break;
        }
        case 4: { /* insert random bytes */
            size_t n = 1u + below(16);
            if (len + n <= FUZZ_MAX_INPUT) {
                size_t at = below(len + 1u);
                memmove(input + at + n, input + at, len - at);
                for (size_t i = 0; i < n; i++) {
                    input[at + i] = (uint8_t)rnd();
                }
                input_len = len + n;
            }
            break;
        }
        case 5: /* delete a range */
            if (len > 0u) {
                size_t at = below(len), n = 1u + below(len - at < 32u ? len - at : 32u);
                memmove(input + at, input + at + n, len - at - n);
                input_len = len - n;
            }
            break;
        case 6: /* repeat a range */
            if (len > 0u) {
                size_t from = below(len), n = 1u + below(len - from < 64u ? len - from : 64u);
                if (len + n <= FUZZ_MAX_INPUT) {
                    size_t at = below(len + 1u);
                    memmove(input + at + n, input + at, len - at);
                    memmove(input + at, input + (from < at ? from : from + n), n);
                    input_len = len + n;
                }
            }
            break;
        case 7: { /* splice: the tail of another entry */
            const struct entry *o = &corpus[below(corpus_len)];
            size_t at = below(len + 1u), from = below(o->len + 1u);
            size_t n = o->len - from;
            if (at + n > FUZZ_MAX_INPUT) {
                n = FUZZ_MAX_INPUT - at;
            }
            memcpy(input + at, o->data + from, n);
            input_len = at + n;
            break;
        }
        case 8: /* a compared constant, where it could be read */
            if (dict_len > 0u) {
                size_t pick = below(dict_len), n = dict[pick].width;
                if (n == 0u || n > 8u) {
                    n = 1u;
                }
                if (len >= n) {
                    put_le(input + below(len - n + 1u), dict[pick].value, n);
                }
            }
            break;
        default: /* truncate */
            input_len = below(len + 1u);
            break;
        }
    }
}

/* Run the target on a heap copy of exactly len bytes: ASan then sees a read one byte past the end
 * (the engine's own buffer is larger). */
static void run_one(void)
{
    uint8_t *exact = malloc(input_len > 0u ? input_len : 1u);
    if (exact == NULL) {
        fprintf(stderr, "fuzz: out of memory\n");
        exit(2);
    }
    if (input_len > 0u) {
        memcpy(exact, input, input_len);
    }
    fuzz_target(exact, input_len);
    free(exact);
}

static int load_file(const char *path)
{
    static uint8_t buf[FUZZ_MAX_INPUT];
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    add_entry(buf, n);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s RUNS SEED [CORPUS_FILE...]\n", argv[0]);
        return 2;
    }
    char *end = NULL;
    unsigned long long runs = strtoull(argv[1], &end, 10);
    if (*argv[1] == '\0' || *end != '\0') {
        fprintf(stderr, "fuzz: RUNS must be a number, not '%s'\n", argv[1]);
        return 2;
    }
    seed_arg = strtoull(argv[2], &end, 10);
    if (*argv[2] == '\0' || *end != '\0') {
        fprintf(stderr, "fuzz: SEED must be a number, not '%s'\n", argv[2]);
        return 2;
    }
    rng_state = seed_arg * 0x9E3779B97F4A7C15ull + 0x1234567u;
    __sanitizer_set_death_callback(dump_input);
    fuzz_target_init();
    for (int a = 3; a < argc; a++) {
        if (load_file(argv[a]) != 0) {
            return 2;
        }
    }
    fuzz_target_seeds(add_entry);
    if (corpus_len == 0u) {
        add_entry(NULL, 0);
    }
    /* Run the seeds first: their coverage is the baseline. */
    size_t seeds = corpus_len;
    for (size_t i = 0; i < seeds; i++) {
        memcpy(input, corpus[i].data, corpus[i].len);
        input_len = corpus[i].len;
        run_one();
    }
    new_edges();
    for (unsigned long long r = 0; r < runs; r++) {
        const struct entry *e = &corpus[below(corpus_len)];
        memcpy(input, e->data, e->len);
        input_len = e->len;
        mutate();
        run_one();
        if (new_edges() > 0u) {
            add_entry(input, input_len);
        }
    }
    printf("fuzz: %llu runs, seed %llu, corpus %zu (%zu seeds), %zu edges, %zu constants\n", runs,
           (unsigned long long)seed_arg, corpus_len, seeds, edges, dict_len);
    return 0;
}
