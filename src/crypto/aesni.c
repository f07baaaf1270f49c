/* scpkit: AES-NI fast path for the crypto backend (FIPS 197 AES, SP 800-38A
 * CBC, the CBC-MAC core of SP 800-38B CMAC).
 *
 * Only the functions below carry target("aes,sse4.1"), so the rest of the
 * build stays generic; scp_aesni_init picks this path at run time when the
 * CPU has AES-NI, unless SCP_AES_IMPL=openssl or scp_aes_force_openssl(1).
 * Round keys are expanded once per key into the caller's scp_aes (16-byte
 * aligned) and wiped by scp_aes_clear. Everything here is branch-free and
 * table-free in the secret data: AESENC does the S-box in hardware, and the
 * key schedule's SubWord goes through AESENCLAST (AESKEYGENASSIST for
 * AES-192), not a table. */
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

/* What a batch of key schedules leaves behind. Round keys held in vector
 * registers outlive the function (the next lazily bound library call
 * saves them on the stack): clear them before any such call. Values the
 * compiler spilled live in the callee's frame: a later call from the same
 * caller overwrites that region. Both as OpenSSL's own AES-NI code does. */
static inline __attribute__((always_inline)) void scrub_xmm(void)
{
    __asm__ volatile("pxor %%xmm0, %%xmm0\n\tpxor %%xmm1, %%xmm1\n\t"
                     "pxor %%xmm2, %%xmm2\n\tpxor %%xmm3, %%xmm3\n\t"
                     "pxor %%xmm4, %%xmm4\n\tpxor %%xmm5, %%xmm5\n\t"
                     "pxor %%xmm6, %%xmm6\n\tpxor %%xmm7, %%xmm7\n\t"
#if defined(__x86_64__)
                     "pxor %%xmm8, %%xmm8\n\tpxor %%xmm9, %%xmm9\n\t"
                     "pxor %%xmm10, %%xmm10\n\tpxor %%xmm11, %%xmm11\n\t"
                     "pxor %%xmm12, %%xmm12\n\tpxor %%xmm13, %%xmm13\n\t"
                     "pxor %%xmm14, %%xmm14\n\tpxor %%xmm15, %%xmm15\n\t"
#endif
                     ::
                         : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
#if defined(__x86_64__)
                           "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14",
                           "xmm15",
#endif
                           "memory");
}

/* n: more than the frame of the function it follows (kdf3_run's is about
 * 1.5 KiB with gcc 12 -O2; tests/crypto_fast/test_stack_residue checks). */
__attribute__((noinline)) static void scrub_stack(size_t n)
{
    uint8_t pad[2048];
    scp_wipe(pad, n < sizeof(pad) ? n : sizeof(pad));
    __asm__ volatile("" : : "r"(pad) : "memory");
}

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

/* AES-192 (and any Nk): the plain word loop. */
SCP_AESNI static void expand_words(scp_aes *a, const uint8_t *key, size_t key_len)
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
    scp_wipe(w, sizeof(w));
}

/* w[i-4..i-1] -> next four words: prefix-xor of the previous round key,
 * xored with the broadcast SubWord word `t`. */
SCP_AESNI static inline __m128i next4(__m128i k, __m128i t)
{
    k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
    k = _mm_xor_si128(k, _mm_slli_si128(k, 8));
    return _mm_xor_si128(k, t);
}

/* SubWord without AESKEYGENASSIST (slow on many cores): broadcast the last
 * word to all four columns (rotated for RotWord, with PSHUFB), then
 * AESENCLAST does SubBytes (its ShiftRows moves nothing when the columns
 * are equal) and xors in rcon in every column. */
#define ROT_W3 _mm_set1_epi32(0x0c0f0e0d) /* bytes 13 14 15 12: RotWord(w3) */
#define SUB_ROT(k, rcon) _mm_aesenclast_si128(_mm_shuffle_epi8((k), ROT_W3), _mm_set1_epi32(rcon))
#define SUB(k) _mm_aesenclast_si128(_mm_shuffle_epi32((k), 0xff), _mm_setzero_si128())

