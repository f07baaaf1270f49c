/* SCP11 certificates: the Samsung OpenSCP-Java certificates (X.509 on
 * P-256/P-384/brainpoolP256r1 keys and GP 7F21) parsed and verified
 * against the two test CA keys (tests/vectors/scp11_openscp_ca.txt,
 * recovered from the published signatures); certificate stores split as
 * the source expects (BF21-wrapped GP and X.509 chains) and as a YubiKey
 * returns them (concatenated); a lab chain issued here checked for every
 * failure the operator must see named: wrong signature, wrong anchor,
 * expired, not yet valid, key usage. */
#include <stdlib.h>
#include <time.h>

#include "scpkit/cert.h"
#include "scpkit/ec.h"
#include "crypto/x509fast.h"
#include "test.h"

#define T_2025_06_01 1748736000 /* within every Samsung certificate's validity */
#define T_2026_06_01 1780272000 /* after the X.509 ones expire (2026-05-09) */
#define T_2029_01_01 1861920000 /* after the GP ones expire (2028-12-31) */

static scp_ec_key kloc, klcc;

static void load_cas(void)
{
    vec_file vf;
    int n = 0;
    if (vec_load(vec_path("scp11_openscp_ca.txt"), &vf) != 0) {
        CHECK(!"cannot load scp11_openscp_ca.txt");
        return;
    }
    for (size_t i = 0; i < vf.n; i++) {
        const vec_field *nm = vec_get(&vf.r[i], "name", 0), *pt = vec_get(&vf.r[i], "point", 0);
        scp_ec_key *k = strstr(nm->text, "KLOC") ? &kloc : &klcc;
        CHECK_OK(scp_ec_from_point(k, SCP_EC_P256, pt->bytes, pt->len));
        n++;
    }
    CHECK(n == 2);
    vec_free(&vf);
}

static int verify1(const uint8_t *der, size_t len, const scp_ec_key *ca, int64_t now,
                   scp_cert_error *err)
{
    scp_cert c;
    scp_trust t = { 0 };
    int rc = scp_cert_parse(&c, der, len);
    if (rc != SCP_OK)
        return rc;
    CHECK_OK(scp_trust_add_ec(&t, ca));
    rc = scp_cert_verify_chain(&c, 1, &t, now, SCP_KU_KEY_AGREEMENT, err);
    scp_trust_free(&t);
    scp_cert_free(&c);
    return rc;
}

