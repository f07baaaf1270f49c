/* The fleet registry: SQLite in WAL mode in the server's directory
 * (DIR/registry.db, 0600). Every change is one transaction, committed with
 * synchronous=FULL before the caller acts on it, so a kill -9 at any
 * moment leaves either the state before or the state after. Several
 * processes may share it (busy timeout); no key material is ever stored. */
#include <stdarg.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "ota/ota.h"

struct ota_reg {
    sqlite3 *db;
};

static const char schema[] =
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

int64_t ota_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *ota_reg_errmsg(ota_reg *r)
{
    return r && r->db ? sqlite3_errmsg(r->db) : "no registry";
}

static int exec(ota_reg *r, const char *sql)
{
    return sqlite3_exec(r->db, sql, NULL, NULL, NULL) == SQLITE_OK ? SCP_OK : SCP_E_IO;
}

int ota_reg_open(const char *dir, int create, ota_reg **out)
{
    char path[4096];
    struct stat st;
    ota_reg *r;
    int fl = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX;

    if (!dir || !out || (size_t)snprintf(path, sizeof(path), "%s/registry.db", dir) >= sizeof(path))
        return SCP_E_ARG;
    if (!create && stat(path, &st) != 0)
        return SCP_E_NOT_FOUND;
    if (create)
        fl |= SQLITE_OPEN_CREATE;
    r = calloc(1, sizeof(*r));
    if (!r)
        return SCP_E_NOMEM;
    {
        mode_t old = umask(077);
        int src = sqlite3_open_v2(path, &r->db, fl, NULL);
        umask(old);
        if (src != SQLITE_OK) {
            ota_reg_close(r);
            return SCP_E_IO;
        }
    }
    sqlite3_busy_timeout(r->db, 10000);
    if (exec(r, "PRAGMA journal_mode=WAL") != SCP_OK ||
        exec(r, "PRAGMA synchronous=FULL") != SCP_OK ||
        exec(r, "PRAGMA foreign_keys=ON") != SCP_OK || (create && exec(r, schema) != SCP_OK)) {
        ota_reg_close(r);
        return SCP_E_IO;
    }
    *out = r;
    return SCP_OK;
}

void ota_reg_close(ota_reg *r)
{
    if (!r)
        return;
    sqlite3_close(r->db);
    free(r);
}

/* Prepare, bind text/int arguments from a format ("t" text, "i" int64),
 * step once. Returns the statement positioned on its first row (or done)
 * in *st when st is given, else finalises it. */
static int run(ota_reg *r, sqlite3_stmt **st, const char *sql, const char *fmt, ...)
{
    sqlite3_stmt *s;
    va_list ap;
    int src;
    if (sqlite3_prepare_v2(r->db, sql, -1, &s, NULL) != SQLITE_OK)
        return SCP_E_IO;
    va_start(ap, fmt);
    for (int k = 0; fmt && fmt[k]; k++) {
        if (fmt[k] == 't') {
            const char *v = va_arg(ap, const char *);
            if (v)
                sqlite3_bind_text(s, k + 1, v, -1, SQLITE_TRANSIENT);
            else
                sqlite3_bind_null(s, k + 1);
        } else {
            sqlite3_bind_int64(s, k + 1, va_arg(ap, int64_t));
        }
    }
    va_end(ap);
    src = sqlite3_step(s);
    if (src != SQLITE_ROW && src != SQLITE_DONE) {
        sqlite3_finalize(s);
        return src == SQLITE_CONSTRAINT ? SCP_E_STATE : SCP_E_IO;
    }
    if (st) {
        *st = s;
        return src == SQLITE_ROW ? 1 : 0;
    }
    sqlite3_finalize(s);
    return SCP_OK;
}

static void col_text(sqlite3_stmt *s, int i, char *out, size_t size)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    snprintf(out, size, "%s", t ? (const char *)t : "");
}

int ota_reg_device_add(ota_reg *r, const char *id, const ota_keyref *k, const char *tags)
{
    if (!id || !*id || strlen(id) > OTA_ID_MAX || !k || k->kvn < 1 || k->kvn > 255)
        return SCP_E_ARG;
    return run(r, NULL,
               "INSERT INTO device(id,master,kdf,kvn,tags,updated) VALUES(?,?,?,?,?,?)"
               " ON CONFLICT(id) DO UPDATE SET master=excluded.master, kdf=excluded.kdf,"
               " kvn=excluded.kvn, tags=excluded.tags, updated=excluded.updated",
               "tttiti", id, k->master, k->kdf, (int64_t)k->kvn, tags ? tags : "",
               ota_now_ms());
}

