/* scpkit: AES-NI fast path for the crypto backend (FIPS 197 AES, SP 800-38A
 * CBC, the CBC-MAC core of SP 800-38B CMAC).
 *
 * Only the functions below carry target("aes,sse4.1"), so the rest of the
 * build stays generic; scp_aesni_init picks this path at run time when the
 * CPU has AES-NI and the caller's scp_ctx allows it (the default does
 * unless SCP_AES_IMPL=openssl is in the environment, read once).
 * Round keys are expanded once per key into the caller's scp_aes (16-byte
 * aligned) and wiped by scp_aes_clear (or per use from a raw key, and
 * wiped by scp_aes_close); decryption round keys are derived per call. Everything here is branch-free and
 * table-free in the secret data: AESENC does the S-box in hardware, and the
 * key schedule's SubWord goes through AESENCLAST (AESKEYGENASSIST for
 * AES-192), not a table. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/internal.h"

#include <pthread.h>
#include <stdatomic.h>

/* The CPU probe and the environment default, once per process, whichever
 * thread asks first (pthread_once: no race, no torn read). */
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static int cpu_has_aesni, env_openssl;

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define SCP_AESNI __attribute__((target("aes,sse4.1")))

/* Set (release) once the probe's results are written; every later call
 * reads it (acquire) and skips pthread_once, a library call per key. */
static _Atomic int probed;

static void probe(void)
{
    const char *e = getenv("SCP_AES_IMPL");
    env_openssl = e != NULL && strcmp(e, "openssl") == 0;
    __builtin_cpu_init();
    cpu_has_aesni = __builtin_cpu_supports("aes") && __builtin_cpu_supports("sse4.1");
    atomic_store_explicit(&probed, 1, memory_order_release);
}

static inline void probe_once_only(void)
{
    if (!atomic_load_explicit(&probed, memory_order_acquire))
        (void)pthread_once(&probe_once, probe);
}

int scp_aesni_cpu(void)
{
    probe_once_only();
    return cpu_has_aesni;
}

int scp_aesni_default(void)
{
    probe_once_only();
    return cpu_has_aesni && !env_openssl;
}

const char *scp_aes_impl(void) { return scp_aesni_default() ? "aesni" : "openssl"; }

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

/* Helpers of the public functions below: inlined even at -O0, so that a
 * public function's own frame is the deepest the key material reaches
 * and frame_low() at its end bounds everything it wrote (tests/crypto_fast/
 * test_stack_residue checks at -O0, -O2 and -O3, gcc and clang). With
 * optimisation the larger ones stay out of line, as the compiler likes. */
#define HOT static inline __attribute__((always_inline))
#if defined(__OPTIMIZE__)
#define HELPER static
#else
#define HELPER static inline __attribute__((always_inline))
#endif

/* Each public function below is a wrapper around its body, which returns
 * frame_low(). With optimisation the body is inlined and every value
 * stays in registers (scrub_xmm clears them); at -O0 every local lives
 * on the stack, so the wrapper wipes the body's frame once it returns. */
#if defined(__OPTIMIZE__)
#define BODY static inline __attribute__((always_inline))
#define WIPE_O0(low) ((void)(low))
#else
#define BODY __attribute__((noinline)) static
#define WIPE_O0(low) wipe_below(low)
#endif
/* The secure-messaging kernels keep more round keys live than there are
 * registers (two keys, and the decryption schedule made per call), so
 * the compiler spills some at any level: their frame is always wiped
 * (tests/crypto_fast/test_stack_residue runs an exchange). */
#define SPILLS __attribute__((noinline)) static

/* The lowest byte the calling function's frame can reach: its stack
 * pointer, less the 128-byte red zone below it that an x86-64 leaf
 * function may use without moving the pointer. */
static inline __attribute__((always_inline)) uintptr_t frame_low(void)
{
    uintptr_t sp;
#if defined(__x86_64__)
    __asm__ volatile("mov %%rsp, %0" : "=r"(sp));
    return sp - 128;
#else
    __asm__ volatile("mov %%esp, %0" : "=r"(sp));
    return sp;
#endif
}

/* Zeroes [low, this function's locals): the frame of the function the caller has
 * just called, wherever the compiler put it and however large it made it
 * (gcc -O2 keeps the handshake batch in about 0.5 KiB, -O0 in about
 * 9.5 KiB). The bytes are first taken back as this function's own frame
 * (alloca), so nothing is written below the stack pointer; the store is
 * one asm block, which no sanitizer rewrites. */
__attribute__((noinline)) static void wipe_below(uintptr_t low)
{
    /* The top of the wipe is a local's address, not the stack pointer:
     * clang shrink-wraps this function and read %rsp before its prologue
     * pushed %rbp, so the wipe zeroed the saved %rbp (the caller then ran
     * with a null frame pointer). Saved registers lie above the locals. */
    volatile uint8_t anchor = 0;
    uintptr_t top = (uintptr_t)&anchor;
    uint8_t *p;
    size_t n;
    if (low >= top || top - low > 65536)
        return;
    p = __builtin_alloca(top - low + 64); /* at or below low */
    n = top - (uintptr_t)p;
    __asm__ volatile("cld\n\trep stosb" : "+D"(p), "+c"(n) : "a"(0) : "memory", "cc");
}

