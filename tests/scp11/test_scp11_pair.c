/* SCP11 host against card in process: 11a, 11b and 11c on P-256, P-384 and
 * brainpoolP256r1, AES-128/192/256 session keys, S8 and S16, commands and
 * responses through the opened channel; tampered twins: receipt, a point
 * off the curve or on another curve sent to the card, a wrong PK.SD at
 * the host, 11a/c without an OCE key, a bad C-MAC; 11c's replayability
 * (the same eSK.OCE gives the same keys, which is what 11c is for) and
 * 11a/b's freshness. */
#include <stdlib.h>

#include "scpkit/apdu.h"
#include "scpkit/scp11.h"
#include "test.h"

static uint8_t buf[4096], buf2[4096];

typedef struct world {
    int curve;
    scp_ec_key sk_sd, sk_oce, pk_sd, pk_oce;
} world;

static void world_make(world *w, int curve)
{
    memset(w, 0, sizeof(*w));
    w->curve = curve;
    CHECK_OK(scp_ec_generate(&w->sk_sd, curve));
    CHECK_OK(scp_ec_generate(&w->sk_oce, curve));
    CHECK_OK(scp_ec_dup(&w->pk_sd, &w->sk_sd, 0));
    CHECK_OK(scp_ec_dup(&w->pk_oce, &w->sk_oce, 0));
}

static void world_free(world *w)
{
    scp_ec_free(&w->sk_sd), scp_ec_free(&w->sk_oce);
    scp_ec_free(&w->pk_sd), scp_ec_free(&w->pk_oce);
}

/* One handshake; returns the host's result (the card's when it fails). */
static int handshake(world *w, const scp11_params *p, scp11_session *h, scp11_session *c,
                     const scp_ec_key *host_esk, uint8_t receipt_out[16])
{
    scp11_auth_cmd cmd;
    scp11_card_keys ck = { 0 };
    size_t n, m;
    int rc;
    rc = scp11_host_begin(h, p, &w->pk_sd, p->variant == SCP11_B ? NULL : &w->sk_oce, host_esk);
    if (rc != SCP_OK)
        return rc;
    CHECK_OK(scp11_host_auth_command(h, 0x80, buf, sizeof(buf), &n));
    CHECK(buf[1] == (p->variant == SCP11_B ? 0x88 : 0x82) && buf[2] == p->kvn && buf[3] == p->kid);
    CHECK_OK(scp11_auth_parse(buf, n, &cmd));
    CHECK(cmd.variant == p->variant && cmd.key_len == p->key_len);
    ck.sk_sd = &w->sk_sd;
    ck.pk_oce = p->variant == SCP11_B ? NULL : &w->pk_oce;
    ck.mac_len = p->mac_len;
    ck.level = p->level;
    rc = scp11_card_authenticate(c, &ck, &cmd, buf2, sizeof(buf2), &m);
    if (rc != SCP_OK)
        return rc;
    if (receipt_out != NULL)
        memcpy(receipt_out, buf2 + m - 16, 16);
    return scp11_host_auth_response(h, buf2, m);
}

static void traffic(scp11_session *h, scp11_session *c, int steps)
{
    uint8_t cmd[300], body[300];
    size_t n, m;
    for (int i = 0; i < steps; i++) {
        size_t dl = test_rand_below(200), rl = test_rand_below(200);
        cmd[0] = 0x80, cmd[1] = 0xCA, cmd[2] = 0x00, cmd[3] = 0xE0;
        n = 4;
        if (dl) {
            cmd[4] = (uint8_t)dl;
            test_rand_bytes(cmd + 5, dl);
            n = 5 + dl;
        }
        cmd[n++] = 0x00;
        CHECK_OK(scp03_host_wrap(&h->sm, cmd, n, buf, sizeof(buf), &m));
        CHECK_OK(scp03_card_unwrap(&c->sm, buf, m, buf2, sizeof(buf2), &m));
        CHECK_MEM(buf2, m, cmd, n);
        test_rand_bytes(body, rl);
        CHECK_OK(scp03_card_wrap(&c->sm, body, rl, 0x9000, buf, sizeof(buf), &m));
        CHECK_OK(scp03_host_unwrap(&h->sm, buf, m, buf2, sizeof(buf2), &m));
        CHECK(m == rl + 2 && memcmp(buf2, body, rl) == 0);
    }
}

