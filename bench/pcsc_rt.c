/* scp_pcsc_bench: what a protected APDU costs over a plain one through a
 * real PC/SC stack (issue 11 item 14). Through pcscd and a reader (vpcd and
 * `scpkit card run` in bench/pcsc_roundtrip.sh): GET DATA (CPLC) plain and
 * the same command inside an SCP03 channel at level 33, measured in
 * alternating rounds in one run (a plain command inside a session ends it
 * on the card, so the two cannot alternate command by command): each round
 * sends N/R plain commands, opens a channel (timed: SELECT + INITIALIZE
 * UPDATE + EXTERNAL AUTHENTICATE) and sends N/R protected ones, so a change
 * of load on this shared machine hits both alike. Per-APDU times are
 * clock_gettime(CLOCK_MONOTONIC); the overhead is the median over rounds of
 * each round's (protected median / plain median - 1), so drift between
 * rounds cancels; the absolute figures are medians over all APDUs.
 *
 *   scp_pcsc_bench READER [N] [--rounds R] [--only plain|scp] [--json PATH]
 *
 * R defaults to N/25 (rounds of 25 of each kind).
 *
 * --only runs one kind (for a profiler attached to pcscd or the card).
 * The card must answer the factory key set (40..4F, any KVN). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scpkit/apdu.h"
#include "scpkit/channel.h"
#include "scpkit/transport.h"

static const uint8_t select_isd[] = { 0x00, 0xA4, 0x04, 0x00, 0x08, 0xA0, 0x00, 0x00,
                                      0x01, 0x51, 0x00, 0x00, 0x00, 0x00 };
static const uint8_t get_cplc[] = { 0x80, 0xCA, 0x9F, 0x7F, 0x00 };
static uint8_t rbuf[SCP_RAPDU_MAX];

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    if (n <= 0)
        return 0.0;
    qsort(v, (size_t)n, sizeof(v[0]), cmp_double);
    return v[n / 2];
}

static int plain(scp_transport *t, const uint8_t *c, size_t len)
{
    size_t l = 0;
    int rc = scp_transmit(t, c, len, rbuf, sizeof(rbuf), &l);
    return rc != 0 ? rc : (l >= 2 && rbuf[l - 2] == 0x90) ? 0 : -1;
}

static int open_channel(scp_channel *ch, scp_transport *t)
{
    scp_channel_opts o = { 0 };
    scp03_keys k = { 0 };
    int rc;
    for (int i = 0; i < 16; i++)
        k.enc[i] = k.mac[i] = k.dek[i] = (uint8_t)(0x40 + i);
    k.key_len = 16;
    o.level = 0x33, o.s16 = -1;
    if (plain(t, select_isd, sizeof(select_isd)) != 0)
        return -1;
    rc = scp_channel_open(ch, t, &k, &o);
    scp_wipe(&k, sizeof(k));
    return rc;
}

typedef struct run {
    int n, rounds, do_plain, do_scp;
    double *tp, *ts, *to, *ratio;
    int np, ns, no;
} run;

/* This round's protected median over its plain median (copies: median
 * sorts in place). */
static double round_ratio(const run *r, int per, double *tmp)
{
    double mp, ms;
    memcpy(tmp, r->tp + r->np - per, (size_t)per * sizeof(double));
    mp = median(tmp, per);
    memcpy(tmp, r->ts + r->ns - per, (size_t)per * sizeof(double));
    ms = median(tmp, per);
    return mp > 0 ? ms / mp : 1.0;
}

static int round_plain(run *r, scp_transport *t, int per)
{
    if (plain(t, select_isd, sizeof(select_isd)) != 0) { /* also ends a session */
        fprintf(stderr, "scp_pcsc_bench: SELECT ISD failed\n");
        return -1;
    }
    for (int i = 0; i < per; i++) {
        double t0 = now_us();
        int rc = plain(t, get_cplc, sizeof(get_cplc));
        if (rc != 0) {
            fprintf(stderr, "scp_pcsc_bench: plain GET DATA failed (rc %d)\n", rc);
            return -1;
        }
        r->tp[r->np++] = now_us() - t0;
    }
    return 0;
}

