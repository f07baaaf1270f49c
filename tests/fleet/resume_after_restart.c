/* A resumed dialog after a server restart, then a lost answer (driven by
 * tests/fleet/resume.sh, which kills and restarts the server between
 * step 2 and step 3):
 *   1. the first POST: the first command script (SELECT + INITIALIZE
 *      UPDATE), run on the card; its results are ready for step 1;
 *   2. (the server is killed with SIGKILL and started again on its port)
 *   3. the results are posted with X-Admin-Resume: the new server process
 *      does not know the dialog, the lease says it is this agent's, so it
 *      restarts it with a fresh SCP03 session: a new first script;
 *   4. that answer is "lost": the same body goes to the same URI again.
 *      It must get the same answer byte for byte (the fact sheet's rule
 *      for a duplicate), not be taken as the results of the new script
 *      (a wrong card cryptogram, the job failed);
 *   5. the session goes on from there to 204.
 * Exit 0 when all of that holds.
 *   resume_after_restart CARD_DIR SERVER_URL CA_FILE SYNC_DIR */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ota/agent.h"
#include "scpkit/card.h"

static int post(ota_agent *ag, long *code)
{
    ota_agent_prepare(ag);
    CURLcode cc = curl_easy_perform(ag->curl);
    *code = 0;
    if (cc != CURLE_OK) {
        fprintf(stderr, "transfer: %s\n", curl_easy_strerror(cc));
        return (int)cc;
    }
    curl_easy_getinfo(ag->curl, CURLINFO_RESPONSE_CODE, code);
    return 0;
}

int main(int argc, char **argv)
{
    ota_agent_opts o = { 0 };
    ota_agent ag;
    scp_card *card;
    scp_transport t;
    char why[256], path[4096];
    struct stat st;
    uint8_t *first = NULL;
    size_t first_len = 0;
    long code, wait_ms;
    int rc;

    if (argc != 5) {
        fprintf(stderr, "usage: resume_after_restart CARD SERVER CA SYNC_DIR\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (scp_card_open(argv[1], &card, why, sizeof(why)) != SCP_OK) {
        fprintf(stderr, "card: %s\n", why);
        return 2;
    }
    scp_card_transport(card, &t);
    o.server = argv[2];
    o.ca = argv[3];
    o.card = &t;
    o.retries = 0;
    o.timeout_s = 30;
    if (ota_device_id(&t, o.device_id, sizeof(o.device_id)) != SCP_OK ||
        ota_agent_init(&ag, &o, why, sizeof(why)) != SCP_OK) {
        fprintf(stderr, "agent setup failed\n");
        return 2;
    }
    /* 1 */
    ota_agent_begin(&ag);
    if (post(&ag, &code) != 0 || code != 200) {
        fprintf(stderr, "FAIL: first POST: HTTP %ld\n", code);
        return 1;
    }
    rc = ota_agent_advance(&ag, CURLE_OK, &wait_ms, why, sizeof(why));
    if (rc != OTA_AGENT_POST || ag.len == 0) {
        fprintf(stderr, "FAIL: first script: %s\n", why);
        return 1;
    }
    /* 2: the shell kills and restarts the server (bounded: 60 s) */
    snprintf(path, sizeof(path), "%s/ready", argv[4]);
    FILE *f = fopen(path, "w");
    if (!f || fclose(f) != 0)
        return 2;
    snprintf(path, sizeof(path), "%s/go", argv[4]);
    for (int k = 0; k < 600 && stat(path, &st) != 0; k++)
        usleep(100000);
    if (stat(path, &st) != 0) {
        fprintf(stderr, "FAIL: no go from the script\n");
        return 1;
    }
    /* 3 */
    ag.resume = 1;
    if (post(&ag, &code) != 0 || code != 200 || !ag.r.body) {
        fprintf(stderr, "FAIL: resume after the restart: HTTP %ld\n", code);
        return 1;
    }
    first = malloc(ag.r.len);
    first_len = ag.r.len;
    memcpy(first, ag.r.body, first_len);
    /* 4: the answer was lost; the same POST again */
    if (post(&ag, &code) != 0 || code != 200 || ag.r.len != first_len ||
        memcmp(ag.r.body, first, first_len) != 0) {
        fprintf(stderr, "FAIL: the repeated POST got HTTP %ld and %s answer (%.*s)\n", code,
                ag.r.len == first_len ? "another" : "a different-length",
                (int)(ag.r.len < 120 ? ag.r.len : 120), ag.r.body ? (char *)ag.r.body : "");
        return 1;
    }
    printf("the repeated POST got the same answer (%zu bytes)\n", first_len);
    /* 5 */
    ag.resume = 0;
    rc = ota_agent_advance(&ag, CURLE_OK, &wait_ms, why, sizeof(why));
    while (rc == OTA_AGENT_POST) {
        ota_agent_prepare(&ag);
        rc = ota_agent_advance(&ag, (int)curl_easy_perform(ag.curl), &wait_ms, why, sizeof(why));
    }
    if (rc != OTA_AGENT_DONE) {
        fprintf(stderr, "FAIL: the session after the restart: %s\n", why);
        return 1;
    }
    printf("session done after the restart (%d scripts)\n", ag.scripts);
    free(first);
    ota_agent_free(&ag);
    scp_card_close(card);
    curl_global_cleanup();
    return 0;
}
