/* The AES-NI fast path against the OpenSSL path, byte for byte: random keys
 * (16/24/32), IVs and lengths for single blocks, CBC both ways, CMAC (every
 * split), the SP800-108 and GP KDFs, and whole SCP03 sessions run with both
 * sides on either path. The OpenSSL path is the reference: its AES and CBC
 * are OpenSSL's own, and tests/unit checks it against RFC 4493, NIST CAVP
 * and pySim transcripts. Seed from argv[1] or fixed; printed for replay.
 *
 * Run with SCP_AES_IMPL=openssl (a second CTest entry), the fast path must
 * be off: then both sides are OpenSSL and the comparisons still hold. */
#include <stdlib.h>

#include "scpkit/apdu.h"
#include "scpkit/crypto.h"
#include "scpkit/scp03.h"
#include "crypto/internal.h"
#include "scp03/internal.h"
#include "test.h"

static int have_fast; /* the CPU and environment allow AES-NI */

/* The OpenSSL path, chosen per key or session by this context. */
static const scp_ctx ossl = { .backend = SCP_BACKEND_OPENSSL };

static size_t random_key_len(void)
{
    static const size_t sizes[] = { 16, 24, 32 };
    return sizes[test_rand_below(3)];
}

/* The same key on both paths (with the decryption side when dec); a
 * tampered twin checks the fast key really is the fast path (when it can
 * be). */
static void key_pair_mode(scp_aes *fast, scp_aes *ref, const uint8_t *key, size_t len, int dec)
{
    CHECK_OK(dec ? scp_aes_init_dec(fast, key, len) : scp_aes_init(fast, key, len));
    CHECK_OK(scp_aes_init_ctx(ref, &ossl, key, len, dec));
    CHECK(fast->fast == have_fast);
    CHECK(ref->fast == 0);
    CHECK(fast->dec == (dec != 0) && ref->dec == (dec != 0));
    CHECK(memcmp(fast->l, ref->l, 16) == 0);
}

static void key_pair(scp_aes *fast, scp_aes *ref, const uint8_t *key, size_t len)
{
    key_pair_mode(fast, ref, key, len, 1);
}

/* A key set up without its decryption side must refuse to decrypt on both
 * paths, before writing anything (no decryption with an unset schedule),
 * and still encrypt, MAC and derive exactly as a decrypting key does. */
static void test_dec_misuse(void)
{
    static const uint8_t canary[64] = { 0xC5, 0xC5, 0xC5, 0xC5 };
    uint8_t key[32], iv[16], in[64], o1[64], o2[64], t1[16], t2[16];
    size_t n = 0;
    for (int rep = 0; rep < 60; rep++) {
        size_t kl = random_key_len();
        scp_aes f, r, fd, rd;
        test_rand_bytes(key, kl), test_rand_bytes(iv, 16), test_rand_bytes(in, sizeof(in));
        /* garbage where the schedules live: an unset drk must not be used */
        memset(&f, 0xA5, sizeof(f)), memset(&r, 0x5A, sizeof(r));
        key_pair_mode(&f, &r, key, kl, 0);
        key_pair_mode(&fd, &rd, key, kl, 1);
        for (int side = 0; side < 2; side++) {
            const scp_aes *k = side ? &r : &f;
            memcpy(o1, canary, sizeof(o1));
            CHECK_RC(scp_aes_cbc_decrypt(k, iv, in, sizeof(in), o1), SCP_E_STATE);
            CHECK_RC(scp_aes_cbc_decrypt(k, iv, in, 0, o1), SCP_E_STATE);
            memset(t1, 0, sizeof(t1));
            CHECK_RC(scp_cmac_cbc_dec(k, &fd, iv, iv, in, 5, in, 32, NULL, 0, o1, t1),
                     SCP_E_STATE);
            CHECK_MEM(o1, sizeof(o1), canary, sizeof(canary));
        }
        /* the encryption side is the same with or without dec */
        CHECK_OK(scp_aes_cbc_encrypt(&f, iv, in, sizeof(in), o1));
        CHECK_OK(scp_aes_cbc_encrypt(&rd, iv, in, sizeof(in), o2));
        CHECK_MEM(o1, sizeof(o1), o2, sizeof(o2));
        CHECK_OK(scp_cmac_once(&r, in, 37, t1));
        CHECK_OK(scp_cmac_once(&fd, in, 37, t2));
        CHECK_MEM(t1, 16, t2, 16);
        CHECK(memcmp(f.l, fd.l, 16) == 0 && memcmp(r.l, rd.l, 16) == 0);
        /* and the decrypting keys do decrypt */
        CHECK_OK(scp_aes_cbc_decrypt(&fd, iv, o2, sizeof(o2), o1));
        CHECK_MEM(o1, sizeof(o1), in, sizeof(in));
        scp_aes_clear(&f), scp_aes_clear(&r), scp_aes_clear(&fd), scp_aes_clear(&rd);
        CHECK(f.dec == 0 && f.fast == 0);
        n++;
    }
    printf("decrypt without scp_aes_init_dec: refused in %zu random cases\n", n);
}

