/* The fleet registry's interface (src/ota/ota.h, ota_reg_*) on the backend
 * the environment names: SQLite in a temporary directory, or PostgreSQL
 * when SCPKIT_OTA_DB holds a conninfo (registry_unit.sh starts a private
 * cluster). The same checks on both: devices, transactions (a rollback
 * leaves nothing), leases (free / held / expired / released, a lost lease
 * fences its holder's transaction), campaigns and jobs, the schema
 * version and the refusal of a newer one, the statement and round-trip
 * counters (PostgreSQL: a transaction's deferred statements in one round
 * trip), conninfo redaction. Usage: test_ota_registry [DIR]. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "ota/ota.h"
#include "ota/registry_int.h"
#include "test.h"

static const char *g_db; /* NULL: SQLite */
static char g_dir[256];

static ota_reg *open_reg(int create)
{
    ota_reg *r = NULL;
    int rc = ota_reg_open_db(g_dir, g_db ? g_db : "", create, &r);
    if (rc != SCP_OK)
        fprintf(stderr, "open: %s\n", ota_reg_open_error());
    CHECK_OK(rc);
    return r;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static int count_cb;
static void each_cb(void *arg, const ota_device *d)
{
    (void)arg;
    (void)d;
    count_cb++;
}

static void redaction(void)
{
    char out[256];
    ota_reg_redact("postgresql://fleet:s3cret@db.example:5432/ota?sslmode=require", out,
                   sizeof(out));
    CHECK(strcmp(out, "postgresql://fleet:***@db.example:5432/ota?sslmode=require") == 0);
    ota_reg_redact("postgres://u:p%40ss@h/d?password=other&application_name=x", out, sizeof(out));
    CHECK(strstr(out, "p%40ss") == NULL && strstr(out, "other") == NULL);
    CHECK(strstr(out, "application_name=x") != NULL);
    ota_reg_redact("host=db user=fleet password='it\\'s secret' dbname=ota", out, sizeof(out));
    CHECK(strstr(out, "secret") == NULL && strstr(out, "dbname=ota") != NULL);
    ota_reg_redact("host=db PassWord = hunter2 dbname=ota", out, sizeof(out));
    CHECK(strstr(out, "hunter2") == NULL && strstr(out, "dbname=ota") != NULL);
    /* nothing to hide: unchanged */
    ota_reg_redact("postgresql://postgres@127.0.0.1:5432/postgres", out, sizeof(out));
    CHECK(strcmp(out, "postgresql://postgres@127.0.0.1:5432/postgres") == 0);
}

int main(int argc, char **argv)
{
    ota_keyref k1 = { "fleet:1", "kdf3", 1 }, k2 = { "fleet2:1", "kdf3", 2 };
    ota_device d;
    ota_reg *r, *r2;
    ota_reg_stats s0, s1;
    ota_counts c;
    ota_job j;
    int64_t until = 0;
    int v = 0, n = 0;

    g_db = getenv("SCPKIT_OTA_DB");
    if (g_db && !*g_db)
        g_db = NULL;
    if (argc > 1)
        snprintf(g_dir, sizeof(g_dir), "%s", argv[1]);
    else if (!mkdtemp(strcpy(g_dir, "/tmp/scpkit-reg.XXXXXX")))
        return 1;
    printf("registry backend: %s\n", g_db ? "postgresql" : "sqlite");
    redaction();

    /* no registry yet: not found; then made at the current version */
    CHECK_RC(ota_reg_open_db(g_dir, g_db ? g_db : "", 0, &r), SCP_E_NOT_FOUND);
    r = open_reg(1);
    if (!r)
        return test_done("test_ota_registry");
    CHECK(strcmp(ota_reg_backend(r), g_db ? "postgresql" : "sqlite") == 0);
    CHECK_OK(ota_reg_schema_version(r, &v));
    CHECK(v == OTA_REG_SCHEMA_VERSION);

    /* devices */
    CHECK_OK(ota_reg_device_add(r, "DEV-1", &k1, "lab,eu"));
    CHECK_OK(ota_reg_device_add(r, "DEV-2", &k1, "us"));
    CHECK_RC(ota_reg_device_add(r, "", &k1, ""), SCP_E_ARG);
    CHECK_RC(ota_reg_device_add(r, "DEV-3", &(ota_keyref){ "fleet:1", "kdf3", 0 }, ""), SCP_E_ARG);
    CHECK_OK(ota_reg_device_get(r, "DEV-1", &d));
    CHECK(strcmp(d.cur.master, "fleet:1") == 0 && d.cur.kvn == 1 && d.next.kvn == 0 &&
          d.prev.kvn == 0 && strcmp(d.tags, "lab,eu") == 0);
    CHECK_RC(ota_reg_device_get(r, "NOPE", &d), SCP_E_NOT_FOUND);
    count_cb = 0;
    CHECK_OK(ota_reg_device_each(r, each_cb, NULL));
    CHECK(count_cb == 2);

    /* key bookkeeping: next, promote (cur -> prev), clear */
    CHECK_OK(ota_reg_set_next(r, "DEV-2", &k2));
    CHECK_OK(ota_reg_device_get(r, "DEV-2", &d));
    CHECK(d.next.kvn == 2 && strcmp(d.next.master, "fleet2:1") == 0);
    CHECK_OK(ota_reg_promote_next(r, "DEV-2"));
    CHECK_OK(ota_reg_device_get(r, "DEV-2", &d));
    CHECK(d.cur.kvn == 2 && d.prev.kvn == 1 && d.next.kvn == 0);
    CHECK_OK(ota_reg_clear_prev(r, "DEV-2"));
    CHECK_OK(ota_reg_device_get(r, "DEV-2", &d));
    CHECK(d.prev.kvn == 0 && d.cur.kvn == 2);

    /* transactions: rolled back leaves nothing, committed stays */
    CHECK_OK(ota_reg_begin(r));
    CHECK_RC(ota_reg_begin(r), SCP_E_STATE);
    CHECK_OK(ota_reg_device_add(r, "DEV-RB", &k1, ""));
    ota_reg_event(r, "DEV-RB", NULL, "test", "rolled back");
    CHECK_OK(ota_reg_rollback(r));
    CHECK_RC(ota_reg_device_get(r, "DEV-RB", &d), SCP_E_NOT_FOUND);
    CHECK_RC(ota_reg_commit(r), SCP_E_STATE);
    /* five deferred statements and the commit: PostgreSQL sends them in
     * one round trip (pipeline mode); SQLite counts one per statement */
    ota_reg_stats_get(r, &s0);
    CHECK_OK(ota_reg_begin(r));
    CHECK_OK(ota_reg_device_add(r, "DEV-C", &k1, ""));
    for (int i = 0; i < 4; i++)
        ota_reg_event(r, "DEV-C", NULL, "test", "committed");
    CHECK_OK(ota_reg_commit(r));
    ota_reg_stats_get(r, &s1);
    CHECK(s1.statements - s0.statements == 7); /* BEGIN, 5, COMMIT */
    CHECK(s1.commits - s0.commits == 1);
    if (g_db)
        CHECK(s1.round_trips - s0.round_trips == (getenv("SCPKIT_PG_PIPELINE") ? 7 : 1));
    else
        CHECK(s1.round_trips - s0.round_trips == 7);
    CHECK_OK(ota_reg_device_get(r, "DEV-C", &d));

    /* leases: taken when free, refused while held (with its expiry),
     * renewed by its owner, taken over once expired, released by its
     * owner only */
    CHECK_RC(ota_reg_lease(r, "DEV-1", "dialog-A", 60000, &until), 1);
    until = 0;
    CHECK_RC(ota_reg_lease(r, "DEV-1", "dialog-B", 60000, &until), 0);
    CHECK(until > ota_now_ms() + 50000);
    CHECK_RC(ota_reg_lease(r, "DEV-1", "dialog-A", 60000, &until), 1);
    CHECK_RC(ota_reg_lease(r, "NOPE", "dialog-A", 60000, &until), SCP_E_NOT_FOUND);
    {
        char owner[40];
        CHECK_OK(ota_reg_lease_owner(r, "DEV-1", owner, sizeof(owner)));
        CHECK(strcmp(owner, "dialog-A") == 0);
        CHECK_OK(ota_reg_release(r, "DEV-1", "dialog-B")); /* not B's: no effect */
        CHECK_OK(ota_reg_lease_owner(r, "DEV-1", owner, sizeof(owner)));
        CHECK(strcmp(owner, "dialog-A") == 0);
        CHECK_OK(ota_reg_release(r, "DEV-1", "dialog-A"));
        CHECK_OK(ota_reg_lease_owner(r, "DEV-1", owner, sizeof(owner)));
        CHECK(owner[0] == 0);
    }
    CHECK_RC(ota_reg_lease(r, "DEV-1", "dialog-B", 1, &until), 1);
    sleep_ms(20);
    CHECK_RC(ota_reg_lease(r, "DEV-1", "dialog-C", 60000, &until), 1); /* B's expired */
    /* fencing: a transaction of a dialog that lost its lease (B) commits
     * nothing; the holder's (C) does */
    CHECK_OK(ota_reg_begin(r));
    {
        int h = ota_reg_lease_hold(r, "DEV-1", "dialog-B", 60000); /* fails now or at commit */
        int sn = ota_reg_set_next(r, "DEV-1", &k2);
        CHECK(h != SCP_OK || sn == SCP_OK);
    }
    CHECK(ota_reg_commit(r) != SCP_OK);
    CHECK_OK(ota_reg_device_get(r, "DEV-1", &d));
    CHECK(d.next.kvn == 0);
    CHECK_OK(ota_reg_begin(r));
    CHECK_OK(ota_reg_lease_hold(r, "DEV-1", "dialog-C", 60000));
    CHECK_OK(ota_reg_set_next(r, "DEV-1", &k2));
    CHECK_OK(ota_reg_commit(r));
    CHECK_OK(ota_reg_device_get(r, "DEV-1", &d));
    CHECK(d.next.kvn == 2);
    CHECK_OK(ota_reg_clear_next(r, "DEV-1"));
    CHECK_RC(ota_reg_lease_hold(r, "DEV-1", "dialog-C", 60000), SCP_E_STATE); /* no transaction */
    CHECK_OK(ota_reg_release(r, "DEV-1", "dialog-C"));

    /* a second connection (another server process) */
    r2 = open_reg(0);
    if (r2) {
        CHECK_RC(ota_reg_lease(r2, "DEV-1", "dialog-D", 60000, &until), 1);
        CHECK_RC(ota_reg_lease(r, "DEV-1", "dialog-E", 60000, &until), 0);
        CHECK_OK(ota_reg_release(r2, "DEV-1", "dialog-D"));
        if (g_db) {
            /* PostgreSQL: a device whose row another server's transaction
             * holds is skipped (SKIP LOCKED), not waited for */
            CHECK_OK(ota_reg_begin(r2));
            CHECK_OK(ota_reg_set_next(r2, "DEV-1", &k2));
            CHECK_OK(ota_reg_device_get(r2, "DEV-1", &d)); /* flushes: the row is locked */
            CHECK_RC(ota_reg_lease(r, "DEV-1", "dialog-F", 60000, &until), 0);
            CHECK_OK(ota_reg_rollback(r2));
            CHECK_RC(ota_reg_lease(r, "DEV-1", "dialog-F", 60000, &until), 1);
            CHECK_OK(ota_reg_release(r, "DEV-1", "dialog-F"));
        }
    }

    /* campaigns and jobs */
    CHECK_OK(ota_reg_campaign_create(r, "r2", OTA_ACT_ROTATE, "fleet2:1|kdf3|2", "all", &n));
    CHECK(n == 3); /* DEV-1, DEV-2, DEV-C */
    CHECK_RC(ota_reg_campaign_create(r, "r2", OTA_ACT_ROTATE, "fleet2:1|kdf3|2", "all", &n),
             SCP_E_STATE);
    CHECK_OK(ota_reg_campaign_create(r, "eu", OTA_ACT_SCRIPT, "A000000151000000|80CA00E000",
                                     "tag:eu", &n));
    CHECK(n == 1);
    CHECK_OK(ota_reg_campaign_create(r, "two", OTA_ACT_PUTDATA, "A0|00DA0001", "list:DEV-2,DEV-C",
                                     &n));
    CHECK(n == 2);
    CHECK_RC(ota_reg_campaign_create(r, "bad", OTA_ACT_ROTATE, "x", "some", &n), SCP_E_ARG);
    CHECK_OK(ota_reg_campaign_counts(r, "r2", &c));
    CHECK(c.pending == 3 && c.total == 3 && strcmp(c.state, "active") == 0 &&
          strcmp(c.action, "rotate-keys") == 0);
    CHECK_RC(ota_reg_campaign_counts(r, "nope", &c), SCP_E_NOT_FOUND);
    CHECK_RC(ota_reg_job_next(r, "DEV-1", &j), 1);
    CHECK(strcmp(j.campaign, "r2") == 0 && j.action == OTA_ACT_ROTATE &&
          strcmp(j.target.master, "fleet2:1") == 0 && strcmp(j.target.kdf, "kdf3") == 0 &&
          j.target.kvn == 2 && j.step == 0);
    CHECK_OK(ota_reg_job_set(r, j.id, "running", 1, NULL));
    CHECK_OK(ota_reg_job_attempt(r, j.id, "lost connection"));
    CHECK_OK(ota_reg_job_set(r, j.id, "done", 3, ""));
    ota_job_free(&j);
    CHECK_RC(ota_reg_job_next(r, "DEV-1", &j), 1); /* then the script campaign */
    CHECK(strcmp(j.campaign, "eu") == 0 && strcmp(j.app, "A000000151000000") == 0 &&
          j.cmds_hex && strcmp(j.cmds_hex, "80CA00E000") == 0);
    ota_job_free(&j);
    CHECK_OK(ota_reg_campaign_state(r, "eu", "paused"));
    CHECK_RC(ota_reg_job_next(r, "DEV-1", &j), 0); /* paused: nothing to do */
    CHECK_OK(ota_reg_campaign_state(r, "r2", "cancelled"));
    CHECK_RC(ota_reg_campaign_state(r, "r2", "active"), SCP_E_NOT_FOUND); /* cancelled is final */
    CHECK_OK(ota_reg_campaign_counts(r, "r2", &c));
    CHECK(c.done == 1 && c.cancelled == 2 && c.pending == 0 && c.total == 3);
    if (r2) { /* any server reports the same progress: it is in the database */
        ota_counts c2;
        CHECK_OK(ota_reg_campaign_counts(r2, "r2", &c2));
        CHECK(c2.done == 1 && c2.cancelled == 2);
        ota_reg_close(r2);
    }

    /* a lazy commit (a probe step's): committed and visible like any
     * other, counted apart; rolled back, nothing; and the connection is
     * back to a durable commit per transaction after it (SQLite:
     * synchronous=FULL, 2, outside transactions; PostgreSQL: SET LOCAL
     * ends with its transaction) */
    ota_reg_stats_get(r, &s0);
    CHECK_OK(ota_reg_begin(r));
    CHECK_OK(ota_reg_device_add(r, "DEV-L", &k1, ""));
    CHECK_OK(ota_reg_commit_lazy(r));
    ota_reg_stats_get(r, &s1);
    CHECK(s1.commits - s0.commits == 1 && s1.lazy_commits - s0.lazy_commits == 1);
    CHECK_OK(ota_reg_device_get(r, "DEV-L", &d));
    CHECK_OK(ota_reg_begin(r));
    CHECK_OK(ota_reg_device_add(r, "DEV-LR", &k1, ""));
    CHECK_OK(ota_reg_rollback(r));
    CHECK_RC(ota_reg_device_get(r, "DEV-LR", &d), SCP_E_NOT_FOUND);
    CHECK_RC(ota_reg_commit_lazy(r), SCP_E_STATE);
    ota_reg_stats_get(r, &s0);
    CHECK(s0.lazy_commits == s1.lazy_commits);
    if (!g_db) {
        sqlite3_stmt *st = NULL;
        sqlite3 *db = ota_reg_sqlite_db(r);
        CHECK(db != NULL);
        if (db && sqlite3_prepare_v2(db, "PRAGMA synchronous", -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            CHECK(sqlite3_column_int(st, 0) == 2);
        else
            CHECK(0);
        sqlite3_finalize(st);
    }

    /* a schema from a newer scpkit is refused, untouched */
    CHECK_OK(ota_reg_exec(r, "INSERT INTO schema_version(version, applied) VALUES(99, 0)"));
    ota_reg_close(r);
    r = NULL;
    CHECK_RC(ota_reg_open_db(g_dir, g_db ? g_db : "", 0, &r), SCP_E_STATE);
    CHECK(strstr(ota_reg_open_error(), "newer") != NULL);
    CHECK_RC(ota_reg_open_db(g_dir, g_db ? g_db : "", 1, &r), SCP_E_STATE);
    if (!g_db) {
        char p[300];
        snprintf(p, sizeof(p), "%s/registry.db", g_dir);
        unlink(p);
        snprintf(p, sizeof(p), "%s/registry.db-wal", g_dir);
        unlink(p);
        snprintf(p, sizeof(p), "%s/registry.db-shm", g_dir);
        unlink(p);
        if (argc <= 1)
            rmdir(g_dir);
    }
    return test_done("test_ota_registry");
}
