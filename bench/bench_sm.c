/* scp_bench_sm (issue 17): SCP02 wrap and ISO/IEC 7816-4 secure messaging
 * protect / unprotect at 16 and 240 bytes against a floor measured in the
 * same run: the block operations the protocol needs, as one dependent
 * chain of the library's own single-block calls (scp_des_block for the
 * constant-time DES, scp_aes_block for AES), alternated run by run with
 * the operation (bench_pair), so load changes hit both alike.
 *
 * Block counts (n data bytes, M2 padding everywhere):
 *  SCP02 level 01: ICV encryption 1 + retail MAC over 5 + n bytes
 *    ((5 + n) / 8 + 1 single DES) + 2 for the output transformation;
 *  SCP02 level 03: the same + C-DECRYPTION (n / 8 + 1) x 3;
 *  ISO SM 3DES protect: encryption (n / 8 + 1) x 3 + MAC over SSC | header
 *    block | DO87 ((16 + |DO87|) / 8 + 1) + 2; unprotect: MAC over SSC |
 *    DO87 | DO99 ((8 + |DO87| + 4) / 8 + 1) + 2 + decryption (n/8 + 1) x 3;
 *  ISO SM AES: IV 1 + CBC (n / 16 + 1) + CMAC over SSC | header | DO87
 *    ((32 + |DO87|) / 16 + 1) blocks (protect); unprotect likewise with
 *    SSC | DO87 | DO99.
 * Usage: scp_bench_sm [--quick]. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "crypto/des_ct.h"
#include "scpkit/apdu.h"
#include "scpkit/des.h"
#include "scpkit/iso7816sm.h"
#include "scpkit/scp02.h"

static scp_des3 floor_des;
static scp_aes floor_aes;

typedef struct floor_ctx {
    size_t des, aes; /* single DES blocks, AES blocks */
    uint8_t x[16];
} floor_ctx;

/* The machine is shared and busy: alternate many short runs of the
 * operation and of its floor and keep each one's fastest run (the one
 * least disturbed), as well as bench_pair's medians. */
static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static double one_run(bench_fn fn, void *ctx, unsigned long iters)
{
    double t0 = now_ns();
    for (unsigned long i = 0; i < iters; i++)
        fn(ctx);
    return (now_ns() - t0) / (double)iters;
}

static void pair_min(bench_fn fa, void *ca, bench_fn fb, void *cb, double *a, double *b)
{
    int runs = bench_quick ? 5 : 61;
    unsigned long ia = 1, ib = 1;
    while (one_run(fa, ca, ia) * (double)ia < 2e5 && ia < (1ul << 24))
        ia *= 2; /* about 0.2 ms a run */
    while (one_run(fb, cb, ib) * (double)ib < 2e5 && ib < (1ul << 24))
        ib *= 2;
    *a = *b = 1e300;
    for (int r = 0; r < runs; r++) {
        double x = one_run(fa, ca, ia), y = one_run(fb, cb, ib);
        *a = x < *a ? x : *a;
        *b = y < *b ? y : *b;
    }
}

static void floor_once(void *p)
{
    floor_ctx *f = p;
    for (size_t i = 0; i < f->des; i++)
        scp_des_block(&SCP_DES3_OF(&floor_des)->ks[0], 0, f->x, f->x);
    for (size_t i = 0; i < f->aes; i++)
        scp_aes_block(&floor_aes, f->x, f->x);
}

/* ---- SCP02 host wrap ---- */

typedef struct scp02_ctx {
    scp02_session h;
    uint8_t cmd[300], out[300];
    size_t cmd_len;
} scp02_ctx;

static void scp02_once(void *p)
{
    scp02_ctx *c = p;
    size_t n;
    bench_must(scp02_host_wrap(&c->h, c->cmd, c->cmd_len, c->out, sizeof(c->out), &n),
               "scp02_host_wrap");
    c->h.resp_pending = 0;
}

