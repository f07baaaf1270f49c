/* Property tests: the host and card engines against each other in process
 * over random keys (16/24/32), levels, S8/S16, i values, CLA classes and
 * data lengths; every run also tampers one random byte and expects the
 * session to die. Seed from argv[1] or the clock; printed for replay. */
#include <stdlib.h>
#include <time.h>

#include "scpkit/apdu.h"
#include "scpkit/scp03.h"
#include "test.h"

static uint8_t cbuf[SCP_APDU_MAX + 64], wbuf[SCP_APDU_MAX + 64], pbuf[SCP_APDU_MAX + 64];
static uint8_t rbuf[SCP_RAPDU_MAX + 64], rwbuf[SCP_RAPDU_MAX + 64], rpbuf[SCP_RAPDU_MAX + 64];

static const uint8_t levels[] = { 0x00, 0x01, 0x03, 0x11, 0x13, 0x33 };
static const uint8_t aid[] = { 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00 };

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

/* Handshake both sides; returns 0 on success. */
static int open_pair(scp03_session *h, scp03_session *c, const scp03_keys *k, uint8_t i,
                     uint8_t level, uint32_t seq)
{
    scp03_card_params prm = { .i = i, .seq = seq, .aid = aid, .aid_len = sizeof(aid) };
    test_rand_bytes(prm.kdd, sizeof(prm.kdd));
    return test_pair_open(h, c, k, k, &prm, NULL, level) == SCP_OK ? 0 : -1;
}

static uint8_t random_cla(void)
{
    static const uint8_t base[] = { 0x00, 0x01, 0x03, 0x10, 0x40, 0x4F, 0x80, 0x81, 0xC0, 0xCF };
    return base[test_rand_below(sizeof(base))];
}

static size_t random_len(size_t max)
{
    static const size_t edges[] = { 0, 1, 15, 16, 17, 31, 32, 200, 223, 239, 240, 255 };
    size_t r = test_rand_below(10), v;
    if (r < 6)
        v = edges[test_rand_below(sizeof(edges) / sizeof(edges[0]))];
    else if (r < 9)
        v = test_rand_below(1024);
    else
        v = test_rand_below(65536);
    return v > max ? max : v;
}

/* One command and its response through both engines; 0 when the plain
 * APDUs survive the round trip byte for byte. */
static int exchange(scp03_session *h, scp03_session *c, int tamper_cmd, int tamper_rsp)
{
    scp_apdu a = { 0 };
    size_t cl, wl, pl, rl, rwl, rpl, max = scp03_max_plain_data(h, 1);
    uint8_t data[65536];
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
    a.le = a.has_le ? 1 + test_rand_below(256) : 0;
    if (scp_apdu_encode(&a, cbuf, sizeof(cbuf), &cl) != 0)
        return -10;
    if (scp03_host_wrap(h, cbuf, cl, wbuf, sizeof(wbuf), &wl) != 0)
        return -11;
    if (tamper_cmd) {
        /* flip a bit the MAC covers: anything but the trailing Le */
        scp_apdu wa;
        size_t le_bytes = 0;
        if (scp_apdu_parse(wbuf, wl, &wa) != 0)
            return -19;
        if (wa.has_le)
            le_bytes = wa.extended ? (wa.lc ? 2 : 3) : 1;
        wbuf[test_rand_below(wl - le_bytes)] ^= (uint8_t)(1u << test_rand_below(8));
    }
    rc = scp03_card_unwrap(c, wbuf, wl, pbuf, sizeof(pbuf), &pl);
    if (tamper_cmd)
        return rc < 0 && c->state == SCP03_DEAD ? 1 : -12;
    if (rc != 0)
        return -13;
    if (h->level != 0 && (pl != cl || memcmp(pbuf, cbuf, cl) != 0))
        return -14;
    /* response */
    rl = random_len(4096);
    test_rand_bytes(rbuf, rl);
    sw = (test_rand() & 3) ? 0x9000 : (test_rand() & 1) ? 0x6A82 : 0x6310;
    if (!scp_sw_is_success_class(sw))
        rl = 0;
    if (scp03_card_wrap(c, rbuf, rl, sw, rwbuf, sizeof(rwbuf), &rwl) != 0)
        return -15;
    if (tamper_rsp && (c->level & SCP_LEVEL_RMAC) && scp_sw_is_success_class(sw)) {
        rwbuf[test_rand_below(rwl)] ^= (uint8_t)(1u << test_rand_below(8));
        rc = scp03_host_unwrap(h, rwbuf, rwl, rpbuf, sizeof(rpbuf), &rpl);
        return rc == SCP_E_MAC || rc == SCP_E_PADDING ? 1 : -16;
    }
    if (scp03_host_unwrap(h, rwbuf, rwl, rpbuf, sizeof(rpbuf), &rpl) != 0)
        return -17;
    if (rpl != rl + 2 || memcmp(rpbuf, rbuf, rl) != 0 || rpbuf[rl] != (sw >> 8) ||
        rpbuf[rl + 1] != (uint8_t)sw)
        return -18;
    return 0;
}

int main(int argc, char **argv)
{
    uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 0) : (uint64_t)time(NULL);
    int runs = argc > 2 ? atoi(argv[2]) : 2000;
    static scp03_session h, c;

    printf("seed %llu, %d runs\n", (unsigned long long)seed, runs);
    test_seed(seed);
    for (int run = 0; run < runs; run++) {
        scp03_keys k;
        uint8_t i = (uint8_t)((test_rand() & 1) | ((test_rand() & 1) ? SCP03_I_PSEUDO_RANDOM : 0) |
                              SCP03_I_RMAC | SCP03_I_RENC);
        uint8_t level = levels[test_rand_below(sizeof(levels))];
        int n = 1 + (int)test_rand_below(6), rc;

        random_keys(&k);
        CHECK_OK(open_pair(&h, &c, &k, i, level, (uint32_t)test_rand_below(0xFFFFFF)));
        for (int j = 0; j < n; j++) {
            rc = exchange(&h, &c, 0, 0);
            if (rc != 0)
                fprintf(stderr, "run %d cmd %d level %02X i %02X keylen %u: rc %d\n", run, j,
                        level, i, k.key_len, rc);
            CHECK(rc == 0);
        }
        if (level & SCP_LEVEL_CMAC) {
            int tcmd = (int)(test_rand() & 1);
            rc = exchange(&h, &c, tcmd, !tcmd);
            if ((level & SCP_LEVEL_RMAC) || tcmd) {
                if (rc != 1 && !(rc == 0 && !tcmd))
                    fprintf(stderr, "run %d tamper(cmd=%d) level %02X: rc %d\n", run, tcmd,
                            level, rc);
                /* a response tamper only counts when the sw was a success */
                CHECK(rc == 1 || (!tcmd && rc == 0));
                if (rc == 1) {
                    scp03_session *dead = tcmd ? &c : &h;
                    CHECK(dead->state == SCP03_DEAD);
                    /* sticky: every later call is refused the same way */
                    size_t x;
                    if (tcmd)
                        CHECK_RC(scp03_card_unwrap(&c, wbuf, 10, pbuf, sizeof(pbuf), &x),
                                 SCP_E_DEAD);
                    else
                        CHECK_RC(scp03_host_wrap(&h, cbuf, 4, wbuf, sizeof(wbuf), &x),
                                 SCP_E_DEAD);
                }
            }
        }
        scp03_end(&h);
        scp03_end(&c);
    }
    return test_done("test_scp03_property");
}
