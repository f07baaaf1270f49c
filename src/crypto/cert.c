/* scpkit certificates for SCP11 (include/scpkit/cert.h): X.509 through
 * OpenSSL, GlobalPlatform 7F21 certificates through the bounded TLV
 * reader, chain verification with an error that names the certificate. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "scpkit/cert.h"
#include "scpkit/crypto.h"
#include "scpkit/tlv.h"
#include "core/guard.h"
#include "crypto/x509fast.h"

void scp_cert_free(scp_cert *c)
{
    if (c == NULL)
        return;
    X509_free((X509 *)c->x509);
    EVP_PKEY_free((EVP_PKEY *)c->pkey);
    scp_ec_free(&c->ec);
    memset(c, 0, sizeof(*c));
}

static void copy_id(uint8_t *dst, uint8_t *dst_len, const uint8_t *p, size_t n)
{
    if (n > SCP_CERT_MAX_ID) /* keep the low-order end: serials are compared whole */
        p += n - SCP_CERT_MAX_ID, n = SCP_CERT_MAX_ID;
    memcpy(dst, p, n);
    *dst_len = (uint8_t)n;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
int64_t scp_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int64_t tm_to_unix(const struct tm *t)
{
    return scp_days_from_civil(t->tm_year + 1900, (unsigned)t->tm_mon + 1, (unsigned)t->tm_mday) *
               86400 +
           t->tm_hour * 3600 + t->tm_min * 60 + t->tm_sec;
}

/* GP date, 4 bytes: binary (14 1C 0C 1F = 2028-12-31, as in the Samsung
 * vectors) or BCD (20 28 12 31). end_of_day: the last second of it. */
static int gp_date(const uint8_t *p, size_t n, int end_of_day, int64_t *out)
{
    unsigned y, m, d;
    ENSURE(n == 4, SCP_E_FORMAT);
    if (p[0] >= 19 && p[0] <= 21) {
        y = p[0] * 100u + p[1], m = p[2], d = p[3];
    } else {
        for (int i = 0; i < 4; i++)
            ENSURE((p[i] >> 4) <= 9 && (p[i] & 15) <= 9, SCP_E_FORMAT);
#define BCD(b) ((unsigned)((b) >> 4) * 10u + ((b) & 15u))
        y = BCD(p[0]) * 100u + BCD(p[1]), m = BCD(p[2]), d = BCD(p[3]);
#undef BCD
    }
    ENSURE(y >= 1950 && y <= 2200 && m >= 1 && m <= 12 && d >= 1 && d <= 31, SCP_E_FORMAT);
    *out = scp_days_from_civil(y, m, d) * 86400 + (end_of_day ? 86399 : 0);
    return SCP_OK;
}

