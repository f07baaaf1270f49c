/* The Amd B script codec (src/ota/script.c) against the public bodies in
 * the fact sheet (../shared/facts/ota-ram-http.md §10: the 2019 trace of
 * card 3311 from anttro/otaman docs/scp81-findings.md; §12: otaman's unit
 * tests put "80 01 01" inside AF 80, pySim defaults to the definite AA/AB
 * form), BER lengths above 127, and a tampered twin for each. */
#include <stdlib.h>
#include <string.h>

#include "ota/ota.h"
#include "test.h"

static size_t dec(const uint8_t *p, size_t n, uint8_t o1, uint8_t o2, uint8_t item,
                  ota_slice *out, int want_rc)
{
    size_t k = 99;
    uint8_t et = 0;
    CHECK_RC(ota_script_decode(p, n, o1, o2, item, out, OTA_SCRIPT_MAX_APDUS, &k, &et), want_rc);
    return k;
}

int main(void)
{
    ota_slice s[OTA_SCRIPT_MAX_APDUS];
    uint8_t buf[2048];
    size_t n;

    /* §10: GET DATA 0085 as the server sent it (Content-Length 11) */
    static const uint8_t getdata[] = { 0xAE, 0x80, 0x22, 0x05, 0x80, 0xCA, 0x00, 0x85, 0x00, 0x00, 0x00 };
    static const uint8_t getdata_apdu[] = { 0x80, 0xCA, 0x00, 0x85, 0x00 };
    ota_slice one = { getdata_apdu, sizeof(getdata_apdu) };
    CHECK_OK(ota_script_encode(0xAE, &one, 1, buf, sizeof(buf), &n));
    CHECK_MEM(buf, n, getdata, sizeof(getdata));
    CHECK(dec(getdata, sizeof(getdata), 0xAE, 0xAA, 0x22, s, 0) == 1);
    CHECK_MEM(s[0].p, s[0].len, getdata_apdu, sizeof(getdata_apdu));

    /* §10: the card's answer AF 80 23 02 6A 88 00 00 (no data, SW 6A88) */
    static const uint8_t resp[] = { 0xAF, 0x80, 0x23, 0x02, 0x6A, 0x88, 0x00, 0x00 };
    CHECK(dec(resp, sizeof(resp), 0xAF, 0xAB, 0x23, s, 0) == 1);
    CHECK(s[0].len == 2 && s[0].p[0] == 0x6A && s[0].p[1] == 0x88);
    /* §10: the next script, GET STATUS of the ISD */
    static const uint8_t getstatus[] = { 0xAE, 0x80, 0x22, 0x08, 0x80, 0xF2, 0x80, 0x02,
                                         0x02, 0x4F, 0x00, 0x00, 0x00, 0x00 };
    CHECK(dec(getstatus, sizeof(getstatus), 0xAE, 0xAA, 0x22, s, 0) == 1);
    CHECK(s[0].len == 8 && s[0].p[1] == 0xF2);
    /* §12: otaman's count inside the indefinite form, and the definite form */
    static const uint8_t counted[] = { 0xAF, 0x80, 0x80, 0x01, 0x01, 0x23, 0x02, 0x90, 0x00, 0x00, 0x00 };
    CHECK(dec(counted, sizeof(counted), 0xAF, 0xAB, 0x23, s, 0) == 1);
    static const uint8_t definite[] = { 0xAB, 0x07, 0x80, 0x01, 0x01, 0x23, 0x02, 0x90, 0x00 };
    CHECK(dec(definite, sizeof(definite), 0xAF, 0xAB, 0x23, s, 0) == 1);

    /* BER lengths: a 200-byte C-APDU is 22 81 C8, never a raw C8 */
    uint8_t big[200];
    memset(big, 0x11, sizeof(big));
    big[0] = 0x80;
    big[4] = 195;
    ota_slice b = { big, sizeof(big) };
    CHECK_OK(ota_script_encode(0xAE, &b, 1, buf, sizeof(buf), &n));
    CHECK(n == 2 + 3 + 200 + 2 && buf[2] == 0x22 && buf[3] == 0x81 && buf[4] == 200);
    CHECK(dec(buf, n, 0xAE, 0xAA, 0x22, s, 0) == 1 && s[0].len == 200);
    /* tampered twin: the same with the raw-byte length bug seen in the field */
    uint8_t raw[sizeof(big) + 8];
    raw[0] = 0xAE; raw[1] = 0x80; raw[2] = 0x22; raw[3] = 200;
    memcpy(raw + 4, big, sizeof(big));
    raw[204] = 0; raw[205] = 0;
    dec(raw, 206, 0xAE, 0xAA, 0x22, s, SCP_E_FORMAT);

    /* tampered twins of the trace bodies */
    uint8_t t[sizeof(getdata)];
    memcpy(t, getdata, sizeof(t));
    t[3] = 0x06; /* length past the end-of-contents */
    dec(t, sizeof(t), 0xAE, 0xAA, 0x22, s, SCP_E_TRUNCATED);
    dec(getdata, sizeof(getdata) - 1, 0xAE, 0xAA, 0x22, s, SCP_E_TRUNCATED); /* no 00 00 */
    uint8_t trail[sizeof(resp) + 1];
    memcpy(trail, resp, sizeof(resp));
    trail[sizeof(resp)] = 0x00;
    dec(trail, sizeof(trail), 0xAF, 0xAB, 0x23, s, SCP_E_LENGTH); /* bytes after the end */
    dec(resp, sizeof(resp), 0xAE, 0xAA, 0x22, s, SCP_E_FORMAT);   /* a response is no command */
    static const uint8_t unk[] = { 0xAF, 0x80, 0x24, 0x01, 0x00, 0x00, 0x00 };
    dec(unk, sizeof(unk), 0xAF, 0xAB, 0x23, s, SCP_E_FORMAT); /* unknown tag */
    static const uint8_t shortr[] = { 0xAF, 0x80, 0x23, 0x01, 0x90, 0x00, 0x00 };
    dec(shortr, sizeof(shortr), 0xAF, 0xAB, 0x23, s, SCP_E_LENGTH); /* R-APDU without SW */
    static const uint8_t nonmin[] = { 0xAF, 0x80, 0x23, 0x81, 0x02, 0x90, 0x00, 0x00, 0x00 };
    dec(nonmin, sizeof(nonmin), 0xAF, 0xAB, 0x23, s, SCP_E_FORMAT); /* 81 02: not minimal */
    static const uint8_t defover[] = { 0xAB, 0x09, 0x23, 0x02, 0x90, 0x00 };
    dec(defover, sizeof(defover), 0xAF, 0xAB, 0x23, s, SCP_E_TRUNCATED);
    /* error TLV 90 01 01 (bad format: unknown tag) ends the list, reported */
    static const uint8_t errtlv[] = { 0xAF, 0x80, 0x23, 0x02, 0x90, 0x00, 0x90, 0x01, 0x01, 0x00, 0x00 };
    {
        size_t k;
        uint8_t et = 0;
        CHECK_OK(ota_script_decode(errtlv, sizeof(errtlv), 0xAF, 0xAB, 0x23, s, 8, &k, &et));
        CHECK(k == 1 && et == 0x90);
    }
    /* more items than the caller allows */
    {
        ota_slice many[OTA_SCRIPT_MAX_APDUS];
        for (size_t k = 0; k < OTA_SCRIPT_MAX_APDUS; k++)
            many[k] = one;
        CHECK_OK(ota_script_encode(0xAE, many, OTA_SCRIPT_MAX_APDUS, buf, sizeof(buf), &n));
        size_t k;
        CHECK_RC(ota_script_decode(buf, n, 0xAE, 0xAA, 0x22, s, 4, &k, NULL), SCP_E_LENGTH);
        CHECK_RC(ota_script_encode(0xAE, many, OTA_SCRIPT_MAX_APDUS, buf, 20, &n),
                 SCP_E_BUFFER_TOO_SMALL);
    }
    return test_done("test_ota_script");
}
