/* scpkit keys: key ceremonies and dual control.
 * A key generated inside the token is never extractable, so it cannot be
 * split afterwards. A ceremony key is therefore born in process memory:
 * random bytes, split into shares for the custodians, imported by
 * unwrapping (token.c) and wiped; `combine` rebuilds it from the shares in
 * another token (backup, disaster recovery). Activation needs a quorum:
 * M shares that rebuild the key's KCV, or two distinct custodians' PINs. */
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include "keys/internal.h"
#include "core/guard.h"
#include "scpkit/crypto.h"

static int format_shares(scp_ks_type type, int xor_scheme, unsigned m, unsigned n,
                         const uint8_t *vals, size_t len, char (*out)[SCP_KS_SHARE_TEXT_MAX])
{
    ks_share s = {xor_scheme, type, xor_scheme ? n : m, 0, {0}, len};
    int rc = SCP_OK;
    for (unsigned i = 0; i < n && rc == SCP_OK; i++) {
        s.x = i + 1;
        memcpy(s.v, vals + (size_t)i * len, len);
        rc = ks_share_format(&s, out[i], SCP_KS_SHARE_TEXT_MAX);
    }
    scp_wipe(&s, sizeof(s));
    return rc;
}

static int split_value(const uint8_t *v, size_t len, int xor_scheme, unsigned m, unsigned n,
                       uint8_t *vals)
{
    if (!xor_scheme)
        return ks_shamir_split(v, len, m, n, vals);
    ENSURE(n >= 2 && n <= 255, SCP_E_ARG);
    GUARD(scp_random(vals, (size_t)(n - 1) * len));
    memcpy(vals + (size_t)(n - 1) * len, v, len);
    for (unsigned i = 0; i + 1 < n; i++)
        for (size_t b = 0; b < len; b++)
            vals[(size_t)(n - 1) * len + b] ^= vals[(size_t)i * len + b];
    return SCP_OK;
}

int scp_keystore_split_new(scp_keystore *ks, const char *label, uint32_t version,
                           scp_ks_type type, int xor_scheme, unsigned m, unsigned n,
                           char (*shares)[SCP_KS_SHARE_TEXT_MAX], scp_ks_key_info *info)
{
    uint8_t v[SCP_KS_MAX_KEY], vals[255 * SCP_KS_MAX_KEY];
    size_t len = scp_ks_type_len(type);
    scp_ks_key_info k = {0};
    int rc;
    ENSURE(ks != NULL && shares != NULL && len != 0 && n >= 2 && n <= 255, SCP_E_ARG);
    ENSURE(!scp_ks_type_is_ec(type), SCP_E_ARG); /* EC pairs are made in the token */
    ENSURE(xor_scheme || (m >= 2 && m <= n), SCP_E_ARG);
    GUARD_GOTO(scp_random(v, len), done);
    GUARD_GOTO(split_value(v, len, xor_scheme, m, n, vals), done);
    GUARD_GOTO(format_shares(type, xor_scheme, m, n, vals, len, shares), done);
    rc = scp_keystore_import(ks, label, version, type, v, len, xor_scheme ? "xor" : "shamir",
                             &k);
    if (rc == SCP_OK && info != NULL)
        *info = k;
done:
    scp_wipe(v, sizeof(v));
    scp_wipe(vals, sizeof(vals));
    if (rc != SCP_OK)
        scp_wipe(shares, (size_t)n * SCP_KS_SHARE_TEXT_MAX);
    {
        char op[32];
        snprintf(op, sizeof(op), "split:%s:%u-of-%u", xor_scheme ? "xor" : "shamir",
                 xor_scheme ? n : m, n);
        int arc = scp_keystore_audit(ks, op, label, rc == SCP_OK ? k.version : version,
                                     rc == SCP_OK ? k.kcv : NULL, NULL, rc);
        return rc < 0 ? rc : arc;
    }
}

