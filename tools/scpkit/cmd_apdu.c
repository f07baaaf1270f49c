/* scpkit apdu | status | lifecycle: commands that need a secure channel. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "scpkit/apdu.h"
#include "scpkit/tlv.h"

/* scpkit apdu [--app AID] [--plain] HEX...: with --app the application is
 * selected first and the channel opened on it (as yubikit does). */
int scp_cli_apdu(int argc, char **argv)
{
    static uint8_t cmd[SCP_APDU_MAX], resp[SCP_RAPDU_MAX];
    scp_cli c;
    json_object *arr;
    const char *app;
    int plain, rc = scp_cli_begin(&c, argc, argv);
    uint16_t sw = 0x9000;

    app = scp_cli_take(&c, "--app");
    plain = scp_cli_flag(&c, "--plain");
    arr = json_object_new_array();
    json_object_object_add(c.doc, "responses", arr);
    if (rc == SCP_EXIT_OK && c.o.argc < 2)
        rc = scp_cli_fail(&c, SCP_EXIT_USAGE, "usage: scpkit apdu [--app AID] [--plain] HEX...");
    if (rc == SCP_EXIT_OK && !plain)
        rc = scp_cli_resolve_keys(&c);
    if (rc == SCP_EXIT_OK)
        rc = scp_cli_connect(&c);
    if (rc == SCP_EXIT_OK && app) {
        uint8_t aid[SCP03_AID_MAX];
        size_t n;
        if (scp_hex_decode(app, aid, sizeof(aid), &n) != SCP_OK || n < 5)
            rc = scp_cli_fail(&c, SCP_EXIT_USAGE, "--app %s: want an AID of 5 to 16 bytes", app);
        else if ((rc = scp_cli_select(&c, aid, n, &sw)) == SCP_EXIT_OK && sw != 0x9000)
            rc = scp_cli_fail_sw(&c, sw, "SELECT application");
    }
    if (rc == SCP_EXIT_OK && !plain)
        rc = scp_cli_open_channel(&c);
    for (int i = 1; rc == SCP_EXIT_OK && i < c.o.argc; i++) {
        size_t cl, rl;
        scp_apdu a;
        json_object *e;
        if (scp_hex_decode(c.o.argv[i], cmd, sizeof(cmd), &cl) != SCP_OK ||
            scp_apdu_parse(cmd, cl, &a) != SCP_OK) {
            rc = scp_cli_fail(&c, SCP_EXIT_USAGE, "not an APDU: %s", c.o.argv[i]);
            break;
        }
        if ((rc = scp_cli_send(&c, cmd, cl, resp, sizeof(resp), &rl, &sw)) != SCP_EXIT_OK)
            break;
        e = json_object_new_object();
        json_object_object_add(e, "command", scp_cli_jhex(cmd, cl));
        json_object_object_add(e, "data", scp_cli_jhex(resp, rl));
        {
            char h[8];
            snprintf(h, sizeof(h), "%04X", sw);
            json_object_object_add(e, "sw", json_object_new_string(h));
        }
        json_object_object_add(e, "sw_text", json_object_new_string(scp_cli_sw_text(sw)));
        json_object_array_add(arr, e);
        if (!c.o.json) {
            for (size_t k = 0; k < rl; k++)
                printf("%02X", resp[k]);
            printf("%s%04X (%s)\n", rl ? " " : "", sw, scp_cli_sw_text(sw));
        }
        /* 9000 and warnings are fine; 63xx mostly says a check failed */
        if (sw != 0x9000 && (sw >> 8) != 0x62 && sw != 0x6310)
            rc = scp_cli_fail(&c, SCP_EXIT_REFUSED, "the card answered %04X (%s)", sw,
                              scp_cli_sw_text(sw));
    }
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
        rc = scp_cli_fail(&c, SCP_EXIT_USAGE, "unknown life cycle state \"%s\"", c.o.argv[1]);
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
