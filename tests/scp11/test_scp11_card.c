/* SCP11 on the virtual card, in process, through the host channel
 * (scp11_channel_open over scp_card_transport): the yubikey profile's
 * SCP11b key 13/01 and its certificate issued by DIR/sd-ca.pem; SCP11a
 * and SCP11c after --oce-ca (init option oce_ca); every curve through
 * PUT KEY / GENERATE KEY over an SCP03 or SCP11a session; STORE DATA of
 * certificates, CA issuer and allow-lists; DELETE KEY; restarts; a
 * failed state write; and the refusals a YubiKey 5.7 gives: key
 * management in 11b, DELETE KEY in 11c, PSO with a bad or expired
 * certificate, an OCE serial not on the allow-list, a chained PSO cut
 * short, the SD chain against the wrong anchor. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "card_util.h"
#include "scpkit/apdu.h"
#include "crypto/aes.h"
#include "scpkit/buf.h"
#include "scpkit/card.h"
#include "scpkit/cert.h"
#include "scpkit/channel.h"
#include "scpkit/scp11.h"
#include "scpkit/tlv.h"
#include "card/internal.h"
#include "test.h"

typedef struct oce {
    scp_ec_key ca, sk; /* the OCE CA and the OCE's own key */
    uint8_t der[2][1024];
    size_t len[2], off[2], lens[2];
    uint8_t chain[2048]; /* the leaf only goes up: the CA is the card's anchor */
    char ca_pem_path[300];
} oce;

static int64_t now_s(void) { return (int64_t)time(NULL); }

static void oce_make(oce *o, const char *dir, int curve, int leaf_days, int64_t start)
{
    char pem[4096];
    size_t pl;
    FILE *f;
    memset(o, 0, sizeof(*o));
    CHECK_OK(scp_ec_generate(&o->ca, curve));
    CHECK_OK(scp_ec_generate(&o->sk, curve));
    CHECK_OK(scp_cert_issue(&o->ca, "Lab OCE CA", &o->ca, NULL, 0, 1, now_s() - 86400, 3650, 7,
                            o->der[0], sizeof(o->der[0]), &o->len[0]));
    CHECK_OK(scp_cert_issue(&o->sk, "Lab OCE", &o->ca, o->der[0], o->len[0], 0, start, leaf_days,
                            0x4242, o->der[1], sizeof(o->der[1]), &o->len[1]));
    memcpy(o->chain, o->der[1], o->len[1]);
    o->off[0] = 0, o->lens[0] = o->len[1];
    CHECK_OK(scp_cert_to_pem(o->der[0], o->len[0], pem, sizeof(pem), &pl));
    snprintf(o->ca_pem_path, sizeof(o->ca_pem_path), "%s.oce-ca.pem", dir);
    f = fopen(o->ca_pem_path, "w");
    CHECK(f != NULL && fwrite(pem, 1, pl, f) == pl);
    if (f)
        fclose(f);
}

static void oce_free(oce *o)
{
    scp_ec_free(&o->ca), scp_ec_free(&o->sk);
    remove(o->ca_pem_path);
}

static scp_card *make(char *dir, size_t dsz, const char *profile, const char *oce_ca)
{
    scp_card_init_opts io = { .profile = profile, .scp_i = -1, .kvn = -1, .oce_ca = oce_ca };
    scp_card *c = NULL;
    char err[256] = "";
    CHECK_OK(scp_card_init(dir, &io));
    CHECK_OK(scp_card_open(dir, &c, err, sizeof(err)));
    (void)dsz;
    return c;
}

static scp_card *reopen(scp_card *c, const char *dir)
{
    char err[256] = "";
    scp_card_close(c);
    c = NULL;
    CHECK_OK(scp_card_open(dir, &c, err, sizeof(err)));
    return c;
}

static uint8_t open_mac_len; /* 0/8: S8, 16: S16 (s16 below) */

static int open11(scp_card *c, scp_channel *ch, const char *dir, int variant, uint8_t kid,
                  uint8_t kvn, oce *o, scp_cert_error *err)
{
    static scp_transport tr; /* the channel keeps a pointer to it */
    char ca[300];
    scp_trust t = { 0 };
    scp11_channel_opts opt = { 0 };
    int rc;
    snprintf(ca, sizeof(ca), "%s/sd-ca.pem", dir);
    CHECK_OK(scp_trust_load_file(&t, ca));
    /* select the ISD first, as a host does (a plain command would end an
     * open session with 6982, as on a YubiKey) */
    CHECK(tc_sw(c, "00A4040008A000000151000000") == 0x9000);
    scp_card_transport(c, &tr);
    opt.variant = variant, opt.kid = kid, opt.kvn = kvn;
    opt.mac_len = open_mac_len;
    opt.sd_trust = &t, opt.now = now_s(), opt.err = err;
    if (o != NULL) {
        opt.sk_oce = &o->sk;
        opt.oce_chain = o->chain, opt.oce_off = o->off, opt.oce_len = o->lens, opt.oce_n = 1;
    }
    memset(err, 0, sizeof(*err));
    rc = scp11_channel_open(ch, &tr, &opt);
    scp_trust_free(&t);
    return rc;
}

