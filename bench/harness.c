/* scp_bench timing harness: clock_gettime(CLOCK_MONOTONIC), calibrated
 * iteration counts, median of several runs; nothing is pinned. And a malloc
 * interposer that counts heap allocations (the whole process: scpkit and
 * libcrypto alike), left out of sanitizer builds. */
#include <stdlib.h>
#include <time.h>

#include "bench.h"

int bench_quick;
int bench_cpu_clock;
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
    /* the thread's CPU time leaves out the time other processes held the
     * core (bench_cpu_clock, scp_bench --cpu); wall time by default */
    clock_gettime(bench_cpu_clock ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Iterations for about run_ns per run: double until a batch takes a tenth
 * of it. */
static unsigned long calibrate(bench_fn fn, void *ctx, double run_ns)
{
    unsigned long iters = 1;
    double t0, t;
    for (;;) {
        t0 = now_ns();
        for (unsigned long i = 0; i < iters; i++)
            fn(ctx);
        t = now_ns() - t0;
        if (t > run_ns / 10 || iters > (1ul << 30))
            break;
        iters *= 2;
    }
    return (unsigned long)((double)iters * run_ns / (t > 1 ? t : 1)) + 1;
}

static double run_once(bench_fn fn, void *ctx, unsigned long iters)
{
    double t0 = now_ns();
    for (unsigned long i = 0; i < iters; i++)
        fn(ctx);
    return (now_ns() - t0) / (double)iters;
}

#define MAX_RUNS 21

/* Many short runs and their median: on a shared 2-core machine a run that
 * a preemption hits is an outlier, not the typical value. */
static int runs_wanted(void) { return bench_quick ? 5 : MAX_RUNS; }
static double run_len(void) { return bench_quick ? 0.5e6 : 1.5e6; }

double bench_ns(bench_fn fn, void *ctx)
{
    double per[MAX_RUNS];
    int runs = runs_wanted();
    unsigned long iters = calibrate(fn, ctx, run_len());
    for (int r = 0; r < runs; r++)
        per[r] = run_once(fn, ctx, iters);
    qsort(per, (size_t)runs, sizeof(per[0]), cmp_double);
    return per[runs / 2];
}

void bench_pair(bench_fn fa, void *ca, bench_fn fb, void *cb, double *a, double *b)
{
    double pa[MAX_RUNS], pb[MAX_RUNS];
    int runs = runs_wanted();
    unsigned long ia = calibrate(fa, ca, run_len()), ib = calibrate(fb, cb, run_len());
    for (int r = 0; r < runs; r++) { /* alternate: both see the same machine */
        pa[r] = run_once(fa, ca, ia);
        pb[r] = run_once(fb, cb, ib);
    }
    qsort(pa, (size_t)runs, sizeof(pa[0]), cmp_double);
    qsort(pb, (size_t)runs, sizeof(pb[0]), cmp_double);
    *a = pa[runs / 2];
    *b = pb[runs / 2];
}

void bench_must(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "scp_bench: %s failed (rc %d)\n", what, rc);
        exit(1);
    }
}
