/* SCP03 command and response protection, both roles (GPC Amd D 6.2.4-6.2.7).
 * One function per step; the host and the card call the same steps. */
#include <string.h>

#include "scpkit/apdu.h"
#include "scpkit/buf.h"
#include "scpkit/scp03.h"
#include "scp03/internal.h"
#include "crypto/internal.h"
#include "sm/sm.h"

uint8_t scp03_sm_cla(uint8_t cla)
{
    /* GPC 11.1.4: further interindustry classes (b7 set) mark secure
     * messaging with b6; first interindustry and proprietary with b3. */
    return (uint8_t)((cla & 0x40) ? (cla | 0x20) : (cla | 0x04));
}

static int cla_has_sm(uint8_t cla)
{
    return (cla & 0x40) ? (cla & 0x20) != 0 : (cla & 0x04) != 0;
}

static uint8_t cla_plain(uint8_t cla)
{
    return (uint8_t)((cla & 0x40) ? (cla & ~0x20) : (cla & ~0x04));
}

size_t scp03_max_plain_data(const scp03_session *s, int extended)
{
    size_t max = extended ? 65535 : 255, mac = (s->level & SCP_LEVEL_CMAC) ? s->chal_len : 0;
    if (s->level & SCP_LEVEL_CDEC) /* room for the MAC, then whole blocks minus one pad byte */
        return ((max - mac) / 16) * 16 - 1;
    return max - mac;
}

/* The core's description (src/sm/sm.h): S8 or S16. */
static const scp_sm_desc *desc_of(const scp03_session *s)
{
    return scp_sm_desc_scp03(s->chal_len);
}

/* S-ENC and S-RMAC are kept raw (the session stays small): each use
 * expands the ones it needs into scp_aes keys on this stack, which
 * scp_aes_close wipes (src/crypto/backend.c). r2 may be NULL. */
static int open2(const scp_aes_raw *r1, scp_aes *k1, const scp_aes_raw *r2, scp_aes *k2)
{
    GUARD(scp_aes_open(k1, r1));
    if (r2 != NULL) {
        int rc = scp_aes_open(k2, r2);
        if (rc != SCP_OK) {
            scp_aes_close(k1);
            return rc;
        }
    }
    return SCP_OK;
}

static size_t encode_header(uint8_t hdr[7], const scp_apdu *a, size_t lc, int ext)
{
    hdr[0] = a->cla, hdr[1] = a->ins, hdr[2] = a->p1, hdr[3] = a->p2;
    if (lc == 0)
        return 4;
    if (!ext) {
        hdr[4] = (uint8_t)lc;
        return 5;
    }
    hdr[4] = 0, hdr[5] = (uint8_t)(lc >> 8), hdr[6] = (uint8_t)lc;
    return 7;
}

static int check_open(const scp03_session *s, uint8_t role)
{
    ENSURE(s != NULL && s->role == role, SCP_E_ARG);
    ENSURE(s->state != SCP03_DEAD, SCP_E_DEAD);
    ENSURE(s->state == SCP03_OPEN, SCP_E_STATE);
    return SCP_OK;
}

/* Bytes of Le on the wire: none, 1 (short) or 2 (extended, after an Lc). */
static size_t le_bytes(const scp_apdu *a, int ext)
{
    return a->has_le ? (ext ? 2u : 1u) : 0u;
}

