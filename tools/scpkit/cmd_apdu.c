/* scpkit apdu | status | lifecycle: commands that need a secure channel. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "scpkit/apdu.h"
#include "scpkit/tlv.h"

/* The APDUs of one call: from the arguments, then from -f FILE (or -f -
 * for stdin), one per line (spaces allowed, blank lines and # comments
 * skipped). All are read and checked before the card sees any, so a typo
 * on line 40 never leaves 39 commands applied. */
#define APDU_LIST_MAX 1000000
#define APDU_TEXT_MAX (2 * SCP_APDU_MAX + 4096) /* one line */

typedef struct apdu_list {
    uint8_t *buf; /* the APDUs back to back */
    size_t used, cap;
    size_t *off; /* start of each; off[n] = used */
    size_t n, n_cap;
} apdu_list;

static void list_free(apdu_list *l)
{
    free(l->buf);
    free(l->off);
    memset(l, 0, sizeof(*l));
}

/* Add one APDU given as hex; where: "argument 2", "line 7 of FILE". */
static int list_add(scp_cli *c, apdu_list *l, const char *hex, const char *where)
{
    static uint8_t one[SCP_APDU_MAX];
    size_t n;
    scp_apdu a;
    if (scp_hex_decode(hex, one, sizeof(one), &n) != SCP_OK)
        return scp_cli_fail(c, SCP_EXIT_USAGE,
                            "%s: \"%.40s%s\" is not an APDU in hex (an even number of hex "
                            "digits, at most %d bytes); nothing was sent",
                            where, hex, strlen(hex) > 40 ? "..." : "", SCP_APDU_MAX);
    if (scp_apdu_parse(one, n, &a) != SCP_OK)
        return scp_cli_fail(c, SCP_EXIT_USAGE,
                            "%s: %.40s%s is not a well-formed APDU (CLA INS P1 P2, then Lc and "
                            "data, Le: ISO 7816-4 5.1); nothing was sent",
                            where, hex, strlen(hex) > 40 ? "..." : "");
    if (l->n >= APDU_LIST_MAX)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "more than %d APDUs in one call; split them",
                            APDU_LIST_MAX);
    if (l->n + 2 > l->n_cap) {
        size_t nc = l->n_cap ? 2 * l->n_cap : 64;
        size_t *o = realloc(l->off, nc * sizeof(*o));
        if (!o)
            return scp_cli_fail(c, SCP_EXIT_LOCAL, "out of memory reading APDUs");
        l->off = o;
        l->n_cap = nc;
    }
    if (l->used + n > l->cap) {
        size_t nc = l->cap ? 2 * l->cap : 4096;
        uint8_t *b;
        while (nc < l->used + n)
            nc *= 2;
        if (!(b = realloc(l->buf, nc)))
            return scp_cli_fail(c, SCP_EXIT_LOCAL, "out of memory reading APDUs");
        l->buf = b;
        l->cap = nc;
    }
    memcpy(l->buf + l->used, one, n);
    l->off[l->n++] = l->used;
    l->used += n;
    l->off[l->n] = l->used;
    return SCP_EXIT_OK;
}

static int list_file(scp_cli *c, apdu_list *l, const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    const char *name = f == stdin ? "stdin" : path;
    char *line = NULL, where[300];
    size_t cap = 0;
    ssize_t len;
    int rc = SCP_EXIT_OK;
    if (!f)
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "-f %s: %s", path, strerror(errno));
    for (unsigned long no = 1; rc == SCP_EXIT_OK && (len = getline(&line, &cap, f)) >= 0; no++) {
        char *p = line, *e = line + len;
        snprintf(where, sizeof(where), "line %lu of %s", no, name);
        if ((size_t)len > APDU_TEXT_MAX) {
            rc = scp_cli_fail(c, SCP_EXIT_USAGE, "%s: longer than any APDU; nothing was sent",
                              where);
            break;
        }
        if (memchr(line, 0, (size_t)len)) {
            rc = scp_cli_fail(c, SCP_EXIT_USAGE, "%s: a NUL byte: not a text file; nothing "
                                                 "was sent", where);
            break;
        }
        while (p < e && (*p == ' ' || *p == '\t'))
            p++;
        while (e > p && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
            *--e = 0;
        if (p == e || *p == '#')
            continue;
        rc = list_add(c, l, p, where);
    }
    if (rc == SCP_EXIT_OK && ferror(f))
        rc = scp_cli_fail(c, SCP_EXIT_LOCAL, "-f %s: read error", path);
    free(line);
    if (f != stdin)
        fclose(f);
    return rc;
}

