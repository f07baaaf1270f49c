/* Negative and edge tests for the SCP03 engine: replayed and reordered
 * commands, wrong counters, bad padding, truncated APDUs, refused levels,
 * S16 lengths, secure-messaging CLA rules, and sticky death. */
#include "scpkit/apdu.h"
#include "crypto/aes.h"
#include "scpkit/crypto.h"
#include "scpkit/scp03.h"
#include "test.h"

static const uint8_t aid[] = { 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00 };
static uint8_t b1[70000], b2[70000], b3[70000];

static void keys_fill(scp03_keys *k, size_t len, uint8_t base)
{
    memset(k, 0, sizeof(*k));
    k->key_len = (uint8_t)len;
    k->kvn = 0x30;
    for (size_t i = 0; i < len; i++)
        k->enc[i] = k->mac[i] = k->dek[i] = (uint8_t)(base + i);
}

static int open_pair(scp03_session *h, scp03_session *c, const scp03_keys *hk,
                     const scp03_keys *ck, uint8_t i, uint8_t level)
{
    scp03_card_params prm = { .i = i, .seq = 5, .aid = aid, .aid_len = sizeof(aid) };
    memset(prm.kdd, 0x11, sizeof(prm.kdd));
    return test_pair_open(h, c, hk, ck, &prm, NULL, level);
}

static void test_levels(void)
{
    static const uint8_t bad[] = { 0x02, 0x10, 0x12, 0x20, 0x21, 0x23, 0x31, 0x30, 0x04, 0xFF };
    for (size_t i = 0; i < sizeof(bad); i++)
        CHECK(!scp03_level_valid(bad[i]));
    CHECK(scp03_level_valid(0x33) && scp03_level_valid(0x00));
    CHECK(!scp03_level_allowed(0x00, 0x11)); /* no R-MAC support */
    CHECK(!scp03_level_allowed(0x20, 0x33)); /* R-MAC but no R-ENC */
    CHECK(scp03_level_allowed(0x60, 0x33));
}

static void test_sm_cla(void)
{
    CHECK(scp03_sm_cla(0x00) == 0x04);
    CHECK(scp03_sm_cla(0x80) == 0x84);
    CHECK(scp03_sm_cla(0x03) == 0x07);
    CHECK(scp03_sm_cla(0x13) == 0x17); /* chaining bit kept */
    CHECK(scp03_sm_cla(0x40) == 0x60);
    CHECK(scp03_sm_cla(0x4F) == 0x6F);
    CHECK(scp03_sm_cla(0xC1) == 0xE1);
}

static void test_wrong_key(void)
{
    scp03_session h = { 0 }, c = { 0 };
    scp03_keys hk, ck;
    keys_fill(&hk, 16, 0x40);
    keys_fill(&ck, 16, 0x41);
    /* the host sees a wrong card cryptogram */
    CHECK_RC(open_pair(&h, &c, &hk, &ck, 0x70, 0x33), SCP_E_CRYPTOGRAM);
    CHECK(h.state == SCP03_DEAD);
    scp03_end(&h);
    scp03_end(&c);
}

static void test_ea_tamper(void)
{
    scp03_session h = { 0 }, c = { 0 };
    scp03_keys k;
    scp03_card_params prm = { .i = 0x70, .seq = 1, .aid = aid, .aid_len = sizeof(aid) };
    size_t n;

    keys_fill(&k, 32, 0x40);
    for (int which = 0; which < 3; which++) {
        CHECK_OK(test_pair_iu(&h, &c, &k, &k, &prm, NULL));
        CHECK_OK(scp03_host_external_authenticate(&h, 0x33, b1, sizeof(b1), &n));
        if (which == 0)
            b1[5] ^= 1; /* host cryptogram */
        else if (which == 1)
            b1[n - 1] ^= 0x80; /* C-MAC */
        else
            b1[2] = 0x13; /* level changed after MACing */
        int rc = scp03_card_external_authenticate(&c, b1, n);
        CHECK(rc == SCP_E_MAC || rc == SCP_E_CRYPTOGRAM);
        CHECK(c.state == SCP03_DEAD);
        CHECK_RC(scp03_card_external_authenticate(&c, b1, n), SCP_E_DEAD);
        scp03_end(&h);
        scp03_end(&c);
    }
}

