/* scpkit internal: AES, CMAC and the SP800-108 KDF over kept keys (the
 * crypto layer's primitives). Not public: the key types hold OpenSSL
 * contexts or AES-NI round keys, which are no business of the API. The
 * public session structures hold them in opaque slots (scp_aes_slot,
 * scp_aes_raw_slot in <scpkit/crypto.h>); SCP_AES_OF / SCP_RAW_OF below
 * give the key in a slot. Both types are may_alias: a slot is bytes. */
#ifndef SCPKIT_CRYPTO_AES_H
#define SCPKIT_CRYPTO_AES_H

#include <stddef.h>
#include <stdint.h>
#include "scpkit/crypto.h"

/* An AES key, expanded once. Caller-allocated; scp_aes_clear() wipes it.
 * On the AES-NI path it holds the encryption round keys (the decryption
 * ones are derived from them, in registers, by each call that decrypts);
 * on the OpenSSL path, the EVP contexts. */
typedef struct __attribute__((may_alias)) scp_aes {
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
typedef struct __attribute__((may_alias)) scp_aes_raw {
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

/* The key in a session's slot (const kept). */
#define SCP_AES_OF(slot)                                                                   \
    _Generic((slot), scp_aes_slot *: (scp_aes *)(void *)(slot)->opaque_,                  \
             const scp_aes_slot *: (const scp_aes *)(const void *)(slot)->opaque_)
#define SCP_RAW_OF(slot)                                                                   \
    _Generic((slot), scp_aes_raw_slot *: (scp_aes_raw *)(void *)(slot)->opaque_,          \
             const scp_aes_raw_slot *: (const scp_aes_raw *)(const void *)(slot)->opaque_)

_Static_assert(sizeof(scp_aes) <= sizeof(scp_aes_slot) &&
                   _Alignof(scp_aes) <= _Alignof(scp_aes_slot),
               "scp_aes_slot holds an scp_aes");
_Static_assert(sizeof(scp_aes_raw) <= sizeof(scp_aes_raw_slot) &&
                   _Alignof(scp_aes_raw) <= _Alignof(scp_aes_raw_slot),
               "scp_aes_raw_slot holds an scp_aes_raw");

#endif
