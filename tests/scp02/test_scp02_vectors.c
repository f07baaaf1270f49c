/* SCP02 (src/scp02/) against public transcripts, byte for byte, in both
 * roles, each with tampered twins:
 *  - pySim, tests/unittests/test_globalplatform.py (osmocom/pysim),
 *    classes SCP02_Auth_Test and SCP02_Test: i with ICV encryption, C-MAC
 *    on the modified APDU, four chained MACed commands;
 *  - kaoh/globalplatform, globalplatform/src/scp02Test.c: i = 15, keys
 *    40..4F, get_status_mac_only (level 01) and install_mac_enc (level 03:
 *    six chained C-MAC + C-DECRYPTION commands). */
#include <stdlib.h>

#include "scpkit/apdu.h"
#include "scpkit/buf.h"
#include "scpkit/scp02.h"
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
    uint8_t name[600];                                                                             \
    size_t name##_len = hx(hex, name, sizeof(name));                                               \
    (void)name##_len

typedef struct transcript {
    const char *name;
    const char *enc, *mac, *dek;
    uint8_t kvn_req, kvn_card, i, level;
    const char *host_chal, *iu_cmd, *iu_resp, *ea_cmd;
    const char *plain[8], *wrapped[8]; /* plain NULL: learnt from the card */
} transcript;

static const transcript T[] = {
    { "pySim SCP02_Test", "100102030405060708090a0b0c0d0e0f", "101102030405060708090a0b0c0d0e0f",
      "102102030405060708090a0b0c0d0e0f", 0x20, 0x70, 0x55, 0x01, "40A62C37FA6304F8",
      "805020000840A62C37FA6304F800", "00000000000000000000700200016B4524ABEE7CF32EA3838BC148F3",
      "8482010010BA6961667737C5BCEBECE14C7D6A4376",
      { "80F22002", "80ca006600", "80F220020a4f0212345c054f9f70c5", "80f28002024f0000" },
      { "84F220020814DB34FA4341DCA8", "84CA00660855ED7C5FF069512B00",
        "84F22002124F0212345C054F9F70C58FC1B380C4228AF8", "84F280020A4F003B95F09317DE6A4E00" } },
    { "kaoh get_status_mac_only", "404142434445464748494A4B4C4D4E4F",
      "404142434445464748494A4B4C4D4E4F", "404142434445464748494A4B4C4D4E4F", 0x00, 0x01, 0x15,
      0x01, "D5AD539A60CA5E72", "8050000008D5AD539A60CA5E7200",
      "000074746E6E6E626262010206 9FAA2A0591E73367DD78794D04315E",
      "84820100107C799B3C771DBAE6BEF49310977617BA",
      { "80F22002024F0000" },
      { "84F220020A4F00BB6E71C0EFCFCF0D00" } },
    { "kaoh install_mac_enc", "404142434445464748494A4B4C4D4E4F",
      "404142434445464748494A4B4C4D4E4F", "404142434445464748494A4B4C4D4E4F", 0x00, 0x01, 0x15,
      0x03, "EBAA9E53C696281B", "8050000008EBAA9E53C696281B00",
      "000074746E6E6E626262010206A15086BBEE58F467149061DA4B6EAE",
      "848203001005814C116071EB67D8BA9D9879454564",
      { "80E400800A4F08D0D1D2D3D4D5010100", "80E40080094F07D0D1D2D3D4D50100", NULL, NULL, NULL,
        NULL },
      { "84E4008018BC146FA0403BE4BAD3BC089E4ABD8674DA7EFEA21047B85800",
        "84E4008018C2748C1669FAFC0E20C5253680388A4A49C9A6038D77B45700",
        "84E60200280839B761AA201C218FD6607C56803CFD2D098CBAA9946976EEFAE3F210038EB4965D6E04EDEF"
        "801700",
        "84E80000F8562EFDC9F22082A5184831F1DA6A0F495C5DF0FD71E8014A2B94EA81069FB630346197CDF1C3"
        "BD9CDBDD9513BFE6FE7992730FCF2089019D1374DA1021BD74E2085B806B8DA57431FF008406E1C695F2E27E"
        "0C2A554E01047B9B36F4058CFC1C2FB8D0A45B01C626DF5CB2509436283BE22B9E7750B3B7F36E29E3C97C69"
        "533B35C2DBEF13904D06E96BEBB6FA38D3E7EB7EB9170F3004824F5A32278AE7CBC3E591BA0C79B090FBD803"
        "8B60AC5F83E4E250B32AD5B92768E775AA974A4FAFC81356FA333D5AB4FAF1A0056E08420AF95D18CA0DF726"
        "BA560C5C340CCA81A1BEA294AAFE3AED250EF6865AA2D3F11D058FDFE5EE7622AE19",
        "84E88001787FFE538F755D612CEE738FA68E177E8E146E66EF2A840387F7086C1CA8659C9F985585E11001A1"
        "2D4940CB3EF200DFEC9EC7FB59CADED4A7F82EDA5BE808552A3CD3B65D41F9F61A23E6FDA2C1BF2493F49299"
        "50FA62030FF023B34398247A2E01BBF949E819B5EEA117DC6E0D91D40D85ABDE0BC2A76D8600",
        "84E60C00300839B761AA201C21EDAE7D003F76B62164B363AF56A2C7FE12AEF9FDC790DFC8FFE6B0346E9B"
        "F02674684247652F109A00" } },
};

