/* scpkit OTA (issue 14): GlobalPlatform RAM over HTTP (Card Spec
 * Amendment B) between an admin server (`scpkit ota serve`) and device
 * agents (`scpkit agent`), with the SCP03 session running end to end
 * between the server and the secure element; the agent only relays.
 *
 *   script.c    Amd B / ETSI TS 102 226 expanded-format script codec
 *   registry.c  the fleet registry: devices, campaigns, jobs, leases, the
 *               step log, versioned migrations; written once over a seam
 *               (registry_int.h) served by registry_sqlite.c (SQLite, WAL,
 *               DIR/registry.db) and registry_pg.c (PostgreSQL, libpq)
 *   driver.c    one device's dialog: which script comes next, what a
 *               response script means, every card-changing step recorded
 *               before it is sent and after it is confirmed
 *   server.c    evhttp + bufferevent_openssl, the Amd B exchange, limits,
 *               /metrics on a separate listener
 *   tls.c       self-signed lab certificate, server TLS context
 *   agent.c     the device side over libcurl */
#ifndef SCPKIT_OTA_H
#define SCPKIT_OTA_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "scpkit/gp.h"
#include "scpkit/keystore.h"
#include "scpkit/rc.h"
#include "scpkit/scp03.h"
#include "scpkit/transport.h"

/* ---- Amd B constants (fact sheet §3, §4) ---- */
#define OTA_PROTOCOL "globalplatform-remote-admin/1.0"
#define OTA_CT_SCRIPT "application/vnd.globalplatform.card-content-mgt;version=1.0"
#define OTA_CT_RESPONSE "application/vnd.globalplatform.card-content-mgt-response;version=1.0"
#define OTA_ADMIN_PATH "/server/adminagent"

/* ---- script codec (script.c) ---- */
#define OTA_SCRIPT_MAX_APDUS 32
#define OTA_APDU_MAX 300 /* one C-APDU or R-APDU in a script */

/* A borrowed slice of a script body. */
typedef struct ota_slice {
    const uint8_t *p;
    size_t len;
} ota_slice;

/* Command script, indefinite form: AE 80 {22 L C-APDU}... 00 00. */
SCP_MUST_CHECK int ota_script_encode(uint8_t tag, const ota_slice *apdus, size_t n,
                                     uint8_t *out, size_t out_size, size_t *out_len);
/* Decode a script whose outer tag is `outer_indef` (AE / AF, indefinite
 * 80 ... 00 00) or `outer_def` (AA / AB, definite BER length), items
 * tagged `item` (22 / 23). An optional `80 01 n` count is accepted in both
 * forms (fact sheet §12); `90`, `81`, `83` error TLVs set *err_tag and end
 * the list. Lengths are BER (00-7F, 81 xx, 82 xx xx); anything else, a
 * length past its parent, bytes after the end, more than `max` items:
 * SCP_E_FORMAT / SCP_E_LENGTH / SCP_E_TRUNCATED. */
SCP_MUST_CHECK int ota_script_decode(const uint8_t *p, size_t len, uint8_t outer_indef,
                                     uint8_t outer_def, uint8_t item, ota_slice *out, size_t max,
                                     size_t *n, uint8_t *err_tag);

/* ---- registry (registry.c) ---- */
typedef struct ota_reg ota_reg; /* opaque: one database connection */

/* The schema this scpkit writes. A registry without a schema_version row
 * but with the tables is version 1 (scpkit before versioning). */
#define OTA_REG_SCHEMA_VERSION 2

#define OTA_ID_MAX 64
#define OTA_MASTER_MAX (SCP_KS_LABEL_MAX + 12)

/* A key set a device holds (or may hold): master "LABEL:VERSION", KDF
 * name, KVN. kvn 0 = none. */
typedef struct ota_keyref {
    char master[OTA_MASTER_MAX];
    char kdf[16];
    int kvn;
} ota_keyref;