int scp03_host_wrap(scp03_session *s, const uint8_t *capdu, size_t len, uint8_t *out,
                    size_t out_size, size_t *out_len)
{
    uint8_t hdr[7], blk[16];
    scp_apdu a;
    size_t dl, hl, need;
    int ext, rc, enc;

    GUARD(check_open(s, SCP03_ROLE_HOST));
    ENSURE(out != NULL && out_len != NULL, SCP_E_ARG);
    ENSURE(!s->resp_pending, SCP_E_STATE);
    GUARD(scp_apdu_parse(capdu, len, &a));
    ENSURE(!cla_has_sm(a.cla), SCP_E_ARG);
    ENSURE(a.lc <= scp03_max_plain_data(s, 1), SCP_E_LENGTH);
    ENSURE(s->chain.counter < 0xFFFFFFFFu, SCP_E_COUNTER);
    if (s->level == SCP_LEVEL_NONE) { /* no secure messaging after EA */
        /* a parsed APDU encodes back to the same bytes */
        ENSURE(out_size >= len, SCP_E_BUFFER_TOO_SMALL);
        s->chain.counter++; /* GPC Amd D 6.2.6: for every command */
        memmove(out, capdu, len);
        *out_len = len;
        return SCP_OK;
    }
    enc = (s->level & SCP_LEVEL_CDEC) && a.lc > 0;
    dl = enc ? scp_sm_padded_len(desc_of(s), a.lc) : a.lc;
    a.cla = scp03_sm_cla(a.cla);
    ext = a.extended || dl + s->chal_len > 255 || (a.has_le && a.le > 256);
    hl = encode_header(hdr, &a, dl + s->chal_len, ext);
    /* exactly what is written below; nothing in the session changes
     * before this check (a caller may retry with a bigger buffer) */
    need = hl + dl + s->chal_len + le_bytes(&a, ext);
    ENSURE(out_size >= need, SCP_E_BUFFER_TOO_SMALL);
    s->chain.counter++; /* GPC Amd D 6.2.6: for every command, with or without data */
    /* the data goes to its place in out, after the header */
    if (a.lc > 0)
        memmove(out + hl, a.data, a.lc); /* capdu may be out */
    if (enc) {
        /* GPC Amd D 6.2.6 C-DEC then 6.2.4 C-MAC over the ciphertext, in
         * one pass on the core's AES fast path (the CBC and CMAC chains
         * interleaved); the next command's ICV is made now, off this
         * command's chains. The new chaining value replaces the old one
         * in place (it is read first). */
        uint8_t next[16];
        scp_sm_ahead ah = { s->icv_ahead_for == s->chain.counter ? s->icv_ahead : NULL, next,
                            s->icv_ahead };
        scp_aes ke;
        (void)scp_sm_enc_icv(desc_of(s), &s->chain, 0, blk);
        memcpy(next, blk, 16);
        for (int k = 15; k >= 8 && ++next[k] == 0; k--)
            ;
        rc = scp_aes_open(&ke, SCP_RAW_OF(&s->s_enc));
        if (rc == SCP_OK) {
            scp_sm_keys k = { &ke, SCP_AES_OF(&s->s_mac), NULL, NULL };
            rc = scp_sm_seal(desc_of(s), &k, SCP_SMI_CHAIN, s->chain.u.icv, blk, &ah, hdr, hl,
                             out + hl, a.lc, 1, NULL, 0, &dl, s->chain.u.icv);
            scp_aes_close(&ke);
        }
        s->icv_ahead_for = s->chain.counter + 1;
    } else {
        /* GPC Amd D 6.2.4: C-MAC = CMAC(S-MAC, chain | header | data) */
        scp_sm_keys k = { NULL, SCP_AES_OF(&s->s_mac), NULL, NULL };
        rc = scp_sm_seal(desc_of(s), &k, SCP_SMI_CHAIN, s->chain.u.icv, NULL, NULL, hdr, hl,
                         out + hl, a.lc, 0, NULL, 0, &dl, s->chain.u.icv);
    }
    if (rc != SCP_OK)
        return scp03_fail(s, rc);
    memcpy(out, hdr, hl);
    memcpy(out + hl + dl, s->chain.u.icv, s->chal_len);
    *out_len = hl + dl + s->chal_len;
    if (a.has_le) {
        if (ext) {
            out[(*out_len)++] = (uint8_t)(a.le >> 8);
            out[(*out_len)++] = (uint8_t)a.le;
        } else {
            out[(*out_len)++] = (uint8_t)a.le;
        }
    }
    s->resp_pending = (s->level & SCP_LEVEL_RMAC) != 0;
    return SCP_OK;
}

