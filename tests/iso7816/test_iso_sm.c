/* ISO/IEC 7816-4 secure messaging (src/iso7816/sm.c, bac.c): the ICAO
 * Doc 9303 Part 11 BAC worked example byte for byte in both roles, an
 * AES case, tampered twins, and host against card on random commands. */
#include <stdlib.h>

#include "scpkit/apdu.h"
#include "scpkit/buf.h"
#include "scpkit/iso7816sm.h"
#include "test.h"

static size_t hx(const char *h, uint8_t *out, size_t cap)
{
    size_t n = 0;
    if (scp_hex_decode(h, out, cap, &n) != SCP_OK) {
        fprintf(stderr, "bad hex in test: %s\n", h);
        exit(2);
    }
    return n;
}

#define HX(name, hex)                                                                              \
    uint8_t name[512];                                                                             \
    size_t name##_len = hx(hex, name, sizeof(name));                                               \
    (void)name##_len

/* ICAO Doc 9303 Part 11 (8th edition, 2021), appendix D "Worked example:
 * Basic Access Control": D.2 key derivation from the MRZ, D.3
 * authentication and session keys, D.4 secure messaging (SELECT EF.COM,
 * READ BINARY of the first 4 bytes, READ BINARY of the remaining 18). */
static const char *MRZ_INFO = "L898902C<369080619406236";
static const char *K_ENC = "AB94FDECF2674FDFB9B391F85D7F76F2";
static const char *K_MAC = "7962D9ECE03D1ACD4C76089DCE131543";
static const char *RND_IC = "4608F91988702212";
static const char *RND_IFD = "781723860C06C226";
static const char *K_IFD = "0B795240CB7049B01C19B33E32804F0B";
static const char *E_IFD = "72C29C2371CC9BDB65B779B8E8D37B29ECC154AA56A8799FAE2F498F76ED92F2";
static const char *M_IFD = "5F1448EEA8AD90A7";
static const char *RESP_IC = "46B9342A41396CD7386BF5803104D7CEDC122B9132139BAF2EEDC94EE178534F"
                             "2F2D235D074D7449";
static const char *K_IC = "0B4F80323EB3191CB04970CB4052790B";
static const char *KS_ENC = "979EC13B1CBFE9DCD01AB0FED307EAE5";
static const char *KS_MAC = "F1CB1F1FB5ADF208806B89DC579DC1F8";
static const char *SSC0 = "887022120C06C226";

static const struct {
    const char *plain_cmd, *prot_cmd, *prot_resp, *plain_resp;
} D4[] = {
    { "00A4020C02011E", "0CA4020C158709016375432908C044F68E08BF8B92D635FF24F800",
      "990290008E08FA855A5D4C50A8ED9000", "9000" },
    { "00B0000004", "0CB000000D9701048E08ED6705417E96BA5500",
      "8709019FF0EC34F9922651990290008E08AD55CC17140B2DED9000", "60145F019000" },
    { "00B0000412", "0CB000040D9701128E082EA28A70F3C7B53500",
      "871901FB9235F4E4037F2327DCC8964F1F9B8C30F42C8E2FFF224A990290008E08C8B2787EAEA07D749000",
      "04303130365F36063034303030305C0261759000" },
};

