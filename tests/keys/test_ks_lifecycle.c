/* Key lifecycle (NIST SP 800-57 Part 1 Rev. 5 section 7) against a real
 * token: the transition table, every forbidden transition refused from
 * every state (state unchanged), -> active only with a quorum, use per
 * state (only active keys open sessions, deactivated ones only check),
 * destroyed keys gone from the token, and the history recorded. */
#include <sqlite3.h>
#include "ks_test.h"
#include "keys/internal.h"

/* The table written in src/keys/lifecycle.c, restated independently. */
static int expect_allowed(scp_ks_state f, scp_ks_state t)
{
    switch (f) {
    case SCP_KS_PRE_ACTIVATION:
        return t == SCP_KS_ACTIVE || t == SCP_KS_COMPROMISED || t == SCP_KS_DESTROYED;
    case SCP_KS_ACTIVE:
        return t == SCP_KS_SUSPENDED || t == SCP_KS_DEACTIVATED || t == SCP_KS_COMPROMISED;
    case SCP_KS_SUSPENDED:
        return t == SCP_KS_ACTIVE || t == SCP_KS_DEACTIVATED || t == SCP_KS_COMPROMISED;
    case SCP_KS_DEACTIVATED:
        return t == SCP_KS_COMPROMISED || t == SCP_KS_DESTROYED;
    case SCP_KS_COMPROMISED:
        return t == SCP_KS_DESTROYED;
    default:
        return 0;
    }
}

static void activate(scp_keystore *ks, const char *label, uint32_t v)
{
    CHECK_OK(scp_keystore_activate_custodians(ks, label, v, "carol", "carol-pin", "dave",
                                              "dave-pin", "go live"));
}

/* Bring a fresh key to state s along allowed transitions. */
static uint32_t key_in_state(scp_keystore *ks, const char *label, scp_ks_state s)
{
    scp_ks_key_info k;
    CHECK_OK(scp_keystore_generate(ks, label, 0, SCP_KS_AES128, &k));
    switch (s) {
    case SCP_KS_ACTIVE:
        activate(ks, label, k.version);
        break;
    case SCP_KS_SUSPENDED:
    case SCP_KS_DEACTIVATED:
        activate(ks, label, k.version);
        CHECK_OK(scp_keystore_set_state(ks, label, k.version, s, "test path"));
        break;
    case SCP_KS_COMPROMISED:
    case SCP_KS_DESTROYED:
        CHECK_OK(scp_keystore_set_state(ks, label, k.version, s, "test path"));
        break;
    default:
        break;
    }
    CHECK_OK(scp_keystore_get(ks, label, k.version, &k));
    CHECK(k.state == s);
    return k.version;
}

static void test_table(void)
{
    for (int f = SCP_KS_PRE_ACTIVATION; f <= SCP_KS_DESTROYED; f++)
        for (int t = SCP_KS_PRE_ACTIVATION; t <= SCP_KS_DESTROYED; t++)
            CHECK_RC(scp_ks_transition_allowed((scp_ks_state)f, (scp_ks_state)t),
                     expect_allowed((scp_ks_state)f, (scp_ks_state)t) ? SCP_OK : SCP_E_STATE);
    CHECK_RC(scp_ks_transition_allowed((scp_ks_state)0, SCP_KS_ACTIVE), SCP_E_ARG);
    CHECK_RC(scp_ks_transition_allowed(SCP_KS_ACTIVE, (scp_ks_state)7), SCP_E_ARG);
    scp_ks_state s;
    CHECK_OK(scp_ks_state_parse("pre-activation", &s));
    CHECK(s == SCP_KS_PRE_ACTIVATION);
    CHECK_RC(scp_ks_state_parse("retired", &s), SCP_E_ARG);
}

