/* scpkit: the certificates SCP11 uses (GPC v2.3 Amendment F 6.x): X.509
 * (DER) and GlobalPlatform 7F21 certificates, certificate stores as cards
 * return them (BF21-wrapped or simply concatenated), and chain
 * verification against trust anchors the operator names, with key usage
 * and validity checked and an error that names the certificate that
 * failed and why. */
#ifndef SCPKIT_CERT_H
#define SCPKIT_CERT_H

#include <stddef.h>
#include <stdint.h>
#include "scpkit/ec.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SCP_CERT_X509 1
#define SCP_CERT_GP 2
#define SCP_CERT_MAX_ID 32   /* serial, SKI, CA identifier */
#define SCP_CERT_MAX_CHAIN 8 /* certificates in one chain or store */

/* Key usage, as X.509 KU bits (also used for GP 95: 0080 = key agreement). */
#define SCP_KU_DIGITAL_SIGNATURE 0x0080
#define SCP_KU_KEY_AGREEMENT 0x0008
#define SCP_KU_KEY_CERT_SIGN 0x0004

typedef struct scp_cert {
    uint8_t kind; /* SCP_CERT_X509 or SCP_CERT_GP */
    const uint8_t *der; /* borrowed: the whole certificate */
    size_t der_len;
    void *x509;  /* X509 * (X.509 only) */
    void *pkey;  /* EVP_PKEY * of the subject: EC, or RSA for X.509 CAs */
    scp_ec_key ec; /* the subject key when EC on a supported curve */
    uint8_t serial[SCP_CERT_MAX_ID], serial_len;
    uint8_t ski[SCP_CERT_MAX_ID], ski_len; /* subject key identifier / GP 5F20 */
    uint8_t aki[SCP_CERT_MAX_ID], aki_len; /* authority key id / GP 42 */
    uint32_t key_usage;                     /* SCP_KU_* bits */
    uint8_t has_key_usage;
    int64_t not_before, not_after; /* Unix seconds; 0 when absent */
    const uint8_t *tbs;            /* GP: the signed bytes (data objects before 5F37) */
    size_t tbs_len;
    const uint8_t *sig; /* GP: 5F37 value (DER ECDSA) */
    size_t sig_len;
    char name[96]; /* subject CN (X.509) or "GP serial ..." for messages */
} scp_cert;

/* Parse one certificate (30 .. X.509 or 7F21 GP); p must stay alive. */
SCP_MUST_CHECK int scp_cert_parse(scp_cert *c, const uint8_t *p, size_t len);
/* Free what scp_cert_parse made and zero c (NULL: no-op). */
void scp_cert_free(scp_cert *c);

/* Split a certificate store into its certificates: BF21 L <certs> or the
 * certificates simply concatenated (YubiKey 5.7), X.509 and GP alike.
 * off/len receive each certificate's place in p; n its count. */
SCP_MUST_CHECK int scp_cert_split(const uint8_t *p, size_t len, size_t *off, size_t *lens,
                                  size_t max, size_t *n);

/* Trust anchors: public keys the first certificate of a chain may be
 * signed by (from certificates or public keys, PEM or DER). */
#define SCP_TRUST_MAX 8
typedef struct scp_trust {
    void *pkey[SCP_TRUST_MAX]; /* EVP_PKEY * */
    size_t n;
} scp_trust;

/* Add every certificate or public key in a PEM file (or one DER). */
SCP_MUST_CHECK int scp_trust_load_file(scp_trust *t, const char *path);
/* Add the public keys of PEM certificates or public keys (or one DER
 * certificate or SubjectPublicKeyInfo) in p..p+len to t. SCP_E_ARG for an
 * empty or over 1 MiB input, SCP_E_FORMAT when nothing in it parses,
 * SCP_E_NOMEM; keys added before an error stay in t. */
SCP_MUST_CHECK int scp_trust_add_bytes(scp_trust *t, const uint8_t *p, size_t len);
/* Add k's public key to t (t takes its own reference). SCP_E_ARG for an
 * empty key, SCP_E_NOMEM or SCP_E_CRYPTO with t unchanged. */
SCP_MUST_CHECK int scp_trust_add_ec(scp_trust *t, const scp_ec_key *k);
/* Free every key in t and zero it (NULL: no-op). */
void scp_trust_free(scp_trust *t);

/* Why a chain failed: which certificate (1-based, 0 for the chain as a
 * whole) and a sentence for the operator. */
typedef struct scp_cert_error {
    int index;
    char text[256];
} scp_cert_error;

/* Verify chain[0..n-1], root side first, leaf last: chain[0] signed by one
 * of the anchors, each next by the one before; every certificate valid at
 * `now` (Unix seconds); the leaf's key usage (when stated) includes
 * leaf_usage; X.509 CA certificates (all but the leaf) allow certificate
 * signing when they state a key usage. SCP_OK, or SCP_E_AUTH with err
 * filled. */
SCP_MUST_CHECK int scp_cert_verify_chain(const scp_cert *chain, size_t n, const scp_trust *t,
                                         int64_t now, uint32_t leaf_usage, scp_cert_error *err);

/* Load certificates from a PEM file (several CERTIFICATE blocks) or one
 * DER file into buf as DER, concatenated; off/lens give each one. */
SCP_MUST_CHECK int scp_cert_load_file(const char *path, uint8_t *buf, size_t buf_size,
                                      size_t *off, size_t *lens, size_t max, size_t *n);

/* Issue a small X.509 certificate with ECDSA-SHA256 (lab CAs, the virtual
 * card's SD certificate): subject CN, subject key `subj`, signed by
 * `issuer_key` with issuer CN (self-signed when issuer_cert is NULL and
 * subj == issuer_key). ca != 0: CA with keyCertSign; otherwise a leaf with
 * keyAgreement. Validity from not_before for `days`. DER into out. */
SCP_MUST_CHECK int scp_cert_issue(const scp_ec_key *subj, const char *cn,
                                  const scp_ec_key *issuer_key, const uint8_t *issuer_der,
                                  size_t issuer_len, int ca, int64_t not_before, int days,
                                  uint64_t serial, uint8_t *out, size_t out_size,
                                  size_t *out_len);
/* DER certificate to PEM text (NUL terminated). */
SCP_MUST_CHECK int scp_cert_to_pem(const uint8_t *der, size_t len, char *out, size_t out_size,
                                   size_t *out_len);

#ifdef __cplusplus
}
#endif
#endif