static void open_scp02(scp02_session *h, uint8_t level)
{
    scp02_session card = { 0 };
    scp02_keys k;
    scp02_card_params prm = { 0 };
    uint8_t buf[64], resp[64];
    size_t n, rn;
    memset(k.enc, 0x40, 16);
    memset(k.mac, 0x41, 16);
    memset(k.dek, 0x42, 16);
    k.kvn = 1;
    prm.i = 0x55;
    prm.seq = 1;
    prm.aid = (const uint8_t *)"\xA0\x00\x00\x01\x51\x00\x00\x00";
    prm.aid_len = 8;
    bench_must(scp02_host_begin(h, &k, 0x55, NULL), "begin");
    bench_must(scp02_host_initialize_update(h, 0x80, buf, sizeof(buf), &n), "iu");
    bench_must(scp02_card_initialize_update(&card, &prm, &k, buf + 5, 8, resp, sizeof(resp), &rn),
               "card iu");
    bench_must(scp02_host_iu_response(h, resp, rn, NULL, 0), "iu resp");
    bench_must(scp02_host_external_authenticate(h, level, buf, sizeof(buf), &n), "ea");
    bench_must(scp02_card_external_authenticate(&card, buf, n), "card ea");
    bench_must(scp02_host_ea_result(h, 0x9000), "ea result");
    scp02_end(&card);
}

static double med_ns, med_fl; /* bench_pair's medians, beside the minima */

static void measure(bench_fn fa, void *ca, bench_fn fb, void *cb, double *a, double *b)
{
    bench_pair(fa, ca, fb, cb, &med_ns, &med_fl);
    pair_min(fa, ca, fb, cb, a, b);
}

static void row(const char *op, size_t n, double ns, double fl, size_t des, size_t aes)
{
    printf("| %-24s | %4zu | %8.0f | %8.0f | %5.2fx | %5.2fx | %3zu DES + %2zu AES |\n", op, n,
           ns, fl, ns / fl, med_ns / med_fl, des, aes);
}

static void bench_scp02(uint8_t level, size_t n)
{
    static scp02_ctx c;
    floor_ctx f = { 0 };
    scp_apdu a = { 0 };
    uint8_t data[256];
    double ns, fl;
    char name[64];
    memset(data, 0x5A, sizeof(data));
    memset(&c, 0, sizeof(c));
    open_scp02(&c.h, level);
    a.cla = 0x80;
    a.ins = 0xE2;
    a.p1 = 0x90;
    a.lc = n;
    a.data = data;
    bench_must(scp_apdu_encode(&a, c.cmd, sizeof(c.cmd), &c.cmd_len), "encode");
    f.des = 1 + ((5 + n) / 8 + 1) + 2 + ((level & 2) ? 3 * (n / 8 + 1) : 0);
    measure(scp02_once, &c, floor_once, &f, &ns, &fl);
    snprintf(name, sizeof(name), "SCP02 wrap, level %02X", level);
    row(name, n, ns, fl, f.des, 0);
    scp02_end(&c.h);
}

/* ---- ISO SM ---- */

typedef struct sm_ctx {
    scp_sm host, snap;
    uint8_t cmd[600], resp[600], out[600];
    size_t cmd_len, resp_len;
} sm_ctx;

static void protect_once(void *p)
{
    sm_ctx *c = p;
    size_t n;
    bench_must(scp_sm_protect_command(&c->host, c->cmd, c->cmd_len, c->out, sizeof(c->out), &n),
               "protect");
    c->host.resp_pending = 0;
}

static void unprotect_once(void *p)
{
    sm_ctx *c = p;
    size_t n;
    /* the same response again: put the SSC back (16 bytes) */
    memcpy(c->host.chain.u.icv, c->snap.chain.u.icv, sizeof(c->host.chain.u.icv));
    c->host.resp_pending = 1;
    bench_must(scp_sm_unprotect_response(&c->host, c->resp, c->resp_len, c->out,
                                         sizeof(c->out), &n),
               "unprotect");
}

static size_t do87_len(size_t block, size_t n)
{
    size_t v = n + block - n % block + 1;
    return 1 + (v < 0x80 ? 1 : v < 0x100 ? 2 : 3) + v;
}

