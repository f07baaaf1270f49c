/* scpkit keys: the audit log. Every key operation appends one record
 * (time, actor, operation, key label/version, KCV, card, result, and the
 * digests of the protected rows it changed; never key material) to the
 * `audit` table:
 *   hash_n = SHA-256("scpkit-audit-2" | hash_{n-1} | seq | time | actor | op |
 *                    label | version | kcv | card | result | rows), hash_0 = 32 x 00
 * (strings length-prefixed, integers big-endian; records written before
 * schema 2 use "scpkit-audit-1" and no rows), and a keyed checkpoint
 *   mac_n = HMAC-SHA-256(K_audit, "scpkit-ckpt-1" | seq | hash_n)
 * with K_audit generated inside the token (CKM_SHA256_HMAC, never
 * extractable). The newest (seq, hash, mac) is the authenticated head, a
 * row of `head` written in the same SQLite transaction as the record (so a
 * kill can never separate them); each token write transaction also copies
 * the head into a private data object in the token (the checkpoint), so a
 * log cut short below the last checkpoint shows.
 *
 * `rows` lists, for every row of a protected table (keys, key_history,
 * cards, custodians, pending) changed in the record's transaction,
 * "<t><SHA-256(table|0|primary key)>=<SHA-256 of the row's columns>" or
 * "=-" for a deleted row, ';'-separated. Replaying the log gives what each
 * table must hold: `audit verify` finds any row added, edited, deleted or
 * swapped outside the keystore.
 *
 * Limits: someone holding the user PIN can write valid records; someone
 * who restores an old copy of both the DB and the token directory rolls the
 * log back undetectably (keep a copy of the head elsewhere for that); a
 * truncation of the records after the token's last checkpoint that also
 * restores an older head row is not detected (`scpkit audit checkpoint`
 * moves the checkpoint). */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "keys/internal.h"
#include "core/guard.h"
#include "scpkit/crypto.h"

static int has_column(scp_keystore *ks, const char *table, const char *col)
{
    sqlite3_stmt *st;
    char sql[96];
    int found = 0;
    snprintf(sql, sizeof(sql), "PRAGMA table_info(%s)", table);
    ENSURE(sqlite3_prepare_v2(ks->db, sql, -1, &st, NULL) == SQLITE_OK, SCP_E_IO);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *n = (const char *)sqlite3_column_text(st, 1);
        if (n != NULL && strcmp(n, col) == 0)
            found = 1;
    }
    sqlite3_finalize(st);
    return found;
}

int ks_audit_schema(scp_keystore *ks)
{
    GUARD(ks_db_exec(
        ks, "CREATE TABLE IF NOT EXISTS audit(seq INTEGER PRIMARY KEY, time INTEGER NOT NULL,"
            " actor TEXT NOT NULL, op TEXT NOT NULL, label TEXT NOT NULL, version INTEGER NOT NULL,"
            " kcv TEXT NOT NULL, card TEXT NOT NULL, result INTEGER NOT NULL, prev BLOB NOT NULL,"
            " hash BLOB NOT NULL, mac BLOB NOT NULL, fmt INTEGER NOT NULL DEFAULT 2,"
            " rows TEXT NOT NULL DEFAULT '');"
            "CREATE TABLE IF NOT EXISTS head(id INTEGER PRIMARY KEY CHECK(id = 1),"
            " seq INTEGER NOT NULL, hash BLOB NOT NULL, mac BLOB NOT NULL);"
            "CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit"
            " BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;"
            "CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit"
            " BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;"));
    int c = has_column(ks, "audit", "rows");
    GUARD(c);
    if (!c) /* schema 1 (issue 6): its records keep their format */
        GUARD(ks_db_exec(ks, "ALTER TABLE audit ADD COLUMN fmt INTEGER NOT NULL DEFAULT 1;"
                             "ALTER TABLE audit ADD COLUMN rows TEXT NOT NULL DEFAULT '';"));
    return SCP_OK;
}

