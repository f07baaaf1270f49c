/* The fleet registry on PostgreSQL, through libpq. One connection per
 * process (servers stay stateless: every shared fact, leases included,
 * is in the database). The connection runs in pipeline mode: inside a
 * transaction, statements whose result the caller does not need (events,
 * job and key bookkeeping, BEGIN itself) are queued and go out with the
 * next statement that returns rows, or with the COMMIT, in one round trip;
 * an error in any of them aborts the transaction and so fails its COMMIT.
 * SCPKIT_PG_PIPELINE=0 sends every statement on its own (for comparison).
 * A broken connection (a restarted server) is re-established before the
 * next transaction. The conninfo is never printed unredacted. */
#ifdef SCP_HAVE_LIBPQ
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ota/registry_int.h"

#define PIPE_MAX 64 /* queued statements before a flush (both sides' buffers stay small) */

typedef struct pgh {
    PGconn *c;
    int batch; /* queue deferred statements inside transactions */
    int npend; /* statements sent, results not read */
} pgh;

struct ota_res {
    PGresult *p;
    int row, n;
};

#define H(r) ((pgh *)(r)->h)

static void conn_err(ota_reg *r, const char *what)
{
    char m[200];
    snprintf(m, sizeof(m), "%s", PQerrorMessage(H(r)->c));
    m[strcspn(m, "\n")] = 0;
    ota_reg_seterr(r, "%s: %s", what, m);
}

/* Session settings, then pipeline mode. */
static int session(ota_reg *r)
{
    PGresult *res = PQexec(H(r)->c, "SET lock_timeout = '10s'; SET client_min_messages = warning");
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok || PQenterPipelineMode(H(r)->c) != 1) {
        conn_err(r, "postgresql session");
        return SCP_E_IO;
    }
    return SCP_OK;
}

/* Outside a transaction, a broken connection is made again. */
static int ensure(ota_reg *r)
{
    pgh *h = H(r);
    if (PQstatus(h->c) == CONNECTION_OK)
        return SCP_OK;
    if (r->in_txn) {
        conn_err(r, "postgresql connection lost");
        return SCP_E_IO;
    }
    h->npend = 0;
    PQreset(h->c);
    if (PQstatus(h->c) != CONNECTION_OK) {
        conn_err(r, "postgresql reconnect");
        return SCP_E_IO;
    }
    return session(r);
}

static int pg_open(ota_reg *r, const char *dir, const char *spec, int create)
{
    const char *kw[] = { "connect_timeout", "application_name", "dbname", NULL };
    const char *val[] = { "10", "scpkit-ota", spec, NULL };
    const char *b = getenv("SCPKIT_PG_PIPELINE");
    pgh *h = calloc(1, sizeof(*h));
    (void)dir;
    (void)create; /* the database itself is the operator's: only the schema is made */
    if (!h)
        return SCP_E_NOMEM;
    r->h = h;
    h->batch = !(b && strcmp(b, "0") == 0);
    {
        char red[sizeof(r->where)];
        ota_reg_redact(spec, red, sizeof(red));
        snprintf(r->where, sizeof(r->where), "%s", red);
    }
    h->c = PQconnectdbParams(kw, val, 1);
    if (!h->c) {
        ota_reg_seterr(r, "postgresql: out of memory");
        return SCP_E_NOMEM;
    }
    if (PQstatus(h->c) != CONNECTION_OK) {
        char m[200];
        snprintf(m, sizeof(m), "%s", PQerrorMessage(h->c));
        m[strcspn(m, "\n")] = 0;
        ota_reg_seterr(r, "postgresql %s: %s", r->where, m);
        return SCP_E_IO;
    }
    return session(r);
}

static void pg_close(ota_reg *r)
{
    PQfinish(H(r)->c);
    free(r->h);
    r->h = NULL;
}

/* SQLSTATE class 23 (integrity) is the caller's conflict, the rest I/O. */
static int res_rc(ota_reg *r, PGresult *p)
{
    const char *st = PQresultErrorField(p, PG_DIAG_SQLSTATE);
    const char *m = PQresultErrorField(p, PG_DIAG_MESSAGE_PRIMARY);
    ota_reg_seterr(r, "postgresql: %s", m ? m : "error");
    return st && strncmp(st, "23", 2) == 0 ? SCP_E_STATE : SCP_E_IO;
}

/* Sync and read the result of every statement sent; the last one's
 * result is kept in *last when asked (else cleared). One round trip. */
