/* Static-key diversification: known answers from public sources for KDF3,
 * EMV and VISA2 (tests/vectors/kdf3_gppro.txt), an independent cross-check
 * for Yubico's SP800-108 (tests/vectors/div_yubico_crosscheck.txt), and
 * tampered twins (one KDD bit, wrong scheme) that must change the keys. */
#include <string.h>

#include "scpkit/gp.h"
#include "test.h"

static int kcv_of(scp_div_scheme s, const uint8_t *k, size_t n, uint8_t kcv[3])
{
    return s == SCP_DIV_EMV || s == SCP_DIV_VISA2 ? scp_kcv_des3(k, n, kcv)
                                                  : scp_kcv_aes(k, n, kcv);
}

/* Check one record: full keys when given, else KCVs. Returns 1 when it
 * had something to check. */
static int check_record(const vec_record *r, scp_div_scheme s, size_t key_len)
{
    static const char *full[3] = { "enc", "mac", "dek" };
    static const char *kcvs[3] = { "kcv_enc", "kcv_mac", "kcv_dek" };
    const vec_field *m = vec_get(r, "master", 0), *kdd = vec_get(r, "kdd", 0);
    scp03_keys k = { 0 };
    int checked = 0;

    if (m == NULL || kdd == NULL || m->bytes == NULL || kdd->bytes == NULL)
        return 0;
    if (key_len == 0)
        CHECK_OK(scp_div_derive(s, m->bytes, m->len, kdd->bytes, kdd->len, &k));
    else
        CHECK_OK(scp_div_derive_len(s, m->bytes, m->len, kdd->bytes, kdd->len, key_len, &k));
    const uint8_t *got[3] = { k.enc, k.mac, k.dek };
    for (int i = 0; i < 3; i++) {
        const vec_field *f = vec_get(r, full[i], 0), *c = vec_get(r, kcvs[i], 0);
        uint8_t kcv[3];
        if (f != NULL && f->bytes != NULL) {
            CHECK_MEM(got[i], k.key_len, f->bytes, f->len);
            checked++;
        }
        if (c != NULL && c->bytes != NULL) {
            CHECK_OK(kcv_of(s, got[i], k.key_len, kcv));
            CHECK_MEM(kcv, sizeof(kcv), c->bytes, c->len);
            checked++;
        }
    }
    /* tampered twin: one KDD bit flipped gives other keys */
    uint8_t kdd2[10];
    scp03_keys t = { 0 };
    memcpy(kdd2, kdd->bytes, sizeof(kdd2));
    kdd2[s == SCP_DIV_VISA2 ? 0 : 9] ^= 0x01;
    CHECK_OK(scp_div_derive_len(s, m->bytes, m->len, kdd2, sizeof(kdd2), k.key_len, &t));
    CHECK(memcmp(t.enc, k.enc, k.key_len) != 0 && memcmp(t.dek, k.dek, k.key_len) != 0);
    /* and ENC, MAC, DEK differ from one another (k = 1, 2, 3) */
    CHECK(memcmp(k.enc, k.mac, k.key_len) != 0 && memcmp(k.mac, k.dek, k.key_len) != 0);
    return checked > 0;
}

static void run_file(const char *file, const char *type, scp_div_scheme s, int full_len,
                     int want)
{
    vec_file vf;
    int n = 0;

    if (vec_load(vec_path(file), &vf) != 0) {
        CHECK(!"vector file missing");
        return;
    }
    for (size_t i = 0; i < vf.n; i++) {
        const vec_record *r = &vf.r[i];
        const vec_field *e = vec_get(r, "enc", 0);
        if (strcmp(r->type, type) != 0)
            continue;
        /* records giving full keys fix the derived length */
        size_t len = full_len && e != NULL ? e->len : 0;
        int before = test_failures;
        n += check_record(r, s, len);
        if (test_failures != before)
            fprintf(stderr, "  in %s record at line %d\n", file, r->line);
    }
    vec_free(&vf);
    printf("%s [%s]: %d records\n", file, type, n);
    CHECK(n >= want);
}

