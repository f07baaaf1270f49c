/* scpkit CLI: reaching the card (a PC/SC reader or a virtual card in
 * process), selecting the security domain, the readable APDU trace, and
 * opening the secure channel without ever guessing twice. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "scpkit/apdu.h"
#if defined(SCP_HAVE_CARD)
#include "scpkit/card.h"
#endif

/* GP ISD AIDs tried in order when no --sd is given (GPC 2.3 and older). */
static const char *const isd_aids[] = { "A000000151000000", "A0000001510000", "A000000003000000" };

static const char *ins_name(uint8_t ins)
{
    switch (ins) {
    case 0xA4: return "SELECT";
    case 0x50: return "INITIALIZE UPDATE";
    case 0x82: return "EXTERNAL AUTHENTICATE";
    case 0xCA: return "GET DATA";
    case 0xC0: return "GET RESPONSE";
    case 0xF2: return "GET STATUS";
    case 0xF0: return "SET STATUS";
    case 0xD8: return "PUT KEY";
    case 0xE4: return "DELETE";
    default: return "";
    }
}

static void trace_hex(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        fprintf(stderr, "%02X", p[i]);
}

/* stderr: "> 80CA006600  GET DATA" / "< 66..  9000 success". PUT KEY data
 * is never shown, wrapped or not (it is key material under the DEK). */
static void trace(void *ctx, int dir, const uint8_t *p, size_t len)
{
    static const char *const tag[] = { "> ", "< ", "  plain > ", "  plain < " };
    uint16_t sw;
    (void)ctx;
    fprintf(stderr, "%s", tag[dir & 3]);
    if ((dir == 0 || dir == 2) && len >= 4) {
        if (p[1] == 0xD8 && len > 5) {
            trace_hex(p, 5);
            fprintf(stderr, " [%zu bytes of key data redacted]", len - 5);
        } else {
            trace_hex(p, len);
        }
        fprintf(stderr, "  %s\n", ins_name(p[1]));
        return;
    }
    if (len < 2) {
        fprintf(stderr, "(short response)\n");
        return;
    }
    sw = (uint16_t)(p[len - 2] << 8 | p[len - 1]);
    trace_hex(p, len - 2);
    fprintf(stderr, "%s%04X %s\n", len > 2 ? "  " : "", sw, scp_cli_sw_text(sw));
}

static int open_card_dir(scp_cli *c)
{
#if defined(SCP_HAVE_CARD)
    char err[256] = "";
    scp_card *card = NULL;
    int rc = scp_card_open(c->o.card_dir, &card, err, sizeof(err));
    if (rc != SCP_OK)
        return scp_cli_fail(c, rc == SCP_E_CORRUPT ? SCP_EXIT_LOCAL : SCP_EXIT_CARD, "card %s: %s",
                            c->o.card_dir, err[0] ? err : scp_strerror(rc));
    c->card = card;
    scp_card_transport(card, &c->t);
    c->t.close = NULL; /* closed by scp_card_close in scp_cli_end */
    c->t_open = 1;
    return SCP_EXIT_OK;
#else
    return scp_cli_fail(c, SCP_EXIT_USAGE, "--card: the virtual card is not built into scpkit");
#endif
}

void scp_cli_close_card(scp_cli *c)
{
#if defined(SCP_HAVE_CARD)
    if (c->card)
        scp_card_close((scp_card *)c->card);
#endif
    c->card = NULL;
}

int scp_cli_select(scp_cli *c, const uint8_t *aid, size_t aid_len, uint16_t *sw)
{
    uint8_t cmd[5 + SCP03_AID_MAX + 1], resp[258];
    size_t rl;
    int rc;
    if (aid_len > SCP03_AID_MAX)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "AID longer than 16 bytes");
    memcpy(cmd, "\x00\xA4\x04\x00", 4);
    cmd[4] = (uint8_t)aid_len;
    memcpy(cmd + 5, aid, aid_len);
    cmd[5 + aid_len] = 0x00;
    rc = scp_transmit(&c->t, cmd, 6 + aid_len, resp, sizeof(resp), &rl);
    if (rc != SCP_OK)
        return scp_cli_fail_rc(c, rc, "SELECT");
    *sw = (uint16_t)(resp[rl - 2] << 8 | resp[rl - 1]);
    return SCP_EXIT_OK;
}

