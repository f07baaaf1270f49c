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
/* Built only with the keystore library (src/keys: SQLite, p11-kit header). */
#ifdef SCP_HAVE_KEYS
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keystore_cli.h"

static const char *ks_dir_opt(scp_cli *c)
{
    const char *d = scp_cli_take(c, "--dir");
    return d != NULL ? d : c->o.keystore;
}

/* Exit code and message: the keystore's own explanation (what it means
 * and what to do) when it has one. */
int scp_ks_cli_fail(scp_cli *c, int rc, const char *what)
{
    const char *why = scp_keystore_why(NULL);
    int code = SCP_EXIT_LOCAL;
    if (rc == SCP_E_ARG)
        code = SCP_EXIT_USAGE;
    else if (rc == SCP_E_PERM || rc == SCP_E_AUTH)
        code = SCP_EXIT_AUTH;
    else if (rc == SCP_E_IO || rc == SCP_E_TIMEOUT)
        code = SCP_EXIT_LOCAL;
    if (why[0] != 0)
        return scp_cli_fail(c, code, "%s: %s", what, why);
    if (rc == SCP_E_PERM)
        return scp_cli_fail(c, code, "%s: %s (wrong PIN, or a quorum is needed)", what,
                            scp_strerror(rc));
    return scp_cli_fail(c, code, "%s: %s", what, scp_strerror(rc));
}

static int ks_open_cli(scp_cli *c, const char *dir, scp_keystore **ks)
{
    char pin[KS_PIN_MAX];
    scp_ks_config cfg = {dir, scp_cli_take(c, "--pkcs11-module"), scp_cli_take(c, "--token"),
                         NULL};
    int rc = scp_keystore_pin("SCPKIT_USER_PIN", "keystore user PIN: ", pin, sizeof(pin));
    if (rc != SCP_OK)
        return scp_cli_fail(c, SCP_EXIT_USAGE,
                            "no user PIN: set SCPKIT_USER_PIN or run on a terminal");
    rc = scp_keystore_open(&cfg, pin, ks);
    scp_wipe(pin, sizeof(pin));
    return rc == SCP_OK ? SCP_EXIT_OK : scp_ks_cli_fail(c, rc, "opening the keystore");
}

static void kcv_hex(const uint8_t kcv[3], char out[7])
{
    snprintf(out, 7, "%02X%02X%02X", kcv[0], kcv[1], kcv[2]);
}

/* A master's KCV as shown: "C:" marks the CMAC fallback (keystore.h). */
static void master_kcv(const scp_ks_key_info *k, char out[9])
{
    snprintf(out, 9, "%s%02X%02X%02X", k->kcv_cmac ? "C:" : "", k->kcv[0], k->kcv[1], k->kcv[2]);
}

static json_object *key_json(const scp_ks_key_info *k)
{
    char kcv[9];
    json_object *j = json_object_new_object();
    master_kcv(k, kcv);
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

void scp_ks_cli_print_key(scp_cli *c, const scp_ks_key_info *k)
{
    char kcv[9];
    master_kcv(k, kcv);
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
        return scp_ks_cli_fail(c, rc, "keystore init: no such token; an SO PIN (SCPKIT_SO_PIN) would "
                              "initialise a free slot");
    if (rc != SCP_OK)
        return scp_ks_cli_fail(c, rc, "keystore init");
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
                            "generate: --label L --type "
                            "aes128|aes192|aes256|des2|des3|ec-p256|ec-p384|ec-bp256");
    if (vt != NULL && (rc = scp_cli_number(c, "--version", vt, 0xFFFFFF, &v)) != SCP_EXIT_OK)
        return rc;
    if ((rc = scp_cli_no_more(c, 2)) != SCP_EXIT_OK)
        return rc;
    rc = scp_keystore_generate(ks, label, (uint32_t)v, t, &k);
    if (rc != SCP_OK)
        return scp_ks_cli_fail(c, rc, "generate");
    scp_ks_cli_print_key(c, &k);
    return SCP_EXIT_OK;
}

static void list_one(void *arg, const scp_ks_key_info *k)
{
    scp_cli *c = arg;
    char kcv[9];
    master_kcv(k, kcv);
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
    return rc == SCP_OK ? SCP_EXIT_OK : scp_ks_cli_fail(c, rc, "list");
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
    return rc == SCP_OK ? SCP_EXIT_OK : scp_ks_cli_fail(c, rc, "cards");
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
        return scp_ks_cli_fail(c, rc, "state change refused (see the SP 800-57 transitions in --help)");
    if (scp_keystore_get(ks, label, v, &k) == SCP_OK)
        scp_ks_cli_print_key(c, &k);
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
        return scp_ks_cli_fail(c, rc, "derive");
    const uint8_t *keys[3] = {out.enc, out.mac, out.dek};
    static const char *const names[3] = {"enc", "mac", "dek"};
    for (int i = 0; i < 3 && rc == SCP_OK; i++) {
        rc = s == SCP_DIV_EMV || s == SCP_DIV_VISA2 ? scp_kcv_des3(keys[i], out.key_len, kcv)
                                                    : scp_kcv_aes(keys[i], out.key_len, kcv);
        kcv_hex(kcv, hex[i]);
    }
    scp_wipe(&out, sizeof(out));
    if (rc != SCP_OK)
        return scp_ks_cli_fail(c, rc, "KCV");
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


static const char ks_help[] =
    "usage: scpkit keystore COMMAND [--dir DIR] ...\n"
    "  init [--pkcs11-module PATH --token LABEL]\n"
    "  generate --label L --type aes128|aes192|aes256|des2|des3|ec-p256|ec-p384|ec-bp256\n"
    "        [--version V]      (EC: a key pair for SCP11 OCEs and CAs, made in the token)\n"
    "  import-ec --label L --in FILE [--version V]   (PEM/DER; unwrapped into the token)\n"
    "  public L[:V] [--out FILE]                      (an EC key's public half, PEM)\n"
    "  ca cert --ca L[:V] --cn NAME --out FILE [--days N] [--serial N]\n"
    "  ca issue --ca L[:V] --ca-cert FILE (--subject L2[:V] | --pub FILE) --cn NAME --out FILE\n"
    "        [--intermediate]  (FILE: the chain for --oce-chain, leaf last, root left out)\n"
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
        {"derive", cmd_derive},     {"split", scp_ks_cli_split}, {"combine", scp_ks_cli_combine},
        {"activate", scp_ks_cli_activate}, {"custodian-add", scp_ks_cli_custodian_add},
        {"import-ec", scp_ks_cli_import_ec}, {"public", scp_ks_cli_public},
        {"ca", scp_ks_cli_ca},
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

#endif /* SCP_HAVE_KEYS */