#define K128(i, rcon) rk[i] = next4(rk[i - 1], SUB_ROT(rk[i - 1], rcon))

/* FIPS 197 5.2 for Nk = 4, one round key per step. */
SCP_AESNI static void expand128(__m128i *rk, const uint8_t *key)
{
    rk[0] = LD(key);
    K128(1, 0x01); K128(2, 0x02); K128(3, 0x04); K128(4, 0x08); K128(5, 0x10);
    K128(6, 0x20); K128(7, 0x40); K128(8, 0x80); K128(9, 0x1b); K128(10, 0x36);
}

/* Nk = 8: even round keys take RotWord+SubWord+rcon of the last word,
 * odd ones SubWord only. */
#define K256(i, rcon) rk[i] = next4(rk[i - 2], SUB_ROT(rk[i - 1], rcon))
#define K256B(i) rk[i] = next4(rk[i - 2], SUB(rk[i - 1]))

SCP_AESNI static void expand256(__m128i *rk, const uint8_t *key)
{
    rk[0] = LD(key);
    rk[1] = LD(key + 16);
    K256(2, 0x01); K256B(3); K256(4, 0x02); K256B(5); K256(6, 0x04); K256B(7);
    K256(8, 0x08); K256B(9); K256(10, 0x10); K256B(11); K256(12, 0x20); K256B(13);
    K256(14, 0x40);
}

/* Equivalent inverse cipher (FIPS 197 5.3.5): reversed, InvMixColumns. */
SCP_AESNI static void expand_dec(scp_aes *a)
{
    const __m128i *e = RK(a);
    __m128i *d = (__m128i *)(void *)a->drk;
    d[0] = e[a->nr];
    for (int r = 1; r < a->nr; r++)
        d[r] = _mm_aesimc_si128(e[a->nr - r]);
    d[a->nr] = e[0];
}

int scp_aesni_init(scp_aes *a, const uint8_t *key, size_t key_len, int dec)
{
    if (!aesni_usable())
        return SCP_E_UNSUPPORTED;
    if (key_len != 16 && key_len != 24 && key_len != 32)
        return SCP_E_ARG;
    a->nr = (uint8_t)(key_len / 4 + 6);
    if (key_len == 16)
        expand128((__m128i *)(void *)a->rk, key);
    else if (key_len == 32)
        expand256((__m128i *)(void *)a->rk, key);
    else
        expand_words(a, key, key_len);
    if (dec)
        expand_dec(a);
    scrub_xmm(); /* the key and its schedule stay only in *a */
    return SCP_OK;
}

/* One block, unrolled: a round loop costs more instructions than the
 * rounds themselves at APDU sizes. The branches test the (public) round
 * count only. */
