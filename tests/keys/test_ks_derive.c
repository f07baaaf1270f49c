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


/* The last three records: bit 0 derive of cur, 1 derive of next, 2 card. */
static void count_recs(void *arg, const scp_ks_audit_rec *r)
{
    uint64_t *seen = arg;
    if (strcmp(r->op, "derive:kdf3") == 0 && strcmp(r->label, "cur") == 0 && r->result == 0 &&
        strcmp(r->card, "102030405060708090A0") == 0)
        *seen |= 1u << 0;
    if (strcmp(r->op, "derive:sp800-108") == 0 && strcmp(r->label, "next") == 0 &&
        r->result == 0)
        *seen |= 1u << 1;
    if (strcmp(r->op, "card") == 0 && strcmp(r->label, "next") == 0)
        *seen |= 1u << 2;
}

static void find_kvn7(void *arg, const scp_ks_card *c)
{
    if (c->kvn == 0x07)
        *(int *)arg = 1;
}

/* One card's derivations in one transaction (scp_keystore_derive_set):
 * the same keys as one scp_keystore_derive each, one audit record per
 * derivation plus the card record, one commit instead of one per call;
 * the channel hook (derive + card) commits once. Twins: a request on a
 * key that is not active wipes every output and writes no card record
 * (its refusal is audited); an unknown label. No C_OpenSession per
 * derive: the handle's one session serves them all. */
static scp_keystore *test_derive_set(scp_keystore *ks)
{
    scp_ks_key_info k;
    scp03_keys a, b, a1, b1, zero;
    uint8_t kdd[SCP03_KDD_LEN] = {0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xA0};
    memset(&zero, 0, sizeof(zero));
    CHECK_OK(scp_keystore_generate(ks, "cur", 0, SCP_KS_AES128, &k));
    activate(ks, "cur", 1);
    CHECK_OK(scp_keystore_generate(ks, "next", 0, SCP_KS_AES256, &k));
    activate(ks, "next", 1);
    CHECK_OK(scp_keystore_derive(ks, "cur", 1, SCP_DIV_KDF3, kdd, sizeof(kdd), 0, &a1));
    CHECK_OK(scp_keystore_derive(ks, "next", 1, SCP_DIV_SP800_108, kdd, sizeof(kdd), 1, &b1));
    unsigned long c0 = ks->commits, s0 = scp_p11_sessions_opened();
    scp_ks_derive_req q[2] = {{"cur", 1, SCP_DIV_KDF3, 0, &a, -1},
                              {"next", 0, SCP_DIV_SP800_108, 1, &b, -1}};
    scp_ks_card_note note = {"next", 1, SCP_DIV_SP800_108, 0x02};
    CHECK_OK(scp_keystore_derive_set(ks, kdd, sizeof(kdd), q, 2, &note));
    CHECK(q[0].rc == SCP_OK && q[1].rc == SCP_OK);
    CHECK(ks->commits == c0 + 1);
    CHECK_MEM(a.enc, a.key_len, a1.enc, a1.key_len);
    CHECK_MEM(a.dek, a.key_len, a1.dek, a1.key_len);
    CHECK_MEM(b.mac, b.key_len, b1.mac, b1.key_len);
    /* the log holds what three calls would have written */
    uint64_t seen = 0;
    CHECK_OK(scp_keystore_audit_each(ks, 3, count_recs, &seen));
    CHECK(seen == (1u << 0 | 1u << 1 | 1u << 2));
    /* the channel hook: derive and card record in one commit (its own
     * handle: PKCS#11 login state is per process, so this one closes) */
    void *ctx = NULL;
    scp_keystore_close(ks);
    setenv("SCPKIT_USER_PIN", KS_USER_PIN, 1);
    scp_keystore *k2;
    CHECK_OK(scp_keystore_derive_open(ks_dir, "cur:1", "kdf3", &ctx));
    k2 = scp_keystore_derive_keystore(ctx);
    if (k2 != NULL) {
        unsigned long c1 = k2->commits;
        CHECK_OK(scp_keystore_derive_cb(ctx, kdd, sizeof(kdd), 0x01, &a));
        CHECK(k2->commits == c1 + 1);
        CHECK_MEM(a.enc, a.key_len, a1.enc, a1.key_len);
        CHECK(a.kvn == 0x01);
    }
    scp_keystore_derive_close(ctx);
    ks = ks_reopen();
    s0 = scp_p11_sessions_opened();
    /* twins: a key that is not active (required), an unknown label */
    CHECK_OK(scp_keystore_generate(ks, "idle", 0, SCP_KS_AES128, &k));
    scp_ks_derive_req bad[2] = {{"cur", 1, SCP_DIV_KDF3, 1, &a, -1},
                                {"idle", 1, SCP_DIV_KDF3, 1, &b, -1}};
    scp_ks_card_note note2 = {"idle", 1, SCP_DIV_KDF3, 0x07};
    CHECK_RC(scp_keystore_derive_set(ks, kdd, sizeof(kdd), bad, 2, &note2), SCP_E_STATE);
    CHECK(bad[0].rc == SCP_OK && bad[1].rc == SCP_E_STATE);
    CHECK_MEM((const uint8_t *)&a, sizeof(a), (const uint8_t *)&zero, sizeof(zero));
    CHECK_MEM((const uint8_t *)&b, sizeof(b), (const uint8_t *)&zero, sizeof(zero));
    int idle_card = 0;
    CHECK_OK(scp_keystore_card_each(ks, find_kvn7, &idle_card));
    CHECK(idle_card == 0);
    scp_ks_derive_req none[1] = {{"nosuch", 1, SCP_DIV_KDF3, 0, &a, -1}};
    CHECK_RC(scp_keystore_derive_set(ks, kdd, sizeof(kdd), none, 1, NULL), SCP_E_NOT_FOUND);
    CHECK_RC(scp_keystore_derive_set(ks, kdd, 5, q, 2, NULL), SCP_E_ARG);
    /* 100 derives, no new PKCS#11 session */
    s0 = scp_p11_sessions_opened();
    for (int i = 0; i < 100; i++) {
        kdd[9] = (uint8_t)i;
        CHECK_OK(scp_keystore_derive(ks, "cur", 1, SCP_DIV_KDF3, kdd, sizeof(kdd), 1, &a));
    }
    CHECK(scp_p11_sessions_opened() == s0);
    scp_wipe(&a, sizeof(a));
    scp_wipe(&b, sizeof(b));
    return ks;
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
    ks = test_derive_set(ks);
    uint64_t n, bad;
    char why[160];
    CHECK_OK(scp_keystore_audit_verify(ks, &n, &bad, why, sizeof(why)));
    CHECK(n > 50);
    scp_keystore_close(ks);
    return test_done("test_ks_derive");
}
