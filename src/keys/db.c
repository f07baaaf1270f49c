/* scpkit keys: the metadata database beside the token (DIR/keystore.db).
 * It holds no key material: labels, versions, KCVs, states and their
 * history, per-card records, custodian verifiers and the audit chain. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "keys/internal.h"
#include "core/guard.h"
#include "scpkit/crypto.h"

static const char *schema =
    "PRAGMA foreign_keys=ON;"
    "CREATE TABLE IF NOT EXISTS config(k TEXT PRIMARY KEY, v TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS keys(label TEXT NOT NULL, version INTEGER NOT NULL,"
    " type TEXT NOT NULL, length INTEGER NOT NULL, kcv TEXT NOT NULL, kcv_kind TEXT NOT NULL,"
    " state TEXT NOT NULL,"
    " origin TEXT NOT NULL, created INTEGER NOT NULL, changed INTEGER NOT NULL,"
    " mac BLOB NOT NULL, PRIMARY KEY(label, version));"
    "CREATE TABLE IF NOT EXISTS key_history(id INTEGER PRIMARY KEY, label TEXT NOT NULL,"
    " version INTEGER NOT NULL, from_state TEXT, to_state TEXT NOT NULL, time INTEGER NOT NULL,"
    " actor TEXT NOT NULL, reason TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS cards(kdd TEXT PRIMARY KEY, master_label TEXT NOT NULL,"
    " master_version INTEGER NOT NULL, kdf TEXT NOT NULL, kvn INTEGER NOT NULL,"
    " updated INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS custodians(name TEXT PRIMARY KEY, salt BLOB NOT NULL,"
    " verifier BLOB NOT NULL, mac BLOB NOT NULL);"
    /* schema 2: intents of operations that change the token (journal.c) */
    "CREATE TABLE IF NOT EXISTS pending(id INTEGER PRIMARY KEY, op TEXT NOT NULL,"
    " label TEXT NOT NULL, version INTEGER NOT NULL, arg TEXT NOT NULL, reason TEXT NOT NULL,"
    " actor TEXT NOT NULL, mac BLOB NOT NULL);";

/* PRAGMA user_version: 0/1 = issue 6 (no intents, no row digests, audit
 * head in the token only), 2 = this one. Later schemas (EC key pairs, ...)
 * add a step to ks_db_migrate. */
#define KS_SCHEMA 2

int64_t ks_now(void)
{
    return (int64_t)time(NULL);
}

int ks_db_rc(scp_keystore *ks, int r, const char *what)
{
    /* SQLite says "I/O error" when the WAL cannot grow: the errno tells */
    if ((r & 0xff) == SQLITE_IOERR && ks->db != NULL &&
        (sqlite3_system_errno(ks->db) == ENOSPC || sqlite3_system_errno(ks->db) == EDQUOT))
        r = SQLITE_FULL;
    switch (r & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return SCP_OK;
    case SQLITE_FULL:
        ks->nospace = 1;
        ks_why(ks, "disk full while %s in %s/keystore.db: free space on its file system and "
                   "retry (the transaction was rolled back; nothing was changed)",
               what, ks->dir);
        return SCP_E_IO;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        ks_why(ks, "%s/keystore.db is damaged (%s): restore it from a backup; the token is "
                   "separate and intact, and `scpkit audit verify` checks the restored copy",
               ks->dir, sqlite3_errstr(r));
        return SCP_E_CORRUPT;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        ks_why(ks, "keystore.db stayed busy while %s: other processes are writing; retry", what);
        return SCP_E_TIMEOUT;
    case SQLITE_CONSTRAINT:
        return SCP_E_STATE;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_CANTOPEN:
        ks_why(ks, "%s/keystore.db cannot be written (%s) while %s", ks->dir, sqlite3_errstr(r),
               what);
        return SCP_E_PERM;
    default:
        ks_why(ks, "keystore.db: %s while %s", sqlite3_errstr(r), what);
        return SCP_E_IO;
    }
}

/* SQLite's own busy handler sleeps 1, 2, 5, 10 ... 100 ms between tries:
 * with several processes appending audit records, most of the time went
 * to sleeping past a lock already released. Short naps instead (50 us,
 * doubling up to 2 ms), for at most 10 s in all. */
static int busy_nap(void *arg, int count)
{
    long *slept_us = arg;
    long us = count < 6 ? 50L << count : 2000;
    if (count == 0)
        *slept_us = 0;
    if (*slept_us >= 10L * 1000 * 1000)
        return 0; /* give up: SQLITE_BUSY */
    struct timespec t = {0, us * 1000};
    nanosleep(&t, NULL);
    *slept_us += us;
    return 1;
}

