/* ISO/IEC 7816-4 5.1: command APDU cases 1-4, short and extended. */
#include <stdio.h>
#include <string.h>

#include "scpkit/apdu.h"
#include "scpkit/buf.h"
#include "core/guard.h"

static int parse_body_short(scp_rd *r, scp_apdu *a)
{
    uint8_t b;
    GUARD(scp_rd_u8(r, &b));
    if (scp_rd_left(r) == 0) { /* case 2S: Le only */
        a->has_le = 1;
        a->le = b ? b : 256;
        return SCP_OK;
    }
    ENSURE(b != 0, SCP_E_LENGTH); /* Lc = 00 is not a short Lc */
    a->lc = b;
    GUARD(scp_rd_ptr(r, a->lc, &a->data));
    if (scp_rd_left(r) == 0) /* case 3S */
        return SCP_OK;
    GUARD(scp_rd_u8(r, &b)); /* case 4S */
    a->has_le = 1;
    a->le = b ? b : 256;
    ENSURE(scp_rd_left(r) == 0, SCP_E_LENGTH);
    return SCP_OK;
}

static int parse_body_extended(scp_rd *r, scp_apdu *a)
{
    uint8_t zero;
    uint16_t v;
    GUARD(scp_rd_u8(r, &zero));
    GUARD(scp_rd_u16(r, &v));
    a->extended = 1;
    if (scp_rd_left(r) == 0) { /* case 2E: 00 Le1 Le2 */
        a->has_le = 1;
        a->le = v ? v : 65536;
        return SCP_OK;
    }
    ENSURE(v != 0, SCP_E_FORMAT);
    a->lc = v;
    GUARD(scp_rd_ptr(r, a->lc, &a->data));
    if (scp_rd_left(r) == 0) /* case 3E */
        return SCP_OK;
    GUARD(scp_rd_u16(r, &v)); /* case 4E */
    a->has_le = 1;
    a->le = v ? v : 65536;
    ENSURE(scp_rd_left(r) == 0, SCP_E_LENGTH);
    return SCP_OK;
}

int scp_apdu_parse(const uint8_t *buf, size_t len, scp_apdu *a)
{
    scp_rd r;

    ENSURE(buf != NULL && a != NULL, SCP_E_ARG);
    memset(a, 0, sizeof(*a));
    scp_rd_init(&r, buf, len);
    GUARD(scp_rd_u8(&r, &a->cla));
    GUARD(scp_rd_u8(&r, &a->ins));
    GUARD(scp_rd_u8(&r, &a->p1));
    GUARD(scp_rd_u8(&r, &a->p2));
    if (scp_rd_left(&r) == 0) /* case 1 */
        return SCP_OK;
    /* A leading 00 followed by at least two bytes is the extended form;
     * a lone 00 is case 2S with Le = 256. */
    if (buf[4] == 0 && scp_rd_left(&r) >= 3)
        return parse_body_extended(&r, a);
    return parse_body_short(&r, a);
}

int scp_apdu_encode(const scp_apdu *a, uint8_t *out, size_t out_size, size_t *out_len)
{
    scp_wr w;
    int ext;

    ENSURE(a != NULL && out_len != NULL, SCP_E_ARG);
    ENSURE(a->lc <= 65535 && (a->lc == 0 || a->data != NULL), SCP_E_ARG);
    ENSURE(!a->has_le || (a->le >= 1 && a->le <= 65536), SCP_E_ARG);
    ext = a->extended || a->lc > 255 || (a->has_le && a->le > 256);
    scp_wr_init(&w, out, out_size);
    scp_wr_u8(&w, a->cla);
    scp_wr_u8(&w, a->ins);
    scp_wr_u8(&w, a->p1);
    scp_wr_u8(&w, a->p2);
    if (a->lc > 0) {
        if (ext) {
            scp_wr_u8(&w, 0);
            scp_wr_u16(&w, (uint16_t)a->lc);
        } else {
            scp_wr_u8(&w, (uint8_t)a->lc);
        }
        scp_wr_bytes(&w, a->data, a->lc);
    }
    if (a->has_le) {
        if (ext) {
            if (a->lc == 0)
                scp_wr_u8(&w, 0);
            scp_wr_u16(&w, (uint16_t)(a->le & 0xFFFF));
        } else {
            scp_wr_u8(&w, (uint8_t)(a->le & 0xFF));
        }
    }
    return scp_wr_done(&w, out_len);
}

