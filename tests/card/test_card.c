/* The virtual card through the engine's host role, in process: SELECT and
 * GET DATA, the handshake at every level for S8/S16, random and
 * pseudo-random challenges, AES-128/192/256; PUT KEY / DELETE KEY with the
 * YubiKey rules; retry-limit deletion; lifecycle; the store application's
 * channel scoping; bad APDUs. Every happy path has a refused twin. */
#include <string.h>
#include "card_util.h"
#include "scpkit/buf.h"
#include "scpkit/tlv.h"
#include "test.h"

static scp_card *make(char *dir, size_t dsz, const char *profile, int i, uint8_t lc)
{
    scp_card_init_opts o = { .profile = profile, .scp_i = i, .kvn = -1, .lifecycle = lc };
    scp_card *c = NULL;
    char err[256] = "";
    tc_tmpdir(dir, dsz);
    CHECK_OK(scp_card_init(dir, &o));
    CHECK_OK(scp_card_open(dir, &c, err, sizeof(err)));
    return c;
}

static void drop(scp_card *c, const char *dir)
{
    scp_card_close(c);
    tc_rmdir(dir);
}

static void test_select_get_data(void)
{
    char dir[256];
    scp_card *c = make(dir, sizeof(dir), NULL, -1, 0);
    tc_resp r;
    scp_tlv t;
    static const uint32_t path[] = { 0x66, 0x73, 0x64 };
    static const uint8_t scp_oid[] = { 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xFC,
                                       0x6B, 0x04, 0x03, 0x60 };
    /* GP 2.2.1: 1.2.840.114283.2.2.2.1, one GlobalPlatformPro's
     * GPData.oid2version knows (it throws on others) */
    static const uint8_t ver_oid[] = { 0x06, 0x0A, 0x2A, 0x86, 0x48, 0x86, 0xFC,
                                       0x6B, 0x02, 0x02, 0x02, 0x01 };
    static const uint32_t vpath[] = { 0x66, 0x73, 0x60 };
    uint8_t atr[40];
    size_t atr_len = scp_card_atr(c, atr, sizeof(atr)), k0;

    /* ISO 7816-3: TS 3B, T0 = 80 | K, TD1 80, TD2 01, K historical bytes,
     * TCK; ISO 7816-4 8.1.1: the historical bytes start with category 80
     * and are compact-TLV objects to the last byte */
    CHECK(atr_len > 5 && atr[0] == 0x3B && (atr[1] & 0xF0) == 0x80);
    CHECK(atr_len == 4u + (atr[1] & 0x0Fu) + 1 && atr[2] == 0x80 && atr[3] == 0x01);
    CHECK(atr[4] == 0x80);
    for (k0 = 5; k0 < atr_len - 1; k0 += 1 + (atr[k0] & 0x0F))
        ;
    CHECK(k0 == atr_len - 1); /* the compact TLVs end exactly before TCK */
    {
        uint8_t tck = 0;
        for (size_t j = 1; j < atr_len; j++)
            tck ^= atr[j];
        CHECK(tck == 0);
    }
    CHECK_OK(tc_xfer_hex(c, "00A4040008A000000151000000", &r));
    CHECK(r.sw == 0x9000 && r.len > 10 && r.data[0] == 0x6F);
    CHECK_OK(tc_xfer_hex(c, "00A4040005A000000151", &r)); /* partial AID (GPShell) */
    CHECK(r.sw == 0x9000);
    CHECK(tc_sw(c, "00A4040005A000000999") == 0x6A82);
    CHECK(tc_sw(c, "00A4040C08A000000151000000") == 0x9000);
    /* CPLC with CLA 00 and 80, with and without Le (seed 002) */
    const char *cplc[] = { "00CA9F7F", "00CA9F7F00", "80CA9F7F00" };
    for (int k = 0; k < 3; k++) {
        CHECK_OK(tc_xfer_hex(c, cplc[k], &r));
        CHECK(r.sw == 0x9000 && r.len == 45 && r.data[0] == 0x9F && r.data[1] == 0x7F &&
              r.data[2] == 0x2A && r.data[3] == 0x40 && r.data[4] == 0x90);
    }
    CHECK_OK(tc_xfer_hex(c, "80CA006600", &r));
    CHECK(r.sw == 0x9000);
    CHECK(scp_tlv_find_path(r.data, r.len, path, 3, &t) == 1);
    CHECK_MEM(t.val, t.len, scp_oid, sizeof(scp_oid));
    CHECK(scp_tlv_find_path(r.data, r.len, vpath, 3, &t) == 1);
    CHECK_MEM(t.val, t.len, ver_oid, sizeof(ver_oid));
    /* yubikey profile, CLA 00: the bare 73 template yubikit unpacks
     * (securitydomain.py get_card_recognition_data: Tlv.unpack(0x73, ...)) */
    CHECK_OK(tc_xfer_hex(c, "00CA006600", &r));
    CHECK(r.sw == 0x9000 && r.len > 2 && r.data[0] == 0x73 && r.data[1] == r.len - 2);
    CHECK(scp_tlv_find_path(r.data, r.len, path + 1, 2, &t) == 1);
    CHECK_MEM(t.val, t.len, scp_oid, sizeof(scp_oid));
    CHECK_OK(tc_xfer_hex(c, "80CA00E000", &r));
    /* the SCP03 set, then the SCP11b key 13/01 as a YubiKey 5.7 lists it */
    static const uint8_t ki[] = { 0xE0, 0x1A, 0xC0, 0x04, 0x01, 0xFF, 0x88, 0x10, 0xC0, 0x04,
                                  0x02, 0xFF, 0x88, 0x10, 0xC0, 0x04, 0x03, 0xFF, 0x88, 0x10,
                                  0xC0, 0x06, 0x13, 0x01, 0xB1, 0x20, 0xF0, 0x00 };
    CHECK_MEM(r.data, r.len, ki, sizeof(ki));
    /* CLA 00: the C0 entries one by one (get_key_information) */
    CHECK_OK(tc_xfer_hex(c, "00CA00E000", &r));
    CHECK_MEM(r.data, r.len, ki + 2, sizeof(ki) - 2);
    CHECK(tc_sw(c, "80CA004200") == 0x9000 && tc_sw(c, "80CA004500") == 0x9000);
    /* random challenges: no sequence counter to show */
    CHECK(tc_sw(c, "80CA00C100") == 0x6A88);
    CHECK(tc_sw(c, "80CA00FE00") == 0x6A88);
    CHECK(tc_sw(c, "80CA9F7F0100") == 0x6700);
    /* CPLC dates (OS release, IC fabrication, packaging, embedding, pre-
     * perso, perso) are BCD YDDD with DDD 001..366, as GlobalPlatformPro's
     * CPLC.toRelativeDate parses them */
    CHECK_OK(tc_xfer_hex(c, "80CA9F7F00", &r));
    static const int at[] = { 6, 10, 20, 24, 28, 36 };
    for (int k = 0; k < 6; k++) {
        const uint8_t *d = r.data + 3 + at[k];
        int ok = 1, ddd;
        for (int n = 0; n < 4; n++)
            ok &= ((d[n / 2] >> (n % 2 ? 0 : 4)) & 0x0F) <= 9;
        ddd = (d[0] & 0x0F) * 100 + (d[1] >> 4) * 10 + (d[1] & 0x0F);
        CHECK(ok && ddd >= 1 && ddd <= 366);
    }
    drop(c, dir);
}

