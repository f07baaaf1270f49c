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

/* ICAO 9303-3 4.9: check digit, weights 7 3 1, digits as themselves,
 * A..Z as 10..35, '<' as 0. */
static int mrz_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A' + 10;
    if (ch == '<')
        return 0;
    return -1;
}

static int check_digit(const char *s, size_t n, char *out)
{
    static const int w[3] = { 7, 3, 1 };
    int sum = 0;
    for (size_t i = 0; i < n; i++) {
        int v = mrz_value(s[i]);
        ENSURE(v >= 0, SCP_E_ARG);
        sum += v * w[i % 3];
    }
    *out = (char)('0' + sum % 10);
    return SCP_OK;
}

int scp_bac_mrz_info(const char doc[9], const char dob[6], const char exp[6], char out[25])
{
    char m[25];
    ENSURE(doc && dob && exp && out, SCP_E_ARG);
    memcpy(m, doc, 9);
    GUARD(check_digit(doc, 9, m + 9));
    memcpy(m + 10, dob, 6);
    GUARD(check_digit(dob, 6, m + 16));
    memcpy(m + 17, exp, 6);
    GUARD(check_digit(exp, 6, m + 23));
    m[24] = '\0';
    memcpy(out, m, sizeof(m)); /* nothing written on error */
    return SCP_OK;
}

/* ---- BAC mutual authentication (9.7.2.2) ---- */

static int bac_mac(const uint8_t k_mac[16], const uint8_t e[32], uint8_t mac[8])
{
    static const uint8_t zero[8];
    scp_des3 d;
    scp_des_mac m;
    GUARD(scp_des3_init(&d, k_mac, 16));
    scp_des_mac_init(&m, &d, 0, zero);
    scp_des_mac_update(&m, e, 32);
    scp_des_mac_final(&m, mac);
    scp_des3_clear(&d);
    return SCP_OK;
}

static int bac_crypt(const uint8_t k_enc[16], int decrypt, const uint8_t in[32], uint8_t out[32])
{
    static const uint8_t zero[8];
    scp_des3 d;
    int rc;
    GUARD(scp_des3_init(&d, k_enc, 16));
    rc = decrypt ? scp_des3_cbc_decrypt(&d, zero, in, 32, out)
                 : scp_des3_cbc_encrypt(&d, zero, in, 32, out);
    scp_des3_clear(&d);
    return rc;
}

int scp_bac_host_auth(scp_bac *b, const uint8_t k_enc[16], const uint8_t k_mac[16],
                      const uint8_t rnd_ic[8], const uint8_t *rnd_ifd, const uint8_t *k_ifd,
                      uint8_t out[40])
{
    uint8_t s[32];
    int rc;
    ENSURE(b && k_enc && k_mac && rnd_ic && out, SCP_E_ARG);
    memset(b, 0, sizeof(*b));
    memcpy(b->k_enc, k_enc, 16);
    memcpy(b->k_mac, k_mac, 16);
    memcpy(b->rnd_ic, rnd_ic, 8);
    if (rnd_ifd)
        memcpy(b->rnd_ifd, rnd_ifd, 8);
    else
        GUARD(scp_random(b->rnd_ifd, 8));
    if (k_ifd)
        memcpy(b->k_ifd, k_ifd, 16);
    else
        GUARD(scp_random(b->k_ifd, 16));
    memcpy(s, b->rnd_ifd, 8);
    memcpy(s + 8, b->rnd_ic, 8);
    memcpy(s + 16, b->k_ifd, 16);
    rc = bac_crypt(k_enc, 0, s, out);
    if (rc == SCP_OK)
        rc = bac_mac(k_mac, out, out + 32);
    scp_wipe(s, sizeof(s));
    if (rc != SCP_OK)
        scp_wipe(b, sizeof(*b));
    return rc;
}

int scp_bac_host_finish(scp_bac *b, const uint8_t resp[40], scp_sm *sm)
{
    uint8_t mac[8], r[32], ks_enc[16], ks_mac[16], ssc[8];
    int rc, ok;
    ENSURE(b && resp && sm, SCP_E_ARG);
    GUARD_GOTO(bac_mac(b->k_mac, resp, mac), out);
    ok = scp_ct_eq(mac, resp + 32, 8);
    GUARD_GOTO(bac_crypt(b->k_enc, 1, resp, r), out);
    /* R = RND.IC | RND.IFD | K.IC: the echo of our challenge proves the chip */
    ok &= scp_ct_eq(r, b->rnd_ic, 8) & scp_ct_eq(r + 8, b->rnd_ifd, 8);
    rc = SCP_E_CRYPTOGRAM;
    if (!ok)
        goto out;
    GUARD_GOTO(scp_bac_session_keys(b->k_ifd, r + 16, b->rnd_ic, b->rnd_ifd, ks_enc, ks_mac, ssc),
               out);
    rc = scp_sm_init(sm, SCP_SM_3DES, SCP_SM_HOST, ks_enc, ks_mac, 16, ssc, 8);
out:
    scp_wipe(r, sizeof(r));
    scp_wipe(ks_enc, sizeof(ks_enc));
    scp_wipe(ks_mac, sizeof(ks_mac));
    scp_wipe(b, sizeof(*b));
    return rc;
}

int scp_bac_card_auth(const uint8_t k_enc[16], const uint8_t k_mac[16], const uint8_t rnd_ic[8],
                      const uint8_t *k_ic, const uint8_t *cmd, size_t cmd_len, uint8_t out[40],
                      scp_sm *sm)
{
    uint8_t mac[8], s[32], r[32], kic[16], ks_enc[16], ks_mac[16], ssc[8];
    int rc, ok;
    ENSURE(k_enc && k_mac && rnd_ic && cmd && out && sm, SCP_E_ARG);
    ENSURE(cmd_len == 40, SCP_E_LENGTH);
    GUARD_GOTO(bac_mac(k_mac, cmd, mac), out);
    ok = scp_ct_eq(mac, cmd + 32, 8);
    GUARD_GOTO(bac_crypt(k_enc, 1, cmd, s), out);
    ok &= scp_ct_eq(s + 8, rnd_ic, 8); /* S = RND.IFD | RND.IC | K.IFD */
    rc = SCP_E_CRYPTOGRAM;
    if (!ok)
        goto out;
    if (k_ic)
        memcpy(kic, k_ic, 16);
    else
        GUARD_GOTO(scp_random(kic, 16), out);
    memcpy(r, rnd_ic, 8);
    memcpy(r + 8, s, 8);
    memcpy(r + 16, kic, 16);
    GUARD_GOTO(bac_crypt(k_enc, 0, r, out), out);
    GUARD_GOTO(bac_mac(k_mac, out, out + 32), out);
    GUARD_GOTO(scp_bac_session_keys(s + 16, kic, rnd_ic, s, ks_enc, ks_mac, ssc), out);
    rc = scp_sm_init(sm, SCP_SM_3DES, SCP_SM_CARD, ks_enc, ks_mac, 16, ssc, 8);
out:
    scp_wipe(s, sizeof(s));
    scp_wipe(r, sizeof(r));
    scp_wipe(kic, sizeof(kic));
    scp_wipe(ks_enc, sizeof(ks_enc));
    scp_wipe(ks_mac, sizeof(ks_mac));
    return rc;
}
