/* scp_bench internals: timing harness, allocation counter, the AES-NI floor
 * kernel and the plain-OpenSSL reference (issue 5). Not part of the
 * library. */
#ifndef SCP_BENCH_H
#define SCP_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "scpkit/crypto.h"
#include "crypto/aes.h"

/* ---- harness.c ---- */
typedef void (*bench_fn)(void *ctx);
extern int bench_quick;      /* fewer, shorter runs */
extern int bench_cpu_clock;  /* time runs by the thread's CPU clock, not the wall clock */
extern unsigned long bench_allocs; /* malloc/calloc/realloc calls so far */
int bench_allocs_counted(void);    /* 1 when the interposer is built in */
/* Median over several runs of ns per call of fn(ctx). */
double bench_ns(bench_fn fn, void *ctx);
/* The same for two functions, their runs alternated (an operation and its
 * floor), so load changes hit both alike. */
void bench_pair(bench_fn fa, void *ca, bench_fn fb, void *cb, double *a, double *b);
/* Abort the benchmark with a message when a call that must succeed fails. */
void bench_must(int rc, const char *what);

/* ---- floor.c: the physical limit ---- */
/* ns for two dependent AES chains of a and b blocks, interleaved round by
 * round, with the key schedule of `key` (nr from it); -1 without AES-NI. */
double floor_ns(const scp_aes *key, size_t a, size_t b);
/* ns of op(ctx) and of its floor, measured alternately; *fl = -1 without
 * AES-NI. */
void floor_pair(bench_fn op, void *ctx, const scp_aes *key, size_t a, size_t b, double *ns,
                double *fl);
int floor_available(void);
/* Prints ns per AES block with 1, 2, 4, 6 and 8 independent chains in
 * lockstep under `key`: how much overlap the AES unit allows. */
void floor_sweep(const scp_aes *key);

/* ---- evp_ref.c: the same operations through plain OpenSSL EVP ---- */
typedef struct evp_ref evp_ref;
evp_ref *evp_ref_new(size_t key_len, size_t chal_len);
void evp_ref_free(evp_ref *r);
/* fresh = 0: contexts kept per key; 1: contexts made per APDU */
double evp_ref_wrap_ns(evp_ref *r, size_t n, int fresh);
double evp_ref_unwrap_ns(evp_ref *r, size_t n, int fresh);

/* ---- results (scp_bench.c) ---- */
typedef struct bench_row {
    const char *op;   /* wrap, unwrap, card, session, ... */
    int key_bits;     /* 128, 256, 0 when n/a */
    int s16;          /* 0 S8, 1 S16, -1 n/a */
    long n;           /* data bytes, -1 n/a */
    double ns;        /* scpkit, default path */
    double floor_ns;  /* -1 n/a */
    double ossl_path_ns; /* scpkit forced onto its OpenSSL path */
    double evp_kept_ns, evp_fresh_ns; /* plain EVP reference, -1 n/a */
    double per_sec;   /* operations per second, from ns */
    double allocs;    /* heap allocations per operation, -1 n/a */
    const char *note;
} bench_row;

#endif