static void test_blocks_and_cbc(void)
{
    static uint8_t in[65536 + 32], o1[sizeof(in)], o2[sizeof(in)];
    size_t lens = 0;
    for (size_t len = 0; len <= 4096 + 16 * 8; len += 16) {
        uint8_t key[32], iv[16];
        size_t kl = random_key_len(), big = len > 4096 ? 65536 + 16 * (len % 2) : len;
        scp_aes f, r;
        test_rand_bytes(key, kl);
        test_rand_bytes(iv, 16);
        test_rand_bytes(in, big);
        key_pair(&f, &r, key, kl);
        scp_aes_block(&f, iv, o1);
        scp_aes_block(&r, iv, o2);
        CHECK_MEM(o1, 16, o2, 16);
        CHECK_OK(scp_aes_cbc_encrypt(&f, iv, in, big, o1));
        CHECK_OK(scp_aes_cbc_encrypt(&r, iv, in, big, o2));
        CHECK_MEM(o1, big, o2, big);
        CHECK_OK(scp_aes_cbc_decrypt(&f, iv, in, big, o1));
        CHECK_OK(scp_aes_cbc_decrypt(&r, iv, in, big, o2));
        CHECK_MEM(o1, big, o2, big);
        /* in place, and the round trip */
        memcpy(o1, in, big);
        CHECK_OK(scp_aes_cbc_encrypt(&f, iv, o1, big, o1));
        CHECK_OK(scp_aes_cbc_decrypt(&f, iv, o1, big, o1));
        CHECK_MEM(o1, big, in, big);
        /* tampered twin: one flipped ciphertext bit changes two blocks */
        if (big > 0) {
            CHECK_OK(scp_aes_cbc_encrypt(&f, iv, in, big, o1));
            o1[big / 2] ^= 0x01;
            CHECK_OK(scp_aes_cbc_decrypt(&f, iv, o1, big, o2));
            CHECK(memcmp(o2, in, big) != 0);
        }
        CHECK_RC(scp_aes_cbc_encrypt(&f, iv, in, 15, o1), SCP_E_ARG);
        CHECK_RC(scp_aes_cbc_decrypt(&f, iv, in, 17, o1), SCP_E_ARG);
        scp_aes_clear(&f);
        scp_aes_clear(&r);
        lens++;
    }
    printf("block/cbc: %zu random keys and lengths agree\n", lens);
}

