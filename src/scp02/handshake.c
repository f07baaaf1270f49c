/* SCP02 explicit initiation (GPC v2.2.1 appendix E.5.1-E.5.2): session
 * keys, card challenge, cryptograms, INITIALIZE UPDATE and EXTERNAL
 * AUTHENTICATE in both roles. */
#include <string.h>

#include "scp02/internal.h"
#include "scpkit/apdu.h"
#include "scpkit/buf.h"

static const uint8_t zero8[8];

/* GPC 2.2.1 E.4.1: derivation constants */
#define DC_CMAC 0x0101
#define DC_RMAC 0x0102
#define DC_DEK 0x0181
#define DC_ENC 0x0182

int scp02_i_supported(uint8_t i)
{
    return (i & SCP02_I_EXPLICIT) != 0 && (i & SCP02_I_ICV_MAC_AID) == 0 && (i & 0x80) == 0;
}

int scp02_level_valid(uint8_t level)
{
    return level == 0x00 || level == 0x01 || level == 0x03 || level == 0x11 || level == 0x13;
}

void scp02_wipe(scp02_session *s)
{
    uint8_t role = s->role;
    scp_wipe(s, sizeof(*s));
    s->role = role;
}

int scp02_fail(scp02_session *s, int rc)
{
    scp02_wipe(s);
    s->state = SCP02_DEAD;
    s->dead_rc = rc;
    return rc;
}

void scp02_end(scp02_session *s)
{
    if (s != NULL)
        scp_wipe(s, sizeof(*s));
}

/* GPC 2.2.1 E.4.1: session key = 3DES-CBC(static key, zero IV,
 * constant | sequence counter | 12 x 00). */
static int session_key(const uint8_t stat[16], uint16_t constant, const uint8_t seq[2],
                       scp02_session *s, scp_des3 *out)
{
    uint8_t block[16] = { (uint8_t)(constant >> 8), (uint8_t)constant, seq[0], seq[1] }, k[16];
    scp_des3 st;
    int rc;
    GUARD(scp_des3_init(&st, stat, 16));
    rc = scp_des3_cbc_encrypt(&st, zero8, block, 16, k);
    if (rc == SCP_OK)
        rc = scp_des3_init(out, k, 16);
    scp_des3_clear(&st);
    scp_wipe(k, sizeof(k));
    (void)s;
    return rc;
}

static int derive_keys(scp02_session *s, const uint8_t enc[16], const uint8_t mac[16],
                       const uint8_t dek[16])
{
    GUARD(session_key(enc, DC_ENC, s->seq, s, &s->s_enc));
    GUARD(session_key(mac, DC_CMAC, s->seq, s, &s->s_cmac));
    GUARD(session_key(mac, DC_RMAC, s->seq, s, &s->s_rmac));
    GUARD(session_key(dek, DC_DEK, s->seq, s, &s->s_dek));
    return SCP_OK;
}

/* GPC 2.2.1 E.4.2: cryptograms are the full 3DES MAC (ISO 9797-1 MAC
 * algorithm 1, M2 padding, zero ICV) under S-ENC; card: host challenge |
 * seq | card challenge, host: seq | card challenge | host challenge. */
static void cryptogram(const scp02_session *s, int host, uint8_t out[8])
{
    scp_des_mac m;
    scp_des_mac_init(&m, &s->s_enc, 1, zero8);
    if (!host)
        scp_des_mac_update(&m, s->host_chal, 8);
    scp_des_mac_update(&m, s->seq, 2);
    scp_des_mac_update(&m, s->card_chal, 6);
    if (host)
        scp_des_mac_update(&m, s->host_chal, 8);
    scp_des_mac_final(&m, out);
}

/* GPC 2.2.1 E.5.1.2 (i b7): the well-known pseudo-random card challenge,
 * the first 6 bytes of the MAC (algorithm 3, S-MAC, zero ICV) over the
 * SD AID. */
static void pseudo_random_chal(const scp02_session *s, const uint8_t *aid, size_t aid_len,
                               uint8_t out[6])
{
    scp_des_mac m;
    uint8_t mac[8];
    scp_des_mac_init(&m, &s->s_cmac, 0, zero8);
    scp_des_mac_update(&m, aid, aid_len);
    scp_des_mac_final(&m, mac);
    memcpy(out, mac, 6);
}

int scp02_iu_resp_parse(const uint8_t *p, size_t len, scp02_iu_resp *out)
{
    scp_rd r;
    ENSURE(p != NULL && out != NULL, SCP_E_ARG);
    /* an SCP03 (or other) card answers with its own protocol id */
    ENSURE(len < 12 || p[11] == 0x02, SCP_E_UNSUPPORTED);
    ENSURE(len >= SCP02_IU_RESP_LEN, SCP_E_TRUNCATED);
    ENSURE(len == SCP02_IU_RESP_LEN, SCP_E_LENGTH);
    scp_rd_init(&r, p, len);
    GUARD(scp_rd_copy(&r, out->kdd, SCP02_KDD_LEN));
    GUARD(scp_rd_u8(&r, &out->kvn));
    GUARD(scp_rd_u8(&r, &out->scp_id));
    GUARD(scp_rd_copy(&r, out->seq, 2));
    GUARD(scp_rd_copy(&r, out->card_chal, 6));
    GUARD(scp_rd_copy(&r, out->card_cryptogram, 8));
    ENSURE(out->scp_id == 0x02, SCP_E_UNSUPPORTED);
    return SCP_OK;
}

