/* The secure-messaging core (src/sm): its description table, the
 * streaming MAC over CMAC and the retail MAC, both padding rules, the
 * encryption ICV rules and the seal / open passes, against public known
 * answers, with a tampered twin for every pass:
 *   - RFC 4493 section 4, AES-128 CMAC examples 2 and 4 (MAC rule ZERO);
 *   - ICAO Doc 9303 Part 11 (8th ed.) Appendix D.3: BAC M_IFD, the retail
 *     MAC of E_IFD under K_MAC (ISO 9797-1 algorithm 3, zero IV);
 *   - ICAO Doc 9303 Part 11 Appendix D.4: the first protected SELECT
 *     (SSC 887022120C06C227 as the MAC's first block, DO87 3DES-CBC with a
 *     zero IV under KS_enc, CC under KS_mac).
 * The protocols' own vectors (tests/unit/test_scp03_vectors,
 * tests/scp02, tests/iso7816) run on this core too. */
#include <string.h>

#include "crypto/aes.h"
#include "sm/sm.h"
#include "scpkit/des.h"
#include "test.h"

static size_t hex(const char *s, uint8_t *out)
{
    size_t n = 0;
    for (; s[0] && s[1]; s += 2) {
        unsigned v;
        sscanf(s, "%2x", &v);
        out[n++] = (uint8_t)v;
    }
    return n;
}

static void test_table(void)
{
    const scp_sm_desc *all[] = { &scp_sm_desc_scp03_s8,     &scp_sm_desc_scp03_s16,
                                 &scp_sm_desc_scp02_icv_enc, &scp_sm_desc_scp02_icv,
                                 &scp_sm_desc_iso_3des,     &scp_sm_desc_iso_aes };
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        const scp_sm_desc *d = all[i];
        CHECK(d->block == 8 || d->block == 16);
        CHECK((d->cipher == SCP_SMC_AES) == (d->block == 16));
        CHECK((d->mac_alg == SCP_SMM_CMAC) == (d->cipher == SCP_SMC_AES));
        CHECK(d->mac_len == 8 || d->mac_len == 16);
    }
    CHECK(scp_sm_desc_scp03(8) == &scp_sm_desc_scp03_s8);
    CHECK(scp_sm_desc_scp03(16) == &scp_sm_desc_scp03_s16);
    CHECK(scp_sm_desc_scp03_s16.mac_len == 16 && scp_sm_desc_scp03_s8.mac_len == 8);
    /* i = 15 and 55 encrypt the C-MAC ICV (GPC 2.2.1 E.4.4); 05 does not */
    CHECK(scp_sm_desc_scp02(0x15) == &scp_sm_desc_scp02_icv_enc);
    CHECK(scp_sm_desc_scp02(0x55) == &scp_sm_desc_scp02_icv_enc);
    CHECK(scp_sm_desc_scp02(0x05) == &scp_sm_desc_scp02_icv);
    CHECK(scp_sm_desc_scp02_icv_enc.order == SCP_SMO_MTE);
    CHECK(scp_sm_desc_scp03_s8.order == SCP_SMO_ETM && scp_sm_desc_iso_aes.order == SCP_SMO_ETM);
    CHECK(scp_sm_desc_iso_aes.enc_icv == SCP_SME_SSC && scp_sm_desc_iso_3des.enc_icv == SCP_SME_ZERO);
    CHECK(scp_sm_desc_scp03_s8.enc_icv == SCP_SME_COUNTER);
}

