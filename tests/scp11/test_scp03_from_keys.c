/* scp03_session_from_keys: an SCP03 session opened from given session keys
 * and a chaining value (how SCP11 hands its ECDH-derived keys to SCP03's
 * secure messaging). Known answers: the [scp03_wrap] records of
 * tests/vectors/scp03_openjavacard.txt (OpenJavaCard SCP03WrapperTest.java,
 * fixed session keys, chaining value zero), replayed through the host and
 * the card role; host against card at every level, S8 and S16, AES-128/192/
 * 256; tampered twins. */
#include <stdlib.h>

#include "scpkit/apdu.h"
#include "scpkit/scp03.h"
#include "test.h"

static uint8_t out[70000], out2[70000];

static int open_pair(scp03_session *h, scp03_session *c, const uint8_t *enc, const uint8_t *mac,
                     const uint8_t *rmac, size_t kl, size_t ml, uint8_t level,
                     const uint8_t chain[16])
{
    scp03_open_params p = { 0 };
    p.level = level, p.key_len = (uint8_t)kl, p.mac_len = (uint8_t)ml;
    p.enc = enc, p.mac = mac, p.rmac = rmac, p.mac_chain = chain;
    p.role = 0;
    int rc = scp03_session_from_keys(h, &p);
    if (rc != SCP_OK)
        return rc;
    p.role = 1;
    return scp03_session_from_keys(c, &p);
}

static void replay(const vec_record *r)
{
    const vec_field *e = vec_get(r, "s_enc", 0), *m = vec_get(r, "s_mac", 0),
                    *rm = vec_get(r, "s_rmac", 0), *lv = vec_get(r, "security_level", 0),
                    *mcv = vec_get(r, "mcv", 0);
    scp03_session h = { 0 }, c = { 0 };
    const uint8_t *plain = NULL;
    size_t plain_len = 0, n, n2;
    int steps = 0;

    if (e == NULL || m == NULL || rm == NULL || lv == NULL || mcv == NULL || mcv->len != 16) {
        CHECK(!"scp03_wrap record incomplete");
        return;
    }
    CHECK_OK(open_pair(&h, &c, e->bytes, m->bytes, rm->bytes, e->len, 8, lv->bytes[0],
                       mcv->bytes));
    for (size_t i = 0; i < r->n; i++) {
        const vec_field *f = &r->f[i];
        if (strcmp(f->name, "c_plain") == 0) {
            plain = f->bytes, plain_len = f->len;
        } else if (strcmp(f->name, "c_wrapped") == 0 && plain != NULL) {
            CHECK_OK(scp03_host_wrap(&h, plain, plain_len, out, sizeof(out), &n));
            CHECK_MEM(out, n, f->bytes, f->len);
            CHECK_OK(scp03_card_unwrap(&c, f->bytes, f->len, out2, sizeof(out2), &n2));
            CHECK_MEM(out2, n2, plain, plain_len);
            CHECK_OK(scp03_card_wrap(&c, NULL, 0, 0x9000, out2, sizeof(out2), &n2));
            steps++;
        }
    }
    CHECK(steps >= 4);
    scp03_end(&h);
    scp03_end(&c);
}

/* Host against card with random keys: every level, S8/S16, every key
 * length; then one tampered command ends the card's session, and a
 * different chaining value on one side fails the first command. */
