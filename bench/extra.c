/* scp_bench extras: static-key diversifications per second per scheme
 * (scp_div_derive, src/gp) and APDUs per second through the in-process
 * virtual card (src/card), plain and under SCP03 level 33. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report.h"

#include "scpkit/gp.h"

typedef struct div_job {
    scp_div_scheme s;
    uint8_t master[32];
    size_t master_len;
    uint8_t kdd[10];
    scp03_keys out;
} div_job;

static void div_once(void *p)
{
    div_job *j = p;
    bench_must(scp_div_derive(j->s, j->master, j->master_len, j->kdd, sizeof(j->kdd), &j->out),
               "scp_div_derive");
    j->kdd[9]++; /* another card each time */
}

static void bench_div(void)
{
    static const struct {
        scp_div_scheme s;
        const char *op;
        size_t key_len;
    } schemes[] = {
        { SCP_DIV_SP800_108, "div-sp800-108", 16 }, { SCP_DIV_SP800_108, "div-sp800-108", 32 },
        { SCP_DIV_KDF3, "div-kdf3", 16 },           { SCP_DIV_KDF3, "div-kdf3", 32 },
        { SCP_DIV_EMV, "div-emv", 16 },             { SCP_DIV_VISA2, "div-visa2", 16 },
    };
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        div_job j = { 0 };
        bench_row r = { schemes[i].op, (int)schemes[i].key_len * 8, -1, -1, 0, -1, 0,
                        -1, -1, 0, -1, NULL };
        j.s = schemes[i].s;
        j.master_len = schemes[i].key_len;
        memset(j.master, 0x4D, sizeof(j.master));
        /* scp_div_derive takes no crypto context: default path only */
        r.ossl_path_ns = -1;
        r.ns = bench_ns(div_once, &j);
        if (schemes[i].s == SCP_DIV_EMV || schemes[i].s == SCP_DIV_VISA2)
            r.note = "3DES through OpenSSL, context per call";
        report_row(&r);
    }
}

#include <ftw.h>
#include <stdio.h>

#include "scpkit/apdu.h"
#include "scpkit/card.h"
#include "scpkit/channel.h"

typedef struct card_job {
    scp_transport t;
    scp_channel ch;
    int secure;
    uint8_t cmd[300];
    size_t cmd_len, n;
} card_job;

static uint8_t rbuf[SCP_RAPDU_MAX];

static void card_once(void *p)
{
    card_job *j = p;
    size_t l = 0;
    uint16_t sw = 0;
    if (j->secure) {
        bench_must(scp_channel_send(&j->ch, j->cmd, j->cmd_len, rbuf, sizeof(rbuf), &l, &sw),
                   "channel send");
    } else {
        bench_must(scp_transmit(&j->t, j->cmd, j->cmd_len, rbuf, sizeof(rbuf), &l),
                   "card transmit");
        sw = (uint16_t)(rbuf[l - 2] << 8 | rbuf[l - 1]);
    }
    if (sw != 0x9000 && sw != 0x6A88 && sw != 0x6A82) /* any answer is a round trip */
        bench_must(-1, "card status word");
}

/* remove the card's state directory, deepest entries first */
static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)st, (void)flag, (void)f;
    return remove(path);
}

static void bench_card(void)
{
    static card_job j;
    static const uint8_t factory[16] = { 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47,
                                         0x48, 0x49, 0x4A, 0x4B, 0x4C, 0x4D, 0x4E, 0x4F };
    /* SELECT the ISD (GPC 11.9), answered by every profile */
    static const uint8_t sel[] = { 0x00, 0xA4, 0x04, 0x00, 0x08, 0xA0, 0x00, 0x00,
                                   0x01, 0x51, 0x00, 0x00, 0x00, 0x00 };
    /* GET DATA card recognition data (GPC H.2), answered inside a channel */
    static const uint8_t gd[] = { 0x80, 0xCA, 0x00, 0x66, 0x00 };
    char dir[] = "/tmp/scp_bench_card.XXXXXX", err[256];
    scp_channel_opts o = { 0 };
    scp03_keys k = { 0 };
    scp_card *c = NULL;
    unsigned long before;

    if (mkdtemp(dir) == NULL || scp_card_init(dir, NULL) != 0 ||
        scp_card_open(dir, &c, err, sizeof(err)) != 0) {
        printf("card: n/a: could not create a virtual card in %s\n", dir);
        return;
    }
    scp_card_transport(c, &j.t);
    memcpy(j.cmd, sel, sizeof(sel)), j.cmd_len = sizeof(sel);
    bench_row r = { "card-plain", 0, -1, 8, 0, -1, -1, -1, -1, 0, 0, "SELECT ISD, in process" };
    r.ns = bench_ns(card_once, &j);
    before = bench_allocs;
    card_once(&j);
    r.allocs = bench_allocs_counted() ? (double)(bench_allocs - before) : -1;
    report_row(&r);

    memcpy(k.enc, factory, 16), memcpy(k.mac, factory, 16), memcpy(k.dek, factory, 16);
    k.key_len = 16;
    o.level = 0x33, o.s16 = -1;
    if (scp_channel_open(&j.ch, &j.t, &k, &o) != 0) {
        printf("card-scp03: n/a: channel did not open on the virtual card\n");
    } else {
        bench_row s = { "card-scp03", 128, -1, 0, 0, -1, -1, -1, -1, 0, 0,
                        "GET DATA 66 at level 33, in process" };
        j.secure = 1;
        memcpy(j.cmd, gd, sizeof(gd)), j.cmd_len = sizeof(gd);
        s.ns = bench_ns(card_once, &j);
        before = bench_allocs;
        card_once(&j);
        s.allocs = bench_allocs_counted() ? (double)(bench_allocs - before) : -1;
        report_row(&s);
        scp_channel_close(&j.ch);
    }
    scp_card_close(c);
    if (nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS) != 0)
        fprintf(stderr, "scp_bench: could not remove %s\n", dir);
}

void bench_extra(void)
{
    bench_div();
    bench_card();
}
