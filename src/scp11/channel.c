/* SCP11 over a transport (host role): the whole opening a host makes
 * against a card, as yubikit's SecurityDomainSession does it: GET DATA
 * BF21 for the SD's certificates, their verification against the
 * operator's trust anchors, PSO with the OCE chain (11a/c), then MUTUAL or
 * INTERNAL AUTHENTICATE; the session then serves scp_channel_send like an
 * SCP03 one. */
#include <stdio.h>
#include <string.h>

#include "scpkit/apdu.h"
#include "scpkit/channel.h"
#include "scpkit/scp11.h"
#include "core/guard.h"

#define SW_OF(p, n) ((uint16_t)((p)[(n)-2] << 8 | (p)[(n)-1]))

static void say(scp11_channel_opts *o, const char *what, uint16_t sw)
{
    if (o->err != NULL) {
        o->err->index = 0;
        snprintf(o->err->text, sizeof(o->err->text), "%s: card answered %04X", what, sw);
    }
}

/* GET DATA BF21 for kid/kvn; the SD's key from its verified chain. */
static int sd_key(scp_channel *ch, scp11_channel_opts *o, uint8_t kid, uint8_t kvn,
                  scp_ec_key *pk)
{
    static uint8_t resp[4096];
    uint8_t cmd[16];
    size_t n, rl, off[SCP_CERT_MAX_CHAIN], lens[SCP_CERT_MAX_CHAIN], nc = 0, i;
    scp_cert certs[SCP_CERT_MAX_CHAIN];
    int rc;

    GUARD(scp11_get_certs_command(kid, kvn, cmd, sizeof(cmd), &n));
    GUARD(scp_transmit(ch->t, cmd, n, resp, sizeof(resp), &rl));
    ch->last_sw = SW_OF(resp, rl);
    if (ch->last_sw != 0x9000) {
        say(o, "GET DATA certificate store (BF21)", ch->last_sw);
        return SCP_E_SW;
    }
    GUARD(scp_cert_split(resp, rl - 2, off, lens, SCP_CERT_MAX_CHAIN, &nc));
    for (i = 0; i < nc; i++) {
        rc = scp_cert_parse(&certs[i], resp + off[i], lens[i]);
        if (rc != SCP_OK) {
            if (o->err != NULL) {
                o->err->index = (int)i + 1;
                snprintf(o->err->text, sizeof(o->err->text),
                         "SD certificate %zu of %zu: does not parse", i + 1, nc);
            }
            goto out;
        }
    }
    /* the SD's chain against the anchors the operator named */
    rc = scp_cert_verify_chain(certs, nc, o->sd_trust, o->now, SCP_KU_KEY_AGREEMENT, o->err);
    if (rc == SCP_OK)
        rc = scp_ec_dup(pk, &certs[nc - 1].ec, 0);
out:
    while (i-- > 0)
        scp_cert_free(&certs[i]);
    return rc;
}

static int pso(scp_channel *ch, scp11_channel_opts *o, uint8_t ca_kvn)
{
    uint8_t cmd[300], resp[64];
    size_t n, rl;
    for (size_t i = 0; i < o->oce_n; i++) {
        size_t done = 0;
        while (done < o->oce_len[i]) {
            GUARD(scp11_pso_next(o->oce_chain + o->oce_off[i], o->oce_len[i], &done, ca_kvn,
                                 o->oce_ca_kid ? o->oce_ca_kid : SCP11_KID_OCE_CA,
                                 i + 1 < o->oce_n, o->pso_flags, cmd, sizeof(cmd), &n));
            GUARD(scp_transmit(ch->t, cmd, n, resp, sizeof(resp), &rl));
            ch->last_sw = SW_OF(resp, rl);
            if (ch->last_sw != 0x9000) {
                if (o->err != NULL) {
                    o->err->index = (int)i + 1;
                    snprintf(o->err->text, sizeof(o->err->text),
                             "OCE certificate %zu of %zu refused by the card (PSO): %04X", i + 1,
                             o->oce_n, ch->last_sw);
                }
                return SCP_E_AUTH;
            }
        }
    }
    return SCP_OK;
}

int scp11_channel_open(scp_channel *ch, scp_transport *t, scp11_channel_opts *o)
{
    uint8_t cmd[200], resp[300];
    size_t n, rl;
    scp11_params p = { 0 };
    scp11_session s = { 0 };
    scp_ec_key pk = { 0 };
    int rc;

    ENSURE(ch != NULL && t != NULL && o != NULL && o->sd_trust != NULL, SCP_E_ARG);
    ENSURE(o->variant >= SCP11_A && o->variant <= SCP11_C, SCP_E_ARG);
    ENSURE(o->variant == SCP11_B || ((o->sk_oce != NULL || o->oce_ext != NULL) && o->oce_n > 0),
           SCP_E_ARG);
    memset(ch, 0, sizeof(*ch));
    ch->t = t;
    p.variant = (uint8_t)o->variant;
    p.kid = o->kid ? o->kid : scp11_default_kid(o->variant);
    p.kvn = o->kvn ? o->kvn : (o->variant == SCP11_B ? 0x01 : 0x03);
    p.key_len = o->key_len ? o->key_len : 16;
    ENSURE(o->mac_len == 0 || o->mac_len == 8 || o->mac_len == 16, SCP_E_ARG);
    p.mac_len = o->mac_len ? o->mac_len : 8; /* S16: both ends configured for it */
    GUARD_GOTO(sd_key(ch, o, p.kid, p.kvn, &pk), out);
    if (o->variant != SCP11_B)
        GUARD_GOTO(pso(ch, o, o->oce_ca_kvn ? o->oce_ca_kvn : p.kvn), out);
    if (o->variant != SCP11_B && o->sk_oce == NULL)
        GUARD_GOTO(scp11_host_begin_oce(&s, &p, &pk, o->oce_ext, NULL), out);
    else
        GUARD_GOTO(scp11_host_begin(&s, &p, &pk, o->sk_oce, NULL), out);
    GUARD_GOTO(scp11_host_auth_command(&s, 0x80, cmd, sizeof(cmd), &n), out);
    GUARD_GOTO(scp_transmit(t, cmd, n, resp, sizeof(resp), &rl), out);
    ch->last_sw = SW_OF(resp, rl);
    rc = SCP_E_AUTH;
    if (ch->last_sw != 0x9000) {
        ch->fail_rc = SCP_E_SW;
        say(o, p.variant == SCP11_B ? "INTERNAL AUTHENTICATE" : "MUTUAL AUTHENTICATE",
            ch->last_sw);
        goto out;
    }
    rc = scp11_host_auth_response(&s, resp, rl - 2);
    if (rc != SCP_OK) {
        ch->fail_rc = rc;
        if (o->err != NULL)
            snprintf(o->err->text, sizeof(o->err->text),
                     "the card's receipt does not match: wrong SD key or a man in the middle");
        rc = SCP_E_AUTH;
        goto out;
    }
    /* the session becomes the channel's (SCP03 secure messaging) */
    ch->s = s.sm;
    memset(&s.sm, 0, sizeof(s.sm));
    ch->level = ch->s.level;
    ch->kvn = p.kvn;
    memcpy(ch->dek, s.dek, p.key_len);
    ch->dek_len = p.key_len;
out:
    scp11_end(&s);
    scp_ec_free(&pk);
    return rc;
}
