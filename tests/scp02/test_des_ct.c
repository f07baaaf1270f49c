/* The constant-time DES/3DES (src/crypto/des_ct.c) against published
 * known answers and against OpenSSL's DES on random keys and blocks; the
 * retail MAC and M2 padding with their tampered twins. */
#include <openssl/evp.h>
#include <stdlib.h>

#include "crypto/des_ct.h"
#include "scpkit/buf.h"
#include "scpkit/crypto.h"
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

/* OpenSSL's 3DES-EDE3 ECB (single DES as K1 = K2 = K3). */
static void ossl_ecb(const uint8_t *key, size_t key_len, int enc, const uint8_t *in, size_t len,
                     uint8_t *out)
{
    uint8_t k3[24];
    int n = 0;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    for (int i = 0; i < 3; i++)
        memcpy(k3 + 8 * i, key_len == 8 ? key : key + 8 * (i % (key_len / 8)), 8);
    if (key_len == 16)
        memcpy(k3 + 16, key, 8);
    CHECK(EVP_CipherInit_ex(c, EVP_des_ede3_ecb(), NULL, k3, NULL, enc) == 1);
    EVP_CIPHER_CTX_set_padding(c, 0);
    CHECK(EVP_CipherUpdate(c, out, &n, in, (int)len) == 1 && (size_t)n == len);
    EVP_CIPHER_CTX_free(c);
}

static void test_known(void)
{
    uint8_t key[24], pt[24], ct[24], out[24], want[24];
    scp_des3 d;

    /* The classic single-DES worked example (J. Orlin Grabbe, "The DES
     * Algorithm Illustrated"): K = 133457799BBCDFF1, M = 0123456789ABCDEF. */
    hx("133457799BBCDFF1", key, sizeof(key));
    hx("0123456789ABCDEF", pt, sizeof(pt));
    hx("85E813540F0AB405", want, sizeof(want));
    CHECK_OK(scp_des3_init(&d, key, 8));
    scp_des_block(&SCP_DES3_OF(&d)->ks[0], 0, pt, out);
    CHECK_MEM(out, 8, want, 8);
    scp_des_block(&SCP_DES3_OF(&d)->ks[0], 1, want, out);
    CHECK_MEM(out, 8, pt, 8);
    /* the public single-DES call (K1 only): the same vector, under the
     * single key and under a two-key key that starts with it; the twin
     * with the halves swapped must not give it */
    scp_des1_block(&d, 0, pt, out);
    CHECK_MEM(out, 8, want, 8);
    scp_des1_block(&d, 1, want, out);
    CHECK_MEM(out, 8, pt, 8);
    {
        uint8_t k2[16];
        memcpy(k2, key, 8);
        hx("0123456789ABCDEF", k2 + 8, 8);
        CHECK_OK(scp_des3_init(&d, k2, 16));
        scp_des1_block(&d, 0, pt, out);
        CHECK_MEM(out, 8, want, 8);
        memcpy(k2 + 8, key, 8);
        hx("0123456789ABCDEF", k2, 8);
        CHECK_OK(scp_des3_init(&d, k2, 16));
        scp_des1_block(&d, 0, pt, out);
        CHECK(memcmp(out, want, 8) != 0);
        scp_des3_clear(&d);
    }

    /* NIST SP 800-67 Rev. 1 appendix B, TDEA ECB example ("The qufck
     * brown fox jump"). */
    hx("0123456789ABCDEF23456789ABCDEF01456789ABCDEF0123", key, sizeof(key));
    hx("5468652071756663 6B2062726F776E20 666F78206A756D70", pt, sizeof(pt));
    hx("A826FD8CE53B855F CCE21C8112256FE6 68D5C05DD9B6B900", want, sizeof(want));
    CHECK_OK(scp_des3_init(&d, key, 24));
    CHECK_OK(scp_des3_ecb(&d, 0, pt, 24, ct));
    CHECK_MEM(ct, 24, want, 24);
    CHECK_OK(scp_des3_ecb(&d, 1, ct, 24, out));
    CHECK_MEM(out, 24, pt, 24);
    ct[0] ^= 1; /* tampered twin */
    CHECK_OK(scp_des3_ecb(&d, 1, ct, 24, out));
    CHECK(memcmp(out, pt, 8) != 0);
    scp_des3_clear(&d);
}

static void test_random_vs_openssl(void)
{
    static const size_t lens[] = { 8, 16, 24 };
    uint8_t key[24], in[64], a[64], b[64], iv[8];
    scp_des3 d;
    for (int it = 0; it < 300; it++) {
        size_t kl = lens[it % 3];
        test_rand_bytes(key, kl);
        test_rand_bytes(in, sizeof(in));
        CHECK_OK(scp_des3_init(&d, key, kl));
        CHECK_OK(scp_des3_ecb(&d, 0, in, sizeof(in), a));
        ossl_ecb(key, kl, 1, in, sizeof(in), b);
        CHECK_MEM(a, sizeof(a), b, sizeof(b));
        CHECK_OK(scp_des3_ecb(&d, 1, in, sizeof(in), a));
        ossl_ecb(key, kl, 0, in, sizeof(in), b);
        CHECK_MEM(a, sizeof(a), b, sizeof(b));
        /* CBC round trip, and CBC = chained ECB */
        test_rand_bytes(iv, 8);
        CHECK_OK(scp_des3_cbc_encrypt(&d, iv, in, sizeof(in), a));
        CHECK_OK(scp_des3_cbc_decrypt(&d, iv, a, sizeof(a), b));
        CHECK_MEM(b, sizeof(b), in, sizeof(in));
        uint8_t x[8];
        for (int j = 0; j < 8; j++)
            x[j] = in[j] ^ iv[j];
        ossl_ecb(key, kl, 1, x, 8, b);
        CHECK_MEM(a, 8, b, 8);
        scp_des3_clear(&d);
    }
}

