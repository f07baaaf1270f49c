/* scpkit EC primitives (include/scpkit/ec.h) on OpenSSL 3 libcrypto:
 * keys, ECDH, ECDSA/SHA-256 and the X9.63 KDF that SCP11 needs. */
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "scpkit/crypto.h"
#include "scpkit/ec.h"
#include "core/guard.h"

typedef struct curve_info {
    int curve;
    const char *ossl; /* OpenSSL group name */
    const char *name;
    size_t field;
    uint8_t gp; /* GP key parameter reference (tag F0) */
    const uint8_t *oid;
    size_t oid_len;
} curve_info;

static const uint8_t oid_p256[] = { 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07 };
static const uint8_t oid_p384[] = { 0x2B, 0x81, 0x04, 0x00, 0x22 };
static const uint8_t oid_bp256[] = { 0x2B, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x07 };

static const curve_info curves[] = {
    { SCP_EC_P256, "prime256v1", "P-256", 32, 0x00, oid_p256, sizeof(oid_p256) },
    { SCP_EC_P384, "secp384r1", "P-384", 48, 0x01, oid_p384, sizeof(oid_p384) },
    { SCP_EC_BP256, "brainpoolP256r1", "brainpoolP256r1", 32, 0x03, oid_bp256,
      sizeof(oid_bp256) },
};

static const curve_info *info_of(int curve)
{
    for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++)
        if (curves[i].curve == curve)
            return &curves[i];
    return NULL;
}

size_t scp_ec_field_len(int curve)
{
    const curve_info *c = info_of(curve);
    return c ? c->field : 0;
}

const char *scp_ec_curve_name(int curve)
{
    const curve_info *c = info_of(curve);
    return c ? c->name : "?";
}

int scp_ec_curve_from_name(const char *n)
{
    static const struct { const char *n; int c; } names[] = {
        { "P-256", SCP_EC_P256 },      { "p256", SCP_EC_P256 },
        { "prime256v1", SCP_EC_P256 }, { "secp256r1", SCP_EC_P256 },
        { "P-384", SCP_EC_P384 },      { "p384", SCP_EC_P384 },
        { "secp384r1", SCP_EC_P384 },  { "brainpoolP256r1", SCP_EC_BP256 },
        { "bp256", SCP_EC_BP256 },
    };
    if (n == NULL)
        return SCP_EC_NONE;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(n, names[i].n) == 0)
            return names[i].c;
    return SCP_EC_NONE;
}

int scp_ec_curve_from_gp(uint8_t ref)
{
    for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++)
        if (curves[i].gp == ref)
            return curves[i].curve;
    return SCP_EC_NONE;
}

uint8_t scp_ec_curve_to_gp(int curve)
{
    const curve_info *c = info_of(curve);
    return c ? c->gp : 0xFF;
}

void scp_ec_free(scp_ec_key *k)
{
    if (k == NULL)
        return;
    EVP_PKEY_free((EVP_PKEY *)k->pkey);
    k->pkey = NULL;
    k->curve = SCP_EC_NONE;
    k->priv = 0;
}

/* Adopt pkey into k when it is an EC key on a supported curve. */
static int adopt(scp_ec_key *k, EVP_PKEY *pk, int priv)
{
    char g[64];
    size_t gl = 0;
    int curve = SCP_EC_NONE;

    if (pk == NULL)
        return SCP_E_FORMAT;
    if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC &&
        EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, g, sizeof(g), &gl) == 1)
        for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++)
            if (strcmp(g, curves[i].ossl) == 0)
                curve = curves[i].curve;
    if (curve == SCP_EC_NONE) {
        EVP_PKEY_free(pk);
        return SCP_E_UNSUPPORTED;
    }
    k->pkey = pk;
    k->curve = (uint8_t)curve;
    k->priv = (uint8_t)(priv != 0);
    return SCP_OK;
}

int scp_ec_generate(scp_ec_key *k, int curve)
{
    const curve_info *c = info_of(curve);
    ENSURE(k != NULL && c != NULL, SCP_E_ARG);
    k->pkey = NULL;
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", c->ossl);
    ENSURE(pk != NULL, SCP_E_CRYPTO);
    return adopt(k, pk, 1);
}