typedef struct rec {
    uint64_t seq;
    int64_t time;
    const char *actor, *op, *label, *kcv, *card;
    uint32_t version;
    int32_t result;
    int fmt;
    const char *rows;
} rec;

static void put_u64(EVP_MD_CTX *c, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (56 - 8 * i));
    EVP_DigestUpdate(c, b, 8);
}

static void put_bytes(EVP_MD_CTX *c, const void *p, size_t n)
{
    put_u64(c, n);
    EVP_DigestUpdate(c, p, n);
}

static void put_str(EVP_MD_CTX *c, const char *s)
{
    put_bytes(c, s, strlen(s));
}

static int rec_hash(const rec *r, const uint8_t prev[KS_HASH_LEN], uint8_t out[KS_HASH_LEN])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned int n = 0;
    int ok = c != NULL && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1;
    if (ok) {
        EVP_DigestUpdate(c, r->fmt >= 2 ? "scpkit-audit-2" : "scpkit-audit-1", 14);
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
        if (r->fmt >= 2)
            put_str(c, r->rows);
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

static const char *col(sqlite3_stmt *st, int i)
{
    const char *t = (const char *)sqlite3_column_text(st, i);
    return t != NULL ? t : "";
}

/* ---- protected rows ---- */

static const struct {
    const char *name, *pk;
    char tag;
} tables[KS_T_COUNT] = {
    [KS_T_KEYS] = {"keys", "label || ':' || version", 'k'},
    [KS_T_HISTORY] = {"key_history", "id", 'h'},
    [KS_T_CARDS] = {"cards", "kdd", 'c'},
    [KS_T_CUSTODIANS] = {"custodians", "name", 'u'},
    [KS_T_PENDING] = {"pending", "id", 'p'},
};

static void hex32(const uint8_t *h, char out[65])
{
    static const char d[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = d[h[i] >> 4];
        out[2 * i + 1] = d[h[i] & 15];
    }
    out[64] = 0;
}

static int pk_hash(int t, const char *pk, char out[65])
{
    uint8_t h[KS_HASH_LEN];
    unsigned int n = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = c != NULL && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(c, tables[t].name, strlen(tables[t].name) + 1) == 1 &&
             EVP_DigestUpdate(c, pk, strlen(pk)) == 1 && EVP_DigestFinal_ex(c, h, &n) == 1;
    EVP_MD_CTX_free(c);
    ENSURE(ok, SCP_E_CRYPTO);
    hex32(h, out);
    return SCP_OK;
}

/* SHA-256 over columns first..n-1 of the current row (type, length, bytes). */
static int row_hash(sqlite3_stmt *st, int t, int first, char out[65])
{
    uint8_t h[KS_HASH_LEN];
    unsigned int n = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = c != NULL && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1;
    if (ok) {
        EVP_DigestUpdate(c, "scpkit-row-1", 12);
        put_str(c, tables[t].name);
        for (int i = first; i < sqlite3_column_count(st); i++) {
            uint8_t ty = (uint8_t)sqlite3_column_type(st, i);
            EVP_DigestUpdate(c, &ty, 1);
            if (ty == SQLITE_BLOB)
                put_bytes(c, sqlite3_column_blob(st, i), (size_t)sqlite3_column_bytes(st, i));
            else if (ty != SQLITE_NULL)
                put_bytes(c, sqlite3_column_text(st, i), (size_t)sqlite3_column_bytes(st, i));
        }
        ok = EVP_DigestFinal_ex(c, h, &n) == 1;
    }
    EVP_MD_CTX_free(c);
    ENSURE(ok, SCP_E_CRYPTO);
    hex32(h, out);
    return SCP_OK;
}

int ks_rows_note(scp_keystore *ks, int t, const char *pk)
{
    char sql[160], pkh[65], rh[65] = "-";
    sqlite3_stmt *st;
    ENSURE(t >= 0 && t < KS_T_COUNT && ks->in_tx, SCP_E_STATE);
    snprintf(sql, sizeof(sql), "SELECT * FROM %s WHERE %s = ?1", tables[t].name, tables[t].pk);
    ENSURE(sqlite3_prepare_v2(ks->db, sql, -1, &st, NULL) == SQLITE_OK, SCP_E_IO);
    sqlite3_bind_text(st, 1, pk, -1, SQLITE_STATIC);
    int r = sqlite3_step(st), rc = SCP_OK;
    if (r == SQLITE_ROW)
        rc = row_hash(st, t, 0, rh);
    else if (r != SQLITE_DONE)
        rc = ks_db_rc(ks, r, "reading a row");
    sqlite3_finalize(st);
    GUARD(rc);
    GUARD(pk_hash(t, pk, pkh));
    if (ks->rows_cap - ks->rows_len < 160) {
        size_t cap = ks->rows_cap ? 2 * ks->rows_cap : 2048;
        char *nr = realloc(ks->rows, cap);
        ENSURE(nr != NULL, SCP_E_NOMEM);
        ks->rows = nr;
        ks->rows_cap = cap;
    }
    int n = snprintf(ks->rows + ks->rows_len, ks->rows_cap - ks->rows_len, "%s%c%s=%s",
                     ks->rows_len ? ";" : "", tables[t].tag, pkh, rh);
    ENSURE(n > 0 && (size_t)n < ks->rows_cap - ks->rows_len, SCP_E_BUFFER_TOO_SMALL);
    ks->rows_len += (size_t)n;
    return SCP_OK;
}

/* ---- appending ---- */

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
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        *seq = (uint64_t)sqlite3_column_int64(st, 0);
        if (sqlite3_column_bytes(st, 1) == KS_HASH_LEN)
            memcpy(hash, sqlite3_column_blob(st, 1), KS_HASH_LEN);
        else
            rc = SCP_E_CORRUPT;
    } else if (s != SQLITE_DONE) {
        rc = ks_db_rc(ks, s, "reading the audit log");
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
                              " result, prev, hash, mac, fmt, rows)"
                              " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,2,?)",
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
    sqlite3_bind_text(st, 13, r->rows, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    sqlite3_finalize(st);
    if (s != SQLITE_DONE)
        return ks_db_rc(ks, s, "appending to the audit log");
    ENSURE(sqlite3_prepare_v2(ks->db,
                              "INSERT OR REPLACE INTO head(id, seq, hash, mac) VALUES(1, ?, ?, ?)",
                              -1, &st, NULL) == SQLITE_OK,
           SCP_E_IO);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)r->seq);
    sqlite3_bind_blob(st, 2, hash, KS_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, mac, KS_HASH_LEN, SQLITE_STATIC);
    s = sqlite3_step(st);
    sqlite3_finalize(st);
    return s == SQLITE_DONE ? SCP_OK : ks_db_rc(ks, s, "moving the audit head");
}

