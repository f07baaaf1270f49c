/* scpkit CLI: common options, key resolution, error reporting and the one
 * JSON document each command prints with --json. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "scpkit/apdu.h"

const char scp_cli_common_help[] =
    "Target:\n"
    "  -r, --reader NAME|INDEX   PC/SC reader (exact name, index, or unique substring;\n"
    "                            default: the one reader holding a card)\n"
    "  --card DIR                a virtual card's state directory, in process\n"
    "  --sd AID                  security domain to select (default A000000151000000)\n"
    "Keys (with none given, the factory test keys 40..4F are used, with a warning):\n"
    "  --kvn KVN                 key version number, hex 00..FF (00: the card's choice)\n"
    "  --key HEX                 one key for ENC, MAC and DEK (16, 24 or 32 bytes)\n"
    "  --enc HEX --mac HEX --dek HEX\n"
    "  --keyfile FILE            JSON key file; refused unless mode 0600\n"
    "  --kdf SCHEME --master HEX diversify from the card's KDD: none, sp800-108,\n"
    "                            kdf3, emv, visa2\n"
    "  --keystore DIR --master LABEL[:VERSION] --kdf SCHEME   keys from a keystore\n"
    "  --level L                 mac, mac+enc, mac+rmac, mac+enc+rmac, all or hex\n"
    "  --scp 02|03|11a|11b|11c   secure channel protocol (default 03; 02: SCP02, 3DES\n"
    "                            keys, level mac+enc by default); SCP11 takes\n"
    "                            --sd-ca FILE (trust anchor of the card's certificates),\n"
    "                            --kid N/--kvn N (SD key; 13/01, 11/03, 15/03 by default),\n"
    "                            and for 11a/11c --oce-key FILE --oce-chain FILE (PEM)\n"
    "                            or --keystore DIR --oce-label L[:V] (SK.OCE in the\n"
    "                            token: the ECDH runs there) with --oce-chain FILE\n"
    "                            (default: the strongest the card offers)\n"
    "Output:\n"
    "  --json                    one JSON document on stdout\n"
    "  -v, --trace               APDU trace on stderr (key material redacted)\n"
    "Exit codes: 0 ok, 1 usage, 2 card or transport error, 3 authentication\n"
    "failed, 4 card refused the command, 5 local file or key error.\n";

/* Options taking a value, and where it goes. */
static const char **value_slot(scp_cli_opts *o, const char *a)
{
    struct {
        const char *name;
        const char **slot;
    } tab[] = {
        { "-r", &o->reader },           { "--reader", &o->reader },    { "--card", &o->card_dir },
        { "--sd", &o->sd_aid },         { "--kvn", &o->kvn_text },     { "--key", &o->key_hex },
        { "--enc", &o->enc_hex },       { "--mac", &o->mac_hex },      { "--dek", &o->dek_hex },
        { "--keyfile", &o->keyfile },   { "--kdf", &o->kdf },          { "--master", &o->master },
        { "--keystore", &o->keystore }, { "--level", &o->level_text },
        { "--scp", &o->scp_text },      { "--kid", &o->kid_text },     { "--sd-ca", &o->sd_ca },
        { "--oce-key", &o->oce_key },   { "--oce-chain", &o->oce_chain },
        { "--oce-label", &o->oce_label },
    };
    for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
        if (strcmp(a, tab[i].name) == 0)
            return tab[i].slot;
    return NULL;
}

/* Byte-sized protocol numbers (KVN, i) are hex, as GP writes them and as
 * scpkit prints them: "10", "0x10" and "010" are all 0x10. */
int scp_cli_parse_hex(const char *s, int min, int max, int *out)
{
    long v = 0;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        s += 2;
    if (*s == 0)
        return -1;
    for (; *s; s++) {
        int d = (*s >= '0' && *s <= '9')   ? *s - '0'
                : (*s >= 'a' && *s <= 'f') ? *s - 'a' + 10
                : (*s >= 'A' && *s <= 'F') ? *s - 'A' + 10
                                           : -1;
        if (d < 0 || v > 0xFFFF)
            return -1;
        v = v * 16 + d;
    }
    if (v < min || v > max)
        return -1;
    *out = (int)v;
    return 0;
}

/* Counts are decimal, and a leading zero (octal in C) or 0x is refused
 * rather than read one way or the other. */
static int parse_dec(const char *s, int max, int *out)
{
    long v = 0;
    if (*s == 0 || (s[0] == '0' && s[1] != 0))
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > 100000000L)
            return -1;
        v = v * 10 + (*s - '0');
    }
    if (v > max)
        return -1;
    *out = (int)v;
    return 0;
}

int scp_cli_common_option(const char *a)
{
    scp_cli_opts scratch;
    if (strcmp(a, "--json") == 0 || strcmp(a, "-v") == 0 || strcmp(a, "--trace") == 0)
        return 1;
    return value_slot(&scratch, a) ? 2 : 0;
}

