/* scpkit: what the API needs of the crypto layer (OpenSSL 3 libcrypto,
 * with an AES-NI fast path): the per-context backend and RNG choice, key
 * check values, random bytes, constant-time compare and wipe. The AES and
 * CMAC primitives themselves are internal (src/crypto/aes.h). Every
 * function that can fail returns an scp_rc.
 *
 * No hidden state: the backend and the RNG are chosen per context
 * (scp_ctx), passed to keys and sessions; NULL means the default context
 * (AES-NI when the CPU has it, unless SCP_AES_IMPL=openssl was in the
 * environment when the library first looked, once, thread-safely; RNG:
 * OpenSSL's RAND_bytes). Every function is reentrant. */
#ifndef SCPKIT_CRYPTO_H
#define SCPKIT_CRYPTO_H

#include <stddef.h>
#include <stdint.h>
#include "scpkit/rc.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SCP_AES_BLOCK 16
#define SCP_AES_MAX_KEY 32
#define SCP_KCV_LEN 3

/* Which AES implementation a context asks for. */
typedef enum scp_backend {
    SCP_BACKEND_DEFAULT = 0, /* AES-NI when the CPU has it (and the environment allows) */
    SCP_BACKEND_OPENSSL = 1, /* OpenSSL's EVP AES, whatever the CPU */
    SCP_BACKEND_AESNI = 2,   /* AES-NI; keys fail with SCP_E_UNSUPPORTED without it */
} scp_backend;

/* Random bytes for challenges: fill out with len bytes; 0 (SCP_OK) on
 * success, anything else fails the call that asked. */
typedef int (*scp_rng_fn)(void *rng_ctx, uint8_t *out, size_t len);

/* A crypto context: caller-owned, read only by the library (share one
 * between threads freely), must outlive the keys and sessions using it.
 * Zero-initialised = the default. */
typedef struct scp_ctx {
    scp_backend backend;
    scp_rng_fn rng; /* NULL: OpenSSL's RAND_bytes */
    void *rng_ctx;
} scp_ctx;

/* Random bytes from ctx's RNG (ctx NULL or ctx->rng NULL: scp_random). */
SCP_MUST_CHECK int scp_ctx_random(const scp_ctx *ctx, uint8_t *out, size_t len);
/* "aesni" or "openssl": what keys made under ctx use (NULL: the default);
 * "none" for SCP_BACKEND_AESNI on a CPU without it. */
const char *scp_ctx_backend_name(const scp_ctx *ctx);

/* Room for one expanded AES key inside the session structures
 * (scp03_session, scp_sm). Private to the library: what it holds (round
 * keys, or OpenSSL contexts) is not part of the API or the ABI beyond its
 * size, and changes between releases; never read or write it. */
typedef struct scp_aes_slot {
    _Alignas(16) unsigned char opaque_[272];
} scp_aes_slot;

/* Room for one AES key kept raw (expanded per use), as scp_aes_slot. */
typedef struct scp_aes_raw_slot {
    _Alignas(8) unsigned char opaque_[56];
} scp_aes_raw_slot;

/* Two-key or three-key 3DES ECB of whole 8-byte blocks (for legacy
 * diversification schemes). key_len 16 or 24. */
SCP_MUST_CHECK int scp_des3_ecb_encrypt(const uint8_t *key, size_t key_len, const uint8_t *in,
                                        size_t len, uint8_t *out);

/* KCV of an AES key: AES(key, 16 x 01)[0..2] (GPC Amd D 7.2). */
SCP_MUST_CHECK int scp_kcv_aes(const uint8_t *key, size_t key_len, uint8_t kcv[SCP_KCV_LEN]);
/* KCV of a 3DES key: 3DES(key, 8 x 00)[0..2]. */
SCP_MUST_CHECK int scp_kcv_des3(const uint8_t *key, size_t key_len, uint8_t kcv[SCP_KCV_LEN]);

/* Random bytes from the OS-seeded DRBG. */
SCP_MUST_CHECK int scp_random(uint8_t *out, size_t len);
/* Constant-time equality: 1 when equal, 0 otherwise. No early exit. */
int scp_ct_eq(const uint8_t *a, const uint8_t *b, size_t len);
/* Wipe that the compiler may not elide. */
void scp_wipe(void *p, size_t len);

/* The default context's AES implementation: "aesni" or "openssl". */
const char *scp_aes_impl(void);

#ifdef __cplusplus
}
#endif
#endif