SCP_AESNI static inline __m128i enc1(const __m128i *rk, int nr, __m128i b)
{
    b = _mm_xor_si128(b, rk[0]);
    b = _mm_aesenc_si128(b, rk[1]);
    b = _mm_aesenc_si128(b, rk[2]);
    b = _mm_aesenc_si128(b, rk[3]);
    b = _mm_aesenc_si128(b, rk[4]);
    b = _mm_aesenc_si128(b, rk[5]);
    b = _mm_aesenc_si128(b, rk[6]);
    b = _mm_aesenc_si128(b, rk[7]);
    b = _mm_aesenc_si128(b, rk[8]);
    b = _mm_aesenc_si128(b, rk[9]);
    if (nr > 10) {
        b = _mm_aesenc_si128(b, rk[10]);
        b = _mm_aesenc_si128(b, rk[11]);
    }
    if (nr > 12) {
        b = _mm_aesenc_si128(b, rk[12]);
        b = _mm_aesenc_si128(b, rk[13]);
    }
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

/* RFC 4493 2.4 in registers: all but the last block straight, then the
 * last one padded (80 00..) with K2, or whole with K1. */
SCP_AESNI void scp_aesni_cmac(const scp_aes *a, const uint8_t *p, size_t len, uint8_t mac[16])
{
    _Alignas(16) uint8_t last[16] = { 0 };
    size_t full = len == 0 ? 0 : (len - 1) / 16, rem = len - full * 16;
    __m128i v = _mm_setzero_si128();

    for (size_t i = 0; i < full; i++)
        v = enc1(RK(a), a->nr, _mm_xor_si128(v, LD(p + 16 * i)));
    if (rem > 0)
        memcpy(last, p + full * 16, rem);
    if (rem < 16)
        last[rem] = 0x80;
    v = _mm_xor_si128(v, _mm_xor_si128(LD(last), LD(rem == 16 ? a->k1 : a->k2)));
    ST(mac, enc1(RK(a), a->nr, v));
    scp_wipe(last, sizeof(last));
}

/* ---- SCP03 secure messaging, CBC and CMAC interleaved ----
 *
 * The CMAC runs over chain | pre | data | post, where pre (the C-APDU
 * header, 0..15 bytes) shifts the data against the 16-byte block grid:
 * CMAC block j is the last pre_len bytes of data block j-1 (pre itself for
 * j = 0) followed by the first 16 - pre_len bytes of data block j. JOIN
 * builds it in registers with two byte shuffles whose masks slide over the
 * tables below by pre_len (a public length, not a secret). */
static const uint8_t shuf_tail[32] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                                       0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                       0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80 };
static const uint8_t shuf_head[32] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                       0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                       0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };

typedef struct splice {
    __m128i tail, head; /* masks: prev's last k bytes to the front; cur's first 16-k after */
} splice;

#define JOIN(sp, prev, cur)                                                                        \
    _mm_or_si128(_mm_shuffle_epi8((prev), (sp).tail), _mm_shuffle_epi8((cur), (sp).head))

/* Masks for pre_len k, the first "previous block" (pre at its top bytes)
 * and the block that closes the message (post, 80, zeros). The callers
 * (backend.c) guarantee 0 < pre_len + post_len < 16. */
SCP_AESNI static void splice_init(splice *sp, __m128i *first, __m128i *closing,
                                  const uint8_t *pre, size_t k, const uint8_t *post, size_t tl)
{
    uint8_t t[16] = { 0 }, u[16] = { 0 };
    sp->tail = LD(shuf_tail + 16 - k);
    sp->head = LD(shuf_head + 16 - k);
    if (k > 0)
        memcpy(t + 16 - k, pre, k);
    if (tl > 0)
        memcpy(u, post, tl);
    u[tl] = 0x80;
    *first = LD(t);
    *closing = LD(u);
}

SCP_AESNI void scp_aesni_enc_cmac(const scp_aes *ke, const scp_aes *km, const uint8_t icv_in[16],
                                  const uint8_t *iv_pre, const uint8_t *next_in,
                                  uint8_t *next_out, const uint8_t chain[16],
                                  const uint8_t *pre, size_t pre_len, uint8_t *buf, size_t len,
                                  const uint8_t *post, size_t post_len, uint8_t tag[16])
{
    const __m128i *ek = RK(ke), *mk = RK(km);
    __m128i c, x, prev, closing;
    splice sp;

    splice_init(&sp, &prev, &closing, pre, pre_len, post, post_len);
    /* the ICV (unless made ahead) and the chaining block: two independent
     * chains already */
    c = iv_pre != NULL ? LD(iv_pre) : enc1(ek, ke->nr, LD(icv_in));
    x = enc1(mk, km->nr, LD(chain));
    if (next_in != NULL) /* the next command's ICV, off every chain here */
        ST(next_out, enc1(ek, ke->nr, LD(next_in)));
    for (size_t i = 0; i < len; i += 16) {
        c = enc1(ek, ke->nr, _mm_xor_si128(c, LD(buf + i)));
        ST(buf + i, c);
        /* the CMAC of block j runs while block j+1 is being encrypted */
        x = enc1(mk, km->nr, _mm_xor_si128(x, JOIN(sp, prev, c)));
        prev = c;
    }
    x = _mm_xor_si128(x, _mm_xor_si128(JOIN(sp, prev, closing), LD(km->k2)));
    ST(tag, enc1(mk, km->nr, x));
}

