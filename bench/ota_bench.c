/* bench/ota_bench: many in-process agents and virtual cards against one
 * `scpkit ota serve` process over loopback TLS (bench/ota.sh sets it up).
 *
 *   setup:  N virtual cards, each moved from its factory keys onto keys
 *           diversified from fleet:1 (KDF3, KVN 1) inside the keystore's
 *           token, and registered in the server's registry;
 *   run:    for 1, 100 and 1000 concurrent agents: one key-rotation campaign
 *           over that many devices, every agent starting at once (libcurl
 *           multi, one TLS connection per agent, certificate verified, no
 *           TLS session reuse); session latency from the first POST to the
 *           204, sessions per second, and the server's CPU time per session
 *           (from /proc/PID/stat);
 *   floor:  in the same run and at the same concurrency, a bare TLS
 *           handshake plus one request on the same listener (same
 *           certificate, same cipher suite; the request is refused before
 *           any registry or keystore work), server CPU per connection.
 * The figure that matters is the ratio: server CPU per rotation session
 * over server CPU per bare TLS connection.
 *   db:     with --admin PORT (the server's admin listener), the registry's
 *           work per rotation session from the server's /metrics counters
 *           read before and after: statements, round trips to the
 *           database, committed transactions (and how many of them lazy:
 *           not flushed on their own), and the keystore's commits.
 *
 * Usage: ota_bench --ks KS --srv SRV --pid SERVER_PID --cards DIR
 *                  [--levels 1,100,1000] [--rounds1 20] [--json FILE]
 *                  [--admin PORT] */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ota/agent.h"
#include "ota/ota.h"
#include "scpkit/card.h"
#include "scpkit/channel.h"
#include "scpkit/crypto.h"

typedef struct dev {
    scp_card *card;
    scp_transport t;
    char id[OTA_ID_MAX + 1];
    int kvn; /* 1 (fleet:1) or 2 (fleet2:1) */
} dev;

typedef struct ag {
    CURL *e;
    struct curl_slist *h;
    dev *d;
    char url[600];
    uint8_t *body;
    size_t len;
    uint8_t *in;
    size_t in_len;
    char next[512], ctype[128];
    double t0;
    int done, failed;
} ag;

static const char *g_ca, *g_base;
static int g_pid, g_admin;

/* The server's registry counters (statements, round trips, commits) from
 * its /metrics; 0 when there is no admin listener. */