int ks_audit_append(scp_keystore *ks, const char *op, const char *label, uint32_t version,
                    const uint8_t *kcv, const char *card, int result)
{
    uint8_t prev[KS_HASH_LEN], hash[KS_HASH_LEN], mac[KS_HASH_LEN];
    char kcvs[7] = "";
    uint64_t seq;
    ENSURE(ks->in_tx, SCP_E_STATE);
    if (kcv != NULL)
        snprintf(kcvs, sizeof(kcvs), "%02X%02X%02X", kcv[0], kcv[1], kcv[2]);
    rec r = {0, ks_now(), ks->actor, op, label ? label : "", kcvs, card ? card : "", version,
             result, 2, ks->rows_len ? ks->rows : ""};
    GUARD(last_head(ks, &seq, prev));
    r.seq = seq + 1;
    GUARD(rec_hash(&r, prev, hash));
    GUARD(ckpt_mac(ks, r.seq, hash, mac));
    GUARD(insert(ks, &r, prev, hash, mac));
    ks->rows_len = 0;
    return SCP_OK;
}

int scp_keystore_audit(scp_keystore *ks, const char *op, const char *label, uint32_t version,
                       const uint8_t *kcv, const char *card, int result)
{
    ENSURE(ks != NULL && op != NULL, SCP_E_ARG);
    GUARD(ks_tx_begin(ks));
    int rc = ks_audit_append(ks, op, label, version, kcv, card, result);
    if (rc == SCP_OK)
        return ks_tx_commit(ks);
    ks_tx_rollback(ks);
    return rc;
}