int scp_ec_from_point(scp_ec_key *k, int curve, const uint8_t *pt, size_t len)
{
    const curve_info *c = info_of(curve);
    OSSL_PARAM prm[3];
    EVP_PKEY_CTX *ctx = NULL, *chk = NULL;
    EVP_PKEY *pk = NULL;
    int rc = SCP_E_FORMAT;

    ENSURE(k != NULL && c != NULL && pt != NULL, SCP_E_ARG);
    k->pkey = NULL;
    /* uncompressed only, exactly 04 X Y */
    ENSURE(len == 1 + 2 * c->field && pt[0] == 0x04, SCP_E_FORMAT);
    prm[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)c->ossl, 0);
    prm[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)pt, len);
    prm[2] = OSSL_PARAM_construct_end();
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1) {
        rc = SCP_E_CRYPTO;
        goto out;
    }
    if (EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, prm) != 1)
        goto out; /* not on the curve, or malformed */
    chk = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
    if (chk == NULL || EVP_PKEY_public_check_quick(chk) != 1)
        goto out;
    rc = adopt(k, pk, 0);
    pk = NULL;
out:
    EVP_PKEY_free(pk);
    EVP_PKEY_CTX_free(chk);
    EVP_PKEY_CTX_free(ctx);
    return rc;
}

int scp_ec_from_private(scp_ec_key *k, int curve, const uint8_t *d, size_t len)
{
    const curve_info *c = info_of(curve);
    uint8_t der[8 + 2 + SCP_EC_MAX_FIELD + 4 + 16];
    const unsigned char *p = der;
    size_t n = 0;
    EVP_PKEY *pk;

    ENSURE(k != NULL && c != NULL && d != NULL, SCP_E_ARG);
    k->pkey = NULL;
    ENSURE(len >= 1 && len <= c->field, SCP_E_LENGTH);
    /* SEC 1 ECPrivateKey without the public key: OpenSSL computes it.
     * 30 L 02 01 01 04 F <d, padded> A0 L 06 L <oid> */
    der[n++] = 0x30;
    der[n++] = (uint8_t)(3 + 2 + c->field + 2 + 2 + c->oid_len);
    der[n++] = 0x02, der[n++] = 0x01, der[n++] = 0x01;
    der[n++] = 0x04, der[n++] = (uint8_t)c->field;
    memset(der + n, 0, c->field - len);
    memcpy(der + n + c->field - len, d, len);
    n += c->field;
    der[n++] = 0xA0, der[n++] = (uint8_t)(2 + c->oid_len);
    der[n++] = 0x06, der[n++] = (uint8_t)c->oid_len;
    memcpy(der + n, c->oid, c->oid_len);
    n += c->oid_len;
    pk = d2i_PrivateKey(EVP_PKEY_EC, NULL, &p, (long)n);
    scp_wipe(der, sizeof(der));
    ENSURE(pk != NULL, SCP_E_FORMAT);
    return adopt(k, pk, 1);
}

int scp_ec_from_bytes(scp_ec_key *k, const uint8_t *in, size_t len)
{
    EVP_PKEY *pk = NULL;
    int priv = 1;

    ENSURE(k != NULL && in != NULL && len > 0 && len < (1u << 20), SCP_E_ARG);
    k->pkey = NULL;
    if (len > 10 && memcmp(in, "-----", 5) == 0) {
        BIO *b = BIO_new_mem_buf(in, (int)len);
        ENSURE(b != NULL, SCP_E_NOMEM);
        pk = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
        if (pk == NULL) {
            (void)BIO_reset(b);
            pk = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
            priv = 0;
        }
        BIO_free(b);
    } else {
        const unsigned char *p = in;
        pk = d2i_AutoPrivateKey(NULL, &p, (long)len);
        if (pk == NULL) {
            p = in;
            pk = d2i_PrivateKey(EVP_PKEY_EC, NULL, &p, (long)len);
        }
        if (pk == NULL) {
            p = in;
            pk = d2i_PUBKEY(NULL, &p, (long)len);
            priv = 0;
        }
    }
    return adopt(k, pk, priv);
}

int scp_ec_load_file(scp_ec_key *k, const char *path)
{
    uint8_t buf[16384];
    size_t n;
    FILE *f;
    int rc;

    ENSURE(k != NULL && path != NULL, SCP_E_ARG);
    k->pkey = NULL;
    f = fopen(path, "rb");
    ENSURE(f != NULL, SCP_E_NOT_FOUND);
    n = fread(buf, 1, sizeof(buf), f);
    rc = ferror(f) ? SCP_E_IO : n == sizeof(buf) ? SCP_E_LENGTH : SCP_OK;
    fclose(f);
    if (rc == SCP_OK)
        rc = scp_ec_from_bytes(k, buf, n);
    scp_wipe(buf, sizeof(buf));
    return rc;
}

