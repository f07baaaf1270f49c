/* SCP02 host channel over any transport: the handshake, then protected
 * commands (GPC 2.2.1 E.5). Allocation-free; the session lives in the
 * channel. */
#include <string.h>

#include "scp02/internal.h"
#include "scpkit/apdu.h"
#include "scpkit/channel.h"

#define CH_BUF (SCP_APDU_SHORT_MAX + 16)

static int xmit(scp02_channel *ch, const uint8_t *c, size_t n, uint8_t *r, size_t rs, size_t *rl)
{
    GUARD(scp_transmit(ch->t, c, n, r, rs, rl));
    ENSURE(*rl >= 2, SCP_E_TRUNCATED);
    ch->last_sw = (uint16_t)(r[*rl - 2] << 8 | r[*rl - 1]);
    return SCP_OK;
}

static uint8_t card_i(scp02_channel *ch)
{
    scp_recog rec;
    uint16_t sw = 0;
    /* a plain command ends a session left open on the card (6982): ask
     * once more */
    if (scp_recog_get(ch->t, &rec, &sw) == SCP_OK ||
        (sw == 0x6982 && scp_recog_get(ch->t, &rec, &sw) == SCP_OK))
        for (size_t k = 0; k < rec.n_scp; k++)
            if (rec.scp[k].id == 0x02 && scp02_i_supported(rec.scp[k].i))
                return rec.scp[k].i;
    return 0x55; /* the common JavaCard 2.2 / GP 2.1.1 value */
}

int scp02_channel_open(scp02_channel *ch, scp_transport *t, const scp02_keys *keys, uint8_t i,
                       uint8_t level)
{
    uint8_t cmd[CH_BUF], resp[CH_BUF];
    size_t n, rn;
    int rc;

    ENSURE(ch != NULL && t != NULL && keys != NULL, SCP_E_ARG);
    memset(ch, 0, sizeof(*ch));
    ch->t = t;
    ch->i = i != 0 ? i : card_i(ch);
    ch->level = level;
    GUARD(scp02_host_begin(&ch->s, keys, ch->i, NULL));
    GUARD_GOTO(scp02_host_initialize_update(&ch->s, 0x80, cmd, sizeof(cmd), &n), fail);
    GUARD_GOTO(xmit(ch, cmd, n, resp, sizeof(resp), &rn), fail);
    if (ch->last_sw != 0x9000) {
        rc = SCP_E_AUTH;
        goto fail;
    }
    rc = scp02_host_iu_response(&ch->s, resp, rn - 2, NULL, 0);
    if (rc == SCP_E_CRYPTOGRAM)
        goto fail; /* wrong keys: stop here */
    GUARD_GOTO(rc, fail);
    ch->kvn = ch->s.kvn;
    GUARD_GOTO(scp02_host_external_authenticate(&ch->s, level, cmd, sizeof(cmd), &n), fail);
    GUARD_GOTO(xmit(ch, cmd, n, resp, sizeof(resp), &rn), fail);
    rc = scp02_host_ea_result(&ch->s, ch->last_sw);
    if (rc != SCP_OK) {
        rc = SCP_E_AUTH;
        goto fail;
    }
    return SCP_OK;
fail:
    scp02_end(&ch->s);
    return rc;
}

int scp02_channel_send(scp02_channel *ch, const uint8_t *capdu, size_t len, uint8_t *resp,
                       size_t resp_size, size_t *resp_len, uint16_t *sw)
{
    uint8_t w[CH_BUF], r[SCP_APDU_SHORT_MAX + 16], p[SCP_APDU_SHORT_MAX + 16];
    size_t wn, rn, pn;
    int rc;

    ENSURE(ch != NULL && capdu != NULL && resp_len != NULL && sw != NULL, SCP_E_ARG);
    GUARD(scp02_host_wrap(&ch->s, capdu, len, w, sizeof(w), &wn));
    GUARD(xmit(ch, w, wn, r, sizeof(r), &rn));
    rc = scp02_host_unwrap(&ch->s, r, rn, p, sizeof(p), &pn);
    if (rc == SCP_OK) {
        if (pn - 2 > resp_size) {
            rc = SCP_E_BUFFER_TOO_SMALL;
        } else {
            if (pn > 2)
                memcpy(resp, p, pn - 2);
            *resp_len = pn - 2;
            *sw = (uint16_t)(p[pn - 2] << 8 | p[pn - 1]);
        }
    }
    scp_wipe(p, sizeof(p));
    return rc;
}

int scp02_channel_put_keys(scp02_channel *ch, uint8_t key_type, uint8_t old_kvn, uint8_t new_kvn,
                           const uint8_t enc[16], const uint8_t mac[16], const uint8_t dek[16],
                           uint16_t *sw)
{
    uint8_t cmd[5 + SCP02_PUTKEY_MAX + 1], resp[32], kcv[3];
    const uint8_t *keys[3] = { enc, mac, dek };
    size_t n, rn;
    int rc, ok = 1;

    ENSURE(ch != NULL && sw != NULL, SCP_E_ARG);
    cmd[0] = 0x80;
    cmd[1] = 0xD8;
    cmd[2] = old_kvn;
    cmd[3] = 0x81; /* key id 1, several keys */
    GUARD(scp02_putkey_build(&ch->s, key_type, new_kvn, enc, mac, dek, cmd + 5,
                             sizeof(cmd) - 6, &n));
    cmd[4] = (uint8_t)n;
    cmd[5 + n] = 0x00;
    rc = scp02_channel_send(ch, cmd, 6 + n, resp, sizeof(resp), &rn, sw);
    scp_wipe(cmd, sizeof(cmd));
    GUARD(rc);
    if (*sw != 0x9000)
        return SCP_E_SW;
    ENSURE(rn == 10 && resp[0] == new_kvn, SCP_E_FORMAT);
    for (int k = 0; k < 3; k++) {
        GUARD(scp02_kcv(key_type, keys[k], kcv));
        ok &= scp_ct_eq(kcv, resp + 1 + 3 * k, 3);
    }
    return ok ? SCP_OK : SCP_E_KCV;
}

void scp02_channel_close(scp02_channel *ch)
{
    if (ch != NULL)
        scp02_end(&ch->s);
}
