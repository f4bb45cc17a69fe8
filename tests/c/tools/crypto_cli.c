/* Batch driver of the firmware's SHA-512 and Ed25519 verifier for tests/c/test_fw_crypto.py (one
 * process for thousands of cases). Built by that test with the host gcc under ASan + UBSan.
 *   crypto_cli sha512   stdin: one message per line, hex ("-" for the empty message);
 *                       stdout: its SHA-512, hex, fed in uneven pieces
 *   crypto_cli verify   stdin: "PUB SIG MSG" per line, hex (MSG "-" when empty);
 *                       stdout: ed25519_result_name of ed25519_verify
 * A malformed line stops the run with status 2 and its line number on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ed25519.h"
#include "sha512.h"

#define MAX_MSG (1u << 20)

static char line[2 * MAX_MSG + 512];
static uint8_t msg[MAX_MSG];

static int nibble(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

/* Hex token -> bytes; "-" is empty. Returns the length, or -1 when malformed or over max. */
static long unhex(const char *tok, uint8_t *out, size_t max)
{
    if (strcmp(tok, "-") == 0) {
        return 0;
    }
    size_t n = strlen(tok);
    if (n % 2u != 0u || n / 2u > max) {
        return -1;
    }
    for (size_t i = 0; i < n / 2u; i++) {
        int hi = nibble(tok[2 * i]), lo = nibble(tok[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return -1;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return (long)(n / 2u);
}

static void put_hex(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        printf("%02x", p[i]);
    }
    printf("\n");
}

static int bad_line(unsigned long no)
{
    fprintf(stderr, "crypto_cli: line %lu is malformed\n", no);
    return 2;
}

static int run_sha512(void)
{
    unsigned long no = 0;
    while (fgets(line, sizeof(line), stdin) != NULL) {
        no++;
        line[strcspn(line, "\r\n")] = '\0';
        long n = unhex(line, msg, MAX_MSG);
        if (n < 0) {
            return bad_line(no);
        }
        struct sha512_ctx ctx;
        uint8_t d[64];
        size_t off = 0, step = 1;
        sha512_init(&ctx);
        while (off < (size_t)n) {
            size_t k = (size_t)n - off < step ? (size_t)n - off : step;
            sha512_update(&ctx, msg + off, k);
            off += k;
            step = step * 2 + 3;
        }
        sha512_final(&ctx, d);
        put_hex(d, sizeof(d));
    }
    return 0;
}

static int run_verify(void)
{
    unsigned long no = 0;
    while (fgets(line, sizeof(line), stdin) != NULL) {
        no++;
        line[strcspn(line, "\r\n")] = '\0';
        char *save = NULL;
        char *pub_tok = strtok_r(line, " ", &save);
        char *sig_tok = strtok_r(NULL, " ", &save);
        char *msg_tok = strtok_r(NULL, " ", &save);
        uint8_t pub[32], sig[64];
        if (pub_tok == NULL || sig_tok == NULL || msg_tok == NULL || strtok_r(NULL, " ", &save) != NULL ||
            unhex(pub_tok, pub, 32) != 32 || unhex(sig_tok, sig, 64) != 64) {
            return bad_line(no);
        }
        long n = unhex(msg_tok, msg, MAX_MSG);
        if (n < 0) {
            return bad_line(no);
        }
        /* The message is copied to a buffer of its exact size, so ASan sees any read past it. */
        uint8_t *exact = malloc(n > 0 ? (size_t)n : 1u);
        if (exact == NULL) {
            return 2;
        }
        memcpy(exact, msg, (size_t)n);
        printf("%s\n", ed25519_result_name(ed25519_verify(sig, pub, n > 0 ? exact : NULL, (size_t)n)));
        free(exact);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "sha512") == 0) {
        return run_sha512();
    }
    if (argc == 2 && strcmp(argv[1], "verify") == 0) {
        return run_verify();
    }
    fprintf(stderr, "usage: crypto_cli sha512|verify < cases\n");
    return 2;
}
