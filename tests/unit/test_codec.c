/* APDU and BER-TLV codecs: every case, both length forms, and lies. */
#include "scpkit/apdu.h"
#include "scpkit/tlv.h"
#include "test.h"

static void test_apdu_cases(void)
{
    scp_apdu a;
    uint8_t out[300];
    size_t n;
    static const uint8_t c1[] = { 0x00, 0xA4, 0x04, 0x00 };
    static const uint8_t c2[] = { 0x00, 0xCA, 0x9F, 0x7F, 0x00 };
    static const uint8_t c3[] = { 0x80, 0xE2, 0x00, 0x00, 0x02, 0xAA, 0xBB };
    static const uint8_t c4[] = { 0x00, 0xA4, 0x04, 0x00, 0x02, 0xA0, 0x00, 0x10 };
    static const uint8_t e2[] = { 0x00, 0xB0, 0x00, 0x00, 0x00, 0x01, 0x00 };
    static const uint8_t e4[] = { 0x00, 0xD6, 0x00, 0x00, 0x00, 0x00, 0x01, 0x55, 0x00, 0x00 };

    CHECK_OK(scp_apdu_parse(c1, sizeof(c1), &a));
    CHECK(a.lc == 0 && !a.has_le);
    CHECK_OK(scp_apdu_parse(c2, sizeof(c2), &a));
    CHECK(a.lc == 0 && a.has_le && a.le == 256);
    CHECK_OK(scp_apdu_parse(c3, sizeof(c3), &a));
    CHECK(a.lc == 2 && !a.has_le && a.data[1] == 0xBB);
    CHECK_OK(scp_apdu_parse(c4, sizeof(c4), &a));
    CHECK(a.lc == 2 && a.has_le && a.le == 16);
    CHECK_OK(scp_apdu_encode(&a, out, sizeof(out), &n));
    CHECK_MEM(out, n, c4, sizeof(c4));
    CHECK_OK(scp_apdu_parse(e2, sizeof(e2), &a));
    CHECK(a.extended && a.has_le && a.le == 256 && a.lc == 0);
    CHECK_OK(scp_apdu_encode(&a, out, sizeof(out), &n));
    CHECK_MEM(out, n, e2, sizeof(e2));
    CHECK_OK(scp_apdu_parse(e4, sizeof(e4), &a));
    CHECK(a.extended && a.lc == 1 && a.le == 65536);
    CHECK_OK(scp_apdu_encode(&a, out, sizeof(out), &n));
    CHECK_MEM(out, n, e4, sizeof(e4));
    /* too small an output buffer */
    CHECK_RC(scp_apdu_encode(&a, out, 5, &n), SCP_E_BUFFER_TOO_SMALL);
}

static void test_apdu_lies(void)
{
    scp_apdu a;
    static const uint8_t lc_long[] = { 0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00 };
    static const uint8_t lc_short[] = { 0x00, 0xA4, 0x04, 0x00, 0x01, 0xA0, 0x00, 0x00, 0x00 };
    static const uint8_t lc_zero[] = { 0x00, 0xA4, 0x04, 0x00, 0x00, 0xA0 };
    static const uint8_t ext_trunc[] = { 0x00, 0xA4, 0x04, 0x00, 0x00, 0x01, 0x00, 0xAA };
    static const uint8_t ext_zero[] = { 0x00, 0xA4, 0x04, 0x00, 0x00, 0x00, 0x00, 0xAA };
    CHECK_RC(scp_apdu_parse(lc_long, sizeof(lc_long), &a), SCP_E_TRUNCATED);
    CHECK_RC(scp_apdu_parse(lc_short, sizeof(lc_short), &a), SCP_E_LENGTH);
    CHECK(scp_apdu_parse(lc_zero, sizeof(lc_zero), &a) < 0);
    CHECK_RC(scp_apdu_parse(ext_trunc, sizeof(ext_trunc), &a), SCP_E_TRUNCATED);
    CHECK(scp_apdu_parse(ext_zero, sizeof(ext_zero), &a) < 0);
    for (size_t l = 0; l < 4; l++)
        CHECK_RC(scp_apdu_parse(lc_long, l, &a), SCP_E_TRUNCATED);
    scp_rapdu r;
    CHECK_RC(scp_rapdu_parse(lc_long, 1, &r), SCP_E_TRUNCATED);
    CHECK_OK(scp_rapdu_parse(lc_long, 2, &r));
    CHECK(r.sw == 0x00A4 && r.len == 0);
}

static void test_apdu_roundtrip(void)
{
    static uint8_t data[65535], buf[SCP_APDU_MAX];
    test_seed(7);
    test_rand_bytes(data, sizeof(data));
    for (int i = 0; i < 2000; i++) {
        scp_apdu a = { 0 }, b;
        size_t n;
        a.cla = (uint8_t)test_rand(), a.ins = 0xA4, a.p1 = 1, a.p2 = 2;
        a.lc = (i & 1) ? test_rand_below(300) : test_rand_below(65536);
        a.data = a.lc ? data : NULL;
        a.has_le = (uint8_t)(test_rand() & 1);
        a.le = a.has_le ? 1 + test_rand_below(65536) : 0;
        CHECK_OK(scp_apdu_encode(&a, buf, sizeof(buf), &n));
        CHECK_OK(scp_apdu_parse(buf, n, &b));
        CHECK(b.lc == a.lc && b.has_le == a.has_le && b.le == a.le && b.cla == a.cla);
    }
}

