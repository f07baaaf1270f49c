/* Fuzz target: the SCP02 parsers (src/scp02/): scp02_iu_resp_parse and
 * scp02_host_iu_response on the input, then, on a session opened in
 * process, scp02_card_unwrap, scp02_host_unwrap and scp02_putkey_parse.
 *
 * Input: one configuration byte (level = {01,03,11,13}[b & 3], i = 15 or
 * 55 by bit 2, bit 3: the input is an IU response), then the bytes. A
 * refused command must end the card's session. */
#include <stdlib.h>
#include <string.h>

#include "scpkit/scp02.h"

static const uint8_t levels[] = { 0x01, 0x03, 0x11, 0x13 };
static const uint8_t hc[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
static const uint8_t cc[6] = { 9, 10, 11, 12, 13, 14 };
static uint8_t out[600];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    scp02_session h = { 0 }, c = { 0 };
    scp02_keys k;
    scp02_card_params prm = { 0 };
    scp02_iu_resp r;
    uint8_t buf[64], e[16], m[16], d[16], kvn, type;
    size_t n, rn;
    int rc;

    if (size < 1)
        return 0;
    memset(k.enc, 0x40, 16);
    memset(k.mac, 0x41, 16);
    memset(k.dek, 0x42, 16);
    k.kvn = 0x20;
    prm.i = (data[0] & 4) ? 0x55 : 0x15;
    prm.seq = 0x0102;
    prm.fixed_card_chal = cc;
    if (scp02_host_begin(&h, &k, prm.i, hc) != SCP_OK ||
        scp02_host_initialize_update(&h, 0x80, buf, sizeof(buf), &n) != SCP_OK)
        abort();
    if (data[0] & 8) {
        rc = scp02_iu_resp_parse(data + 1, size - 1, &r);
        if (scp02_host_iu_response(&h, data + 1, size - 1, NULL, 0) == SCP_OK && rc != SCP_OK)
            abort(); /* accepted what the parser refuses */
        scp02_end(&h);
        return 0;
    }
    if (scp02_card_initialize_update(&c, &prm, &k, hc, 8, buf, sizeof(buf), &rn) != SCP_OK ||
        scp02_host_iu_response(&h, buf, rn, NULL, 0) != SCP_OK ||
        scp02_host_external_authenticate(&h, levels[data[0] & 3], buf, sizeof(buf), &n) !=
            SCP_OK ||
        scp02_card_external_authenticate(&c, buf, n) != SCP_OK ||
        scp02_host_ea_result(&h, 0x9000) != SCP_OK)
        abort();
    if (scp02_putkey_parse(&c, data + 1, size - 1, &kvn, &type, e, m, d) == SCP_OK &&
        size - 1 < 67)
        abort(); /* three keys cannot fit */
    rc = scp02_card_unwrap(&c, data + 1, size - 1, out, sizeof(out), &n);
    if (rc < 0 && rc != SCP_E_BUFFER_TOO_SMALL && rc != SCP_E_TRUNCATED &&
        rc != SCP_E_LENGTH && rc != SCP_E_FORMAT && scp02_is_open(&c))
        abort();
    if (scp02_host_wrap(&h, (const uint8_t *)"\x80\xCA\x00\x66\x00", 5, buf, sizeof(buf), &n) ==
        SCP_OK)
        if (scp02_host_unwrap(&h, data + 1, size - 1, out, sizeof(out), &n) == SCP_OK &&
            n > size)
            abort();
    scp02_end(&h);
    scp02_end(&c);
    return 0;
}
