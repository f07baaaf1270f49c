/* scpkit keys: EC key pairs in the token (SCP11 off-card entities and lab
 * CAs). The private key is a CKO_PRIVATE_KEY (CKA_TOKEN, CKA_PRIVATE,
 * CKA_SENSITIVE, not CKA_EXTRACTABLE; CKA_DERIVE for CKM_ECDH1_DERIVE,
 * CKA_SIGN for CKM_ECDSA), its public half a CKO_PUBLIC_KEY, both labelled
 * "label:version" (PKCS#11 v2.40 2.3 "Elliptic Curve"). The lifecycle,
 * the intents and the audit chain are the master keys' (keys.c,
 * lifecycle.c, journal.c); this file holds the token side and the uses. */
#include <stdio.h>
#include <string.h>
#include <openssl/ecdsa.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include "keys/internal.h"
#include "crypto/x509fast.h"
#include "core/guard.h"
#include "scpkit/crypto.h"

/* CKA_EC_PARAMS: the named curve's OID, DER (RFC 5480 2.1.1.1). */
static const uint8_t p256_oid[] = {0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07};
static const uint8_t p384_oid[] = {0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22};
static const uint8_t bp256_oid[] = {0x06, 0x09, 0x2B, 0x24, 0x03, 0x03,
                                    0x02, 0x08, 0x01, 0x01, 0x07};

static const uint8_t *ec_params(scp_ks_type t, size_t *len)
{
    switch (t) {
    case SCP_KS_EC_P256:
        *len = sizeof(p256_oid);
        return p256_oid;
    case SCP_KS_EC_P384:
        *len = sizeof(p384_oid);
        return p384_oid;
    case SCP_KS_EC_BP256:
        *len = sizeof(bp256_oid);
        return bp256_oid;
    default:
        *len = 0;
        return NULL;
    }
}

int ks_tok_find_key(scp_keystore *ks, const char *id, CK_OBJECT_HANDLE *h)
{
    int rc = scp_p11_find(&ks->p11, CKO_SECRET_KEY, id, h);
    if (rc == SCP_E_NOT_FOUND)
        rc = scp_p11_find(&ks->p11, CKO_PRIVATE_KEY, id, h);
    return rc;
}

int ks_tok_destroy_key(scp_keystore *ks, const char *id, CK_OBJECT_HANDLE h)
{
    CK_OBJECT_HANDLE pub;
    GUARD(scp_p11_destroy(&ks->p11, h));
    int rc = scp_p11_find(&ks->p11, CKO_PUBLIC_KEY, id, &pub);
    if (rc == SCP_E_NOT_FOUND)
        return SCP_OK; /* a secret key, or a pair whose public half went first */
    GUARD(rc);
    return scp_p11_destroy(&ks->p11, pub);
}

int ks_tok_generate_ec(scp_keystore *ks, const char *id, scp_ks_type type)
{
    CK_OBJECT_CLASS pcls = CKO_PUBLIC_KEY, scls = CKO_PRIVATE_KEY;
    CK_KEY_TYPE kt = CKK_EC;
    CK_BBOOL tru = CK_TRUE, fal = CK_FALSE;
    size_t pl;
    const uint8_t *params = ec_params(type, &pl);
    ENSURE(params != NULL, SCP_E_ARG);
    CK_ATTRIBUTE pub[] = {
        {CKA_CLASS, &pcls, sizeof(pcls)},  {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_LABEL, (void *)id, strlen(id)}, {CKA_ID, (void *)id, strlen(id)},
        {CKA_TOKEN, &tru, 1},              {CKA_PRIVATE, &tru, 1},
        {CKA_VERIFY, &tru, 1},             {CKA_DERIVE, &fal, 1},
        {CKA_EC_PARAMS, (void *)params, pl},
    };
    CK_ATTRIBUTE priv[] = {
        {CKA_CLASS, &scls, sizeof(scls)},  {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_LABEL, (void *)id, strlen(id)}, {CKA_ID, (void *)id, strlen(id)},
        {CKA_TOKEN, &tru, 1},              {CKA_PRIVATE, &tru, 1},
        {CKA_SENSITIVE, &tru, 1},          {CKA_EXTRACTABLE, &fal, 1},
        {CKA_SIGN, &tru, 1},               {CKA_DERIVE, &tru, 1},
        {CKA_DECRYPT, &fal, 1},            {CKA_UNWRAP, &fal, 1},
    };
    CK_MECHANISM m = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_OBJECT_HANDLE hp, hs;
    return scp_p11_rc(&ks->p11, "C_GenerateKeyPair",
                      ks->p11.f->C_GenerateKeyPair(ks->p11.sess, &m, pub,
                                                   sizeof(pub) / sizeof(pub[0]), priv,
                                                   sizeof(priv) / sizeof(priv[0]), &hp, &hs));
}