static uint16_t send_hex(scp_channel *ch, const char *hex, uint8_t *resp, size_t *rl)
{
    uint8_t cmd[600];
    size_t n;
    uint16_t sw = 0;
    static uint8_t dummy[2048];
    size_t dl;
    if (scp_hex_decode(hex, cmd, sizeof(cmd), &n) != SCP_OK)
        return 0;
    if (scp_channel_send(ch, cmd, n, resp ? resp : dummy, 2048, rl ? rl : &dl, &sw) != SCP_OK)
        return 0;
    return sw;
}

static void yubikey_11b(void)
{
    char dir[256], bad[300];
    scp_card *c;
    scp_channel ch;
    scp_cert_error err;
    uint8_t resp[2048];
    size_t rl;
    tc_resp r;

    tc_tmpdir(dir, sizeof(dir));
    c = make(dir, sizeof(dir), "yubikey", NULL);
    /* the certificate store, bare (YubiKey 5.7), and what is not there */
    CHECK_OK(tc_xfer_hex(c, "00CABF2106A6048302130100", &r));
    CHECK(r.sw == 0x9000 && r.len > 100 && r.data[0] == 0x30);
    CHECK(tc_sw(c, "00CABF2106A6048302110300") == 0x6A88);
    /* 11b opens; commands go through at level 33 */
    CHECK_OK(open11(c, &ch, dir, SCP11_B, 0, 0, NULL, &err));
    CHECK(ch.s.level == 0x33 && ch.kvn == 0x01);
    CHECK(send_hex(&ch, "80CA00E000", resp, &rl) == 0x9000 && rl > 4 && resp[0] == 0xE0);
    /* no key management over 11b (6982), and the session goes on */
    CHECK(send_hex(&ch, "80F100130402F00100", NULL, NULL) == 0x6982);
    CHECK(send_hex(&ch, "00E290000CA6048302130170049302BEEF", NULL, NULL) == 0x6982);
    CHECK(send_hex(&ch, "80E4000003D00113", NULL, NULL) == 0x6982);
    CHECK(send_hex(&ch, "80CA00E000", resp, &rl) == 0x9000);
    scp_channel_close(&ch);
    /* the same key after a restart */
    c = reopen(c, dir);
    CHECK_OK(open11(c, &ch, dir, SCP11_B, SCP11_KID_B, 0x01, NULL, &err));
    scp_channel_close(&ch);
    /* the wrong anchor: the SD chain is refused and nothing more is sent */
    {
        oce o;
        scp_trust t = { 0 };
        scp_transport tr;
        scp11_channel_opts opt = { 0 };
        oce_make(&o, dir, SCP_EC_P256, 30, now_s() - 3600);
        CHECK_OK(scp_trust_load_file(&t, o.ca_pem_path));
        scp_card_transport(c, &tr);
        CHECK(tc_sw(c, "00A4040008A000000151000000") == 0x9000);
        opt.variant = SCP11_B, opt.sd_trust = &t, opt.now = now_s(), opt.err = &err;
        CHECK_RC(scp11_channel_open(&ch, &tr, &opt), SCP_E_AUTH);
        CHECK(err.index == 1 && strstr(err.text, "signature does not verify") != NULL);
        /* validity: the SD certificate checked at a time before it */
        scp_trust_free(&t);
        snprintf(bad, sizeof(bad), "%s/sd-ca.pem", dir);
        CHECK_OK(scp_trust_load_file(&t, bad));
        opt.now = 1000000000;
        CHECK_RC(scp11_channel_open(&ch, &tr, &opt), SCP_E_AUTH);
        CHECK(strstr(err.text, "not yet valid") != NULL);
        scp_trust_free(&t);
        oce_free(&o);
    }
    /* 11a/c are not offered without an OCE CA */
    CHECK(tc_sw(c, "00CABF2106A6048302150300") == 0x6A88);
    scp_card_close(c);
    tc_rmdir(dir);
}