int scp_ec_dup(scp_ec_key *out, const scp_ec_key *in, int with_private)
{
    uint8_t pt[SCP_EC_MAX_POINT];
    size_t n;
    ENSURE(out != NULL && in != NULL && in->pkey != NULL, SCP_E_ARG);
    out->pkey = NULL;
    if (with_private && in->priv) {
        EVP_PKEY *pk = EVP_PKEY_dup((EVP_PKEY *)in->pkey);
        ENSURE(pk != NULL, SCP_E_CRYPTO);
        return adopt(out, pk, 1);
    }
    if (!in->priv) { /* public keys never change: share the object */
        ENSURE(EVP_PKEY_up_ref((EVP_PKEY *)in->pkey) == 1, SCP_E_CRYPTO);
        out->pkey = in->pkey, out->curve = in->curve, out->priv = 0;
        return SCP_OK;
    }
    GUARD(scp_ec_point(in, pt, sizeof(pt), &n));
    return scp_ec_from_point(out, in->curve, pt, n);
}

int scp_ec_point(const scp_ec_key *k, uint8_t *out, size_t out_size, size_t *out_len)
{
    size_t n = 0, want;
    ENSURE(k != NULL && k->pkey != NULL && out != NULL && out_len != NULL, SCP_E_ARG);
    want = 1 + 2 * scp_ec_field_len(k->curve);
    ENSURE(out_size >= want, SCP_E_BUFFER_TOO_SMALL);
    ENSURE(EVP_PKEY_get_octet_string_param((EVP_PKEY *)k->pkey,
                                           OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, out, out_size,
                                           &n) == 1,
           SCP_E_CRYPTO);
    ENSURE(n == want && out[0] == 0x04, SCP_E_CRYPTO);
    *out_len = n;
    return SCP_OK;
}

int scp_ec_private(const scp_ec_key *k, uint8_t *out, size_t out_size, size_t *out_len)
{
    BIGNUM *d = NULL;
    size_t f;
    int ok;
    ENSURE(k != NULL && k->pkey != NULL && k->priv && out != NULL && out_len != NULL,
           SCP_E_ARG);
    f = scp_ec_field_len(k->curve);
    ENSURE(out_size >= f, SCP_E_BUFFER_TOO_SMALL);
    ENSURE(EVP_PKEY_get_bn_param((EVP_PKEY *)k->pkey, OSSL_PKEY_PARAM_PRIV_KEY, &d) == 1,
           SCP_E_CRYPTO);
    ok = BN_bn2binpad(d, out, (int)f) == (int)f;
    BN_clear_free(d);
    ENSURE(ok, SCP_E_CRYPTO);
    *out_len = f;
    return SCP_OK;
}

int scp_ec_to_pem(const scp_ec_key *k, int with_private, char *out, size_t out_size,
                  size_t *out_len)
{
    BIO *b;
    char *p;
    long n;
    int ok;
    ENSURE(k != NULL && k->pkey != NULL && out != NULL && out_len != NULL, SCP_E_ARG);
    ENSURE(!with_private || k->priv, SCP_E_ARG);
    b = BIO_new(BIO_s_secmem());
    ENSURE(b != NULL, SCP_E_NOMEM);
    ok = with_private ? PEM_write_bio_PrivateKey(b, (EVP_PKEY *)k->pkey, NULL, NULL, 0, NULL,
                                                 NULL)
                      : PEM_write_bio_PUBKEY(b, (EVP_PKEY *)k->pkey);
    n = BIO_get_mem_data(b, &p);
    if (ok != 1 || n <= 0) {
        BIO_free(b);
        return SCP_E_CRYPTO;
    }
    if ((size_t)n + 1 > out_size) {
        BIO_free(b);
        return SCP_E_BUFFER_TOO_SMALL;
    }
    memcpy(out, p, (size_t)n);
    out[n] = '\0';
    *out_len = (size_t)n;
    BIO_free(b); /* secure-heap BIO: cleared on free */
    return SCP_OK;
}