/* The public object's point, 04 X Y (SoftHSM2 keeps CKA_EC_POINT as a DER
 * OCTET STRING, as PKCS#11 v2.40 says; a raw point is accepted too). */
int ks_tok_ec_point(scp_keystore *ks, const char *id, uint8_t *pt, size_t size, size_t *len)
{
    CK_OBJECT_HANDLE h;
    uint8_t buf[8 + SCP_EC_MAX_POINT];
    CK_ATTRIBUTE a = {CKA_EC_POINT, buf, sizeof(buf)};
    GUARD(scp_p11_find(&ks->p11, CKO_PUBLIC_KEY, id, &h));
    GUARD(scp_p11_rc(&ks->p11, "C_GetAttributeValue(CKA_EC_POINT)",
                     ks->p11.f->C_GetAttributeValue(ks->p11.sess, h, &a, 1)));
    const uint8_t *p = buf;
    size_t n = a.ulValueLen;
    ENSURE(n >= 3 && n <= sizeof(buf), SCP_E_FORMAT);
    if (p[0] == 0x04 && p[1] == n - 2 && (n - 2) % 2 == 1 && p[2] == 0x04) {
        p += 2, n -= 2;
    } else if (p[0] == 0x04 && p[1] == 0x81 && p[2] == n - 3) {
        p += 3, n -= 3;
    }
    ENSURE(p[0] == 0x04 && n % 2 == 1 && n <= size, SCP_E_FORMAT);
    memcpy(pt, p, n);
    *len = n;
    return SCP_OK;
}

static void point_kcv(const uint8_t *pt, size_t len, uint8_t kcv[3])
{
    uint8_t d[32];
    SHA256(pt, len, d);
    memcpy(kcv, d, 3);
}

int ks_tok_kcv_ec(scp_keystore *ks, CK_OBJECT_HANDLE h, uint8_t kcv[3])
{
    char id[SCP_KS_LABEL_MAX + 16];
    uint8_t pt[SCP_EC_MAX_POINT];
    size_t n;
    CK_ATTRIBUTE a = {CKA_LABEL, id, sizeof(id) - 1};
    GUARD(scp_p11_rc(&ks->p11, "C_GetAttributeValue(CKA_LABEL)",
                     ks->p11.f->C_GetAttributeValue(ks->p11.sess, h, &a, 1)));
    ENSURE(a.ulValueLen < sizeof(id), SCP_E_FORMAT);
    id[a.ulValueLen] = 0;
    GUARD(ks_tok_ec_point(ks, id, pt, sizeof(pt), &n));
    point_kcv(pt, n, kcv);
    return SCP_OK;
}

int ks_kcv_soft_ec(const uint8_t *der, size_t len, uint8_t kcv[3])
{
    scp_ec_key k = {0};
    uint8_t pt[SCP_EC_MAX_POINT];
    size_t n;
    GUARD(scp_ec_from_bytes(&k, der, len));
    int rc = scp_ec_point(&k, pt, sizeof(pt), &n);
    scp_ec_free(&k);
    GUARD(rc);
    point_kcv(pt, n, kcv);
    return SCP_OK;
}

/* ECDH with private key h: the X coordinate (field bytes) into out. The
 * shared secret comes out of the token as a session object made to be
 * read (CKA_SENSITIVE false), then destroyed. */