/* gp23: the GP forms for CLA 00 and 80 alike; a real counter under C1. */
static void test_get_data_gp23(void)
{
    char dir[256];
    scp_card *c = make(dir, sizeof(dir), "gp23", -1, 0);
    scp03_keys f;
    scp03_session s;
    uint8_t iu[64];
    size_t n = 0;
    tc_resp r;
    tc_factory(&f);
    CHECK_OK(tc_xfer_hex(c, "00CA006600", &r));
    CHECK(r.sw == 0x9000 && r.data[0] == 0x66 && r.data[2] == 0x73);
    CHECK_OK(tc_xfer_hex(c, "00CA00E000", &r));
    CHECK(r.sw == 0x9000 && r.data[0] == 0xE0);
    CHECK_OK(tc_xfer_hex(c, "80CA00C100", &r));
    CHECK(r.sw == 0x9000 && r.len == 5 && r.data[0] == 0xC1 && r.data[1] == 3 &&
          r.data[4] == 0);
    CHECK(tc_open_iu(c, &s, &f, 0, 0x33, 16, iu, &n) == 0x9000 && n == 48);
    CHECK(tc_send_hex(c, &s, "80CA00C100", &r) == 0x9000 && r.len == 5);
    scp03_end(&s);
    CHECK_MEM(r.data + 2, 3, iu + 45, 3); /* the counter the IU used */
    /* GET STATUS: the ISD claims only the privileges it has (GPC table
     * 6-1): security domain, card lock, terminate, reset; global lock and
     * registry; nothing for card content management it does not do */
    CHECK(tc_open(c, &s, &f, 0, 0x03, 16) == 0x9000);
    CHECK(tc_send_hex(c, &s, "80F28002024F0000", &r) == 0x9000);
    static const uint8_t priv[] = { 0xC5, 0x03, 0x9C, 0x0C, 0x00 };
    CHECK(r.len > 5);
    CHECK_MEM(r.data + r.len - 5, 5, priv, sizeof(priv));
    CHECK(tc_send_hex(c, &s, "80E60C0000", &r) == 0x6D00); /* no INSTALL */
    CHECK(tc_send_hex(c, &s, "80E8800000", &r) == 0x6D00); /* no LOAD */
    scp03_end(&s);
    drop(c, dir);
}

static void test_bad_apdus(void)
{
    char dir[256];
    scp_card *c = make(dir, sizeof(dir), "gp23", -1, 0);
    tc_resp r;
    CHECK(tc_sw(c, "00") == 0x6700);
    CHECK(tc_sw(c, "00A404") == 0x6700);
    CHECK(tc_sw(c, "00A4040008A0000001") == 0x6700); /* Lc past the end */
    CHECK(tc_sw(c, "FFCA9F7F00") == 0x6E00);
    CHECK(tc_sw(c, "40CA9F7F00") == 0x6E00);
    CHECK(tc_sw(c, "01CA9F7F00") == 0x6881);
    CHECK(tc_sw(c, "10CA9F7F00") == 0x6884);
    CHECK(tc_sw(c, "00B0000000") == 0x6D00);
    CHECK(tc_sw(c, "00A4000000") == 0x6A86);
    CHECK(tc_sw(c, "00A4040100") == 0x6A86);
    CHECK(tc_sw(c, "80D8018103010203") == 0x6982); /* PUT KEY without a channel */
    CHECK(tc_sw(c, "80E40000 03 D201FF") == 0x6982);
    CHECK(tc_sw(c, "80F28002024F0000") == 0x6982);
    CHECK(tc_sw(c, "80F0800F") == 0x6982);
    CHECK(tc_sw(c, "00D8018103010203") == 0x6E00);
    CHECK(tc_sw(c, "8482330010 00112233445566778899AABBCCDDEEFF") == 0x6985); /* EA, no IU */
    CHECK(tc_sw(c, "84CA9F7F00") == 0x6982); /* secure messaging without a session */
    CHECK(tc_sw(c, "8050000108 0011223344556677") == 0x6A86);
    CHECK(tc_sw(c, "8050000005 0011223344") == 0x6700);
    /* a challenge of the wrong length is 6700, S8 on an S16 card included
     * (GlobalPlatformPro's S8/S16 detection depends on it) */
    CHECK(tc_sw(c, "8050000008 0011223344556677") == 0x6700);
    CHECK(tc_sw(c, "8050000008 001122334455667700") == 0x6700); /* with Le */
    CHECK(tc_sw(c, "805000000C 00112233445566778899AABB") == 0x6700);
    CHECK(tc_sw(c, "8050070010 00112233445566778899AABBCCDDEEFF") == 0x6A88);
    CHECK(tc_sw(c, "0050000010 00112233445566778899AABBCCDDEEFF") == 0x6E00);
    /* case 2 extended (Le 0000 = 65536) is fine; an Lc with no data is not */
    CHECK(tc_xfer_hex(c, "00CA9F7F000000", &r) == 0 && r.sw == 0x9000 && r.len == 45);
    CHECK(tc_sw(c, "00CA9F7F02AA") == 0x6700);
    drop(c, dir);
}

