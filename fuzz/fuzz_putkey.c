/* Fuzz target: PUT KEY and DELETE KEY data fields. A PUT KEY field that
 * parses (under the fixed DEK 404142..4F) must build back into a field that
 * parses to the same keys; on any error the output keys must be wiped. A
 * DELETE KEY field that parses must build back to a field with the same
 * meaning. */
#include <stdlib.h>
#include <string.h>

#include "scpkit/gp.h"

static const uint8_t dek[16] = { 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47,
                                 0x48, 0x49, 0x4A, 0x4B, 0x4C, 0x4D, 0x4E, 0x4F };

static void putkey(const uint8_t *data, size_t size)
{
    static const scp03_keys zero;
    scp03_keys k, k2;
    uint8_t out[SCP_GP_PUTKEY_MAX];
    size_t n;

    if (scp_gp_putkey_parse(dek, sizeof(dek), data, size, &k) != SCP_OK) {
        if (memcmp(&k, &zero, sizeof(k)) != 0)
            abort(); /* keys not wiped after an error */
        return;
    }
    if (k.key_len != 16 && k.key_len != 24 && k.key_len != 32)
        abort();
    if (scp_gp_putkey_build(dek, sizeof(dek), &k, out, sizeof(out), &n) != SCP_OK)
        abort();
    if (scp_gp_putkey_parse(dek, sizeof(dek), out, n, &k2) != SCP_OK)
        abort();
    if (memcmp(&k, &k2, sizeof(k)) != 0)
        abort();
}

static void deletekey(const uint8_t *data, size_t size)
{
    uint8_t kvn, kid, kvn2, kid2, out[8];
    size_t n;

    if (scp_gp_deletekey_parse(data, size, &kvn, &kid) != SCP_OK) {
        if (kvn != 0 || kid != 0)
            abort();
        return;
    }
    if (scp_gp_deletekey_build(kvn, kid, out, sizeof(out), &n) != SCP_OK)
        abort();
    if (n != size || scp_gp_deletekey_parse(out, n, &kvn2, &kid2) != SCP_OK)
        abort();
    if (kvn != kvn2 || kid != kid2)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    putkey(data, size);
    deletekey(data, size);
    return 0;
}