static void with_oce(int curve)
{
    char dir[256];
    scp_card *c;
    scp_channel ch;
    scp_cert_error err;
    uint8_t resp[2048];
    size_t rl;
    oce o, other;
    tc_resp r;

    tc_tmpdir(dir, sizeof(dir));
    oce_make(&o, dir, SCP_EC_P256, 30, now_s() - 3600);
    c = make(dir, sizeof(dir), "yubikey", o.ca_pem_path);
    /* 11a and 11c on the keys init made */
    CHECK_OK(open11(c, &ch, dir, SCP11_A, 0, 0, &o, &err));
    CHECK(send_hex(&ch, "80CA00E000", resp, &rl) == 0x9000);
    scp_channel_close(&ch);
    CHECK_OK(open11(c, &ch, dir, SCP11_C, 0, 0, &o, &err));
    CHECK(send_hex(&ch, "80CA00E000", resp, &rl) == 0x9000);
    CHECK(send_hex(&ch, "80E4000003D00113", NULL, NULL) == 0x6982); /* no DELETE over 11c */
    scp_channel_close(&ch);
    /* GP: FF33 names the OCE CA (KLOC) by its SKI */
    CHECK(tc_sw(c, "00A4040008A000000151000000") == 0x9000);
    CHECK_OK(tc_xfer_hex(c, "00CAFF3300", &r));
    CHECK(r.sw == 0x9000 && r.data[0] == 0x42 && r.data[r.len - 4] == 0x83);

    /* over 11a: a new SD key on `curve` (GENERATE KEY 13/02), its
     * certificate stored, then an 11b session with it */
    CHECK_OK(open11(c, &ch, dir, SCP11_A, 0, 0, &o, &err));
    {
        uint8_t raw[9] = { 0x80, 0xF1, 0x00, 0x13, 0x04, 0x02, 0xF0, 0x01, 0 };
        uint16_t sw = 0;
        raw[8] = scp_ec_curve_to_gp(curve);
        CHECK_OK(scp_channel_send(&ch, raw, sizeof(raw), resp, sizeof(resp), &rl, &sw));
        CHECK(sw == 0x9000 && resp[0] == 0xB0 && rl == 2 + 1 + 2 * scp_ec_field_len(curve));
        /* its certificate, issued here by a CA the test then trusts */
        scp_ec_key pub = { 0 }, lab = { 0 };
        uint8_t der[1024], sd[1200];
        size_t dl, sl;
        CHECK_OK(scp_ec_from_point(&pub, curve, resp + 2, rl - 2));
        CHECK_OK(scp_ec_generate(&lab, SCP_EC_P256));
        CHECK_OK(scp_cert_issue(&pub, "SD 13:02", &lab, NULL, 0, 0, now_s() - 60, 10, 9, der,
                                sizeof(der), &dl));
        /* STORE DATA: 00 E2 90 00 A6 04 83 02 13 02 BF21 L <cert> */
        scp_wr w;
        scp_wr_init(&w, sd, sizeof(sd));
        scp_wr_bytes(&w, (const uint8_t *)"\x00\xE2\x90\x00\x00\x00\x00", 7);
        {
            const uint8_t a6[6] = { 0xA6, 0x04, 0x83, 0x02, 0x13, 0x02 };
            scp_wr_bytes(&w, a6, 6);
            scp_tlv_put(&w, 0xBF21, der, dl);
        }
        CHECK_OK(scp_wr_done(&w, &sl));
        sd[5] = (uint8_t)((sl - 7) >> 8), sd[6] = (uint8_t)(sl - 7);
        CHECK(sl - 7 > 255); /* goes up in chained pieces */
        CHECK_OK(scp_channel_send(&ch, sd, sl, resp, sizeof(resp), &rl, &sw));
        CHECK(sw == 0x9000);
        scp_channel_close(&ch);
        CHECK(tc_sw(c, "00A4040008A000000151000000") == 0x9000);
        CHECK_OK(tc_xfer_hex(c, "00CABF2106A6048302130200", &r));
        CHECK_MEM(r.data, r.len, der, dl);
        /* the restart keeps it; 11b with 13/02 verifies against `lab` */
        c = reopen(c, dir);
        {
            scp_trust t = { 0 };
            scp_transport tr;
            scp11_channel_opts opt = { 0 };
            CHECK_OK(scp_trust_add_ec(&t, &lab));
            scp_card_transport(c, &tr);
            opt.variant = SCP11_B, opt.kid = 0x13, opt.kvn = 0x02;
            opt.sd_trust = &t, opt.now = now_s(), opt.err = &err;
            CHECK_OK(scp11_channel_open(&ch, &tr, &opt));
            CHECK(ch.s.key_len == 16);
            scp_channel_close(&ch);
            scp_trust_free(&t);
        }
        scp_ec_free(&pub), scp_ec_free(&lab);
    }
    /* DELETE KEY 13/02 over 11a; gone afterwards */
    CHECK_OK(open11(c, &ch, dir, SCP11_A, 0, 0, &o, &err));
    CHECK(send_hex(&ch, "80E4000006D00113D20102", NULL, NULL) == 0x9000);
    CHECK(send_hex(&ch, "80E4000006D00113D20102", NULL, NULL) == 0x6A88);
    scp_channel_close(&ch);
    CHECK(tc_sw(c, "00A4040008A000000151000000") == 0x9000);
    CHECK(tc_sw(c, "00CABF2106A6048302130200") == 0x6A88);

    /* an OCE chain from another CA: PSO refused, then MUTUAL AUTH too */
    oce_make(&other, dir, SCP_EC_P256, 30, now_s() - 3600);
    CHECK_RC(open11(c, &ch, dir, SCP11_A, 0, 0, &other, &err), SCP_E_AUTH);
    CHECK(strstr(err.text, "PSO") != NULL && ch.last_sw == 0x6A80);
    oce_free(&other);
    /* an expired OCE certificate */
    {
        oce old = o;
        CHECK_OK(scp_cert_issue(&o.sk, "Lab OCE old", &o.ca, o.der[0], o.len[0], 0,
                                now_s() - 40 * 86400, 30, 0x4243, old.chain, sizeof(old.chain),
                                &old.lens[0]));
        CHECK_RC(open11(c, &ch, dir, SCP11_A, 0, 0, &old, &err), SCP_E_AUTH);
        CHECK(ch.last_sw == 0x6A80);
        old.ca.pkey = old.sk.pkey = NULL; /* borrowed from o */
    }
    /* a chained PSO cut short (first piece, then MUTUAL AUTHENTICATE) */
    {
        uint8_t piece[300], cmd[200];
        size_t off = 0, n, m;
        tc_resp rr;
        scp11_session h = { 0 };
        scp11_params p = { SCP11_A, 0x11, 0x03, 16, 8, 0 };
        scp_ec_key pk = { 0 };
        scp_cert leaf;
        CHECK(o.lens[0] > 255);
        CHECK_OK(scp11_pso_next(o.chain, o.lens[0], &off, 0x03, 0x10, 0, 0, piece,
                                sizeof(piece), &n));
        CHECK(piece[0] == 0x90);
        CHECK_OK(tc_xfer(c, piece, n, &rr));
        CHECK(rr.sw == 0x9000);
        CHECK_OK(tc_xfer_hex(c, "00CABF2106A6048302110300", &rr));
        CHECK_OK(scp_cert_parse(&leaf, rr.data, rr.len));
        CHECK_OK(scp_ec_dup(&pk, &leaf.ec, 0));
        scp_cert_free(&leaf);
        CHECK_OK(scp11_host_begin(&h, &p, &pk, &o.sk, NULL));
        CHECK_OK(scp11_host_auth_command(&h, 0x80, cmd, sizeof(cmd), &m));
        CHECK_OK(tc_xfer(c, cmd, m, &rr));
        CHECK(rr.sw == 0x6982);
        /* the rest of the chain now arrives alone: not a certificate */
        CHECK_OK(scp11_pso_next(o.chain, o.lens[0], &off, 0x03, 0x10, 0, 0, piece,
                                sizeof(piece), &n));
        CHECK_OK(tc_xfer(c, piece, n, &rr));
        CHECK(rr.sw == 0x6A80);
        scp11_end(&h);
        scp_ec_free(&pk);
    }
    /* an allow-list without the OCE's serial (42 42): PSO refused; an
     * empty list removes it again */
    CHECK_OK(open11(c, &ch, dir, SCP11_A, 0, 0, &o, &err));
    CHECK(send_hex(&ch, "80E290000CA60483021003700493020101", NULL, NULL) == 0x9000);
    scp_channel_close(&ch);
    CHECK_RC(open11(c, &ch, dir, SCP11_A, 0, 0, &o, &err), SCP_E_AUTH);
    {
        scp03_session s = { 0 };
        scp03_keys k;
        tc_factory(&k);
        CHECK(tc_open(c, &s, &k, 0, 0x33, 8) == 0x9000);
        CHECK(tc_send_hex(c, &s, "80E290000CA60483021003700493024242", &r) == 0x9000);
        scp03_end(&s);
    }
    CHECK_OK(open11(c, &ch, dir, SCP11_A, 0, 0, &o, &err));
    CHECK(send_hex(&ch, "80E2900008A604830210037000", NULL, NULL) == 0x9000);
    scp_channel_close(&ch);
    /* a failed state write leaves the card as it was */
    CHECK_OK(open11(c, &ch, dir, SCP11_A, 0, 0, &o, &err));
    c->fail_writes = 1;
    CHECK(send_hex(&ch, "80F100130405F00100", NULL, NULL) == 0);
    scp_channel_close(&ch);
    c = reopen(c, dir);
    CHECK(tc_sw(c, "00CABF2106A6048302130500") == 0x6A88);
    CHECK_OK(open11(c, &ch, dir, SCP11_A, 0, 0, &o, &err));
    CHECK(send_hex(&ch, "80F100130405F00100", NULL, NULL) == 0x9000);
    scp_channel_close(&ch);
    scp_card_close(c);
    oce_free(&o);
    tc_rmdir(dir);
}