/* Schema 1 -> 2: the rows as they are, noted in one record, so verify
 * can hold every later change against them (under the writer lock). */
int ks_audit_migrate_needed(scp_keystore *ks)
{
    sqlite3_stmt *st;
    int need = 0;
    if (sqlite3_prepare_v2(ks->db,
                           "SELECT NOT EXISTS(SELECT 1 FROM head) AND"
                           " EXISTS(SELECT 1 FROM audit) AND"
                           " NOT EXISTS(SELECT 1 FROM audit WHERE fmt >= 2)",
                           -1, &st, NULL) != SQLITE_OK)
        return 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        need = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return need;
}

int ks_audit_migrate(scp_keystore *ks)
{
    sqlite3_stmt *st;
    int rc = SCP_OK;
    if (!ks_audit_migrate_needed(ks))
        return SCP_OK;
    GUARD(ks_tx_begin(ks));
    for (int t = 0; t < KS_T_COUNT && rc == SCP_OK; t++) {
        char sql[128];
        snprintf(sql, sizeof(sql), "SELECT %s FROM %s", tables[t].pk, tables[t].name);
        if (sqlite3_prepare_v2(ks->db, sql, -1, &st, NULL) != SQLITE_OK) {
            rc = SCP_E_IO;
            break;
        }
        while (rc == SCP_OK && sqlite3_step(st) == SQLITE_ROW) {
            char pk[256];
            snprintf(pk, sizeof(pk), "%s", col(st, 0));
            rc = ks_rows_note(ks, t, pk);
        }
        sqlite3_finalize(st);
    }
    if (rc == SCP_OK)
        rc = ks_audit_append(ks, "migrate:schema-2", "", 0, NULL, NULL, SCP_OK);
    if (rc != SCP_OK) {
        ks_tx_rollback(ks);
        return rc;
    }
    return ks_tx_commit(ks);
}

/* The head (a committed record) into the token: inside ks_gen_begin/commit. */
int ks_audit_checkpoint(scp_keystore *ks)
{
    uint8_t head[8 + 2 * KS_HASH_LEN];
    sqlite3_stmt *st;
    int rc = SCP_E_NOT_FOUND;
    ENSURE(sqlite3_prepare_v2(ks->db, "SELECT seq, hash, mac FROM head WHERE id = 1", -1, &st,
                              NULL) == SQLITE_OK,
           SCP_E_IO);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 1) == KS_HASH_LEN &&
        sqlite3_column_bytes(st, 2) == KS_HASH_LEN) {
        uint64_t seq = (uint64_t)sqlite3_column_int64(st, 0);
        for (int i = 0; i < 8; i++)
            head[i] = (uint8_t)(seq >> (56 - 8 * i));
        memcpy(head + 8, sqlite3_column_blob(st, 1), KS_HASH_LEN);
        memcpy(head + 8 + KS_HASH_LEN, sqlite3_column_blob(st, 2), KS_HASH_LEN);
        rc = SCP_OK;
    }
    sqlite3_finalize(st);
    if (rc == SCP_E_NOT_FOUND)
        return SCP_OK; /* an empty log: nothing to checkpoint */
    GUARD(ks_crash_point("p11-checkpoint"));
    return ks_tok_head_set(ks, head, sizeof(head));
}

/* ---- verification ---- */

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
             (uint32_t)sqlite3_column_int64(st, 5), sqlite3_column_int(st, 8),
             sqlite3_column_int(st, 12), col(st, 13)};
    if (r.seq > want)
        FAIL(want, "record %llu is missing (dropped): the log jumps to record %llu",
             (unsigned long long)want, (unsigned long long)r.seq);
    if (r.seq != want)
        FAIL(want, "record %llu is out of sequence", (unsigned long long)want);
    if (blob32(st, 9, sprev) < 0 || blob32(st, 10, shash) < 0 || blob32(st, 11, smac) < 0 ||
        r.fmt < 1 || r.fmt > 2)
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