static void test_cmac_kdf(void)
{
    static uint8_t msg[4100 + 70000];
    uint8_t key[32], m1[16], m2[16], k1[64], k2[64];
    size_t n = 0;
    test_rand_bytes(msg, sizeof(msg));
    for (size_t len = 0; len <= 4100; len++) {
        size_t kl = random_key_len(), cut = test_rand_below(len + 1),
               big = len == 4100 ? sizeof(msg) - test_rand_below(40) : len;
        scp_aes f, r;
        scp_cmac c;
        test_rand_bytes(key, kl);
        key_pair(&f, &r, key, kl);
        CHECK_OK(scp_cmac_once(&r, msg, big, m2));
        scp_cmac_init(&c, &f);
        CHECK_OK(scp_cmac_update(&c, msg, cut));
        CHECK_OK(scp_cmac_update(&c, msg + cut, big - cut));
        CHECK_OK(scp_cmac_final(&c, m1));
        CHECK_MEM(m1, 16, m2, 16);
        if (len % 64 == 0) { /* KDFs: random label, context, output length */
            uint8_t ctx[64], cst = (uint8_t)test_rand();
            size_t cl = test_rand_below(sizeof(ctx) + 1), ol = 1 + test_rand_below(64);
            test_rand_bytes(ctx, cl);
            CHECK_OK(scp_kdf_gp(&f, cst, ctx, cl, k1, ol));
            CHECK_OK(scp_kdf_gp(&r, cst, ctx, cl, k2, ol));
            CHECK_MEM(k1, ol, k2, ol);
            CHECK_OK(scp_kbkdf_cmac(&f, ctx, cl / 2, ctx + cl / 2, cl - cl / 2, k1, ol));
            CHECK_OK(scp_kbkdf_cmac(&r, ctx, cl / 2, ctx + cl / 2, cl - cl / 2, k2, ol));
            CHECK_MEM(k1, ol, k2, ol);
            /* tampered twin: another constant gives another key */
            CHECK_OK(scp_kdf_gp(&f, (uint8_t)(cst ^ 1), ctx, cl, k1, ol));
            CHECK(ol < 4 || memcmp(k1, k2, ol) != 0);
        }
        scp_aes_clear(&f);
        scp_aes_clear(&r);
        n++;
    }
    printf("cmac/kdf: %zu random keys and lengths agree\n", n);
}

/* The reference for one key: scp_kdf_gp on an OpenSSL key. */
static void ref_kdf(const uint8_t *key, size_t kl, uint8_t cst, const uint8_t *ctx, size_t cl,
                    uint8_t *out, size_t ol)
{
    scp_aes k;
    CHECK_OK(scp_aes_init_ctx(&k, &ossl, key, kl, 0));
    CHECK_OK(scp_kdf_gp(&k, cst, ctx, cl, out, ol));
    scp_aes_clear(&k);
}

/* f must behave as r: same CBC and, for S-MAC and S-RMAC, the same L,
 * subkeys and CMAC; S-ENC (dec) decrypts as r and refuses to MAC; a key
 * without its decryption side refuses to decrypt. */
static void same_key(const scp_aes *f, const scp_aes *r, int dec)
{
    uint8_t in[48], o1[48], o2[48];
    size_t ml = 1 + test_rand_below(sizeof(in));
    test_rand_bytes(in, sizeof(in));
    CHECK(f->dec == (dec != 0) && f->key_len == r->key_len && f->mac == !dec);
    CHECK_OK(scp_aes_cbc_encrypt(f, in, in, sizeof(in), o1));
    CHECK_OK(scp_aes_cbc_encrypt(r, in, in, sizeof(in), o2));
    CHECK_MEM(o1, sizeof(o1), o2, sizeof(o2));
    if (dec) { /* every CMAC entry point refuses a key without subkeys */
        scp_cmac c;
        CHECK_RC(scp_cmac_once(f, in, ml, o1), SCP_E_STATE);
        CHECK_RC(scp_cmac_ea(f, in, in + 5, 8, o1), SCP_E_STATE);
        scp_cmac_init(&c, f);
        CHECK_OK(scp_cmac_update(&c, in, ml));
        CHECK_RC(scp_cmac_final(&c, o1), SCP_E_STATE);
        CHECK_RC(scp_cbc_enc_cmac(r, f, in, in, in, 5, o1, 32, NULL, 0, o2), SCP_E_STATE);
        CHECK_RC(scp_cmac_cbc_dec(r, f, in, in, in, 5, in, 32, NULL, 0, o1, o2),
                 SCP_E_STATE);
    } else {
        CHECK(memcmp(f->l, r->l, 16) == 0);
        CHECK_OK(scp_cmac_once(f, in, ml, o1));
        CHECK_OK(scp_cmac_once(r, in, ml, o2));
        CHECK_MEM(o1, 16, o2, 16);
    }
    if (dec) {
        CHECK_OK(scp_aes_cbc_decrypt(f, in, in, sizeof(in), o1));
        CHECK_OK(scp_aes_cbc_decrypt(r, in, in, sizeof(in), o2));
        CHECK_MEM(o1, sizeof(o1), o2, sizeof(o2));
    } else {
        CHECK_RC(scp_aes_cbc_decrypt(f, in, in, sizeof(in), o1), SCP_E_STATE);
    }
}