static int tok_ecdh(scp_keystore *ks, CK_OBJECT_HANDLE h, const uint8_t *peer, size_t plen,
                    size_t field, uint8_t *out)
{
    CK_ECDH1_DERIVE_PARAMS prm = {CKD_NULL, 0, NULL, plen, (CK_BYTE *)peer};
    CK_MECHANISM m = {CKM_ECDH1_DERIVE, &prm, sizeof(prm)};
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
    CK_BBOOL tru = CK_TRUE, fal = CK_FALSE;
    CK_ULONG vlen = field;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)}, {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_TOKEN, &fal, 1},           {CKA_SENSITIVE, &fal, 1},
        {CKA_EXTRACTABLE, &tru, 1},     {CKA_VALUE_LEN, &vlen, sizeof(vlen)},
    };
    CK_OBJECT_HANDLE z;
    GUARD(scp_p11_rc(&ks->p11, "C_DeriveKey(CKM_ECDH1_DERIVE)",
                     ks->p11.f->C_DeriveKey(ks->p11.sess, &m, h, t, sizeof(t) / sizeof(t[0]),
                                            &z)));
    CK_ATTRIBUTE a = {CKA_VALUE, out, field};
    int rc = scp_p11_rc(&ks->p11, "C_GetAttributeValue(shared secret)",
                        ks->p11.f->C_GetAttributeValue(ks->p11.sess, z, &a, 1));
    if (rc == SCP_OK && a.ulValueLen != field)
        rc = SCP_E_CRYPTO;
    ks_ignore(scp_p11_destroy(&ks->p11, z));
    if (rc != SCP_OK)
        scp_wipe(out, field);
    return rc;
}

/* RFC 5649 (AES key wrap with padding), each AES block computed by the
 * token under the session key kek (CKM_AES_ECB). */
static int kwp_wrap(scp_keystore *ks, CK_OBJECT_HANDLE kek, const uint8_t *p, size_t len,
                    uint8_t *out, size_t *out_len)
{
    size_t padded = (len + 7) / 8 * 8, n = padded / 8;
    uint8_t a[8] = {0xA6, 0x59, 0x59, 0xA6, (uint8_t)(len >> 24), (uint8_t)(len >> 16),
                    (uint8_t)(len >> 8), (uint8_t)len};
    ENSURE(n >= 2, SCP_E_ARG);
    memset(out + 8, 0, padded);
    memcpy(out + 8, p, len);
    *out_len = padded + 8;
    return ks_kw_rounds(ks, kek, a, out, n);
}

/* Import: PKCS#8 in, wrapped under a session key made in the token, then
 * C_UnwrapKey(CKM_AES_KEY_WRAP_PAD) into a private key object; the public
 * object is created from the point the caller computed, and proven to
 * belong to the private key by an ECDH with a fresh software key. */
