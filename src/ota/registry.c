/* The fleet registry, written once over the backend seam (registry_int.h):
 * SQLite in WAL mode in the server's directory (DIR/registry.db, 0600;
 * registry_sqlite.c) or PostgreSQL (registry_pg.c), named by DIR/ota.json.
 * Every change is one transaction, committed before the caller acts on
 * it, so a kill -9 at any moment leaves either the state before or the
 * state after. Several processes may share it; no key material is ever
 * stored. The schema is versioned (schema_version): migrations run on
 * open, each in one transaction, and a newer schema is refused. */
#include <ctype.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "ota/registry_int.h"

int64_t ota_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static _Thread_local char open_err[256];

const char *ota_reg_open_error(void)
{
    return open_err[0] ? open_err : "cannot open the registry";
}

void ota_reg_seterr(ota_reg *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof(r->err), fmt, ap);
    va_end(ap);
}

const char *ota_reg_errmsg(ota_reg *r)
{
    return r ? (r->err[0] ? r->err : "no error") : "no registry";
}

const char *ota_reg_backend(const ota_reg *r)
{
    return r ? r->be->name : "";
}

const char *ota_reg_where(const ota_reg *r)
{
    return r ? r->where : "";
}

void ota_reg_stats_get(const ota_reg *r, ota_reg_stats *st)
{
    *st = r->st;
}

void ota_reg_set_holder(ota_reg *r, const char *holder)
{
    snprintf(r->holder, sizeof(r->holder), "%s", holder);
}

/* ---- conninfo redaction ---- */

/* Copy conninfo, with the password of a URI's user info and the value of
 * any password= keyword (URI query or key=value form, quoted or not)
 * replaced by "***". */
void ota_reg_redact(const char *in, char *out, size_t size)
{
    size_t o = 0;
    const char *p = in ? in : "";
    const char *scheme = strstr(p, "://");
    const char *auth_end = NULL, *at = NULL, *colon = NULL;
    if (!size)
        return;
#define PUT(ch)                          \
    do {                                 \
        if (o + 1 < size)                \
            out[o++] = (ch);             \
    } while (0)
    if (scheme) {
        const char *a = scheme + 3;
        auth_end = a + strcspn(a, "/?");
        for (const char *q = a; q < auth_end; q++)
            if (*q == '@')
                at = q; /* the last '@' ends the user info */
        if (at)
            for (const char *q = a; q < at; q++)
                if (*q == ':') {
                    colon = q;
                    break;
                }
    }
    while (*p) {
        if (colon && p == colon) {
            PUT(':');
            PUT('*');
            PUT('*');
            PUT('*');
            p = at;
            colon = NULL;
            continue;
        }
        if (strncasecmp(p, "password", 8) == 0 &&
            (p == in || !(isalnum((unsigned char)p[-1]) || p[-1] == '_'))) {
            const char *q = p + 8;
            while (*q == ' ')
                q++;
            if (*q == '=') {
                q++;
                while (*q == ' ')
                    q++;
                for (const char *k = p; k < q; k++)
                    PUT(*k);
                PUT('*');
                PUT('*');
                PUT('*');
                if (*q == '\'') {
                    q++;
                    while (*q && *q != '\'') {
                        if (*q == '\\' && q[1])
                            q++;
                        q++;
                    }
                    if (*q)
                        q++;
                } else {
                    while (*q && *q != ' ' && *q != '&')
                        q++;
                }
                p = q;
                continue;
            }
        }
        PUT(*p);
        p++;
    }
    out[o] = 0;
#undef PUT
}

/* ---- statements ---- */

/* Run sql with arguments from fmt ('t' text, 'i' int64). res NULL:
 * returns the rows changed, or < 0. */
static int vq(ota_reg *r, ota_res **res, int defer, const char *sql, const char *fmt, va_list ap)
{
    ota_arg a[OTA_ARGS_MAX];
    int n = 0;
    for (; fmt && fmt[n]; n++) {
        if (n >= OTA_ARGS_MAX)
            return SCP_E_ARG;
        a[n].is_int = fmt[n] == 'i';
        if (a[n].is_int)
            a[n].i = va_arg(ap, int64_t);
        else
            a[n].t = va_arg(ap, const char *);
    }
    if (res)
        *res = NULL;
    return r->be->query(r, sql, n, a, res, defer);
}

static int q(ota_reg *r, ota_res **res, const char *sql, const char *fmt, ...)
{
    va_list ap;
    int rc;
    va_start(ap, fmt);
    rc = vq(r, res, 0, sql, fmt, ap);
    va_end(ap);
    return rc;
}

/* A statement whose result only matters as part of its transaction. */
static int qd(ota_reg *r, const char *sql, const char *fmt, ...)
{
    va_list ap;
    int rc;
    va_start(ap, fmt);
    rc = vq(r, NULL, 1, sql, fmt, ap);
    va_end(ap);
    return rc < 0 ? rc : SCP_OK;
}

static void rfree(ota_reg *r, ota_res *res)
{
    if (res)
        r->be->free_res(res);
}

static void col_text(ota_reg *r, ota_res *s, int i, char *out, size_t size)
{
    const char *t = r->be->text(s, i);
    snprintf(out, size, "%s", t ? t : "");
}

int ota_reg_begin(ota_reg *r)
{
    int rc;
    if (r->in_txn)
        return SCP_E_STATE;
    r->held[0] = 0;
    r->dev_cached = 0;
    rc = r->be->begin(r);
    if (rc == SCP_OK) {
        r->in_txn = 1;
        r->txn_failed = 0;
    }
    return rc;
}