/* The operations the kernels repeat, as the compiler builtins and vector
 * operators the <immintrin.h> wrappers stand for: the same instructions
 * when optimising, but at -O0 every inlined wrapper takes stack slots
 * for its arguments, and the kernels' frames grew past 2 KiB each
 * (tests/unit/test_footprint bounds an exchange's stack at 4 KiB in
 * every build). */
typedef long long v128u __attribute__((vector_size(16), may_alias, aligned(1)));
#define LD(p) ((__m128i) * (const v128u *)(const void *)(p))
#define ST(p, v) (*(v128u *)(void *)(p) = (v128u)(v))
#define VXOR(a, b) ((__m128i)((__v2du)(a) ^ (__v2du)(b)))
#define VOR(a, b) ((__m128i)((__v2du)(a) | (__v2du)(b)))
#define AESENC(b, k) ((__m128i)__builtin_ia32_aesenc128((__v2di)(b), (__v2di)(k)))
#define AESENCLAST(b, k) ((__m128i)__builtin_ia32_aesenclast128((__v2di)(b), (__v2di)(k)))
#define AESDEC(b, k) ((__m128i)__builtin_ia32_aesdec128((__v2di)(b), (__v2di)(k)))
#define AESDECLAST(b, k) ((__m128i)__builtin_ia32_aesdeclast128((__v2di)(b), (__v2di)(k)))
#define AESIMC(b) ((__m128i)__builtin_ia32_aesimc128((__v2di)(b)))
#define VZERO ((__m128i)(__v2di){ 0, 0 })
#define PSHUFB(a, m) ((__m128i)__builtin_ia32_pshufb128((__v16qi)(a), (__v16qi)(m)))
#define RK(a) ((const __m128i *)(const void *)(a)->u.rk)

/* FIPS 197 5.2, one word at a time for Nk = 4, 6, 8. SubWord comes from
 * AESKEYGENASSIST with rcon 0 (lane 0: SubWord(x3), lane 1:
 * RotWord(SubWord(x3)), with x3 the word broadcast to every lane); the
 * round constant is xored in by hand. Branches depend on i only. */
SCP_AESNI HOT uint32_t sub_word(uint32_t w, int rot)
{
    __m128i r = _mm_aeskeygenassist_si128(_mm_set1_epi32((int)w), 0);
    return rot ? (uint32_t)_mm_extract_epi32(r, 1) : (uint32_t)_mm_cvtsi128_si32(r);
}

/* AES-192 (and any Nk): the plain word loop. */
SCP_AESNI HELPER void expand_words(scp_aes *a, const uint8_t *key, size_t key_len)
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
    memcpy(a->u.rk, w, total * 4);
    scp_wipe(w, sizeof(w));
}

/* w[i-4..i-1] -> next four words: prefix-xor of the previous round key,
 * xored with the broadcast SubWord word `t`. */
SCP_AESNI HOT __m128i next4(__m128i k, __m128i t)
{
    k = VXOR(k, _mm_slli_si128(k, 4));
    k = VXOR(k, _mm_slli_si128(k, 8));
#if defined(__OPTIMIZE__)
    /* the prefix is ready before t (AESENCLAST): one XOR after it, not
     * two, on the schedule's critical path (the compiler reassociated) */
    __asm__("" : "+x"(k));
#endif
    return VXOR(k, t);
}

/* SubWord without AESKEYGENASSIST (slow on many cores): broadcast the last
 * word to all four columns (rotated for RotWord, with PSHUFB), then
 * AESENCLAST does SubBytes (its ShiftRows moves nothing when the columns
 * are equal) and xors in rcon in every column. */
#define SPLAT(w) ((__m128i)(__v4si){ (w), (w), (w), (w) })
#define ROT_W3 SPLAT(0x0c0f0e0d) /* bytes 13 14 15 12: RotWord(w3) */
#define SUB_ROT(k, rcon) AESENCLAST(PSHUFB((k), ROT_W3), SPLAT(rcon))
#define SUB(k) AESENCLAST(_mm_shuffle_epi32((k), 0xff), VZERO)

/* The round constants of FIPS 197 5.2 (public). */
static const uint8_t rcon_tab[10] = { 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x1b, 0x36 };

/* FIPS 197 5.2 for Nk = 4, one round key per step. Written as loops that
 * the compiler unrolls (and folds rcon into) when optimising: at -O0
 * every inlined intrinsic takes its own stack slots, and the unrolled
 * text made each expansion about 4 KiB of frame. */
