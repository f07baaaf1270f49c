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
    j->rk = (const __m128i *)(const void *)key->rk;
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

#else
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