/* One side's handshake crypto in one batch (scp_scp03_keys,
 * crypto/internal.h) against each KDF on its own on the OpenSSL path:
 * every key length, S8 and S16, a given or a derived card challenge
 * (counter | AID contexts of 1..32 bytes). The session keys must encrypt,
 * MAC and (S-ENC only) decrypt as the reference keys; the challenge and
 * both cryptograms must match. */
static void test_scp03_keys(void)
{
    static const uint8_t dd[3] = { SCP03_DDC_S_ENC, SCP03_DDC_S_MAC, SCP03_DDC_S_RMAC };
    uint8_t enc[32], mac[32], hc[16], cc[16], cctx[32], ctx[32], want[32];
    uint8_t c_cc[16], c_hc[16], w_cc[16], w_hc[16], w_chal[16];
    size_t n = 0;
    for (int rep = 0; rep < 600; rep++) {
        size_t kl = random_key_len(), cl = rep % 2 ? 16 : 8;
        size_t ccl = rep % 3 ? 1 + test_rand_below(sizeof(cctx)) : 0;
        scp_aes_raw fe, fr;
        scp_aes fm, f[3], r[3];
        scp03_hs_keys h = { 0 };
        test_rand_bytes(enc, kl), test_rand_bytes(mac, kl), test_rand_bytes(hc, cl);
        test_rand_bytes(cc, cl), test_rand_bytes(cctx, ccl);
        if (rep % 5 == 0) /* static keys that repeat, as some key sets do */
            memcpy(mac, enc, kl);
        h.enc = enc, h.mac = mac, h.key_len = kl;
        h.chal_ctx = ccl ? cctx : NULL, h.chal_ctx_len = ccl;
        h.host_chal = hc, h.card_chal = cc, h.chal_len = cl;
        h.s_enc = &fe, h.s_mac = &fm, h.s_rmac = &fr;
        h.card_cryptogram = c_cc, h.host_cryptogram = c_hc;
        if (ccl)
            ref_kdf(enc, kl, SCP03_DDC_CARD_CHALLENGE, cctx, ccl, w_chal, cl);
        h.ctx = rep % 7 == 6 ? &ossl : NULL; /* now and then both on OpenSSL */
        memset(&fe, 0, sizeof(fe)), memset(&fm, 0, sizeof(fm)), memset(&fr, 0, sizeof(fr));
        CHECK_OK(scp_scp03_keys(&h));
        /* S-ENC and S-RMAC raw (expanded per use), S-MAC expanded */
        CHECK(fe.ossl == !(have_fast && rep % 7 != 6) && fr.ossl == fe.ossl);
        CHECK(fm.fast == (have_fast && rep % 7 != 6));
        CHECK_OK(scp_aes_open(&f[0], &fe));
        f[1] = fm;
        CHECK_OK(scp_aes_open(&f[2], &fr));
        if (ccl)
            CHECK_MEM(cc, cl, w_chal, cl);
        memcpy(ctx, hc, cl), memcpy(ctx + cl, cc, cl);
        for (int j = 0; j < 3; j++) {
            ref_kdf(j == 0 ? enc : mac, kl, dd[j], ctx, 2 * cl, want, kl);
            CHECK_OK(scp_aes_init_ctx(&r[j], &ossl, want, kl, 1));
            same_key(&f[j], &r[j], j == 0);
        }
        CHECK_OK(scp_kdf_gp(&r[1], SCP03_DDC_CARD_CRYPTOGRAM, ctx, 2 * cl, w_cc, cl));
        CHECK_OK(scp_kdf_gp(&r[1], SCP03_DDC_HOST_CRYPTOGRAM, ctx, 2 * cl, w_hc, cl));
        CHECK_MEM(c_cc, cl, w_cc, cl);
        CHECK_MEM(c_hc, cl, w_hc, cl);
        /* tampered twin: one bit of the host challenge, other session
         * keys and cryptograms */
        scp_aes_close(&f[0]), scp_aes_close(&f[2]);
        scp_aes_raw_clear(&fe), scp_aes_clear(&fm), scp_aes_raw_clear(&fr);
        hc[test_rand_below(cl)] ^= 0x10;
        CHECK_OK(scp_scp03_keys(&h));
        CHECK(memcmp(c_cc, w_cc, cl) != 0 && memcmp(c_hc, w_hc, cl) != 0);
        CHECK_OK(scp_aes_open(&f[0], &fe));
        f[1] = fm;
        CHECK_OK(scp_aes_open(&f[2], &fr));
        for (int j = 0; j < 3; j++) {
            uint8_t z[16] = { 0 }, e1[16], e2[16];
            scp_aes_block(&f[j], z, e1), scp_aes_block(&r[j], z, e2);
            CHECK(memcmp(e1, e2, 16) != 0);
            scp_aes_clear(&r[j]);
        }
        scp_aes_close(&f[0]), scp_aes_close(&f[2]);
        scp_aes_raw_clear(&fe), scp_aes_clear(&fm), scp_aes_raw_clear(&fr);
        n++;
    }
    {
        scp_aes_raw k0, k2;
        scp_aes k1;
        uint8_t b[32] = { 0 }, o[16], p[16];
        scp03_hs_keys h = { b, b, 20, NULL, 0, b, p, 8, &k0, &k1, &k2, o, o, NULL };
        CHECK_RC(scp_scp03_keys(&h), SCP_E_ARG); /* no such AES key length */
        h.key_len = 16, h.chal_len = 12;
        CHECK_RC(scp_scp03_keys(&h), SCP_E_ARG); /* S8 or S16 only */
        h.chal_len = 8, h.chal_ctx = b, h.chal_ctx_len = 33;
        CHECK_RC(scp_scp03_keys(&h), SCP_E_ARG);
    }
    printf("handshake crypto in one batch: %zu random cases agree\n", n);
}

