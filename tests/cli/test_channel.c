/* The host channel (src/transport/channel.c) against the engine's card
 * role behind a fake transport: every level, S8/S16, AES-128/192/256,
 * command chaining, 61xx reassembly before unwrap, 6Cxx, the derive hook,
 * and the wrong-key paths (nothing retried, nothing sent after a bad card
 * cryptogram, a level the card's i forbids refused before EA). */
#include "scpkit/apdu.h"
#include "scpkit/channel.h"
#include "test.h"

static const uint8_t aid[] = { 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00 };

typedef struct fake_card {
    scp03_session s;
    scp03_keys keys;
    uint8_t i;
    int refuse_ea;     /* answer EA with 63C<tries> */
    int tries;
    int n_iu, n_ea, n_cmds;
    uint8_t chain[1024]; /* data of a chained command so far */
    size_t chain_len;
    uint8_t pending[1024]; /* wrapped response not yet fetched (61xx) */
    size_t pending_len, pending_off;
} fake_card;

static size_t sw_only(uint8_t *r, uint16_t sw)
{
    r[0] = (uint8_t)(sw >> 8);
    r[1] = (uint8_t)sw;
    return 2;
}

/* GPC H.2 card recognition data advertising SCP03 with the card's i */
static size_t recog(const fake_card *c, uint8_t *r)
{
    const uint8_t d[] = { 0x66, 0x26, 0x73, 0x24, 0x06, 0x07, 0x2A, 0x86, 0x48, 0x86, 0xFC,
                          0x6B, 0x01, 0x60, 0x0C, 0x06, 0x0A, 0x2A, 0x86, 0x48, 0x86, 0xFC,
                          0x6B, 0x02, 0x02, 0x03, 0x01, 0x64, 0x0B, 0x06, 0x09, 0x2A, 0x86,
                          0x48, 0x86, 0xFC, 0x6B, 0x04, 0x03, c->i, 0x90, 0x00 };
    memcpy(r, d, sizeof(d));
    return sizeof(d);
}

/* A plain command inside the session: INS EE echoes the (chained) data. */
static int session_cmd(fake_card *c, const uint8_t *capdu, size_t len, uint8_t *r, size_t rs,
                       size_t *rl)
{
    uint8_t plain[300], out[1100];
    size_t pl, ol;
    scp_apdu a;
    int rc = scp03_card_unwrap(&c->s, capdu, len, plain, sizeof(plain), &pl);
    if (rc != SCP_OK) {
        *rl = sw_only(r, 0x6988);
        return SCP_OK;
    }
    c->n_cmds++;
    if (scp_apdu_parse(plain, pl, &a) != SCP_OK || c->chain_len + a.lc > sizeof(c->chain))
        return SCP_E_FORMAT;
    if (a.lc)
        memcpy(c->chain + c->chain_len, a.data, a.lc);
    c->chain_len += a.lc;
    if (a.cla & 0x10) /* more parts follow */
        rc = scp03_card_wrap(&c->s, NULL, 0, 0x9000, out, sizeof(out), &ol);
    else {
        rc = scp03_card_wrap(&c->s, c->chain, c->chain_len, 0x9000, out, sizeof(out), &ol);
        c->chain_len = 0;
    }
    if (rc != SCP_OK)
        return rc;
    if (ol <= 258) {
        memcpy(r, out, *rl = ol);
        return SCP_OK;
    }
    /* T=0 style: 256 bytes now, the rest through GET RESPONSE */
    memcpy(c->pending, out, c->pending_len = ol);
    c->pending_off = 256;
    memcpy(r, out, 256);
    *rl = 256 + sw_only(r + 256, (uint16_t)(0x6100 | (ol - 2 - 256 > 255 ? 0 : ol - 2 - 256)));
    (void)rs;
    return SCP_OK;
}

