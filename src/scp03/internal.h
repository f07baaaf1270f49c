#ifndef SCPKIT_SCP03_INTERNAL_H
#define SCPKIT_SCP03_INTERNAL_H

#include "scpkit/scp03.h"
#include "core/guard.h"

#define SCP03_ROLE_HOST 0
#define SCP03_ROLE_CARD 1

/* End the session for good with rc (keys wiped, state DEAD); returns rc. */
int scp03_fail(scp03_session *s, int rc);

#endif
