/* The virtual card's SCP02 profile (src/card/scp02_card.c) against the
 * SCP02 host channel (src/scp02/channel.c), in process: every level,
 * i = 55 and 15, the sequence counter on disk, wrong keys counted, PUT KEY
 * of a DES set and the move to AES keys (the card then speaks SCP03 to
 * scp_channel_open), a tampered command ending the session. */
#include <stdlib.h>

#include "card_util.h"
#include "scpkit/apdu.h"
#include "scpkit/card.h"
#include "scpkit/channel.h"
#include "scpkit/scp02.h"
#include "test.h"

static const uint8_t LEVELS[] = { 0x01, 0x03, 0x11, 0x13 };

static void factory(scp02_keys *k, uint8_t kvn)
{
    for (int b = 0; b < 16; b++)
        k->enc[b] = k->mac[b] = k->dek[b] = (uint8_t)(0x40 + b);
    k->kvn = kvn;
}

static scp_card *new_card(char *dir, size_t dir_size, int scp_i)
{
    scp_card_init_opts o = { .profile = "scp02", .scp_i = scp_i, .kvn = -1 };
    scp_card *c = NULL;
    char err[256];
    tc_tmpdir(dir, dir_size);
    CHECK_OK(scp_card_init(dir, &o));
    CHECK_OK(scp_card_open(dir, &c, err, sizeof(err)));
    return c;
}

static void test_levels(int scp_i)
{
    char dir[512];
    scp_card *c = new_card(dir, sizeof(dir), scp_i);
    scp_transport t;
    scp02_channel ch;
    scp02_keys k;
    uint8_t resp[300];
    size_t n;
    uint16_t sw;
    factory(&k, 0);
    scp_card_transport(c, &t);
    for (size_t l = 0; l < sizeof(LEVELS); l++) {
        CHECK_OK(scp02_channel_open(&ch, &t, &k, 0, LEVELS[l]));
        CHECK(ch.i == (scp_i < 0 ? 0x55 : scp_i)); /* from the recognition data */
        /* GET STATUS of the ISD, then GET DATA key information: DES keys */
        static const uint8_t gs[] = { 0x80, 0xF2, 0x80, 0x02, 0x02, 0x4F, 0x00, 0x00 };
        CHECK_OK(scp02_channel_send(&ch, gs, sizeof(gs), resp, sizeof(resp), &n, &sw));
        CHECK(sw == 0x9000 && n > 0 && resp[0] == 0xE3);
        static const uint8_t ki[] = { 0x80, 0xCA, 0x00, 0xE0, 0x00 };
        CHECK_OK(scp02_channel_send(&ch, ki, sizeof(ki), resp, sizeof(resp), &n, &sw));
        CHECK(sw == 0x9000 && n >= 8 && resp[0] == 0xE0 && resp[6] == 0x80 && resp[5] == 0xFF);
        /* a command the card refuses: the SW comes back through the
         * channel (with its R-MAC at an R-MAC level) */
        static const uint8_t bad[] = { 0x80, 0xCA, 0x12, 0x34, 0x00 };
        CHECK_OK(scp02_channel_send(&ch, bad, sizeof(bad), resp, sizeof(resp), &n, &sw));
        CHECK(sw == 0x6A88);
        scp02_channel_close(&ch);
    }
    /* the counter went up once per session, and it is on disk */
    scp_card_close(c);
    char err[256];
    CHECK_OK(scp_card_open(dir, &c, err, sizeof(err)));
    scp_card_transport(c, &t);
    CHECK_OK(scp02_channel_open(&ch, &t, &k, 0, 0x01));
    CHECK(ch.s.seq[0] == 0 && ch.s.seq[1] == sizeof(LEVELS) + 1);
    scp02_channel_close(&ch);
    scp_card_close(c);
    tc_rmdir(dir);
}