/* SCP03 provisions SCP11 (as yubikit's tests do): the OCE CA at 10/03
 * and an SD private key at 11/03 by PUT KEY on a gp23 card. */
static void provision_over_scp03(int curve)
{
    char dir[256];
    scp_card *c;
    scp03_session s = { 0 };
    scp03_keys k;
    tc_resp r;
    oce o;
    scp_ec_key sd = { 0 };
    uint8_t cmd[300], pt[SCP_EC_MAX_POINT], d[SCP_EC_MAX_FIELD], iv[16] = { 0 };
    size_t pl, dl, n;
    scp_aes dek;

    tc_tmpdir(dir, sizeof(dir));
    c = make(dir, sizeof(dir), "gp23", NULL);
    oce_make(&o, dir, curve, 30, now_s() - 3600);
    tc_factory(&k);
    CHECK(tc_open(c, &s, &k, 0, 0x33, 16) == 0x9000);
    /* CA public key: 80 D8 00 10 | 03 B0 L 04XY F0 01 curve 00 */
    CHECK_OK(scp_ec_point(&o.ca, pt, sizeof(pt), &pl));
    n = 0;
    cmd[n++] = 0x80, cmd[n++] = 0xD8, cmd[n++] = 0x00, cmd[n++] = 0x10, cmd[n++] = 0;
    cmd[n++] = 0x03, cmd[n++] = 0xB0, cmd[n++] = (uint8_t)pl;
    memcpy(cmd + n, pt, pl), n += pl;
    cmd[n++] = 0xF0, cmd[n++] = 0x01, cmd[n++] = scp_ec_curve_to_gp(curve), cmd[n++] = 0x00;
    cmd[4] = (uint8_t)(n - 5);
    CHECK(tc_send(c, &s, cmd, n, &r) == 0x9000 && r.len == 1 && r.data[0] == 0x03);
    /* SD private key: 80 D8 00 11 | 03 B1 L AES-CBC(DEK, 0, d) F0 01 curve 00 */
    CHECK_OK(scp_ec_generate(&sd, curve));
    CHECK_OK(scp_ec_private(&sd, d, sizeof(d), &dl));
    memset(&dek, 0, sizeof(dek));
    CHECK_OK(scp_aes_init(&dek, k.dek, k.key_len));
    CHECK_OK(scp_aes_cbc_encrypt(&dek, iv, d, dl, d));
    scp_aes_clear(&dek);
    n = 0;
    cmd[n++] = 0x80, cmd[n++] = 0xD8, cmd[n++] = 0x00, cmd[n++] = 0x11, cmd[n++] = 0;
    cmd[n++] = 0x03, cmd[n++] = 0xB1, cmd[n++] = (uint8_t)dl;
    memcpy(cmd + n, d, dl), n += dl;
    cmd[n++] = 0xF0, cmd[n++] = 0x01, cmd[n++] = scp_ec_curve_to_gp(curve), cmd[n++] = 0x00;
    cmd[4] = (uint8_t)(n - 5);
    CHECK(tc_send(c, &s, cmd, n, &r) == 0x9000 && r.len == 1);
    /* an SD key given as a public key, and a CA key given as a private
     * one, are refused */
    cmd[3] = 0x10;
    CHECK(tc_send(c, &s, cmd, n, &r) == 0x6A80);
    cmd[3] = 0x13, cmd[6] = 0xB0;
    CHECK(tc_send(c, &s, cmd, n, &r) == 0x6A80);
    scp03_end(&s);
    /* 11a with them: the SD certificate is the host's business here, so
     * the handshake runs with the engine and the card directly */
    {
        scp11_session h = { 0 };
        scp11_params p = { SCP11_A, 0x11, 0x03, 16, 8, 0 };
        uint8_t piece[300], am[200];
        size_t off = 0, m;
        scp_ec_key pk = { 0 };
        CHECK_OK(scp_ec_dup(&pk, &sd, 0));
        while (off < o.lens[0]) {
            CHECK_OK(scp11_pso_next(o.chain, o.lens[0], &off, 0x03, 0x10, 0, 0, piece,
                                    sizeof(piece), &m));
            CHECK_OK(tc_xfer(c, piece, m, &r));
            CHECK(r.sw == 0x9000);
        }
        CHECK_OK(scp11_host_begin(&h, &p, &pk, &o.sk, NULL));
        CHECK_OK(scp11_host_auth_command(&h, 0x80, am, sizeof(am), &m));
        CHECK_OK(tc_xfer(c, am, m, &r));
        CHECK(r.sw == 0x9000);
        CHECK_OK(scp11_host_auth_response(&h, r.data, r.len));
        CHECK(scp11_is_open(&h));
        scp11_end(&h);
        scp_ec_free(&pk);
    }
    scp_ec_free(&sd);
    scp_card_close(c);
    oce_free(&o);
    tc_rmdir(dir);
}

