/* scpkit ota campaign: create (rotate-keys, script, put-data), show
 * (table or --json), wait (a progress bar on a terminal), pause, resume,
 * cancel. A campaign's jobs are made for the devices its target names when
 * it is created; the server works through them as the devices call in. */
#ifdef SCP_HAVE_OTA
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli_ota.h"
#include "scpkit/apdu.h"
#include "scpkit/buf.h"
#include "scpkit/card.h"

/* Largest plain command data that still fits one short APDU at level 33
 * (padding to 16 plus an 8-byte MAC; 16-byte MACs in S16 mode). */
#define OTA_PLAIN_MAX 223

/* Append one C-APDU (hex) to the ';'-separated list, after checking it. */
static int add_cmd(scp_cli *c, char **list, size_t *len, const uint8_t *apdu, size_t n,
                   const char *where)
{
    scp_apdu a;
    char hex[2 * SCP_APDU_SHORT_MAX + 1];
    char *p;
    if (scp_apdu_parse(apdu, n, &a) != SCP_OK || a.extended || a.lc > OTA_PLAIN_MAX)
        return scp_cli_fail(c, SCP_EXIT_USAGE,
                            "%s: not a short C-APDU with at most %d data bytes", where,
                            OTA_PLAIN_MAX);
    if (scp_hex_encode(apdu, n, hex, sizeof(hex)) != SCP_OK)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "%s: too long", where);
    p = realloc(*list, *len + strlen(hex) + 2);
    if (!p)
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "out of memory");
    *list = p;
    if (*len)
        p[(*len)++] = ';';
    memcpy(p + *len, hex, strlen(hex) + 1);
    *len += strlen(hex);
    return SCP_EXIT_OK;
}

/* A file of plain C-APDUs in hex, one a line ('#' comments). */
static int read_script(scp_cli *c, const char *path, char **list, size_t *len, int *n)
{
    char line[1024], where[300];
    uint8_t apdu[SCP_APDU_SHORT_MAX + 4];
    size_t al;
    int lineno = 0, rc = SCP_EXIT_OK;
    FILE *f = fopen(path, "r");
    if (!f)
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "%s: %s", path, strerror(errno));
    while (rc == SCP_EXIT_OK && fgets(line, sizeof(line), f)) {
        lineno++;
        line[strcspn(line, "#\r\n")] = 0;
        if (strspn(line, " \t") == strlen(line))
            continue;
        snprintf(where, sizeof(where), "%.256s:%d", path, lineno);
        if (scp_hex_decode(line, apdu, sizeof(apdu), &al) != SCP_OK)
            rc = scp_cli_fail(c, SCP_EXIT_USAGE, "%s: not hex", where);
        else if (++*n > 64)
            rc = scp_cli_fail(c, SCP_EXIT_USAGE, "%s: at most 64 commands", where);
        else
            rc = add_cmd(c, list, len, apdu, al, where);
    }
    fclose(f);
    if (rc == SCP_EXIT_OK && *n == 0)
        rc = scp_cli_fail(c, SCP_EXIT_USAGE, "%s: no commands", path);
    return rc;
}

