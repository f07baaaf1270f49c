/* SCP03 mutual authentication, both roles (GPC Amd D 6.2.2, 7.1). */
#include <stddef.h>
#include <string.h>

#include "scpkit/apdu.h"
#include "scpkit/buf.h"
#include "scpkit/scp03.h"
#include "scp03/internal.h"
#include "crypto/internal.h"

int scp03_level_valid(uint8_t level)
{
    return level == 0x00 || level == 0x01 || level == 0x03 || level == 0x11 ||
           level == 0x13 || level == 0x33;
}

int scp03_level_allowed(uint8_t i, uint8_t level)
{
    if (!scp03_level_valid(level))
        return 0;
    if ((level & SCP_LEVEL_RMAC) && !(i & SCP03_I_RMAC))
        return 0;
    if ((level & SCP_LEVEL_RENC) && !(i & SCP03_I_RENC))
        return 0;
    return 1;
}

int scp03_fail(scp03_session *s, int rc)
{
    uint8_t role = s->role;
    scp03_end(s);
    s->role = role;
    s->state = SCP03_DEAD;
    s->dead_rc = rc;
    return rc;
}

void scp03_end(scp03_session *s)
{
    const scp_ctx *ctx;
    if (s == NULL)
        return;
    ctx = s->ctx; /* the caller's choice of backend and RNG stays */
    /* the keys' OpenSSL contexts (if any) freed, then the whole session,
     * keys and all, in one pass: one wipe costs less than a dozen small
     * ones over the bytes the keys wrote */
    scp_aes_raw_release(SCP_RAW_OF(&s->s_enc));
    scp_aes_release(SCP_AES_OF(&s->s_mac));
    scp_aes_raw_release(SCP_RAW_OF(&s->s_rmac));
    scp_wipe(s, sizeof(*s));
    s->ctx = ctx;
}

_Static_assert(SCP03_SEQ_LEN + SCP03_AID_MAX <= 32, "counter | AID fits the 32-byte context");

/* GPC Amd D 6.2.1-6.2.2: the session keys, the card cryptogram into cc
 * and the host cryptogram (kept for EXTERNAL AUTHENTICATE), in one batch;
 * with chal_ctx (counter | AID), the card challenge too (6.2.2.1). */
static int session_crypto(scp03_session *s, const uint8_t *enc, const uint8_t *mac,
                          const uint8_t *chal_ctx, size_t chal_ctx_len, uint8_t *cc)
{
    scp03_hs_keys h = { 0 };
    h.ctx = s->ctx;
    h.enc = enc, h.mac = mac, h.key_len = s->key_len;
    h.chal_ctx = chal_ctx, h.chal_ctx_len = chal_ctx_len;
    h.host_chal = s->host_chal, h.card_chal = s->card_chal, h.chal_len = s->chal_len;
    h.s_enc = SCP_RAW_OF(&s->s_enc), h.s_mac = SCP_AES_OF(&s->s_mac), h.s_rmac = SCP_RAW_OF(&s->s_rmac);
    h.card_cryptogram = cc, h.host_cryptogram = s->host_cryptogram;
    return scp_scp03_keys(&h);
}

int scp03_iu_resp_parse(const uint8_t *p, size_t len, scp03_iu_resp *o)
{
    scp_rd r;
    size_t cl;

    ENSURE(p != NULL && o != NULL, SCP_E_ARG);
    memset(o, 0, sizeof(*o));
    /* S8: 29 or 32 bytes; S16: 45 or 48 (GPC Amd D 7.1.1.6) */
    ENSURE(len == 29 || len == 32 || len == 45 || len == 48, SCP_E_LENGTH);
    scp_rd_init(&r, p, len);
    GUARD(scp_rd_copy(&r, o->kdd, SCP03_KDD_LEN));
    GUARD(scp_rd_u8(&r, &o->kvn));
    GUARD(scp_rd_u8(&r, &o->scp_id));
    GUARD(scp_rd_u8(&r, &o->i));
    ENSURE(o->scp_id == 0x03, SCP_E_UNSUPPORTED);
    cl = (o->i & SCP03_I_S16) ? 16 : 8;
    o->chal_len = (uint8_t)cl;
    GUARD(scp_rd_copy(&r, o->card_chal, cl));
    GUARD(scp_rd_copy(&r, o->card_cryptogram, cl));
    if (o->i & SCP03_I_PSEUDO_RANDOM) {
        GUARD(scp_rd_copy(&r, o->seq, SCP03_SEQ_LEN));
        o->has_seq = 1;
    }
    ENSURE(scp_rd_left(&r) == 0, SCP_E_LENGTH);
    return SCP_OK;
}