static int drain(ota_reg *r, PGresult **last)
{
    pgh *h = H(r);
    int rc = SCP_OK, n = h->npend;
    if (last)
        *last = NULL;
    h->npend = 0;
    r->st.round_trips++;
    if (PQpipelineSync(h->c) != 1) {
        conn_err(r, "postgresql");
        rc = SCP_E_IO;
        goto out;
    }
    for (int k = 0; k < n; k++) {
        PGresult *p = PQgetResult(h->c), *x;
        ExecStatusType s;
        if (!p) {
            conn_err(r, "postgresql");
            rc = SCP_E_IO;
            goto out;
        }
        s = PQresultStatus(p);
        if (rc == SCP_OK && s == PGRES_FATAL_ERROR)
            rc = res_rc(r, p);
        else if (rc == SCP_OK && s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
            ota_reg_seterr(r, "postgresql: %s", PQresStatus(s));
            rc = SCP_E_IO;
        }
        if (last && k == n - 1)
            *last = p;
        else
            PQclear(p);
        while ((x = PQgetResult(h->c)) != NULL) /* each statement's results end with NULL */
            PQclear(x);
    }
    {
        PGresult *p = PQgetResult(h->c);
        if (!p || PQresultStatus(p) != PGRES_PIPELINE_SYNC) {
            if (rc == SCP_OK)
                conn_err(r, "postgresql pipeline");
            rc = SCP_E_IO;
        }
        PQclear(p);
    }
out:
    if (rc != SCP_OK) {
        if (r->in_txn)
            r->txn_failed = 1;
        if (last && *last) {
            PQclear(*last);
            *last = NULL;
        }
    }
    return rc;
}

/* '?' placeholders to $1, $2, ... (the SQL is ours: no '?' in literals). */
static int dollars(const char *sql, char *out, size_t size)
{
    size_t o = 0;
    int n = 0;
    for (const char *p = sql; *p; p++) {
        if (*p == '?') {
            int w = snprintf(out + o, size - o, "$%d", ++n);
            if (w < 0 || (size_t)w >= size - o)
                return SCP_E_BUFFER_TOO_SMALL;
            o += (size_t)w;
        } else {
            if (o + 1 >= size)
                return SCP_E_BUFFER_TOO_SMALL;
            out[o++] = *p;
        }
    }
    out[o] = 0;
    return SCP_OK;
}

static int send1(ota_reg *r, const char *sql, int n, const ota_arg *a)
{
    char text[2048], nums[OTA_ARGS_MAX][24];
    const char *v[OTA_ARGS_MAX];
    if (dollars(sql, text, sizeof(text)) != SCP_OK)
        return SCP_E_ARG;
    for (int k = 0; k < n; k++) {
        if (a[k].is_int) {
            snprintf(nums[k], sizeof(nums[k]), "%lld", (long long)a[k].i);
            v[k] = nums[k];
        } else {
            v[k] = a[k].t;
        }
    }
    r->st.statements++;
    if (PQsendQueryParams(H(r)->c, text, n, NULL, v, NULL, NULL, 0) != 1) {
        conn_err(r, "postgresql");
        if (r->in_txn)
            r->txn_failed = 1;
        return SCP_E_IO;
    }
    H(r)->npend++;
    return SCP_OK;
}

static int pg_query(ota_reg *r, const char *sql, int n, const ota_arg *a, ota_res **res,
                    int defer)
{
    pgh *h = H(r);
    PGresult *p;
    int rc;
    if ((rc = ensure(r)) != SCP_OK)
        return rc;
    if (r->in_txn && r->txn_failed) {
        if (res) /* the transaction is lost: do not send more into it */
            return SCP_E_IO;
        return SCP_E_IO;
    }
    if ((rc = send1(r, sql, n, a)) != SCP_OK)
        return rc;
    if (defer && !res && r->in_txn && h->batch && h->npend < PIPE_MAX)
        return 0;
    if ((rc = drain(r, &p)) != SCP_OK)
        return rc;
    if (res) {
        ota_res *o = malloc(sizeof(*o));
        if (!o) {
            PQclear(p);
            return SCP_E_NOMEM;
        }
        o->p = p;
        o->row = 0;
        o->n = PQntuples(p);
        *res = o;
        return o->n > 0;
    }
    rc = atoi(PQcmdTuples(p));
    PQclear(p);
    return rc;
}

static int pg_next(ota_res *o)
{
    return ++o->row < o->n;
}