/* ---- host ---- */

int scp02_host_begin(scp02_session *s, const scp02_keys *keys, uint8_t i,
                     const uint8_t host_chal[8])
{
    ENSURE(s != NULL && keys != NULL, SCP_E_ARG);
    ENSURE(scp02_i_supported(i), SCP_E_UNSUPPORTED);
    scp02_end(s);
    s->role = 0;
    s->i = i;
    s->kvn = keys->kvn;
    if (host_chal != NULL)
        memcpy(s->host_chal, host_chal, 8);
    else
        GUARD(scp_random(s->host_chal, 8));
    memcpy(s->static_enc, keys->enc, 16);
    memcpy(s->static_mac, keys->mac, 16);
    memcpy(s->static_dek, keys->dek, 16);
    s->state = SCP02_IDLE;
    return SCP_OK;
}

int scp02_host_initialize_update(scp02_session *s, uint8_t cla, uint8_t *out, size_t out_size,
                                 size_t *out_len)
{
    ENSURE(s != NULL && out != NULL && out_len != NULL, SCP_E_ARG);
    ENSURE(s->role == 0 && s->state == SCP02_IDLE, SCP_E_STATE);
    ENSURE(out_size >= 14, SCP_E_BUFFER_TOO_SMALL);
    out[0] = (uint8_t)(0x80 | (cla & 0x03));
    out[1] = 0x50;
    out[2] = s->kvn;
    out[3] = 0x00;
    out[4] = 8;
    memcpy(out + 5, s->host_chal, 8);
    out[13] = 0x00;
    *out_len = 14;
    s->state = SCP02_IU_SENT;
    return SCP_OK;
}

int scp02_host_iu_response(scp02_session *s, const uint8_t *resp, size_t len, const uint8_t *aid,
                           size_t aid_len)
{
    scp02_iu_resp r;
    uint8_t want[8], chal[6];
    int rc;

    ENSURE(s != NULL && resp != NULL, SCP_E_ARG);
    ENSURE(s->role == 0 && s->state == SCP02_IU_SENT, SCP_E_STATE);
    GUARD_GOTO(scp02_iu_resp_parse(resp, len, &r), fail);
    /* the card's KVN is taken as it comes (pySim's sysmocom cards answer
     * KVN 70 to a request for 20): the cryptogram proves the keys */
    memcpy(s->kdd, r.kdd, SCP02_KDD_LEN);
    memcpy(s->seq, r.seq, 2);
    memcpy(s->card_chal, r.card_chal, 6);
    s->kvn = r.kvn;
    GUARD_GOTO(derive_keys(s, s->static_enc, s->static_mac, s->static_dek), fail);
    scp_wipe(s->static_enc, 48); /* enc, mac, dek: adjacent */
    cryptogram(s, 0, want);
    if (!scp_ct_eq(want, r.card_cryptogram, 8)) {
        scp_wipe(want, sizeof(want));
        return scp02_fail(s, SCP_E_CRYPTOGRAM);
    }
    if ((s->i & SCP02_I_PSEUDO_RANDOM) && aid != NULL) {
        pseudo_random_chal(s, aid, aid_len, chal);
        if (!scp_ct_eq(chal, r.card_chal, 6))
            return scp02_fail(s, SCP_E_CRYPTOGRAM);
    }
    cryptogram(s, 1, s->host_cryptogram);
    scp_wipe(want, sizeof(want));
    s->state = SCP02_IU_DONE;
    return SCP_OK;
fail:
    return scp02_fail(s, rc);
}

/* The EXTERNAL AUTHENTICATE header the C-MAC covers (E.4.4): modified
 * 84 82 P1 00 10, or unmodified 80 82 P1 00 08. */
static void ea_mac_header(const scp02_session *s, uint8_t cla, uint8_t level, uint8_t hdr[5])
{
    int unmod = (s->i & SCP02_I_CMAC_UNMODIFIED) != 0;
    hdr[0] = unmod ? (uint8_t)(cla & ~0x04) : (uint8_t)(cla | 0x04);
    hdr[1] = 0x82;
    hdr[2] = level;
    hdr[3] = 0x00;
    hdr[4] = unmod ? 8 : 16;
}

int scp02_host_external_authenticate(scp02_session *s, uint8_t level, uint8_t *out,
                                     size_t out_size, size_t *out_len)
{
    uint8_t hdr[5], mac[8];
    ENSURE(s != NULL && out != NULL && out_len != NULL, SCP_E_ARG);
    ENSURE(s->role == 0 && s->state == SCP02_IU_DONE, SCP_E_STATE);
    ENSURE(scp02_level_valid(level), SCP_E_LEVEL);
    ENSURE(out_size >= 21, SCP_E_BUFFER_TOO_SMALL);
    ea_mac_header(s, 0x84, level, hdr);
    scp02_cmac(s, 1, hdr, s->host_cryptogram, 8, mac);
    out[0] = 0x84;
    out[1] = 0x82;
    out[2] = level;
    out[3] = 0x00;
    out[4] = 16;
    memcpy(out + 5, s->host_cryptogram, 8);
    memcpy(out + 13, mac, 8);
    *out_len = 21;
    s->level = level;
    s->state = SCP02_EA_SENT;
    return SCP_OK;
}

