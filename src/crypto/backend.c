/* scpkit crypto backend: AES, CMAC, KDF and 3DES on OpenSSL 3 libcrypto.
 * Every key gets its EVP contexts once (scp_aes_init); per-message calls
 * only reset IVs, so no allocation happens per APDU. */
#include <stddef.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "scpkit/crypto.h"
#include "crypto/internal.h"

static const EVP_CIPHER *aes_cipher(size_t key_len, int cbc)
{
    switch (key_len) {
    case 16: return cbc ? EVP_aes_128_cbc() : EVP_aes_128_ecb();
    case 24: return cbc ? EVP_aes_192_cbc() : EVP_aes_192_ecb();
    case 32: return cbc ? EVP_aes_256_cbc() : EVP_aes_256_ecb();
    default: return NULL;
    }
}

static EVP_CIPHER_CTX *ctx_new(const EVP_CIPHER *c, const uint8_t *key, int enc)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        return NULL;
    if (EVP_CipherInit_ex(ctx, c, NULL, key, NULL, enc) != 1 ||
        EVP_CIPHER_CTX_set_padding(ctx, 0) != 1) {
        EVP_CIPHER_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* RFC 4493 2.3: K1 = L << 1 (xor Rb if msb), K2 = K1 << 1 (same). */
static uint64_t load_be64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static void store_be64(uint8_t *p, uint64_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    memcpy(p, &v, 8);
}

static void cmac_double(const uint8_t in[16], uint8_t out[16])
{
    uint64_t hi = load_be64(in), lo = load_be64(in + 8), carry = hi >> 63;
    store_be64(out, hi << 1 | lo >> 63);
    /* constant time: mask instead of branch on the secret msb */
    store_be64(out + 8, lo << 1 ^ (0x87 & (0 - carry)));
}

int scp_ctx_aesni(const scp_ctx *ctx)
{
    switch (ctx != NULL ? ctx->backend : SCP_BACKEND_DEFAULT) {
    case SCP_BACKEND_DEFAULT: return scp_aesni_default();
    case SCP_BACKEND_OPENSSL: return 0;
    case SCP_BACKEND_AESNI: return scp_aesni_cpu() ? 1 : SCP_E_UNSUPPORTED;
    default: return SCP_E_ARG;
    }
}

const char *scp_ctx_backend_name(const scp_ctx *ctx)
{
    int r = scp_ctx_aesni(ctx);
    return r == 1 ? "aesni" : r == 0 ? "openssl" : "none";
}

static int aes_setup(scp_aes *a, const scp_ctx *ctx, const uint8_t *key, size_t key_len,
                     int dec)
{
    const EVP_CIPHER *ecb = aes_cipher(key_len, 0), *cbc = aes_cipher(key_len, 1);
    static const uint8_t zero[16];
    int ni = scp_ctx_aesni(ctx);

    if (a == NULL)
        return SCP_E_ARG;
    /* whatever happens next, scp_aes_clear(a) is safe on the result. No
     * memset of the whole scp_aes: every field read later is written
     * here, the schedule up to round nr (scp_aesni_init). */
    a->u.evp.ecb = a->u.evp.cbce = a->u.evp.cbcd = NULL;
    a->nr = 0;
    a->dec = a->fast = a->mac = 0;
    if (key == NULL || ecb == NULL)
        return SCP_E_ARG;
    if (ni < 0)
        return ni;
    a->key_len = (uint8_t)key_len;
    a->nr = (uint8_t)(key_len / 4 + 6);
    a->dec = (uint8_t)(dec != 0);
    a->fast = 0;
    if (ni == 1 && scp_aesni_init(a, key, key_len) == SCP_OK) {
        a->fast = 1;
    } else {
        a->u.evp.ecb = ctx_new(ecb, key, 1);
        a->u.evp.cbce = ctx_new(cbc, key, 1);
        if (dec)
            a->u.evp.cbcd = ctx_new(cbc, key, 0);
        if (a->u.evp.ecb == NULL || a->u.evp.cbce == NULL || (dec && a->u.evp.cbcd == NULL)) {
            scp_aes_clear(a);
            return SCP_E_CRYPTO;
        }
    }
    scp_aes_block(a, zero, a->l);
    a->mac = 1;
    return SCP_OK;
}

int scp_aes_init(scp_aes *a, const uint8_t *key, size_t key_len)
{
    return aes_setup(a, NULL, key, key_len, 0);
}

int scp_aes_init_dec(scp_aes *a, const uint8_t *key, size_t key_len)
{
    return aes_setup(a, NULL, key, key_len, 1);
}

int scp_aes_init_ctx(scp_aes *a, const scp_ctx *ctx, const uint8_t *key, size_t key_len,
                     int dec)
{
    return aes_setup(a, ctx, key, key_len, dec != 0);
}

static void evp_free(void *ecb, void *cbce, void *cbcd)
{
    EVP_CIPHER_CTX_free(ecb);
    EVP_CIPHER_CTX_free(cbce);
    EVP_CIPHER_CTX_free(cbcd);
}

void scp_aes_release(scp_aes *a)
{
    if (!a->fast) {
        evp_free(a->u.evp.ecb, a->u.evp.cbce, a->u.evp.cbcd);
        a->u.evp.ecb = a->u.evp.cbce = a->u.evp.cbcd = NULL;
    }
}

/* Wipes every byte a key ever wrote: the round keys up to nr (all of them
 * if nr is not a valid round count), L; the EVP contexts cleanse
 * themselves. */
void scp_aes_clear(scp_aes *a)
{
    size_t n;
    if (a == NULL)
        return;
    scp_aes_release(a);
    n = a->nr == 10 || a->nr == 12 || a->nr == 14 ? (a->nr + 1u) * 16 : sizeof(a->u.rk);
    scp_wipe(a->u.rk, n);
    scp_wipe(a->l, sizeof(*a) - offsetof(scp_aes, l));
}

/* ---- keys kept raw, expanded per use ---- */

int scp_aes_raw_init(scp_aes_raw *r, const scp_ctx *ctx, const uint8_t *key, size_t key_len,
                     int dec, int mac)
{
    scp_aes t;
    int ni, rc;

    ENSURE(r != NULL, SCP_E_ARG);
    memset(r, 0, sizeof(*r)); /* scp_aes_raw_clear is safe on any result */
    ENSURE(key != NULL && (key_len == 16 || key_len == 24 || key_len == 32), SCP_E_ARG);
    GUARD(ni = scp_ctx_aesni(ctx));
    if (ni == 1) {
        memcpy(r->u.key, key, key_len);
        r->key_len = (uint8_t)key_len;
        r->dec = (uint8_t)(dec != 0);
        r->mac = 1; /* scp_aes_open below needs it to copy L */
        if (!mac) {
            r->mac = 0;
            return SCP_OK;
        }
        GUARD_GOTO(scp_aes_open(&t, r), fail);
        static const uint8_t zero[16];
        scp_aes_block(&t, zero, r->l);
        scp_aes_close(&t);
        return SCP_OK;
    }
    GUARD_GOTO(aes_setup(&t, ctx, key, key_len, dec), fail);
    /* the contexts change hands: t is not cleared, only its L wiped */
    r->u.evp.ecb = t.u.evp.ecb, r->u.evp.cbce = t.u.evp.cbce, r->u.evp.cbcd = t.u.evp.cbcd;
    r->ossl = 1;
    if (mac)
        memcpy(r->l, t.l, sizeof(r->l));
    scp_wipe(t.l, sizeof(t.l));
    r->key_len = (uint8_t)key_len;
    r->dec = (uint8_t)(dec != 0);
    r->mac = (uint8_t)(mac != 0);
    return SCP_OK;
fail:
    scp_aes_raw_clear(r);
    return rc;
}

void scp_aes_raw_release(scp_aes_raw *r)
{
    if (r->ossl) {
        evp_free(r->u.evp.ecb, r->u.evp.cbce, r->u.evp.cbcd);
        r->u.evp.ecb = r->u.evp.cbce = r->u.evp.cbcd = NULL;
        r->ossl = 0;
    }
}

void scp_aes_raw_clear(scp_aes_raw *r)
{
    if (r == NULL)
        return;
    scp_aes_raw_release(r);
    scp_wipe(r, sizeof(*r));
}

/* AES-NI: the schedule is expanded into a (on the caller's stack), which
 * scp_aes_close wipes. OpenSSL: a borrows the raw key's contexts. */
int scp_aes_open(scp_aes *a, const scp_aes_raw *r)
{
    ENSURE(r->key_len != 0, SCP_E_STATE);
    a->key_len = r->key_len;
    a->nr = (uint8_t)(r->key_len / 4 + 6);
    a->dec = r->dec;
    a->mac = r->mac;
    if (r->ossl) {
        a->fast = 0;
        a->u.evp.ecb = r->u.evp.ecb, a->u.evp.cbce = r->u.evp.cbce;
        a->u.evp.cbcd = r->u.evp.cbcd;
    } else {
        a->fast = 1;
        GUARD(scp_aesni_init(a, r->u.key, r->key_len));
    }
    if (r->mac)
        memcpy(a->l, r->l, sizeof(a->l));
    return SCP_OK;
}

void scp_aes_close(scp_aes *a)
{
    if (a->fast)
        scp_wipe(a->u.rk, (a->nr + 1u) * 16);
    else
        a->u.evp.ecb = a->u.evp.cbce = a->u.evp.cbcd = NULL; /* not ours to free */
    if (a->mac)
        scp_wipe(a->l, sizeof(a->l));
}

void scp_aes_block(const scp_aes *a, const uint8_t in[16], uint8_t out[16])
{
    int n = 0;
    if (a->fast) {
        scp_aesni_block(a, in, out);
        return;
    }
    /* An ECB context on one whole block cannot fail once initialised. */
    (void)EVP_EncryptUpdate(a->u.evp.ecb, out, &n, in, 16);
}

static int cbc_run(EVP_CIPHER_CTX *ctx, int enc, const uint8_t iv[16], const uint8_t *in,
                   size_t len, uint8_t *out)
{
    int n = 0;
    if (len % 16 != 0 || len > (size_t)INT32_MAX)
        return SCP_E_ARG;
    if (len == 0)
        return SCP_OK;
    if (EVP_CipherInit_ex(ctx, NULL, NULL, NULL, iv, enc) != 1 ||
        EVP_CipherUpdate(ctx, out, &n, in, (int)len) != 1 || (size_t)n != len)
        return SCP_E_CRYPTO;
    return SCP_OK;
}

int scp_aes_cbc_encrypt(const scp_aes *a, const uint8_t iv[16], const uint8_t *in, size_t len,
                        uint8_t *out)
{
    if (a->fast)
        return scp_aesni_cbc_encrypt(a, iv, in, len, out);
    return cbc_run(a->u.evp.cbce, 1, iv, in, len, out);
}

int scp_aes_cbc_decrypt(const scp_aes *a, const uint8_t iv[16], const uint8_t *in, size_t len,
                        uint8_t *out)
{
    ENSURE(a->dec, SCP_E_STATE); /* no schedule: never decrypt with garbage */
    if (a->fast)
        return scp_aesni_cbc_decrypt(a, iv, in, len, out);
    return cbc_run(a->u.evp.cbcd, 0, iv, in, len, out);
}

/* RFC 4493 2.3: K1 (whole last block) or K2, from the key's L. */
static void cmac_subkey(const scp_aes *a, int whole, uint8_t k[16])
{
    cmac_double(a->l, k);
    if (!whole)
        cmac_double(k, k);
}

/* x = CBC-MAC state; absorb nblocks whole blocks. */
static int cbcmac_blocks(const scp_aes *a, uint8_t x[16], const uint8_t *p, size_t nblocks)
{
    uint8_t tmp[256];
    int rc = SCP_OK;

    if (a->fast) {
        scp_aesni_cbcmac(a, x, p, nblocks);
        return SCP_OK;
    }
    while (nblocks > 0 && rc == SCP_OK) {
        size_t nb = nblocks > sizeof(tmp) / 16 ? sizeof(tmp) / 16 : nblocks;
        rc = cbc_run(a->u.evp.cbce, 1, x, p, nb * 16, tmp);
        memcpy(x, tmp + (nb - 1) * 16, 16);
        p += nb * 16;
        nblocks -= nb;
    }
    scp_wipe(tmp, sizeof(tmp));
    return rc;
}

void scp_cmac_init(scp_cmac *c, const scp_aes *key)
{
    memset(c, 0, sizeof(*c));
    c->key = key;
}

int scp_cmac_update(scp_cmac *c, const uint8_t *p, size_t len)
{
    if (len == 0)
        return SCP_OK;
    /* fill the pending block; keep a full block pending (it may be last) */
    if (c->n > 0 || len <= 16) {
        size_t take = 16 - c->n < len ? 16 - c->n : len;
        memcpy(c->buf + c->n, p, take);
        c->n += take;
        p += take;
        len -= take;
        if (len == 0)
            return SCP_OK;
        GUARD(cbcmac_blocks(c->key, c->x, c->buf, 1));
        c->n = 0;
    }
    /* whole blocks, holding back the last (partial or full) one */
    size_t whole = (len - 1) / 16;
    if (whole > 0) {
        GUARD(cbcmac_blocks(c->key, c->x, p, whole));
        p += whole * 16;
        len -= whole * 16;
    }
    memcpy(c->buf, p, len);
    c->n = len;
    return SCP_OK;
}

int scp_cmac_final(scp_cmac *c, uint8_t mac[16])
{
    uint8_t last[16], k[16];

    ENSURE(c->key->mac, SCP_E_STATE);
    cmac_subkey(c->key, c->n == 16, k);
    memset(last, 0, sizeof(last));
    memcpy(last, c->buf, c->n);
    if (c->n < 16)
        last[c->n] = 0x80;
    for (int i = 0; i < 16; i++)
        last[i] ^= k[i] ^ c->x[i];
    scp_aes_block(c->key, last, mac);
    scp_wipe(last, sizeof(last));
    scp_wipe(k, sizeof(k));
    scp_wipe(c, sizeof(*c));
    return SCP_OK;
}

/* RFC 4493 2.4 over contiguous bytes: the CBC-MAC runs straight over all
 * but the last block, which gets the subkey; no streaming copies. */
int scp_cmac_once(const scp_aes *key, const uint8_t *p, size_t len, uint8_t mac[16])
{
    ENSURE(key->mac, SCP_E_STATE);
    if (key->fast) {
        scp_aesni_cmac(key, p, len, mac);
        return SCP_OK;
    }
    uint8_t x[16] = { 0 }, last[16] = { 0 }, k[16];
    size_t full = len == 0 ? 0 : (len - 1) / 16, rem = len - full * 16;
    int rc;

    cmac_subkey(key, rem == 16, k);
    rc = cbcmac_blocks(key, x, p, full);
    if (rem > 0)
        memcpy(last, p + full * 16, rem);
    if (rem < 16)
        last[rem] = 0x80;
    for (int i = 0; i < 16; i++)
        last[i] ^= k[i] ^ x[i];
    if (rc == SCP_OK)
        scp_aes_block(key, last, mac);
    scp_wipe(last, sizeof(last));
    scp_wipe(x, sizeof(x));
    scp_wipe(k, sizeof(k));
    return rc;
}

int scp_cmac_ea(const scp_aes *key, const uint8_t hdr[5], const uint8_t *hc, size_t hc_len,
                uint8_t mac[16])
{
    uint8_t msg[16 + 5 + 16] = { 0 };

    ENSURE(key->mac, SCP_E_STATE);
    ENSURE(hc_len == 8 || hc_len == 16, SCP_E_ARG);
    if (key->fast) {
        scp_aesni_cmac_ea(key, hdr, hc, hc_len, mac);
        return SCP_OK;
    }
    memcpy(msg + 16, hdr, 5);
    memcpy(msg + 16 + 5, hc, hc_len);
    return scp_cmac_once(key, msg, 16 + 5 + hc_len, mac);
}

/* The fast path needs both keys on AES-NI and a message that does not end
 * on a block boundary (0 < pre + post < 16: always so in SCP03, where a
 * header or a status word is there). */
static int etm_fast(const scp_aes *ke, const scp_aes *km, size_t pre_len, size_t post_len)
{
    return ke->fast && km->fast && pre_len + post_len > 0 && pre_len + post_len < 16;
}

static int cmac4(const scp_aes *km, const uint8_t chain[16], const uint8_t *pre,
                 size_t pre_len, const uint8_t *p, size_t len, const uint8_t *post,
                 size_t post_len, uint8_t tag[16])
{
    scp_cmac c;
    scp_cmac_init(&c, km);
    GUARD(scp_cmac_update(&c, chain, 16));
    GUARD(scp_cmac_update(&c, pre, pre_len));
    GUARD(scp_cmac_update(&c, p, len));
    GUARD(scp_cmac_update(&c, post, post_len));
    return scp_cmac_final(&c, tag);
}

int scp_cbc_enc_cmac_ahead(const scp_aes *ke, const scp_aes *km, const uint8_t icv_in[16],
                           const uint8_t *iv_pre, const uint8_t *next_in, uint8_t *next_out,
                           const uint8_t chain[16], const uint8_t *pre, size_t pre_len,
                           uint8_t *buf, size_t len, const uint8_t *post, size_t post_len,
                           uint8_t tag[16])
{
    uint8_t iv[16];
    int rc;

    ENSURE(len % 16 == 0, SCP_E_ARG);
    ENSURE(next_in == NULL || next_out != NULL, SCP_E_ARG);
    ENSURE(km->mac, SCP_E_STATE);
    if (etm_fast(ke, km, pre_len, post_len)) {
        scp_aesni_enc_cmac(ke, km, icv_in, iv_pre, next_in, next_out, chain, pre, pre_len, buf,
                           len, post, post_len, tag);
        return SCP_OK;
    }
    if (iv_pre != NULL)
        memcpy(iv, iv_pre, 16);
    else
        scp_aes_block(ke, icv_in, iv);
    rc = scp_aes_cbc_encrypt(ke, iv, buf, len, buf);
    scp_wipe(iv, sizeof(iv));
    GUARD(rc);
    if (next_in != NULL)
        scp_aes_block(ke, next_in, next_out);
    return cmac4(km, chain, pre, pre_len, buf, len, post, post_len, tag);
}

int scp_cbc_enc_cmac(const scp_aes *ke, const scp_aes *km, const uint8_t icv_in[16],
                     const uint8_t chain[16], const uint8_t *pre, size_t pre_len, uint8_t *buf,
                     size_t len, const uint8_t *post, size_t post_len, uint8_t tag[16])
{
    return scp_cbc_enc_cmac_ahead(ke, km, icv_in, NULL, NULL, NULL, chain, pre, pre_len, buf,
                                  len, post, post_len, tag);
}

int scp_cmac_cbc_dec(const scp_aes *ke, const scp_aes *km, const uint8_t icv_in[16],
                     const uint8_t chain[16], const uint8_t *pre, size_t pre_len,
                     const uint8_t *ct, size_t len, const uint8_t *post, size_t post_len,
                     uint8_t *out, uint8_t tag[16])
{
    uint8_t iv[16];
    int rc;

    ENSURE(len % 16 == 0, SCP_E_ARG);
    ENSURE(ke->dec && km->mac, SCP_E_STATE);
    if (etm_fast(ke, km, pre_len, post_len)) {
        scp_aesni_cmac_dec(ke, km, icv_in, chain, pre, pre_len, ct, len, post, post_len, out,
                           tag);
        return SCP_OK;
    }
    GUARD(cmac4(km, chain, pre, pre_len, ct, len, post, post_len, tag));
    scp_aes_block(ke, icv_in, iv);
    rc = scp_aes_cbc_decrypt(ke, iv, ct, len, out);
    scp_wipe(iv, sizeof(iv));
    return rc;
}

#define KDF_MSG_MAX 128

/* The KDF input laid out once in a buffer (only the counter byte changes
 * between blocks), then one-shot CMACs over it. */
static int kbkdf_flat(const scp_aes *key, const uint8_t *before, size_t before_len,
                      const uint8_t *after, size_t after_len, uint8_t *out, size_t out_len)
{
    uint8_t msg[KDF_MSG_MAX], block[16];
    size_t len = before_len + 1 + after_len;
    int rc = SCP_OK;

    if (before_len > 0)
        memcpy(msg, before, before_len);
    if (after_len > 0)
        memcpy(msg + before_len + 1, after, after_len);
    for (uint8_t i = 1; out_len > 0 && rc == SCP_OK; i++) {
        size_t take = out_len < 16 ? out_len : 16;
        msg[before_len] = i;
        rc = scp_cmac_once(key, msg, len, block);
        memcpy(out, block, take);
        out += take;
        out_len -= take;
    }
    scp_wipe(block, sizeof(block));
    scp_wipe(msg, len);
    return rc;
}

int scp_kbkdf_cmac(const scp_aes *key, const uint8_t *before, size_t before_len,
                   const uint8_t *after, size_t after_len, uint8_t *out, size_t out_len)
{
    uint8_t block[16];
    scp_cmac c;

    if (out_len == 0 || out_len > 255 * 16)
        return SCP_E_ARG;
    if (before_len + 1 + after_len <= KDF_MSG_MAX)
        return kbkdf_flat(key, before, before_len, after, after_len, out, out_len);
    for (uint8_t i = 1; out_len > 0; i++) {
        size_t take = out_len < 16 ? out_len : 16;
        scp_cmac_init(&c, key);
        GUARD(scp_cmac_update(&c, before, before_len));
        GUARD(scp_cmac_update(&c, &i, 1));
        GUARD(scp_cmac_update(&c, after, after_len));
        GUARD(scp_cmac_final(&c, block));
        memcpy(out, block, take);
        out += take;
        out_len -= take;
    }
    scp_wipe(block, sizeof(block));
    return SCP_OK;
}

int scp_kdf_gp(const scp_aes *key, uint8_t constant, const uint8_t *context, size_t context_len,
               uint8_t *out, size_t out_len)
{
    /* GPC Amd D 4.1.5: label (11 x 00 | constant) | separator 00 | L */
    uint8_t before[15] = { 0 };
    size_t bits = out_len * 8;

    if (out_len == 0 || out_len > 64)
        return SCP_E_ARG;
    before[11] = constant;
    before[13] = (uint8_t)(bits >> 8);
    before[14] = (uint8_t)bits;
    return scp_kbkdf_cmac(key, before, sizeof(before), context, context_len, out, out_len);
}

int scp_des3_ecb_encrypt(const uint8_t *key, size_t key_len, const uint8_t *in, size_t len,
                         uint8_t *out)
{
    const EVP_CIPHER *c = key_len == 16 ? EVP_des_ede_ecb()
                        : key_len == 24 ? EVP_des_ede3_ecb() : NULL;
    EVP_CIPHER_CTX *ctx;
    int n = 0, rc = SCP_E_CRYPTO;

    if (c == NULL || len % 8 != 0 || len > 4096)
        return SCP_E_ARG;
    if ((ctx = ctx_new(c, key, 1)) == NULL)
        return SCP_E_CRYPTO;
    if (len == 0 || (EVP_EncryptUpdate(ctx, out, &n, in, (int)len) == 1 && (size_t)n == len))
        rc = SCP_OK;
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

int scp_kcv_aes(const uint8_t *key, size_t key_len, uint8_t kcv[SCP_KCV_LEN])
{
    uint8_t ones[16], out[16];
    scp_aes a;

    memset(ones, 0x01, sizeof(ones));
    GUARD(scp_aes_init(&a, key, key_len));
    scp_aes_block(&a, ones, out);
    scp_aes_clear(&a);
    memcpy(kcv, out, SCP_KCV_LEN);
    scp_wipe(out, sizeof(out));
    return SCP_OK;
}

int scp_kcv_des3(const uint8_t *key, size_t key_len, uint8_t kcv[SCP_KCV_LEN])
{
    uint8_t zero[8] = { 0 }, out[8];
    GUARD(scp_des3_ecb_encrypt(key, key_len, zero, sizeof(zero), out));
    memcpy(kcv, out, SCP_KCV_LEN);
    scp_wipe(out, sizeof(out));
    return SCP_OK;
}

int scp_ctx_random(const scp_ctx *ctx, uint8_t *out, size_t len)
{
    if (ctx == NULL || ctx->rng == NULL)
        return scp_random(out, len);
    ENSURE(out != NULL || len == 0, SCP_E_ARG);
    return ctx->rng(ctx->rng_ctx, out, len) == 0 ? SCP_OK : SCP_E_CRYPTO;
}

int scp_random(uint8_t *out, size_t len)
{
    if (len > (size_t)INT32_MAX)
        return SCP_E_ARG;
    return RAND_bytes(out, (int)len) == 1 ? SCP_OK : SCP_E_CRYPTO;
}

int scp_ct_eq(const uint8_t *a, const uint8_t *b, size_t len)
{
    /* every byte read, differences or-ed together, one test at the end
     * (as CRYPTO_memcmp, without a call into libcrypto for the 8 or 16
     * bytes of a MAC or cryptogram); the empty asm hides d from the
     * optimiser, so the loop cannot end early */
    uint64_t d = 0, x, y;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        memcpy(&x, a + i, 8), memcpy(&y, b + i, 8);
        d |= x ^ y;
        __asm__("" : "+r"(d));
    }
    for (; i < len; i++) {
        d |= (uint64_t)(a[i] ^ b[i]);
        __asm__("" : "+r"(d));
    }
    return d == 0;
}

void scp_wipe(void *p, size_t len)
{
    /* glibc's explicit_bzero is memset that the compiler may not elide
     * (and runs at memset speed: session set-up wipes kilobytes) */
    if (p != NULL && len > 0)
        explicit_bzero(p, len);
}
