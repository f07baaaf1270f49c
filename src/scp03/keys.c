/* SCP03 session keys and cryptograms, one side's handshake crypto in one
 * call (GPC Amd D 6.2.1-6.2.2): the protocol's KDF runs, built on the
 * crypto layer's primitives. On the AES-NI path (AES-128/256) the whole
 * batch runs side by side in one kernel (scp_aesni_scp03_keys,
 * src/crypto/aesni.c); otherwise, and for AES-192, one KDF after the
 * other here. The same bytes either way (tests/crypto_fast). */
#include <string.h>

#include "scp03/internal.h"
#include "crypto/internal.h"

/* S-ENC only encrypts and decrypts (GPC Amd D 6.2.6): no CMAC subkeys, on
 * either path. */
static void senc_no_mac(scp_aes *a)
{
    scp_wipe(a->l, sizeof(a->l)), scp_wipe(a->k1, sizeof(a->k1)), scp_wipe(a->k2, sizeof(a->k2));
    a->mac = 0;
}

/* One KDF after another: the OpenSSL path, and AES-192. */
static int scp03_keys_each(const scp03_hs_keys *h)
{
    static const uint8_t cst[3] = { SCP03_DDC_S_ENC, SCP03_DDC_S_MAC, SCP03_DDC_S_RMAC };
    const uint8_t *key[3] = { h->enc, h->mac, h->mac };
    scp_aes *const out[3] = { h->s_enc, h->s_mac, h->s_rmac };
    uint8_t k[SCP_AES_MAX_KEY], ctx[2 * 16];
    size_t cl = h->chal_len;
    int rc = SCP_OK, n = 0;
    scp_aes st;

    if (h->chal_ctx != NULL) { /* GPC Amd D 6.2.2.1 */
        GUARD(scp_aes_init_ctx(&st, h->ctx, h->enc, h->key_len, 0));
        rc = scp_kdf_gp(&st, SCP03_DDC_CARD_CHALLENGE, h->chal_ctx, h->chal_ctx_len,
                        h->card_chal, cl);
        scp_aes_clear(&st);
        GUARD(rc);
    }
    memcpy(ctx, h->host_chal, cl);
    memcpy(ctx + cl, h->card_chal, cl);
    for (n = 0; n < 3; n++) { /* GPC Amd D 6.2.1 */
        rc = scp_aes_init_ctx(&st, h->ctx, key[n], h->key_len, 0);
        if (rc != SCP_OK)
            break;
        rc = scp_kdf_gp(&st, cst[n], ctx, 2 * cl, k, h->key_len);
        scp_aes_clear(&st);
        if (rc == SCP_OK)
            rc = scp_aes_init_ctx(out[n], h->ctx, k, h->key_len, n == 0);
        if (rc != SCP_OK) /* out[n] holds no key: its init failed or never ran */
            break;
    }
    scp_wipe(k, sizeof(k));
    if (rc == SCP_OK) /* GPC Amd D 6.2.2.2-6.2.2.3 */
        rc = scp_kdf_gp(h->s_mac, SCP03_DDC_CARD_CRYPTOGRAM, ctx, 2 * cl, h->card_cryptogram,
                        cl);
    if (rc == SCP_OK)
        rc = scp_kdf_gp(h->s_mac, SCP03_DDC_HOST_CRYPTOGRAM, ctx, 2 * cl, h->host_cryptogram,
                        cl);
    if (rc != SCP_OK)
        for (int i = 0; i < n; i++)
            scp_aes_clear(out[i]);
    else
        senc_no_mac(h->s_enc);
    return rc;
}

int scp_scp03_keys(const scp03_hs_keys *h)
{
    int ni;

    ENSURE(h != NULL && h->enc != NULL && h->mac != NULL && h->host_chal != NULL &&
               h->card_chal != NULL && h->s_enc != NULL && h->s_mac != NULL &&
               h->s_rmac != NULL && h->card_cryptogram != NULL && h->host_cryptogram != NULL,
           SCP_E_ARG);
    ENSURE(h->key_len == 16 || h->key_len == 24 || h->key_len == 32, SCP_E_ARG);
    ENSURE(h->chal_len == 8 || h->chal_len == 16, SCP_E_ARG);
    ENSURE(h->chal_ctx == NULL || (h->chal_ctx_len >= 1 && h->chal_ctx_len <= 32), SCP_E_ARG);
    GUARD(ni = scp_ctx_aesni(h->ctx));
    if (ni == 1 && scp_aesni_scp03_keys(h) == SCP_OK) {
        scp_aes *const out[3] = { h->s_enc, h->s_mac, h->s_rmac };
        for (int j = 0; j < 3; j++) {
            out[j]->ecb = out[j]->cbce = out[j]->cbcd = NULL;
            out[j]->key_len = (uint8_t)h->key_len;
            out[j]->fast = 1;
            out[j]->dec = j == 0;
            out[j]->mac = j != 0;
        }
        return SCP_OK;
    }
    return scp03_keys_each(h);
}

