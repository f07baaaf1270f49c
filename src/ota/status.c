/* The campaign status page (issue 15 item 5): one builder, two renderers.
 *
 *   ota_status_build   registry -> a json-c object (ota_reg_campaign_status):
 *                      counts by state, progress over time, latest failures;
 *                      or, without a name, the index of campaigns
 *   JSON               that object as text (GET /campaign/NAME.json,
 *                      `scpkit ota campaign show NAME --json`)
 *   ota_status_html    that object as one server-rendered HTML page with an
 *                      inline SVG plot: no external assets, no JavaScript
 *
 * Every text value from the registry (campaign names, device ids, reasons)
 * is untrusted: it is HTML-escaped (and percent-encoded inside a link), and
 * the server also sends a Content-Security-Policy that runs no script. The
 * page is bounded: the registry query caps points, failures, campaigns and
 * text lengths, and the renderer refuses to grow past OTA_STATUS_HTML_MAX. */
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ota/ota.h"

/* ---- the builder ---- */

static json_object *jstr(const char *s)
{
    return json_object_new_string(s ? s : "");
}

static void utc(int64_t ms, char *out, size_t size)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (ms <= 0 || !gmtime_r(&t, &tm) || strftime(out, size, "%Y-%m-%d %H:%M:%SZ", &tm) == 0)
        snprintf(out, size, "-");
}

static json_object *counts_obj(json_object *j, const ota_campaign_status *s)
{
    char when[32];
    json_object_object_add(j, "name", jstr(s->name));
    json_object_object_add(j, "state", jstr(s->counts.state));
    json_object_object_add(j, "action", jstr(s->counts.action));
    json_object_object_add(j, "total", json_object_new_int(s->counts.total));
    json_object_object_add(j, "pending", json_object_new_int(s->counts.pending));
    json_object_object_add(j, "running", json_object_new_int(s->counts.running));
    json_object_object_add(j, "done", json_object_new_int(s->counts.done));
    json_object_object_add(j, "failed", json_object_new_int(s->counts.failed));
    json_object_object_add(j, "cancelled", json_object_new_int(s->counts.cancelled));
    json_object_object_add(j, "created_ms", json_object_new_int64(s->created_ms));
    utc(s->created_ms, when, sizeof(when));
    json_object_object_add(j, "created", jstr(when));
    return j;
}

static int build_one(void *arg, const ota_campaign_status *s)
{
    json_object *j = counts_obj(arg, s), *pts = json_object_new_array(),
                *fails = json_object_new_array();
    char when[32];
    for (int i = 0; i < s->n_points; i++) {
        json_object *p = json_object_new_object();
        json_object_object_add(p, "t_ms", json_object_new_int64(s->points[i].t_ms));
        json_object_object_add(p, "done", json_object_new_int(s->points[i].done));
        json_object_object_add(p, "failed", json_object_new_int(s->points[i].failed));
        json_object_array_add(pts, p);
    }
    for (int i = 0; i < s->n_fails; i++) {
        const ota_status_fail *f = &s->fails[i];
        json_object *o = json_object_new_object();
        utc(f->t_ms, when, sizeof(when));
        json_object_object_add(o, "device", jstr(f->device));
        json_object_object_add(o, "state", jstr(f->state));
        json_object_object_add(o, "attempts", json_object_new_int(f->attempts));
        json_object_object_add(o, "reason", jstr(f->reason));
        json_object_object_add(o, "t_ms", json_object_new_int64(f->t_ms));
        json_object_object_add(o, "time", jstr(when));
        json_object_array_add(fails, o);
    }
    json_object_object_add(j, "progress", pts);
    json_object_object_add(j, "failures", fails);
    return 0;
}

static int build_index_one(void *arg, const ota_campaign_status *s)
{
    json_object_array_add(arg, counts_obj(json_object_new_object(), s));
    return 0;
}

int ota_status_build(ota_reg *r, const char *name, json_object **out)
{
    json_object *j = json_object_new_object();
    int rc;
    char when[32];
    int64_t now = ota_now_ms();
    *out = NULL;
    if (!j)
        return SCP_E_NOMEM;
    if (name) {
        rc = ota_reg_campaign_status(r, name, build_one, j);
    } else {
        json_object *arr = json_object_new_array();
        json_object_object_add(j, "campaigns", arr);
        rc = ota_reg_campaign_status(r, NULL, build_index_one, arr);
    }
    if (rc != SCP_OK) {
        json_object_put(j);
        return rc;
    }
    json_object_object_add(j, "generated_ms", json_object_new_int64(now));
    utc(now, when, sizeof(when));
    json_object_object_add(j, "generated", jstr(when));
    *out = j;
    return SCP_OK;
}

/* ---- the HTML renderer ---- */