int ks_tok_unwrap_ec(scp_keystore *ks, const char *id, scp_ks_type type, const uint8_t *pkcs8,
                     size_t len)
{
    CK_OBJECT_CLASS scls = CKO_PRIVATE_KEY, pcls = CKO_PUBLIC_KEY;
    CK_KEY_TYPE kt = CKK_EC;
    CK_BBOOL tru = CK_TRUE, fal = CK_FALSE;
    CK_ATTRIBUTE priv[] = {
        {CKA_CLASS, &scls, sizeof(scls)},  {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_LABEL, (void *)id, strlen(id)}, {CKA_ID, (void *)id, strlen(id)},
        {CKA_TOKEN, &tru, 1},              {CKA_PRIVATE, &tru, 1},
        {CKA_SENSITIVE, &tru, 1},          {CKA_EXTRACTABLE, &fal, 1},
        {CKA_SIGN, &tru, 1},               {CKA_DERIVE, &tru, 1},
        {CKA_DECRYPT, &fal, 1},            {CKA_UNWRAP, &fal, 1},
    };
    CK_MECHANISM m = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
    CK_OBJECT_HANDLE kek = CK_INVALID_HANDLE, h = CK_INVALID_HANDLE, hp;
    uint8_t wrapped[1024], pt[SCP_EC_MAX_POINT], der_pt[3 + SCP_EC_MAX_POINT];
    uint8_t z1[SCP_EC_MAX_FIELD], z2[SCP_EC_MAX_FIELD], ept[SCP_EC_MAX_POINT];
    size_t wl = 0, pl = 0, parl, el, zl;
    scp_ec_key k = {0}, e = {0}, q = {0};
    const uint8_t *params = ec_params(type, &parl);
    int rc;

    ENSURE(params != NULL && len + 16 <= sizeof(wrapped), SCP_E_ARG);
    GUARD(scp_ec_from_bytes(&k, pkcs8, len));
    rc = k.priv && k.curve == scp_ks_type_curve(type) ? SCP_OK : SCP_E_ARG;
    if (rc == SCP_OK)
        rc = scp_ec_point(&k, pt, sizeof(pt), &pl);
    scp_ec_free(&k);
    GUARD(rc);
    GUARD(ks_tok_session_kek(ks, &kek));
    rc = kwp_wrap(ks, kek, pkcs8, len, wrapped, &wl);
    if (rc == SCP_OK)
        rc = scp_p11_rc(&ks->p11, "C_UnwrapKey(EC private key)",
                        ks->p11.f->C_UnwrapKey(ks->p11.sess, &m, kek, wrapped, wl, priv,
                                               sizeof(priv) / sizeof(priv[0]), &h));
    scp_wipe(wrapped, sizeof(wrapped));
    ks_ignore(scp_p11_destroy(&ks->p11, kek));
    GUARD(rc);
    /* the public object: CKA_EC_POINT as a DER OCTET STRING */
    size_t dl = 0;
    der_pt[dl++] = 0x04;
    if (pl > 127)
        der_pt[dl++] = 0x81;
    der_pt[dl++] = (uint8_t)pl;
    memcpy(der_pt + dl, pt, pl);
    dl += pl;
    CK_ATTRIBUTE pub[] = {
        {CKA_CLASS, &pcls, sizeof(pcls)},  {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_LABEL, (void *)id, strlen(id)}, {CKA_ID, (void *)id, strlen(id)},
        {CKA_TOKEN, &tru, 1},              {CKA_PRIVATE, &tru, 1},
        {CKA_VERIFY, &tru, 1},             {CKA_DERIVE, &fal, 1},
        {CKA_EC_PARAMS, (void *)params, parl}, {CKA_EC_POINT, der_pt, dl},
    };
    GUARD(scp_p11_rc(&ks->p11, "C_CreateObject(EC public key)",
                     ks->p11.f->C_CreateObject(ks->p11.sess, pub, sizeof(pub) / sizeof(pub[0]),
                                               &hp)));
    /* d_token * E == e * Q: the private key in the token is Q's */
    size_t field = scp_ec_field_len(scp_ks_type_curve(type));
    rc = scp_ec_generate(&e, scp_ks_type_curve(type));
    if (rc == SCP_OK)
        rc = scp_ec_point(&e, ept, sizeof(ept), &el);
    if (rc == SCP_OK)
        rc = tok_ecdh(ks, h, ept, el, field, z1);
    if (rc == SCP_OK)
        rc = scp_ec_from_point(&q, scp_ks_type_curve(type), pt, pl);
    if (rc == SCP_OK)
        rc = scp_ecdh(&e, &q, z2, sizeof(z2), &zl);
    if (rc == SCP_OK && (zl != field || !scp_ct_eq(z1, z2, field)))
        rc = SCP_E_KCV;
    scp_wipe(z1, sizeof(z1));
    scp_wipe(z2, sizeof(z2));
    scp_ec_free(&e);
    scp_ec_free(&q);
    return rc;
}

/* ---- the public API ---- */

/* An EC key of the keystore that may be used now: active (SP 800-57:
 * only an active key applies protection), its private object found. */
static int usable(scp_keystore *ks, const char *label, uint32_t version, scp_ks_key_info *k,
                  CK_OBJECT_HANDLE *h)
{
    char id[SCP_KS_LABEL_MAX + 16];
    memset(k, 0, sizeof(*k));
    GUARD(ks_db_key_get(ks, label, version, k));
    if (!scp_ks_type_is_ec(k->type)) {
        ks_why(ks, "key %s:%u is %s, not an EC key pair", k->label, (unsigned)k->version,
               scp_ks_type_name(k->type));
        return SCP_E_ARG;
    }
    if (k->state != SCP_KS_ACTIVE) {
        ks_why(ks, "key %s:%u is %s: only an active key may be used (activate it with a "
                   "quorum: `scpkit keystore activate`)",
               k->label, (unsigned)k->version, scp_ks_state_name(k->state));
        return SCP_E_STATE;
    }
    GUARD(ks_obj_id(k->label, k->version, id, sizeof(id)));
    int rc = scp_p11_find(&ks->p11, CKO_PRIVATE_KEY, id, h);
    if (rc == SCP_E_NOT_FOUND && ks_gen_refresh(ks) == SCP_OK)
        rc = scp_p11_find(&ks->p11, CKO_PRIVATE_KEY, id, h);
    return rc;
}