static int commit_as(ota_reg *r, int lazy)
{
    int rc;
    if (!r->in_txn)
        return SCP_E_STATE;
    if (r->txn_failed) {
        (void)r->be->rollback(r);
        rc = SCP_E_IO;
    } else {
        rc = r->be->commit(r, lazy);
        if (rc == SCP_OK)
            r->st.commits++;
        if (rc == SCP_OK && lazy)
            r->st.lazy_commits++;
    }
    r->in_txn = 0;
    r->txn_failed = 0;
    r->held[0] = 0;
    r->dev_cached = 0;
    return rc;
}

int ota_reg_commit(ota_reg *r)
{
    return commit_as(r, 0);
}

int ota_reg_commit_lazy(ota_reg *r)
{
    return commit_as(r, 1);
}

int ota_reg_rollback(ota_reg *r)
{
    int rc;
    if (!r->in_txn)
        return SCP_E_STATE;
    rc = r->be->rollback(r);
    r->in_txn = 0;
    r->txn_failed = 0;
    r->held[0] = 0;
    r->dev_cached = 0;
    return rc;
}

int ota_reg_exec(ota_reg *r, const char *sql)
{
    if (strcasecmp(sql, "BEGIN IMMEDIATE") == 0 || strcasecmp(sql, "BEGIN") == 0)
        return ota_reg_begin(r);
    if (strcasecmp(sql, "COMMIT") == 0)
        return ota_reg_commit(r);
    if (strcasecmp(sql, "ROLLBACK") == 0) /* after a failed COMMIT there is none left */
        return r->in_txn ? ota_reg_rollback(r) : SCP_OK;
    return r->be->script(r, sql);
}

/* ---- schema and migrations ---- */

/* Version 1: the schema of scpkit before versioning, as it made it. */
static const char v1_sqlite[] =
    "CREATE TABLE IF NOT EXISTS device("
    " id TEXT PRIMARY KEY, master TEXT NOT NULL, kdf TEXT NOT NULL, kvn INTEGER NOT NULL,"
    " tags TEXT NOT NULL DEFAULT '',"
    " next_master TEXT, next_kdf TEXT, next_kvn INTEGER,"
    " prev_master TEXT, prev_kdf TEXT, prev_kvn INTEGER,"
    " lease_owner TEXT, lease_until INTEGER NOT NULL DEFAULT 0,"
    " updated INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS campaign("
    " name TEXT PRIMARY KEY, action INTEGER NOT NULL, params TEXT NOT NULL,"
    " target TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'active', created INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS job("
    " id INTEGER PRIMARY KEY, campaign TEXT NOT NULL REFERENCES campaign(name),"
    " device TEXT NOT NULL REFERENCES device(id), state TEXT NOT NULL DEFAULT 'pending',"
    " step INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0, reason TEXT,"
    " updated INTEGER NOT NULL DEFAULT 0, UNIQUE(campaign, device));"
    "CREATE INDEX IF NOT EXISTS job_dev ON job(device, state);"
    "CREATE TABLE IF NOT EXISTS event("
    " id INTEGER PRIMARY KEY, time INTEGER NOT NULL, device TEXT, dialog TEXT,"
    " what TEXT NOT NULL, detail TEXT);";

/* The same tables in PostgreSQL's types (times in ms need BIGINT). */
static const char v1_pg[] =
    "CREATE TABLE IF NOT EXISTS device("
    " id TEXT PRIMARY KEY, master TEXT NOT NULL, kdf TEXT NOT NULL, kvn INTEGER NOT NULL,"
    " tags TEXT NOT NULL DEFAULT '',"
    " next_master TEXT, next_kdf TEXT, next_kvn INTEGER,"
    " prev_master TEXT, prev_kdf TEXT, prev_kvn INTEGER,"
    " lease_owner TEXT, lease_until BIGINT NOT NULL DEFAULT 0,"
    " updated BIGINT NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS campaign("
    " name TEXT PRIMARY KEY, action INTEGER NOT NULL, params TEXT NOT NULL,"
    " target TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'active', created BIGINT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS job("
    " id BIGSERIAL PRIMARY KEY, campaign TEXT NOT NULL REFERENCES campaign(name),"
    " device TEXT NOT NULL REFERENCES device(id), state TEXT NOT NULL DEFAULT 'pending',"
    " step INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0, reason TEXT,"
    " updated BIGINT NOT NULL DEFAULT 0, UNIQUE(campaign, device));"
    "CREATE INDEX IF NOT EXISTS job_dev ON job(device, state);"
    "CREATE TABLE IF NOT EXISTS event("
    " id BIGSERIAL PRIMARY KEY, time BIGINT NOT NULL, device TEXT, dialog TEXT,"
    " what TEXT NOT NULL, detail TEXT);";

/* Version 2: the lease's holder (the server process), campaign progress
 * by campaign and state, a device's history by device. */
static const char v2_both[] = "ALTER TABLE device ADD COLUMN lease_holder TEXT;"
                              "CREATE INDEX IF NOT EXISTS job_campaign ON job(campaign, state);"
                              "CREATE INDEX IF NOT EXISTS event_device ON event(device, id);";

static const struct {
    int version;
    const char *sqlite, *pg;
} migrations[] = {
    { 1, v1_sqlite, v1_pg },
    { 2, v2_both, v2_both },
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == OTA_REG_SCHEMA_VERSION,
               "one migration per schema version");

/* The schema version in the database: 0 none, 1 tables without a
 * version row, else max(schema_version.version). */