static void test_bac_keys(void)
{
    uint8_t kenc[16], kmac[16], ks_enc[16], ks_mac[16], ssc[8], mac[8], zero[8] = { 0 };
    uint8_t buf[64], pad[48];
    size_t n;
    scp_des3 d_enc, d_mac;
    HX(want_kenc, K_ENC);
    HX(want_kmac, K_MAC);
    HX(rnd_ic, RND_IC);
    HX(rnd_ifd, RND_IFD);
    HX(k_ifd, K_IFD);
    HX(e_ifd, E_IFD);
    HX(m_ifd, M_IFD);
    HX(resp, RESP_IC);
    HX(k_ic, K_IC);
    HX(want_ksenc, KS_ENC);
    HX(want_ksmac, KS_MAC);
    HX(want_ssc, SSC0);

    /* D.2: K_seed from the MRZ, K_enc and K_mac (with DES parity) */
    CHECK_OK(scp_bac_keys_from_mrz(MRZ_INFO, kenc, kmac));
    CHECK_MEM(kenc, 16, want_kenc, want_kenc_len);
    CHECK_MEM(kmac, 16, want_kmac, want_kmac_len);
    /* tampered twin: one MRZ character off */
    CHECK_OK(scp_bac_keys_from_mrz("L898902C<369080619406237", buf, buf + 16));
    CHECK(memcmp(buf, kenc, 16) != 0);

    /* D.3: S = RND.IFD | RND.IC | K.IFD, E_IFD = 3DES-CBC(K_enc, S), M_IFD */
    memcpy(buf, rnd_ifd, 8);
    memcpy(buf + 8, rnd_ic, 8);
    memcpy(buf + 16, k_ifd, 16);
    CHECK_OK(scp_des3_init(&d_enc, kenc, 16));
    CHECK_OK(scp_des3_init(&d_mac, kmac, 16));
    CHECK_OK(scp_des3_cbc_encrypt(&d_enc, zero, buf, 32, buf + 32));
    CHECK_MEM(buf + 32, 32, e_ifd, e_ifd_len);
    CHECK_OK(scp_pad_m2(e_ifd, 32, 8, pad, sizeof(pad), &n));
    CHECK_OK(scp_des_retail_mac(&d_mac, zero, pad, n, mac));
    CHECK_MEM(mac, 8, m_ifd, m_ifd_len);
    /* the chip's answer: MAC checks, R = RND.IC | RND.IFD | K.IC */
    CHECK_OK(scp_pad_m2(resp, 32, 8, pad, sizeof(pad), &n));
    CHECK_OK(scp_des_retail_mac(&d_mac, zero, pad, n, mac));
    CHECK_MEM(mac, 8, resp + 32, 8);
    CHECK_OK(scp_des3_cbc_decrypt(&d_enc, zero, resp, 32, buf));
    CHECK_MEM(buf, 8, rnd_ic, 8);
    CHECK_MEM(buf + 8, 8, rnd_ifd, 8);
    CHECK_MEM(buf + 16, 16, k_ic, k_ic_len);
    /* session keys and SSC */
    CHECK_OK(scp_bac_session_keys(k_ifd, k_ic, rnd_ic, rnd_ifd, ks_enc, ks_mac, ssc));
    CHECK_MEM(ks_enc, 16, want_ksenc, 16);
    CHECK_MEM(ks_mac, 16, want_ksmac, 16);
    CHECK_MEM(ssc, 8, want_ssc, 8);
    scp_des3_clear(&d_enc);
    scp_des3_clear(&d_mac);
}

/* The BAC helpers on appendix D.3: the host's EXTERNAL AUTHENTICATE data
 * and the chip's answer byte for byte, the session both derive, and the
 * tampered twins (a flipped answer, a wrong challenge). */
static void test_bac_auth(void)
{
    char mrz[25];
    uint8_t kenc[16], kmac[16], out[40], bad[40];
    scp_bac b;
    scp_sm host, card;
    HX(rnd_ic, RND_IC);
    HX(rnd_ifd, RND_IFD);
    HX(k_ifd, K_IFD);
    HX(e_ifd, E_IFD);
    HX(m_ifd, M_IFD);
    HX(resp, RESP_IC);
    HX(k_ic, K_IC);
    HX(ssc, SSC0);
    CHECK_OK(scp_bac_mrz_info("L898902C<", "690806", "940623", mrz));
    CHECK(strcmp(mrz, MRZ_INFO) == 0);
    CHECK_RC(scp_bac_mrz_info("L898902c<", "690806", "940623", mrz), SCP_E_ARG);
    CHECK_OK(scp_bac_keys_from_mrz(mrz, kenc, kmac));
    CHECK_OK(scp_bac_host_auth(&b, kenc, kmac, rnd_ic, rnd_ifd, k_ifd, out));
    CHECK_MEM(out, 32, e_ifd, 32);
    CHECK_MEM(out + 32, 8, m_ifd, 8);
    CHECK_OK(scp_bac_card_auth(kenc, kmac, rnd_ic, k_ic, out, 40, bad, &card));
    CHECK_MEM(bad, 40, resp, 40);
    CHECK_OK(scp_bac_host_finish(&b, resp, &host));
    CHECK_MEM(host.chain.u.icv, 8, ssc, 8);
    CHECK_MEM(card.chain.u.icv, 8, ssc, 8);
    scp_sm_end(&host);
    scp_sm_end(&card);
    /* tampered twins */
    CHECK_OK(scp_bac_host_auth(&b, kenc, kmac, rnd_ic, rnd_ifd, k_ifd, out));
    memcpy(bad, resp, 40);
    bad[7] ^= 0x01;
    CHECK_RC(scp_bac_host_finish(&b, bad, &host), SCP_E_CRYPTOGRAM);
    rnd_ic[0] ^= 0x01; /* the chip's challenge was another one */
    CHECK_RC(scp_bac_card_auth(kenc, kmac, rnd_ic, k_ic, out, 40, bad, &card), SCP_E_CRYPTOGRAM);
}

