/* scpkit ota: the OTA admin server and its fleet registry (issue 14).
 *   init --dir DIR --keystore KS (--self-signed HOST | --cert F --key F)
 *        [--db postgresql://...]   (default: SQLite in DIR/registry.db; the
 *        choice is kept in DIR/ota.json, printed with its password redacted)
 *   device add --dir DIR --id ID --master L:V --kdf S --kvn N [--tag T]...
 *   device import --dir DIR FILE.csv        id,master,kdf,kvn,tags (tags ';'-separated)
 *   device list --dir DIR [--json]
 *   device psk --dir DIR --id ID --psk-master L:V --out FILE
 *   serve --dir DIR --listen ADDR:PORT [--admin-listen ADDR:PORT] [--log FILE]
 *         [--psk-listen ADDR:PORT --psk-master L:V] [--client-ca FILE]
 *         [--max-body N] [--max-scripts N] [--step-timeout MS] [--lease MS] [--io-timeout S]
 *   campaign create|show|wait|pause|resume|cancel ... (cmd_ota_campaign.c)
 * The keystore PIN comes from SCPKIT_USER_PIN or a prompt, never argv. */
#ifdef SCP_HAVE_OTA
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_ota.h"

const char *scp_ota_dir(scp_cli *c)
{
    return scp_cli_take(c, "--dir");
}

int scp_ota_open_reg(scp_cli *c, const char *dir, ota_reg **r)
{
    int rc;
    if (!dir)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "ota: --dir DIR is required");
    rc = ota_reg_open(dir, 0, r);
    if (rc == SCP_E_NOT_FOUND)
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "ota: no registry in %s (scpkit ota init): %s",
                            dir, ota_reg_open_error());
    if (rc != SCP_OK)
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "ota: cannot open the registry of %s: %s", dir,
                            ota_reg_open_error());
    return SCP_EXIT_OK;
}

/* DIR/ota.json, written new: temporary file, fsync, rename. */
static int write_config(const char *dir, const char *ks_abs, const char *db)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    json_object *j = json_object_new_object();
    const char *text;
    int fd, ok;
    json_object_object_add(j, "keystore", json_object_new_string(ks_abs));
    if (db && *db)
        json_object_object_add(j, "db", json_object_new_string(db));
    text = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY);
    snprintf(path, sizeof(path), "%s/ota.json", dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ok = fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text) && fsync(fd) == 0;
    if (fd >= 0)
        ok = close(fd) == 0 && ok;
    ok = ok && rename(tmp, path) == 0;
    json_object_put(j);
    return ok ? SCP_OK : SCP_E_IO;
}

int scp_ota_keystore_dir(const char *dir, char *out, size_t size)
{
    char path[PATH_MAX];
    json_object *j, *v;
    snprintf(path, sizeof(path), "%s/ota.json", dir);
    j = json_object_from_file(path);
    if (!j)
        return SCP_E_NOT_FOUND;
    if (!json_object_object_get_ex(j, "keystore", &v) || !json_object_is_type(v, json_type_string) ||
        (size_t)json_object_get_string_len(v) >= size) {
        json_object_put(j);
        return SCP_E_FORMAT;
    }
    snprintf(out, size, "%s", json_object_get_string(v));
    json_object_put(j);
    return SCP_OK;
}

