/* The device agent (`scpkit agent`): an Amendment B HTTP client over
 * libcurl that relays command scripts to a secure element and carries the
 * responses back. It never sees a key: the SCP03 session runs between the
 * server and the card. The server's certificate is always verified (CA
 * file or the system store; there is no switch to turn that off), TLS 1.2
 * at least, https only.
 *
 * Lost connections (fact sheet §7): the agent re-posts the same body to the
 * same URI with X-Admin-Resume: true; an unknown dialog (404) or a busy
 * device (409, Retry-After) start over from the admin URI. Every retry is
 * counted against one budget, with exponential backoff and jitter. */
#include <curl/curl.h>
#include <fcntl.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "ota/agent.h"
#include "scpkit/crypto.h"

typedef ota_agent_resp resp;

static size_t on_body(char *p, size_t sz, size_t n, void *arg)
{
    resp *r = arg;
    size_t add = sz * n;
    if (r->len + add > r->max) {
        r->too_big = 1;
        return 0; /* abort the transfer */
    }
    uint8_t *b = realloc(r->body, r->len + add + 1);
    if (!b)
        return 0;
    memcpy(b + r->len, p, add);
    r->body = b;
    r->len += add;
    return add;
}

/* Header "Name: value\r\n" -> value, trimmed, into out. */
static void header_value(const char *p, size_t n, size_t name_len, char *out, size_t size)
{
    size_t a = name_len, b = n;
    while (a < b && (p[a] == ' ' || p[a] == '\t'))
        a++;
    while (b > a && (p[b - 1] == '\r' || p[b - 1] == '\n' || p[b - 1] == ' '))
        b--;
    if (b - a >= size)
        b = a + size - 1;
    memcpy(out, p + a, b - a);
    out[b - a] = 0;
}

size_t ota_agent_header_cb(char *p, size_t sz, size_t n, void *arg)
{
    resp *r = arg;
    size_t len = sz * n;
    char v[32];
    if (len > 17 && strncasecmp(p, "X-Admin-Next-URI:", 17) == 0)
        header_value(p, len, 17, r->next_uri, sizeof(r->next_uri));
    else if (len > 13 && strncasecmp(p, "Content-Type:", 13) == 0)
        header_value(p, len, 13, r->ctype, sizeof(r->ctype));
    else if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0) {
        header_value(p, len, 12, v, sizeof(v));
        r->retry_after = atol(v);
    } else if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        /* a new response head (e.g. after 100 Continue): forget the last */
        r->next_uri[0] = r->ctype[0] = 0;
        r->retry_after = 0;
    }
    return len;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static long backoff(int attempt, long retry_after_s)
{
    long ms = 200L << (attempt < 5 ? attempt : 5);
    uint8_t j = 0;
    if (ms > 5000)
        ms = 5000;
    if (scp_random(&j, 1) == SCP_OK)
        ms += (ms * j) / 512; /* up to +50 % jitter: agents do not come back in step */
    if (retry_after_s > 0 && retry_after_s * 1000 > ms)
        ms = retry_after_s * 1000 > 30000 ? 30000 : retry_after_s * 1000;
    return ms;
}

