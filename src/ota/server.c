/* `scpkit ota serve`: the Amendment B admin server. libevent's evhttp
 * parses HTTP/1.1 (no hand-written parser), bufferevent_openssl carries it
 * in TLS 1.2+ with the operator's certificate; one event loop holds every
 * agent. A second plain-HTTP listener (loopback by default) serves
 * Prometheus /metrics.
 *
 * Exchange (fact sheet §2): the agent POSTs to OTA_ADMIN_PATH with
 * X-Admin-Protocol and X-Admin-From and no body; each answer is 200 with a
 * command script and X-Admin-Next-URI (…?d=DIALOG&s=STEP), or 204 when the
 * device has nothing left. A duplicate of the last POST (same step, same
 * body) gets the stored answer byte for byte; any other out-of-step POST
 * ends the session. Every abnormal end is logged and recorded in the
 * registry with its reason, and affects only that device's dialog. */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ota/ota.h"
#include "scpkit/buf.h"
#include "scpkit/crypto.h"

#define NBUCKET 4096

typedef struct srv srv;

typedef struct dlg {
    struct dlg *next;
    srv *sv;
    char id[33];
    char dev[OTA_ID_MAX + 1];
    ota_dialog *d;
    unsigned step;      /* the step the next POST must carry */
    uint8_t *last;      /* the last answer, for a duplicate POST */
    size_t last_len;
    uint8_t last_hash[32]; /* SHA-256 of the POST that produced it */
    int has_last;
    struct event *timer;
    int64_t started_ms;
    int64_t lease_until; /* renewed by every step's transaction */
    int released;        /* the lease went with the last step's transaction */
} dlg;

struct srv {
    struct event_base *base;
    struct evhttp *http, *admin, *psk_http;
    SSL_CTX *ssl, *psk_ssl;
    const char *psk_master;
    ota_env env;
    dlg *tab[NBUCKET];
    size_t active;
    /* metrics */
    unsigned long long req, req_bad, sess_started, sess_done, sess_aborted, sess_refused,
        scripts, replays, timeouts, identity_refused, psk_refused;
    double sess_seconds;
};

static unsigned hash_id(const char *s)
{
    unsigned h = 2166136261u;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 16777619u;
    return h % NBUCKET;
}

static dlg *find(srv *sv, const char *id)
{
    for (dlg *g = sv->tab[hash_id(id)]; g; g = g->next)
        if (strcmp(g->id, id) == 0)
            return g;
    return NULL;
}

static void drop(dlg *g)
{
    srv *sv = g->sv;
    dlg **pp = &sv->tab[hash_id(g->id)];
    while (*pp && *pp != g)
        pp = &(*pp)->next;
    if (*pp)
        *pp = g->next;
    if (!g->released && ota_reg_release(sv->env.reg, g->dev, g->id) != SCP_OK)
        fprintf(sv->env.log, "ota event=registry-error msg=\"lease not released\"\n");
    if (g->timer)
        event_free(g->timer);
    ota_dialog_free(g->d);
    free(g->last);
    free(g);
    sv->active--;
}

/* The reason is recorded only while this dialog still holds the device's
 * lease (in a transaction that renews it): a dialog whose lease another
 * server took over writes nothing for the device. */
static void abort_dlg(dlg *g, const char *reason)
{
    srv *sv = g->sv;
    sv->sess_aborted++;
    if (ota_reg_begin(sv->env.reg) == SCP_OK) {
        if (ota_reg_lease_hold(sv->env.reg, g->dev, g->id, sv->env.lim.lease_ms) == SCP_OK) {
            ota_dialog_abort(g->d, reason);
            if (ota_reg_commit(sv->env.reg) != SCP_OK)
                fprintf(sv->env.log, "ota dialog=%s device=%s event=registry-error msg=\"abort "
                        "not recorded (lease lost?): %s\"\n", g->id, g->dev,
                        ota_reg_errmsg(sv->env.reg));
        } else {
            (void)ota_reg_rollback(sv->env.reg);
        }
    }
    drop(g);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    dlg *g = arg;
    char why[96];
    (void)fd;
    (void)what;
    g->sv->timeouts++;
    snprintf(why, sizeof(why), "step timeout: no POST within %d ms", g->sv->env.lim.step_timeout_ms);
    abort_dlg(g, why);
}

static void arm(dlg *g)
{
    struct timeval tv = { g->sv->env.lim.step_timeout_ms / 1000,
                          (g->sv->env.lim.step_timeout_ms % 1000) * 1000 };
    evtimer_add(g->timer, &tv);
}

static void sha256(const uint8_t *p, size_t n, uint8_t out[32])
{
    unsigned int l = 32;
    if (!EVP_Digest(p, n, out, &l, EVP_sha256(), NULL))
        memset(out, 0, 32);
}

/* ---- replies ---- */

static void reply_text(srv *sv, struct evhttp_request *req, int code, const char *why)
{
    struct evbuffer *b = evbuffer_new();
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    sv->req_bad++;
    evhttp_add_header(h, "X-Admin-Protocol", OTA_PROTOCOL);
    evhttp_add_header(h, "Content-Type", "text/plain");
    if (b)
        evbuffer_add_printf(b, "%s\n", why);
    evhttp_send_reply(req, code, why, b);
    if (b)
        evbuffer_free(b);
}

