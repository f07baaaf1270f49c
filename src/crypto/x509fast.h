/* scpkit internal: the X.509 fast path (src/crypto/x509fast.c) and the
 * calendar helper it shares with src/crypto/cert.c. */
#ifndef SCPKIT_CRYPTO_X509FAST_H
#define SCPKIT_CRYPTO_X509FAST_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/types.h>
#include "scpkit/cert.h"

/* Parse an X.509 certificate with an EC subject key (P-256, P-384,
 * brainpoolP256r1) signed with ecdsa-with-SHA256 into c (c->ec, tbs, sig,
 * serial, SKI, AKI, key usage, validity, subject CN); SCP_E_UNSUPPORTED for
 * anything else, and the caller parses it with OpenSSL instead. */
int scp_x509_fast_parse(scp_cert *c, const uint8_t *p, size_t len);
/* The OpenSSL path alone (tests compare the two). */
int scp_cert_parse_openssl(scp_cert *c, const uint8_t *p, size_t len);
/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
int64_t scp_days_from_civil(int64_t y, unsigned m, unsigned d);

/* Fill a new certificate x for issuing (scp_cert_issue, and the keystore's
 * CA, which signs in the token): version 3, serial, subject CN, issuer
 * (iss's subject, or x's own when iss is NULL: self-signed), validity from
 * not_before for days, subj's public key, and the extensions (basic
 * constraints, key usage for a CA or a key-agreement leaf, SKI, and AKI when
 * iss is given). 1 on success, 0 when OpenSSL refused a field. */
int scp_cert_fill_x509(X509 *x, X509 *iss, const scp_ec_key *subj, const char *cn, int ca,
                       int64_t not_before, int days, uint64_t serial);

#endif
