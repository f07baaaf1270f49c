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

static const uint8_t zero16[16];

static int sm_fail(scp_sm *sm, int rc)
{
    scp_des3_clear(&sm->des_enc);
    scp_des3_clear(&sm->des_mac);
    scp_aes_clear(SCP_AES_OF(&sm->aes_enc));
    scp_aes_clear(SCP_AES_OF(&sm->aes_mac));
    scp_wipe(sm->ssc, sizeof(sm->ssc));
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
    memcpy(sm->ssc, ssc, ssc_len);
    return SCP_OK;
}

static void ssc_inc(scp_sm *sm)
{
    for (size_t i = sm->block; i-- > 0;)
        if (++sm->ssc[i] != 0)
            break;
}

/* ---- the MAC: SSC | ... | M2 padding, 8 bytes out ---- */

typedef struct sm_mac {
    scp_des_mac d;
    scp_cmac c;
    size_t n; /* bytes fed (AES: for the padding) */
    uint8_t aes;
    uint8_t bad;
} sm_mac;

static void mac_update(sm_mac *m, const uint8_t *p, size_t len)
{
    if (m->aes) {
        if (scp_cmac_update(&m->c, p, len) != SCP_OK) /* a key without subkeys */
            m->bad = 1;
        m->n += len;
    } else {
        scp_des_mac_update(&m->d, p, len);
    }
}

static void mac_begin(const scp_sm *sm, sm_mac *m)
{
    m->aes = sm->family == SCP_SM_AES;
    m->bad = 0;
    m->n = 0;
    if (m->aes)
        scp_cmac_init(&m->c, SCP_AES_OF(&sm->aes_mac));
    else
        scp_des_mac_init(&m->d, &sm->des_mac, 0, zero16);
    mac_update(m, sm->ssc, sm->block);
}

/* CLA' INS P1 P2, padded to one block */
static void mac_header(sm_mac *m, size_t block, const uint8_t hdr[4])
{
    uint8_t b[16] = { 0 };
    memcpy(b, hdr, 4);
    b[4] = 0x80;
    mac_update(m, b, block);
}

static int mac_final(sm_mac *m, uint8_t mac[SCP_SM_MAC_LEN])
{
    uint8_t pad[16] = { 0x80 }, full[16];
    int rc = SCP_OK;
    if (m->aes) {
        mac_update(m, pad, 16 - m->n % 16);
        rc = scp_cmac_final(&m->c, full);
        if (m->bad)
            rc = SCP_E_STATE;
        memcpy(mac, full, SCP_SM_MAC_LEN);
        scp_wipe(full, sizeof(full));
        scp_wipe(&m->c, sizeof(m->c));
    } else {
        scp_des_mac_final(&m->d, mac);
    }
    return rc;
}

/* The whole MAC: SSC | [header block] | p | padding. Short AES inputs are
 * put together in one buffer for a single CMAC call (the AES-NI CMAC runs
 * it in registers); everything else streams. */
#define SM_MAC_BUF 512

static int sm_mac_of(const scp_sm *sm, const uint8_t *hdr, const uint8_t *p, size_t len,
                     uint8_t mac[SCP_SM_MAC_LEN])
{
    sm_mac m;
    if (sm->family == SCP_SM_AES && len <= SM_MAC_BUF - 48) {
        uint8_t buf[SM_MAC_BUF], full[16];
        size_t n = 16;
        int rc;
        memcpy(buf, sm->ssc, 16);
        if (hdr != NULL) {
            memcpy(buf + 16, hdr, 4);
            buf[20] = 0x80;
            memset(buf + 21, 0, 11);
            n = 32;
        }
        if (len > 0)
            memcpy(buf + n, p, len);
        n += len;
        buf[n++] = 0x80;
        while (n % 16 != 0)
            buf[n++] = 0;
        rc = scp_cmac_once(SCP_AES_OF(&sm->aes_mac), buf, n, full);
        memcpy(mac, full, SCP_SM_MAC_LEN);
        scp_wipe(full, sizeof(full));
        return rc;
    }
    mac_begin(sm, &m);
    if (hdr != NULL)
        mac_header(&m, sm->block, hdr);
    mac_update(&m, p, len);
    return mac_final(&m, mac);
}

/* ---- encryption of a data object's value ---- */