/* Send the dialog's answer (and keep it for a duplicate POST). */
static void reply_answer(dlg *g, struct evhttp_request *req, const uint8_t *script, size_t len,
                         int end)
{
    srv *sv = g->sv;
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    char uri[96];
    ota_fault_point("server", "before-answer");
    evhttp_add_header(h, "X-Admin-Protocol", OTA_PROTOCOL);
    if (end) {
        sv->sess_done++;
        sv->sess_seconds += (double)(ota_now_ms() - g->started_ms) / 1000.0;
        evhttp_send_reply(req, 204, "No Content", NULL);
        drop(g);
        return;
    }
    snprintf(uri, sizeof(uri), "%s?d=%s&s=%u", OTA_ADMIN_PATH, g->id, g->step);
    evhttp_add_header(h, "X-Admin-Next-URI", uri);
    evhttp_add_header(h, "Content-Type", OTA_CT_SCRIPT);
    struct evbuffer *b = evbuffer_new();
    if (b)
        evbuffer_add(b, script, len);
    sv->scripts++;
    evhttp_send_reply(req, 200, "OK", b);
    if (b)
        evbuffer_free(b);
    arm(g);
}

static void answer(dlg *g, struct evhttp_request *req, int rc, ota_answer *a,
                   const uint8_t hash[32])
{
    if (rc < 0 || (a->end && a->reason[0])) {
        srv *sv = g->sv;
        sv->sess_aborted++;
        /* the driver has recorded and logged the reason already */
        reply_text(sv, req, 409, a->reason[0] ? a->reason : scp_strerror(rc));
        drop(g);
        return;
    }
    g->step++;
    if (!a->end) {
        uint8_t *c = realloc(g->last, a->len ? a->len : 1);
        if (c) {
            memcpy(c, a->script, a->len);
            g->last = c;
            g->last_len = a->len;
            memcpy(g->last_hash, hash, 32);
            g->has_last = 1;
        }
    }
    reply_answer(g, req, a->script, a->len, a->end);
}

/* A dialog that ended normally gives its lease back in the transaction of
 * its last step (one round trip fewer than a release of its own). */
static void release_in_txn(dlg *g, int rc, const ota_answer *a)
{
    if (rc >= 0 && a->end && !a->reason[0] &&
        ota_reg_release(g->sv->env.reg, g->dev, g->id) == SCP_OK)
        g->released = 1;
}

/* One transaction per step: what the step recorded is committed before its
 * answer leaves, or the answer does not leave. Durably (synchronous=FULL,
 * fsync) when the step recorded an intent or an outcome or its answer
 * changes the card or ends the dialog; lazily when it only probes the card
 * (ota_dialog_durable): a probe step lost with the machine leaves the
 * registry as before it, and the next durable commit makes it durable. */
static int commit(dlg *g, int rc, const ota_answer *a)
{
    srv *sv = g->sv;
    int lazy = rc >= 0 && !a->end && !ota_dialog_durable(g->d);
    if ((lazy ? ota_reg_commit_lazy(sv->env.reg) : ota_reg_commit(sv->env.reg)) == SCP_OK)
        return 1;
    fprintf(sv->env.log, "ota event=registry-error msg=\"commit failed: %s\"\n",
            ota_reg_errmsg(sv->env.reg));
    return 0;
}

/* ---- request handling ---- */

static int device_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > OTA_ID_MAX)
        return 0;
    for (size_t k = 0; k < n; k++)
        if (!(s[k] >= '0' && s[k] <= '9') && !(s[k] >= 'A' && s[k] <= 'Z') &&
            !(s[k] >= 'a' && s[k] <= 'z') && s[k] != '-' && s[k] != '_' && s[k] != '.')
            return 0;
    return 1;
}

/* X-Admin-From: //se-id/id/<DEVICE>[;...] (or the bare device id). */
static int parse_from(const char *from, char *dev, size_t size)
{
    const char *p = from;
    size_t n;
    if (strncmp(p, "//se-id/id/", 11) == 0)
        p += 11;
    n = strcspn(p, ";");
    if (n >= size)
        return 0;
    memcpy(dev, p, n);
    dev[n] = 0;
    return device_id_ok(dev);
}

static int new_dialog_id(char out[33])
{
    uint8_t r[16];
    if (scp_random(r, sizeof(r)) != SCP_OK)
        return SCP_E_CRYPTO;
    return scp_hex_encode(r, sizeof(r), out, 33);
}

static dlg *add_dialog(srv *sv, const char *id, const char *dev)
{
    dlg *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    g->sv = sv;
    snprintf(g->id, sizeof(g->id), "%s", id);
    snprintf(g->dev, sizeof(g->dev), "%s", dev);
    g->timer = evtimer_new(sv->base, on_timeout, g);
    if (!g->timer || ota_dialog_new(&sv->env, dev, id, &g->d) != SCP_OK) {
        if (g->timer)
            event_free(g->timer);
        free(g);
        return NULL;
    }
    g->started_ms = ota_now_ms();
    unsigned b = hash_id(id);
    g->next = sv->tab[b];
    sv->tab[b] = g;
    sv->active++;
    sv->sess_started++;
    return g;
}