int scp_keystore_combine(scp_keystore *ks, const char *label, uint32_t version,
                         const char *const *shares, size_t n, const uint8_t *expect_kcv,
                         scp_ks_key_info *info)
{
    uint8_t v[SCP_KS_MAX_KEY];
    size_t len = 0;
    scp_ks_type type = SCP_KS_AES128;
    ks_share first;
    ENSURE(ks != NULL && shares != NULL && n >= 1, SCP_E_ARG);
    int rc = ks_shares_combine(shares, n, &type, v, &len);
    int xor_scheme = rc == SCP_OK && ks_share_parse(shares[0], &first) == SCP_OK &&
                     first.xor_scheme;
    scp_wipe(&first, sizeof(first));
    if (rc == SCP_OK)
        /* expect_kcv is checked against the token's own KCV of the key. */
        rc = ks_import(ks, label, version, type, v, len, xor_scheme ? "xor" : "shamir",
                       expect_kcv, info);
    else
        ks_ignore(scp_keystore_audit(ks, "combine", label, version, NULL, NULL, rc));
    scp_wipe(v, sizeof(v));
    return rc;
}

/* ---- quorum activation ---- */

int scp_keystore_activate_shares(scp_keystore *ks, const char *label, uint32_t version,
                                 const char *const *shares, size_t n, const char *reason)
{
    scp_ks_key_info k;
    uint8_t v[SCP_KS_MAX_KEY], kcv[3];
    size_t len = 0;
    scp_ks_type type;
    ENSURE(ks != NULL && label != NULL && shares != NULL, SCP_E_ARG);
    GUARD(ks_db_key_get(ks, label, version, &k));
    int rc = ks_shares_combine(shares, n, &type, v, &len);
    if (rc == SCP_OK && (type != k.type || len != k.length))
        rc = SCP_E_ARG;
    if (rc == SCP_OK)
        rc = ks_kcv_soft_kind(type, k.kcv_cmac, v, len, kcv);
    scp_wipe(v, sizeof(v));
    /* The quorum proves itself by rebuilding the key: same KCV. */
    if (rc == SCP_OK && !scp_ct_eq(kcv, k.kcv, 3))
        rc = SCP_E_KCV;
    if (rc != SCP_OK) {
        ks_ignore(scp_keystore_audit(ks, "activate:shares", k.label, k.version, k.kcv, NULL, rc));
        return rc;
    }
    return ks_transition(ks, &k, SCP_KS_ACTIVE, reason, "activate:shares");
}

/* Custodian PIN verifier: PBKDF2-HMAC-SHA-256 (100000 iterations, 16-byte
 * salt), and the row bound to the token by an HMAC under the audit key, so
 * editing the DB cannot enrol a custodian. */
#define KS_PBKDF2_ITER 100000

static int verifier(const char *pin, const uint8_t salt[16], uint8_t out[32])
{
    ENSURE(PKCS5_PBKDF2_HMAC(pin, (int)strlen(pin), salt, 16, KS_PBKDF2_ITER, EVP_sha256(), 32,
                             out) == 1,
           SCP_E_CRYPTO);
    return SCP_OK;
}

static int row_mac(scp_keystore *ks, const char *name, const uint8_t salt[16],
                   const uint8_t ver[32], uint8_t mac[32])
{
    uint8_t in[19 + SCP_KS_LABEL_MAX + 1 + 16 + 32];
    size_t nl = strlen(name);
    ENSURE(nl >= 1 && nl <= SCP_KS_LABEL_MAX, SCP_E_ARG);
    memcpy(in, "scpkit-custodian-1:", 19);
    memcpy(in + 19, name, nl + 1); /* with its NUL: no ambiguity with salt */
    memcpy(in + 20 + nl, salt, 16);
    memcpy(in + 36 + nl, ver, 32);
    return ks_tok_hmac(ks, in, 68 + nl, mac);
}

