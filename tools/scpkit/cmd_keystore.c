/* scpkit keystore: the HSM keystore from the command line (issue 6).
 *   init [--pkcs11-module PATH --token LABEL]   a private SoftHSM2 token
 *   generate --label L --type T [--version V]    a master key in the token
 *   list | cards                                 metadata, no key material
 *   state L[:V] STATE --reason TEXT              SP 800-57 lifecycle
 *   activate L:V --reason TEXT (--share-file F ... | --custodian A --custodian B)
 *   custodian-add NAME                           enrol a custodian PIN
 *   derive --master L[:V] --kdf S --kdd HEX      card keys' KCVs only
 *   split --master L[:V] --type T --scheme shamir -m M -n N | --scheme xor -n N
 *         [--out-dir DIR]                        a ceremony key and its shares
 *   combine --master L[:V] [--kcv HEX] [--share-file F ...]
 *   rotate --card DIR|-r R --master L:V --kdf S --new-master L:V2 --new-kvn N
 * Every command takes --dir DIR (or --keystore DIR; default
 * ~/.scpkit/keystore). PINs: SCPKIT_SO_PIN, SCPKIT_USER_PIN,
 * SCPKIT_CUSTODIAN_PIN[_1|_2] or a no-echo prompt on /dev/tty, never argv. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "scpkit/keystore.h"

#define KS_PIN_MAX 128
#define KS_SHARES_MAX 16

static const char *ks_dir_opt(scp_cli *c)
{
    const char *d = scp_cli_take(c, "--dir");
    return d != NULL ? d : c->o.keystore;
}

static int ks_fail(scp_cli *c, int rc, const char *what)
{
    if (rc == SCP_E_STATE || rc == SCP_E_KCV || rc == SCP_E_ARG || rc == SCP_E_NOT_FOUND ||
        rc == SCP_E_UNSUPPORTED || rc == SCP_E_FORMAT)
        return scp_cli_fail(c, rc == SCP_E_ARG ? SCP_EXIT_USAGE : SCP_EXIT_LOCAL, "%s: %s", what,
                            scp_strerror(rc));
    if (rc == SCP_E_PERM)
        return scp_cli_fail(c, SCP_EXIT_AUTH, "%s: %s (wrong PIN, or a quorum is needed)", what,
                            scp_strerror(rc));
    return scp_cli_fail_rc(c, rc, what);
}

static int ks_open_cli(scp_cli *c, const char *dir, scp_keystore **ks)
{
    char pin[KS_PIN_MAX];
    scp_ks_config cfg = {dir, scp_cli_take(c, "--pkcs11-module"), scp_cli_take(c, "--token"),
                         NULL};
    int rc = scp_keystore_pin("SCPKIT_USER_PIN", "keystore user PIN: ", pin, sizeof(pin));
    if (rc == SCP_OK)
        rc = scp_keystore_open(&cfg, pin, ks);
    scp_wipe(pin, sizeof(pin));
    return rc == SCP_OK ? SCP_EXIT_OK : ks_fail(c, rc, "opening the keystore");
}

static void kcv_hex(const uint8_t kcv[3], char out[7])
{
    snprintf(out, 7, "%02X%02X%02X", kcv[0], kcv[1], kcv[2]);
}

static json_object *key_json(const scp_ks_key_info *k)
{
    char kcv[7];
    json_object *j = json_object_new_object();
    kcv_hex(k->kcv, kcv);
    json_object_object_add(j, "label", json_object_new_string(k->label));
    json_object_object_add(j, "version", json_object_new_int64(k->version));
    json_object_object_add(j, "type", json_object_new_string(scp_ks_type_name(k->type)));
    json_object_object_add(j, "kcv", json_object_new_string(kcv));
    json_object_object_add(j, "state", json_object_new_string(scp_ks_state_name(k->state)));
    json_object_object_add(j, "origin", json_object_new_string(k->origin));
    json_object_object_add(j, "created", json_object_new_int64(k->created));
    json_object_object_add(j, "changed", json_object_new_int64(k->changed));
    return j;
}

static void print_key(scp_cli *c, const scp_ks_key_info *k)
{
    char kcv[7];
    kcv_hex(k->kcv, kcv);
    if (c->o.json)
        json_object_object_add(c->doc, "key", key_json(k));
    else
        printf("%s:%u %s KCV %s %s (%s)\n", k->label, (unsigned)k->version,
               scp_ks_type_name(k->type), kcv, scp_ks_state_name(k->state), k->origin);
}

/* ---- init ---- */