static int read_version(ota_reg *r, int *v)
{
    ota_res *s;
    int rc, has_sv, has_dev;
    const char *tables = r->be->kind == OTA_BE_PG
                             ? "SELECT table_name FROM information_schema.tables WHERE "
                               "table_schema=current_schema() AND table_name IN "
                               "('schema_version','device')"
                             : "SELECT name FROM sqlite_master WHERE type='table' AND name IN "
                               "('schema_version','device')";
    rc = q(r, &s, tables, NULL);
    if (rc < 0) {
        rfree(r, s);
        return rc;
    }
    has_sv = has_dev = 0;
    while (rc == 1) {
        const char *t = r->be->text(s, 0);
        if (t && strcmp(t, "schema_version") == 0)
            has_sv = 1;
        else if (t && strcmp(t, "device") == 0)
            has_dev = 1;
        rc = r->be->next(s);
    }
    rfree(r, s);
    *v = has_dev ? 1 : 0;
    if (!has_sv)
        return SCP_OK;
    rc = q(r, &s, "SELECT max(version) FROM schema_version", NULL);
    if (rc == 1 && r->be->text(s, 0))
        *v = (int)r->be->integer(s, 0);
    rfree(r, s);
    return rc < 0 ? rc : SCP_OK;
}

int ota_reg_schema_version(ota_reg *r, int *version)
{
    return read_version(r, version);
}

/* Bring the schema to OTA_REG_SCHEMA_VERSION: each step in its own
 * transaction, the version re-read inside it (another process may have
 * migrated meanwhile; PostgreSQL: under an advisory lock, SQLite: under
 * BEGIN IMMEDIATE's write lock). */
static int migrate(ota_reg *r, int create)
{
    int v, rc, target = 0;
    if ((rc = read_version(r, &v)) != SCP_OK) {
        ota_reg_seterr(r, "cannot read the schema version: %s", r->err);
        return rc;
    }
    if (v > OTA_REG_SCHEMA_VERSION) {
        ota_reg_seterr(r,
                       "registry schema version %d is newer than this scpkit's (%d): it was "
                       "written by a newer scpkit; use that one (this one will not touch it)",
                       v, OTA_REG_SCHEMA_VERSION);
        return SCP_E_STATE;
    }
    if (v == 0 && !create) {
        ota_reg_seterr(r, "no registry in %s", r->where);
        return SCP_E_NOT_FOUND;
    }
    for (size_t k = 0; k < sizeof(migrations) / sizeof(migrations[0]); k++) {
        char ins[160];
        target = migrations[k].version;
        if (target <= v)
            continue;
        if ((rc = ota_reg_begin(r)) != SCP_OK)
            return rc;
        if (r->be->kind == OTA_BE_PG &&
            (rc = q(r, NULL, "SELECT pg_advisory_xact_lock(7305190415)", NULL)) < 0)
            goto fail;
        if ((rc = read_version(r, &v)) != SCP_OK)
            goto fail;
        if (v > OTA_REG_SCHEMA_VERSION) {
            (void)ota_reg_rollback(r);
            ota_reg_seterr(r, "registry schema version %d is newer than this scpkit's (%d)", v,
                           OTA_REG_SCHEMA_VERSION);
            return SCP_E_STATE;
        }
        if (target <= v) {
            if ((rc = ota_reg_commit(r)) != SCP_OK)
                return rc;
            continue;
        }
        if ((rc = r->be->script(r, r->be->kind == OTA_BE_PG ? migrations[k].pg
                                                             : migrations[k].sqlite)) < 0)
            goto fail;
        if ((rc = r->be->script(r, "CREATE TABLE IF NOT EXISTS schema_version("
                                   " version INTEGER PRIMARY KEY, applied BIGINT NOT NULL)")) < 0)
            goto fail;
        /* a pre-versioning registry gets its row 1 with the step to 2 */
        for (int w = v > 0 ? v : target; w <= target; w++) {
            snprintf(ins, sizeof(ins),
                     "INSERT INTO schema_version(version, applied) VALUES(%d, %lld)"
                     " ON CONFLICT(version) DO NOTHING",
                     w, (long long)ota_now_ms());
            if ((rc = r->be->script(r, ins)) < 0)
                goto fail;
        }
        if ((rc = ota_reg_commit(r)) != SCP_OK) {
            ota_reg_seterr(r, "migration to schema version %d not committed: %s", target, r->err);
            return rc;
        }
        v = target;
    }
    return SCP_OK;
fail:
    ota_reg_seterr(r, "migration to schema version %d failed: %s", target, r->err);
    (void)ota_reg_rollback(r);
    return rc < 0 ? rc : SCP_E_IO;
}

/* ---- open ---- */

/* The "db" of DIR/ota.json (copied to out; "" when none). */
static int config_db(const char *dir, char *out, size_t size)
{
    char path[4096];
    json_object *j, *v;
    out[0] = 0;
    if ((size_t)snprintf(path, sizeof(path), "%s/ota.json", dir) >= sizeof(path))
        return SCP_E_ARG;
    if (access(path, F_OK) != 0)
        return SCP_OK; /* a directory made before the config: SQLite */
    j = json_object_from_file(path);
    if (!j)
        return SCP_E_FORMAT;
    if (json_object_object_get_ex(j, "db", &v)) {
        if (!json_object_is_type(v, json_type_string) ||
            (size_t)json_object_get_string_len(v) >= size) {
            json_object_put(j);
            return SCP_E_FORMAT;
        }
        snprintf(out, size, "%s", json_object_get_string(v));
    }
    json_object_put(j);
    return SCP_OK;
}

