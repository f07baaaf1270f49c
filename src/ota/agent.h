/* The device agent's library side (agent.c), used by `scpkit agent` and
 * the OTA benchmark. */
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

typedef struct ota_agent {
    ota_agent_opts o;
    void *curl; /* CURL * */
    char admin_url[600];
    int scripts; /* scripts run in the last session */
} ota_agent;

SCP_MUST_CHECK int ota_agent_init(ota_agent *ag, const ota_agent_opts *o, char *why,
                                  size_t why_size);
void ota_agent_free(ota_agent *ag);
/* One session: from the first POST to 204. SCP_OK when the server said
 * 204 (nothing left); else an error and why. */
SCP_MUST_CHECK int ota_agent_session(ota_agent *ag, char *why, size_t why_size);

/* Run one command script (AE/AA) on the card, in order, stopping after a
 * command that fails (not 9000/61xx/62xx/63xx); the response script (AF 80)
 * is malloc'd into *out. */
SCP_MUST_CHECK int ota_agent_run_script(scp_transport *card, int verbose, FILE *log,
                                        const uint8_t *body, size_t len, uint8_t **out,
                                        size_t *out_len, char *why, size_t why_size);

#endif