/* Values that do not depend on the data files. */
static void test_fixed(void)
{
    static const uint8_t mk[16] = { 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47,
                                    0x48, 0x49, 0x4A, 0x4B, 0x4C, 0x4D, 0x4E, 0x4F };
    static const uint8_t kdd[10] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 };
    /* GlobalPlatformPro TestPlaintextKeys testDiversification_KDF3_SCP03_AES128 */
    static const uint8_t kcv_enc[3] = { 0xE7, 0x9C, 0x05 };
    scp03_keys k = { 0 };
    uint8_t kcv[3];

    k.kvn = 0x42;
    CHECK_OK(scp_div_derive(SCP_DIV_KDF3, mk, sizeof(mk), kdd, sizeof(kdd), &k));
    CHECK(k.key_len == 16 && k.kvn == 0x42);
    CHECK_OK(scp_kcv_aes(k.enc, 16, kcv));
    CHECK_MEM(kcv, 3, kcv_enc, 3);
    /* KDF3 and SP800-108 share all but L: their outputs must differ */
    scp03_keys y = { 0 };
    CHECK_OK(scp_div_derive(SCP_DIV_SP800_108, mk, sizeof(mk), kdd, sizeof(kdd), &y));
    CHECK(y.key_len == 16 && memcmp(y.enc, k.enc, 16) != 0);
    /* none: ENC = MAC = DEK = master */
    CHECK_OK(scp_div_derive(SCP_DIV_NONE, mk, sizeof(mk), NULL, 0, &k));
    CHECK(k.key_len == 16 && memcmp(k.enc, mk, 16) == 0 && memcmp(k.dek, mk, 16) == 0);
    /* bad arguments wipe the output */
    CHECK_RC(scp_div_derive(SCP_DIV_KDF3, mk, sizeof(mk), kdd, 9, &k), SCP_E_ARG);
    CHECK(k.key_len == 0 && k.enc[0] == 0);
    CHECK_RC(scp_div_derive(SCP_DIV_EMV, mk, 32, kdd, sizeof(kdd), &k), SCP_E_ARG);
    CHECK_RC(scp_div_derive(SCP_DIV_KDF3, mk, 15, kdd, sizeof(kdd), &k), SCP_E_ARG);
    CHECK_RC(scp_div_derive_len(SCP_DIV_SP800_108, mk, 16, kdd, 10, 20, &k), SCP_E_ARG);
    CHECK_RC(scp_div_derive((scp_div_scheme)99, mk, 16, kdd, 10, &k), SCP_E_ARG);
    CHECK_RC(scp_div_derive(SCP_DIV_KDF3, mk, 16, NULL, 10, &k), SCP_E_ARG);
}

static void test_names(void)
{
    static const char *names[] = { "none", "sp800-108", "kdf3", "emv", "visa2" };
    scp_div_scheme s;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        CHECK_OK(scp_div_parse(names[i], &s));
        CHECK(strcmp(scp_div_name(s), names[i]) == 0);
    }
    CHECK_RC(scp_div_parse("KDF3 ", &s), SCP_E_NOT_FOUND);
    CHECK_RC(scp_div_parse("visa", &s), SCP_E_NOT_FOUND);
    CHECK_RC(scp_div_parse(NULL, &s), SCP_E_ARG);
    CHECK(strcmp(scp_div_name((scp_div_scheme)42), "unknown") == 0);
    CHECK(scp_div_default_len(SCP_DIV_SP800_108, 32) == 16);
    CHECK(scp_div_default_len(SCP_DIV_KDF3, 24) == 24);
}

int main(void)
{
    test_fixed();
    test_names();
    /* GlobalPlatformPro TestPlaintextKeys / TestSCP03, openjavacard-tools */
    run_file("kdf3_gppro.txt", "kdf3", SCP_DIV_KDF3, 0, 4);
    run_file("kdf3_gppro.txt", "emv", SCP_DIV_EMV, 0, 3);
    run_file("kdf3_gppro.txt", "visa2", SCP_DIV_VISA2, 0, 1);
    /* cross-check of the Yubico layout against pyca/cryptography */
    run_file("div_yubico_crosscheck.txt", "sp800_108", SCP_DIV_SP800_108, 1, 4);
    return test_done("test_gp_div");
}