static uint16_t ea_with_level(scp_card *c, const scp03_keys *k, size_t chal, uint8_t level)
{
    scp03_session s;
    uint8_t b[64];
    size_t n = 0;
    tc_resp r;
    memset(&s, 0, sizeof(s));
    if (scp03_host_begin(&s, k, NULL, chal) != 0 ||
        scp03_host_initialize_update(&s, 0x80, b, sizeof(b), &n) != 0 ||
        tc_xfer(c, b, n, &r) != 0 || scp03_host_iu_response(&s, r.data, r.len) != 0 ||
        scp03_host_external_authenticate(&s, 0x01, b, sizeof(b), &n) != 0)
        return 0;
    scp03_end(&s);
    b[2] = level;
    return tc_xfer(c, b, n, &r) == 0 ? r.sw : 0;
}

/* The whole matrix: i x key length x level. */
static void test_levels(void)
{
    static const int is[] = { 0x00, 0x01, 0x10, 0x11, 0x20, 0x21, 0x60, 0x61, 0x70, 0x71 };
    static const uint8_t levels[] = { 0x00, 0x01, 0x03, 0x11, 0x13, 0x33 };
    static const size_t lens[] = { 16, 24, 32 };
    for (size_t a = 0; a < sizeof(is) / sizeof(is[0]); a++) {
        for (size_t b = 0; b < 3; b++) {
            char dir[256];
            uint8_t key[32];
            scp_card_init_opts o = { .profile = "gp23", .scp_i = is[a], .kvn = 0x30 };
            scp_card *c = NULL;
            size_t chal = (is[a] & 1) ? 16 : 8;
            test_rand_bytes(key, lens[b]);
            o.key = key;
            o.key_len = lens[b];
            tc_tmpdir(dir, sizeof(dir));
            CHECK_OK(scp_card_init(dir, &o));
            CHECK_OK(scp_card_open(dir, &c, NULL, 0));
            if (c == NULL)
                continue;
            for (size_t l = 0; l < sizeof(levels); l++) {
                scp03_keys k;
                scp03_session s;
                tc_resp r;
                uint16_t sw;
                int allowed = scp03_level_allowed((uint8_t)is[a], levels[l]);
                tc_keys(&k, key, lens[b], 0x30);
                if (!allowed) {
                    /* the host engine will not ask; hand the card an EA
                     * whose P1 was changed to the refused level */
                    CHECK(ea_with_level(c, &k, chal, levels[l]) == 0x6A86);
                    continue;
                }
                sw = tc_open(c, &s, &k, 0x30, levels[l], chal);
                CHECK(sw == 0x9000);
                if (sw != 0x9000)
                    continue;
                CHECK(tc_send_hex(c, &s, "80CA9F7F00", &r) == 0x9000 && r.len == 45);
                CHECK(tc_send_hex(c, &s, "80CA00C100", &r) ==
                      ((is[a] & 0x10) ? 0x9000 : 0x6A88)); /* a counter only if used */
                CHECK(tc_send_hex(c, &s, "80F28002024F0000", &r) == 0x9000 &&
                      r.data[0] == 0xE3);
                CHECK(tc_send_hex(c, &s, "80F24002024F0000", &r) == 0x9000);
                CHECK(tc_send_hex(c, &s, "80F22002024F0000", &r) == 0x6A88);
                scp03_end(&s);
            }
            /* wrong challenge mode for this card */
            {
                scp03_keys k;
                scp03_session s;
                tc_keys(&k, key, lens[b], 0x30);
                CHECK(tc_open(c, &s, &k, 0, 0x01, chal == 8 ? 16 : 8) == 0x6700);
                scp03_end(&s);
            }
            scp_card_close(c);
            tc_rmdir(dir);
        }
    }
}

static void test_yubikey_profile(void)
{
    char dir[256];
    scp_card *c = make(dir, sizeof(dir), "yubikey", -1, 0);
    scp03_keys f, k;
    scp03_session s;
    uint8_t key24[24] = { 1 };
    tc_factory(&f);
    CHECK(tc_open(c, &s, &f, 0, 0x03, 8) == 0x6A86); /* level 33 only */
    CHECK(tc_open(c, &s, &f, 0, 0x33, 8) == 0x9000);
    tc_keys(&k, key24, 24, 0x01);
    CHECK(tc_put_key(c, &s, &f, &k, 0) == 0x6A80); /* AES-128 only */
    scp03_end(&s);
    drop(c, dir);
}