static int parse_gp(scp_cert *c, const uint8_t *p, size_t len)
{
    scp_rd r, in;
    scp_tlv outer, t;
    const uint8_t *pt = NULL;
    size_t pt_len = 0;
    int rc, curve = SCP_EC_NONE, have_curve = 0;

    scp_rd_init(&r, p, len);
    rc = scp_tlv_next(&r, &outer);
    ENSURE(rc == 1, rc < 0 ? rc : SCP_E_TRUNCATED);
    ENSURE(outer.tag == 0x7F21 && scp_rd_left(&r) == 0, SCP_E_FORMAT);
    c->kind = SCP_CERT_GP;
    c->tbs = outer.val;
    scp_rd_init(&in, outer.val, outer.len);
    for (;;) {
        size_t at = in.pos; /* where this data object's tag starts */
        rc = scp_tlv_next(&in, &t);
        if (rc != 1)
            break;
        switch (t.tag) {
        case 0x93:
            ENSURE(t.len >= 1 && t.len <= SCP_CERT_MAX_ID, SCP_E_FORMAT);
            copy_id(c->serial, &c->serial_len, t.val, t.len);
            break;
        case 0x42:
            ENSURE(t.len >= 1 && t.len <= SCP_CERT_MAX_ID, SCP_E_FORMAT);
            copy_id(c->aki, &c->aki_len, t.val, t.len);
            break;
        case 0x5F20:
            ENSURE(t.len >= 1 && t.len <= SCP_CERT_MAX_ID, SCP_E_FORMAT);
            copy_id(c->ski, &c->ski_len, t.val, t.len);
            break;
        case 0x95: /* 00 80: key agreement; 00 82/00 08 seen for signature */
            ENSURE(t.len == 1 || t.len == 2, SCP_E_FORMAT);
            c->has_key_usage = 1;
            c->key_usage = 0;
            if (t.val[t.len - 1] & 0x80)
                c->key_usage |= SCP_KU_KEY_AGREEMENT;
            if (t.val[t.len - 1] & 0x02 || (t.len == 2 && t.val[0] & 0x80))
                c->key_usage |= SCP_KU_DIGITAL_SIGNATURE;
            break;
        case 0x5F25:
            GUARD(gp_date(t.val, t.len, 0, &c->not_before));
            break;
        case 0x5F24:
            GUARD(gp_date(t.val, t.len, 1, &c->not_after));
            break;
        case 0x7F49: {
            scp_tlv b0, f0;
            GUARD(scp_tlv_find(t.val, t.len, 0xB0, &b0) == 1 ? SCP_OK : SCP_E_FORMAT);
            pt = b0.val, pt_len = b0.len;
            rc = scp_tlv_find(t.val, t.len, 0xF0, &f0);
            GUARD(rc);
            if (rc == 1) {
                ENSURE(f0.len == 1, SCP_E_FORMAT);
                curve = scp_ec_curve_from_gp(f0.val[0]);
                have_curve = 1;
            }
            break;
        }
        case 0x5F37:
            c->tbs_len = at;
            c->sig = t.val, c->sig_len = t.len;
            ENSURE(scp_rd_left(&in) == 0, SCP_E_FORMAT); /* the signature is last */
            break;
        default: /* 53, 73 discretionary data, BF20 authorizations */
            break;
        }
    }
    GUARD(rc);
    ENSURE(c->sig != NULL && pt != NULL && c->serial_len > 0, SCP_E_FORMAT);
    if (!have_curve) /* no F0: the length of the point tells */
        curve = pt_len == 65 ? SCP_EC_P256 : pt_len == 97 ? SCP_EC_P384 : SCP_EC_NONE;
    ENSURE(curve != SCP_EC_NONE, SCP_E_UNSUPPORTED);
    GUARD(scp_ec_from_point(&c->ec, curve, pt, pt_len));
    c->pkey = c->ec.pkey;
    ENSURE(EVP_PKEY_up_ref((EVP_PKEY *)c->pkey) == 1, SCP_E_CRYPTO);
    snprintf(c->name, sizeof(c->name), "GP certificate, serial ");
    for (size_t i = 0; i < c->serial_len && i < 12; i++) {
        size_t l = strlen(c->name);
        snprintf(c->name + l, sizeof(c->name) - l, "%02X", c->serial[i]);
    }
    return SCP_OK;
}

static int asn1_time(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    ENSURE(t != NULL && ASN1_TIME_to_tm(t, &tm) == 1, SCP_E_FORMAT);
    *out = tm_to_unix(&tm);
    return SCP_OK;
}