static void test_macs(void)
{
    uint8_t key[16], msg[64], pad[72], mac[8], want[8], zero[8] = { 0 };
    size_t n, pl, ml;
    scp_des3 d;

    /* ICAO Doc 9303 Part 11 (8th ed.), appendix D.3 (BAC authentication):
     * MAC over E_IFD with K_MAC = 7962D9ECE03D1ACD4C76089DCE131543, ISO
     * 9797-1 MAC algorithm 3, padding method 2. */
    hx("7962D9ECE03D1ACD4C76089DCE131543", key, sizeof(key));
    ml = hx("72C29C2371CC9BDB65B779B8E8D37B29ECC154AA56A8799FAE2F498F76ED92F2", msg, sizeof(msg));
    hx("5F1448EEA8AD90A7", want, sizeof(want));
    CHECK_OK(scp_des3_init(&d, key, 16));
    CHECK_OK(scp_pad_m2(msg, ml, 8, pad, sizeof(pad), &n));
    CHECK(n == 40);
    CHECK_OK(scp_des_retail_mac(&d, zero, pad, n, mac));
    CHECK_MEM(mac, 8, want, 8);
    pad[3] ^= 0x40; /* tampered twin */
    CHECK_OK(scp_des_retail_mac(&d, zero, pad, n, mac));
    CHECK(!scp_ct_eq(mac, want, 8));
    /* the same MAC over the card's E_IC */
    ml = hx("46B9342A41396CD7386BF5803104D7CEDC122B9132139BAF2EEDC94EE178534F", msg, sizeof(msg));
    hx("2F2D235D074D7449", want, sizeof(want));
    CHECK_OK(scp_pad_m2(msg, ml, 8, pad, sizeof(pad), &n));
    CHECK_OK(scp_des_retail_mac(&d, zero, pad, n, mac));
    CHECK_MEM(mac, 8, want, 8);

    /* retail MAC with K1 = K2 is the full 3DES CBC-MAC with K1 = K2 = K3;
     * and MAC algorithm 1 with 3DES = the last block of 3DES-CBC */
    uint8_t k8[16], ct[72];
    test_rand_bytes(k8, 8);
    memcpy(k8 + 8, k8, 8);
    CHECK_OK(scp_des3_init(&d, k8, 16));
    CHECK_OK(scp_des_retail_mac(&d, zero, pad, n, mac));
    CHECK_OK(scp_des3_cbc_encrypt(&d, zero, pad, n, ct));
    CHECK_MEM(mac, 8, ct + n - 8, 8);
    test_rand_bytes(key, 16);
    CHECK_OK(scp_des3_init(&d, key, 16));
    CHECK_OK(scp_des3_cbc_mac(&d, zero, pad, n, mac));
    CHECK_OK(scp_des3_cbc_encrypt(&d, zero, pad, n, ct));
    CHECK_MEM(mac, 8, ct + n - 8, 8);
    scp_des3_clear(&d);

    /* M2 padding: round trip at every length; broken paddings refused */
    for (size_t len = 0; len <= 33; len++) {
        test_rand_bytes(msg, len);
        CHECK_OK(scp_pad_m2(msg, len, 8, pad, sizeof(pad), &n));
        CHECK(n % 8 == 0 && n > len && n - len <= 8);
        CHECK_OK(scp_unpad_m2(pad, n, 8, &pl));
        CHECK(pl == len);
        CHECK_OK(scp_pad_m2(msg, len, 16, pad, sizeof(pad), &n));
        CHECK_OK(scp_unpad_m2(pad, n, 16, &pl));
        CHECK(pl == len);
        pad[n - 1] ^= 0x01; /* tampered twin: a trailing non-zero byte */
        CHECK_RC(scp_unpad_m2(pad, n, 16, &pl), (pad[n - 1] == 0x80) ? SCP_OK : SCP_E_PADDING);
    }
    memset(pad, 0, 8);
    CHECK_RC(scp_unpad_m2(pad, 8, 8, &pl), SCP_E_PADDING); /* no 80 in the last block */

    /* a streaming MAC whose key moved (its holder copied, the old place
     * wiped) finishes right once pointed at the new place
     * (scp_des_mac_rekey); left pointing at the wiped copy, it does not */
    {
        static struct { scp_des3 k; scp_des_mac m; } a, b, c;
        test_rand_bytes(key, 16);
        test_rand_bytes(msg, 21);
        CHECK_OK(scp_des3_init(&a.k, key, 16));
        CHECK_OK(scp_pad_m2(msg, 21, 8, pad, sizeof(pad), &n));
        CHECK_OK(scp_des_retail_mac(&a.k, zero, pad, n, want));
        scp_des_mac_init(&a.m, &a.k, 0, zero);
        scp_des_mac_update(&a.m, msg, 5);
        b = a, c = a;
        scp_des3_clear(&a.k);
        scp_des_mac_rekey(&b.m, &b.k);
        scp_des_mac_update(&b.m, msg + 5, 16);
        scp_des_mac_final(&b.m, mac);
        CHECK_MEM(mac, 8, want, 8);
        scp_des_mac_update(&c.m, msg + 5, 16); /* still on a's wiped key */
        scp_des_mac_final(&c.m, mac);
        CHECK(memcmp(mac, want, 8) != 0);
        scp_des3_clear(&b.k), scp_des3_clear(&c.k);
    }
    CHECK_RC(scp_pad_m2(msg, 8, 8, pad, 15, &n), SCP_E_BUFFER_TOO_SMALL);
}

int main(void)
{
    test_seed(0x5c902);
    test_known();
    test_random_vs_openssl();
    test_macs();
    return test_done("test_des_ct");
}
