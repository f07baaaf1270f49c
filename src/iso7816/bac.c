/* ICAO Doc 9303 Part 11: the key derivation function (9.7.1) and the BAC
 * key seed and session keys (9.7.2). */
#include <openssl/evp.h>
#include <string.h>

#include "core/guard.h"
#include "scpkit/iso7816sm.h"

/* DES keys carry odd parity in each byte's low bit (9.7.1.1). */
static void des_parity(uint8_t *k, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t b = k[i] & 0xFE, p = b;
        p ^= p >> 4;
        p ^= p >> 2;
        p ^= p >> 1;
        k[i] = (uint8_t)(b | ((p & 1) ^ 1));
    }
}

int scp_icao_kdf(int family, const uint8_t *seed, size_t seed_len, uint32_t c, uint8_t *out,
                 size_t key_len)
{
    uint8_t d[EVP_MAX_MD_SIZE], cb[4] = { (uint8_t)(c >> 24), (uint8_t)(c >> 16),
                                          (uint8_t)(c >> 8), (uint8_t)c };
    unsigned int dl = 0;
    const EVP_MD *md;
    EVP_MD_CTX *ctx;
    int ok;

    ENSURE(seed != NULL && out != NULL, SCP_E_ARG);
    if (family == SCP_SM_3DES) {
        ENSURE(key_len == 16, SCP_E_ARG);
        md = EVP_sha1();
    } else if (family == SCP_SM_AES) {
        ENSURE(key_len == 16 || key_len == 24 || key_len == 32, SCP_E_ARG);
        md = key_len == 16 ? EVP_sha1() : EVP_sha256();
    } else {
        return SCP_E_ARG;
    }
    if ((ctx = EVP_MD_CTX_new()) == NULL)
        return SCP_E_CRYPTO;
    ok = EVP_DigestInit_ex(ctx, md, NULL) == 1 && EVP_DigestUpdate(ctx, seed, seed_len) == 1 &&
         EVP_DigestUpdate(ctx, cb, 4) == 1 && EVP_DigestFinal_ex(ctx, d, &dl) == 1 &&
         dl >= key_len;
    EVP_MD_CTX_free(ctx);
    if (ok) {
        memcpy(out, d, key_len);
        if (family == SCP_SM_3DES)
            des_parity(out, key_len);
    }
    scp_wipe(d, sizeof(d));
    return ok ? SCP_OK : SCP_E_CRYPTO;
}

int scp_bac_keys_from_mrz(const char *mrz_info, uint8_t k_enc[16], uint8_t k_mac[16])
{
    uint8_t h[20], seed[16];
    unsigned int hl = 0;
    int rc;
    ENSURE(mrz_info != NULL && k_enc != NULL && k_mac != NULL, SCP_E_ARG);
    ENSURE(strlen(mrz_info) >= 24 && strlen(mrz_info) <= 64, SCP_E_ARG);
    if (EVP_Digest(mrz_info, strlen(mrz_info), h, &hl, EVP_sha1(), NULL) != 1)
        return SCP_E_CRYPTO;
    memcpy(seed, h, 16);
    rc = scp_icao_kdf(SCP_SM_3DES, seed, 16, 1, k_enc, 16);
    if (rc == SCP_OK)
        rc = scp_icao_kdf(SCP_SM_3DES, seed, 16, 2, k_mac, 16);
    scp_wipe(h, sizeof(h));
    scp_wipe(seed, sizeof(seed));
    return rc;
}

int scp_bac_session_keys(const uint8_t k_ifd[16], const uint8_t k_ic[16], const uint8_t rnd_ic[8],
                         const uint8_t rnd_ifd[8], uint8_t ks_enc[16], uint8_t ks_mac[16],
                         uint8_t ssc[8])
{
    uint8_t seed[16];
    int rc;
    ENSURE(k_ifd && k_ic && rnd_ic && rnd_ifd && ks_enc && ks_mac && ssc, SCP_E_ARG);
    for (int i = 0; i < 16; i++)
        seed[i] = k_ifd[i] ^ k_ic[i];
    rc = scp_icao_kdf(SCP_SM_3DES, seed, 16, 1, ks_enc, 16);
    if (rc == SCP_OK)
        rc = scp_icao_kdf(SCP_SM_3DES, seed, 16, 2, ks_mac, 16);
    memcpy(ssc, rnd_ic + 4, 4);
    memcpy(ssc + 4, rnd_ifd + 4, 4);
    scp_wipe(seed, sizeof(seed));
    return rc;
}
