/* The device agent's library side (agent.c), used by `scpkit agent`,
 * `scpkit fleet simulate` and the OTA benchmark. */
#ifndef SCPKIT_OTA_AGENT_H
#define SCPKIT_OTA_AGENT_H

#include "ota/ota.h"

typedef struct ota_agent_opts {
    const char *server;    /* https://HOST[:PORT]/ */
    const char *ca;        /* CA file (NULL: the system store) */
    const char *cert, *key; /* optional client certificate */
    scp_transport *card;
    char device_id[OTA_ID_MAX + 1];
    int retries;           /* transient failures per session */
    int timeout_s;         /* per request */
    size_t max_body;       /* largest answer accepted (default 64 KiB) */
    FILE *log;             /* progress and retries (may be NULL) */
    int verbose;           /* also each C-APDU header and SW */
    /* NULL, or a file where the last X-Admin-Next-URI is kept (new file,
     * fsync, rename) so a restarted agent resumes its dialog there
     * (X-Admin-Resume: true) instead of waiting for the old lease */
    const char *state_file;
    /* PSK-TLS (the server's --psk-listen): TLS 1.2 with only
     * TLS_PSK_WITH_AES_128_CBC_SHA256 offered, identity and key given here
     * (psk_len 0: certificate TLS). The PSK authenticates both ends, so no
     * certificate is involved; the key is wiped by ota_agent_free. */
    const char *psk_identity;
    uint8_t psk[32];
    size_t psk_len;
} ota_agent_opts;

/* What the last answer carried (filled by ota_agent_header_cb and the
 * body callback). */
typedef struct ota_agent_resp {
    uint8_t *body;
    size_t len, max;
    int too_big;
    char next_uri[512];
    char ctype[128];
    long retry_after;
} ota_agent_resp;

typedef struct ota_agent {
    ota_agent_opts o;
    void *curl; /* CURL * */
    char admin_url[600];
    int scripts; /* scripts run in the last session */
    /* the session in progress (ota_agent_begin / _prepare / _advance) */
    char url[600];   /* where the next POST goes */
    uint8_t *body;   /* its body: the last response script (NULL: empty) */
    size_t len;
    int resume, tries, posts;
    int stored; /* this session began at the URI kept in o.state_file */
    ota_agent_resp r;
    void *hdrs; /* struct curl_slist * of the POST in flight */
} ota_agent;

SCP_MUST_CHECK int ota_agent_init(ota_agent *ag, const ota_agent_opts *o, char *why,
                                  size_t why_size);
void ota_agent_free(ota_agent *ag);
/* One session: from the first POST to 204. SCP_OK when the server said
 * 204 (nothing left); else an error and why. Blocking (curl easy). */
SCP_MUST_CHECK int ota_agent_session(ota_agent *ag, char *why, size_t why_size);

/* The same session, step-driven, for callers that run many agents on one
 * event loop (curl multi, `scpkit fleet simulate`):
 *   ota_agent_begin(ag);
 *   for (;;) { ota_agent_prepare(ag); <perform ag->curl>;
 *              rc = ota_agent_advance(ag, curl_result, &wait_ms, why, n);
 *              if (rc != OTA_AGENT_POST) break; <wait wait_ms> }
 *   ota_agent_end(ag);
 * advance() relays a command script to the card (in the caller's thread),
 * follows X-Admin-Next-URI, and on a lost connection or a busy server
 * answers OTA_AGENT_POST with a backoff in *wait_ms (the same budget of
 * retries as ota_agent_session). */
#define OTA_AGENT_DONE 0 /* 204 with no next URI: nothing left */
#define OTA_AGENT_POST 1 /* post again (after *wait_ms) */
void ota_agent_begin(ota_agent *ag);
void ota_agent_prepare(ota_agent *ag);
SCP_MUST_CHECK int ota_agent_advance(ota_agent *ag, int curl_result, long *wait_ms, char *why,
                                     size_t why_size);
void ota_agent_end(ota_agent *ag);
/* Point the agent at another server (https://HOST[:PORT]/); the next
 * ota_agent_begin starts there. */
SCP_MUST_CHECK int ota_agent_set_server(ota_agent *ag, const char *server);
/* The header callback prepare() installs (arg: &ag->r), for callers that
 * wrap it. */
size_t ota_agent_header_cb(char *p, size_t sz, size_t n, void *arg);

/* Run one command script (AE/AA) on the card, in order, stopping after a
 * command that fails (not 9000/61xx/62xx/63xx); the response script (AF 80)
 * is malloc'd into *out. */
SCP_MUST_CHECK int ota_agent_run_script(scp_transport *card, int verbose, FILE *log,
                                        const uint8_t *body, size_t len, uint8_t **out,
                                        size_t *out_len, char *why, size_t why_size);

#endif
