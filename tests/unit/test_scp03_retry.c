/* Every engine call that writes output, retried with every output size
 * that is too small (issue 11 item 1): each refusal must be
 * SCP_E_BUFFER_TOO_SMALL and leave the session byte for byte as an
 * untouched twin of it (memcmp of the struct) and `out` unwritten; the
 * first size that works must be the one the header documents (exactly
 * the bytes written, for the wraps and the handshake commands), and the
 * peer must accept what it made. Random keys (16/24/32), S8/S16, levels,
 * i values, CLA classes, APDU cases and lengths; the SCP03_WRAP_OVERHEAD
 * worst case (35) is built on purpose, and no random command may exceed
 * it. Seed from argv[1] or the clock, runs from argv[2]; printed. */
#include <stdlib.h>
#include <time.h>

#include "scpkit/apdu.h"
#include "scpkit/scp03.h"
#include "test.h"

#define CANARY 0xEE

static uint8_t cbuf[SCP_APDU_MAX + 64], wbuf[SCP_APDU_MAX + 64], pbuf[SCP_APDU_MAX + 64];
static uint8_t rbuf[SCP_RAPDU_MAX + 64], rwbuf[SCP_RAPDU_MAX + 64], rpbuf[SCP_RAPDU_MAX + 64];
static scp03_session twin;
static size_t max_overhead, max_roverhead;

static const uint8_t levels[] = { 0x00, 0x01, 0x03, 0x11, 0x13, 0x33 };
static const uint8_t aid[] = { 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00 };

/* Call `expr` (which passes `sz` as its out_size) with sz = 0, 1, 2, ...
 * until it stops answering SCP_E_BUFFER_TOO_SMALL; after each refusal the
 * session must equal its twin and out[0] must still hold the canary.
 * rc gets the last result, sz the size that worked. */
#define TRY_SIZES(sess, out, rc, sz, expr)                                                         \
    do {                                                                                           \
        memcpy(&twin, (sess), sizeof(twin));                                                       \
        (out)[0] = CANARY;                                                                         \
        for ((sz) = 0;; (sz)++) {                                                                  \
            (rc) = (expr);                                                                         \
            if ((rc) != SCP_E_BUFFER_TOO_SMALL || (sz) > SCP_RAPDU_MAX + 64)                       \
                break;                                                                             \
            if (memcmp(&twin, (sess), sizeof(twin)) != 0 || (out)[0] != CANARY) {                  \
                fprintf(stderr, "%s:%d: out_size %zu changed the session or out\n", __FILE__,      \
                        __LINE__, (size_t)(sz));                                                   \
                CHECK(0);                                                                          \
                memcpy((sess), &twin, sizeof(twin));                                               \
                (out)[0] = CANARY;                                                                 \
            }                                                                                      \
        }                                                                                          \
    } while (0)

static void random_keys(scp03_keys *k)
{
    static const uint8_t sizes[] = { 16, 24, 32 };
    memset(k, 0, sizeof(*k));
    k->key_len = sizes[test_rand_below(3)];
    k->kvn = (uint8_t)(1 + test_rand_below(0x7F));
    test_rand_bytes(k->enc, k->key_len);
    test_rand_bytes(k->mac, k->key_len);
    test_rand_bytes(k->dek, k->key_len);
}

static uint8_t random_cla(void)
{
    static const uint8_t base[] = { 0x00, 0x01, 0x03, 0x10, 0x40, 0x4F, 0x80, 0x81, 0xC0, 0xCF };
    return base[test_rand_below(sizeof(base))];
}

static size_t random_len(size_t max)
{
    static const size_t edges[] = { 0, 1, 15, 16, 17, 31, 32, 200, 223, 238, 239, 240, 241, 255 };
    size_t r = test_rand_below(20), v;
    if (r < 14)
        v = edges[test_rand_below(sizeof(edges) / sizeof(edges[0]))];
    else if (r < 19)
        v = test_rand_below(1024);
    else
        v = test_rand_below(65536);
    return v > max ? max : v;
}

/* The handshake through the shared in-process pair (tests/common/pair.c),
 * every call that writes retried with every short size; the size that
 * works must be the documented one. */
typedef struct retry_drive {
    size_t cl;      /* challenge length */
    uint8_t i;      /* the card's i */
    int ext_ea;     /* EXTERNAL AUTHENTICATE in the extended form */
    int bad_step;   /* 1 + the step whose size was wrong; 0 */
} retry_drive;