/* From each state: every forbidden target refused, the state unchanged. */
static void test_forbidden(scp_keystore *ks)
{
    for (int f = SCP_KS_PRE_ACTIVATION; f <= SCP_KS_DESTROYED; f++) {
        char label[32];
        snprintf(label, sizeof(label), "from-%s", scp_ks_state_name((scp_ks_state)f));
        uint32_t v = key_in_state(ks, label, (scp_ks_state)f);
        for (int t = SCP_KS_PRE_ACTIVATION; t <= SCP_KS_DESTROYED; t++) {
            scp_ks_key_info k;
            if (expect_allowed((scp_ks_state)f, (scp_ks_state)t))
                continue;
            CHECK_RC(scp_keystore_set_state(ks, label, v, (scp_ks_state)t, "forbidden"),
                     t == SCP_KS_ACTIVE ? SCP_E_PERM : SCP_E_STATE);
            CHECK_OK(scp_keystore_get(ks, label, v, &k));
            CHECK(k.state == (scp_ks_state)f);
        }
        /* Allowed targets work (one fresh key each). */
        for (int t = SCP_KS_PRE_ACTIVATION; t <= SCP_KS_DESTROYED; t++) {
            if (!expect_allowed((scp_ks_state)f, (scp_ks_state)t))
                continue;
            char l2[48];
            snprintf(l2, sizeof(l2), "%s-to-%d", label, t);
            uint32_t v2 = key_in_state(ks, l2, (scp_ks_state)f);
            if (t == SCP_KS_ACTIVE) {
                /* never without a quorum, with one it works */
                CHECK_RC(scp_keystore_set_state(ks, l2, v2, SCP_KS_ACTIVE, "no quorum"),
                         SCP_E_PERM);
                activate(ks, l2, v2);
            } else {
                CHECK_RC(scp_keystore_set_state(ks, l2, v2, (scp_ks_state)t, ""), SCP_E_ARG);
                CHECK_OK(scp_keystore_set_state(ks, l2, v2, (scp_ks_state)t, "allowed"));
            }
            scp_ks_key_info k;
            CHECK_OK(scp_keystore_get(ks, l2, v2, &k));
            CHECK(k.state == (scp_ks_state)t);
        }
    }
}

