/* SCP03 command and response protection, both roles (GPC Amd D 6.2.4-6.2.7).
 * One function per step; the host and the card call the same steps. */
#include <string.h>

#include "scpkit/apdu.h"
#include "scpkit/buf.h"
#include "scpkit/scp03.h"
#include "scp03/internal.h"
#include "crypto/internal.h"

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

/* GPC Amd D 6.2.6: ICV = AES(S-ENC, counter) for commands, and
 * AES(S-ENC, 80 | counter) for responses; counter as 16 bytes big-endian. */
static void icv_input(const scp03_session *s, int response, uint8_t blk[16])
{
    uint64_t c = s->counter;
    memset(blk, 0, 8);
    blk[0] = response ? 0x80 : 0x00;
    /* written out so the compiler stores it as one big-endian word */
    blk[8] = (uint8_t)(c >> 56), blk[9] = (uint8_t)(c >> 48), blk[10] = (uint8_t)(c >> 40);
    blk[11] = (uint8_t)(c >> 32), blk[12] = (uint8_t)(c >> 24), blk[13] = (uint8_t)(c >> 16);
    blk[14] = (uint8_t)(c >> 8), blk[15] = (uint8_t)c;
}

/* S-ENC and S-RMAC are kept raw (the session stays small): each use
 * expands the one it needs into an scp_aes on this stack, which
 * scp_aes_close wipes (src/crypto/backend.c). */

/* ISO/IEC 9797-1 method 2: 80 then zeros up to a whole block. */
static size_t pad_len(size_t n) { return (n / 16 + 1) * 16; }

static void pad(uint8_t *p, size_t n)
{
    p[n] = 0x80;
    memset(p + n + 1, 0, pad_len(n) - n - 1);
}

/* Strip ISO/IEC 9797-1 method 2 padding; SCP_E_PADDING when it is bad. */
static int unpad(const uint8_t *p, size_t n, size_t *out_len)
{
    size_t i;
    /* ISO/IEC 9797-1 method 2. Minimal padding is at most one block, but
     * peers in the field (OpenSCP's card) pad further; the data is already
     * MAC-verified, so any run of 00 after the 80 is accepted. */
    for (i = n; i >= 8; i -= 8) { /* eight zero bytes at a time, then one */
        uint64_t w;
        memcpy(&w, p + i - 8, 8);
        if (w != 0)
            break;
    }
    for (; i > 0 && p[i - 1] == 0x00; i--)
        ;
    ENSURE(i > 0 && p[i - 1] == 0x80, SCP_E_PADDING);
    *out_len = i - 1;
    return SCP_OK;
}

/* Decrypt in place and strip the padding; SCP_E_PADDING when it is bad. */
static int decrypt_data(const scp03_session *s, int response, uint8_t *p, size_t n,
                        size_t *out_len)
{
    uint8_t iv[16];
    scp_aes ke;
    int rc;
    ENSURE(n > 0 && n % 16 == 0, SCP_E_PADDING);
    GUARD(scp_aes_open(&ke, SCP_RAW_OF(&s->s_enc)));
    icv_input(s, response, iv);
    scp_aes_block(&ke, iv, iv);
    rc = scp_aes_cbc_decrypt(&ke, iv, p, n, p);
    scp_aes_close(&ke);
    GUARD(rc);
    return unpad(p, n, out_len);
}

/* C-MAC = CMAC(S-MAC, chain | CLA' INS P1 P2 Lc' | data); the full value
 * becomes the next chaining value. hdr is the encoded header with Lc'. */
static int cmac_command(scp03_session *s, const uint8_t *hdr, size_t hdr_len,
                        const uint8_t *data, size_t n, uint8_t mac[16])
{
    scp_cmac c;
    scp_cmac_init(&c, SCP_AES_OF(&s->s_mac));
    GUARD(scp_cmac_update(&c, s->mac_chain, 16));
    GUARD(scp_cmac_update(&c, hdr, hdr_len));
    GUARD(scp_cmac_update(&c, data, n));
    return scp_cmac_final(&c, mac);
}

/* R-MAC = CMAC(S-RMAC, chain | data | SW1 SW2) */
static int rmac_response(const scp03_session *s, const uint8_t *data, size_t n, uint16_t sw,
                         uint8_t mac[16])
{
    uint8_t swb[2] = { (uint8_t)(sw >> 8), (uint8_t)sw };
    scp_aes kr;
    scp_cmac c;
    int rc;
    GUARD(scp_aes_open(&kr, SCP_RAW_OF(&s->s_rmac)));
    scp_cmac_init(&c, &kr);
    rc = scp_cmac_update(&c, s->mac_chain, 16);
    if (rc == SCP_OK)
        rc = scp_cmac_update(&c, data, n);
    if (rc == SCP_OK)
        rc = scp_cmac_update(&c, swb, 2);
    if (rc == SCP_OK)
        rc = scp_cmac_final(&c, mac);
    scp_aes_close(&kr);
    return rc;
}