static void test_put_delete(void)
{
    char dir[256];
    scp_card *c = make(dir, sizeof(dir), "gp23", -1, 0);
    scp03_keys f, k1, k2, k3, k4, bad;
    scp03_session s;
    uint8_t key[32];
    tc_resp r;

    char tpath[300], line[600], khex[65];
    FILE *tf;
    tc_factory(&f);
    test_rand_bytes(key, 32);
    tc_keys(&k1, key, 16, 0x01);
    /* the trace never shows key material: wire or plain PUT KEY */
    snprintf(tpath, sizeof(tpath), "%s/trace.txt", dir);
    tf = fopen(tpath, "w+");
    scp_card_set_trace(c, tf);
    tc_keys(&k2, key, 24, 0x02);
    tc_keys(&k3, key, 32, 0x03);
    tc_keys(&k4, key + 8, 16, 0x04);
    CHECK(tc_open(c, &s, &f, 0xFF, 0x01, 16) == 0x9000);
    /* level 01 is enough for key management; level 00 is not (below) */
    CHECK(tc_put_key(c, &s, &f, &k1, 0) == 0x9000);
    scp03_end(&s);
    scp_card_set_trace(c, NULL);
    CHECK_OK(scp_hex_encode(key, 16, khex, sizeof(khex)));
    rewind(tf);
    int redacted = 0;
    while (fgets(line, sizeof(line), tf) != NULL) {
        CHECK(strstr(line, khex) == NULL);
        redacted += strstr(line, "80D8") != NULL && strstr(line, "<redacted>") != NULL;
    }
    CHECK(redacted == 1);
    fclose(tf);
    /* gp23: the initial set stays (only a YubiKey drops it for the first
     * new one) */
    CHECK(tc_open(c, &s, &f, 0xFF, 0x33, 16) == 0x9000);
    scp03_end(&s);
    CHECK(tc_open(c, &s, &k1, 0x01, 0x33, 16) == 0x9000);
    CHECK(tc_put_key(c, &s, &k1, &k2, 0) == 0x9000);
    CHECK(tc_put_key(c, &s, &k1, &k3, 0) == 0x6A84); /* key-set limit 3 */
    CHECK(tc_put_key(c, &s, &k1, &k2, 0) == 0x6A80); /* KVN in use */
    CHECK(tc_put_key(c, &s, &k1, &k4, 0x09) == 0x6A88); /* replace unknown */
    /* a KCV that does not match, and a DEK that is not the session's */
    bad = k4;
    CHECK(tc_put_key(c, &s, &k2, &bad, 0x02) == 0x6A80);
    /* replace set 02 by set 04 in one write */
    CHECK(tc_put_key(c, &s, &k1, &k4, 0x02) == 0x9000);
    CHECK(tc_send_hex(c, &s, "80CA00E000", &r) == 0x9000 && r.len == 2 + 9 * 6);
    CHECK(tc_delete_key(c, &s, 0x04, 0) == 0x9000);
    CHECK(tc_delete_key(c, &s, 0x04, 0) == 0x6A88);
    CHECK(tc_delete_key(c, &s, 0xFF, 0) == 0x9000); /* the initial set, on purpose */
    CHECK(tc_delete_key(c, &s, 0x01, 0) == 0x6985); /* the last one needs P2 b1 */
    CHECK(tc_delete_key(c, &s, 0x01, 1) == 0x9000);
    scp03_end(&s);
    CHECK(tc_open(c, &s, &f, 0xFF, 0x33, 16) == 0x9000); /* factory set restored */
    scp03_end(&s);
    /* level 00: authenticated, but unprotected commands manage no keys */
    CHECK(tc_open(c, &s, &f, 0xFF, 0x00, 16) == 0x9000);
    CHECK(tc_put_key(c, &s, &f, &k1, 0) == 0x6982);
    scp03_end(&s);
    drop(c, dir);
}

/* n handshakes with keys k whose EXTERNAL AUTHENTICATE has one bit
 * flipped at byte `at` (from the end when negative): each must get 6300. */
static void fail_ea(scp_card *c, const scp03_keys *k, int n, int at)
{
    for (int t = 0; t < n; t++) {
        scp03_session s;
        uint8_t b[64];
        size_t len = 0;
        tc_resp r;
        memset(&s, 0, sizeof(s));
        CHECK_OK(scp03_host_begin(&s, k, NULL, 8));
        CHECK_OK(scp03_host_initialize_update(&s, 0x80, b, sizeof(b), &len));
        CHECK_OK(tc_xfer(c, b, len, &r));
        CHECK_OK(scp03_host_iu_response(&s, r.data, r.len));
        CHECK_OK(scp03_host_external_authenticate(&s, 0x33, b, sizeof(b), &len));
        b[at < 0 ? (int)len + at : at] ^= 0x01;
        CHECK_OK(tc_xfer(c, b, len, &r));
        CHECK(r.sw == 0x6300);
        scp03_end(&s);
    }
}

static void test_retry_limit(void)
{
    char dir[256];
    scp_card *c = make(dir, sizeof(dir), "gp23", 0x70, 0);
    scp03_keys f, k1, k2;
    scp03_session s;
    uint8_t key[16];
    char err[200];

    tc_factory(&f);
    test_rand_bytes(key, 16);
    tc_keys(&k1, key, 16, 0x01);
    key[0] ^= 1;
    tc_keys(&k2, key, 16, 0x02);
    CHECK(tc_open(c, &s, &f, 0, 0x33, 8) == 0x9000);
    CHECK(tc_put_key(c, &s, &f, &k1, 0) == 0x9000);
    CHECK(tc_put_key(c, &s, &f, &k2, 0) == 0x9000);
    scp03_end(&s);
    /* the host cannot verify the card's cryptogram with wrong keys; make
     * it send a bad EXTERNAL AUTHENTICATE with the right keys instead:
     * first a C-MAC that no longer verifies */
    fail_ea(c, &k2, 31, -1);
    /* the count survives a reopen; a success resets it... */
    scp_card_close(c);
    CHECK_OK(scp_card_open(dir, &c, err, sizeof(err)));
    CHECK(tc_open(c, &s, &k2, 0x02, 0x33, 8) == 0x9000);
    scp03_end(&s);
    /* ...so 31 more failures still leave it, and the 32nd deletes it (a
     * wrong host cryptogram this time) */
    fail_ea(c, &k2, 32, 6);
    CHECK(tc_open(c, &s, &k2, 0x02, 0x33, 8) == 0x6A88);
    CHECK(tc_open(c, &s, &k1, 0x01, 0x33, 8) == 0x9000); /* the other set lives */
    scp03_end(&s);
    /* retry out the last set: the factory set comes back */
    fail_ea(c, &k1, 32, -2);
    CHECK(tc_open(c, &s, &k1, 0x01, 0x33, 8) == 0x6A88);
    CHECK(tc_open(c, &s, &f, 0xFF, 0x33, 8) == 0x9000);
    scp03_end(&s);
    drop(c, dir);
}