int ks_db_exec(scp_keystore *ks, const char *sql)
{
    int r = sqlite3_exec(ks->db, sql, NULL, NULL, NULL);
    return r == SQLITE_OK ? SCP_OK : ks_db_rc(ks, r, "updating");
}

int ks_tx_begin(scp_keystore *ks)
{
    ENSURE(!ks->in_tx, SCP_E_STATE);
    GUARD(ks_db_exec(ks, "BEGIN IMMEDIATE"));
    ks->in_tx = 1;
    ks->rows_len = 0;
    return SCP_OK;
}

int ks_tx_commit(scp_keystore *ks)
{
    ENSURE(ks->in_tx, SCP_E_STATE);
    int rc = ks_crash_point("db-commit");
    if (rc == SCP_OK) {
        int r = sqlite3_exec(ks->db, "COMMIT", NULL, NULL, NULL);
        if (r != SQLITE_OK && rc == SCP_OK)
            rc = ks_db_rc(ks, r, "committing");
    } else {
        ks->nospace = 1;
        ks_why(ks, "disk full while committing to %s/keystore.db: free space on its file system "
                   "and retry (the transaction was rolled back; nothing was changed)",
               ks->dir);
    }
    if (rc != SCP_OK) {
        ks_tx_rollback(ks);
        return rc;
    }
    ks->in_tx = 0;
    ks->commits++;
    return ks_crash_point("db-committed");
}

void ks_tx_rollback(scp_keystore *ks)
{
    if (ks->in_tx)
        (void)sqlite3_exec(ks->db, "ROLLBACK", NULL, NULL, NULL);
    ks->in_tx = 0;
    ks->rows_len = 0;
}

int ks_db_open(scp_keystore *ks, int create)
{
    char path[KS_PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/keystore.db", ks->dir);
    ENSURE(n > 0 && (size_t)n < sizeof(path), SCP_E_ARG);
    if (!create) {
        struct stat st;
        ENSURE(stat(path, &st) == 0, SCP_E_NOT_FOUND);
        ENSURE((st.st_mode & 077) == 0, SCP_E_PERM);
    }
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
    int r = sqlite3_open_v2(path, &ks->db, flags, NULL);
    if (r != SQLITE_OK) {
        int rc = ks_db_rc(ks, r, "opening");
        ks_db_close(ks);
        return rc;
    }
    ENSURE(chmod(path, 0600) == 0, SCP_E_PERM);
    /* Many processes: WAL (readers never block the writer), a bounded
     * wait for the write lock, every commit durable. */
    sqlite3_busy_handler(ks->db, busy_nap, &ks->busy_us);
    GUARD(ks_db_exec(ks, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                         "PRAGMA foreign_keys=ON;"));
    sqlite3_stmt *st;
    int ver = 0;
    r = sqlite3_prepare_v2(ks->db, "PRAGMA user_version", -1, &st, NULL);
    if (r != SQLITE_OK)
        return ks_db_rc(ks, r, "reading the schema version");
    if (sqlite3_step(st) == SQLITE_ROW)
        ver = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (ver > KS_SCHEMA) {
        ks_why(ks, "%s was written by a newer scpkit (schema %d, this one knows %d): upgrade "
                   "scpkit",
               path, ver, KS_SCHEMA);
        return SCP_E_UNSUPPORTED;
    }
    if (ver == KS_SCHEMA)
        return SCP_OK;
    GUARD(ks_db_exec(ks, "BEGIN IMMEDIATE"));
    int rc = ks_db_exec(ks, schema);
    if (rc == SCP_OK)
        rc = ks_audit_schema(ks);
    if (rc == SCP_OK)
        rc = ks_db_exec(ks, "PRAGMA user_version = 2; COMMIT");
    if (rc != SCP_OK)
        ks_ignore(ks_db_exec(ks, "ROLLBACK"));
    return rc;
}

void ks_db_close(scp_keystore *ks)
{
    if (ks->db != NULL)
        sqlite3_close(ks->db);
    ks->db = NULL;
}

static int prep(scp_keystore *ks, const char *sql, sqlite3_stmt **st)
{
    int r = sqlite3_prepare_v2(ks->db, sql, -1, st, NULL);
    return r == SQLITE_OK ? SCP_OK : ks_db_rc(ks, r, "reading");
}

/* Step a statement that returns no row, and finalize it. */
static int step_done(scp_keystore *ks, sqlite3_stmt *st)
{
    int r = sqlite3_step(st);
    sqlite3_finalize(st);
    return r == SQLITE_DONE ? SCP_OK : ks_db_rc(ks, r, "writing");
}

int ks_db_config_set(scp_keystore *ks, const char *k, const char *v)
{
    sqlite3_stmt *st;
    GUARD(prep(ks, "INSERT OR REPLACE INTO config(k, v) VALUES(?, ?)", &st));
    sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, v, -1, SQLITE_STATIC);
    return step_done(ks, st);
}