SCP_AESNI static inline __m128i dec1(const __m128i *dk, int nr, __m128i b)
{
    b = _mm_xor_si128(b, dk[0]);
    b = _mm_aesdec_si128(b, dk[1]);
    b = _mm_aesdec_si128(b, dk[2]);
    b = _mm_aesdec_si128(b, dk[3]);
    b = _mm_aesdec_si128(b, dk[4]);
    b = _mm_aesdec_si128(b, dk[5]);
    b = _mm_aesdec_si128(b, dk[6]);
    b = _mm_aesdec_si128(b, dk[7]);
    b = _mm_aesdec_si128(b, dk[8]);
    b = _mm_aesdec_si128(b, dk[9]);
    if (nr > 10) {
        b = _mm_aesdec_si128(b, dk[10]);
        b = _mm_aesdec_si128(b, dk[11]);
    }
    if (nr > 12) {
        b = _mm_aesdec_si128(b, dk[12]);
        b = _mm_aesdec_si128(b, dk[13]);
    }
    return _mm_aesdeclast_si128(b, dk[nr]);
}

SCP_AESNI void scp_aesni_cmac_dec(const scp_aes *ke, const scp_aes *km, const uint8_t icv_in[16],
                                  const uint8_t chain[16], const uint8_t *pre, size_t pre_len,
                                  const uint8_t *ct, size_t len, const uint8_t *post,
                                  size_t post_len, uint8_t *out, uint8_t tag[16])
{
    const __m128i *dk = DRK(ke), *mk = RK(km);
    __m128i iv, x, prev, closing;
    splice sp;

    splice_init(&sp, &prev, &closing, pre, pre_len, post, post_len);
    iv = enc1(RK(ke), ke->nr, LD(icv_in));
    x = enc1(mk, km->nr, LD(chain));
    for (size_t i = 0; i < len; i += 16) {
        __m128i c = LD(ct + i);
        x = enc1(mk, km->nr, _mm_xor_si128(x, JOIN(sp, prev, c)));
        /* decryption is off the CMAC chain: it fills the pipeline's gaps */
        ST(out + i, _mm_xor_si128(dec1(dk, ke->nr, c), iv));
        iv = c;
        prev = c;
    }
    x = _mm_xor_si128(x, _mm_xor_si128(JOIN(sp, prev, closing), LD(km->k2)));
    ST(tag, enc1(mk, km->nr, x));
}

/* ---- GPC Amd D 6.2.1: three session keys in one batch ----
 *
 * The three KDFs (and their key schedules) are independent, so they run in
 * lockstep, each step over all three: the latency of one AES chain is paid
 * once, not three times. Chain j uses static key j (which may repeat). */
#define NK 3
#define EACH _Pragma("GCC unroll 6") for

static const uint8_t rcons[10] = { 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x1b, 0x36 };

/* FIPS 197 5.2 for three keys at once (Nk = 4 or 8); k[j][0..1] hold the
 * keys. rk[j] receives nr + 1 round keys. */
SCP_AESNI static inline __attribute__((always_inline)) void
expand3(__m128i *const rk[NK], const __m128i k[NK][2], int k256)
{
    __m128i a[NK], b[NK];
    EACH (int j = 0; j < NK; j++)
        rk[j][0] = a[j] = k[j][0];
    if (!k256) {
        for (int i = 1; i <= 10; i++)
            EACH (int j = 0; j < NK; j++)
                rk[j][i] = a[j] = next4(a[j], SUB_ROT(a[j], rcons[i - 1]));
        return;
    }
    EACH (int j = 0; j < NK; j++)
        rk[j][1] = b[j] = k[j][1];
    for (int i = 2; i <= 14; i += 2) {
        EACH (int j = 0; j < NK; j++)
            rk[j][i] = a[j] = next4(a[j], SUB_ROT(b[j], rcons[i / 2 - 1]));
        if (i == 14)
            break;
        EACH (int j = 0; j < NK; j++)
            rk[j][i + 1] = b[j] = next4(b[j], SUB(a[j]));
    }
}

