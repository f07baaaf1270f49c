/* scpkit: elliptic-curve primitives for SCP11 (GPC v2.3 Amendment F), on
 * OpenSSL 3 libcrypto: key pairs on NIST P-256 / P-384 and
 * brainpoolP256r1, ECDH (the shared secret is the X coordinate, kept at the
 * field length), ECDSA with SHA-256 (GP certificates), and the ANSI X9.63
 * KDF with SHA-256. Keys are caller-allocated handles; scp_ec_free() ends
 * them (OpenSSL clears private key material when it frees it). */
#ifndef SCPKIT_EC_H
#define SCPKIT_EC_H

#include <stddef.h>
#include <stdint.h>
#include "scpkit/rc.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum scp_ec_curve {
    SCP_EC_NONE = 0,
    SCP_EC_P256 = 1,
    SCP_EC_P384 = 2,
    SCP_EC_BP256 = 3,
} scp_ec_curve;

#define SCP_EC_MAX_FIELD 48
#define SCP_EC_MAX_POINT (1 + 2 * SCP_EC_MAX_FIELD) /* 04 X Y */
#define SCP_ECDSA_MAX_SIG 112                       /* DER, P-384 at most 104 */

typedef struct scp_ec_key {
    void *pkey;    /* EVP_PKEY * */
    uint8_t curve; /* scp_ec_curve */
    uint8_t priv;  /* the private half is present */
} scp_ec_key;

/* Field length in bytes (32, 48), or 0 for an unknown curve. */
size_t scp_ec_field_len(int curve);
/* "P-256", "P-384", "brainpoolP256r1", or "?" */
const char *scp_ec_curve_name(int curve);
/* Accepts P-256/p256/prime256v1/secp256r1, P-384/p384/secp384r1,
 * brainpoolP256r1/bp256; SCP_EC_NONE otherwise. */
int scp_ec_curve_from_name(const char *name);
/* GP key parameter reference (tag F0): 00 P-256, 01 P-384, 03 brainpoolP256r1. */
int scp_ec_curve_from_gp(uint8_t ref);
/* The GP key parameter reference of an SCP_EC_* curve; 0xFF for none. */
uint8_t scp_ec_curve_to_gp(int curve);

/* A new key pair on curve into k (to be freed with scp_ec_free).
 * SCP_E_ARG for an unknown curve, SCP_E_CRYPTO when OpenSSL fails; k holds
 * no key on error. */
SCP_MUST_CHECK int scp_ec_generate(scp_ec_key *k, int curve);
/* Public key from an uncompressed point 04 X Y; the point must be on the
 * curve (SCP_E_FORMAT otherwise, and for compressed or infinity forms). */
SCP_MUST_CHECK int scp_ec_from_point(scp_ec_key *k, int curve, const uint8_t *pt, size_t len);
/* Key pair from the private scalar d (1..field length bytes, big-endian);
 * the public point is computed. */
SCP_MUST_CHECK int scp_ec_from_private(scp_ec_key *k, int curve, const uint8_t *d, size_t len);
/* PKCS#8, SEC 1 ECPrivateKey, or SubjectPublicKeyInfo, DER or PEM. */
SCP_MUST_CHECK int scp_ec_from_bytes(scp_ec_key *k, const uint8_t *p, size_t len);
/* scp_ec_from_bytes on a file's content (at most 16 KiB; the buffer is
 * wiped). SCP_E_NOT_FOUND when it cannot be opened, SCP_E_IO, SCP_E_LENGTH
 * when larger, or scp_ec_from_bytes's errors; k holds no key on error. */
SCP_MUST_CHECK int scp_ec_load_file(scp_ec_key *k, const char *path);
/* Copy: the public half only (priv 0) or the whole key. */
SCP_MUST_CHECK int scp_ec_dup(scp_ec_key *out, const scp_ec_key *in, int with_private);
/* Free k's key (OpenSSL clears private material) and reset k (NULL:
 * no-op). */
void scp_ec_free(scp_ec_key *k);

/* Uncompressed public point 04 X Y. */
SCP_MUST_CHECK int scp_ec_point(const scp_ec_key *k, uint8_t *out, size_t out_size,
                                size_t *out_len);
/* The private scalar, left-padded to the field length (for the card's
 * own key store; the caller wipes it). */
SCP_MUST_CHECK int scp_ec_private(const scp_ec_key *k, uint8_t *out, size_t out_size,
                                  size_t *out_len);
/* PEM (SubjectPublicKeyInfo, or PKCS#8 with with_private) into out, NUL
 * terminated. */
SCP_MUST_CHECK int scp_ec_to_pem(const scp_ec_key *k, int with_private, char *out,
                                 size_t out_size, size_t *out_len);

/* ECDH (BSI TR-03111 ECKA-DH): the X coordinate of d * Q, field-length
 * bytes, leading zeros kept. Both keys on the same curve (SCP_E_ARG). */
SCP_MUST_CHECK int scp_ecdh(const scp_ec_key *priv, const scp_ec_key *pub, uint8_t *out,
                            size_t out_size, size_t *out_len);

/* ECDSA with SHA-256 over msg; sig is DER (30 .. 02 r 02 s). Verify
 * returns SCP_OK or SCP_E_CRYPTOGRAM for a signature that does not verify
 * (SCP_E_FORMAT for one that does not parse). */
SCP_MUST_CHECK int scp_ecdsa_sign(const scp_ec_key *priv, const uint8_t *msg, size_t len,
                                  uint8_t *sig, size_t sig_size, size_t *sig_len);
/* Verify a DER ECDSA-with-SHA-256 signature over msg with pub. SCP_OK when
 * it verifies, SCP_E_CRYPTOGRAM when it does not, SCP_E_FORMAT for a
 * signature that does not parse, SCP_E_ARG / SCP_E_NOMEM. */
SCP_MUST_CHECK int scp_ecdsa_verify(const scp_ec_key *pub, const uint8_t *msg, size_t len,
                                    const uint8_t *sig, size_t sig_len);

/* ANSI X9.63 KDF with SHA-256: block k = SHA-256(z | k (4 bytes, from 1)
 * | shared_info), out_len bytes. */
SCP_MUST_CHECK int scp_x963_kdf_sha256(const uint8_t *z, size_t z_len, const uint8_t *info,
                                       size_t info_len, uint8_t *out, size_t out_len);

#ifdef __cplusplus
}
#endif
#endif