static int usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "scpkit: %s: %s (see scpkit --help)\n", arg, msg);
    return SCP_EXIT_USAGE;
}

int scp_cli_parse(int argc, char **argv, scp_cli_opts *o)
{
    const char **slot;
    uint8_t lv;

    memset(o, 0, sizeof(*o));
    o->kvn = -1;
    o->level = -1;
    o->argv = calloc((size_t)argc + 1, sizeof(o->argv[0]));
    if (!o->argv) {
        fprintf(stderr, "scpkit: out of memory\n");
        return SCP_EXIT_LOCAL;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0)
            o->json = 1;
        else if (strcmp(a, "-v") == 0 || strcmp(a, "--trace") == 0)
            o->trace = 1;
        else if ((slot = value_slot(o, a)) != NULL) {
            if (i + 1 >= argc)
                return usage_error("needs a value", a);
            *slot = argv[++i];
        } else {
            o->argv[o->argc++] = argv[i];
        }
    }
    if (o->kvn_text && scp_cli_kvn_parse(o->kvn_text, SCP_KVN_AUTH, &o->kvn))
        return usage_error(scp_cli_kvn_rule(SCP_KVN_AUTH), o->kvn_text);
    if (o->level_text) {
        if (scp_level_parse(o->level_text, &lv) != SCP_OK)
            return usage_error("--level: want mac, mac+enc, mac+rmac, mac+enc+rmac, all, "
                               "or 01/03/11/13/33",
                               o->level_text);
        o->level = lv;
    }
    if (o->scp_text && (strcmp(o->scp_text, "02") == 0 || strcmp(o->scp_text, "2") == 0))
        o->scp = 2; /* SCP02, 3DES keys (target.c) */
    else if (o->scp_text && strcmp(o->scp_text, "03") != 0 && scp_cli_scp11_variant(o) == 0)
        return usage_error("--scp: want 02, 03, 11a, 11b or 11c", o->scp_text);
    if (o->scp == 2 && o->level >= 0 && !scp02_level_valid((uint8_t)o->level))
        return usage_error("--level: SCP02 has mac, mac+enc, mac+rmac, mac+enc+rmac",
                           o->level_text);
    if (o->reader && o->card_dir)
        return usage_error("give either -r/--reader or --card, not both", "--card");
    return SCP_EXIT_OK;
}

void scp_cli_opts_free(scp_cli_opts *o)
{
    free(o->argv);
    o->argv = NULL;
    o->argc = 0;
}

int scp_cli_hexkey(const char *hex, uint8_t *out, uint8_t *len)
{
    size_t n;
    if (scp_hex_decode(hex, out, SCP_AES_MAX_KEY, &n) != SCP_OK)
        return -1;
    if (n != 16 && n != 24 && n != 32) {
        scp_wipe(out, SCP_AES_MAX_KEY);
        return -1;
    }
    *len = (uint8_t)n;
    return 0;
}

static int keys_from_hex(scp_cli *c)
{
    scp_cli_opts *o = &c->o;
    uint8_t l1, l2, l3;
    if (o->key_hex) {
        if (o->enc_hex || o->mac_hex || o->dek_hex)
            return scp_cli_fail(c, SCP_EXIT_USAGE, "give --key or --enc/--mac/--dek, not both");
        if (scp_cli_hexkey(o->key_hex, c->keys.enc, &l1))
            return scp_cli_fail(c, SCP_EXIT_USAGE, "--key: want 16, 24 or 32 bytes of hex");
        memcpy(c->keys.mac, c->keys.enc, l1);
        memcpy(c->keys.dek, c->keys.enc, l1);
        c->keys.key_len = l1;
        return SCP_EXIT_OK;
    }
    if (!o->enc_hex || !o->mac_hex || !o->dek_hex)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "--enc, --mac and --dek go together");
    if (scp_cli_hexkey(o->enc_hex, c->keys.enc, &l1) ||
        scp_cli_hexkey(o->mac_hex, c->keys.mac, &l2) ||
        scp_cli_hexkey(o->dek_hex, c->keys.dek, &l3) || l1 != l2 || l2 != l3)
        return scp_cli_fail(c, SCP_EXIT_USAGE,
                            "--enc/--mac/--dek: want keys of one length, 16, 24 or 32 bytes");
    c->keys.key_len = l1;
    return SCP_EXIT_OK;
}