typedef struct ota_device {
    char id[OTA_ID_MAX + 1];
    ota_keyref cur;  /* the set the registry says the card uses */
    ota_keyref next; /* PUT KEY intent: may be on the card (kvn 0: none) */
    ota_keyref prev; /* replaced set: may still be on the card until deleted */
    char tags[128];
} ota_device;

enum { OTA_ACT_ROTATE = 1, OTA_ACT_SCRIPT, OTA_ACT_PUTDATA };

typedef struct ota_job {
    int64_t id;
    char campaign[OTA_ID_MAX + 1];
    int action;
    ota_keyref target;       /* rotate */
    char app[40];            /* script / put-data: the application's AID, hex */
    char *cmds_hex;          /* script / put-data: C-APDUs, hex, ';'-separated (malloc'd) */
    int step;                /* commands confirmed so far */
    int attempts;
} ota_job;
void ota_job_free(ota_job *j);

/* Open the registry of server directory DIR: the database its ota.json
 * names ("db": "postgresql://..." or a libpq conninfo), else SQLite in
 * DIR/registry.db. Migrations run on open: an older schema is upgraded
 * (one transaction per version); a newer one is refused (SCP_E_STATE,
 * ota_reg_open_error() says why). create: make the registry when there is
 * none (else SCP_E_NOT_FOUND). */
SCP_MUST_CHECK int ota_reg_open(const char *dir, int create, ota_reg **out);
/* The same with the database given: db NULL = DIR's config; "" or
 * "sqlite" = DIR/registry.db; "postgresql://..." / "postgres://..." or a
 * conninfo with "=" = PostgreSQL. */
SCP_MUST_CHECK int ota_reg_open_db(const char *dir, const char *db, int create, ota_reg **out);
/* Why the last ota_reg_open* failed in this thread (no secrets). */
const char *ota_reg_open_error(void);
void ota_reg_close(ota_reg *r);
const char *ota_reg_errmsg(ota_reg *r);
/* "sqlite" or "postgresql", and where (the conninfo with any password
 * replaced by "***"). */
const char *ota_reg_backend(const ota_reg *r);
const char *ota_reg_where(const ota_reg *r);
/* conninfo (URI or key=value) with passwords replaced by "***". */
void ota_reg_redact(const char *conninfo, char *out, size_t size);
/* The database's schema version (after open: OTA_REG_SCHEMA_VERSION). */
SCP_MUST_CHECK int ota_reg_schema_version(ota_reg *r, int *version);
/* This process as a lease holder (recorded with every lease it takes);
 * default "HOST:PID". */
void ota_reg_set_holder(ota_reg *r, const char *holder);
/* Work done so far on this connection: statements sent, round trips to
 * the database (SQLite: one per statement), transactions committed (of
 * which lazy: not flushed on their own, ota_reg_commit_lazy). */
typedef struct ota_reg_stats {
    uint64_t statements, round_trips, commits, lazy_commits;
} ota_reg_stats;
void ota_reg_stats_get(const ota_reg *r, ota_reg_stats *st);
/* Transactions: BEGIN IMMEDIATE (SQLite) / BEGIN (PostgreSQL). Inside
 * one, on PostgreSQL, statements whose result the caller does not need
 * are pipelined and sent with the next one that returns rows or with the
 * COMMIT; their failure fails the commit. */
SCP_MUST_CHECK int ota_reg_begin(ota_reg *r);
SCP_MUST_CHECK int ota_reg_commit(ota_reg *r);
/* A commit that need not be durable at once: atomic and ordered like any
 * other (a later durable commit makes it durable too: SQLite's WAL and
 * PostgreSQL's WAL are written in order), but without its own flush to
 * disk (SQLite: synchronous=NORMAL for this commit; PostgreSQL:
 * synchronous_commit=off for this transaction). A crash of the process
 * loses nothing; only a crash of the machine (or of PostgreSQL's) may lose
 * it, with every later lazy commit and no durable one. For a step that
 * recorded no intent and no outcome and sends nothing that changes a card
 * (a probe): losing it leaves the registry as it was before the step. */
