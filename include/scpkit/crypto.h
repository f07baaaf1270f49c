/* scpkit: the crypto backend (OpenSSL 3 libcrypto, with an AES-NI fast
 * path). Keys are expanded once per key, never per message. Every function
 * that can fail returns an scp_rc.
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

/* An AES key, expanded once. Caller-allocated; scp_aes_clear() wipes it.
 * On the AES-NI path it holds the encryption round keys (the decryption
 * ones are derived from them, in registers, by each call that decrypts);
 * on the OpenSSL path, the EVP contexts. */
typedef struct scp_aes {
    union {
        /* AES-NI encryption schedule (fast): only the first nr + 1 round
         * keys are written (and wiped) */
        _Alignas(16) uint8_t rk[15 * 16];
        struct {
            void *ecb;  /* EVP_CIPHER_CTX *: AES-ECB encrypt, single blocks */
            void *cbce; /* EVP_CIPHER_CTX *: AES-CBC encrypt, bulk and CBC-MAC */
            void *cbcd; /* EVP_CIPHER_CTX *: AES-CBC decrypt (dec only) */
        } evp;          /* (not fast) */
    } u;
    /* CMAC: L = AES(key, 0); the subkeys K1, K2 are doubled from it per use */
    uint8_t l[SCP_AES_BLOCK];
    uint8_t key_len;
    uint8_t fast; /* AES-NI round keys (u.rk) are in use; otherwise u.evp */
    uint8_t nr;
    uint8_t dec; /* decryption allowed (scp_aes_init_dec) */
    uint8_t mac; /* l is set: every key but an SCP03 S-ENC (which never
                    MACs); CMAC with a key without it is refused */
} scp_aes;

/* A key kept small, expanded per use (the SCP03 session's S-ENC and
 * S-RMAC): the raw key bytes on the AES-NI path, which every call expands
 * into an scp_aes on its stack and wipes; the EVP contexts (made once) on
 * the OpenSSL path. */
typedef struct scp_aes_raw {
    union {
        uint8_t key[SCP_AES_MAX_KEY]; /* (not ossl) */
        struct {
            void *ecb, *cbce, *cbcd;
        } evp; /* (ossl): owned by this key */
    } u;
    uint8_t l[SCP_AES_BLOCK]; /* CMAC L (mac only) */
    uint8_t key_len;
    uint8_t ossl; /* u.evp holds OpenSSL contexts */
    uint8_t dec;
    uint8_t mac;
} scp_aes_raw;

/* Encryption, CBC-MAC and CMAC only: most keys never decrypt, and the
 * decryption schedule costs as much as the encryption one. `a` may hold
 * anything before; on any result scp_aes_clear(a) is safe. A key that is
 * in use must be cleared first: init writes only what the new key needs
 * and does not wipe (or free the contexts of) what was there. */
SCP_MUST_CHECK int scp_aes_init(scp_aes *a, const uint8_t *key, size_t key_len);
/* As scp_aes_init, and CBC decryption too. */
SCP_MUST_CHECK int scp_aes_init_dec(scp_aes *a, const uint8_t *key, size_t key_len);
/* Either, on ctx's backend (NULL: the default); dec as above.
 * SCP_E_UNSUPPORTED: ctx asks for AES-NI and the CPU has none. */
SCP_MUST_CHECK int scp_aes_init_ctx(scp_aes *a, const scp_ctx *ctx, const uint8_t *key,
                                    size_t key_len, int dec);
void scp_aes_clear(scp_aes *a);
void scp_aes_block(const scp_aes *a, const uint8_t in[16], uint8_t out[16]);
/* len must be a multiple of 16; in and out may be the same buffer. */
SCP_MUST_CHECK int scp_aes_cbc_encrypt(const scp_aes *a, const uint8_t iv[16],
                                       const uint8_t *in, size_t len, uint8_t *out);
/* SCP_E_STATE (and nothing written) unless the key came from
 * scp_aes_init_dec. */
SCP_MUST_CHECK int scp_aes_cbc_decrypt(const scp_aes *a, const uint8_t iv[16],
                                       const uint8_t *in, size_t len, uint8_t *out);

/* Streaming AES-CMAC (RFC 4493) over a kept key. */
typedef struct scp_cmac {
    const scp_aes *key;
    uint8_t x[SCP_AES_BLOCK];   /* running CBC-MAC state */
    uint8_t buf[SCP_AES_BLOCK]; /* pending bytes (a full last block is kept) */
    size_t n;
} scp_cmac;

void scp_cmac_init(scp_cmac *c, const scp_aes *key);
SCP_MUST_CHECK int scp_cmac_update(scp_cmac *c, const uint8_t *p, size_t len);
SCP_MUST_CHECK int scp_cmac_final(scp_cmac *c, uint8_t mac[16]);
/* One-shot CMAC over a kept key. The CMAC calls return SCP_E_STATE for a
 * key without subkeys (mac == 0). */
SCP_MUST_CHECK int scp_cmac_once(const scp_aes *key, const uint8_t *p, size_t len,
                                 uint8_t mac[16]);

/* NIST SP800-108 counter-mode KDF with PRF = AES-CMAC and an 8-bit counter
 * placed between `before` and `after`: block i = CMAC(before | i | after),
 * i from 1. out_len bytes of output. */
SCP_MUST_CHECK int scp_kbkdf_cmac(const scp_aes *key, const uint8_t *before, size_t before_len,
                                  const uint8_t *after, size_t after_len, uint8_t *out,
                                  size_t out_len);

/* GPC Amd D 4.1.5: the SCP03 data derivation: input
 * 11 x 00 | constant | 00 | L (bits, 2 bytes) | i | context. */
SCP_MUST_CHECK int scp_kdf_gp(const scp_aes *key, uint8_t constant, const uint8_t *context,
                              size_t context_len, uint8_t *out, size_t out_len);

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
