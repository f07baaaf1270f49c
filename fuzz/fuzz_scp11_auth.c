/* Fuzz target: the SCP11 key-agreement parsers (src/scp11/handshake.c).
 * Input byte 0 picks the side:
 *  - even: the rest is a MUTUAL / INTERNAL AUTHENTICATE C-APDU for the
 *    card: scp11_auth_parse, then scp11_card_authenticate with a fixed
 *    P-256 SD key pair (and OCE key for 11a/c);
 *  - odd: the rest is the card's answer (5F49 .. 86 ..) to a host that
 *    sent its command: scp11_host_auth_response.
 * Invariants: no crash, no leak; a refused answer leaves the session dead;
 * an accepted card answer is exactly 5F49 41 <65> 86 10 <16>. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scpkit/scp11.h"

static const uint8_t d_sd[32] = { 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xAA, 0xBB,
                                  0xCC, 0xDD, 0xEE, 0xF0, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
                                  0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x10, 0x11 };
static const uint8_t d_oce[1] = { 0x04 };
static const uint8_t d_esk[1] = { 0x01 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static scp_ec_key sk_sd, sk_oce, pk_sd, pk_oce, esk;
    static int ready;
    static uint8_t out[600];
    scp11_session s = { 0 };
    size_t n;

    if (!ready) {
        if (scp_ec_from_private(&sk_sd, SCP_EC_P256, d_sd, sizeof(d_sd)) != SCP_OK ||
            scp_ec_from_private(&sk_oce, SCP_EC_P256, d_oce, 1) != SCP_OK ||
            scp_ec_from_private(&esk, SCP_EC_P256, d_esk, 1) != SCP_OK ||
            scp_ec_dup(&pk_sd, &sk_sd, 0) != SCP_OK || scp_ec_dup(&pk_oce, &sk_oce, 0) != SCP_OK)
            abort();
        ready = 1;
    }
    if (size < 1)
        return 0;
    if ((data[0] & 1) == 0) {
        scp11_auth_cmd cmd;
        scp11_card_keys k = { &sk_sd, &pk_oce, NULL, (uint8_t)(data[0] & 2 ? 16 : 8), 0 };
        if (scp11_auth_parse(data + 1, size - 1, &cmd) != SCP_OK)
            return 0;
        if (scp11_card_authenticate(&s, &k, &cmd, out, sizeof(out), &n) == SCP_OK) {
            if (n != 3 + 65 + 2 + 16 || out[0] != 0x5F || out[68] != 0x86 || !scp11_is_open(&s))
                abort();
        } else if (s.state != SCP11_DEAD) {
            abort();
        }
    } else {
        int v = (data[0] >> 1) % 3 + 1;
        scp11_params p = { (uint8_t)v, scp11_default_kid(v), 1, 16, 8, 0 };
        if (scp11_host_begin(&s, &p, &pk_sd, &sk_oce, &esk) != SCP_OK ||
            scp11_host_auth_command(&s, 0x80, out, sizeof(out), &n) != SCP_OK)
            abort();
        if (scp11_host_auth_response(&s, data + 1, size - 1) != SCP_OK && s.state != SCP11_DEAD)
            abort();
    }
    scp11_end(&s);
    return 0;
}