int scp_keystore_import_ec(scp_keystore *ks, const char *label, uint32_t version,
                           const scp_ec_key *key, scp_ks_key_info *info)
{
    scp_ks_type type;
    ENSURE(ks != NULL && key != NULL && key->pkey != NULL && key->priv, SCP_E_ARG);
    GUARD(scp_ks_type_from_curve(key->curve, &type));
    unsigned char *der = NULL;
    int n;
    /* PKCS#8 (the form C_UnwrapKey takes for private keys) */
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8((EVP_PKEY *)key->pkey);
    ENSURE(p8 != NULL, SCP_E_CRYPTO);
    n = i2d_PKCS8_PRIV_KEY_INFO(p8, &der);
    PKCS8_PRIV_KEY_INFO_free(p8);
    ENSURE(n > 0 && der != NULL, SCP_E_CRYPTO);
    int rc = ks_import_ec_der(ks, label, version, type, der, (size_t)n, info);
    OPENSSL_cleanse(der, (size_t)n);
    OPENSSL_free(der);
    return rc;
}

int scp_keystore_ec_public(scp_keystore *ks, const char *label, uint32_t version,
                           scp_ec_key *pub)
{
    scp_ks_key_info k;
    char id[SCP_KS_LABEL_MAX + 16];
    uint8_t pt[SCP_EC_MAX_POINT];
    size_t n;
    ENSURE(ks != NULL && label != NULL && pub != NULL, SCP_E_ARG);
    GUARD(ks_db_key_get(ks, label, version, &k));
    ENSURE(scp_ks_type_is_ec(k.type), SCP_E_ARG);
    ENSURE(k.state != SCP_KS_DESTROYED, SCP_E_STATE);
    GUARD(ks_obj_id(k.label, k.version, id, sizeof(id)));
    int rc = ks_tok_ec_point(ks, id, pt, sizeof(pt), &n);
    if (rc == SCP_E_NOT_FOUND && ks_gen_refresh(ks) == SCP_OK)
        rc = ks_tok_ec_point(ks, id, pt, sizeof(pt), &n);
    GUARD(rc);
    uint8_t kcv[3];
    point_kcv(pt, n, kcv);
    ENSURE(scp_ct_eq(kcv, k.kcv, 3), SCP_E_CORRUPT); /* the token's point is the recorded one */
    return scp_ec_from_point(pub, scp_ks_type_curve(k.type), pt, n);
}

int scp_keystore_ecdh(scp_keystore *ks, const char *label, uint32_t version,
                      const uint8_t *peer, size_t peer_len, const char *purpose, uint8_t *out,
                      size_t out_size, size_t *out_len)
{
    scp_ks_key_info k;
    CK_OBJECT_HANDLE h;
    scp_ec_key q = {0};
    ENSURE(ks != NULL && label != NULL && peer != NULL && out != NULL && out_len != NULL,
           SCP_E_ARG);
    int rc = usable(ks, label, version, &k, &h);
    size_t field = rc == SCP_OK ? scp_ec_field_len(scp_ks_type_curve(k.type)) : 0;
    if (rc == SCP_OK && out_size < field)
        rc = SCP_E_BUFFER_TOO_SMALL;
    /* the peer point on the key's curve (not left to the module) */
    if (rc == SCP_OK)
        rc = scp_ec_from_point(&q, scp_ks_type_curve(k.type), peer, peer_len);
    scp_ec_free(&q);
    if (rc == SCP_OK)
        rc = tok_ecdh(ks, h, peer, peer_len, field, out);
    if (rc == SCP_E_NOT_FOUND && k.label[0] == 0)
        return rc; /* no such key: nothing to record against */
    int arc = scp_keystore_audit(ks, "ecdh", k.label[0] ? k.label : label, k.version, k.kcv,
                                 purpose, rc);
    if (rc == SCP_OK && arc != SCP_OK)
        scp_wipe(out, field); /* no secret without its audit record */
    if (rc == SCP_OK && arc == SCP_OK)
        *out_len = field;
    return rc < 0 ? rc : arc;
}