static int cmd_init(scp_cli *c, const char *dir)
{
    char so[KS_PIN_MAX], user[KS_PIN_MAX];
    scp_ks_config cfg = {dir, scp_cli_take(c, "--pkcs11-module"), scp_cli_take(c, "--token"),
                         NULL};
    int rc = scp_cli_no_more(c, 2);
    if (rc != SCP_EXIT_OK)
        return rc;
    /* Another module's existing token is adopted with the user PIN alone;
     * the SO PIN initialises a new token. */
    const char *env_so = getenv("SCPKIT_SO_PIN");
    so[0] = 0;
    if (cfg.module == NULL || (env_so != NULL && env_so[0] != 0))
        rc = scp_keystore_pin("SCPKIT_SO_PIN", "new SO PIN: ", so, sizeof(so));
    if (rc == SCP_OK)
        rc = scp_keystore_pin("SCPKIT_USER_PIN", "new user PIN: ", user, sizeof(user));
    if (rc == SCP_OK)
        rc = scp_keystore_init(&cfg, so[0] ? so : NULL, user, c->o.json ? stderr : stdout);
    scp_wipe(so, sizeof(so));
    scp_wipe(user, sizeof(user));
    if (rc == SCP_E_ARG && cfg.module != NULL)
        return ks_fail(c, rc, "keystore init: no such token; an SO PIN (SCPKIT_SO_PIN) would "
                              "initialise a free slot");
    if (rc != SCP_OK)
        return ks_fail(c, rc, "keystore init");
    if (!c->o.json)
        printf("keystore initialised in %s\n", dir ? dir : "~/.scpkit/keystore");
    return SCP_EXIT_OK;
}

/* ---- generate, list, cards, state ---- */

static int cmd_generate(scp_cli *c, scp_keystore *ks)
{
    const char *label = scp_cli_take(c, "--label"), *type = scp_cli_take(c, "--type");
    const char *vt = scp_cli_take(c, "--version");
    scp_ks_type t;
    scp_ks_key_info k;
    int v = 0, rc;
    if (label == NULL || type == NULL || scp_ks_type_parse(type, &t) != SCP_OK)
        return scp_cli_fail(c, SCP_EXIT_USAGE,
                            "generate: --label L --type aes128|aes192|aes256|des2|des3");
    if (vt != NULL && (rc = scp_cli_number(c, "--version", vt, 0xFFFFFF, &v)) != SCP_EXIT_OK)
        return rc;
    if ((rc = scp_cli_no_more(c, 2)) != SCP_EXIT_OK)
        return rc;
    rc = scp_keystore_generate(ks, label, (uint32_t)v, t, &k);
    if (rc != SCP_OK)
        return ks_fail(c, rc, "generate");
    print_key(c, &k);
    return SCP_EXIT_OK;
}

static void list_one(void *arg, const scp_ks_key_info *k)
{
    scp_cli *c = arg;
    char kcv[7];
    kcv_hex(k->kcv, kcv);
    if (c->o.json) {
        json_object *a;
        if (!json_object_object_get_ex(c->doc, "keys", &a)) {
            a = json_object_new_array();
            json_object_object_add(c->doc, "keys", a);
        }
        json_object_array_add(a, key_json(k));
    } else {
        printf("%-24s %6u  %-6s  %s  %-14s %s\n", k->label, (unsigned)k->version,
               scp_ks_type_name(k->type), kcv, scp_ks_state_name(k->state), k->origin);
    }
}

