/* scpkit: AES-NI fast path for the crypto backend (FIPS 197 AES, SP 800-38A
 * CBC, the CBC-MAC core of SP 800-38B CMAC).
 *
 * Only the functions below carry target("aes,sse4.1"), so the rest of the
 * build stays generic; scp_aesni_init picks this path at run time when the
 * CPU has AES-NI, unless SCP_AES_IMPL=openssl or scp_aes_force_openssl(1).
 * Round keys are expanded once per key into the caller's scp_aes (16-byte
 * aligned) and wiped by scp_aes_clear. Everything here is branch-free and
 * table-free in the secret data: AESENC does the S-box in hardware, and the
 * key schedule's SubWord goes through AESKEYGENASSIST, not a table. */
#include <stdlib.h>
#include <string.h>

#include "crypto/internal.h"

static int force_openssl;

void scp_aes_force_openssl(int on) { force_openssl = on; }

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define SCP_AESNI __attribute__((target("aes,sse4.1")))

/* -1 unknown, 0 no, 1 yes; a benign race: every thread computes the same */
static int cpu_ok = -1;

static int aesni_usable(void)
{
    if (cpu_ok < 0) {
        const char *e = getenv("SCP_AES_IMPL");
        int env_off = e != NULL && strcmp(e, "openssl") == 0;
        __builtin_cpu_init();
        cpu_ok = !env_off && __builtin_cpu_supports("aes") && __builtin_cpu_supports("sse4.1");
    }
    return cpu_ok && !force_openssl;
}

const char *scp_aes_impl(void) { return aesni_usable() ? "aesni" : "openssl"; }

#define LD(p) _mm_loadu_si128((const __m128i *)(const void *)(p))
#define ST(p, v) _mm_storeu_si128((__m128i *)(void *)(p), (v))
#define RK(a) ((const __m128i *)(const void *)(a)->rk)
#define DRK(a) ((const __m128i *)(const void *)(a)->drk)

/* FIPS 197 5.2, one word at a time for Nk = 4, 6, 8. SubWord comes from
 * AESKEYGENASSIST with rcon 0 (lane 0: SubWord(x3), lane 1:
 * RotWord(SubWord(x3)), with x3 the word broadcast to every lane); the
 * round constant is xored in by hand. Branches depend on i only. */
SCP_AESNI static uint32_t sub_word(uint32_t w, int rot)
{
    __m128i r = _mm_aeskeygenassist_si128(_mm_set1_epi32((int)w), 0);
    return rot ? (uint32_t)_mm_extract_epi32(r, 1) : (uint32_t)_mm_cvtsi128_si32(r);
}

SCP_AESNI static void expand_key(scp_aes *a, const uint8_t *key, size_t key_len)
{
    uint32_t w[60];
    size_t nk = key_len / 4, total = 4 * ((size_t)a->nr + 1);
    uint8_t rcon = 1;

    memcpy(w, key, key_len); /* little-endian words, as AESENC expects */
    for (size_t i = nk; i < total; i++) {
        uint32_t t = w[i - 1];
        if (i % nk == 0) {
            t = sub_word(t, 1) ^ rcon;
            rcon = (uint8_t)((rcon << 1) ^ (rcon & 0x80 ? 0x1b : 0)); /* public */
        } else if (nk > 6 && i % nk == 4) {
            t = sub_word(t, 0);
        }
        w[i] = w[i - nk] ^ t;
    }
    memcpy(a->rk, w, total * 4);
    /* equivalent inverse cipher (FIPS 197 5.3.5): reversed, InvMixColumns */
    __m128i *d = (__m128i *)(void *)a->drk;
    d[0] = RK(a)[a->nr];
    for (int r = 1; r < a->nr; r++)
        d[r] = _mm_aesimc_si128(RK(a)[a->nr - r]);
    d[a->nr] = RK(a)[0];
    scp_wipe(w, sizeof(w));
}

int scp_aesni_init(scp_aes *a, const uint8_t *key, size_t key_len)
{
    if (!aesni_usable())
        return SCP_E_UNSUPPORTED;
    if (key_len != 16 && key_len != 24 && key_len != 32)
        return SCP_E_ARG;
    a->nr = (uint8_t)(key_len / 4 + 6);
    expand_key(a, key, key_len);
    return SCP_OK;
}

/* One block; the loop bound is the (public) round count. */
SCP_AESNI static inline __m128i enc1(const __m128i *rk, int nr, __m128i b)
{
    b = _mm_xor_si128(b, rk[0]);
    for (int r = 1; r < nr; r++)
        b = _mm_aesenc_si128(b, rk[r]);
    return _mm_aesenclast_si128(b, rk[nr]);
}

