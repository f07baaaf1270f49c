/* scpkit audit: the keystore's audit log (issue 6).
 *   audit verify [--dir DIR]          check the hash chain and the token's
 *                                     HMAC checkpoint; name the first bad record
 *   audit show [--dir DIR] [--last N] print records (never key material)
 *   audit checkpoint [--dir DIR]      copy the audit head into the token
 * The user PIN (SCPKIT_USER_PIN or a prompt) is needed: the checkpoint key
 * lives in the token. */
/* Built only with the keystore library (src/keys: SQLite, p11-kit header). */
#ifdef SCP_HAVE_KEYS
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "keystore_cli.h"
#include "scpkit/keystore.h"

static int open_ks(scp_cli *c, scp_keystore **ks)
{
    char pin[128];
    const char *dir = scp_cli_take(c, "--dir");
    scp_ks_config cfg = {dir ? dir : c->o.keystore, scp_cli_take(c, "--pkcs11-module"),
                         scp_cli_take(c, "--token"), NULL};
    int rc = scp_keystore_pin("SCPKIT_USER_PIN", "keystore user PIN: ", pin, sizeof(pin));
    if (rc != SCP_OK)
        return scp_cli_fail(c, SCP_EXIT_USAGE,
                            "no user PIN: set SCPKIT_USER_PIN or run on a terminal");
    rc = scp_keystore_open(&cfg, pin, ks);
    scp_wipe(pin, sizeof(pin));
    return rc == SCP_OK ? SCP_EXIT_OK : scp_ks_cli_fail(c, rc, "opening the keystore");
}

static int verify(scp_cli *c, scp_keystore *ks)
{
    scp_ks_verify v;
    int rc = scp_keystore_verify(ks, &v);
    if (c->o.json) {
        json_object_object_add(c->doc, "records", json_object_new_int64((int64_t)v.records));
        json_object_object_add(c->doc, "recovered", json_object_new_int64((int64_t)v.recovered));
        json_object_object_add(c->doc, "keys", json_object_new_int64((int64_t)v.keys));
        json_object_object_add(c->doc, "checkpoint",
                               json_object_new_int64((int64_t)v.checkpoint));
        json_object_object_add(c->doc, "intact", json_object_new_boolean(rc == SCP_OK));
        if (rc == SCP_E_CORRUPT)
            json_object_object_add(c->doc, "bad_record",
                                   json_object_new_int64((int64_t)v.bad_seq));
    }
    if (rc == SCP_E_CORRUPT)
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "audit log TAMPERED: %s", v.why);
    if (rc != SCP_OK)
        return scp_ks_cli_fail(c, rc, "audit verify");
    if (!c->o.json) {
        printf("audit log intact: %llu records, hash chain, head and token checkpoint (record "
               "%llu) verified; %llu keys match the token, every table matches the log\n",
               (unsigned long long)v.records, (unsigned long long)v.checkpoint,
               (unsigned long long)v.keys);
        if (v.recovered > 0)
            printf("interrupted, recovered: %llu operation(s) cut short by a crash were completed "
                   "or undone (records marked :recovered, :rolled-back, reconcile:); not "
                   "tampering\n",
                   (unsigned long long)v.recovered);
    }
    return SCP_EXIT_OK;
}

static void show_one(void *arg, const scp_ks_audit_rec *r)
{
    scp_cli *c = arg;
    char when[32];
    time_t t = (time_t)r->time;
    struct tm tm;
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
    if (c->o.json) {
        json_object *a, *j = json_object_new_object();
        if (!json_object_object_get_ex(c->doc, "records", &a)) {
            a = json_object_new_array();
            json_object_object_add(c->doc, "records", a);
        }
        json_object_object_add(j, "seq", json_object_new_int64((int64_t)r->seq));
        json_object_object_add(j, "time", json_object_new_string(when));
        json_object_object_add(j, "actor", json_object_new_string(r->actor));
        json_object_object_add(j, "op", json_object_new_string(r->op));
        json_object_object_add(j, "label", json_object_new_string(r->label));
        json_object_object_add(j, "version", json_object_new_int64(r->version));
        json_object_object_add(j, "kcv", json_object_new_string(r->kcv));
        json_object_object_add(j, "card", json_object_new_string(r->card));
        json_object_object_add(j, "result", json_object_new_string(scp_strerror(r->result)));
        json_object_array_add(a, j);
        return;
    }
    printf("%6llu %s %-10s %-28s %s:%u kcv=%s card=%s %s\n", (unsigned long long)r->seq, when,
           r->actor, r->op, r->label, (unsigned)r->version, r->kcv[0] ? r->kcv : "-",
           r->card[0] ? r->card : "-", r->result == 0 ? "ok" : scp_strerror(r->result));
}

static int show(scp_cli *c, scp_keystore *ks, int last)
{
    int rc = scp_keystore_audit_each(ks, (uint64_t)last, show_one, c);
    return rc == SCP_OK ? SCP_EXIT_OK : scp_ks_cli_fail(c, rc, "audit show");
}

static int checkpoint(scp_cli *c, scp_keystore *ks)
{
    int rc = scp_keystore_checkpoint(ks);
    if (rc != SCP_OK)
        return scp_ks_cli_fail(c, rc, "audit checkpoint");
    if (!c->o.json)
        printf("audit head copied into the token\n");
    return SCP_EXIT_OK;
}

int scp_cli_audit(int argc, char **argv)
{
    scp_cli c;
    scp_keystore *ks = NULL;
    int rc = scp_cli_begin(&c, argc, argv);
    const char *sub = rc == SCP_EXIT_OK && c.o.argc > 1 ? c.o.argv[1] : "";
    int is_verify = strcmp(sub, "verify") == 0, is_show = strcmp(sub, "show") == 0;
    int is_ckpt = strcmp(sub, "checkpoint") == 0;
    if (rc == SCP_EXIT_OK && !is_verify && !is_show && !is_ckpt) {
        int help = strcmp(sub, "--help") == 0;
        fputs("usage: scpkit audit verify|show|checkpoint [--dir DIR] [--last N] [--json]\n",
              help ? stdout : stderr);
        return scp_cli_end(&c, help ? SCP_EXIT_OK : SCP_EXIT_USAGE);
    }
    const char *lt = rc == SCP_EXIT_OK ? scp_cli_take(&c, "--last") : NULL;
    int last = 0;
    if (rc == SCP_EXIT_OK && lt != NULL)
        rc = scp_cli_number(&c, "--last", lt, 1000000, &last);
    if (rc == SCP_EXIT_OK)
        rc = open_ks(&c, &ks);
    if (rc == SCP_EXIT_OK)
        rc = scp_cli_no_more(&c, 2);
    if (rc == SCP_EXIT_OK)
        rc = is_verify ? verify(&c, ks) : is_ckpt ? checkpoint(&c, ks) : show(&c, ks, last);
    scp_keystore_close(ks);
    return scp_cli_end(&c, rc);
}

#endif /* SCP_HAVE_KEYS */