/* Who may derive in which state. */
static void test_use(scp_keystore *ks)
{
    static const uint8_t kdd[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    scp03_keys a, b;
    uint32_t v = key_in_state(ks, "use", SCP_KS_ACTIVE);
    CHECK_OK(scp_keystore_derive(ks, "use", v, SCP_DIV_KDF3, kdd, 10, 1, &a));
    CHECK_OK(scp_keystore_set_state(ks, "use", v, SCP_KS_SUSPENDED, "investigation"));
    CHECK_RC(scp_keystore_derive(ks, "use", v, SCP_DIV_KDF3, kdd, 10, 1, &b), SCP_E_STATE);
    CHECK_RC(scp_keystore_derive(ks, "use", v, SCP_DIV_KDF3, kdd, 10, 0, &b), SCP_E_STATE);
    activate(ks, "use", v); /* suspended -> active: the quorum again */
    CHECK_OK(scp_keystore_set_state(ks, "use", v, SCP_KS_DEACTIVATED, "rotated to v2"));
    /* deactivated: processing only (checking old cards), no new sessions */
    CHECK_RC(scp_keystore_derive(ks, "use", v, SCP_DIV_KDF3, kdd, 10, 1, &b), SCP_E_STATE);
    CHECK_OK(scp_keystore_derive(ks, "use", v, SCP_DIV_KDF3, kdd, 10, 0, &b));
    CHECK_MEM(a.enc, 16, b.enc, 16);
    char id[80];
    CK_OBJECT_HANDLE h;
    CHECK_OK(ks_obj_id("use", v, id, sizeof(id)));
    CHECK_OK(scp_p11_find(&ks->p11, CKO_SECRET_KEY, id, &h));
    CHECK_OK(scp_keystore_set_state(ks, "use", v, SCP_KS_DESTROYED, "end of life"));
    CHECK_RC(scp_keystore_derive(ks, "use", v, SCP_DIV_KDF3, kdd, 10, 0, &b), SCP_E_STATE);
    /* C_DestroyObject ran: the key is gone from the token itself. */
    CHECK_RC(scp_p11_find(&ks->p11, CKO_SECRET_KEY, id, &h), SCP_E_NOT_FOUND);
}

static int count(const char *sql)
{
    char path[400];
    sqlite3 *db;
    sqlite3_stmt *st;
    int n = -1;
    snprintf(path, sizeof(path), "%s/keystore.db", ks_dir);
    if (sqlite3_open(path, &db) != SQLITE_OK)
        return -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

int main(void)
{
    scp_keystore *ks = ks_fresh();
    CHECK_OK(scp_keystore_custodian_add(ks, "carol", "carol-pin"));
    CHECK_OK(scp_keystore_custodian_add(ks, "dave", "dave-pin"));
    CHECK_RC(scp_keystore_custodian_add(ks, "dave", "dave-pin2"), SCP_E_STATE);
    CHECK_RC(scp_keystore_custodian_add(ks, "eve", "123"), SCP_E_ARG); /* too short */
    test_table();
    test_forbidden(ks);
    test_use(ks);
    /* Quorum: one person twice, a wrong PIN, an unknown custodian. */
    scp_ks_key_info k;
    CHECK_OK(scp_keystore_generate(ks, "quorum", 0, SCP_KS_AES128, &k));
    CHECK_RC(scp_keystore_activate_custodians(ks, "quorum", 1, "carol", "carol-pin", "carol",
                                              "carol-pin", "alone"),
             SCP_E_AUTH);
    CHECK_RC(scp_keystore_activate_custodians(ks, "quorum", 1, "carol", "carol-pin", "dave",
                                              "dave-pin-x", "typo"),
             SCP_E_AUTH);
    CHECK_RC(scp_keystore_activate_custodians(ks, "quorum", 1, "carol", "carol-pin", "mallory",
                                              "dave-pin", "stranger"),
             SCP_E_AUTH);
    CHECK_OK(scp_keystore_get(ks, "quorum", 1, &k));
    CHECK(k.state == SCP_KS_PRE_ACTIVATION);
    scp_keystore_close(ks);
    /* History: every change has a time and a reason; refusals are audited. */
    CHECK(count("SELECT COUNT(*) FROM key_history WHERE reason = '' OR time <= 0") == 0);
    CHECK(count("SELECT COUNT(*) FROM key_history WHERE label = 'use'") == 6);
    CHECK(count("SELECT COUNT(*) FROM audit WHERE result != 0") >= 20);
    /* A custodian row edited in the DB (verifier replaced) is caught. */
    char path[400];
    snprintf(path, sizeof(path), "%s/keystore.db", ks_dir);
    sqlite3 *db;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db,
                       "UPDATE custodians SET verifier = (SELECT verifier FROM custodians"
                       " WHERE name = 'carol'), salt = (SELECT salt FROM custodians WHERE"
                       " name = 'carol') WHERE name = 'dave'",
                       NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    ks = ks_reopen();
    CHECK_RC(scp_keystore_activate_custodians(ks, "quorum", 1, "carol", "carol-pin", "dave",
                                              "carol-pin", "forged row"),
             SCP_E_CORRUPT);
    scp_keystore_close(ks);
    /* Dual control cannot be skipped by editing the DB: a key row whose
     * state was set to active by hand fails its token MAC. */
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, "UPDATE keys SET state = 'active' WHERE label = 'quorum'", NULL, NULL,
                       NULL) == SQLITE_OK);
    sqlite3_close(db);
    ks = ks_reopen();
    static const uint8_t kdd[10] = {0};
    scp03_keys out;
    CHECK_RC(scp_keystore_get(ks, "quorum", 1, &k), SCP_E_CORRUPT);
    CHECK_RC(scp_keystore_derive(ks, "quorum", 1, SCP_DIV_KDF3, kdd, 10, 1, &out), SCP_E_CORRUPT);
    scp_keystore_close(ks);
    return test_done("test_ks_lifecycle");
}