static int parse_x509(scp_cert *c, const uint8_t *p, size_t len)
{
    const unsigned char *q = p;
    X509 *x = d2i_X509(NULL, &q, (long)len);
    const ASN1_INTEGER *sn;
    const ASN1_OCTET_STRING *ski, *aki;
    X509_NAME_ENTRY *cn;
    int idx;

    ENSURE(x != NULL, SCP_E_FORMAT);
    c->x509 = x;
    c->kind = SCP_CERT_X509;
    ENSURE(q == p + len, SCP_E_FORMAT);
    c->pkey = X509_get_pubkey(x);
    ENSURE(c->pkey != NULL, SCP_E_FORMAT);
    sn = X509_get0_serialNumber(x);
    if (sn != NULL)
        copy_id(c->serial, &c->serial_len, ASN1_STRING_get0_data(sn),
                (size_t)ASN1_STRING_length(sn));
    ski = X509_get0_subject_key_id(x);
    if (ski != NULL)
        copy_id(c->ski, &c->ski_len, ASN1_STRING_get0_data(ski),
                (size_t)ASN1_STRING_length(ski));
    aki = X509_get0_authority_key_id(x);
    if (aki != NULL)
        copy_id(c->aki, &c->aki_len, ASN1_STRING_get0_data(aki),
                (size_t)ASN1_STRING_length(aki));
    if (X509_get_extension_flags(x) & EXFLAG_KUSAGE) {
        c->has_key_usage = 1;
        c->key_usage = X509_get_key_usage(x);
    }
    GUARD(asn1_time(X509_get0_notBefore(x), &c->not_before));
    GUARD(asn1_time(X509_get0_notAfter(x), &c->not_after));
    idx = X509_NAME_get_index_by_NID(X509_get_subject_name(x), NID_commonName, -1);
    cn = idx >= 0 ? X509_NAME_get_entry(X509_get_subject_name(x), idx) : NULL;
    if (cn != NULL) {
        const ASN1_STRING *s = X509_NAME_ENTRY_get_data(cn);
        int l = ASN1_STRING_length(s);
        if (l > (int)sizeof(c->name) - 4)
            l = (int)sizeof(c->name) - 4;
        snprintf(c->name, sizeof(c->name), "CN=%.*s", l, (const char *)ASN1_STRING_get0_data(s));
    } else {
        snprintf(c->name, sizeof(c->name), "X.509 certificate");
    }
    /* the EC view of the key, when it is one we can use for SCP11 */
    if (EVP_PKEY_get_base_id((EVP_PKEY *)c->pkey) == EVP_PKEY_EC) {
        uint8_t pt[SCP_EC_MAX_POINT];
        size_t n = 0;
        char g[64];
        size_t gl = 0;
        if (EVP_PKEY_get_utf8_string_param((EVP_PKEY *)c->pkey, "group", g, sizeof(g), &gl) ==
                1 &&
            EVP_PKEY_get_octet_string_param((EVP_PKEY *)c->pkey, "encoded-pub-key", pt,
                                            sizeof(pt), &n) == 1) {
            int curve = scp_ec_curve_from_name(g);
            /* OpenSSL decoded (and checked) the point: share its key */
            if (curve != SCP_EC_NONE && n == 1 + 2 * scp_ec_field_len(curve) && pt[0] == 0x04) {
                ENSURE(EVP_PKEY_up_ref((EVP_PKEY *)c->pkey) == 1, SCP_E_CRYPTO);
                c->ec.pkey = c->pkey, c->ec.curve = (uint8_t)curve, c->ec.priv = 0;
            }
        }
    }
    return SCP_OK;
}

int scp_cert_parse_openssl(scp_cert *c, const uint8_t *p, size_t len)
{
    int rc;
    ENSURE(c != NULL && p != NULL && len >= 4 && len <= 16384, SCP_E_ARG);
    memset(c, 0, sizeof(*c));
    c->der = p, c->der_len = len;
    rc = parse_x509(c, p, len);
    if (rc != SCP_OK)
        scp_cert_free(c);
    return rc;
}

int scp_cert_parse(scp_cert *c, const uint8_t *p, size_t len)
{
    int rc;
    ENSURE(c != NULL && p != NULL, SCP_E_ARG);
    memset(c, 0, sizeof(*c));
    ENSURE(len >= 4 && len <= 16384, SCP_E_LENGTH);
    c->der = p, c->der_len = len;
    if (p[0] == 0x30) {
        /* EC and ECDSA-SHA256, the common case: without d2i_X509 */
        rc = scp_x509_fast_parse(c, p, len);
        if (rc == SCP_OK && EVP_PKEY_up_ref((EVP_PKEY *)c->ec.pkey) == 1) {
            c->pkey = c->ec.pkey;
            return SCP_OK;
        }
        scp_cert_free(c); /* anything else: OpenSSL */
        c->der = p, c->der_len = len;
        rc = parse_x509(c, p, len);
    } else if (p[0] == 0x7F && p[1] == 0x21) {
        rc = parse_gp(c, p, len);
    }
    else {
        rc = SCP_E_FORMAT;
    }
    if (rc != SCP_OK)
        scp_cert_free(c);
    return rc;
}