/* A first POST (or a resume the server cannot place): lease, new dialog.
 * A dialog restarted under its old id (id_in) goes on numbering its steps
 * from the request's (step_in) and keeps the request's hash as the last
 * POST's: an agent that never got this answer and posts the same body to
 * the same URI again is given the same answer, and its stale results can
 * never pass for the answer to the new dialog's first script (step numbers
 * from 1 again did exactly that: a wrong card cryptogram, the job failed). */
static void begin(srv *sv, struct evhttp_request *req, const char *dev, const char *id_in,
                  unsigned step_in, const uint8_t *hash_in)
{
    char id[33];
    int64_t until = 0;
    ota_answer a = { 0 };
    uint8_t zero[32] = { 0 };
    dlg *g;
    int rc;

    if (id_in)
        snprintf(id, sizeof(id), "%s", id_in);
    else if (new_dialog_id(id) != SCP_OK)
        return reply_text(sv, req, 500, "no randomness");
    /* the lease is taken in the first step's transaction: one commit for
     * both, and a dialog that cannot start leaves no lease behind */
    if (ota_reg_begin(sv->env.reg) != SCP_OK)
        return reply_text(sv, req, 503, "registry busy");
    rc = ota_reg_lease(sv->env.reg, dev, id, sv->env.lim.lease_ms, &until);
    if (rc != 1)
        (void)ota_reg_rollback(sv->env.reg);
    if (rc == SCP_E_NOT_FOUND) {
        ota_reg_event(sv->env.reg, dev, NULL, "refused", "unknown device");
        fprintf(sv->env.log, "ota t=%lld device=%s event=refused reason=\"unknown device\"\n",
                (long long)ota_now_ms(), dev);
        return reply_text(sv, req, 403, "unknown device");
    }
    if (rc < 0)
        return reply_text(sv, req, 503, "registry unavailable");
    if (rc == 0) {
        char ra[24];
        int64_t left = until - ota_now_ms();
        sv->sess_refused++;
        snprintf(ra, sizeof(ra), "%lld", (long long)(left > 0 ? (left + 999) / 1000 : 1));
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", ra);
        fprintf(sv->env.log, "ota t=%lld device=%s event=refused reason=\"session in progress\"\n",
                (long long)ota_now_ms(), dev);
        return reply_text(sv, req, 409, "another session holds this device");
    }
    g = add_dialog(sv, id, dev);
    if (g) {
        g->lease_until = ota_now_ms() + sv->env.lim.lease_ms;
        if (id_in)
            g->step = step_in;
    }
    if (!g) {
        (void)ota_reg_rollback(sv->env.reg); /* the lease with it */
        return reply_text(sv, req, 500, "cannot start a dialog");
    }
    /* every step's transaction renews the lease and commits only while
     * this dialog holds it (ota_reg_lease_hold) */
    if (ota_reg_lease_hold(sv->env.reg, dev, id, sv->env.lim.lease_ms) != SCP_OK) {
        (void)ota_reg_rollback(sv->env.reg);
        g->released = 1; /* never committed */
        drop(g);
        return reply_text(sv, req, 409, "device lease lost");
    }
    rc = ota_dialog_start(g->d, &a);
    release_in_txn(g, rc, &a);
    if (!commit(g, rc, &a)) {
        g->released = 0;
        a.end = 1;
        snprintf(a.reason, sizeof(a.reason), "registry commit failed");
        rc = SCP_E_IO;
    }
    answer(g, req, rc, &a, hash_in ? hash_in : zero);
    free(a.script);
}

static int get_query(struct evhttp_request *req, char *d, size_t dsize, unsigned *step)
{
    const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    struct evkeyvalq kv = { 0 };
    const char *dv, *sv;
    int found = 0;
    if (!q)
        return 0;
    if (evhttp_parse_query_str(q, &kv) != 0)
        return -1;
    dv = evhttp_find_header(&kv, "d");
    sv = evhttp_find_header(&kv, "s");
    if (dv && sv && strlen(dv) == 32 && strspn(dv, "0123456789ABCDEF") == 32 &&
        strspn(sv, "0123456789") == strlen(sv) && strlen(sv) > 0 && strlen(sv) < 6) {
        snprintf(d, dsize, "%s", dv);
        *step = (unsigned)atoi(sv);
        found = 1;
    } else {
        found = -1;
    }
    evhttp_clear_headers(&kv);
    return found;
}

/* libevent 2.1 frees a TLS connection without close_notify: send it (best
 * effort, non-blocking) so an agent sees a clean end (fact sheet §8). */
static void on_close(struct evhttp_connection *evcon, void *arg)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
    SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
    (void)arg;
    if (ssl && SSL_is_init_finished(ssl))
        SSL_shutdown(ssl);
}

/* A resume the dialog cannot place: no body (the agent lost the script's
 * results), or not the step the dialog waits for. */
static int resume_fresh(const dlg *g, unsigned step, size_t len)
{
    return len == 0 || step != g->step;
}

/* The device identity TLS authenticated on this request's connection:
 * the PSK identity (PSK listener), or the verified client certificate's
 * CN (with --client-ca). 0 when TLS authenticated no device. An identity
 * too long for a device id comes out cut, so it matches no device. */