static int ota_init(scp_cli *c, const char *dir)
{
    const char *host = scp_cli_take(c, "--self-signed");
    const char *cert = scp_cli_take(c, "--cert"), *key = c->o.key_hex; /* --key: common option */
    const char *db = scp_cli_take(c, "--db");
    char where[300];
    char tls[PATH_MAX], cp[PATH_MAX + 16], kp[PATH_MAX + 16], ks[PATH_MAX], err[PATH_MAX];
    struct stat st;
    ota_reg *r;
    int rc;

    if (!dir || !c->o.keystore || (!host && !(cert && key)))
        return scp_cli_fail(c, SCP_EXIT_USAGE,
                            "ota init --dir DIR --keystore KS (--self-signed HOST | --cert F "
                            "--key F) [--db postgresql://...]");
    if (!db)
        db = getenv("SCPKIT_OTA_DB"); /* the tests run the suite on each backend */
    if (db && strcmp(db, "sqlite") == 0)
        db = NULL;
    if ((rc = scp_cli_no_more(c, 1)) != SCP_EXIT_OK)
        return rc;
    if (!realpath(c->o.keystore, ks))
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "ota init: keystore %s: %s", c->o.keystore,
                            strerror(errno));
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "ota init: %s: %s", dir, strerror(errno));
    snprintf(cp, sizeof(cp), "%s/registry.db", dir);
    if (stat(cp, &st) == 0)
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "ota init: %s already holds a registry", dir);
    snprintf(cp, sizeof(cp), "%s/ota.json", dir);
    if (stat(cp, &st) == 0)
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "ota init: %s is already a server directory", dir);
    /* the database first: a wrong --db leaves no half-made directory
     * behind it (several server directories may share one database) */
    if (db) {
        if (ota_reg_open_db(dir, db, 1, &r) != SCP_OK) {
            ota_reg_redact(db, where, sizeof(where));
            return scp_cli_fail(c, SCP_EXIT_LOCAL, "ota init: registry %s: %s", where,
                                ota_reg_open_error());
        }
        ota_reg_close(r);
    }
    snprintf(tls, sizeof(tls), "%s/tls", dir);
    if (mkdir(tls, 0700) != 0 && errno != EEXIST)
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "ota init: %s: %s", tls, strerror(errno));
    snprintf(cp, sizeof(cp), "%s/cert.pem", tls);
    snprintf(kp, sizeof(kp), "%s/key.pem", tls);
    if (host) {
        if (ota_tls_selfsigned(host, cp, kp, err, sizeof(err)) != SCP_OK)
            return scp_cli_fail(c, SCP_EXIT_LOCAL, "ota init: %s", err);
    } else if (symlink(realpath(cert, err) ? err : cert, cp) != 0 ||
               symlink(realpath(key, err) ? err : key, kp) != 0) {
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "ota init: cannot link the certificate: %s",
                            strerror(errno));
    }
    if (write_config(dir, ks, db) != SCP_OK)
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "ota init: cannot write %s/ota.json", dir);
    if (ota_reg_open(dir, 1, &r) != SCP_OK)
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "ota init: cannot create the registry: %s",
                            ota_reg_open_error());
    snprintf(where, sizeof(where), "%s", ota_reg_where(r));
    json_object_object_add(c->doc, "registry", json_object_new_string(where));
    json_object_object_add(c->doc, "backend", json_object_new_string(ota_reg_backend(r)));
    ota_reg_close(r);
    snprintf(cp, sizeof(cp), "%s/cert.pem", tls);
    json_object_object_add(c->doc, "dir", json_object_new_string(dir));
    json_object_object_add(c->doc, "certificate", json_object_new_string(cp));
    if (!c->o.json)
        printf("OTA server directory %s: registry %s, config, TLS certificate %s%s\n", dir, where,
               cp, host ? " (self-signed, for a lab)" : "");
    return SCP_EXIT_OK;
}

/* master "L:V" (version required), kdf name, kvn 1..255. */
int scp_ota_keyref(scp_cli *c, const char *master, const char *kdf, int kvn, ota_keyref *k)
{
    char label[SCP_KS_LABEL_MAX + 1];
    uint32_t v;
    scp_div_scheme s;
    memset(k, 0, sizeof(*k));
    if (!master || scp_ks_parse_ref(master, label, &v) != SCP_OK || v == 0)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "master must be LABEL:VERSION (got %s)",
                            master ? master : "nothing");
    if (!kdf || scp_div_parse(kdf, &s) != SCP_OK || s == SCP_DIV_NONE)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "kdf: sp800-108, kdf3, emv or visa2 (got %s)",
                            kdf ? kdf : "nothing");
    if (kvn < 1 || kvn > 255)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "kvn: 1..255");
    snprintf(k->master, sizeof(k->master), "%s:%u", label, v);
    snprintf(k->kdf, sizeof(k->kdf), "%s", scp_div_name(s));
    k->kvn = kvn;
    return SCP_EXIT_OK;
}