/* RFC 4493 2.3 doubling in registers: the block as a big-endian 128-bit
 * number, shifted left, 87 xored in by mask (no branch on the msb). */
SCP_AESNI static inline __m128i dbl(__m128i l)
{
    const __m128i rev = _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __m128i v = _mm_shuffle_epi8(l, rev), top = _mm_srli_epi64(v, 63);
    __m128i red = _mm_and_si128(_mm_sub_epi64(_mm_setzero_si128(), _mm_srli_si128(top, 8)),
                                _mm_set_epi64x(0, 0x87));
    v = _mm_xor_si128(_mm_slli_epi64(v, 1), _mm_slli_si128(top, 8));
    return _mm_shuffle_epi8(_mm_xor_si128(v, red), rev);
}

/* nc (3 or 6) CMAC chains in lockstep over m blocks: first[c] is chain
 * c's first block, the m - 1 blocks after it (tail, already padded) are
 * shared; the last block takes sub[c] (K1 or K2 of chain c's key). */
SCP_AESNI static inline __attribute__((always_inline)) void
cmac_lockstep(int nc, const __m128i *const key[], int nr, const __m128i first[],
              const __m128i *tail, int m, const __m128i sub[], __m128i x[])
{
    EACH (int c = 0; c < nc; c++)
        x[c] = m == 1 ? _mm_xor_si128(first[c], sub[c]) : first[c];
    for (int b = 0; b < m; b++) {
        if (b > 0)
            EACH (int c = 0; c < nc; c++)
                x[c] = _mm_xor_si128(x[c], b == m - 1 ? _mm_xor_si128(tail[b - 1], sub[c])
                                                      : tail[b - 1]);
        EACH (int c = 0; c < nc; c++)
            x[c] = _mm_xor_si128(x[c], key[c][0]);
        for (int r = 1; r < nr; r++)
            EACH (int c = 0; c < nc; c++)
                x[c] = _mm_aesenc_si128(x[c], key[c][r]);
        EACH (int c = 0; c < nc; c++)
            x[c] = _mm_aesenclast_si128(x[c], key[c][nr]);
    }
}

/* Subkey L = AES(k, 0) for three keys at once. */
SCP_AESNI static inline __attribute__((always_inline)) void
zero_blocks(__m128i *const rk[NK], int nr, __m128i l[NK])
{
    EACH (int j = 0; j < NK; j++)
        l[j] = rk[j][0];
    for (int r = 1; r < nr; r++)
        EACH (int j = 0; j < NK; j++)
            l[j] = _mm_aesenc_si128(l[j], rk[j][r]);
    EACH (int j = 0; j < NK; j++)
        l[j] = _mm_aesenclast_si128(l[j], rk[j][nr]);
}

