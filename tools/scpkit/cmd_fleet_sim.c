/* scpkit fleet simulate (issue 15): every card of a fleet directory runs
 * its agent against one or more OTA servers, event-driven in this one
 * process on a libcurl multi handle. Each agent is src/ota/agent.c's
 * session in its step-driven form (ota_agent_begin / _prepare / _advance),
 * so the simulator speaks exactly what `scpkit agent` speaks, with its
 * retries, resume and backoff; each card is the in-process virtual card.
 *
 *   simulate --cards DIR --server URL [--server URL]... --ca FILE
 *            [--concurrency C] [--drop-rate P] [--latency MS] [--crash-rate P]
 *            [--retries N] [--max-sessions N] [--timeout S] [--seed N] [--json]
 *
 * A device is converged when a session from the admin URI ends with 204
 * and no script: the server has nothing left for it. After a session that
 * ran scripts the device asks again at once. A failed session (the retry
 * budget spent) is followed by a fresh one, up to --max-sessions.
 * Faults, each drawn per request: --drop-rate aborts the transfer, half
 * the time before the request leaves and half the time after the server
 * answered (the answer is lost: the agent resumes); --crash-rate drops the
 * agent's whole state (connection, URI, pending results) and closes the
 * card, as a power cut would, then the device reboots and starts over from
 * the admin URI, half the time after running the script it had received.
 * --latency adds MS (0.5x to 1.5x) before each request. Devices are spread
 * over the servers round robin; a server that refuses connections sends
 * its devices to the next one, as a TCP load balancer would.
 * The server certificate is always verified (--ca FILE). */
#ifdef SCP_HAVE_OTA
#include <curl/curl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli_fleet.h"
#include "ota/agent.h"
#include "scpkit/card.h"

#define SIM_MAX_SERVERS 16
#define SIM_WHY_MAX 160

enum { D_QUEUED = 0, D_WAIT, D_XFER, D_DONE, D_FAILED };
enum { DROP_NONE = 0, DROP_BEFORE, DROP_ANSWER };

typedef struct sim_dev {
    const fleet_card *fc;
    ota_agent ag;
    int ag_open;
    scp_card *card;
    scp_transport t;
    int state, server, drop;
    double wake;
    int sessions, failed_sessions;
    char why[SIM_WHY_MAX];
} sim_dev;

typedef struct sim {
    const char *cards, *ca;
    const char *servers[SIM_MAX_SERVERS];
    int nserv;
    double drop_rate, crash_rate;
    int latency_ms, retries, max_sessions;
    uint64_t rng;
    CURLM *m;
    /* counters */
    long requests, drops, crashes, sessions, sessions_scripts, failovers;
} sim;

