/* EC key pairs in the keystore (issue 16 item 5): generated in the token
 * and imported by unwrap on P-256, P-384 and brainpoolP256r1; never
 * readable (CKA_SENSITIVE, not extractable: C_GetAttributeValue(CKA_VALUE)
 * refused); ECDH (CKM_ECDH1_DERIVE) and ECDSA in the token against
 * OpenSSL and a published known answer; the lifecycle (only active keys
 * are used; destroyed pairs leave the token with both halves), every use
 * audited, the lab CA's certificates verified by the chain checker; the
 * audit verification (keys against the token) passes at the end. */
#include <time.h>
#include "ks_test.h"
#include "keys/internal.h"
#include "scpkit/cert.h"
#include "scpkit/crypto.h"
#include <openssl/sha.h>

/* RFC 5903 section 8.1 (ECDH with P-256): i, g^r and the shared x. */
static const uint8_t rfc5903_i[32] = {
    0xC8, 0x8F, 0x01, 0xF5, 0x10, 0xD9, 0xAC, 0x3F, 0x70, 0xA2, 0x92, 0xDA, 0xA2, 0x31, 0x6D, 0xE5,
    0x44, 0xE9, 0xAA, 0xB8, 0xAF, 0xE8, 0x40, 0x49, 0xC6, 0x2A, 0x9C, 0x57, 0x86, 0x2D, 0x14, 0x33};
static const uint8_t rfc5903_gr[65] = {
    0x04, 0xD1, 0x2D, 0xFB, 0x52, 0x89, 0xC8, 0xD4, 0xF8, 0x12, 0x08, 0xB7, 0x02, 0x70, 0x39,
    0x8C, 0x34, 0x22, 0x96, 0x97, 0x0A, 0x0B, 0xCC, 0xB7, 0x4C, 0x73, 0x6F, 0xC7, 0x55, 0x44,
    0x94, 0xBF, 0x63, 0x56, 0xFB, 0xF3, 0xCA, 0x36, 0x6C, 0xC2, 0x3E, 0x81, 0x57, 0x85, 0x4C,
    0x13, 0xC5, 0x8D, 0x6A, 0xAC, 0x23, 0xF0, 0x46, 0xAD, 0xA3, 0x0F, 0x83, 0x53, 0xE7, 0x4F,
    0x33, 0x03, 0x98, 0x72, 0xAB};
static const uint8_t rfc5903_z[32] = {
    0xD6, 0x84, 0x0F, 0x6B, 0x42, 0xF6, 0xED, 0xAF, 0xD1, 0x31, 0x16, 0xE0, 0xE1, 0x25, 0x65, 0x20,
    0x2F, 0xEF, 0x8E, 0x9E, 0xCE, 0x7D, 0xCE, 0x03, 0x81, 0x24, 0x64, 0xD0, 0x4B, 0x94, 0x42, 0xDE};

static void activate(scp_keystore *ks, const char *label, uint32_t v)
{
    CHECK_OK(scp_keystore_activate_custodians(ks, label, v, "carol", "carol-pin", "dave",
                                              "dave-pin", "in service"));
}