/* ---------------- host role ---------------- */

int scp03_host_begin(scp03_session *s, const scp03_keys *keys, const uint8_t *host_chal,
                     size_t chal_len)
{
    ENSURE(s != NULL && keys != NULL, SCP_E_ARG);
    ENSURE(chal_len == 8 || chal_len == 16, SCP_E_ARG);
    ENSURE(keys->key_len == 16 || keys->key_len == 24 || keys->key_len == 32, SCP_E_ARG);
    scp03_end(s);
    s->role = SCP03_ROLE_HOST;
    s->kvn = keys->kvn;
    s->key_len = keys->key_len;
    s->chal_len = (uint8_t)chal_len;
    /* the static keys wait in the raw session keys' places (no OpenSSL
     * contexts there: scp03_end frees nothing) */
    memcpy(SCP_RAW_OF(&s->s_enc)->u.key, keys->enc, keys->key_len);
    memcpy(SCP_RAW_OF(&s->s_rmac)->u.key, keys->mac, keys->key_len);
    if (host_chal != NULL)
        memcpy(s->host_chal, host_chal, chal_len);
    else
        GUARD(scp_ctx_random(s->ctx, s->host_chal, chal_len));
    return SCP_OK;
}

int scp03_host_initialize_update(scp03_session *s, uint8_t cla, uint8_t *out, size_t out_size,
                                 size_t *out_len)
{
    scp_apdu a = { 0 };

    ENSURE(s != NULL && s->role == SCP03_ROLE_HOST, SCP_E_ARG);
    ENSURE(s->state != SCP03_DEAD, SCP_E_DEAD);
    ENSURE(s->state == SCP03_IDLE, SCP_E_STATE);
    ENSURE(out != NULL && out_len != NULL, SCP_E_ARG);
    ENSURE(out_size >= 6u + s->chal_len, SCP_E_BUFFER_TOO_SMALL);
    /* GPC Amd D 7.1.1: 80 50 KVN 00 Lc host-challenge Le */
    a.cla = (uint8_t)((cla & 0x40) ? (0xC0 | (cla & 0x0F)) : (0x80 | (cla & 0x03)));
    a.ins = 0x50;
    a.p1 = s->kvn;
    a.data = s->host_chal;
    a.lc = s->chal_len;
    a.has_le = 1;
    a.le = 256;
    GUARD(scp_apdu_encode(&a, out, out_size, out_len));
    s->state = SCP03_IU_SENT;
    return SCP_OK;
}

int scp03_host_iu_response(scp03_session *s, const uint8_t *resp, size_t len)
{
    scp03_iu_resp ir;
    uint8_t cc[SCP03_CHAL_MAX];
    int rc;

    ENSURE(s != NULL && s->role == SCP03_ROLE_HOST, SCP_E_ARG);
    ENSURE(s->state != SCP03_DEAD, SCP_E_DEAD);
    ENSURE(s->state == SCP03_IU_SENT, SCP_E_STATE);
    GUARD_GOTO(scp03_iu_resp_parse(resp, len, &ir), fail);
    rc = SCP_E_UNSUPPORTED; /* the card answered in another mode than asked */
    if (ir.chal_len != s->chal_len)
        goto fail;
    rc = SCP_E_FORMAT; /* answered for another key set than the one asked for */
    if (s->kvn != 0 && ir.kvn != s->kvn)
        goto fail;
    s->kvn = ir.kvn;
    s->i = ir.i;
    memcpy(s->kdd, ir.kdd, SCP03_KDD_LEN);
    memcpy(s->card_chal, ir.card_chal, s->chal_len);
    memcpy(s->seq, ir.seq, SCP03_SEQ_LEN);
    s->has_seq = ir.has_seq;
    /* the static keys wait in the raw S-ENC and S-RMAC places, which the
     * session keys overwrite: scp_scp03_keys reads both static keys before
     * it stores any session key (crypto/internal.h), so no copy */
    rc = session_crypto(s, SCP_RAW_OF(&s->s_enc)->u.key, SCP_RAW_OF(&s->s_rmac)->u.key, NULL, 0,
                        cc);
    if (rc != SCP_OK)
        goto fail;
    rc = SCP_E_CRYPTOGRAM;
    if (!scp_ct_eq(cc, ir.card_cryptogram, s->chal_len))
        goto fail;
    s->state = SCP03_IU_DONE; /* cc is the card's, public: no wipe */
    return SCP_OK;
fail:
    scp_wipe(cc, sizeof(cc));
    return scp03_fail(s, rc);
}

