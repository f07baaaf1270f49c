/* Fault injection for the convergence tests (tests/ota/converge.sh):
 * SCPKIT_OTA_FAULT=WHO:N kills process WHO ("server" or "agent") with
 * SIGKILL at its N-th fault point, exactly as a kill -9 from outside would
 * at that moment. Unset (always, outside tests): a counter and nothing else. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ota/ota.h"

void ota_fault_point(const char *who, const char *where)
{
    static unsigned long count;
    const char *f = getenv("SCPKIT_OTA_FAULT");
    size_t wl = strlen(who);
    count++;
    if (!f || strncmp(f, who, wl) != 0 || f[wl] != ':')
        return;
    if (strtoul(f + wl + 1, NULL, 10) == count) {
        fprintf(stderr, "scpkit %s: fault injected at point %lu (%s)\n", who, count, where);
        fflush(NULL);
        raise(SIGKILL);
    }
}
