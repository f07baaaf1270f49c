/* ISO/IEC 7816-4 clause 10 secure messaging, as profiled by ICAO Doc 9303
 * Part 11 section 9.8 (BAC: 3DES; PACE: AES): both roles.
 *
 * MAC input (9.8.6.1): SSC | padded header (CLA' INS P1 P2 80 ..) |
 * data objects | padding (ISO 9797-1 method 2). The command and response
 * MACs both cover the SSC, which goes up by one before each. */
#include <string.h>

#include "core/guard.h"
#include "scpkit/apdu.h"
#include "scpkit/buf.h"
#include "scpkit/iso7816sm.h"
#include "crypto/aes.h"
#include "sm/sm.h"

static int sm_fail(scp_sm *sm, int rc)
{
    scp_des3_clear(&sm->des_enc);
    scp_des3_clear(&sm->des_mac);
    scp_aes_clear(SCP_AES_OF(&sm->aes_enc));
    scp_aes_clear(SCP_AES_OF(&sm->aes_mac));
    scp_wipe(sm->chain.u.icv, sizeof(sm->chain.u.icv));
    sm->dead = 1;
    sm->dead_rc = rc;
    sm->resp_pending = 0;
    return rc;
}

void scp_sm_end(scp_sm *sm)
{
    if (sm == NULL)
        return;
    (void)sm_fail(sm, SCP_E_DEAD);
    sm->family = 0;
}

int scp_sm_init(scp_sm *sm, int family, int role, const uint8_t *k_enc, const uint8_t *k_mac,
                size_t key_len, const uint8_t *ssc, size_t ssc_len)
{
    int rc;
    ENSURE(sm != NULL && k_enc != NULL && k_mac != NULL && ssc != NULL, SCP_E_ARG);
    ENSURE(role == SCP_SM_HOST || role == SCP_SM_CARD, SCP_E_ARG);
    memset(sm, 0, sizeof(*sm));
    if (family == SCP_SM_3DES) {
        ENSURE(key_len == 16 && ssc_len == 8, SCP_E_ARG);
        GUARD(scp_des3_init(&sm->des_enc, k_enc, 16));
        GUARD(scp_des3_init(&sm->des_mac, k_mac, 16));
        sm->block = 8;
    } else if (family == SCP_SM_AES) {
        ENSURE((key_len == 16 || key_len == 24 || key_len == 32) && ssc_len == 16, SCP_E_ARG);
        rc = scp_aes_init_dec(SCP_AES_OF(&sm->aes_enc), k_enc, key_len);
        if (rc == SCP_OK)
            rc = scp_aes_init(SCP_AES_OF(&sm->aes_mac), k_mac, key_len);
        if (rc != SCP_OK) {
            scp_aes_clear(SCP_AES_OF(&sm->aes_enc));
            scp_aes_clear(SCP_AES_OF(&sm->aes_mac));
            return rc;
        }
        sm->block = 16;
    } else {
        return SCP_E_UNSUPPORTED;
    }
    sm->family = (uint8_t)family;
    sm->role = (uint8_t)role;
    memcpy(sm->chain.u.icv, ssc, ssc_len);
    return SCP_OK;
}

/* The core's description and keys for this session (src/sm/sm.h). */
static const scp_sm_desc *desc_of(const scp_sm *sm)
{
    return sm->family == SCP_SM_AES ? &scp_sm_desc_iso_aes : &scp_sm_desc_iso_3des;
}

static void keys_of(const scp_sm *sm, scp_sm_keys *k)
{
    k->aes_enc = SCP_AES_OF(&sm->aes_enc);
    k->aes_mac = SCP_AES_OF(&sm->aes_mac);
    k->des_enc = &sm->des_enc;
    k->des_mac = &sm->des_mac;
}

/* CLA' INS P1 P2 80 00 .., one block: the start of a command's MAC input
 * after the SSC (ICAO 9303-11 9.8.6.1). */
static void header_block(const uint8_t hdr[4], uint8_t b[16])
{
    memset(b, 0, 16);
    memcpy(b, hdr, 4);
    b[4] = 0x80;
}

/* ---- BER lengths of the data objects ---- */

static size_t ber_len_size(size_t n) { return n < 0x80 ? 1 : n < 0x100 ? 2 : 3; }

