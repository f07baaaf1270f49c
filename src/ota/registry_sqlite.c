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

struct ota_res {
    sqlite3_stmt *s;
};

#define DB(r) ((sqlite3 *)(r)->h)

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
    r->h = db;
    sqlite3_busy_timeout(db, 10000);
    if (sq_script(r, "PRAGMA journal_mode=WAL") != SCP_OK ||
        sq_script(r, "PRAGMA synchronous=FULL") != SCP_OK ||
        sq_script(r, "PRAGMA foreign_keys=ON") != SCP_OK)
        return SCP_E_IO;
    return SCP_OK;
}

static void sq_close(ota_reg *r)
{
    sqlite3_close(DB(r));
    r->h = NULL;
}

static int sq_query(ota_reg *r, const char *sql, int n, const ota_arg *a, ota_res **res,
                    int defer)
{
    sqlite3_stmt *s;
    int src;
    (void)defer; /* nothing to batch: every statement is local */
    r->st.statements++;
    r->st.round_trips++;
    if (sqlite3_prepare_v2(DB(r), sql, -1, &s, NULL) != SQLITE_OK)
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
        sqlite3_finalize(s);
        if (r->in_txn)
            r->txn_failed = 1;
        return rc;
    }
    if (res) {
        ota_res *o = malloc(sizeof(*o));
        if (!o) {
            sqlite3_finalize(s);
            return SCP_E_NOMEM;
        }
        o->s = s;
        *res = o;
        return src == SQLITE_ROW ? 1 : 0;
    }
    sqlite3_finalize(s);
    return sqlite3_changes(DB(r));
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
    sqlite3_finalize(o->s);
    free(o);
}

static int sq_begin(ota_reg *r)
{
    return sq_script(r, "BEGIN IMMEDIATE");
}

static int sq_commit(ota_reg *r)
{
    int rc = sq_script(r, "COMMIT");
    if (rc != SCP_OK)
        (void)sq_script(r, "ROLLBACK");
    return rc;
}

static int sq_rollback(ota_reg *r)
{
    return sq_script(r, "ROLLBACK");
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