static int device_add(scp_cli *c, ota_reg *r)
{
    const char *id = scp_cli_take(c, "--id");
    char tags[128] = "";
    const char *t;
    ota_keyref k;
    int rc;
    while ((t = scp_cli_take(c, "--tag")) != NULL) {
        if (strlen(tags) + strlen(t) + 2 > sizeof(tags) || strchr(t, ','))
            return scp_cli_fail(c, SCP_EXIT_USAGE, "--tag: too many or a comma in one");
        if (tags[0])
            strcat(tags, ",");
        strcat(tags, t);
    }
    if (!id)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "ota device add: --id ID is required");
    if ((rc = scp_ota_keyref(c, c->o.master, c->o.kdf, c->o.kvn, &k)) != SCP_EXIT_OK ||
        (rc = scp_cli_no_more(c, 1)) != SCP_EXIT_OK)
        return rc;
    if (ota_reg_device_add(r, id, &k, tags) != SCP_OK)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "ota device add: bad device id \"%s\" or %s", id,
                            ota_reg_errmsg(r));
    json_object_object_add(c->doc, "id", json_object_new_string(id));
    if (!c->o.json)
        printf("device %s: %s %s KVN %02X%s%s\n", id, k.master, k.kdf, k.kvn, tags[0] ? " tags " : "",
               tags);
    return SCP_EXIT_OK;
}

/* CSV: id,master,kdf,kvn[,tags] with tags ';'-separated; '#' comments and
 * a header line starting "id," skipped. All rows or none. */
static int device_import(scp_cli *c, ota_reg *r)
{
    const char *path = c->o.argc > 1 ? c->o.argv[1] : NULL;
    char line[512];
    FILE *f;
    int n = 0, lineno = 0, rc = SCP_EXIT_OK;
    if (!path || c->o.argc > 2)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "ota device import --dir DIR FILE.csv");
    if (!(f = fopen(path, "r")))
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "%s: %s", path, strerror(errno));
    if (ota_reg_begin(r) != SCP_OK) {
        fclose(f);
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "registry busy");
    }
    while (rc == SCP_EXIT_OK && fgets(line, sizeof(line), f)) {
        char *fld[5] = { 0 }, *p = line, *save = NULL;
        int nf = 0, kvn;
        ota_keyref k;
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            rc = scp_cli_fail(c, SCP_EXIT_USAGE, "%s:%d: line too long", path, lineno);
            break;
        }
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0] || line[0] == '#' || strncmp(line, "id,", 3) == 0)
            continue;
        for (char *tok = strtok_r(p, ",", &save); tok && nf < 5; tok = strtok_r(NULL, ",", &save))
            fld[nf++] = tok;
        if (nf < 4 || strtok_r(NULL, ",", &save)) {
            rc = scp_cli_fail(c, SCP_EXIT_USAGE, "%s:%d: want id,master,kdf,kvn[,tags]", path,
                              lineno);
            break;
        }
        kvn = atoi(fld[3]);
        if ((rc = scp_ota_keyref(c, fld[1], fld[2], kvn, &k)) != SCP_EXIT_OK) {
            fprintf(stderr, "scpkit: (%s:%d)\n", path, lineno);
            break;
        }
        for (char *q = fld[4]; q && *q; q++)
            if (*q == ';')
                *q = ',';
        if (ota_reg_device_add(r, fld[0], &k, fld[4] ? fld[4] : "") != SCP_OK) {
            rc = scp_cli_fail(c, SCP_EXIT_USAGE, "%s:%d: bad device id \"%s\"", path, lineno,
                              fld[0]);
            break;
        }
        n++;
    }
    fclose(f);
    if (rc != SCP_EXIT_OK) {
        if (ota_reg_rollback(r) != SCP_OK)
            fprintf(stderr, "scpkit: rollback failed\n");
        return rc;
    }
    if (ota_reg_commit(r) != SCP_OK)
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "import not committed: %s", ota_reg_errmsg(r));
    json_object_object_add(c->doc, "imported", json_object_new_int(n));
    if (!c->o.json)
        printf("%d devices imported from %s\n", n, path);
    return SCP_EXIT_OK;
}

