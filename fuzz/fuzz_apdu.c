/* Fuzz target: ISO 7816-4 C-APDU and R-APDU parsing. Every C-APDU the
 * parser accepts must encode back to the very same bytes (the codec is a
 * bijection on valid APDUs) and parse again to the same fields. */
#include <stdlib.h>
#include <string.h>

#include "scpkit/apdu.h"

static uint8_t enc[SCP_APDU_MAX];

static void check_same(const scp_apdu *a, const scp_apdu *b)
{
    if (a->cla != b->cla || a->ins != b->ins || a->p1 != b->p1 || a->p2 != b->p2 ||
        a->lc != b->lc || a->has_le != b->has_le || a->le != b->le ||
        a->extended != b->extended)
        abort();
    if (a->lc > 0 && memcmp(a->data, b->data, a->lc) != 0)
        abort();
    if ((a->lc == 0) != (a->data == NULL) || (b->lc == 0) != (b->data == NULL))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    scp_apdu a, b;
    scp_rapdu r;
    size_t n;
    char buf[96];

    if (scp_apdu_parse(data, size, &a) == SCP_OK) {
        if (a.lc > 65535 || (a.has_le && (a.le < 1 || a.le > 65536)))
            abort();
        if (scp_apdu_encode(&a, enc, sizeof(enc), &n) != SCP_OK)
            abort();
        if (n != size || memcmp(enc, data, size) != 0)
            abort();
        if (scp_apdu_parse(enc, n, &b) != SCP_OK)
            abort();
        check_same(&a, &b);
        /* one byte short of room must be refused, never overrun */
        if (scp_apdu_encode(&a, enc, n - 1, &n) != SCP_E_BUFFER_TOO_SMALL)
            abort();
    }
    if (scp_rapdu_parse(data, size, &r) == SCP_OK) {
        if (size < 2 || r.len != size - 2)
            abort();
        if (scp_sw_explain(r.sw, buf, sizeof(buf)) == NULL)
            abort();
        (void)scp_sw_is_success_class(r.sw);
    }
    return 0;
}
