/* scp_bench output: a readable table on stdout and the same rows as JSON. */
#ifndef SCP_BENCH_REPORT_H
#define SCP_BENCH_REPORT_H

#include "bench.h"

void report_begin(size_t session_bytes);
/* Print one row now and keep it for the JSON file (copied). */
void report_row(const bench_row *r);
/* Heap allocations per APDU exchange (host wrap + card unwrap/wrap + host
 * unwrap) on each path; -1 when not counted. */
void report_allocs(double fast, double openssl_path);
/* Write the JSON file when path is not NULL; returns the exit status. */
int report_end(const char *json_path);

/* extra.c: diversification and in-process card rows (when built). */
void bench_extra(void);
/* scp11.c: SCP11a/b session set-up per curve against the EC floor. */
void bench_scp11(void);

#endif
