/* scpkit keys: master-key objects inside the token. A master key is a
 * CKO_SECRET_KEY with CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE true and
 * CKA_EXTRACTABLE false (PKCS#11 v2.40 4.7/4.10), so no call can read it
 * back. It may sign (CKM_AES_CMAC: SP800-108/KDF3) and encrypt (ECB: the
 * EMV/VISA2 schemes and the GP key check value). */
#include <stdio.h>
#include <string.h>
#include "keys/internal.h"
#include "core/guard.h"
#include "scpkit/crypto.h"

int ks_obj_id(const char *label, uint32_t version, char *out, size_t out_size)
{
    int n = snprintf(out, out_size, "%s:%u", label, (unsigned)version);
    ENSURE(n > 0 && (size_t)n < out_size, SCP_E_BUFFER_TOO_SMALL);
    return SCP_OK;
}

static CK_KEY_TYPE ck_type(scp_ks_type t)
{
    switch (t) {
    case SCP_KS_DES2:
        return CKK_DES2;
    case SCP_KS_DES3:
        return CKK_DES3;
    default:
        return CKK_AES;
    }
}

static int is_des(scp_ks_type t) { return t == SCP_KS_DES2 || t == SCP_KS_DES3; }

/* The master-key template, shared by generation and unwrapping. */
#define KS_MASTER_TEMPLATE(cls, kt, id, tru, fal)                                                  \
    {CKA_CLASS, &(cls), sizeof(cls)}, {CKA_KEY_TYPE, &(kt), sizeof(kt)},                           \
        {CKA_LABEL, (void *)(id), strlen(id)}, {CKA_ID, (void *)(id), strlen(id)},                 \
        {CKA_TOKEN, &(tru), 1}, {CKA_PRIVATE, &(tru), 1}, {CKA_SENSITIVE, &(tru), 1},              \
        {CKA_EXTRACTABLE, &(fal), 1}, {CKA_SIGN, &(tru), 1}, {CKA_ENCRYPT, &(tru), 1},             \
        {CKA_DECRYPT, &(fal), 1}, {CKA_WRAP, &(fal), 1}, {CKA_UNWRAP, &(fal), 1},                  \
        {CKA_DERIVE, &(fal), 1}

int ks_tok_generate(scp_keystore *ks, const char *id, scp_ks_type type)
{
    if (scp_ks_type_is_ec(type))
        return ks_tok_generate_ec(ks, id, type);
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = ck_type(type);
    CK_BBOOL tru = CK_TRUE, fal = CK_FALSE;
    CK_ULONG vlen = scp_ks_type_len(type);
    CK_ATTRIBUTE t[] = {KS_MASTER_TEMPLATE(cls, kt, id, tru, fal),
                        {CKA_VALUE_LEN, &vlen, sizeof(vlen)}};
    CK_MECHANISM m = {CKM_AES_KEY_GEN, NULL, 0};
    CK_ULONG n = sizeof(t) / sizeof(t[0]);
    CK_OBJECT_HANDLE h;

    if (is_des(type)) {
        m.mechanism = type == SCP_KS_DES2 ? CKM_DES2_KEY_GEN : CKM_DES3_KEY_GEN;
        n--; /* DES keys have a fixed length: CKA_VALUE_LEN is not allowed */
    }
    return scp_p11_rc(&ks->p11, "C_GenerateKey",
                      ks->p11.f->C_GenerateKey(ks->p11.sess, &m, t, n, &h));
}

/* The RFC 3394 section 2.2.1 wrapping process (also RFC 5649's for two or
 * more blocks) over the n 64-bit blocks at out + 8, in place, from the
 * initial value a (RFC 3394: A6 x 8; RFC 5649: its alternative IV); the
 * result's integrity block goes to out[0..7]. Each AES block is computed
 * by the token with the session wrapping key (CKM_AES_ECB), so the
 * wrapping key never leaves the token and the value never enters a
 * CKA_VALUE template. a is wiped. */