/* The host cryptogram is made at the IU response and kept for EXTERNAL
 * AUTHENTICATE: a command buffer too small leaves it (and the state) for a
 * retry; once sent and once checked it is wiped on both sides. */
static void test_ea_retry(void)
{
    static const uint8_t zero[SCP03_CHAL_MAX] = { 0 };
    scp03_session h = { 0 }, c = { 0 };
    scp03_keys k;
    scp03_card_params prm = { .i = 0x71, .seq = 1, .aid = aid, .aid_len = sizeof(aid) };
    size_t n;

    keys_fill(&k, 16, 0x40);
    CHECK_OK(test_pair_iu(&h, &c, &k, &k, &prm, NULL));
    CHECK(scp03_host_external_authenticate(&h, 0x33, b1, 5 + 31, &n) != SCP_OK);
    CHECK(h.state == SCP03_IU_DONE);
    CHECK_OK(scp03_host_external_authenticate(&h, 0x33, b1, sizeof(b1), &n));
    CHECK(n == 5 + 32);
    CHECK_MEM(h.host_cryptogram, sizeof(zero), zero, sizeof(zero));
    CHECK(memcmp(c.host_cryptogram, zero, sizeof(zero)) != 0);
    CHECK_OK(scp03_card_external_authenticate(&c, b1, n));
    CHECK_MEM(c.host_cryptogram, sizeof(zero), zero, sizeof(zero));
    CHECK_OK(scp03_host_ea_result(&h, 0x9000));
    scp03_end(&h);
    scp03_end(&c);
}

static void test_level_refused(void)
{
    scp03_session h = { 0 }, c = { 0 };
    scp03_keys k;
    keys_fill(&k, 16, 0x40);
    /* host asks for R-ENC from a card without R-MAC support */
    CHECK_RC(open_pair(&h, &c, &k, &k, 0x00, 0x33), SCP_E_UNSUPPORTED);
    scp03_end(&h);
    scp03_end(&c);
}

static void test_replay_and_reorder(void)
{
    scp03_session h = { 0 }, c = { 0 };
    scp03_keys k;
    static const uint8_t cmd1[] = { 0x80, 0xCA, 0x00, 0x66, 0x00 };
    static const uint8_t cmd2[] = { 0x80, 0xF2, 0x80, 0x02, 0x02, 0x4F, 0x00, 0x00 };
    size_t w1l, w2l, pl, rl;
    static uint8_t w1[300], w2[300];

    keys_fill(&k, 16, 0x40);
    CHECK_OK(open_pair(&h, &c, &k, &k, 0x70, 0x33));
    CHECK_OK(scp03_host_wrap(&h, cmd1, sizeof(cmd1), w1, sizeof(w1), &w1l));
    CHECK_OK(scp03_card_unwrap(&c, w1, w1l, b2, sizeof(b2), &pl));
    CHECK_MEM(b2, pl, cmd1, sizeof(cmd1));
    CHECK_OK(scp03_card_wrap(&c, (const uint8_t *)"\x01\x02", 2, 0x9000, b3, sizeof(b3), &rl));
    CHECK_OK(scp03_host_unwrap(&h, b3, rl, b2, sizeof(b2), &pl));
    /* the host may not wrap twice without reading the R-MACed response */
    CHECK_OK(scp03_host_wrap(&h, cmd2, sizeof(cmd2), w2, sizeof(w2), &w2l));
    CHECK_RC(scp03_host_wrap(&h, cmd2, sizeof(cmd2), b1, sizeof(b1), &pl), SCP_E_STATE);
    /* replaying the first command: MAC chain and counter no longer match */
    CHECK_RC(scp03_card_unwrap(&c, w1, w1l, b2, sizeof(b2), &pl), SCP_E_MAC);
    CHECK(c.state == SCP03_DEAD);
    CHECK_RC(scp03_card_unwrap(&c, w2, w2l, b2, sizeof(b2), &pl), SCP_E_DEAD);
    scp03_end(&h);
    scp03_end(&c);

    /* reordering: second command delivered first */
    CHECK_OK(open_pair(&h, &c, &k, &k, 0x70, 0x03));
    CHECK_OK(scp03_host_wrap(&h, cmd1, sizeof(cmd1), w1, sizeof(w1), &w1l));
    CHECK_OK(scp03_host_wrap(&h, cmd2, sizeof(cmd2), w2, sizeof(w2), &w2l));
    CHECK_RC(scp03_card_unwrap(&c, w2, w2l, b2, sizeof(b2), &pl), SCP_E_MAC);
    scp03_end(&h);
    scp03_end(&c);
}