/* yubikit's reset: 65 failed tries on every key (INS 88 for 13, 82 for
 * 11/15, 2A for the CA at 10), stopping at 6983; once every SCP11 key is
 * blocked the card makes a new SCP11b key 13/01 and forgets the rest. */
static void reset_by_blocking(void)
{
    static const uint8_t keys[4][3] = { { 0x88, 0x01, 0x13 }, { 0x82, 0x03, 0x11 },
                                        { 0x82, 0x03, 0x15 }, { 0x2A, 0x03, 0x10 } };
    char dir[256];
    scp_card *c;
    scp_channel ch;
    scp_cert_error err;
    tc_resp r;
    uint8_t before[1100];
    size_t before_len;
    oce o;

    tc_tmpdir(dir, sizeof(dir));
    oce_make(&o, dir, SCP_EC_P256, 30, now_s() - 3600);
    c = make(dir, sizeof(dir), "yubikey", o.ca_pem_path);
    CHECK_OK(tc_xfer_hex(c, "00CABF2106A6048302130100", &r));
    memcpy(before, r.data, r.len);
    before_len = r.len;
    for (int k = 0; k < 4; k++) {
        uint8_t cmd[13] = { 0x80, keys[k][0], keys[k][1], keys[k][2], 8, 0, 0, 0, 0, 0, 0, 0, 0 };
        int tries = 0;
        uint16_t sw = 0;
        while (tries < 65) {
            tries++;
            CHECK_OK(tc_xfer(c, cmd, sizeof(cmd), &r));
            sw = r.sw;
            if (sw == 0x6983 || sw == 0x6982)
                break;
        }
        CHECK(sw == 0x6A80 || sw == 0x6983);
        if (k < 3) { /* still blocked, not yet reset */
            CHECK_OK(tc_xfer(c, cmd, sizeof(cmd), &r));
            CHECK(r.sw == 0x6983);
        }
    }
    /* the last key blocked: factory state of the SCP11 part */
    CHECK(tc_sw(c, "00CABF2106A6048302110300") == 0x6A88);
    CHECK_OK(tc_xfer_hex(c, "00CABF2106A6048302130100", &r));
    CHECK(r.sw == 0x9000 && (r.len != before_len || memcmp(r.data, before, r.len) != 0));
    c = reopen(c, dir);
    CHECK_OK(open11(c, &ch, dir, SCP11_B, 0, 0, NULL, &err));
    scp_channel_close(&ch);
    scp_card_close(c);
    oce_free(&o);
    tc_rmdir(dir);
}