static int audit_count(scp_keystore *ks, const char *op)
{
    sqlite3_stmt *st;
    int n = -1;
    if (sqlite3_prepare_v2(ks->db, "SELECT COUNT(*) FROM audit WHERE op = ?1", -1, &st, NULL) !=
        SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, op, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* The private object refuses to show its value. */
static void check_sealed(scp_keystore *ks, const char *label, uint32_t v)
{
    char id[SCP_KS_LABEL_MAX + 16];
    CK_OBJECT_HANDLE h;
    uint8_t val[64];
    CK_BBOOL sens = 0, extr = 1;
    CHECK_OK(ks_obj_id(label, v, id, sizeof(id)));
    CHECK_OK(scp_p11_find(&ks->p11, CKO_PRIVATE_KEY, id, &h));
    CK_ATTRIBUTE a = {CKA_VALUE, val, sizeof(val)};
    CHECK(ks->p11.f->C_GetAttributeValue(ks->p11.sess, h, &a, 1) == CKR_ATTRIBUTE_SENSITIVE);
    CK_ATTRIBUTE b[] = {{CKA_SENSITIVE, &sens, 1}, {CKA_EXTRACTABLE, &extr, 1}};
    CHECK(ks->p11.f->C_GetAttributeValue(ks->p11.sess, h, b, 2) == CKR_OK);
    CHECK(sens == CK_TRUE && extr == CK_FALSE);
}

/* ECDH and ECDSA in the token against OpenSSL with the public half. */
static void check_uses(scp_keystore *ks, const char *label, uint32_t v, int curve)
{
    scp_ec_key pub = {0}, e = {0};
    uint8_t pt[SCP_EC_MAX_POINT], z1[SCP_EC_MAX_FIELD], z2[SCP_EC_MAX_FIELD], sig[SCP_ECDSA_MAX_SIG];
    size_t pl, l1 = 0, l2 = 0, sl = 0;
    static const uint8_t msg[] = "certificate to be signed";
    CHECK_OK(scp_keystore_ec_public(ks, label, v, &pub));
    CHECK(pub.curve == curve);
    CHECK_OK(scp_ec_generate(&e, curve));
    CHECK_OK(scp_ec_point(&e, pt, sizeof(pt), &pl));
    CHECK_OK(scp_keystore_ecdh(ks, label, v, pt, pl, "test", z1, sizeof(z1), &l1));
    CHECK_OK(scp_ecdh(&e, &pub, z2, sizeof(z2), &l2));
    CHECK(l1 == scp_ec_field_len(curve));
    CHECK_MEM(z1, l1, z2, l2);
    CHECK_OK(scp_keystore_ec_sign(ks, label, v, msg, sizeof(msg), "test", sig, sizeof(sig), &sl));
    CHECK_OK(scp_ecdsa_verify(&pub, msg, sizeof(msg), sig, sl));
    sig[sl - 1] ^= 1; /* tampered twin */
    CHECK(scp_ecdsa_verify(&pub, msg, sizeof(msg), sig, sl) != SCP_OK);
    /* a point on another curve (or off this one) never reaches the token */
    pt[pl - 1] ^= 1;
    CHECK(scp_keystore_ecdh(ks, label, v, pt, pl, "test", z1, sizeof(z1), &l1) != SCP_OK);
    scp_ec_free(&pub);
    scp_ec_free(&e);
}

int main(void)
{
    scp_keystore *ks = ks_fresh();
    static const struct {
        scp_ks_type t;
        int curve;
        const char *name;
    } types[] = {{SCP_KS_EC_P256, SCP_EC_P256, "ec-p256"},
                 {SCP_KS_EC_P384, SCP_EC_P384, "ec-p384"},
                 {SCP_KS_EC_BP256, SCP_EC_BP256, "ec-bp256"}};
    scp_ks_key_info k;
    scp_ks_type pt;
    uint8_t z[SCP_EC_MAX_FIELD], pnt[SCP_EC_MAX_POINT];
    size_t zl = 0, pl;

    CHECK_OK(scp_keystore_custodian_add(ks, "carol", "carol-pin"));
    CHECK_OK(scp_keystore_custodian_add(ks, "dave", "dave-pin"));
    for (size_t i = 0; i < 3; i++) {
        char label[32];
        CHECK_OK(scp_ks_type_parse(types[i].name, &pt));
        CHECK(pt == types[i].t && strcmp(scp_ks_type_name(pt), types[i].name) == 0);
        CHECK(scp_ks_type_is_ec(pt) && scp_ks_type_curve(pt) == types[i].curve);
        /* generated in the token */
        snprintf(label, sizeof(label), "gen-%s", types[i].name);
        CHECK_OK(scp_keystore_generate(ks, label, 0, types[i].t, &k));
        CHECK(k.state == SCP_KS_PRE_ACTIVATION && k.length == scp_ec_field_len(types[i].curve));
        check_sealed(ks, label, k.version);
        /* pre-activation: not used (SP 800-57), and the refusal is audited */
        int before = audit_count(ks, "ecdh");
        CHECK_RC(scp_keystore_ecdh(ks, label, k.version, rfc5903_gr, sizeof(rfc5903_gr), "t", z,
                                   sizeof(z), &zl),
                 SCP_E_STATE);
        CHECK(audit_count(ks, "ecdh") == before + 1);
        activate(ks, label, k.version);
        /* KCV = SHA-256(point)[0..2] */
        scp_ec_key pub = {0};
        uint8_t d[32];
        CHECK_OK(scp_keystore_ec_public(ks, label, k.version, &pub));
        CHECK_OK(scp_ec_point(&pub, pnt, sizeof(pnt), &pl));
        SHA256(pnt, pl, d);
        CHECK_MEM(k.kcv, 3, d, 3);
        scp_ec_free(&pub);
        check_uses(ks, label, k.version, types[i].curve);
        /* no diversification with an EC key */
        scp03_keys out;
        uint8_t kdd[SCP03_KDD_LEN] = {0};
        CHECK_RC(scp_keystore_derive(ks, label, k.version, SCP_DIV_KDF3, kdd, sizeof(kdd), 1, &out),
                 SCP_E_UNSUPPORTED);
        /* imported by unwrap */
        scp_ec_key sw = {0};
        CHECK_OK(scp_ec_generate(&sw, types[i].curve));
        snprintf(label, sizeof(label), "imp-%s", types[i].name);
        CHECK_OK(scp_keystore_import_ec(ks, label, 0, &sw, &k));
        CHECK(strcmp(k.origin, "import") == 0 && k.type == types[i].t);
        check_sealed(ks, label, k.version);
        activate(ks, label, k.version);
        check_uses(ks, label, k.version, types[i].curve);
        /* the token's ECDH equals OpenSSL's with the imported value */
        scp_ec_key e = {0};
        uint8_t z2[SCP_EC_MAX_FIELD];
        size_t l2 = 0;
        CHECK_OK(scp_ec_generate(&e, types[i].curve));
        CHECK_OK(scp_ec_point(&e, pnt, sizeof(pnt), &pl));
        CHECK_OK(scp_keystore_ecdh(ks, label, k.version, pnt, pl, "t", z, sizeof(z), &zl));
        CHECK_OK(scp_ecdh(&sw, &e, z2, sizeof(z2), &l2));
        CHECK_MEM(z, zl, z2, l2);
        scp_ec_free(&e);
        scp_ec_free(&sw);
        /* a point of another curve is refused */
        if (types[i].curve != SCP_EC_P256)
            CHECK(scp_keystore_ecdh(ks, label, k.version, rfc5903_gr, sizeof(rfc5903_gr), "t", z,
                                    sizeof(z), &zl) != SCP_OK);
    }

    /* RFC 5903 8.1: i imported, ECDH with g^r in the token gives the
     * published shared x */
    scp_ec_key ki = {0};
    CHECK_OK(scp_ec_from_private(&ki, SCP_EC_P256, rfc5903_i, sizeof(rfc5903_i)));
    CHECK_OK(scp_keystore_import_ec(ks, "rfc5903", 0, &ki, &k));
    scp_ec_free(&ki);
    activate(ks, "rfc5903", k.version);
    CHECK_OK(scp_keystore_ecdh(ks, "rfc5903", 0, rfc5903_gr, sizeof(rfc5903_gr), "kat", z,
                               sizeof(z), &zl));
    CHECK_MEM(z, zl, rfc5903_z, sizeof(rfc5903_z));

    /* wrong label, not an EC key, shares refused */
    CHECK_RC(scp_keystore_ecdh(ks, "nosuch", 0, rfc5903_gr, sizeof(rfc5903_gr), "t", z, sizeof(z),
                               &zl),
             SCP_E_NOT_FOUND);
    CHECK_OK(scp_keystore_generate(ks, "aes", 0, SCP_KS_AES128, &k));
    CHECK_RC(scp_keystore_ecdh(ks, "aes", 0, rfc5903_gr, sizeof(rfc5903_gr), "t", z, sizeof(z),
                               &zl),
             SCP_E_ARG);
    char shares[5][SCP_KS_SHARE_TEXT_MAX];
    CHECK_RC(scp_keystore_split_new(ks, "split-ec", 0, SCP_KS_EC_P256, 0, 3, 5, shares, &k),
             SCP_E_ARG);

    /* suspended: refused again; destroyed: both objects leave the token */
    CHECK_OK(scp_keystore_set_state(ks, "rfc5903", 1, SCP_KS_SUSPENDED, "pause"));
    CHECK_RC(scp_keystore_ecdh(ks, "rfc5903", 0, rfc5903_gr, sizeof(rfc5903_gr), "t", z,
                               sizeof(z), &zl),
             SCP_E_STATE);
    CHECK_OK(scp_keystore_set_state(ks, "rfc5903", 1, SCP_KS_DEACTIVATED, "retired"));
    CHECK_OK(scp_keystore_set_state(ks, "rfc5903", 1, SCP_KS_DESTROYED, "gone"));
    CK_OBJECT_HANDLE h;
    CHECK_RC(scp_p11_find(&ks->p11, CKO_PRIVATE_KEY, "rfc5903:1", &h), SCP_E_NOT_FOUND);
    CHECK_RC(scp_p11_find(&ks->p11, CKO_PUBLIC_KEY, "rfc5903:1", &h), SCP_E_NOT_FOUND);

    /* the lab CA: a self-signed CA and an OCE leaf, both signed in the
     * token, verified by the chain checker; an issuer certificate of
     * another key is refused */
    scp_ec_key ca_pub = {0}, oce_pub = {0}, other = {0};
    uint8_t ca_der[1024], leaf_der[1024], o_der[1024];
    size_t ca_len = 0, leaf_len = 0, o_len = 0;
    int64_t now = (int64_t)time(NULL);
    CHECK_OK(scp_keystore_generate(ks, "ca", 0, SCP_KS_EC_P256, &k));
    activate(ks, "ca", 1);
    CHECK_OK(scp_keystore_generate(ks, "oce", 0, SCP_KS_EC_P256, &k));
    CHECK_OK(scp_keystore_ec_public(ks, "ca", 1, &ca_pub));
    CHECK_OK(scp_keystore_ec_public(ks, "oce", 1, &oce_pub));
    CHECK_OK(scp_keystore_ca_issue(ks, "ca", 1, NULL, 0, &ca_pub, "lab OCE CA", 1, now - 60, 30,
                                   1, ca_der, sizeof(ca_der), &ca_len));
    CHECK_OK(scp_keystore_ca_issue(ks, "ca", 1, ca_der, ca_len, &oce_pub, "lab OCE", 0, now - 60,
                                   30, 2, leaf_der, sizeof(leaf_der), &leaf_len));
    scp_cert chain[1];
    scp_trust trust = {0};
    scp_cert_error err;
    CHECK_OK(scp_trust_add_bytes(&trust, ca_der, ca_len));
    CHECK_OK(scp_cert_parse(&chain[0], leaf_der, leaf_len));
    CHECK_OK(scp_cert_verify_chain(chain, 1, &trust, now, SCP_KU_KEY_AGREEMENT, &err));
    scp_cert_free(&chain[0]);
    leaf_der[leaf_len - 3] ^= 0x40; /* a flipped signature bit */
    if (scp_cert_parse(&chain[0], leaf_der, leaf_len) == SCP_OK) {
        CHECK(scp_cert_verify_chain(chain, 1, &trust, now, SCP_KU_KEY_AGREEMENT, &err) != SCP_OK);
        scp_cert_free(&chain[0]);
    }
    scp_trust_free(&trust);
    /* self-signed needs the CA's own key; an issuer certificate of another key */
    CHECK_RC(scp_keystore_ca_issue(ks, "ca", 1, NULL, 0, &oce_pub, "x", 1, now, 30, 3, o_der,
                                   sizeof(o_der), &o_len),
             SCP_E_ARG);
    CHECK_OK(scp_ec_generate(&other, SCP_EC_P256));
    CHECK_OK(scp_cert_issue(&other, "another CA", &other, NULL, 0, 1, now, 30, 9, o_der,
                            sizeof(o_der), &o_len));
    CHECK_RC(scp_keystore_ca_issue(ks, "ca", 1, o_der, o_len, &oce_pub, "x", 0, now, 30, 4,
                                   leaf_der, sizeof(leaf_der), &leaf_len),
             SCP_E_ARG);
    /* the OCE key is still pre-activation: it cannot sign as a CA */
    CHECK_RC(scp_keystore_ca_issue(ks, "oce", 1, NULL, 0, &oce_pub, "x", 1, now, 30, 5, o_der,
                                   sizeof(o_der), &o_len),
             SCP_E_STATE);
    scp_ec_free(&ca_pub);
    scp_ec_free(&oce_pub);
    scp_ec_free(&other);
    CHECK(audit_count(ks, "sign") >= 8);

    /* reopened: everything still there, and the whole audit holds */
    scp_keystore_close(ks);
    ks = ks_reopen();
    scp_ks_verify v;
    memset(&v, 0, sizeof(v));
    CHECK_OK(scp_keystore_verify(ks, &v));
    if (v.why[0])
        fprintf(stderr, "verify: %s\n", v.why);
    CHECK(v.keys >= 10);
    CHECK_OK(scp_keystore_get(ks, "gen-ec-bp256", 1, &k));
    CHECK(k.type == SCP_KS_EC_BP256 && k.state == SCP_KS_ACTIVE);
    scp_keystore_close(ks);
    return test_done("test_ks_ec");
}
