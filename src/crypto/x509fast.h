/* scpkit internal: the X.509 fast path (src/crypto/x509fast.c) and the
 * calendar helper it shares with src/crypto/cert.c. */
#ifndef SCPKIT_CRYPTO_X509FAST_H
#define SCPKIT_CRYPTO_X509FAST_H

#include <stddef.h>
#include <stdint.h>
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

#endif