int ks_db_config_get(scp_keystore *ks, const char *k, char *v, size_t v_size)
{
    sqlite3_stmt *st;
    int rc = SCP_E_NOT_FOUND;
    GUARD(prep(ks, "SELECT v FROM config WHERE k = ?", &st));
    sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        rc = (t != NULL && strlen(t) < v_size) ? SCP_OK : SCP_E_BUFFER_TOO_SMALL;
        if (rc == SCP_OK)
            memcpy(v, t, strlen(t) + 1);
    }
    sqlite3_finalize(st);
    return rc;
}

static int hex3(const char *t, uint8_t out[3])
{
    unsigned b[3];
    ENSURE(t != NULL && strlen(t) == 6 && sscanf(t, "%2x%2x%2x", &b[0], &b[1], &b[2]) == 3,
           SCP_E_CORRUPT);
    for (int i = 0; i < 3; i++)
        out[i] = (uint8_t)b[i];
    return SCP_OK;
}

static int copy_text(char *dst, size_t size, const unsigned char *src)
{
    ENSURE(src != NULL && strlen((const char *)src) < size, SCP_E_CORRUPT);
    memcpy(dst, src, strlen((const char *)src) + 1);
    return SCP_OK;
}

/* Each key row carries HMAC-SHA-256 under the token's audit key over its
 * fields, so the state (and so dual control) cannot be changed by editing
 * the DB without the token: a forged row reads as SCP_E_CORRUPT. */
static int key_mac(scp_keystore *ks, const scp_ks_key_info *k, uint8_t mac[KS_HASH_LEN])
{
    char in[SCP_KS_LABEL_MAX + 128];
    int n = snprintf(in, sizeof(in), "scpkit-key-1|%s|%u|%s|%02X%02X%02X|%s|%s|%s|%lld|%lld",
                     k->label, (unsigned)k->version, scp_ks_type_name(k->type), k->kcv[0],
                     k->kcv[1], k->kcv[2], k->kcv_cmac ? "cmac" : "ecb",
                     scp_ks_state_name(k->state), k->origin,
                     (long long)k->created, (long long)k->changed);
    ENSURE(n > 0 && (size_t)n < sizeof(in), SCP_E_ARG);
    return ks_tok_hmac(ks, (const uint8_t *)in, (size_t)n, mac);
}

static int row_to_key(scp_keystore *ks, sqlite3_stmt *st, scp_ks_key_info *k)
{
    uint8_t mac[KS_HASH_LEN];
    memset(k, 0, sizeof(*k));
    GUARD(copy_text(k->label, sizeof(k->label), sqlite3_column_text(st, 0)));
    k->version = (uint32_t)sqlite3_column_int64(st, 1);
    GUARD(scp_ks_type_parse((const char *)sqlite3_column_text(st, 2), &k->type));
    k->length = (uint8_t)sqlite3_column_int(st, 3);
    GUARD(hex3((const char *)sqlite3_column_text(st, 4), k->kcv));
    const char *kind = (const char *)sqlite3_column_text(st, 10);
    ENSURE(kind != NULL && (strcmp(kind, "ecb") == 0 || strcmp(kind, "cmac") == 0),
           SCP_E_CORRUPT);
    k->kcv_cmac = kind[0] == 'c';
    GUARD(scp_ks_state_parse((const char *)sqlite3_column_text(st, 5), &k->state));
    GUARD(copy_text(k->origin, sizeof(k->origin), sqlite3_column_text(st, 6)));
    k->created = sqlite3_column_int64(st, 7);
    k->changed = sqlite3_column_int64(st, 8);
    ENSURE(k->length == scp_ks_type_len(k->type), SCP_E_CORRUPT);
    GUARD(key_mac(ks, k, mac));
    ENSURE(sqlite3_column_bytes(st, 9) == KS_HASH_LEN &&
               scp_ct_eq(mac, sqlite3_column_blob(st, 9), KS_HASH_LEN),
           SCP_E_CORRUPT);
    return SCP_OK;
}