int scp03_host_external_authenticate(scp03_session *s, uint8_t level, uint8_t *out,
                                     size_t out_size, size_t *out_len)
{
    return scp03_host_external_authenticate_ex(s, level, 0, out, out_size, out_len);
}

/* GPC Amd D 6.2.3 / 7.1.2: the EXTERNAL AUTHENTICATE C-MAC, over a zero
 * chaining value | the header as sent (Lc short or extended) | the host
 * cryptogram. The short form goes through the one-block-ahead path. */
static int ea_mac(const scp_aes *km, const uint8_t *hdr, size_t hl, const uint8_t *hc,
                  size_t hc_len, uint8_t mac[16])
{
    uint8_t msg[16 + 7 + SCP03_CHAL_MAX] = { 0 }; /* public values only */
    if (hl == 5)
        return scp_cmac_ea(km, hdr, hc, hc_len, mac);
    memcpy(msg + 16, hdr, hl);
    memcpy(msg + 16 + hl, hc, hc_len);
    return scp_cmac_once(km, msg, 16 + hl + hc_len, mac);
}

int scp03_host_external_authenticate_ex(scp03_session *s, uint8_t level, unsigned flags,
                                        uint8_t *out, size_t out_size, size_t *out_len)
{
    uint8_t hdr[7], mac[16];
    size_t hl, lc;
    int rc;

    ENSURE(s != NULL && s->role == SCP03_ROLE_HOST && out != NULL && out_len != NULL,
           SCP_E_ARG);
    ENSURE((flags & ~(unsigned)SCP03_EA_EXTENDED) == 0, SCP_E_ARG);
    ENSURE(s->state != SCP03_DEAD, SCP_E_DEAD);
    ENSURE(s->state == SCP03_IU_DONE, SCP_E_STATE);
    ENSURE(scp03_level_valid(level), SCP_E_LEVEL);
    ENSURE(scp03_level_allowed(s->i, level), SCP_E_UNSUPPORTED);
    /* GPC Amd D 7.1.2: 84 82 level 00 Lc | host cryptogram | C-MAC, the
     * C-MAC over a zero chaining value */
    lc = 2u * s->chal_len;
    hdr[0] = 0x84, hdr[1] = 0x82, hdr[2] = level, hdr[3] = 0x00;
    if (flags & SCP03_EA_EXTENDED) /* ISO 7816-4 5.1: 00 Lc1 Lc2 */
        hdr[4] = 0x00, hdr[5] = 0x00, hdr[6] = (uint8_t)lc, hl = 7;
    else
        hdr[4] = (uint8_t)lc, hl = 5;
    /* too small a buffer: refused before anything changes (may be retried) */
    ENSURE(out_size >= hl + lc, SCP_E_BUFFER_TOO_SMALL);
    GUARD_GOTO(ea_mac(SCP_AES_OF(&s->s_mac), hdr, hl, s->host_cryptogram, s->chal_len, mac), fail);
    memcpy(out, hdr, hl);
    memcpy(out + hl, s->host_cryptogram, s->chal_len);
    memcpy(out + hl + s->chal_len, mac, s->chal_len);
    *out_len = hl + lc;
    memcpy(s->chain.u.icv, mac, 16);
    scp_wipe(s->host_cryptogram, sizeof(s->host_cryptogram));
    s->level = level;
    s->state = SCP03_EA_SENT;
    return SCP_OK;
fail:
    return scp03_fail(s, rc);
}

int scp03_host_ea_result(scp03_session *s, uint16_t sw)
{
    ENSURE(s != NULL && s->role == SCP03_ROLE_HOST, SCP_E_ARG);
    ENSURE(s->state != SCP03_DEAD, SCP_E_DEAD);
    ENSURE(s->state == SCP03_EA_SENT, SCP_E_STATE);
    if (sw != 0x9000)
        return scp03_fail(s, SCP_E_AUTH);
    s->state = SCP03_OPEN;
    s->chain.counter = 0; /* the first protected command uses counter 1 */
    return SCP_OK;
}

/* ---------------- card role ---------------- */