/* A host that sends INITIALIZE UPDATE and stops (it could not verify the
 * card cryptogram) still uses a try: 31 abandoned attempts and a success
 * leave the set; 32 abandoned attempts use it up, and the next INITIALIZE
 * UPDATE finds it deleted (the factory set back, as it was the last). */
static void test_abandoned_attempts(void)
{
    char dir[256];
    scp_card *c = make(dir, sizeof(dir), "gp23", 0x70, 0);
    scp03_keys f, k1;
    scp03_session s;
    uint8_t key[16];
    tc_resp r;

    tc_factory(&f);
    test_rand_bytes(key, 16);
    tc_keys(&k1, key, 16, 0x01);
    CHECK(tc_open(c, &s, &f, 0, 0x33, 8) == 0x9000);
    CHECK(tc_put_key(c, &s, &f, &k1, 0) == 0x9000);
    scp03_end(&s);
    for (int round = 0; round < 2; round++) {
        int n_abandon = round == 0 ? 31 : 32;
        for (int n = 0; n < n_abandon; n++) {
            CHECK_OK(tc_xfer_hex(c, "8050010008 0102030405060708 00", &r));
            CHECK(r.sw == 0x9000);
        }
        if (round == 0) { /* the 32nd try succeeds and clears the count */
            CHECK(tc_open(c, &s, &k1, 0x01, 0x33, 8) == 0x9000);
            scp03_end(&s);
        }
    }
    CHECK_OK(tc_xfer_hex(c, "8050010008 0102030405060708 00", &r));
    CHECK(r.sw == 0x6983); /* blocked: the set is gone */
    CHECK(tc_open(c, &s, &k1, 0x01, 0x33, 8) == 0x6A88);
    CHECK(tc_open(c, &s, &f, 0xFF, 0x33, 8) == 0x9000);
    scp03_end(&s);
    drop(c, dir);
}

static void test_lifecycle(void)
{
    char dir[256];
    scp_card *c = make(dir, sizeof(dir), "gp23", -1, 0x01);
    scp03_keys f;
    scp03_session s;
    tc_resp r;
    tc_factory(&f);
    CHECK(tc_open(c, &s, &f, 0, 0x03, 16) == 0x9000);
    CHECK(tc_send_hex(c, &s, "80F2800202 4F00 00", &r) == 0x9000);
    CHECK(r.len > 14 && r.data[r.len - 9] == 0x9F && r.data[r.len - 6] == 0x01);
    /* application lock (GPC 11.10: P1 40, b8 of P2) and unlock */
    CHECK(tc_send_hex(c, &s, "80F0408008F07363706B697401", &r) == 0x9000);
    CHECK(tc_send_hex(c, &s, "80F0408008F07363706B697401", &r) == 0x6985);
    CHECK(tc_send_hex(c, &s, "80F2400202 4F00 00", &r) == 0x9000);
    CHECK(r.len > 10 && r.data[r.len - 6] == 0x83);
    CHECK(tc_send_hex(c, &s, "80F0408008F07363706B697499", &r) == 0x6A88);
    scp03_end(&s);
    CHECK(tc_sw(c, "00A4040008F07363706B697401") == 0x6A82);
    CHECK(tc_sw(c, "00A4040000") == 0x9000);
    CHECK(tc_open(c, &s, &f, 0, 0x03, 16) == 0x9000);
    CHECK(tc_send_hex(c, &s, "80F0400008F07363706B697401", &r) == 0x9000);
    scp03_end(&s);
    CHECK(tc_sw(c, "00A4040008F07363706B697401") == 0x9000);
    CHECK(tc_sw(c, "00A4040000") == 0x9000);
    CHECK(tc_open(c, &s, &f, 0, 0x03, 16) == 0x9000);
    CHECK(tc_send_hex(c, &s, "80F0800F", &r) == 0x6985); /* OP_READY -> SECURED */
    CHECK(tc_send_hex(c, &s, "80F0807F", &r) == 0x6985);
    CHECK(tc_send_hex(c, &s, "80F08007", &r) == 0x9000);
    CHECK(tc_send_hex(c, &s, "80F08001", &r) == 0x6985); /* back: never */
    CHECK(tc_send_hex(c, &s, "80F0800F", &r) == 0x9000);
    CHECK(tc_send_hex(c, &s, "80F0807F", &r) == 0x9000);
    CHECK(tc_send_hex(c, &s, "80F08007", &r) == 0x6985);
    CHECK(tc_send_hex(c, &s, "80F0800F", &r) == 0x9000);
    CHECK(tc_send_hex(c, &s, "80F0807F", &r) == 0x9000);
    CHECK(tc_send_hex(c, &s, "80F0700F", &r) == 0x6A86);
    scp03_end(&s);
    /* CARD_LOCKED: the store application cannot be selected */
    CHECK(tc_sw(c, "00A4040008F07363706B697401") == 0x6A82);
    CHECK(tc_open(c, &s, &f, 0, 0x03, 16) == 0x9000);
    CHECK(tc_send_hex(c, &s, "80F080FF", &r) == 0x9000);
    scp03_end(&s);
    /* TERMINATED, for good, across a reopen: only GET DATA answers */
    scp_card_close(c);
    CHECK_OK(scp_card_open(dir, &c, NULL, 0));
    CHECK(tc_sw(c, "00CA9F7F00") == 0x9000);
    CHECK(tc_sw(c, "00A4040008A000000151000000") == 0x6A82);
    CHECK(tc_sw(c, "8050000010 00112233445566778899AABBCCDDEEFF") == 0x6985);
    drop(c, dir);
}