static void test_plain_in_session(void)
{
    scp03_session h = { 0 }, c = { 0 };
    scp03_keys k;
    static const uint8_t plain[] = { 0x00, 0xA4, 0x04, 0x00, 0x02, 0xA0, 0x00 };
    size_t pl;
    keys_fill(&k, 24, 0x40);
    CHECK_OK(open_pair(&h, &c, &k, &k, 0x60, 0x01));
    CHECK_RC(scp03_card_unwrap(&c, plain, sizeof(plain), b2, sizeof(b2), &pl), SCP_E_MAC);
    CHECK(c.state == SCP03_DEAD);
    scp03_end(&h);
    scp03_end(&c);
}

static void test_bad_padding_and_counter(void)
{
    scp03_session h = { 0 }, c = { 0 };
    scp03_keys k;
    static const uint8_t cmd[] = { 0x80, 0xE2, 0x00, 0x00, 0x03, 0x01, 0x02, 0x03 };
    size_t wl, pl;

    keys_fill(&k, 16, 0x40);
    /* wrong counter: the host skipped a command the card never saw; the
     * MAC chain catches it first */
    CHECK_OK(open_pair(&h, &c, &k, &k, 0x70, 0x03));
    CHECK_OK(scp03_host_wrap(&h, cmd, sizeof(cmd), b1, sizeof(b1), &wl));
    CHECK_OK(scp03_host_wrap(&h, cmd, sizeof(cmd), b1, sizeof(b1), &wl));
    CHECK_RC(scp03_card_unwrap(&c, b1, wl, b2, sizeof(b2), &pl), SCP_E_MAC);
    scp03_end(&h);
    scp03_end(&c);

    /* bad padding under a good MAC: forge by letting the card's own engine
     * MAC a ciphertext whose plaintext lacks 80 (same keys, host role) */
    CHECK_OK(open_pair(&h, &c, &k, &k, 0x70, 0x01)); /* MAC only on the host */
    c.level = 0x03; /* the card believes C-DEC is on */
    {
        static const uint8_t blk[] = { 0x80, 0xE2, 0x00, 0x00, 0x10, 1, 2, 3, 4, 5, 6, 7, 8,
                                       9,    10,   11,   12,   13,   14, 15, 16 };
        CHECK_OK(scp03_host_wrap(&h, blk, sizeof(blk), b1, sizeof(b1), &wl));
        CHECK_RC(scp03_card_unwrap(&c, b1, wl, b2, sizeof(b2), &pl), SCP_E_PADDING);
        CHECK(c.state == SCP03_DEAD);
    }
    scp03_end(&h);
    scp03_end(&c);
}

static void test_truncated(void)
{
    scp03_session h = { 0 }, c = { 0 };
    scp03_keys k;
    static const uint8_t cmd[] = { 0x80, 0xE2, 0x00, 0x00, 0x03, 0x01, 0x02, 0x03 };
    size_t wl, pl;
    keys_fill(&k, 16, 0x40);
    for (size_t cut = 1; cut < 12; cut++) {
        CHECK_OK(open_pair(&h, &c, &k, &k, 0x70, 0x33));
        CHECK_OK(scp03_host_wrap(&h, cmd, sizeof(cmd), b1, sizeof(b1), &wl));
        int rc = scp03_card_unwrap(&c, b1, wl - cut, b2, sizeof(b2), &pl);
        CHECK(rc < 0);
        CHECK(c.state == SCP03_DEAD);
        scp03_end(&h);
        scp03_end(&c);
    }
    /* IU responses of every wrong length */
    scp03_iu_resp ir;
    memset(b1, 0, 64);
    b1[11] = 3;
    for (size_t l = 0; l < 60; l++) {
        int rc = scp03_iu_resp_parse(b1, l, &ir);
        if (l == 29 || l == 32 || l == 45 || l == 48)
            continue;
        CHECK(rc == SCP_E_LENGTH);
    }
}

