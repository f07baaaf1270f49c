#include "scpkit/rc.h"

const char *scp_strerror(int rc)
{
    switch (rc) {
    case SCP_OK: return "success";
    case SCP_E_ARG: return "invalid argument";
    case SCP_E_BUFFER_TOO_SMALL: return "output buffer too small";
    case SCP_E_TRUNCATED: return "input truncated";
    case SCP_E_FORMAT: return "malformed encoding";
    case SCP_E_LENGTH: return "length field disagrees with data";
    case SCP_E_CRYPTO: return "crypto backend failure";
    case SCP_E_MAC: return "MAC verification failed (session ended)";
    case SCP_E_CRYPTOGRAM: return "cryptogram verification failed (session ended)";
    case SCP_E_PADDING: return "bad padding (session ended)";
    case SCP_E_STATE: return "call not valid in this session state";
    case SCP_E_DEAD: return "session ended by an earlier failure";
    case SCP_E_UNSUPPORTED: return "not supported";
    case SCP_E_LEVEL: return "security level refused";
    case SCP_E_KCV: return "key check value mismatch";
    case SCP_E_COUNTER: return "counter exhausted or out of order";
    case SCP_E_SW: return "card returned an error status word";
    case SCP_E_IO: return "I/O failure";
    case SCP_E_NOT_FOUND: return "not found";
    case SCP_E_CORRUPT: return "stored state is corrupt";
    case SCP_E_PERM: return "permission refused";
    case SCP_E_NOMEM: return "out of memory";
    case SCP_E_TIMEOUT: return "timed out";
    case SCP_E_AUTH: return "authentication refused";
    default: return "unknown error";
    }
}
