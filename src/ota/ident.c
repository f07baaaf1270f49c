/* The device identity an agent reports in X-Admin-From (issue 14): the
 * card's CIN (GET DATA 45, GPC 11.3) where it has one, else the IC serial
 * number from its CPLC (GET DATA 9F7F, bytes 12..15 of the 42-byte CPLC). */
#include <string.h>

#include "core/guard.h"
#include "ota/ota.h"
#include "scpkit/buf.h"
#include "scpkit/tlv.h"

static const uint8_t select_isd[] = { 0x00, 0xA4, 0x04, 0x00, 0x08, 0xA0, 0x00, 0x00,
                                      0x01, 0x51, 0x00, 0x00, 0x00, 0x00 };

static int get_data(scp_transport *t, uint16_t tag, uint8_t *out, size_t out_size, size_t *n)
{
    uint8_t cmd[5] = { 0x80, 0xCA, (uint8_t)(tag >> 8), (uint8_t)tag, 0x00 };
    GUARD(scp_transmit(t, cmd, sizeof(cmd), out, out_size, n));
    ENSURE(*n >= 2, SCP_E_FORMAT);
    ENSURE(out[*n - 2] == 0x90 && out[*n - 1] == 0x00, SCP_E_SW);
    *n -= 2;
    return SCP_OK;
}

int ota_device_id(scp_transport *t, char *out, size_t out_size)
{
    uint8_t r[300];
    size_t n;
    scp_tlv tlv;

    ENSURE(t && out, SCP_E_ARG);
    GUARD(scp_transmit(t, select_isd, sizeof(select_isd), r, sizeof(r), &n));
    ENSURE(n >= 2 && r[n - 2] == 0x90 && r[n - 1] == 0x00, SCP_E_SW);
    if (get_data(t, 0x0045, r, sizeof(r), &n) == SCP_OK && scp_tlv_find(r, n, 0x45, &tlv) == 1 &&
        tlv.len >= 1 && tlv.len <= 16)
        return scp_hex_encode(tlv.val, tlv.len, out, out_size);
    GUARD(get_data(t, 0x9F7F, r, sizeof(r), &n));
    if (scp_tlv_find(r, n, 0x9F7F, &tlv) == 1) {
        ENSURE(tlv.len >= 42, SCP_E_FORMAT);
        return scp_hex_encode(tlv.val + 12, 4, out, out_size);
    }
    ENSURE(n >= 42, SCP_E_FORMAT);
    return scp_hex_encode(r + 12, 4, out, out_size);
}
