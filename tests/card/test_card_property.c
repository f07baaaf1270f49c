/* Property test: host engine and card against each other over random
 * i parameters, key lengths, levels, object sizes and key rotations, with
 * a model of what the card must hold. Along the way, random tampering of
 * a protected command must get 6982 and end the session (the next
 * protected command too), and a rotation must leave exactly the model's
 * key sets (checked through GET DATA 00E0 and by authenticating). */
#include <string.h>
#include "card_util.h"
#include "scpkit/gp.h"
#include "test.h"

#define ROUNDS 60

static const int is[] = { 0x00, 0x01, 0x10, 0x11, 0x20, 0x21, 0x60, 0x61, 0x70, 0x71 };
static const uint8_t levels[] = { 0x00, 0x01, 0x03, 0x11, 0x13, 0x33 };
static const uint8_t store_aid[] = "\x00\xA4\x04\x00\x08\xF0\x73\x63\x70\x6B\x69\x74\x01";

static uint8_t pick_level(int i)
{
    for (;;) {
        uint8_t l = levels[test_rand_below(6)];
        if (scp03_level_allowed((uint8_t)i, l))
            return l;
    }
}

static void one_card(void)
{
    char dir[256];
    int i = is[test_rand_below(10)];
    size_t kl = 16 + 8 * test_rand_below(3), chal = (i & 1) ? 16 : 8;
    uint8_t key[32], obj[128], cmd[200];
    scp03_keys cur, nk;
    scp03_session s;
    scp_card_init_opts o = { .profile = "gp23", .scp_i = i, .kvn = 0x10 };
    scp_card *c = NULL;
    tc_resp r;

    test_rand_bytes(key, kl);
    o.key = key;
    o.key_len = kl;
    tc_tmpdir(dir, sizeof(dir));
    CHECK_OK(scp_card_init(dir, &o));
    CHECK_OK(scp_card_open(dir, &c, NULL, 0));
    if (c == NULL)
        return;
    tc_keys(&cur, key, kl, 0x10);
    for (int step = 0; step < 6; step++) {
        uint8_t level = pick_level(i);
        size_t n = 1 + test_rand_below(sizeof(obj));
        switch (test_rand_below(3)) {
        case 0: /* store an object through the store application's channel */
            CHECK(tc_xfer(c, store_aid, sizeof(store_aid) - 1, &r) == 0 && r.sw == 0x9000);
            CHECK(tc_open(c, &s, &cur, 0, level, chal) == 0x9000);
            test_rand_bytes(obj, n);
            memcpy(cmd, "\x00\xDA\x01\x23", 4);
            cmd[4] = (uint8_t)n;
            memcpy(cmd + 5, obj, n);
            if (level == 0x00) { /* no C-MAC: no writes (issue 11 item 9) */
                CHECK(tc_send(c, &s, cmd, 5 + n, &r) == 0x6982);
                scp03_end(&s);
                CHECK(tc_sw(c, "00A4040000") == 0x9000);
                break;
            }
            CHECK(tc_send(c, &s, cmd, 5 + n, &r) == 0x9000);
            CHECK(tc_send_hex(c, &s, "00CA012300", &r) == 0x9000);
            CHECK_MEM(r.data, r.len, obj, n);
            scp03_end(&s);
            CHECK(tc_sw(c, "00A4040000") == 0x9000);
            break;
        case 1: { /* rotate the key set (new KVN, random length) */
            uint8_t nkey[32];
            size_t nl = 16 + 8 * test_rand_below(3);
            uint8_t kvn = (uint8_t)(cur.kvn % 0x7E + 1);
            test_rand_bytes(nkey, nl);
            tc_keys(&nk, nkey, nl, kvn);
            nk.mac[0] ^= 0x5A; /* three different keys */
            nk.dek[1] ^= 0xA5;
            CHECK(tc_open(c, &s, &cur, cur.kvn, level ? level : 0x01, chal) == 0x9000);
            CHECK(tc_put_key(c, &s, &cur, &nk, cur.kvn) == 0x9000);
            CHECK(tc_send_hex(c, &s, "80CA00E000", &r) == 0x9000);
            CHECK(r.len == 20 && r.data[5] == kvn && r.data[7] == nl);
            scp03_end(&s);
            cur = nk;
            break;
        }
        default: { /* tamper with one byte of a protected command */
            uint8_t w[300];
            size_t wn = 0;
            CHECK(tc_open(c, &s, &cur, 0, level, chal) == 0x9000);
            if (!(level & SCP_LEVEL_CMAC)) {
                scp03_end(&s);
                break;
            }
            CHECK_OK(scp03_host_wrap(&s, (const uint8_t *)"\x80\xCA\x9F\x7F\x00", 5, w,
                                     sizeof(w), &wn));
            w[4 + 1 + test_rand_below(wn - 6)] ^= (uint8_t)(1 + test_rand_below(255));
            CHECK(tc_xfer(c, w, wn, &r) == 0 && r.sw == 0x6982 && r.len == 0);
            CHECK(tc_send_hex(c, &s, "80CA9F7F00", &r) != 0x9000);
            scp03_end(&s);
            CHECK(tc_sw(c, "80CA9F7F00") == 0x9000); /* plain again, after the end */
            break;
        }
        }
    }
    /* the model's key set, and only it, survives a reopen */
    scp_card_close(c);
    CHECK_OK(scp_card_open(dir, &c, NULL, 0));
    CHECK(tc_open(c, &s, &cur, cur.kvn, pick_level(i), chal) == 0x9000);
    scp03_end(&s);
    scp_card_close(c);
    tc_rmdir(dir);
}

int main(void)
{
    test_seed(0x9A09E27);
    for (int k = 0; k < ROUNDS; k++)
        one_card();
    return test_done("test_card_property");
}