static size_t ber_len_put(uint8_t *p, size_t n)
{
    if (n < 0x80) {
        p[0] = (uint8_t)n;
        return 1;
    }
    if (n < 0x100) {
        p[0] = 0x81;
        p[1] = (uint8_t)n;
        return 2;
    }
    p[0] = 0x82;
    p[1] = (uint8_t)(n >> 8);
    p[2] = (uint8_t)n;
    return 3;
}

static int ber_len_get(scp_rd *r, size_t *n)
{
    uint8_t b, c;
    GUARD(scp_rd_u8(r, &b));
    if (b < 0x80) {
        *n = b;
    } else if (b == 0x81) {
        GUARD(scp_rd_u8(r, &c));
        ENSURE(c >= 0x80, SCP_E_FORMAT);
        *n = c;
    } else if (b == 0x82) {
        uint16_t v;
        GUARD(scp_rd_u16(r, &v));
        ENSURE(v >= 0x100, SCP_E_FORMAT);
        *n = v;
    } else {
        return SCP_E_FORMAT;
    }
    ENSURE(*n <= scp_rd_left(r), SCP_E_TRUNCATED);
    return SCP_OK;
}

/* The encrypted data object's header: 87 L 01 (even INS) or 85 L (odd),
 * for plen padded bytes; returns its size (5 at most). */
static size_t crypto_do_header(int odd, size_t plen, uint8_t *p)
{
    size_t pos = 0;
    p[pos++] = odd ? 0x85 : 0x87;
    pos += ber_len_put(p + pos, plen + (odd ? 0 : 1));
    if (!odd)
        p[pos++] = 0x01; /* padding indicator: ISO 9797-1 method 2 */
    return pos;
}

static size_t crypto_do_size(const scp_sm *sm, int odd, size_t len)
{
    size_t vlen;
    if (len == 0)
        return 0;
    vlen = len + sm->block - len % sm->block + (odd ? 0 : 1);
    return 1 + ber_len_size(vlen) + vlen;
}

/* ---- host: protect a command ---- */

int scp_sm_protect_command(scp_sm *sm, const uint8_t *capdu, size_t len, uint8_t *out,
                           size_t out_size, size_t *out_len)
{
    const scp_sm_desc *sd;
    scp_sm_keys k;
    scp_apdu a;
    uint8_t hdr[4], pre[16 + 5], tag[16], blk[16];
    size_t do87, do97 = 0, le_bytes = 0, body, hdr_len, total, pos, pre_len, at, n;
    int odd, ext, rc;

    ENSURE(sm != NULL && capdu != NULL && out != NULL && out_len != NULL, SCP_E_ARG);
    ENSURE(sm->family != 0 && sm->role == SCP_SM_HOST, SCP_E_STATE);
    ENSURE(!sm->dead, SCP_E_DEAD);
    ENSURE(!sm->resp_pending, SCP_E_STATE);
    GUARD(scp_apdu_parse(capdu, len, &a));
    /* SM bits b4 b3 of the first interindustry / proprietary classes */
    ENSURE((a.cla & 0x40) == 0 && (a.cla & 0x0C) == 0, SCP_E_UNSUPPORTED);
    odd = a.ins & 1;
    do87 = crypto_do_size(sm, odd, a.lc);
    if (a.has_le) {
        le_bytes = (a.extended || a.le > 256) ? 2 : 1;
        do97 = 2 + le_bytes;
    }
    body = do87 + do97 + 2 + SCP_SM_MAC_LEN;
    ENSURE(body <= 65535, SCP_E_LENGTH);
    ext = a.extended || body > 255 || le_bytes == 2;
    hdr_len = ext ? 7 : 5;
    total = hdr_len + body + (ext ? 2 : 1);
    ENSURE(total <= out_size, SCP_E_BUFFER_TOO_SMALL);

    sd = desc_of(sm);
    keys_of(sm, &k);
    scp_sm_ssc_inc(sd, sm->chain.u.icv);
    hdr[0] = (uint8_t)(a.cla | 0x0C);
    hdr[1] = a.ins;
    hdr[2] = a.p1;
    hdr[3] = a.p2;
    /* MAC input (ICAO 9303-11 9.8.6.1): SSC | header block | DO87 header
     * | ciphertext | DO97, M2-padded: the header parts as the core's pre */
    header_block(hdr, pre);
    pre_len = sm->block;
    pos = hdr_len;
    at = pos; /* where the data goes */
    if (a.lc > 0) {
        n = crypto_do_header(odd, scp_sm_padded_len(sd, a.lc), pre + pre_len);
        at = pos + n;
        memmove(out + at, a.data, a.lc); /* capdu may be out: the data first */
        memcpy(out + pos, pre + pre_len, n);
        pre_len += n;
    }
    memcpy(out, hdr, 4);
    if (ext) {
        out[4] = 0;
        out[5] = (uint8_t)(body >> 8);
        out[6] = (uint8_t)body;
    } else {
        out[4] = (uint8_t)body;
    }
    pos = at + scp_sm_padded_len(sd, a.lc);
    if (a.has_le) {
        out[pos++] = 0x97;
        out[pos++] = (uint8_t)le_bytes;
        if (le_bytes == 2)
            out[pos++] = (uint8_t)(a.le >> 8); /* 65536 -> 00 00 */
        out[pos++] = (uint8_t)a.le;         /* 256 -> 00 */
    }
    GUARD_GOTO(scp_sm_seal(sd, &k, sd->cmac_icv, sm->chain.u.icv, scp_sm_enc_icv(sd, &sm->chain, 0, blk),
                           NULL, pre, pre_len, out + at, a.lc, 1, out + pos - do97, do97, &n,
                           tag),
               fail);
    out[pos++] = 0x8E;
    out[pos++] = SCP_SM_MAC_LEN;
    memcpy(out + pos, tag, SCP_SM_MAC_LEN);
    pos += SCP_SM_MAC_LEN;
    out[pos++] = 0;
    if (ext)
        out[pos++] = 0;
    *out_len = pos;
    scp_wipe(tag, sizeof(tag));
    sm->resp_pending = 1;
    sm->odd_ins = (uint8_t)odd;
    return SCP_OK;
fail:
    scp_wipe(out, total);
    return sm_fail(sm, rc);
}