int scp03_host_unwrap(scp03_session *s, const uint8_t *rapdu, size_t len, uint8_t *out,
                      size_t out_size, size_t *out_len)
{
    uint8_t mac[16], blk[16], swb[2];
    scp_rapdu r;
    size_t n, pl;
    int rc;

    GUARD(check_open(s, SCP03_ROLE_HOST));
    ENSURE(out != NULL && out_len != NULL, SCP_E_ARG);
    GUARD(scp_rapdu_parse(rapdu, len, &r));
    /* the plain response is never longer than the protected one less its
     * R-MAC (R-ENC decrypts in place, padding and all) */
    n = (s->level & SCP_LEVEL_RMAC) && scp_sw_is_success_class(r.sw) && r.len >= s->chal_len
            ? len - s->chal_len
            : len;
    ENSURE(out_size >= n, SCP_E_BUFFER_TOO_SMALL);
    if (!(s->level & SCP_LEVEL_RMAC) || !scp_sw_is_success_class(r.sw)) {
        /* GPC Amd D 6.2.5: an error status carries no R-MAC and no data */
        if ((s->level & SCP_LEVEL_RMAC) && r.len != 0)
            return scp03_fail(s, SCP_E_MAC);
        s->resp_pending = 0;
        memmove(out, rapdu, len);
        *out_len = len;
        return SCP_OK;
    }
    ENSURE(s->resp_pending, SCP_E_STATE);
    s->resp_pending = 0;
    if (r.len < s->chal_len)
        return scp03_fail(s, SCP_E_MAC);
    n = r.len - s->chal_len;
    {
        /* GPC Amd D 6.2.5 R-MAC = CMAC(S-RMAC, chain | data | SW1 SW2),
         * and 6.2.7 R-ENC (ICV = AES(S-ENC, 80 | counter)) in one pass on
         * the core when the data is whole blocks; nothing decrypted
         * leaves unless the R-MAC matches */
        int dec = (s->level & SCP_LEVEL_RENC) && n > 0;
        scp_aes ke, kr;
        swb[0] = (uint8_t)(r.sw >> 8), swb[1] = (uint8_t)r.sw;
        (void)scp_sm_enc_icv(desc_of(s), &s->chain, 1, blk);
        if (dec && n % 16 == 0)
            rc = open2(SCP_RAW_OF(&s->s_rmac), &kr, SCP_RAW_OF(&s->s_enc), &ke);
        else
            rc = open2(SCP_RAW_OF(&s->s_rmac), &kr, NULL, NULL);
        if (rc == SCP_OK) {
            scp_sm_keys k = { dec && n % 16 == 0 ? &ke : NULL, &kr, NULL, NULL };
            rc = scp_sm_open(desc_of(s), &k, SCP_SMI_CHAIN, s->chain.u.icv, blk, NULL, 0, r.data,
                             n, dec, swb, 2, r.data + n, out, &pl, mac);
            if (k.aes_enc != NULL)
                scp_aes_close(&ke);
            scp_aes_close(&kr);
        }
        if (rc != SCP_OK)
            return scp03_fail(s, rc);
        if (!dec && n > 0)
            memmove(out, r.data, n);
    }
    out[pl] = (uint8_t)(r.sw >> 8);
    out[pl + 1] = (uint8_t)r.sw;
    *out_len = pl + 2;
    return SCP_OK;
}

int scp03_card_unwrap(scp03_session *s, const uint8_t *capdu, size_t len, uint8_t *out,
                      size_t out_size, size_t *out_len)
{
    uint8_t hdr[7], mac[16];
    scp_apdu a;
    size_t n, pl = 0, hl;
    int rc;

    GUARD(check_open(s, SCP03_ROLE_CARD));
    ENSURE(out != NULL && out_len != NULL, SCP_E_ARG);
    rc = scp_apdu_parse(capdu, len, &a);
    if (rc != SCP_OK)
        return scp03_fail(s, rc);
    ENSURE(s->chain.counter < 0xFFFFFFFFu, SCP_E_COUNTER);
    /* the plain command is never longer than the protected one, and the
     * work area (data at out + 7) fits in len too: the C-MAC is at least
     * 8 bytes, the header at least 5 */
    ENSURE(out_size >= len, SCP_E_BUFFER_TOO_SMALL);
    s->chain.counter++;
    s->resp_pending = 1;
    if (s->level == SCP_LEVEL_NONE) {
        memmove(out, capdu, len);
        *out_len = len;
        return SCP_OK;
    }
    /* a plain command inside a MACed session ends it */
    if (!cla_has_sm(a.cla) || a.lc < s->chal_len)
        return scp03_fail(s, SCP_E_MAC);
    n = a.lc - s->chal_len;
    hl = encode_header(hdr, &a, a.lc, a.extended);
    {
        /* GPC Amd D 6.2.4 C-MAC and 6.2.6 C-DEC in one pass on the core
         * into out + 7 (nothing decrypted stays there unless the C-MAC
         * matches and the padding is good); the full C-MAC is the next
         * chaining value */
        int dec = (s->level & SCP_LEVEL_CDEC) && n > 0;
        uint8_t blk[16];
        scp_aes ke;
        scp_sm_keys k = { NULL, SCP_AES_OF(&s->s_mac), NULL, NULL };
        rc = SCP_OK;
        if (dec && n % 16 == 0) {
            rc = scp_aes_open(&ke, SCP_RAW_OF(&s->s_enc));
            k.aes_enc = &ke;
        }
        (void)scp_sm_enc_icv(desc_of(s), &s->chain, 0, blk);
        if (rc == SCP_OK) {
            rc = scp_sm_open(desc_of(s), &k, SCP_SMI_CHAIN, s->chain.u.icv, blk, hdr, hl, a.data, n,
                             dec, NULL, 0, a.data + n, out + 7, &pl, mac);
            if (k.aes_enc != NULL)
                scp_aes_close(&ke);
        }
        if (rc != SCP_OK) {
            scp_wipe(mac, sizeof(mac));
            return scp03_fail(s, rc);
        }
        memcpy(s->chain.u.icv, mac, 16);
        scp_wipe(mac, sizeof(mac));
        if (!dec)
            memmove(out + 7, a.data, n);
    }
    a.cla = cla_plain(a.cla);
    a.lc = pl;
    a.data = pl ? out + 7 : NULL;
    /* the plain command takes the short form whenever it fits */
    a.extended = pl > 255 || (a.has_le && a.le > 256);
    hl = encode_header(hdr, &a, pl, a.extended);
    memmove(out + hl, out + 7, pl);
    memcpy(out, hdr, hl);
    *out_len = hl + pl;
    if (a.has_le) {
        if (a.extended) {
            if (pl == 0)
                out[(*out_len)++] = 0;
            out[(*out_len)++] = (uint8_t)(a.le >> 8);
            out[(*out_len)++] = (uint8_t)a.le;
        } else {
            out[(*out_len)++] = (uint8_t)a.le;
        }
    }
    return SCP_OK;
}