static void list_one(void *arg, const ota_device *d)
{
    scp_cli *c = arg;
    json_object *j = json_object_new_object(), *arr;
    json_object_object_add(j, "id", json_object_new_string(d->id));
    json_object_object_add(j, "master", json_object_new_string(d->cur.master));
    json_object_object_add(j, "kdf", json_object_new_string(d->cur.kdf));
    json_object_object_add(j, "kvn", json_object_new_int(d->cur.kvn));
    json_object_object_add(j, "next_kvn", json_object_new_int(d->next.kvn));
    json_object_object_add(j, "prev_kvn", json_object_new_int(d->prev.kvn));
    json_object_object_add(j, "tags", json_object_new_string(d->tags));
    if (!json_object_object_get_ex(c->doc, "devices", &arr)) {
        arr = json_object_new_array();
        json_object_object_add(c->doc, "devices", arr);
    }
    json_object_array_add(arr, j);
    if (!c->o.json)
        printf("%-24s %-16s %-9s KVN %02X%s%s  %s\n", d->id, d->cur.master, d->cur.kdf,
               d->cur.kvn, d->next.kvn ? " (rotation in flight)" : "",
               d->prev.kvn ? " (old set to delete)" : "", d->tags);
}

/* `ota device psk --id ID --psk-master L:V --out FILE`: the device's TLS
 * PSK (ota_tls_psk: derived in the token, the same the server derives at
 * each handshake), written in hex to FILE (new, 0600, fsync, rename) for
 * provisioning the device. Never printed; nothing is kept on the server. */
static int device_psk(scp_cli *c, ota_reg *r, const char *dir)
{
    const char *id = scp_cli_take(c, "--id"), *master = scp_cli_take(c, "--psk-master");
    const char *out = scp_cli_take(c, "--out");
    char ks_dir[PATH_MAX], pin[256], hex[33], tmp[PATH_MAX + 8];
    scp_ks_config kc = { 0 };
    scp_keystore *ks = NULL;
    ota_device d;
    uint8_t psk[16];
    int rc, fd, ok;
    if (!id || !master || !out)
        return scp_cli_fail(c, SCP_EXIT_USAGE,
                            "ota device psk --dir DIR --id ID --psk-master L:V --out FILE");
    if ((rc = scp_cli_no_more(c, 1)) != SCP_EXIT_OK)
        return rc;
    if (ota_reg_device_get(r, id, &d) != SCP_OK)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "no device %s in the registry", id);
    if (c->o.keystore)
        snprintf(ks_dir, sizeof(ks_dir), "%s", c->o.keystore);
    else if (scp_ota_keystore_dir(dir, ks_dir, sizeof(ks_dir)) != SCP_OK)
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "no %s/ota.json (scpkit ota init)", dir);
    if (scp_keystore_pin("SCPKIT_USER_PIN", "Keystore user PIN: ", pin, sizeof(pin)) != SCP_OK)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "no keystore PIN (SCPKIT_USER_PIN)");
    kc.dir = ks_dir;
    rc = scp_keystore_open(&kc, pin, &ks);
    scp_wipe(pin, sizeof(pin));
    if (rc != SCP_OK)
        return scp_cli_fail_rc(c, rc, "opening the keystore");
    rc = ota_tls_psk(ks, master, id, psk);
    scp_keystore_close(ks);
    if (rc != SCP_OK)
        return scp_cli_fail_rc(c, rc, "the PSK master (an active AES key LABEL:VERSION)");
    ok = scp_hex_encode(psk, sizeof(psk), hex, sizeof(hex)) == SCP_OK;
    scp_wipe(psk, sizeof(psk));
    snprintf(tmp, sizeof(tmp), "%s.tmp", out);
    unlink(tmp);
    fd = ok ? open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600) : -1;
    ok = fd >= 0 && write(fd, hex, 32) == 32 && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
    if (fd >= 0)
        ok = close(fd) == 0 && ok;
    scp_wipe(hex, sizeof(hex));
    if (!ok || rename(tmp, out) != 0) {
        unlink(tmp);
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "cannot write %s", out);
    }
    json_object_object_add(c->doc, "id", json_object_new_string(id));
    json_object_object_add(c->doc, "psk_file", json_object_new_string(out));
    if (!c->o.json)
        printf("device %s: TLS PSK written to %s (0600)\n", id, out);
    return SCP_EXIT_OK;
}

