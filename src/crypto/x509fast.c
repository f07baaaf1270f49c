/* scpkit: a fast path for the X.509 certificates SCP11 moves around (EC
 * subject key on P-256/P-384/brainpoolP256r1, ecdsa-with-SHA256): parsed
 * with the bounded TLV reader, because OpenSSL 3.0's d2i_X509 costs more
 * than an ECDSA verification (bench/scp11.c). Anything else (RSA keys or
 * signatures, other curves or digests, unusual encodings) returns
 * SCP_E_UNSUPPORTED and src/crypto/cert.c falls back to OpenSSL; the
 * results of both are compared in tests/scp11/test_scp11_cert.c. */
#include <string.h>

#include "scpkit/cert.h"
#include "scpkit/tlv.h"
#include "crypto/x509fast.h"
#include "core/guard.h"

static const uint8_t oid_ecdsa_sha256[] = { 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02 };
static const uint8_t oid_ec_pub[] = { 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01 };
static const uint8_t oid_cn[] = { 0x55, 0x04, 0x03 };
static const uint8_t oid_ku[] = { 0x55, 0x1D, 0x0F };
static const uint8_t oid_ski[] = { 0x55, 0x1D, 0x0E };
static const uint8_t oid_aki[] = { 0x55, 0x1D, 0x23 };
static const struct {
    uint8_t oid[9], len;
    int curve;
} curve_oids[] = {
    { { 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07 }, 8, SCP_EC_P256 },
    { { 0x2B, 0x81, 0x04, 0x00, 0x22 }, 5, SCP_EC_P384 },
    { { 0x2B, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x07 }, 9, SCP_EC_BP256 },
};

#define NEXT(r, t, tagv)                                                                           \
    do {                                                                                           \
        if (scp_tlv_next((r), (t)) != 1 || (t)->tag != (tagv))                                     \
            return SCP_E_UNSUPPORTED;                                                              \
    } while (0)

static int is_oid(const scp_tlv *t, const uint8_t *oid, size_t n)
{
    return t->tag == 0x06 && t->len == n && memcmp(t->val, oid, n) == 0;
}

static int digits(const uint8_t *p, size_t n, unsigned *v)
{
    *v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return 0;
        *v = *v * 10 + (unsigned)(p[i] - '0');
    }
    return 1;
}

/* UTCTime YYMMDDHHMMSSZ or GeneralizedTime YYYYMMDDHHMMSSZ. */
static int asn1_time(const scp_tlv *t, int64_t *out)
{
    unsigned y, mo, d, h, mi, s;
    const uint8_t *p = t->val;
    size_t yl;
    if (t->tag == 0x17 && t->len == 13)
        yl = 2;
    else if (t->tag == 0x18 && t->len == 15)
        yl = 4;
    else
        return SCP_E_UNSUPPORTED;
    if (p[t->len - 1] != 'Z' || !digits(p, yl, &y) || !digits(p + yl, 2, &mo) ||
        !digits(p + yl + 2, 2, &d) || !digits(p + yl + 4, 2, &h) || !digits(p + yl + 6, 2, &mi) ||
        !digits(p + yl + 8, 2, &s))
        return SCP_E_UNSUPPORTED;
    if (yl == 2)
        y += y < 50 ? 2000 : 1900; /* RFC 5280 4.1.2.5.1 */
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
        return SCP_E_UNSUPPORTED;
    *out = scp_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
    return SCP_OK;
}

static void copy_id(uint8_t *dst, uint8_t *dst_len, const uint8_t *p, size_t n)
{
    if (n > SCP_CERT_MAX_ID)
        p += n - SCP_CERT_MAX_ID, n = SCP_CERT_MAX_ID;
    memcpy(dst, p, n);
    *dst_len = (uint8_t)n;
}

