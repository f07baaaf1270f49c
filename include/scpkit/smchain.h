/* scpkit: a secure-messaging session's chaining state, one shape for
 * every protocol on the secure-messaging core (src/sm; ARCHITECTURE.md
 * "The secure-messaging core"): the SCP03, SCP02 and ISO 7816-4 sessions
 * each hold one, and the core reads its encryption ICV from it
 * (scp_sm_enc_icv). Which fields a protocol uses:
 *
 *   SCP03   icv: the MAC chaining value (the last full 16-byte C-MAC; the
 *           R-MAC chains on it too); counter: the C-DECRYPTION /
 *           R-ENCRYPTION counter of the last command (GPC Amd D 6.2.6).
 *   SCP02   scp02.cmac: the last C-MAC (before ICV encryption), zero
 *           before EXTERNAL AUTHENTICATE; scp02.rmac: the R-MAC chaining
 *           value (the EA C-MAC, then each R-MAC) (GPC 2.2.1 E.4.4-E.4.5).
 *   ISO SM  icv: the send sequence counter (8 bytes for 3DES, 16 for AES),
 *           incremented before every command and response (ICAO 9303-11
 *           9.8.6). */
#ifndef SCPKIT_SMCHAIN_H
#define SCPKIT_SMCHAIN_H

#include <stdint.h>

typedef struct scp_sm_chain {
    union {
        uint8_t icv[16];
        struct {
            uint8_t cmac[8];
            uint8_t rmac[8];
        } scp02;
    } u;
    uint32_t counter;
} scp_sm_chain;

#endif
