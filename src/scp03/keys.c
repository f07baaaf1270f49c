/* SCP03 session keys and cryptograms, one side's handshake crypto in one
 * call (GPC Amd D 6.2.1-6.2.2): the protocol's KDF runs, built on the
 * crypto layer's primitives. On the AES-NI path (AES-128/256) the whole
 * batch runs side by side in one kernel (scp_aesni_scp03_keys,
 * src/crypto/aesni.c); otherwise, and for AES-192, one KDF after the
 * other here. The same bytes either way (tests/crypto_fast). */
#include <string.h>

#include "scp03/internal.h"
#include "crypto/internal.h"

/* One KDF after another: the OpenSSL path, and AES-192. S-ENC only
 * encrypts and decrypts (GPC Amd D 6.2.6): no L; S-RMAC only MACs. */
static int scp03_keys_each(const scp03_hs_keys *h)
{
    static const uint8_t cst[3] = { SCP03_DDC_S_ENC, SCP03_DDC_S_MAC, SCP03_DDC_S_RMAC };
    const uint8_t *key[3] = { h->enc, h->mac, h->mac };
    uint8_t k[3][SCP_AES_MAX_KEY], ctx[2 * 16];
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
    /* GPC Amd D 6.2.1: all three derived before any is stored (the static
     * keys may live where the raw session keys go) */
    for (n = 0; n < 3 && rc == SCP_OK; n++) {
        rc = scp_aes_init_ctx(&st, h->ctx, key[n], h->key_len, 0);
        if (rc != SCP_OK)
            break;
        rc = scp_kdf_gp(&st, cst[n], ctx, 2 * cl, k[n], h->key_len);
        scp_aes_clear(&st);
    }
    if (rc == SCP_OK)
        rc = scp_aes_init_ctx(h->s_mac, h->ctx, k[1], h->key_len, 0);
    if (rc == SCP_OK) {
        rc = scp_aes_raw_init(h->s_enc, h->ctx, k[0], h->key_len, 1, 0);
        if (rc == SCP_OK)
            rc = scp_aes_raw_init(h->s_rmac, h->ctx, k[2], h->key_len, 0, 1);
        if (rc != SCP_OK)
            scp_aes_clear(h->s_mac);
    }
    scp_wipe(k, sizeof(k));
    if (rc == SCP_OK) /* GPC Amd D 6.2.2.2-6.2.2.3 */
        rc = scp_kdf_gp(h->s_mac, SCP03_DDC_CARD_CRYPTOGRAM, ctx, 2 * cl, h->card_cryptogram,
                        cl);
    if (rc == SCP_OK)
        rc = scp_kdf_gp(h->s_mac, SCP03_DDC_HOST_CRYPTOGRAM, ctx, 2 * cl, h->host_cryptogram,
                        cl);
    return rc; /* on failure the caller ends the session: every key cleared */
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
        h->s_mac->key_len = (uint8_t)h->key_len;
        h->s_mac->fast = 1, h->s_mac->dec = 0, h->s_mac->mac = 1;
        h->s_enc->key_len = h->s_rmac->key_len = (uint8_t)h->key_len;
        h->s_enc->ossl = h->s_rmac->ossl = 0;
        h->s_enc->dec = 1, h->s_enc->mac = 0;
        h->s_rmac->dec = 0, h->s_rmac->mac = 1;
        return SCP_OK;
    }
    return scp03_keys_each(h);
}