static void print_response(scp_cli *c, json_object *arr, const uint8_t *cmd, size_t cl,
                           const uint8_t *resp, size_t rl, uint16_t sw)
{
    json_object *e = json_object_new_object();
    char h[8];
    snprintf(h, sizeof(h), "%04X", sw);
    json_object_object_add(e, "command", scp_cli_jhex(cmd, cl));
    json_object_object_add(e, "data", scp_cli_jhex(resp, rl));
    json_object_object_add(e, "sw", json_object_new_string(h));
    json_object_object_add(e, "sw_text", json_object_new_string(scp_cli_sw_text(sw)));
    json_object_array_add(arr, e);
    if (!c->o.json) {
        for (size_t k = 0; k < rl; k++)
            printf("%02X", resp[k]);
        printf("%s%04X (%s)\n", rl ? " " : "", sw, scp_cli_sw_text(sw));
    }
}

/* --app: SELECT it (after S8/S16 was read from the ISD: an application
 * need not answer GET DATA 66, and guessing wrong costs an attempt). */
static int select_app(scp_cli *c, const char *app, int plain)
{
    uint8_t aid[SCP03_AID_MAX];
    size_t n;
    uint16_t sw = 0;
    int rc;
    if (scp_hex_decode(app, aid, sizeof(aid), &n) != SCP_OK || n < 5)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "--app %s: want an AID of 5 to 16 bytes in hex",
                            app);
    if (!plain && (rc = scp_cli_detect_mode(c)) != SCP_EXIT_OK)
        return rc;
    if ((rc = scp_cli_select(c, aid, n, &sw)) == SCP_EXIT_OK && sw != 0x9000)
        rc = scp_cli_fail_sw(c, sw, "SELECT application (--app)");
    return rc;
}

/* scpkit apdu [--app AID] [--plain] [-f FILE|-] HEX...: any number of
 * APDUs, through one secure channel (or bare with --plain); with --app the
 * application is selected first and the channel opened on it (as yubikit
 * does). Stops at the first error status word. */
int scp_cli_apdu(int argc, char **argv)
{
    static uint8_t resp[SCP_RAPDU_MAX];
    scp_cli c;
    apdu_list l = { 0 };
    json_object *arr;
    const char *app, *file;
    char where[64];
    int plain, rc = scp_cli_begin(&c, argc, argv);
    uint16_t sw = 0x9000;

    app = scp_cli_take(&c, "--app");
    file = scp_cli_take(&c, "-f");
    if (!file)
        file = scp_cli_take(&c, "--file");
    plain = scp_cli_flag(&c, "--plain");
    arr = json_object_new_array();
    json_object_object_add(c.doc, "responses", arr);
    for (int i = 1; rc == SCP_EXIT_OK && i < c.o.argc; i++) {
        snprintf(where, sizeof(where), "argument %d", i);
        rc = c.o.argv[i][0] == '-'
                 ? scp_cli_fail(&c, SCP_EXIT_USAGE, "apdu: unknown option %s", c.o.argv[i])
                 : list_add(&c, &l, c.o.argv[i], where);
    }
    if (rc == SCP_EXIT_OK && file)
        rc = list_file(&c, &l, file);
    if (rc == SCP_EXIT_OK && l.n == 0)
        rc = scp_cli_fail(&c, SCP_EXIT_USAGE,
                          "usage: scpkit apdu [--app AID] [--plain] [-f FILE|-] HEX... (no "
                          "APDU given)");
    if (rc == SCP_EXIT_OK && !plain)
        rc = scp_cli_resolve_keys(&c);
    if (rc == SCP_EXIT_OK)
        rc = scp_cli_connect(&c);
    if (rc == SCP_EXIT_OK && app)
        rc = select_app(&c, app, plain);
    if (rc == SCP_EXIT_OK && !plain)
        rc = scp_cli_open_channel(&c);
    for (size_t i = 0; rc == SCP_EXIT_OK && i < l.n; i++) {
        const uint8_t *cmd = l.buf + l.off[i];
        size_t cl = l.off[i + 1] - l.off[i], rl = 0;
        if ((rc = scp_cli_send(&c, cmd, cl, resp, sizeof(resp), &rl, &sw)) != SCP_EXIT_OK) {
            if (i + 1 < l.n)
                fprintf(stderr, "scpkit: stopped at APDU %zu of %zu; the %zu after it were not "
                                "sent\n", i + 1, l.n, l.n - i - 1);
            break;
        }
        print_response(&c, arr, cmd, cl, resp, rl, sw);
        /* 9000 and warnings are fine; 63xx mostly says a check failed */
        if (sw != 0x9000 && (sw >> 8) != 0x62 && sw != 0x6310) {
            char h[8];
            snprintf(h, sizeof(h), "%04X", sw);
            json_object_object_add(c.doc, "sw", json_object_new_string(h));
            rc = scp_cli_fail(&c, SCP_EXIT_REFUSED, "APDU %zu of %zu: the card answered %04X (%s)",
                              i + 1, l.n, sw, scp_cli_sw_text(sw));
            if (i + 1 < l.n)
                fprintf(stderr, "scpkit: the %zu APDUs after it were not sent\n",
                        l.n - i - 1);
        }
    }
    list_free(&l);
    return scp_cli_end(&c, rc);
}