static void test_s16_sizes(void)
{
    scp03_session h = { 0 }, c = { 0 };
    scp03_keys k;
    static const uint8_t cmd[] = { 0x80, 0xCA, 0x00, 0x66, 0x00 };
    size_t wl, rl;
    keys_fill(&k, 32, 0x40);
    CHECK_OK(open_pair(&h, &c, &k, &k, 0x71, 0x33));
    CHECK(h.chal_len == 16);
    CHECK_OK(scp03_host_wrap(&h, cmd, sizeof(cmd), b1, sizeof(b1), &wl));
    CHECK(wl == 5 + 16 + 1 && b1[4] == 16);
    CHECK_OK(scp03_card_unwrap(&c, b1, wl, b2, sizeof(b2), &rl));
    CHECK_OK(scp03_card_wrap(&c, NULL, 0, 0x9000, b3, sizeof(b3), &rl));
    CHECK(rl == 16 + 2);
    scp03_end(&h);
    scp03_end(&c);
    /* an S8 card asked for S16 refuses the challenge length */
    scp03_card_params prm = { .i = 0x70, .seq = 1, .aid = aid, .aid_len = sizeof(aid) };
    uint8_t chal[16] = { 0 };
    CHECK_RC(scp03_card_initialize_update(&c, &prm, &k, chal, 16, b1, 64, &rl), SCP_E_LENGTH);
}

static void test_error_sw_bare(void)
{
    scp03_session h = { 0 }, c = { 0 };
    scp03_keys k;
    static const uint8_t cmd[] = { 0x80, 0xCA, 0x00, 0x66, 0x00 };
    size_t wl, rl, pl;
    keys_fill(&k, 16, 0x40);
    CHECK_OK(open_pair(&h, &c, &k, &k, 0x70, 0x33));
    CHECK_OK(scp03_host_wrap(&h, cmd, sizeof(cmd), b1, sizeof(b1), &wl));
    CHECK_OK(scp03_card_unwrap(&c, b1, wl, b2, sizeof(b2), &pl));
    CHECK_OK(scp03_card_wrap(&c, (const uint8_t *)"xx", 2, 0x6A88, b3, sizeof(b3), &rl));
    CHECK(rl == 2 && b3[0] == 0x6A && b3[1] == 0x88);
    CHECK_OK(scp03_host_unwrap(&h, b3, rl, b2, sizeof(b2), &pl));
    CHECK(pl == 2);
    /* a success SW without its R-MAC is refused and ends the session */
    CHECK_OK(scp03_host_wrap(&h, cmd, sizeof(cmd), b1, sizeof(b1), &wl));
    b3[0] = 0x90, b3[1] = 0x00;
    CHECK_RC(scp03_host_unwrap(&h, b3, 2, b2, sizeof(b2), &pl), SCP_E_MAC);
    scp03_end(&h);
    scp03_end(&c);
}

static void test_max_lengths(void)
{
    scp03_session h = { 0 }, c = { 0 };
    scp03_keys k;
    static uint8_t cmd[70000];
    scp_apdu a = { 0 };
    size_t cl, wl, pl;

    keys_fill(&k, 16, 0x40);
    CHECK_OK(open_pair(&h, &c, &k, &k, 0x70, 0x33));
    CHECK(scp03_max_plain_data(&h, 0) == 239);
    a.cla = 0x80, a.ins = 0xE2, a.lc = 239, a.data = b3;
    CHECK_OK(scp_apdu_encode(&a, cmd, sizeof(cmd), &cl));
    CHECK_OK(scp03_host_wrap(&h, cmd, cl, b1, sizeof(b1), &wl));
    CHECK(wl == 5 + 240 + 8); /* still short */
    CHECK_OK(scp03_card_unwrap(&c, b1, wl, b2, sizeof(b2), &pl));
    CHECK_MEM(b2, pl, cmd, cl);
    CHECK_OK(scp03_card_wrap(&c, NULL, 0, 0x9000, b3, sizeof(b3), &pl));
    CHECK_OK(scp03_host_unwrap(&h, b3, pl, b2, sizeof(b2), &pl));
    a.lc = 240; /* one more byte needs the extended form */
    CHECK_OK(scp_apdu_encode(&a, cmd, sizeof(cmd), &cl));
    CHECK_OK(scp03_host_wrap(&h, cmd, cl, b1, sizeof(b1), &wl));
    CHECK(b1[4] == 0 && wl == 7 + 256 + 8);
    CHECK_OK(scp03_card_unwrap(&c, b1, wl, b2, sizeof(b2), &pl));
    CHECK_MEM(b2, pl, cmd, cl); /* back to the short plain form */
    CHECK_OK(scp03_card_wrap(&c, NULL, 0, 0x9000, b3, sizeof(b3), &pl));
    CHECK_OK(scp03_host_unwrap(&h, b3, pl, b2, sizeof(b2), &pl));
    /* too long for any APDU once protected */
    a.lc = 65535;
    CHECK_OK(scp_apdu_encode(&a, cmd, sizeof(cmd), &cl));
    CHECK_RC(scp03_host_wrap(&h, cmd, cl, b1, sizeof(b1), &wl), SCP_E_LENGTH);
    scp03_end(&h);
    scp03_end(&c);
}