static void samsung(void)
{
    vec_file vf;
    scp_cert_error err;
    int oce = 0, sd = 0, stores = 0;
    if (vec_load(vec_path("scp11_openscp.txt"), &vf) != 0) {
        CHECK(!"cannot load scp11_openscp.txt");
        return;
    }
    for (size_t i = 0; i < vf.n; i++) {
        vec_record *r = &vf.r[i];
        if (strcmp(r->type, "scp11") == 0) {
            const vec_field *f = vec_get(r, "oce_cert", 0);
            uint8_t store[4096], bad[1024];
            size_t sl = 0, off[8], lens[8], n;
            int gp = f->bytes[0] == 0x7F;
            CHECK_OK(verify1(f->bytes, f->len, &kloc, T_2025_06_01, &err));
            /* the other CA did not sign it */
            CHECK_RC(verify1(f->bytes, f->len, &klcc, T_2025_06_01, &err), SCP_E_AUTH);
            CHECK(err.index == 1 && strstr(err.text, "signature does not verify") != NULL);
            /* one bit of the signature's last byte */
            memcpy(bad, f->bytes, f->len);
            bad[f->len - 1] ^= 0x01;
            CHECK_RC(verify1(bad, f->len, &kloc, T_2025_06_01, &err), SCP_E_AUTH);
            /* one bit of the signed data (in the serial number) */
            memcpy(bad, f->bytes, f->len);
            bad[gp ? 10 : 20] ^= 0x01;
            CHECK(verify1(bad, f->len, &kloc, T_2025_06_01, &err) != SCP_OK);
            /* expired */
            CHECK_RC(verify1(f->bytes, f->len, &kloc, gp ? T_2029_01_01 : T_2026_06_01, &err),
                     SCP_E_AUTH);
            CHECK(err.index == 1 && strstr(err.text, "expired on") != NULL);
            if (!gp) { /* not yet valid: before 2025-02-06 */
                CHECK_RC(verify1(f->bytes, f->len, &kloc, 1700000000, &err), SCP_E_AUTH);
                CHECK(strstr(err.text, "not yet valid") != NULL);
                CHECK(strstr(err.text, "CN=OCE Certificate (TEST)") != NULL);
            } else {
                CHECK(strstr(err.text, "GP certificate, serial 6DBC19AF") != NULL);
            }
            oce++;
            for (int k = 0; (f = vec_get(r, "get_data_rapdu", k)) != NULL; k++) {
                memcpy(store + sl, f->bytes, f->len - 2);
                sl += f->len - 2;
            }
            CHECK_OK(scp_cert_split(store, sl, off, lens, 8, &n));
            CHECK(n == 1);
            CHECK_OK(verify1(store + off[0], lens[0], &klcc, T_2025_06_01, &err));
            if (err.text[0])
                fprintf(stderr, "%s\n", err.text);
            CHECK_RC(verify1(store + off[0], lens[0], &kloc, T_2025_06_01, &err), SCP_E_AUTH);
            sd++;
        } else if (strcmp(r->type, "cert_store") == 0) {
            uint8_t store[4096];
            size_t sl = 0, off[8], lens[8], n;
            const vec_field *f;
            int k;
            for (k = 0; (f = vec_get(r, "rapdu", k)) != NULL; k++) {
                memcpy(store + sl, f->bytes, f->len - 2);
                sl += f->len - 2;
            }
            CHECK_OK(scp_cert_split(store, sl, off, lens, 8, &n));
            for (k = 0; (f = vec_get(r, "cert", k)) != NULL; k++) {
                CHECK((size_t)k < n);
                if ((size_t)k < n)
                    CHECK_MEM(store + off[k], lens[k], f->bytes, f->len);
            }
            CHECK((size_t)k == n && n == 2);
            /* the same certificates without the BF21 wrapper (YubiKey 5.7) */
            size_t hl = store[2] == 0x82 ? 5 : 4, off2[8], lens2[8], n2;
            CHECK_OK(scp_cert_split(store + hl, sl - hl, off2, lens2, 8, &n2));
            CHECK(n2 == n && lens2[1] == lens[1]);
            /* a store cut short, and one with a foreign TLV */
            CHECK(scp_cert_split(store, sl - 1, off, lens, 8, &n) < 0);
            CHECK(scp_cert_split(store + hl, sl - hl - 1, off2, lens2, 8, &n2) < 0);
            store[hl] = 0x31;
            CHECK(scp_cert_split(store + hl, sl - hl, off2, lens2, 8, &n2) < 0);
            stores++;
        }
    }
    CHECK(oce == 8 && sd == 8 && stores == 2);
    vec_free(&vf);
}