static int drive_retry(void *dc, int step, scp03_session *s, test_step_call call, void *cc,
                       uint8_t *out, size_t out_size, size_t *out_len)
{
    retry_drive *d = dc;
    size_t sz, want;
    int rc;

    TRY_SIZES(s, out, rc, sz,
              sz <= out_size ? call(cc, step, out, sz, out_len) : SCP_E_BUFFER_TOO_SMALL);
    if (rc != SCP_OK)
        return rc;
    if (step == TEST_STEP_HOST_IU) /* 80 50 KVN 00 Lc challenge Le */
        want = 6 + d->cl;
    else if (step == TEST_STEP_CARD_IU) /* GPC Amd D 7.1.1.6 */
        want = 13 + 2 * d->cl + ((d->i & SCP03_I_PSEUDO_RANDOM) ? 3 : 0);
    else
        want = (d->ext_ea ? 7u : 5u) + 2 * d->cl;
    if (sz != want || *out_len != sz) {
        d->bad_step = 1 + step;
        return SCP_E_LENGTH;
    }
    return SCP_OK;
}

static int open_retry(scp03_session *h, scp03_session *c, const scp03_keys *k, uint8_t i,
                      uint8_t level, int ext_ea)
{
    scp03_card_params prm = { .i = i, .aid = aid, .aid_len = sizeof(aid) };
    retry_drive d = { .cl = (i & SCP03_I_S16) ? 16 : 8, .i = i, .ext_ea = ext_ea };
    test_pair_opts o = { .ea_flags = ext_ea ? SCP03_EA_EXTENDED : 0, .drive = drive_retry,
                         .drive_ctx = &d };
    int rc;

    prm.seq = (uint32_t)test_rand_below(0xFFFFFF);
    test_rand_bytes(prm.kdd, sizeof(prm.kdd));
    /* c may still hold the previous run's open session: a short buffer
     * for the card's INITIALIZE UPDATE must leave it as it was */
    rc = test_pair_open_ex(h, c, k, k, &prm, NULL, level, &o);
    if (d.bad_step != 0)
        return -d.bad_step;
    return rc == SCP_OK ? 0 : -10 + rc;
}

/* The card hands back the same command, in the short form where it fits
 * (an extended-form plain command may come back short). */
static int same_command(const uint8_t *p, size_t pl, const uint8_t *q, size_t ql)
{
    scp_apdu x, y;
    if (scp_apdu_parse(p, pl, &x) != SCP_OK || scp_apdu_parse(q, ql, &y) != SCP_OK)
        return 0;
    if (pl > ql || (pl < ql && !y.extended))
        return 0;
    return x.cla == y.cla && x.ins == y.ins && x.p1 == y.p1 && x.p2 == y.p2 && x.lc == y.lc &&
           x.has_le == y.has_le && x.le == y.le && (x.lc == 0 || memcmp(x.data, y.data, x.lc) == 0);
}

/* One command and its response, every call retried with every short size. */
static int exchange_retry(scp03_session *h, scp03_session *c)
{
    static uint8_t data[65536];
    scp_apdu a = { 0 };
    size_t cl, wl, pl, rl, rwl, rpl, sz, max = scp03_max_plain_data(h, 1);
    uint16_t sw;
    int rc;

    a.cla = random_cla();
    a.ins = (uint8_t)(0x20 + test_rand_below(0x40)) & 0xFE;
    a.p1 = (uint8_t)test_rand();
    a.p2 = (uint8_t)test_rand();
    a.lc = random_len(max);
    test_rand_bytes(data, a.lc);
    a.data = a.lc ? data : NULL;
    a.has_le = (uint8_t)(test_rand() & 1);
    a.le = a.has_le ? 1 + test_rand_below((test_rand() & 3) ? 256 : 65536) : 0;
    a.extended = (uint8_t)((test_rand() & 7) == 0);
    if (scp_apdu_encode(&a, cbuf, sizeof(cbuf), &cl) != SCP_OK)
        return -10;
    TRY_SIZES(h, wbuf, rc, sz, scp03_host_wrap(h, cbuf, cl, wbuf, sz, &wl));
    if (rc != SCP_OK)
        return -11;
    if (wl != sz) /* asks for exactly what it writes */
        return -12;
    if (wl - cl > max_overhead)
        max_overhead = wl - cl;
    TRY_SIZES(c, pbuf, rc, sz, scp03_card_unwrap(c, wbuf, wl, pbuf, sz, &pl));
    if (rc != SCP_OK || sz != wl || pl > sz)
        return -13;
    if (!same_command(pbuf, pl, cbuf, cl))
        return -14;
    rl = random_len(4096);
    test_rand_bytes(rbuf, rl);
    sw = (test_rand() & 3) ? 0x9000 : (test_rand() & 1) ? 0x6A82 : 0x6310;
    TRY_SIZES(c, rwbuf, rc, sz, scp03_card_wrap(c, rbuf, rl, sw, rwbuf, sz, &rwl));
    if (rc != SCP_OK || rwl != sz)
        return -15;
    if (rwl > rl + 2 + SCP03_RWRAP_OVERHEAD)
        return -16;
    if (rwl - (scp_sw_is_success_class(sw) ? rl + 2 : 2) > max_roverhead)
        max_roverhead = rwl - (scp_sw_is_success_class(sw) ? rl + 2 : 2);
    TRY_SIZES(h, rpbuf, rc, sz, scp03_host_unwrap(h, rwbuf, rwl, rpbuf, sz, &rpl));
    if (rc != SCP_OK || rpl > sz)
        return -17;
    if (!scp_sw_is_success_class(sw))
        rl = 0; /* error status words carry no data */
    if (rpl != rl + 2 || memcmp(rpbuf, rbuf, rl) != 0 || rpbuf[rl] != (sw >> 8) ||
        rpbuf[rl + 1] != (uint8_t)sw)
        return -18;
    return 0;
}