int scp02_host_ea_result(scp02_session *s, uint16_t sw)
{
    ENSURE(s != NULL, SCP_E_ARG);
    ENSURE(s->role == 0 && s->state == SCP02_EA_SENT, SCP_E_STATE);
    if (sw != 0x9000)
        return scp02_fail(s, SCP_E_AUTH);
    /* the R-MAC chain starts from the EXTERNAL AUTHENTICATE C-MAC (as
     * GlobalPlatformPro) */
    memcpy(s->chain.u.scp02.rmac, s->chain.u.scp02.cmac, 8);
    scp_wipe(s->host_cryptogram, 8);
    s->state = SCP02_OPEN;
    return SCP_OK;
}

/* ---- card ---- */

int scp02_card_initialize_update(scp02_session *s, const scp02_card_params *prm,
                                 const scp02_keys *keys, const uint8_t *host_chal,
                                 size_t chal_len, uint8_t *out, size_t out_size, size_t *out_len)
{
    uint8_t cc[8];
    int rc;
    ENSURE(s != NULL && prm != NULL && keys != NULL && host_chal != NULL && out != NULL &&
               out_len != NULL,
           SCP_E_ARG);
    ENSURE(chal_len == 8, SCP_E_LENGTH);
    ENSURE(scp02_i_supported(prm->i), SCP_E_UNSUPPORTED);
    ENSURE(out_size >= SCP02_IU_RESP_LEN, SCP_E_BUFFER_TOO_SMALL);
    ENSURE(!(prm->i & SCP02_I_PSEUDO_RANDOM) || prm->aid != NULL || prm->fixed_card_chal,
           SCP_E_ARG);
    scp02_end(s);
    s->role = 1;
    s->i = prm->i;
    s->kvn = keys->kvn;
    memcpy(s->host_chal, host_chal, 8);
    memcpy(s->kdd, prm->kdd, SCP02_KDD_LEN);
    s->seq[0] = (uint8_t)(prm->seq >> 8);
    s->seq[1] = (uint8_t)prm->seq;
    GUARD_GOTO(derive_keys(s, keys->enc, keys->mac, keys->dek), fail);
    if (prm->fixed_card_chal != NULL)
        memcpy(s->card_chal, prm->fixed_card_chal, 6);
    else if (prm->i & SCP02_I_PSEUDO_RANDOM)
        pseudo_random_chal(s, prm->aid, prm->aid_len, s->card_chal);
    else
        GUARD_GOTO(scp_random(s->card_chal, 6), fail);
    cryptogram(s, 0, cc);
    cryptogram(s, 1, s->host_cryptogram);
    memcpy(out, s->kdd, SCP02_KDD_LEN);
    out[10] = s->kvn;
    out[11] = 0x02;
    memcpy(out + 12, s->seq, 2);
    memcpy(out + 14, s->card_chal, 6);
    memcpy(out + 20, cc, 8);
    *out_len = SCP02_IU_RESP_LEN;
    s->state = SCP02_IU_DONE;
    return SCP_OK;
fail:
    return scp02_fail(s, rc);
}

int scp02_card_external_authenticate(scp02_session *s, const uint8_t *capdu, size_t len)
{
    scp_apdu a;
    uint8_t hdr[5], mac[8];
    int ok, rc;
    ENSURE(s != NULL && capdu != NULL, SCP_E_ARG);
    ENSURE(s->role == 1 && s->state == SCP02_IU_DONE, SCP_E_STATE);
    GUARD_GOTO(scp_apdu_parse(capdu, len, &a), fail);
    ENSURE(a.ins == 0x82 && (a.cla & 0x04) && a.lc == 16 && a.p2 == 0,
           scp02_fail(s, SCP_E_FORMAT));
    if (!scp02_level_valid(a.p1)) {
        scp02_wipe(s); /* a new INITIALIZE UPDATE is needed */
        s->state = SCP02_IDLE;
        return SCP_E_LEVEL;
    }
    ea_mac_header(s, a.cla, a.p1, hdr);
    scp02_cmac(s, 1, hdr, a.data, 8, mac);
    ok = scp_ct_eq(mac, a.data + 8, 8);
    if (!ok)
        return scp02_fail(s, SCP_E_MAC);
    if (!scp_ct_eq(s->host_cryptogram, a.data, 8))
        return scp02_fail(s, SCP_E_CRYPTOGRAM);
    memcpy(s->chain.u.scp02.rmac, s->chain.u.scp02.cmac, 8);
    scp_wipe(s->host_cryptogram, 8);
    s->level = a.p1;
    s->state = SCP02_OPEN;
    return SCP_OK;
fail:
    return scp02_fail(s, rc);
}