static void all_combinations(void)
{
    static const int curves[] = { SCP_EC_P256, SCP_EC_P384, SCP_EC_BP256 };
    for (size_t ci = 0; ci < 3; ci++) {
        world w;
        world_make(&w, curves[ci]);
        for (int v = SCP11_A; v <= SCP11_C; v++)
            for (int kl = 16; kl <= 32; kl += 8)
                for (int ml = 8; ml <= 16; ml += 8) {
                    /* every secure-messaging level after the handshake */
                    static const uint8_t lv[] = { 0x01, 0x03, 0x11, 0x13, 0x33, 0x00 };
                    uint8_t level = lv[(size_t)(v * 7 + kl + ml) % sizeof(lv)];
                    scp11_params p = { (uint8_t)v, scp11_default_kid(v), 0x01, (uint8_t)kl,
                                       (uint8_t)ml, level };
                    scp11_session h = { 0 }, c = { 0 };
                    CHECK_OK(handshake(&w, &p, &h, &c, NULL, NULL));
                    CHECK(scp11_is_open(&h) && scp11_is_open(&c));
                    CHECK(h.sm.level == (level ? level : 0x33) && c.sm.level == h.sm.level);
                    CHECK(memcmp(h.dek, c.dek, (size_t)kl) == 0);
                    traffic(&h, &c, 3);
                    /* a tampered C-MAC ends the card's session */
                    uint8_t cmd[5] = { 0x80, 0xCA, 0x00, 0xE0, 0x00 };
                    size_t n;
                    CHECK_OK(scp03_host_wrap(&h.sm, cmd, 5, buf, sizeof(buf), &n));
                    buf[n - 2] ^= 0x10;
                    CHECK_RC(scp03_card_unwrap(&c.sm, buf, n, buf2, sizeof(buf2), &n), SCP_E_MAC);
                    scp11_end(&h), scp11_end(&c);
                }
        world_free(&w);
    }
}