SCP_AESNI void scp_aesni_block(const scp_aes *a, const uint8_t in[16], uint8_t out[16])
{
    ST(out, enc1(RK(a), a->nr, LD(in)));
}

SCP_AESNI int scp_aesni_cbc_encrypt(const scp_aes *a, const uint8_t iv[16], const uint8_t *in,
                                    size_t len, uint8_t *out)
{
    __m128i x = LD(iv);
    if (len % 16 != 0)
        return SCP_E_ARG;
    for (size_t i = 0; i < len; i += 16) {
        x = enc1(RK(a), a->nr, _mm_xor_si128(x, LD(in + i)));
        ST(out + i, x);
    }
    return SCP_OK;
}

/* CBC decryption is parallel: eight blocks go through the rounds together
 * so the AES unit's pipeline stays full; in == out works because each
 * group's ciphertext is read before its plaintext is written. */
SCP_AESNI static void dec8(const scp_aes *a, __m128i *prev, const uint8_t *in, uint8_t *out)
{
    const __m128i *dk = DRK(a);
    __m128i c[8], b[8];
    int nr = a->nr;

    for (int j = 0; j < 8; j++) {
        c[j] = LD(in + 16 * j);
        b[j] = _mm_xor_si128(c[j], dk[0]);
    }
    for (int r = 1; r < nr; r++)
        for (int j = 0; j < 8; j++)
            b[j] = _mm_aesdec_si128(b[j], dk[r]);
    for (int j = 0; j < 8; j++)
        b[j] = _mm_aesdeclast_si128(b[j], dk[nr]);
    ST(out, _mm_xor_si128(b[0], *prev));
    for (int j = 1; j < 8; j++)
        ST(out + 16 * j, _mm_xor_si128(b[j], c[j - 1]));
    *prev = c[7];
}

SCP_AESNI int scp_aesni_cbc_decrypt(const scp_aes *a, const uint8_t iv[16], const uint8_t *in,
                                    size_t len, uint8_t *out)
{
    const __m128i *dk = DRK(a);
    __m128i prev = LD(iv);
    size_t i = 0;

    if (len % 16 != 0)
        return SCP_E_ARG;
    for (; i + 128 <= len; i += 128)
        dec8(a, &prev, in + i, out + i);
    for (; i < len; i += 16) {
        __m128i c = LD(in + i), b = _mm_xor_si128(c, dk[0]);
        for (int r = 1; r < a->nr; r++)
            b = _mm_aesdec_si128(b, dk[r]);
        ST(out + i, _mm_xor_si128(_mm_aesdeclast_si128(b, dk[a->nr]), prev));
        prev = c;
    }
    return SCP_OK;
}

SCP_AESNI void scp_aesni_cbcmac(const scp_aes *a, uint8_t x[16], const uint8_t *p,
                                size_t nblocks)
{
    __m128i v = LD(x);
    for (size_t i = 0; i < nblocks; i++)
        v = enc1(RK(a), a->nr, _mm_xor_si128(v, LD(p + 16 * i)));
    ST(x, v);
}

#else /* not x86: the OpenSSL path serves */

const char *scp_aes_impl(void) { return "openssl"; }
int scp_aesni_init(scp_aes *a, const uint8_t *key, size_t key_len)
{
    (void)a, (void)key, (void)key_len, (void)force_openssl;
    return SCP_E_UNSUPPORTED;
}
void scp_aesni_block(const scp_aes *a, const uint8_t in[16], uint8_t out[16])
{
    (void)a, (void)in, (void)out;
}
int scp_aesni_cbc_encrypt(const scp_aes *a, const uint8_t iv[16], const uint8_t *in,
                          size_t len, uint8_t *out)
{
    (void)a, (void)iv, (void)in, (void)len, (void)out;
    return SCP_E_UNSUPPORTED;
}
int scp_aesni_cbc_decrypt(const scp_aes *a, const uint8_t iv[16], const uint8_t *in,
                          size_t len, uint8_t *out)
{
    (void)a, (void)iv, (void)in, (void)len, (void)out;
    return SCP_E_UNSUPPORTED;
}
void scp_aesni_cbcmac(const scp_aes *a, uint8_t x[16], const uint8_t *p, size_t nblocks)
{
    (void)a, (void)x, (void)p, (void)nblocks;
}
#endif
