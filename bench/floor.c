/* The physical limit: the least an AES-NI core can do for an operation
 * that needs two dependent chains of a and b AES blocks (CBC encryption and
 * CMAC are each such a chain; SCP03 wrap needs both). Each block waits for
 * the one before it (nr rounds x AESENC latency), but the two chains run
 * interleaved round by round, so the time is about max(a, b) block
 * latencies. Nothing else is done: no parsing, padding, copying or
 * loads of data. */
#include "bench.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define FLOOR_AESNI __attribute__((target("aes,sse4.1")))

typedef struct floor_job {
    const __m128i *rk;
    int nr;
    size_t a, b;
    __m128i x, y;
} floor_job;

FLOOR_AESNI static void floor_run(void *p)
{
    floor_job *j = p;
    const __m128i *rk = j->rk;
    __m128i x = j->x, y = j->y;
    size_t both = j->a < j->b ? j->a : j->b, rest = (j->a > j->b ? j->a : j->b) - both;

    for (size_t i = 0; i < both; i++) {
        x = _mm_xor_si128(x, rk[0]);
        y = _mm_xor_si128(y, rk[0]);
        for (int r = 1; r < j->nr; r++) {
            x = _mm_aesenc_si128(x, rk[r]);
            y = _mm_aesenc_si128(y, rk[r]);
        }
        x = _mm_aesenclast_si128(x, rk[j->nr]);
        y = _mm_aesenclast_si128(y, rk[j->nr]);
    }
    for (size_t i = 0; i < rest; i++) {
        x = _mm_xor_si128(x, rk[0]);
        for (int r = 1; r < j->nr; r++)
            x = _mm_aesenc_si128(x, rk[r]);
        x = _mm_aesenclast_si128(x, rk[j->nr]);
    }
    j->x = x, j->y = y; /* keep the chains live */
}

int floor_available(void) { return __builtin_cpu_supports("aes"); }

static void floor_job_init(floor_job *j, const scp_aes *key, size_t a, size_t b)
{
    j->rk = (const __m128i *)(const void *)key->u.rk;
    j->nr = key->nr;
    j->a = a, j->b = b;
    j->x = _mm_set1_epi32(1), j->y = _mm_set1_epi32(2);
}

double floor_ns(const scp_aes *key, size_t a, size_t b)
{
    floor_job j;
    if (!floor_available() || !key->fast)
        return -1;
    floor_job_init(&j, key, a, b);
    return bench_ns(floor_run, &j);
}

void floor_pair(bench_fn op, void *ctx, const scp_aes *key, size_t a, size_t b, double *ns,
                double *fl)
{
    floor_job j;
    if (!floor_available() || !key->fast) {
        *ns = bench_ns(op, ctx);
        *fl = -1;
        return;
    }
    floor_job_init(&j, key, a, b);
    bench_pair(op, ctx, floor_run, &j, ns, fl);
}

/* How much the AES unit overlaps: k independent chains of blocks run
 * round by round in lockstep; ns per block. One chain is pure latency;
 * when k chains cost no more per round than one, the unit had room. */
#define SWEEP(K)                                                                           \
    FLOOR_AESNI static void sweep##K(void *p)                                              \
    {                                                                                      \
        floor_job *j = p;                                                                  \
        const __m128i *rk = j->rk;                                                         \
        __m128i x[K];                                                                      \
        _Pragma("GCC unroll 8") for (int c = 0; c < K; c++)                                \
            x[c] = _mm_set1_epi32(c + 1);                                                  \
        for (size_t i = 0; i < j->a; i++) {                                                \
            _Pragma("GCC unroll 8") for (int c = 0; c < K; c++)                            \
                x[c] = _mm_xor_si128(x[c], rk[0]);                                         \
            for (int r = 1; r < j->nr; r++)                                                \
                _Pragma("GCC unroll 8") for (int c = 0; c < K; c++)                        \
                    x[c] = _mm_aesenc_si128(x[c], rk[r]);                                  \
            _Pragma("GCC unroll 8") for (int c = 0; c < K; c++)                            \
                x[c] = _mm_aesenclast_si128(x[c], rk[j->nr]);                              \
        }                                                                                  \
        for (int c = 1; c < K; c++)                                                        \
            x[0] = _mm_xor_si128(x[0], x[c]);                                              \
        j->x = x[0];                                                                       \
    }
SWEEP(1)
SWEEP(2)
SWEEP(4)
SWEEP(6)
SWEEP(8)

void floor_sweep(const scp_aes *key)
{
    static const int ks[] = { 1, 2, 4, 6, 8 };
    static void (*const fn[])(void *) = { sweep1, sweep2, sweep4, sweep6, sweep8 };
    floor_job j;
    if (!floor_available() || !key->fast)
        return;
    floor_job_init(&j, key, 64, 0);
    printf("AES unit, AES-%d blocks in k independent chains (ns per block):", 32 * (key->nr - 6));
    for (size_t i = 0; i < sizeof(ks) / sizeof(ks[0]); i++)
        printf(" k=%d %.2f%s", ks[i], bench_ns(fn[i], &j) / (64.0 * ks[i]),
               i + 1 < sizeof(ks) / sizeof(ks[0]) ? "," : "\n");
}

#else
void floor_sweep(const scp_aes *key) { (void)key; }
int floor_available(void) { return 0; }
void floor_pair(bench_fn op, void *ctx, const scp_aes *key, size_t a, size_t b, double *ns,
                double *fl)
{
    (void)key, (void)a, (void)b;
    *ns = bench_ns(op, ctx);
    *fl = -1;
}
double floor_ns(const scp_aes *key, size_t a, size_t b)
{
    (void)key, (void)a, (void)b;
    return -1;
}
#endif