int scp_cert_split(const uint8_t *p, size_t len, size_t *off, size_t *lens, size_t max,
                   size_t *n)
{
    scp_rd r;
    scp_tlv t;
    int rc;

    ENSURE(p != NULL && off != NULL && lens != NULL && n != NULL, SCP_E_ARG);
    *n = 0;
    scp_rd_init(&r, p, len);
    if (len >= 2 && p[0] == 0xBF && p[1] == 0x21) { /* BF21 L <certs> */
        rc = scp_tlv_next(&r, &t);
        ENSURE(rc == 1, rc < 0 ? rc : SCP_E_TRUNCATED);
        ENSURE(scp_rd_left(&r) == 0, SCP_E_FORMAT);
        scp_rd_init(&r, t.val, t.len);
    }
    for (;;) {
        size_t at = (size_t)(r.p + r.pos - p); /* where this TLV's tag starts */
        rc = scp_tlv_next(&r, &t);
        if (rc != 1)
            break;
        ENSURE(t.tag == 0x30 || t.tag == 0x7F21, SCP_E_FORMAT);
        ENSURE(*n < max, SCP_E_LENGTH);
        off[*n] = at;
        lens[*n] = (size_t)(t.val - p) + t.len - at;
        (*n)++;
    }
    GUARD(rc);
    ENSURE(*n > 0, SCP_E_NOT_FOUND);
    return SCP_OK;
}

/* ---- trust anchors ---- */

void scp_trust_free(scp_trust *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n; i++)
        EVP_PKEY_free((EVP_PKEY *)t->pkey[i]);
    memset(t, 0, sizeof(*t));
}

static int trust_push(scp_trust *t, EVP_PKEY *k)
{
    if (t->n >= SCP_TRUST_MAX) {
        EVP_PKEY_free(k);
        return SCP_E_LENGTH;
    }
    t->pkey[t->n++] = k;
    return SCP_OK;
}

int scp_trust_add_ec(scp_trust *t, const scp_ec_key *k)
{
    ENSURE(t != NULL && k != NULL && k->pkey != NULL, SCP_E_ARG);
    ENSURE(EVP_PKEY_up_ref((EVP_PKEY *)k->pkey) == 1, SCP_E_CRYPTO);
    return trust_push(t, (EVP_PKEY *)k->pkey);
}

int scp_trust_add_bytes(scp_trust *t, const uint8_t *p, size_t len)
{
    size_t before;
    ENSURE(t != NULL && p != NULL && len > 0 && len < (1u << 20), SCP_E_ARG);
    before = t->n;
    if (len > 10 && memcmp(p, "-----", 5) == 0) {
        BIO *b = BIO_new_mem_buf(p, (int)len);
        char *name = NULL, *hdr = NULL;
        unsigned char *data = NULL;
        long dl = 0;
        ENSURE(b != NULL, SCP_E_NOMEM);
        while (PEM_read_bio(b, &name, &hdr, &data, &dl) == 1) {
            const unsigned char *q = data;
            EVP_PKEY *k = NULL;
            if (strcmp(name, "CERTIFICATE") == 0) {
                X509 *x = d2i_X509(NULL, &q, dl);
                if (x != NULL)
                    k = X509_get_pubkey(x);
                X509_free(x);
            } else if (strcmp(name, "PUBLIC KEY") == 0) {
                k = d2i_PUBKEY(NULL, &q, dl);
            }
            OPENSSL_free(name), OPENSSL_free(hdr), OPENSSL_free(data);
            name = hdr = NULL, data = NULL;
            if (k != NULL && trust_push(t, k) != SCP_OK) {
                BIO_free(b);
                return SCP_E_LENGTH;
            }
        }
        BIO_free(b);
    } else {
        const unsigned char *q = p;
        EVP_PKEY *k = NULL;
        X509 *x = d2i_X509(NULL, &q, (long)len);
        if (x != NULL) {
            k = X509_get_pubkey(x);
            X509_free(x);
        } else {
            q = p;
            k = d2i_PUBKEY(NULL, &q, (long)len);
        }
        if (k != NULL)
            GUARD(trust_push(t, k));
    }
    ENSURE(t->n > before, SCP_E_FORMAT);
    return SCP_OK;
}