static int fake_transmit(void *ctx, const uint8_t *capdu, size_t len, uint8_t *r, size_t rs,
                         size_t *rl)
{
    fake_card *c = ctx;
    scp03_card_params prm = { 0 };
    scp_apdu a;

    if (scp_apdu_parse(capdu, len, &a) != SCP_OK) {
        *rl = sw_only(r, 0x6700);
        return SCP_OK;
    }
    if (a.ins == 0xC0 && c->pending_len) { /* GET RESPONSE */
        size_t n = c->pending_len - 2 - c->pending_off;
        memcpy(r, c->pending + c->pending_off, n);
        memcpy(r + n, c->pending + c->pending_len - 2, 2);
        *rl = n + 2;
        c->pending_len = 0;
        return SCP_OK;
    }
    if (a.cla == 0x80 && a.ins == 0xCA && a.p2 == 0x66) {
        *rl = recog(c, r);
        return SCP_OK;
    }
    if (a.ins == 0x50) {
        c->n_iu++;
        prm.i = c->i;
        memset(prm.kdd, 0x5A, sizeof(prm.kdd));
        prm.seq = (uint32_t)c->n_iu;
        prm.aid = aid;
        prm.aid_len = sizeof(aid);
        int rc = scp03_card_initialize_update(&c->s, &prm, &c->keys, a.data, a.lc, r, rs, rl);
        if (rc) {
            fprintf(stderr, "fake IU: %s\n", scp_strerror(rc));
            *rl = sw_only(r, 0x6A80);
        }
        else
            *rl += sw_only(r + *rl, 0x9000);
        return SCP_OK;
    }
    if (a.ins == 0x82) {
        c->n_ea++;
        if (c->refuse_ea) {
            *rl = sw_only(r, (uint16_t)(0x63C0 | --c->tries));
            scp03_end(&c->s);
        } else
            *rl = sw_only(r, scp03_card_external_authenticate(&c->s, capdu, len) ? 0x6982
                                                                                  : 0x9000);
        return SCP_OK;
    }
    if (scp03_is_open(&c->s))
        return session_cmd(c, capdu, len, r, rs, rl);
    *rl = sw_only(r, 0x6D00);
    return SCP_OK;
}

static void keys_fill(scp03_keys *k, size_t len, uint8_t base)
{
    memset(k, 0, sizeof(*k));
    k->key_len = (uint8_t)len;
    for (size_t n = 0; n < len; n++) {
        k->enc[n] = (uint8_t)(base + n);
        k->mac[n] = (uint8_t)(base + 0x20 + n);
        k->dek[n] = (uint8_t)(base + 0x40 + n);
    }
}

static void setup(fake_card *c, scp_transport *t, uint8_t i, size_t key_len)
{
    memset(c, 0, sizeof(*c));
    c->i = i;
    c->tries = 10;
    keys_fill(&c->keys, key_len, 0x40);
    c->keys.kvn = 0x01;
    memset(t, 0, sizeof(*t));
    t->transmit = fake_transmit;
    t->ctx = c;
    t->name = "fake";
}

static void test_levels_and_lengths(void)
{
    static const uint8_t is[] = { 0x00, 0x10, 0x30, 0x70, 0x71, 0x31 };
    static const size_t klens[] = { 16, 24, 32 };
    static const int levels[] = { -1, 0x01, 0x03, 0x11, 0x13, 0x33 };
    uint8_t cmd[300], resp[1100];
    size_t rl;
    uint16_t sw;

    for (size_t a = 0; a < sizeof(is); a++)
        for (size_t b = 0; b < 3; b++)
            for (size_t l = 0; l < 6; l++) {
                fake_card c;
                scp_transport t;
                scp_channel ch;
                scp03_keys k;
                scp_channel_opts o = { .kvn = 1, .level = levels[l], .s16 = -1 };
                int want = levels[l] < 0 || scp03_level_allowed(is[a], (uint8_t)levels[l]);
                setup(&c, &t, is[a], klens[b]);
                keys_fill(&k, klens[b], 0x40);
                int rc = scp_channel_open(&ch, &t, &k, &o);
                if (!want) { /* refused before the card saw an EA */
                    CHECK_RC(rc, SCP_E_LEVEL);
                    CHECK(c.n_ea == 0);
                    continue;
                }
                CHECK_OK(rc);
                CHECK(ch.s.chal_len == ((is[a] & 1) ? 16 : 8));
                if (levels[l] < 0)
                    CHECK(ch.level == scp_level_strongest(is[a]));
                /* a short command and a 290-byte one (chained, and its
                 * echo comes back through 61xx) */
                for (size_t n = 0; n < 290; n++)
                    cmd[5 + n] = (uint8_t)(n * 7);
                memcpy(cmd, "\x80\xEE\x00\x00\x03", 5);
                CHECK_OK(scp_channel_send(&ch, cmd, 8, resp, sizeof(resp), &rl, &sw));
                CHECK(sw == 0x9000);
                CHECK_MEM(resp, rl, cmd + 5, 3);
                cmd[4] = 0; /* extended form: 00 01 22 */
                memmove(cmd + 7, cmd + 5, 290);
                cmd[4] = 0x00, cmd[5] = 0x01, cmd[6] = 0x22;
                CHECK_OK(scp_channel_send(&ch, cmd, 7 + 290, resp, sizeof(resp), &rl, &sw));
                CHECK(sw == 0x9000);
                CHECK_MEM(resp, rl, cmd + 7, 290);
                CHECK(c.n_iu == 1 && c.n_ea == 1);
                scp_channel_close(&ch);
                scp03_end(&c.s);
            }
}