SCP_AESNI static inline __attribute__((always_inline)) void expand128(__m128i *rk, __m128i key)
{
    rk[0] = key;
    _Pragma("GCC unroll 10") for (int i = 1; i <= 10; i++)
        rk[i] = next4(rk[i - 1], SUB_ROT(rk[i - 1], rcon_tab[i - 1]));
}

/* Nk = 8: even round keys take RotWord+SubWord+rcon of the last word,
 * odd ones SubWord only. */
SCP_AESNI static inline __attribute__((always_inline)) void expand256(__m128i *rk, __m128i k0,
                                                                    __m128i k1)
{
    rk[0] = k0;
    rk[1] = k1;
    _Pragma("GCC unroll 6") for (int i = 2; i < 14; i += 2) {
        rk[i] = next4(rk[i - 2], SUB_ROT(rk[i - 1], rcon_tab[i / 2 - 1]));
        rk[i + 1] = next4(rk[i - 1], SUB(rk[i]));
    }
    rk[14] = next4(rk[12], SUB_ROT(rk[13], 0x40));
}

SCP_AESNI HELPER void expand_enc(scp_aes *a, const uint8_t *key, size_t key_len)
{
    if (key_len == 16)
        expand128((__m128i *)(void *)a->u.rk, LD(key));
    else if (key_len == 32)
        expand256((__m128i *)(void *)a->u.rk, LD(key), LD(key + 16));
    else
        expand_words(a, key, key_len);
}

/* Equivalent inverse cipher (FIPS 197 5.3.5): reversed, InvMixColumns. */
SCP_AESNI static inline __attribute__((always_inline)) void dec_schedule(__m128i *d,
                                                                       const __m128i *e, int nr)
{
    d[0] = e[nr];
    _Pragma("GCC unroll 14") for (int r = 1; r < nr; r++)
        d[r] = AESIMC(e[nr - r]);
    d[nr] = e[0];
}

SCP_AESNI __attribute__((noinline)) static uintptr_t init_body(scp_aes *a, const uint8_t *key,
                                                                size_t key_len)
{
    a->nr = (uint8_t)(key_len / 4 + 6);
    expand_enc(a, key, key_len);
    scrub_xmm(); /* the key and its schedule stay only in *a */
    return frame_low();
}

int scp_aesni_init(scp_aes *a, const uint8_t *key, size_t key_len)
{
    if (!scp_aesni_cpu())
        return SCP_E_UNSUPPORTED;
    if (key_len != 16 && key_len != 24 && key_len != 32)
        return SCP_E_ARG;
    WIPE_O0(init_body(a, key, key_len));
    return SCP_OK;
}

/* RFC 4493 2.3 doubling in registers: the block as a big-endian 128-bit
 * number, shifted left, 87 xored in by mask (no branch on the msb). */
static const uint8_t rev_bytes[16] = { 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0 };

SCP_AESNI HOT __m128i dbl(__m128i l)
{
    const __m128i rev = LD(rev_bytes);
    __v2du v = (__v2du)PSHUFB(l, rev), top = v >> 63;
    __v2du red = -(__v2du)_mm_srli_si128((__m128i)top, 8) & (__v2du){ 0x87, 0 };
    v = (v << 1) ^ (__v2du)_mm_slli_si128((__m128i)top, 8);
    return PSHUFB((__m128i)(v ^ red), rev);
}

/* The CMAC subkeys from the key's L: K1 = dbl(L) (n = 1), K2 = dbl(K1)
 * (n = 2); n is public (whether the message ends a block). One doubling
 * in a loop: at -O0 each inlined copy takes its own stack slots. */
SCP_AESNI HOT __m128i subkey(const uint8_t l[16], int n)
{
    __m128i v = LD(l);
    _Pragma("GCC unroll 2") for (int i = 0; i < n; i++)
        v = dbl(v);
    return v;
}
#define K2(a) subkey((a)->l, 2)

/* One block, unrolled: a round loop costs more instructions than the
 * rounds themselves at APDU sizes. The branches test the (public) round
 * count only. */
SCP_AESNI HOT __m128i enc1(const __m128i *rk, int nr, __m128i b)
{
#if !defined(__OPTIMIZE__) /* one round in a loop: no spilled copies per round */
    b = VXOR(b, rk[0]);
    for (int r = 1; r < nr; r++)
        b = AESENC(b, rk[r]);
    return AESENCLAST(b, rk[nr]);
#else
    b = VXOR(b, rk[0]);
    b = AESENC(b, rk[1]);
    b = AESENC(b, rk[2]);
    b = AESENC(b, rk[3]);
    b = AESENC(b, rk[4]);
    b = AESENC(b, rk[5]);
    b = AESENC(b, rk[6]);
    b = AESENC(b, rk[7]);
    b = AESENC(b, rk[8]);
    b = AESENC(b, rk[9]);
    if (nr > 10) {
        b = AESENC(b, rk[10]);
        b = AESENC(b, rk[11]);
    }
    if (nr > 12) {
        b = AESENC(b, rk[12]);
        b = AESENC(b, rk[13]);
    }
    return AESENCLAST(b, rk[nr]);
#endif
}

