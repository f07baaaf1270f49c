/* The fleet registry on SQLite: DIR/registry.db (0600), WAL,
 * synchronous=FULL, foreign keys on, a 10 s busy timeout so several
 * processes share it. Transactions are BEGIN IMMEDIATE (the write lock
 * first: no deadlock between two writers). One statement = one "round
 * trip" in the counters (there is no network). */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ota/registry_int.h"

/* Prepared statements kept for the connection's life, by SQL text: the
 * registry runs the same few dozen statements for every session, and
 * parsing them again each time cost as much as running them (perf of
 * bench/ota.sh: sqlite3_prepare_v2 was a fifth of the registry's CPU). A
 * statement already in use (a result set still open) is prepared afresh. */
#define SQ_CACHE 64

typedef struct sq_slot {
    sqlite3_stmt *s;
    uint32_t hash;
    int busy;
} sq_slot;

typedef struct sqh {
    sqlite3 *db;
    int lazy; /* synchronous=NORMAL is set (a lazy commit's, not yet undone) */
    sq_slot c[SQ_CACHE];
} sqh;

struct ota_res {
    sqlite3_stmt *s;
    sq_slot *slot; /* NULL: not cached, finalized when freed */
};

#define H(r) ((sqh *)(r)->h)
#define DB(r) (H(r)->db)

static uint32_t sql_hash(const char *sql)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *sql; sql++)
        h = (h ^ (uint8_t)*sql) * 16777619u;
    return h;
}

/* A ready statement for sql: a cached one reset, or a new one (kept in
 * the cache when there is room). *slot is NULL for an uncached one. */
static int sq_prepare(ota_reg *r, const char *sql, sqlite3_stmt **out, sq_slot **slot)
{
    sqh *h = H(r);
    uint32_t hv = sql_hash(sql);
    sq_slot *free_slot = NULL;
    *slot = NULL;
    for (int k = 0; k < SQ_CACHE; k++) {
        sq_slot *c = &h->c[(hv + (unsigned)k) % SQ_CACHE];
        if (!c->s) {
            free_slot = c;
            break;
        }
        if (c->hash == hv && strcmp(sqlite3_sql(c->s), sql) == 0) {
            if (c->busy)
                break; /* in use: a fresh one, not cached */
            c->busy = 1;
            *out = c->s;
            *slot = c;
            return SQLITE_OK;
        }
    }
    int src = sqlite3_prepare_v3(h->db, sql, -1, free_slot ? SQLITE_PREPARE_PERSISTENT : 0, out,
                                 NULL);
    if (src != SQLITE_OK || !free_slot)
        return src;
    free_slot->s = *out;
    free_slot->hash = hv;
    free_slot->busy = 1;
    *slot = free_slot;
    return SQLITE_OK;
}