static int round_scp(run *r, scp_transport *t, int per)
{
    scp_channel ch;
    double t0 = now_us();
    if (open_channel(&ch, t) != 0) {
        fprintf(stderr, "scp_pcsc_bench: channel did not open (factory keys?)\n");
        return -1;
    }
    r->to[r->no++] = now_us() - t0;
    for (int i = 0; i < per; i++) {
        size_t l = 0;
        uint16_t sw = 0;
        t0 = now_us();
        if (scp_channel_send(&ch, get_cplc, sizeof(get_cplc), rbuf, sizeof(rbuf), &l, &sw) != 0 ||
            sw != 0x9000) {
            fprintf(stderr, "scp_pcsc_bench: GET DATA in the channel failed\n");
            scp_channel_close(&ch);
            return -1;
        }
        r->ts[r->ns++] = now_us() - t0;
    }
    scp_channel_close(&ch);
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: scp_pcsc_bench READER [N] [--rounds R] [--only plain|scp] "
                    "[--json PATH]\n");
}

int main(int argc, char **argv)
{
    const char *reader = NULL, *json = NULL;
    run r = { .n = 500, .rounds = 0, .do_plain = 1, .do_scp = 1 };
    double mp, ms, mo, pct, *tmp;
    scp_transport t;
    int per, rc = 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0 && i + 1 < argc)
            json = argv[++i];
        else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            r.rounds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            const char *k = argv[++i];
            r.do_plain = strcmp(k, "plain") == 0;
            r.do_scp = strcmp(k, "scp") == 0;
        } else if (reader == NULL)
            reader = argv[i];
        else
            r.n = atoi(argv[i]);
    }
    if (r.rounds == 0)
        r.rounds = r.n / 25 > 0 ? r.n / 25 : 1;
    if (reader == NULL || r.n < 3 || r.n > 1000000 || r.rounds < 1 || r.rounds > r.n ||
        !(r.do_plain || r.do_scp)) {
        usage();
        return 2;
    }
    per = r.n / r.rounds;
    r.n = per * r.rounds;
    r.tp = calloc((size_t)r.n, sizeof(double));
    r.ts = calloc((size_t)r.n, sizeof(double));
    r.to = calloc((size_t)r.rounds, sizeof(double));
    r.ratio = calloc((size_t)r.rounds, sizeof(double));
    tmp = calloc((size_t)per, sizeof(double));
    if (r.tp == NULL || r.ts == NULL || r.to == NULL || r.ratio == NULL || tmp == NULL ||
        scp_pcsc_open(reader, &t) != 0) {
        fprintf(stderr, "scp_pcsc_bench: cannot open reader \"%s\": %s\n", reader,
                scp_pcsc_last_error());
        goto out;
    }
    for (int k = 0; k < r.rounds; k++) {
        if ((r.do_plain && round_plain(&r, &t, per) != 0) ||
            (r.do_scp && round_scp(&r, &t, per) != 0))
            goto out_t;
        if (r.do_plain && r.do_scp)
            r.ratio[k] = round_ratio(&r, per, tmp);
    }
    pct = r.do_plain && r.do_scp ? 100.0 * (median(r.ratio, r.rounds) - 1.0) : 0.0;
    mp = median(r.tp, r.np), ms = median(r.ts, r.ns), mo = median(r.to, r.no);
    printf("PC/SC round trip through %s, medians, %d rounds of %d of each kind:\n", reader,
           r.rounds, per);
    if (r.do_plain)
        printf("  plain GET DATA (CPLC)          %9.1f us\n", mp);
    if (r.do_scp) {
        printf("  same at SCP03 level 33         %9.1f us", ms);
        if (r.do_plain)
            printf("  (%+.1f us; overhead %+.1f%%, median of the rounds' ratios)", ms - mp,
                   pct);
        printf("\n  channel set-up (SELECT+IU+EA)  %9.1f us  (median of %d)\n", mo, r.no);
    }
    if (json != NULL && r.do_plain && r.do_scp) {
        FILE *f = fopen(json, "w");
        if (f == NULL)
            goto out_t;
        fprintf(f,
                "{\"reader\": \"%s\", \"n\": %d, \"rounds\": %d, \"plain_us\": %.1f, "
                "\"scp03_l33_us\": %.1f, \"overhead_pct\": %.1f, \"channel_open_us\": %.1f}\n",
                reader, r.n, r.rounds, mp, ms, pct, mo);
        fclose(f);
    }
    rc = 0;
out_t:
    if (t.close != NULL)
        t.close(t.ctx);
out:
    free(r.tp), free(r.ts), free(r.to), free(r.ratio), free(tmp);
    return rc;
}
