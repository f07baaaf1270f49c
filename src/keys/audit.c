/* scpkit keys: the audit log. Every key operation appends one record
 * (time, actor, operation, key label/version, KCV, card, result; never key
 * material) to the `audit` table:
 *   hash_n = SHA-256("scpkit-audit-1" | hash_{n-1} | seq | time | actor | op |
 *                    label | version | kcv | card | result), hash_0 = 32 x 00
 * (strings length-prefixed, integers big-endian), and a keyed checkpoint
 *   mac_n = HMAC-SHA-256(K_audit, "scpkit-ckpt-1" | seq | hash_n)
 * with K_audit generated inside the token (CKM_SHA256_HMAC, never
 * extractable). The newest (seq, hash, mac) is also written to a private
 * data object in the token, so a log cut short in the DB shows.
 *
 * Limits: someone holding the user PIN can write valid records; someone
 * who restores an old copy of both the DB and the token directory rolls the
 * log back undetectably (keep a copy of the head elsewhere for that). */
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include "keys/internal.h"
#include "core/guard.h"
#include "scpkit/crypto.h"

int ks_audit_schema(scp_keystore *ks)
{
    return ks_db_exec(
        ks, "CREATE TABLE IF NOT EXISTS audit(seq INTEGER PRIMARY KEY, time INTEGER NOT NULL,"
            " actor TEXT NOT NULL, op TEXT NOT NULL, label TEXT NOT NULL, version INTEGER NOT NULL,"
            " kcv TEXT NOT NULL, card TEXT NOT NULL, result INTEGER NOT NULL, prev BLOB NOT NULL,"
            " hash BLOB NOT NULL, mac BLOB NOT NULL);"
            "CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit"
            " BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;"
            "CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit"
            " BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;");
}

typedef struct rec {
    uint64_t seq;
    int64_t time;
    const char *actor, *op, *label, *kcv, *card;
    uint32_t version;
    int32_t result;
} rec;

static void put_u64(EVP_MD_CTX *c, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (56 - 8 * i));
    EVP_DigestUpdate(c, b, 8);
}

static void put_str(EVP_MD_CTX *c, const char *s)
{
    size_t n = strlen(s);
    put_u64(c, n);
    EVP_DigestUpdate(c, s, n);
}

static int rec_hash(const rec *r, const uint8_t prev[KS_HASH_LEN], uint8_t out[KS_HASH_LEN])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned int n = 0;
    int ok = c != NULL && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1;
    if (ok) {
        EVP_DigestUpdate(c, "scpkit-audit-1", 14);
        EVP_DigestUpdate(c, prev, KS_HASH_LEN);
        put_u64(c, r->seq);
        put_u64(c, (uint64_t)r->time);
        put_str(c, r->actor);
        put_str(c, r->op);
        put_str(c, r->label);
        put_u64(c, r->version);
        put_str(c, r->kcv);
        put_str(c, r->card);
        put_u64(c, (uint64_t)(int64_t)r->result);
        ok = EVP_DigestFinal_ex(c, out, &n) == 1 && n == KS_HASH_LEN;
    }
    EVP_MD_CTX_free(c);
    return ok ? SCP_OK : SCP_E_CRYPTO;
}

static int ckpt_mac(scp_keystore *ks, uint64_t seq, const uint8_t hash[KS_HASH_LEN],
                    uint8_t mac[KS_HASH_LEN])
{
    uint8_t in[13 + 8 + KS_HASH_LEN];
    memcpy(in, "scpkit-ckpt-1", 13);
    for (int i = 0; i < 8; i++)
        in[13 + i] = (uint8_t)(seq >> (56 - 8 * i));
    memcpy(in + 21, hash, KS_HASH_LEN);
    return ks_tok_hmac(ks, in, sizeof(in), mac);
}

/* The newest record's seq and hash (0 and zeros for an empty log). */
static int last_head(scp_keystore *ks, uint64_t *seq, uint8_t hash[KS_HASH_LEN])
{
    sqlite3_stmt *st;
    int rc = SCP_OK;
    *seq = 0;
    memset(hash, 0, KS_HASH_LEN);
    ENSURE(sqlite3_prepare_v2(ks->db, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
                              -1, &st, NULL) == SQLITE_OK,
           SCP_E_IO);
    if (sqlite3_step(st) == SQLITE_ROW) {
        *seq = (uint64_t)sqlite3_column_int64(st, 0);
        if (sqlite3_column_bytes(st, 1) == KS_HASH_LEN)
            memcpy(hash, sqlite3_column_blob(st, 1), KS_HASH_LEN);
        else
            rc = SCP_E_CORRUPT;
    }
    sqlite3_finalize(st);
    return rc;
}

