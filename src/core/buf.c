#include <string.h>

#include "scpkit/buf.h"
#include "core/guard.h"

int scp_rd_u16(scp_rd *r, uint16_t *v)
{
    ENSURE(scp_rd_left(r) >= 2, SCP_E_TRUNCATED);
    *v = (uint16_t)((r->p[r->pos] << 8) | r->p[r->pos + 1]);
    r->pos += 2;
    return SCP_OK;
}

int scp_rd_u24(scp_rd *r, uint32_t *v)
{
    ENSURE(scp_rd_left(r) >= 3, SCP_E_TRUNCATED);
    *v = ((uint32_t)r->p[r->pos] << 16) | ((uint32_t)r->p[r->pos + 1] << 8) | r->p[r->pos + 2];
    r->pos += 3;
    return SCP_OK;
}

int scp_rd_skip(scp_rd *r, size_t n)
{
    const uint8_t *p;
    return scp_rd_ptr(r, n, &p);
}

void scp_wr_u16(scp_wr *w, uint16_t v)
{
    scp_wr_u8(w, (uint8_t)(v >> 8));
    scp_wr_u8(w, (uint8_t)v);
}

void scp_wr_fill(scp_wr *w, uint8_t v, size_t n)
{
    if (n == 0 || !scp_wr_room(w, n))
        return;
    memset(w->p + w->len, v, n);
    w->len += n;
}

int scp_wr_done(const scp_wr *w, size_t *out_len)
{
    if (w->err != SCP_OK)
        return w->err;
    if (out_len != NULL)
        *out_len = w->len;
    return SCP_OK;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int scp_hex_decode(const char *hex, uint8_t *out, size_t out_size, size_t *out_len)
{
    size_t n = 0;
    int hi = -1;

    ENSURE(hex != NULL && out_len != NULL, SCP_E_ARG);
    for (; *hex; hex++) {
        int v;
        if (*hex == ' ' || *hex == ':' || *hex == '\t' || *hex == '\n')
            continue;
        v = hexval(*hex);
        ENSURE(v >= 0, SCP_E_FORMAT);
        if (hi < 0) {
            hi = v;
            continue;
        }
        ENSURE(n < out_size, SCP_E_BUFFER_TOO_SMALL);
        out[n++] = (uint8_t)(hi << 4 | v);
        hi = -1;
    }
    ENSURE(hi < 0, SCP_E_FORMAT);
    *out_len = n;
    return SCP_OK;
}

int scp_hex_encode(const uint8_t *p, size_t len, char *out, size_t out_size)
{
    static const char digits[] = "0123456789ABCDEF";
    ENSURE(out_size > 0 && (out_size - 1) / 2 >= len, SCP_E_BUFFER_TOO_SMALL);
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * len] = '\0';
    return SCP_OK;
}