SCP_AESNI __attribute__((noinline)) static void kdf3_run(const uint8_t *const key[NK], int k256,
                                                         const uint8_t cst[NK],
                               const uint8_t *ctx, size_t ctx_len, scp_aes *const out[NK])
{
    _Alignas(16) uint8_t lab[16] = { 0 }, tl[32] = { 0 };
    __m128i st[NK][15], *srk[NK] = { st[0], st[1], st[2] }, *ork[NK];
    __m128i k[NK][2], l[NK], sub[2 * NK], first[2 * NK], x[2 * NK], tail[2];
    const __m128i *ck[2 * NK];
    int nr = k256 ? 14 : 10, nb = k256 ? 2 : 1;
    size_t len = 16 + ctx_len, m = (len + 15) / 16;

    /* GPC Amd D 4.1.5 input: label 11 x 00 | constant, 00, L (bits), i;
     * then the context, padded (80 00..) if it does not end a block.
     * Done first: no library call once key material is in registers. */
    lab[13] = (uint8_t)((nb * 128) >> 8), lab[14] = (uint8_t)(nb * 128);
    memcpy(tl, ctx, ctx_len);
    if (len % 16 != 0)
        tl[ctx_len] = 0x80;
    /* static keys, their schedules and subkeys */
    EACH (int j = 0; j < NK; j++) {
        k[j][0] = LD(key[j]);
        k[j][1] = k256 ? LD(key[j] + 16) : _mm_setzero_si128();
    }
    expand3(srk, (const __m128i(*)[2])k, k256);
    zero_blocks(srk, nr, l);
    tail[0] = LD(tl), tail[1] = LD(tl + 16);
    for (int c = 0; c < NK * nb; c++) {
        int j = c % NK;
        lab[11] = cst[j], lab[15] = (uint8_t)(1 + c / NK);
        first[c] = LD(lab);
        ck[c] = srk[j];
        sub[c] = dbl(l[j]);
        if (len % 16 != 0)
            sub[c] = dbl(sub[c]);
    }
    if (nb == 1)
        cmac_lockstep(NK, ck, nr, first, tail, (int)m, sub, x);
    else
        cmac_lockstep(2 * NK, ck, nr, first, tail, (int)m, sub, x);
    /* the session keys, their schedules and subkeys */
    EACH (int j = 0; j < NK; j++) {
        k[j][0] = x[j];
        k[j][1] = k256 ? x[j + NK] : _mm_setzero_si128(); /* AES-256: block 2 */
        ork[j] = (__m128i *)(void *)out[j]->rk;
    }
    expand3(ork, (const __m128i(*)[2])k, k256);
    zero_blocks(ork, nr, l);
    EACH (int j = 0; j < NK; j++) {
        __m128i k1 = dbl(l[j]);
        ST(out[j]->k1, k1);
        ST(out[j]->k2, dbl(k1));
    }
    scrub_xmm();
    scp_wipe(st, sizeof(st)), scp_wipe(k, sizeof(k)), scp_wipe(l, sizeof(l));
    scp_wipe(sub, sizeof(sub)), scp_wipe(x, sizeof(x));
}

/* ---- GPC Amd D 6.2.2.2-6.2.2.3: two one-block KDFs under one key ----
 *
 * The card and host cryptograms differ only in the label's constant, so
 * their CMAC chains share every block after the first and run in lockstep. */
SCP_AESNI __attribute__((noinline)) static void kdf2_run(const scp_aes *a, const uint8_t cst[2],
                                                         const uint8_t *ctx, size_t ctx_len,
                                                         size_t out_len, uint8_t *out0,
                                                         uint8_t *out1)
{
    _Alignas(16) uint8_t lab[16] = { 0 }, tl[32] = { 0 }, o[2][16];
    const __m128i *ck[2] = { RK(a), RK(a) };
    __m128i first[2], sub[2], x[2], tail[2];
    size_t len = 16 + ctx_len, m = (len + 15) / 16;

    /* GPC Amd D 4.1.5 input: label 11 x 00 | constant, 00, L (bits), 01 */
    lab[13] = (uint8_t)((out_len * 8) >> 8), lab[14] = (uint8_t)(out_len * 8), lab[15] = 1;
    memcpy(tl, ctx, ctx_len);
    if (len % 16 != 0)
        tl[ctx_len] = 0x80;
    tail[0] = LD(tl), tail[1] = LD(tl + 16);
    for (int c = 0; c < 2; c++) {
        lab[11] = cst[c];
        first[c] = LD(lab);
        sub[c] = LD(len % 16 != 0 ? a->k2 : a->k1);
    }
    cmac_lockstep(2, ck, a->nr, first, tail, (int)m, sub, x);
    ST(o[0], x[0]), ST(o[1], x[1]);
    scrub_xmm();
    memcpy(out0, o[0], out_len);
    memcpy(out1, o[1], out_len);
    scp_wipe(o, sizeof(o)), scp_wipe(x, sizeof(x)), scp_wipe(sub, sizeof(sub));
}