int scp_keystore_custodian_add(scp_keystore *ks, const char *name, const char *pin)
{
    uint8_t salt[16], ver[32], mac[32];
    sqlite3_stmt *st;
    ENSURE(ks != NULL && name != NULL && pin != NULL && strlen(pin) >= 6, SCP_E_ARG);
    GUARD(scp_random(salt, sizeof(salt)));
    GUARD(verifier(pin, salt, ver));
    GUARD(row_mac(ks, name, salt, ver, mac));
    GUARD(ks_tx_begin(ks));
    int rc = sqlite3_prepare_v2(ks->db,
                                "INSERT INTO custodians(name, salt, verifier, mac) VALUES(?,?,?,?)",
                                -1, &st, NULL) == SQLITE_OK
                 ? SCP_OK
                 : SCP_E_IO;
    if (rc == SCP_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 2, salt, 16, SQLITE_STATIC);
        sqlite3_bind_blob(st, 3, ver, 32, SQLITE_STATIC);
        sqlite3_bind_blob(st, 4, mac, 32, SQLITE_STATIC);
        int s = sqlite3_step(st);
        sqlite3_finalize(st);
        rc = s == SQLITE_DONE ? SCP_OK : ks_db_rc(ks, s, "enrolling a custodian");
    }
    scp_wipe(ver, sizeof(ver));
    if (rc == SCP_OK)
        rc = ks_rows_note(ks, KS_T_CUSTODIANS, name);
    char op[SCP_KS_LABEL_MAX + 16];
    snprintf(op, sizeof(op), "custodian-add:%s", name);
    if (rc != SCP_OK) {
        ks_tx_rollback(ks);
        ks_ignore(scp_keystore_audit(ks, op, "", 0, NULL, NULL, rc));
        return rc;
    }
    rc = ks_audit_append(ks, op, "", 0, NULL, NULL, SCP_OK);
    if (rc != SCP_OK) {
        ks_tx_rollback(ks);
        return rc;
    }
    return ks_tx_commit(ks);
}

static int custodian_check(scp_keystore *ks, const char *name, const char *pin)
{
    uint8_t salt[16], ver[32], mac[32], got[32], gmac[32];
    sqlite3_stmt *st;
    int rc = SCP_E_AUTH;
    ENSURE(sqlite3_prepare_v2(ks->db, "SELECT salt, verifier, mac FROM custodians WHERE name = ?",
                              -1, &st, NULL) == SQLITE_OK,
           SCP_E_IO);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 16 &&
        sqlite3_column_bytes(st, 1) == 32 && sqlite3_column_bytes(st, 2) == 32) {
        memcpy(salt, sqlite3_column_blob(st, 0), 16);
        memcpy(ver, sqlite3_column_blob(st, 1), 32);
        memcpy(mac, sqlite3_column_blob(st, 2), 32);
        rc = SCP_OK;
    }
    sqlite3_finalize(st);
    GUARD(rc);
    GUARD(row_mac(ks, name, salt, ver, gmac));
    ENSURE(scp_ct_eq(gmac, mac, 32), SCP_E_CORRUPT);
    GUARD(verifier(pin, salt, got));
    rc = scp_ct_eq(got, ver, 32) ? SCP_OK : SCP_E_AUTH;
    scp_wipe(got, sizeof(got));
    return rc;
}

int scp_keystore_activate_custodians(scp_keystore *ks, const char *label, uint32_t version,
                                     const char *name1, const char *pin1, const char *name2,
                                     const char *pin2, const char *reason)
{
    scp_ks_key_info k;
    ENSURE(ks != NULL && label != NULL && name1 && pin1 && name2 && pin2, SCP_E_ARG);
    GUARD(ks_db_key_get(ks, label, version, &k));
    int rc = strcmp(name1, name2) != 0 ? SCP_OK : SCP_E_AUTH; /* two people */
    if (rc == SCP_OK)
        rc = custodian_check(ks, name1, pin1);
    if (rc == SCP_OK)
        rc = custodian_check(ks, name2, pin2);
    char op[2 * SCP_KS_LABEL_MAX + 32];
    snprintf(op, sizeof(op), "activate:custodians:%s+%s", name1, name2);
    if (rc != SCP_OK) {
        ks_ignore(scp_keystore_audit(ks, op, k.label, k.version, k.kcv, NULL, rc));
        return rc;
    }
    return ks_transition(ks, &k, SCP_KS_ACTIVE, reason, op);
}
