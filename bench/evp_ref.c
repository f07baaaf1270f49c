/* The second reference: SCP03 wrap and unwrap written straight on OpenSSL 3
 * EVP, the way an integrator without scpkit would (GPC Amd D 6.2.4-6.2.7:
 * ICV = AES-ECB(S-ENC, counter), ISO 9797-1 M2 padding, AES-CBC, CMAC over
 * chain | header | data). Two flavours: contexts kept per key (CMAC
 * restarted with EVP_MAC_init(ctx, NULL, 0, NULL)), and contexts made per
 * APDU. Same block counts as scpkit's; random keys. */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "bench.h"

struct evp_ref {
    EVP_MAC *alg;
    EVP_CIPHER_CTX *ecb, *cbce, *cbcd;
    EVP_MAC_CTX *mac;
    const EVP_CIPHER *ecb_c, *cbc_c;
    const char *cmac_cipher;
    uint8_t kenc[32], kmac[32], chain[16];
    size_t kl, chal;
    uint64_t ctr;
    size_t n;
    int fresh;
    uint8_t in[65536 + 32], out[65536 + 64];
};

static EVP_CIPHER_CTX *cctx(const EVP_CIPHER *c, const uint8_t *key, int enc)
{
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    if (x == NULL || EVP_CipherInit_ex(x, c, NULL, key, NULL, enc) != 1 ||
        EVP_CIPHER_CTX_set_padding(x, 0) != 1)
        bench_must(-1, "EVP cipher context");
    return x;
}

static EVP_MAC_CTX *mctx(evp_ref *r)
{
    OSSL_PARAM p[2];
    EVP_MAC_CTX *m = EVP_MAC_CTX_new(r->alg);
    p[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, (char *)r->cmac_cipher, 0);
    p[1] = OSSL_PARAM_construct_end();
    if (m == NULL || EVP_MAC_init(m, r->kmac, r->kl, p) != 1)
        bench_must(-1, "EVP CMAC context");
    return m;
}

evp_ref *evp_ref_new(size_t key_len, size_t chal_len)
{
    evp_ref *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->kl = key_len, r->chal = chal_len;
    r->ecb_c = key_len == 16 ? EVP_aes_128_ecb() : key_len == 24 ? EVP_aes_192_ecb()
                                                                  : EVP_aes_256_ecb();
    r->cbc_c = key_len == 16 ? EVP_aes_128_cbc() : key_len == 24 ? EVP_aes_192_cbc()
                                                                  : EVP_aes_256_cbc();
    r->cmac_cipher = key_len == 16 ? "AES-128-CBC" : key_len == 24 ? "AES-192-CBC"
                                                                    : "AES-256-CBC";
    memset(r->kenc, 0x4A, sizeof(r->kenc));
    memset(r->kmac, 0x5B, sizeof(r->kmac));
    r->alg = EVP_MAC_fetch(NULL, "CMAC", NULL);
    if (r->alg == NULL)
        bench_must(-1, "EVP_MAC_fetch(CMAC)");
    r->ecb = cctx(r->ecb_c, r->kenc, 1);
    r->cbce = cctx(r->cbc_c, r->kenc, 1);
    r->cbcd = cctx(r->cbc_c, r->kenc, 0);
    r->mac = mctx(r);
    return r;
}

void evp_ref_free(evp_ref *r)
{
    if (r == NULL)
        return;
    EVP_CIPHER_CTX_free(r->ecb);
    EVP_CIPHER_CTX_free(r->cbce);
    EVP_CIPHER_CTX_free(r->cbcd);
    EVP_MAC_CTX_free(r->mac);
    EVP_MAC_free(r->alg);
    free(r);
}

static void icv(EVP_CIPHER_CTX *ecb, uint64_t ctr, int resp, uint8_t iv[16])
{
    uint8_t b[16] = { 0 };
    int l = 0;
    for (int i = 15; i >= 8; i--, ctr >>= 8)
        b[i] = (uint8_t)ctr;
    b[0] = resp ? 0x80 : 0;
    (void)EVP_EncryptUpdate(ecb, iv, &l, b, 16);
}

