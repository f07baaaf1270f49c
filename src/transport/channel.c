/* The host side of an SCP03 channel (GPC Amd D 7.1): INITIALIZE UPDATE,
 * card cryptogram check, EXTERNAL AUTHENTICATE, then protected commands.
 * It never retries an authentication: one wrong try is one try the card
 * counts.
 *
 * Opening is a sans-I/O state machine (scp_channel_start / _next / _feed:
 * the caller moves the APDUs), so one thread can drive any number of
 * channels; scp_channel_open is a loop over it on a transport. */
#include <string.h>

#include "scpkit/apdu.h"
#include "scpkit/channel.h"
#include "core/guard.h"

#define SW_OF(b, n) ((uint16_t)((b)[(n)-2] << 8 | (b)[(n)-1]))

/* Where the open stands: which command was handed out last. */
enum {
    STEP_NONE = 0, /* nothing out yet (or the recognition data is in) */
    STEP_RECOG,    /* GET DATA 0066 is out */
    STEP_IU,       /* INITIALIZE UPDATE is out */
    STEP_IU_DONE,  /* the card authenticated: EXTERNAL AUTHENTICATE next */
    STEP_EA,       /* EXTERNAL AUTHENTICATE is out */
    STEP_OPEN,
    STEP_FAILED,
};

static void trace_plain(scp_transport *t, int dir, const uint8_t *p, size_t len)
{
    if (t->trace)
        t->trace(t->trace_ctx, dir, p, len);
}

/* The open failed: session and keys wiped, the error kept (sticky). */
static int open_fail(scp_channel *ch, int rc)
{
    scp03_end(&ch->s);
    scp_wipe(ch->dek, sizeof(ch->dek));
    scp_wipe(&ch->open_keys, sizeof(ch->open_keys));
    ch->step = STEP_FAILED;
    ch->open_rc = rc;
    return rc;
}

int scp_channel_start(scp_channel *ch, const scp03_keys *keys, const scp_channel_opts *opts)
{
    ENSURE(ch && opts && (keys || opts->derive), SCP_E_ARG);
    ENSURE(opts->level < 0 || scp03_level_valid((uint8_t)opts->level), SCP_E_LEVEL);
    ENSURE(keys == NULL || keys->key_len <= SCP_AES_MAX_KEY, SCP_E_ARG);
    memset(ch, 0, sizeof(*ch));
    ch->opts = *opts;
    ch->s.ctx = opts->ctx;
    if (keys != NULL)
        ch->open_keys = *keys;
    /* S16 when the card says so in its recognition data; S8 otherwise
     * (GPC Amd D v1.2 5.1: i b1) */
    ch->chal_len = opts->s16 < 0 ? 0 : opts->s16 ? 16 : 8;
    ch->step = STEP_NONE;
    return SCP_OK;
}

/* GPC Amd D 7.1.1: INITIALIZE UPDATE. The engine needs the static keys
 * before the command, but a derived key is known only from the card's KDD,
 * so the command comes from a placeholder session and the real session is
 * begun once the answer is in, with the same host challenge. */
static int iu_command(scp_channel *ch, uint8_t *out, size_t out_size, size_t *out_len)
{
    uint8_t chal[SCP03_CHAL_MAX];
    scp03_keys k = { 0 };
    int rc;

    k.key_len = 16;
    k.kvn = ch->opts.kvn;
    GUARD(scp_ctx_random(ch->opts.ctx, chal, ch->chal_len));
    rc = scp03_host_begin(&ch->s, &k, chal, ch->chal_len);
    if (rc == SCP_OK)
        rc = scp03_host_initialize_update(&ch->s, 0, out, out_size, out_len);
    scp_wipe(chal, sizeof(chal));
    return rc;
}