/* The EXTERNAL AUTHENTICATE C-MAC (scp_cmac_ea, started from L, built in
 * registers) against a plain CMAC over 16 zero bytes | header | host
 * cryptogram on the OpenSSL path, S8 and S16. */
static void test_cmac_ea(void)
{
    uint8_t key[32], msg[16 + 5 + 16] = { 0 }, a[16], w[16];
    size_t n = 0;
    for (int rep = 0; rep < 400; rep++) {
        size_t kl = random_key_len(), cl = rep % 2 ? 16 : 8;
        scp_aes f, r;
        test_rand_bytes(key, kl), test_rand_bytes(msg + 16, 5 + cl);
        key_pair_mode(&f, &r, key, kl, 0);
        CHECK_OK(scp_cmac_once(&r, msg, 16 + 5 + cl, w));
        CHECK_OK(scp_cmac_ea(&f, msg + 16, msg + 21, cl, a));
        CHECK_MEM(a, 16, w, 16);
        CHECK_OK(scp_cmac_ea(&r, msg + 16, msg + 21, cl, a));
        CHECK_MEM(a, 16, w, 16);
        /* tampered twin: any one byte of header or cryptogram */
        msg[16 + test_rand_below(5 + cl)] ^= 0x01;
        CHECK_OK(scp_cmac_ea(&f, msg + 16, msg + 21, cl, a));
        CHECK(memcmp(a, w, 16) != 0);
        scp_aes_clear(&f), scp_aes_clear(&r);
        n++;
    }
    CHECK_RC(scp_cmac_ea(&(scp_aes){ .mac = 1 }, msg, msg, 12, a), SCP_E_ARG);
    printf("EXTERNAL AUTHENTICATE C-MAC: %zu random cases agree\n", n);
}

/* The one-pass SCP03 primitives (crypto/internal.h): every header and
 * trailer length, lengths 0..4096, fast keys against OpenSSL keys, in place
 * and not; the decryption side must give back the plaintext and the same
 * tag. */
