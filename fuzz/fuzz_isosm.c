/* Fuzz target: the ISO/IEC 7816-4 secure-messaging parsers
 * (src/iso7816/sm.c): scp_sm_unprotect_command (card role) and
 * scp_sm_unprotect_response (host role) on the ICAO 9303 BAC session keys
 * (3DES) or an AES-128 session.
 *
 * Input: one configuration byte (bit 0: AES, bit 1: response parser),
 * then the APDU. An input the parser accepts must decode to something no
 * longer than its input, and the session must stay open; one it refuses
 * must end the session. */
#include <stdlib.h>
#include <string.h>

#include "scpkit/apdu.h"
#include "scpkit/iso7816sm.h"

static const uint8_t ks_enc[16] = { 0x97, 0x9E, 0xC1, 0x3B, 0x1C, 0xBF, 0xE9, 0xDC,
                                    0xD0, 0x1A, 0xB0, 0xFE, 0xD3, 0x07, 0xEA, 0xE5 };
static const uint8_t ks_mac[16] = { 0xF1, 0xCB, 0x1F, 0x1F, 0xB5, 0xAD, 0xF2, 0x08,
                                    0x80, 0x6B, 0x89, 0xDC, 0x57, 0x9D, 0xC1, 0xF8 };
static const uint8_t ssc[16] = { 0x88, 0x70, 0x22, 0x12, 0x0C, 0x06, 0xC2, 0x26 };

static uint8_t out[SCP_APDU_MAX + 64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    scp_sm sm;
    size_t n = 0;
    int aes, resp, rc;
    if (size < 1)
        return 0;
    aes = data[0] & 1;
    resp = (data[0] >> 1) & 1;
    if (scp_sm_init(&sm, aes ? SCP_SM_AES : SCP_SM_3DES, resp ? SCP_SM_HOST : SCP_SM_CARD,
                    ks_enc, ks_mac, 16, ssc, aes ? 16 : 8) != SCP_OK)
        abort();
    if (resp) {
        sm.resp_pending = 1;
        rc = scp_sm_unprotect_response(&sm, data + 1, size - 1, out, sizeof(out), &n);
    } else {
        rc = scp_sm_unprotect_command(&sm, data + 1, size - 1, out, sizeof(out), &n);
    }
    if (rc == SCP_OK && n > size + 8)
        abort();
    if (rc < 0 && rc != SCP_E_BUFFER_TOO_SMALL && scp_sm_is_open(&sm))
        abort();
    scp_sm_end(&sm);
    return 0;
}