int ota_reg_open_db(const char *dir, const char *db, int create, ota_reg **out)
{
    char cfg[1024];
    const ota_reg_be *be;
    ota_reg *r;
    int rc;

    open_err[0] = 0;
    if (!dir || !out)
        return SCP_E_ARG;
    if (!db) {
        if ((rc = config_db(dir, cfg, sizeof(cfg))) != SCP_OK) {
            snprintf(open_err, sizeof(open_err), "%s/ota.json: malformed \"db\"", dir);
            return rc;
        }
        db = cfg;
    }
    if (!*db || strcmp(db, "sqlite") == 0)
        be = &ota_be_sqlite;
    else if (strncmp(db, "postgresql://", 13) == 0 || strncmp(db, "postgres://", 11) == 0 ||
             strchr(db, '='))
        be = &ota_be_pg;
    else {
        snprintf(open_err, sizeof(open_err),
                 "unknown database \"%.60s\" (sqlite, postgresql://...)", db);
        return SCP_E_ARG;
    }
    if (!be->open) {
        snprintf(open_err, sizeof(open_err), "this scpkit was built without PostgreSQL (libpq)");
        return SCP_E_UNSUPPORTED;
    }
    r = calloc(1, sizeof(*r));
    if (!r)
        return SCP_E_NOMEM;
    r->be = be;
    {
        char host[64] = "localhost";
        (void)gethostname(host, sizeof(host) - 1);
        host[sizeof(host) - 1] = 0;
        snprintf(r->holder, sizeof(r->holder), "%s:%ld", host, (long)getpid());
    }
    rc = be->open(r, dir, db, create);
    if (rc == SCP_OK)
        rc = migrate(r, create);
    if (rc != SCP_OK) {
        snprintf(open_err, sizeof(open_err), "%s", r->err[0] ? r->err : scp_strerror(rc));
        ota_reg_close(r);
        return rc;
    }
    *out = r;
    return SCP_OK;
}

int ota_reg_open(const char *dir, int create, ota_reg **out)
{
    return ota_reg_open_db(dir, NULL, create, out);
}

void ota_reg_close(ota_reg *r)
{
    if (!r)
        return;
    if (r->in_txn)
        (void)ota_reg_rollback(r);
    if (r->h)
        r->be->close(r);
    free(r);
}

/* ---- devices ---- */

/* The device cache (registry_int.h): only for the device whose lease this
 * transaction renewed. */
static int cacheable(ota_reg *r, const char *id)
{
    return r->in_txn && r->held[0] && strcmp(r->held, id) == 0;
}
static void uncache(ota_reg *r, const char *id)
{
    if (!id || strcmp(r->dev.id, id) == 0)
        r->dev_cached = 0;
}

int ota_reg_device_add(ota_reg *r, const char *id, const ota_keyref *k, const char *tags)
{
    if (!id || !*id || strlen(id) > OTA_ID_MAX || !k || k->kvn < 1 || k->kvn > 255)
        return SCP_E_ARG;
    uncache(r, id);
    return qd(r,
              "INSERT INTO device(id,master,kdf,kvn,tags,updated) VALUES(?,?,?,?,?,?)"
              " ON CONFLICT(id) DO UPDATE SET master=excluded.master, kdf=excluded.kdf,"
              " kvn=excluded.kvn, tags=excluded.tags, updated=excluded.updated",
              "tttiti", id, k->master, k->kdf, (int64_t)k->kvn, tags ? tags : "", ota_now_ms());
}

static void keyref(ota_reg *r, ota_res *s, int i, ota_keyref *k)
{
    col_text(r, s, i, k->master, sizeof(k->master));
    col_text(r, s, i + 1, k->kdf, sizeof(k->kdf));
    k->kvn = r->be->text(s, i + 2) ? (int)r->be->integer(s, i + 2) : 0;
}

#define DEVICE_COLS                                                                        \
    "id,master,kdf,kvn,next_master,next_kdf,next_kvn,prev_master,prev_kdf,prev_kvn,tags"

static void device_row(ota_reg *r, ota_res *s, ota_device *d)
{
    memset(d, 0, sizeof(*d));
    col_text(r, s, 0, d->id, sizeof(d->id));
    keyref(r, s, 1, &d->cur);
    keyref(r, s, 4, &d->next);
    keyref(r, s, 7, &d->prev);
    col_text(r, s, 10, d->tags, sizeof(d->tags));
}

int ota_reg_device_get(ota_reg *r, const char *id, ota_device *d)
{
    ota_res *s;
    int rc;
    if (r->dev_cached && cacheable(r, id) && strcmp(r->dev.id, id) == 0) {
        *d = r->dev;
        return SCP_OK;
    }
    rc = q(r, &s, "SELECT " DEVICE_COLS " FROM device WHERE id=?", "t", id);
    if (rc == 1)
        device_row(r, s, d);
    rfree(r, s);
    if (rc == 1 && cacheable(r, id)) {
        r->dev = *d;
        r->dev_cached = 1;
    }
    return rc < 0 ? rc : rc == 0 ? SCP_E_NOT_FOUND : SCP_OK;
}

int ota_reg_device_each(ota_reg *r, void (*fn)(void *arg, const ota_device *d), void *arg)
{
    ota_res *s;
    int rc = q(r, &s, "SELECT " DEVICE_COLS " FROM device ORDER BY id", NULL);
    while (rc == 1) {
        ota_device d;
        device_row(r, s, &d);
        fn(arg, &d);
        rc = r->be->next(s);
    }
    rfree(r, s);
    return rc < 0 ? rc : SCP_OK;
}

int ota_reg_set_next(ota_reg *r, const char *id, const ota_keyref *n)
{
    if (r->dev_cached && strcmp(r->dev.id, id) == 0)
        r->dev.next = *n;
    return qd(r, "UPDATE device SET next_master=?, next_kdf=?, next_kvn=?, updated=? WHERE id=?",
              "ttiit", n->master, n->kdf, (int64_t)n->kvn, ota_now_ms(), id);
}

