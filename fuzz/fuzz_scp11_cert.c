/* Fuzz target: the SCP11 certificate parsers (src/crypto/cert.c): a
 * certificate store split into certificates (BF21-wrapped or
 * concatenated), each parsed as X.509 or GP 7F21, and the chain checked
 * against a fixed P-256 anchor. Invariants: no crash, no leak; a parsed
 * certificate's identifiers fit their buffers; a chain of random bytes
 * never verifies; a refusal names a certificate of the chain. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scpkit/cert.h"
#include "scpkit/ec.h"

/* CA-KLOC (TEST) from tests/vectors/scp11_openscp_ca.txt */
static const uint8_t anchor_pt[65] = {
    0x04, 0x88, 0x89, 0x9E, 0xE7, 0xE1, 0x90, 0xDD, 0x93, 0x1F, 0x75, 0x5C, 0x5A, 0x11, 0xFA,
    0xAA, 0x9F, 0x4C, 0xA4, 0xF4, 0xD3, 0xBE, 0x18, 0x74, 0xC2, 0xF8, 0x09, 0x7B, 0x93, 0xA5,
    0x23, 0x2D, 0xE0, 0x90, 0x29, 0xD2, 0x1D, 0x6F, 0xBF, 0x00, 0x71, 0x7C, 0xEB, 0x78, 0xD5,
    0xE8, 0xBC, 0xB8, 0x45, 0x85, 0x5C, 0xFF, 0xF5, 0xCE, 0x13, 0x00, 0x6C, 0x03, 0x4F, 0x17,
    0xDD, 0xA1, 0xA1, 0x18, 0x40 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static scp_trust t;
    static int ready;
    size_t off[SCP_CERT_MAX_CHAIN], lens[SCP_CERT_MAX_CHAIN], n = 0, ok = 0;
    scp_cert c[SCP_CERT_MAX_CHAIN], one;
    scp_cert_error err;

    if (!ready) {
        scp_ec_key k = { 0 };
        if (scp_ec_from_point(&k, SCP_EC_P256, anchor_pt, sizeof(anchor_pt)) != SCP_OK ||
            scp_trust_add_ec(&t, &k) != SCP_OK)
            abort();
        scp_ec_free(&k);
        ready = 1;
    }
    if (scp_cert_parse(&one, data, size) == SCP_OK) {
        if (one.serial_len > SCP_CERT_MAX_ID || one.ski_len > SCP_CERT_MAX_ID ||
            one.aki_len > SCP_CERT_MAX_ID || (one.kind == SCP_CERT_GP && one.tbs_len > size))
            abort();
        /* a chain that verifies has an EC leaf key and names no failure */
        if (scp_cert_verify_chain(&one, 1, &t, 1748736000, SCP_KU_KEY_AGREEMENT, &err) ==
                SCP_OK &&
            (one.ec.pkey == NULL || err.index != 0))
            abort();
        scp_cert_free(&one);
    }
    if (scp_cert_split(data, size, off, lens, SCP_CERT_MAX_CHAIN, &n) != SCP_OK)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (off[i] + lens[i] > size)
            abort();
        if (scp_cert_parse(&c[ok], data + off[i], lens[i]) == SCP_OK)
            ok++;
    }
    if (ok > 0)
        if (scp_cert_verify_chain(c, ok, &t, 1748736000, SCP_KU_KEY_AGREEMENT, &err) != SCP_OK &&
            (err.index < 0 || err.index > (int)ok || err.text[0] == '\0'))
            abort();
    for (size_t i = 0; i < ok; i++)
        scp_cert_free(&c[i]);
    return 0;
}