static int keys_from_master(scp_cli *c)
{
    scp_div_scheme s;
    size_t n;
    if (scp_div_parse(c->o.kdf, &s) != SCP_OK)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "--kdf %s: want none, sp800-108, kdf3, emv or visa2",
                            c->o.kdf);
    if (s == SCP_DIV_NONE) { /* the master is the key */
        c->o.key_hex = c->o.master;
        c->keysrc = SCP_KEYS_HEX;
        return keys_from_hex(c);
    }
    if (scp_hex_decode(c->o.master, c->keys.enc, sizeof(c->keys.enc), &n) != SCP_OK ||
        (n != 16 && n != 24 && n != 32))
        return scp_cli_fail(c, SCP_EXIT_USAGE, "--master: want 16, 24 or 32 bytes of hex");
    c->keys.key_len = (uint8_t)n;
    c->chopts.div = s;
    return SCP_EXIT_OK;
}

/* Resolve where the static keys come from (see scp_cli_keysrc). */
static int resolve_keys(scp_cli *c)
{
    scp_cli_opts *o = &c->o;
    char err[256];
    int given = !!o->key_hex + !!(o->enc_hex || o->mac_hex || o->dek_hex) + !!o->keyfile +
                !!(o->master && !o->keystore) + !!o->keystore;
    if (given > 1 && !(o->key_hex && !o->keyfile && !o->master && !o->keystore))
        return scp_cli_fail(c, SCP_EXIT_USAGE,
                            "give one key source: --key, --enc/--mac/--dek, --keyfile, "
                            "--kdf/--master or --keystore");
    if (o->keystore) {
        c->keysrc = SCP_KEYS_KEYSTORE;
        if (!scp_cli_keystore_derive)
            return scp_cli_fail(c, SCP_EXIT_USAGE, "--keystore: not built into this scpkit");
        return scp_cli_keystore_derive(c);
    }
    if (o->master || o->kdf) {
        if (!o->master || !o->kdf)
            return scp_cli_fail(c, SCP_EXIT_USAGE, "--kdf and --master go together");
        c->keysrc = SCP_KEYS_MASTER;
        return keys_from_master(c);
    }
    if (o->keyfile) {
        c->keysrc = SCP_KEYS_FILE;
        if (scp_cli_keyfile_read(o->keyfile, &c->keys, err, sizeof(err)) != SCP_OK)
            return scp_cli_fail(c, SCP_EXIT_LOCAL, "%s", err);
        if (o->kvn < 0)
            o->kvn = c->keys.kvn;
        return SCP_EXIT_OK;
    }
    if (o->key_hex || o->enc_hex || o->mac_hex || o->dek_hex) {
        c->keysrc = SCP_KEYS_HEX;
        return keys_from_hex(c);
    }
    c->keysrc = SCP_KEYS_FACTORY;
    for (int i = 0; i < 16; i++)
        c->keys.enc[i] = c->keys.mac[i] = c->keys.dek[i] = (uint8_t)(0x40 + i);
    c->keys.key_len = 16;
    return SCP_EXIT_OK;
}

int scp_cli_begin(scp_cli *c, int argc, char **argv)
{
    int rc;
    memset(c, 0, sizeof(*c));
    rc = scp_cli_parse(argc, argv, &c->o);
    c->doc = json_object_new_object();
    if (rc != SCP_EXIT_OK) {
        json_object_object_add(c->doc, "error", json_object_new_string("usage error (see stderr)"));
        return rc;
    }
    c->chopts.level = c->o.level;
    c->chopts.s16 = -1;
    return SCP_EXIT_OK;
}

/* Keys are resolved only by commands that authenticate. */
int scp_cli_resolve_keys(scp_cli *c)
{
    int rc = resolve_keys(c);
    if (rc != SCP_EXIT_OK)
        return rc;
    if (c->o.kvn < 0)
        c->o.kvn = 0;
    c->chopts.kvn = (uint8_t)c->o.kvn;
    if (c->keysrc == SCP_KEYS_FACTORY && scp_cli_scp11_variant(&c->o) == 0)
        fprintf(stderr, "scpkit: warning: no key given: using the publicly known factory test "
                        "keys 40..4F\n");
    return SCP_EXIT_OK;
}

int scp_cli_end(scp_cli *c, int rc)
{
    if (c->ch_open)
        scp_channel_close(&c->ch);
    if (c->ch02_open)
        scp02_channel_close(&c->ch02);
    if (c->t_open && c->t.close)
        c->t.close(c->t.ctx);
    scp_cli_close_card(c);
    if (c->derive_free)
        c->derive_free(c->chopts.derive_ctx);
    scp_wipe(&c->keys, sizeof(c->keys));
    if (c->o.json && c->doc) {
        json_object_object_add(c->doc, "ok", json_object_new_boolean(rc == SCP_EXIT_OK));
        json_object_object_add(c->doc, "exit_code", json_object_new_int(rc));
        printf("%s\n", json_object_to_json_string_ext(c->doc, JSON_C_TO_STRING_PRETTY |
                                                                  JSON_C_TO_STRING_NOSLASHESCAPE));
    }
    json_object_put(c->doc);
    c->doc = NULL;
    scp_cli_opts_free(&c->o);
    return rc;
}