static int device_cmd(scp_cli *c, const char *dir)
{
    const char *sub = c->o.argc > 1 ? c->o.argv[1] : "";
    ota_reg *r;
    int rc;
    if (c->o.argc > 1) {
        memmove(c->o.argv, c->o.argv + 1, (size_t)(c->o.argc - 1) * sizeof(c->o.argv[0]));
        c->o.argc--;
    }
    if ((rc = scp_ota_open_reg(c, dir, &r)) != SCP_EXIT_OK)
        return rc;
    if (strcmp(sub, "add") == 0)
        rc = device_add(c, r);
    else if (strcmp(sub, "import") == 0)
        rc = device_import(c, r);
    else if (strcmp(sub, "psk") == 0)
        rc = device_psk(c, r, dir);
    else if (strcmp(sub, "list") == 0)
        rc = ota_reg_device_each(r, list_one, c) == SCP_OK
                 ? SCP_EXIT_OK
                 : scp_cli_fail(c, SCP_EXIT_LOCAL, "registry: %s", ota_reg_errmsg(r));
    else
        rc = scp_cli_fail(c, SCP_EXIT_USAGE, "ota device add | import | list | psk");
    ota_reg_close(r);
    return rc;
}

static int num_opt(scp_cli *c, const char *name, long lo, long hi, long *v)
{
    const char *t = scp_cli_take(c, name);
    char *end;
    long x;
    if (!t)
        return SCP_EXIT_OK;
    x = strtol(t, &end, 10);
    if (*end || x < lo || x > hi)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "%s: %ld..%ld", name, lo, hi);
    *v = x;
    return SCP_EXIT_OK;
}

static int serve(scp_cli *c, const char *dir)
{
    ota_serve_opts o = { 0 };
    char ks[PATH_MAX], err[512];
    long mb, ms, st, ls, io;
    int rc;
    ota_limits_default(&o.lim);
    mb = (long)o.lim.max_body;
    ms = o.lim.max_scripts;
    st = o.lim.step_timeout_ms;
    ls = o.lim.lease_ms;
    io = o.lim.io_timeout_s;
    o.dir = dir;
    o.listen = scp_cli_take(c, "--listen");
    o.admin_listen = scp_cli_take(c, "--admin-listen");
    o.log_path = scp_cli_take(c, "--log");
    o.psk_listen = scp_cli_take(c, "--psk-listen");
    o.psk_master = scp_cli_take(c, "--psk-master");
    o.client_ca = scp_cli_take(c, "--client-ca");
    if ((rc = num_opt(c, "--max-body", 256, 1 << 20, &mb)) != SCP_EXIT_OK ||
        (rc = num_opt(c, "--max-scripts", 4, 1000, &ms)) != SCP_EXIT_OK ||
        (rc = num_opt(c, "--step-timeout", 100, 600000, &st)) != SCP_EXIT_OK ||
        (rc = num_opt(c, "--lease", 500, 3600000, &ls)) != SCP_EXIT_OK ||
        (rc = num_opt(c, "--io-timeout", 1, 600, &io)) != SCP_EXIT_OK ||
        (rc = scp_cli_no_more(c, 1)) != SCP_EXIT_OK)
        return rc;
    o.lim.max_body = (size_t)mb;
    o.lim.max_scripts = (int)ms;
    o.lim.step_timeout_ms = (int)st;
    o.lim.lease_ms = (int)ls;
    o.lim.io_timeout_s = (int)io;
    if (o.lim.lease_ms <= o.lim.step_timeout_ms)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "--lease must be longer than --step-timeout");
    if (!dir || !o.listen)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "ota serve --dir DIR --listen ADDR:PORT");
    if (!o.psk_listen != !o.psk_master)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "--psk-listen ADDR:PORT and --psk-master L:V go "
                                               "together");
    if (c->o.keystore) {
        snprintf(ks, sizeof(ks), "%s", c->o.keystore);
    } else if (scp_ota_keystore_dir(dir, ks, sizeof(ks)) != SCP_OK) {
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "ota serve: no %s/ota.json (scpkit ota init)", dir);
    }
    o.keystore = ks;
    rc = ota_serve(&o, err, sizeof(err));
    if (rc != SCP_OK)
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "ota serve: %s", err);
    return SCP_EXIT_OK;
}