static void test_wrong_key(void)
{
    fake_card c;
    scp_transport t;
    scp_channel ch;
    scp03_keys k;
    scp_channel_opts o = { .kvn = 0, .level = -1, .s16 = -1 };
    setup(&c, &t, 0x70, 16);
    keys_fill(&k, 16, 0x41);
    CHECK_RC(scp_channel_open(&ch, &t, &k, &o), SCP_E_AUTH);
    CHECK(ch.fail_rc == SCP_E_CRYPTOGRAM);
    CHECK(c.n_iu == 1 && c.n_ea == 0); /* nothing after the bad cryptogram, no retry */
    /* the card refuses EA and says how many tries are left */
    setup(&c, &t, 0x70, 16);
    c.refuse_ea = 1;
    keys_fill(&k, 16, 0x40);
    CHECK_RC(scp_channel_open(&ch, &t, &k, &o), SCP_E_AUTH);
    CHECK(ch.last_sw == 0x63C9 && ch.fail_rc == SCP_E_SW);
    CHECK(c.n_iu == 1 && c.n_ea == 1);
    /* no session: sending fails locally */
    uint8_t r[8];
    size_t rl;
    uint16_t sw;
    CHECK(scp_channel_send(&ch, (const uint8_t *)"\x80\xEE\x00\x00", 4, r, sizeof(r), &rl, &sw) <
          0);
}

static int derive_calls;
static int derive(void *ctx, const uint8_t *kdd, size_t kdd_len, uint8_t kvn, scp03_keys *out)
{
    (void)ctx;
    derive_calls++;
    CHECK(kdd_len == 10 && kdd[0] == 0x5A && kvn == 1);
    keys_fill(out, 32, 0x40);
    return SCP_OK;
}

static void test_derive_hook(void)
{
    fake_card c;
    scp_transport t;
    scp_channel ch;
    scp_channel_opts o = { .kvn = 1, .level = 0x33, .s16 = 1, .derive = derive };
    setup(&c, &t, 0x71, 32);
    CHECK_OK(scp_channel_open(&ch, &t, NULL, &o));
    CHECK(derive_calls == 1 && ch.kvn == 1);
    scp_channel_close(&ch);
}

static int raw_transmit(void *ctx, const uint8_t *c, size_t len, uint8_t *r, size_t rs,
                        size_t *rl)
{
    int *calls = ctx;
    (*calls)++;
    if (rs < 2)
        return SCP_E_BUFFER_TOO_SMALL; /* as a real transport would */
    if (len == 5 && c[4] == 0x00 && *calls == 1) {
        if (rs < 2)
            return SCP_E_BUFFER_TOO_SMALL; /* wrong Le: the card wants 4 */
        *rl = sw_only(r, 0x6C04);
        return SCP_OK;
    }
    if (len == 5 && c[4] == 0x04) {
        if (rs < 6)
            return SCP_E_BUFFER_TOO_SMALL;
        memcpy(r, "\x01\x02\x03\x04\x61\x02", 6);
        *rl = 6;
        return SCP_OK;
    }
    if (c[1] == 0xC0 && c[4] == 0x02) {
        if (rs < 4)
            return SCP_E_BUFFER_TOO_SMALL;
        memcpy(r, "\x05\x06\x90\x00", 4);
        *rl = 4;
        return SCP_OK;
    }
    *rl = sw_only(r, 0x6F00);
    return SCP_OK;
}

static void test_transmit_t0(void)
{
    int calls = 0;
    scp_transport t = { .transmit = raw_transmit, .ctx = &calls };
    uint8_t r[16];
    size_t rl;
    CHECK_OK(scp_transmit(&t, (const uint8_t *)"\x00\xCA\x00\x01\x00", 5, r, sizeof(r), &rl));
    CHECK_MEM(r, rl, (const uint8_t *)"\x01\x02\x03\x04\x05\x06\x90\x00", 8);
    CHECK(calls == 3);
    /* tampered twin: a buffer too small for the reassembled answer */
    calls = 0;
    CHECK_RC(scp_transmit(&t, (const uint8_t *)"\x00\xCA\x00\x01\x00", 5, r, 7, &rl),
             SCP_E_BUFFER_TOO_SMALL);
}

