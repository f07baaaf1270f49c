/* scpkit internal: helpers shared by the SCP02 engine's files. */
#ifndef SCPKIT_SCP02_INTERNAL_H
#define SCPKIT_SCP02_INTERNAL_H

#include "core/guard.h"
#include "scpkit/crypto.h"
#include "scpkit/scp02.h"

/* End the session for good with rc (keys wiped); returns rc. */
int scp02_fail(scp02_session *s, int rc);
/* Wipe keys and secrets, keep nothing but the role. */
void scp02_wipe(scp02_session *s);

/* The C-MAC (GPC 2.2.1 E.4.4): ISO 9797-1 MAC algorithm 3 with S-MAC over
 * hdr (5 bytes) | data, M2 padding, ICV = the previous C-MAC (encrypted
 * with single DES under S-MAC's first half when i says so), zero for
 * EXTERNAL AUTHENTICATE. Updates s->chain.u.scp02.cmac. */
void scp02_cmac(scp02_session *s, int first, const uint8_t hdr[5], const uint8_t *data,
                size_t len, uint8_t mac[8]);

#endif