/* SELECT the SD given with --sd, else the first ISD AID the card knows. */
static int select_sd(scp_cli *c)
{
    uint8_t aid[SCP03_AID_MAX];
    size_t n;
    uint16_t sw = 0;
    int rc;
    for (size_t i = 0; i < sizeof(isd_aids) / sizeof(isd_aids[0]); i++) {
        const char *hex = c->o.sd_aid ? c->o.sd_aid : isd_aids[i];
        if (scp_hex_decode(hex, aid, sizeof(aid), &n) != SCP_OK || n < 5)
            return scp_cli_fail(c, SCP_EXIT_USAGE, "--sd %s: want an AID of 5 to 16 bytes", hex);
        if ((rc = scp_cli_select(c, aid, n, &sw)) != SCP_EXIT_OK)
            return rc;
        if (sw == 0x9000) {
            memcpy(c->sd_aid, aid, c->sd_aid_len = n);
            break;
        }
        if (c->o.sd_aid)
            break;
    }
    if (sw != 0x9000 && c->o.sd_aid)
        return scp_cli_fail_sw(c, sw, "SELECT security domain (--sd)");
    if (sw != 0x9000)
        return scp_cli_fail_sw(c, sw,
                               "SELECT security domain: none of the GP ISD AIDs "
                               "(A000000151000000, A0000001510000, A000000003000000) answered; "
                               "give the card's with --sd AID");
    return SCP_EXIT_OK;
}

/* No -r: the one reader that holds a card (like ykman, it finds it). */
static int find_card(scp_cli *c, const char **reader)
{
    static scp_pcsc_reader r[16];
    size_t n = 0, hit = 0, cards = 0;
    char names[512] = "";
    if (scp_pcsc_list(r, 16, &n) != SCP_OK)
        return scp_cli_fail(c, SCP_EXIT_CARD, "%s", scp_pcsc_last_error());
    if (n == 0)
        return scp_cli_fail(c, SCP_EXIT_CARD, "no reader (or use --card DIR for a virtual card)");
    for (size_t i = 0; i < n; i++)
        if (r[i].card_present) {
            size_t used = strlen(names);
            int w = snprintf(names + used, sizeof(names) - used, "%s\"%s\"",
                             cards ? ", " : "", r[i].name);
            if (w < 0 || (size_t)w >= sizeof(names) - used)
                names[sizeof(names) - 1] = '\0'; /* list cut short; the count still holds */
            hit = i;
            cards++;
        }
    if (cards == 0)
        return scp_cli_fail(c, SCP_EXIT_CARD, "no card in any reader (insert one, or use --card "
                                              "DIR for a virtual card)");
    if (cards > 1)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "cards in several readers (%s): pick one with -r",
                            names);
    *reader = r[hit].name;
    return SCP_EXIT_OK;
}

int scp_cli_connect(scp_cli *c)
{
    int rc;
    if (c->o.card_dir) {
        if ((rc = open_card_dir(c)) != SCP_EXIT_OK)
            return rc;
    } else {
        const char *reader = c->o.reader;
        if (!reader && (rc = find_card(c, &reader)) != SCP_EXIT_OK)
            return rc;
        rc = scp_pcsc_open(reader, &c->t);
        if (rc != SCP_OK)
            return scp_cli_fail(c, rc == SCP_E_ARG ? SCP_EXIT_USAGE : SCP_EXIT_CARD, "%s",
                                scp_pcsc_last_error());
        c->t_open = 1;
    }
    if (c->o.trace) {
        c->t.trace = trace;
        fprintf(stderr, "scpkit: talking to %s\n", c->t.name ? c->t.name : "card");
    }
    return select_sd(c);
}

int scp_cli_reselect(scp_cli *c)
{
    if (c->ch_open) {
        scp_channel_close(&c->ch);
        c->ch_open = 0;
    }
    if (c->ch02_open) {
        scp02_channel_close(&c->ch02);
        c->ch02_open = 0;
    }
    return select_sd(c); /* selecting ends the card's session too */
}

/* --scp 02: SCP02 with 3DES keys (16 bytes), level mac+enc by default. */
static int open_channel02(scp_cli *c)
{
    scp02_keys k;
    uint8_t level = c->o.level >= 0 ? (uint8_t)c->o.level : 0x03;
    int rc;
    if (c->keys.key_len != 16)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "--scp 02: the keys are 3DES keys of 16 bytes");
    memcpy(k.enc, c->keys.enc, 16);
    memcpy(k.mac, c->keys.mac, 16);
    memcpy(k.dek, c->keys.dek, 16);
    k.kvn = c->keys.kvn;
    rc = scp02_channel_open(&c->ch02, &c->t, &k, 0, level);
    scp_wipe(&k, sizeof(k));
    if (rc == SCP_OK) {
        c->ch02_open = 1;
        if (c->o.trace)
            fprintf(stderr, "scpkit: SCP02 channel open: KVN %02X, i %02X, level %02X\n",
                    c->ch02.kvn, c->ch02.i, level);
        return SCP_EXIT_OK;
    }
    if (rc == SCP_E_CRYPTOGRAM)
        return scp_cli_fail(c, SCP_EXIT_AUTH,
                            "authentication failed: the card's cryptogram does not match these "
                            "keys; nothing more was sent, not retrying");
    if (rc == SCP_E_AUTH)
        return scp_cli_fail_sw(c, c->ch02.last_sw, "authentication failed");
    return scp_cli_fail_rc(c, rc, "opening the SCP02 channel");
}

