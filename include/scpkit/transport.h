/* scpkit: transports move raw APDUs to a card: a PC/SC reader
 * (pcsc-lite), the in-process virtual card, or anything a caller plugs in.
 * The secure channel (channel.h) sits on top of any transport. */
#ifndef SCPKIT_TRANSPORT_H
#define SCPKIT_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include "scpkit/rc.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct scp_transport {
    /* Send one C-APDU, receive one R-APDU (data | SW1 SW2). Returns scp_rc. */
    int (*transmit)(void *ctx, const uint8_t *capdu, size_t len, uint8_t *rapdu,
                    size_t rapdu_size, size_t *rapdu_len);
    /* Reset/close; may be NULL. */
    void (*close)(void *ctx);
    void *ctx;
    const char *name; /* for messages: reader name or card directory */
    /* Optional trace hook: called by scp_transmit for every APDU on the
     * wire (dir 0 = C-APDU, 1 = R-APDU) and by the channel for the plain
     * command and response inside it (dir 2 = plain C-APDU, 3 = plain
     * R-APDU). The hook must redact key material itself (PUT KEY data:
     * INS D8), since it sees every command. */
    void (*trace)(void *trace_ctx, int dir, const uint8_t *p, size_t len);
    void *trace_ctx;
} scp_transport;

/* Transmit with the ISO 7816 T=0 conventions handled: 61xx fetches the rest
 * with GET RESPONSE (concatenated), 6Cxx re-issues with the Le the card
 * gave. Bounded: at most 64 GET RESPONSEs. */
SCP_MUST_CHECK int scp_transmit(scp_transport *t, const uint8_t *capdu, size_t len,
                                uint8_t *rapdu, size_t rapdu_size, size_t *rapdu_len);

/* ---- PC/SC (pcsc-lite) ---- */
typedef struct scp_pcsc_reader {
    char name[256];
    int card_present;
} scp_pcsc_reader;
/* List readers; *n set to how many were written (max `max`). */
SCP_MUST_CHECK int scp_pcsc_list(scp_pcsc_reader *out, size_t max, size_t *n);
/* Connect to a reader by exact name, by index ("0", "1") or by a unique
 * substring. The transport owns the connection until t->close. */
SCP_MUST_CHECK int scp_pcsc_open(const char *reader, scp_transport *t);
/* Why the last scp_pcsc_* call failed, in words ("no reader", "no card in
 * reader \"X\"", "reader name ambiguous: ..."); never NULL. */
const char *scp_pcsc_last_error(void);

#ifdef __cplusplus
}
#endif
#endif