static int read_file(const char *path, uint8_t *buf, size_t size, size_t *n)
{
    FILE *f = fopen(path, "rb");
    int rc;
    ENSURE(f != NULL, SCP_E_NOT_FOUND);
    *n = fread(buf, 1, size, f);
    rc = ferror(f) ? SCP_E_IO : *n == size ? SCP_E_LENGTH : SCP_OK;
    fclose(f);
    return rc;
}

int scp_trust_load_file(scp_trust *t, const char *path)
{
    static uint8_t buf[65536];
    size_t n;
    ENSURE(t != NULL && path != NULL, SCP_E_ARG);
    GUARD(read_file(path, buf, sizeof(buf), &n));
    return scp_trust_add_bytes(t, buf, n);
}

int scp_cert_load_file(const char *path, uint8_t *out, size_t out_size, size_t *off,
                       size_t *lens, size_t max, size_t *n)
{
    static uint8_t buf[65536];
    size_t len, used = 0;
    ENSURE(path != NULL && out != NULL && off != NULL && lens != NULL && n != NULL, SCP_E_ARG);
    *n = 0;
    GUARD(read_file(path, buf, sizeof(buf), &len));
    if (len > 10 && memcmp(buf, "-----", 5) == 0) {
        BIO *b = BIO_new_mem_buf(buf, (int)len);
        char *name = NULL, *hdr = NULL;
        unsigned char *data = NULL;
        long dl = 0;
        int rc = SCP_OK;
        ENSURE(b != NULL, SCP_E_NOMEM);
        while (rc == SCP_OK && PEM_read_bio(b, &name, &hdr, &data, &dl) == 1) {
            if (strcmp(name, "CERTIFICATE") == 0) {
                if (*n >= max || used + (size_t)dl > out_size) {
                    rc = SCP_E_BUFFER_TOO_SMALL;
                } else {
                    memcpy(out + used, data, (size_t)dl);
                    off[*n] = used, lens[*n] = (size_t)dl;
                    used += (size_t)dl, (*n)++;
                }
            }
            OPENSSL_free(name), OPENSSL_free(hdr), OPENSSL_free(data);
            name = hdr = NULL, data = NULL;
        }
        BIO_free(b);
        GUARD(rc);
    } else {
        ENSURE(len <= out_size, SCP_E_BUFFER_TOO_SMALL);
        memcpy(out, buf, len);
        GUARD(scp_cert_split(out, len, off, lens, max, n));
    }
    ENSURE(*n > 0, SCP_E_NOT_FOUND);
    return SCP_OK;
}

/* ---- verification ---- */

