/* scpkit internal: error-propagation macros, so a function reads as a list
 * of checked steps (after s2n-tls's GUARD/ENSURE). */
#ifndef SCPKIT_GUARD_H
#define SCPKIT_GUARD_H

#include "scpkit/rc.h"

#define GUARD(x)                                                                                   \
    do {                                                                                           \
        int guard_rc_ = (x);                                                                       \
        if (guard_rc_ < 0)                                                                         \
            return guard_rc_;                                                                      \
    } while (0)

#define ENSURE(cond, err)                                                                          \
    do {                                                                                           \
        if (!(cond))                                                                               \
            return (err);                                                                          \
    } while (0)

/* Jump to the function's single cleanup label with rc set. */
#define GUARD_GOTO(x, label)                                                                       \
    do {                                                                                           \
        rc = (x);                                                                                  \
        if (rc < 0)                                                                                \
            goto label;                                                                            \
    } while (0)

#endif
