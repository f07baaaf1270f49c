/* Constant-time DES and 3DES (FIPS 46-3 tables).
 *
 * Why not OpenSSL: its DES_encrypt1 indexes DES_SPtrans with secret bits
 * (key XOR data), a cache-timing channel on the session keys. Here:
 *  - an S-box look-up reads all four rows of the S-box (each a 64-bit
 *    word of sixteen 4-bit entries), keeps one with masks made from the
 *    row bits, and takes the column by a shift: the addresses read never
 *    depend on a secret, and neither does any branch;
 *  - IP, FP and P are rotation networks (public masks and amounts), E is
 *    rotations, PC1/PC2 (key schedule) bit moves at public positions.
 * The tables themselves are public constants, built once. */
#include <pthread.h>
#include <string.h>

#include "crypto/des_ct.h"
#include "core/guard.h"
#include "scpkit/crypto.h"

/* FIPS 46-3 S-boxes, row-major: S[s][row * 16 + col]. */
static const uint8_t S[8][64] = {
    { 14, 4,  13, 1, 2,  15, 11, 8,  3,  10, 6,  12, 5,  9,  0, 7,  0,  15, 7,  4,  14, 2,
      13, 1,  10, 6, 12, 11, 9,  5,  3,  8,  4,  1,  14, 8,  13, 6,  2,  11, 15, 12, 9,  7,
      3,  10, 5,  0, 15, 12, 8,  2,  4,  9,  1,  7,  5,  11, 3,  14, 10, 0,  6,  13 },
    { 15, 1,  8,  14, 6,  11, 3,  4,  9,  7, 2,  13, 12, 0,  5,  10, 3,  13, 4,  7,  15, 2,
      8,  14, 12, 0,  1,  10, 6,  9,  11, 5, 0,  14, 7,  11, 10, 4,  13, 1,  5,  8,  12, 6,
      9,  3,  2,  15, 13, 8,  10, 1,  3,  15, 4, 2,  11, 6,  7,  12, 0,  5,  14, 9 },
    { 10, 0,  9,  14, 6,  3,  15, 5,  1,  13, 12, 7,  11, 4,  2,  8,  13, 7,  0,  9,  3, 4,
      6,  10, 2,  8,  5,  14, 12, 11, 15, 1,  13, 6,  4,  9,  8,  15, 3,  0,  11, 1,  2, 12,
      5,  10, 14, 7,  1,  10, 13, 0,  6,  9,  8,  7,  4,  15, 14, 3,  11, 5,  2,  12 },
    { 7,  13, 14, 3,  0,  6,  9,  10, 1,  2,  8, 5,  11, 12, 4, 15, 13, 8,  11, 5,  6, 15,
      0,  3,  4,  7,  2,  12, 1,  10, 14, 9,  10, 6, 9,  0,  12, 11, 7, 13, 15, 1,  3, 14,
      5,  2,  8,  4,  3,  15, 0,  6,  10, 1,  13, 8, 9,  4,  5,  11, 12, 7, 2,  14 },
    { 2,  12, 4,  1,  7,  10, 11, 6,  8,  5,  3,  15, 13, 0, 14, 9,  14, 11, 2,  12, 4, 7,
      13, 1,  5,  0,  15, 10, 3,  9,  8,  6,  4,  2,  1,  11, 10, 13, 7, 8,  15, 9,  12, 5,
      6,  3,  0,  14, 11, 8,  12, 7,  1,  14, 2,  13, 6,  15, 0,  9,  10, 4, 5,  3 },
    { 12, 1,  10, 15, 9,  2,  6,  8,  0,  13, 3,  4,  14, 7,  5,  11, 10, 15, 4,  2,  7, 12,
      9,  5,  6,  1,  13, 14, 0,  11, 3,  8,  9,  14, 15, 5,  2,  8,  12, 3,  7,  0,  4, 10,
      1,  13, 11, 6,  4,  3,  2,  12, 9,  5,  15, 10, 11, 14, 1,  7,  6,  0,  8,  13 },
    { 4,  11, 2,  14, 15, 0,  8,  13, 3,  12, 9,  7,  5,  10, 6,  1,  13, 0,  11, 7,  4, 9,
      1,  10, 14, 3,  5,  12, 2,  15, 8,  6,  1,  4,  11, 13, 12, 3,  7,  14, 10, 15, 6, 8,
      0,  5,  9,  2,  6,  11, 13, 8,  1,  4,  10, 7,  9,  5,  0,  15, 14, 2,  3,  12 },
    { 13, 2,  8,  4,  6,  15, 11, 1,  10, 9,  3,  14, 5,  0,  12, 7,  1,  15, 13, 8,  10, 3,
      7,  4,  12, 5,  6,  11, 0,  14, 9,  2,  7,  11, 4,  1,  9,  12, 14, 2,  0,  6,  10, 13,
      15, 3,  5,  8,  2,  1,  14, 7,  4,  10, 8,  13, 15, 12, 9,  0,  3,  5,  6,  11 },
};