static void bench_sm(int family, size_t n)
{
    static sm_ctx c;
    scp_sm card;
    floor_ctx f = { 0 };
    scp_apdu a = { 0 };
    uint8_t ke[16], km[16], ssc[16] = { 0 }, data[300], tmp[600];
    size_t bl = family == SCP_SM_AES ? 16 : 8, m, d87 = do87_len(bl, n);
    double ns, fl;
    char name[64];
    memset(ke, 0x11, 16);
    memset(km, 0x22, 16);
    memset(data, 0xA5, sizeof(data));
    memset(&c, 0, sizeof(c));
    bench_must(scp_sm_init(&c.host, family, SCP_SM_HOST, ke, km, 16, ssc, bl), "sm init");
    bench_must(scp_sm_init(&card, family, SCP_SM_CARD, ke, km, 16, ssc, bl), "sm init");
    a.ins = 0xD6;
    a.lc = n;
    a.data = data;
    bench_must(scp_apdu_encode(&a, c.cmd, sizeof(c.cmd), &c.cmd_len), "encode");

    /* a response of n bytes, made by the card role, for unprotect */
    bench_must(scp_sm_protect_command(&c.host, c.cmd, c.cmd_len, c.out, sizeof(c.out), &m), "p");
    bench_must(scp_sm_unprotect_command(&card, c.out, m, tmp, sizeof(tmp), &m), "u");
    bench_must(scp_sm_protect_response(&card, data, n, 0x9000, c.resp, sizeof(c.resp),
                                       &c.resp_len),
               "pr");
    c.snap = c.host;
    scp_sm_end(&card);

    if (family == SCP_SM_AES) {
        f.aes = 1 + (n / 16 + 1) + (32 + d87) / 16 + 1;
        f.des = 0;
    } else {
        f.des = 3 * (n / 8 + 1) + (16 + d87) / 8 + 1 + 2;
    }
    c.host.resp_pending = 0;
    measure(protect_once, &c, floor_once, &f, &ns, &fl);
    snprintf(name, sizeof(name), "ISO SM %s protect", family == SCP_SM_AES ? "AES" : "3DES");
    row(name, n, ns, fl, f.des, f.aes);

    if (family == SCP_SM_AES)
        f.aes = (16 + d87 + 4) / 16 + 1 + 1 + (n / 16 + 1);
    else
        f.des = (8 + d87 + 4) / 8 + 1 + 2 + 3 * (n / 8 + 1);
    measure(unprotect_once, &c, floor_once, &f, &ns, &fl);
    snprintf(name, sizeof(name), "ISO SM %s unprotect", family == SCP_SM_AES ? "AES" : "3DES");
    row(name, n, ns, fl, f.des, f.aes);
    scp_sm_end(&c.host);
    scp_sm_end(&c.snap);
}

int main(int argc, char **argv)
{
    uint8_t k[16];
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            bench_quick = 1;
        } else {
            fprintf(stderr, "usage: scp_bench_sm [--quick]\n");
            return 2;
        }
    }
    memset(k, 0x33, sizeof(k));
    bench_must(scp_des3_init(&floor_des, k, 16), "floor des");
    bench_must(scp_aes_init(&floor_aes, k, 16), "floor aes");
    printf("AES: %s; DES: constant-time (src/crypto/des_ct.c)\n\n", scp_aes_impl());
    printf("| %-24s | %4s | %8s | %8s | %6s | %6s | %s |\n", "operation", "n", "min ns",
           "floor", "ratio", "median", "floor blocks");
    printf("|--------------------------|------|----------|----------|--------|--------|-------------------|\n");
    bench_scp02(0x01, 16);
    bench_scp02(0x01, 240);
    bench_scp02(0x03, 16);
    bench_scp02(0x03, 239);
    bench_sm(SCP_SM_3DES, 16);
    bench_sm(SCP_SM_3DES, 240);
    bench_sm(SCP_SM_AES, 16);
    bench_sm(SCP_SM_AES, 240);
    scp_des3_clear(&floor_des);
    scp_aes_clear(&floor_aes);
    return 0;
}