int scp_cli_detect_mode(scp_cli *c)
{
    scp_recog r;
    uint16_t sw = 0;
    uint8_t i;
    if (c->chopts.s16 >= 0)
        return SCP_EXIT_OK;
    c->s16_known = scp_recog_get(&c->t, &r, &sw) == SCP_OK && scp_recog_scp03(&r, &i);
    c->chopts.s16 = c->s16_known && (i & SCP03_I_S16) ? 1 : 0;
    if (c->o.trace)
        fprintf(stderr, "scpkit: %s\n",
                c->s16_known ? (c->chopts.s16 ? "recognition data: S16" : "recognition data: S8")
                             : "no recognition data: trying S8 first");
    return SCP_EXIT_OK;
}

/* S8 or S16 (GPC Amd D v1.2 5.1: the i parameter's low bit): from the
 * card recognition data when the card gives it (scp_cli_detect_mode, on
 * the ISD before an application is selected). When it does not, S8 first;
 * a card in the other mode answers INITIALIZE UPDATE with 6700 (wrong
 * length) before it computes anything or counts a try, and then, once,
 * the other length is tried, and scpkit says so: the only time it sends a
 * second INITIALIZE UPDATE. Any other failure is never retried. */
static int open_once(scp_cli *c)
{
    int rc = scp_channel_open(&c->ch, &c->t, &c->keys, &c->chopts);
    if (rc == SCP_E_SW && c->ch.last_sw == 0x6700 && !c->s16_known) {
        int was = c->chopts.s16;
        c->chopts.s16 = !was;
        c->s16_known = 1;
        fprintf(stderr,
                "scpkit: note: the card refused a %d-byte host challenge with 6700 (wrong "
                "length) before any cryptogram, so no try was spent; trying %d bytes (S%d) once\n",
                was ? 16 : 8, was ? 8 : 16, was ? 8 : 16);
        rc = scp_channel_open(&c->ch, &c->t, &c->keys, &c->chopts);
    }
    return rc;
}

/* What a refused INITIALIZE UPDATE or EXTERNAL AUTHENTICATE means, and
 * what to do about it. */
static int fail_open_sw(scp_cli *c, int rc, uint16_t sw)
{
    char what[256];
    const int ea = rc == SCP_E_AUTH && c->ch.fail_rc == SCP_E_SW;
    const char *cmd = ea ? "EXTERNAL AUTHENTICATE" : "INITIALIZE UPDATE";
    const char *hint = "";
    char kvn[8] = "";
    if (c->chopts.kvn)
        snprintf(kvn, sizeof(kvn), " %02X", c->chopts.kvn);
    switch (sw) {
    case 0x6A88:
        hint = "the card holds no such key set: see `scpkit keys list`, pick one with --kvn";
        break;
    case 0x6A80:
    case 0x6700:
        hint = ea ? "the card refused the host cryptogram's form"
                  : "the card refused the host challenge length (S8/S16 mode)";
        break;
    case 0x6A86:
        hint = ea ? "the card does not accept this security level: try another --level"
                  : "the card refused the KVN or parameters";
        break;
    case 0x6983:
        hint = "the key set is blocked: too many failed authentications";
        break;
    case 0x6982:
    case 0x6985:
        hint = "the card (or the selected application) does not allow it now: card locked, "
               "counter exhausted, or the application takes no SCP03 (check --app/--sd)";
        break;
    case 0x6D00:
    case 0x6E00:
        hint = "the selected application does not know the command: select the security "
               "domain (--sd) or the right --app";
        break;
    case 0x6300:
        hint = "the card did not accept the host cryptogram: wrong keys for this key set";
        break;
    }
    snprintf(what, sizeof(what), "opening the secure channel (KVN%s, %s): %s refused%s%s",
             kvn[0] ? kvn : " 00", c->chopts.s16 ? "S16" : "S8", cmd, hint[0] ? ": " : "",
             hint);
    return scp_cli_fail_sw(c, sw, what);
}

