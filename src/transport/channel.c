/* The host side of an SCP03 channel over any transport (GPC Amd D 7.1):
 * INITIALIZE UPDATE, card cryptogram check, EXTERNAL AUTHENTICATE, then
 * protected commands. It never retries an authentication: one wrong try
 * is one try the card counts. */
#include <string.h>

#include "scpkit/apdu.h"
#include "scpkit/channel.h"
#include "core/guard.h"

#define SW_OF(b, n) ((uint16_t)((b)[(n)-2] << 8 | (b)[(n)-1]))
/* Responses are bounded: longer ones (after 61xx reassembly) are refused
 * with SCP_E_BUFFER_TOO_SMALL rather than grown without limit. */
#define SCP_CHANNEL_RESP_MAX 8192

static void trace_plain(scp_transport *t, int dir, const uint8_t *p, size_t len)
{
    if (t->trace)
        t->trace(t->trace_ctx, dir, p, len);
}

/* S16 when the card says so in its recognition data; S8 otherwise
 * (GPC Amd D v1.2 5.1: i b1). */
static size_t challenge_len(scp_transport *t, const scp_channel_opts *o)
{
    scp_recog r;
    uint16_t sw;
    uint8_t i;
    if (o->s16 >= 0)
        return o->s16 ? 16 : 8;
    if (scp_recog_get(t, &r, &sw) == SCP_OK && scp_recog_scp03(&r, &i))
        return (i & SCP03_I_S16) ? 16 : 8;
    return 8;
}

/* The static keys for this card: fixed, diversified from a master with
 * the KDD, or from the caller's hook (e.g. an HSM). */
static int static_keys(scp_channel *ch, const scp03_keys *keys,
                       const scp_channel_opts *o, scp03_keys *out)
{
    if (o->derive)
        GUARD(o->derive(o->derive_ctx, ch->kdd, SCP03_KDD_LEN, ch->kvn, out));
    else if (o->div != SCP_DIV_NONE)
        GUARD(scp_div_derive(o->div, keys->enc, keys->key_len, ch->kdd, SCP03_KDD_LEN, out));
    else
        *out = *keys;
    out->kvn = o->kvn;
    ENSURE(out->key_len <= sizeof(ch->dek), SCP_E_ARG);
    memcpy(ch->dek, out->dek, ch->dek_len = out->key_len);
    return SCP_OK;
}

/* GPC Amd D 7.1.1: INITIALIZE UPDATE. The engine needs the static keys
 * before the command, but a derived key is known only from the card's KDD,
 * so the command is sent from a placeholder session and the real session
 * is begun afterwards with the same host challenge. */
static int initialize_update(scp_channel *ch, const scp03_keys *keys, const scp_channel_opts *o,
                             size_t cl)
{
    uint8_t chal[SCP03_CHAL_MAX], cmd[64], resp[SCP_APDU_SHORT_MAX]; /* parsed, bounded */
    scp03_keys k = { 0 };
    scp03_iu_resp ir;
    size_t n, rl;
    int rc;

    GUARD(scp_random(chal, cl));
    k.key_len = 16;
    k.kvn = o->kvn;
    GUARD_GOTO(scp03_host_begin(&ch->s, &k, chal, cl), out);
    GUARD_GOTO(scp03_host_initialize_update(&ch->s, 0, cmd, sizeof(cmd), &n), out);
    GUARD_GOTO(scp_transmit(ch->t, cmd, n, resp, sizeof(resp), &rl), out);
    ch->last_sw = SW_OF(resp, rl);
    rc = ((ch->last_sw & 0xFFF0) == 0x63C0 || ch->last_sw == 0x6983) ? SCP_E_AUTH : SCP_E_SW;
    if (ch->last_sw != 0x9000)
        goto out;
    GUARD_GOTO(scp03_iu_resp_parse(resp, rl - 2, &ir), out);
    rc = SCP_E_LENGTH;
    if (rl - 2 > sizeof(ch->iu_resp))
        goto out;
    memcpy(ch->iu_resp, resp, ch->iu_resp_len = rl - 2);
    memcpy(ch->kdd, ir.kdd, SCP03_KDD_LEN);
    ch->kvn = ir.kvn;
    ch->i = ir.i;
    GUARD_GOTO(static_keys(ch, keys, o, &k), out);
    GUARD_GOTO(scp03_host_begin(&ch->s, &k, chal, cl), out);
    GUARD_GOTO(scp03_host_initialize_update(&ch->s, 0, cmd, sizeof(cmd), &n), out);
    rc = scp03_host_iu_response(&ch->s, resp, rl - 2);
    if (rc == SCP_E_CRYPTOGRAM) { /* wrong keys: stop here, nothing more is sent */
        ch->fail_rc = rc;
        rc = SCP_E_AUTH;
    }
out:
    scp_wipe(&k, sizeof(k));
    scp_wipe(chal, sizeof(chal));
    return rc;
}

