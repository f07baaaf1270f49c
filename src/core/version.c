/* scp_version() (declared in scpkit/scpkit.h, the umbrella header, which
 * core may not include: the include graph points down): the version this
 * library was built as, CMake's project(VERSION), as SCP_LIB_VERSION. */
const char *scp_version(void);

const char *scp_version(void) { return SCP_LIB_VERSION; }