int scp03_card_initialize_update(scp03_session *s, const scp03_card_params *prm,
                                 const scp03_keys *keys, const uint8_t *host_chal,
                                 size_t chal_len, uint8_t *out, size_t out_size,
                                 size_t *out_len)
{
    /* ctx: 32 bytes, as scp_scp03_keys reads (crypto/internal.h) */
    uint8_t cc[SCP03_CHAL_MAX], ctx[32] = { 0 };
    size_t chal_ctx_len = 0;
    scp_wr w;
    int rc;

    ENSURE(s != NULL && prm != NULL && keys != NULL && host_chal != NULL, SCP_E_ARG);
    ENSURE(keys->key_len == 16 || keys->key_len == 24 || keys->key_len == 32, SCP_E_ARG);
    ENSURE(chal_len == ((prm->i & SCP03_I_S16) ? 16u : 8u), SCP_E_LENGTH);
    ENSURE(out != NULL && out_len != NULL, SCP_E_ARG);
    /* GPC Amd D 7.1.1.6: KDD | KVN | 03 | i | challenge | cryptogram |
     * [counter]; a buffer too small leaves any previous session as it was */
    ENSURE(out_size >= SCP03_KDD_LEN + 3 + 2 * chal_len +
                           ((prm->i & SCP03_I_PSEUDO_RANDOM) ? SCP03_SEQ_LEN : 0),
           SCP_E_BUFFER_TOO_SMALL);
    scp03_end(s); /* a new INITIALIZE UPDATE ends any previous session */
    s->role = SCP03_ROLE_CARD;
    s->i = prm->i;
    s->kvn = keys->kvn;
    s->key_len = keys->key_len;
    s->chal_len = (uint8_t)chal_len;
    memcpy(s->host_chal, host_chal, chal_len);
    memcpy(s->kdd, prm->kdd, SCP03_KDD_LEN);
    if (prm->i & SCP03_I_PSEUDO_RANDOM) {
        s->seq[0] = (uint8_t)(prm->seq >> 16);
        s->seq[1] = (uint8_t)(prm->seq >> 8);
        s->seq[2] = (uint8_t)prm->seq;
        s->has_seq = 1;
    }
    if (prm->fixed_card_chal != NULL) {
        memcpy(s->card_chal, prm->fixed_card_chal, chal_len);
    } else if (prm->i & SCP03_I_PSEUDO_RANDOM) {
        /* GPC Amd D 6.2.2.1: challenge = KDF(Key-ENC, 02, counter | AID) */
        ENSURE(prm->aid != NULL && prm->aid_len >= 5 && prm->aid_len <= SCP03_AID_MAX,
               SCP_E_ARG);
        ENSURE(prm->seq <= 0xFFFFFF, SCP_E_COUNTER);
        /* from prm->seq, not s->seq: reading back the bytes just stored
         * one by one stalls the load */
        ctx[0] = (uint8_t)(prm->seq >> 16), ctx[1] = (uint8_t)(prm->seq >> 8);
        ctx[2] = (uint8_t)prm->seq;
        memcpy(ctx + SCP03_SEQ_LEN, prm->aid, prm->aid_len);
        chal_ctx_len = SCP03_SEQ_LEN + prm->aid_len;
    } else {
        GUARD_GOTO(scp_ctx_random(s->ctx, s->card_chal, chal_len), fail);
    }
    /* the host cryptogram too: EXTERNAL AUTHENTICATE only compares it */
    GUARD_GOTO(session_crypto(s, keys->enc, keys->mac, chal_ctx_len ? ctx : NULL, chal_ctx_len,
                              cc),
               fail);
    scp_wr_init(&w, out, out_size);
    scp_wr_bytes(&w, s->kdd, SCP03_KDD_LEN);
    scp_wr_u8(&w, s->kvn);
    scp_wr_u8(&w, 0x03);
    scp_wr_u8(&w, s->i);
    scp_wr_bytes(&w, s->card_chal, chal_len);
    scp_wr_bytes(&w, cc, chal_len);
    if (s->has_seq)
        scp_wr_bytes(&w, s->seq, SCP03_SEQ_LEN);
    GUARD_GOTO(scp_wr_done(&w, out_len), fail);
    s->state = SCP03_IU_DONE; /* cc is in the response: no wipe */
    return SCP_OK;
fail:
    scp_wipe(cc, sizeof(cc));
    return scp03_fail(s, rc);
}