int scp_cli_fail(scp_cli *c, int exit_code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "scpkit: %s\n", msg);
    if (c && c->doc && !json_object_object_get_ex(c->doc, "error", NULL))
        json_object_object_add(c->doc, "error", json_object_new_string(msg));
    return exit_code;
}

int scp_cli_fail_rc(scp_cli *c, int rc, const char *what)
{
    int code = SCP_EXIT_CARD;
    if (rc == SCP_E_AUTH)
        code = SCP_EXIT_AUTH;
    else if (rc == SCP_E_PERM || rc == SCP_E_CORRUPT)
        code = SCP_EXIT_LOCAL;
    else if (rc == SCP_E_SW)
        code = SCP_EXIT_REFUSED;
    if (rc == SCP_E_IO && c && !c->o.card_dir) /* say what pcsc-lite said */
        return scp_cli_fail(c, code, "%s: %s (%s)", what, scp_strerror(rc), scp_pcsc_last_error());
    if (rc == SCP_E_IO && c) /* the in-process card failed to save its state */
        return scp_cli_fail(c, code,
                            "%s: %s: the virtual card could not write its state in %s (check "
                            "free space and permissions); the command had no effect",
                            what, scp_strerror(rc), c->o.card_dir);
    return scp_cli_fail(c, code, "%s: %s", what, scp_strerror(rc));
}

int scp_cli_fail_sw(scp_cli *c, uint16_t sw, const char *what)
{
    int code = ((sw & 0xFFF0) == 0x63C0 || sw == 0x6983) ? SCP_EXIT_AUTH : SCP_EXIT_REFUSED;
    char h[8];
    snprintf(h, sizeof(h), "%04X", sw);
    if (c && c->doc) {
        json_object_object_add(c->doc, "sw", json_object_new_string(h));
        if ((sw & 0xFFF0) == 0x63C0) /* the card says how many tries are left */
            json_object_object_add(c->doc, "tries_left", json_object_new_int(sw & 0x0F));
    }
    return scp_cli_fail(c, code, "%s: the card answered %04X (%s)", what, sw, scp_cli_sw_text(sw));
}

const char *scp_cli_sw_text(uint16_t sw)
{
    static char buf[96];
    return scp_sw_explain(sw, buf, sizeof(buf));
}

void scp_cli_hex(const uint8_t *p, size_t len, char *out, size_t out_size)
{
    if (scp_hex_encode(p, len, out, out_size) != SCP_OK && out_size > 0)
        out[0] = 0;
}

json_object *scp_cli_jhex(const uint8_t *p, size_t len)
{
    char small[2 * 64 + 1], *buf = len <= 64 ? small : malloc(2 * len + 1);
    json_object *j;
    if (!buf)
        return json_object_new_string("");
    scp_cli_hex(p, len, buf, 2 * len + 1);
    j = json_object_new_string(buf);
    if (buf != small)
        free(buf);
    return j;
}

/* ---- a subcommand's own options, taken out of o->argv ---- */

static void drop(scp_cli_opts *o, int i, int n)
{
    for (int k = i; k + n < o->argc; k++)
        o->argv[k] = o->argv[k + n];
    o->argc -= n;
}

const char *scp_cli_take(scp_cli *c, const char *name)
{
    scp_cli_opts *o = &c->o;
    for (int i = 1; i < o->argc; i++)
        if (strcmp(o->argv[i], name) == 0 && i + 1 < o->argc) {
            const char *v = o->argv[i + 1];
            drop(o, i, 2);
            return v;
        }
    return NULL;
}

int scp_cli_flag(scp_cli *c, const char *name)
{
    scp_cli_opts *o = &c->o;
    for (int i = 1; i < o->argc; i++)
        if (strcmp(o->argv[i], name) == 0) {
            drop(o, i, 1);
            return 1;
        }
    return 0;
}

int scp_cli_no_more(scp_cli *c, int keep)
{
    if (c->o.argc > keep)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "%s: unexpected argument \"%s\"", c->o.argv[0],
                            c->o.argv[keep]);
    return SCP_EXIT_OK;
}

int scp_cli_number(scp_cli *c, const char *name, const char *text, int max, int *out)
{
    if (parse_dec(text, max, out) != 0)
        return scp_cli_fail(c, SCP_EXIT_USAGE,
                            "%s %s: want a decimal number 0..%d (no leading zero, no 0x)", name,
                            text, max);
    return SCP_EXIT_OK;
}

int scp_cli_kvn(scp_cli *c, const char *name, const char *text, scp_cli_kvn_use use, int *out)
{
    if (scp_cli_kvn_parse(text, use, out) != 0)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "%s %s: %s", name, text, scp_cli_kvn_rule(use));
    return SCP_EXIT_OK;
}