/* The subject's CN into c->name (printable bytes only). */
static void subject_cn(scp_cert *c, const scp_tlv *name)
{
    scp_rd r, rs;
    scp_tlv set, atv, oid, val;
    scp_rd_init(&r, name->val, name->len);
    while (scp_tlv_next(&r, &set) == 1) {
        scp_rd_init(&rs, set.val, set.len);
        if (set.tag != 0x31 || scp_tlv_next(&rs, &atv) != 1 || atv.tag != 0x30)
            continue;
        scp_rd_init(&rs, atv.val, atv.len);
        if (scp_tlv_next(&rs, &oid) != 1 || !is_oid(&oid, oid_cn, sizeof(oid_cn)) ||
            scp_tlv_next(&rs, &val) != 1)
            continue;
        size_t n = val.len < sizeof(c->name) - 4 ? val.len : sizeof(c->name) - 4, k = 3;
        memcpy(c->name, "CN=", 3);
        for (size_t i = 0; i < n; i++)
            c->name[k++] = (val.val[i] >= 0x20 && val.val[i] < 0x7F) ? (char)val.val[i] : '?';
        c->name[k] = '\0';
        return;
    }
    memcpy(c->name, "X.509 certificate", sizeof("X.509 certificate"));
}

static int extensions(scp_cert *c, const scp_tlv *a3)
{
    scp_rd r, re, rv;
    scp_tlv seq, ext, oid, x, v;
    scp_rd_init(&r, a3->val, a3->len);
    NEXT(&r, &seq, 0x30);
    scp_rd_init(&re, seq.val, seq.len);
    while (scp_tlv_next(&re, &ext) == 1) {
        if (ext.tag != 0x30)
            return SCP_E_UNSUPPORTED;
        scp_rd_init(&rv, ext.val, ext.len);
        NEXT(&rv, &oid, 0x06);
        if (scp_tlv_next(&rv, &x) != 1)
            return SCP_E_UNSUPPORTED;
        if (x.tag == 0x01) /* critical */
            NEXT(&rv, &x, 0x04);
        if (x.tag != 0x04)
            return SCP_E_UNSUPPORTED;
        if (is_oid(&oid, oid_ku, sizeof(oid_ku))) {
            scp_rd rk;
            scp_rd_init(&rk, x.val, x.len);
            NEXT(&rk, &v, 0x03);
            if (v.len < 2 || v.len > 3)
                return SCP_E_UNSUPPORTED;
            c->key_usage = v.val[1] | (v.len == 3 ? (uint32_t)v.val[2] << 8 : 0);
            c->has_key_usage = 1;
        } else if (is_oid(&oid, oid_ski, sizeof(oid_ski))) {
            scp_rd rk;
            scp_rd_init(&rk, x.val, x.len);
            NEXT(&rk, &v, 0x04);
            copy_id(c->ski, &c->ski_len, v.val, v.len);
        } else if (is_oid(&oid, oid_aki, sizeof(oid_aki))) {
            scp_rd rk;
            scp_tlv kid;
            scp_rd_init(&rk, x.val, x.len);
            NEXT(&rk, &v, 0x30);
            if (scp_tlv_find(v.val, v.len, 0x80, &kid) == 1)
                copy_id(c->aki, &c->aki_len, kid.val, kid.len);
        }
    }
    return SCP_OK;
}