static int tls_identity(struct evhttp_request *req, char *out, size_t size)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
    const char *psk;
    X509 *x;
    out[0] = 0;
    if (!ssl)
        return 0;
    if ((psk = SSL_get_psk_identity(ssl)) != NULL) {
        snprintf(out, size, "%s", psk);
        return 1;
    }
    x = SSL_get0_peer_certificate(ssl);
    if (x && SSL_get_verify_result(ssl) == X509_V_OK) {
        int n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, out,
                                          (int)size);
        if (n < 0 || (size_t)n != strlen(out))
            snprintf(out, size, "%s", "?"); /* no CN, or a NUL in it: no device */
        return 1;
    }
    return 0;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    srv *sv = arg;
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    struct evbuffer *body = evhttp_request_get_input_buffer(req);
    const char *proto = evhttp_find_header(in, "X-Admin-Protocol");
    const char *from = evhttp_find_header(in, "X-Admin-From");
    const char *ct = evhttp_find_header(in, "Content-Type");
    const char *status = evhttp_find_header(in, "X-Admin-Script-Status");
    const char *rs = evhttp_find_header(in, "X-Admin-Resume");
    int resume = rs && strcmp(rs, "true") == 0;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    char dev[OTA_ID_MAX + 1], id[40], tid[OTA_ID_MAX + 2];
    unsigned step = 0;
    size_t len = evbuffer_get_length(body);
    uint8_t hash[32];
    int q;
    dlg *g;

    sv->req++;
    evhttp_connection_set_closecb(evhttp_request_get_connection(req), on_close, NULL);
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST)
        return reply_text(sv, req, 405, "POST only");
    if (!path || strcmp(path, OTA_ADMIN_PATH) != 0)
        return reply_text(sv, req, 404, "no such resource");
    if (!proto || strncmp(proto, "globalplatform-remote-admin/1.", 30) != 0)
        return reply_text(sv, req, 400, "missing or unknown X-Admin-Protocol");
    if (!from || !parse_from(from, dev, sizeof(dev)))
        return reply_text(sv, req, 400, "missing or malformed X-Admin-From");
    if (tls_identity(req, tid, sizeof(tid)) && strcmp(tid, dev) != 0) {
        /* the device TLS authenticated (PSK identity, client certificate)
         * is not the one claimed: refused before any lease or dialog */
        sv->identity_refused++;
        ota_reg_event(sv->env.reg, dev, NULL, "refused",
                      "X-Admin-From does not match the TLS identity");
        fprintf(sv->env.log,
                "ota t=%lld device=%s event=refused reason=\"X-Admin-From does not match the TLS "
                "identity\" tls_identity=%s\n",
                (long long)ota_now_ms(), dev, device_id_ok(tid) ? tid : "(not a device id)");
        return reply_text(sv, req, 403, "X-Admin-From does not match the TLS identity");
    }
    q = get_query(req, id, sizeof(id), &step);
    if (q < 0)
        return reply_text(sv, req, 400, "malformed Next-URI query");
    if (q == 0) {
        if (len != 0)
            return reply_text(sv, req, 400, "the first POST carries no body");
        return begin(sv, req, dev, NULL, 0, NULL);
    }
    g = find(sv, id);
    if (!g) {
        /* a dialog from before a restart: the agent holding its lease may
         * go on, with a fresh SCP03 session (fact sheet §7) */
        char owner[40];
        if (ota_reg_lease_owner(sv->env.reg, dev, owner, sizeof(owner)) == SCP_OK &&
            strcmp(owner, id) == 0) {
            uint8_t *p = evbuffer_pullup(body, -1);
            if (len > sv->env.lim.max_body)
                return reply_text(sv, req, 413, "body too large");
            fprintf(sv->env.log, "ota t=%lld dialog=%s device=%s event=restart reason=\"unknown "
                    "to this server\"\n", (long long)ota_now_ms(), id, dev);
            sha256(p ? p : (const uint8_t *)"", len, hash);
            return begin(sv, req, dev, id, step, hash);
        }
        return reply_text(sv, req, 404, "unknown or finished dialog");
    }
    if (strcmp(g->dev, dev) != 0) {
        abort_dlg(g, "X-Admin-From does not match the dialog's device");
        return reply_text(sv, req, 403, "X-Admin-From does not match the dialog's device");
    }
    if (len > sv->env.lim.max_body) {
        abort_dlg(g, "response script larger than the body limit");
        return reply_text(sv, req, 413, "body too large");
    }
    {
        uint8_t *p = evbuffer_pullup(body, -1);
        sha256(p ? p : (const uint8_t *)"", len, hash);
        if (step + 1 == g->step && g->has_last && memcmp(hash, g->last_hash, 32) == 0) {
            /* a duplicate of the last POST: the same answer, byte for byte */
            sv->replays++;
            evtimer_del(g->timer);
            fprintf(sv->env.log, "ota t=%lld dialog=%s device=%s event=replayed step=%u\n",
                    (long long)ota_now_ms(), g->id, g->dev, step);
            return reply_answer(g, req, g->last, g->last_len, 0);
        }
        if (resume && resume_fresh(g, step, len)) {
            /* a restarted agent (fact sheet §7) back at its stored URI
             * without the script's results: the session starts over with
             * a fresh SCP03 session, which reads back the card's state */
            abort_dlg(g, "agent restarted: resumed without the script's results");
            return begin(sv, req, dev, id, step, hash);
        }
        if (step != g->step) {
            abort_dlg(g, "replayed or out-of-order POST");
            return reply_text(sv, req, 409, "replayed or out-of-order POST");
        }
        if (status && strcmp(status, "ok") == 0 &&
            (!ct || strcmp(ct, OTA_CT_RESPONSE) != 0)) {
            abort_dlg(g, "wrong Content-Type for a response script");
            return reply_text(sv, req, 415, "wrong Content-Type for a response script");
        }
        evtimer_del(g->timer);
        ota_fault_point("server", "post-received");
        ota_answer a = { 0 };
        int rc = SCP_E_IO;
        if (ota_reg_begin(sv->env.reg) == SCP_OK) {
            if (ota_reg_lease_hold(sv->env.reg, g->dev, g->id, sv->env.lim.lease_ms) != SCP_OK) {
                (void)ota_reg_rollback(sv->env.reg);
                abort_dlg(g, "device lease lost");
                return reply_text(sv, req, 409, "device lease lost");
            }
            rc = ota_dialog_step(g->d, status, p ? p : (const uint8_t *)"", len, &a);
            release_in_txn(g, rc, &a);
            if (!commit(g, rc, &a)) {
                rc = SCP_E_IO;
                g->released = 0;
            } else
                g->lease_until = ota_now_ms() + sv->env.lim.lease_ms;
        }
        if (rc == SCP_E_IO && !a.reason[0])
            snprintf(a.reason, sizeof(a.reason), "registry unavailable");
        answer(g, req, rc, &a, hash);
        free(a.script);
    }
}

