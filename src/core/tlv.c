/* Bounded BER-TLV reader and writer (ISO/IEC 7816-4 5.2, X.690 8.1). */
#include <string.h>

#include "scpkit/tlv.h"
#include "core/guard.h"

static int read_tag(scp_rd *r, uint32_t *tag, uint8_t *constructed)
{
    uint8_t b;
    GUARD(scp_rd_u8(r, &b));
    ENSURE(b != 0x00 && b != 0xFF, SCP_E_FORMAT);
    *constructed = (b & 0x20) != 0;
    *tag = b;
    if ((b & 0x1F) != 0x1F)
        return SCP_OK;
    for (int i = 0; i < 2; i++) { /* at most two subsequent bytes */
        GUARD(scp_rd_u8(r, &b));
        *tag = (*tag << 8) | b;
        if ((b & 0x80) == 0)
            return SCP_OK;
    }
    return SCP_E_FORMAT;
}

static int read_len(scp_rd *r, size_t *len)
{
    uint8_t b;
    GUARD(scp_rd_u8(r, &b));
    if (b < 0x80) {
        *len = b;
        return SCP_OK;
    }
    ENSURE(b >= 0x81 && b <= 0x83, SCP_E_FORMAT); /* no indefinite, max 3 bytes */
    size_t v = 0;
    for (int i = 0; i < (b & 0x7F); i++) {
        uint8_t x;
        GUARD(scp_rd_u8(r, &x));
        v = (v << 8) | x;
    }
    *len = v;
    return SCP_OK;
}

int scp_tlv_next(scp_rd *r, scp_tlv *out)
{
    ENSURE(r != NULL && out != NULL, SCP_E_ARG);
    if (scp_rd_left(r) == 0)
        return 0;
    GUARD(read_tag(r, &out->tag, &out->constructed));
    GUARD(read_len(r, &out->len));
    GUARD(scp_rd_ptr(r, out->len, &out->val));
    return 1;
}

int scp_tlv_find(const uint8_t *p, size_t len, uint32_t tag, scp_tlv *out)
{
    scp_rd r;
    scp_tlv t;
    int rc;

    scp_rd_init(&r, p, len);
    while ((rc = scp_tlv_next(&r, &t)) == 1) {
        if (t.tag == tag) {
            *out = t;
            return 1;
        }
    }
    return rc;
}

int scp_tlv_find_path(const uint8_t *p, size_t len, const uint32_t *tags, size_t ntags,
                      scp_tlv *out)
{
    scp_tlv t = { 0, p, len, 1 };
    for (size_t i = 0; i < ntags; i++) {
        int rc = scp_tlv_find(t.val, t.len, tags[i], &t);
        if (rc <= 0)
            return rc;
    }
    *out = t;
    return ntags > 0;
}

void scp_tlv_put_tag(scp_wr *w, uint32_t tag)
{
    if (tag > 0xFFFF)
        scp_wr_u8(w, (uint8_t)(tag >> 16));
    if (tag > 0xFF)
        scp_wr_u8(w, (uint8_t)(tag >> 8));
    scp_wr_u8(w, (uint8_t)tag);
}

static size_t len_size(size_t len)
{
    return len < 0x80 ? 1 : len <= 0xFF ? 2 : len <= 0xFFFF ? 3 : 4;
}

void scp_tlv_put_len(scp_wr *w, size_t len)
{
    if (len > 0xFFFFFF) {
        w->err = w->err ? w->err : SCP_E_ARG;
        return;
    }
    switch (len_size(len)) {
    case 1: scp_wr_u8(w, (uint8_t)len); break;
    case 2: scp_wr_u8(w, 0x81); scp_wr_u8(w, (uint8_t)len); break;
    case 3: scp_wr_u8(w, 0x82); scp_wr_u16(w, (uint16_t)len); break;
    default:
        scp_wr_u8(w, 0x83);
        scp_wr_u8(w, (uint8_t)(len >> 16));
        scp_wr_u16(w, (uint16_t)len);
    }
}

void scp_tlv_put(scp_wr *w, uint32_t tag, const uint8_t *val, size_t len)
{
    scp_tlv_put_tag(w, tag);
    scp_tlv_put_len(w, len);
    scp_wr_bytes(w, val, len);
}

scp_tlv_mark scp_tlv_begin(scp_wr *w, uint32_t tag)
{
    scp_tlv_mark m;
    scp_tlv_put_tag(w, tag);
    m.len_pos = w->len;
    scp_wr_fill(w, 0, 4); /* room for 83 xx xx xx */
    return m;
}

void scp_tlv_end(scp_wr *w, scp_tlv_mark m)
{
    if (w->err != SCP_OK)
        return;
    size_t start = m.len_pos + 4, vlen = w->len - start, ls = len_size(vlen);
    scp_wr lw;
    if (vlen > 0xFFFFFF) {
        w->err = SCP_E_ARG;
        return;
    }
    memmove(w->p + m.len_pos + ls, w->p + start, vlen);
    scp_wr_init(&lw, w->p + m.len_pos, ls);
    scp_tlv_put_len(&lw, vlen);
    w->len = m.len_pos + ls + vlen;
}
