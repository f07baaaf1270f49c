/* scp_bench timing harness: clock_gettime(CLOCK_MONOTONIC), calibrated
 * iteration counts, median of several runs; nothing is pinned. And a malloc
 * interposer that counts heap allocations (the whole process: scpkit and
 * libcrypto alike), left out of sanitizer builds. */
#include <stdlib.h>
#include <time.h>

#include "bench.h"

int bench_quick;
unsigned long bench_allocs;

#ifndef SCP_BENCH_NO_INTERPOSE
/* glibc's own allocator entry points; the executable's malloc wins symbol
 * resolution for every library in the process. */
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t m);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);

void *malloc(size_t n)
{
    bench_allocs++;
    return __libc_malloc(n);
}
void *calloc(size_t n, size_t m)
{
    bench_allocs++;
    return __libc_calloc(n, m);
}
void *realloc(void *p, size_t n)
{
    bench_allocs++;
    return __libc_realloc(p, n);
}
void free(void *p) { __libc_free(p); }
int bench_allocs_counted(void) { return 1; }
#else
int bench_allocs_counted(void) { return 0; }
#endif

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_ns(bench_fn fn, void *ctx)
{
    double run_ns = bench_quick ? 1e6 : 4e6, t0, t, per[9];
    int runs = bench_quick ? 3 : 9;
    unsigned long iters = 1;

    /* calibrate: double until one batch takes a tenth of a run */
    for (;;) {
        t0 = now_ns();
        for (unsigned long i = 0; i < iters; i++)
            fn(ctx);
        t = now_ns() - t0;
        if (t > run_ns / 10 || iters > (1ul << 30))
            break;
        iters *= 2;
    }
    iters = (unsigned long)((double)iters * run_ns / (t > 1 ? t : 1)) + 1;
    for (int r = 0; r < runs; r++) {
        t0 = now_ns();
        for (unsigned long i = 0; i < iters; i++)
            fn(ctx);
        per[r] = (now_ns() - t0) / (double)iters;
    }
    qsort(per, (size_t)runs, sizeof(per[0]), cmp_double);
    return per[runs / 2];
}

void bench_must(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "scp_bench: %s failed (rc %d)\n", what, rc);
        exit(1);
    }
}