#define KEY_COLS "label, version, type, length, kcv, state, origin, created, changed, mac, kcv_kind"

int ks_db_key_get(scp_keystore *ks, const char *label, uint32_t version, scp_ks_key_info *k)
{
    sqlite3_stmt *st;
    int rc = SCP_E_NOT_FOUND;
    GUARD(prep(ks,
               version == 0 ? "SELECT " KEY_COLS " FROM keys WHERE label = ?1"
                              " ORDER BY version DESC LIMIT 1"
                            : "SELECT " KEY_COLS " FROM keys WHERE label = ?1 AND version = ?2",
               &st));
    sqlite3_bind_text(st, 1, label, -1, SQLITE_STATIC);
    if (version != 0)
        sqlite3_bind_int64(st, 2, version);
    if (sqlite3_step(st) == SQLITE_ROW)
        rc = row_to_key(ks, st, k);
    sqlite3_finalize(st);
    return rc;
}

int scp_keystore_list(scp_keystore *ks, void (*fn)(void *arg, const scp_ks_key_info *k),
                      void *arg)
{
    sqlite3_stmt *st;
    scp_ks_key_info k;
    int rc = SCP_OK, r;
    ENSURE(ks != NULL && fn != NULL, SCP_E_ARG);
    GUARD(prep(ks, "SELECT " KEY_COLS " FROM keys ORDER BY label, version", &st));
    while (rc == SCP_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
        rc = row_to_key(ks, st, &k);
        if (rc == SCP_OK)
            fn(arg, &k);
    }
    sqlite3_finalize(st);
    return rc;
}