int ks_kw_rounds(scp_keystore *ks, CK_OBJECT_HANDLE kek, uint8_t a[8], uint8_t *out, size_t n)
{
    uint8_t b[16];
    int rc = SCP_OK;
    for (unsigned j = 0; j <= 5 && rc == SCP_OK; j++) {
        for (size_t i = 1; i <= n && rc == SCP_OK; i++) {
            memcpy(b, a, 8);
            memcpy(b + 8, out + 8 * i, 8);
            rc = scp_p11_encrypt(&ks->p11, CKM_AES_ECB, kek, b, 16, b, sizeof(b));
            uint64_t t = (uint64_t)n * j + i;
            for (int k = 0; k < 8; k++)
                a[k] = b[k] ^ (uint8_t)(t >> (56 - 8 * k));
            memcpy(out + 8 * i, b + 8, 8);
        }
    }
    memcpy(out, a, 8);
    scp_wipe(b, sizeof(b));
    scp_wipe(a, 8);
    return rc;
}

/* RFC 3394 key wrap of len bytes (a multiple of 8) from p into out. */
static int kw_wrap(scp_keystore *ks, CK_OBJECT_HANDLE kek, const uint8_t *p, size_t len,
                   uint8_t *out)
{
    uint8_t a[8];
    memset(a, 0xA6, sizeof(a));
    memcpy(out + 8, p, len);
    return ks_kw_rounds(ks, kek, a, out, len / 8);
}

int ks_tok_session_kek(scp_keystore *ks, CK_OBJECT_HANDLE *h)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_AES;
    CK_BBOOL tru = CK_TRUE, fal = CK_FALSE;
    CK_ULONG vlen = 32;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},  {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_TOKEN, &fal, 1},            {CKA_SENSITIVE, &tru, 1},
        {CKA_EXTRACTABLE, &fal, 1},      {CKA_ENCRYPT, &tru, 1},
        {CKA_UNWRAP, &tru, 1},           {CKA_VALUE_LEN, &vlen, sizeof(vlen)},
    };
    CK_MECHANISM m = {CKM_AES_KEY_GEN, NULL, 0};
    return scp_p11_rc(&ks->p11, "C_GenerateKey(session KEK)",
                      ks->p11.f->C_GenerateKey(ks->p11.sess, &m, t, sizeof(t) / sizeof(t[0]), h));
}

int ks_tok_unwrap(scp_keystore *ks, const char *id, scp_ks_type type, const uint8_t *value,
                  size_t len)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = ck_type(type);
    CK_BBOOL tru = CK_TRUE, fal = CK_FALSE;
    CK_ATTRIBUTE t[] = {KS_MASTER_TEMPLATE(cls, kt, id, tru, fal)};
    CK_MECHANISM m = {CKM_AES_KEY_WRAP, NULL, 0};
    CK_OBJECT_HANDLE kek = CK_INVALID_HANDLE, h;
    uint8_t wrapped[SCP_KS_MAX_KEY + 8];
    int rc;

    ENSURE(len == scp_ks_type_len(type) && len % 8 == 0, SCP_E_ARG);
    GUARD(ks_tok_session_kek(ks, &kek));
    GUARD_GOTO(kw_wrap(ks, kek, value, len, wrapped), done);
    rc = scp_p11_rc(&ks->p11, "C_UnwrapKey",
                    ks->p11.f->C_UnwrapKey(ks->p11.sess, &m, kek, wrapped, len + 8, t,
                                           sizeof(t) / sizeof(t[0]), &h));
done:
    scp_wipe(wrapped, sizeof(wrapped));
    ks_ignore(scp_p11_destroy(&ks->p11, kek));
    return rc;
}

/* KCVs as GP defines them (GPC Amd D 7.2 for AES: AES(key, 16 x 01)[0..2];
 * 3DES: 3DES(key, 8 x 00)[0..2]), computed with C_Encrypt in the token.
 * A token whose policy refuses ECB with the key gets the documented
 * fallback: AES-CMAC(key, 16 x 01)[0..2] via C_Sign, recorded as such
 * (*cmac_kind = 1) so later comparisons use the same kind. CKA_CHECK_VALUE
 * is not used: SoftHSM2 2.6.1 reports wrong ones for derived keys, and it
 * is not the GP definition for AES anyway. */
int ks_tok_kcv(scp_keystore *ks, CK_OBJECT_HANDLE h, scp_ks_type type, uint8_t kcv[3],
               uint8_t *cmac_kind)
{
    uint8_t in[16], out[16];
    int des = is_des(type);
    size_t n = des ? 8 : 16, ml = 0;

    *cmac_kind = 0;
    if (scp_ks_type_is_ec(type))
        return ks_tok_kcv_ec(ks, h, kcv);
    memset(in, des ? 0x00 : 0x01, sizeof(in));
    int rc = scp_p11_encrypt(&ks->p11, des ? CKM_DES3_ECB : CKM_AES_ECB, h, in, n, out,
                             sizeof(out));
    if (rc == SCP_E_UNSUPPORTED && !des) {
        *cmac_kind = 1;
        rc = scp_p11_sign(&ks->p11, CKM_AES_CMAC, h, in, 16, out, sizeof(out), &ml);
        if (rc == SCP_OK && ml != 16)
            rc = SCP_E_CRYPTO;
    }
    GUARD(rc);
    memcpy(kcv, out, 3);
    return SCP_OK;
}