static int cmd_list(scp_cli *c, scp_keystore *ks)
{
    int rc = scp_cli_no_more(c, 2);
    if (rc != SCP_EXIT_OK)
        return rc;
    if (!c->o.json)
        printf("%-24s %6s  %-6s  %-6s  %-14s %s\n", "LABEL", "VER", "TYPE", "KCV", "STATE",
               "ORIGIN");
    rc = scp_keystore_list(ks, list_one, c);
    if (rc == SCP_OK && c->o.json) {
        json_object *a;
        if (!json_object_object_get_ex(c->doc, "keys", &a))
            json_object_object_add(c->doc, "keys", json_object_new_array());
    }
    return rc == SCP_OK ? SCP_EXIT_OK : ks_fail(c, rc, "list");
}

static void card_one(void *arg, const scp_ks_card *k)
{
    scp_cli *c = arg;
    if (c->o.json) {
        json_object *a, *j = json_object_new_object();
        if (!json_object_object_get_ex(c->doc, "cards", &a)) {
            a = json_object_new_array();
            json_object_object_add(c->doc, "cards", a);
        }
        json_object_object_add(j, "kdd", json_object_new_string(k->kdd_hex));
        json_object_object_add(j, "master", json_object_new_string(k->label));
        json_object_object_add(j, "version", json_object_new_int64(k->version));
        json_object_object_add(j, "kdf", json_object_new_string(k->kdf));
        json_object_object_add(j, "kvn", json_object_new_int(k->kvn));
        json_object_object_add(j, "behind", json_object_new_boolean(k->behind));
        json_object_array_add(a, j);
    } else {
        printf("%s  %s:%u %-9s KVN %02X%s\n", k->kdd_hex, k->label, (unsigned)k->version,
               k->kdf, k->kvn, k->behind ? "  BEHIND (a newer active version exists)" : "");
    }
}

/* Which master each card's keys come from, and who is behind. */
static int cmd_cards(scp_cli *c, scp_keystore *ks)
{
    int rc = scp_cli_no_more(c, 2);
    if (rc != SCP_EXIT_OK)
        return rc;
    rc = scp_keystore_card_each(ks, card_one, c);
    return rc == SCP_OK ? SCP_EXIT_OK : ks_fail(c, rc, "cards");
}

static int cmd_state(scp_cli *c, scp_keystore *ks)
{
    const char *reason = scp_cli_take(c, "--reason");
    char label[SCP_KS_LABEL_MAX + 1];
    uint32_t v;
    scp_ks_state to;
    scp_ks_key_info k;
    int rc = scp_cli_no_more(c, 4);
    if (rc != SCP_EXIT_OK)
        return rc;
    if (c->o.argc != 4 || reason == NULL || scp_ks_parse_ref(c->o.argv[2], label, &v) != SCP_OK ||
        scp_ks_state_parse(c->o.argv[3], &to) != SCP_OK)
        return scp_cli_fail(c, SCP_EXIT_USAGE,
                            "state LABEL[:VERSION] suspended|deactivated|compromised|destroyed "
                            "--reason TEXT");
    if (to == SCP_KS_ACTIVE)
        return scp_cli_fail(c, SCP_EXIT_USAGE,
                            "becoming active needs a quorum: use `scpkit keystore activate`");
    rc = scp_keystore_set_state(ks, label, v, to, reason);
    if (rc != SCP_OK)
        return ks_fail(c, rc, "state change refused (see the SP 800-57 transitions in --help)");
    if (scp_keystore_get(ks, label, v, &k) == SCP_OK)
        print_key(c, &k);
    return SCP_EXIT_OK;
}

/* ---- derive: KCVs only ---- */