static void corrupt_state(void)
{
    char dir[256], path[300], err[256] = "";
    scp_card *c;
    FILE *f;
    tc_tmpdir(dir, sizeof(dir));
    c = make(dir, sizeof(dir), "yubikey", NULL);
    scp_card_close(c);
    snprintf(path, sizeof(path), "%s/scp11.state", dir);
    f = fopen(path, "r+b");
    CHECK(f != NULL);
    if (f != NULL) {
        fseek(f, 40, SEEK_SET);
        fputc(0x5A, f);
        fclose(f);
    }
    c = NULL;
    CHECK_RC(scp_card_open(dir, &c, err, sizeof(err)), SCP_E_CORRUPT);
    CHECK(strstr(err, "SCP11") != NULL && c == NULL);
    tc_rmdir(dir);
}


/* GET DATA E0 lists the SCP11 keys beside the SCP03 set, as a YubiKey
 * 5.7.4 does (facts: E0 18 C0 06 10 03 B0 40 F0 00 C0 06 13 01 B1 20 F0 00
 * C0 06 11 01 B1 20 F0 00): key id, KVN, B1 field length (SD key pair) or
 * B0 twice the field length (OCE CA public key), F0 curve reference; CLA
 * 00 gets the bare C0 entries yubikit parses. A key generated on `curve`
 * shows up with its length and curve, and leaves with DELETE KEY. */