/* A lab chain: root CA -> intermediate CA -> leaf (keyAgreement). */
static void lab_chain(int curve)
{
    static uint8_t der[4][2048];
    size_t dl[4];
    scp_ec_key root = { 0 }, inter = { 0 }, leaf = { 0 }, other = { 0 };
    scp_cert c[3];
    scp_trust t = { 0 }, wrong = { 0 };
    scp_cert_error err;
    int64_t t0 = 1767225600; /* 2026-01-01 */

    CHECK_OK(scp_ec_generate(&root, curve));
    CHECK_OK(scp_ec_generate(&inter, curve));
    CHECK_OK(scp_ec_generate(&leaf, curve));
    CHECK_OK(scp_ec_generate(&other, curve));
    CHECK_OK(scp_cert_issue(&root, "Lab Root", &root, NULL, 0, 1, t0, 3650, 1, der[0], 2048,
                            &dl[0]));
    CHECK_OK(scp_cert_issue(&inter, "Lab Intermediate", &root, der[0], dl[0], 1, t0, 365, 2,
                            der[1], 2048, &dl[1]));
    CHECK_OK(scp_cert_issue(&leaf, "Lab OCE", &inter, der[1], dl[1], 0, t0, 30, 3, der[2], 2048,
                            &dl[2]));
    for (int i = 0; i < 3; i++)
        CHECK_OK(scp_cert_parse(&c[i], der[i], dl[i]));
    CHECK(c[2].ec.curve == curve && c[2].has_key_usage &&
          c[2].key_usage == SCP_KU_KEY_AGREEMENT);
    CHECK_OK(scp_trust_add_bytes(&t, der[0], dl[0]));
    CHECK_OK(scp_trust_add_ec(&wrong, &other));
    /* the chain below the root (the anchor itself is not sent) */
    CHECK_OK(scp_cert_verify_chain(&c[1], 2, &t, t0 + 86400, SCP_KU_KEY_AGREEMENT, &err));
    CHECK_RC(scp_cert_verify_chain(&c[1], 2, &wrong, t0 + 86400, SCP_KU_KEY_AGREEMENT, &err),
             SCP_E_AUTH);
    CHECK(err.index == 1 && strstr(err.text, "CN=Lab Intermediate") != NULL);
    /* leaf expired after 30 days: certificate 2 named */
    CHECK_RC(scp_cert_verify_chain(&c[1], 2, &t, t0 + 40 * 86400, SCP_KU_KEY_AGREEMENT, &err),
             SCP_E_AUTH);
    CHECK(err.index == 2 && strstr(err.text, "expired on 2026-01-31") != NULL);
    CHECK_RC(scp_cert_verify_chain(&c[1], 2, &t, t0 - 1, SCP_KU_KEY_AGREEMENT, &err), SCP_E_AUTH);
    CHECK(err.index == 1 && strstr(err.text, "not yet valid") != NULL);
    /* out of order: the leaf is not signed by the root */
    scp_cert swapped[2] = { c[2], c[1] };
    CHECK_RC(scp_cert_verify_chain(swapped, 2, &t, t0 + 86400, SCP_KU_KEY_AGREEMENT, &err),
             SCP_E_AUTH);
    CHECK(err.index == 1);
    /* a CA certificate as the leaf: no keyAgreement */
    CHECK_RC(scp_cert_verify_chain(&c[1], 1, &t, t0 + 86400, SCP_KU_KEY_AGREEMENT, &err),
             SCP_E_AUTH);
    CHECK(strstr(err.text, "keyAgreement") != NULL);
    /* a leaf as an intermediate: may not sign certificates */
    CHECK_OK(scp_cert_issue(&inter, "Not a CA", &root, der[0], dl[0], 0, t0, 365, 4, der[3],
                            2048, &dl[3]));
    scp_cert notca[2];
    CHECK_OK(scp_cert_parse(&notca[0], der[3], dl[3]));
    notca[1] = c[2];
    CHECK_RC(scp_cert_verify_chain(notca, 2, &t, t0 + 86400, SCP_KU_KEY_AGREEMENT, &err),
             SCP_E_AUTH);
    CHECK(err.index == 1 && strstr(err.text, "sign certificates") != NULL);
    scp_cert_free(&notca[0]);
    /* PEM round trip into a trust store */
    {
        char pem[4096];
        size_t pl;
        scp_trust t2 = { 0 };
        CHECK_OK(scp_cert_to_pem(der[0], dl[0], pem, sizeof(pem), &pl));
        CHECK_OK(scp_trust_add_bytes(&t2, (const uint8_t *)pem, pl));
        CHECK(t2.n == 1);
        CHECK_OK(scp_cert_verify_chain(&c[1], 2, &t2, t0 + 86400, SCP_KU_KEY_AGREEMENT, &err));
        scp_trust_free(&t2);
    }
    for (int i = 0; i < 3; i++)
        scp_cert_free(&c[i]);
    scp_trust_free(&t), scp_trust_free(&wrong);
    scp_ec_free(&root), scp_ec_free(&inter), scp_ec_free(&leaf), scp_ec_free(&other);
}

/* The fast X.509 path and OpenSSL's d2i_X509 read the same fields; a
 * certificate the fast path does not take still parses (RSA-signed). */
