/* The secure-messaging core (src/sm/sm.h): MAC, cipher, padding and the
 * whole seal / open passes, driven by an scp_sm_desc. No APDU, no
 * session: the protocols' framing calls it. */
#include <string.h>

#include "sm/sm.h"
#include "crypto/internal.h"
#include "scpkit/buf.h"

/* ---- padding (ISO/IEC 9797-1 method 2) ---- */

/* SCP03: minimal padding is at most one block, but peers in the field
 * (OpenSCP's card) pad further; the data is already MAC-verified, so any
 * run of 00 after the 80 is accepted. */
static int unpad_long(const uint8_t *p, size_t n, size_t *out_len)
{
    size_t i;
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

int scp_sm_unpad(const scp_sm_desc *d, const uint8_t *p, size_t n, size_t *plain_len)
{
    ENSURE(n > 0 && scp_sm_rem(d, n) == 0, SCP_E_PADDING);
    if (d->pad == SCP_SMP_M2_LONG)
        return unpad_long(p, n, plain_len);
    /* constant time over the last block (src/crypto/des_mac.c) */
    return scp_unpad_m2(p, n, d->block, plain_len) == SCP_OK ? SCP_OK : SCP_E_PADDING;
}

/* ---- the streaming MAC ---- */

void scp_sm_mac_begin(scp_sm_mac_ctx *m, const scp_sm_desc *d, const scp_sm_keys *k, int rule,
                      const uint8_t *icv)
{
    m->d = d;
    m->n = 0;
    m->bad = 0;
    if (d->mac_alg == SCP_SMM_CMAC) {
        scp_cmac_init(&m->u.c, k->aes_mac);
    } else {
        uint8_t iv[8];
        if (rule == SCP_SMI_CHAIN_IV)
            memcpy(iv, icv, 8);
        else if (rule == SCP_SMI_CHAIN_ENC) /* GPC 2.2.1 E.4.4: ICV encryption */
            scp_des1_block(k->des_mac, 0, icv, iv); /* K1 */
        else
            memset(iv, 0, 8);
        scp_des_mac_init(&m->u.r, k->des_mac, 0, iv);
        scp_wipe(iv, sizeof(iv));
    }
    if (rule == SCP_SMI_CHAIN || rule == SCP_SMI_SSC)
        scp_sm_mac_update(m, icv, d->block);
}

void scp_sm_mac_update(scp_sm_mac_ctx *m, const uint8_t *p, size_t len)
{
    if (len == 0)
        return;
    if (m->d->mac_alg == SCP_SMM_CMAC) {
        if (scp_cmac_update(&m->u.c, p, len) != SCP_OK) /* a key without subkeys */
            m->bad = 1;
        m->n += len;
    } else {
        scp_des_mac_update(&m->u.r, p, len);
    }
}

int scp_sm_mac_final(scp_sm_mac_ctx *m, uint8_t tag[16])
{
    int rc = SCP_OK;
    if (m->d->mac_alg == SCP_SMM_CMAC) {
        if (m->d->mac_pad == SCP_SMQ_M2) {
            uint8_t pad[16] = { 0x80 };
            scp_sm_mac_update(m, pad, 16 - m->n % 16);
        }
        rc = scp_cmac_final(&m->u.c, tag);
        if (m->bad)
            rc = SCP_E_STATE;
    } else {
        scp_des_mac_final(&m->u.r, tag); /* M2 padding, output transformation 3 */
    }
    scp_wipe(m, sizeof(*m));
    return rc;
}

int scp_sm_mac_check(scp_sm_mac_ctx *m, const uint8_t *rx, uint8_t tag[16])
{
    size_t n = m->d->mac_len;
    GUARD(scp_sm_mac_final(m, tag));
    return scp_ct_eq(tag, rx, n) ? SCP_OK : SCP_E_MAC;
}

void scp_sm_mac_park(const scp_sm_mac_ctx *m, scp_des_mac *slot)
{
    *slot = m->u.r;
}

void scp_sm_mac_resume(scp_sm_mac_ctx *m, const scp_sm_desc *d, const scp_sm_keys *k,
                       const scp_des_mac *slot)
{
    m->d = d;
    m->n = 0;
    m->bad = 0;
    m->u.r = *slot;
    scp_des_mac_rekey(&m->u.r, k->des_mac);
}

/* Short CMAC inputs laid out in one buffer for one CMAC call (the AES-NI
 * CMAC runs it in registers); longer ones stream. */
int scp_sm_mac_stream(const scp_sm_desc *d, const scp_sm_keys *k, int rule, const uint8_t *icv,
                      const uint8_t *pre, size_t pre_len, const uint8_t *p, size_t len,
                      const uint8_t *post, size_t post_len, uint8_t tag[16])
{
    scp_sm_mac_ctx m;
    scp_sm_mac_begin(&m, d, k, rule, icv);
    scp_sm_mac_update(&m, pre, pre_len);
    scp_sm_mac_update(&m, p, len);
    scp_sm_mac_update(&m, post, post_len);
    return scp_sm_mac_final(&m, tag);
}

/* ---- the cipher ---- */

static void make_iv(const scp_sm_desc *d, const scp_sm_keys *k, const uint8_t *icv_in,
                    uint8_t iv[16])
{
    if (icv_in == NULL)
        memset(iv, 0, 16);
    else if (d->cipher == SCP_SMC_AES)
        scp_aes_block(k->aes_enc, icv_in, iv);
    else
        scp_des3_encrypt(k->des_enc, icv_in, iv);
}

int scp_sm_encrypt(const scp_sm_desc *d, const scp_sm_keys *k, const uint8_t *icv_in,
                   uint8_t *buf, size_t len)
{
    uint8_t iv[16];
    int rc;
    ENSURE(scp_sm_rem(d, len) == 0, SCP_E_ARG);
    make_iv(d, k, icv_in, iv);
    rc = d->cipher == SCP_SMC_AES ? scp_aes_cbc_encrypt(k->aes_enc, iv, buf, len, buf)
                                  : scp_des3_cbc_encrypt(k->des_enc, iv, buf, len, buf);
    scp_wipe(iv, sizeof(iv));
    return rc;
}

int scp_sm_decrypt(const scp_sm_desc *d, const scp_sm_keys *k, const uint8_t *icv_in,
                   const uint8_t *in, size_t len, uint8_t *out)
{
    uint8_t iv[16];
    int rc;
    ENSURE(scp_sm_rem(d, len) == 0, SCP_E_ARG);
    make_iv(d, k, icv_in, iv);
    rc = d->cipher == SCP_SMC_AES ? scp_aes_cbc_decrypt(k->aes_enc, iv, in, len, out)
                                  : scp_des3_cbc_decrypt(k->des_enc, iv, in, len, out);
    scp_wipe(iv, sizeof(iv));
    return rc;
}

int scp_sm_decrypt_unpad(const scp_sm_desc *d, const scp_sm_keys *k, const uint8_t *icv_in,
                         const uint8_t *ct, size_t n, uint8_t *out, size_t *plain_len)
{
    uint8_t iv[16];
    int rc;
    ENSURE(n > 0 && scp_sm_rem(d, n) == 0, SCP_E_PADDING);
    make_iv(d, k, icv_in, iv);
    rc = d->cipher == SCP_SMC_AES ? scp_aes_cbc_decrypt(k->aes_enc, iv, ct, n, out)
                                  : scp_des3_cbc_decrypt(k->des_enc, iv, ct, n, out);
    scp_wipe(iv, sizeof(iv));
    if (rc == SCP_OK && d->pad == SCP_SMP_M2_LONG)
        rc = unpad_long(out, n, plain_len);
    else if (rc == SCP_OK && scp_unpad_m2(out, n, d->block, plain_len) != SCP_OK)
        rc = SCP_E_PADDING;
    if (rc != SCP_OK)
        scp_wipe(out, n);
    return rc;
}

/* ---- whole passes ---- */

static int encrypt_ahead(const scp_sm_desc *d, const scp_sm_keys *k, const uint8_t *icv_in,
                         const scp_sm_ahead *ah, uint8_t *buf, size_t len)
{
    if (ah == NULL)
        return scp_sm_encrypt(d, k, icv_in, buf, len);
    if (ah->next_in != NULL && d->cipher == SCP_SMC_AES)
        scp_aes_block(k->aes_enc, ah->next_in, ah->next_out);
    if (ah->iv_pre == NULL || d->cipher != SCP_SMC_AES)
        return scp_sm_encrypt(d, k, icv_in, buf, len);
    return scp_aes_cbc_encrypt(k->aes_enc, ah->iv_pre, buf, len, buf);
}

int scp_sm_seal_slow(const scp_sm_desc *d, const scp_sm_keys *k, int rule, const uint8_t *icv,
                const uint8_t *icv_in, const scp_sm_ahead *ah, const uint8_t *pre,
                size_t pre_len, uint8_t *buf, size_t n, int enc, const uint8_t *post,
                size_t post_len, size_t *out_n, uint8_t tag[16])
{
    size_t m = enc ? scp_sm_padded_len(d, n) : n;
    *out_n = m;
    if (m > n)
        scp_sm_pad(d, buf, n);
    if (d->order == SCP_SMO_MTE) { /* the MAC over the plain data first */
        GUARD(scp_sm_mac_once(d, k, rule, icv, pre, pre_len, buf, n, post, post_len, tag));
        return m > n ? encrypt_ahead(d, k, icv_in, ah, buf, m) : SCP_OK;
    }
    if (m == n) /* nothing to encrypt */
        return scp_sm_mac_once(d, k, rule, icv, pre, pre_len, buf, n, post, post_len, tag);
    if (scp_sm_fused(d, rule, icv_in))
        return scp_cbc_enc_cmac_ahead(k->aes_enc, k->aes_mac, icv_in,
                                      ah ? ah->iv_pre : NULL, ah ? ah->next_in : NULL,
                                      ah ? ah->next_out : NULL, icv, pre, pre_len, buf, m,
                                      post, post_len, tag);
    GUARD(encrypt_ahead(d, k, icv_in, ah, buf, m));
    return scp_sm_mac_once(d, k, rule, icv, pre, pre_len, buf, m, post, post_len, tag);
}

int scp_sm_open_slow(const scp_sm_desc *d, const scp_sm_keys *k, int rule, const uint8_t *icv,
                const uint8_t *icv_in, const uint8_t *pre, size_t pre_len, const uint8_t *ct,
                size_t n, int dec, const uint8_t *post, size_t post_len, const uint8_t *rx,
                uint8_t *out, size_t *plain_len, uint8_t tag[16])
{
    uint8_t want[16];
    int rc;

    *plain_len = n;
    if (!dec || n == 0 || scp_sm_rem(d, n) != 0) {
        /* MAC only; data that is not whole blocks fails after the MAC */
        GUARD(scp_sm_verify(d, k, rule, icv, pre, pre_len, ct, n, post, post_len, rx, tag));
        return dec && n > 0 ? SCP_E_PADDING : SCP_OK;
    }
    /* (whole blocks of a fused description went through the one-pass
     * kernel in scp_sm_open, sm.h) the MAC first, over the ciphertext
     * where it is (out may hold the MAC input) */
    memcpy(want, rx, d->mac_len); /* out may overlap the received MAC */
    rc = scp_sm_verify(d, k, rule, icv, pre, pre_len, ct, n, post, post_len, want, tag);
    if (rc == SCP_OK) {
        if (out != ct)
            memmove(out, ct, n);
        rc = scp_sm_decrypt(d, k, icv_in, out, n, out);
    } else {
        n = 0; /* out not written */
    }
    if (rc == SCP_OK)
        rc = scp_sm_unpad(d, out, n, plain_len);
    if (rc != SCP_OK)
        scp_wipe(out, n);
    return rc;
}
