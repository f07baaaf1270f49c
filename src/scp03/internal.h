#ifndef SCPKIT_SCP03_INTERNAL_H
#define SCPKIT_SCP03_INTERNAL_H

#include "scpkit/scp03.h"
#include "core/guard.h"

#define SCP03_ROLE_HOST 0
#define SCP03_ROLE_CARD 1

/* The session keys and both cryptograms in one batch (src/scp03/keys.c;
 * the parameters are described at scp03_hs_keys in crypto/internal.h). */
struct scp03_hs_keys;
SCP_MUST_CHECK int scp_scp03_keys(const struct scp03_hs_keys *h);

/* End the session for good with rc (keys wiped, state DEAD); returns rc. */
int scp03_fail(scp03_session *s, int rc);

#endif