static void test_store_app(void)
{
    char dir[256];
    scp_card *c = make(dir, sizeof(dir), "gp23", 0x70, 0);
    scp03_keys f;
    scp03_session s;
    tc_resp r;
    static const uint8_t val[] = { 0xCA, 0xFE, 0xBA, 0xBE };
    tc_factory(&f);
    CHECK(tc_sw(c, "00A4040008F07363706B697401") == 0x9000);
    CHECK(tc_sw(c, "00CA010100") == 0x6982);
    CHECK(tc_sw(c, "00DA010104CAFEBABE") == 0x6982);
    /* a channel opened on the ISD does not reach the store */
    CHECK(tc_sw(c, "00A4040000") == 0x9000);
    CHECK(tc_open(c, &s, &f, 0, 0x33, 8) == 0x9000);
    CHECK(tc_send_hex(c, &s, "00A4040008F07363706B697401", &r) == 0x9000);
    CHECK(tc_send_hex(c, &s, "00CA010100", &r) == 0x6982); /* ended by the SELECT */
    CHECK(tc_sw(c, "00CA010100") == 0x6982);
    scp03_end(&s);
    /* a channel opened while the store is selected */
    CHECK(tc_open(c, &s, &f, 0, 0x13, 8) == 0x9000);
    CHECK(tc_send_hex(c, &s, "00DA010104CAFEBABE", &r) == 0x9000);
    CHECK(tc_send_hex(c, &s, "00CA010100", &r) == 0x9000);
    CHECK_MEM(r.data, r.len, val, sizeof(val));
    CHECK(tc_send_hex(c, &s, "00CA010200", &r) == 0x6A88);
    CHECK(tc_send_hex(c, &s, "00B0000000", &r) == 0x6D00);
    /* a plain command inside the session ends it */
    CHECK(tc_sw(c, "00CA010100") == 0x6982);
    CHECK(tc_send_hex(c, &s, "00CA010100", &r) == 0x6982);
    CHECK(tc_sw(c, "00CA010100") == 0x6982);
    scp03_end(&s);
    /* the object survived; the ISD key commands do not exist here */
    scp_card_close(c);
    CHECK_OK(scp_card_open(dir, &c, NULL, 0));
    CHECK(tc_sw(c, "00A4040008F07363706B697401") == 0x9000);
    CHECK(tc_open(c, &s, &f, 0, 0x01, 8) == 0x9000);
    CHECK(tc_send_hex(c, &s, "00CA010100", &r) == 0x9000);
    CHECK_MEM(r.data, r.len, val, sizeof(val));
    CHECK(tc_send_hex(c, &s, "80D8018103010203", &r) == 0x6D00);
    CHECK(tc_send_hex(c, &s, "00DA010100", &r) == 0x9000); /* delete */
    CHECK(tc_send_hex(c, &s, "00CA010100", &r) == 0x6A88);
    scp03_end(&s);
    drop(c, dir);
}

/* P1 of PUT KEY is the whole KVN: FF (the factory set) and KVNs above 7F
 * can be replaced, as on a YubiKey (KVN 1..254). */
static void test_put_key_kvn_range(void)
{
    char dir[256];
    scp_card *c = make(dir, sizeof(dir), "gp23", -1, 0);
    scp03_keys f, k1, k2;
    scp03_session s;
    uint8_t key[16] = { 0xC0 };
    tc_factory(&f);
    tc_keys(&k1, key, 16, 0xC0);
    key[1] = 1;
    tc_keys(&k2, key, 16, 0xFE);
    CHECK(tc_open(c, &s, &f, 0, 0x33, 16) == 0x9000);
    CHECK(tc_put_key(c, &s, &f, &k1, 0xFF) == 0x9000);
    CHECK(tc_put_key(c, &s, &f, &k2, 0xC0) == 0x9000);
    CHECK(tc_put_key(c, &s, &f, &k1, 0xFE) == 0x9000);
    key[2] = 2;
    tc_keys(&k2, key, 16, 0xFF);
    CHECK(tc_put_key(c, &s, &f, &k2, 0) == 0x6A80); /* FF is the factory set's */
    scp03_end(&s);
    CHECK(tc_open(c, &s, &k1, 0xC0, 0x33, 16) == 0x9000);
    scp03_end(&s);
    drop(c, dir);
}