static const char *pg_text(ota_res *o, int col)
{
    if (o->row >= o->n || col >= PQnfields(o->p) || PQgetisnull(o->p, o->row, col))
        return NULL;
    return PQgetvalue(o->p, o->row, col);
}

static int64_t pg_int(ota_res *o, int col)
{
    const char *t = pg_text(o, col);
    return t ? strtoll(t, NULL, 10) : 0;
}

static void pg_free(ota_res *o)
{
    PQclear(o->p);
    free(o);
}

/* Several statements (the simple query protocol: out of pipeline mode). */
static int pg_script(ota_reg *r, const char *sql)
{
    pgh *h = H(r);
    PGresult *p;
    int rc;
    if ((rc = ensure(r)) != SCP_OK)
        return rc;
    if (h->npend && (rc = drain(r, NULL)) != SCP_OK)
        return rc;
    if (r->in_txn && r->txn_failed)
        return SCP_E_IO;
    if (PQexitPipelineMode(h->c) != 1) {
        conn_err(r, "postgresql");
        return SCP_E_IO;
    }
    r->st.statements++;
    r->st.round_trips++;
    p = PQexec(h->c, sql);
    if (PQresultStatus(p) != PGRES_COMMAND_OK && PQresultStatus(p) != PGRES_TUPLES_OK) {
        rc = p ? res_rc(r, p) : SCP_E_IO;
        if (!p)
            conn_err(r, "postgresql");
        if (r->in_txn)
            r->txn_failed = 1;
    }
    PQclear(p);
    if (PQenterPipelineMode(h->c) != 1 && rc == SCP_OK) {
        conn_err(r, "postgresql");
        rc = SCP_E_IO;
    }
    return rc;
}

static int pg_begin(ota_reg *r)
{
    int rc;
    if ((rc = ensure(r)) != SCP_OK)
        return rc;
    if ((rc = send1(r, "BEGIN", 0, NULL)) != SCP_OK)
        return rc;
    return H(r)->batch ? SCP_OK : drain(r, NULL);
}

static int pg_commit(ota_reg *r, int lazy)
{
    PGresult *p;
    int rc;
    if (PQstatus(H(r)->c) != CONNECTION_OK) {
        conn_err(r, "postgresql connection lost");
        return SCP_E_IO;
    }
    /* lazy: this transaction's commit does not wait for its WAL flush
     * (the WAL writer flushes it within wal_writer_delay; a later
     * synchronous commit flushes it with its own) */
    if (lazy && (rc = send1(r, "SET LOCAL synchronous_commit TO OFF", 0, NULL)) != SCP_OK)
        goto fail;
    if ((rc = send1(r, "COMMIT", 0, NULL)) != SCP_OK || (rc = drain(r, &p)) != SCP_OK)
        goto fail;
    /* a transaction that failed answers COMMIT with ROLLBACK */
    rc = strcmp(PQcmdStatus(p), "COMMIT") == 0 ? SCP_OK : SCP_E_IO;
    PQclear(p);
    if (rc == SCP_OK)
        return SCP_OK;
    ota_reg_seterr(r, "postgresql: transaction rolled back");
    return rc;
fail:
    /* the transaction may still be open on the server */
    if (PQstatus(H(r)->c) == CONNECTION_OK && send1(r, "ROLLBACK", 0, NULL) == SCP_OK)
        (void)drain(r, NULL);
    return rc;
}

static int pg_rollback(ota_reg *r)
{
    if (PQstatus(H(r)->c) != CONNECTION_OK) {
        H(r)->npend = 0;
        return SCP_OK; /* the server ended it with the connection */
    }
    if (send1(r, "ROLLBACK", 0, NULL) != SCP_OK)
        return SCP_E_IO;
    {
        int ftx = r->txn_failed, rc = drain(r, NULL);
        /* earlier errors in the pipeline are expected here */
        r->txn_failed = ftx;
        return PQstatus(H(r)->c) == CONNECTION_OK ? SCP_OK : rc;
    }
}

const ota_reg_be ota_be_pg = {
    .kind = OTA_BE_PG,
    .name = "postgresql",
    .open = pg_open,
    .close = pg_close,
    .query = pg_query,
    .next = pg_next,
    .text = pg_text,
    .integer = pg_int,
    .free_res = pg_free,
    .script = pg_script,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
};
#else
#include "ota/registry_int.h"
const ota_reg_be ota_be_pg = { .kind = OTA_BE_PG, .name = "postgresql" };
#endif