/* The two keys of an encrypt-and-MAC or MAC-and-decrypt pass. */
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
    ENSURE(s->counter < 0xFFFFFFFFu, SCP_E_COUNTER);
    if (s->level == SCP_LEVEL_NONE) { /* no secure messaging after EA */
        /* a parsed APDU encodes back to the same bytes */
        ENSURE(out_size >= len, SCP_E_BUFFER_TOO_SMALL);
        s->counter++; /* GPC Amd D 6.2.6: for every command */
        memmove(out, capdu, len);
        *out_len = len;
        return SCP_OK;
    }
    enc = (s->level & SCP_LEVEL_CDEC) && a.lc > 0;
    dl = enc ? pad_len(a.lc) : a.lc;
    a.cla = scp03_sm_cla(a.cla);
    ext = a.extended || dl + s->chal_len > 255 || (a.has_le && a.le > 256);
    hl = encode_header(hdr, &a, dl + s->chal_len, ext);
    /* exactly what is written below; nothing in the session changes
     * before this check (a caller may retry with a bigger buffer) */
    need = hl + dl + s->chal_len + le_bytes(&a, ext);
    ENSURE(out_size >= need, SCP_E_BUFFER_TOO_SMALL);
    s->counter++; /* GPC Amd D 6.2.6: for every command, with or without data */
    /* the data goes to its place in out, after the header */
    if (a.lc > 0)
        memmove(out + hl, a.data, a.lc); /* capdu may be out */
    if (enc) {
        /* GPC Amd D 6.2.6 C-DEC then 6.2.4 C-MAC over the ciphertext, in
         * one pass: the CBC and CMAC chains run interleaved */
        uint8_t next[16];
        const uint8_t *iv_pre = s->icv_ahead_for == s->counter ? s->icv_ahead : NULL;
        pad(out + hl, a.lc);
        icv_input(s, 0, blk);
        /* the next command's ICV is made now, off this command's chains */
        memcpy(next, blk, 16);
        for (int k = 15; k >= 8 && ++next[k] == 0; k--)
            ;
        /* the new chaining value replaces the old one in place (it is
         * read first); it is kept in the session anyway, so no copy */
        scp_aes ke;
        rc = scp_aes_open(&ke, SCP_RAW_OF(&s->s_enc));
        if (rc == SCP_OK) {
            rc = scp_cbc_enc_cmac_ahead(&ke, SCP_AES_OF(&s->s_mac), blk, iv_pre, next, s->icv_ahead,
                                        s->mac_chain, hdr, hl, out + hl, dl, NULL, 0,
                                        s->mac_chain);
            scp_aes_close(&ke);
        }
        s->icv_ahead_for = s->counter + 1;
    } else {
        rc = cmac_command(s, hdr, hl, out + hl, dl, s->mac_chain);
    }
    if (rc != SCP_OK)
        return scp03_fail(s, rc);
    memcpy(out, hdr, hl);
    memcpy(out + hl + dl, s->mac_chain, s->chal_len);
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
    uint8_t mac[16], rmac[16], blk[16], swb[2];
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
    if ((s->level & SCP_LEVEL_RENC) && n > 0 && n % 16 == 0) {
        /* GPC Amd D 6.2.5 R-MAC and 6.2.7 R-ENC in one pass; nothing
         * decrypted leaves unless the R-MAC matches */
        memcpy(rmac, r.data + n, s->chal_len); /* out may overlap the R-APDU */
        if (out != r.data)
            memmove(out, r.data, n);
        swb[0] = (uint8_t)(r.sw >> 8), swb[1] = (uint8_t)r.sw;
        icv_input(s, 1, blk);
        scp_aes ke, kr;
        rc = open2(SCP_RAW_OF(&s->s_enc), &ke, SCP_RAW_OF(&s->s_rmac), &kr);
        if (rc == SCP_OK) {
            rc = scp_cmac_cbc_dec(&ke, &kr, blk, s->mac_chain, NULL, 0, out, n, swb, 2, out,
                                  mac);
            scp_aes_close(&ke), scp_aes_close(&kr);
        }
        if (rc == SCP_OK && !scp_ct_eq(mac, rmac, s->chal_len))
            rc = SCP_E_MAC;
        if (rc == SCP_OK)
            rc = unpad(out, n, &pl);
        if (rc != SCP_OK) {
            scp_wipe(out, n);
            return scp03_fail(s, rc);
        }
        goto done;
    }
    rc = rmac_response(s, r.data, n, r.sw, mac);
    if (rc != SCP_OK)
        return scp03_fail(s, rc);
    if (!scp_ct_eq(mac, r.data + n, s->chal_len))
        return scp03_fail(s, SCP_E_MAC);
    memmove(out, r.data, n);
    pl = n;
    if ((s->level & SCP_LEVEL_RENC) && n > 0) {
        rc = decrypt_data(s, 1, out, n, &pl);
        if (rc != SCP_OK) {
            scp_wipe(out, n);
            return scp03_fail(s, rc);
        }
    }