/* RFC 4493 section 4: K = 2b7e1516 28aed2a6 abf71588 09cf4f3c. */
static void test_cmac_rfc4493(void)
{
    uint8_t key[16], m[64], want[16], tag[16];
    scp_aes a;
    scp_sm_keys k = { 0 };
    const scp_sm_desc *d = &scp_sm_desc_scp03_s16;
    hex("2b7e151628aed2a6abf7158809cf4f3c", key);
    hex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
        "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710",
        m);
    CHECK_OK(scp_aes_init(&a, key, 16));
    k.aes_mac = &a;
    /* example 2: 16 bytes */
    hex("070a16b46b4d4144f79bdd9dd04a287c", want);
    CHECK_OK(scp_sm_mac_once(d, &k, SCP_SMI_ZERO, NULL, NULL, 0, m, 16, NULL, 0, tag));
    CHECK_MEM(tag, 16, want, 16);
    /* example 4: 64 bytes, as pre | p | post and streamed in pieces */
    hex("51f0bebf7e3b9d92fc49741779363cfe", want);
    CHECK_OK(scp_sm_mac_once(d, &k, SCP_SMI_ZERO, NULL, m, 5, m + 5, 50, m + 55, 9, tag));
    CHECK_MEM(tag, 16, want, 16);
    for (size_t cut = 0; cut <= 64; cut += 7) {
        scp_sm_mac_ctx c;
        scp_sm_mac_begin(&c, d, &k, SCP_SMI_ZERO, NULL);
        scp_sm_mac_update(&c, m, cut);
        scp_sm_mac_update(&c, m + cut, 64 - cut);
        CHECK_OK(scp_sm_mac_check(&c, want, tag));
        CHECK_MEM(tag, 16, want, 16);
    }
    /* the chaining value as the first block is the same as MACing it */
    CHECK_OK(scp_sm_mac_once(d, &k, SCP_SMI_CHAIN, m, NULL, 0, m + 16, 48, NULL, 0, tag));
    CHECK_MEM(tag, 16, want, 16);
    /* tampered: one bit of the message */
    m[40] ^= 0x01;
    CHECK_RC(scp_sm_verify(d, &k, SCP_SMI_ZERO, NULL, NULL, 0, m, 64, NULL, 0, want, tag),
             SCP_E_MAC);
    scp_aes_clear(&a);
}

/* ICAO 9303-11 Appendix D.3 (BAC): M_IFD = MAC(K_MAC, E_IFD). */
static void test_retail_bac(void)
{
    uint8_t km[16], e[32], want[8], tag[16];
    scp_des3 d3;
    scp_sm_keys k = { 0 };
    const scp_sm_desc *d = &scp_sm_desc_iso_3des;
    hex("7962d9ece03d1acd4c76089dce131543", km);
    hex("72c29c2371cc9bdb65b779b8e8d37b29ecc154aa56a8799fae2f498f76ed92f2", e);
    hex("5f1448eea8ad90a7", want);
    CHECK_OK(scp_des3_init(&d3, km, 16));
    k.des_mac = &d3;
    CHECK_OK(scp_sm_verify(d, &k, SCP_SMI_ZERO, NULL, NULL, 0, e, 32, NULL, 0, want, tag));
    CHECK_MEM(tag, 8, want, 8);
    e[0] ^= 0x80;
    CHECK_RC(scp_sm_verify(d, &k, SCP_SMI_ZERO, NULL, NULL, 0, e, 32, NULL, 0, want, tag),
             SCP_E_MAC);
    scp_des3_clear(&d3);
}