static void keyref(sqlite3_stmt *s, int i, ota_keyref *k)
{
    col_text(s, i, k->master, sizeof(k->master));
    col_text(s, i + 1, k->kdf, sizeof(k->kdf));
    k->kvn = sqlite3_column_type(s, i + 2) == SQLITE_NULL ? 0 : sqlite3_column_int(s, i + 2);
}

int ota_reg_device_get(ota_reg *r, const char *id, ota_device *d)
{
    sqlite3_stmt *s;
    int rc = run(r, &s,
                 "SELECT id,master,kdf,kvn,next_master,next_kdf,next_kvn,prev_master,prev_kdf,"
                 "prev_kvn,tags FROM device WHERE id=?",
                 "t", id);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        sqlite3_finalize(s);
        return SCP_E_NOT_FOUND;
    }
    memset(d, 0, sizeof(*d));
    col_text(s, 0, d->id, sizeof(d->id));
    keyref(s, 1, &d->cur);
    keyref(s, 4, &d->next);
    keyref(s, 7, &d->prev);
    col_text(s, 10, d->tags, sizeof(d->tags));
    sqlite3_finalize(s);
    return SCP_OK;
}

int ota_reg_set_next(ota_reg *r, const char *id, const ota_keyref *n)
{
    return run(r, NULL,
               "UPDATE device SET next_master=?, next_kdf=?, next_kvn=?, updated=? WHERE id=?",
               "ttiit", n->master, n->kdf, (int64_t)n->kvn, ota_now_ms(), id);
}

/* The new set opened a channel: it becomes current, the old one is kept
 * as prev until its DELETE KEY is confirmed. */
int ota_reg_promote_next(ota_reg *r, const char *id)
{
    return run(r, NULL,
               "UPDATE device SET prev_master=master, prev_kdf=kdf, prev_kvn=kvn,"
               " master=next_master, kdf=next_kdf, kvn=next_kvn,"
               " next_master=NULL, next_kdf=NULL, next_kvn=NULL, updated=?"
               " WHERE id=? AND next_kvn IS NOT NULL",
               "it", ota_now_ms(), id);
}

int ota_reg_clear_next(ota_reg *r, const char *id)
{
    return run(r, NULL,
               "UPDATE device SET next_master=NULL, next_kdf=NULL, next_kvn=NULL, updated=?"
               " WHERE id=?",
               "it", ota_now_ms(), id);
}

int ota_reg_clear_prev(ota_reg *r, const char *id)
{
    return run(r, NULL,
               "UPDATE device SET prev_master=NULL, prev_kdf=NULL, prev_kvn=NULL, updated=?"
               " WHERE id=?",
               "it", ota_now_ms(), id);
}

int ota_reg_lease(ota_reg *r, const char *id, const char *owner, int64_t ms, int64_t *until_ms)
{
    sqlite3_stmt *s;
    int64_t now = ota_now_ms();
    int rc = run(r, NULL,
                 "UPDATE device SET lease_owner=?, lease_until=? WHERE id=? AND"
                 " (lease_owner IS NULL OR lease_until < ? OR lease_owner=?)",
                 "tit" "it", owner, now + ms, id, now, owner);
    if (rc < 0)
        return rc;
    if (sqlite3_changes(r->db) == 1)
        return 1;
    rc = run(r, &s, "SELECT lease_until FROM device WHERE id=?", "t", id);
    if (rc < 0)
        return rc;
    if (until_ms)
        *until_ms = rc == 1 ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_finalize(s);
    return rc == 1 ? 0 : SCP_E_NOT_FOUND;
}

int ota_reg_lease_owner(ota_reg *r, const char *id, char *owner, size_t owner_size)
{
    sqlite3_stmt *s;
    int rc = run(r, &s,
                 "SELECT lease_owner FROM device WHERE id=? AND lease_until >= ?", "ti", id,
                 ota_now_ms());
    if (rc < 0)
        return rc;
    owner[0] = 0;
    if (rc == 1)
        col_text(s, 0, owner, owner_size);
    sqlite3_finalize(s);
    return SCP_OK;
}