SCP_AESNI BODY uintptr_t block_body(const scp_aes *a, const uint8_t in[16], uint8_t out[16])
{
    ST(out, enc1(RK(a), a->nr, LD(in)));
    return frame_low();
}

SCP_AESNI void scp_aesni_block(const scp_aes *a, const uint8_t in[16], uint8_t out[16])
{
    WIPE_O0(block_body(a, in, out));
}

SCP_AESNI BODY uintptr_t cbc_encrypt_body(const scp_aes *a, const uint8_t iv[16],
                                          const uint8_t *in, size_t len, uint8_t *out)
{
    __m128i x = LD(iv);
    for (size_t i = 0; i < len; i += 16) {
        x = enc1(RK(a), a->nr, VXOR(x, LD(in + i)));
        ST(out + i, x);
    }
    return frame_low();
}

SCP_AESNI int scp_aesni_cbc_encrypt(const scp_aes *a, const uint8_t iv[16], const uint8_t *in,
                                    size_t len, uint8_t *out)
{
    if (len % 16 != 0)
        return SCP_E_ARG;
    WIPE_O0(cbc_encrypt_body(a, iv, in, len, out));
    return SCP_OK;
}

/* CBC decryption is parallel: eight blocks go through the rounds together
 * so the AES unit's pipeline stays full; in == out works because each
 * group's ciphertext is read before its plaintext is written. */
SCP_AESNI HELPER void dec8(const __m128i *dk, int nr, __m128i *prev, const uint8_t *in,
                           uint8_t *out)
{
    __m128i c[8], b[8];

    for (int j = 0; j < 8; j++) {
        c[j] = LD(in + 16 * j);
        b[j] = VXOR(c[j], dk[0]);
    }
    for (int r = 1; r < nr; r++)
        for (int j = 0; j < 8; j++)
            b[j] = AESDEC(b[j], dk[r]);
    for (int j = 0; j < 8; j++)
        b[j] = AESDECLAST(b[j], dk[nr]);
    ST(out, VXOR(b[0], *prev));
    for (int j = 1; j < 8; j++)
        ST(out + 16 * j, VXOR(b[j], c[j - 1]));
    *prev = c[7];
}

SCP_AESNI SPILLS uintptr_t cbc_decrypt_body(const scp_aes *a, const uint8_t iv[16],
                                          const uint8_t *in, size_t len, uint8_t *out)
{
    __m128i dk[15], prev = LD(iv);
    size_t i = 0;

    dec_schedule(dk, RK(a), a->nr); /* per call: the key keeps no drk */
    for (; i + 128 <= len; i += 128)
        dec8(dk, a->nr, &prev, in + i, out + i);
    for (; i < len; i += 16) {
        __m128i c = LD(in + i), b = VXOR(c, dk[0]);
        for (int r = 1; r < a->nr; r++)
            b = AESDEC(b, dk[r]);
        ST(out + i, VXOR(AESDECLAST(b, dk[a->nr]), prev));
        prev = c;
    }
    scrub_xmm();
    return frame_low();
}

SCP_AESNI int scp_aesni_cbc_decrypt(const scp_aes *a, const uint8_t iv[16], const uint8_t *in,
                                    size_t len, uint8_t *out)
{
    if (len % 16 != 0)
        return SCP_E_ARG;
    wipe_below(cbc_decrypt_body(a, iv, in, len, out));
    return SCP_OK;
}

SCP_AESNI BODY uintptr_t cbcmac_body(const scp_aes *a, uint8_t x[16], const uint8_t *p,
                                     size_t nblocks)
{
    __m128i v = LD(x);
    for (size_t i = 0; i < nblocks; i++)
        v = enc1(RK(a), a->nr, VXOR(v, LD(p + 16 * i)));
    ST(x, v);
    return frame_low();
}

SCP_AESNI void scp_aesni_cbcmac(const scp_aes *a, uint8_t x[16], const uint8_t *p,
                                size_t nblocks)
{
    WIPE_O0(cbcmac_body(a, x, p, nblocks));
}

/* RFC 4493 2.4 in registers: all but the last block straight, then the
 * last one padded (80 00..) with K2, or whole with K1. */