static void test_recog_and_levels(void)
{
    fake_card c = { .i = 0x71 };
    uint8_t r[64];
    size_t n = recog(&c, r);
    scp_recog rg;
    uint8_t i = 0, lv;
    CHECK_OK(scp_recog_parse(r, n - 2, &rg));
    CHECK(strcmp(rg.gp_version, "2.3.1") == 0);
    CHECK(scp_recog_scp03(&rg, &i) == 1 && i == 0x71);
    r[3] = 0x30; /* tampered: inner length past its parent */
    CHECK(scp_recog_parse(r, n - 2, &rg) < 0);
    CHECK_OK(scp_level_parse("mac+enc+rmac", &lv));
    CHECK(lv == 0x13);
    CHECK_OK(scp_level_parse("33", &lv));
    CHECK(lv == 0x33);
    CHECK(scp_level_parse("31", &lv) < 0);
    CHECK(scp_level_parse("enc", &lv) < 0);
    CHECK(scp_level_strongest(0x00) == 0x03 && scp_level_strongest(0x30) == 0x13);
}

/* A hostile or broken card: endless 61xx, random answers of random length
 * to INITIALIZE UPDATE. Every case ends in an error, never a crash or a
 * read past a buffer (run under ASan). */
typedef struct hostile {
    int mode;
    uint8_t buf[300];
    size_t len;
} hostile;

static int hostile_transmit(void *ctx, const uint8_t *c, size_t len, uint8_t *r, size_t rs,
                            size_t *rl)
{
    hostile *h = ctx;
    (void)c, (void)len;
    if (h->mode == 0) { /* 61 01 forever */
        if (rs < 3)
            return SCP_E_BUFFER_TOO_SMALL;
        memcpy(r, "\x00\x61\x01", 3);
        *rl = 3;
        return SCP_OK;
    }
    if (h->len > rs)
        return SCP_E_BUFFER_TOO_SMALL;
    memcpy(r, h->buf, h->len);
    *rl = h->len;
    return SCP_OK;
}

static void test_hostile(void)
{
    hostile h = { 0 };
    scp_transport t = { .transmit = hostile_transmit, .ctx = &h };
    scp_channel ch;
    scp03_keys k;
    scp_channel_opts o = { .kvn = 0, .level = -1, .s16 = 0 };
    uint8_t r[8192];
    size_t rl;
    keys_fill(&k, 16, 0x40);
    CHECK_RC(scp_transmit(&t, (const uint8_t *)"\x80\xCA\x00\x66\x00", 5, r, sizeof(r), &rl),
             SCP_E_LENGTH); /* at most 64 GET RESPONSEs */
    CHECK(scp_channel_open(&ch, &t, &k, &o) < 0);
    h.mode = 1;
    test_seed(4);
    for (int n = 0; n < 2000; n++) {
        h.len = 2 + test_rand_below(sizeof(h.buf) - 2);
        test_rand_bytes(h.buf, h.len);
        if (n % 2) { /* a well-formed length with 9000: the cryptogram still fails */
            h.len = 10 + 3 + 8 + 8 + 2;
            h.buf[11] = 0x03;
            h.buf[12] = 0x00;
            h.buf[h.len - 2] = 0x90;
            h.buf[h.len - 1] = 0x00;
        }
        int rc = scp_channel_open(&ch, &t, &k, &o);
        CHECK(rc < 0);
        CHECK(!scp03_is_open(&ch.s));
    }
    o.s16 = -1; /* random recognition data too */
    for (int n = 0; n < 500; n++) {
        h.len = 2 + test_rand_below(sizeof(h.buf) - 2);
        test_rand_bytes(h.buf, h.len);
        h.buf[h.len - 2] = 0x90;
        h.buf[h.len - 1] = 0x00;
        CHECK(scp_channel_open(&ch, &t, &k, &o) < 0);
    }
}

int main(void)
{
    test_hostile();
    test_levels_and_lengths();
    test_wrong_key();
    test_derive_hook();
    test_transmit_t0();
    test_recog_and_levels();
    return test_done("test_channel");
}
