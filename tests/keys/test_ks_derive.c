/* Keystore against a real SoftHSM2 token: init, open, generate, import by
 * unwrap, and diversification inside the token equal to the software
 * reference scp_div_derive byte for byte, for every scheme and key size;
 * GlobalPlatformPro's KDF3/EMV/VISA2 KCVs (tests/vectors/kdf3_gppro.txt)
 * as known answers through the token. */
#include "ks_test.h"
#include "keys/internal.h"
#include "scpkit/crypto.h"

static void activate(scp_keystore *ks, const char *label, uint32_t v)
{
    CHECK_OK(scp_keystore_activate_custodians(ks, label, v, "alice", "alice-pin-1", "bob",
                                              "bob-pin-22", "test activation"));
}

static scp_keystore *test_init_open(scp_keystore *ks)
{
    scp_ks_config cfg = {ks_dir, NULL, NULL, NULL};
    scp_keystore *other = NULL;
    /* A second init of the same directory is refused. */
    CHECK_RC(scp_keystore_init(&cfg, KS_SO_PIN, KS_USER_PIN, NULL), SCP_E_STATE);
    /* A wrong PIN (tested with no other session logged in: PKCS#11 login
     * state is per process). */
    scp_keystore_close(ks);
    CHECK_RC(scp_keystore_open(&cfg, "wrong-pin", &other), SCP_E_PERM);
    CHECK(other == NULL);
    return ks_reopen();
}

static void test_generate(scp_keystore *ks)
{
    scp_ks_key_info k, g;
    CHECK_OK(scp_keystore_generate(ks, "fleet", 0, SCP_KS_AES128, &k));
    CHECK(k.version == 1 && k.state == SCP_KS_PRE_ACTIVATION && k.length == 16);
    CHECK(strcmp(k.origin, "generated") == 0);
    CHECK_OK(scp_keystore_generate(ks, "fleet", 0, SCP_KS_AES256, &k));
    CHECK(k.version == 2);
    CHECK_RC(scp_keystore_generate(ks, "fleet", 2, SCP_KS_AES128, &k), SCP_E_STATE);
    CHECK_RC(scp_keystore_generate(ks, "bad:label", 0, SCP_KS_AES128, &k), SCP_E_ARG);
    CHECK_OK(scp_keystore_generate(ks, "legacy", 0, SCP_KS_DES2, &k));
    CHECK_OK(scp_keystore_generate(ks, "legacy", 0, SCP_KS_DES3, &k));
    CHECK_OK(scp_keystore_get(ks, "fleet", 0, &g));
    CHECK(g.version == 2 && g.type == SCP_KS_AES256);
    /* Only active keys open sessions: a pre-activation key derives nothing. */
    uint8_t kdd[10] = {0};
    scp03_keys out;
    CHECK_RC(scp_keystore_derive(ks, "fleet", 1, SCP_DIV_KDF3, kdd, 10, 1, &out), SCP_E_STATE);
    activate(ks, "fleet", 1);
    CHECK_OK(scp_keystore_derive(ks, "fleet", 1, SCP_DIV_KDF3, kdd, 10, 1, &out));
    CHECK(out.key_len == 16);
    /* A non-extractable key in the token: the same KDD gives the same keys. */
    scp03_keys again;
    CHECK_OK(scp_keystore_derive(ks, "fleet", 1, SCP_DIV_KDF3, kdd, 10, 1, &again));
    CHECK_MEM(out.enc, 16, again.enc, 16);
    /* A scheme that does not fit the key type is refused. */
    CHECK_RC(scp_keystore_derive(ks, "fleet", 1, SCP_DIV_EMV, kdd, 10, 1, &out),
             SCP_E_UNSUPPORTED);
    CHECK_RC(scp_keystore_derive(ks, "fleet", 1, SCP_DIV_KDF3, kdd, 9, 1, &out), SCP_E_ARG);
}

static const struct {
    scp_ks_type t;
    scp_div_scheme s[2];
} combos[] = {
    {SCP_KS_AES128, {SCP_DIV_SP800_108, SCP_DIV_KDF3}},
    {SCP_KS_AES192, {SCP_DIV_SP800_108, SCP_DIV_KDF3}},
    {SCP_KS_AES256, {SCP_DIV_SP800_108, SCP_DIV_KDF3}},
    {SCP_KS_DES2, {SCP_DIV_EMV, SCP_DIV_VISA2}},
    {SCP_KS_DES3, {SCP_DIV_EMV, SCP_DIV_VISA2}},
};