SCP_MUST_CHECK int ota_reg_commit_lazy(ota_reg *r);
int ota_reg_rollback(ota_reg *r); /* best effort: nothing to do when it fails */
SCP_MUST_CHECK int ota_reg_device_add(ota_reg *r, const char *id, const ota_keyref *k,
                                      const char *tags);
/* Kept for callers written against the SQLite registry: "BEGIN
 * IMMEDIATE"/"BEGIN", "COMMIT", "ROLLBACK" map to the calls above; other
 * SQL runs as is (and must then suit both backends). Prefer the calls. */
SCP_MUST_CHECK int ota_reg_exec(ota_reg *r, const char *sql);
SCP_MUST_CHECK int ota_reg_device_each(ota_reg *r, void (*fn)(void *arg, const ota_device *d),
                                       void *arg);
SCP_MUST_CHECK int ota_reg_device_get(ota_reg *r, const char *id, ota_device *d);
/* Key bookkeeping, each one transaction. */
SCP_MUST_CHECK int ota_reg_set_next(ota_reg *r, const char *id, const ota_keyref *next);
SCP_MUST_CHECK int ota_reg_promote_next(ota_reg *r, const char *id);
SCP_MUST_CHECK int ota_reg_clear_next(ota_reg *r, const char *id);
SCP_MUST_CHECK int ota_reg_clear_prev(ota_reg *r, const char *id);
/* Lease: take it when free, expired or already ours; 1 taken, 0 held by
 * another (its expiry in *until_ms; on PostgreSQL also while another
 * server's transaction has the device's row locked: SKIP LOCKED). A
 * taking is logged as event "lease" (dialog = owner, detail = holder). */
SCP_MUST_CHECK int ota_reg_lease(ota_reg *r, const char *id, const char *owner, int64_t ms,
                                 int64_t *until_ms);
/* Inside a transaction: renew the lease `owner` holds; the transaction
 * then commits only if it still held it (fencing: a server that lost
 * its lease cannot record anything for the device). May be deferred to
 * the commit; returns < 0 when known lost at once. */
SCP_MUST_CHECK int ota_reg_lease_hold(ota_reg *r, const char *id, const char *owner, int64_t ms);
/* The lease owner of a device ("" when none or expired). */
SCP_MUST_CHECK int ota_reg_lease_owner(ota_reg *r, const char *id, char *owner,
                                       size_t owner_size);
SCP_MUST_CHECK int ota_reg_release(ota_reg *r, const char *id, const char *owner);

/* Campaigns. params is JSON text (action parameters). target: "all",
 * "tag:T" or "list:ID,ID,...". Jobs are made for the devices the target
 * names at creation. */
SCP_MUST_CHECK int ota_reg_campaign_create(ota_reg *r, const char *name, int action,
                                           const char *params, const char *target,
                                           int *n_jobs);
/* "active", "paused", "cancelled" (cancel also cancels pending jobs). */
SCP_MUST_CHECK int ota_reg_campaign_state(ota_reg *r, const char *name, const char *state);
typedef struct ota_counts {
    int pending, running, done, failed, cancelled, total;
    char state[16];
    char action[16];
} ota_counts;
SCP_MUST_CHECK int ota_reg_campaign_counts(ota_reg *r, const char *name, ota_counts *c);
/* fn per job of a campaign: device, state, step, attempts, reason. */
SCP_MUST_CHECK int ota_reg_campaign_jobs(ota_reg *r, const char *name,
                                         void (*fn)(void *arg, const char *dev,
                                                    const char *state, int step, int attempts,
                                                    const char *reason),
                                         void *arg);