/* ICAO 9303-11 Appendix D.4: SELECT EF.COM (00 A4 02 0C 02 01 1E). */
static void test_iso_select(void)
{
    uint8_t ke[16], km[16], pre[16], buf[16], ct[8], cc[8], tag[16], out[16];
    scp_sm_chain ch = { 0 };
    uint8_t *ssc = ch.u.icv;
    size_t n, pl;
    scp_des3 de, dm;
    scp_sm_keys k = { 0 };
    const scp_sm_desc *d = &scp_sm_desc_iso_3des;
    hex("979ec13b1cbfe9dcd01ab0fed307eae5", ke);
    hex("f1cb1f1fb5adf208806b89dc579dc1f8", km);
    hex("887022120c06c226", ssc);
    hex("6375432908c044f6", ct);
    hex("bf8b92d635ff24f8", cc);
    CHECK_OK(scp_des3_init(&de, ke, 16));
    CHECK_OK(scp_des3_init(&dm, km, 16));
    k.des_enc = &de, k.des_mac = &dm;
    scp_sm_ssc_inc(d, ssc); /* 887022120C06C227 */
    /* MAC input: SSC | 0C A4 02 0C 80 00 00 00 | 87 09 01 ct, M2-padded */
    hex("0ca4020c80000000870901", pre);
    buf[0] = 0x01, buf[1] = 0x1e;
    CHECK_OK(scp_sm_seal(d, &k, d->cmac_icv, ssc, scp_sm_enc_icv(d, &ch, 0, out), NULL, pre,
                         11, buf, 2, 1, NULL, 0, &n, tag));
    CHECK(n == 8);
    CHECK_MEM(buf, n, ct, 8);
    CHECK_MEM(tag, 8, cc, 8);
    /* open: the MAC over the ciphertext, then decryption and padding */
    CHECK_OK(scp_sm_open(d, &k, d->cmac_icv, ssc, NULL, pre, 11, ct, 8, 1, NULL, 0, cc, out, &pl,
                         tag));
    CHECK(pl == 2 && out[0] == 0x01 && out[1] == 0x1e);
    /* tampered ciphertext: SCP_E_MAC, nothing decrypted left in out */
    memcpy(buf, ct, 8);
    buf[3] ^= 0x10;
    memset(out, 0xAA, sizeof(out));
    CHECK_RC(scp_sm_open(d, &k, d->cmac_icv, ssc, NULL, pre, 11, buf, 8, 1, NULL, 0, cc, out, &pl,
                         tag),
             SCP_E_MAC);
    CHECK(out[0] == 0xAA && out[1] == 0xAA);
    /* the SSC is the MAC's first block: the next SSC gives another MAC */
    scp_sm_ssc_inc(d, ssc);
    CHECK_RC(scp_sm_verify(d, &k, d->cmac_icv, ssc, pre, 11, ct, 8, NULL, 0, cc, tag), SCP_E_MAC);
    scp_des3_clear(&de);
    scp_des3_clear(&dm);
}

static void test_padding(void)
{
    uint8_t p[32];
    size_t pl;
    const scp_sm_desc *s = &scp_sm_desc_iso_aes, *l = &scp_sm_desc_scp03_s8;
    CHECK(scp_sm_padded_len(s, 0) == 0 && scp_sm_padded_len(s, 15) == 16);
    CHECK(scp_sm_padded_len(s, 16) == 32 && scp_sm_padded_len(&scp_sm_desc_iso_3des, 8) == 16);
    memset(p, 0x11, sizeof(p));
    scp_sm_pad(s, p, 16);
    CHECK(p[16] == 0x80 && p[31] == 0x00);
    CHECK_OK(scp_sm_unpad(s, p, 32, &pl));
    CHECK(pl == 16);
    CHECK_OK(scp_sm_unpad(l, p, 32, &pl));
    CHECK(pl == 16);
    /* padding longer than a block: SCP03 accepts it (peers pad further),
     * the strict rule does not */
    memset(p, 0, sizeof(p));
    p[0] = 0x42, p[1] = 0x80;
    CHECK_RC(scp_sm_unpad(s, p, 32, &pl), SCP_E_PADDING);
    CHECK_OK(scp_sm_unpad(l, p, 32, &pl));
    CHECK(pl == 1);
    /* no 80, or a byte after it that is not 00: refused by both */
    p[1] = 0x00;
    CHECK_RC(scp_sm_unpad(s, p, 32, &pl), SCP_E_PADDING);
    CHECK_RC(scp_sm_unpad(l, p, 32, &pl), SCP_E_PADDING);
    memset(p, 0, sizeof(p));
    p[20] = 0x80, p[25] = 0x01;
    CHECK_RC(scp_sm_unpad(s, p, 32, &pl), SCP_E_PADDING);
    CHECK_RC(scp_sm_unpad(l, p, 32, &pl), SCP_E_PADDING);
    CHECK_RC(scp_sm_unpad(s, p, 31, &pl), SCP_E_PADDING);
}