/* yubikit sends EXTERNAL AUTHENTICATE in extended form (84 82 33 00 00 00
 * 10 | host cryptogram | C-MAC, no Le; its C-MAC over the header as sent:
 * yubikit core/smartcard ScpProcessor and ExtendedApduProcessor). Built
 * here by hand from the host session's S-MAC and cryptogram, with and
 * without Le, S8 and S16; the host's own extended form must be the same
 * bytes, the card must open, and a protected command must go both ways.
 * Malformed twins (Lc lies, truncated, MAC over the short header, zero
 * extended Lc) are refused and end the card's session. */
static int ea_by_hand(const scp03_session *h, uint8_t level, int le, size_t lc_field,
                      int short_mac, uint8_t *out)
{
    uint8_t msg[16 + 7 + 16] = { 0 }, mac[16];
    size_t cl = h->chal_len, n = 0;
    out[n++] = 0x84, out[n++] = 0x82, out[n++] = level, out[n++] = 0x00;
    out[n++] = 0x00, out[n++] = (uint8_t)(lc_field >> 8), out[n++] = (uint8_t)lc_field;
    memcpy(out + n, h->host_cryptogram, cl);
    if (short_mac) { /* the C-MAC a short-form EA would carry */
        memcpy(msg + 16, out, 4);
        msg[20] = (uint8_t)(2 * cl);
        memcpy(msg + 21, h->host_cryptogram, cl);
        CHECK_OK(scp_cmac_once(SCP_AES_OF(&h->s_mac), msg, 21 + cl, mac));
    } else {
        memcpy(msg + 16, out, 7 + cl);
        CHECK_OK(scp_cmac_once(SCP_AES_OF(&h->s_mac), msg, 16 + 7 + cl, mac));
    }
    memcpy(out + n + cl, mac, cl);
    n += 2 * cl;
    if (le)
        out[n++] = 0x00, out[n++] = 0x00;
    return (int)n;
}