static void bac_pair(scp_sm *host, scp_sm *card)
{
    HX(ks_enc, KS_ENC);
    HX(ks_mac, KS_MAC);
    HX(ssc, SSC0);
    CHECK_OK(scp_sm_init(host, SCP_SM_3DES, SCP_SM_HOST, ks_enc, ks_mac, 16, ssc, 8));
    CHECK_OK(scp_sm_init(card, SCP_SM_3DES, SCP_SM_CARD, ks_enc, ks_mac, 16, ssc, 8));
}

static void test_bac_sm(void)
{
    scp_sm host, card;
    uint8_t out[512];
    size_t n;
    bac_pair(&host, &card);
    for (size_t i = 0; i < sizeof(D4) / sizeof(D4[0]); i++) {
        HX(pc, D4[i].plain_cmd);
        HX(xc, D4[i].prot_cmd);
        HX(xr, D4[i].prot_resp);
        HX(pr, D4[i].plain_resp);
        /* host protects, card unprotects, card protects, host unprotects */
        CHECK_OK(scp_sm_protect_command(&host, pc, pc_len, out, sizeof(out), &n));
        CHECK_MEM(out, n, xc, xc_len);
        CHECK_OK(scp_sm_unprotect_command(&card, xc, xc_len, out, sizeof(out), &n));
        CHECK_MEM(out, n, pc, pc_len);
        CHECK_OK(scp_sm_protect_response(&card, pr, pr_len - 2,
                                         (uint16_t)(pr[pr_len - 2] << 8 | pr[pr_len - 1]), out,
                                         sizeof(out), &n));
        CHECK_MEM(out, n, xr, xr_len);
        CHECK_OK(scp_sm_unprotect_response(&host, xr, xr_len, out, sizeof(out), &n));
        CHECK_MEM(out, n, pr, pr_len);
    }
    /* the SSC went up twice per pair: 887022120C06C226 + 6 */
    HX(ssc_end, "887022120C06C22C");
    CHECK_MEM(host.chain.u.icv, 8, ssc_end, 8);
    CHECK_MEM(card.chain.u.icv, 8, ssc_end, 8);
    scp_sm_end(&host);
    scp_sm_end(&card);
}

/* Tampered twins: every byte of each protected command and response of
 * D.4, flipped, is refused and ends the session. */
