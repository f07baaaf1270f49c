/* scpkit: ISO/IEC 7816-4 command and response APDUs (cases 1-4, short and
 * extended). Parsed APDUs borrow their data from the caller's buffer. */
#ifndef SCPKIT_APDU_H
#define SCPKIT_APDU_H

#include <stddef.h>
#include <stdint.h>
#include "scpkit/rc.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SCP_APDU_SHORT_MAX 261     /* 4 + 1 + 255 + 1 */
#define SCP_APDU_MAX (4 + 3 + 65535 + 2)
#define SCP_RAPDU_MAX (65536 + 2)

typedef struct scp_apdu {
    uint8_t cla, ins, p1, p2;
    const uint8_t *data; /* Lc bytes, borrowed; NULL when lc == 0 */
    size_t lc;           /* 0..65535 */
    size_t le;           /* expected length, 1..65536, when has_le */
    uint8_t has_le;
    uint8_t extended;    /* parsed as / to be encoded as extended length */
} scp_apdu;

typedef struct scp_rapdu {
    const uint8_t *data; /* borrowed */
    size_t len;
    uint16_t sw;
} scp_rapdu;

/* Parse one C-APDU occupying exactly len bytes. Errors: SCP_E_TRUNCATED
 * (shorter than its lengths say), SCP_E_LENGTH (longer, or Lc = 0 in short
 * form), SCP_E_FORMAT (bad extended encoding). */
SCP_MUST_CHECK int scp_apdu_parse(const uint8_t *buf, size_t len, scp_apdu *out);
/* Encode; extended form when a->extended, lc > 255 or le > 256. */
SCP_MUST_CHECK int scp_apdu_encode(const scp_apdu *a, uint8_t *out, size_t out_size,
                                   size_t *out_len);
/* Split an R-APDU of exactly len bytes into data and SW1 SW2 (out->data
 * borrows buf). SCP_E_TRUNCATED under 2 bytes, SCP_E_LENGTH over
 * SCP_RAPDU_MAX, SCP_E_ARG for NULL pointers; *out untouched on error. */
SCP_MUST_CHECK int scp_rapdu_parse(const uint8_t *buf, size_t len, scp_rapdu *out);

/* 9000, 62xx and 63xx: the card processed the command (GPC Amd D 6.2.5:
 * only these responses carry an R-MAC). */
static inline int scp_sw_is_success_class(uint16_t sw)
{
    return sw == 0x9000 || (sw >> 8) == 0x62 || (sw >> 8) == 0x63;
}

/* A short English explanation of a status word, e.g. 6982 "security status
 * not satisfied"; writes into buf, returns buf. */
const char *scp_sw_explain(uint16_t sw, char *buf, size_t buf_size);

#ifdef __cplusplus
}
#endif
#endif