int scp_rapdu_parse(const uint8_t *buf, size_t len, scp_rapdu *out)
{
    ENSURE(buf != NULL && out != NULL, SCP_E_ARG);
    ENSURE(len >= 2, SCP_E_TRUNCATED);
    ENSURE(len <= SCP_RAPDU_MAX, SCP_E_LENGTH);
    out->data = buf;
    out->len = len - 2;
    out->sw = (uint16_t)(buf[len - 2] << 8 | buf[len - 1]);
    return SCP_OK;
}

static const struct {
    uint16_t sw, mask;
    const char *text;
} sw_table[] = {
    { 0x9000, 0xFFFF, "success" },
    { 0x6100, 0xFF00, "more data available (GET RESPONSE)" },
    { 0x6283, 0xFFFF, "selected file or application is locked" },
    { 0x6200, 0xFF00, "warning: state of non-volatile memory unchanged" },
    { 0x6300, 0xFFFF, "authentication failed" },
    { 0x63C0, 0xFFF0, "authentication failed, tries left in low nibble" },
    { 0x6400, 0xFF00, "execution error, memory unchanged" },
    { 0x6581, 0xFFFF, "memory failure" },
    { 0x6700, 0xFFFF, "wrong length" },
    { 0x6881, 0xFFFF, "logical channel not supported" },
    { 0x6882, 0xFFFF, "secure messaging not supported" },
    { 0x6883, 0xFFFF, "last command of the chain expected" },
    { 0x6884, 0xFFFF, "command chaining not supported" },
    { 0x6982, 0xFFFF, "security status not satisfied" },
    { 0x6983, 0xFFFF, "authentication method blocked" },
    { 0x6984, 0xFFFF, "referenced data not usable" },
    { 0x6985, 0xFFFF, "conditions of use not satisfied" },
    { 0x6986, 0xFFFF, "command not allowed (no current EF)" },
    { 0x6987, 0xFFFF, "expected secure messaging data objects missing" },
    { 0x6988, 0xFFFF, "incorrect secure messaging data objects" },
    { 0x6A80, 0xFFFF, "incorrect parameters in the data field" },
    { 0x6A81, 0xFFFF, "function not supported" },
    { 0x6A82, 0xFFFF, "application or file not found" },
    { 0x6A84, 0xFFFF, "not enough memory space" },
    { 0x6A86, 0xFFFF, "incorrect P1 P2" },
    { 0x6A88, 0xFFFF, "referenced data not found" },
    { 0x6C00, 0xFF00, "wrong Le (exact length in SW2)" },
    { 0x6D00, 0xFFFF, "instruction not supported" },
    { 0x6E00, 0xFFFF, "class not supported" },
    { 0x6F00, 0xFFFF, "no precise diagnosis" },
    { 0x9484, 0xFFFF, "algorithm not supported" },
    { 0x9485, 0xFFFF, "invalid key check value" },
};

const char *scp_sw_explain(uint16_t sw, char *buf, size_t buf_size)
{
    for (size_t i = 0; i < sizeof(sw_table) / sizeof(sw_table[0]); i++) {
        if ((sw & sw_table[i].mask) != sw_table[i].sw)
            continue;
        if (sw_table[i].sw == 0x63C0)
            snprintf(buf, buf_size, "authentication failed, %u tries left", sw & 0x0F);
        else if (sw_table[i].mask == 0xFF00 && (sw >> 8) != 0x62)
            snprintf(buf, buf_size, "%s (%u)", sw_table[i].text, sw & 0xFF);
        else
            snprintf(buf, buf_size, "%s", sw_table[i].text);
        return buf;
    }
    snprintf(buf, buf_size, "unknown status %04X", sw);
    return buf;
}