int scp_x509_fast_parse(scp_cert *c, const uint8_t *p, size_t len)
{
    scp_rd r, rc, rt, rs;
    scp_tlv cert, tbs, t, alg, spki, bits;
    int curve = SCP_EC_NONE;

    scp_rd_init(&r, p, len);
    NEXT(&r, &cert, 0x30);
    if (scp_rd_left(&r) != 0)
        return SCP_E_UNSUPPORTED;
    scp_rd_init(&rc, cert.val, cert.len);
    size_t tbs_at = rc.pos;
    NEXT(&rc, &tbs, 0x30);
    c->tbs = cert.val + tbs_at;
    c->tbs_len = (size_t)(tbs.val - c->tbs) + tbs.len;
    /* signatureAlgorithm: ecdsa-with-SHA256, no parameters */
    NEXT(&rc, &alg, 0x30);
    scp_rd_init(&rs, alg.val, alg.len);
    NEXT(&rs, &t, 0x06);
    if (!is_oid(&t, oid_ecdsa_sha256, sizeof(oid_ecdsa_sha256)) || scp_rd_left(&rs) != 0)
        return SCP_E_UNSUPPORTED;
    NEXT(&rc, &bits, 0x03);
    if (bits.len < 9 || bits.val[0] != 0x00 || bits.val[1] != 0x30 || scp_rd_left(&rc) != 0)
        return SCP_E_UNSUPPORTED;
    c->sig = bits.val + 1, c->sig_len = bits.len - 1;

    scp_rd_init(&rt, tbs.val, tbs.len);
    if (scp_tlv_next(&rt, &t) != 1)
        return SCP_E_UNSUPPORTED;
    if (t.tag == 0xA0) { /* [0] version: v3 */
        if (t.len != 3 || t.val[0] != 0x02 || t.val[1] != 0x01 || t.val[2] != 0x02)
            return SCP_E_UNSUPPORTED;
        if (scp_tlv_next(&rt, &t) != 1)
            return SCP_E_UNSUPPORTED;
    }
    if (t.tag != 0x02 || t.len == 0 || t.len > 21)
        return SCP_E_UNSUPPORTED;
    copy_id(c->serial, &c->serial_len, t.val, t.len);
    NEXT(&rt, &t, 0x30); /* signature (repeats the algorithm) */
    NEXT(&rt, &t, 0x30); /* issuer */
    NEXT(&rt, &t, 0x30); /* validity */
    {
        scp_rd rv;
        scp_tlv nb, na;
        scp_rd_init(&rv, t.val, t.len);
        if (scp_tlv_next(&rv, &nb) != 1 || scp_tlv_next(&rv, &na) != 1 ||
            asn1_time(&nb, &c->not_before) != SCP_OK || asn1_time(&na, &c->not_after) != SCP_OK)
            return SCP_E_UNSUPPORTED;
    }
    NEXT(&rt, &t, 0x30); /* subject */
    subject_cn(c, &t);
    NEXT(&rt, &spki, 0x30);
    {
        scp_rd rk, ra;
        scp_tlv a, o, pk;
        scp_rd_init(&rk, spki.val, spki.len);
        NEXT(&rk, &a, 0x30);
        scp_rd_init(&ra, a.val, a.len);
        NEXT(&ra, &o, 0x06);
        if (!is_oid(&o, oid_ec_pub, sizeof(oid_ec_pub)))
            return SCP_E_UNSUPPORTED; /* RSA and the rest: OpenSSL */
        NEXT(&ra, &o, 0x06);
        for (size_t i = 0; i < sizeof(curve_oids) / sizeof(curve_oids[0]); i++)
            if (is_oid(&o, curve_oids[i].oid, curve_oids[i].len))
                curve = curve_oids[i].curve;
        if (curve == SCP_EC_NONE)
            return SCP_E_UNSUPPORTED;
        NEXT(&rk, &pk, 0x03);
        if (pk.len < 2 || pk.val[0] != 0x00 || scp_rd_left(&rk) != 0)
            return SCP_E_UNSUPPORTED;
        /* the point must be on the curve (scp_ec_from_point checks) */
        if (scp_ec_from_point(&c->ec, curve, pk.val + 1, pk.len - 1) != SCP_OK)
            return SCP_E_UNSUPPORTED;
    }
    while (scp_tlv_next(&rt, &t) == 1) {
        if (t.tag == 0xA3 && extensions(c, &t) != SCP_OK)
            return SCP_E_UNSUPPORTED;
        if (t.tag != 0xA1 && t.tag != 0xA2 && t.tag != 0xA3)
            return SCP_E_UNSUPPORTED;
    }
    if (scp_rd_left(&rt) != 0)
        return SCP_E_UNSUPPORTED;
    c->kind = SCP_CERT_X509;
    return SCP_OK;
}