/* ---- metrics ---- */

static void on_metrics(struct evhttp_request *req, void *arg)
{
    srv *sv = arg;
    struct evbuffer *b = evbuffer_new();
    struct rusage ru;
    ota_reg_stats rs;
    if (!b)
        return evhttp_send_error(req, 500, NULL);
    getrusage(RUSAGE_SELF, &ru);
    ota_reg_stats_get(sv->env.reg, &rs);
    evbuffer_add_printf(b,
                        "# TYPE scpkit_ota_requests_total counter\nscpkit_ota_requests_total %llu\n"
                        "# TYPE scpkit_ota_requests_rejected_total counter\n"
                        "scpkit_ota_requests_rejected_total %llu\n"
                        "# TYPE scpkit_ota_sessions_started_total counter\n"
                        "scpkit_ota_sessions_started_total %llu\n"
                        "# TYPE scpkit_ota_sessions_completed_total counter\n"
                        "scpkit_ota_sessions_completed_total %llu\n"
                        "# TYPE scpkit_ota_sessions_aborted_total counter\n"
                        "scpkit_ota_sessions_aborted_total %llu\n"
                        "# TYPE scpkit_ota_sessions_refused_total counter\n"
                        "scpkit_ota_sessions_refused_total %llu\n"
                        "# TYPE scpkit_ota_step_timeouts_total counter\n"
                        "scpkit_ota_step_timeouts_total %llu\n"
                        "# TYPE scpkit_ota_scripts_total counter\nscpkit_ota_scripts_total %llu\n"
                        "# TYPE scpkit_ota_replayed_answers_total counter\n"
                        "scpkit_ota_replayed_answers_total %llu\n"
                        "# TYPE scpkit_ota_identity_refused_total counter\n"
                        "scpkit_ota_identity_refused_total %llu\n"
                        "# TYPE scpkit_ota_psk_handshakes_refused_total counter\n"
                        "scpkit_ota_psk_handshakes_refused_total %llu\n"
                        "# TYPE scpkit_ota_sessions_active gauge\nscpkit_ota_sessions_active %zu\n"
                        "# TYPE scpkit_ota_session_seconds_sum counter\n"
                        "scpkit_ota_session_seconds_sum %.6f\n"
                        "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.6f\n",
                        sv->req, sv->req_bad, sv->sess_started, sv->sess_done, sv->sess_aborted,
                        sv->sess_refused, sv->timeouts, sv->scripts, sv->replays,
                        sv->identity_refused, sv->psk_refused, sv->active,
                        sv->sess_seconds,
                        (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                            ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
    /* the registry's work: statements, round trips to the database (SQLite:
     * one per statement), committed transactions */
    evbuffer_add_printf(b,
                        "# TYPE scpkit_ota_registry_statements_total counter\n"
                        "scpkit_ota_registry_statements_total{backend=\"%s\"} %llu\n"
                        "# TYPE scpkit_ota_registry_round_trips_total counter\n"
                        "scpkit_ota_registry_round_trips_total{backend=\"%s\"} %llu\n"
                        "# TYPE scpkit_ota_registry_commits_total counter\n"
                        "scpkit_ota_registry_commits_total{backend=\"%s\"} %llu\n"
                        "# TYPE scpkit_ota_registry_lazy_commits_total counter\n"
                        "scpkit_ota_registry_lazy_commits_total{backend=\"%s\"} %llu\n"
                        "# TYPE scpkit_ota_keystore_commits_total counter\n"
                        "scpkit_ota_keystore_commits_total %lu\n",
                        ota_reg_backend(sv->env.reg), (unsigned long long)rs.statements,
                        ota_reg_backend(sv->env.reg), (unsigned long long)rs.round_trips,
                        ota_reg_backend(sv->env.reg), (unsigned long long)rs.commits,
                        ota_reg_backend(sv->env.reg), (unsigned long long)rs.lazy_commits,
                        scp_keystore_commits(sv->env.ks));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4");
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

/* ---- the status page (status.c): GET /campaign/ (index), /campaign/NAME
 * (HTML), /campaign/NAME.json or ?format=json (the same data as JSON) ---- */

static void send_status(srv *sv, struct evhttp_request *req, const char *name, int as_json)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    struct evbuffer *b = evbuffer_new();
    json_object *st = NULL;
    char *html = NULL;
    size_t len = 0;
    int rc = ota_status_build(sv->env.reg, name, &st);
    if (rc == SCP_OK && !as_json)
        rc = ota_status_html(st, &html, &len);
    if (rc != SCP_OK || !b) {
        if (b)
            evbuffer_free(b);
        json_object_put(st);
        evhttp_send_error(req, rc == SCP_E_NOT_FOUND ? 404 : 500,
                          rc == SCP_E_NOT_FOUND ? "no such campaign" : "status unavailable");
        return;
    }
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    if (as_json) {
        const char *t = json_object_to_json_string_ext(st, JSON_C_TO_STRING_PLAIN);
        evhttp_add_header(h, "Content-Type", "application/json");
        evbuffer_add(b, t, strlen(t));
        evbuffer_add(b, "\n", 1);
    } else {
        /* registry text is escaped; this keeps any script from running anyway */
        evhttp_add_header(h, "Content-Type", "text/html; charset=utf-8");
        evhttp_add_header(h, "Content-Security-Policy",
                          "default-src 'none'; style-src 'unsafe-inline'; img-src data:");
        evbuffer_add(b, html, len);
    }
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
    free(html);
    json_object_put(st);
}

static void on_admin_other(struct evhttp_request *req, void *arg)
{
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
    const char *path = evhttp_uri_get_path(u), *q = evhttp_uri_get_query(u);
    char *name;
    size_t n = 0;
    int as_json = 0;
    if (!path)
        return evhttp_send_error(req, 404, NULL);
    if (q) {
        struct evkeyvalq kv = { 0 };
        const char *f;
        if (evhttp_parse_query_str(q, &kv) != 0)
            return evhttp_send_error(req, 400, NULL);
        f = evhttp_find_header(&kv, "format");
        as_json = f && strcmp(f, "json") == 0;
        evhttp_clear_headers(&kv);
    }
    if (strcmp(path, "/") == 0 || strcmp(path, "/campaign") == 0 ||
        strcmp(path, "/campaign/") == 0)
        return send_status(arg, req, NULL, as_json);
    if (strncmp(path, "/campaign/", 10) != 0 || strlen(path) > 10 + 3 * OTA_ID_MAX + 5)
        return evhttp_send_error(req, 404, NULL);
    name = evhttp_uridecode(path + 10, 0, &n);
    if (!name)
        return evhttp_send_error(req, 500, NULL);
    if (n == 0 || strlen(name) != n || strchr(name, '/')) { /* NUL or a deeper path */
        free(name);
        return evhttp_send_error(req, 404, NULL);
    }
    if (n > 5 && strcmp(name + n - 5, ".json") == 0) {
        name[n - 5] = 0;
        as_json = 1;
    }
    send_status(arg, req, name, as_json);
    free(name);
}

/* ---- TLS ---- */

static struct bufferevent *tls_bev(struct event_base *base, void *arg)
{
    SSL *ssl = SSL_new(arg);
    if (!ssl)
        return NULL;
    return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE);
}

static SSL_CTX *tls_ctx(const char *dir, const char *client_ca, char *err, size_t err_size)
{
    char cert[4096], key[4096];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    snprintf(cert, sizeof(cert), "%s/tls/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/tls/key.pem", dir);
    if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
        SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, err_size, "TLS: cannot use %s / %s: %s", cert, key,
                 ERR_reason_error_string(ERR_get_error()));
        SSL_CTX_free(ctx);
        return NULL;
    }
    /* TLS 1.2: ECDHE with AEAD only; TLS 1.3: OpenSSL's defaults */
    SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20");
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (client_ca) { /* mutual TLS: a device certificate (CN = device id) is required */
        if (SSL_CTX_load_verify_locations(ctx, client_ca, NULL) != 1) {
            snprintf(err, err_size, "TLS: cannot use client CA %s", client_ca);
            SSL_CTX_free(ctx);
            return NULL;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    return ctx;
}

/* PSK-TLS (fact sheet §8): the client's PSK identity is a registered
 * device id and its PSK is derived for that id in the keystore's token
 * (ota_tls_psk), held only for the handshake. Anything else ends the
 * handshake (unknown_psk_identity / a failed Finished). */
static unsigned int psk_server_cb(SSL *ssl, const char *identity, unsigned char *psk,
                                  unsigned int max_psk_len)
{
    srv *sv = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    ota_device d;
    uint8_t k[16];
    int valid = identity && device_id_ok(identity);
    const char *why = "unknown device";
    if (sv && valid && max_psk_len >= sizeof(k) &&
        ota_reg_device_get(sv->env.reg, identity, &d) == SCP_OK) {
        int rc = ota_tls_psk(sv->env.ks, sv->psk_master, identity, k);
        if (rc == SCP_OK) {
            memcpy(psk, k, sizeof(k));
            scp_wipe(k, sizeof(k));
            return (unsigned int)sizeof(k);
        }
        why = "no PSK (keystore)";
    }
    if (sv) {
        sv->psk_refused++;
        fprintf(sv->env.log, "ota t=%lld event=psk-refused identity=%s reason=\"%s\"\n",
                (long long)ota_now_ms(), valid ? identity : "(not a device id)",
                valid ? why : "malformed identity");
    }
    return 0;
}

static SSL_CTX *psk_ctx(srv *sv, char *err, size_t err_size)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
        !SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION) ||
        SSL_CTX_set_cipher_list(ctx, OTA_PSK_CIPHER) != 1) {
        snprintf(err, err_size, "TLS: no %s in this OpenSSL", OTA_PSK_CIPHER);
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_psk_server_callback(ctx, psk_server_cb);
    SSL_CTX_set_app_data(ctx, sv);
    /* no resumption (GSMA SGP.02): every connection proves the PSK */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
    return ctx;
}

