/* SHA-256 (FIPS 180-4 sections 4.1.2, 4.2.2, 5.3.3, 6.2). Streaming, no allocation. The one
 * CPU-bound routine of the firmware (the bootloader hashes both slots on every boot), so the
 * Makefile builds it with -O2. tests/c checks it against the FIPS example vectors and against
 * Python's hashlib on random lengths. */
#include "sha256.h"
#include "lib_ramfunc.h"

/* In SRAM (LIB_RAMDATA), where sha256_job_step (a LIB_RAMFUNC) reads it while the flash
 * programs. */
static const uint32_t k256[64] LIB_RAMDATA = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u, 0x923f82a4u, 0xab1c5ed5u,
    0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u, 0x72be5d74u, 0x80deb1feu, 0x9bdc06a7u, 0xc19bf174u,
    0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu, 0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau,
    0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u, 0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u,
    0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu, 0x53380d13u, 0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u,
    0xa2bfe8a1u, 0xa81a664bu, 0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u,
    0x19a4c116u, 0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u,
    0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u, 0x90befffau, 0xa4506cebu, 0xbef9a3f7u, 0xc67178f2u,
};

static inline uint32_t ror(uint32_t x, unsigned n) { return (x >> n) | (x << (32u - n)); }

static void compress(uint32_t state[8], const uint8_t block[64])
{
    uint32_t w[64];
    for (unsigned i = 0; i < 16; i++) {
        w[i] = ((uint32_t)block[4 * i] << 24) | ((uint32_t)block[4 * i + 1] << 16) |
               ((uint32_t)block[4 * i + 2] << 8) | (uint32_t)block[4 * i + 3];
    }
    for (unsigned i = 16; i < 64; i++) {
        uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
    for (unsigned i = 0; i < 64; i++) {
        uint32_t t1 = h + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + k256[i] + w[i];
        uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
    state[4] += e;
    state[5] += f;
    state[6] += g;
    state[7] += h;
}

void sha256_init(struct sha256_ctx *ctx)
{
    static const uint32_t h0[8] = {
        0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au, 0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u,
    };
    for (unsigned i = 0; i < 8; i++) {
        ctx->state[i] = h0[i];
    }
    ctx->bytes = 0;
    ctx->used = 0;
}

void sha256_update(struct sha256_ctx *ctx, const void *data, size_t len)
{
    const uint8_t *p = data;
    ctx->bytes += len;
    if (ctx->used != 0u) {
        while (len > 0u && ctx->used < 64u) {
            ctx->block[ctx->used++] = *p++;
            len--;
        }
        if (ctx->used < 64u) {
            return;
        }
        compress(ctx->state, ctx->block);
        ctx->used = 0;
    }
    while (len >= 64u) {
        compress(ctx->state, p);
        p += 64;
        len -= 64u;
    }
    while (len > 0u) {
        ctx->block[ctx->used++] = *p++;
        len--;
    }
}

LIB_RAMFUNC int sha256_job_start(const struct sha256_ctx *ctx, struct sha256_job *job, const uint8_t block[64])
{
    if (ctx->used != 0u) {
        return 0;
    }
    for (unsigned i = 0; i < 16; i++) {
        job->w[i] = ((uint32_t)block[4 * i] << 24) | ((uint32_t)block[4 * i + 1] << 16) |
                    ((uint32_t)block[4 * i + 2] << 8) | (uint32_t)block[4 * i + 3];
    }
    /* One by one: a copy loop could become a call of memcpy, which lives in flash. */
    job->v[0] = ctx->state[0];
    job->v[1] = ctx->state[1];
    job->v[2] = ctx->state[2];
    job->v[3] = ctx->state[3];
    job->v[4] = ctx->state[4];
    job->v[5] = ctx->state[5];
    job->v[6] = ctx->state[6];
    job->v[7] = ctx->state[7];
    job->round = 0;
    return 1;
}

LIB_RAMFUNC int sha256_job_step(struct sha256_ctx *ctx, struct sha256_job *job, uint32_t rounds)
{
    uint32_t *w = job->w;
    uint32_t a = job->v[0], b = job->v[1], c = job->v[2], d = job->v[3];
    uint32_t e = job->v[4], f = job->v[5], g = job->v[6], h = job->v[7];
    uint32_t i = job->round;
    uint32_t stop = i + rounds < 64u ? i + rounds : 64u;
    for (; i < stop; i++) {
        uint32_t wi;
        if (i < 16u) {
            wi = w[i];
        } else {
            uint32_t w15 = w[(i - 15u) & 15u], w2 = w[(i - 2u) & 15u];
            uint32_t s0 = ror(w15, 7) ^ ror(w15, 18) ^ (w15 >> 3);
            uint32_t s1 = ror(w2, 17) ^ ror(w2, 19) ^ (w2 >> 10);
            wi = w[i & 15u] + s0 + w[(i - 7u) & 15u] + s1;
            w[i & 15u] = wi;
        }
        uint32_t t1 = h + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + k256[i] + wi;
        uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    job->round = i;
    if (i < 64u) {
        job->v[0] = a;
        job->v[1] = b;
        job->v[2] = c;
        job->v[3] = d;
        job->v[4] = e;
        job->v[5] = f;
        job->v[6] = g;
        job->v[7] = h;
        return 0;
    }
    ctx->state[0] += a;
    ctx->state[1] += b;
    ctx->state[2] += c;
    ctx->state[3] += d;
    ctx->state[4] += e;
    ctx->state[5] += f;
    ctx->state[6] += g;
    ctx->state[7] += h;
    ctx->bytes += 64u;
    return 1;
}

void sha256_final(struct sha256_ctx *ctx, uint8_t digest[32])
{
    uint64_t bits = ctx->bytes * 8u;
    /* Padding: 0x80, zeros up to 56 mod 64, then the bit length big-endian (FIPS 180-4 5.1.1). */
    ctx->block[ctx->used++] = 0x80u;
    if (ctx->used > 56u) {
        while (ctx->used < 64u) {
            ctx->block[ctx->used++] = 0u;
        }
        compress(ctx->state, ctx->block);
        ctx->used = 0;
    }
    while (ctx->used < 56u) {
        ctx->block[ctx->used++] = 0u;
    }
    for (unsigned i = 0; i < 8; i++) {
        ctx->block[56 + i] = (uint8_t)(bits >> (56u - 8u * i));
    }
    compress(ctx->state, ctx->block);
    for (unsigned i = 0; i < 8; i++) {
        digest[4 * i] = (uint8_t)(ctx->state[i] >> 24);
        digest[4 * i + 1] = (uint8_t)(ctx->state[i] >> 16);
        digest[4 * i + 2] = (uint8_t)(ctx->state[i] >> 8);
        digest[4 * i + 3] = (uint8_t)ctx->state[i];
    }
    ctx->used = 0;
}