static double rnd(sim *s) /* xorshift64*: fault draws, not secrets */
{
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return (double)((s->rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static size_t on_header(char *p, size_t sz, size_t n, void *arg)
{
    sim_dev *d = arg;
    if (d->drop == DROP_ANSWER)
        return 0; /* the server answered; the connection dies before the agent reads it */
    return ota_agent_header_cb(p, sz, n, &d->ag.r);
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    sim_dev *d = arg;
    (void)dt, (void)dn, (void)ut, (void)un;
    return d->drop == DROP_BEFORE; /* lost before the request left */
}

static void close_dev(sim_dev *d)
{
    if (d->ag_open)
        ota_agent_free(&d->ag);
    d->ag_open = 0;
    scp_card_close(d->card);
    d->card = NULL;
}

/* Power on: the card, a fresh agent (nothing remembered), a new session. */
static int boot(sim *s, sim_dev *d)
{
    ota_agent_opts o = { 0 };
    char path[PATH_MAX];
    if (!d->card) {
        snprintf(path, sizeof(path), "%s/%s", s->cards, d->fc->sub);
        if (scp_card_open(path, &d->card, d->why, sizeof(d->why)) != SCP_OK)
            return SCP_E_IO;
        scp_card_transport(d->card, &d->t);
    }
    o.server = s->servers[d->server];
    o.ca = s->ca;
    o.card = &d->t;
    o.retries = s->retries;
    o.timeout_s = 60;
    snprintf(o.device_id, sizeof(o.device_id), "%s", d->fc->id);
    if (ota_agent_init(&d->ag, &o, d->why, sizeof(d->why)) != SCP_OK)
        return SCP_E_ARG;
    d->ag_open = 1;
    curl_easy_setopt(d->ag.curl, CURLOPT_PRIVATE, d);
    ota_agent_begin(&d->ag);
    return SCP_OK;
}

static void wait_then_post(sim *s, sim_dev *d, double now, long wait_ms)
{
    double lat = s->latency_ms > 0 ? s->latency_ms * (0.5 + rnd(s)) : 0;
    d->state = D_WAIT;
    d->wake = now + (wait_ms + lat) / 1000.0;
}

static void post(sim *s, sim_dev *d)
{
    ota_agent_prepare(&d->ag);
    d->drop = DROP_NONE;
    if (s->drop_rate > 0 && rnd(s) < s->drop_rate)
        d->drop = rnd(s) < 0.5 ? DROP_BEFORE : DROP_ANSWER;
    curl_easy_setopt(d->ag.curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(d->ag.curl, CURLOPT_HEADERDATA, d);
    curl_easy_setopt(d->ag.curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(d->ag.curl, CURLOPT_XFERINFODATA, d);
    curl_easy_setopt(d->ag.curl, CURLOPT_NOPROGRESS, d->drop == DROP_BEFORE ? 0L : 1L);
    if (curl_multi_add_handle(s->m, d->ag.curl) != CURLM_OK) {
        snprintf(d->why, sizeof(d->why), "libcurl: cannot add a transfer");
        d->state = D_FAILED;
        close_dev(d);
        return;
    }
    d->state = D_XFER;
    s->requests++;
}

/* A session that ended (rc < 0: failed; else done). */
static void session_end(sim *s, sim_dev *d, int rc, double now)
{
    if (rc == OTA_AGENT_DONE) {
        s->sessions++;
        d->sessions++;
        if (d->ag.scripts == 0) { /* nothing left for this device */
            d->state = D_DONE;
            d->why[0] = 0;
            close_dev(d);
            return;
        }
        s->sessions_scripts++;
        ota_agent_begin(&d->ag); /* ask again: anything more? */
        wait_then_post(s, d, now, 0);
        return;
    }
    if (++d->failed_sessions >= s->max_sessions) {
        d->state = D_FAILED;
        close_dev(d);
        return;
    }
    ota_agent_begin(&d->ag); /* as `scpkit agent --loop` would, a while later */
    wait_then_post(s, d, now, 1000 + (long)(rnd(s) * 2000));
}

static void crash(sim *s, sim_dev *d, double now)
{
    s->crashes++;
    close_dev(d);
    if (boot(s, d) != SCP_OK) {
        d->state = D_FAILED;
        close_dev(d);
        return;
    }
    wait_then_post(s, d, now, 100 + (long)(rnd(s) * 400)); /* reboot time */
}

static void completed(sim *s, sim_dev *d, CURLcode cc, double now)
{
    long wait_ms = 0;
    char why[SIM_WHY_MAX];
    int rc, crash_after = 0;

    curl_multi_remove_handle(s->m, d->ag.curl);
    if (d->drop != DROP_NONE && (cc == CURLE_ABORTED_BY_CALLBACK || cc == CURLE_WRITE_ERROR))
        s->drops++;
    d->drop = DROP_NONE;
    if (s->crash_rate > 0 && rnd(s) < s->crash_rate) {
        if (rnd(s) < 0.5)
            return crash(s, d, now); /* before the answer was acted on */
        crash_after = 1;             /* after the card ran what came */
    }
    rc = ota_agent_advance(&d->ag, (int)cc, &wait_ms, why, sizeof(why));
    if (crash_after)
        return crash(s, d, now);
    if (rc < 0 || rc == OTA_AGENT_DONE) {
        if (rc < 0)
            snprintf(d->why, sizeof(d->why), "%s", why);
        return session_end(s, d, rc, now);
    }
    if (cc == CURLE_COULDNT_CONNECT && s->nserv > 1) {
        /* that server is down: the next one (a load balancer's failover) */
        int tries = d->ag.tries;
        d->server = (d->server + 1) % s->nserv;
        if (ota_agent_set_server(&d->ag, s->servers[d->server]) == SCP_OK) {
            ota_agent_begin(&d->ag);
            d->ag.tries = tries;
            s->failovers++;
        }
    }
    wait_then_post(s, d, now, wait_ms);
}

static int cmp_count(const void *a, const void *b)
{
    return json_object_get_int(json_object_object_get(*(json_object *const *)b, "devices")) -
           json_object_get_int(json_object_object_get(*(json_object *const *)a, "devices"));
}

/* Failure reasons, counted: [{"reason": ..., "devices": n, "example": id}] */
static json_object *reasons(const sim_dev *dv, size_t n)
{
    json_object *by = json_object_new_object(), *arr = json_object_new_array();
    for (size_t i = 0; i < n; i++) {
        json_object *e;
        if (dv[i].state == D_DONE)
            continue;
        const char *w = dv[i].why[0] ? dv[i].why : "not finished before the timeout";
        if (!json_object_object_get_ex(by, w, &e)) {
            e = json_object_new_object();
            json_object_object_add(e, "reason", json_object_new_string(w));
            json_object_object_add(e, "devices", json_object_new_int(0));
            json_object_object_add(e, "example", json_object_new_string(dv[i].fc->id));
            json_object_object_add(by, w, e);
        }
        json_object_object_add(
            e, "devices",
            json_object_new_int(json_object_get_int(json_object_object_get(e, "devices")) + 1));
    }
    json_object_object_foreach(by, key, val)
    {
        (void)key;
        json_object_array_add(arr, json_object_get(val));
    }
    json_object_put(by);
    json_object_array_sort(arr, cmp_count);
    return arr;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static int num(scp_cli *c, const char *name, double lo, double hi, double *v)
{
    const char *t = scp_cli_take(c, name);
    char *end;
    double x;
    if (!t)
        return SCP_EXIT_OK;
    x = strtod(t, &end);
    if (*end || !(x >= lo && x <= hi))
        return scp_cli_fail(c, SCP_EXIT_USAGE, "%s: %g..%g", name, lo, hi);
    *v = x;
    return SCP_EXIT_OK;
}

static void run(sim *s, sim_dev *dv, size_t n, size_t conc, double deadline, double t0)
{
    size_t next = 0, active = 0, finished = 0;
    sim_dev **act = calloc(conc, sizeof(*act));
    double last_bar = 0;
    if (!act)
        return;
    while (finished < n) {
        double now = fleet_now(), soonest = now + 0.1;
        int running;
        CURLMsg *msg;
        if (now > deadline)
            break;
        while (active < conc && next < n) { /* admit devices */
            sim_dev *d = &dv[next++];
            d->server = (int)((size_t)(d - dv) % (size_t)s->nserv);
            if (boot(s, d) != SCP_OK) {
                d->state = D_FAILED;
                close_dev(d);
                finished++;
                continue;
            }
            wait_then_post(s, d, now, 0);
            act[active++] = d;
        }
        for (size_t k = 0; k < active; k++) {
            sim_dev *d = act[k];
            if (d->state == D_WAIT) {
                if (d->wake <= now)
                    post(s, d);
                else if (d->wake < soonest)
                    soonest = d->wake;
            }
        }
        curl_multi_perform(s->m, &running);
        while ((msg = curl_multi_info_read(s->m, &running)) != NULL) {
            sim_dev *d = NULL;
            if (msg->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&d);
            completed(s, d, msg->data.result, fleet_now());
        }
        for (size_t k = 0; k < active;) { /* retire finished devices */
            if (act[k]->state == D_DONE || act[k]->state == D_FAILED) {
                act[k] = act[--active];
                finished++;
            } else {
                k++;
            }
        }
        now = fleet_now();
        if (now - last_bar > 0.5 || finished == n) {
            fleet_progress("simulate", finished, n, t0);
            last_bar = now;
        }
        if (finished < n) {
            int ms = (int)((soonest - now) * 1000);
            curl_multi_poll(s->m, NULL, 0, ms < 1 ? 1 : ms > 100 ? 100 : ms, NULL);
        }
    }
    for (size_t k = 0; k < active; k++) { /* the timeout: stop what runs */
        if (act[k]->state == D_XFER)
            curl_multi_remove_handle(s->m, act[k]->ag.curl);
        close_dev(act[k]);
    }
    free(act);
}

int scp_fleet_simulate(scp_cli *c)
{
    sim s = { 0 };
    const char *t, *ca;
    double conc = 256, drop = 0, crash_r = 0, lat = 0, retries = 8, maxs = 20, tmo = 3600,
           seed = 0;
    fleet_card *cards = NULL;
    sim_dev *dv = NULL;
    size_t n = 0, ok = 0;
    int rc;

    s.cards = scp_cli_take(c, "--cards");
    ca = scp_cli_take(c, "--ca");
    while ((t = scp_cli_take(c, "--server")) != NULL) {
        if (s.nserv == SIM_MAX_SERVERS)
            return scp_cli_fail(c, SCP_EXIT_USAGE, "at most %d --server", SIM_MAX_SERVERS);
        s.servers[s.nserv++] = t;
    }
    if ((rc = num(c, "--concurrency", 1, 100000, &conc)) != SCP_EXIT_OK ||
        (rc = num(c, "--drop-rate", 0, 0.9, &drop)) != SCP_EXIT_OK ||
        (rc = num(c, "--crash-rate", 0, 0.9, &crash_r)) != SCP_EXIT_OK ||
        (rc = num(c, "--latency", 0, 60000, &lat)) != SCP_EXIT_OK ||
        (rc = num(c, "--retries", 0, 1000, &retries)) != SCP_EXIT_OK ||
        (rc = num(c, "--max-sessions", 1, 100000, &maxs)) != SCP_EXIT_OK ||
        (rc = num(c, "--timeout", 1, 7 * 86400, &tmo)) != SCP_EXIT_OK ||
        (rc = num(c, "--seed", 0, 4e9, &seed)) != SCP_EXIT_OK ||
        (rc = scp_cli_no_more(c, 1)) != SCP_EXIT_OK)
        return rc;
    if (!s.cards || !s.nserv || !ca)
        return scp_cli_fail(c, SCP_EXIT_USAGE,
                            "fleet simulate --cards DIR --server https://HOST:PORT/ [--server "
                            "...] --ca FILE");
    if (access(ca, R_OK) != 0)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "--ca %s: not readable", ca);
    s.ca = ca;
    s.drop_rate = drop;
    s.crash_rate = crash_r;
    s.latency_ms = (int)lat;
    s.retries = (int)retries;
    s.max_sessions = (int)maxs;
    s.rng = seed > 0 ? (uint64_t)seed : (uint64_t)getpid() * 0x9E3779B97F4A7C15ULL ^
                                            (uint64_t)(fleet_now() * 1e6);
    if (!s.rng)
        s.rng = 1;
    if ((rc = fleet_index_read(s.cards, &cards, &n)) != SCP_OK)
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "fleet simulate: %s/fleet.csv: %s", s.cards,
                            scp_strerror(rc));
    dv = calloc(n ? n : 1, sizeof(*dv));
    curl_global_init(CURL_GLOBAL_DEFAULT);
    s.m = curl_multi_init();
    if (!dv || !s.m) {
        free(cards);
        free(dv);
        curl_global_cleanup();
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "out of memory");
    }
    curl_multi_setopt(s.m, CURLMOPT_MAXCONNECTS, (long)conc + 8);
    for (size_t i = 0; i < n; i++)
        dv[i].fc = &cards[i];

    double t0 = fleet_now(), cpu0 = cpu_seconds();
    run(&s, dv, n, (size_t)conc, t0 + tmo, t0);
    double secs = fleet_now() - t0, cpu = cpu_seconds() - cpu0;
    for (size_t i = 0; i < n; i++)
        ok += dv[i].state == D_DONE;

    json_object *why = reasons(dv, n);
    json_object_object_add(c->doc, "devices", json_object_new_int((int)n));
    json_object_object_add(c->doc, "converged", json_object_new_int((int)ok));
    json_object_object_add(c->doc, "failed", json_object_new_int((int)(n - ok)));
    json_object_object_add(c->doc, "reasons", why);
    json_object_object_add(c->doc, "seconds", json_object_new_double(secs));
    json_object_object_add(c->doc, "sessions", json_object_new_int64(s.sessions));
    json_object_object_add(c->doc, "sessions_with_scripts", json_object_new_int64(s.sessions_scripts));
    json_object_object_add(c->doc, "sessions_per_second",
                           json_object_new_double(secs > 0 ? s.sessions / secs : 0));
    json_object_object_add(c->doc, "requests", json_object_new_int64(s.requests));
    json_object_object_add(c->doc, "drops", json_object_new_int64(s.drops));
    json_object_object_add(c->doc, "crashes", json_object_new_int64(s.crashes));
    json_object_object_add(c->doc, "failovers", json_object_new_int64(s.failovers));
    json_object_object_add(c->doc, "simulator_cpu_seconds", json_object_new_double(cpu));
    if (!c->o.json) {
        printf("devices %zu  converged %zu  failed %zu  seconds %.1f  sessions %ld (%.1f/s, %ld "
               "with scripts)\n",
               n, ok, n - ok, secs, s.sessions, secs > 0 ? s.sessions / secs : 0,
               s.sessions_scripts);
        printf("requests %ld  drops %ld  crashes %ld  failovers %ld  simulator CPU %.1f s\n",
               s.requests, s.drops, s.crashes, s.failovers, cpu);
        for (size_t k = 0; k < json_object_array_length(why); k++) {
            json_object *e = json_object_array_get_idx(why, k);
            printf("  failed %d: %s (e.g. %s)\n",
                   json_object_get_int(json_object_object_get(e, "devices")),
                   json_object_get_string(json_object_object_get(e, "reason")),
                   json_object_get_string(json_object_object_get(e, "example")));
        }
    }
    curl_multi_cleanup(s.m);
    curl_global_cleanup();
    free(dv);
    free(cards);
    if (ok < n)
        return scp_cli_fail(c, SCP_EXIT_REFUSED, "fleet simulate: %zu of %zu devices did not "
                                                 "converge",
                            n - ok, n);
    return SCP_EXIT_OK;
}
#endif /* SCP_HAVE_OTA */