/* HSM == software for every scheme and key size over random masters/KDDs. */
static void test_equal_to_software(scp_keystore *ks)
{
    for (size_t c = 0; c < sizeof(combos) / sizeof(combos[0]); c++) {
        for (int rep = 0; rep < 3; rep++) {
            uint8_t master[32], kdd[10];
            size_t len = scp_ks_type_len(combos[c].t);
            scp_ks_key_info k;
            char label[32];
            test_rand_bytes(master, len);
            snprintf(label, sizeof(label), "eq-%s", scp_ks_type_name(combos[c].t));
            CHECK_OK(scp_keystore_import(ks, label, 0, combos[c].t, master, len, "import", &k));
            uint8_t kcv[3];
            if (combos[c].t == SCP_KS_DES2 || combos[c].t == SCP_KS_DES3)
                CHECK_OK(scp_kcv_des3(master, len, kcv));
            else
                CHECK_OK(scp_kcv_aes(master, len, kcv));
            CHECK_MEM(k.kcv, 3, kcv, 3); /* KCV computed in the token */
            activate(ks, label, k.version);
            for (int s = 0; s < 2; s++) {
                for (int j = 0; j < 4; j++) {
                    scp03_keys hsm = {0}, soft = {0};
                    test_rand_bytes(kdd, sizeof(kdd));
                    CHECK_OK(scp_keystore_derive(ks, label, k.version, combos[c].s[s], kdd, 10,
                                                 1, &hsm));
                    CHECK_OK(scp_div_derive(combos[c].s[s], master, len, kdd, 10, &soft));
                    CHECK(hsm.key_len == soft.key_len);
                    CHECK_MEM(hsm.enc, hsm.key_len, soft.enc, soft.key_len);
                    CHECK_MEM(hsm.mac, hsm.key_len, soft.mac, soft.key_len);
                    CHECK_MEM(hsm.dek, hsm.key_len, soft.dek, soft.key_len);
                    /* Tampered twin: another KDD gives other keys. */
                    kdd[5] ^= 1; /* a byte every scheme uses */
                    CHECK_OK(scp_keystore_derive(ks, label, k.version, combos[c].s[s], kdd, 10,
                                                 1, &hsm));
                    CHECK(memcmp(hsm.enc, soft.enc, soft.key_len) != 0);
                    scp_wipe(&hsm, sizeof(hsm));
                    scp_wipe(&soft, sizeof(soft));
                }
            }
            scp_wipe(master, sizeof(master));
        }
    }
}

static void kcv_of(scp_div_scheme s, const uint8_t *key, size_t len, uint8_t kcv[3])
{
    if (s == SCP_DIV_EMV || s == SCP_DIV_VISA2)
        CHECK_OK(scp_kcv_des3(key, len, kcv));
    else
        CHECK_OK(scp_kcv_aes(key, len, kcv));
}

/* Known answers through the token: tests/vectors/kdf3_gppro.txt. */
static void test_known_answers(scp_keystore *ks)
{
    vec_file vf;
    int n = 0;
    CHECK_OK(vec_load(vec_path("kdf3_gppro.txt"), &vf));
    for (size_t i = 0; i < vf.n; i++) {
        const vec_record *r = &vf.r[i];
        scp_div_scheme s;
        if (scp_div_parse(r->type, &s) != 0)
            continue;
        const vec_field *m = vec_get(r, "master", 0), *kdd = vec_get(r, "kdd", 0);
        if (m == NULL || kdd == NULL)
            continue;
        scp_ks_type t = s == SCP_DIV_EMV || s == SCP_DIV_VISA2
                            ? (m->len == 16 ? SCP_KS_DES2 : SCP_KS_DES3)
                            : (m->len == 16 ? SCP_KS_AES128
                                            : m->len == 24 ? SCP_KS_AES192 : SCP_KS_AES256);
        char label[40];
        scp_ks_key_info k;
        scp03_keys out = {0};
        snprintf(label, sizeof(label), "kat%zu", i);
        CHECK_OK(scp_keystore_import(ks, label, 0, t, m->bytes, m->len, "import", &k));
        activate(ks, label, k.version);
        CHECK_OK(scp_keystore_derive(ks, label, k.version, s, kdd->bytes, kdd->len, 1, &out));
        const char *kn[3] = {"kcv_enc", "kcv_mac", "kcv_dek"}, *vn[3] = {"enc", "mac", "dek"};
        uint8_t *keys[3] = {out.enc, out.mac, out.dek};
        for (int j = 0; j < 3; j++) {
            const vec_field *kc = vec_get(r, kn[j], 0), *kv = vec_get(r, vn[j], 0);
            uint8_t got[3];
            kcv_of(s, keys[j], out.key_len, got);
            if (kc != NULL) {
                CHECK_MEM(got, 3, kc->bytes, kc->len);
                n++;
            }
            if (kv != NULL) {
                CHECK_MEM(keys[j], out.key_len, kv->bytes, kv->len);
                n++;
            }
        }
    }
    CHECK(n >= 20);
    vec_free(&vf);
}