/* The new set opened a channel: it becomes current, the old one is kept
 * as prev until its DELETE KEY is confirmed. */
int ota_reg_promote_next(ota_reg *r, const char *id)
{
    if (r->dev_cached && strcmp(r->dev.id, id) == 0 && r->dev.next.kvn) {
        r->dev.prev = r->dev.cur;
        r->dev.cur = r->dev.next;
        memset(&r->dev.next, 0, sizeof(r->dev.next));
    }
    return qd(r,
              "UPDATE device SET prev_master=master, prev_kdf=kdf, prev_kvn=kvn,"
              " master=next_master, kdf=next_kdf, kvn=next_kvn,"
              " next_master=NULL, next_kdf=NULL, next_kvn=NULL, updated=?"
              " WHERE id=? AND next_kvn IS NOT NULL",
              "it", ota_now_ms(), id);
}

int ota_reg_clear_next(ota_reg *r, const char *id)
{
    if (r->dev_cached && strcmp(r->dev.id, id) == 0)
        memset(&r->dev.next, 0, sizeof(r->dev.next));
    return qd(r,
              "UPDATE device SET next_master=NULL, next_kdf=NULL, next_kvn=NULL, updated=?"
              " WHERE id=?",
              "it", ota_now_ms(), id);
}

int ota_reg_clear_prev(ota_reg *r, const char *id)
{
    if (r->dev_cached && strcmp(r->dev.id, id) == 0)
        memset(&r->dev.prev, 0, sizeof(r->dev.prev));
    return qd(r,
              "UPDATE device SET prev_master=NULL, prev_kdf=NULL, prev_kvn=NULL, updated=?"
              " WHERE id=?",
              "it", ota_now_ms(), id);
}

/* ---- leases ---- */

/* SQLite: one conditional UPDATE (BEGIN IMMEDIATE: the check and the
 * write cannot interleave with another process), then its event.
 * PostgreSQL: one statement, one round trip: the row locked FOR UPDATE
 * SKIP LOCKED (a device another server's transaction is working on is
 * skipped, not waited for), updated, and its event written. */
static const char lease_sqlite[] =
    "UPDATE device SET lease_owner=?, lease_until=?, lease_holder=? WHERE id=? AND"
    " (lease_owner IS NULL OR lease_until < ? OR lease_owner=?)";
static const char lease_pg[] =
    "WITH c AS (SELECT id FROM device WHERE id=? AND"
    " (lease_owner IS NULL OR lease_until < ? OR lease_owner=?) FOR UPDATE SKIP LOCKED),"
    " u AS (UPDATE device SET lease_owner=?, lease_until=?, lease_holder=? FROM c"
    " WHERE device.id=c.id RETURNING device.id),"
    " e AS (INSERT INTO event(time,device,dialog,what,detail)"
    " SELECT CAST(? AS BIGINT), id, CAST(? AS TEXT), 'lease', CAST(? AS TEXT) FROM u)"
    " SELECT count(*) FROM u";
static const char lease_event[] =
    "INSERT INTO event(time,device,dialog,what,detail) VALUES(?,?,?,'lease',?)";

int ota_reg_lease(ota_reg *r, const char *id, const char *owner, int64_t ms, int64_t *until_ms)
{
    ota_res *s;
    int64_t now = ota_now_ms();
    char detail[160];
    int rc;

    snprintf(detail, sizeof(detail), "holder=%s until=%lld", r->holder, (long long)(now + ms));
    if (r->be->kind == OTA_BE_PG) {
        rc = q(r, &s, lease_pg, "titt" "it" "itt", id, now, owner, owner, now + ms, r->holder,
               now, owner, detail);
        if (rc == 1)
            rc = r->be->integer(s, 0) == 1;
        rfree(r, s);
    } else {
        int own_txn = !r->in_txn;
        if (own_txn && (rc = ota_reg_begin(r)) != SCP_OK)
            return rc;
        rc = q(r, NULL, lease_sqlite, "titt" "it", owner, now + ms, r->holder, id, now, owner);
        if (rc == 1 && (rc = qd(r, lease_event, "ittt", now, id, owner, detail)) == SCP_OK)
            rc = 1;
        if (own_txn) {
            if (rc < 0)
                (void)ota_reg_rollback(r);
            else if (ota_reg_commit(r) != SCP_OK)
                return SCP_E_IO;
        }
    }
    if (rc != 0)
        return rc;
    rc = q(r, &s, "SELECT lease_until FROM device WHERE id=?", "t", id);
    if (until_ms)
        *until_ms = rc == 1 ? r->be->integer(s, 0) : 0;
    rfree(r, s);
    return rc < 0 ? rc : rc == 1 ? 0 : SCP_E_NOT_FOUND;
}

int ota_reg_lease_hold(ota_reg *r, const char *id, const char *owner, int64_t ms)
{
    int64_t now = ota_now_ms();
    int rc;
    if (!r->in_txn)
        return SCP_E_STATE;
    /* from here the device's row is this transaction's: cache it */
    if (strlen(id) <= OTA_ID_MAX && strcmp(r->held, id) != 0) {
        snprintf(r->held, sizeof(r->held), "%s", id);
        r->dev_cached = 0;
    }
    if (r->be->kind == OTA_BE_PG) {
        /* pipelined: a lost lease divides by zero, which aborts the
         * transaction, so its COMMIT fails */
        return qd(r,
                  "WITH u AS (UPDATE device SET lease_until=? WHERE id=? AND lease_owner=?"
                  " AND lease_until>=? RETURNING 1) SELECT 1/count(*) FROM u",
                  "itti", now + ms, id, owner, now);
    }
    rc = q(r, NULL,
           "UPDATE device SET lease_until=? WHERE id=? AND lease_owner=? AND lease_until>=?",
           "itti", now + ms, id, owner, now);
    if (rc < 0)
        return rc;
    if (rc != 1) {
        r->txn_failed = 1;
        ota_reg_seterr(r, "device %s: lease lost", id);
        return SCP_E_STATE;
    }
    return SCP_OK;
}