int scp03_card_wrap(scp03_session *s, const uint8_t *data, size_t len, uint16_t sw,
                    uint8_t *out, size_t out_size, size_t *out_len)
{
    uint8_t mac[16], blk[16], swb[2] = { (uint8_t)(sw >> 8), (uint8_t)sw };
    size_t n = len;
    int rc;

    GUARD(check_open(s, SCP03_ROLE_CARD));
    ENSURE(out != NULL && out_len != NULL && (len == 0 || data != NULL), SCP_E_ARG);
    ENSURE(s->resp_pending, SCP_E_STATE);
    if (!(s->level & SCP_LEVEL_RMAC) || !scp_sw_is_success_class(sw)) {
        /* error status words go out bare (GPC Amd D 6.2.5) */
        if (!scp_sw_is_success_class(sw))
            n = 0;
        ENSURE(out_size >= n + 2, SCP_E_BUFFER_TOO_SMALL);
        s->resp_pending = 0;
        if (n > 0) /* memmove(out, NULL, 0) is undefined */
            memmove(out, data, n);
        out[n] = (uint8_t)(sw >> 8);
        out[n + 1] = (uint8_t)sw;
        *out_len = n + 2;
        return SCP_OK;
    }
    if ((s->level & SCP_LEVEL_RENC) && len > 0)
        n = scp_sm_padded_len(desc_of(s), len);
    ENSURE(n + s->chal_len <= 65536, SCP_E_LENGTH);
    /* exactly what is written; the session is untouched until here */
    ENSURE(out_size >= n + s->chal_len + 2, SCP_E_BUFFER_TOO_SMALL);
    s->resp_pending = 0;
    if (len > 0)
        memmove(out, data, len);
    {
        /* GPC Amd D 6.2.7 R-ENC then 6.2.5 R-MAC, in one pass on the core */
        int enc = n > len;
        scp_aes ke, kr;
        (void)scp_sm_enc_icv(desc_of(s), &s->chain, 1, blk);
        rc = enc ? open2(SCP_RAW_OF(&s->s_rmac), &kr, SCP_RAW_OF(&s->s_enc), &ke)
                 : open2(SCP_RAW_OF(&s->s_rmac), &kr, NULL, NULL);
        if (rc == SCP_OK) {
            scp_sm_keys k = { enc ? &ke : NULL, &kr, NULL, NULL };
            rc = scp_sm_seal(desc_of(s), &k, SCP_SMI_CHAIN, s->chain.u.icv, blk, NULL, NULL, 0, out,
                             len, enc, swb, 2, &n, mac);
            if (enc)
                scp_aes_close(&ke);
            scp_aes_close(&kr);
        }
    }
    if (rc != SCP_OK)
        return scp03_fail(s, rc);
    memcpy(out + n, mac, s->chal_len);
    n += s->chal_len;
    out[n] = (uint8_t)(sw >> 8);
    out[n + 1] = (uint8_t)sw;
    *out_len = n + 2;
    scp_wipe(mac, sizeof(mac));
    return SCP_OK;
}