/* ---- listening ---- */

static void http_setup(srv *sv, struct evhttp *h, SSL_CTX *ctx, const ota_serve_opts *o,
                       const struct timeval *io)
{
    evhttp_set_bevcb(h, tls_bev, ctx);
    evhttp_set_allowed_methods(h, EVHTTP_REQ_POST | EVHTTP_REQ_GET);
    /* evhttp refuses (413) bodies past 4x the limit without reading them;
     * between the limit and that, the dialog is ended with its reason */
    evhttp_set_max_body_size(h, (ev_ssize_t)(4 * o->lim.max_body + 1024));
    evhttp_set_max_headers_size(h, 8192);
    evhttp_set_timeout_tv(h, io);
    evhttp_set_gencb(h, on_request, sv);
}

static int split_addr(const char *s, char *host, size_t hs, unsigned *port)
{
    const char *c = strrchr(s, ':');
    char *end;
    unsigned long p;
    if (!c || (size_t)(c - s) >= hs || c == s)
        return 0;
    memcpy(host, s, (size_t)(c - s));
    host[c - s] = 0;
    p = strtoul(c + 1, &end, 10);
    if (*end || p > 65535)
        return 0;
    *port = (unsigned)p;
    return 1;
}

/* Bind and write the port actually bound to DIR/NAME (for port 0). */
static int bind_to(struct evhttp *h, const char *addr, const char *dir, const char *name,
                   char *err, size_t err_size)
{
    char host[256], path[4096], tmp[4200];
    unsigned port;
    struct evhttp_bound_socket *bs;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    FILE *f;
    if (!split_addr(addr, host, sizeof(host), &port)) {
        snprintf(err, err_size, "bad listen address %s (ADDR:PORT)", addr);
        return SCP_E_ARG;
    }
    bs = evhttp_bind_socket_with_handle(h, host, (ev_uint16_t)port);
    if (!bs) {
        snprintf(err, err_size, "cannot listen on %s: %s", addr, strerror(errno));
        return SCP_E_IO;
    }
    if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &sl) == 0)
        port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                              : ((struct sockaddr_in *)&ss)->sin_port);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    if (!f || fprintf(f, "%u\n", port) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
        snprintf(err, err_size, "cannot write %s", path);
        return SCP_E_IO;
    }
    return SCP_OK;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    srv *sv = arg;
    (void)what;
    fprintf(sv->env.log, "ota t=%lld event=shutdown signal=%d active=%zu\n",
            (long long)ota_now_ms(), (int)sig, sv->active);
    for (unsigned b = 0; b < NBUCKET; b++)
        while (sv->tab[b])
            abort_dlg(sv->tab[b], "server shutdown");
    event_base_loopexit(sv->base, NULL);
}

