/* scpkit internal: the crypto backend's AES-NI hooks and guard macros. */
#ifndef SCPKIT_CRYPTO_INTERNAL_H
#define SCPKIT_CRYPTO_INTERNAL_H

#include "scpkit/crypto.h"
#include "core/guard.h"

/* AES-NI path (src/crypto/aesni.c). scp_aesni_init returns SCP_OK and fills
 * a->nr, a->rk (and a->drk when dec) when the CPU has AES-NI and the fast
 * path is not disabled; SCP_E_UNSUPPORTED otherwise, and the OpenSSL
 * contexts are used. */
int scp_aesni_init(scp_aes *a, const uint8_t *key, size_t key_len, int dec);
void scp_aesni_block(const scp_aes *a, const uint8_t in[16], uint8_t out[16]);
int scp_aesni_cbc_encrypt(const scp_aes *a, const uint8_t iv[16], const uint8_t *in,
                          size_t len, uint8_t *out);
int scp_aesni_cbc_decrypt(const scp_aes *a, const uint8_t iv[16], const uint8_t *in,
                          size_t len, uint8_t *out);
void scp_aesni_cbcmac(const scp_aes *a, uint8_t x[16], const uint8_t *p, size_t nblocks);
void scp_aesni_cmac(const scp_aes *a, const uint8_t *p, size_t len, uint8_t mac[16]);
void scp_aesni_enc_cmac(const scp_aes *ke, const scp_aes *km, const uint8_t icv_in[16],
                        const uint8_t *iv_pre, const uint8_t *next_in, uint8_t *next_out,
                        const uint8_t chain[16], const uint8_t *pre, size_t pre_len,
                        uint8_t *buf, size_t len, const uint8_t *post, size_t post_len,
                        uint8_t tag[16]);
void scp_aesni_cmac_dec(const scp_aes *ke, const scp_aes *km, const uint8_t icv_in[16],
                        const uint8_t chain[16], const uint8_t *pre, size_t pre_len,
                        const uint8_t *ct, size_t len, const uint8_t *post, size_t post_len,
                        uint8_t *out, uint8_t tag[16]);
int scp_aesni_kdf_gp_keys3(const uint8_t *const key[3], size_t key_len, const uint8_t cst[3],
                           const uint8_t *ctx, size_t ctx_len, scp_aes *const out[3]);
int scp_aesni_kdf_gp2(const scp_aes *a, const uint8_t cst[2], const uint8_t *ctx,
                      size_t ctx_len, uint8_t *out0, uint8_t *out1, size_t out_len);

/* Two KDFs under one key, same context (GPC Amd D 6.2.2.2-6.2.2.3: the card
 * and host cryptograms): out0 = scp_kdf_gp(key, cst[0], ctx), out1 with
 * cst[1], out_len bytes each. On the AES-NI path (out_len <= 16, ctx_len <=
 * 32) the two CMAC chains run in lockstep; otherwise one after the other
 * (same bytes either way). */
SCP_MUST_CHECK int scp_kdf_gp2(const scp_aes *key, const uint8_t cst[2], const uint8_t *ctx,
                               size_t ctx_len, uint8_t *out0, uint8_t *out1, size_t out_len);

/* GPC Amd D 6.2.1 in one batch: out[j] = scp_kdf_gp(key[j], cst[j], ctx),
 * key_len bytes each, set up as by scp_aes_init (out[0], S-ENC, as by
 * scp_aes_init_dec). key[j] are raw static keys (they may repeat). On the
 * AES-NI path (key_len 16 or 32, ctx_len <= 32) the three KDF chains and
 * the six key schedules run in lockstep; otherwise one after the other
 * (same bytes either way). On failure no out[j] holds a key. */
SCP_MUST_CHECK int scp_kdf_gp_keys3(const uint8_t *const key[3], size_t key_len,
                                    const uint8_t cst[3], const uint8_t *ctx, size_t ctx_len,
                                    scp_aes *const out[3]);

/* SCP03 secure messaging in one pass (GPC Amd D 6.2.4-6.2.7): the CBC and
 * CMAC chains run interleaved on the AES-NI path, one after the other on
 * the OpenSSL path (same bytes either way).
 *
 * scp_cbc_enc_cmac: IV = AES(ke, icv_in); buf (len, a multiple of 16,
 * already padded) is CBC-encrypted in place; tag = CMAC(km, chain | pre |
 * ciphertext | post). */
SCP_MUST_CHECK int scp_cbc_enc_cmac(const scp_aes *ke, const scp_aes *km,
                                    const uint8_t icv_in[16], const uint8_t chain[16],
                                    const uint8_t *pre, size_t pre_len, uint8_t *buf, size_t len,
                                    const uint8_t *post, size_t post_len, uint8_t tag[16]);
/* The same, with the ICV's AES made ahead: iv_pre, when not NULL, is
 * AES(ke, icv_in) computed earlier (icv_in is then not read); next_in,
 * when not NULL, is the next command's ICV input and next_out receives
 * AES(ke, next_in), computed beside this command's chains where it costs
 * no time on the AES-NI path (next_out may be iv_pre: it is read first). */
SCP_MUST_CHECK int scp_cbc_enc_cmac_ahead(const scp_aes *ke, const scp_aes *km,
                                          const uint8_t icv_in[16], const uint8_t *iv_pre,
                                          const uint8_t *next_in, uint8_t *next_out,
                                          const uint8_t chain[16], const uint8_t *pre,
                                          size_t pre_len, uint8_t *buf, size_t len,
                                          const uint8_t *post, size_t post_len,
                                          uint8_t tag[16]);
/* scp_cmac_cbc_dec: tag = CMAC(km, chain | pre | ct | post); IV = AES(ke,
 * icv_in); ct (len, a multiple of 16) is CBC-decrypted into out (which may
 * be ct). The caller checks the tag and wipes out when it does not match. */
SCP_MUST_CHECK int scp_cmac_cbc_dec(const scp_aes *ke, const scp_aes *km,
                                    const uint8_t icv_in[16], const uint8_t chain[16],
                                    const uint8_t *pre, size_t pre_len, const uint8_t *ct,
                                    size_t len, const uint8_t *post, size_t post_len,
                                    uint8_t *out, uint8_t tag[16]);

#endif