static int insert(scp_keystore *ks, const rec *r, const uint8_t prev[KS_HASH_LEN],
                  const uint8_t hash[KS_HASH_LEN], const uint8_t mac[KS_HASH_LEN])
{
    sqlite3_stmt *st;
    ENSURE(sqlite3_prepare_v2(ks->db,
                              "INSERT INTO audit(seq, time, actor, op, label, version, kcv, card,"
                              " result, prev, hash, mac) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
                              -1, &st, NULL) == SQLITE_OK,
           SCP_E_IO);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)r->seq);
    sqlite3_bind_int64(st, 2, r->time);
    sqlite3_bind_text(st, 3, r->actor, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, r->op, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, r->label, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, r->version);
    sqlite3_bind_text(st, 7, r->kcv, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, r->card, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 9, r->result);
    sqlite3_bind_blob(st, 10, prev, KS_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_blob(st, 11, hash, KS_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_blob(st, 12, mac, KS_HASH_LEN, SQLITE_STATIC);
    int s = sqlite3_step(st);
    sqlite3_finalize(st);
    ENSURE(s == SQLITE_DONE, SCP_E_IO);
    return SCP_OK;
}

static int append(scp_keystore *ks, rec *r)
{
    uint8_t prev[KS_HASH_LEN], hash[KS_HASH_LEN], mac[KS_HASH_LEN], head[8 + 2 * KS_HASH_LEN];
    uint64_t seq;
    GUARD(last_head(ks, &seq, prev));
    r->seq = seq + 1;
    GUARD(rec_hash(r, prev, hash));
    GUARD(ckpt_mac(ks, r->seq, hash, mac));
    GUARD(insert(ks, r, prev, hash, mac));
    for (int i = 0; i < 8; i++)
        head[i] = (uint8_t)(r->seq >> (56 - 8 * i));
    memcpy(head + 8, hash, KS_HASH_LEN);
    memcpy(head + 8 + KS_HASH_LEN, mac, KS_HASH_LEN);
    return ks_tok_head_set(ks, head, sizeof(head));
}

int scp_keystore_audit(scp_keystore *ks, const char *op, const char *label, uint32_t version,
                       const uint8_t *kcv, const char *card, int result)
{
    char kcvs[7] = "";
    ENSURE(ks != NULL && op != NULL, SCP_E_ARG);
    if (kcv != NULL)
        snprintf(kcvs, sizeof(kcvs), "%02X%02X%02X", kcv[0], kcv[1], kcv[2]);
    rec r = {0, ks_now(), ks->actor, op, label ? label : "", kcvs, card ? card : "", version,
             result};
    /* One writer at a time: the head read and the insert are one step. */
    GUARD(ks_db_exec(ks, "BEGIN IMMEDIATE"));
    int rc = append(ks, &r);
    if (rc == SCP_OK)
        rc = ks_db_exec(ks, "COMMIT");
    if (rc != SCP_OK)
        ks_ignore(ks_db_exec(ks, "ROLLBACK"));
    return rc;
}

/* ---- verification ---- */

static const char *col(sqlite3_stmt *st, int i)
{
    const char *t = (const char *)sqlite3_column_text(st, i);
    return t != NULL ? t : "";
}

static int blob32(sqlite3_stmt *st, int i, uint8_t out[KS_HASH_LEN])
{
    ENSURE(sqlite3_column_bytes(st, i) == KS_HASH_LEN, SCP_E_CORRUPT);
    memcpy(out, sqlite3_column_blob(st, i), KS_HASH_LEN);
    return SCP_OK;
}

#define FAIL(seqv, ...)                                                                            \
    do {                                                                                           \
        *bad = (seqv);                                                                             \
        snprintf(why, why_size, __VA_ARGS__);                                                      \
        return SCP_E_CORRUPT;                                                                      \
    } while (0)

/* One row against the running chain state. */
static int verify_row(scp_keystore *ks, sqlite3_stmt *st, uint64_t want, uint8_t prev[KS_HASH_LEN],
                      uint64_t *bad, char *why, size_t why_size)
{
    uint8_t sprev[KS_HASH_LEN], shash[KS_HASH_LEN], smac[KS_HASH_LEN], h[KS_HASH_LEN],
        m[KS_HASH_LEN];
    rec r = {(uint64_t)sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1), col(st, 2),
             col(st, 3), col(st, 4), col(st, 6), col(st, 7),
             (uint32_t)sqlite3_column_int64(st, 5), sqlite3_column_int(st, 8)};
    if (r.seq > want)
        FAIL(want, "record %llu is missing (dropped): the log jumps to record %llu",
             (unsigned long long)want, (unsigned long long)r.seq);
    if (r.seq != want)
        FAIL(want, "record %llu is out of sequence", (unsigned long long)want);
    if (blob32(st, 9, sprev) < 0 || blob32(st, 10, shash) < 0 || blob32(st, 11, smac) < 0)
        FAIL(want, "record %llu is malformed", (unsigned long long)want);
    if (!scp_ct_eq(sprev, prev, KS_HASH_LEN))
        FAIL(want, "record %llu does not follow record %llu (reordered or replaced)",
             (unsigned long long)want, (unsigned long long)(want - 1));
    GUARD(rec_hash(&r, prev, h));
    if (!scp_ct_eq(h, shash, KS_HASH_LEN))
        FAIL(want, "record %llu was edited (its content no longer gives its hash)",
             (unsigned long long)want);
    GUARD(ckpt_mac(ks, want, h, m));
    if (!scp_ct_eq(m, smac, KS_HASH_LEN))
        FAIL(want, "record %llu has a forged checkpoint (HMAC under the token key fails)",
             (unsigned long long)want);
    memcpy(prev, h, KS_HASH_LEN);
    return SCP_OK;
}