int scp_channel_next(scp_channel *ch, uint8_t *capdu, size_t capdu_size, size_t *capdu_len)
{
    static const uint8_t get_recog[] = { 0x80, 0xCA, 0x00, 0x66, 0x00 }; /* GPC 11.3 */
    int rc;

    ENSURE(ch && capdu && capdu_len, SCP_E_ARG);
    switch (ch->step) {
    case STEP_FAILED:
        return ch->open_rc;
    case STEP_OPEN:
        return SCP_CHANNEL_OPEN;
    case STEP_NONE:
        if (ch->chal_len == 0) {
            ENSURE(capdu_size >= sizeof(get_recog), SCP_E_BUFFER_TOO_SMALL);
            memcpy(capdu, get_recog, sizeof(get_recog));
            *capdu_len = sizeof(get_recog);
            ch->step = STEP_RECOG;
            return SCP_CHANNEL_SEND;
        }
        rc = iu_command(ch, capdu, capdu_size, capdu_len);
        if (rc == SCP_E_BUFFER_TOO_SMALL) {
            scp03_end(&ch->s);
            return rc; /* nothing handed out: may be retried */
        }
        if (rc != SCP_OK)
            return open_fail(ch, rc);
        ch->step = STEP_IU;
        return SCP_CHANNEL_SEND;
    case STEP_IU_DONE: /* GPC Amd D 7.1.2 */
        ch->level = ch->opts.level < 0 ? scp_level_strongest(ch->i) : (uint8_t)ch->opts.level;
        /* a level the card's i rules out is refused here, before the
         * card sees (and counts) an EXTERNAL AUTHENTICATE */
        if (!scp03_level_allowed(ch->i, ch->level))
            return open_fail(ch, SCP_E_LEVEL);
        rc = scp03_host_external_authenticate(&ch->s, ch->level, capdu, capdu_size, capdu_len);
        if (rc == SCP_E_BUFFER_TOO_SMALL)
            return rc; /* session unchanged: may be retried */
        if (rc != SCP_OK)
            return open_fail(ch, rc);
        ch->step = STEP_EA;
        return SCP_CHANNEL_SEND;
    default: /* a command is out: its answer comes first */
        return SCP_E_STATE;
    }
}

/* The static keys for this card: fixed, diversified from a master with
 * the KDD, or from the caller's hook (e.g. an HSM). */
static int static_keys(scp_channel *ch, scp03_keys *out)
{
    const scp_channel_opts *o = &ch->opts;
    if (o->derive)
        GUARD(o->derive(o->derive_ctx, ch->kdd, SCP03_KDD_LEN, ch->kvn, out));
    else if (o->div != SCP_DIV_NONE)
        GUARD(scp_div_derive(o->div, ch->open_keys.enc, ch->open_keys.key_len, ch->kdd,
                             SCP03_KDD_LEN, out));
    else
        *out = ch->open_keys;
    out->kvn = o->kvn;
    ENSURE(out->key_len <= sizeof(ch->dek), SCP_E_ARG);
    memcpy(ch->dek, out->dek, ch->dek_len = out->key_len);
    return SCP_OK;
}

/* The INITIALIZE UPDATE response (data | SW): the real session begins
 * with the static keys for this card and checks the card cryptogram. */