static int cmd_derive(scp_cli *c, scp_keystore *ks)
{
    const char *kddh = scp_cli_take(c, "--kdd");
    char label[SCP_KS_LABEL_MAX + 1], hex[3][7];
    uint8_t kdd[SCP03_KDD_LEN], kcv[3];
    size_t n = 0;
    uint32_t v;
    scp_div_scheme s;
    scp03_keys out = {0};
    int rc = scp_cli_no_more(c, 2);
    if (rc != SCP_EXIT_OK)
        return rc;
    if (c->o.master == NULL || c->o.kdf == NULL || kddh == NULL ||
        scp_ks_parse_ref(c->o.master, label, &v) != SCP_OK ||
        scp_div_parse(c->o.kdf, &s) != SCP_OK ||
        scp_hex_decode(kddh, kdd, sizeof(kdd), &n) != SCP_OK || n != SCP03_KDD_LEN)
        return scp_cli_fail(c, SCP_EXIT_USAGE,
                            "derive --master LABEL[:VERSION] --kdf SCHEME --kdd HEX(10 bytes)");
    rc = scp_keystore_derive(ks, label, v, s, kdd, n, 0, &out);
    if (rc != SCP_OK)
        return ks_fail(c, rc, "derive");
    const uint8_t *keys[3] = {out.enc, out.mac, out.dek};
    static const char *const names[3] = {"enc", "mac", "dek"};
    for (int i = 0; i < 3 && rc == SCP_OK; i++) {
        rc = s == SCP_DIV_EMV || s == SCP_DIV_VISA2 ? scp_kcv_des3(keys[i], out.key_len, kcv)
                                                    : scp_kcv_aes(keys[i], out.key_len, kcv);
        kcv_hex(kcv, hex[i]);
    }
    scp_wipe(&out, sizeof(out));
    if (rc != SCP_OK)
        return ks_fail(c, rc, "KCV");
    if (c->o.json) {
        for (int i = 0; i < 3; i++) {
            char name[12];
            snprintf(name, sizeof(name), "kcv_%s", names[i]);
            json_object_object_add(c->doc, name, json_object_new_string(hex[i]));
        }
    } else {
        printf("KCV ENC %s  MAC %s  DEK %s\n", hex[0], hex[1], hex[2]);
    }
    return SCP_EXIT_OK;
}

/* ---- ceremonies ---- */

static int write_share(const char *dir, const char *label, uint32_t v, unsigned i,
                       const char *text, char *path, size_t path_size)
{
    int n = snprintf(path, path_size, "%s/%s-%u-share-%u.txt", dir, label, (unsigned)v, i);
    if (n < 0 || (size_t)n >= path_size)
        return -1;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -1;
    size_t len = strlen(text);
    int ok = write(fd, text, len) == (ssize_t)len && write(fd, "\n", 1) == 1;
    return close(fd) == 0 && ok ? 0 : -1;
}

static int output_shares(scp_cli *c, const char *dir, const scp_ks_key_info *k,
                         char (*sh)[SCP_KS_SHARE_TEXT_MAX], unsigned n)
{
    char path[1100];
    /* A ceremony must hand the shares out: they leave the process here, and
     * only here, to stdout or to the files the user asked for. */
    fprintf(stderr, "scpkit: %u secret shares of %s:%u follow%s; give each to one custodian "
                    "and destroy every other copy\n",
            n, k->label, (unsigned)k->version, dir ? " (written to files, mode 0600)" : "");
    for (unsigned i = 0; i < n; i++) {
        if (dir == NULL) {
            printf("share %u: %s\n", i + 1, sh[i]);
        } else if (write_share(dir, k->label, k->version, i + 1, sh[i], path, sizeof(path)) != 0) {
            return scp_cli_fail(c, SCP_EXIT_LOCAL, "cannot create %s (exists, or no access)", path);
        } else {
            fprintf(stderr, "share %u: %s\n", i + 1, path);
        }
    }
    return SCP_EXIT_OK;
}