static const uint8_t P[32] = { 16, 7, 20, 21, 29, 12, 28, 17, 1,  15, 23, 26, 5,  18, 31, 10,
                               2,  8, 24, 14, 32, 27, 3,  9,  19, 13, 30, 6,  22, 11, 4,  25 };

static const uint8_t IP[64] = { 58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4,
                                62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48, 40, 32, 24, 16, 8,
                                57, 49, 41, 33, 25, 17, 9,  1, 59, 51, 43, 35, 27, 19, 11, 3,
                                61, 53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7 };

static const uint8_t PC1[56] = { 57, 49, 41, 33, 25, 17, 9,  1,  58, 50, 42, 34, 26, 18,
                                 10, 2,  59, 51, 43, 35, 27, 19, 11, 3,  60, 52, 44, 36,
                                 63, 55, 47, 39, 31, 23, 15, 7,  62, 54, 46, 38, 30, 22,
                                 14, 6,  61, 53, 45, 37, 29, 21, 13, 5,  28, 20, 12, 4 };

static const uint8_t PC2[48] = { 14, 17, 11, 24, 1,  5,  3,  28, 15, 6,  21, 10,
                                 23, 19, 12, 4,  26, 8,  16, 7,  27, 20, 13, 2,
                                 41, 52, 31, 37, 47, 55, 30, 40, 51, 45, 33, 48,
                                 44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32 };

static const uint8_t SHIFTS[16] = { 1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1 };

/* ROWS[s][row]: the sixteen 4-bit outputs of S-box s in one row, column c
 * at bits 4c..4c+3. A look-up selects the row with masks from the row
 * bits and the column with a shift by the column (x86 shifts take the
 * same time for every count): no secret-indexed memory access.
 *
 * Bit permutations (IP, FP, P) are rotation networks: the bits that move
 * by the same rotation are gathered with one public mask. */
static uint64_t ROWS[8][4];

typedef struct rotnet {
    uint8_t n;
    uint8_t amount[64];
    uint64_t mask[64];
} rotnet;

static rotnet NET_IP, NET_FP, NET_P;
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

/* out bit i (1 = most significant of n) = in bit tab[i] (1 = most
 * significant of inbits). Public positions only (key schedule, tables). */
static uint64_t permute(uint64_t in, const uint8_t *tab, int n, int inbits)
{
    uint64_t out = 0;
    for (int i = 0; i < n; i++)
        out = (out << 1) | ((in >> (inbits - tab[i])) & 1u);
    return out;
}

/* A width-bit permutation (tab as for permute, n = inbits = width) as
 * rotation groups. */
static void rotnet_build(rotnet *net, const uint8_t *tab, int width)
{
    uint64_t mask[64] = { 0 };
    for (int i = 0; i < width; i++) {
        int src = width - tab[i], dst = width - 1 - i; /* bit numbers from 0 = LSB */
        int a = ((dst - src) % width + width) % width;
        mask[a] |= (uint64_t)1 << src;
    }
    net->n = 0;
    for (int a = 0; a < width; a++) {
        if (mask[a] == 0)
            continue;
        net->amount[net->n] = (uint8_t)a;
        net->mask[net->n] = mask[a];
        net->n++;
    }
}

static inline uint64_t rotnet64(const rotnet *net, uint64_t x)
{
    uint64_t out = 0;
    for (int i = 0; i < net->n; i++) {
        uint64_t v = x & net->mask[i];
        unsigned a = net->amount[i];
        out |= (v << a) | (v >> ((64 - a) & 63));
    }
    return out;
}

static inline uint32_t rotnet32(const rotnet *net, uint32_t x)
{
    uint32_t out = 0;
    for (int i = 0; i < net->n; i++) {
        uint32_t v = x & (uint32_t)net->mask[i];
        unsigned a = net->amount[i];
        out |= (v << a) | (v >> ((32 - a) & 31));
    }
    return out;
}

