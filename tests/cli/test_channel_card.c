/* The host channel against scpkit's virtual card in process: every level
 * the card's i allows, S8 and S16, AES-128/192/256, the store application
 * (channel opened with it selected), PUT KEY with the channel's DEK, and
 * wrong keys (stopped after INITIALIZE UPDATE: the card counts nothing,
 * and its key set still works afterwards). */
#include <stdlib.h>
#include <unistd.h>

#include "scpkit/apdu.h"
#include "scpkit/buf.h"
#include "scpkit/card.h"
#include "scpkit/channel.h"
#include "scpkit/gp.h"
#include "test.h"

static char dir_tmpl[] = "/tmp/scp-chcard.XXXXXX";
static int n_dirs;

static scp_card *new_card(const char *profile, int i, const uint8_t *key, size_t key_len, int kvn,
                          scp_transport *t)
{
    char dir[96], err[128];
    scp_card_init_opts o = { .profile = profile, .scp_i = i, .key = key, .key_len = key_len,
                             .kvn = kvn };
    scp_card *c = NULL;
    snprintf(dir, sizeof(dir), "%s/c%d", dir_tmpl, n_dirs++);
    CHECK_OK(scp_card_init(dir, &o));
    CHECK_OK(scp_card_open(dir, &c, err, sizeof(err)));
    if (c)
        scp_card_transport(c, t);
    return c;
}

static int select_aid(scp_transport *t, const char *hex)
{
    uint8_t cmd[32] = { 0x00, 0xA4, 0x04, 0x00 }, r[258];
    size_t n, rl;
    if (scp_hex_decode(hex, cmd + 5, 16, &n) != SCP_OK)
        return -1;
    cmd[4] = (uint8_t)n;
    cmd[5 + n] = 0;
    if (scp_transmit(t, cmd, 6 + n, r, sizeof(r), &rl) != SCP_OK)
        return -1;
    return (r[rl - 2] << 8 | r[rl - 1]) == 0x9000 ? 0 : -1;
}

static int count(const char *s, const char *what)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, what)) != NULL; p++)
        n++;
    return n;
}

static void fill(scp03_keys *k, size_t len, uint8_t base, uint8_t kvn)
{
    memset(k, 0, sizeof(*k));
    k->key_len = (uint8_t)len;
    k->kvn = kvn;
    for (size_t n = 0; n < len; n++)
        k->enc[n] = k->mac[n] = k->dek[n] = (uint8_t)(base + n);
}

static void test_levels(void)
{
    static const size_t lens[] = { 16, 24, 32 };
    static const int is[] = { 0x70, 0x71 };
    static const int levels[] = { 0x01, 0x03, 0x11, 0x13, 0x33, -1 };
    for (size_t a = 0; a < 2; a++)
        for (size_t b = 0; b < 3; b++) {
            scp03_keys k;
            scp_transport t;
            fill(&k, lens[b], 0x50, 0x01);
            scp_card *card = new_card("gp23", is[a], k.enc, k.key_len, 1, &t);
            if (!card)
                continue;
            for (size_t l = 0; l < 6; l++) {
                scp_channel ch;
                scp_channel_opts o = { .kvn = 1, .level = levels[l], .s16 = -1 };
                uint8_t r[256];
                size_t rl;
                uint16_t sw = 0;
                CHECK(select_aid(&t, "A000000151000000") == 0);
                CHECK_OK(scp_channel_open(&ch, &t, &k, &o));
                CHECK(ch.s.chal_len == ((is[a] & 1) ? 16 : 8));
                CHECK(ch.level == (levels[l] < 0 ? 0x33 : levels[l]));
                CHECK_OK(scp_channel_send(&ch, (const uint8_t *)"\x80\xCA\x00\xE0\x00", 5, r,
                                          sizeof(r), &rl, &sw));
                CHECK(sw == 0x9000 && rl >= 8 && r[0] == 0xE0 && r[5] == 0x01);
                scp_channel_close(&ch);
            }
            scp_card_close(card);
        }
}