/* r || s (each the field length) -> DER ECDSA-Sig-Value. */
static int sig_to_der(const uint8_t *rs, size_t n, uint8_t *out, size_t size, size_t *len)
{
    ECDSA_SIG *s = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(rs, (int)(n / 2), NULL), *ss = BN_bin2bn(rs + n / 2, (int)(n / 2), NULL);
    int rc = SCP_E_CRYPTO;
    if (s != NULL && r != NULL && ss != NULL && ECDSA_SIG_set0(s, r, ss) == 1) {
        r = ss = NULL;
        int l = i2d_ECDSA_SIG(s, NULL);
        unsigned char *p = out;
        rc = l <= 0 ? SCP_E_CRYPTO : (size_t)l > size ? SCP_E_BUFFER_TOO_SMALL : SCP_OK;
        if (rc == SCP_OK && i2d_ECDSA_SIG(s, &p) != l)
            rc = SCP_E_CRYPTO;
        if (rc == SCP_OK)
            *len = (size_t)l;
    }
    BN_free(r);
    BN_free(ss);
    ECDSA_SIG_free(s);
    return rc;
}

int scp_keystore_ec_sign(scp_keystore *ks, const char *label, uint32_t version,
                         const uint8_t *msg, size_t len, const char *purpose, uint8_t *sig,
                         size_t sig_size, size_t *sig_len)
{
    scp_ks_key_info k;
    CK_OBJECT_HANDLE h;
    uint8_t hash[32], rs[2 * SCP_EC_MAX_FIELD];
    size_t rl = 0;
    ENSURE(ks != NULL && label != NULL && msg != NULL && sig != NULL && sig_len != NULL,
           SCP_E_ARG);
    int rc = usable(ks, label, version, &k, &h);
    if (rc == SCP_E_NOT_FOUND && k.label[0] == 0)
        return rc;
    SHA256(msg, len, hash);
    if (rc == SCP_OK)
        rc = scp_p11_sign(&ks->p11, CKM_ECDSA, h, hash, sizeof(hash), rs, sizeof(rs), &rl);
    if (rc == SCP_OK && rl != 2 * scp_ec_field_len(scp_ks_type_curve(k.type)))
        rc = SCP_E_CRYPTO;
    if (rc == SCP_OK)
        rc = sig_to_der(rs, rl, sig, sig_size, sig_len);
    int arc = scp_keystore_audit(ks, "sign", k.label[0] ? k.label : label, k.version, k.kcv,
                                 purpose, rc);
    return rc < 0 ? rc : arc;
}

/* ---- the OCE key behind scp11_oce_key ---- */

int scp_keystore_oce_open(scp_keystore *ks, const char *ref, scp_ks_oce *oce)
{
    scp_ks_key_info k;
    CK_OBJECT_HANDLE h;
    ENSURE(ks != NULL && ref != NULL && oce != NULL, SCP_E_ARG);
    memset(oce, 0, sizeof(*oce));
    GUARD(scp_ks_parse_ref(ref, oce->label, &oce->version));
    int rc = usable(ks, oce->label, oce->version, &k, &h);
    if (rc != SCP_OK && k.label[0] != 0) /* a refused use is on the record too */
        ks_ignore(scp_keystore_audit(ks, "ecdh", k.label, k.version, k.kcv, "scp11:refused", rc));
    GUARD(rc);
    oce->ks = ks;
    oce->version = k.version;
    oce->curve = scp_ks_type_curve(k.type);
    return SCP_OK;
}

int scp_keystore_oce_ecdh(void *ctx, const uint8_t *peer, size_t peer_len, uint8_t *out,
                          size_t out_size, size_t *out_len)
{
    scp_ks_oce *o = ctx;
    ENSURE(o != NULL && o->ks != NULL, SCP_E_ARG);
    return scp_keystore_ecdh(o->ks, o->label, o->version, peer, peer_len, "scp11:ShSes", out,
                             out_size, out_len);
}

/* ---- a small CA: X.509 certificates signed in the token ----
 * OpenSSL builds the certificate; it is signed once with a throwaway key
 * (which fills in the signature algorithm, ecdsa-with-SHA256, in both
 * places), then its TBSCertificate is signed in the token and the
 * Certificate assembled as SEQUENCE { tbs, algorithm, BIT STRING sig }. */

static size_t der_len(uint8_t *p, size_t n)
{
    if (n < 128) {
        p[0] = (uint8_t)n;
        return 1;
    }
    if (n < 256) {
        p[0] = 0x81, p[1] = (uint8_t)n;
        return 2;
    }
    p[0] = 0x82, p[1] = (uint8_t)(n >> 8), p[2] = (uint8_t)n;
    return 3;
}