int ota_reg_release(ota_reg *r, const char *id, const char *owner)
{
    return run(r, NULL,
               "UPDATE device SET lease_owner=NULL, lease_until=0 WHERE id=? AND lease_owner=?",
               "tt", id, owner);
}

int ota_reg_campaign_create(ota_reg *r, const char *name, int action, const char *params,
                            const char *target, int *n_jobs)
{
    int rc;
    if (!name || !*name || strlen(name) > OTA_ID_MAX || !target)
        return SCP_E_ARG;
    if (exec(r, "BEGIN IMMEDIATE") != SCP_OK)
        return SCP_E_IO;
    rc = run(r, NULL,
             "INSERT INTO campaign(name,action,params,target,created) VALUES(?,?,?,?,?)",
             "titti", name, (int64_t)action, params, target, ota_now_ms());
    if (rc < 0)
        goto fail;
    if (strcmp(target, "all") == 0) {
        rc = run(r, NULL, "INSERT INTO job(campaign,device,updated) SELECT ?,id,? FROM device",
                 "ti", name, ota_now_ms());
    } else if (strncmp(target, "tag:", 4) == 0) {
        /* tags are stored comma-separated: match a whole item */
        rc = run(r, NULL,
                 "INSERT INTO job(campaign,device,updated) SELECT ?,id,? FROM device"
                 " WHERE ','||tags||',' LIKE '%,'||?||',%'",
                 "tit", name, ota_now_ms(), target + 4);
    } else if (strncmp(target, "list:", 5) == 0) {
        rc = run(r, NULL,
                 "INSERT INTO job(campaign,device,updated) SELECT ?,id,? FROM device"
                 " WHERE ','||?||',' LIKE '%,'||id||',%'",
                 "tit", name, ota_now_ms(), target + 5);
    } else {
        rc = SCP_E_ARG;
    }
    if (rc < 0)
        goto fail;
    if (n_jobs)
        *n_jobs = sqlite3_changes(r->db);
    if (exec(r, "COMMIT") != SCP_OK) {
        rc = SCP_E_IO;
        goto fail;
    }
    return SCP_OK;
fail:
    exec(r, "ROLLBACK");
    return rc;
}

int ota_reg_campaign_state(ota_reg *r, const char *name, const char *state)
{
    int rc;
    if (exec(r, "BEGIN IMMEDIATE") != SCP_OK)
        return SCP_E_IO;
    rc = run(r, NULL, "UPDATE campaign SET state=? WHERE name=? AND state<>'cancelled'", "tt",
             state, name);
    if (rc == SCP_OK && sqlite3_changes(r->db) != 1)
        rc = SCP_E_NOT_FOUND;
    if (rc == SCP_OK && strcmp(state, "cancelled") == 0)
        rc = run(r, NULL,
                 "UPDATE job SET state='cancelled', reason='campaign cancelled', updated=?"
                 " WHERE campaign=? AND state IN ('pending','running')",
                 "it", ota_now_ms(), name);
    if (rc == SCP_OK && exec(r, "COMMIT") == SCP_OK)
        return SCP_OK;
    exec(r, "ROLLBACK");
    return rc < 0 ? rc : SCP_E_IO;
}

int ota_reg_campaign_counts(ota_reg *r, const char *name, ota_counts *c)
{
    sqlite3_stmt *s;
    int rc = run(r, &s, "SELECT state, action FROM campaign WHERE name=?", "t", name);
    if (rc < 0)
        return rc;
    memset(c, 0, sizeof(*c));
    if (rc == 0) {
        sqlite3_finalize(s);
        return SCP_E_NOT_FOUND;
    }
    col_text(s, 0, c->state, sizeof(c->state));
    {
        int a = sqlite3_column_int(s, 1);
        snprintf(c->action, sizeof(c->action), "%s",
                 a == OTA_ACT_ROTATE ? "rotate-keys" : a == OTA_ACT_SCRIPT ? "script" : "put-data");
    }
    sqlite3_finalize(s);
    rc = run(r, &s, "SELECT state, count(*) FROM job WHERE campaign=? GROUP BY state", "t", name);
    if (rc < 0)
        return rc;
    while (rc == 1) {
        const char *st = (const char *)sqlite3_column_text(s, 0);
        int n = sqlite3_column_int(s, 1);
        c->total += n;
        if (strcmp(st, "pending") == 0)
            c->pending = n;
        else if (strcmp(st, "running") == 0)
            c->running = n;
        else if (strcmp(st, "done") == 0)
            c->done = n;
        else if (strcmp(st, "failed") == 0)
            c->failed = n;
        else
            c->cancelled += n;
        rc = sqlite3_step(s) == SQLITE_ROW;
    }
    sqlite3_finalize(s);
    return SCP_OK;
}