typedef struct dbw {
    double stmts, rts, commits, lazy, ks_commits;
} dbw;
static size_t grow(char *p, size_t sz, size_t n, void *arg)
{
    char *b = arg;
    size_t have = strlen(b), add = sz * n;
    if (have + add >= 16384)
        add = 16383 - have;
    memcpy(b + have, p, add);
    b[have + add] = 0;
    return sz * n;
}
static double metric(const char *text, const char *name)
{
    const char *p = strstr(text, name);
    while (p && p > text && p[-1] != '\n')
        p = strstr(p + 1, name);
    if (!p || !(p = strchr(p, ' ')))
        return 0;
    return strtod(p + 1, NULL);
}
static void db_work(dbw *w)
{
    char url[64], *buf;
    CURL *e;
    memset(w, 0, sizeof(*w));
    if (!g_admin || !(buf = calloc(1, 16384)))
        return;
    if (!(e = curl_easy_init())) {
        free(buf);
        return;
    }
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", g_admin);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, grow);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, buf);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 10L);
    if (curl_easy_perform(e) == CURLE_OK) {
        w->stmts = metric(buf, "scpkit_ota_registry_statements_total");
        w->rts = metric(buf, "scpkit_ota_registry_round_trips_total");
        w->commits = metric(buf, "scpkit_ota_registry_commits_total");
        w->lazy = metric(buf, "scpkit_ota_registry_lazy_commits_total");
        w->ks_commits = metric(buf, "scpkit_ota_keystore_commits_total");
    }
    curl_easy_cleanup(e);
    free(buf);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The server's CPU seconds (user + system) from /proc/PID/stat. */
static double server_cpu(void)
{
    char path[64], buf[1024];
    unsigned long ut = 0, st = 0;
    FILE *f;
    snprintf(path, sizeof(path), "/proc/%d/stat", g_pid);
    if (!(f = fopen(path, "r")))
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* ---- setup: cards on fleet:1 ---- */

static int provision(scp_keystore *ks, ota_reg *reg, const char *dir, dev *d)
{
    scp_card_init_opts io = { .scp_i = -1, .kvn = -1 };
    scp03_keys fk = { 0 }, nk = { 0 };
    scp_channel_opts co = { .kvn = 0, .level = -1, .s16 = -1 };
    scp_channel ch;
    uint8_t cmd[5 + SCP_GP_PUTKEY_MAX + 1], resp[64];
    size_t dl, rl;
    uint16_t sw;
    char err[128];
    ota_keyref k = { "fleet:1", "kdf3", 1 };
    int rc;

    if ((rc = scp_card_init(dir, &io)) != SCP_OK ||
        (rc = scp_card_open(dir, &d->card, err, sizeof(err))) != SCP_OK)
        return rc;
    scp_card_transport(d->card, &d->t);
    if ((rc = ota_device_id(&d->t, d->id, sizeof(d->id))) != SCP_OK)
        return rc;
    for (int i = 0; i < 16; i++)
        fk.enc[i] = fk.mac[i] = fk.dek[i] = (uint8_t)(0x40 + i);
    fk.key_len = 16;
    fk.kvn = 0xFF;
    if ((rc = scp_channel_open(&ch, &d->t, &fk, &co)) != SCP_OK)
        return rc;
    rc = scp_keystore_derive(ks, "fleet", 1, SCP_DIV_KDF3, ch.kdd, SCP03_KDD_LEN, 1, &nk);
    nk.kvn = 1;
    if (rc == SCP_OK)
        rc = scp_gp_putkey_build(ch.dek, ch.dek_len, &nk, cmd + 5, sizeof(cmd) - 6, &dl);
    if (rc == SCP_OK) {
        memcpy(cmd, "\x80\xD8\x00\x81", 4);
        cmd[4] = (uint8_t)dl;
        cmd[5 + dl] = 0;
        rc = scp_channel_send(&ch, cmd, dl + 6, resp, sizeof(resp), &rl, &sw);
        if (rc == SCP_OK && sw != 0x9000)
            rc = SCP_E_SW;
    }
    scp_channel_close(&ch);
    scp_wipe(&nk, sizeof(nk));
    scp_wipe(cmd, sizeof(cmd));
    if (rc == SCP_OK)
        rc = ota_reg_device_add(reg, d->id, &k, "bench");
    d->kvn = 1;
    return rc;
}

/* ---- the agents, on one curl multi handle ---- */

static size_t on_body(char *p, size_t sz, size_t n, void *arg)
{
    ag *a = arg;
    size_t add = sz * n;
    uint8_t *b;
    if (a->in_len + add > 65536 || !(b = realloc(a->in, a->in_len + add)))
        return 0;
    memcpy(b + a->in_len, p, add);
    a->in = b;
    a->in_len += add;
    return add;
}

static void hval(const char *p, size_t n, size_t skip, char *out, size_t size)
{
    while (skip < n && p[skip] == ' ')
        skip++;
    while (n > skip && (p[n - 1] == '\r' || p[n - 1] == '\n'))
        n--;
    if (n - skip >= size)
        n = skip + size - 1;
    memcpy(out, p + skip, n - skip);
    out[n - skip] = 0;
}

static size_t on_header(char *p, size_t sz, size_t n, void *arg)
{
    ag *a = arg;
    size_t len = sz * n;
    if (len > 17 && strncasecmp(p, "X-Admin-Next-URI:", 17) == 0)
        hval(p, len, 17, a->next, sizeof(a->next));
    else if (len > 13 && strncasecmp(p, "Content-Type:", 13) == 0)
        hval(p, len, 13, a->ctype, sizeof(a->ctype));
    return len;
}

static void request(CURLM *m, ag *a, int bare)
{
    char from[128];
    curl_slist_free_all(a->h);
    a->h = curl_slist_append(NULL, "X-Admin-Protocol: " OTA_PROTOCOL);
    if (!bare) {
        snprintf(from, sizeof(from), "X-Admin-From: //se-id/id/%s", a->d->id);
        a->h = curl_slist_append(a->h, from);
    }
    a->h = curl_slist_append(a->h, "Expect:");
    if (a->len) {
        a->h = curl_slist_append(a->h, "Content-Type: " OTA_CT_RESPONSE);
        a->h = curl_slist_append(a->h, "X-Admin-Script-Status: ok");
    }
    free(a->in);
    a->in = NULL;
    a->in_len = 0;
    a->next[0] = a->ctype[0] = 0;
    curl_easy_setopt(a->e, CURLOPT_URL, a->url);
    curl_easy_setopt(a->e, CURLOPT_HTTPHEADER, a->h);
    curl_easy_setopt(a->e, CURLOPT_POSTFIELDS, a->len ? (const char *)a->body : "");
    curl_easy_setopt(a->e, CURLOPT_POSTFIELDSIZE, (long)a->len);
    curl_multi_add_handle(m, a->e);
}

static void setup_easy(ag *a, int bare)
{
    a->e = curl_easy_init();
    curl_easy_setopt(a->e, CURLOPT_CAINFO, g_ca);
    curl_easy_setopt(a->e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(a->e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(a->e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    curl_easy_setopt(a->e, CURLOPT_SSL_SESSIONID_CACHE, 0L); /* full handshakes */
    curl_easy_setopt(a->e, CURLOPT_POST, 1L);
    curl_easy_setopt(a->e, CURLOPT_TIMEOUT, 300L);
    curl_easy_setopt(a->e, CURLOPT_CONNECTTIMEOUT, 120L);
    curl_easy_setopt(a->e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(a->e, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(a->e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(a->e, CURLOPT_HEADERDATA, a);
    curl_easy_setopt(a->e, CURLOPT_PRIVATE, a);
    if (bare) {
        curl_easy_setopt(a->e, CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(a->e, CURLOPT_FORBID_REUSE, 1L);
    }
}

/* One completed transfer of a session agent: run the script, post on. */
static void advance(CURLM *m, ag *a, CURLcode cc, double *lat, int *nlat)
{
    long code = 0;
    char why[256];
    curl_easy_getinfo(a->e, CURLINFO_RESPONSE_CODE, &code);
    curl_multi_remove_handle(m, a->e);
    if (cc != CURLE_OK || (code != 200 && code != 204)) {
        fprintf(stderr, "ota_bench: %s: %s HTTP %ld\n", a->d->id, curl_easy_strerror(cc), code);
        a->failed = 1;
        return;
    }
    if (code == 204) {
        lat[(*nlat)++] = now_s() - a->t0;
        a->done = 1;
        return;
    }
    free(a->body);
    a->body = NULL;
    if (ota_agent_run_script(&a->d->t, 0, NULL, a->in, a->in_len, &a->body, &a->len, why, sizeof(why)) !=
            SCP_OK ||
        !a->next[0]) {
        fprintf(stderr, "ota_bench: %s: %s\n", a->d->id, why);
        a->failed = 1;
        return;
    }
    snprintf(a->url, sizeof(a->url), "%s%s", g_base, a->next + (a->next[0] == '/'));
    request(m, a, 0);
}

static void drive(CURLM *m, ag *as, int n, double *lat, int *nlat, int bare)
{
    int running = 1;
    while (running) {
        CURLMsg *msg;
        int left;
        curl_multi_perform(m, &running);
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            ag *a;
            if (msg->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&a);
            if (bare) {
                long code = 0;
                curl_easy_getinfo(a->e, CURLINFO_RESPONSE_CODE, &code);
                curl_multi_remove_handle(m, a->e);
                if (msg->data.result == CURLE_OK && code == 400)
                    lat[(*nlat)++] = now_s() - a->t0;
                else
                    a->failed = 1;
                a->done = 1;
            } else {
                advance(m, a, msg->data.result, lat, nlat);
            }
        }
        running = 0;
        for (int i = 0; i < n; i++)
            if (!as[i].done && !as[i].failed)
                running = 1;
        if (running)
            curl_multi_poll(m, NULL, 0, 100, NULL);
    }
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct result {
    int n, ok, failed;
    double wall, cpu, p50, p99;
    dbw db; /* registry work during the sessions */
} result;

static void stats(double *lat, int nlat, result *r)
{
    qsort(lat, (size_t)nlat, sizeof(double), cmp_d);
    r->ok = nlat;
    r->p50 = nlat ? lat[nlat / 2] : 0;
    r->p99 = nlat ? lat[(nlat * 99 + 99) / 100 - 1] : 0; /* nearest rank */
}

/* `rounds` rotations of devices [first, first+n) at once. */
static int run_sessions(ota_reg *reg, dev *devs, int first, int n, int rounds, int *camp,
                        result *r)
{
    CURLM *m = curl_multi_init();
    ag *as = calloc((size_t)n, sizeof(ag));
    double *lat = calloc((size_t)(n * rounds), sizeof(double));
    int nlat = 0, jobs;
    double c0, t0;
    memset(r, 0, sizeof(*r));
    r->n = n;
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)n + 8);
    for (int i = 0; i < n; i++) {
        as[i].d = &devs[first + i];
        setup_easy(&as[i], 0);
    }
    for (int round = 0; round < rounds; round++) {
        size_t ll = (size_t)n * (OTA_ID_MAX + 1) + 8;
        char *list = malloc(ll), name[32];
        int to = devs[first].kvn == 1 ? 2 : 1;
        char params[64];
        snprintf(list, ll, "list:");
        for (int i = 0; i < n; i++) {
            if (i)
                strcat(list, ",");
            strcat(list, devs[first + i].id);
        }
        snprintf(name, sizeof(name), "bench%d", (*camp)++);
        snprintf(params, sizeof(params), "%s|kdf3|%d", to == 2 ? "fleet2:1" : "fleet:1", to);
        if (ota_reg_campaign_create(reg, name, OTA_ACT_ROTATE, params, list, &jobs) != SCP_OK ||
            jobs != n) {
            fprintf(stderr, "ota_bench: campaign %s: %s\n", name, ota_reg_errmsg(reg));
            free(list);
            return 1;
        }
        free(list);
        dbw w0, w1;
        db_work(&w0);
        c0 = server_cpu();
        t0 = now_s();
        for (int i = 0; i < n; i++) {
            as[i].done = as[i].failed = 0;
            as[i].len = 0;
            snprintf(as[i].url, sizeof(as[i].url), "%s%s", g_base, &OTA_ADMIN_PATH[1]);
            as[i].t0 = now_s();
            request(m, &as[i], 0);
        }
        drive(m, as, n, lat, &nlat, 0);
        r->wall += now_s() - t0;
        r->cpu += server_cpu() - c0;
        db_work(&w1);
        r->db.stmts += w1.stmts - w0.stmts;
        r->db.rts += w1.rts - w0.rts;
        r->db.commits += w1.commits - w0.commits;
        r->db.ks_commits += w1.ks_commits - w0.ks_commits;
        r->db.lazy += w1.lazy - w0.lazy;
        for (int i = 0; i < n; i++) {
            r->failed += as[i].failed;
            if (!as[i].failed)
                devs[first + i].kvn = to;
        }
    }
    stats(lat, nlat, r);
    for (int i = 0; i < n; i++) {
        curl_easy_cleanup(as[i].e);
        curl_slist_free_all(as[i].h);
        free(as[i].body);
        free(as[i].in);
    }
    free(as);
    free(lat);
    curl_multi_cleanup(m);
    return r->failed ? 1 : 0;
}

/* The floor: n concurrent fresh TLS connections with one request each,
 * `rounds` times. */
static void run_bare(dev *devs, int n, int rounds, result *r)
{
    CURLM *m = curl_multi_init();
    ag *as = calloc((size_t)n, sizeof(ag));
    double *lat = calloc((size_t)(n * rounds), sizeof(double));
    int nlat = 0;
    memset(r, 0, sizeof(*r));
    r->n = n;
    for (int i = 0; i < n; i++) {
        as[i].d = &devs[i];
        setup_easy(&as[i], 1);
    }
    for (int round = 0; round < rounds; round++) {
        double c0 = server_cpu(), t0 = now_s();
        for (int i = 0; i < n; i++) {
            as[i].done = as[i].failed = 0;
            snprintf(as[i].url, sizeof(as[i].url), "%s%s", g_base, &OTA_ADMIN_PATH[1]);
            as[i].t0 = now_s();
            request(m, &as[i], 1);
        }
        drive(m, as, n, lat, &nlat, 1);
        r->wall += now_s() - t0;
        r->cpu += server_cpu() - c0;
        for (int i = 0; i < n; i++)
            r->failed += as[i].failed;
    }
    stats(lat, nlat, r);
    for (int i = 0; i < n; i++) {
        curl_easy_cleanup(as[i].e);
        curl_slist_free_all(as[i].h);
        free(as[i].in);
    }
    free(as);
    free(lat);
    curl_multi_cleanup(m);
}

int main(int argc, char **argv)
{
    const char *ksdir = NULL, *srv = NULL, *cards = NULL, *json = NULL, *levels_s = "1,100,1000";
    int rounds1 = 20, levels[8], nlev = 0, total = 0, camp = 0, port = 0;
    char base[128], path[4096], pin[128];
    scp_ks_config kc = { 0 };
    scp_keystore *ks;
    ota_reg *reg;
    dev *devs;
    FILE *jf = NULL;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--ks")) ksdir = argv[i + 1];
        else if (!strcmp(argv[i], "--srv")) srv = argv[i + 1];
        else if (!strcmp(argv[i], "--pid")) g_pid = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--cards")) cards = argv[i + 1];
        else if (!strcmp(argv[i], "--levels")) levels_s = argv[i + 1];
        else if (!strcmp(argv[i], "--rounds1")) rounds1 = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--json")) json = argv[i + 1];
        else if (!strcmp(argv[i], "--admin")) g_admin = atoi(argv[i + 1]);
    }
    if (!ksdir || !srv || !cards || g_pid <= 0) {
        fprintf(stderr, "usage: ota_bench --ks KS --srv SRV --pid PID --cards DIR [--levels 1,100,1000]\n");
        return 2;
    }
    for (const char *p = levels_s; *p && nlev < 8; p = strchr(p, ',') ? strchr(p, ',') + 1 : "") {
        levels[nlev] = atoi(p);
        total += levels[nlev++];
    }
    snprintf(path, sizeof(path), "%s/https.port", srv);
    FILE *pf = fopen(path, "r");
    if (!pf || fscanf(pf, "%d", &port) != 1) {
        fprintf(stderr, "ota_bench: no %s\n", path);
        return 2;
    }
    fclose(pf);
    snprintf(base, sizeof(base), "https://localhost:%d/", port);
    g_base = base;
    snprintf(path, sizeof(path), "%s/tls/cert.pem", srv);
    g_ca = strdup(path);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    snprintf(pin, sizeof(pin), "%s", getenv("SCPKIT_USER_PIN") ? getenv("SCPKIT_USER_PIN") : "");
    kc.dir = ksdir;
    if (scp_keystore_open(&kc, pin, &ks) != SCP_OK || ota_reg_open(srv, 0, &reg) != SCP_OK) {
        fprintf(stderr, "ota_bench: keystore or registry\n");
        return 2;
    }
    devs = calloc((size_t)total, sizeof(dev));
    mkdir(cards, 0700);
    double t0 = now_s();
    for (int i = 0; i < total; i++) {
        snprintf(path, sizeof(path), "%s/c%d", cards, i);
        if (provision(ks, reg, path, &devs[i]) != SCP_OK) {
            fprintf(stderr, "ota_bench: provisioning card %d failed\n", i);
            return 1;
        }
    }
    fprintf(stderr, "ota_bench: %d cards provisioned in %.1f s\n", total, now_s() - t0);
    scp_keystore_close(ks);
    if (json)
        jf = fopen(json, "w");
    if (jf)
        fprintf(jf, "{\n  \"levels\": [\n");
    printf("%-6s %-9s %9s %10s %10s %12s %10s %10s %7s\n", "agents", "kind", "sessions",
           "per s", "p50 ms", "p99 ms", "cpu/sess ms", "", "ratio");
    int first = 0, bad = 0;
    for (int l = 0; l < nlev; l++) {
        result s, b;
        int n = levels[l], rounds = n == 1 ? rounds1 : 1;
        bad |= run_sessions(reg, devs, first, n, rounds, &camp, &s);
        run_bare(devs, n, rounds * (n == 1 ? 5 : 5), &b);
        first += n;
        double cs = s.ok ? s.cpu / s.ok * 1000 : 0, cb = b.ok ? b.cpu / b.ok * 1000 : 0;
        printf("%-6d %-9s %9d %10.1f %10.1f %12.1f %10.3f\n", n, "rotation", s.ok,
               s.wall > 0 ? s.ok / s.wall : 0, s.p50 * 1000, s.p99 * 1000, cs);
        if (g_admin && s.ok)
            printf("%-6d %-9s per session: %.1f statements, %.1f round trips, %.1f commits"
                   " (%.1f lazy); keystore %.1f commits\n",
                   n, "registry", s.db.stmts / s.ok, s.db.rts / s.ok, s.db.commits / s.ok,
                   s.db.lazy / s.ok, s.db.ks_commits / s.ok);
        printf("%-6d %-9s %9d %10.1f %10.1f %12.1f %10.3f %10s %6.2fx\n", n, "bare-tls", b.ok,
               b.wall > 0 ? b.ok / b.wall : 0, b.p50 * 1000, b.p99 * 1000, cb, "",
               cb > 0 ? cs / cb : 0);
        if (jf)
            fprintf(jf,
                    "    {\"agents\": %d, \"sessions\": %d, \"failed\": %d, \"sessions_per_s\": %.2f, "
                    "\"p50_ms\": %.2f, \"p99_ms\": %.2f, \"server_cpu_ms_per_session\": %.3f, "
                    "\"bare_requests\": %d, \"bare_per_s\": %.2f, \"bare_p50_ms\": %.2f, "
                    "\"bare_p99_ms\": %.2f, \"server_cpu_ms_per_bare\": %.3f, \"ratio\": %.2f, "
                    "\"db_statements_per_session\": %.2f, \"db_round_trips_per_session\": %.2f, "
                    "\"db_commits_per_session\": %.2f, \"db_lazy_commits_per_session\": %.2f, \"keystore_commits_per_session\": %.2f}%s\n",
                    n, s.ok, s.failed, s.wall > 0 ? s.ok / s.wall : 0, s.p50 * 1000, s.p99 * 1000,
                    cs, b.ok, b.wall > 0 ? b.ok / b.wall : 0, b.p50 * 1000, b.p99 * 1000, cb,
                    cb > 0 ? cs / cb : 0, s.ok ? s.db.stmts / s.ok : 0, s.ok ? s.db.rts / s.ok : 0,
                    s.ok ? s.db.commits / s.ok : 0, s.ok ? s.db.lazy / s.ok : 0,
                    s.ok ? s.db.ks_commits / s.ok : 0,
                    l + 1 < nlev ? "," : "");
        fflush(stdout);
    }
    if (jf) {
        fprintf(jf, "  ]\n}\n");
        fclose(jf);
    }
    for (int i = 0; i < total; i++)
        scp_card_close(devs[i].card);
    ota_reg_close(reg);
    curl_global_cleanup();
    return bad;
}