/* A captured protected command replayed, or two swapped, never runs. */
static void test_replay(void)
{
    char dir[256];
    scp_card *c = make(dir, sizeof(dir), "gp23", -1, 0);
    scp03_keys f;
    scp03_session s;
    uint8_t w1[64], w2[64];
    size_t n1 = 0, n2 = 0;
    tc_resp r;
    tc_factory(&f);
    for (int swap = 0; swap < 2; swap++) {
        CHECK(tc_open(c, &s, &f, 0, 0x33, 16) == 0x9000);
        CHECK_OK(scp03_host_wrap(&s, (const uint8_t *)"\x80\xCA\x00\xC1\x00", 5, w1,
                                 sizeof(w1), &n1));
        CHECK_OK(tc_xfer(c, w1, n1, &r));
        CHECK(r.sw == 0x9000);
        CHECK_OK(scp03_host_unwrap(&s, r.data, r.len + 2, r.data, sizeof(r.data), &n2));
        CHECK_OK(scp03_host_wrap(&s, (const uint8_t *)"\x80\xCA\x9F\x7F\x00", 5, w2,
                                 sizeof(w2), &n2));
        if (swap) { /* the next command runs, then the first comes back */
            CHECK_OK(tc_xfer(c, w2, n2, &r));
            CHECK(r.sw == 0x9000);
        }
        CHECK_OK(tc_xfer(c, w1, n1, &r)); /* replay */
        CHECK(r.sw == 0x6982 && r.len == 0);
        CHECK_OK(tc_xfer(c, w2, n2, &r)); /* the session is over */
        CHECK(r.sw == 0x6982);
        scp03_end(&s);
    }
    /* a replayed EXTERNAL AUTHENTICATE after a new IU */
    {
        uint8_t b[64], ea[64];
        size_t n = 0, ean = 0;
        memset(&s, 0, sizeof(s));
        CHECK_OK(scp03_host_begin(&s, &f, NULL, 16));
        CHECK_OK(scp03_host_initialize_update(&s, 0x80, b, sizeof(b), &n));
        CHECK_OK(tc_xfer(c, b, n, &r));
        CHECK_OK(scp03_host_iu_response(&s, r.data, r.len));
        CHECK_OK(scp03_host_external_authenticate(&s, 0x33, ea, sizeof(ea), &ean));
        CHECK(tc_sw(c, "8050000010 00112233445566778899AABBCCDDEEFF") == 0x9000);
        CHECK_OK(tc_xfer(c, ea, ean, &r));
        CHECK(r.sw == 0x6300); /* a new card challenge: the old EA is wrong */
        scp03_end(&s);
    }
    drop(c, dir);
}

static void test_transport(void)
{
    char dir[256];
    scp_card *c = make(dir, sizeof(dir), NULL, -1, 0);
    scp_transport t;
    uint8_t cmd[] = { 0x00, 0xCA, 0x9F, 0x7F, 0x00 }, resp[64];
    size_t n = 0;
    scp_card_transport(c, &t);
    CHECK_OK(t.transmit(t.ctx, cmd, sizeof(cmd), resp, sizeof(resp), &n));
    CHECK(n == 47 && resp[45] == 0x90 && resp[46] == 0x00);
    CHECK_RC(t.transmit(t.ctx, cmd, sizeof(cmd), resp, 10, &n), SCP_E_BUFFER_TOO_SMALL);
    drop(c, dir);
}

/* Item 6: the first PUT KEY replaces the initial set only on the yubikey
 * profile, and only the factory set KVN FF. */
static void test_factory_rule(void)
{
    static const struct {
        const char *profile;
        int kvn, replaced;
    } cases[] = { { "yubikey", -1, 1 }, { "gp23", -1, 0 }, { "gp23", 0x30, 0 },
                  { "yubikey", 0x30, 0 } };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        char dir[256];
        uint8_t key0[16], key1[16];
        scp_card_init_opts o = { .profile = cases[k].profile, .scp_i = -1,
                                 .kvn = cases[k].kvn };
        scp_card *c = NULL;
        scp03_keys k0, k1;
        scp03_session s;
        uint8_t kvn0 = cases[k].kvn < 0 ? 0xFF : (uint8_t)cases[k].kvn;
        size_t chal = strcmp(cases[k].profile, "gp23") == 0 ? 16 : 8;
        tc_resp r;

        test_rand_bytes(key0, 16);
        test_rand_bytes(key1, 16);
        if (cases[k].kvn < 0)
            tc_factory(&k0);
        else {
            o.key = key0, o.key_len = 16;
            tc_keys(&k0, key0, 16, kvn0);
        }
        tc_keys(&k1, key1, 16, (uint8_t)(kvn0 == 0xFF ? 0x01 : kvn0 + 1));
        tc_tmpdir(dir, sizeof(dir));
        CHECK_OK(scp_card_init(dir, &o));
        CHECK_OK(scp_card_open(dir, &c, NULL, 0));
        if (c == NULL)
            continue;
        CHECK(tc_open(c, &s, &k0, kvn0, 0x33, chal) == 0x9000);
        CHECK(tc_put_key(c, &s, &k0, &k1, 0) == 0x9000);
        CHECK(tc_send_hex(c, &s, "80CA00E000", &r) == 0x9000);
        /* + the yubikey profile's SCP11b key 13/01 (C0 06 13 01 B1 20 F0 00) */
        CHECK(r.len == 2 + 6u * (cases[k].replaced ? 3 : 6) +
                           (strcmp(cases[k].profile, "yubikey") == 0 ? 8u : 0u));
        scp03_end(&s);
        CHECK(tc_open(c, &s, &k0, kvn0, 0x33, chal) == (cases[k].replaced ? 0x6A88 : 0x9000));
        scp03_end(&s);
        CHECK(tc_open(c, &s, &k1, k1.kvn, 0x33, chal) == 0x9000);
        scp03_end(&s);
        drop(c, dir);
    }
}

/* Item 4: DELETE KEY in the forms GPC 11.2.2 allows for keys: P2 b8
 * (more commands follow / last), b1 (the last set may go), by KVN. */