int ota_reg_lease_owner(ota_reg *r, const char *id, char *owner, size_t owner_size)
{
    ota_res *s;
    int rc = q(r, &s, "SELECT lease_owner FROM device WHERE id=? AND lease_until >= ?", "ti", id,
               ota_now_ms());
    owner[0] = 0;
    if (rc == 1)
        col_text(r, s, 0, owner, owner_size);
    rfree(r, s);
    return rc < 0 ? rc : SCP_OK;
}

/* The release is logged ("lease-released") when it released anything. */
int ota_reg_release(ota_reg *r, const char *id, const char *owner)
{
    int64_t now = ota_now_ms();
    int rc, own_txn;
    if (r->be->kind == OTA_BE_PG)
        return qd(r,
                  "WITH u AS (UPDATE device SET lease_owner=NULL, lease_until=0,"
                  " lease_holder=NULL WHERE id=? AND lease_owner=? RETURNING id)"
                  " INSERT INTO event(time,device,dialog,what)"
                  " SELECT CAST(? AS BIGINT), id, CAST(? AS TEXT), 'lease-released' FROM u",
                  "ttit", id, owner, now, owner);
    own_txn = !r->in_txn;
    if (own_txn && (rc = ota_reg_begin(r)) != SCP_OK)
        return rc;
    rc = q(r, NULL,
           "UPDATE device SET lease_owner=NULL, lease_until=0, lease_holder=NULL"
           " WHERE id=? AND lease_owner=?",
           "tt", id, owner);
    if (rc == 1)
        rc = qd(r,
                "INSERT INTO event(time,device,dialog,what) VALUES(?,?,?,'lease-released')",
                "itt", now, id, owner);
    if (own_txn) {
        if (rc < 0) {
            (void)ota_reg_rollback(r);
            return rc;
        }
        return ota_reg_commit(r);
    }
    return rc < 0 ? rc : SCP_OK;
}

/* ---- campaigns ---- */

int ota_reg_campaign_create(ota_reg *r, const char *name, int action, const char *params,
                            const char *target, int *n_jobs)
{
    int rc;
    int64_t now = ota_now_ms();
    if (!name || !*name || strlen(name) > OTA_ID_MAX || !target)
        return SCP_E_ARG;
    if (ota_reg_begin(r) != SCP_OK)
        return SCP_E_IO;
    rc = qd(r, "INSERT INTO campaign(name,action,params,target,created) VALUES(?,?,?,?,?)",
            "titti", name, (int64_t)action, params, target, now);
    if (rc < 0)
        goto fail;
    if (strcmp(target, "all") == 0) {
        rc = q(r, NULL,
               "INSERT INTO job(campaign,device,updated)"
               " SELECT CAST(? AS TEXT),id,CAST(? AS BIGINT) FROM device",
               "ti", name, now);
    } else if (strncmp(target, "tag:", 4) == 0) {
        /* tags are stored comma-separated: match a whole item */
        rc = q(r, NULL,
               "INSERT INTO job(campaign,device,updated)"
               " SELECT CAST(? AS TEXT),id,CAST(? AS BIGINT) FROM device"
               " WHERE ','||tags||',' LIKE '%,'||CAST(? AS TEXT)||',%'",
               "tit", name, now, target + 4);
    } else if (strncmp(target, "list:", 5) == 0) {
        rc = q(r, NULL,
               "INSERT INTO job(campaign,device,updated)"
               " SELECT CAST(? AS TEXT),id,CAST(? AS BIGINT) FROM device"
               " WHERE ','||CAST(? AS TEXT)||',' LIKE '%,'||id||',%'",
               "tit", name, now, target + 5);
    } else {
        rc = SCP_E_ARG;
    }
    if (rc < 0)
        goto fail;
    if (n_jobs)
        *n_jobs = rc;
    if (ota_reg_commit(r) != SCP_OK)
        return SCP_E_IO;
    return SCP_OK;
fail:
    (void)ota_reg_rollback(r);
    return rc;
}

int ota_reg_campaign_state(ota_reg *r, const char *name, const char *state)
{
    int rc;
    if (ota_reg_begin(r) != SCP_OK)
        return SCP_E_IO;
    rc = q(r, NULL, "UPDATE campaign SET state=? WHERE name=? AND state<>'cancelled'", "tt",
           state, name);
    if (rc >= 0)
        rc = rc == 1 ? SCP_OK : SCP_E_NOT_FOUND;
    if (rc == SCP_OK && strcmp(state, "cancelled") == 0)
        rc = qd(r,
                "UPDATE job SET state='cancelled', reason='campaign cancelled', updated=?"
                " WHERE campaign=? AND state IN ('pending','running')",
                "it", ota_now_ms(), name);
    if (rc == SCP_OK)
        return ota_reg_commit(r) == SCP_OK ? SCP_OK : SCP_E_IO;
    (void)ota_reg_rollback(r);
    return rc;
}