/* CBC over len bytes with a kept or fresh context */
static void cbc(evp_ref *r, int enc, const uint8_t iv[16], uint8_t *p, size_t len)
{
    EVP_CIPHER_CTX *c = r->fresh ? cctx(r->cbc_c, r->kenc, enc) : enc ? r->cbce : r->cbcd;
    int l = 0;
    if (EVP_CipherInit_ex(c, NULL, NULL, NULL, iv, enc) != 1 ||
        (len > 0 && EVP_CipherUpdate(c, p, &l, p, (int)len) != 1))
        bench_must(-1, "EVP CBC");
    if (r->fresh)
        EVP_CIPHER_CTX_free(c);
}

static void ref_wrap(void *p)
{
    evp_ref *r = p;
    EVP_CIPHER_CTX *ecb = r->fresh ? cctx(r->ecb_c, r->kenc, 1) : r->ecb;
    EVP_MAC_CTX *m = r->fresh ? mctx(r) : r->mac;
    uint8_t iv[16], mac[16], *o = r->out;
    size_t pl = r->n ? (r->n / 16 + 1) * 16 : 0, hl = pl + r->chal > 255 ? 7 : 5, ml = 0;

    r->ctr++;
    o[0] = 0x84, o[1] = 0xE2, o[2] = 0, o[3] = 0;
    if (hl == 5)
        o[4] = (uint8_t)(pl + r->chal);
    else
        o[4] = 0, o[5] = (uint8_t)((pl + r->chal) >> 8), o[6] = (uint8_t)(pl + r->chal);
    if (pl) {
        memcpy(o + hl, r->in, r->n);
        o[hl + r->n] = 0x80;
        memset(o + hl + r->n + 1, 0, pl - r->n - 1);
        icv(ecb, r->ctr, 0, iv);
        cbc(r, 1, iv, o + hl, pl);
    }
    if ((!r->fresh && EVP_MAC_init(m, NULL, 0, NULL) != 1) ||
        EVP_MAC_update(m, r->chain, 16) != 1 || EVP_MAC_update(m, o, hl + pl) != 1 ||
        EVP_MAC_final(m, mac, &ml, sizeof(mac)) != 1)
        bench_must(-1, "EVP CMAC");
    memcpy(r->chain, mac, 16);
    memcpy(o + hl + pl, mac, r->chal);
    if (r->fresh) {
        EVP_CIPHER_CTX_free(ecb);
        EVP_MAC_CTX_free(m);
    }
}

static void ref_unwrap(void *p)
{
    evp_ref *r = p;
    EVP_CIPHER_CTX *ecb = r->fresh ? cctx(r->ecb_c, r->kenc, 1) : r->ecb;
    EVP_MAC_CTX *m = r->fresh ? mctx(r) : r->mac;
    uint8_t iv[16], mac[16], *o = r->out;
    size_t pl = r->n ? (r->n / 16 + 1) * 16 : 0, ml = 0, i;
    volatile int ok;

    /* response: ct | mac | 90 00, prepared as random bytes in `in` */
    if ((!r->fresh && EVP_MAC_init(m, NULL, 0, NULL) != 1) ||
        EVP_MAC_update(m, r->chain, 16) != 1 || EVP_MAC_update(m, r->in, pl) != 1 ||
        EVP_MAC_update(m, (const uint8_t *)"\x90\x00", 2) != 1 ||
        EVP_MAC_final(m, mac, &ml, sizeof(mac)) != 1)
        bench_must(-1, "EVP CMAC");
    ok = CRYPTO_memcmp(mac, r->in + pl, r->chal) == 0; /* random data: never ok */
    (void)ok;
    if (pl) {
        memcpy(o, r->in, pl);
        icv(ecb, r->ctr, 1, iv);
        cbc(r, 0, iv, o, pl);
        for (i = pl; i > 0 && o[i - 1] == 0; i--)
            ;
    }
    if (r->fresh) {
        EVP_CIPHER_CTX_free(ecb);
        EVP_MAC_CTX_free(m);
    }
}

double evp_ref_wrap_ns(evp_ref *r, size_t n, int fresh)
{
    r->n = n, r->fresh = fresh;
    memset(r->in, 0x33, n);
    return bench_ns(ref_wrap, r);
}

double evp_ref_unwrap_ns(evp_ref *r, size_t n, int fresh)
{
    r->n = n, r->fresh = fresh;
    memset(r->in, 0x33, sizeof(r->in));
    return bench_ns(ref_unwrap, r);
}