typedef struct sb {
    char *p;
    size_t len, cap;
    int err;
} sb;

static void put(sb *b, const char *s, size_t n)
{
    if (b->err)
        return;
    if (b->len + n + 1 > OTA_STATUS_HTML_MAX) {
        b->err = SCP_E_LENGTH;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 8192;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->err = SCP_E_NOMEM;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void puts_(sb *b, const char *s)
{
    put(b, s, strlen(s));
}

static void printf_(sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void printf_(sb *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        b->err = SCP_E_LENGTH; /* callers format numbers and escaped text only */
        return;
    }
    put(b, tmp, (size_t)n);
}

/* Text content and attribute values: & < > " ' escaped, control bytes
 * shown as U+FFFD. */
static void esc(sb *b, const char *s)
{
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '&': puts_(b, "&amp;"); break;
        case '<': puts_(b, "&lt;"); break;
        case '>': puts_(b, "&gt;"); break;
        case '"': puts_(b, "&quot;"); break;
        case '\'': puts_(b, "&#39;"); break;
        default:
            if (c < 0x20 || c == 0x7F)
                puts_(b, "&#xFFFD;");
            else
                put(b, (const char *)&c, 1);
        }
    }
}

/* A path segment: everything but unreserved characters percent-encoded
 * (the result needs no further escaping inside an attribute). */
static void urlseg(sb *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            put(b, (const char *)&c, 1);
        } else {
            char e[3] = { '%', hex[c >> 4], hex[c & 15] };
            put(b, e, 3);
        }
    }
}

static const char *gets_(json_object *j, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(j, k, &v) ? json_object_get_string(v) : "";
}

static int64_t geti(json_object *j, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(j, k, &v) ? json_object_get_int64(v) : 0;
}

static void duration(int64_t ms, char *out, size_t size)
{
    double s = (double)ms / 1000.0;
    if (s < 120)
        snprintf(out, size, "%.3g s", s);
    else if (s < 7200)
        snprintf(out, size, "%.3g min", s / 60);
    else if (s < 3 * 86400)
        snprintf(out, size, "%.3g h", s / 3600);
    else
        snprintf(out, size, "%.3g d", s / 86400);
}

static const char style[] =
    "body{font:15px/1.4 sans-serif;margin:24px;color:#1b1b1b;background:#fff;max-width:980px}"
    "h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:22px 0 8px}"
    ".sub{color:#555;margin:0 0 14px}"
    "table{border-collapse:collapse}td,th{padding:4px 10px;border-bottom:1px solid #ddd;"
    "text-align:left;vertical-align:top}th{background:#f2f2f2}"
    "td.n{text-align:right;font-variant-numeric:tabular-nums}"
    ".sw{display:inline-block;width:11px;height:11px;margin-right:6px;border-radius:2px}"
    ".big{font-size:28px;font-weight:bold}"
    ".reason{font-family:monospace;word-break:break-all;max-width:520px}"
    "td.t{white-space:nowrap}a{color:#1a55a0}";

static const char *state_color(const char *k)
{
    return strcmp(k, "done") == 0      ? "#2e8b3d"
           : strcmp(k, "failed") == 0  ? "#c62828"
           : strcmp(k, "running") == 0 ? "#1e63b5"
           : strcmp(k, "pending") == 0 ? "#9e9e9e"
                                       : "#6d4c41";
}

static const char *const states[] = { "done", "failed", "running", "pending", "cancelled" };