int ota_reg_campaign_counts(ota_reg *r, const char *name, ota_counts *c)
{
    ota_res *s;
    int rc = q(r, &s, "SELECT state, action FROM campaign WHERE name=?", "t", name);
    memset(c, 0, sizeof(*c));
    if (rc <= 0) {
        rfree(r, s);
        return rc < 0 ? rc : SCP_E_NOT_FOUND;
    }
    col_text(r, s, 0, c->state, sizeof(c->state));
    {
        int a = (int)r->be->integer(s, 1);
        snprintf(c->action, sizeof(c->action), "%s",
                 a == OTA_ACT_ROTATE ? "rotate-keys" : a == OTA_ACT_SCRIPT ? "script" : "put-data");
    }
    rfree(r, s);
    rc = q(r, &s, "SELECT state, count(*) FROM job WHERE campaign=? GROUP BY state", "t", name);
    while (rc == 1) {
        const char *st = r->be->text(s, 0);
        int n = (int)r->be->integer(s, 1);
        c->total += n;
        if (!st)
            c->cancelled += n;
        else if (strcmp(st, "pending") == 0)
            c->pending = n;
        else if (strcmp(st, "running") == 0)
            c->running = n;
        else if (strcmp(st, "done") == 0)
            c->done = n;
        else if (strcmp(st, "failed") == 0)
            c->failed = n;
        else
            c->cancelled += n;
        rc = r->be->next(s);
    }
    rfree(r, s);
    return rc < 0 ? rc : SCP_OK;
}

int ota_reg_campaign_jobs(ota_reg *r, const char *name,
                          void (*fn)(void *, const char *, const char *, int, int, const char *),
                          void *arg)
{
    ota_res *s;
    int rc = q(r, &s,
               "SELECT device, state, step, attempts, reason FROM job WHERE campaign=?"
               " ORDER BY device",
               "t", name);
    while (rc == 1) {
        const char *reason = r->be->text(s, 4);
        fn(arg, r->be->text(s, 0), r->be->text(s, 1), (int)r->be->integer(s, 2),
           (int)r->be->integer(s, 3), reason ? reason : "");
        rc = r->be->next(s);
    }
    rfree(r, s);
    return rc < 0 ? rc : SCP_OK;
}

/* ---- jobs ---- */

void ota_job_free(ota_job *j)
{
    if (j) {
        free(j->cmds_hex);
        j->cmds_hex = NULL;
    }
}

/* The job's row into j (params: "master|kdf|kvn" for rotate, "AID|HEX;HEX;..."
 * for script and put-data). */
static void job_row(ota_reg *r, ota_res *s, ota_job *j)
{
    const char *params;
    free(j->cmds_hex);
    memset(j, 0, sizeof(*j));
    j->id = r->be->integer(s, 0);
    col_text(r, s, 1, j->campaign, sizeof(j->campaign));
    j->action = (int)r->be->integer(s, 2);
    params = r->be->text(s, 3);
    j->step = (int)r->be->integer(s, 4);
    j->attempts = (int)r->be->integer(s, 5);
    if (params) {
        const char *bar = strchr(params, '|');
        if (j->action == OTA_ACT_ROTATE) {
            char kdf[16] = "";
            int kvn = 0;
            if (bar && (size_t)(bar - params) < sizeof(j->target.master) &&
                sscanf(bar + 1, "%15[^|]|%d", kdf, &kvn) == 2) {
                memcpy(j->target.master, params, (size_t)(bar - params));
                j->target.master[bar - params] = 0;
                snprintf(j->target.kdf, sizeof(j->target.kdf), "%s", kdf);
                j->target.kvn = kvn;
            }
        } else if (bar && (size_t)(bar - params) < sizeof(j->app)) {
            memcpy(j->app, params, (size_t)(bar - params));
            j->app[bar - params] = 0;
            j->cmds_hex = strdup(bar + 1);
        }
    }
}

int ota_reg_job_next(ota_reg *r, const char *dev, ota_job *j)
{
    ota_res *s;
    /* the device's oldest open job: its few rows come by the job_dev index
     * and the oldest is picked here (ORDER BY id LIMIT 1 made SQLite build
     * a temporary B-tree per call, a tenth of a rotation's server CPU) */
    int rc = q(r, &s,
               "SELECT job.id, job.campaign, campaign.action, campaign.params, job.step,"
               " job.attempts FROM job JOIN campaign ON campaign.name=job.campaign"
               " WHERE job.device=? AND job.state IN ('pending','running')"
               " AND campaign.state='active'",
               "t", dev);
    if (rc <= 0) {
        rfree(r, s);
        return rc;
    }
    memset(j, 0, sizeof(*j));
    job_row(r, s, j);
    while (r->be->next(s))
        if (r->be->integer(s, 0) < j->id)
            job_row(r, s, j);
    rfree(r, s);
    if (j->action != OTA_ACT_ROTATE && !j->cmds_hex)
        return SCP_E_NOMEM;
    return 1;
}

int ota_reg_job_set(ota_reg *r, int64_t job, const char *state, int step, const char *reason)
{
    return qd(r,
              "UPDATE job SET state=?, step=?, reason=coalesce(CAST(? AS TEXT),reason), updated=?"
              " WHERE id=? AND state NOT IN ('cancelled')",
              "titii", state, (int64_t)step, reason, ota_now_ms(), job);
}

int ota_reg_job_attempt(ota_reg *r, int64_t job, const char *reason)
{
    return qd(r,
              "UPDATE job SET attempts=attempts+1, reason=?, updated=?,"
              " state=CASE WHEN state='running' THEN 'pending' ELSE state END WHERE id=?",
              "tii", reason, ota_now_ms(), job);
}

void ota_reg_event(ota_reg *r, const char *dev, const char *dialog, const char *what,
                   const char *detail)
{
    if (qd(r, "INSERT INTO event(time,device,dialog,what,detail) VALUES(?,?,?,?,?)", "itttt",
           ota_now_ms(), dev, dialog, what, detail) != SCP_OK)
        fprintf(stderr, "scpkit ota: registry event not written: %s\n", r->err);
}