/* The status page's query (status.c builds from it, then renders HTML,
 * JSON and `campaign show`). For campaign `name`: its counts (as
 * ota_reg_campaign_counts), its creation time, progress over time (every
 * job that ended done or failed, ordered by job.updated, downsampled to at
 * most OTA_STATUS_POINTS cumulative points, the last one exact) and the
 * OTA_STATUS_FAILS latest failures, newest first: failed jobs, and jobs
 * still to do whose last session ended with a reason (attempts > 0).
 * fn is called once; SCP_E_NOT_FOUND for an unknown campaign.
 * name NULL: the index, fn once per campaign, newest first, at most
 * OTA_STATUS_CAMPAIGNS, with counts and creation time only (no points, no
 * failures). fn's non-zero return stops the walk and is returned.
 * Text fields are as stored: untrusted, for the caller to escape. */
#define OTA_STATUS_POINTS 120
#define OTA_STATUS_FAILS 20
#define OTA_STATUS_CAMPAIGNS 100
#define OTA_STATUS_TEXT 256 /* reasons and ids are cut to this (bytes) */
typedef struct ota_status_point {
    int64_t t_ms;    /* job.updated of the job that ended */
    int done, failed; /* cumulative */
} ota_status_point;
typedef struct ota_status_fail {
    int64_t t_ms;
    char device[OTA_STATUS_TEXT];
    char state[16];
    int attempts;
    char reason[OTA_STATUS_TEXT];
} ota_status_fail;
typedef struct ota_campaign_status {
    char name[OTA_STATUS_TEXT];
    ota_counts counts;
    int64_t created_ms;
    int n_points, n_fails;
    ota_status_point points[OTA_STATUS_POINTS];
    ota_status_fail fails[OTA_STATUS_FAILS];
} ota_campaign_status;
SCP_MUST_CHECK int ota_reg_campaign_status(ota_reg *r, const char *name,
                                           int (*fn)(void *arg, const ota_campaign_status *s),
                                           void *arg);
/* The device's first job of an active campaign still to do (1), or none (0). */
SCP_MUST_CHECK int ota_reg_job_next(ota_reg *r, const char *dev, ota_job *j);
/* state: "running", "pending", "done", "failed"; reason may be NULL. */
SCP_MUST_CHECK int ota_reg_job_set(ota_reg *r, int64_t job, const char *state, int step,
                                   const char *reason);
SCP_MUST_CHECK int ota_reg_job_attempt(ota_reg *r, int64_t job, const char *reason);
/* Append to the step log (never key material). */
void ota_reg_event(ota_reg *r, const char *dev, const char *dialog, const char *what,
                   const char *detail);
int64_t ota_now_ms(void);

/* ---- the dialog driver (driver.c) ---- */
typedef struct ota_limits {
    size_t max_body;      /* bytes of one POST body (default 16384) */
    int max_scripts;      /* scripts per session (default 32) */
    int step_timeout_ms;  /* time for the agent to answer one script (default 30 s) */
    int lease_ms;         /* device lease (default 60 s) */
    int io_timeout_s;     /* reading one request / writing one answer (default 10 s) */
} ota_limits;
void ota_limits_default(ota_limits *l);

typedef struct ota_env {
    ota_reg *reg;
    scp_keystore *ks;
    ota_limits lim;
    FILE *log; /* one line per step */
} ota_env;

typedef struct ota_dialog ota_dialog;

/* Result of one step: a script to send (len > 0) or the end (len 0, 204). */
typedef struct ota_answer {
    uint8_t *script;
    size_t len, cap;
    int end;          /* 1: 204, session over */
    char reason[128]; /* when the dialog ended abnormally */
} ota_answer;

/* Start a dialog for device `dev` (lease taken by the caller). */
SCP_MUST_CHECK int ota_dialog_new(ota_env *env, const char *dev, const char *id,
                                  ota_dialog **out);
void ota_dialog_free(ota_dialog *d);
/* The first script (or the end, when there is nothing to do). */
SCP_MUST_CHECK int ota_dialog_start(ota_dialog *d, ota_answer *a);
/* One response script in, the next answer out. status is the request's
 * X-Admin-Script-Status ("ok" etc.). A negative return ends the session;
 * a->reason says why (already logged and recorded). */