static void test_bac_tampered(void)
{
    scp_sm host, card;
    uint8_t out[512], bad[512];
    size_t n;
    for (size_t i = 0; i < sizeof(D4) / sizeof(D4[0]); i++) {
        HX(pc, D4[i].plain_cmd);
        HX(xc, D4[i].prot_cmd);
        HX(xr, D4[i].prot_resp);
        /* every byte but Le' (00): the wanted length is the MACed DO97 */
        for (size_t pos = 0; pos + 1 < xc_len; pos++) {
            bac_pair(&host, &card);
            for (size_t k = 0; k < i; k++) { /* bring the SSC to this command */
                HX(pk, D4[k].plain_cmd);
                CHECK_OK(scp_sm_protect_command(&host, pk, pk_len, out, sizeof(out), &n));
                CHECK_OK(scp_sm_unprotect_command(&card, out, n, bad, sizeof(bad), &n));
                CHECK_OK(scp_sm_protect_response(&card, NULL, 0, 0x9000, out, sizeof(out), &n));
                CHECK_OK(scp_sm_unprotect_response(&host, out, n, bad, sizeof(bad), &n));
            }
            memcpy(bad, xc, xc_len);
            bad[pos] ^= 0x10;
            int rc = scp_sm_unprotect_command(&card, bad, xc_len, out, sizeof(out), &n);
            CHECK(rc != SCP_OK);
            CHECK(!scp_sm_is_open(&card));
            CHECK_RC(scp_sm_unprotect_command(&card, xc, xc_len, out, sizeof(out), &n),
                     SCP_E_DEAD);
            scp_sm_end(&host);
            scp_sm_end(&card);
        }
        (void)pc_len;
        for (size_t pos = 0; pos < xr_len - 2; pos++) {
            bac_pair(&host, &card);
            for (size_t k = 0; k <= i; k++) {
                HX(pk, D4[k].plain_cmd);
                HX(rk, D4[k].prot_resp);
                CHECK_OK(scp_sm_protect_command(&host, pk, pk_len, out, sizeof(out), &n));
                if (k < i)
                    CHECK_OK(scp_sm_unprotect_response(&host, rk, rk_len, out, sizeof(out), &n));
            }
            memcpy(bad, xr, xr_len);
            bad[pos] ^= 0x02;
            CHECK(scp_sm_unprotect_response(&host, bad, xr_len, out, sizeof(out), &n) != SCP_OK);
            CHECK(!scp_sm_is_open(&host));
            scp_sm_end(&host);
            scp_sm_end(&card);
        }
    }
    /* replay: the first protected command sent twice; the second is
     * refused (the SSC moved on) */
    {
        HX(xc, D4[0].prot_cmd);
        bac_pair(&host, &card);
        CHECK_OK(scp_sm_unprotect_command(&card, xc, xc_len, out, sizeof(out), &n));
        CHECK_OK(scp_sm_protect_response(&card, NULL, 0, 0x9000, out, sizeof(out), &n));
        CHECK_RC(scp_sm_unprotect_command(&card, xc, xc_len, out, sizeof(out), &n), SCP_E_MAC);
        /* a plain command in the session ends it */
        bac_pair(&host, &card);
        HX(pc, D4[0].plain_cmd);
        CHECK_RC(scp_sm_unprotect_command(&card, pc, pc_len, out, sizeof(out), &n), SCP_E_MAC);
        CHECK(!scp_sm_is_open(&card));
        /* a bare SM error status from the card: passed out, session over */
        CHECK_OK(scp_sm_protect_command(&host, pc, pc_len, out, sizeof(out), &n));
        uint8_t e[2] = { 0x69, 0x88 };
        CHECK_OK(scp_sm_unprotect_response(&host, e, 2, out, sizeof(out), &n));
        CHECK_MEM(out, n, e, 2);
        CHECK(!scp_sm_is_open(&host));
        CHECK_RC(scp_sm_protect_command(&host, pc, pc_len, out, sizeof(out), &n), SCP_E_DEAD);
        scp_sm_end(&host);
        scp_sm_end(&card);
    }
}

/* AES-128 secure messaging (PACE session keys) from the public test suite
 * of gmrtd (github.com/gmrtd/gmrtd, iso7816/secure_messaging_test.go):
 * MSE:Set AT protected at SSC ..BA; a 224-byte response at SSC ..0B. */