static void key_info(int curve)
{
    char dir[256];
    scp_card *c;
    scp_channel ch;
    scp_cert_error err;
    uint8_t resp[2048], want[128];
    size_t rl, wl = 0;
    oce o;
    tc_resp r;
    static const uint8_t head[] = {
        0xC0, 0x04, 0x01, 0xFF, 0x88, 0x10, 0xC0, 0x04, 0x02, 0xFF, 0x88, 0x10,
        0xC0, 0x04, 0x03, 0xFF, 0x88, 0x10,                         /* SCP03 KVN FF */
        0xC0, 0x06, 0x13, 0x01, 0xB1, 0x20, 0xF0, 0x00,             /* SCP11b 13/01 */
        0xC0, 0x06, 0x10, 0x03, 0xB0, 0x40, 0xF0, 0x00,             /* OCE CA 10/03 */
        0xC0, 0x06, 0x11, 0x03, 0xB1, 0x20, 0xF0, 0x00,             /* SCP11a 11/03 */
        0xC0, 0x06, 0x15, 0x03, 0xB1, 0x20, 0xF0, 0x00 };           /* SCP11c 15/03 */
    uint8_t fl = (uint8_t)scp_ec_field_len(curve);
    const uint8_t gen[8] = { 0xC0, 0x06, 0x13, 0x02, 0xB1, fl, 0xF0, scp_ec_curve_to_gp(curve) };

    tc_tmpdir(dir, sizeof(dir));
    oce_make(&o, dir, SCP_EC_P256, 30, now_s() - 3600);
    c = make(dir, sizeof(dir), "yubikey", o.ca_pem_path);
    CHECK(tc_sw(c, "00A4040008A000000151000000") == 0x9000);
    want[wl++] = 0xE0, want[wl++] = sizeof(head);
    memcpy(want + wl, head, sizeof(head)), wl += sizeof(head);
    CHECK_OK(tc_xfer_hex(c, "80CA00E000", &r));
    CHECK(r.sw == 0x9000);
    CHECK_MEM(r.data, r.len, want, wl);
    CHECK_OK(tc_xfer_hex(c, "00CA00E000", &r));
    CHECK_MEM(r.data, r.len, head, sizeof(head));
    /* a new SD key 13/02 on `curve` (GENERATE KEY over 11a) */
    CHECK_OK(open11(c, &ch, dir, SCP11_A, 0, 0, &o, &err));
    uint8_t raw[9] = { 0x80, 0xF1, 0x00, 0x13, 0x04, 0x02, 0xF0, 0x01, scp_ec_curve_to_gp(curve) };
    uint16_t sw = 0;
    CHECK_OK(scp_channel_send(&ch, raw, sizeof(raw), resp, sizeof(resp), &rl, &sw));
    CHECK(sw == 0x9000);
    /* inside the session too (wrapped), with the new key last */
    CHECK(send_hex(&ch, "80CA00E000", resp, &rl) == 0x9000);
    want[1] = (uint8_t)(sizeof(head) + sizeof(gen));
    memcpy(want + wl, gen, sizeof(gen));
    CHECK_MEM(resp, rl, want, wl + sizeof(gen));
    /* DELETE KEY 13/02: gone from the template again */
    CHECK(send_hex(&ch, "80E4000006D00113D20102", NULL, NULL) == 0x9000);
    CHECK(send_hex(&ch, "80CA00E000", resp, &rl) == 0x9000);
    want[1] = sizeof(head);
    CHECK_MEM(resp, rl, want, wl);
    scp_channel_close(&ch);
    /* after a restart (the keys are in DIR/scp11.state) */
    c = reopen(c, dir);
    CHECK(tc_sw(c, "00A4040008A000000151000000") == 0x9000);
    CHECK_OK(tc_xfer_hex(c, "80CA00E000", &r));
    CHECK_MEM(r.data, r.len, want, wl);
    scp_card_close(c);
    oce_free(&o);
    tc_rmdir(dir);
}