int ota_reg_campaign_jobs(ota_reg *r, const char *name,
                          void (*fn)(void *, const char *, const char *, int, int, const char *),
                          void *arg)
{
    sqlite3_stmt *s;
    int rc = run(r, &s,
                 "SELECT device, state, step, attempts, reason FROM job WHERE campaign=?"
                 " ORDER BY device",
                 "t", name);
    if (rc < 0)
        return rc;
    while (rc == 1) {
        const char *reason = (const char *)sqlite3_column_text(s, 4);
        fn(arg, (const char *)sqlite3_column_text(s, 0), (const char *)sqlite3_column_text(s, 1),
           sqlite3_column_int(s, 2), sqlite3_column_int(s, 3), reason ? reason : "");
        rc = sqlite3_step(s) == SQLITE_ROW;
    }
    sqlite3_finalize(s);
    return SCP_OK;
}

void ota_job_free(ota_job *j)
{
    if (j) {
        free(j->cmds_hex);
        j->cmds_hex = NULL;
    }
}

int ota_reg_job_next(ota_reg *r, const char *dev, ota_job *j)
{
    sqlite3_stmt *s;
    const char *params;
    int rc = run(r, &s,
                 "SELECT job.id, job.campaign, campaign.action, campaign.params, job.step,"
                 " job.attempts FROM job JOIN campaign ON campaign.name=job.campaign"
                 " WHERE job.device=? AND job.state IN ('pending','running')"
                 " AND campaign.state='active' ORDER BY job.id LIMIT 1",
                 "t", dev);
    if (rc <= 0) {
        if (rc == 0)
            sqlite3_finalize(s);
        return rc;
    }
    memset(j, 0, sizeof(*j));
    j->id = sqlite3_column_int64(s, 0);
    col_text(s, 1, j->campaign, sizeof(j->campaign));
    j->action = sqlite3_column_int(s, 2);
    params = (const char *)sqlite3_column_text(s, 3);
    j->step = sqlite3_column_int(s, 4);
    j->attempts = sqlite3_column_int(s, 5);
    /* params: "master|kdf|kvn" (rotate) or "AID|HEX;HEX;..." (script, put-data) */
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
    sqlite3_finalize(s);
    if (j->action != OTA_ACT_ROTATE && !j->cmds_hex)
        return SCP_E_NOMEM;
    return 1;
}

int ota_reg_job_set(ota_reg *r, int64_t job, const char *state, int step, const char *reason)
{
    return run(r, NULL,
               "UPDATE job SET state=?, step=?, reason=coalesce(?,reason), updated=? WHERE id=?"
               " AND state NOT IN ('cancelled')",
               "titii", state, (int64_t)step, reason, ota_now_ms(), job);
}

int ota_reg_job_attempt(ota_reg *r, int64_t job, const char *reason)
{
    return run(r, NULL,
               "UPDATE job SET attempts=attempts+1, reason=?, updated=?,"
               " state=CASE WHEN state='running' THEN 'pending' ELSE state END WHERE id=?",
               "tii", reason, ota_now_ms(), job);
}

void ota_reg_event(ota_reg *r, const char *dev, const char *dialog, const char *what,
                   const char *detail)
{
    if (run(r, NULL, "INSERT INTO event(time,device,dialog,what,detail) VALUES(?,?,?,?,?)",
            "itttt", ota_now_ms(), dev, dialog, what, detail) != SCP_OK)
        fprintf(stderr, "scpkit ota: registry event not written: %s\n", sqlite3_errmsg(r->db));
}

int ota_reg_exec(ota_reg *r, const char *sql)
{
    return exec(r, sql);
}