static void tampered(void)
{
    world w, w2;
    scp11_params pa = { SCP11_A, 0x11, 0x03, 16, 8, 0 }, pb = { SCP11_B, 0x13, 0x01, 16, 8, 0 };
    scp11_session h = { 0 }, c = { 0 };
    scp11_auth_cmd cmd;
    scp11_card_keys ck = { 0 };
    size_t n, m;

    world_make(&w, SCP_EC_P256);
    world_make(&w2, SCP_EC_P256);
    /* the receipt changed on the way back */
    CHECK_OK(scp11_host_begin(&h, &pb, &w.pk_sd, NULL, NULL));
    CHECK_OK(scp11_host_auth_command(&h, 0x80, buf, sizeof(buf), &n));
    CHECK_OK(scp11_auth_parse(buf, n, &cmd));
    ck.sk_sd = &w.sk_sd, ck.mac_len = 8;
    CHECK_OK(scp11_card_authenticate(&c, &ck, &cmd, buf2, sizeof(buf2), &m));
    buf2[m - 5] ^= 0x40;
    CHECK_RC(scp11_host_auth_response(&h, buf2, m), SCP_E_CRYPTOGRAM);
    CHECK(h.state == SCP11_DEAD);
    CHECK_RC(scp11_host_auth_response(&h, buf2, m), SCP_E_DEAD);
    scp11_end(&h), scp11_end(&c);

    /* the host trusts another SD key (a man in the middle answers) */
    CHECK_OK(scp11_host_begin(&h, &pb, &w2.pk_sd, NULL, NULL));
    CHECK_OK(scp11_host_auth_command(&h, 0x80, buf, sizeof(buf), &n));
    CHECK_OK(scp11_auth_parse(buf, n, &cmd));
    CHECK_OK(scp11_card_authenticate(&c, &ck, &cmd, buf2, sizeof(buf2), &m));
    CHECK_RC(scp11_host_auth_response(&h, buf2, m), SCP_E_CRYPTOGRAM);
    scp11_end(&h), scp11_end(&c);

    /* 11a: the card knows another OCE key (a PSO from someone else) */
    CHECK_OK(scp11_host_begin(&h, &pa, &w.pk_sd, &w.sk_oce, NULL));
    CHECK_OK(scp11_host_auth_command(&h, 0x80, buf, sizeof(buf), &n));
    CHECK_OK(scp11_auth_parse(buf, n, &cmd));
    ck.pk_oce = &w2.pk_oce;
    CHECK_OK(scp11_card_authenticate(&c, &ck, &cmd, buf2, sizeof(buf2), &m));
    CHECK_RC(scp11_host_auth_response(&h, buf2, m), SCP_E_CRYPTOGRAM);
    scp11_end(&h), scp11_end(&c);
    /* 11a with no OCE key at the card (no PSO): refused */
    ck.pk_oce = NULL;
    CHECK_RC(scp11_card_authenticate(&c, &ck, &cmd, buf2, sizeof(buf2), &m), SCP_E_AUTH);
    CHECK(c.state == SCP11_DEAD);
    scp11_end(&c);

    /* points the card must refuse: off the curve, other curve, compressed */
    CHECK_OK(scp11_host_begin(&h, &pb, &w.pk_sd, NULL, NULL));
    CHECK_OK(scp11_host_auth_command(&h, 0x80, buf, sizeof(buf), &n));
    buf[n - 2] ^= 0x01; /* last byte of Y */
    CHECK_OK(scp11_auth_parse(buf, n, &cmd));
    CHECK_RC(scp11_card_authenticate(&c, &ck, &cmd, buf2, sizeof(buf2), &m), SCP_E_FORMAT);
    scp11_end(&h), scp11_end(&c);
    {
        world w384;
        world_make(&w384, SCP_EC_P384);
        scp11_session h2 = { 0 };
        CHECK_OK(scp11_host_begin(&h2, &pb, &w384.pk_sd, NULL, NULL));
        CHECK_OK(scp11_host_auth_command(&h2, 0x80, buf, sizeof(buf), &n));
        CHECK_OK(scp11_auth_parse(buf, n, &cmd));
        CHECK_RC(scp11_card_authenticate(&c, &ck, &cmd, buf2, sizeof(buf2), &m), SCP_E_FORMAT);
        scp11_end(&h2), scp11_end(&c);
        /* a host that mixes curves is refused up front */
        CHECK_RC(scp11_host_begin(&h2, &pa, &w384.pk_sd, &w.sk_oce, NULL), SCP_E_ARG);
        world_free(&w384);
    }
    /* malformed commands: every cut, a wrong tag 90, a usage not offered */
    CHECK_OK(scp11_host_begin(&h, &pb, &w.pk_sd, NULL, NULL));
    CHECK_OK(scp11_host_auth_command(&h, 0x80, buf, sizeof(buf), &n));
    for (size_t cut = 0; cut + 1 < n; cut++) {
        uint8_t t[200];
        memcpy(t, buf, cut);
        if (cut > 5)
            t[4] = (uint8_t)(cut - 5);
        CHECK(scp11_auth_parse(t, cut, &cmd) != SCP_OK);
    }
    buf[9] = 0x12; /* 90 02 12 00 */
    CHECK_RC(scp11_auth_parse(buf, n, &cmd), SCP_E_FORMAT);
    buf[9] = 0x11, buf[13] = 0x34; /* key usage 34 */
    CHECK_RC(scp11_auth_parse(buf, n, &cmd), SCP_E_UNSUPPORTED);
    buf[13] = 0x3C, buf[10] = 0x01; /* i = 01 (11a) under INS 88 */
    CHECK_RC(scp11_auth_parse(buf, n, &cmd), SCP_E_FORMAT);
    scp11_end(&h);
    world_free(&w), world_free(&w2);
}

/* 11c: the card answers its static key, so a fixed eSK.OCE gives the same
 * keys in every session (scripts can be made ahead); 11a does not. */
static void replayability(void)
{
    world w;
    scp_ec_key esk = { 0 };
    uint8_t r1[16], r2[16];
    world_make(&w, SCP_EC_P256);
    CHECK_OK(scp_ec_generate(&esk, SCP_EC_P256));
    for (int v = SCP11_A; v <= SCP11_C; v += 2) {
        scp11_params p = { (uint8_t)v, scp11_default_kid(v), 0x03, 16, 8, 0 };
        scp11_session h = { 0 }, c = { 0 };
        CHECK_OK(handshake(&w, &p, &h, &c, &esk, r1));
        scp11_end(&h), scp11_end(&c);
        CHECK_OK(handshake(&w, &p, &h, &c, &esk, r2));
        scp11_end(&h), scp11_end(&c);
        CHECK((memcmp(r1, r2, 16) == 0) == (v == SCP11_C));
    }
    scp_ec_free(&esk);
    world_free(&w);
}