int scp_aesni_kdf_gp2(const scp_aes *a, const uint8_t cst[2], const uint8_t *ctx,
                      size_t ctx_len, uint8_t *out0, uint8_t *out1, size_t out_len)
{
    if (!a->fast || ctx_len > 32 || out_len == 0 || out_len > 16)
        return SCP_E_UNSUPPORTED;
    kdf2_run(a, cst, ctx, ctx_len, out_len, out0, out1);
    scrub_stack(512);
    return SCP_OK;
}

int scp_aesni_kdf_gp_keys3(const uint8_t *const key[3], size_t key_len, const uint8_t cst[3],
                           const uint8_t *ctx, size_t ctx_len, scp_aes *const out[3])
{
    if (!aesni_usable() || (key_len != 16 && key_len != 32) || ctx_len > 32)
        return SCP_E_UNSUPPORTED;
    kdf3_run(key, key_len == 32, cst, ctx, ctx_len, out);
    scrub_stack(2048);
    for (int j = 0; j < NK; j++)
        out[j]->nr = (uint8_t)(key_len / 4 + 6);
    expand_dec(out[0]);
    return SCP_OK;
}

#else /* not x86: the OpenSSL path serves */

const char *scp_aes_impl(void) { return "openssl"; }
int scp_aesni_init(scp_aes *a, const uint8_t *key, size_t key_len, int dec)
{
    (void)a, (void)key, (void)key_len, (void)dec, (void)force_openssl;
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
void scp_aesni_cmac(const scp_aes *a, const uint8_t *p, size_t len, uint8_t mac[16])
{
    (void)a, (void)p, (void)len, (void)mac;
}
void scp_aesni_enc_cmac(const scp_aes *ke, const scp_aes *km, const uint8_t icv_in[16],
                        const uint8_t *iv_pre, const uint8_t *next_in, uint8_t *next_out,
                        const uint8_t chain[16], const uint8_t *pre, size_t pre_len,
                        uint8_t *buf, size_t len, const uint8_t *post, size_t post_len,
                        uint8_t tag[16])
{
    (void)ke, (void)km, (void)icv_in, (void)iv_pre, (void)next_in, (void)next_out, (void)chain;
    (void)pre, (void)pre_len, (void)buf, (void)len, (void)post, (void)post_len, (void)tag;
}
void scp_aesni_cmac_dec(const scp_aes *ke, const scp_aes *km, const uint8_t icv_in[16],
                        const uint8_t chain[16], const uint8_t *pre, size_t pre_len,
                        const uint8_t *ct, size_t len, const uint8_t *post, size_t post_len,
                        uint8_t *out, uint8_t tag[16])
{
    (void)ke, (void)km, (void)icv_in, (void)chain, (void)pre, (void)pre_len, (void)ct;
    (void)len, (void)post, (void)post_len, (void)out, (void)tag;
}
int scp_aesni_kdf_gp2(const scp_aes *a, const uint8_t cst[2], const uint8_t *ctx,
                      size_t ctx_len, uint8_t *out0, uint8_t *out1, size_t out_len)
{
    (void)a, (void)cst, (void)ctx, (void)ctx_len, (void)out0, (void)out1, (void)out_len;
    return SCP_E_UNSUPPORTED;
}
int scp_aesni_kdf_gp_keys3(const uint8_t *const key[3], size_t key_len, const uint8_t cst[3],
                           const uint8_t *ctx, size_t ctx_len, scp_aes *const out[3])
{
    (void)key, (void)key_len, (void)cst, (void)ctx, (void)ctx_len, (void)out;
    return SCP_E_UNSUPPORTED;
}
#endif