static const char ota_help[] =
    "usage: scpkit ota <command> --dir DIR ...\n"
    "  init --dir DIR --keystore KS (--self-signed HOST | --cert FILE --key FILE)\n"
    "        [--db postgresql://USER@HOST:PORT/DB]   (default: SQLite, DIR/registry.db;\n"
    "        several server directories may name one PostgreSQL database)\n"
    "  device add --dir DIR --id ID --master L:V --kdf S --kvn N [--tag T]...\n"
    "  device import --dir DIR FILE.csv      (id,master,kdf,kvn[,tag;tag])\n"
    "  device list --dir DIR [--json]\n"
    "  device psk --dir DIR --id ID --psk-master L:V --out FILE   (the device's TLS PSK)\n"
    "  serve --dir DIR --listen ADDR:PORT [--admin-listen ADDR:PORT] [--log FILE]\n"
    "        [--max-body BYTES] [--max-scripts N] [--step-timeout MS] [--lease MS]\n"
    "        [--io-timeout S] [--psk-listen ADDR:PORT --psk-master L:V]\n"
    "        [--client-ca FILE]   (client certificates required, CN = device id)\n"
    "  campaign create --dir DIR --name N --target all|tag:T|list:ID,ID\n"
    "        (--rotate-keys --new-master L:V --new-kdf S --new-kvn N\n"
    "         | --script FILE --app AID | --put-data TAG=HEX [--put-data ...])\n"
    "  campaign show --dir DIR NAME [--json] | wait --dir DIR NAME [--timeout S]\n"
    "  campaign pause | resume | cancel --dir DIR NAME\n"
    "The keystore user PIN comes from SCPKIT_USER_PIN (or a prompt).\n";

int scp_cli_ota(int argc, char **argv)
{
    scp_cli c;
    const char *sub, *dir;
    int rc;
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(ota_help, stdout);
        return SCP_EXIT_OK;
    }
    rc = scp_cli_begin(&c, argc, argv);
    if (rc != SCP_EXIT_OK)
        return scp_cli_end(&c, rc);
    sub = c.o.argc > 1 ? c.o.argv[1] : "";
    if (c.o.argc > 1) {
        memmove(c.o.argv, c.o.argv + 1, (size_t)(c.o.argc - 1) * sizeof(c.o.argv[0]));
        c.o.argc--;
    }
    dir = scp_ota_dir(&c);
    if (strcmp(sub, "init") == 0)
        rc = ota_init(&c, dir);
    else if (strcmp(sub, "device") == 0)
        rc = device_cmd(&c, dir);
    else if (strcmp(sub, "serve") == 0)
        rc = serve(&c, dir);
    else if (strcmp(sub, "campaign") == 0)
        rc = scp_ota_campaign(&c, dir);
    else
        rc = scp_cli_fail(&c, SCP_EXIT_USAGE, "ota: init | device | serve | campaign (see scpkit ota --help)");
    return scp_cli_end(&c, rc);
}
#endif /* SCP_HAVE_OTA */