/* ---- parsing the data objects of a command or a response ---- */

typedef struct sm_dos {
    const uint8_t *ct; /* ciphertext (after the indicator for 87) */
    size_t ct_len;
    uint8_t has_ct, has_le, has_sw;
    size_t le_len;
    const uint8_t *le;
    uint16_t sw;
    size_t mac_at; /* offset of 8E: the MAC covers everything before it */
    const uint8_t *mac;
} sm_dos;

/* Objects in order: [87|85] [97] (command) or [87|85] [99] (response),
 * then 8E 08 last. */
static int parse_dos(const uint8_t *p, size_t len, int response, int odd, size_t block,
                     sm_dos *d)
{
    scp_rd r;
    uint8_t tag;
    size_t n;
    const uint8_t *v;

    memset(d, 0, sizeof(*d));
    scp_rd_init(&r, p, len);
    GUARD(scp_rd_u8(&r, &tag));
    if (tag == 0x87 || tag == 0x85) {
        ENSURE(tag == (odd ? 0x85 : 0x87), SCP_E_FORMAT);
        GUARD(ber_len_get(&r, &n));
        GUARD(scp_rd_ptr(&r, n, &v));
        if (tag == 0x87) {
            ENSURE(n >= 1 && v[0] == 0x01, SCP_E_FORMAT);
            v++;
            n--;
        }
        ENSURE(n > 0 && n % block == 0, SCP_E_FORMAT);
        d->ct = v;
        d->ct_len = n;
        d->has_ct = 1;
        GUARD(scp_rd_u8(&r, &tag));
    }
    if (!response && tag == 0x97) {
        GUARD(ber_len_get(&r, &n));
        ENSURE(n <= 2, SCP_E_FORMAT);
        GUARD(scp_rd_ptr(&r, n, &d->le));
        d->le_len = n;
        d->has_le = n > 0;
        GUARD(scp_rd_u8(&r, &tag));
    }
    if (response && tag == 0x99) {
        GUARD(ber_len_get(&r, &n));
        ENSURE(n == 2, SCP_E_FORMAT);
        GUARD(scp_rd_ptr(&r, 2, &v));
        d->sw = (uint16_t)(v[0] << 8 | v[1]);
        d->has_sw = 1;
        GUARD(scp_rd_u8(&r, &tag));
    }
    ENSURE(tag == 0x8E, SCP_E_FORMAT);
    d->mac_at = r.pos - 1;
    GUARD(ber_len_get(&r, &n));
    ENSURE(n == SCP_SM_MAC_LEN && scp_rd_left(&r) == n, SCP_E_FORMAT);
    GUARD(scp_rd_ptr(&r, n, &d->mac));
    return SCP_OK;
}

/* The MAC of d (everything before 8E, after the header block for a
 * command), then the ciphertext decrypted into out and unpadded:
 * encrypt-then-MAC on the core, nothing decrypted before the MAC
 * matches. */
