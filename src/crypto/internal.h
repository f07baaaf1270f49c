/* scpkit internal: the crypto backend's AES-NI hooks and guard macros. */
#ifndef SCPKIT_CRYPTO_INTERNAL_H
#define SCPKIT_CRYPTO_INTERNAL_H

#include "scpkit/crypto.h"
#include "core/guard.h"

/* AES-NI path (src/crypto/aesni.c). scp_aesni_init returns SCP_OK and fills
 * a->rk/drk/nr when the CPU has AES-NI and the fast path is not disabled;
 * SCP_E_UNSUPPORTED otherwise, and the OpenSSL contexts are used. */
int scp_aesni_init(scp_aes *a, const uint8_t *key, size_t key_len);
void scp_aesni_block(const scp_aes *a, const uint8_t in[16], uint8_t out[16]);
int scp_aesni_cbc_encrypt(const scp_aes *a, const uint8_t iv[16], const uint8_t *in,
                          size_t len, uint8_t *out);
int scp_aesni_cbc_decrypt(const scp_aes *a, const uint8_t iv[16], const uint8_t *in,
                          size_t len, uint8_t *out);
void scp_aesni_cbcmac(const scp_aes *a, uint8_t x[16], const uint8_t *p, size_t nblocks);

#endif
