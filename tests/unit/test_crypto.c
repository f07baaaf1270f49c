/* Crypto backend known answers: RFC 4493 / SP 800-38B CMAC, NIST CAVP
 * SP800-108 KBKDF-CTR (CMAC-AES), KCVs; CMAC streaming in every split. */
#include <stdlib.h>

#include "scpkit/crypto.h"
#include "crypto/aes.h"
#include "test.h"

static void run_cmac_file(void)
{
    vec_file vf;
    size_t n = 0;
    CHECK_OK(vec_load(vec_path("cmac_rfc4493.txt"), &vf));
    for (size_t i = 0; i < vf.n; i++) {
        const vec_record *r = &vf.r[i];
        const vec_field *key = vec_get(r, "key", 0), *msg = vec_get(r, "msg", 0),
                        *mac = vec_get(r, "mac", 0);
        uint8_t out[16];
        scp_aes a;
        if (strcmp(r->type, "cmac") != 0)
            continue;
        CHECK(key && msg && mac && key->bytes && mac->bytes);
        if (!(key && msg && mac && key->bytes && mac->bytes))
            continue;
        CHECK_OK(scp_aes_init(&a, key->bytes, key->len));
        CHECK_OK(scp_cmac_once(&a, msg->bytes, msg->len, out));
        CHECK_MEM(out, mac->len, mac->bytes, mac->len);
        /* streaming: every split point gives the same tag */
        for (size_t cut = 0; cut <= msg->len; cut++) {
            scp_cmac c;
            scp_cmac_init(&c, &a);
            CHECK_OK(scp_cmac_update(&c, msg->bytes, cut));
            CHECK_OK(scp_cmac_update(&c, msg->bytes + cut, msg->len - cut));
            CHECK_OK(scp_cmac_final(&c, out));
            CHECK_MEM(out, mac->len, mac->bytes, mac->len);
        }
        scp_aes_clear(&a);
        n++;
    }
    CHECK(n >= 4);
    printf("cmac: %zu known answers\n", n);
    vec_free(&vf);
}

static void run_kdf_file(void)
{
    vec_file vf;
    size_t n = 0;
    CHECK_OK(vec_load(vec_path("kdf_sp800108_cavp.txt"), &vf));
    for (size_t i = 0; i < vf.n; i++) {
        const vec_record *r = &vf.r[i];
        const vec_field *ctr = vec_get(r, "ctr", 0), *ki = vec_get(r, "ki", 0),
                        *l = vec_get(r, "l", 0), *ko = vec_get(r, "ko", 0);
        const vec_field *fx = vec_get(r, "fixed", 0), *fb = vec_get(r, "fixed_before", 0),
                        *fa = vec_get(r, "fixed_after", 0);
        uint8_t out[256];
        size_t bits;
        scp_aes a;
        if (strcmp(r->type, "kdf") != 0 || !ctr || !ki || !l || !ko)
            continue;
        bits = strtoul(l->text, NULL, 10);
        if (bits % 8 != 0 || bits / 8 > sizeof(out))
            continue; /* byte-oriented KDF only */
        CHECK_OK(scp_aes_init(&a, ki->bytes, ki->len));
        if (strcmp(ctr->text, "before") == 0)
            CHECK_OK(scp_kbkdf_cmac(&a, NULL, 0, fx->bytes, fx->len, out, bits / 8));
        else if (strcmp(ctr->text, "after") == 0)
            CHECK_OK(scp_kbkdf_cmac(&a, fx->bytes, fx->len, NULL, 0, out, bits / 8));
        else
            CHECK_OK(scp_kbkdf_cmac(&a, fb->bytes, fb->len, fa->bytes, fa->len, out, bits / 8));
        CHECK_MEM(out, bits / 8, ko->bytes, ko->len);
        scp_aes_clear(&a);
        n++;
    }
    CHECK(n >= 9);
    printf("kbkdf: %zu known answers\n", n);
    vec_free(&vf);
}

static void test_kcv_and_ct(void)
{
    /* pySim SCP03_KCV_Test (tests/unittests/test_globalplatform.py):
     * KCV of 000102..0f is C35280 */
    static const uint8_t k[16] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
    static const uint8_t want[3] = { 0xC3, 0x52, 0x80 };
    uint8_t kcv[3], a[16] = { 0 }, b[16] = { 0 };
    CHECK_OK(scp_kcv_aes(k, 16, kcv));
    CHECK_MEM(kcv, 3, want, 3);
    CHECK(scp_ct_eq(a, b, 16));
    b[15] = 1;
    CHECK(!scp_ct_eq(a, b, 16));
    CHECK_RC(scp_kcv_aes(k, 15, kcv), SCP_E_ARG);
}

static void test_cbc_roundtrip(void)
{
    uint8_t key[32], iv[16], p[512], c[512], d[512];
    for (int ks = 16; ks <= 32; ks += 8) {
        scp_aes a;
        test_rand_bytes(key, sizeof(key));
        test_rand_bytes(iv, sizeof(iv));
        test_rand_bytes(p, sizeof(p));
        CHECK_OK(scp_aes_init(&a, key, (size_t)ks));
        CHECK_OK(scp_aes_cbc_encrypt(&a, iv, p, sizeof(p), c));
        /* an encrypt-only key refuses to decrypt (tampered twin) */
        CHECK_RC(scp_aes_cbc_decrypt(&a, iv, c, sizeof(c), d), SCP_E_STATE);
        scp_aes_clear(&a);
        CHECK_OK(scp_aes_init_dec(&a, key, (size_t)ks));
        CHECK(memcmp(p, c, sizeof(p)) != 0);
        CHECK_OK(scp_aes_cbc_decrypt(&a, iv, c, sizeof(c), d));
        CHECK_MEM(d, sizeof(d), p, sizeof(p));
        CHECK_RC(scp_aes_cbc_encrypt(&a, iv, p, 15, c), SCP_E_ARG);
        scp_aes_clear(&a);
    }
}

/* A refused key length leaves a key that scp_aes_clear can take, even
 * when the struct held garbage before (no stale context pointer freed). */
static void test_refused_key(void)
{
    static const size_t bad[] = { 0, 8, 15, 17, 31, 33 };
    uint8_t key[33];
    scp_aes a;
    test_rand_bytes(key, sizeof(key));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&a, 0xA5, sizeof(a));
        CHECK_RC(scp_aes_init(&a, key, bad[i]), SCP_E_ARG);
        scp_aes_clear(&a);
        memset(&a, 0x5A, sizeof(a));
        CHECK_RC(scp_aes_init_dec(&a, key, bad[i]), SCP_E_ARG);
        scp_aes_clear(&a);
    }
    memset(&a, 0xA5, sizeof(a));
    CHECK_RC(scp_aes_init(&a, NULL, 16), SCP_E_ARG);
    scp_aes_clear(&a);
}

int main(void)
{
    test_seed(42);
    printf("aes implementation: %s\n", scp_aes_impl());
    run_cmac_file();
    run_kdf_file();
    test_kcv_and_ct();
    test_cbc_roundtrip();
    test_refused_key();
    return test_done("test_crypto");
}