static void fmt_time(int64_t t, char *out, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (gmtime_r(&tt, &tm) == NULL || strftime(out, size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(out, size, "%lld", (long long)t);
}

__attribute__((format(printf, 5, 6))) static int fail(scp_cert_error *err, int index,
                                                       const scp_cert *c, size_t n,
                                                       const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        size_t l;
        err->index = index;
        snprintf(err->text, sizeof(err->text), "certificate %d of %zu (%s): ", index, n,
                 c != NULL ? c->name : "?");
        l = strlen(err->text);
        va_start(ap, fmt);
        vsnprintf(err->text + l, sizeof(err->text) - l, fmt, ap);
        va_end(ap);
    }
    return SCP_E_AUTH;
}

/* Is c signed by k? 1 yes, 0 no. */
static int signed_by(const scp_cert *c, EVP_PKEY *k)
{
    if (c->kind == SCP_CERT_X509 && c->x509 != NULL)
        return X509_verify((X509 *)c->x509, k) == 1;
    /* GP: ECDSA with SHA-256 over the data objects before 5F37; X.509 from
     * the fast path: over the DER tbsCertificate */
    if (EVP_PKEY_get_base_id(k) != EVP_PKEY_EC)
        return 0;
    scp_ec_key ek = { k, 0, 0 };
    char g[64];
    size_t gl = 0;
    if (EVP_PKEY_get_utf8_string_param(k, "group", g, sizeof(g), &gl) != 1)
        return 0;
    ek.curve = (uint8_t)scp_ec_curve_from_name(g);
    return scp_ecdsa_verify(&ek, c->tbs, c->tbs_len, c->sig, c->sig_len) == SCP_OK;
}

int scp_cert_verify_chain(const scp_cert *chain, size_t n, const scp_trust *t, int64_t now,
                          uint32_t leaf_usage, scp_cert_error *err)
{
    char when[40];
    if (err != NULL)
        err->index = 0, err->text[0] = '\0';
    ENSURE(chain != NULL && t != NULL, SCP_E_ARG);
    if (n == 0 || n > SCP_CERT_MAX_CHAIN) {
        if (err != NULL)
            snprintf(err->text, sizeof(err->text), "chain of %zu certificates (1..%d allowed)",
                     n, SCP_CERT_MAX_CHAIN);
        return SCP_E_AUTH;
    }
    if (t->n == 0) {
        if (err != NULL)
            snprintf(err->text, sizeof(err->text), "no trust anchor given");
        return SCP_E_AUTH;
    }
    for (size_t i = 0; i < n; i++) {
        const scp_cert *c = &chain[i];
        int ok = 0, leaf = i + 1 == n;
        if (i == 0) {
            for (size_t a = 0; a < t->n && !ok; a++)
                ok = signed_by(c, (EVP_PKEY *)t->pkey[a]);
            if (!ok)
                return fail(err, 1, c, n, "signature does not verify against the trust anchor");
        } else if (!signed_by(c, (EVP_PKEY *)chain[i - 1].pkey)) {
            return fail(err, (int)i + 1, c, n,
                        "signature does not verify against certificate %zu's key", i);
        }
        if (c->not_before != 0 && now < c->not_before) {
            fmt_time(c->not_before, when, sizeof(when));
            return fail(err, (int)i + 1, c, n, "not yet valid (valid from %s)", when);
        }
        if (c->not_after != 0 && now > c->not_after) {
            fmt_time(c->not_after, when, sizeof(when));
            return fail(err, (int)i + 1, c, n, "expired on %s", when);
        }
        if (leaf && leaf_usage && c->has_key_usage && (c->key_usage & leaf_usage) != leaf_usage)
            return fail(err, (int)i + 1, c, n, "key usage lacks %s",
                        leaf_usage & SCP_KU_KEY_AGREEMENT ? "keyAgreement" : "the usage needed");
        if (!leaf && c->kind == SCP_CERT_X509 && c->has_key_usage &&
            !(c->key_usage & SCP_KU_KEY_CERT_SIGN))
            return fail(err, (int)i + 1, c, n, "is not allowed to sign certificates (key usage)");
    }
    if (chain[n - 1].ec.pkey == NULL)
        return fail(err, (int)n, &chain[n - 1], n,
                    "leaf key is not an EC key on P-256, P-384 or brainpoolP256r1");
    return SCP_OK;
}

/* ---- issuing (lab CAs, the virtual card) ---- */

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *e;
    int ok;
    X509V3_set_ctx(&ctx, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
    e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (e == NULL)
        return 0;
    ok = X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    return ok;
}

int scp_cert_fill_x509(X509 *x, X509 *iss, const scp_ec_key *subj, const char *cn, int ca,
                       int64_t not_before, int days, uint64_t serial)
{
    if (X509_set_version(x, 2) != 1 ||
        ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial) != 1 ||
        X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
                                   (const unsigned char *)cn, -1, -1, 0) != 1 ||
        X509_set_issuer_name(x, iss != NULL ? X509_get_subject_name(iss)
                                            : X509_get_subject_name(x)) != 1 ||
        ASN1_TIME_set(X509_getm_notBefore(x), (time_t)not_before) == NULL ||
        ASN1_TIME_set(X509_getm_notAfter(x), (time_t)(not_before + (int64_t)days * 86400)) ==
            NULL ||
        X509_set_pubkey(x, (EVP_PKEY *)subj->pkey) != 1)
        return 0;
    if (!add_ext(x, iss, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE") ||
        !add_ext(x, iss, NID_key_usage,
                 ca ? "critical,keyCertSign,cRLSign" : "critical,keyAgreement") ||
        !add_ext(x, iss, NID_subject_key_identifier, "hash") ||
        (iss != NULL && !add_ext(x, iss, NID_authority_key_identifier, "keyid:always")))
        return 0;
    return 1;
}