/* Run one command script on the card; the response script into *out. */
int ota_agent_run_script(scp_transport *card, int verbose, FILE *log, const uint8_t *body,
                         size_t len, uint8_t **out, size_t *out_len, char *why, size_t why_size)
{
    ota_slice cmds[OTA_SCRIPT_MAX_APDUS], res[OTA_SCRIPT_MAX_APDUS];
    uint8_t rbuf[OTA_SCRIPT_MAX_APDUS][OTA_APDU_MAX];
    size_t n, k, cap;
    int rc = ota_script_decode(body, len, 0xAE, 0xAA, 0x22, cmds, OTA_SCRIPT_MAX_APDUS, &n, NULL);
    if (rc != SCP_OK) {
        snprintf(why, why_size, "malformed command script: %s", scp_strerror(rc));
        return rc;
    }
    for (k = 0; k < n; k++) {
        size_t rl;
        uint16_t sw;
        rc = scp_transmit(card, cmds[k].p, cmds[k].len, rbuf[k], sizeof(rbuf[k]), &rl);
        if (rc != SCP_OK || rl < 2) {
            snprintf(why, why_size, "card: %s", scp_strerror(rc != SCP_OK ? rc : SCP_E_FORMAT));
            return rc != SCP_OK ? rc : SCP_E_FORMAT;
        }
        res[k].p = rbuf[k];
        res[k].len = rl;
        sw = (uint16_t)(rbuf[k][rl - 2] << 8 | rbuf[k][rl - 1]);
        if (log && verbose)
            fprintf(log, "agent: C-APDU %02X%02X%02X%02X -> SW %04X\n", cmds[k].p[0],
                    cmds[k].p[1], cmds[k].p[2], cmds[k].p[3], sw);
        /* a card stops at a failing command (fact sheet §5): warnings go on */
        if (sw != 0x9000 && (sw >> 8) != 0x61 && (sw >> 8) != 0x62 && (sw >> 8) != 0x63) {
            k++;
            break;
        }
    }
    cap = 4 + k * (4 + OTA_APDU_MAX);
    *out = malloc(cap);
    if (!*out)
        return SCP_E_NOMEM;
    rc = ota_script_encode(0xAF, res, k, *out, cap, out_len);
    scp_wipe(rbuf, sizeof(rbuf));
    return rc;
}

/* Set the easy handle up to POST ag->body (may be empty) to ag->url;
 * the answer goes into ag->r. */
