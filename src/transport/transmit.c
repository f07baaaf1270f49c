/* ISO/IEC 7816-4 5.3 / 7816-3 T=0 conventions on top of any transport:
 * 61xx means "more data: fetch it with GET RESPONSE", 6Cxx means "wrong
 * Le: re-issue with Le = xx". Secure-messaging layers call this BEFORE
 * unwrapping, because the R-MAC covers the whole, reassembled response. */
#include <string.h>

#include "scpkit/apdu.h"
#include "scpkit/transport.h"
#include "core/guard.h"

#define SCP_GET_RESPONSE_MAX 64

static int raw(scp_transport *t, const uint8_t *c, size_t cl, uint8_t *r, size_t rs, size_t *rl)
{
    int rc;
    if (t->trace)
        t->trace(t->trace_ctx, 0, c, cl);
    rc = t->transmit(t->ctx, c, cl, r, rs, rl);
    if (rc == SCP_OK && *rl < 2)
        rc = SCP_E_IO; /* every R-APDU carries SW1 SW2 */
    if (rc == SCP_OK && t->trace)
        t->trace(t->trace_ctx, 1, r, *rl);
    return rc;
}

/* 6Cxx: the same command again with the Le the card asked for. */
static int reissue_with_le(scp_transport *t, const uint8_t *capdu, size_t len, uint8_t le,
                           uint8_t *rapdu, size_t rapdu_size, size_t *rapdu_len)
{
    uint8_t buf[SCP_APDU_SHORT_MAX + 8];
    size_t bl;
    scp_apdu a;
    GUARD(scp_apdu_parse(capdu, len, &a));
    ENSURE(!a.extended && a.lc <= 255, SCP_E_FORMAT);
    a.has_le = 1;
    a.le = le ? le : 256;
    GUARD(scp_apdu_encode(&a, buf, sizeof(buf), &bl));
    return raw(t, buf, bl, rapdu, rapdu_size, rapdu_len);
}

int scp_transmit(scp_transport *t, const uint8_t *capdu, size_t len, uint8_t *rapdu,
                 size_t rapdu_size, size_t *rapdu_len)
{
    uint8_t gr[5] = { 0x00, 0xC0, 0x00, 0x00, 0x00 };
    size_t have, rl;
    uint16_t sw;

    ENSURE(t && t->transmit && capdu && len >= 4 && rapdu && rapdu_len, SCP_E_ARG);
    ENSURE(rapdu_size >= 2, SCP_E_BUFFER_TOO_SMALL);
    GUARD(raw(t, capdu, len, rapdu, rapdu_size, &rl));
    sw = (uint16_t)(rapdu[rl - 2] << 8 | rapdu[rl - 1]);
    if ((sw >> 8) == 0x6C) {
        GUARD(reissue_with_le(t, capdu, len, (uint8_t)sw, rapdu, rapdu_size, &rl));
        sw = (uint16_t)(rapdu[rl - 2] << 8 | rapdu[rl - 1]);
    }
    have = rl - 2;
    gr[0] = capdu[0] & 0x03; /* GET RESPONSE on the command's logical channel */
    for (int n = 0; (sw >> 8) == 0x61; n++) {
        ENSURE(n < SCP_GET_RESPONSE_MAX, SCP_E_LENGTH);
        gr[4] = (uint8_t)sw;
        /* the next part lands right after the data so far, over the old SW */
        ENSURE(rapdu_size - have >= 2, SCP_E_BUFFER_TOO_SMALL);
        GUARD(raw(t, gr, sizeof(gr), rapdu + have, rapdu_size - have, &rl));
        sw = (uint16_t)(rapdu[have + rl - 2] << 8 | rapdu[have + rl - 1]);
        have += rl - 2;
    }
    rapdu[have] = (uint8_t)(sw >> 8);
    rapdu[have + 1] = (uint8_t)sw;
    *rapdu_len = have + 2;
    return SCP_OK;
}