SCP_MUST_CHECK int ota_dialog_step(ota_dialog *d, const char *status, const uint8_t *body,
                                   size_t len, ota_answer *a);
/* End the dialog abnormally (timeout, shutdown, hostile input). */
void ota_dialog_abort(ota_dialog *d, const char *reason);
const char *ota_dialog_device(const ota_dialog *d);
/* 1 when the last start/step recorded an intent or an outcome, or
 * answered with a command that changes the card or with the end: its
 * transaction must be committed durably before the answer leaves. 0 for a
 * probe (SELECT, INITIALIZE UPDATE) after nothing but events and the job's
 * "running": a lazy commit (ota_reg_commit_lazy) may carry it. */
int ota_dialog_durable(const ota_dialog *d);
int ota_dialog_scripts(const ota_dialog *d);

/* Fault injection for the convergence tests: SCPKIT_OTA_FAULT=WHO:N makes
 * process WHO ("server" / "agent") kill itself with SIGKILL at its N-th
 * fault point. Returns only when not triggered. */
void ota_fault_point(const char *who, const char *where);

/* ---- TLS (tls.c) ---- */
/* A self-signed P-256 certificate for `host` (SAN DNS:host, IP:127.0.0.1),
 * key 0600 written new (file, fsync, rename). */
SCP_MUST_CHECK int ota_tls_selfsigned(const char *host, const char *cert_path,
                                      const char *key_path, char *err, size_t err_size);

/* A device's TLS PSK (16 bytes), diversified in the keystore's token from
 * master "LABEL:VERSION" (active) by device id; see tls.c. */
SCP_MUST_CHECK int ota_tls_psk(scp_keystore *ks, const char *master, const char *dev,
                               uint8_t psk[16]);
#define OTA_PSK_CIPHER "PSK-AES128-CBC-SHA256" /* TLS_PSK_WITH_AES_128_CBC_SHA256, TLS 1.2 */

/* ---- server (server.c) ---- */
typedef struct ota_serve_opts {
    const char *dir;
    const char *listen;       /* ADDR:PORT */
    const char *admin_listen; /* ADDR:PORT or NULL */
    const char *keystore;     /* keystore dir */
    const char *log_path;     /* NULL: stderr */
    const char *psk_listen;   /* ADDR:PORT of the PSK-TLS listener, or NULL */
    const char *psk_master;   /* "LABEL:VERSION" the device PSKs come from */
    const char *client_ca;    /* CA file: require client certificates (CN = device id) */
    ota_limits lim;
} ota_serve_opts;
SCP_MUST_CHECK int ota_serve(const ota_serve_opts *o, char *err, size_t err_size);

/* ---- campaign status (status.c): one builder, two renderers ---- */
struct json_object;
#define OTA_STATUS_HTML_MAX (512 * 1024) /* a page never grows past this */
/* The status of campaign `name` as a json-c object: name, state, action,
 * total/pending/running/done/failed/cancelled, created(_ms), progress
 * [{t_ms, done, failed}] (cumulative), failures [{device, state, attempts,
 * reason, t_ms, time}], generated(_ms). name NULL: {campaigns: [...]}
 * with the counts of each. SCP_E_NOT_FOUND for an unknown campaign. */
SCP_MUST_CHECK int ota_status_build(ota_reg *r, const char *name, struct json_object **out);
/* That object as an HTML page (a campaign's, or the index), malloc'd;
 * every registry value escaped; SCP_E_LENGTH past OTA_STATUS_HTML_MAX. */
SCP_MUST_CHECK int ota_status_html(struct json_object *status, char **out, size_t *len);

/* ---- device identity ---- */
/* The card's identity: CIN (GET DATA 45) in hex, else the CPLC IC serial
 * number (GET DATA 9F7F), after SELECT of the ISD. */
SCP_MUST_CHECK int ota_device_id(scp_transport *t, char *out, size_t out_size);

#endif