static void test_wrong_keys_and_tamper(void)
{
    char dir[512];
    scp_card *c = new_card(dir, sizeof(dir), -1);
    scp_transport t;
    scp02_channel ch;
    scp02_keys k, bad;
    tc_resp r;
    uint8_t w[64], iu[64];
    size_t n, rn;
    factory(&k, 0);
    bad = k;
    bad.mac[0] ^= 0x10; /* not a parity bit */
    scp_card_transport(c, &t);
    /* wrong MAC key: the card cryptogram (S-ENC) still matches, the EA
     * C-MAC does not: 6300 */
    CHECK_RC(scp02_channel_open(&ch, &t, &bad, 0, 0x01), SCP_E_AUTH);
    CHECK(ch.last_sw == 0x6300);
    bad = k;
    bad.enc[0] ^= 0x10; /* wrong ENC key: the host stops at the card cryptogram */
    CHECK_RC(scp02_channel_open(&ch, &t, &bad, 0, 0x01), SCP_E_CRYPTOGRAM);
    /* a MACed command one bit off ends the session with 6982 */
    CHECK_OK(scp02_channel_open(&ch, &t, &k, 0, 0x03));
    static const uint8_t ki[] = { 0x80, 0xCA, 0x00, 0xE0, 0x00 };
    CHECK_OK(scp02_host_wrap(&ch.s, ki, sizeof(ki), w, sizeof(w), &n));
    w[n - 2] ^= 0x01;
    CHECK_OK(tc_xfer(c, w, n, &r));
    CHECK(r.sw == 0x6982);
    CHECK(tc_sw(c, "80CA00E000") == 0x6982 || tc_sw(c, "80CA00E000") == 0x9000);
    /* a plain GP command after the session ended is not authenticated */
    CHECK(tc_sw(c, "80F28002024F0000") == 0x6982);
    scp02_channel_close(&ch);
    /* EXTERNAL AUTHENTICATE with a level SCP02 does not have (33) */
    scp02_session h = { 0 };
    CHECK_OK(scp02_host_begin(&h, &k, 0x55, NULL));
    CHECK_OK(scp02_host_initialize_update(&h, 0x80, w, sizeof(w), &n));
    CHECK_OK(tc_xfer(c, w, n, &r));
    CHECK(r.sw == 0x9000 && r.len == SCP02_IU_RESP_LEN);
    memcpy(iu, r.data, r.len);
    rn = r.len;
    CHECK_OK(scp02_host_iu_response(&h, iu, rn, (const uint8_t *)"\xA0\x00\x00\x01\x51\x00\x00\x00",
                                    8));
    CHECK_OK(scp02_host_external_authenticate(&h, 0x01, w, sizeof(w), &n));
    w[2] = 0x33;
    CHECK_OK(tc_xfer(c, w, n, &r));
    CHECK(r.sw == 0x6A86);
    scp02_end(&h);
    scp_card_close(c);
    tc_rmdir(dir);
}

static void test_put_keys(void)
{
    char dir[512], err[256];
    scp_card *c = new_card(dir, sizeof(dir), -1);
    scp_transport t;
    scp02_channel ch;
    scp02_keys k, nk;
    uint8_t ne[16], nm[16], nd[16];
    uint16_t sw;
    factory(&k, 0);
    scp_card_transport(c, &t);
    /* a DES set, KVN 20, replacing the factory set */
    test_rand_bytes(ne, 16);
    test_rand_bytes(nm, 16);
    test_rand_bytes(nd, 16);
    CHECK_OK(scp02_channel_open(&ch, &t, &k, 0, 0x03));
    CHECK_OK(scp02_channel_put_keys(&ch, SCP02_PUTKEY_DES, 0, 0x20, ne, nm, nd, &sw));
    CHECK(sw == 0x9000);
    scp02_channel_close(&ch);
    memcpy(nk.enc, ne, 16);
    memcpy(nk.mac, nm, 16);
    memcpy(nk.dek, nd, 16);
    nk.kvn = 0x20;
    CHECK_RC(scp02_channel_open(&ch, &t, &k, 0, 0x01), SCP_E_CRYPTOGRAM); /* factory gone */
    CHECK_OK(scp02_channel_open(&ch, &t, &nk, 0, 0x13));
    /* a tampered PUT KEY (wrong KCV) is refused and changes nothing */
    static const uint8_t junk[] = { 0x80, 0xD8, 0x00, 0x81, 0x05, 0x21, 0x80, 0x10, 0x00, 0x00, 0x00 };
    uint8_t resp[64];
    size_t n;
    CHECK_OK(scp02_channel_send(&ch, junk, sizeof(junk), resp, sizeof(resp), &n, &sw));
    CHECK(sw == 0x6A80);
    /* the move to SCP03: AES-128 keys, KVN 30 */
    test_rand_bytes(ne, 16);
    CHECK_OK(scp02_channel_put_keys(&ch, SCP02_PUTKEY_AES, 0x20, 0x30, ne, ne, ne, &sw));
    CHECK(sw == 0x9000);
    scp02_channel_close(&ch);
    scp_card_close(c);
    /* after a power cycle the card speaks SCP03 with the AES set */
    CHECK_OK(scp_card_open(dir, &c, err, sizeof(err)));
    scp_card_transport(c, &t);
    CHECK_RC(scp02_channel_open(&ch, &t, &nk, 0x55, 0x01), SCP_E_AUTH);
    scp_channel ch3;
    scp03_keys ak;
    scp_channel_opts o = { .kvn = 0, .level = -1, .s16 = -1 };
    tc_keys(&ak, ne, 16, 0x30);
    CHECK_OK(scp_channel_open(&ch3, &t, &ak, &o));
    CHECK(ch3.kvn == 0x30);
    scp_channel_close(&ch3);
    scp_card_close(c);
    tc_rmdir(dir);
}

int main(void)
{
    test_seed(0x5c9021);
    test_levels(-1);
    test_levels(0x15);
    test_wrong_keys_and_tamper();
    test_put_keys();
    return test_done("test_scp02_card");
}
