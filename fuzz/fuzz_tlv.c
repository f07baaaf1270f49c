/* Fuzz target: BER-TLV reading. Walks the input recursively (constructed
 * values are walked as TLV lists too), checks that every value lies inside
 * its parent, re-encodes each TLV and reads it back, and runs the
 * find/find_path helpers with tags taken from the input. */
#include <stdlib.h>
#include <string.h>

#include "scpkit/tlv.h"

#define TLV_MAX_DEPTH 16

static uint8_t re[1 << 17];

static void reencode(const scp_tlv *t)
{
    scp_wr w;
    scp_rd r;
    scp_tlv u;
    size_t n;

    if (t->len > sizeof(re) - 8)
        return;
    scp_wr_init(&w, re, sizeof(re));
    scp_tlv_put(&w, t->tag, t->val, t->len);
    if (scp_wr_done(&w, &n) != SCP_OK)
        abort();
    scp_rd_init(&r, re, n);
    if (scp_tlv_next(&r, &u) != 1 || u.tag != t->tag || u.len != t->len ||
        u.constructed != t->constructed || scp_rd_left(&r) != 0)
        abort();
    if (t->len > 0 && memcmp(u.val, t->val, t->len) != 0)
        abort();
}

static void walk(const uint8_t *p, size_t len, int depth)
{
    scp_rd r;
    scp_tlv t;
    int rc;

    scp_rd_init(&r, p, len);
    while ((rc = scp_tlv_next(&r, &t)) == 1) {
        if (t.len > len || (t.len > 0 && (t.val < p || t.val + t.len > p + len)))
            abort();
        reencode(&t);
        if (t.constructed && depth < TLV_MAX_DEPTH)
            walk(t.val, t.len, depth + 1);
    }
    if (rc > 1)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    scp_tlv t;
    uint32_t path[3] = { 0x66, 0x73, 0x64 };

    walk(data, size, 0);
    if (scp_tlv_find(data, size, 0x9F7F, &t) == 1 && t.tag != 0x9F7F)
        abort();
    if (size >= 3) {
        /* a path taken from the input's own first bytes */
        path[0] = data[0], path[1] = data[1], path[2] = data[2];
    }
    if (scp_tlv_find_path(data, size, path, 3, &t) == 1 && t.tag != path[2])
        abort();
    if (scp_tlv_find_path(data, size, path, 1, &t) == 1 && t.tag != path[0])
        abort();
    return 0;
}
