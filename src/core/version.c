/* scp_version(): the version this library was built as (CMake
 * project(VERSION), through the generated scpkit/version.h). */
#include "scpkit/scpkit.h"

const char *scp_version(void) { return SCP_VERSION_STRING; }