/* Done with a statement: a cached one reset for its next use. */
static void sq_done(sqlite3_stmt *s, sq_slot *slot)
{
    if (!slot) {
        sqlite3_finalize(s);
        return;
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    slot->busy = 0;
}

static int fail(ota_reg *r, int src)
{
    ota_reg_seterr(r, "%s", sqlite3_errmsg(DB(r)));
    return src == SQLITE_CONSTRAINT ? SCP_E_STATE : SCP_E_IO;
}

static int sq_script(ota_reg *r, const char *sql)
{
    int src = sqlite3_exec(DB(r), sql, NULL, NULL, NULL);
    r->st.statements++;
    r->st.round_trips++;
    if (src != SQLITE_OK) {
        if (r->in_txn)
            r->txn_failed = 1;
        return fail(r, src);
    }
    return SCP_OK;
}

static int sq_open(ota_reg *r, const char *dir, const char *spec, int create)
{
    char path[4096];
    struct stat st;
    sqlite3 *db = NULL;
    sqh *h;
    int fl = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, src;
    (void)spec;
    if ((size_t)snprintf(path, sizeof(path), "%s/registry.db", dir) >= sizeof(path))
        return SCP_E_ARG;
    if ((size_t)snprintf(r->where, sizeof(r->where), "%s", path) >= sizeof(r->where))
        return SCP_E_ARG;
    if (!create && stat(path, &st) != 0) {
        ota_reg_seterr(r, "no registry in %s (scpkit ota init)", dir);
        return SCP_E_NOT_FOUND;
    }
    if (create)
        fl |= SQLITE_OPEN_CREATE;
    {
        mode_t old = umask(077);
        src = sqlite3_open_v2(path, &db, fl, NULL);
        umask(old);
    }
    if (src != SQLITE_OK) {
        ota_reg_seterr(r, "%s: %s", path, db ? sqlite3_errmsg(db) : "cannot open");
        sqlite3_close(db);
        return SCP_E_IO;
    }
    if (!(h = calloc(1, sizeof(*h)))) {
        sqlite3_close(db);
        return SCP_E_NOMEM;
    }
    h->db = db;
    r->h = h;
    sqlite3_busy_timeout(db, 10000);
    if (sq_script(r, "PRAGMA journal_mode=WAL") != SCP_OK ||
        sq_script(r, "PRAGMA synchronous=FULL") != SCP_OK ||
        sq_script(r, "PRAGMA foreign_keys=ON") != SCP_OK)
        return SCP_E_IO;
    return SCP_OK;
}

static void sq_close(ota_reg *r)
{
    sqh *h = H(r);
    if (!h)
        return;
    for (int k = 0; k < SQ_CACHE; k++)
        sqlite3_finalize(h->c[k].s);
    sqlite3_close(h->db);
    free(h);
    r->h = NULL;
}

static int sq_query(ota_reg *r, const char *sql, int n, const ota_arg *a, ota_res **res,
                    int defer)
{
    sqlite3_stmt *s;
    sq_slot *slot;
    int src;
    (void)defer; /* nothing to batch: every statement is local */
    r->st.statements++;
    r->st.round_trips++;
    if (sq_prepare(r, sql, &s, &slot) != SQLITE_OK)
        return fail(r, SQLITE_ERROR);
    for (int k = 0; k < n; k++) {
        if (a[k].is_int)
            sqlite3_bind_int64(s, k + 1, a[k].i);
        else if (a[k].t)
            sqlite3_bind_text(s, k + 1, a[k].t, -1, SQLITE_TRANSIENT);
        else
            sqlite3_bind_null(s, k + 1);
    }
    src = sqlite3_step(s);
    if (src != SQLITE_ROW && src != SQLITE_DONE) {
        int rc = fail(r, sqlite3_errcode(DB(r)));
        sq_done(s, slot);
        if (r->in_txn)
            r->txn_failed = 1;
        return rc;
    }
    if (res) {
        ota_res *o = malloc(sizeof(*o));
        if (!o) {
            sq_done(s, slot);
            return SCP_E_NOMEM;
        }
        o->s = s;
        o->slot = slot;
        *res = o;
        return src == SQLITE_ROW ? 1 : 0;
    }
    int changes = sqlite3_changes(DB(r));
    sq_done(s, slot);
    return changes;
}

static int sq_next(ota_res *o)
{
    return sqlite3_step(o->s) == SQLITE_ROW;
}

static const char *sq_text(ota_res *o, int col)
{
    return (const char *)sqlite3_column_text(o->s, col);
}

static int64_t sq_int(ota_res *o, int col)
{
    return sqlite3_column_int64(o->s, col);
}

static void sq_free(ota_res *o)
{
    sq_done(o->s, o->slot);
    free(o);
}

/* BEGIN, COMMIT, ROLLBACK: one statement each, from the cache. The
 * durability switches (sq_sync) are connection settings, not counted. */
static int sq_ctl_as(ota_reg *r, const char *sql, int count)
{
    sqlite3_stmt *s;
    sq_slot *slot;
    int src;
    if (count) {
        r->st.statements++;
        r->st.round_trips++;
    }
    src = sq_prepare(r, sql, &s, &slot);
    if (src == SQLITE_OK) {
        src = sqlite3_step(s);
        if (src == SQLITE_DONE || src == SQLITE_ROW)
            src = SQLITE_OK;
        sq_done(s, slot);
    }
    if (src != SQLITE_OK) {
        if (r->in_txn)
            r->txn_failed = 1;
        return fail(r, src);
    }
    return SCP_OK;
}

static int sq_ctl(ota_reg *r, const char *sql)
{
    return sq_ctl_as(r, sql, 1);
}

/* Durability. The connection runs with synchronous=FULL (every commit
 * fsyncs the WAL), except inside ota_reg_begin .. commit/rollback, where it
 * runs with NORMAL (SQLite allows no change of the level inside a
 * transaction, and whether a step's commit may be lazy is known only at its
 * end): a durable commit then syncs the WAL itself right after COMMIT
 * (sq_wal_sync: the same fdatasync a FULL commit makes, before the caller
 * lets any answer leave), a lazy one does not, and the next durable commit's
 * sync covers its frames (the WAL is one file written in order; frames
 * checkpointed in between were synced by the checkpoint). */
static int sq_sync(ota_reg *r, int lazy)
{
    if (H(r)->lazy == lazy)
        return SCP_OK;
    int rc = sq_ctl_as(r, lazy ? "PRAGMA synchronous=NORMAL" : "PRAGMA synchronous=FULL", 0);
    if (rc != SCP_OK)
        return rc;
    H(r)->lazy = lazy;
    return SCP_OK;
}

static int sq_wal_sync(ota_reg *r)
{
    sqlite3_file *f = NULL;
    int src = sqlite3_file_control(DB(r), "main", SQLITE_FCNTL_JOURNAL_POINTER, &f);
    if (src == SQLITE_OK && (!f || !f->pMethods))
        src = SQLITE_ERROR;
    if (src == SQLITE_OK)
        src = f->pMethods->xSync(f, SQLITE_SYNC_NORMAL);
    if (src != SQLITE_OK) {
        ota_reg_seterr(r, "registry: WAL sync failed (%d)", src);
        return SCP_E_IO;
    }
    return SCP_OK;
}

static int sq_begin(ota_reg *r)
{
    int rc = sq_sync(r, 1);
    if (rc == SCP_OK)
        rc = sq_ctl(r, "BEGIN IMMEDIATE");
    if (rc != SCP_OK)
        (void)sq_sync(r, 0);
    return rc;
}

static int sq_commit(ota_reg *r, int lazy)
{
    int rc = sq_ctl(r, "COMMIT");
    if (rc != SCP_OK)
        (void)sq_ctl(r, "ROLLBACK");
    else if (!lazy)
        rc = sq_wal_sync(r); /* committed but perhaps not durable: the caller fails the step */
    if (sq_sync(r, 0) != SCP_OK && rc == SCP_OK)
        rc = SCP_E_IO; /* FULL not set back: the next sq_sync tries again */
    return rc;
}

static int sq_rollback(ota_reg *r)
{
    int rc = sq_ctl(r, "ROLLBACK");
    (void)sq_sync(r, 0);
    return rc;
}

struct sqlite3 *ota_reg_sqlite_db(ota_reg *r)
{
    return r && r->be == &ota_be_sqlite && r->h ? DB(r) : NULL;
}

const ota_reg_be ota_be_sqlite = {
    .kind = OTA_BE_SQLITE,
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .query = sq_query,
    .next = sq_next,
    .text = sq_text,
    .integer = sq_int,
    .free_res = sq_free,
    .script = sq_script,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
};