static int same_key(EVP_PKEY *a, const scp_ec_key *b)
{
    return b->pkey != NULL && EVP_PKEY_eq(a, (EVP_PKEY *)b->pkey) == 1;
}

int scp_keystore_ca_issue(scp_keystore *ks, const char *ca_label, uint32_t ca_version,
                          const uint8_t *issuer_der, size_t issuer_len, const scp_ec_key *subj,
                          const char *cn, int ca, int64_t not_before, int days, uint64_t serial,
                          uint8_t *out, size_t out_size, size_t *out_len)
{
    X509 *x = NULL, *iss = NULL;
    scp_ec_key ca_pub = {0}, tmp = {0};
    unsigned char *tbs = NULL, *alg = NULL;
    uint8_t sig[SCP_ECDSA_MAX_SIG];
    size_t sl = 0;
    int tl = 0, al = 0, rc;
    ENSURE(ks != NULL && ca_label != NULL && subj != NULL && subj->pkey != NULL && cn != NULL &&
               out != NULL && out_len != NULL && days > 0,
           SCP_E_ARG);
    GUARD(scp_keystore_ec_public(ks, ca_label, ca_version, &ca_pub));
    rc = SCP_E_FORMAT;
    if (issuer_der != NULL) {
        const unsigned char *q = issuer_der;
        iss = d2i_X509(NULL, &q, (long)issuer_len);
        if (iss == NULL)
            goto out;
        rc = SCP_E_ARG;
        if (!same_key(X509_get0_pubkey(iss), &ca_pub)) {
            ks_why(ks, "the issuer certificate's public key is not the key of %s in the keystore",
                   ca_label);
            goto out;
        }
    } else if (EVP_PKEY_eq((EVP_PKEY *)subj->pkey, (EVP_PKEY *)ca_pub.pkey) != 1) {
        rc = SCP_E_ARG; /* self-signed: the subject is the CA key itself */
        goto out;
    }
    rc = SCP_E_CRYPTO;
    if ((x = X509_new()) == NULL || scp_ec_generate(&tmp, SCP_EC_P256) != SCP_OK)
        goto out;
    if (!scp_cert_fill_x509(x, iss, subj, cn, ca, not_before, days, serial))
        goto out;
    if (X509_sign(x, (EVP_PKEY *)tmp.pkey, EVP_sha256()) <= 0)
        goto out;
    const X509_ALGOR *palg = NULL;
    X509_get0_signature(NULL, &palg, x);
    tl = i2d_re_X509_tbs(x, &tbs);
    al = palg != NULL ? i2d_X509_ALGOR((X509_ALGOR *)palg, &alg) : 0;
    if (tl <= 0 || al <= 0)
        goto out;
    rc = scp_keystore_ec_sign(ks, ca_label, ca_version, tbs, (size_t)tl, cn, sig, sizeof(sig),
                              &sl);
    if (rc != SCP_OK)
        goto out;
    /* Certificate ::= SEQUENCE { tbs, signatureAlgorithm, BIT STRING } */
    uint8_t bl[4], ol[4];
    size_t bll = der_len(bl, sl + 1);
    size_t body = (size_t)tl + (size_t)al + 1 + bll + 1 + sl;
    size_t oll = der_len(ol, body), o = 0;
    rc = SCP_E_BUFFER_TOO_SMALL;
    if (1 + oll + body > out_size)
        goto out;
    out[o++] = 0x30;
    memcpy(out + o, ol, oll), o += oll;
    memcpy(out + o, tbs, (size_t)tl), o += (size_t)tl;
    memcpy(out + o, alg, (size_t)al), o += (size_t)al;
    out[o++] = 0x03;
    memcpy(out + o, bl, bll), o += bll;
    out[o++] = 0x00;
    memcpy(out + o, sig, sl), o += sl;
    /* it must parse and verify under the CA's public key */
    const unsigned char *q = out;
    X509 *chk = d2i_X509(NULL, &q, (long)o);
    rc = chk != NULL && (size_t)(q - out) == o && X509_verify(chk, (EVP_PKEY *)ca_pub.pkey) == 1
             ? SCP_OK
             : SCP_E_CRYPTO;
    X509_free(chk);
    if (rc == SCP_OK)
        *out_len = o;
out:
    OPENSSL_free(tbs);
    OPENSSL_free(alg);
    X509_free(x);
    X509_free(iss);
    scp_ec_free(&ca_pub);
    scp_ec_free(&tmp);
    return rc;
}