/* The store application: the channel is opened while it is selected. */
static void test_store_app(void)
{
    scp03_keys k;
    scp_transport t;
    scp_channel ch;
    scp_channel_opts o = { .kvn = 0, .level = -1, .s16 = -1 };
    uint8_t r[256];
    size_t rl;
    uint16_t sw = 0;
    scp_card *card = new_card("yubikey", -1, NULL, 0, -1, &t);
    if (!card)
        return;
    fill(&k, 16, 0x40, 0);
    CHECK(select_aid(&t, SCP_CARD_STORE_AID) == 0);
    CHECK_OK(scp_channel_open(&ch, &t, &k, &o));
    CHECK_OK(scp_channel_send(&ch, (const uint8_t *)"\x80\xDA\x00\x42\x03\x01\x02\x03", 8, r,
                              sizeof(r), &rl, &sw));
    CHECK(sw == 0x9000);
    CHECK_OK(scp_channel_send(&ch, (const uint8_t *)"\x80\xCA\x00\x42\x00", 5, r, sizeof(r), &rl,
                              &sw));
    CHECK(sw == 0x9000);
    CHECK_MEM(r, rl, (const uint8_t *)"\x01\x02\x03", 3);
    scp_channel_close(&ch);
    scp_card_close(card);
}

/* PUT KEY under the channel's DEK, then the new set opens a channel and
 * a wrong key stops after INITIALIZE UPDATE without costing a try. */
static void test_putkey_and_wrong_key(void)
{
    scp03_keys k, nk, bad;
    scp_transport t;
    scp_channel ch;
    scp_channel_opts o = { .kvn = 0, .level = -1, .s16 = -1 };
    uint8_t cmd[5 + SCP_GP_PUTKEY_MAX + 1], r[64], before[512], after[512];
    size_t dl, rl;
    uint16_t sw = 0;
    scp_card *card = new_card("gp23", -1, NULL, 0, -1, &t);
    if (!card)
        return;
    fill(&k, 16, 0x40, 0);
    fill(&nk, 32, 0x80, 0x02);
    CHECK(select_aid(&t, "A000000151000000") == 0);
    CHECK_OK(scp_channel_open(&ch, &t, &k, &o));
    CHECK(ch.kvn == 0xFF && ch.dek_len == 16);
    CHECK_OK(scp_gp_putkey_build(ch.dek, ch.dek_len, &nk, cmd + 5, sizeof(cmd) - 6, &dl));
    memcpy(cmd, "\x80\xD8\x00\x81", 4);
    cmd[4] = (uint8_t)dl;
    cmd[5 + dl] = 0;
    CHECK_OK(scp_channel_send(&ch, cmd, dl + 6, r, sizeof(r), &rl, &sw));
    CHECK(sw == 0x9000 && rl == 10 && r[0] == 0x02);
    scp_channel_close(&ch);
    CHECK(ch.dek_len == 0); /* wiped */

    o.kvn = 2;
    CHECK(select_aid(&t, "A000000151000000") == 0);
    CHECK_OK(scp_channel_open(&ch, &t, &nk, &o));
    scp_channel_close(&ch);

    fill(&bad, 32, 0x81, 0x02);
    CHECK_OK(scp_card_describe(card, (char *)before, sizeof(before)));
    CHECK(select_aid(&t, "A000000151000000") == 0);
    CHECK_RC(scp_channel_open(&ch, &t, &bad, &o), SCP_E_AUTH);
    CHECK(ch.fail_rc == SCP_E_CRYPTOGRAM);
    CHECK_OK(scp_card_describe(card, (char *)after, sizeof(after)));
    /* the host stopped after INITIALIZE UPDATE, yet the card counted the
     * try: one set (KVN 02) went from 0 to 1 failure */
    CHECK(count((char *)before, "failures 1") == 0);
    CHECK(count((char *)after, "failures 1") == 1);
    CHECK(count((char *)after, "failures 0") + 1 == count((char *)before, "failures 0"));
    /* the good keys still work, and clear the count */
    CHECK(select_aid(&t, "A000000151000000") == 0);
    CHECK_OK(scp_channel_open(&ch, &t, &nk, &o));
    scp_channel_close(&ch);
    CHECK_OK(scp_card_describe(card, (char *)after, sizeof(after)));
    CHECK(count((char *)after, "failures 0") == count((char *)before, "failures 0"));
    scp_card_close(card);
}

int main(void)
{
    char cmd[128];
    if (!mkdtemp(dir_tmpl)) {
        perror("mkdtemp");
        return 1;
    }
    test_levels();
    test_store_app();
    test_putkey_and_wrong_key();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir_tmpl);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir_tmpl);
    return test_done("test_channel_card");
}