int scp_cli_open_channel(scp_cli *c)
{
    int rc;
    uint16_t sw;
    if (c->o.scp == 2)
        return open_channel02(c);
    if (scp_cli_scp11_variant(&c->o) != 0)
        return scp_cli_open_scp11(c); /* cli_scp11.c */
    rc = scp_cli_detect_mode(c);
    if (rc != SCP_EXIT_OK)
        return rc;
    rc = open_once(c);
    sw = c->ch.last_sw;
    if (rc == SCP_OK) {
        c->ch_open = 1;
        if (c->o.trace)
            fprintf(stderr, "scpkit: secure channel open: KVN %02X, level %02X, %s\n", c->ch.kvn,
                    c->ch.level, c->ch.s.chal_len == 16 ? "S16" : "S8");
        return SCP_EXIT_OK;
    }
    if (rc == SCP_E_AUTH && c->ch.fail_rc == SCP_E_CRYPTOGRAM)
        return scp_cli_fail(c, SCP_EXIT_AUTH,
                            "authentication failed: the card's cryptogram does not match these "
                            "keys (KVN %02X); nothing more was sent, not retrying",
                            c->ch.kvn);
    if (rc == SCP_E_AUTH && (sw & 0xFFF0) == 0x63C0) {
        if (c->doc)
            json_object_object_add(c->doc, "tries_left", json_object_new_int(sw & 0x0F));
        return scp_cli_fail(c, SCP_EXIT_AUTH,
                            "authentication failed: the card says %u tries left (%04X); not "
                            "retrying",
                            sw & 0x0F, sw);
    }
    if (rc == SCP_E_AUTH || rc == SCP_E_SW)
        return fail_open_sw(c, rc, sw);
    if (rc == SCP_E_LEVEL)
        return scp_cli_fail(c, SCP_EXIT_USAGE,
                            "level %02X is not offered by this card (i = %02X); strongest: %02X",
                            c->chopts.level, c->ch.i, scp_level_strongest(c->ch.i));
    return scp_cli_fail_rc(c, rc, "opening the secure channel");
}

int scp_cli_send(scp_cli *c, const uint8_t *capdu, size_t len, uint8_t *resp, size_t resp_size,
                 size_t *resp_len, uint16_t *sw)
{
    uint8_t r[SCP_RAPDU_MAX];
    size_t rl;
    int rc;
    if (c->ch02_open) {
        rc = scp02_channel_send(&c->ch02, capdu, len, resp, resp_size, resp_len, sw);
        return rc == SCP_OK ? SCP_EXIT_OK : scp_cli_fail_rc(c, rc, "SCP02 channel");
    }
    if (c->ch_open) {
        rc = scp_channel_send(&c->ch, capdu, len, resp, resp_size, resp_len, sw);
        if (rc == SCP_E_MAC || rc == SCP_E_DEAD)
            return scp_cli_fail(c, SCP_EXIT_CARD,
                                "secure channel: %s: the response cannot be trusted and the "
                                "session is over; nothing more was sent",
                                scp_strerror(rc));
        return rc == SCP_OK ? SCP_EXIT_OK : scp_cli_fail_rc(c, rc, "secure channel");
    }
    rc = scp_transmit(&c->t, capdu, len, r, sizeof(r), &rl);
    if (rc != SCP_OK)
        return scp_cli_fail_rc(c, rc, "sending the command to the card");
    *sw = (uint16_t)(r[rl - 2] << 8 | r[rl - 1]);
    if (rl - 2 > resp_size)
        return scp_cli_fail(c, SCP_EXIT_CARD, "response too long (%zu bytes)", rl - 2);
    memcpy(resp, r, rl - 2);
    *resp_len = rl - 2;
    return SCP_EXIT_OK;
}

int scp_cli_get_data(scp_cli *c, uint16_t tag, uint8_t *out, size_t out_size, size_t *out_len,
                     uint16_t *sw)
{
    uint8_t cmd[5] = { 0x80, 0xCA, (uint8_t)(tag >> 8), (uint8_t)tag, 0x00 };
    return scp_cli_send(c, cmd, sizeof(cmd), out, out_size, out_len, sw);
}

int scp_cli_authenticate(scp_cli *c)
{
    int rc = scp_cli_resolve_keys(c);
    if (rc == SCP_EXIT_OK)
        rc = scp_cli_connect(c);
    if (rc == SCP_EXIT_OK)
        rc = scp_cli_open_channel(c);
    return rc;
}

const char *scp_cli_lifecycle_name(uint8_t kind, uint8_t s, int is_sd)
{
    if (kind == 0x80)
        switch (s) {
        case 0x01: return "OP_READY";
        case 0x07: return "INITIALIZED";
        case 0x0F: return "SECURED";
        case 0x7F: return "CARD_LOCKED";
        case 0xFF: return "TERMINATED";
        default: return "unknown";
        }
    if (kind == 0x20)
        return s == 0x01 ? "LOADED" : "unknown";
    /* GPC v2.3 tables 11-4 and 11-5: application and security domain life cycle */
    if (s & 0x80)
        return "LOCKED";
    switch (s) {
    case 0x03: return "INSTALLED";
    case 0x07: return "SELECTABLE";
    case 0x0F: return is_sd ? "PERSONALIZED" : "SELECTABLE+app-specific";
    }
    return (s & 0x07) == 0x07 ? "SELECTABLE+app-specific" : "unknown";
}