int scp_cert_issue(const scp_ec_key *subj, const char *cn, const scp_ec_key *issuer_key,
                   const uint8_t *issuer_der, size_t issuer_len, int ca, int64_t not_before,
                   int days, uint64_t serial, uint8_t *out, size_t out_size, size_t *out_len)
{
    X509 *x = NULL, *iss = NULL;
    unsigned char *der = NULL;
    int rc = SCP_E_CRYPTO, dl;

    ENSURE(subj != NULL && subj->pkey != NULL && cn != NULL && issuer_key != NULL &&
               issuer_key->priv && out != NULL && out_len != NULL && days > 0,
           SCP_E_ARG);
    if (issuer_der != NULL) {
        const unsigned char *q = issuer_der;
        iss = d2i_X509(NULL, &q, (long)issuer_len);
        ENSURE(iss != NULL, SCP_E_FORMAT);
    }
    x = X509_new();
    if (x == NULL)
        goto out;
    if (!scp_cert_fill_x509(x, iss, subj, cn, ca, not_before, days, serial))
        goto out;
    if (X509_sign(x, (EVP_PKEY *)issuer_key->pkey, EVP_sha256()) <= 0)
        goto out;
    dl = i2d_X509(x, &der);
    if (dl <= 0)
        goto out;
    rc = SCP_E_BUFFER_TOO_SMALL;
    if ((size_t)dl > out_size)
        goto out;
    memcpy(out, der, (size_t)dl);
    *out_len = (size_t)dl;
    rc = SCP_OK;
out:
    OPENSSL_free(der);
    X509_free(x);
    X509_free(iss);
    return rc;
}

int scp_cert_to_pem(const uint8_t *der, size_t len, char *out, size_t out_size,
                    size_t *out_len)
{
    const unsigned char *q = der;
    X509 *x;
    BIO *b;
    char *p;
    long n;
    int rc = SCP_E_CRYPTO;
    ENSURE(der != NULL && out != NULL && out_len != NULL, SCP_E_ARG);
    x = d2i_X509(NULL, &q, (long)len);
    ENSURE(x != NULL, SCP_E_FORMAT);
    b = BIO_new(BIO_s_mem());
    if (b != NULL && PEM_write_bio_X509(b, x) == 1 && (n = BIO_get_mem_data(b, &p)) > 0) {
        rc = (size_t)n + 1 > out_size ? SCP_E_BUFFER_TOO_SMALL : SCP_OK;
        if (rc == SCP_OK) {
            memcpy(out, p, (size_t)n);
            out[n] = '\0';
            *out_len = (size_t)n;
        }
    }
    BIO_free(b);
    X509_free(x);
    return rc;
}