/* SCP03_WRAP_OVERHEAD is reached: S16, C-DEC, 240 bytes with Le in a
 * short APDU (246 bytes) becomes 16 padding + 16 C-MAC in an extended
 * APDU: 4 + 3 + 272 + 2 = 281 bytes. */
static void worst_case(void)
{
    static scp03_session h, c;
    scp03_keys k;
    size_t cl, wl, pl, sz;
    int rc;

    random_keys(&k);
    CHECK_OK(open_retry(&h, &c, &k, SCP03_I_S16 | SCP03_I_RMAC | SCP03_I_RENC, 0x33, 0));
    memset(cbuf, 0x5A, 5 + 240 + 1);
    cbuf[0] = 0x00, cbuf[1] = 0xA0, cbuf[2] = 0, cbuf[3] = 0, cbuf[4] = 240, cbuf[245] = 0x00;
    cl = 246;
    TRY_SIZES(&h, wbuf, rc, sz, scp03_host_wrap(&h, cbuf, cl, wbuf, sz, &wl));
    CHECK_OK(rc);
    CHECK(wl == 281 && sz == wl);
    CHECK(wl - cl == SCP03_WRAP_OVERHEAD);
    CHECK(wbuf[4] == 0 && wbuf[5] == 0x01 && wbuf[6] == 0x10); /* Lc' 272, extended */
    CHECK_OK(scp03_card_unwrap(&c, wbuf, wl, pbuf, sizeof(pbuf), &pl));
    CHECK_MEM(pbuf, pl, cbuf, cl);
    scp03_end(&h);
    scp03_end(&c);
}

int main(int argc, char **argv)
{
    uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 0) : (uint64_t)time(NULL);
    int runs = argc > 2 ? atoi(argv[2]) : 400;
    static scp03_session h, c;

    printf("seed %llu, %d runs\n", (unsigned long long)seed, runs);
    test_seed(seed);
    worst_case();
    for (int run = 0; run < runs; run++) {
        scp03_keys k;
        uint8_t i = (uint8_t)((test_rand() & 1) | ((test_rand() & 1) ? SCP03_I_PSEUDO_RANDOM : 0) |
                              SCP03_I_RMAC | SCP03_I_RENC);
        uint8_t level = levels[test_rand_below(sizeof(levels))];
        int n = 1 + (int)test_rand_below(4), rc;

        random_keys(&k);
        rc = open_retry(&h, &c, &k, i, level, (int)(test_rand() & 1));
        if (rc != 0)
            fprintf(stderr, "run %d open level %02X i %02X: rc %d\n", run, level, i, rc);
        CHECK(rc == 0);
        for (int j = 0; j < n && rc == 0; j++) {
            rc = exchange_retry(&h, &c);
            if (rc != 0)
                fprintf(stderr, "run %d cmd %d level %02X i %02X keylen %u: rc %d\n", run, j,
                        level, i, k.key_len, rc);
            CHECK(rc == 0);
        }
        scp03_end(&h);
        if (test_rand() & 1) /* else the next card IU meets an open session */
            scp03_end(&c);
    }
    printf("largest wrap overhead seen: %zu (command), %zu (response)\n", max_overhead,
           max_roverhead);
    CHECK(max_overhead <= SCP03_WRAP_OVERHEAD);
    CHECK(max_roverhead <= SCP03_RWRAP_OVERHEAD);
    scp03_end(&c);
    return test_done("test_scp03_retry");
}