static void keys_of(const transcript *t, scp02_keys *k, uint8_t kvn)
{
    hx(t->enc, k->enc, 16);
    hx(t->mac, k->mac, 16);
    hx(t->dek, k->dek, 16);
    k->kvn = kvn;
}

static size_t ncmds(const transcript *t)
{
    size_t n = 0;
    while (n < 8 && t->wrapped[n] != NULL)
        n++;
    return n;
}

/* Card role: answer the IU with the transcript's challenge and counter,
 * accept its EA, unwrap every command (plain commands learnt here when
 * the transcript gives none). */
static void card_side(const transcript *t, uint8_t plain[][300], size_t *plain_len)
{
    scp02_session c = { 0 };
    scp02_keys k;
    scp02_card_params prm = { 0 };
    uint8_t out[300];
    size_t n;
    HX(hc, t->host_chal);
    HX(resp, t->iu_resp);
    HX(ea, t->ea_cmd);
    keys_of(t, &k, t->kvn_card);
    memcpy(prm.kdd, resp, 10);
    prm.i = t->i;
    prm.seq = (uint16_t)(resp[12] << 8 | resp[13]);
    prm.fixed_card_chal = resp + 14;
    CHECK_OK(scp02_card_initialize_update(&c, &prm, &k, hc, 8, out, sizeof(out), &n));
    CHECK_MEM(out, n, resp, resp_len);
    CHECK_OK(scp02_card_external_authenticate(&c, ea, ea_len));
    CHECK(scp02_is_open(&c));
    for (size_t j = 0; j < ncmds(t); j++) {
        HX(w, t->wrapped[j]);
        CHECK_OK(scp02_card_unwrap(&c, w, w_len, plain[j], 300, &plain_len[j]));
        if (t->plain[j] != NULL) {
            HX(p, t->plain[j]);
            CHECK_MEM(plain[j], plain_len[j], p, p_len);
        }
    }
    scp02_end(&c);
}

static void host_side(const transcript *t, uint8_t plain[][300], const size_t *plain_len)
{
    scp02_session h = { 0 };
    scp02_keys k;
    uint8_t out[300];
    size_t n;
    HX(hc, t->host_chal);
    HX(iu, t->iu_cmd);
    HX(resp, t->iu_resp);
    HX(ea, t->ea_cmd);
    keys_of(t, &k, t->kvn_req);
    CHECK_OK(scp02_host_begin(&h, &k, t->i, hc));
    CHECK_OK(scp02_host_initialize_update(&h, 0x80, out, sizeof(out), &n));
    CHECK_MEM(out, n, iu, iu_len);
    CHECK_OK(scp02_host_iu_response(&h, resp, resp_len, NULL, 0));
    CHECK_OK(scp02_host_external_authenticate(&h, t->level, out, sizeof(out), &n));
    CHECK_MEM(out, n, ea, ea_len);
    CHECK_OK(scp02_host_ea_result(&h, 0x9000));
    for (size_t j = 0; j < ncmds(t); j++) {
        HX(w, t->wrapped[j]);
        CHECK_OK(scp02_host_wrap(&h, plain[j], plain_len[j], out, sizeof(out), &n));
        CHECK_MEM(out, n, w, w_len);
        uint8_t sw[2] = { 0x90, 0x00 }, r[8];
        CHECK_OK(scp02_host_unwrap(&h, sw, 2, r, sizeof(r), &n));
    }
    scp02_end(&h);
}