static void head(sb *b, const char *title, int refresh)
{
    puts_(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    if (refresh)
        puts_(b, "<meta http-equiv=\"refresh\" content=\"10\">");
    puts_(b, "<title>");
    esc(b, title);
    printf_(b, "</title><style>%s</style></head><body>\n", style);
}

/* Progress over time: ended jobs (done, failed) against time since the
 * campaign was created, as step lines in an inline SVG. */
static void plot(sb *b, json_object *j)
{
    const int W = 680, H = 260, L = 56, R = 18, T = 14, B = 42;
    const int pw = W - L - R, ph = H - T - B;
    json_object *pts;
    int64_t t0 = geti(j, "created_ms"), t1 = t0 + 1000, total = geti(j, "total");
    size_t n = 0;
    char lab[32];
    if (json_object_object_get_ex(j, "progress", &pts))
        n = json_object_array_length(pts);
    for (size_t i = 0; i < n; i++) {
        int64_t t = geti(json_object_array_get_idx(pts, i), "t_ms");
        if (t > t1)
            t1 = t;
    }
    if (geti(j, "pending") + geti(j, "running") > 0 && geti(j, "generated_ms") > t1)
        t1 = geti(j, "generated_ms"); /* still running: the plot ends now */
    if (total < 1)
        total = 1;
    printf_(b, "<svg width=\"%d\" height=\"%d\" "
               "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"devices done over time\">"
               "<title>devices done over time</title>",
            W, H, W, H);
    printf_(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#fafafa\" "
               "stroke=\"#bbb\"/>",
            L, T, pw, ph);
    for (int g = 0; g <= 4; g++) { /* y grid: 0, 1/4 ... total */
        int64_t v = total * g / 4;
        double y = T + ph - (double)ph * (double)v / (double)total;
        if (g > 0 && v == total * (g - 1) / 4)
            continue;
        printf_(b, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e2e2e2\"/>"
                   "<text x=\"%d\" y=\"%.1f\" font-size=\"12\" text-anchor=\"end\" "
                   "fill=\"#444\">%lld</text>",
                L, L + pw, y, y, L - 6, y + 4, (long long)v);
    }
    for (int g = 0; g <= 4; g++) { /* x ticks */
        double x = L + (double)pw * g / 4;
        duration((t1 - t0) * g / 4, lab, sizeof(lab));
        printf_(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"#999\"/>"
                   "<text x=\"%.1f\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\" "
                   "fill=\"#444\">%s</text>",
                x, x, T + ph, T + ph + 5, x, T + ph + 19, g == 0 ? "0" : lab);
    }
    printf_(b, "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\" fill=\"#444\">"
               "time since the campaign was created</text>",
            L + pw / 2, H - 4);
    for (int line = 0; line < 2; line++) {
        const char *key = line == 0 ? "done" : "failed";
        double px = L, py = T + ph;
        printf_(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2.5\" points=\"%.1f,%.1f",
                state_color(key), px, py);
        for (size_t i = 0; i < n; i++) {
            json_object *p = json_object_array_get_idx(pts, i);
            double x = L + (double)pw * (double)(geti(p, "t_ms") - t0) / (double)(t1 - t0);
            double y = T + ph - (double)ph * (double)geti(p, key) / (double)total;
            if (x < L)
                x = L;
            printf_(b, " %.1f,%.1f %.1f,%.1f", x, py, x, y);
            py = y;
        }
        if (geti(j, "pending") + geti(j, "running") > 0)
            printf_(b, " %d,%.1f", L + pw, py); /* flat until now */
        puts_(b, "\"/>");
    }
    printf_(b, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"4\" fill=\"%s\"/>"
               "<text x=\"%d\" y=\"%d\" font-size=\"12\" fill=\"#333\">done</text>"
               "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"4\" fill=\"%s\"/>"
               "<text x=\"%d\" y=\"%d\" font-size=\"12\" fill=\"#333\">failed</text></svg>\n",
            L + 10, T + 10, state_color("done"), L + 27, T + 16, L + 70, T + 10,
            state_color("failed"), L + 87, T + 16);
}

static int finish_html(sb *b, char **out, size_t *len)
{
    puts_(b, "</body></html>\n");
    if (b->err) {
        free(b->p);
        return b->err;
    }
    *out = b->p;
    *len = b->len;
    return SCP_OK;
}

static int html_campaign(json_object *j, char **out, size_t *len)
{
    sb b = { 0 };
    json_object *fails;
    const char *name = gets_(j, "name");
    int64_t total = geti(j, "total"), ended = geti(j, "done") + geti(j, "failed") +
                                              geti(j, "cancelled");
    char title[OTA_STATUS_TEXT + 16];
    size_t nf = 0;

    snprintf(title, sizeof(title), "campaign %s", name);
    head(&b, title, geti(j, "pending") + geti(j, "running") > 0);
    puts_(&b, "<p class=\"sub\"><a href=\"/campaign/\">all campaigns</a></p>\n<h1>Campaign ");
    esc(&b, name);
    puts_(&b, "</h1>\n<p class=\"sub\">");
    esc(&b, gets_(j, "action"));
    puts_(&b, ", <span id=\"campaign-state\">");
    esc(&b, gets_(j, "state"));
    puts_(&b, "</span>, created ");
    esc(&b, gets_(j, "created"));
    puts_(&b, "; page generated ");
    esc(&b, gets_(j, "generated"));
    printf_(&b, "</p>\n<p><span class=\"big\" id=\"done-of-total\">%lld / %lld</span> devices "
                "done (%lld%%), %lld ended</p>\n",
            (long long)geti(j, "done"), (long long)total,
            (long long)(total ? geti(j, "done") * 100 / total : 0), (long long)ended);

    puts_(&b, "<h2>Devices by state</h2>\n<table id=\"states\"><tr><th>state</th>"
              "<th>devices</th><th>share</th></tr>\n");
    for (size_t k = 0; k < sizeof(states) / sizeof(states[0]); k++) {
        int64_t v = geti(j, states[k]);
        int w = total ? (int)(v * 300 / total) : 0;
        printf_(&b, "<tr><td><span class=\"sw\" style=\"background:%s\"></span>%s</td>"
                    "<td class=\"n\" data-state=\"%s\">%lld</td><td><svg width=\"302\" "
                    "height=\"12\"><rect x=\"0\" y=\"1\" width=\"300\" height=\"10\" "
                    "fill=\"#eee\"/><rect x=\"0\" y=\"1\" width=\"%d\" height=\"10\" "
                    "fill=\"%s\"/></svg></td></tr>\n",
                state_color(states[k]), states[k], states[k], (long long)v, w,
                state_color(states[k]));
    }
    printf_(&b, "<tr><th>total</th><th class=\"n\" data-state=\"total\">%lld</th><th></th></tr>"
                "</table>\n",
            (long long)total);

    puts_(&b, "<h2>Progress over time</h2>\n");
    plot(&b, j);

    if (json_object_object_get_ex(j, "failures", &fails))
        nf = json_object_array_length(fails);
    printf_(&b, "<h2>Latest failures</h2>\n<p class=\"sub\">Failed jobs, and jobs still to do "
                "whose last session ended with a reason; newest first, at most %d.</p>\n",
            OTA_STATUS_FAILS);
    if (nf == 0) {
        puts_(&b, "<p id=\"no-failures\">none</p>\n");
    } else {
        puts_(&b, "<table id=\"failures\"><tr><th>time (UTC)</th><th>device</th><th>job</th>"
                  "<th>attempts</th><th>reason</th></tr>\n");
        for (size_t i = 0; i < nf; i++) {
            json_object *f = json_object_array_get_idx(fails, i);
            puts_(&b, "<tr><td class=\"t\">");
            esc(&b, gets_(f, "time"));
            puts_(&b, "</td><td class=\"dev\">");
            esc(&b, gets_(f, "device"));
            puts_(&b, "</td><td>");
            esc(&b, gets_(f, "state"));
            printf_(&b, "</td><td class=\"n\">%lld</td><td class=\"reason\">",
                    (long long)geti(f, "attempts"));
            esc(&b, gets_(f, "reason"));
            puts_(&b, "</td></tr>\n");
        }
        puts_(&b, "</table>\n");
    }
    puts_(&b, "<p class=\"sub\">The same data as JSON: <a href=\"/campaign/");
    urlseg(&b, name);
    puts_(&b, ".json\">");
    esc(&b, name);
    puts_(&b, ".json</a></p>\n");
    return finish_html(&b, out, len);
}

static int html_index(json_object *j, char **out, size_t *len)
{
    sb b = { 0 };
    json_object *arr;
    size_t n = 0;
    head(&b, "OTA campaigns", 0);
    puts_(&b, "<h1>OTA campaigns</h1>\n<p class=\"sub\">page generated ");
    esc(&b, gets_(j, "generated"));
    printf_(&b, " (newest first, at most %d)</p>\n", OTA_STATUS_CAMPAIGNS);
    if (json_object_object_get_ex(j, "campaigns", &arr))
        n = json_object_array_length(arr);
    if (n == 0) {
        puts_(&b, "<p>no campaigns</p>\n");
        return finish_html(&b, out, len);
    }
    puts_(&b, "<table id=\"campaigns\"><tr><th>campaign</th><th>action</th><th>state</th>"
              "<th>created (UTC)</th><th>done</th><th>failed</th><th>to do</th><th>total</th>"
              "</tr>\n");
    for (size_t i = 0; i < n; i++) {
        json_object *c = json_object_array_get_idx(arr, i);
        puts_(&b, "<tr><td><a href=\"/campaign/");
        urlseg(&b, gets_(c, "name"));
        puts_(&b, "\">");
        esc(&b, gets_(c, "name"));
        puts_(&b, "</a></td><td>");
        esc(&b, gets_(c, "action"));
        puts_(&b, "</td><td>");
        esc(&b, gets_(c, "state"));
        puts_(&b, "</td><td>");
        esc(&b, gets_(c, "created"));
        printf_(&b, "</td><td class=\"n\">%lld</td><td class=\"n\">%lld</td><td class=\"n\">%lld"
                    "</td><td class=\"n\">%lld</td></tr>\n",
                (long long)geti(c, "done"), (long long)geti(c, "failed"),
                (long long)(geti(c, "pending") + geti(c, "running")), (long long)geti(c, "total"));
    }
    puts_(&b, "</table>\n");
    return finish_html(&b, out, len);
}

int ota_status_html(json_object *status, char **out, size_t *len)
{
    json_object *v;
    *out = NULL;
    *len = 0;
    if (json_object_object_get_ex(status, "campaigns", &v))
        return html_index(status, out, len);
    return html_campaign(status, out, len);
}
