/* scp_pcsc_bench: the secure channel's share of a PC/SC round trip (issue 5).
 * Through pcscd and a reader (vpcd and `scpkit card run` in
 * bench/pcsc_roundtrip.sh): N plain GET DATA (CPLC) round trips, then the
 * same command N times inside an SCP03 channel at level 33, and the channel
 * set-up itself (SELECT + INITIALIZE UPDATE + EXTERNAL AUTHENTICATE).
 * Medians of per-APDU times, clock_gettime(CLOCK_MONOTONIC).
 *
 *   scp_pcsc_bench READER [N] [--json PATH]
 *
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
    for (int i = 0; i < 16; i++)
        k.enc[i] = k.mac[i] = k.dek[i] = (uint8_t)(0x40 + i);
    k.key_len = 16;
    o.level = 0x33, o.s16 = -1;
    if (plain(t, select_isd, sizeof(select_isd)) != 0)
        return -1;
    return scp_channel_open(ch, t, &k, &o);
}

int main(int argc, char **argv)
{
    const char *reader = NULL, *json = NULL;
    int n = 200;
    double *tp, *ts, *to, mp, ms, mo;
    scp_transport t;
    scp_channel ch;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0 && i + 1 < argc)
            json = argv[++i];
        else if (reader == NULL)
            reader = argv[i];
        else
            n = atoi(argv[i]);
    }
    if (reader == NULL || n < 3 || n > 100000) {
        fprintf(stderr, "usage: scp_pcsc_bench READER [N] [--json PATH]\n");
        return 2;
    }
    tp = calloc((size_t)n, sizeof(double));
    ts = calloc((size_t)n, sizeof(double));
    to = calloc((size_t)n, sizeof(double));
    if (tp == NULL || ts == NULL || to == NULL || scp_pcsc_open(reader, &t) != 0) {
        fprintf(stderr, "scp_pcsc_bench: cannot open reader \"%s\": %s\n", reader,
                scp_pcsc_last_error());
        return 1;
    }
    if (plain(&t, select_isd, sizeof(select_isd)) != 0) {
        fprintf(stderr, "scp_pcsc_bench: SELECT ISD failed\n");
        return 1;
    }
    for (int i = 0; i < n; i++) {
        double t0 = now_us();
        int rc = plain(&t, get_cplc, sizeof(get_cplc));
        if (rc != 0) {
            fprintf(stderr, "scp_pcsc_bench: plain GET DATA failed (rc %d, %02X%02X)\n", rc,
                    rbuf[0], rbuf[1]);
            return 1;
        }
        tp[i] = now_us() - t0;
    }
    for (int i = 0; i < n / 10 + 3; i++) { /* channel set-up, fewer times */
        double t0 = now_us();
        if (open_channel(&ch, &t) != 0) {
            fprintf(stderr, "scp_pcsc_bench: channel did not open (factory keys?)\n");
            return 1;
        }
        to[i] = now_us() - t0;
        if (i + 1 < n / 10 + 3)
            scp_channel_close(&ch);
    }
    for (int i = 0; i < n; i++) {
        size_t l = 0;
        uint16_t sw = 0;
        double t0 = now_us();
        if (scp_channel_send(&ch, get_cplc, sizeof(get_cplc), rbuf, sizeof(rbuf), &l, &sw) != 0 ||
            sw != 0x9000) {
            fprintf(stderr, "scp_pcsc_bench: GET DATA in the channel failed\n");
            return 1;
        }
        ts[i] = now_us() - t0;
    }
    scp_channel_close(&ch);
    if (t.close != NULL)
        t.close(t.ctx);
    mp = median(tp, n), ms = median(ts, n), mo = median(to, n / 10 + 3);
    printf("PC/SC round trip through %s, median of %d:\n", reader, n);
    printf("  plain GET DATA (CPLC)          %9.1f us\n", mp);
    printf("  same at SCP03 level 33         %9.1f us  (+%.1f us, %.2f%%)\n", ms, ms - mp,
           100.0 * (ms - mp) / mp);
    printf("  channel set-up (SELECT+IU+EA)  %9.1f us  (median of %d)\n", mo, n / 10 + 3);
    if (json != NULL) {
        FILE *f = fopen(json, "w");
        if (f == NULL)
            return 1;
        fprintf(f, "{\"reader\": \"%s\", \"n\": %d, \"plain_us\": %.1f, \"scp03_l33_us\": %.1f, "
                   "\"channel_open_us\": %.1f}\n", reader, n, mp, ms, mo);
        fclose(f);
    }
    free(tp), free(ts), free(to);
    return 0;
}
