/* SCP02 secure messaging (GPC v2.2.1 appendix E.4.4-E.4.6): C-MAC,
 * C-DECRYPTION and R-MAC, both roles; PUT KEY key data (E.4.7). */
#include <string.h>

#include "scp02/internal.h"
#include "scpkit/apdu.h"
#include "scpkit/buf.h"

static const uint8_t zero8[8];

/* Short APDUs only (GP 2.1.1): data (+ padding) + C-MAC within 255. */
#define SCP02_MAX_PLAIN_ENC (255 - SCP02_WRAP_OVERHEAD)
#define SCP02_MAX_PLAIN_MAC (255 - 8)

/* E.4.5: the R-MAC input starts with the command: CLA (logical channel
 * and SM bits clear) INS P1 P2 Lc plain data (as GlobalPlatformPro). */
static void rmac_begin(scp02_session *s, const scp_apdu *a)
{
    uint8_t hdr[5] = { (uint8_t)(a->cla & ~0x07), a->ins, a->p1, a->p2, (uint8_t)a->lc };
    scp_des_mac_init(&s->rmac, &s->s_rmac, 0, s->rmac_icv);
    scp_des_mac_update(&s->rmac, hdr, 5);
    scp_des_mac_update(&s->rmac, a->data, a->lc);
}

/* ... and ends with Lr, the response data and SW1 SW2. */
static void rmac_end(scp02_session *s, const uint8_t *data, size_t len, uint16_t sw,
                     uint8_t mac[8])
{
    uint8_t lr = (uint8_t)len, t[2] = { (uint8_t)(sw >> 8), (uint8_t)sw };
    scp_des_mac_rekey(&s->rmac, &s->s_rmac); /* the session may have moved since */
    scp_des_mac_update(&s->rmac, &lr, 1);
    scp_des_mac_update(&s->rmac, data, len);
    scp_des_mac_update(&s->rmac, t, 2);
    scp_des_mac_final(&s->rmac, mac);
    memcpy(s->rmac_icv, mac, 8);
}

static void cmac_header(const scp02_session *s, const scp_apdu *a, size_t plain_len,
                        uint8_t hdr[5])
{
    if (s->i & SCP02_I_CMAC_UNMODIFIED) {
        hdr[0] = (uint8_t)(a->cla & ~0x04);
        hdr[4] = (uint8_t)plain_len;
    } else {
        hdr[0] = (uint8_t)(a->cla | 0x04);
        hdr[4] = (uint8_t)(plain_len + 8);
    }
    hdr[1] = a->ins;
    hdr[2] = a->p1;
    hdr[3] = a->p2;
}

int scp02_host_wrap(scp02_session *s, const uint8_t *capdu, size_t len, uint8_t *out,
                    size_t out_size, size_t *out_len)
{
    scp_apdu a;
    uint8_t hdr[5], mac[8];
    size_t dl, pos;
    int enc, rc;

    ENSURE(s != NULL && capdu != NULL && out != NULL && out_len != NULL, SCP_E_ARG);
    ENSURE(s->role == 0, SCP_E_STATE);
    ENSURE(s->state != SCP02_DEAD, SCP_E_DEAD);
    ENSURE(s->state == SCP02_OPEN, SCP_E_STATE);
    GUARD(scp_apdu_parse(capdu, len, &a));
    ENSURE((a.cla & 0x04) == 0 && (a.cla & 0x40) == 0, SCP_E_ARG);
    if (s->level == 0) {
        ENSURE(len <= out_size, SCP_E_BUFFER_TOO_SMALL);
        memcpy(out, capdu, len);
        *out_len = len;
        return SCP_OK;
    }
    ENSURE(a.lc <= ((s->level & 0x02) ? SCP02_MAX_PLAIN_ENC : SCP02_MAX_PLAIN_MAC) && !a.extended,
           SCP_E_LENGTH);
    enc = (s->level & 0x02) && a.lc > 0;
    dl = enc ? a.lc + 8 - a.lc % 8 : a.lc;
    ENSURE(out_size >= 5 + dl + 8 + 1, SCP_E_BUFFER_TOO_SMALL);
    if (s->level & 0x10)
        rmac_begin(s, &a);
    cmac_header(s, &a, a.lc, hdr);
    scp02_cmac(s, 0, hdr, a.data, a.lc, mac);
    out[0] = (uint8_t)(a.cla | 0x04);
    out[1] = a.ins;
    out[2] = a.p1;
    out[3] = a.p2;
    out[4] = (uint8_t)(dl + 8);
    pos = 5;
    if (enc) {
        /* E.4.6: C-DECRYPTION, 3DES-CBC under S-ENC, zero ICV, 80 00
         * padding always added */
        GUARD_GOTO(scp_pad_m2(a.data, a.lc, 8, out + pos, out_size - pos, &dl), fail);
        GUARD_GOTO(scp_des3_cbc_encrypt(&s->s_enc, zero8, out + pos, dl, out + pos), fail);
    } else if (a.lc > 0) {
        memcpy(out + pos, a.data, a.lc);
    }
    pos += dl;
    memcpy(out + pos, mac, 8);
    pos += 8;
    if (a.has_le)
        out[pos++] = (uint8_t)a.le;
    *out_len = pos;
    s->resp_pending = 1;
    return SCP_OK;
fail:
    return scp02_fail(s, rc);
}