done:
    out[pl] = (uint8_t)(r.sw >> 8);
    out[pl + 1] = (uint8_t)r.sw;
    *out_len = pl + 2;
    return SCP_OK;
}

/* Card side, C-DEC with whole blocks: GPC Amd D 6.2.4 C-MAC and 6.2.6
 * C-DEC in one pass into out + 7; nothing decrypted stays in out unless the
 * C-MAC matches and the padding is good. */
static int card_verify_decrypt(scp03_session *s, const uint8_t *hdr, size_t hl,
                               const uint8_t *data, size_t n, uint8_t *out, size_t *pl)
{
    uint8_t mac[16], rx[16], blk[16];
    scp_aes ke;
    int rc;

    memcpy(rx, data + n, s->chal_len); /* capdu may be out */
    memmove(out + 7, data, n);
    icv_input(s, 0, blk);
    rc = scp_aes_open(&ke, SCP_RAW_OF(&s->s_enc));
    if (rc == SCP_OK) {
        rc = scp_cmac_cbc_dec(&ke, SCP_AES_OF(&s->s_mac), blk, s->mac_chain, hdr, hl, out + 7, n, NULL, 0,
                              out + 7, mac);
        scp_aes_close(&ke);
    }
    if (rc == SCP_OK && !scp_ct_eq(mac, rx, s->chal_len))
        rc = SCP_E_MAC;
    if (rc == SCP_OK)
        rc = unpad(out + 7, n, pl);
    if (rc != SCP_OK) {
        scp_wipe(out, 7 + n);
        return scp03_fail(s, rc);
    }
    memcpy(s->mac_chain, mac, 16);
    scp_wipe(mac, sizeof(mac));
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
    ENSURE(s->counter < 0xFFFFFFFFu, SCP_E_COUNTER);
    /* the plain command is never longer than the protected one, and the
     * work area (data at out + 7) fits in len too: the C-MAC is at least
     * 8 bytes, the header at least 5 */
    ENSURE(out_size >= len, SCP_E_BUFFER_TOO_SMALL);
    s->counter++;
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
    if ((s->level & SCP_LEVEL_CDEC) && n > 0 && n % 16 == 0) {
        GUARD(card_verify_decrypt(s, hdr, hl, a.data, n, out, &pl));
        goto plain;
    }
    rc = cmac_command(s, hdr, hl, a.data, n, mac);
    if (rc != SCP_OK)
        return scp03_fail(s, rc);
    if (!scp_ct_eq(mac, a.data + n, s->chal_len))
        return scp03_fail(s, SCP_E_MAC);
    memcpy(s->mac_chain, mac, 16);
    scp_wipe(mac, sizeof(mac));
    memmove(out + 7, a.data, n);
    pl = n;
    if ((s->level & SCP_LEVEL_CDEC) && n > 0) {
        rc = decrypt_data(s, 0, out + 7, n, &pl);
        if (rc != SCP_OK) {
            scp_wipe(out, 7 + n);
            return scp03_fail(s, rc);
        }
    }
plain:
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
        n = pad_len(len);
    ENSURE(n + s->chal_len <= 65536, SCP_E_LENGTH);
    /* exactly what is written; the session is untouched until here */
    ENSURE(out_size >= n + s->chal_len + 2, SCP_E_BUFFER_TOO_SMALL);
    s->resp_pending = 0;
    if (len > 0)
        memmove(out, data, len);
    if (n > len) {
        /* GPC Amd D 6.2.7 R-ENC then 6.2.5 R-MAC, in one pass */
        pad(out, len);
        scp_aes ke, kr;
        icv_input(s, 1, blk);
        rc = open2(SCP_RAW_OF(&s->s_enc), &ke, SCP_RAW_OF(&s->s_rmac), &kr);
        if (rc == SCP_OK) {
            rc = scp_cbc_enc_cmac(&ke, &kr, blk, s->mac_chain, NULL, 0, out, n, swb, 2, mac);
            scp_aes_close(&ke), scp_aes_close(&kr);
        }
    } else {
        rc = rmac_response(s, out, n, sw, mac);
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