/* SCP02's ICV rules: CHAIN_ENC is CHAIN_IV from the chaining value under
 * single DES with the MAC key's first half (GPC 2.2.1 E.4.4). */
static void test_scp02_icv(void)
{
    uint8_t key[16], icv[8], enc_icv[8], data[13], t1[16], t2[16], t0[16];
    scp_des3 dm;
    scp_sm_keys k = { 0 };
    const scp_sm_desc *d = &scp_sm_desc_scp02_icv_enc;
    test_rand_bytes(key, 16);
    test_rand_bytes(icv, 8);
    test_rand_bytes(data, sizeof(data));
    CHECK_OK(scp_des3_init(&dm, key, 16));
    k.des_mac = &dm;
    CHECK_OK(scp_sm_mac_once(d, &k, SCP_SMI_CHAIN_ENC, icv, data, 5, data + 5, 8, NULL, 0, t1));
    scp_des1_block(&dm, 0, icv, enc_icv);
    CHECK_OK(scp_sm_mac_once(d, &k, SCP_SMI_CHAIN_IV, enc_icv, data, 5, data + 5, 8, NULL, 0,
                             t2));
    CHECK_MEM(t1, 8, t2, 8);
    CHECK_OK(scp_sm_mac_once(d, &k, SCP_SMI_CHAIN_IV, icv, data, 5, data + 5, 8, NULL, 0, t0));
    CHECK(memcmp(t0, t1, 8) != 0);
    /* the retail MAC parks and resumes (SCP02's R-MAC) */
    {
        scp_sm_mac_ctx m;
        scp_des_mac slot;
        scp_sm_mac_begin(&m, d, &k, SCP_SMI_CHAIN_IV, icv);
        scp_sm_mac_update(&m, data, 5);
        scp_sm_mac_park(&m, &slot);
        scp_sm_mac_resume(&m, d, &k, &slot);
        scp_sm_mac_update(&m, data + 5, 8);
        CHECK_OK(scp_sm_mac_final(&m, t2));
        CHECK_MEM(t2, 8, t0, 8);
    }
    scp_des3_clear(&dm);
}

/* Every description: seal then open round trips, over lengths 1..40;
 * the AES fast path (SCP03) gives the bytes of the plain steps; a flipped
 * byte fails with SCP_E_MAC (a MAC-then-encrypt one on the MAC after
 * decryption). */