static void add_entry(scp_cli *c, json_object *arr, uint8_t kind, const char *label,
                      const uint8_t *aid, size_t aid_len, uint8_t st, const uint8_t *priv,
                      size_t priv_len)
{
    char hex[40] = "";
    json_object *j = json_object_new_object();
    scp_cli_hex(aid, aid_len > 16 ? 16 : aid_len, hex, sizeof(hex));
    json_object_object_add(j, "kind", json_object_new_string(label));
    json_object_object_add(j, "aid", json_object_new_string(hex));
    const char *state = scp_cli_lifecycle_name(kind, st, priv_len > 0 && (priv[0] & 0x80));
    json_object_object_add(j, "lifecycle", json_object_new_string(state));
    if (priv_len)
        json_object_object_add(j, "privileges", scp_cli_jhex(priv, priv_len));
    json_object_array_add(arr, j);
    if (!c->o.json)
        printf("%-5s %-32s %s (%02X)\n", label, hex, state, st);
}

/* GPC 11.4.3.2 (P2 02): E3 { 4F AID, 9F70 life cycle, C5 privileges } */
static void parse_tlv_format(scp_cli *c, json_object *arr, uint8_t kind, const char *label,
                             const uint8_t *p, size_t n)
{
    scp_rd r;
    scp_tlv e, aid, lc, priv;
    scp_rd_init(&r, p, n);
    while (scp_tlv_next(&r, &e) == 1) {
        uint8_t st = 0;
        if (e.tag != 0xE3 || scp_tlv_find(e.val, e.len, 0x4F, &aid) != 1)
            continue;
        if (scp_tlv_find(e.val, e.len, 0x9F70, &lc) == 1 && lc.len >= 1)
            st = lc.val[0];
        if (scp_tlv_find(e.val, e.len, 0xC5, &priv) != 1)
            priv.len = 0;
        add_entry(c, arr, kind, label, aid.val, aid.len, st, priv.val, priv.len);
    }
}

/* GPC 11.4.3.1 (P2 00, older cards): AID length, AID, life cycle,
 * privileges (1 byte), repeated; load files (P1 20) have no privileges. */
static void parse_legacy_format(scp_cli *c, json_object *arr, uint8_t kind, const char *label,
                                const uint8_t *p, size_t n)
{
    scp_rd r;
    scp_rd_init(&r, p, n);
    for (;;) {
        uint8_t al, st, pv = 0;
        const uint8_t *aid;
        if (scp_rd_u8(&r, &al) != SCP_OK || scp_rd_ptr(&r, al, &aid) != SCP_OK ||
            scp_rd_u8(&r, &st) != SCP_OK || (kind != 0x20 && scp_rd_u8(&r, &pv) != SCP_OK))
            return;
        add_entry(c, arr, kind, label, aid, al, st, &pv, kind != 0x20);
    }
}

/* One GET STATUS kind (GPC 11.4: P1 80 ISD, 40 applications and SDs,
 * 20 load files), P2 02 (TLV) then 03 (next) while the card says 6310;
 * cards that refuse P2 02 (6A86) get the older format, P2 00 / 01. */