static void pair_all(void)
{
    static const uint8_t levels[] = { 0x01, 0x03, 0x11, 0x13, 0x33 };
    uint8_t k[3][32], chain[16], cmd[300], body[200];
    size_t n, n2;

    for (size_t kl = 16; kl <= 32; kl += 8)
        for (size_t ml = 8; ml <= 16; ml += 8)
            for (size_t li = 0; li < sizeof(levels); li++) {
                scp03_session h = { 0 }, c = { 0 };
                test_rand_bytes(&k[0][0], sizeof(k));
                test_rand_bytes(chain, 16);
                CHECK_OK(open_pair(&h, &c, k[0], k[1], k[2], kl, ml, levels[li], chain));
                for (int step = 0; step < 4; step++) {
                    size_t dl = test_rand_below(120), rl = test_rand_below(150);
                    memcpy(cmd, "\x80\xCA\x00\xE0", 4);
                    cmd[4] = (uint8_t)dl;
                    test_rand_bytes(cmd + 5, dl);
                    cmd[5 + dl] = 0;
                    n = dl ? 6 + dl : 5;
                    if (!dl)
                        cmd[4] = 0;
                    CHECK_OK(scp03_host_wrap(&h, cmd, n, out, sizeof(out), &n2));
                    CHECK_OK(scp03_card_unwrap(&c, out, n2, out2, sizeof(out2), &n2));
                    CHECK_MEM(out2, n2, cmd, n);
                    test_rand_bytes(body, rl);
                    CHECK_OK(scp03_card_wrap(&c, body, rl, 0x9000, out, sizeof(out), &n));
                    CHECK_OK(scp03_host_unwrap(&h, out, n, out2, sizeof(out2), &n2));
                    CHECK(n2 == rl + 2 && memcmp(out2, body, rl) == 0);
                }
                /* tampered twin: one bit of the C-MAC */
                memcpy(cmd, "\x80\xCA\x00\xE0\x00", 5);
                CHECK_OK(scp03_host_wrap(&h, cmd, 5, out, sizeof(out), &n));
                out[n - 2] ^= 0x01;
                CHECK_RC(scp03_card_unwrap(&c, out, n, out2, sizeof(out2), &n2), SCP_E_MAC);
                CHECK(c.state == SCP03_DEAD);
                scp03_end(&h);
                scp03_end(&c);
                /* tampered twin: chaining values differ */
                CHECK_OK(open_pair(&h, &c, k[0], k[1], k[2], kl, ml, levels[li], chain));
                c.chain.u.icv[0] ^= 0x80;
                CHECK_OK(scp03_host_wrap(&h, cmd, 5, out, sizeof(out), &n));
                CHECK_RC(scp03_card_unwrap(&c, out, n, out2, sizeof(out2), &n2), SCP_E_MAC);
                scp03_end(&h);
                scp03_end(&c);
            }
}

static void bad_args(void)
{
    uint8_t k[32] = { 0 }, chain[16] = { 0 };
    scp03_session s = { 0 };
    scp03_open_params p = { 0 };
    p.level = 0x33, p.key_len = 16, p.mac_len = 8;
    p.enc = p.mac = p.rmac = k, p.mac_chain = chain;
    CHECK_OK(scp03_session_from_keys(&s, &p));
    CHECK(scp03_is_open(&s) && s.chain.counter == 0);
    p.key_len = 20;
    CHECK_RC(scp03_session_from_keys(&s, &p), SCP_E_ARG);
    p.key_len = 16, p.mac_len = 12;
    CHECK_RC(scp03_session_from_keys(&s, &p), SCP_E_ARG);
    p.mac_len = 8, p.level = 0x21;
    CHECK_RC(scp03_session_from_keys(&s, &p), SCP_E_LEVEL);
    p.level = 0x33, p.mac_chain = NULL;
    CHECK_RC(scp03_session_from_keys(&s, &p), SCP_E_ARG);
    p.mac_chain = chain, p.role = 2;
    CHECK_RC(scp03_session_from_keys(&s, &p), SCP_E_ARG);
    scp03_end(&s);
}

int main(void)
{
    vec_file vf;
    int recs = 0;
    test_seed(0x5C9011);
    if (vec_load(vec_path("scp03_openjavacard.txt"), &vf) != 0) {
        CHECK(!"cannot load scp03_openjavacard.txt");
        return test_done("test_scp03_from_keys");
    }
    for (size_t i = 0; i < vf.n; i++)
        if (strcmp(vf.r[i].type, "scp03_wrap") == 0) {
            replay(&vf.r[i]);
            recs++;
        }
    CHECK(recs == 2);
    vec_free(&vf);
    pair_all();
    bad_args();
    return test_done("test_scp03_from_keys");
}