static void test_etm(void)
{
    static uint8_t pt[4096 + 16], b1[sizeof(pt)], b2[sizeof(pt)], d1[sizeof(pt)], d2[sizeof(pt)];
    size_t n = 0;
    for (size_t rep = 0, len = 0; rep < 8; len += 16 * (1 + test_rand_below(8))) {
        uint8_t ke[32], km[32], icv[16], chain[16], pre[16], post[16], t1[16], t2[16], t3[16],
            t4[16];
        size_t kl = random_key_len(), pl = test_rand_below(16), tl = test_rand_below(16 - pl);
        scp_aes fe, re, fm, rm;
        test_rand_bytes(ke, kl), test_rand_bytes(km, kl);
        test_rand_bytes(icv, 16), test_rand_bytes(chain, 16);
        test_rand_bytes(pre, 16), test_rand_bytes(post, 16), test_rand_bytes(pt, len);
        key_pair(&fe, &re, ke, kl);
        key_pair(&fm, &rm, km, kl);
        memcpy(b1, pt, len), memcpy(b2, pt, len);
        CHECK_OK(scp_cbc_enc_cmac(&fe, &fm, icv, chain, pre, pl, b1, len, post, tl, t1));
        CHECK_OK(scp_cbc_enc_cmac(&re, &rm, icv, chain, pre, pl, b2, len, post, tl, t2));
        CHECK_MEM(b1, len, b2, len);
        CHECK_MEM(t1, 16, t2, 16);
        CHECK_OK(scp_cmac_cbc_dec(&fe, &fm, icv, chain, pre, pl, b1, len, post, tl, d1, t3));
        CHECK_OK(scp_cmac_cbc_dec(&re, &rm, icv, chain, pre, pl, b2, len, post, tl, d2, t4));
        CHECK_MEM(d1, len, pt, len);
        CHECK_MEM(d2, len, pt, len);
        CHECK_MEM(t3, 16, t1, 16);
        CHECK_MEM(t4, 16, t1, 16);
        /* in place; and a tampered twin: one ciphertext bit, another tag */
        CHECK_OK(scp_cmac_cbc_dec(&fe, &fm, icv, chain, pre, pl, b1, len, post, tl, b1, t3));
        CHECK_MEM(b1, len, pt, len);
        if (len > 0) {
            b2[test_rand_below(len)] ^= 0x10;
            CHECK_OK(scp_cmac_cbc_dec(&fe, &fm, icv, chain, pre, pl, b2, len, post, tl, d1, t3));
            CHECK(memcmp(t3, t1, 16) != 0);
        }
        CHECK_RC(scp_cbc_enc_cmac(&fe, &fm, icv, chain, pre, pl, b1, 15, post, tl, t1), SCP_E_ARG);
        /* the ICV made ahead: the IV given as AES(ke, icv) gives the same
         * bytes, on both paths; the next ICV comes out as AES(ke, next),
         * also into the buffer the IV came from */
        {
            uint8_t iv[16], next[16], n1[16], n2[16], want[16];
            scp_aes_block(&re, icv, iv);
            test_rand_bytes(next, 16);
            scp_aes_block(&re, next, want);
            memcpy(b1, pt, len), memcpy(b2, pt, len);
            memcpy(n1, iv, 16);
            CHECK_OK(scp_cbc_enc_cmac_ahead(&fe, &fm, icv, n1, next, n1, chain, pre, pl, b1, len,
                                            post, tl, t3));
            CHECK_OK(scp_cbc_enc_cmac_ahead(&re, &rm, NULL, iv, next, n2, chain, pre, pl, b2, len,
                                            post, tl, t4));
            CHECK_MEM(t3, 16, t1, 16);
            CHECK_MEM(t4, 16, t1, 16);
            CHECK_MEM(b1, len, b2, len);
            CHECK_MEM(n1, 16, want, 16);
            CHECK_MEM(n2, 16, want, 16);
            /* a wrong IV made ahead is not the right one: another tag */
            iv[0] ^= 1;
            memcpy(b1, pt, len);
            CHECK_OK(scp_cbc_enc_cmac_ahead(&fe, &fm, icv, iv, NULL, NULL, chain, pre, pl, b1, len,
                                            post, tl, t3));
            CHECK(len == 0 || memcmp(t3, t1, 16) != 0);
        }
        scp_aes_clear(&fe), scp_aes_clear(&re), scp_aes_clear(&fm), scp_aes_clear(&rm);
        n++;
        if (len > 4096 - 16 * 8) /* again from 0, with other header/trailer lengths */
            len = 0, rep++;
    }
    printf("enc+cmac / cmac+dec: %zu random cases agree\n", n);
}

/* ---- whole sessions ---- */

typedef struct transcript {
    uint8_t *p;
    size_t len, cap;
} transcript;