static int cmd_split(scp_cli *c, scp_keystore *ks)
{
    const char *scheme = scp_cli_take(c, "--scheme"), *type = scp_cli_take(c, "--type");
    const char *mt = scp_cli_take(c, "-m"), *nt = scp_cli_take(c, "-n");
    const char *dir = scp_cli_take(c, "--out-dir");
    char label[SCP_KS_LABEL_MAX + 1], (*sh)[SCP_KS_SHARE_TEXT_MAX];
    uint32_t v;
    scp_ks_type t;
    scp_ks_key_info k;
    int m = 0, n = 0, rc, xor_scheme = scheme && strcmp(scheme, "xor") == 0;
    if (c->o.master == NULL || scp_ks_parse_ref(c->o.master, label, &v) != SCP_OK ||
        type == NULL || scp_ks_type_parse(type, &t) != SCP_OK || scheme == NULL || nt == NULL ||
        (!xor_scheme && (strcmp(scheme, "shamir") != 0 || mt == NULL)))
        return scp_cli_fail(c, SCP_EXIT_USAGE,
                            "split --master LABEL[:VERSION] --type T (--scheme shamir -m M -n N | "
                            "--scheme xor -n N) [--out-dir DIR]");
    if ((rc = scp_cli_number(c, "-n", nt, KS_SHARES_MAX, &n)) != SCP_EXIT_OK ||
        (mt && (rc = scp_cli_number(c, "-m", mt, n, &m)) != SCP_EXIT_OK) ||
        (rc = scp_cli_no_more(c, 2)) != SCP_EXIT_OK)
        return rc;
    if (n < 2 || (!xor_scheme && m < 2))
        return scp_cli_fail(c, SCP_EXIT_USAGE, "split: want 2 <= M <= N <= %d", KS_SHARES_MAX);
    sh = calloc((size_t)n, SCP_KS_SHARE_TEXT_MAX);
    if (sh == NULL)
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "out of memory");
    rc = scp_keystore_split_new(ks, label, v, t, xor_scheme, (unsigned)m, (unsigned)n, sh, &k);
    if (rc == SCP_OK) {
        print_key(c, &k);
        rc = output_shares(c, dir, &k, sh, (unsigned)n);
    } else {
        rc = ks_fail(c, rc, "split");
    }
    scp_wipe(sh, (size_t)n * SCP_KS_SHARE_TEXT_MAX);
    free(sh);
    return rc;
}

/* Shares from --share-file F (repeated), else one per line from stdin when
 * it is not a terminal, else prompted without echo on /dev/tty. */
static int read_shares(scp_cli *c, char (*sh)[SCP_KS_SHARE_TEXT_MAX], size_t *n)
{
    const char *f;
    *n = 0;
    while ((f = scp_cli_take(c, "--share-file")) != NULL && *n < KS_SHARES_MAX) {
        FILE *fp = fopen(f, "r");
        if (fp == NULL || fgets(sh[*n], SCP_KS_SHARE_TEXT_MAX, fp) == NULL) {
            if (fp)
                fclose(fp);
            return scp_cli_fail(c, SCP_EXIT_LOCAL, "cannot read a share from %s", f);
        }
        fclose(fp);
        sh[*n][strcspn(sh[*n], "\r\n")] = 0;
        (*n)++;
    }
    if (*n > 0)
        return SCP_EXIT_OK;
    if (!isatty(0)) {
        while (*n < KS_SHARES_MAX && fgets(sh[*n], SCP_KS_SHARE_TEXT_MAX, stdin) != NULL) {
            sh[*n][strcspn(sh[*n], "\r\n")] = 0;
            if (sh[*n][0] != 0)
                (*n)++;
        }
        return *n > 0 ? SCP_EXIT_OK : scp_cli_fail(c, SCP_EXIT_USAGE, "no shares on stdin");
    }
    for (;;) { /* prompt until an empty line */
        char prompt[48];
        snprintf(prompt, sizeof(prompt), "share %zu (empty line to end): ", *n + 1);
        if (*n >= KS_SHARES_MAX ||
            scp_keystore_pin(NULL, prompt, sh[*n], SCP_KS_SHARE_TEXT_MAX) != SCP_OK)
            break;
        (*n)++;
    }
    return *n > 0 ? SCP_EXIT_OK : scp_cli_fail(c, SCP_EXIT_USAGE, "no shares given");
}