static void build_tables(void)
{
    uint8_t fp[64];
    for (int s = 0; s < 8; s++)
        for (int row = 0; row < 4; row++) {
            uint64_t w = 0;
            for (int col = 0; col < 16; col++)
                w |= (uint64_t)S[s][row * 16 + col] << (4 * col);
            ROWS[s][row] = w;
        }
    for (int i = 0; i < 64; i++)
        fp[IP[i] - 1] = (uint8_t)(i + 1);
    rotnet_build(&NET_IP, IP, 64);
    rotnet_build(&NET_FP, fp, 64);
    rotnet_build(&NET_P, P, 32);
}

static inline uint32_t rotl32(uint32_t x, unsigned n) { return (x << n) | (x >> ((32 - n) & 31)); }

/* S-box s on the 6-bit input j (b1 the high bit): row b1b6, column b2..b5. */
static inline uint32_t sbox(int s, uint32_t j)
{
    uint64_t m6 = (uint64_t)0 - (j & 1u), m1 = (uint64_t)0 - ((j >> 5) & 1u);
    uint64_t lo = ROWS[s][0] ^ ((ROWS[s][0] ^ ROWS[s][1]) & m6);
    uint64_t hi = ROWS[s][2] ^ ((ROWS[s][2] ^ ROWS[s][3]) & m6);
    uint64_t w = lo ^ ((lo ^ hi) & m1);
    return (uint32_t)(w >> (4 * ((j >> 1) & 15u))) & 15u;
}

/* f(R, K) = P(S(E(R) ^ K)) */
static inline uint32_t des_f(uint32_t r, const uint32_t k[8])
{
    uint32_t out = sbox(0, ((rotl32(r, 31) >> 26) & 0x3f) ^ k[0]) << 28;
    for (unsigned s = 1; s < 8; s++)
        out |= sbox((int)s, ((rotl32(r, 4 * s - 1) >> 26) & 0x3f) ^ k[s]) << (28 - 4 * s);
    return rotnet32(&NET_P, out);
}

/* 16 rounds on (l, r) in the IP domain, ending with the swap, so that
 * stages chain without FP/IP between them. */
void scp_des_rounds(const scp_des_ks *ks, int decrypt, uint32_t *l, uint32_t *r)
{
    uint32_t L = *l, R = *r, t;
    for (int i = 0; i < 16; i++) {
        t = R;
        R = L ^ des_f(R, ks->k[decrypt ? 15 - i : i]);
        L = t;
    }
    *l = R;
    *r = L;
}

static uint64_t load64(const uint8_t b[8])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | b[i];
    return v;
}

static void store64(uint64_t v, uint8_t b[8])
{
    for (int i = 7; i >= 0; i--) {
        b[i] = (uint8_t)v;
        v >>= 8;
    }
}

static void ks_init(scp_des_ks *ks, const uint8_t key[8])
{
    uint64_t cd = permute(load64(key), PC1, 56, 64), k;
    uint32_t c = (uint32_t)(cd >> 28) & 0x0fffffff, d = (uint32_t)cd & 0x0fffffff;

    for (int i = 0; i < 16; i++) {
        for (int n = 0; n < SHIFTS[i]; n++) {
            c = ((c << 1) | (c >> 27)) & 0x0fffffff;
            d = ((d << 1) | (d >> 27)) & 0x0fffffff;
        }
        k = permute(((uint64_t)c << 28) | d, PC2, 48, 56);
        for (int s = 0; s < 8; s++)
            ks->k[i][s] = (uint32_t)(k >> (42 - 6 * s)) & 0x3f;
    }
    scp_wipe(&cd, sizeof(cd));
    scp_wipe(&k, sizeof(k));
    scp_wipe(&c, sizeof(c));
    scp_wipe(&d, sizeof(d));
}

int scp_des3_init(scp_des3 *d, const uint8_t *key, size_t key_len)
{
    if (d == NULL || key == NULL || (key_len != 8 && key_len != 16 && key_len != 24))
        return SCP_E_ARG;
    pthread_once(&tables_once, build_tables);
    scp_des3_ks *k = SCP_DES3_OF(d);
    ks_init(&k->ks[0], key);
    if (key_len == 8)
        k->ks[1] = k->ks[0];
    else
        ks_init(&k->ks[1], key + 8);
    if (key_len == 24)
        ks_init(&k->ks[2], key + 16);
    else
        k->ks[2] = k->ks[0];
    k->key_len = (uint8_t)key_len;
    return SCP_OK;
}