static int status_kind(scp_cli *c, uint8_t kind, const char *label, json_object *arr)
{
    uint8_t cmd[] = { 0x80, 0xF2, kind, 0x02, 0x02, 0x4F, 0x00, 0x00 }, resp[4096];
    size_t rl;
    uint16_t sw;
    int rc, legacy = 0;
    for (int round = 0; round < 32; round++) {
        if ((rc = scp_cli_send(c, cmd, sizeof(cmd), resp, sizeof(resp), &rl, &sw)) != SCP_EXIT_OK)
            return rc;
        if (sw == 0x6A88 || sw == 0x6A82) /* none of this kind */
            return SCP_EXIT_OK;
        if (sw == 0x6A86 && !legacy && round == 0) {
            legacy = 1;
            cmd[3] = 0x00;
            round = -1;
            continue;
        }
        if (sw != 0x9000 && sw != 0x6310)
            return scp_cli_fail_sw(c, sw, "GET STATUS");
        if (legacy)
            parse_legacy_format(c, arr, kind, label, resp, rl);
        else
            parse_tlv_format(c, arr, kind, label, resp, rl);
        if (sw == 0x9000)
            return SCP_EXIT_OK;
        cmd[3] = legacy ? 0x01 : 0x03; /* GET STATUS [next occurrence] */
    }
    return scp_cli_fail(c, SCP_EXIT_CARD, "GET STATUS: the card never stopped saying 6310");
}

int scp_cli_status(int argc, char **argv)
{
    scp_cli c;
    json_object *arr = json_object_new_array();
    int rc = scp_cli_begin(&c, argc, argv);
    json_object_object_add(c.doc, "entries", arr);
    if (rc == SCP_EXIT_OK)
        rc = scp_cli_no_more(&c, 1);
    if (rc == SCP_EXIT_OK)
        rc = scp_cli_authenticate(&c);
    if (rc == SCP_EXIT_OK)
        rc = status_kind(&c, 0x80, "ISD", arr);
    if (rc == SCP_EXIT_OK)
        rc = status_kind(&c, 0x40, "APP", arr);
    if (rc == SCP_EXIT_OK)
        rc = status_kind(&c, 0x20, "PKG", arr);
    return scp_cli_end(&c, rc);
}

/* scpkit lifecycle STATE: SET STATUS of the card (GPC 11.10, P1 80). */
int scp_cli_lifecycle(int argc, char **argv)
{
    static const struct {
        const char *name;
        uint8_t v;
    } states[] = { { "initialized", 0x07 },
                   { "secured", 0x0F },
                   { "card_locked", 0x7F },
                   { "locked", 0x7F },
                   { "terminated", 0xFF } };
    uint8_t cmd[5] = { 0x80, 0xF0, 0x80, 0x00, 0x00 }, resp[16];
    size_t rl;
    uint16_t sw;
    scp_cli c;
    int rc = scp_cli_begin(&c, argc, argv), found = 0;
    int yes = scp_cli_flag(&c, "--yes");
    if (rc == SCP_EXIT_OK && c.o.argc != 2)
        rc = scp_cli_fail(&c, SCP_EXIT_USAGE,
                          "usage: scpkit lifecycle initialized|secured|card_locked|terminated");
    for (size_t i = 0; rc == SCP_EXIT_OK && i < sizeof(states) / sizeof(states[0]); i++)
        if (strcasecmp(c.o.argv[1], states[i].name) == 0) {
            cmd[3] = states[i].v;
            found = 1;
        }
    if (rc == SCP_EXIT_OK && !found)
        rc = scp_cli_fail(&c, SCP_EXIT_USAGE,
                          "unknown life cycle state \"%s\": want initialized, secured, "
                          "card_locked or terminated",
                          c.o.argv[1]);
    if (rc == SCP_EXIT_OK && cmd[3] == 0xFF && !yes)
        rc = scp_cli_fail(&c, SCP_EXIT_USAGE,
                          "TERMINATED cannot be undone: add --yes if you mean it");
    if (rc == SCP_EXIT_OK)
        rc = scp_cli_authenticate(&c);
    if (rc == SCP_EXIT_OK)
        rc = scp_cli_send(&c, cmd, sizeof(cmd) - 1, resp, sizeof(resp), &rl, &sw);
    if (rc == SCP_EXIT_OK && sw != 0x9000)
        rc = scp_cli_fail_sw(&c, sw, "SET STATUS");
    if (rc == SCP_EXIT_OK) {
        json_object_object_add(c.doc, "lifecycle",
                               json_object_new_string(scp_cli_lifecycle_name(0x80, cmd[3], 1)));
        if (!c.o.json)
            printf("Card life cycle set to %s (%02X)\n", scp_cli_lifecycle_name(0x80, cmd[3], 1), cmd[3]);
    }
    return scp_cli_end(&c, rc);
}
