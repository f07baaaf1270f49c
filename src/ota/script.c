/* Amd B script bodies in the ETSI TS 102 226 expanded remote format
 * (fact sheet §5): AE 80 {22 L C-APDU}... 00 00 (commands) and
 * AF 80 {23 L R-APDU}... 00 00 (responses), or the definite AA / AB forms.
 * All lengths are BER: a raw byte above 7F is never written. */
#include <string.h>

#include "core/guard.h"
#include "ota/ota.h"
#include "scpkit/buf.h"

static void put_len(scp_wr *w, size_t n)
{
    if (n < 0x80) {
        scp_wr_u8(w, (uint8_t)n);
    } else if (n < 0x100) {
        scp_wr_u8(w, 0x81);
        scp_wr_u8(w, (uint8_t)n);
    } else {
        scp_wr_u8(w, 0x82);
        scp_wr_u16(w, (uint16_t)n);
    }
}

int ota_script_encode(uint8_t tag, const ota_slice *apdus, size_t n, uint8_t *out,
                      size_t out_size, size_t *out_len)
{
    scp_wr w;
    ENSURE(out && out_len && (apdus || n == 0), SCP_E_ARG);
    ENSURE(n <= OTA_SCRIPT_MAX_APDUS, SCP_E_ARG);
    scp_wr_init(&w, out, out_size);
    scp_wr_u8(&w, tag);
    scp_wr_u8(&w, 0x80); /* indefinite length */
    for (size_t k = 0; k < n; k++) {
        ENSURE(apdus[k].len <= 0xFFFF, SCP_E_ARG);
        scp_wr_u8(&w, tag == 0xAE ? 0x22 : 0x23);
        put_len(&w, apdus[k].len);
        scp_wr_bytes(&w, apdus[k].p, apdus[k].len);
    }
    scp_wr_u8(&w, 0x00);
    scp_wr_u8(&w, 0x00);
    return scp_wr_done(&w, out_len);
}

/* BER length: 00-7F, 81 xx (80-FF), 82 xx xx. */
static int get_len(scp_rd *r, size_t *n)
{
    uint8_t b, c;
    uint16_t v;
    GUARD(scp_rd_u8(r, &b));
    if (b < 0x80) {
        *n = b;
        return SCP_OK;
    }
    if (b == 0x81) {
        GUARD(scp_rd_u8(r, &c));
        ENSURE(c >= 0x80, SCP_E_FORMAT); /* not the shortest form */
        *n = c;
        return SCP_OK;
    }
    ENSURE(b == 0x82, SCP_E_FORMAT);
    GUARD(scp_rd_u16(r, &v));
    ENSURE(v >= 0x100, SCP_E_FORMAT);
    *n = v;
    return SCP_OK;
}

/* The TLVs inside the outer one, up to its end (definite) or 00 00. */
static int items(scp_rd *r, int indefinite, uint8_t item, ota_slice *out, size_t max, size_t *n,
                 uint8_t *err_tag)
{
    for (;;) {
        uint8_t tag;
        size_t l;
        const uint8_t *v;
        if (!indefinite && scp_rd_left(r) == 0)
            return SCP_OK;
        GUARD(scp_rd_u8(r, &tag));
        if (indefinite && tag == 0x00) {
            uint8_t z;
            GUARD(scp_rd_u8(r, &z));
            ENSURE(z == 0x00, SCP_E_FORMAT);
            return SCP_OK;
        }
        GUARD(get_len(r, &l));
        GUARD(scp_rd_ptr(r, l, &v));
        if (tag == item) {
            ENSURE(*n < max, SCP_E_LENGTH);
            ENSURE(l >= (item == 0x23 ? 2 : 4) && l <= OTA_APDU_MAX, SCP_E_LENGTH);
            out[*n].p = v;
            out[(*n)++].len = l;
        } else if (tag == 0x80) {
            ENSURE(l == 1, SCP_E_LENGTH); /* number of C-APDUs executed: informative */
        } else if (tag == 0x90 || tag == 0x81 || tag == 0x83) {
            if (err_tag && *err_tag == 0)
                *err_tag = tag; /* bad format / immediate action / chaining error */
        } else {
            return SCP_E_FORMAT;
        }
    }
}

int ota_script_decode(const uint8_t *p, size_t len, uint8_t outer_indef, uint8_t outer_def,
                      uint8_t item, ota_slice *out, size_t max, size_t *n, uint8_t *err_tag)
{
    scp_rd r, in;
    uint8_t tag, b;
    size_t l;
    const uint8_t *v;

    ENSURE(p && out && n, SCP_E_ARG);
    *n = 0;
    if (err_tag)
        *err_tag = 0;
    scp_rd_init(&r, p, len);
    GUARD(scp_rd_u8(&r, &tag));
    if (tag == outer_indef) {
        GUARD(scp_rd_u8(&r, &b));
        ENSURE(b == 0x80, SCP_E_FORMAT);
        GUARD(items(&r, 1, item, out, max, n, err_tag));
    } else if (tag == outer_def) {
        GUARD(get_len(&r, &l));
        GUARD(scp_rd_ptr(&r, l, &v));
        scp_rd_init(&in, v, l);
        GUARD(items(&in, 0, item, out, max, n, err_tag));
    } else {
        return SCP_E_FORMAT;
    }
    ENSURE(scp_rd_left(&r) == 0, SCP_E_LENGTH);
    return SCP_OK;
}