/* ---- the audit key and the audit head checkpoint ---- */

int ks_tok_audit_key(scp_keystore *ks, int create)
{
    int rc = scp_p11_find(&ks->p11, CKO_SECRET_KEY, KS_AUDIT_KEY_LABEL, &ks->audit_key);
    if (rc != SCP_E_NOT_FOUND || !create)
        return rc;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
    CK_BBOOL tru = CK_TRUE, fal = CK_FALSE;
    CK_ULONG vlen = 32;
    const char *l = KS_AUDIT_KEY_LABEL;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},   {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_LABEL, (void *)l, strlen(l)}, {CKA_TOKEN, &tru, 1},
        {CKA_PRIVATE, &tru, 1},           {CKA_SENSITIVE, &tru, 1},
        {CKA_EXTRACTABLE, &fal, 1},       {CKA_SIGN, &tru, 1},
        {CKA_VERIFY, &tru, 1},            {CKA_VALUE_LEN, &vlen, sizeof(vlen)},
    };
    CK_MECHANISM m = {CKM_GENERIC_SECRET_KEY_GEN, NULL, 0};
    return scp_p11_rc(&ks->p11, "C_GenerateKey(audit HMAC)",
                      ks->p11.f->C_GenerateKey(ks->p11.sess, &m, t, sizeof(t) / sizeof(t[0]),
                                               &ks->audit_key));
}

int ks_tok_hmac(scp_keystore *ks, const uint8_t *in, size_t len, uint8_t mac[KS_HASH_LEN])
{
    size_t ml = 0;
    GUARD(scp_p11_sign(&ks->p11, CKM_SHA256_HMAC, ks->audit_key, in, len, mac, KS_HASH_LEN,
                       &ml));
    ENSURE(ml == KS_HASH_LEN, SCP_E_CRYPTO);
    return SCP_OK;
}

int ks_tok_head_get(scp_keystore *ks, uint8_t *val, size_t size, size_t *len)
{
    CK_OBJECT_HANDLE h;
    GUARD(scp_p11_find(&ks->p11, CKO_DATA, KS_AUDIT_HEAD_LABEL, &h));
    CK_ATTRIBUTE a = {CKA_VALUE, val, size};
    GUARD(scp_p11_rc(&ks->p11, "C_GetAttributeValue",
                     ks->p11.f->C_GetAttributeValue(ks->p11.sess, h, &a, 1)));
    *len = a.ulValueLen;
    return SCP_OK;
}

int ks_tok_head_set(scp_keystore *ks, const uint8_t *val, size_t len)
{
    CK_OBJECT_HANDLE h;
    CK_ATTRIBUTE v = {CKA_VALUE, (void *)val, len};
    int rc = scp_p11_find(&ks->p11, CKO_DATA, KS_AUDIT_HEAD_LABEL, &h);
    if (rc == SCP_OK) {
        rc = scp_p11_rc(&ks->p11, "C_SetAttributeValue",
                        ks->p11.f->C_SetAttributeValue(ks->p11.sess, h, &v, 1));
        if (rc == SCP_OK)
            return SCP_OK;
        /* A module that keeps data values read-only: replace the object. */
        GUARD(scp_p11_destroy(&ks->p11, h));
    } else if (rc != SCP_E_NOT_FOUND) {
        return rc;
    }
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BBOOL tru = CK_TRUE;
    const char *l = KS_AUDIT_HEAD_LABEL;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)}, {CKA_LABEL, (void *)l, strlen(l)},
        {CKA_TOKEN, &tru, 1},           {CKA_PRIVATE, &tru, 1},
        {CKA_MODIFIABLE, &tru, 1},      {CKA_VALUE, (void *)val, len},
    };
    return scp_p11_rc(&ks->p11, "C_CreateObject(audit head)",
                      ks->p11.f->C_CreateObject(ks->p11.sess, t, sizeof(t) / sizeof(t[0]), &h));
}