static void tampered(const transcript *t)
{
    scp02_session h = { 0 }, c = { 0 };
    scp02_keys k;
    scp02_card_params prm = { 0 };
    uint8_t out[300];
    size_t n;
    HX(hc, t->host_chal);
    HX(resp, t->iu_resp);
    HX(ea, t->ea_cmd);
    HX(w0, t->wrapped[0]);

    /* a card cryptogram one bit off: the host refuses it and the session
     * is over */
    keys_of(t, &k, t->kvn_req);
    resp[resp_len - 1] ^= 0x01;
    CHECK_OK(scp02_host_begin(&h, &k, t->i, hc));
    CHECK_OK(scp02_host_initialize_update(&h, 0x80, out, sizeof(out), &n));
    CHECK_RC(scp02_host_iu_response(&h, resp, resp_len, NULL, 0), SCP_E_CRYPTOGRAM);
    CHECK_RC(scp02_host_external_authenticate(&h, t->level, out, sizeof(out), &n), SCP_E_STATE);
    resp[resp_len - 1] ^= 0x01;
    /* a wrong static key: the same */
    k.enc[3] ^= 0x20;
    CHECK_OK(scp02_host_begin(&h, &k, t->i, hc));
    CHECK_OK(scp02_host_initialize_update(&h, 0x80, out, sizeof(out), &n));
    CHECK_RC(scp02_host_iu_response(&h, resp, resp_len, NULL, 0), SCP_E_CRYPTOGRAM);

    /* every byte of the EA data, flipped, is refused by the card; and
     * every byte of the first wrapped command */
    keys_of(t, &k, t->kvn_card);
    memcpy(prm.kdd, resp, 10);
    prm.i = t->i;
    prm.seq = (uint16_t)(resp[12] << 8 | resp[13]);
    prm.fixed_card_chal = resp + 14;
    for (size_t pos = 5; pos < ea_len; pos++) {
        CHECK_OK(scp02_card_initialize_update(&c, &prm, &k, hc, 8, out, sizeof(out), &n));
        ea[pos] ^= 0x04;
        int rc = scp02_card_external_authenticate(&c, ea, ea_len);
        CHECK(rc == SCP_E_MAC || rc == SCP_E_CRYPTOGRAM);
        CHECK(!scp02_is_open(&c));
        ea[pos] ^= 0x04;
    }
    for (size_t pos = 0; pos < w0_len; pos++) {
        if (pos == 4 || (pos == w0_len - 1 && w0_len > 5 + (size_t)w0[4]))
            continue; /* Lc (a length error, tested below) and Le (not MACed) */
        CHECK_OK(scp02_card_initialize_update(&c, &prm, &k, hc, 8, out, sizeof(out), &n));
        CHECK_OK(scp02_card_external_authenticate(&c, ea, ea_len));
        w0[pos] ^= (pos == 0) ? 0x80 : 0x01;
        int rc = scp02_card_unwrap(&c, w0, w0_len, out, sizeof(out), &n);
        CHECK(rc == SCP_E_MAC || rc == SCP_E_PADDING);
        CHECK(!scp02_is_open(&c));
        CHECK_RC(scp02_card_unwrap(&c, w0, w0_len, out, sizeof(out), &n), SCP_E_DEAD);
        w0[pos] ^= (pos == 0) ? 0x80 : 0x01;
    }
    /* the EA at a level the card refuses: a new IU is needed */
    CHECK_OK(scp02_card_initialize_update(&c, &prm, &k, hc, 8, out, sizeof(out), &n));
    ea[2] = 0x33;
    CHECK_RC(scp02_card_external_authenticate(&c, ea, ea_len), SCP_E_LEVEL);
    CHECK(!scp02_is_open(&c));
    scp02_end(&c);
    scp02_end(&h);
}

int main(void)
{
    for (size_t i = 0; i < sizeof(T) / sizeof(T[0]); i++) {
        static uint8_t plain[8][300];
        size_t plain_len[8] = { 0 };
        int before = test_failures;
        card_side(&T[i], plain, plain_len);
        host_side(&T[i], plain, plain_len);
        tampered(&T[i]);
        if (test_failures != before)
            fprintf(stderr, "  in transcript: %s\n", T[i].name);
    }
    return test_done("test_scp02_vectors");
}