/* The rows a record says it changed, into the expected state. */
static int replay_rows(scp_keystore *ks, sqlite3_stmt *ins, sqlite3_stmt *del, const char *rows,
                       uint64_t seq, uint64_t *bad, char *why, size_t why_size)
{
    const char *p = rows;
    while (*p != 0) {
        const char *e = strchr(p, ';');
        size_t n = e != NULL ? (size_t)(e - p) : strlen(p);
        if (n != 1 + 64 + 1 + 64 && !(n == 1 + 64 + 2 && p[66] == '-'))
            FAIL(seq, "record %llu lists a malformed row digest", (unsigned long long)seq);
        char pk[66], h[65];
        memcpy(pk, p, 65);
        pk[65] = 0;
        memcpy(h, p + 66, n - 66);
        h[n - 66] = 0;
        sqlite3_stmt *s = h[0] == '-' ? del : ins;
        sqlite3_reset(s);
        sqlite3_bind_text(s, 1, pk, -1, SQLITE_TRANSIENT);
        if (s == ins)
            sqlite3_bind_text(s, 2, h, -1, SQLITE_TRANSIENT);
        ENSURE(sqlite3_step(s) == SQLITE_DONE, SCP_E_IO);
        p += n;
        if (*p == ';')
            p++;
    }
    (void)ks;
    return SCP_OK;
}

static int is_recovery(const char *op)
{
    size_t n = strlen(op);
    return strncmp(op, "reconcile:", 10) == 0 ||
           (n > 10 && strcmp(op + n - 10, ":recovered") == 0) ||
           (n > 12 && strcmp(op + n - 12, ":rolled-back") == 0);
}