int scp03_card_external_authenticate(scp03_session *s, const uint8_t *capdu, size_t len)
{
    uint8_t mac[16];
    scp_apdu a;
    size_t hl;
    int rc;

    ENSURE(s != NULL && s->role == SCP03_ROLE_CARD, SCP_E_ARG);
    ENSURE(s->state != SCP03_DEAD, SCP_E_DEAD);
    ENSURE(s->state == SCP03_IU_DONE, SCP_E_STATE);
    /* short (Lc) or extended (00 Lc1 Lc2) length, Le or not: yubikit sends
     * the extended form by default */
    GUARD_GOTO(scp_apdu_parse(capdu, len, &a), fail);
    rc = SCP_E_FORMAT;
    if ((a.cla & 0x84) != 0x84 || a.ins != 0x82 || a.p2 != 0x00)
        goto fail;
    rc = SCP_E_LENGTH;
    if (a.lc != 2u * s->chal_len)
        goto fail;
    if (!scp03_level_allowed(s->i, a.p1)) {
        /* a refused level is not an attack: the card says 6A86 and keeps
         * its counters, but this session cannot be used */
        return scp03_fail(s, SCP_E_LEVEL);
    }
    /* C-MAC over a zero chaining value: the header as sent (84 82 P1 P2
     * Lc, or 84 82 P1 P2 00 Lc1 Lc2) | host cryptogram */
    hl = a.extended ? 7 : 5;
    GUARD_GOTO(ea_mac(SCP_AES_OF(&s->s_mac), capdu, hl, a.data, s->chal_len, mac), fail);
    rc = SCP_E_MAC;
    if (!scp_ct_eq(mac, a.data + s->chal_len, s->chal_len))
        goto fail;
    rc = SCP_E_CRYPTOGRAM;
    if (!scp_ct_eq(s->host_cryptogram, a.data, s->chal_len))
        goto fail;
    scp_wipe(s->host_cryptogram, sizeof(s->host_cryptogram));
    memcpy(s->chain.u.icv, mac, 16);
    s->level = a.p1;
    s->chain.counter = 0;
    s->state = SCP03_OPEN;
    return SCP_OK;
fail:
    return scp03_fail(s, rc);
}

int scp03_session_from_keys(scp03_session *s, const scp03_open_params *p)
{
    int rc;

    ENSURE(s != NULL && p != NULL && p->enc != NULL && p->mac != NULL && p->rmac != NULL &&
               p->mac_chain != NULL,
           SCP_E_ARG);
    ENSURE(p->role == SCP03_ROLE_HOST || p->role == SCP03_ROLE_CARD, SCP_E_ARG);
    ENSURE(p->key_len == 16 || p->key_len == 24 || p->key_len == 32, SCP_E_ARG);
    ENSURE(p->mac_len == 8 || p->mac_len == 16, SCP_E_ARG);
    ENSURE(scp03_level_valid(p->level), SCP_E_LEVEL);
    scp03_end(s);
    s->role = p->role;
    s->kvn = p->kvn;
    s->key_len = p->key_len;
    s->chal_len = p->mac_len;
    s->i = (uint8_t)(SCP03_I_RMAC | SCP03_I_RENC | (p->mac_len == 16 ? SCP03_I_S16 : 0));
    /* S-ENC decrypts on both sides (C-DEC on the card, R-ENC on the host);
     * as after SCP03's own handshake, it never MACs (no L) */
    GUARD_GOTO(scp_aes_raw_init(SCP_RAW_OF(&s->s_enc), s->ctx, p->enc, p->key_len, 1, 0), fail);
    GUARD_GOTO(scp_aes_init_ctx(SCP_AES_OF(&s->s_mac), s->ctx, p->mac, p->key_len, 0), fail);
    GUARD_GOTO(scp_aes_raw_init(SCP_RAW_OF(&s->s_rmac), s->ctx, p->rmac, p->key_len, 0, 1), fail);
    memcpy(s->chain.u.icv, p->mac_chain, 16);
    s->level = p->level;
    s->chain.counter = 0;
    s->state = SCP03_OPEN;
    return SCP_OK;
fail:
    return scp03_fail(s, rc);
}

int scp03_session_kcvs(const scp03_session *s, uint8_t enc[3], uint8_t mac[3], uint8_t rmac[3])
{
    static const uint8_t ones[16] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 };
    uint8_t b[16];
    scp_aes k;
    ENSURE(s != NULL, SCP_E_ARG);
    ENSURE(s->state == SCP03_IU_DONE || s->state == SCP03_EA_SENT || s->state == SCP03_OPEN,
           SCP_E_STATE);
    GUARD(scp_aes_open(&k, SCP_RAW_OF(&s->s_enc)));
    scp_aes_block(&k, ones, b);
    scp_aes_close(&k);
    memcpy(enc, b, 3);
    scp_aes_block(SCP_AES_OF(&s->s_mac), ones, b);
    memcpy(mac, b, 3);
    GUARD(scp_aes_open(&k, SCP_RAW_OF(&s->s_rmac)));
    scp_aes_block(&k, ones, b);
    scp_aes_close(&k);
    memcpy(rmac, b, 3);
    scp_wipe(b, sizeof(b));
    return SCP_OK;
}