static int cmd_combine(scp_cli *c, scp_keystore *ks)
{
    const char *kcvh = scp_cli_take(c, "--kcv");
    char label[SCP_KS_LABEL_MAX + 1], sh[KS_SHARES_MAX][SCP_KS_SHARE_TEXT_MAX];
    const char *ptr[KS_SHARES_MAX];
    uint8_t kcv[3];
    size_t n = 0, kl = 0;
    uint32_t v;
    scp_ks_key_info k;
    if (c->o.master == NULL || scp_ks_parse_ref(c->o.master, label, &v) != SCP_OK ||
        (kcvh && (scp_hex_decode(kcvh, kcv, sizeof(kcv), &kl) != SCP_OK || kl != 3)))
        return scp_cli_fail(c, SCP_EXIT_USAGE,
                            "combine --master LABEL[:VERSION] [--kcv HEX] [--share-file F ...]");
    int rc = read_shares(c, sh, &n);
    if (rc == SCP_EXIT_OK)
        rc = scp_cli_no_more(c, 2);
    if (rc == SCP_EXIT_OK) {
        for (size_t i = 0; i < n; i++)
            ptr[i] = sh[i];
        int r = scp_keystore_combine(ks, label, v, ptr, n, kcvh ? kcv : NULL, &k);
        rc = r == SCP_OK ? SCP_EXIT_OK
                         : ks_fail(c, r, r == SCP_E_AUTH ? "combine: not enough shares"
                                                         : "combine (a share failed its check?)");
        if (r == SCP_OK)
            print_key(c, &k);
    }
    scp_wipe(sh, sizeof(sh));
    return rc;
}

static int activate_custodians(scp_keystore *ks, const char *label, uint32_t v,
                               const char *reason, const char *a, const char *b)
{
    char p1[KS_PIN_MAX], p2[KS_PIN_MAX], q1[96], q2[96];
    snprintf(q1, sizeof(q1), "PIN of custodian %s: ", a);
    snprintf(q2, sizeof(q2), "PIN of custodian %s: ", b);
    int rc = scp_keystore_pin("SCPKIT_CUSTODIAN_PIN_1", q1, p1, sizeof(p1));
    if (rc == SCP_OK)
        rc = scp_keystore_pin("SCPKIT_CUSTODIAN_PIN_2", q2, p2, sizeof(p2));
    if (rc == SCP_OK)
        rc = scp_keystore_activate_custodians(ks, label, v, a, p1, b, p2, reason);
    scp_wipe(p1, sizeof(p1));
    scp_wipe(p2, sizeof(p2));
    return rc;
}

static int cmd_activate(scp_cli *c, scp_keystore *ks)
{
    const char *reason = scp_cli_take(c, "--reason");
    const char *a = scp_cli_take(c, "--custodian"), *b = scp_cli_take(c, "--custodian");
    char label[SCP_KS_LABEL_MAX + 1], sh[KS_SHARES_MAX][SCP_KS_SHARE_TEXT_MAX];
    const char *ptr[KS_SHARES_MAX];
    size_t n = 0;
    uint32_t v;
    scp_ks_key_info k;
    int rc;
    if (c->o.argc < 3 || reason == NULL || scp_ks_parse_ref(c->o.argv[2], label, &v) != SCP_OK ||
        (a != NULL) != (b != NULL))
        return scp_cli_fail(c, SCP_EXIT_USAGE,
                            "activate LABEL[:VERSION] --reason TEXT (--share-file F ... | "
                            "--custodian A --custodian B)");
    if (a != NULL) {
        if ((rc = scp_cli_no_more(c, 3)) != SCP_EXIT_OK)
            return rc;
        rc = activate_custodians(ks, label, v, reason, a, b);
    } else {
        if ((rc = read_shares(c, sh, &n)) != SCP_EXIT_OK || (rc = scp_cli_no_more(c, 3)))
            return rc;
        for (size_t i = 0; i < n; i++)
            ptr[i] = sh[i];
        rc = scp_keystore_activate_shares(ks, label, v, ptr, n, reason);
        scp_wipe(sh, sizeof(sh));
    }
    if (rc != SCP_OK)
        return ks_fail(c, rc, "activate: quorum not met");
    if (scp_keystore_get(ks, label, v, &k) == SCP_OK)
        print_key(c, &k);
    return SCP_EXIT_OK;
}