SCP_AESNI BODY uintptr_t cmac_body(const scp_aes *a, const uint8_t *p, size_t len,
                                   uint8_t mac[16])
{
    _Alignas(16) uint8_t last[16] = { 0 };
    size_t full = len == 0 ? 0 : (len - 1) / 16, rem = len - full * 16;
    __m128i v = VZERO;

    for (size_t i = 0; i < full; i++)
        v = enc1(RK(a), a->nr, VXOR(v, LD(p + 16 * i)));
    /* message bytes only (no key in last); the empty asm keeps gcc from
     * turning the loop into a memcpy call, which would spill the round
     * keys held in registers and hand them to a lazily bound PLT stub */
    for (size_t i = 0; i < rem; i++) {
        last[i] = p[full * 16 + i];
        __asm__ volatile("" : : : "memory");
    }
    if (rem < 16)
        last[rem] = 0x80;
    v = VXOR(v, VXOR(LD(last), subkey(a->l, rem == 16 ? 1 : 2)));
    ST(mac, enc1(RK(a), a->nr, v));
    scrub_xmm(); /* static keys come through here too (KDFs, diversification) */
    return frame_low();
}

SCP_AESNI void scp_aesni_cmac(const scp_aes *a, const uint8_t *p, size_t len, uint8_t mac[16])
{
    WIPE_O0(cmac_body(a, p, len, mac));
}

/* After the zero block (state L): hdr | hc, 13 or 21 bytes, put together
 * in registers: S8, one block hdr | hc | 80 00 00 with K2; S16, hdr |
 * hc[0..10], then hc[11..15] | 80 00.. with K2. */
SCP_AESNI BODY uintptr_t cmac_ea_body(const scp_aes *a, const uint8_t hdr[5],
                                      const uint8_t *hc, size_t hc_len, uint8_t mac[16])
{
    uint32_t h4;
    __m128i h, c, v = LD(a->l), k2 = K2(a);

    memcpy(&h4, hdr, 4);
    h = _mm_insert_epi8(_mm_cvtsi32_si128((int)h4), hdr[4], 4);
    if (hc_len == 8) {
        c = _mm_loadl_epi64((const __m128i *)(const void *)hc);
        h = VOR(h, _mm_slli_si128(c, 5));
        h = _mm_insert_epi8(h, 0x80, 13);
        v = enc1(RK(a), a->nr, VXOR(v, VXOR(h, k2)));
    } else {
        c = LD(hc);
        v = enc1(RK(a), a->nr, VXOR(v, VOR(h, _mm_slli_si128(c, 5))));
        c = _mm_insert_epi8(_mm_srli_si128(c, 11), 0x80, 5);
        v = enc1(RK(a), a->nr, VXOR(v, VXOR(c, k2)));
    }
    ST(mac, v);
    return frame_low();
}