static void test_delete_forms(void)
{
    char dir[256];
    scp_card *c = make(dir, sizeof(dir), "gp23", -1, 0);
    scp03_keys f, k1, k2;
    scp03_session s;
    uint8_t key[16] = { 0x11 };
    tc_resp r;
    tc_factory(&f);
    tc_keys(&k1, key, 16, 0x01);
    key[0] = 0x22;
    tc_keys(&k2, key, 16, 0x02);
    CHECK(tc_open(c, &s, &f, 0xFF, 0x03, 16) == 0x9000);
    CHECK(tc_put_key(c, &s, &f, &k1, 0) == 0x9000);
    CHECK(tc_put_key(c, &s, &f, &k2, 0) == 0x9000);
    CHECK(tc_delete_key(c, &s, 0x02, 0x80) == 0x9000); /* "last command" form */
    CHECK(tc_delete_key(c, &s, 0x01, 0x02) == 0x6A86); /* RFU bits */
    CHECK(tc_send_hex(c, &s, "80E4010003D20101", &r) == 0x6A86); /* P1 01 */
    CHECK(tc_send_hex(c, &s, "80E4000006D00101D20101", &r) == 0x6A80); /* one key of a set */
    CHECK(tc_send_hex(c, &s, "80E4000003D00101", &r) == 0x6A80);       /* by key id */
    CHECK(tc_send_hex(c, &s, "80E4000003D20102", &r) == 0x6A88);
    CHECK(tc_delete_key(c, &s, 0x01, 0x00) == 0x9000); /* "more follow" is 80; 00 last */
    CHECK(tc_delete_key(c, &s, 0xFF, 0x80) == 0x6985); /* last set: b1 needed */
    CHECK(tc_delete_key(c, &s, 0xFF, 0x81) == 0x9000);
    scp03_end(&s);
    CHECK(tc_open(c, &s, &f, 0xFF, 0x03, 16) == 0x9000);
    scp03_end(&s);
    drop(c, dir);
}

/* Item 8: the factory reset (ykman `sd reset`: INITIALIZE UPDATE with KVN
 * 0 and an 8-byte zero challenge until 6983, yubikit securitydomain.py)
 * erases the store application's data with the keys. */
static void test_reset_erases_store(void)
{
    char dir[256];
    scp_card *c = make(dir, sizeof(dir), "yubikey", -1, 0);
    scp03_keys f, k1;
    scp03_session s;
    uint8_t key[16];
    tc_resp r;
    int n;
    tc_factory(&f);
    test_rand_bytes(key, 16);
    tc_keys(&k1, key, 16, 0x01);
    CHECK(tc_open(c, &s, &f, 0, 0x33, 8) == 0x9000);
    CHECK(tc_put_key(c, &s, &f, &k1, 0) == 0x9000); /* the public keys go */
    scp03_end(&s);
    CHECK(tc_sw(c, "00A4040008F07363706B697401") == 0x9000);
    CHECK(tc_open(c, &s, &k1, 0x01, 0x33, 8) == 0x9000);
    CHECK(tc_send_hex(c, &s, "00DA010104CAFEBABE", &r) == 0x9000);
    scp03_end(&s);
    CHECK(tc_sw(c, "00A4040008A000000151000000") == 0x9000);
    for (n = 1; n <= 65; n++) {
        CHECK_OK(tc_xfer_hex(c, "8050000008 0000000000000000", &r));
        if (r.sw != 0x9000)
            break;
    }
    CHECK(n == 33 && r.sw == 0x6983);
    /* the public keys are back; what the store held is not */
    CHECK(tc_sw(c, "00A4040008F07363706B697401") == 0x9000);
    CHECK(tc_open(c, &s, &f, 0xFF, 0x33, 8) == 0x9000);
    CHECK(tc_send_hex(c, &s, "00CA010100", &r) == 0x6A88);
    scp03_end(&s);
    scp_card_close(c);
    CHECK_OK(scp_card_open(dir, &c, NULL, 0)); /* and so on disk */
    CHECK(tc_sw(c, "00A4040008F07363706B697401") == 0x9000);
    CHECK(tc_open(c, &s, &f, 0xFF, 0x33, 8) == 0x9000);
    CHECK(tc_send_hex(c, &s, "00CA010100", &r) == 0x6A88);
    scp03_end(&s);
    drop(c, dir);
}

/* Item 9: writes to the store need C-MAC; a level-00 session may read. */
static void test_store_needs_cmac(void)
{
    char dir[256];
    scp_card *c = make(dir, sizeof(dir), "gp23", 0x70, 0);
    scp03_keys f;
    scp03_session s;
    tc_resp r;
    tc_factory(&f);
    CHECK(tc_sw(c, "00A4040008F07363706B697401") == 0x9000);
    CHECK(tc_open(c, &s, &f, 0, 0x00, 8) == 0x9000);
    CHECK(tc_send_hex(c, &s, "00DA010104CAFEBABE", &r) == 0x6982);
    CHECK(tc_sw(c, "00A4040008F07363706B697401") == 0x9000);
    CHECK(tc_open(c, &s, &f, 0, 0x00, 8) == 0x9000);
    CHECK(tc_send_hex(c, &s, "00CA010100", &r) == 0x6A88); /* reads are fine */
    CHECK(tc_sw(c, "00A4040008F07363706B697401") == 0x9000);
    CHECK(tc_open(c, &s, &f, 0, 0x01, 8) == 0x9000);
    CHECK(tc_send_hex(c, &s, "00DA010104CAFEBABE", &r) == 0x9000);
    CHECK(tc_send_hex(c, &s, "00CA010100", &r) == 0x9000 && r.len == 4);
    scp03_end(&s);
    drop(c, dir);
}

int main(void)
{
    test_seed(0xCA4D);
    test_select_get_data();
    test_get_data_gp23();
    test_factory_rule();
    test_delete_forms();
    test_reset_erases_store();
    test_store_needs_cmac();
    test_bad_apdus();
    test_levels();
    test_yubikey_profile();
    test_put_delete();
    test_retry_limit();
    test_abandoned_attempts();
    test_lifecycle();
    test_store_app();
    test_put_key_kvn_range();
    test_replay();
    test_transport();
    return test_done("test_card");
}