static int create(scp_cli *c, ota_reg *r)
{
    const char *name = scp_cli_take(c, "--name"), *target = scp_cli_take(c, "--target");
    const char *script = scp_cli_take(c, "--script"), *app = scp_cli_take(c, "--app");
    const char *nm = scp_cli_take(c, "--new-master"), *nkdf = scp_cli_take(c, "--new-kdf");
    const char *nkvn = scp_cli_take(c, "--new-kvn"), *pd;
    int rotate = scp_cli_flag(c, "--rotate-keys"), action, n = 0, jobs = 0, rc = SCP_EXIT_OK;
    char *list = NULL, params[600];
    size_t len = 0;
    uint8_t aid[16];
    size_t aid_len;

    if (!name || !target)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "campaign create: --name N --target T required");
    if (rotate) {
        ota_keyref k;
        int kvn = nkvn ? atoi(nkvn) : 0;
        if ((rc = scp_ota_keyref(c, nm, nkdf, kvn, &k)) != SCP_EXIT_OK)
            return rc;
        action = OTA_ACT_ROTATE;
        snprintf(params, sizeof(params), "%s|%s|%d", k.master, k.kdf, k.kvn);
    } else {
        action = script ? OTA_ACT_SCRIPT : OTA_ACT_PUTDATA;
        if (script) {
            if (!app)
                return scp_cli_fail(c, SCP_EXIT_USAGE, "campaign create --script FILE --app AID");
            rc = read_script(c, script, &list, &len, &n);
        } else {
            app = SCP_CARD_STORE_AID;
            while (rc == SCP_EXIT_OK && (pd = scp_cli_take(c, "--put-data")) != NULL) {
                uint8_t cmd[5 + 128];
                size_t dl;
                unsigned tag;
                const char *eq = strchr(pd, '=');
                if (!eq || sscanf(pd, "%4x=", &tag) != 1 || eq - pd != 4 || tag == 0 ||
                    tag == 0xFFFF || scp_hex_decode(eq + 1, cmd + 5, 128, &dl) != SCP_OK ||
                    dl == 0) {
                    rc = scp_cli_fail(c, SCP_EXIT_USAGE,
                                      "--put-data TAG=HEX (TAG 4 hex digits, 1..128 bytes)");
                    break;
                }
                cmd[0] = 0x80; /* PUT DATA to the store application */
                cmd[1] = 0xDA;
                cmd[2] = (uint8_t)(tag >> 8);
                cmd[3] = (uint8_t)tag;
                cmd[4] = (uint8_t)dl;
                rc = add_cmd(c, &list, &len, cmd, 5 + dl, "--put-data");
                n++;
            }
            if (rc == SCP_EXIT_OK && n == 0)
                rc = scp_cli_fail(c, SCP_EXIT_USAGE,
                                  "campaign create: --rotate-keys, --script FILE --app AID or "
                                  "--put-data TAG=HEX");
        }
        if (rc == SCP_EXIT_OK && (scp_hex_decode(app, aid, sizeof(aid), &aid_len) != SCP_OK ||
                                  aid_len < 5))
            rc = scp_cli_fail(c, SCP_EXIT_USAGE, "--app: an AID of 5..16 bytes in hex");
        if (rc != SCP_EXIT_OK) {
            free(list);
            return rc;
        }
    }
    if ((rc = scp_cli_no_more(c, 1)) != SCP_EXIT_OK) {
        free(list);
        return rc;
    }
    if (action != OTA_ACT_ROTATE) {
        char *p = malloc(strlen(app) + len + 2);
        if (!p) {
            free(list);
            return scp_cli_fail(c, SCP_EXIT_LOCAL, "out of memory");
        }
        sprintf(p, "%s|%s", app, list);
        free(list);
        list = p;
    }
    rc = ota_reg_campaign_create(r, name, action, action == OTA_ACT_ROTATE ? params : list,
                                 target, &jobs);
    free(list);
    if (rc == SCP_E_STATE)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "campaign %s exists already", name);
    if (rc != SCP_OK)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "campaign create: bad target \"%s\" or %s", target,
                            ota_reg_errmsg(r));
    json_object_object_add(c->doc, "name", json_object_new_string(name));
    json_object_object_add(c->doc, "jobs", json_object_new_int(jobs));
    if (!c->o.json)
        printf("campaign %s: %d device%s\n", name, jobs, jobs == 1 ? "" : "s");
    return SCP_EXIT_OK;
}

static void counts_json(scp_cli *c, const ota_counts *k)
{
    json_object_object_add(c->doc, "state", json_object_new_string(k->state));
    json_object_object_add(c->doc, "action", json_object_new_string(k->action));
    json_object_object_add(c->doc, "total", json_object_new_int(k->total));
    json_object_object_add(c->doc, "pending", json_object_new_int(k->pending));
    json_object_object_add(c->doc, "running", json_object_new_int(k->running));
    json_object_object_add(c->doc, "done", json_object_new_int(k->done));
    json_object_object_add(c->doc, "failed", json_object_new_int(k->failed));
    json_object_object_add(c->doc, "cancelled", json_object_new_int(k->cancelled));
}