void ota_agent_prepare(ota_agent *ag)
{
    struct curl_slist *h = NULL;
    char from[160];

    curl_slist_free_all(ag->hdrs);
    free(ag->r.body);
    memset(&ag->r, 0, sizeof(ag->r));
    ag->r.max = ag->o.max_body;
    snprintf(from, sizeof(from), "X-Admin-From: //se-id/id/%s", ag->o.device_id);
    h = curl_slist_append(h, "X-Admin-Protocol: " OTA_PROTOCOL);
    h = curl_slist_append(h, from);
    h = curl_slist_append(h, "Expect:");
    if (ag->len) {
        h = curl_slist_append(h, "Content-Type: " OTA_CT_RESPONSE);
        h = curl_slist_append(h, "X-Admin-Script-Status: ok");
    } else {
        h = curl_slist_append(h, "Content-Type:");
    }
    if (ag->resume)
        h = curl_slist_append(h, "X-Admin-Resume: true");
    ag->hdrs = h;
    curl_easy_setopt(ag->curl, CURLOPT_URL, ag->url);
    curl_easy_setopt(ag->curl, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(ag->curl, CURLOPT_POST, 1L);
    curl_easy_setopt(ag->curl, CURLOPT_POSTFIELDS, ag->len ? (const char *)ag->body : "");
    curl_easy_setopt(ag->curl, CURLOPT_POSTFIELDSIZE, (long)ag->len);
    curl_easy_setopt(ag->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(ag->curl, CURLOPT_HEADERFUNCTION, ota_agent_header_cb);
    curl_easy_setopt(ag->curl, CURLOPT_WRITEDATA, &ag->r);
    curl_easy_setopt(ag->curl, CURLOPT_HEADERDATA, &ag->r);
}

/* ---- the resume file: "DEVICE-ID\nURL\n", written new (temporary file,
 * fsync, rename, directory fsync): after a crash it holds the last URI or
 * the one before, never half of one ---- */

static void state_save(ota_agent *ag, const char *url)
{
    char tmp[4200], dir[4096], *slash;
    FILE *f;
    int ok, fd;
    if (!ag->o.state_file ||
        (size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", ag->o.state_file) >= sizeof(tmp))
        return;
    f = fopen(tmp, "w");
    if (!f)
        return;
    ok = fprintf(f, "%s\n%s\n", ag->o.device_id, url) > 0 && fflush(f) == 0 &&
         fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, ag->o.state_file) != 0) {
        unlink(tmp);
        return;
    }
    snprintf(dir, sizeof(dir), "%s", ag->o.state_file);
    slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = 0;
    fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

static void state_clear(ota_agent *ag)
{
    if (ag->o.state_file)
        unlink(ag->o.state_file);
}

/* The stored URI when it is this device's and on the admin server's
 * origin (scheme://host:port of the admin URL), else 0. */
static int state_load(ota_agent *ag, char *url, size_t size)
{
    char line[2][700];
    size_t origin;
    const char *p;
    FILE *f;
    int ok;
    if (!ag->o.state_file || !(f = fopen(ag->o.state_file, "r")))
        return 0;
    ok = fgets(line[0], sizeof(line[0]), f) && fgets(line[1], sizeof(line[1]), f);
    fclose(f);
    if (!ok)
        return 0;
    line[0][strcspn(line[0], "\r\n")] = 0;
    line[1][strcspn(line[1], "\r\n")] = 0;
    p = strchr(ag->admin_url + 8, '/'); /* after "https://" */
    origin = p ? (size_t)(p - ag->admin_url) + 1 : strlen(ag->admin_url);
    if (strcmp(line[0], ag->o.device_id) != 0 || strncmp(line[1], ag->admin_url, origin) != 0 ||
        strlen(line[1]) >= size)
        return 0;
    snprintf(url, size, "%s", line[1]);
    return 1;
}

/* Next-URI relative to the current URL, https only. */
static int resolve(const char *base, const char *rel, char *out, size_t size)
{
    CURLU *u = curl_url();
    char *s = NULL, *scheme = NULL;
    int ok = 0;
    if (u && curl_url_set(u, CURLUPART_URL, base, 0) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_URL, rel, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        strcmp(scheme, "https") == 0 && curl_url_get(u, CURLUPART_URL, &s, 0) == CURLUE_OK &&
        strlen(s) < size) {
        snprintf(out, size, "%s", s);
        ok = 1;
    }
    curl_free(s);
    curl_free(scheme);
    curl_url_cleanup(u);
    return ok;
}

/* PSK-TLS through libcurl's OpenSSL backend: libcurl has no PSK option,
 * but hands over each connection's SSL_CTX (CURLOPT_SSL_CTX_FUNCTION),
 * where OpenSSL's client PSK callback goes. The agent rides on ex_data. */
static int psk_index = -1;

static unsigned int psk_client_cb(SSL *ssl, const char *hint, char *identity,
                                  unsigned int max_identity_len, unsigned char *psk,
                                  unsigned int max_psk_len)
{
    const ota_agent *ag = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), psk_index);
    (void)hint;
    if (!ag || strlen(ag->o.psk_identity) >= max_identity_len || ag->o.psk_len > max_psk_len)
        return 0;
    memcpy(identity, ag->o.psk_identity, strlen(ag->o.psk_identity) + 1);
    memcpy(psk, ag->o.psk, ag->o.psk_len);
    return (unsigned int)ag->o.psk_len;
}

static CURLcode psk_ctx_cb(CURL *curl, void *ssl_ctx, void *arg)
{
    (void)curl;
    if (!SSL_CTX_set_ex_data(ssl_ctx, psk_index, arg))
        return CURLE_SSL_CONNECT_ERROR;
    SSL_CTX_set_psk_client_callback(ssl_ctx, psk_client_cb);
    return CURLE_OK;
}

int ota_agent_init(ota_agent *ag, const ota_agent_opts *o, char *why, size_t why_size)
{
    memset(ag, 0, sizeof(*ag));
    ag->o = *o;
    if (!ag->o.max_body)
        ag->o.max_body = 65536;
    if (!resolve(o->server, OTA_ADMIN_PATH, ag->admin_url, sizeof(ag->admin_url))) {
        snprintf(why, why_size, "server URL must be https://HOST[:PORT]/");
        return SCP_E_ARG;
    }
    ag->curl = curl_easy_init();
    if (!ag->curl) {
        snprintf(why, why_size, "libcurl: cannot start");
        return SCP_E_NOMEM;
    }
    curl_easy_setopt(ag->curl, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(ag->curl, CURLOPT_REDIR_PROTOCOLS_STR, "https");
    curl_easy_setopt(ag->curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(ag->curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(ag->curl, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(ag->curl, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (o->psk_len) {
        /* only PSK suites are offered: the server must prove the PSK, and
         * there is no certificate for libcurl to check */
        if (psk_index < 0)
            psk_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
        if (psk_index < 0 || !o->psk_identity || !*o->psk_identity) {
            snprintf(why, why_size, "PSK: no identity");
            return SCP_E_ARG;
        }
        curl_easy_setopt(ag->curl, CURLOPT_SSLVERSION,
                         (long)(CURL_SSLVERSION_TLSv1_2 | CURL_SSLVERSION_MAX_TLSv1_2));
        if (curl_easy_setopt(ag->curl, CURLOPT_SSL_CIPHER_LIST, OTA_PSK_CIPHER) != CURLE_OK ||
            curl_easy_setopt(ag->curl, CURLOPT_SSL_CTX_FUNCTION, psk_ctx_cb) != CURLE_OK ||
            curl_easy_setopt(ag->curl, CURLOPT_SSL_CTX_DATA, ag) != CURLE_OK) {
            snprintf(why, why_size, "PSK: this libcurl cannot hand over its OpenSSL context");
            return SCP_E_UNSUPPORTED;
        }
        curl_easy_setopt(ag->curl, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(ag->curl, CURLOPT_SSL_VERIFYHOST, 0L);
        curl_easy_setopt(ag->curl, CURLOPT_SSL_SESSIONID_CACHE, 0L);
    }
    if (o->ca)
        curl_easy_setopt(ag->curl, CURLOPT_CAINFO, o->ca);
    if (o->cert)
        curl_easy_setopt(ag->curl, CURLOPT_SSLCERT, o->cert);
    if (o->key)
        curl_easy_setopt(ag->curl, CURLOPT_SSLKEY, o->key);
    curl_easy_setopt(ag->curl, CURLOPT_TIMEOUT, (long)(o->timeout_s > 0 ? o->timeout_s : 30));
    curl_easy_setopt(ag->curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(ag->curl, CURLOPT_NOSIGNAL, 1L);
    return SCP_OK;
}

int ota_agent_set_server(ota_agent *ag, const char *server)
{
    return resolve(server, OTA_ADMIN_PATH, ag->admin_url, sizeof(ag->admin_url)) ? SCP_OK
                                                                                 : SCP_E_ARG;
}

void ota_agent_free(ota_agent *ag)
{
    ota_agent_end(ag);
    scp_wipe(ag->o.psk, sizeof(ag->o.psk));
    if (ag->curl)
        curl_easy_cleanup(ag->curl);
    ag->curl = NULL;
}

void ota_agent_begin(ota_agent *ag)
{
    ota_agent_end(ag);
    snprintf(ag->url, sizeof(ag->url), "%s", ag->admin_url);
    ag->resume = ag->tries = ag->scripts = ag->posts = 0;
    /* a dialog a killed run left: resume there (fact sheet §7) */
    ag->stored = ag->resume = state_load(ag, ag->url, sizeof(ag->url));
    if (ag->stored && ag->o.log)
        fprintf(ag->o.log, "agent: resuming at the stored X-Admin-Next-URI\n");
}

void ota_agent_end(ota_agent *ag)
{
    curl_slist_free_all(ag->hdrs);
    ag->hdrs = NULL;
    free(ag->r.body);
    ag->r.body = NULL;
    free(ag->body);
    ag->body = NULL;
    ag->len = 0;
}

/* A lost connection or a server that cannot go on: retry (same URI with
 * X-Admin-Resume, or from the admin URI for 404/409/5xx) within the
 * budget. */
static int retry(ota_agent *ag, long code, long *wait_ms, char *why, size_t why_size)
{
    int restart = code == 409 || code == 404 || code >= 500;
    if (restart)
        snprintf(why, why_size, "server answered %ld (%.*s)", code,
                 (int)(ag->r.len < 80 ? ag->r.len : 80),
                 ag->r.body ? (const char *)ag->r.body : "");
    if (ag->o.log)
        fprintf(ag->o.log, "agent: %s; retry %d of %d\n", why, ag->tries + 1, ag->o.retries);
    if (ag->tries++ >= ag->o.retries)
        return code == 0 ? SCP_E_IO : SCP_E_AUTH;
    *wait_ms = backoff(ag->tries, ag->r.retry_after);
    if (restart) {
        state_clear(ag);
        snprintf(ag->url, sizeof(ag->url), "%s", ag->admin_url);
        free(ag->body);
        ag->body = NULL;
        ag->len = 0;
        ag->resume = 0;
    } else {
        ag->resume = strcmp(ag->url, ag->admin_url) != 0;
    }
    return OTA_AGENT_POST;
}

int ota_agent_advance(ota_agent *ag, int curl_result, long *wait_ms, char *why, size_t why_size)
{
    long code = 0;
    int rc;

    *wait_ms = 0;
    if (++ag->posts > 10000) {
        snprintf(why, why_size, "too many requests in one session");
        return SCP_E_STATE;
    }
    if (curl_result != CURLE_OK) {
        snprintf(why, why_size, "%s", ag->r.too_big ? "answer larger than the body limit"
                                                    : curl_easy_strerror((CURLcode)curl_result));
    } else {
        curl_easy_getinfo(ag->curl, CURLINFO_RESPONSE_CODE, &code);
    }
    if (ag->stored && (code == 404 || code == 409)) {
        /* the stored dialog ended meanwhile: start over, not a failure */
        ag->stored = 0;
        state_clear(ag);
        snprintf(ag->url, sizeof(ag->url), "%s", ag->admin_url);
        ag->resume = 0;
        return OTA_AGENT_POST;
    }
    ag->stored = 0;
    if (code == 0 || code >= 500 || code == 409 || code == 404)
        return retry(ag, code, wait_ms, why, why_size);
    ag->resume = 0;
    if (code == 204) {
        if (!ag->r.next_uri[0]) {
            state_clear(ag);
            return OTA_AGENT_DONE;
        }
        if (!resolve(ag->url, ag->r.next_uri, ag->url, sizeof(ag->url))) {
            snprintf(why, why_size, "bad X-Admin-Next-URI");
            return SCP_E_FORMAT;
        }
        free(ag->body);
        ag->body = NULL;
        ag->len = 0;
        return OTA_AGENT_POST;
    }
    if (code != 200) {
        snprintf(why, why_size, "server answered %ld (%.*s)", code,
                 (int)(ag->r.len < 120 ? ag->r.len : 120),
                 ag->r.body ? (const char *)ag->r.body : "");
        return SCP_E_AUTH;
    }
    if (strcasecmp(ag->r.ctype, OTA_CT_SCRIPT) != 0) {
        snprintf(why, why_size, "answer is not a command script (Content-Type \"%s\")",
                 ag->r.ctype);
        return SCP_E_FORMAT;
    }
    if (ag->r.next_uri[0]) {
        char next[600];
        if (resolve(ag->url, ag->r.next_uri, next, sizeof(next)))
            state_save(ag, next);
    }
    ota_fault_point("agent", "script-received");
    free(ag->body);
    ag->body = NULL;
    ag->len = 0;
    rc = ota_agent_run_script(ag->o.card, ag->o.verbose, ag->o.log,
                              ag->r.body ? ag->r.body : (const uint8_t *)"", ag->r.len,
                              &ag->body, &ag->len, why, why_size);
    if (rc != SCP_OK)
        return rc;
    ag->scripts++;
    ota_fault_point("agent", "card-done");
    if (!ag->r.next_uri[0]) { /* the last script: no results are posted */
        state_clear(ag);
        return OTA_AGENT_DONE;
    }
    if (!resolve(ag->url, ag->r.next_uri, ag->url, sizeof(ag->url))) {
        snprintf(why, why_size, "bad X-Admin-Next-URI");
        return SCP_E_FORMAT;
    }
    return OTA_AGENT_POST;
}

int ota_agent_session(ota_agent *ag, char *why, size_t why_size)
{
    long wait_ms = 0;
    int rc;

    ota_agent_begin(ag);
    for (;;) {
        ota_agent_prepare(ag);
        rc = ota_agent_advance(ag, curl_easy_perform(ag->curl), &wait_ms, why, why_size);
        if (rc != OTA_AGENT_POST)
            break;
        if (wait_ms > 0)
            sleep_ms(wait_ms);
    }
    ota_agent_end(ag);
    return rc; /* OTA_AGENT_DONE == SCP_OK */
}