static int sm_crypt(const scp_sm *sm, int decrypt, uint8_t *buf, size_t len, const uint8_t *in)
{
    uint8_t iv[16];
    int rc;
    if (sm->family == SCP_SM_3DES)
        return decrypt ? scp_des3_cbc_decrypt(&sm->des_enc, zero16, in, len, buf)
                       : scp_des3_cbc_encrypt(&sm->des_enc, zero16, in, len, buf);
    /* ICAO 9303-11 9.8.6.1 / BSI TR-03110-3 F.2: IV = E(K_enc, SSC) */
    scp_aes_block(SCP_AES_OF(&sm->aes_enc), sm->ssc, iv);
    rc = decrypt ? scp_aes_cbc_decrypt(SCP_AES_OF(&sm->aes_enc), iv, in, len, buf)
                 : scp_aes_cbc_encrypt(SCP_AES_OF(&sm->aes_enc), iv, in, len, buf);
    scp_wipe(iv, sizeof(iv));
    return rc;
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

/* The encrypted data object: 87 L 01 ct (even INS) or 85 L ct (odd).
 * Writes it at p (room checked by the caller) from plain data; returns
 * its size. */
static int put_crypto_do(const scp_sm *sm, int odd, const uint8_t *data, size_t len, uint8_t *p,
                         size_t *do_len)
{
    size_t plen = len + sm->block - len % sm->block, vlen = plen + (odd ? 0 : 1), pos = 0;
    p[pos++] = odd ? 0x85 : 0x87;
    pos += ber_len_put(p + pos, vlen);
    if (!odd)
        p[pos++] = 0x01; /* padding indicator: ISO 9797-1 method 2 */
    memmove(p + pos, data, len);
    p[pos + len] = 0x80;
    memset(p + pos + len + 1, 0, plen - len - 1);
    GUARD(sm_crypt(sm, 0, p + pos, plen, p + pos));
    *do_len = pos + plen;
    return SCP_OK;
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
    scp_apdu a;
    uint8_t hdr[4], mac[SCP_SM_MAC_LEN];
    size_t do87, do97 = 0, le_bytes = 0, body, hdr_len, total, pos, n;
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

    ssc_inc(sm);
    hdr[0] = (uint8_t)(a.cla | 0x0C);
    hdr[1] = a.ins;
    hdr[2] = a.p1;
    hdr[3] = a.p2;
    memcpy(out, hdr, 4);
    if (ext) {
        out[4] = 0;
        out[5] = (uint8_t)(body >> 8);
        out[6] = (uint8_t)body;
    } else {
        out[4] = (uint8_t)body;
    }
    pos = hdr_len;
    if (a.lc > 0) {
        GUARD_GOTO(put_crypto_do(sm, odd, a.data, a.lc, out + pos, &n), fail);
        pos += n;
    }
    if (a.has_le) {
        out[pos++] = 0x97;
        out[pos++] = (uint8_t)le_bytes;
        if (le_bytes == 2)
            out[pos++] = (uint8_t)(a.le >> 8); /* 65536 -> 00 00 */
        out[pos++] = (uint8_t)a.le;         /* 256 -> 00 */
    }
    GUARD_GOTO(sm_mac_of(sm, hdr, out + hdr_len, pos - hdr_len, mac), fail);
    out[pos++] = 0x8E;
    out[pos++] = SCP_SM_MAC_LEN;
    memcpy(out + pos, mac, SCP_SM_MAC_LEN);
    pos += SCP_SM_MAC_LEN;
    out[pos++] = 0;
    if (ext)
        out[pos++] = 0;
    *out_len = pos;
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

/* Decrypt the ciphertext of d into out and strip its padding. */
static int open_ct(const scp_sm *sm, const sm_dos *d, uint8_t *out, size_t *plain_len)
{
    GUARD(sm_crypt(sm, 1, out, d->ct_len, d->ct));
    if (scp_unpad_m2(out, d->ct_len, sm->block, plain_len) != SCP_OK) {
        scp_wipe(out, d->ct_len);
        return SCP_E_PADDING;
    }
    return SCP_OK;
}

static int check_mac(const scp_sm *sm, const uint8_t *hdr, const uint8_t *p, const sm_dos *d)
{
    uint8_t mac[SCP_SM_MAC_LEN];
    int ok;
    GUARD(sm_mac_of(sm, hdr, p, d->mac_at, mac));
    ok = scp_ct_eq(mac, d->mac, SCP_SM_MAC_LEN);
    scp_wipe(mac, sizeof(mac));
    return ok ? SCP_OK : SCP_E_MAC;
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
    ssc_inc(sm);
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
    ssc_inc(sm);
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
    uint8_t mac[SCP_SM_MAC_LEN];
    size_t total, pos = 0, n;
    int rc;

    ENSURE(sm != NULL && out != NULL && out_len != NULL && (len == 0 || data != NULL), SCP_E_ARG);
    ENSURE(sm->family != 0 && sm->role == SCP_SM_CARD, SCP_E_STATE);
    ENSURE(!sm->dead, SCP_E_DEAD);
    ENSURE(sm->resp_pending, SCP_E_STATE);
    ENSURE(len <= 65536 - 64, SCP_E_LENGTH);
    total = crypto_do_size(sm, sm->odd_ins, len) + 4 + 2 + SCP_SM_MAC_LEN + 2;
    ENSURE(total <= out_size, SCP_E_BUFFER_TOO_SMALL);
    sm->resp_pending = 0;
    ssc_inc(sm);
    if (len > 0) {
        GUARD_GOTO(put_crypto_do(sm, sm->odd_ins, data, len, out, &n), fail);
        pos = n;
    }
    out[pos++] = 0x99;
    out[pos++] = 2;
    out[pos++] = (uint8_t)(sw >> 8);
    out[pos++] = (uint8_t)sw;
    GUARD_GOTO(sm_mac_of(sm, NULL, out, pos, mac), fail);
    out[pos++] = 0x8E;
    out[pos++] = SCP_SM_MAC_LEN;
    memcpy(out + pos, mac, SCP_SM_MAC_LEN);
    pos += SCP_SM_MAC_LEN;
    out[pos++] = (uint8_t)(sw >> 8);
    out[pos++] = (uint8_t)sw;
    *out_len = pos;
    return SCP_OK;
fail:
    scp_wipe(out, total);
    return sm_fail(sm, rc);
}