/* Copy a column cut to size-1 bytes, never in the middle of a UTF-8
 * sequence (the renderers escape; they need not repair). */
static void col_text_cut(ota_reg *r, ota_res *s, int i, char *out, size_t size)
{
    const unsigned char *t = (const unsigned char *)r->be->text(s, i);
    size_t n = t ? strlen((const char *)t) : 0;
    if (n >= size) {
        n = size - 1;
        while (n > 0 && (t[n] & 0xC0) == 0x80)
            n--;
    }
    if (n)
        memcpy(out, t, n);
    out[n] = 0;
}

/* One campaign's status (see ota.h). Three statements: the counts, the
 * ended jobs in time order (downsampled here), the latest failures. */
static int campaign_status_one(ota_reg *r, const char *name, ota_campaign_status *st, int full)
{
    ota_res *s;
    int rc, ended, k = 0, done = 0, failed = 0;
    memset(st, 0, sizeof(*st));
    snprintf(st->name, sizeof(st->name), "%s", name);
    if ((rc = ota_reg_campaign_counts(r, name, &st->counts)) != SCP_OK)
        return rc;
    rc = q(r, &s, "SELECT created FROM campaign WHERE name=?", "t", name);
    if (rc < 0)
        return rc;
    st->created_ms = rc == 1 ? r->be->integer(s, 0) : 0;
    rfree(r, s);
    if (!full)
        return SCP_OK;
    /* progress: job i (0-based) of `ended` lands in point i*P/ended; a
     * point is written when the next job falls in another one, and for
     * the last job, so the last point is the exact total */
    ended = st->counts.done + st->counts.failed;
    rc = q(r, &s,
             "SELECT updated, state FROM job WHERE campaign=? AND state IN ('done','failed')"
             " ORDER BY updated, id",
             "t", name);
    if (rc < 0)
        return rc;
    for (int i = 0; rc == 1; i++) {
        const char *state = r->be->text(s, 1);
        int64_t t = r->be->integer(s, 0);
        if (state && strcmp(state, "done") == 0)
            done++;
        else
            failed++;
        rc = r->be->next(s);
        /* (jobs may end between the two statements: ended is a floor) */
        int last = !rc, here = ended > 0 ? (int)((int64_t)i * OTA_STATUS_POINTS / ended) : i;
        int nxt = ended > 0 ? (int)((int64_t)(i + 1) * OTA_STATUS_POINTS / ended) : i + 1;
        if ((last || nxt != here) && k < OTA_STATUS_POINTS) {
            st->points[k].t_ms = t;
            st->points[k].done = done;
            st->points[k].failed = failed;
            k++;
        } else if (last) {
            st->points[OTA_STATUS_POINTS - 1] =
                (ota_status_point){ .t_ms = t, .done = done, .failed = failed };
        }
    }
    rfree(r, s);
    st->n_points = k;
    rc = q(r, &s,
             "SELECT updated, device, state, attempts, coalesce(reason,'') FROM job"
             " WHERE campaign=? AND (state='failed' OR (state IN ('pending','running')"
             " AND attempts > 0 AND coalesce(reason,'') <> ''))"
             " ORDER BY updated DESC, id DESC LIMIT ?",
             "ti", name, (int64_t)OTA_STATUS_FAILS);
    if (rc < 0)
        return rc;
    for (k = 0; rc == 1 && k < OTA_STATUS_FAILS; k++) {
        ota_status_fail *f = &st->fails[k];
        f->t_ms = r->be->integer(s, 0);
        col_text_cut(r, s, 1, f->device, sizeof(f->device));
        col_text_cut(r, s, 2, f->state, sizeof(f->state));
        f->attempts = (int)r->be->integer(s, 3);
        col_text_cut(r, s, 4, f->reason, sizeof(f->reason));
        rc = r->be->next(s);
    }
    rfree(r, s);
    st->n_fails = k;
    return SCP_OK;
}

int ota_reg_campaign_status(ota_reg *r, const char *name,
                            int (*fn)(void *arg, const ota_campaign_status *s), void *arg)
{
    ota_campaign_status *st = malloc(sizeof(*st));
    ota_res *s;
    char (*names)[OTA_ID_MAX * 4 + 1] = NULL;
    int rc, n = 0;
    if (!st)
        return SCP_E_NOMEM;
    if (name) {
        rc = campaign_status_one(r, name, st, 1);
        if (rc == SCP_OK)
            rc = fn(arg, st);
        free(st);
        return rc;
    }
    /* the index: names first (the statement is not kept open across fn) */
    names = calloc(OTA_STATUS_CAMPAIGNS, sizeof(*names));
    rc = names ? q(r, &s, "SELECT name FROM campaign ORDER BY created DESC, name LIMIT ?", "i",
                     (int64_t)OTA_STATUS_CAMPAIGNS)
               : SCP_E_NOMEM;
    if (rc >= 0) {
        while (rc == 1 && n < OTA_STATUS_CAMPAIGNS) {
            col_text_cut(r, s, 0, names[n++], sizeof(names[0]));
            rc = r->be->next(s);
        }
        rfree(r, s);
        rc = SCP_OK;
        for (int i = 0; i < n && rc == SCP_OK; i++) {
            rc = campaign_status_one(r, names[i], st, 0);
            if (rc == SCP_E_NOT_FOUND) { /* cut name, or gone meanwhile */
                rc = SCP_OK;
                continue;
            }
            if (rc == SCP_OK)
                rc = fn(arg, st);
        }
    }
    free(names);
    free(st);
    return rc;
}