/* SK.OCE behind a callback (as in an HSM doing CKM_ECDH1_DERIVE): the
 * handshake works the same; a failing or lying callback ends it. */
typedef struct hsm {
    const scp_ec_key *key;
    int calls, mode; /* 0 honest, 1 fails, 2 answers another secret */
} hsm;

static int hsm_ecdh(void *ctx, const uint8_t *peer, size_t peer_len, uint8_t *out,
                    size_t out_size, size_t *out_len)
{
    hsm *h = ctx;
    scp_ec_key pk = { 0 };
    int rc;
    h->calls++;
    if (h->mode == 1)
        return SCP_E_IO;
    rc = scp_ec_from_point(&pk, h->key->curve, peer, peer_len);
    if (rc == SCP_OK)
        rc = scp_ecdh(h->key, &pk, out, out_size, out_len);
    scp_ec_free(&pk);
    if (rc == SCP_OK && h->mode == 2)
        out[0] ^= 1;
    return rc;
}

static void oce_in_hsm(void)
{
    static const int curves[] = { SCP_EC_P256, SCP_EC_P384, SCP_EC_BP256 };
    for (size_t ci = 0; ci < 3; ci++)
        for (int mode = 0; mode < 3; mode++) {
            world w;
            hsm dev = { 0 };
            scp11_oce_key ok = { curves[ci], hsm_ecdh, &dev };
            scp11_params p = { SCP11_A, 0x11, 0x03, 16, 8, 0 };
            scp11_session h = { 0 }, c = { 0 };
            scp11_auth_cmd cmd;
            scp11_card_keys ck = { 0 };
            size_t n, m;
            world_make(&w, curves[ci]);
            dev.key = &w.sk_oce, dev.mode = mode;
            CHECK_OK(scp11_host_begin_oce(&h, &p, &w.pk_sd, &ok, NULL));
            CHECK_OK(scp11_host_auth_command(&h, 0x80, buf, sizeof(buf), &n));
            CHECK_OK(scp11_auth_parse(buf, n, &cmd));
            ck.sk_sd = &w.sk_sd, ck.pk_oce = &w.pk_oce, ck.mac_len = 8;
            CHECK_OK(scp11_card_authenticate(&c, &ck, &cmd, buf2, sizeof(buf2), &m));
            CHECK_RC(scp11_host_auth_response(&h, buf2, m),
                     mode == 0 ? SCP_OK : mode == 1 ? SCP_E_IO : SCP_E_CRYPTOGRAM);
            CHECK(dev.calls == 1 && scp11_is_open(&h) == (mode == 0));
            if (mode == 0)
                traffic(&h, &c, 2);
            scp11_end(&h), scp11_end(&c);
            world_free(&w);
        }
    /* 11b has no OCE key; a callback on another curve is refused */
    {
        world w;
        hsm dev = { 0 };
        scp11_oce_key ok = { SCP_EC_P384, hsm_ecdh, &dev };
        scp11_params pa = { SCP11_A, 0x11, 0x03, 16, 8, 0 }, pb = { SCP11_B, 0x13, 0x01, 16, 8, 0 };
        scp11_session h = { 0 };
        world_make(&w, SCP_EC_P256);
        CHECK_RC(scp11_host_begin_oce(&h, &pa, &w.pk_sd, &ok, NULL), SCP_E_ARG);
        ok.curve = SCP_EC_P256;
        CHECK_RC(scp11_host_begin_oce(&h, &pb, &w.pk_sd, &ok, NULL), SCP_E_ARG);
        scp11_end(&h);
        world_free(&w);
    }
}

int main(int argc, char **argv)
{
    test_seed(argc > 1 ? strtoull(argv[1], NULL, 0) : 0x5C11);
    all_combinations();
    tampered();
    replayability();
    oce_in_hsm();
    return test_done("test_scp11_pair");
}