static int same_parse(const uint8_t *der, size_t len)
{
    scp_cert a, b;
    uint8_t pa[SCP_EC_MAX_POINT], pb[SCP_EC_MAX_POINT];
    size_t la = 0, lb = 0;
    int fast;
    if (scp_cert_parse(&a, der, len) != SCP_OK)
        return -1;
    fast = a.x509 == NULL;
    CHECK_OK(scp_cert_parse_openssl(&b, der, len));
    CHECK(b.x509 != NULL);
    CHECK_MEM(a.serial, a.serial_len, b.serial, b.serial_len);
    CHECK_MEM(a.ski, a.ski_len, b.ski, b.ski_len);
    CHECK_MEM(a.aki, a.aki_len, b.aki, b.aki_len);
    CHECK(a.has_key_usage == b.has_key_usage && a.key_usage == b.key_usage);
    CHECK(a.not_before == b.not_before && a.not_after == b.not_after);
    CHECK(strcmp(a.name, b.name) == 0);
    if (a.ec.pkey && b.ec.pkey) {
        CHECK_OK(scp_ec_point(&a.ec, pa, sizeof(pa), &la));
        CHECK_OK(scp_ec_point(&b.ec, pb, sizeof(pb), &lb));
        CHECK_MEM(pa, la, pb, lb);
    }
    scp_cert_free(&a), scp_cert_free(&b);
    return fast;
}

static void fast_vs_openssl(void)
{
    vec_file vf;
    int fast = 0;
    if (vec_load(vec_path("scp11_openscp.txt"), &vf) != 0)
        return;
    for (size_t i = 0; i < vf.n; i++) {
        const vec_field *f = vec_get(&vf.r[i], "oce_cert", 0);
        if (f != NULL && f->bytes[0] == 0x30)
            fast += same_parse(f->bytes, f->len) == 1;
        for (int k = 0; (f = vec_get(&vf.r[i], "cert", k)) != NULL; k++)
            if (f->bytes[0] == 0x30)
                fast += same_parse(f->bytes, f->len) == 1;
    }
    vec_free(&vf);
    CHECK(fast == 9); /* 7 OCE certificates, the 2 of the X.509 chain store */
    /* lab certificates on every curve */
    static const int curves[] = { SCP_EC_P256, SCP_EC_P384, SCP_EC_BP256 };
    for (int i = 0; i < 3; i++) {
        scp_ec_key k = { 0 }, ca = { 0 };
        uint8_t der[1024];
        size_t dl;
        CHECK_OK(scp_ec_generate(&k, curves[i]));
        CHECK_OK(scp_ec_generate(&ca, SCP_EC_P256));
        CHECK_OK(scp_cert_issue(&k, "fast path", &ca, NULL, 0, 0, 1767225600, 10, 77, der,
                                sizeof(der), &dl));
        CHECK(same_parse(der, dl) == 1);
        scp_ec_free(&k), scp_ec_free(&ca);
    }
}

static void gp_parse_errors(void)
{
    /* a GP certificate cut anywhere must fail cleanly */
    vec_file vf;
    if (vec_load(vec_path("scp11_openscp.txt"), &vf) != 0)
        return;
    for (size_t i = 0; i < vf.n; i++) {
        const vec_field *f = vec_get(&vf.r[i], "oce_cert", 0);
        if (f == NULL || f->bytes[0] != 0x7F)
            continue;
        scp_cert c;
        for (size_t cut = 1; cut < f->len; cut++)
            CHECK(scp_cert_parse(&c, f->bytes, cut) != SCP_OK);
        uint8_t bad[512];
        memcpy(bad, f->bytes, f->len);
        bad[87] = 0x05; /* the B0 point's 04 becomes 05 */
        CHECK(scp_cert_parse(&c, bad, f->len) != SCP_OK);
        break;
    }
    vec_free(&vf);
}

int main(void)
{
    load_cas();
    samsung();
    lab_chain(SCP_EC_P256);
    lab_chain(SCP_EC_P384);
    lab_chain(SCP_EC_BP256);
    gp_parse_errors();
    fast_vs_openssl();
    scp_ec_free(&kloc), scp_ec_free(&klcc);
    return test_done("test_scp11_cert");
}