/* S16 (the Samsung S16 vector's mode): a card whose i parameter has b1
 * (card init scp_i 61) answers SCP11 a, b and c with 16-byte C-MACs and
 * R-MACs, checked on the wire; the twins: a host in S8 against it, a
 * host in S16 against an S8 card, a flipped C-MAC byte at S16. */
static void s16(void)
{
    char dir[256], dir8[256];
    scp_card *c, *c8;
    scp_channel ch;
    scp_cert_error err;
    uint8_t wire[64], resp[512], plain[512];
    size_t wl, rl, pl;
    oce o, o8;
    static const uint8_t get_e0[] = { 0x80, 0xCA, 0x00, 0xE0, 0x00 };
    scp_card_init_opts io = { .profile = "yubikey", .scp_i = 0x61, .kvn = -1 };

    tc_tmpdir(dir, sizeof(dir));
    oce_make(&o, dir, SCP_EC_P256, 30, now_s() - 3600);
    io.oce_ca = o.ca_pem_path;
    CHECK_OK(scp_card_init(dir, &io));
    c = NULL;
    CHECK_OK(scp_card_open(dir, &c, NULL, 0));
    open_mac_len = 16;
    for (int v = SCP11_A; v <= SCP11_C; v++) {
        CHECK_OK(open11(c, &ch, dir, v, 0, 0, v == SCP11_B ? NULL : &o, &err));
        CHECK(ch.s.chal_len == 16);
        /* 84 CA 00 E0 10 <C-MAC, 16 bytes> 00 (an empty body is not encrypted) */
        CHECK_OK(scp03_host_wrap(&ch.s, get_e0, sizeof(get_e0), wire, sizeof(wire), &wl));
        CHECK(wl == 4 + 1 + 16 + 1 && wire[4] == 16);
        CHECK_OK(scp_transmit(ch.t, wire, wl, resp, sizeof(resp), &rl));
        CHECK(rl >= 2 + 16 && resp[rl - 2] == 0x90 && (rl - 2 - 16) % 16 == 0);
        CHECK_OK(scp03_host_unwrap(&ch.s, resp, rl, plain, sizeof(plain), &pl));
        CHECK(pl > 2 && plain[0] == 0xE0 && plain[pl - 2] == 0x90);
        /* the next command with one C-MAC byte flipped: 6982, session over */
        CHECK_OK(scp03_host_wrap(&ch.s, get_e0, sizeof(get_e0), wire, sizeof(wire), &wl));
        wire[wl - 2] ^= 0x01;
        CHECK_OK(scp_transmit(ch.t, wire, wl, resp, sizeof(resp), &rl));
        CHECK(rl == 2 && resp[0] == 0x69 && resp[1] == 0x82);
        scp_channel_close(&ch);
    }
    /* a host in S8 against the S16 card: the first command fails */
    open_mac_len = 8;
    CHECK_OK(open11(c, &ch, dir, SCP11_B, 0, 0, NULL, &err));
    CHECK(send_hex(&ch, "80CA00E000", resp, &rl) != 0x9000);
    scp_channel_close(&ch);
    /* a host in S16 against an S8 card */
    tc_tmpdir(dir8, sizeof(dir8));
    oce_make(&o8, dir8, SCP_EC_P256, 30, now_s() - 3600);
    c8 = make(dir8, sizeof(dir8), "yubikey", o8.ca_pem_path);
    open_mac_len = 16;
    CHECK_OK(open11(c8, &ch, dir8, SCP11_A, 0, 0, &o8, &err));
    CHECK(send_hex(&ch, "80CA00E000", resp, &rl) != 0x9000);
    scp_channel_close(&ch);
    open_mac_len = 0;
    CHECK_OK(open11(c8, &ch, dir8, SCP11_A, 0, 0, &o8, &err));
    CHECK(send_hex(&ch, "80CA00E000", resp, &rl) == 0x9000);
    scp_channel_close(&ch);
    scp_card_close(c8);
    scp_card_close(c);
    oce_free(&o8);
    oce_free(&o);
    tc_rmdir(dir8);
    tc_rmdir(dir);
}

int main(void)
{
    s16();
    key_info(SCP_EC_P256);
    key_info(SCP_EC_P384);
    key_info(SCP_EC_BP256);
    yubikey_11b();
    with_oce(SCP_EC_P256);
    with_oce(SCP_EC_P384);
    with_oce(SCP_EC_BP256);
    provision_over_scp03(SCP_EC_P256);
    provision_over_scp03(SCP_EC_P384);
    provision_over_scp03(SCP_EC_BP256);
    corrupt_state();
    reset_by_blocking();
    return test_done("test_scp11_card");
}