static int cmd_custodian_add(scp_cli *c, scp_keystore *ks)
{
    char pin[KS_PIN_MAX], prompt[96];
    int rc = scp_cli_no_more(c, 3);
    if (rc != SCP_EXIT_OK)
        return rc;
    if (c->o.argc != 3)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "custodian-add NAME");
    snprintf(prompt, sizeof(prompt), "new PIN for custodian %s: ", c->o.argv[2]);
    rc = scp_keystore_pin("SCPKIT_CUSTODIAN_PIN", prompt, pin, sizeof(pin));
    if (rc == SCP_OK)
        rc = scp_keystore_custodian_add(ks, c->o.argv[2], pin);
    scp_wipe(pin, sizeof(pin));
    if (rc != SCP_OK)
        return ks_fail(c, rc, "custodian-add (PIN of 6 characters or more; name not taken)");
    if (!c->o.json)
        printf("custodian %s enrolled\n", c->o.argv[2]);
    return SCP_EXIT_OK;
}

int scp_cli_keystore_rotate(scp_cli *c, const char *dir); /* cmd_keystore_card.c */

static const char ks_help[] =
    "usage: scpkit keystore COMMAND [--dir DIR] ...\n"
    "  init [--pkcs11-module PATH --token LABEL]\n"
    "  generate --label L --type aes128|aes192|aes256|des2|des3 [--version V]\n"
    "  list | cards             (cards: which master each card uses; who is behind)\n"
    "  state LABEL[:V] suspended|deactivated|compromised|destroyed --reason TEXT\n"
    "  activate LABEL[:V] --reason TEXT (--share-file F ... | --custodian A --custodian B)\n"
    "  custodian-add NAME\n"
    "  derive --master L[:V] --kdf sp800-108|kdf3|emv|visa2 --kdd HEX   (KCVs only)\n"
    "  split --master L[:V] --type T --scheme shamir -m M -n N | --scheme xor -n N\n"
    "        [--out-dir DIR]     (the shares are printed, or written 0600 into DIR)\n"
    "  combine --master L[:V] [--kcv HEX] [--share-file F ...]  (else stdin / prompt)\n"
    "  rotate --card DIR|-r READER [current keys] --new-master L:V [--new-kdf S] --new-kvn N\n"
    "        current keys: --keystore DIR --master L:V --kdf S, or --key/--keyfile/factory\n"
    "        (then --dir DIR names the keystore): provisioning and rotation alike\n"
    "PINs: SCPKIT_SO_PIN, SCPKIT_USER_PIN, SCPKIT_CUSTODIAN_PIN[_1|_2], else a prompt.\n"
    "SP 800-57 states: pre-activation -> active (quorum) -> suspended <-> active,\n"
    "-> deactivated -> destroyed; compromised from any live state; destroyed is final.\n";

static int dispatch(scp_cli *c, const char *dir)
{
    static const struct {
        const char *name;
        int (*fn)(scp_cli *, scp_keystore *);
    } cmds[] = {
        {"generate", cmd_generate}, {"list", cmd_list},       {"state", cmd_state},
        {"cards", cmd_cards},
        {"derive", cmd_derive},     {"split", cmd_split},     {"combine", cmd_combine},
        {"activate", cmd_activate}, {"custodian-add", cmd_custodian_add},
    };
    const char *sub = c->o.argc > 1 ? c->o.argv[1] : "help";
    if (strcmp(sub, "init") == 0)
        return cmd_init(c, dir);
    if (strcmp(sub, "rotate") == 0)
        return scp_cli_keystore_rotate(c, dir);
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (strcmp(sub, cmds[i].name) != 0)
            continue;
        scp_keystore *ks = NULL;
        int rc = ks_open_cli(c, dir, &ks);
        if (rc == SCP_EXIT_OK)
            rc = cmds[i].fn(c, ks);
        scp_keystore_close(ks);
        return rc;
    }
    fputs(ks_help, strcmp(sub, "help") == 0 || strcmp(sub, "--help") == 0 ? stdout : stderr);
    return strcmp(sub, "help") == 0 || strcmp(sub, "--help") == 0 ? SCP_EXIT_OK : SCP_EXIT_USAGE;
}

int scp_cli_keystore(int argc, char **argv)
{
    scp_cli c;
    int rc = scp_cli_begin(&c, argc, argv);
    if (rc == SCP_EXIT_OK) {
        const char *dir = ks_dir_opt(&c);
        rc = dispatch(&c, dir);
    }
    return scp_cli_end(&c, rc);
}