int ks_db_key_next_version(scp_keystore *ks, const char *label, uint32_t *v)
{
    sqlite3_stmt *st;
    GUARD(prep(ks, "SELECT COALESCE(MAX(version), 0) + 1 FROM keys WHERE label = ?", &st));
    sqlite3_bind_text(st, 1, label, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    *v = (uint32_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    ENSURE(r == SQLITE_ROW, SCP_E_IO);
    return SCP_OK;
}

static int history(scp_keystore *ks, const scp_ks_key_info *k, const char *from, scp_ks_state to,
                   const char *reason, int64_t now)
{
    sqlite3_stmt *st;
    GUARD(prep(ks,
               "INSERT INTO key_history(label, version, from_state, to_state, time, actor,"
               " reason) VALUES(?, ?, ?, ?, ?, ?, ?)",
               &st));
    sqlite3_bind_text(st, 1, k->label, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, k->version);
    if (from != NULL)
        sqlite3_bind_text(st, 3, from, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, scp_ks_state_name(to), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now);
    sqlite3_bind_text(st, 6, ks->actor, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, reason, -1, SQLITE_STATIC);
    GUARD(step_done(ks, st));
    char pk[24];
    snprintf(pk, sizeof(pk), "%lld", (long long)sqlite3_last_insert_rowid(ks->db));
    return ks_rows_note(ks, KS_T_HISTORY, pk);
}

int ks_db_key_insert(scp_keystore *ks, const scp_ks_key_info *k)
{
    sqlite3_stmt *st;
    char kcv[7];
    snprintf(kcv, sizeof(kcv), "%02X%02X%02X", k->kcv[0], k->kcv[1], k->kcv[2]);
    uint8_t mac[KS_HASH_LEN];
    GUARD(key_mac(ks, k, mac));
    GUARD(prep(ks, "INSERT INTO keys(" KEY_COLS ") VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
               &st));
    sqlite3_bind_text(st, 1, k->label, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, k->version);
    sqlite3_bind_text(st, 3, scp_ks_type_name(k->type), -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, k->length);
    sqlite3_bind_text(st, 5, kcv, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 6, scp_ks_state_name(k->state), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, k->origin, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, k->created);
    sqlite3_bind_int64(st, 9, k->changed);
    sqlite3_bind_blob(st, 10, mac, KS_HASH_LEN, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 11, k->kcv_cmac ? "cmac" : "ecb", -1, SQLITE_STATIC);
    GUARD(step_done(ks, st));
    char pk[SCP_KS_LABEL_MAX + 16];
    GUARD(ks_obj_id(k->label, k->version, pk, sizeof(pk)));
    GUARD(ks_rows_note(ks, KS_T_KEYS, pk));
    return history(ks, k, NULL, k->state, k->origin, k->created);
}

int ks_db_key_state(scp_keystore *ks, const scp_ks_key_info *k, scp_ks_state to,
                    const char *reason)
{
    sqlite3_stmt *st;
    scp_ks_key_info n = *k;
    uint8_t mac[KS_HASH_LEN];
    n.state = to;
    n.changed = ks_now();
    GUARD(key_mac(ks, &n, mac));
    GUARD(prep(ks,
               "UPDATE keys SET state = ?, changed = ?, mac = ? WHERE label = ? AND version = ?"
               " AND state = ?",
               &st));
    sqlite3_bind_text(st, 1, scp_ks_state_name(to), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, n.changed);
    sqlite3_bind_blob(st, 3, mac, KS_HASH_LEN, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, k->label, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, k->version);
    sqlite3_bind_text(st, 6, scp_ks_state_name(k->state), -1, SQLITE_STATIC);
    GUARD(step_done(ks, st));
    /* The state was re-checked in the WHERE: a concurrent change loses. */
    ENSURE(sqlite3_changes(ks->db) == 1, SCP_E_STATE);
    char pk[SCP_KS_LABEL_MAX + 16];
    GUARD(ks_obj_id(k->label, k->version, pk, sizeof(pk)));
    GUARD(ks_rows_note(ks, KS_T_KEYS, pk));
    return history(ks, k, scp_ks_state_name(k->state), to, reason, n.changed);
}

int ks_db_card_put(scp_keystore *ks, const char *hex, const char *label, uint32_t version,
                   scp_div_scheme scheme, uint8_t kvn)
{
    sqlite3_stmt *st;
    ENSURE(ks->in_tx, SCP_E_STATE);
    GUARD(prep(ks,
               "INSERT OR REPLACE INTO cards(kdd, master_label, master_version, kdf, kvn,"
               " updated) VALUES(?, ?, ?, ?, ?, ?)",
               &st));
    sqlite3_bind_text(st, 1, hex, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, label, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, version);
    sqlite3_bind_text(st, 4, scp_div_name(scheme), -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 5, kvn);
    sqlite3_bind_int64(st, 6, ks_now());
    GUARD(step_done(ks, st));
    GUARD(ks_rows_note(ks, KS_T_CARDS, hex));
    return ks_audit_append(ks, "card", label, version, NULL, hex, SCP_OK);
}

int scp_keystore_card_set(scp_keystore *ks, const uint8_t *kdd, size_t kdd_len,
                          const char *label, uint32_t version, scp_div_scheme scheme,
                          uint8_t kvn)
{
    char hex[2 * SCP03_KDD_LEN + 1];
    ENSURE(ks != NULL && kdd != NULL && kdd_len == SCP03_KDD_LEN && label != NULL, SCP_E_ARG);
    for (size_t i = 0; i < kdd_len; i++)
        snprintf(hex + 2 * i, 3, "%02X", kdd[i]);
    GUARD(ks_tx_begin(ks));
    int rc = ks_db_card_put(ks, hex, label, version, scheme, kvn);
    if (rc == SCP_OK)
        return ks_tx_commit(ks);
    ks_tx_rollback(ks);
    return rc;
}

int scp_keystore_card_each(scp_keystore *ks, void (*fn)(void *arg, const scp_ks_card *c),
                           void *arg)
{
    sqlite3_stmt *st;
    ENSURE(ks != NULL && fn != NULL, SCP_E_ARG);
    GUARD(prep(ks,
               "SELECT c.kdd, c.master_label, c.master_version, c.kdf, c.kvn, c.updated,"
               " EXISTS(SELECT 1 FROM keys k WHERE k.label = c.master_label"
               " AND k.version > c.master_version AND k.state = 'active')"
               " FROM cards c ORDER BY c.master_label, c.master_version, c.kdd",
               &st));
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *t[3];
        for (int i = 0; i < 3; i++) {
            t[i] = (const char *)sqlite3_column_text(st, i == 0 ? 0 : i == 1 ? 1 : 3);
            if (t[i] == NULL)
                t[i] = "";
        }
        scp_ks_card c = {t[0], t[1], t[2], (uint32_t)sqlite3_column_int64(st, 2),
                         (uint8_t)sqlite3_column_int(st, 4), sqlite3_column_int64(st, 5),
                         sqlite3_column_int(st, 6)};
        fn(arg, &c);
    }
    sqlite3_finalize(st);
    return SCP_OK;
}