int scp02_host_unwrap(scp02_session *s, const uint8_t *rapdu, size_t len, uint8_t *out,
                      size_t out_size, size_t *out_len)
{
    uint8_t mac[8];
    size_t dl;
    uint16_t sw;
    int ok;

    ENSURE(s != NULL && rapdu != NULL && out != NULL && out_len != NULL, SCP_E_ARG);
    ENSURE(s->role == 0, SCP_E_STATE);
    ENSURE(s->state != SCP02_DEAD, SCP_E_DEAD);
    ENSURE(s->state == SCP02_OPEN, SCP_E_STATE);
    ENSURE(len >= 2 && len <= 258, SCP_E_LENGTH);
    if (!(s->level & 0x10) || !s->resp_pending) {
        ENSURE(len <= out_size, SCP_E_BUFFER_TOO_SMALL);
        memcpy(out, rapdu, len);
        *out_len = len;
        s->resp_pending = 0;
        return SCP_OK;
    }
    s->resp_pending = 0;
    ENSURE(len >= 10, scp02_fail(s, SCP_E_MAC));
    dl = len - 10;
    ENSURE(dl + 2 <= out_size, SCP_E_BUFFER_TOO_SMALL);
    sw = (uint16_t)(rapdu[len - 2] << 8 | rapdu[len - 1]);
    rmac_end(s, rapdu, dl, sw, mac);
    ok = scp_ct_eq(mac, rapdu + dl, 8);
    scp_wipe(mac, sizeof(mac));
    if (!ok)
        return scp02_fail(s, SCP_E_MAC);
    memmove(out, rapdu, dl);
    out[dl] = (uint8_t)(sw >> 8);
    out[dl + 1] = (uint8_t)sw;
    *out_len = dl + 2;
    return SCP_OK;
}

int scp02_card_unwrap(scp02_session *s, const uint8_t *capdu, size_t len, uint8_t *out,
                      size_t out_size, size_t *out_len)
{
    scp_apdu a, p;
    uint8_t hdr[5], mac[8], buf[256];
    size_t fl, pl;
    int ok, rc;

    ENSURE(s != NULL && capdu != NULL && out != NULL && out_len != NULL, SCP_E_ARG);
    ENSURE(s->role == 1, SCP_E_STATE);
    ENSURE(s->state != SCP02_DEAD, SCP_E_DEAD);
    ENSURE(s->state == SCP02_OPEN, SCP_E_STATE);
    GUARD_GOTO(scp_apdu_parse(capdu, len, &a), fail);
    if (s->level == 0) {
        ENSURE(len <= out_size, SCP_E_BUFFER_TOO_SMALL);
        memcpy(out, capdu, len);
        *out_len = len;
        return SCP_OK;
    }
    /* a command without the SM bit at a MACing level ends the session */
    ENSURE((a.cla & 0x04) && a.lc >= 8 && !a.extended, scp02_fail(s, SCP_E_MAC));
    fl = a.lc - 8;
    if ((s->level & 0x02) && fl > 0) {
        ENSURE(fl % 8 == 0, scp02_fail(s, SCP_E_PADDING));
        GUARD_GOTO(scp_des3_cbc_decrypt(&s->s_enc, zero8, a.data, fl, buf), fail);
        if (scp_unpad_m2(buf, fl, 8, &pl) != SCP_OK) {
            scp_wipe(buf, fl);
            return scp02_fail(s, SCP_E_PADDING);
        }
    } else {
        memcpy(buf, a.data, fl);
        pl = fl;
    }
    cmac_header(s, &a, pl, hdr);
    scp02_cmac(s, 0, hdr, buf, pl, mac);
    ok = scp_ct_eq(mac, a.data + fl, 8);
    scp_wipe(mac, sizeof(mac));
    if (!ok) {
        scp_wipe(buf, sizeof(buf));
        return scp02_fail(s, SCP_E_MAC);
    }
    memset(&p, 0, sizeof(p));
    p.cla = (uint8_t)(a.cla & ~0x04);
    p.ins = a.ins;
    p.p1 = a.p1;
    p.p2 = a.p2;
    p.lc = pl;
    p.data = pl ? buf : NULL;
    p.has_le = a.has_le;
    p.le = a.le;
    rc = scp_apdu_encode(&p, out, out_size, out_len);
    if (rc == SCP_OK && (s->level & 0x10))
        rmac_begin(s, &p);
    scp_wipe(buf, sizeof(buf));
    if (rc != SCP_OK)
        return rc;
    s->resp_pending = 1;
    return SCP_OK;
fail:
    scp_wipe(buf, sizeof(buf));
    return scp02_fail(s, rc);
}

int scp02_card_wrap(scp02_session *s, const uint8_t *data, size_t len, uint16_t sw, uint8_t *out,
                    size_t out_size, size_t *out_len)
{
    uint8_t mac[8];
    int rmac;
    ENSURE(s != NULL && out != NULL && out_len != NULL && (len == 0 || data != NULL), SCP_E_ARG);
    ENSURE(s->role == 1, SCP_E_STATE);
    ENSURE(s->state != SCP02_DEAD, SCP_E_DEAD);
    ENSURE(s->state == SCP02_OPEN, SCP_E_STATE);
    rmac = (s->level & 0x10) && s->resp_pending;
    ENSURE(len <= (rmac ? 248u : 256u), SCP_E_LENGTH);
    ENSURE(out_size >= len + 2 + (rmac ? 8u : 0u), SCP_E_BUFFER_TOO_SMALL);
    s->resp_pending = 0;
    memmove(out, data, len);
    if (rmac) {
        rmac_end(s, out, len, sw, mac);
        memcpy(out + len, mac, 8);
        len += 8;
    }
    out[len] = (uint8_t)(sw >> 8);
    out[len + 1] = (uint8_t)sw;
    *out_len = len + 2;
    return SCP_OK;
}