/* The KCV fallback: a key the token will not use for ECB gets the CMAC
 * kind, equal to the software CMAC over 16 x 01 (and not the GP KCV). */
static void test_kcv_fallback(scp_keystore *ks)
{
    uint8_t v[16], gp[3], cm[3], tok[3], kind = 9;
    scp_ks_key_info k;
    char id[80];
    CK_OBJECT_HANDLE h;
    CK_BBOOL fal = CK_FALSE;
    CK_ATTRIBUTE a = {CKA_ENCRYPT, &fal, 1};
    test_rand_bytes(v, sizeof(v));
    CHECK_OK(scp_keystore_import(ks, "signonly", 0, SCP_KS_AES128, v, 16, "import", &k));
    CHECK(k.kcv_cmac == 0);
    CHECK_OK(ks_obj_id("signonly", k.version, id, sizeof(id)));
    /* the token is written in a write transaction (gen.c), like the keystore does */
    CHECK_OK(ks_lock(ks));
    CHECK_OK(ks_gen_begin(ks));
    CHECK_OK(scp_p11_find(&ks->p11, CKO_SECRET_KEY, id, &h));
    CHECK(ks->p11.f->C_SetAttributeValue(ks->p11.sess, h, &a, 1) == CKR_OK);
    CHECK_OK(ks_gen_commit(ks));
    ks_unlock(ks);
    CHECK_OK(scp_p11_find(&ks->p11, CKO_SECRET_KEY, id, &h));
    CHECK_OK(ks_tok_kcv(ks, h, SCP_KS_AES128, tok, &kind));
    CHECK(kind == 1);
    CHECK_OK(ks_kcv_soft_kind(SCP_KS_AES128, 1, v, 16, cm));
    CHECK_OK(ks_kcv_soft_kind(SCP_KS_AES128, 0, v, 16, gp));
    CHECK_MEM(tok, 3, cm, 3);
    CHECK(memcmp(cm, gp, 3) != 0);
    /* derivation needs only CMAC: it still works and still equals software */
    static const uint8_t kdd[10] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0};
    scp03_keys hsm, soft;
    CHECK_OK(scp_keystore_activate_custodians(ks, "signonly", k.version, "alice", "alice-pin-1",
                                              "bob", "bob-pin-22", "t"));
    CHECK_OK(scp_keystore_derive(ks, "signonly", k.version, SCP_DIV_KDF3, kdd, 10, 1, &hsm));
    CHECK_OK(scp_div_derive(SCP_DIV_KDF3, v, 16, kdd, 10, &soft));
    CHECK_MEM(hsm.enc, 16, soft.enc, 16);
    scp_wipe(v, sizeof(v));
}

int main(void)
{
    test_seed(0x6b657973);
    scp_keystore *ks = ks_fresh();
    CHECK_OK(scp_keystore_custodian_add(ks, "alice", "alice-pin-1"));
    CHECK_OK(scp_keystore_custodian_add(ks, "bob", "bob-pin-22"));
    ks = test_init_open(ks);
    test_generate(ks);
    test_equal_to_software(ks);
    test_known_answers(ks);
    test_kcv_fallback(ks);
    uint64_t n, bad;
    char why[160];
    CHECK_OK(scp_keystore_audit_verify(ks, &n, &bad, why, sizeof(why)));
    CHECK(n > 50);
    scp_keystore_close(ks);
    return test_done("test_ks_derive");
}