int scp_channel_open(scp_channel *ch, scp_transport *t, const scp03_keys *keys,
                     const scp_channel_opts *opts)
{
    uint8_t cmd[64], resp[258];
    size_t n, rl;
    int rc;

    ENSURE(ch && t && opts && (keys || opts->derive), SCP_E_ARG);
    ENSURE(opts->level < 0 || scp03_level_valid((uint8_t)opts->level), SCP_E_LEVEL);
    memset(ch, 0, sizeof(*ch));
    ch->t = t;
    GUARD_GOTO(initialize_update(ch, keys, opts, challenge_len(t, opts)), fail);
    ch->level = opts->level < 0 ? scp_level_strongest(ch->i) : (uint8_t)opts->level;
    /* a level the card's i rules out is refused here, before the card
     * sees (and counts) an EXTERNAL AUTHENTICATE */
    rc = SCP_E_LEVEL;
    if (!scp03_level_allowed(ch->i, ch->level))
        goto fail;
    /* GPC Amd D 7.1.2: EXTERNAL AUTHENTICATE */
    GUARD_GOTO(scp03_host_external_authenticate(&ch->s, ch->level, cmd, sizeof(cmd), &n), fail);
    GUARD_GOTO(scp_transmit(t, cmd, n, resp, sizeof(resp), &rl), fail);
    ch->last_sw = SW_OF(resp, rl);
    rc = scp03_host_ea_result(&ch->s, ch->last_sw);
    if (rc != SCP_OK) {
        ch->fail_rc = SCP_E_SW;
        rc = SCP_E_AUTH;
        goto fail;
    }
    return SCP_OK;
fail:
    scp03_end(&ch->s);
    scp_wipe(ch->dek, sizeof(ch->dek));
    return rc;
}

/* One wrapped command and its unwrapped response (data | SW). */
static int exchange(scp_channel *ch, const uint8_t *capdu, size_t len, uint8_t *plain,
                    size_t plain_size, size_t *plain_len)
{
    uint8_t wire[SCP_APDU_SHORT_MAX + SCP03_WRAP_OVERHEAD + 8];
    uint8_t rwire[SCP_CHANNEL_RESP_MAX + 2 + 32];
    size_t wl, rl;
    GUARD(scp03_host_wrap(&ch->s, capdu, len, wire, sizeof(wire), &wl));
    GUARD(scp_transmit(ch->t, wire, wl, rwire, sizeof(rwire), &rl));
    ch->last_sw = SW_OF(rwire, rl);
    return scp03_host_unwrap(&ch->s, rwire, rl, plain, plain_size, plain_len);
}

int scp_channel_send(scp_channel *ch, const uint8_t *capdu, size_t len, uint8_t *resp,
                     size_t resp_size, size_t *resp_len, uint16_t *sw)
{
    uint8_t plain[SCP_CHANNEL_RESP_MAX + 2];
    uint8_t chunk[SCP_APDU_SHORT_MAX];
    size_t pl, max, off = 0, cl;
    scp_apdu a, part;

    ENSURE(ch && capdu && resp_len && sw, SCP_E_ARG);
    ENSURE(scp03_is_open(&ch->s), ch->s.state == SCP03_DEAD ? SCP_E_DEAD : SCP_E_STATE);
    GUARD(scp_apdu_parse(capdu, len, &a));
    trace_plain(ch->t, 2, capdu, len);
    max = scp03_max_plain_data(&ch->s, 0);
    /* ISO 7816-4 5.1.1.1: command chaining (CLA b5) when the data does not
     * fit one short APDU; each part is wrapped on its own (GPC Amd D 6.2.4) */
    do {
        part = a;
        part.extended = 0;
        part.lc = a.lc - off < max ? a.lc - off : max;
        part.data = a.lc ? a.data + off : NULL;
        off += part.lc;
        if (off < a.lc) {
            part.cla |= 0x10;
            part.has_le = 0;
        } else if (part.has_le && part.le > 256) {
            part.le = 256; /* longer answers come back through 61xx */
        }
        GUARD(scp_apdu_encode(&part, chunk, sizeof(chunk), &cl));
        GUARD(exchange(ch, chunk, cl, plain, sizeof(plain), &pl));
        *sw = SW_OF(plain, pl);
        if (off < a.lc && *sw != 0x9000)
            break; /* the card refused a part: the rest is not sent */
    } while (off < a.lc);
    trace_plain(ch->t, 3, plain, pl);
    ENSURE(pl - 2 <= resp_size || resp == NULL, SCP_E_BUFFER_TOO_SMALL);
    ENSURE(resp != NULL || pl == 2, SCP_E_BUFFER_TOO_SMALL);
    if (pl > 2)
        memcpy(resp, plain, pl - 2);
    *resp_len = pl - 2;
    return SCP_OK;
}

void scp_channel_close(scp_channel *ch)
{
    if (!ch)
        return;
    scp03_end(&ch->s);
    scp_wipe(ch, sizeof(*ch));
}