void scp_des3_clear(scp_des3 *d)
{
    if (d != NULL)
        scp_wipe(d, sizeof(*d));
}

void scp_des_ip(const uint8_t in[8], uint32_t *l, uint32_t *r)
{
    uint64_t x = rotnet64(&NET_IP, load64(in));
    *l = (uint32_t)(x >> 32);
    *r = (uint32_t)x;
}

void scp_des_fp(uint32_t l, uint32_t r, uint8_t out[8])
{
    store64(rotnet64(&NET_FP, ((uint64_t)l << 32) | r), out);
}

void scp_des_block(const scp_des_ks *ks, int decrypt, const uint8_t in[8], uint8_t out[8])
{
    uint32_t l, r;
    scp_des_ip(in, &l, &r);
    scp_des_rounds(ks, decrypt, &l, &r);
    scp_des_fp(l, r, out);
}

void scp_des1_block(const scp_des3 *d, int decrypt, const uint8_t in[8], uint8_t out[8])
{
    scp_des_block(&SCP_DES3_OF(d)->ks[0], decrypt, in, out);
}

void scp_des3_encrypt(const scp_des3 *d, const uint8_t in[8], uint8_t out[8])
{
    uint32_t l, r;
    scp_des_ip(in, &l, &r);
    scp_des_rounds(&SCP_DES3_OF(d)->ks[0], 0, &l, &r);
    scp_des_rounds(&SCP_DES3_OF(d)->ks[1], 1, &l, &r);
    scp_des_rounds(&SCP_DES3_OF(d)->ks[2], 0, &l, &r);
    scp_des_fp(l, r, out);
}

void scp_des3_decrypt(const scp_des3 *d, const uint8_t in[8], uint8_t out[8])
{
    uint32_t l, r;
    scp_des_ip(in, &l, &r);
    scp_des_rounds(&SCP_DES3_OF(d)->ks[2], 1, &l, &r);
    scp_des_rounds(&SCP_DES3_OF(d)->ks[1], 0, &l, &r);
    scp_des_rounds(&SCP_DES3_OF(d)->ks[0], 1, &l, &r);
    scp_des_fp(l, r, out);
}

int scp_des3_ecb(const scp_des3 *d, int decrypt, const uint8_t *in, size_t len, uint8_t *out)
{
    if (d == NULL || len % 8 != 0 || (len > 0 && (in == NULL || out == NULL)))
        return SCP_E_ARG;
    for (size_t i = 0; i < len; i += 8) {
        if (decrypt)
            scp_des3_decrypt(d, in + i, out + i);
        else
            scp_des3_encrypt(d, in + i, out + i);
    }
    return SCP_OK;
}

int scp_des3_cbc_encrypt(const scp_des3 *d, const uint8_t iv[8], const uint8_t *in, size_t len,
                         uint8_t *out)
{
    uint8_t x[8];
    if (d == NULL || iv == NULL || len % 8 != 0 || (len > 0 && (in == NULL || out == NULL)))
        return SCP_E_ARG;
    memcpy(x, iv, 8);
    for (size_t i = 0; i < len; i += 8) {
        for (int j = 0; j < 8; j++)
            x[j] ^= in[i + j];
        scp_des3_encrypt(d, x, x);
        memcpy(out + i, x, 8);
    }
    scp_wipe(x, sizeof(x));
    return SCP_OK;
}

int scp_des3_cbc_decrypt(const scp_des3 *d, const uint8_t iv[8], const uint8_t *in, size_t len,
                         uint8_t *out)
{
    uint8_t prev[8], ct[8], pt[8];
    if (d == NULL || iv == NULL || len % 8 != 0 || (len > 0 && (in == NULL || out == NULL)))
        return SCP_E_ARG;
    memcpy(prev, iv, 8);
    for (size_t i = 0; i < len; i += 8) {
        memcpy(ct, in + i, 8);
        scp_des3_decrypt(d, ct, pt);
        for (int j = 0; j < 8; j++)
            out[i + j] = pt[j] ^ prev[j];
        memcpy(prev, ct, 8);
    }
    scp_wipe(pt, sizeof(pt));
    return SCP_OK;
}