static int iu_answer(scp_channel *ch, const uint8_t *resp, size_t rl)
{
    uint8_t chal[SCP03_CHAL_MAX], cmd[64];
    scp03_keys k = { 0 };
    scp03_iu_resp ir;
    size_t n;
    int rc;

    rc = ((ch->last_sw & 0xFFF0) == 0x63C0 || ch->last_sw == 0x6983) ? SCP_E_AUTH : SCP_E_SW;
    if (ch->last_sw != 0x9000)
        return rc;
    GUARD(scp03_iu_resp_parse(resp, rl - 2, &ir));
    ENSURE(rl - 2 <= sizeof(ch->iu_resp), SCP_E_LENGTH);
    memcpy(ch->iu_resp, resp, ch->iu_resp_len = rl - 2);
    memcpy(ch->kdd, ir.kdd, SCP03_KDD_LEN);
    ch->kvn = ir.kvn;
    ch->i = ir.i;
    memcpy(chal, ch->s.host_chal, ch->chal_len); /* host_begin wipes the session */
    GUARD_GOTO(static_keys(ch, &k), out);
    scp_wipe(&ch->open_keys, sizeof(ch->open_keys)); /* no longer needed */
    GUARD_GOTO(scp03_host_begin(&ch->s, &k, chal, ch->chal_len), out);
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

int scp_channel_feed(scp_channel *ch, const uint8_t *rapdu, size_t len)
{
    scp_recog r;
    uint8_t i;
    int rc;

    ENSURE(ch && rapdu, SCP_E_ARG);
    if (ch->step == STEP_FAILED)
        return ch->open_rc;
    ENSURE(ch->step == STEP_RECOG || ch->step == STEP_IU || ch->step == STEP_EA, SCP_E_STATE);
    if (len < 2)
        return open_fail(ch, SCP_E_TRUNCATED);
    ch->last_sw = SW_OF(rapdu, len);
    switch (ch->step) {
    case STEP_RECOG:
        ch->chal_len = 8;
        if (ch->last_sw == 0x9000 && scp_recog_parse(rapdu, len - 2, &r) == SCP_OK &&
            scp_recog_scp03(&r, &i))
            ch->chal_len = (i & SCP03_I_S16) ? 16 : 8;
        ch->step = STEP_NONE;
        return SCP_OK;
    case STEP_IU:
        rc = iu_answer(ch, rapdu, len);
        if (rc != SCP_OK)
            return open_fail(ch, rc);
        ch->step = STEP_IU_DONE;
        return SCP_OK;
    default: /* STEP_EA */
        if (scp03_host_ea_result(&ch->s, ch->last_sw) != SCP_OK) {
            ch->fail_rc = SCP_E_SW;
            return open_fail(ch, SCP_E_AUTH);
        }
        scp_wipe(&ch->open_keys, sizeof(ch->open_keys));
        ch->step = STEP_OPEN;
        return SCP_OK;
    }
}

int scp_channel_open(scp_channel *ch, scp_transport *t, const scp03_keys *keys,
                     const scp_channel_opts *opts)
{
    uint8_t cmd[64], resp[512]; /* recognition data, IU and EA answers */
    size_t n, rl;
    int rc;

    ENSURE(ch && t, SCP_E_ARG);
    GUARD(scp_channel_start(ch, keys, opts));
    ch->t = t;
    while ((rc = scp_channel_next(ch, cmd, sizeof(cmd), &n)) == SCP_CHANNEL_SEND) {
        rc = scp_transmit(t, cmd, n, resp, sizeof(resp), &rl);
        if (rc != SCP_OK && ch->step == STEP_RECOG) {
            /* no recognition data to be had: S8, as without an answer */
            resp[0] = 0x6F, resp[1] = 0x00, rl = 2, rc = SCP_OK;
        }
        if (rc != SCP_OK)
            return open_fail(ch, rc);
        if ((rc = scp_channel_feed(ch, resp, rl)) != SCP_OK)
            return rc;
    }
    return rc == SCP_CHANNEL_OPEN ? SCP_OK : rc;
}

/* One wrapped command and its response, received into the channel's own
 * buffer and unwrapped there, in place (data | SW): a protected send
 * keeps no response-sized buffer on the stack. */
static int exchange(scp_channel *ch, const uint8_t *capdu, size_t len, size_t *plain_len)
{
    uint8_t wire[SCP_APDU_SHORT_MAX + SCP03_WRAP_OVERHEAD];
    size_t wl, rl;
    GUARD(scp03_host_wrap(&ch->s, capdu, len, wire, sizeof(wire), &wl));
    GUARD(scp_transmit(ch->t, wire, wl, ch->rbuf, sizeof(ch->rbuf), &rl));
    ch->last_sw = SW_OF(ch->rbuf, rl);
    return scp03_host_unwrap(&ch->s, ch->rbuf, rl, ch->rbuf, sizeof(ch->rbuf), plain_len);
}

int scp_channel_send(scp_channel *ch, const uint8_t *capdu, size_t len, uint8_t *resp,
                     size_t resp_size, size_t *resp_len, uint16_t *sw)
{
    uint8_t chunk[SCP_APDU_SHORT_MAX];
    size_t pl, max, off = 0, cl;
    scp_apdu a, part;
    int rc;

    ENSURE(ch && capdu && resp_len && sw, SCP_E_ARG);
    ENSURE(ch->t != NULL, SCP_E_STATE);
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
        GUARD(exchange(ch, chunk, cl, &pl));
        *sw = SW_OF(ch->rbuf, pl);
        if (off < a.lc && *sw != 0x9000)
            break; /* the card refused a part: the rest is not sent */
    } while (off < a.lc);
    trace_plain(ch->t, 3, ch->rbuf, pl);
    rc = SCP_E_BUFFER_TOO_SMALL;
    if ((resp == NULL && pl != 2) || (resp != NULL && pl - 2 > resp_size))
        goto out;
    if (pl > 2)
        memcpy(resp, ch->rbuf, pl - 2);
    *resp_len = pl - 2;
    rc = SCP_OK;
out:
    scp_wipe(ch->rbuf, pl); /* the plain response: R-ENC kept it secret */
    return rc;
}

void scp_channel_close(scp_channel *ch)
{
    if (!ch)
        return;
    scp03_end(&ch->s);
    scp_wipe(ch, sizeof(*ch));
}