static void test_aes_vectors(void)
{
    scp_sm host;
    uint8_t out[600], ssc[16] = { 0 };
    size_t n;
    HX(ke, "cc86415f2ed7e8fd663b754265695ae1");
    HX(km, "581e84b8ee06c4d3eee30461498d7fb3");
    HX(cmd, "002241a40f800a04007f000702020302028401c3");
    HX(want, "0c2241a41d871101980953d37f67558690045d78a853b18a8e08929767a2cef172e200");
    ssc[15] = 0xba;
    CHECK_OK(scp_sm_init(&host, SCP_SM_AES, SCP_SM_HOST, ke, km, 16, ssc, 16));
    CHECK_OK(scp_sm_protect_command(&host, cmd, cmd_len, out, sizeof(out), &n));
    CHECK_MEM(out, n, want, want_len);
    CHECK(host.chain.u.icv[15] == 0xbb);
    scp_sm_end(&host);

    HX(ke2, "a8e85e938514ec67ae33cda3d43d3c48");
    HX(km2, "27f1adeb705a049a305b0c619b14b9b3");
    static const char *resp =
        "8781e1012fabf9e0655d7e987fd28a8aeb19c9cadd990d49399799ed1fe465bcea56da9ba3024291d40d23d7"
        "f1e00485d71faddc6d8c1382e8028dd22efdcc72ed47663d56d20dd6c4b867956fe0507313083ae7fc54fb46"
        "133f184febbe13ad6fd3e2616a1f4a829e75ada1a0e443ca738288f6014be8a7745d8259b089e6bee35bcc4b"
        "f5b63db5fdd84244f67eca099213b70a861b4487225aa68af684278fceb4cb809de42be3ee95b0e0d72bcdb0"
        "ed47cb56efc264e04a9397a90e81ad1d81efa2d14b2ca8ec7bd997f4b1c1fd344d5dee8589c38b227ca4cb35"
        "810060a7cc76403e990290008e083eb47ef4fa82afc99000";
    static const char *plain =
        "a729901d1a71874700133107ec53306404307bc382c63d8c150c3c72080ace05afa0c2bea28e4fb227871391"
        "65efba91f90f8aa5814a503ad4eb04a8c7dd22ce2826043004a8c7dd22ce28268b39b55416f0447c2fb77de1"
        "07dcd2a62e880ea53eeb62d57cb4390295dbc9943ab78696fa504c110461041d1c64f068cf45ffa2a63a81b7"
        "c13f6b8847a3e77ef14fe3db7fcafe0cbd10e8e826e03436d646aaef87b2e247d4af1e8abe1d7520f9c2a45c"
        "b1eb8e95cfd55262b70b29feec5864e19c054ff99129280e4646217791811142820341263c53150231008cb9"
        "1e82a39000";
    HX(r, resp);
    HX(p, plain);
    for (int tamper = 0; tamper < 2; tamper++) {
        memset(ssc, 0, 16);
        ssc[15] = 0x0b;
        CHECK_OK(scp_sm_init(&host, SCP_SM_AES, SCP_SM_HOST, ke2, km2, 16, ssc, 16));
        host.resp_pending = 1; /* as after the command this answers */
        if (tamper)
            r[40] ^= 0x01;
        int rc = scp_sm_unprotect_response(&host, r, r_len, out, sizeof(out), &n);
        if (tamper) {
            CHECK_RC(rc, SCP_E_MAC);
        } else {
            CHECK_OK(rc);
            CHECK_MEM(out, n, p, p_len);
            CHECK(host.chain.u.icv[15] == 0x0c);
        }
        scp_sm_end(&host);
    }
}

/* Host against card: random commands (both families, all AES key
 * lengths, even/odd INS, no data up to extended lengths, Le absent, short,
 * 256, extended), random responses; every exchange compared end to end,
 * and one tampered byte per exchange on a copy of the session. */
