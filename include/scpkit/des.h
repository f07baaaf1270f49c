/* scpkit: constant-time DES / 3DES and the MACs built on it
 * (src/crypto/des_ct.c, src/crypto/des_mac.c).
 *
 * OpenSSL's DES indexes its S-box tables with secret bits, so the time
 * of every block depends on the cache state the key and data leave
 * behind. Here every S-box look-up reads the whole table and keeps the
 * wanted entry with a mask (no secret-dependent address, no
 * secret-dependent branch); the permutations are shifts and masks at
 * public positions. Used for every SCP02 and ISO secure-messaging session
 * computation. */
#ifndef SCPKIT_DES_H
#define SCPKIT_DES_H

#include <stddef.h>
#include <stdint.h>
#include "scpkit/rc.h"

#define SCP_DES_BLOCK 8

/* A DES, two-key or three-key 3DES key, expanded once (three key
 * schedules). Caller-allocated and opaque: what it holds is private to the
 * library (src/crypto/des_ct.h), not part of the API or the ABI beyond its
 * size and alignment, and changes between releases; never read or write
 * it. */
typedef struct scp_des3 {
    _Alignas(4) unsigned char opaque_[1540];
} scp_des3;

/* Expand a DES key: key_len 8 (single DES), 16 (two-key 3DES) or 24
 * (three-key). SCP_E_ARG for any other length or NULL (d untouched).
 * scp_des3_clear wipes it. */
SCP_MUST_CHECK int scp_des3_init(scp_des3 *d, const uint8_t *key, size_t key_len);
/* Wipe d's key schedules. */
void scp_des3_clear(scp_des3 *d);

/* Single DES under the first key of d (K1; the whole key for single
 * DES): encrypt, or decrypt when decrypt is not 0. in and out may be the
 * same. (SCP02's ICV encryption, GPC 2.2 E.4.4.) */
void scp_des1_block(const scp_des3 *d, int decrypt, const uint8_t in[8], uint8_t out[8]);
/* 3DES EDE (encrypt) and its inverse. */
/* 3DES EDE of one 8-byte block (in and out may be the same). */
void scp_des3_encrypt(const scp_des3 *d, const uint8_t in[8], uint8_t out[8]);
/* The inverse of scp_des3_encrypt (in and out may be the same). */
void scp_des3_decrypt(const scp_des3 *d, const uint8_t in[8], uint8_t out[8]);

/* ECB / CBC over whole blocks (len % 8 == 0); in and out may be equal. */
SCP_MUST_CHECK int scp_des3_ecb(const scp_des3 *d, int decrypt, const uint8_t *in, size_t len,
                                uint8_t *out);
/* 3DES-CBC encryption of whole blocks from iv; in and out may be equal.
 * SCP_E_ARG (nothing written) when len is not a multiple of 8. */
SCP_MUST_CHECK int scp_des3_cbc_encrypt(const scp_des3 *d, const uint8_t iv[8],
                                        const uint8_t *in, size_t len, uint8_t *out);
/* 3DES-CBC decryption of whole blocks from iv; in and out may be equal.
 * SCP_E_ARG (nothing written) when len is not a multiple of 8. */
SCP_MUST_CHECK int scp_des3_cbc_decrypt(const scp_des3 *d, const uint8_t iv[8],
                                        const uint8_t *in, size_t len, uint8_t *out);

/* ISO/IEC 9797-1 padding method 2: 80 then zeros up to a multiple of
 * `block`, always at least one byte. Writes into out (out_size bytes).
 * The length written is returned in *out_len. */
SCP_MUST_CHECK int scp_pad_m2(const uint8_t *in, size_t len, size_t block, uint8_t *out,
                              size_t out_size, size_t *out_len);
/* The length of p without its M2 padding, checked in constant time over
 * the last block; SCP_E_PADDING when it is not well formed. */
SCP_MUST_CHECK int scp_unpad_m2(const uint8_t *p, size_t len, size_t block, size_t *plain_len);

/* ISO/IEC 9797-1 MAC algorithm 3 ("retail MAC"): single-DES CBC with K1
 * from chaining value icv over all blocks, then the last block is
 * decrypted with K2 and encrypted with K1. p is already padded (len a
 * non-zero multiple of 8). */
SCP_MUST_CHECK int scp_des_retail_mac(const scp_des3 *d, const uint8_t icv[8], const uint8_t *p,
                                      size_t len, uint8_t mac[8]);
/* ISO/IEC 9797-1 MAC algorithm 1 with 3DES as the block cipher (full
 * 3DES CBC-MAC): the SCP02 cryptograms. p already padded. */
SCP_MUST_CHECK int scp_des3_cbc_mac(const scp_des3 *d, const uint8_t icv[8], const uint8_t *p,
                                    size_t len, uint8_t mac[8]);

/* Streaming form of both MACs, M2 padding applied by the final call:
 * full3 = 0 for MAC algorithm 3 (retail), 1 for algorithm 1 with 3DES. */
typedef struct scp_des_mac {
    _Alignas(8) unsigned char opaque_[32]; /* private to the library, as scp_des3 */
} scp_des_mac;

/* Start a CBC-MAC under key from icv: full3 0 chains single DES under the
 * first key (ISO 9797-1 MAC algorithm 3, the retail MAC of SCP02 and ICAO,
 * whose final transformation scp_des_mac_final applies), 1 chains full
 * 3DES on every block. Cannot fail. */
void scp_des_mac_init(scp_des_mac *m, const scp_des3 *key, int full3, const uint8_t icv[8]);
/* Absorb len bytes (any length; the context keeps a partial block). */
void scp_des_mac_update(scp_des_mac *m, const uint8_t *p, size_t len);
/* A running MAC keeps a pointer to its key: after the key moved (a
 * structure holding both was copied), point m at the key's new place.
 * The key must be the same bytes. */
void scp_des_mac_rekey(scp_des_mac *m, const scp_des3 *key);
/* Pads (M2), finishes, writes the 8-byte MAC and wipes the context. */
void scp_des_mac_final(scp_des_mac *m, uint8_t mac[8]);

#endif