static void test_tlv(void)
{
    /* card recognition data shape: 66 { 73 { 06 ..., 60 { 06 ... } } } */
    static const uint8_t crd[] = { 0x66, 0x0C, 0x73, 0x0A, 0x06, 0x02, 0x2A, 0x86,
                                   0x60, 0x04, 0x06, 0x02, 0x2A, 0x87 };
    static const uint32_t path[] = { 0x66, 0x73, 0x60 };
    scp_tlv t;
    CHECK(scp_tlv_find_path(crd, sizeof(crd), path, 3, &t) == 1);
    CHECK(t.len == 4 && t.val[0] == 0x06);
    CHECK(scp_tlv_find(crd, sizeof(crd), 0x73, &t) == 0); /* not at top level */

    /* multi-byte tags and long lengths */
    uint8_t buf[400], val[300];
    scp_wr w;
    size_t n;
    memset(val, 0xAB, sizeof(val));
    scp_wr_init(&w, buf, sizeof(buf));
    scp_tlv_mark m = scp_tlv_begin(&w, 0xE3);
    scp_tlv_put(&w, 0x9F7F, val, 42);
    scp_tlv_put(&w, 0x5F8101, val, 200);
    scp_tlv_end(&w, m);
    CHECK_OK(scp_wr_done(&w, &n));
    CHECK(buf[0] == 0xE3 && buf[1] == 0x81);
    CHECK(scp_tlv_find(buf, n, 0xE3, &t) == 1 && t.constructed);
    scp_tlv in;
    CHECK(scp_tlv_find(t.val, t.len, 0x5F8101, &in) == 1 && in.len == 200);
    CHECK(scp_tlv_find(t.val, t.len, 0x9F7F, &in) == 1 && in.len == 42);

    /* a child that runs past its parent */
    static const uint8_t over[] = { 0xE3, 0x04, 0x4F, 0x05, 0xA0, 0x00, 0x4F, 0x01, 0x00 };
    CHECK(scp_tlv_find(over, sizeof(over), 0xE3, &t) == 1);
    CHECK_RC(scp_tlv_find(t.val, t.len, 0x99, &in), SCP_E_TRUNCATED);
    /* bad forms */
    static const uint8_t indef[] = { 0x30, 0x80, 0x00, 0x00 };
    static const uint8_t len4[] = { 0x30, 0x84, 0, 0, 0, 1, 0 };
    static const uint8_t tag4[] = { 0x5F, 0x81, 0x82, 0x03, 0x00 };
    static const uint8_t biglen[] = { 0x04, 0x83, 0xFF, 0xFF, 0xFF, 0x00 };
    CHECK_RC(scp_tlv_find(indef, sizeof(indef), 1, &t), SCP_E_FORMAT);
    CHECK_RC(scp_tlv_find(len4, sizeof(len4), 1, &t), SCP_E_FORMAT);
    CHECK_RC(scp_tlv_find(tag4, sizeof(tag4), 1, &t), SCP_E_FORMAT);
    CHECK_RC(scp_tlv_find(biglen, sizeof(biglen), 1, &t), SCP_E_TRUNCATED);
    /* the writer reports overflow once, at the end */
    scp_wr_init(&w, buf, 10);
    scp_tlv_put(&w, 0x04, val, 50);
    scp_wr_u8(&w, 1);
    CHECK_RC(scp_wr_done(&w, &n), SCP_E_BUFFER_TOO_SMALL);
}

static void test_hex(void)
{
    uint8_t b[4];
    size_t n;
    char s[9];
    CHECK_OK(scp_hex_decode("0a 1B:ff", b, sizeof(b), &n));
    CHECK(n == 3 && b[0] == 0x0A && b[1] == 0x1B && b[2] == 0xFF);
    CHECK_RC(scp_hex_decode("0a1", b, sizeof(b), &n), SCP_E_FORMAT);
    CHECK_RC(scp_hex_decode("zz", b, sizeof(b), &n), SCP_E_FORMAT);
    CHECK_RC(scp_hex_decode("0102030405", b, sizeof(b), &n), SCP_E_BUFFER_TOO_SMALL);
    CHECK_OK(scp_hex_decode("0a1bff", b, sizeof(b), &n));
    CHECK_OK(scp_hex_encode(b, 3, s, sizeof(s)));
    CHECK(strcmp(s, "0A1BFF") == 0);
    CHECK_RC(scp_hex_encode(b, 4, s, 8), SCP_E_BUFFER_TOO_SMALL);
}

int main(void)
{
    test_apdu_cases();
    test_apdu_lies();
    test_apdu_roundtrip();
    test_tlv();
    test_hex();
    return test_done("test_codec");
}