static void test_property(void)
{
    static uint8_t cmd[70000], prot[70100], back[70100], resp[70100];
    for (int it = 0; it < 400; it++) {
        scp_sm host, card;
        uint8_t ke[32], km[32], ssc[16];
        int family = (it % 2) ? SCP_SM_AES : SCP_SM_3DES;
        size_t kl = family == SCP_SM_3DES ? 16 : (size_t)(16 + 8 * (int)test_rand_below(3));
        size_t bl = family == SCP_SM_3DES ? 8 : 16, n, m;
        test_rand_bytes(ke, kl);
        test_rand_bytes(km, kl);
        test_rand_bytes(ssc, bl);
        if (it % 7 == 0)
            memset(ssc, 0xFF, bl); /* the counter wraps */
        CHECK_OK(scp_sm_init(&host, family, SCP_SM_HOST, ke, km, kl, ssc, bl));
        CHECK_OK(scp_sm_init(&card, family, SCP_SM_CARD, ke, km, kl, ssc, bl));
        for (int k = 0; k < 4; k++) {
            scp_apdu a = { 0 };
            size_t dl = test_rand_below(4) == 0 ? 0
                        : (it % 13 == 0)        ? 256 + test_rand_below(3000)
                                                : test_rand_below(230);
            uint8_t data[4000];
            test_rand_bytes(data, dl);
            a.cla = (uint8_t)(test_rand_below(2) ? 0x00 : 0x80) | (uint8_t)test_rand_below(4);
            a.ins = (uint8_t)test_rand_below(256);
            a.p1 = (uint8_t)test_rand();
            a.p2 = (uint8_t)test_rand();
            a.lc = dl;
            a.data = dl ? data : NULL;
            switch (test_rand_below(4)) {
            case 0: break;
            case 1: a.has_le = 1; a.le = 1 + test_rand_below(255); break;
            case 2: a.has_le = 1; a.le = 256; break;
            default: a.has_le = 1; a.le = 257 + test_rand_below(65280); break;
            }
            CHECK_OK(scp_apdu_encode(&a, cmd, sizeof(cmd), &n));
            CHECK_OK(scp_sm_protect_command(&host, cmd, n, prot, sizeof(prot), &m));
            CHECK((prot[0] & 0x0C) == 0x0C);
            size_t plen;
            CHECK_OK(scp_sm_unprotect_command(&card, prot, m, back, sizeof(back), &plen));
            scp_apdu b;
            CHECK_OK(scp_apdu_parse(back, plen, &b));
            CHECK(b.cla == a.cla && b.ins == a.ins && b.p1 == a.p1 && b.p2 == a.p2);
            CHECK(b.lc == a.lc && (dl == 0 || memcmp(b.data, data, dl) == 0));
            CHECK(b.has_le == a.has_le && (!a.has_le || b.le == a.le));
            size_t rl = test_rand_below(3) == 0 ? 0 : test_rand_below(300);
            uint16_t sw = test_rand_below(2) ? 0x9000 : (uint16_t)(0x6200 + test_rand_below(0x900));
            test_rand_bytes(resp, rl);
            CHECK_OK(scp_sm_protect_response(&card, resp, rl, sw, prot, sizeof(prot), &m));
            if (k == 3) {
                /* tampered twin of the last response */
                prot[test_rand_below(m - 2)] ^= (uint8_t)(1u << test_rand_below(8));
                CHECK(scp_sm_unprotect_response(&host, prot, m, back, sizeof(back), &n) !=
                      SCP_OK);
                CHECK(!scp_sm_is_open(&host));
                break;
            }
            CHECK_OK(scp_sm_unprotect_response(&host, prot, m, back, sizeof(back), &n));
            CHECK(n == rl + 2 && memcmp(back, resp, rl) == 0);
            CHECK(back[rl] == (uint8_t)(sw >> 8) && back[rl + 1] == (uint8_t)sw);
        }
        scp_sm_end(&host);
        scp_sm_end(&card);
    }
}

static void test_bounds(void)
{
    scp_sm host, card;
    uint8_t out[64], small[8];
    size_t n;
    bac_pair(&host, &card);
    HX(pc, D4[0].plain_cmd);
    CHECK_RC(scp_sm_protect_command(&host, pc, pc_len, small, sizeof(small), &n),
             SCP_E_BUFFER_TOO_SMALL);
    CHECK(scp_sm_is_open(&host)); /* a short buffer is not a session failure */
    CHECK_RC(scp_sm_unprotect_response(&host, out, 2, out, sizeof(out), &n), SCP_E_STATE);
    CHECK_RC(scp_sm_protect_response(&card, NULL, 0, 0x9000, out, sizeof(out), &n), SCP_E_STATE);
    /* objects out of order, a truncated length, an 8E of the wrong size */
    static const char *bad[] = {
        "0CA4020C0D8E08BF8B92D635FF24F887020100",  /* 87 after 8E */
        "0CA4020C0587FF01637500",                  /* length runs past */
        "0CA4020C078E05BF8B92D63500",              /* short MAC */
        "0CA4020C0C870201638E08BF8B92D635FF24F800", /* ciphertext not whole blocks */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        HX(b, bad[i]);
        bac_pair(&host, &card);
        CHECK(scp_sm_unprotect_command(&card, b, b_len, out, sizeof(out), &n) < 0);
        CHECK(!scp_sm_is_open(&card));
    }
    scp_sm_end(&host);
    scp_sm_end(&card);
}

int main(int argc, char **argv)
{
    test_seed(argc > 1 ? strtoull(argv[1], NULL, 0) : 0x7816);
    test_bac_keys();
    test_bac_auth();
    test_bac_sm();
    test_bac_tampered();
    test_aes_vectors();
    test_property();
    test_bounds();
    return test_done("test_iso_sm");
}