/* The token's head against the last record read. */
static int verify_head(scp_keystore *ks, uint64_t last, const uint8_t hash[KS_HASH_LEN],
                       uint64_t *bad, char *why, size_t why_size)
{
    uint8_t head[8 + 2 * KS_HASH_LEN], m[KS_HASH_LEN];
    size_t hl = 0;
    uint64_t hseq = 0;
    int rc = ks_tok_head_get(ks, head, sizeof(head), &hl);
    if (rc == SCP_E_NOT_FOUND && last == 0)
        return SCP_OK;
    if (rc < 0 || hl != sizeof(head))
        FAIL(last + 1, "the token holds no valid audit checkpoint");
    for (int i = 0; i < 8; i++)
        hseq = hseq << 8 | head[i];
    GUARD(ckpt_mac(ks, hseq, head + 8, m));
    if (!scp_ct_eq(m, head + 8 + KS_HASH_LEN, KS_HASH_LEN))
        FAIL(hseq, "the token's audit checkpoint is forged");
    if (hseq > last)
        FAIL(last + 1, "log truncated: it ends at record %llu, the token's checkpoint is at %llu",
             (unsigned long long)last, (unsigned long long)hseq);
    if (hseq < last)
        FAIL(hseq + 1, "records after %llu were appended without the token checkpoint",
             (unsigned long long)hseq);
    if (!scp_ct_eq(head + 8, hash, KS_HASH_LEN))
        FAIL(last, "record %llu differs from the token's checkpoint", (unsigned long long)last);
    return SCP_OK;
}

int scp_keystore_audit_verify(scp_keystore *ks, uint64_t *records, uint64_t *bad, char *why,
                              size_t why_size)
{
    uint8_t prev[KS_HASH_LEN] = {0};
    uint64_t want = 1;
    sqlite3_stmt *st;
    int rc = SCP_OK, s;
    ENSURE(ks != NULL && records != NULL && bad != NULL && why != NULL && why_size > 0, SCP_E_ARG);
    *records = 0;
    *bad = 0;
    why[0] = 0;
    ENSURE(sqlite3_prepare_v2(ks->db,
                              "SELECT seq, time, actor, op, label, version, kcv, card, result,"
                              " prev, hash, mac FROM audit ORDER BY seq",
                              -1, &st, NULL) == SQLITE_OK,
           SCP_E_IO);
    while (rc == SCP_OK && (s = sqlite3_step(st)) == SQLITE_ROW) {
        rc = verify_row(ks, st, want, prev, bad, why, why_size);
        if (rc == SCP_OK)
            *records = want++;
    }
    sqlite3_finalize(st);
    GUARD(rc);
    return verify_head(ks, *records, prev, bad, why, why_size);
}

int scp_keystore_audit_each(scp_keystore *ks, uint64_t last,
                            void (*fn)(void *arg, const scp_ks_audit_rec *r), void *arg)
{
    sqlite3_stmt *st;
    ENSURE(ks != NULL && fn != NULL, SCP_E_ARG);
    ENSURE(sqlite3_prepare_v2(ks->db,
                              "SELECT seq, time, actor, op, label, version, kcv, card, result"
                              " FROM audit WHERE seq > (SELECT COALESCE(MAX(seq), 0) FROM audit)"
                              " - ?1 OR ?1 = 0 ORDER BY seq",
                              -1, &st, NULL) == SQLITE_OK,
           SCP_E_IO);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)last);
    while (sqlite3_step(st) == SQLITE_ROW) {
        scp_ks_audit_rec r = {(uint64_t)sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                              col(st, 2), col(st, 3), col(st, 4), col(st, 6), col(st, 7),
                              (uint32_t)sqlite3_column_int64(st, 5), sqlite3_column_int(st, 8)};
        fn(arg, &r);
    }
    sqlite3_finalize(st);
    return SCP_OK;
}
