/* scpkit: bounded byte cursors. Every parse in scpkit goes through
 * scp_rd (reads that cannot pass the end) and every encoding through
 * scp_wr (writes that cannot pass the capacity; the first overflow is
 * sticky and reported once at the end). */
#ifndef SCPKIT_BUF_H
#define SCPKIT_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "scpkit/rc.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct scp_rd {
    const uint8_t *p;
    size_t len;
    size_t pos;
} scp_rd;

/* Start reading len bytes at p (p NULL reads as empty). Cannot fail. */
static inline void scp_rd_init(scp_rd *r, const uint8_t *p, size_t len)
{
    r->p = p;
    r->len = p ? len : 0;
    r->pos = 0;
}
/* Bytes not read yet. */
static inline size_t scp_rd_left(const scp_rd *r) { return r->len - r->pos; }

/* The small readers and writers are inline: an APDU parse is a handful of
 * them, and a call each cost more than the reads. */
/* Read one byte. SCP_E_TRUNCATED (nothing consumed) at the end. */
SCP_MUST_CHECK static inline int scp_rd_u8(scp_rd *r, uint8_t *v)
{
    if (scp_rd_left(r) < 1)
        return SCP_E_TRUNCATED;
    *v = r->p[r->pos++];
    return SCP_OK;
}
/* Read a big-endian 16-bit value. SCP_E_TRUNCATED (nothing consumed)
 * when fewer than 2 bytes are left. */
SCP_MUST_CHECK int scp_rd_u16(scp_rd *r, uint16_t *v); /* big-endian */
/* Read a big-endian 24-bit value. SCP_E_TRUNCATED (nothing consumed)
 * when fewer than 3 bytes are left. */
SCP_MUST_CHECK int scp_rd_u24(scp_rd *r, uint32_t *v); /* big-endian */
/* Borrow n bytes of the input (no copy). */
SCP_MUST_CHECK static inline int scp_rd_ptr(scp_rd *r, size_t n, const uint8_t **out)
{
    if (scp_rd_left(r) < n)
        return SCP_E_TRUNCATED;
    *out = r->p + r->pos;
    r->pos += n;
    return SCP_OK;
}
/* Copy n bytes of the input into out. SCP_E_TRUNCATED (nothing copied or
 * consumed) when fewer than n are left. */
SCP_MUST_CHECK static inline int scp_rd_copy(scp_rd *r, uint8_t *out, size_t n)
{
    if (scp_rd_left(r) < n)
        return SCP_E_TRUNCATED;
    if (n > 0)
        memcpy(out, r->p + r->pos, n);
    r->pos += n;
    return SCP_OK;
}
/* Skip n bytes. SCP_E_TRUNCATED (nothing consumed) when fewer are left. */
SCP_MUST_CHECK int scp_rd_skip(scp_rd *r, size_t n);

typedef struct scp_wr {
    uint8_t *p;
    size_t cap;
    size_t len;
    int err; /* sticky SCP_E_BUFFER_TOO_SMALL */
} scp_wr;

/* Start writing into p, cap bytes (p NULL: capacity 0). Cannot fail;
 * the writers below record the first overflow, scp_wr_done reports it. */
static inline void scp_wr_init(scp_wr *w, uint8_t *p, size_t cap)
{
    w->p = p;
    w->cap = p ? cap : 0;
    w->len = 0;
    w->err = SCP_OK;
}
/* Room for n more bytes; if not, the sticky error is set. */
static inline int scp_wr_room(scp_wr *w, size_t n)
{
    if (w->err != SCP_OK)
        return 0;
    if (w->cap - w->len < n) {
        w->err = SCP_E_BUFFER_TOO_SMALL;
        return 0;
    }
    return 1;
}
/* Append one byte, or set the sticky SCP_E_BUFFER_TOO_SMALL. */
static inline void scp_wr_u8(scp_wr *w, uint8_t v)
{
    if (scp_wr_room(w, 1))
        w->p[w->len++] = v;
}
/* Append a big-endian 16-bit value, or set the sticky error (nothing
 * written). */
void scp_wr_u16(scp_wr *w, uint16_t v);
/* Append n bytes (p may overlap the output), or set the sticky error
 * (nothing written). */
static inline void scp_wr_bytes(scp_wr *w, const uint8_t *p, size_t n)
{
    if (n == 0 || !scp_wr_room(w, n))
        return;
    memmove(w->p + w->len, p, n);
    w->len += n;
}
/* Append n copies of v, or set the sticky error (nothing written). */
void scp_wr_fill(scp_wr *w, uint8_t v, size_t n);
/* SCP_OK, or the first error; stores the length written in *out_len. */
SCP_MUST_CHECK int scp_wr_done(const scp_wr *w, size_t *out_len);

/* Hex helpers for tools and tests. scp_hex_decode skips spaces and colons. */
SCP_MUST_CHECK int scp_hex_decode(const char *hex, uint8_t *out, size_t out_size,
                                  size_t *out_len);
/* Writes 2*len+1 bytes (NUL-terminated) or fails. */
SCP_MUST_CHECK int scp_hex_encode(const uint8_t *p, size_t len, char *out, size_t out_size);

#ifdef __cplusplus
}
#endif
#endif