static int check_mac(const scp_sm *sm, const uint8_t *hdr, const uint8_t *p, const sm_dos *d)
{
    const scp_sm_desc *sd = desc_of(sm);
    scp_sm_keys k;
    uint8_t blk[16], tag[16];
    int rc;
    keys_of(sm, &k);
    if (hdr != NULL)
        header_block(hdr, blk);
    rc = scp_sm_verify(sd, &k, hdr != NULL ? sd->cmac_icv : sd->rmac_icv, sm->chain.u.icv, blk, hdr != NULL ? sd->block : 0, p,
                       d->mac_at, NULL, 0, d->mac, tag);
    scp_wipe(tag, sizeof(tag));
    return rc;
}

static int open_ct(const scp_sm *sm, const sm_dos *d, uint8_t *out, size_t *plain_len)
{
    const scp_sm_desc *sd = desc_of(sm);
    scp_sm_keys k;
    uint8_t blk[16];
    keys_of(sm, &k);
    return scp_sm_decrypt_unpad(sd, &k, scp_sm_enc_icv(sd, &sm->chain, 0, blk), d->ct, d->ct_len, out,
                                plain_len);
}

/* ---- host: unprotect a response ---- */

int scp_sm_unprotect_response(scp_sm *sm, const uint8_t *rapdu, size_t len, uint8_t *out,
                              size_t out_size, size_t *out_len)
{
    sm_dos d;
    size_t body, plain = 0;
    uint16_t sw;
    int rc;

    ENSURE(sm != NULL && rapdu != NULL && out != NULL && out_len != NULL, SCP_E_ARG);
    ENSURE(sm->family != 0 && sm->role == SCP_SM_HOST, SCP_E_STATE);
    ENSURE(!sm->dead, SCP_E_DEAD);
    ENSURE(sm->resp_pending, SCP_E_STATE);
    sm->resp_pending = 0;
    ENSURE(len >= 2, sm_fail(sm, SCP_E_TRUNCATED));
    body = len - 2;
    sw = (uint16_t)(rapdu[body] << 8 | rapdu[body + 1]);
    if (body == 0) {
        /* ISO 7816-4 10.3 / ICAO 9303-11 9.8.6.2: an SM error (6987,
         * 6988) or any plain status ends the session. */
        ENSURE(out_size >= 2, SCP_E_BUFFER_TOO_SMALL);
        out[0] = rapdu[0];
        out[1] = rapdu[1];
        *out_len = 2;
        (void)sm_fail(sm, SCP_E_SW);
        return SCP_OK;
    }
    scp_sm_ssc_inc(desc_of(sm), sm->chain.u.icv);
    GUARD_GOTO(parse_dos(rapdu, body, 1, sm->odd_ins, sm->block, &d), fail);
    GUARD_GOTO(check_mac(sm, NULL, rapdu, &d), fail);
    /* the status word under the MAC is the one that counts */
    if (d.has_sw) {
        ENSURE(d.sw == sw, sm_fail(sm, SCP_E_FORMAT));
        sw = d.sw;
    }
    ENSURE(out_size >= d.ct_len + 2, sm_fail(sm, SCP_E_BUFFER_TOO_SMALL));
    if (d.has_ct)
        GUARD_GOTO(open_ct(sm, &d, out, &plain), fail);
    out[plain] = (uint8_t)(sw >> 8);
    out[plain + 1] = (uint8_t)sw;
    *out_len = plain + 2;
    return SCP_OK;
fail:
    return sm_fail(sm, rc);
}

/* ---- card: unprotect a command ---- */