int scp_ecdh(const scp_ec_key *priv, const scp_ec_key *pub, uint8_t *out, size_t out_size,
             size_t *out_len)
{
    EVP_PKEY_CTX *ctx;
    size_t f, n;
    int ok;

    ENSURE(priv != NULL && pub != NULL && priv->pkey != NULL && pub->pkey != NULL && out != NULL &&
               out_len != NULL && priv->priv,
           SCP_E_ARG);
    ENSURE(priv->curve == pub->curve, SCP_E_ARG); /* never mix curves */
    f = scp_ec_field_len(priv->curve);
    ENSURE(out_size >= f, SCP_E_BUFFER_TOO_SMALL);
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, (EVP_PKEY *)priv->pkey, NULL);
    ENSURE(ctx != NULL, SCP_E_CRYPTO);
    n = out_size;
    ok = EVP_PKEY_derive_init(ctx) == 1 &&
         EVP_PKEY_derive_set_peer_ex(ctx, (EVP_PKEY *)pub->pkey, 1) == 1 &&
         EVP_PKEY_derive(ctx, out, &n) == 1 && n == f;
    EVP_PKEY_CTX_free(ctx);
    if (!ok) {
        scp_wipe(out, out_size < f ? out_size : f);
        return SCP_E_CRYPTO;
    }
    *out_len = f;
    return SCP_OK;
}

int scp_ecdsa_sign(const scp_ec_key *priv, const uint8_t *msg, size_t len, uint8_t *sig,
                   size_t sig_size, size_t *sig_len)
{
    EVP_MD_CTX *md;
    size_t n = sig_size;
    int ok;
    ENSURE(priv != NULL && priv->pkey != NULL && priv->priv && sig != NULL && sig_len != NULL &&
               (msg != NULL || len == 0),
           SCP_E_ARG);
    ENSURE(sig_size >= SCP_ECDSA_MAX_SIG, SCP_E_BUFFER_TOO_SMALL);
    md = EVP_MD_CTX_new();
    ENSURE(md != NULL, SCP_E_NOMEM);
    ok = EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, (EVP_PKEY *)priv->pkey, NULL) ==
             1 &&
         EVP_DigestSign(md, sig, &n, msg, len) == 1;
    EVP_MD_CTX_free(md);
    ENSURE(ok, SCP_E_CRYPTO);
    *sig_len = n;
    return SCP_OK;
}

int scp_ecdsa_verify(const scp_ec_key *pub, const uint8_t *msg, size_t len, const uint8_t *sig,
                     size_t sig_len)
{
    EVP_MD_CTX *md;
    int v;
    ENSURE(pub != NULL && pub->pkey != NULL && sig != NULL && (msg != NULL || len == 0),
           SCP_E_ARG);
    /* DER: 30 L 02 .. 02 .. ; OpenSSL parses it strictly */
    ENSURE(sig_len >= 8 && sig_len <= SCP_ECDSA_MAX_SIG && sig[0] == 0x30, SCP_E_FORMAT);
    md = EVP_MD_CTX_new();
    ENSURE(md != NULL, SCP_E_NOMEM);
    v = EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, NULL, (EVP_PKEY *)pub->pkey, NULL);
    if (v == 1)
        v = EVP_DigestVerify(md, sig, sig_len, msg, len);
    EVP_MD_CTX_free(md);
    if (v == 1)
        return SCP_OK;
    return v == 0 ? SCP_E_CRYPTOGRAM : SCP_E_FORMAT;
}

int scp_x963_kdf_sha256(const uint8_t *z, size_t z_len, const uint8_t *info, size_t info_len,
                        uint8_t *out, size_t out_len)
{
    uint8_t blk[32];
    EVP_MD_CTX *md;
    uint32_t k = 1;
    size_t done = 0;
    int ok = 1;

    ENSURE(z != NULL && out != NULL && (info != NULL || info_len == 0), SCP_E_ARG);
    ENSURE(out_len <= 32u * 255u, SCP_E_ARG);
    md = EVP_MD_CTX_new();
    ENSURE(md != NULL, SCP_E_NOMEM);
    while (ok && done < out_len) {
        uint8_t ctr[4] = { (uint8_t)(k >> 24), (uint8_t)(k >> 16), (uint8_t)(k >> 8), (uint8_t)k };
        unsigned int bl = 0;
        ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(md, z, z_len) == 1 && EVP_DigestUpdate(md, ctr, 4) == 1 &&
             (info_len == 0 || EVP_DigestUpdate(md, info, info_len) == 1) &&
             EVP_DigestFinal_ex(md, blk, &bl) == 1 && bl == 32;
        if (ok) {
            size_t t = out_len - done < 32 ? out_len - done : 32;
            memcpy(out + done, blk, t);
            done += t;
            k++;
        }
    }
    EVP_MD_CTX_free(md);
    scp_wipe(blk, sizeof(blk));
    if (!ok) {
        scp_wipe(out, out_len);
        return SCP_E_CRYPTO;
    }
    return SCP_OK;
}