SCP_AESNI void scp_aesni_cmac_ea(const scp_aes *a, const uint8_t hdr[5], const uint8_t *hc,
                                 size_t hc_len, uint8_t mac[16])
{
    WIPE_O0(cmac_ea_body(a, hdr, hc, hc_len, mac));
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
    VOR(PSHUFB((prev), (sp).tail), PSHUFB((cur), (sp).head))

/* Masks for pre_len k, the first "previous block" (pre at its top bytes)
 * and the block that closes the message (post, 80, zeros). The callers
 * (backend.c) guarantee 0 < pre_len + post_len < 16. */
SCP_AESNI HELPER void splice_init(splice *sp, __m128i *first, __m128i *closing,
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

SCP_AESNI SPILLS uintptr_t enc_cmac_body(const scp_aes *ke, const scp_aes *km,
                                       const uint8_t icv_in[16], const uint8_t *iv_pre,
                                       const uint8_t *next_in, uint8_t *next_out,
                                       const uint8_t chain[16], const uint8_t *pre,
                                       size_t pre_len, uint8_t *buf, size_t len,
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
        c = enc1(ek, ke->nr, VXOR(c, LD(buf + i)));
        ST(buf + i, c);
        /* the CMAC of block j runs while block j+1 is being encrypted */
        x = enc1(mk, km->nr, VXOR(x, JOIN(sp, prev, c)));
        prev = c;
    }
    x = VXOR(x, VXOR(JOIN(sp, prev, closing), K2(km)));
    ST(tag, enc1(mk, km->nr, x));
    scrub_xmm();
    return frame_low();
}

SCP_AESNI void scp_aesni_enc_cmac(const scp_aes *ke, const scp_aes *km, const uint8_t icv_in[16],
                                  const uint8_t *iv_pre, const uint8_t *next_in,
                                  uint8_t *next_out, const uint8_t chain[16],
                                  const uint8_t *pre, size_t pre_len, uint8_t *buf, size_t len,
                                  const uint8_t *post, size_t post_len, uint8_t tag[16])
{
    wipe_below(enc_cmac_body(ke, km, icv_in, iv_pre, next_in, next_out, chain, pre, pre_len, buf,
                          len, post, post_len, tag));
}

SCP_AESNI HOT __m128i dec1(const __m128i *dk, int nr, __m128i b)
{
#if !defined(__OPTIMIZE__) /* one round in a loop: no spilled copies per round */
    b = VXOR(b, dk[0]);
    for (int r = 1; r < nr; r++)
        b = AESDEC(b, dk[r]);
    return AESDECLAST(b, dk[nr]);
#else
    b = VXOR(b, dk[0]);
    b = AESDEC(b, dk[1]);
    b = AESDEC(b, dk[2]);
    b = AESDEC(b, dk[3]);
    b = AESDEC(b, dk[4]);
    b = AESDEC(b, dk[5]);
    b = AESDEC(b, dk[6]);
    b = AESDEC(b, dk[7]);
    b = AESDEC(b, dk[8]);
    b = AESDEC(b, dk[9]);
    if (nr > 10) {
        b = AESDEC(b, dk[10]);
        b = AESDEC(b, dk[11]);
    }
    if (nr > 12) {
        b = AESDEC(b, dk[12]);
        b = AESDEC(b, dk[13]);
    }
    return AESDECLAST(b, dk[nr]);
#endif
}

SCP_AESNI SPILLS uintptr_t cmac_dec_body(const scp_aes *ke, const scp_aes *km,
                                       const uint8_t icv_in[16], const uint8_t chain[16],
                                       const uint8_t *pre, size_t pre_len, const uint8_t *ct,
                                       size_t len, const uint8_t *post, size_t post_len,
                                       uint8_t *out, uint8_t tag[16])
{
    const __m128i *mk = RK(km);
    __m128i dk[15], iv, x, prev, closing;
    splice sp;

    dec_schedule(dk, RK(ke), ke->nr); /* per call: the key keeps no drk */
    splice_init(&sp, &prev, &closing, pre, pre_len, post, post_len);
    iv = enc1(RK(ke), ke->nr, LD(icv_in));
    x = enc1(mk, km->nr, LD(chain));
    for (size_t i = 0; i < len; i += 16) {
        __m128i c = LD(ct + i);
        x = enc1(mk, km->nr, VXOR(x, JOIN(sp, prev, c)));
        /* decryption is off the CMAC chain: it fills the pipeline's gaps */
        ST(out + i, VXOR(dec1(dk, ke->nr, c), iv));
        iv = c;
        prev = c;
    }
    x = VXOR(x, VXOR(JOIN(sp, prev, closing), K2(km)));
    ST(tag, enc1(mk, km->nr, x));
    scrub_xmm();
    return frame_low();
}

SCP_AESNI void scp_aesni_cmac_dec(const scp_aes *ke, const scp_aes *km, const uint8_t icv_in[16],
                                  const uint8_t chain[16], const uint8_t *pre, size_t pre_len,
                                  const uint8_t *ct, size_t len, const uint8_t *post,
                                  size_t post_len, uint8_t *out, uint8_t tag[16])
{
    wipe_below(cmac_dec_body(ke, km, icv_in, chain, pre, pre_len, ct, len, post, post_len, out,
                          tag));
}

/* ---- GPC Amd D 6.2.1-6.2.2: one side's handshake crypto in one batch ----
 *
 * A handshake is a chain of dependent steps (static key, KDF, session key,
 * cryptogram), but most AES blocks in it do not wait for each other. Here
 * every block runs beside every other one that is ready, in five waves:
 *   1. the static Key-ENC and Key-MAC schedules, with AES(k, 0) under each
 *      (the CMAC subkeys) and every KDF's first block under them: the first
 *      block is the label (11 x 00 | constant | 00 | L | i), which holds no
 *      challenge, so it needs nothing but the key;
 *   2. the card challenge's remaining blocks (card, pseudo-random only);
 *   3. the last blocks of the three session-key KDFs (of six for AES-256);
 *   4. the three session schedules, with AES(k, 0) under S-MAC and
 *      S-RMAC (S-ENC never MACs) and the cryptograms' label blocks under
 *      S-MAC;
 *   5. the last blocks of the two cryptograms.
 * The SCP03 context (host challenge | card challenge) is 16 or 32 bytes, so
 * those KDF inputs end on a block boundary and take K1. Only the AES round
 * count (public) is a compile-time choice: one body, two instances. */
#define ALL _Pragma("GCC unroll 16") for

/* n blocks, block c under schedule k[c], round by round in lockstep. */
SCP_AESNI static inline __attribute__((always_inline)) void
enc_n(int n, int nr, const __m128i *const k[], __m128i x[])
{
    ALL (int c = 0; c < n; c++)
        x[c] = VXOR(x[c], k[c][0]);
    ALL (int r = 1; r < nr; r++)
        ALL (int c = 0; c < n; c++)
            x[c] = AESENC(x[c], k[c][r]);
    ALL (int c = 0; c < n; c++)
        x[c] = AESENCLAST(x[c], k[c][nr]);
}

/* GPC Amd D 4.1.5: the KDF's first block, 11 x 00 | constant | 00 |
 * L (bits, big-endian) | i. */
SCP_AESNI HOT __m128i kdf_label(uint8_t cst, unsigned bits, int i)
{
    /* bytes 8..15 as one little-endian word: 00 00 00 cst 00 L L i */
    uint64_t hi = (uint64_t)cst << 24 | (uint64_t)((bits >> 8) & 0xff) << 40 |
                  (uint64_t)(bits & 0xff) << 48 | (uint64_t)(uint8_t)i << 56;
    return (__m128i)(__v2du){ 0, hi };
}

SCP_AESNI static inline __attribute__((always_inline)) void expand_key(__m128i *rk, __m128i k0,
                                                                     __m128i k1, int k256)
{
    if (k256)
        expand256(rk, k0, k1);
    else
        expand128(rk, k0);
}

/* A challenge, 8 or 16 bytes (public), zero above. */
SCP_AESNI HOT __m128i load_chal(const uint8_t *p, size_t n)
{
    uint64_t lo;
    if (n == 16)
        return LD(p);
    memcpy(&lo, p, 8);
    return (__m128i)(__v2du){ lo, 0 };
}

/* keep_tab + 16 - p: FF in bytes 0..p-1; pad_tab + 16 - p: 80 in byte p
 * (none for p = 16) */
static const uint8_t keep_tab[32] = { 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                      0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF };
static const uint8_t pad_tab[32] = { [16] = 0x80 };

/* Challenge and cryptograms (public values: they travel in the clear) go
 * out by vector stores, no library call: n is 8 or 16. */
SCP_AESNI HOT void put(uint8_t *p, __m128i v, size_t n)
{
    if (n == 16)
        ST(p, v);
    else
        _mm_storel_epi64((__m128i *)(void *)p, v);
}

/* derive: the card challenge is made here (h->chal_ctx is not NULL) */
SCP_AESNI static inline __attribute__((always_inline)) void
hs_run(const scp03_hs_keys *h, int k256, int derive)
{
    static const uint8_t dd[3] = { SCP03_DDC_S_ENC, SCP03_DDC_S_MAC, SCP03_DDC_S_RMAC };
    const int nr = k256 ? 14 : 10, nb = k256 ? 2 : 1, nx = 2 + 3 * nb + derive;
    const size_t cl = h->chal_len, ccl = derive ? h->chal_ctx_len : 0;
    const unsigned bits = (unsigned)cl * 8;
    __m128i sk[2][15], x[9], t0, t1, host, card, sub[2], l1, in[2];
    const __m128i *kk[9];
    const __m128i zero = VZERO;

    /* the public inputs loaded first, no copies: the challenges (8 or 16
     * bytes, zero above), and counter | AID with its CMAC padding (80
     * 00..) in two blocks; chal_ctx has 32 readable bytes (crypto/
     * internal.h), masked to ccl here */
    host = load_chal(h->host_chal, cl);
    card = derive ? zero : load_chal(h->card_chal, cl);
    ALL (int b = 0; b < 2; b++) {
        size_t p = ccl > 16 * (size_t)b ? ccl - 16 * (size_t)b : 0;
        p = p > 16 ? 16 : p;
        in[b] = derive ? VOR(_mm_and_si128(LD(h->chal_ctx + 16 * b), LD(keep_tab + 16 - p)),
                             LD(pad_tab + 16 - p))
                       : zero;
    }

    /* 1: static schedules, subkey blocks, first blocks */
    ALL (int c = 0; c < 2; c++) {
        const uint8_t *k = c ? h->mac : h->enc;
        expand_key(sk[c], LD(k), k256 ? LD(k + 16) : zero, k256);
    }
    x[0] = x[1] = zero, kk[0] = sk[0], kk[1] = sk[1];
    ALL (int c = 0; c < 3 * nb; c++) {
        x[2 + c] = kdf_label(dd[c % 3], 128u * (unsigned)nb, 1 + c / 3);
        kk[2 + c] = sk[c % 3 == 0 ? 0 : 1];
    }
    if (derive)
        x[nx - 1] = kdf_label(SCP03_DDC_CARD_CHALLENGE, bits, 1), kk[nx - 1] = sk[0];
    enc_n(nx, nr, kk, x);
    ALL (int c = 0; c < 2; c++) /* K1 of Key-ENC, Key-MAC */
        sub[c] = dbl(x[c]);

    /* 2: GPC Amd D 6.2.2.1, challenge = KDF(Key-ENC, 02, counter | AID) */
    if (derive) {
        __m128i c = x[nx - 1];
        size_t m = (ccl + 15) / 16;
        for (size_t b = 0; b < m; b++) {
            c = VXOR(c, in[b]);
            if (b == m - 1) /* K2 unless the input ends a block */
                c = VXOR(c, ccl % 16 != 0 ? dbl(sub[0]) : sub[0]);
            enc_n(1, nr, kk, &c);
        }
        card = c; /* the challenge: the output's first cl bytes */
        put(h->card_chal, c, cl);
    }
    /* context = host challenge | card challenge */
    t0 = cl == 16 ? host : _mm_unpacklo_epi64(host, card);
    t1 = card;

    /* 3: the session-key KDFs' last blocks (K1: the input ends a block) */
    ALL (int c = 0; c < 3 * nb; c++) {
        x[c] = VXOR(x[2 + c], t0);
        kk[c] = sk[c % 3 == 0 ? 0 : 1];
    }
    if (cl == 16) {
        enc_n(3 * nb, nr, kk, x);
        ALL (int c = 0; c < 3 * nb; c++)
            x[c] = VXOR(x[c], t1);
    }
    ALL (int c = 0; c < 3 * nb; c++)
        x[c] = VXOR(x[c], sub[c % 3 == 0 ? 0 : 1]);
    enc_n(3 * nb, nr, kk, x);

    /* 4: S-ENC and S-RMAC kept raw (expanded per use); the S-MAC
     * schedule, kept, and S-RMAC's, here only for its L (in the static
     * Key-ENC schedule's place); the subkey blocks of S-MAC and S-RMAC
     * (S-ENC never MACs), the cryptograms' first blocks under S-MAC */
    ST(h->s_enc->u.key, x[0]), ST(h->s_rmac->u.key, x[2]);
    if (k256)
        ST(h->s_enc->u.key + 16, x[3]), ST(h->s_rmac->u.key + 16, x[5]);
    kk[1] = (__m128i *)(void *)h->s_mac->u.rk;
    ALL (int c = 0; c < 2; c++) /* S-MAC (kept), S-RMAC (for its L) */
        expand_key(c ? sk[0] : (__m128i *)(void *)h->s_mac->u.rk, x[1 + c],
                   k256 ? x[4 + c] : zero, k256);
    kk[2] = sk[0];
    x[0] = kdf_label(SCP03_DDC_CARD_CRYPTOGRAM, bits, 1);
    x[1] = kdf_label(SCP03_DDC_HOST_CRYPTOGRAM, bits, 1);
    x[2] = zero, x[3] = zero;
    {
        const __m128i *k4[4] = { kk[1], kk[1], kk[1], kk[2] };
        enc_n(4, nr, k4, x);
    }
    ST(h->s_enc->l, zero);
    ST(h->s_mac->l, x[2]);
    ST(h->s_rmac->l, x[3]);
    l1 = dbl(x[2]); /* K1 of S-MAC */

    /* 5: the cryptograms' last blocks (same context, K1 of S-MAC) */
    ALL (int c = 0; c < 2; c++) {
        x[c] = VXOR(x[c], t0);
        kk[c] = kk[1];
    }
    if (cl == 16) {
        enc_n(2, nr, kk, x);
        x[0] = VXOR(x[0], t1), x[1] = VXOR(x[1], t1);
    }
    x[0] = VXOR(x[0], l1), x[1] = VXOR(x[1], l1);
    enc_n(2, nr, kk, x);
    put(h->card_cryptogram, x[0], cl), put(h->host_cryptogram, x[1], cl);
    h->s_mac->nr = (uint8_t)nr;
    /* the static schedules and everything else in this frame: the
     * caller scrubs the whole frame once this returns */
    scrub_xmm();
}

#define HS_RUN(name, k256, derive)                                                           \
    SCP_AESNI __attribute__((noinline)) static uintptr_t name(const scp03_hs_keys *h)        \
    {                                                                                        \
        hs_run(h, k256, derive);                                                             \
        return frame_low();                                                                  \
    }
HS_RUN(hs_run128, 0, 0)
HS_RUN(hs_run128_chal, 0, 1)
HS_RUN(hs_run256, 1, 0)
HS_RUN(hs_run256_chal, 1, 1)

int scp_aesni_scp03_keys(const scp03_hs_keys *h)
{
    if (!scp_aesni_cpu() || (h->key_len != 16 && h->key_len != 32) ||
        (h->chal_len != 8 && h->chal_len != 16) || h->chal_ctx_len > 32)
        return SCP_E_UNSUPPORTED;
    /* the static schedules and everything else the batch spilled: its
     * whole frame, as large as this compiler and level made it */
    if (h->key_len == 16)
        wipe_below((h->chal_ctx != NULL ? hs_run128_chal : hs_run128)(h));
    else
        wipe_below((h->chal_ctx != NULL ? hs_run256_chal : hs_run256)(h));
    return SCP_OK;
}

#else /* not x86: the OpenSSL path serves */

const char *scp_aes_impl(void) { return "openssl"; }
int scp_aesni_cpu(void) { return 0; }
int scp_aesni_default(void) { return 0; }
int scp_aesni_init(scp_aes *a, const uint8_t *key, size_t key_len)
{
    (void)a, (void)key, (void)key_len;
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
void scp_aesni_cmac_ea(const scp_aes *a, const uint8_t hdr[5], const uint8_t *hc,
                       size_t hc_len, uint8_t mac[16])
{
    (void)a, (void)hdr, (void)hc, (void)hc_len, (void)mac;
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
int scp_aesni_scp03_keys(const scp03_hs_keys *h)
{
    (void)h;
    return SCP_E_UNSUPPORTED;
}
#endif