/* The chain, the head, the rows; ckpt_seq/ckpt_hash: the token's. */
static int verify_chain(scp_keystore *ks, scp_ks_verify *v, uint64_t ckpt_seq,
                        const uint8_t *ckpt_hash, uint8_t last[KS_HASH_LEN])
{
    uint64_t *bad = &v->bad_seq, want = 1;
    char *why = v->why;
    size_t why_size = sizeof(v->why);
    sqlite3_stmt *st, *ins = NULL, *del = NULL;
    int rc = SCP_OK, s, ckpt_ok = ckpt_seq == 0;
    memset(last, 0, KS_HASH_LEN);
    GUARD(ks_db_exec(ks, "CREATE TEMP TABLE IF NOT EXISTS ks_exp(pk TEXT PRIMARY KEY,"
                         " h TEXT NOT NULL, seen INTEGER NOT NULL DEFAULT 0);"
                         "DELETE FROM ks_exp;"));
    if (sqlite3_prepare_v2(ks->db, "INSERT OR REPLACE INTO ks_exp(pk, h) VALUES(?1, ?2)", -1,
                           &ins, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(ks->db, "DELETE FROM ks_exp WHERE pk = ?1", -1, &del, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(ks->db,
                           "SELECT seq, time, actor, op, label, version, kcv, card, result,"
                           " prev, hash, mac, fmt, rows FROM audit ORDER BY seq",
                           -1, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(ins);
        sqlite3_finalize(del);
        return SCP_E_IO;
    }
    while (rc == SCP_OK && (s = sqlite3_step(st)) == SQLITE_ROW) {
        rc = verify_row(ks, st, want, last, bad, why, why_size);
        if (rc == SCP_OK)
            rc = replay_rows(ks, ins, del, col(st, 13), want, bad, why, why_size);
        if (rc == SCP_OK && is_recovery(col(st, 3)))
            v->recovered++;
        if (rc == SCP_OK && want == ckpt_seq && scp_ct_eq(last, ckpt_hash, KS_HASH_LEN))
            ckpt_ok = 1;
        if (rc == SCP_OK)
            v->records = want++;
    }
    sqlite3_finalize(st);
    sqlite3_finalize(ins);
    sqlite3_finalize(del);
    GUARD(rc);
    if (ckpt_seq > v->records)
        FAIL(v->records + 1,
             "log truncated: it ends at record %llu, the token's checkpoint is at %llu",
             (unsigned long long)v->records, (unsigned long long)ckpt_seq);
    if (!ckpt_ok)
        FAIL(ckpt_seq, "record %llu differs from the token's checkpoint",
             (unsigned long long)ckpt_seq);
    /* the authenticated head: the last record, under the token key */
    uint8_t m[KS_HASH_LEN];
    int have = 0;
    uint64_t hseq = 0;
    uint8_t hh[KS_HASH_LEN], hm[KS_HASH_LEN];
    ENSURE(sqlite3_prepare_v2(ks->db, "SELECT seq, hash, mac FROM head", -1, &st, NULL) ==
               SQLITE_OK,
           SCP_E_IO);
    while (sqlite3_step(st) == SQLITE_ROW) {
        have++;
        hseq = (uint64_t)sqlite3_column_int64(st, 0);
        if (blob32(st, 1, hh) < 0 || blob32(st, 2, hm) < 0)
            have = 99;
    }
    sqlite3_finalize(st);
    if (have == 0 && v->records == 0)
        return SCP_OK;
    if (have != 1)
        FAIL(v->records, "the audit head is missing or malformed");
    GUARD(ckpt_mac(ks, hseq, hh, m));
    if (!scp_ct_eq(m, hm, KS_HASH_LEN))
        FAIL(hseq, "the audit head is forged (HMAC under the token key fails)");
    if (hseq > v->records)
        FAIL(v->records + 1, "log truncated: it ends at record %llu, the head is at %llu",
             (unsigned long long)v->records, (unsigned long long)hseq);
    if (hseq < v->records)
        FAIL(hseq + 1, "records after %llu were appended without moving the head",
             (unsigned long long)hseq);
    if (!scp_ct_eq(hh, last, KS_HASH_LEN))
        FAIL(hseq, "record %llu differs from the audit head", (unsigned long long)hseq);
    return SCP_OK;
}

/* Every protected table against what the log says it holds. */
static int verify_tables(scp_keystore *ks, scp_ks_verify *v)
{
    uint64_t *bad = &v->bad_seq;
    char *why = v->why;
    size_t why_size = sizeof(v->why);
    sqlite3_stmt *st, *look;
    ENSURE(sqlite3_prepare_v2(ks->db, "UPDATE ks_exp SET seen = 1 WHERE pk = ?1 AND h = ?2", -1,
                              &look, NULL) == SQLITE_OK,
           SCP_E_IO);
    int rc = SCP_OK;
    for (int t = 0; t < KS_T_COUNT && rc == SCP_OK; t++) {
        char sql[160];
        snprintf(sql, sizeof(sql), "SELECT %s, * FROM %s", tables[t].pk, tables[t].name);
        if (sqlite3_prepare_v2(ks->db, sql, -1, &st, NULL) != SQLITE_OK) {
            rc = SCP_E_IO;
            break;
        }
        while (rc == SCP_OK && sqlite3_step(st) == SQLITE_ROW) {
            char pkh[66], rh[65];
            const char *pk = col(st, 0);
            pkh[0] = tables[t].tag;
            rc = pk_hash(t, pk, pkh + 1);
            if (rc == SCP_OK)
                rc = row_hash(st, t, 1, rh);
            if (rc != SCP_OK)
                break;
            sqlite3_reset(look);
            sqlite3_bind_text(look, 1, pkh, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(look, 2, rh, -1, SQLITE_TRANSIENT);
            if (sqlite3_step(look) != SQLITE_DONE)
                rc = SCP_E_IO;
            else if (sqlite3_changes(ks->db) != 1) {
                *bad = 0;
                snprintf(why, why_size,
                         "table %s: row \"%s\" was added or edited outside the keystore "
                         "(no audit record gives its content)",
                         tables[t].name, pk);
                rc = SCP_E_CORRUPT;
            }
        }
        sqlite3_finalize(st);
    }
    sqlite3_finalize(look);
    GUARD(rc);
    ENSURE(sqlite3_prepare_v2(ks->db, "SELECT pk FROM ks_exp WHERE seen = 0 AND h != '-' LIMIT 1",
                              -1, &st, NULL) == SQLITE_OK,
           SCP_E_IO);
    if (sqlite3_step(st) == SQLITE_ROW) {
        char tag = col(st, 0)[0];
        const char *name = "?";
        for (int t = 0; t < KS_T_COUNT; t++)
            if (tables[t].tag == tag)
                name = tables[t].name;
        sqlite3_finalize(st);
        FAIL(0, "table %s: a row recorded in the audit log was deleted", name);
    }
    sqlite3_finalize(st);
    return SCP_OK;
}

/* The token against the keys table: no orphan, nothing missing; every
 * key's history complete and its creation audited. */
static int verify_keys(scp_keystore *ks, scp_ks_verify *v)
{
    uint64_t *bad = &v->bad_seq;
    char *why = v->why;
    size_t why_size = sizeof(v->why);
    sqlite3_stmt *st;
    int rc = SCP_OK;
    ENSURE(sqlite3_prepare_v2(ks->db,
                              "SELECT k.label, k.version, k.state,"
                              " (SELECT COUNT(*) FROM audit a WHERE a.label = k.label AND"
                              "  a.version = k.version AND a.result = 0 AND (a.op = 'generate' OR"
                              "  a.op LIKE 'import:%' OR a.op LIKE 'generate:%' OR"
                              "  a.op LIKE 'migrate:%')),"
                              " EXISTS(SELECT 1 FROM pending p WHERE p.label = k.label AND"
                              "  p.version = k.version)"
                              " FROM keys k ORDER BY k.label, k.version",
                              -1, &st, NULL) == SQLITE_OK,
           SCP_E_IO);
    while (rc == SCP_OK && sqlite3_step(st) == SQLITE_ROW) {
        char id[SCP_KS_LABEL_MAX + 16];
        const char *label = col(st, 0), *state = col(st, 2);
        uint32_t ver = (uint32_t)sqlite3_column_int64(st, 1);
        CK_OBJECT_HANDLE h;
        v->keys++;
        rc = ks_obj_id(label, ver, id, sizeof(id));
        if (rc != SCP_OK)
            break;
        int in_token = ks_tok_find_key(ks, id, &h) == SCP_OK;
        int busy = sqlite3_column_int(st, 4);
        if (strcmp(state, "destroyed") != 0 && !in_token) {
            snprintf(why, why_size, "key %s is %s in the database but missing from the token",
                     id, state);
            rc = SCP_E_CORRUPT;
        } else if (strcmp(state, "destroyed") == 0 && in_token && !busy) {
            snprintf(why, why_size, "key %s is destroyed in the database but still in the token",
                     id);
            rc = SCP_E_CORRUPT;
        } else if (sqlite3_column_int(st, 3) == 0) {
            snprintf(why, why_size, "key %s has no audit record of its creation", id);
            rc = SCP_E_CORRUPT;
        }
        /* its history: from nothing to its current state, step by step */
        sqlite3_stmt *hs;
        if (rc == SCP_OK &&
            sqlite3_prepare_v2(ks->db,
                               "SELECT from_state, to_state FROM key_history WHERE label = ?1"
                               " AND version = ?2 ORDER BY id",
                               -1, &hs, NULL) == SQLITE_OK) {
            char cur[32] = "";
            int n = 0;
            sqlite3_bind_text(hs, 1, label, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(hs, 2, ver);
            while (rc == SCP_OK && sqlite3_step(hs) == SQLITE_ROW) {
                const char *from = (const char *)sqlite3_column_text(hs, 0);
                if ((n == 0) != (from == NULL) || (n > 0 && strcmp(from, cur) != 0)) {
                    snprintf(why, why_size, "key %s: its history has a gap", id);
                    rc = SCP_E_CORRUPT;
                }
                snprintf(cur, sizeof(cur), "%s", col(hs, 1));
                n++;
            }
            sqlite3_finalize(hs);
            if (rc == SCP_OK && (n == 0 || strcmp(cur, state) != 0)) {
                snprintf(why, why_size, "key %s: its history does not end in its state (%s)", id,
                         state);
                rc = SCP_E_CORRUPT;
            }
        }
    }
    sqlite3_finalize(st);
    if (rc == SCP_E_CORRUPT)
        *bad = 0;
    GUARD(rc);
    /* orphans: master keys in the token the database does not know */
    uint64_t orphans = 0;
    GUARD(ks_tok_orphans(ks, 0, &orphans));
    if (orphans > 0) {
        snprintf(why, why_size, "%llu key(s) in the token have no record in the database",
                 (unsigned long long)orphans);
        return SCP_E_CORRUPT;
    }
    return SCP_OK;
}

static int verify_locked(scp_keystore *ks, scp_ks_verify *v, uint8_t *head, size_t head_size,
                         size_t *hlp, uint64_t *hseqp, uint8_t *m, uint8_t *last);

int scp_keystore_verify(scp_keystore *ks, scp_ks_verify *v)
{
    uint8_t head[8 + 2 * KS_HASH_LEN], m[KS_HASH_LEN], last[KS_HASH_LEN];
    size_t hl = 0;
    uint64_t hseq = 0;
    ENSURE(ks != NULL && v != NULL, SCP_E_ARG);
    memset(v, 0, sizeof(*v));
    /* one consistent picture: no writer between its intent and its
     * completion, interrupted work settled, the live generation in view */
    int locked_here = !ks->locked;
    if (locked_here) {
        GUARD(ks_lock(ks));
        int r = ks_reconcile(ks);
        if (r != SCP_OK) {
            ks_unlock(ks);
            return r;
        }
    }
    int rc = verify_locked(ks, v, head, sizeof(head), &hl, &hseq, m, last);
    if (locked_here)
        ks_unlock(ks);
    scp_wipe(last, sizeof(last));
    return rc;
}

static int verify_locked(scp_keystore *ks, scp_ks_verify *v, uint8_t *head, size_t head_size,
                         size_t *hlp, uint64_t *hseqp, uint8_t *m, uint8_t *last)
{
    uint64_t *bad = &v->bad_seq;
    char *why = v->why;
    size_t why_size = sizeof(v->why);
    size_t hl = 0;
    uint64_t hseq = 0;
    int rc = ks_tok_head_get(ks, head, head_size, &hl);
    *hlp = hl;
    if (rc == SCP_OK) {
        if (hl != head_size)
            FAIL(0, "the token's audit checkpoint is malformed");
        for (int i = 0; i < 8; i++)
            hseq = hseq << 8 | head[i];
        GUARD(ckpt_mac(ks, hseq, head + 8, m));
        if (!scp_ct_eq(m, head + 8 + KS_HASH_LEN, KS_HASH_LEN))
            FAIL(hseq, "the token's audit checkpoint is forged");
        v->checkpoint = hseq;
    } else if (rc != SCP_E_NOT_FOUND) {
        return rc;
    }
    /* one read snapshot for the log and the tables */
    GUARD(ks_db_exec(ks, "BEGIN"));
    rc = verify_chain(ks, v, hseq, head + 8, last);
    if (rc == SCP_OK)
        rc = verify_tables(ks, v);
    if (rc == SCP_OK)
        rc = verify_keys(ks, v);
    ks_ignore(ks_db_exec(ks, "COMMIT"));
    ks_ignore(ks_db_exec(ks, "DROP TABLE IF EXISTS temp.ks_exp"));
    *hseqp = hseq;
    return rc;
}

int scp_keystore_audit_verify(scp_keystore *ks, uint64_t *records, uint64_t *bad, char *why,
                              size_t why_size)
{
    scp_ks_verify v;
    ENSURE(ks != NULL && records != NULL && bad != NULL && why != NULL && why_size > 0, SCP_E_ARG);
    int rc = scp_keystore_verify(ks, &v);
    *records = v.records;
    *bad = v.bad_seq;
    snprintf(why, why_size, "%s", v.why);
    return rc;
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