/* Registry text (device ids, reasons) is untrusted: no control bytes
 * (terminal escapes) reach a terminal. */
static const char *tty_safe(const char *s, char *out, size_t size)
{
    size_t k = 0;
    for (; s && *s && k + 1 < size; s++)
        out[k++] = ((unsigned char)*s < 0x20 || *s == 0x7F) ? '?' : *s;
    out[k] = 0;
    return out;
}

static void job_row(void *arg, const char *dev, const char *state, int step, int attempts,
                    const char *reason)
{
    scp_cli *c = arg;
    json_object *arr, *j = json_object_new_object();
    if (!json_object_object_get_ex(c->doc, "devices", &arr)) {
        arr = json_object_new_array();
        json_object_object_add(c->doc, "devices", arr);
    }
    json_object_object_add(j, "id", json_object_new_string(dev));
    json_object_object_add(j, "state", json_object_new_string(state));
    json_object_object_add(j, "step", json_object_new_int(step));
    json_object_object_add(j, "attempts", json_object_new_int(attempts));
    json_object_object_add(j, "reason", json_object_new_string(reason));
    json_object_array_add(arr, j);
    if (!c->o.json) {
        char d[OTA_STATUS_TEXT], r[OTA_STATUS_TEXT];
        printf("  %-24s %-9s step %-3d attempts %-3d %s\n", tty_safe(dev, d, sizeof(d)), state,
               step, attempts, tty_safe(reason, r, sizeof(r)));
    }
}

/* The status page's data (src/ota/status.c, the same builder the admin
 * listener's /campaign/NAME uses), then every job of the campaign. */
static int show(scp_cli *c, ota_reg *r, const char *name)
{
    json_object *st;
    int rc = ota_status_build(r, name, &st);
    if (rc == SCP_E_NOT_FOUND)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "no campaign %s", name);
    if (rc != SCP_OK)
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "registry: %s", ota_reg_errmsg(r));
    json_object_object_foreach(st, key, val)
        json_object_object_add(c->doc, key, json_object_get(val));
    json_object_put(st);
    if (!c->o.json) {
        json_object *f;
        json_object_object_get_ex(c->doc, "failures", &f);
        printf("campaign %s (%s, %s): %d devices: %d done, %d failed, %d pending, %d running, "
               "%d cancelled\n",
               name, json_object_get_string(json_object_object_get(c->doc, "action")),
               json_object_get_string(json_object_object_get(c->doc, "state")),
               json_object_get_int(json_object_object_get(c->doc, "total")),
               json_object_get_int(json_object_object_get(c->doc, "done")),
               json_object_get_int(json_object_object_get(c->doc, "failed")),
               json_object_get_int(json_object_object_get(c->doc, "pending")),
               json_object_get_int(json_object_object_get(c->doc, "running")),
               json_object_get_int(json_object_object_get(c->doc, "cancelled")));
        for (size_t i = 0; f && i < json_object_array_length(f); i++) {
            json_object *x = json_object_array_get_idx(f, i);
            if (i == 0)
                printf("latest failures:\n");
            char d[OTA_STATUS_TEXT], rs[OTA_STATUS_TEXT];
            printf("  %s %-24s %-8s %s\n",
                   json_object_get_string(json_object_object_get(x, "time")),
                   tty_safe(json_object_get_string(json_object_object_get(x, "device")), d,
                            sizeof(d)),
                   json_object_get_string(json_object_object_get(x, "state")),
                   tty_safe(json_object_get_string(json_object_object_get(x, "reason")), rs,
                            sizeof(rs)));
        }
        printf("jobs:\n");
    }
    if (ota_reg_campaign_jobs(r, name, job_row, c) != SCP_OK)
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "registry: %s", ota_reg_errmsg(r));
    return SCP_EXIT_OK;
}