static void test_ea_extended(void)
{
    static const uint8_t cmd[] = { 0x80, 0xCA, 0x00, 0x66, 0x00 };
    scp03_session h = { 0 }, c = { 0 };
    scp03_keys k;
    uint8_t ea[64];
    size_t n, wl, pl, rl;

    keys_fill(&k, 16, 0x40);
    for (int v = 0; v < 4; v++) {
        uint8_t i = (v & 1) ? 0x71 : 0x70;
        scp03_card_params prm = { .i = i, .seq = 9, .aid = aid, .aid_len = sizeof(aid) };
        int le = (v & 2) != 0, en;
        CHECK_OK(test_pair_iu(&h, &c, &k, &k, &prm, NULL));
        en = ea_by_hand(&h, 0x33, le, 2u * h.chal_len, 0, ea);
        CHECK_OK(scp03_host_external_authenticate_ex(&h, 0x33, SCP03_EA_EXTENDED, b1,
                                                     sizeof(b1), &n));
        CHECK_MEM(b1, n, ea, (size_t)en - (le ? 2 : 0));
        CHECK_OK(scp03_card_external_authenticate(&c, ea, (size_t)en));
        CHECK(scp03_is_open(&c));
        CHECK_OK(scp03_host_ea_result(&h, 0x9000));
        CHECK_OK(scp03_host_wrap(&h, cmd, sizeof(cmd), b1, sizeof(b1), &wl));
        CHECK_OK(scp03_card_unwrap(&c, b1, wl, b2, sizeof(b2), &pl));
        CHECK_MEM(b2, pl, cmd, sizeof(cmd));
        CHECK_OK(scp03_card_wrap(&c, (const uint8_t *)"\x01\x02", 2, 0x9000, b3, sizeof(b3), &rl));
        CHECK_OK(scp03_host_unwrap(&h, b3, rl, b2, sizeof(b2), &pl));
        CHECK(pl == 4 && b2[0] == 1 && b2[1] == 2 && b2[2] == 0x90 && b2[3] == 0x00);
        scp03_end(&h);
        scp03_end(&c);
    }
    /* malformed twins, each on a fresh pair */
    for (int t = 0; t < 6; t++) {
        scp03_card_params prm = { .i = 0x70, .seq = 9, .aid = aid, .aid_len = sizeof(aid) };
        int en, rc;
        CHECK_OK(test_pair_iu(&h, &c, &k, &k, &prm, NULL));
        switch (t) {
        case 0: en = ea_by_hand(&h, 0x33, 0, 17, 0, ea); break; /* Lc says one more */
        case 1: en = ea_by_hand(&h, 0x33, 0, 15, 0, ea); break; /* Lc says one less */
        case 2: en = ea_by_hand(&h, 0x33, 0, 14, 0, ea); break; /* ... two less: Le? */
        case 3: en = ea_by_hand(&h, 0x33, 0, 16, 0, ea) - 1; break; /* truncated */
        case 4: en = ea_by_hand(&h, 0x33, 0, 16, 1, ea); break; /* MAC of the short form */
        default: en = ea_by_hand(&h, 0x33, 0, 16, 0, ea); ea[5] = ea[6] = 0; break;
        }
        rc = scp03_card_external_authenticate(&c, ea, (size_t)en);
        CHECK(rc != SCP_OK);
        CHECK(c.state == SCP03_DEAD);
        if (t == 4)
            CHECK_RC(rc, SCP_E_MAC);
        scp03_end(&h);
        scp03_end(&c);
    }
}

/* An error status answered into a buffer of 0 or 1 bytes: refused, out
 * untouched, the response still due (issue 11: it wrote out[0..1]). */
static void test_card_wrap_error_small(void)
{
    static const uint8_t cmd[] = { 0x80, 0xCA, 0x00, 0x66, 0x00 };
    scp03_session h = { 0 }, c = { 0 };
    scp03_keys k;
    uint8_t small[2] = { 0xEE, 0xEE };
    size_t wl, pl, rl = 0;

    keys_fill(&k, 16, 0x40);
    CHECK_OK(open_pair(&h, &c, &k, &k, 0x70, 0x01));
    CHECK_OK(scp03_host_wrap(&h, cmd, sizeof(cmd), b1, sizeof(b1), &wl));
    CHECK_OK(scp03_card_unwrap(&c, b1, wl, b2, sizeof(b2), &pl));
    CHECK_RC(scp03_card_wrap(&c, NULL, 0, 0x6A82, small, 1, &rl), SCP_E_BUFFER_TOO_SMALL);
    CHECK(small[0] == 0xEE && small[1] == 0xEE);
    CHECK(c.resp_pending);
    CHECK_OK(scp03_card_wrap(&c, NULL, 0, 0x6A82, small, 2, &rl));
    CHECK(rl == 2 && small[0] == 0x6A && small[1] == 0x82);
    scp03_end(&h);
    scp03_end(&c);
}

int main(void)
{
    test_ea_extended();
    test_card_wrap_error_small();
    test_levels();
    test_sm_cla();
    test_wrong_key();
    test_ea_tamper();
    test_ea_retry();
    test_level_refused();
    test_replay_and_reorder();
    test_plain_in_session();
    test_bad_padding_and_counter();
    test_truncated();
    test_s16_sizes();
    test_error_sw_bare();
    test_max_lengths();
    return test_done("test_scp03");
}