static void tr_add(transcript *t, const uint8_t *p, size_t n)
{
    uint8_t hdr[4] = { (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n };
    if (t->len + n + 4 > t->cap) {
        size_t cap = (t->len + n + 4) * 2;
        uint8_t *q = realloc(t->p, cap);
        if (q == NULL)
            abort();
        t->p = q, t->cap = cap;
    }
    memcpy(t->p + t->len, hdr, 4);
    memcpy(t->p + t->len + 4, p, n);
    t->len += n + 4;
}

static uint8_t cbuf[SCP_APDU_MAX + 64], wbuf[SCP_APDU_MAX + 64], pbuf[SCP_APDU_MAX + 64];
static uint8_t rbuf[SCP_RAPDU_MAX + 64], rwbuf[SCP_RAPDU_MAX + 64];
static const uint8_t aid[] = { 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00 };

/* One seeded session: host on one path, card on the other (fast_host and
 * fast_card say which), every byte that crosses recorded. Returns the
 * number of failed steps (0 when the session ran clean). */
static int run_session(uint64_t seed, int fast_host, int fast_card, int tamper, transcript *t)
{
    static const uint8_t levels[] = { 0x00, 0x01, 0x03, 0x11, 0x13, 0x33 };
    static const size_t edges[] = { 0, 1, 15, 16, 17, 239, 240, 255, 1000, 4096, 65000 };
    scp03_session h = { 0 }, c = { 0 };
    scp03_card_params prm = { 0 };
    scp03_keys k = { 0 };
    uint8_t hc[16], cc[16], resp[SCP03_IU_RESP_MAX], level;
    size_t n, rl, chal;
    scp_apdu a;
    int bad = 0;

    test_seed(seed);
    k.key_len = (uint8_t)random_key_len();
    k.kvn = 0x30;
    test_rand_bytes(k.enc, k.key_len);
    test_rand_bytes(k.mac, k.key_len);
    test_rand_bytes(hc, 16);
    test_rand_bytes(cc, 16);
    prm.i = (uint8_t)(0x70 | test_rand_below(2)); /* R-MAC, R-ENC, pseudo-random, S8/S16 */
    chal = (prm.i & SCP03_I_S16) ? 16 : 8;
    test_rand_bytes(prm.kdd, sizeof(prm.kdd));
    prm.seq = 5, prm.aid = aid, prm.aid_len = sizeof(aid), prm.fixed_card_chal = cc;
    level = levels[test_rand_below(sizeof(levels))];
    if (tamper && level == SCP_LEVEL_NONE)
        level = SCP_LEVEL_CMAC; /* something to tamper with */

    h.ctx = fast_host ? NULL : &ossl;
    c.ctx = fast_card ? NULL : &ossl;
    bad += scp03_host_begin(&h, &k, hc, chal) != 0;
    bad += scp03_host_initialize_update(&h, 0x00, cbuf, sizeof(cbuf), &n) != 0;
    bad += scp_apdu_parse(cbuf, n, &a) != 0;
    bad += scp03_card_initialize_update(&c, &prm, &k, a.data, a.lc, resp, sizeof(resp), &rl) != 0;
    tr_add(t, resp, rl);
    bad += scp03_host_iu_response(&h, resp, rl) != 0;
    bad += scp03_host_external_authenticate(&h, level, cbuf, sizeof(cbuf), &n) != 0;
    tr_add(t, cbuf, n);
    bad += scp03_card_external_authenticate(&c, cbuf, n) != 0;
    bad += scp03_host_ea_result(&h, 0x9000) != 0;
    bad += (SCP_AES_OF(&h.s_mac)->fast != (fast_host && have_fast)) + (SCP_AES_OF(&c.s_mac)->fast != (fast_card && have_fast));

    for (int j = 0; j < 24 && bad == 0; j++) {
        size_t lc = j < 11 ? edges[j] : test_rand_below(300), wl, pl, rwl;
        size_t rlen = test_rand_below(j % 3 == 0 ? 4000 : 240);
        uint8_t hdr[4] = { 0x80, (uint8_t)(0xE0 + j), (uint8_t)j, 0x00 };
        lc = lc > scp03_max_plain_data(&h, 1) ? scp03_max_plain_data(&h, 1) : lc;
        memcpy(cbuf, hdr, 4);
        n = 4;
        if (lc > 255) { /* extended form: 00 Lc1 Lc2; the card re-encodes short */
            cbuf[4] = 0, cbuf[5] = (uint8_t)(lc >> 8), cbuf[6] = (uint8_t)lc;
            n = 7;
        } else if (lc > 0) {
            cbuf[n++] = (uint8_t)lc;
        }
        test_rand_bytes(cbuf + n, lc);
        n += lc;
        memcpy(wbuf, cbuf, n); /* every third turn wraps in place */
        bad += scp03_host_wrap(&h, j % 3 ? cbuf : wbuf, n, wbuf, sizeof(wbuf), &wl) != 0;
        tr_add(t, wbuf, wl);
        if (tamper && j == 12)
            wbuf[wl - 1] ^= 0x40; /* last MAC byte */
        /* odd turns unwrap in place (the engine allows out == in) */
        memcpy(pbuf, wbuf, wl);
        if (scp03_card_unwrap(&c, j % 2 ? pbuf : wbuf, wl, pbuf, sizeof(pbuf), &pl) != 0) {
            bad++;
            break;
        }
        bad += pl != n || memcmp(pbuf, cbuf, n) != 0;
        test_rand_bytes(rbuf, rlen);
        bad += scp03_card_wrap(&c, rbuf, rlen, 0x9000, rwbuf, sizeof(rwbuf), &rwl) != 0;
        tr_add(t, rwbuf, rwl);
        memcpy(pbuf, rwbuf, rwl);
        bad += scp03_host_unwrap(&h, j % 2 ? pbuf : rwbuf, rwl, pbuf, sizeof(pbuf), &pl) != 0;
        bad += pl != rlen + 2 || memcmp(pbuf, rbuf, rlen) != 0;
        tr_add(t, pbuf, pl);
    }
    scp03_end(&h);
    scp03_end(&c);
    return bad;
}

static void test_sessions(uint64_t seed)
{
    size_t runs = 0;
    for (uint64_t s = 0; s < 48; s++) {
        transcript t[4] = { { 0 } };
        for (int m = 0; m < 4; m++) /* host/card: fast/fast, ref/ref, fast/ref, ref/fast */
            CHECK(run_session(seed + s, m == 0 || m == 2, m == 0 || m == 3, 0, &t[m]) == 0);
        for (int m = 1; m < 4; m++)
            CHECK_MEM(t[m].p, t[m].len, t[0].p, t[0].len);
        /* tampered twin: the card must refuse, on either path */
        for (int m = 0; m < 2; m++) {
            transcript tt = { 0 };
            CHECK(run_session(seed + s, m, m, 1, &tt) > 0);
            free(tt.p);
        }
        for (int m = 0; m < 4; m++)
            free(t[m].p);
        runs++;
    }
    printf("sessions: %zu seeded sessions agree across paths\n", runs);
}

int main(int argc, char **argv)
{
    const char *env = getenv("SCP_AES_IMPL");
    uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 0) : 0x5C03FA57u;
    printf("seed %llu, impl %s\n", (unsigned long long)seed, scp_aes_impl());
    have_fast = strcmp(scp_aes_impl(), "aesni") == 0;
    if (env != NULL && strcmp(env, "openssl") == 0)
        CHECK(!have_fast); /* the environment switch works */
    /* the backend is the context's: OpenSSL on request whatever the
     * default, AES-NI on request only where the CPU has it */
    CHECK(strcmp(scp_ctx_backend_name(&ossl), "openssl") == 0);
    CHECK(strcmp(scp_ctx_backend_name(NULL), scp_aes_impl()) == 0);
    {
        static const scp_ctx ni = { .backend = SCP_BACKEND_AESNI };
        uint8_t key[16] = { 0 };
        scp_aes a;
        int rc = scp_aes_init_ctx(&a, &ni, key, 16, 0);
        if (strcmp(scp_ctx_backend_name(&ni), "aesni") == 0) {
            CHECK_OK(rc);
            CHECK(a.fast == 1); /* even with SCP_AES_IMPL=openssl: the context asked */
            scp_aes_clear(&a);
        } else {
            CHECK_RC(rc, SCP_E_UNSUPPORTED);
        }
    }
    if (!have_fast)
        printf("note: AES-NI path not in use; comparing OpenSSL with itself\n");
    test_seed(seed);
    test_blocks_and_cbc();
    test_dec_misuse();
    test_cmac_kdf();
    test_scp03_keys();
    test_cmac_ea();
    test_etm();
    test_sessions(seed);
    return test_done("test_crypto_fast");
}
