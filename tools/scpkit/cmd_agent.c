/* scpkit agent: the device side of OTA (issue 14). Reads the card's
 * identity (CIN, else the CPLC IC serial number), POSTs to the admin server
 * over HTTPS (server certificate always verified: --ca FILE or the system
 * store), relays each command script to the card and returns the
 * responses, until the server answers 204. It never sees a key.
 *   agent --server https://HOST:PORT/ [--ca FILE] [--cert F --key F]
 *         (--card DIR | -r READER) [--id DEVICE] [--retries N] [--timeout S]
 *         [--loop SECONDS] [--resume-file FILE] [-v]
 *         [--psk-key-file F [--psk-identity ID]]   (PSK-TLS: --server on the
 *         server's --psk-listen port; identity defaults to the device id)
 * --resume-file keeps the last X-Admin-Next-URI (crash-safe) so a
 * restarted agent resumes its dialog there. Exit 0 when the server says nothing is left (204); with --loop it keeps
 * polling every SECONDS (with jitter) until SIGTERM. */
#ifdef SCP_HAVE_OTA
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_ota.h"
#include "ota/agent.h"

static volatile sig_atomic_t stop;
static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

/* The device's TLS PSK from a file: hex (32 or 64 digits), read once,
 * the buffers wiped; never printed. */
static int read_psk(scp_cli *c, const char *path, ota_agent_opts *o)
{
    char line[160];
    size_t n = 0;
    FILE *f = fopen(path, "r");
    int ok = 0;
    if (!f)
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "--psk-key-file %s: cannot read", path);
    if (fgets(line, sizeof(line), f)) {
        line[strcspn(line, " \r\n")] = 0;
        ok = scp_hex_decode(line, o->psk, sizeof(o->psk), &n) == SCP_OK && (n == 16 || n == 32);
    }
    fclose(f);
    scp_wipe(line, sizeof(line));
    if (!ok) {
        scp_wipe(o->psk, sizeof(o->psk));
        return scp_cli_fail(c, SCP_EXIT_USAGE, "--psk-key-file: want 16 or 32 bytes in hex");
    }
    o->psk_len = n;
    return SCP_EXIT_OK;
}

static int agent_run(scp_cli *c)
{
    ota_agent_opts o = { 0 };
    ota_agent ag;
    const char *id = scp_cli_take(c, "--id"), *retries = scp_cli_take(c, "--retries");
    const char *timeout = scp_cli_take(c, "--timeout"), *loop = scp_cli_take(c, "--loop");
    char why[512];
    int rc, sessions = 0;

    o.server = scp_cli_take(c, "--server");
    o.ca = scp_cli_take(c, "--ca");
    o.cert = scp_cli_take(c, "--cert");
    /* --key is also the common option for a card key (opts.c): here it is
     * the client certificate's key file, and no card key is used */
    o.key = c->o.key_hex;
    c->o.key_hex = NULL;
    o.state_file = scp_cli_take(c, "--resume-file");
    o.psk_identity = scp_cli_take(c, "--psk-identity");
    const char *psk_file = scp_cli_take(c, "--psk-key-file");
    o.retries = retries ? atoi(retries) : 5;
    o.timeout_s = timeout ? atoi(timeout) : 30;
    o.log = stderr;
    o.verbose = c->o.trace;
    if (!o.server)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "agent --server https://HOST:PORT/ (--card DIR | -r READER)");
    if (o.retries < 0 || o.retries > 1000 || o.timeout_s < 1 || o.timeout_s > 3600 ||
        (loop && atoi(loop) < 1))
        return scp_cli_fail(c, SCP_EXIT_USAGE, "--retries 0..1000, --timeout 1..3600, --loop >= 1");
    if ((rc = scp_cli_no_more(c, 1)) != SCP_EXIT_OK || (rc = scp_cli_connect(c)) != SCP_EXIT_OK)
        return rc;
    o.card = &c->t;
    if (id) {
        snprintf(o.device_id, sizeof(o.device_id), "%s", id);
    } else if ((rc = ota_device_id(&c->t, o.device_id, sizeof(o.device_id))) != SCP_OK) {
        return scp_cli_fail_rc(c, rc, "reading the card's identity (CIN / CPLC)");
    }
    json_object_object_add(c->doc, "device_id", json_object_new_string(o.device_id));
    if (o.psk_identity && !psk_file)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "--psk-identity needs --psk-key-file");
    if (psk_file) {
        if ((rc = read_psk(c, psk_file, &o)) != SCP_EXIT_OK)
            return rc;
        if (!o.psk_identity)
            o.psk_identity = o.device_id; /* the server binds the identity to X-Admin-From */
    }
    rc = ota_agent_init(&ag, &o, why, sizeof(why));
    scp_wipe(o.psk, sizeof(o.psk)); /* ag holds its copy */
    if (rc != SCP_OK) {
        ota_agent_free(&ag);
        return scp_cli_fail(c, SCP_EXIT_USAGE, "agent: %s", why);
    }
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    do {
        rc = ota_agent_session(&ag, why, sizeof(why));
        sessions++;
        if (rc != SCP_OK)
            fprintf(stderr, "scpkit agent: session failed: %s\n", why);
        else if (!c->o.json)
            printf("agent %s: session done (%d script%s)\n", o.device_id, ag.scripts,
                   ag.scripts == 1 ? "" : "s");
        if (loop && !stop) {
            long ms = atol(loop) * 1000L;
            uint8_t j = 0;
            if (scp_random(&j, 1) == SCP_OK)
                ms += ms * j / 1024; /* jitter: a fleet does not poll in step */
            struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
            nanosleep(&ts, NULL);
        }
    } while (loop && !stop);
    ota_agent_free(&ag);
    json_object_object_add(c->doc, "sessions", json_object_new_int(sessions));
    json_object_object_add(c->doc, "scripts", json_object_new_int(ag.scripts));
    if (rc != SCP_OK)
        return scp_cli_fail(c, rc == SCP_E_IO ? SCP_EXIT_CARD : SCP_EXIT_REFUSED, "agent: %s", why);
    return SCP_EXIT_OK;
}

int scp_cli_agent(int argc, char **argv)
{
    scp_cli c;
    int rc;
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: scpkit agent --server https://HOST:PORT/ [--ca FILE] [--cert F --key F]\n"
               "       (--card DIR | -r READER) [--id DEVICE] [--retries N] [--timeout S]\n"
               "       [--loop SECONDS] [--resume-file FILE] [-v]\n"
               "       [--psk-key-file FILE [--psk-identity ID]]  (PSK-TLS listener)\n"
               "The server's certificate is always verified. Exit 0 when the server has\n"
               "nothing left (204). --resume-file keeps the last X-Admin-Next-URI so a\n"
               "restarted agent resumes its dialog there (X-Admin-Resume: true).\n");
        return SCP_EXIT_OK;
    }
    rc = scp_cli_begin(&c, argc, argv);
    if (rc == SCP_EXIT_OK) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        rc = agent_run(&c);
        curl_global_cleanup();
    }
    return scp_cli_end(&c, rc);
}
#endif /* SCP_HAVE_OTA */