static void bar(const char *name, const ota_counts *k)
{
    int w = 30, fill = k->total ? (k->done + k->failed + k->cancelled) * w / k->total : w;
    fprintf(stderr, "\r%s [", name);
    for (int i = 0; i < w; i++)
        fputc(i < fill ? '#' : '.', stderr);
    fprintf(stderr, "] %d/%d done, %d failed, %d running ", k->done, k->total, k->failed,
            k->running);
    fflush(stderr);
}

static int wait_done(scp_cli *c, ota_reg *r, const char *name)
{
    const char *t = scp_cli_take(c, "--timeout");
    long timeout = t ? atol(t) : 600;
    int tty = isatty(2);
    time_t end = time(NULL) + (timeout > 0 ? timeout : 600);
    ota_counts k;
    for (;;) {
        if (ota_reg_campaign_counts(r, name, &k) != SCP_OK)
            return scp_cli_fail(c, SCP_EXIT_USAGE, "no campaign %s", name);
        if (tty)
            bar(name, &k);
        if (k.pending + k.running == 0)
            break;
        if (time(NULL) >= end) {
            if (tty)
                fputc('\n', stderr);
            counts_json(c, &k);
            return scp_cli_fail(c, SCP_EXIT_CARD, "campaign %s: not finished after %ld s", name,
                                timeout);
        }
        usleep(200000);
    }
    if (tty)
        fputc('\n', stderr);
    counts_json(c, &k);
    if (!c->o.json)
        printf("campaign %s finished: %d done, %d failed, %d cancelled\n", name, k.done, k.failed,
               k.cancelled);
    return k.failed || k.cancelled ? SCP_EXIT_REFUSED : SCP_EXIT_OK;
}

int scp_ota_campaign(scp_cli *c, const char *dir)
{
    const char *sub = c->o.argc > 1 ? c->o.argv[1] : "";
    const char *name;
    ota_reg *r;
    int rc;
    if (c->o.argc > 1) {
        memmove(c->o.argv, c->o.argv + 1, (size_t)(c->o.argc - 1) * sizeof(c->o.argv[0]));
        c->o.argc--;
    }
    if ((rc = scp_ota_open_reg(c, dir, &r)) != SCP_EXIT_OK)
        return rc;
    name = c->o.argc > 1 ? c->o.argv[1] : NULL;
    if (strcmp(sub, "create") == 0) {
        rc = create(c, r);
    } else if (!name) {
        rc = scp_cli_fail(c, SCP_EXIT_USAGE,
                          "ota campaign create | show | wait | pause | resume | cancel NAME");
    } else if (strcmp(sub, "show") == 0) {
        rc = scp_cli_no_more(c, 2);
        if (rc == SCP_EXIT_OK)
            rc = show(c, r, name);
    } else if (strcmp(sub, "wait") == 0) {
        rc = wait_done(c, r, name);
    } else if (strcmp(sub, "pause") == 0 || strcmp(sub, "resume") == 0 ||
               strcmp(sub, "cancel") == 0) {
        const char *to = sub[0] == 'p' ? "paused" : sub[0] == 'r' ? "active" : "cancelled";
        rc = scp_cli_no_more(c, 2);
        if (rc == SCP_EXIT_OK && ota_reg_campaign_state(r, name, to) != SCP_OK)
            rc = scp_cli_fail(c, SCP_EXIT_USAGE, "no campaign %s (or it is cancelled)", name);
        if (rc == SCP_EXIT_OK) {
            json_object_object_add(c->doc, "state", json_object_new_string(to));
            if (!c->o.json)
                printf("campaign %s: %s\n", name, to);
        }
    } else {
        rc = scp_cli_fail(c, SCP_EXIT_USAGE, "ota campaign: unknown command %s", sub);
    }
    ota_reg_close(r);
    return rc;
}
#endif /* SCP_HAVE_OTA */
