/* SCP02 secure messaging (GPC v2.2.1 appendix E.4.4-E.4.6): C-MAC,
 * C-DECRYPTION and R-MAC, both roles; PUT KEY key data (E.4.7). */
#include <string.h>

#include "scp02/internal.h"
#include "scpkit/apdu.h"
#include "scpkit/buf.h"
#include "sm/sm.h"

/* Short APDUs only (GP 2.1.1): data (+ padding) + C-MAC within 255. */
#define SCP02_MAX_PLAIN_ENC (255 - SCP02_WRAP_OVERHEAD)
#define SCP02_MAX_PLAIN_MAC (255 - 8)

/* The core's keys for a pass (src/sm/sm.h): S-ENC and the MAC key. */
static scp_sm_keys keys_of(const scp02_session *s, const scp_des3 *mac)
{
    scp_sm_keys k = { NULL, NULL, &s->s_enc, mac };
    return k;
}

/* E.4.4: the C-MAC, on the core (description by i: ICV encrypted or
 * not), from a zero ICV for EXTERNAL AUTHENTICATE. */
void scp02_cmac(scp02_session *s, int first, const uint8_t hdr[5], const uint8_t *data,
                size_t len, uint8_t mac[8])
{
    const scp_sm_desc *d = scp_sm_desc_scp02(s->i);
    scp_sm_keys k = keys_of(s, &s->s_cmac);
    uint8_t tag[16];
    if (scp_sm_mac_once(d, &k, first ? SCP_SMI_ZERO : d->cmac_icv, s->chain.u.scp02.cmac, hdr, 5, data, len,
                        NULL, 0, tag) != SCP_OK)
        memset(tag, 0, sizeof(tag)); /* the retail MAC cannot fail */
    memcpy(mac, tag, 8);
    memcpy(s->chain.u.scp02.cmac, tag, 8);
    scp_wipe(tag, sizeof(tag));
}

/* E.4.5: the R-MAC input starts with the command: CLA (logical channel
 * and SM bits clear) INS P1 P2 Lc plain data (as GlobalPlatformPro); the
 * MAC runs from the R-MAC chaining value and waits in the session for
 * the response. */
static void rmac_begin(scp02_session *s, const scp_apdu *a)
{
    const scp_sm_desc *d = scp_sm_desc_scp02(s->i);
    scp_sm_keys k = keys_of(s, &s->s_rmac);
    uint8_t hdr[5] = { (uint8_t)(a->cla & ~0x07), a->ins, a->p1, a->p2, (uint8_t)a->lc };
    scp_sm_mac_ctx m;
    scp_sm_mac_begin(&m, d, &k, d->rmac_icv, s->chain.u.scp02.rmac);
    scp_sm_mac_update(&m, hdr, 5);
    scp_sm_mac_update(&m, a->data, a->lc);
    scp_sm_mac_park(&m, &s->rmac);
    scp_wipe(&m, sizeof(m));
}

/* ... and ends with Lr, the response data and SW1 SW2; rx NULL: make the
 * R-MAC (card), otherwise check it (host: SCP_E_MAC). The R-MAC is the
 * next chaining value. */
static int rmac_end(scp02_session *s, const uint8_t *data, size_t len, uint16_t sw,
                    const uint8_t *rx, uint8_t mac[8])
{
    const scp_sm_desc *d = scp_sm_desc_scp02(s->i);
    scp_sm_keys k = keys_of(s, &s->s_rmac);
    uint8_t lr = (uint8_t)len, t[2] = { (uint8_t)(sw >> 8), (uint8_t)sw }, tag[16];
    scp_sm_mac_ctx m;
    int rc;
    scp_sm_mac_resume(&m, d, &k, &s->rmac);
    scp_sm_mac_update(&m, &lr, 1);
    scp_sm_mac_update(&m, data, len);
    scp_sm_mac_update(&m, t, 2);
    rc = rx != NULL ? scp_sm_mac_check(&m, rx, tag) : scp_sm_mac_final(&m, tag);
    memcpy(mac, tag, 8);
    memcpy(s->chain.u.scp02.rmac, tag, 8);
    scp_wipe(tag, sizeof(tag));
    return rc;
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
    if (a.lc > 0)
        memmove(out + 5, a.data, a.lc); /* capdu may be out */
    {
        /* E.4.4 C-MAC over the plain data, then E.4.6 C-DECRYPTION
         * (3DES-CBC, zero ICV, M2 padding): MAC-then-encrypt on the core */
        const scp_sm_desc *d = scp_sm_desc_scp02(s->i);
        scp_sm_keys k = keys_of(s, &s->s_cmac);
        uint8_t tag[16];
        rc = scp_sm_seal(d, &k, d->cmac_icv, s->chain.u.scp02.cmac, NULL, NULL, hdr, 5, out + 5, a.lc, enc,
                         NULL, 0, &dl, tag);
        memcpy(s->chain.u.scp02.cmac, tag, 8);
        memcpy(mac, tag, 8);
        scp_wipe(tag, sizeof(tag));
        if (rc != SCP_OK)
            return scp02_fail(s, rc);
    }
    out[0] = (uint8_t)(a.cla | 0x04);
    out[1] = a.ins;
    out[2] = a.p1;
    out[3] = a.p2;
    out[4] = (uint8_t)(dl + 8);
    pos = 5 + dl;
    memcpy(out + pos, mac, 8);
    pos += 8;
    if (a.has_le)
        out[pos++] = (uint8_t)a.le;
    *out_len = pos;
    s->resp_pending = 1;
    return SCP_OK;
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
    ok = rmac_end(s, rapdu, dl, sw, rapdu + dl, mac) == SCP_OK;
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
    uint8_t hdr[5], buf[256];
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
    {
        /* MAC-then-encrypt opened on the core: E.4.6 decryption and
         * padding first, then the E.4.4 C-MAC over the plain data */
        const scp_sm_desc *d = scp_sm_desc_scp02(s->i);
        scp_sm_keys k = keys_of(s, &s->s_cmac);
        uint8_t tag[16];
        if ((s->level & 0x02) && fl > 0) {
            rc = scp_sm_decrypt_unpad(d, &k, NULL, a.data, fl, buf, &pl);
            if (rc != SCP_OK)
                return scp02_fail(s, rc);
        } else {
            memcpy(buf, a.data, fl);
            pl = fl;
        }
        cmac_header(s, &a, pl, hdr);
        ok = scp_sm_verify(d, &k, d->cmac_icv, s->chain.u.scp02.cmac, hdr, 5, buf, pl, NULL, 0, a.data + fl,
                           tag) == SCP_OK;
        memcpy(s->chain.u.scp02.cmac, tag, 8);
        scp_wipe(tag, sizeof(tag));
    }
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
        if (rmac_end(s, out, len, sw, NULL, mac) != SCP_OK)
            return scp02_fail(s, SCP_E_CRYPTO);
        memcpy(out + len, mac, 8);
        len += 8;
    }
    out[len] = (uint8_t)(sw >> 8);
    out[len + 1] = (uint8_t)sw;
    *out_len = len + 2;
    return SCP_OK;
}