int ota_serve(const ota_serve_opts *o, char *err, size_t err_size)
{
    srv *sv = calloc(1, sizeof(*sv));
    scp_ks_config kc = { 0 };
    char pin[256];
    struct event *sterm = NULL, *sint = NULL;
    struct timeval io = { 10, 0 };
    int rc = SCP_E_IO;

    if (!sv)
        return SCP_E_NOMEM;
    signal(SIGPIPE, SIG_IGN);
    sv->env.lim = o->lim;
    sv->env.log = stderr;
    if (o->log_path && !(sv->env.log = fopen(o->log_path, "a"))) {
        snprintf(err, err_size, "cannot open log %s", o->log_path);
        sv->env.log = stderr;
        goto out;
    }
    setvbuf(sv->env.log, NULL, _IOLBF, 0); /* one line per step, each written at once */
    if ((rc = ota_reg_open(o->dir, 0, &sv->env.reg)) != SCP_OK) {
        snprintf(err, err_size, "registry of %s: %s", o->dir, ota_reg_open_error());
        goto out;
    }
    if ((rc = scp_keystore_pin("SCPKIT_USER_PIN", "Keystore user PIN: ", pin, sizeof(pin))) !=
        SCP_OK) {
        snprintf(err, err_size, "no keystore PIN (SCPKIT_USER_PIN)");
        goto out;
    }
    kc.dir = o->keystore;
    rc = scp_keystore_open(&kc, pin, &sv->env.ks);
    scp_wipe(pin, sizeof(pin));
    if (rc != SCP_OK) {
        snprintf(err, err_size, "keystore %s: %s", o->keystore ? o->keystore : "(default)",
                 scp_strerror(rc));
        goto out;
    }
    rc = SCP_E_IO;
    if (o->psk_listen) { /* the PSK master must be there and active before we listen */
        char label[SCP_KS_LABEL_MAX + 1];
        uint32_t v = 0;
        scp_ks_key_info ki;
        if (!o->psk_master || scp_ks_parse_ref(o->psk_master, label, &v) != SCP_OK || v == 0 ||
            scp_keystore_get(sv->env.ks, label, v, &ki) != SCP_OK || ki.state != SCP_KS_ACTIVE) {
            snprintf(err, err_size, "--psk-listen needs --psk-master LABEL:VERSION, an active "
                                    "key in the keystore");
            rc = SCP_E_ARG;
            goto out;
        }
    }
    if (!(sv->ssl = tls_ctx(o->dir, o->client_ca, err, err_size)))
        goto out;
    sv->base = event_base_new();
    sv->http = sv->base ? evhttp_new(sv->base) : NULL;
    if (!sv->http) {
        snprintf(err, err_size, "libevent: cannot start");
        goto out;
    }
    io.tv_sec = o->lim.io_timeout_s > 0 ? o->lim.io_timeout_s : 10; /* slow clients */
    http_setup(sv, sv->http, sv->ssl, o, &io);
    if ((rc = bind_to(sv->http, o->listen, o->dir, "https.port", err, err_size)) != SCP_OK)
        goto out;
    if (o->psk_listen) { /* the same exchange over PSK-TLS */
        rc = SCP_E_IO;
        sv->psk_master = o->psk_master;
        if (!(sv->psk_ssl = psk_ctx(sv, err, err_size)) ||
            !(sv->psk_http = evhttp_new(sv->base)))
            goto out;
        http_setup(sv, sv->psk_http, sv->psk_ssl, o, &io);
        if ((rc = bind_to(sv->psk_http, o->psk_listen, o->dir, "psk.port", err, err_size)) !=
            SCP_OK)
            goto out;
    }
    if (o->admin_listen) {
        sv->admin = evhttp_new(sv->base);
        if (!sv->admin) {
            rc = SCP_E_NOMEM;
            goto out;
        }
        evhttp_set_allowed_methods(sv->admin, EVHTTP_REQ_GET);
        evhttp_set_timeout_tv(sv->admin, &io);
        evhttp_set_cb(sv->admin, "/metrics", on_metrics, sv);
        evhttp_set_gencb(sv->admin, on_admin_other, sv);
        if ((rc = bind_to(sv->admin, o->admin_listen, o->dir, "admin.port", err, err_size)) !=
            SCP_OK)
            goto out;
    }
    sterm = evsignal_new(sv->base, SIGTERM, on_signal, sv);
    sint = evsignal_new(sv->base, SIGINT, on_signal, sv);
    if (!sterm || !sint || evsignal_add(sterm, NULL) || evsignal_add(sint, NULL)) {
        rc = SCP_E_IO;
        goto out;
    }
    fprintf(sv->env.log, "ota t=%lld event=listening https=%s admin=%s psk=%s\n",
            (long long)ota_now_ms(), o->listen, o->admin_listen ? o->admin_listen : "-",
            o->psk_listen ? o->psk_listen : "-");
    fflush(sv->env.log);
    event_base_dispatch(sv->base);
    {
        /* a second SIGTERM (timeout(1) signals its whole group) must not
         * kill the process once libevent's handlers are gone: keep any
         * further one pending until exit */
        sigset_t ss;
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigprocmask(SIG_BLOCK, &ss, NULL);
    }
    fprintf(sv->env.log, "ota t=%lld event=stopped\n", (long long)ota_now_ms());
    fflush(sv->env.log);
    rc = SCP_OK;
out:
    for (unsigned b = 0; b < NBUCKET; b++)
        while (sv->tab[b])
            abort_dlg(sv->tab[b], "server shutdown");
    if (sterm)
        event_free(sterm);
    if (sint)
        event_free(sint);
    if (sv->admin)
        evhttp_free(sv->admin);
    if (sv->http)
        evhttp_free(sv->http);
    if (sv->psk_http)
        evhttp_free(sv->psk_http);
    if (sv->base)
        event_base_free(sv->base);
    SSL_CTX_free(sv->ssl);
    SSL_CTX_free(sv->psk_ssl);
    if (sv->env.ks)
        scp_keystore_close(sv->env.ks);
    ota_reg_close(sv->env.reg);
    if (sv->env.log && sv->env.log != stderr)
        fclose(sv->env.log);
    free(sv);
    return rc;
}