int scp_sm_unprotect_command(scp_sm *sm, const uint8_t *capdu, size_t len, uint8_t *out,
                             size_t out_size, size_t *out_len)
{
    scp_apdu a, plain;
    sm_dos d;
    uint8_t hdr[4];
    size_t pl = 0;
    int rc;

    ENSURE(sm != NULL && capdu != NULL && out != NULL && out_len != NULL, SCP_E_ARG);
    ENSURE(sm->family != 0 && sm->role == SCP_SM_CARD, SCP_E_STATE);
    ENSURE(!sm->dead, SCP_E_DEAD);
    GUARD_GOTO(scp_apdu_parse(capdu, len, &a), fail);
    /* a command without SM in an SM session ends it (ICAO 9303-11 9.8.5) */
    ENSURE((a.cla & 0x40) == 0 && (a.cla & 0x0C) == 0x0C && a.lc > 0,
           sm_fail(sm, SCP_E_MAC));
    scp_sm_ssc_inc(desc_of(sm), sm->chain.u.icv);
    GUARD_GOTO(parse_dos(a.data, a.lc, 0, a.ins & 1, sm->block, &d), fail);
    hdr[0] = a.cla;
    hdr[1] = a.ins;
    hdr[2] = a.p1;
    hdr[3] = a.p2;
    GUARD_GOTO(check_mac(sm, hdr, a.data, &d), fail);
    ENSURE(out_size >= 7 + d.ct_len + 3, sm_fail(sm, SCP_E_BUFFER_TOO_SMALL));
    if (d.has_ct)
        GUARD_GOTO(open_ct(sm, &d, out + 7, &pl), fail);
    memset(&plain, 0, sizeof(plain));
    plain.cla = (uint8_t)(a.cla & ~0x0C);
    plain.ins = a.ins;
    plain.p1 = a.p1;
    plain.p2 = a.p2;
    plain.lc = pl;
    plain.data = pl ? out + 7 : NULL;
    if (d.has_le) {
        size_t v = d.le_len == 1 ? d.le[0] : (size_t)(d.le[0] << 8 | d.le[1]);
        plain.has_le = 1;
        plain.le = v ? v : (d.le_len == 1 ? 256 : 65536);
        plain.extended = d.le_len == 2;
    }
    /* the header (7 bytes at most) is written below the data at out + 7;
     * the encoder moves the data down with memmove */
    GUARD_GOTO(scp_apdu_encode(&plain, out, out_size, out_len), fail);
    sm->resp_pending = 1;
    sm->odd_ins = a.ins & 1;
    return SCP_OK;
fail:
    return sm_fail(sm, rc);
}

/* ---- card: protect a response ---- */

int scp_sm_protect_response(scp_sm *sm, const uint8_t *data, size_t len, uint16_t sw,
                            uint8_t *out, size_t out_size, size_t *out_len)
{
    const scp_sm_desc *sd;
    scp_sm_keys k;
    uint8_t tag[16], blk[16];
    size_t total, pos = 0, hl = 0, n;
    int rc;

    ENSURE(sm != NULL && out != NULL && out_len != NULL && (len == 0 || data != NULL), SCP_E_ARG);
    ENSURE(sm->family != 0 && sm->role == SCP_SM_CARD, SCP_E_STATE);
    ENSURE(!sm->dead, SCP_E_DEAD);
    ENSURE(sm->resp_pending, SCP_E_STATE);
    ENSURE(len <= 65536 - 64, SCP_E_LENGTH);
    total = crypto_do_size(sm, sm->odd_ins, len) + 4 + 2 + SCP_SM_MAC_LEN + 2;
    ENSURE(total <= out_size, SCP_E_BUFFER_TOO_SMALL);
    sd = desc_of(sm);
    keys_of(sm, &k);
    sm->resp_pending = 0;
    scp_sm_ssc_inc(sd, sm->chain.u.icv);
    /* [DO87|DO85] DO99 DO8E SW: the MAC over SSC | the objects before 8E */
    if (len > 0) {
        uint8_t h[5];
        hl = crypto_do_header(sm->odd_ins, scp_sm_padded_len(sd, len), h);
        memmove(out + hl, data, len); /* data may be out */
        memcpy(out, h, hl);
    }
    pos = hl + scp_sm_padded_len(sd, len);
    out[pos++] = 0x99;
    out[pos++] = 2;
    out[pos++] = (uint8_t)(sw >> 8);
    out[pos++] = (uint8_t)sw;
    GUARD_GOTO(scp_sm_seal(sd, &k, sd->rmac_icv, sm->chain.u.icv, scp_sm_enc_icv(sd, &sm->chain, 0, blk),
                           NULL, out, hl, out + hl, len, 1, out + pos - 4, 4, &n, tag),
               fail);
    out[pos++] = 0x8E;
    out[pos++] = SCP_SM_MAC_LEN;
    memcpy(out + pos, tag, SCP_SM_MAC_LEN);
    pos += SCP_SM_MAC_LEN;
    out[pos++] = (uint8_t)(sw >> 8);
    out[pos++] = (uint8_t)sw;
    *out_len = pos;
    scp_wipe(tag, sizeof(tag));
    return SCP_OK;
fail:
    scp_wipe(out, total);
    return sm_fail(sm, rc);
}