static void test_roundtrip(void)
{
    const scp_sm_desc *all[] = { &scp_sm_desc_scp03_s8,     &scp_sm_desc_scp03_s16,
                                 &scp_sm_desc_scp02_icv_enc, &scp_sm_desc_scp02_icv,
                                 &scp_sm_desc_iso_3des,     &scp_sm_desc_iso_aes };
    uint8_t ke[16], km[16], icv[16], pre[7], post[2];
    scp_aes ae, am;
    scp_des3 de, dm;
    scp_sm_keys k;
    test_rand_bytes(ke, 16);
    test_rand_bytes(km, 16);
    test_rand_bytes(icv, 16);
    test_rand_bytes(pre, sizeof(pre));
    test_rand_bytes(post, sizeof(post));
    CHECK_OK(scp_aes_init_dec(&ae, ke, 16));
    CHECK_OK(scp_aes_init(&am, km, 16));
    CHECK_OK(scp_des3_init(&de, ke, 16));
    CHECK_OK(scp_des3_init(&dm, km, 16));
    k.aes_enc = &ae, k.aes_mac = &am, k.des_enc = &de, k.des_mac = &dm;
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        const scp_sm_desc *d = all[i];
        for (size_t len = 1; len <= 40; len += 3) {
            uint8_t plain[48], buf[48], ref[48], tag[16], rtag[16], out[48], blk[16];
            const uint8_t *iin;
            size_t n, m, pl;
            int rule = d->cmac_icv;
            test_rand_bytes(plain, len);
            scp_sm_chain ch;
            memcpy(ch.u.icv, icv, 16);
            ch.counter = (uint32_t)(len + 1);
            iin = scp_sm_enc_icv(d, &ch, 0, blk);
            memcpy(buf, plain, len);
            CHECK_OK(scp_sm_seal(d, &k, rule, icv, iin, NULL, pre, 7, buf, len, 1, post, 2, &n,
                                 tag));
            CHECK(n == scp_sm_padded_len(d, len));
            if (n < d->block || n > sizeof(buf))
                continue; /* (reported above) */
            /* the same bytes from the plain steps */
            memcpy(ref, plain, len);
            scp_sm_pad(d, ref, len);
            m = n;
            if (d->order == SCP_SMO_MTE) {
                CHECK_OK(scp_sm_mac_once(d, &k, rule, icv, pre, 7, plain, len, post, 2, rtag));
                CHECK_OK(scp_sm_encrypt(d, &k, iin, ref, m));
            } else {
                CHECK_OK(scp_sm_encrypt(d, &k, iin, ref, m));
                CHECK_OK(scp_sm_mac_once(d, &k, rule, icv, pre, 7, ref, m, post, 2, rtag));
            }
            CHECK_MEM(buf, n, ref, m);
            CHECK_MEM(tag, d->mac_len, rtag, d->mac_len);
            if (d->order == SCP_SMO_MTE) {
                CHECK_OK(scp_sm_decrypt_unpad(d, &k, iin, buf, n, out, &pl));
                CHECK_MEM(out, pl, plain, len);
                CHECK_OK(scp_sm_verify(d, &k, rule, icv, pre, 7, out, pl, post, 2, tag, rtag));
                out[len / 2] ^= 0x01;
                CHECK_RC(scp_sm_verify(d, &k, rule, icv, pre, 7, out, pl, post, 2, tag, rtag),
                         SCP_E_MAC);
                continue;
            }
            CHECK_OK(scp_sm_open(d, &k, rule, icv, iin, pre, 7, buf, n, 1, post, 2, tag, out, &pl,
                                 rtag));
            CHECK_MEM(out, pl, plain, len);
            buf[0] ^= 0x01;
            memset(out, 0x5A, sizeof(out));
            CHECK_RC(scp_sm_open(d, &k, rule, icv, iin, pre, 7, buf, n, 1, post, 2, tag, out, &pl,
                                 rtag),
                     SCP_E_MAC);
            for (size_t j = 0; j < n; j++)
                CHECK(out[j] == 0x5A || out[j] == 0x00); /* untouched or wiped */
            /* data that is not whole blocks: the MAC first (SCP_E_MAC),
             * then, with a good MAC, SCP_E_PADDING */
            buf[0] ^= 0x01;
            CHECK_RC(scp_sm_open(d, &k, rule, icv, iin, pre, 7, buf, n - 1, 1, post, 2, tag, out,
                                 &pl, rtag),
                     SCP_E_MAC);
            CHECK_OK(scp_sm_mac_once(d, &k, rule, icv, pre, 7, buf, n - 1, post, 2, tag));
            CHECK_RC(scp_sm_open(d, &k, rule, icv, iin, pre, 7, buf, n - 1, 1, post, 2, tag, out,
                                 &pl, rtag),
                     SCP_E_PADDING);
        }
    }
    scp_aes_clear(&ae);
    scp_aes_clear(&am);
    scp_des3_clear(&de);
    scp_des3_clear(&dm);
}

int main(void)
{
    test_seed(1313);
    test_table();
    test_cmac_rfc4493();
    test_retail_bac();
    test_iso_select();
    test_padding();
    test_scp02_icv();
    test_roundtrip();
    return test_done("test_sm_core");
}
