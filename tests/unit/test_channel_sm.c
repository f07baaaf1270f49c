/* The sans-I/O channel open (scp_channel_start / next / feed) against the
 * engine's card role: the commands it hands out (GET DATA 0066 when S8/S16
 * is to be read from the card, INITIALIZE UPDATE with the right challenge
 * length, EXTERNAL AUTHENTICATE at the chosen level), the channel working
 * once open, and every way an open fails: wrong keys (nothing more is
 * sent), a refused EXTERNAL AUTHENTICATE, a blocked key set at
 * INITIALIZE UPDATE, a level the card's i rules out, an answer out of
 * turn, a short command buffer (retryable), all sticky. */
#include "scpkit/apdu.h"
#include "scpkit/channel.h"
#include "scpkit/scp03.h"
#include "test.h"

static const uint8_t aid[] = { 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00 };

typedef struct card {
    scp03_session s;
    scp03_keys keys;
    scp03_card_params prm;
    uint16_t ea_sw; /* 0: answer EXTERNAL AUTHENTICATE honestly */
    uint16_t iu_sw; /* 0: answer INITIALIZE UPDATE honestly */
    int recog;      /* answer GET DATA 0066 with recognition data */
    int seen_ea;
} card;

static void put_sw(uint8_t *out, size_t *n, uint16_t v)
{
    out[(*n)++] = (uint8_t)(v >> 8);
    out[(*n)++] = (uint8_t)v;
}

static void card_process(card *c, const uint8_t *capdu, size_t len, uint8_t *out, size_t *n)
{
    /* GPC v2.3 H.2: 66 { 73 { 06 <GP RID>.1, 64 { 06 <GP RID>.4.03.i } } } */
    static const uint8_t recog[] = { 0x66, 0x18, 0x73, 0x16, 0x06, 0x07, 0x2A, 0x86, 0x48, 0x86,
                                     0xFC, 0x6B, 0x01, 0x64, 0x0B, 0x06, 0x09, 0x2A, 0x86, 0x48,
                                     0x86, 0xFC, 0x6B, 0x04, 0x03, 0x00 };
    uint8_t plain[300];
    size_t pl;
    scp_apdu a;

    *n = 0;
    CHECK_OK(scp_apdu_parse(capdu, len, &a));
    if (a.ins == 0xCA && a.p2 == 0x66) {
        if (!c->recog) {
            put_sw(out, n, 0x6A88);
            return;
        }
        memcpy(out, recog, sizeof(recog));
        out[sizeof(recog) - 1] = c->prm.i;
        *n = sizeof(recog);
        put_sw(out, n, 0x9000);
        return;
    }
    if (a.ins == 0x50) {
        if (c->iu_sw) {
            put_sw(out, n, c->iu_sw);
            return;
        }
        CHECK_OK(scp03_card_initialize_update(&c->s, &c->prm, &c->keys, a.data, a.lc, out, 250,
                                              n));
        put_sw(out, n, 0x9000);
        return;
    }
    if (a.ins == 0x82) {
        c->seen_ea++;
        if (c->ea_sw) {
            put_sw(out, n, c->ea_sw);
            return;
        }
        put_sw(out, n, scp03_card_external_authenticate(&c->s, capdu, len) == SCP_OK ? 0x9000
                                                                                      : 0x6300);
        return;
    }
    CHECK_OK(scp03_card_unwrap(&c->s, capdu, len, plain, sizeof(plain), &pl));
    CHECK_OK(scp03_card_wrap(&c->s, (const uint8_t *)"ok", 2, 0x9000, out, 300, n));
}

static void card_init(card *c, uint8_t i, uint8_t fill)
{
    memset(c, 0, sizeof(*c));
    c->keys.key_len = 16;
    c->keys.kvn = 0x30;
    memset(c->keys.enc, fill, 16);
    memset(c->keys.mac, fill + 1, 16);
    memset(c->keys.dek, fill + 2, 16);
    c->prm.i = i;
    c->prm.seq = 7;
    c->prm.aid = aid;
    c->prm.aid_len = sizeof(aid);
    memset(c->prm.kdd, 0x11, sizeof(c->prm.kdd));
}

/* Drive the open to its end; returns next()'s last answer; *sent counts
 * the commands handed out. */
static int drive(scp_channel *ch, card *c, int *sent)
{
    uint8_t capdu[64], rapdu[300];
    size_t n, rl;
    int rc;
    *sent = 0;
    while ((rc = scp_channel_next(ch, capdu, sizeof(capdu), &n)) == SCP_CHANNEL_SEND) {
        (*sent)++;
        card_process(c, capdu, n, rapdu, &rl);
        if ((rc = scp_channel_feed(ch, rapdu, rl)) != SCP_OK)
            return rc;
        if (*sent > 5)
            return -100;
    }
    return rc;
}

