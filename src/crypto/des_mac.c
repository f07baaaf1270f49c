/* ISO/IEC 9797-1 padding method 2 and the DES MACs of SCP02 and ISO
 * secure messaging (MAC algorithm 1 with 3DES, MAC algorithm 3), on the
 * constant-time DES of src/crypto/des_ct.c. The CBC chains stay in the
 * IP domain: IP is linear over XOR, so one IP per input block and one FP
 * per MAC. */
#include <string.h>

#include "crypto/des_ct.h"
#include "core/guard.h"
#include "scpkit/crypto.h"

int scp_pad_m2(const uint8_t *in, size_t len, size_t block, uint8_t *out, size_t out_size,
               size_t *out_len)
{
    size_t n;
    if (out == NULL || out_len == NULL || (block != 8 && block != 16) || (len > 0 && in == NULL))
        return SCP_E_ARG;
    n = len + block - len % block;
    if (n < len || n > out_size)
        return SCP_E_BUFFER_TOO_SMALL;
    if (len > 0)
        memmove(out, in, len);
    out[len] = 0x80;
    memset(out + len + 1, 0, n - len - 1);
    *out_len = n;
    return SCP_OK;
}

int scp_unpad_m2(const uint8_t *p, size_t len, size_t block, size_t *plain_len)
{
    /* Scan the last block without an early exit: the position of the 80
     * byte is found with masks. */
    uint32_t found = 0, bad = 0, pos = 0;
    if (p == NULL || plain_len == NULL || (block != 8 && block != 16) || len == 0 ||
        len % block != 0)
        return SCP_E_ARG;
    for (size_t i = len; i-- > len - block;) {
        uint32_t b = p[i];
        uint32_t is80 = (uint32_t)(((b ^ 0x80u) - 1u) >> 31) & 1u; /* b == 0x80 */
        uint32_t is00 = (uint32_t)((b - 1u) >> 31) & 1u;           /* b == 0 */
        uint32_t take = is80 & (found ^ 1u);
        bad |= (found ^ 1u) & (is80 ^ 1u) & (is00 ^ 1u);
        pos |= (uint32_t)(-(int32_t)take) & (uint32_t)i;
        found |= take;
    }
    if ((found & (bad ^ 1u)) == 0)
        return SCP_E_PADDING;
    *plain_len = pos;
    return SCP_OK;
}

static void cbc_chain(const scp_des_ks *ks, uint32_t *l, uint32_t *r, const uint8_t *p,
                      size_t len)
{
    uint32_t ml, mr;
    for (size_t i = 0; i < len; i += 8) {
        scp_des_ip(p + i, &ml, &mr);
        *l ^= ml;
        *r ^= mr;
        scp_des_rounds(ks, 0, l, r);
    }
}

int scp_des_retail_mac(const scp_des3 *d, const uint8_t icv[8], const uint8_t *p, size_t len,
                       uint8_t mac[8])
{
    uint32_t l, r;
    if (d == NULL || icv == NULL || p == NULL || mac == NULL || len == 0 || len % 8 != 0)
        return SCP_E_ARG;
    scp_des_ip(icv, &l, &r);
    cbc_chain(&SCP_DES3_OF(d)->ks[0], &l, &r, p, len);
    /* ISO/IEC 9797-1 output transformation 3: D(K2) then E(K1) */
    scp_des_rounds(&SCP_DES3_OF(d)->ks[1], 1, &l, &r);
    scp_des_rounds(&SCP_DES3_OF(d)->ks[0], 0, &l, &r);
    scp_des_fp(l, r, mac);
    return SCP_OK;
}

int scp_des3_cbc_mac(const scp_des3 *d, const uint8_t icv[8], const uint8_t *p, size_t len,
                     uint8_t mac[8])
{
    uint32_t l, r, ml, mr;
    if (d == NULL || icv == NULL || p == NULL || mac == NULL || len == 0 || len % 8 != 0)
        return SCP_E_ARG;
    scp_des_ip(icv, &l, &r);
    for (size_t i = 0; i < len; i += 8) {
        scp_des_ip(p + i, &ml, &mr);
        l ^= ml;
        r ^= mr;
        scp_des_rounds(&SCP_DES3_OF(d)->ks[0], 0, &l, &r);
        scp_des_rounds(&SCP_DES3_OF(d)->ks[1], 1, &l, &r);
        scp_des_rounds(&SCP_DES3_OF(d)->ks[2], 0, &l, &r);
    }
    scp_des_fp(l, r, mac);
    return SCP_OK;
}

static void mac_block(scp_des_mac_st *m, const uint8_t b[8])
{
    uint32_t ml, mr;
    scp_des_ip(b, &ml, &mr);
    m->l ^= ml;
    m->r ^= mr;
    scp_des_rounds(&m->key->ks[0], 0, &m->l, &m->r);
    if (m->full3) {
        scp_des_rounds(&m->key->ks[1], 1, &m->l, &m->r);
        scp_des_rounds(&m->key->ks[2], 0, &m->l, &m->r);
    }
}

void scp_des_mac_init(scp_des_mac *mac, const scp_des3 *key, int full3, const uint8_t icv[8])
{
    scp_des_mac_st *m = SCP_DES_MAC_OF(mac);
    m->key = SCP_DES3_OF(key);
    m->full3 = full3 ? 1 : 0;
    m->n = 0;
    scp_des_ip(icv, &m->l, &m->r);
}

void scp_des_mac_rekey(scp_des_mac *mac, const scp_des3 *key)
{
    SCP_DES_MAC_OF(mac)->key = SCP_DES3_OF(key);
}

void scp_des_mac_update(scp_des_mac *mac, const uint8_t *p, size_t len)
{
    scp_des_mac_st *m = SCP_DES_MAC_OF(mac);
    if (len == 0)
        return;
    if (m->n > 0) {
        size_t take = 8u - m->n < len ? 8u - m->n : len;
        memcpy(m->buf + m->n, p, take);
        m->n = (uint8_t)(m->n + take);
        p += take;
        len -= take;
        if (m->n < 8)
            return;
        mac_block(m, m->buf);
        m->n = 0;
    }
    for (; len >= 8; p += 8, len -= 8)
        mac_block(m, p);
    if (len > 0) {
        memcpy(m->buf, p, len);
        m->n = (uint8_t)len;
    }
}

void scp_des_mac_final(scp_des_mac *mac_ctx, uint8_t mac[8])
{
    scp_des_mac_st *m = SCP_DES_MAC_OF(mac_ctx);
    m->buf[m->n] = 0x80;
    memset(m->buf + m->n + 1, 0, 7u - m->n);
    mac_block(m, m->buf);
    if (!m->full3) {
        /* ISO/IEC 9797-1 output transformation 3 */
        scp_des_rounds(&m->key->ks[1], 1, &m->l, &m->r);
        scp_des_rounds(&m->key->ks[0], 0, &m->l, &m->r);
    }
    scp_des_fp(m->l, m->r, mac);
    scp_wipe(mac_ctx, sizeof(*mac_ctx));
}