int ota_reg_device_each(ota_reg *r, void (*fn)(void *arg, const ota_device *d), void *arg)
{
    sqlite3_stmt *s;
    int rc = run(r, &s, "SELECT id FROM device ORDER BY id", NULL);
    if (rc < 0)
        return rc;
    while (rc == 1) {
        ota_device d;
        char id[OTA_ID_MAX + 1];
        col_text(s, 0, id, sizeof(id));
        if (ota_reg_device_get(r, id, &d) == SCP_OK)
            fn(arg, &d);
        rc = sqlite3_step(s) == SQLITE_ROW;
    }
    sqlite3_finalize(s);
    return SCP_OK;
}

/* Copy a column cut to size-1 bytes, never in the middle of a UTF-8
 * sequence (the renderers escape; they need not repair). */
static void col_text_cut(sqlite3_stmt *s, int i, char *out, size_t size)
{
    const unsigned char *t = sqlite3_column_text(s, i);
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
    sqlite3_stmt *s;
    int rc, ended, k = 0, done = 0, failed = 0;
    memset(st, 0, sizeof(*st));
    snprintf(st->name, sizeof(st->name), "%s", name);
    if ((rc = ota_reg_campaign_counts(r, name, &st->counts)) != SCP_OK)
        return rc;
    rc = run(r, &s, "SELECT created FROM campaign WHERE name=?", "t", name);
    if (rc < 0)
        return rc;
    st->created_ms = rc == 1 ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_finalize(s);
    if (!full)
        return SCP_OK;
    /* progress: job i (0-based) of `ended` lands in point i*P/ended; a
     * point is written when the next job falls in another one, and for
     * the last job, so the last point is the exact total */
    ended = st->counts.done + st->counts.failed;
    rc = run(r, &s,
             "SELECT updated, state FROM job WHERE campaign=? AND state IN ('done','failed')"
             " ORDER BY updated, id",
             "t", name);
    if (rc < 0)
        return rc;
    for (int i = 0; rc == 1; i++) {
        const char *state = (const char *)sqlite3_column_text(s, 1);
        int64_t t = sqlite3_column_int64(s, 0);
        if (state && strcmp(state, "done") == 0)
            done++;
        else
            failed++;
        rc = sqlite3_step(s) == SQLITE_ROW;
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
    sqlite3_finalize(s);
    st->n_points = k;
    rc = run(r, &s,
             "SELECT updated, device, state, attempts, coalesce(reason,'') FROM job"
             " WHERE campaign=? AND (state='failed' OR (state IN ('pending','running')"
             " AND attempts > 0 AND coalesce(reason,'') <> ''))"
             " ORDER BY updated DESC, id DESC LIMIT ?",
             "ti", name, (int64_t)OTA_STATUS_FAILS);
    if (rc < 0)
        return rc;
    for (k = 0; rc == 1 && k < OTA_STATUS_FAILS; k++) {
        ota_status_fail *f = &st->fails[k];
        f->t_ms = sqlite3_column_int64(s, 0);
        col_text_cut(s, 1, f->device, sizeof(f->device));
        col_text_cut(s, 2, f->state, sizeof(f->state));
        f->attempts = sqlite3_column_int(s, 3);
        col_text_cut(s, 4, f->reason, sizeof(f->reason));
        rc = sqlite3_step(s) == SQLITE_ROW;
    }
    sqlite3_finalize(s);
    st->n_fails = k;
    return SCP_OK;
}

int ota_reg_campaign_status(ota_reg *r, const char *name,
                            int (*fn)(void *arg, const ota_campaign_status *s), void *arg)
{
    ota_campaign_status *st = malloc(sizeof(*st));
    sqlite3_stmt *s;
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
    rc = names ? run(r, &s, "SELECT name FROM campaign ORDER BY created DESC, name LIMIT ?", "i",
                     (int64_t)OTA_STATUS_CAMPAIGNS)
               : SCP_E_NOMEM;
    if (rc >= 0) {
        while (rc == 1 && n < OTA_STATUS_CAMPAIGNS) {
            col_text_cut(s, 0, names[n++], sizeof(names[0]));
            rc = sqlite3_step(s) == SQLITE_ROW;
        }
        sqlite3_finalize(s);
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