static void test_open_and_use(void)
{
    static const uint8_t cmd[] = { 0x80, 0xCA, 0x00, 0xE0, 0x00 };
    for (int v = 0; v < 4; v++) {
        scp_channel ch;
        card c;
        scp_channel_opts o = { .kvn = 0, .level = -1, .s16 = (v & 2) ? (v & 1) : -1 };
        uint8_t capdu[64], rapdu[300], plain[300];
        size_t n, rl, pl;
        int sent;

        card_init(&c, (uint8_t)(0x70 | (v & 1)), 0x40);
        c.recog = 1;
        CHECK_OK(scp_channel_start(&ch, &c.keys, &o));
        /* the first command: recognition data, or INITIALIZE UPDATE */
        CHECK_RC(scp_channel_next(&ch, capdu, sizeof(capdu), &n), SCP_CHANNEL_SEND);
        if (o.s16 < 0) {
            CHECK(n == 5 && capdu[1] == 0xCA && capdu[2] == 0x00 && capdu[3] == 0x66);
            card_process(&c, capdu, n, rapdu, &rl);
            CHECK_OK(scp_channel_feed(&ch, rapdu, rl));
            CHECK_RC(scp_channel_next(&ch, capdu, sizeof(capdu), &n), SCP_CHANNEL_SEND);
        }
        CHECK(capdu[1] == 0x50 && capdu[4] == ((v & 1) ? 16 : 8)); /* S16 from the card's i */
        /* a second next() before the answer is refused */
        CHECK_RC(scp_channel_next(&ch, rapdu, sizeof(rapdu), &rl), SCP_E_STATE);
        card_process(&c, capdu, n, rapdu, &rl);
        CHECK_OK(scp_channel_feed(&ch, rapdu, rl));
        CHECK_RC(drive(&ch, &c, &sent), SCP_CHANNEL_OPEN);
        CHECK(sent == 1 && c.seen_ea == 1);
        CHECK(ch.level == 0x33 && scp03_is_open(&ch.s) && scp03_is_open(&c.s));
        CHECK_RC(scp_channel_next(&ch, capdu, sizeof(capdu), &n), SCP_CHANNEL_OPEN);
        CHECK_OK(scp03_host_wrap(&ch.s, cmd, sizeof(cmd), capdu, sizeof(capdu), &n));
        card_process(&c, capdu, n, rapdu, &rl);
        CHECK_OK(scp03_host_unwrap(&ch.s, rapdu, rl, plain, sizeof(plain), &pl));
        CHECK(pl == 4 && plain[0] == 'o' && plain[1] == 'k' && plain[2] == 0x90);
        scp_channel_close(&ch);
        scp03_end(&c.s);
    }
}

static int all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint8_t acc = 0;
    for (size_t k = 0; k < n; k++)
        acc |= b[k];
    return acc == 0;
}

static void test_open_failures(void)
{
    for (int f = 0; f < 6; f++) {
        scp_channel ch;
        card c, hostside;
        scp_channel_opts o = { .kvn = 0x30, .level = 0x33, .s16 = 0 };
        uint8_t capdu[64];
        size_t n;
        int sent, rc, want;

        card_init(&c, 0x70, 0x40);
        card_init(&hostside, 0x70, f == 0 ? 0x50 : 0x40); /* f 0: wrong keys */
        if (f == 1)
            c.ea_sw = 0x6982; /* EXTERNAL AUTHENTICATE refused */
        if (f == 2)
            c.iu_sw = 0x63C2; /* key set nearly blocked */
        if (f == 3)
            c.prm.i = 0x00; /* no R-MAC: level 33 refused before EA */
        CHECK_OK(scp_channel_start(&ch, &hostside.keys, &o));
        if (f == 4) { /* a command buffer too small: refused, then retried */
            CHECK_RC(scp_channel_next(&ch, capdu, 10, &n), SCP_E_BUFFER_TOO_SMALL);
            CHECK_RC(scp_channel_next(&ch, capdu, sizeof(capdu), &n), SCP_CHANNEL_SEND);
            CHECK_RC(scp_channel_feed(&ch, (const uint8_t *)"\x6A\x88", 2), SCP_E_SW);
            CHECK_RC(scp_channel_next(&ch, capdu, sizeof(capdu), &n), SCP_E_SW); /* sticky */
            CHECK(ch.last_sw == 0x6A88);
            scp_channel_close(&ch);
            continue;
        }
        if (f == 5) { /* an answer nobody asked for */
            CHECK_RC(scp_channel_feed(&ch, (const uint8_t *)"\x90\x00", 2), SCP_E_STATE);
            CHECK_RC(drive(&ch, &c, &sent), SCP_CHANNEL_OPEN);
            scp_channel_close(&ch);
            scp03_end(&c.s);
            continue;
        }
        rc = drive(&ch, &c, &sent);
        want = f == 3 ? SCP_E_LEVEL : SCP_E_AUTH;
        CHECK_RC(rc, want);
        CHECK_RC(scp_channel_next(&ch, capdu, sizeof(capdu), &n), want); /* sticky */
        /* the session and every key wiped */
        CHECK(ch.s.state == SCP03_IDLE && all_zero(&ch.s, sizeof(ch.s)));
        CHECK(all_zero(ch.dek, sizeof(ch.dek)) && all_zero(&ch.open_keys, sizeof(ch.open_keys)));
        CHECK(c.seen_ea == (f == 1 ? 1 : 0)); /* wrong keys: no EA sent */
        if (f == 0)
            CHECK(ch.fail_rc == SCP_E_CRYPTOGRAM);
        if (f == 1)
            CHECK(ch.fail_rc == SCP_E_SW && ch.last_sw == 0x6982);
        if (f == 2)
            CHECK(ch.last_sw == 0x63C2);
        scp_channel_close(&ch);
        scp03_end(&c.s);
    }
}

int main(void)
{
    test_open_and_use();
    test_open_failures();
    return test_done("test_channel_sm");
}
