/* No long-term key left on the stack: a full SCP03 handshake (host and
 * card, level 33) on whichever AES path is chosen, then one protected
 * exchange each way with data (C-DEC, C-MAC, R-ENC, R-MAC), both sessions
 * ended, then the stack below this frame is searched for every round key
 * of the static Key-ENC and Key-MAC (round key 0 is the key; the last one
 * gives it back too), of the session's S-MAC (which a one-shot CMAC once
 * spilled on the AES-192 path, handing it to a lazily bound memcpy), and
 * of S-ENC and S-RMAC, which the session keeps raw and every wrap and
 * unwrap expands on its stack (scp_aes_open) and must wipe. The batched AES-NI derivation keeps more values live than
 * there are registers, so the compiler spills round keys to the stack;
 * nothing may be left there once the call returns. Run twice by CTest:
 * as the process starts (lazy symbol binding, whose resolver saves vector
 * registers on the stack) and with LD_BIND_NOW=1. Built without
 * sanitizers only: they move locals off the native stack. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "scpkit/crypto.h"
#include "crypto/aes.h"
#include "scpkit/scp03.h"
#include "test.h"

#define SCAN 65536
#define MAX_PATTERNS 96

static uint8_t patterns[MAX_PATTERNS][16];
static int n_patterns;
static uint8_t copy[SCAN];
static scp03_session host, card;

/* Reading a fresh local array on purpose: it is the stack the calls before
 * left behind. */
#pragma GCC diagnostic ignored "-Wuninitialized"
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"

__attribute__((noinline)) static void paint(void)
{
    volatile uint8_t b[SCAN];
    for (size_t i = 0; i < SCAN; i++)
        b[i] = 0xA5;
}

/* Counts pattern hits in the SCAN bytes below the caller's frame. */
__attribute__((noinline)) static int scan(void)
{
    volatile uint8_t b[SCAN];
    int hits = 0;
    for (size_t i = 0; i < SCAN; i++)
        copy[i] = b[i];
    for (size_t off = 0; off + 16 <= SCAN; off++)
        for (int p = 0; p < n_patterns; p++)
            if (memcmp(copy + off, patterns[p], 16) == 0) {
                if (getenv("SCP_RESIDUE_DEBUG"))
                    printf("  pattern %d at %zu below\n", p, SCAN - off);
                hits++;
            }
    return hits;
}

/* The session's S-MAC round keys too (AES-NI path, where they are in
 * rk): copied a byte at a time through a volatile pointer, so the copy
 * itself leaves nothing in vector registers for a later call to save. */
static void session_patterns(const scp_aes *a)
{
    const volatile uint8_t *rk = a->u.rk;
    for (int r = 0; r <= a->nr && n_patterns < MAX_PATTERNS; r++, n_patterns++)
        for (int b = 0; b < 16; b++)
            patterns[n_patterns][b] = rk[16 * r + b];
}

static void round_keys(const uint8_t *key, size_t key_len);

/* The round keys of a key the session keeps raw (AES-NI path). */
static void raw_patterns(const scp_aes_raw *r)
{
    const volatile uint8_t *src = r->u.key;
    uint8_t key[32];
    if (r->ossl)
        return;
    for (size_t b = 0; b < r->key_len; b++)
        key[b] = src[b];
    round_keys(key, r->key_len);
    scp_wipe(key, sizeof(key));
}

/* 40 bytes each way at level 33: the host wraps (S-ENC, S-MAC), the card
 * unwraps (S-ENC, S-MAC), wraps (S-ENC, S-RMAC), the host unwraps
 * (S-ENC, S-RMAC). */
static int exchange(void)
{
    static uint8_t cmd[64], wire[128], plain[128];
    size_t wl, pl;
    int rc;
    cmd[0] = 0x80, cmd[1] = 0xE2, cmd[2] = 0, cmd[3] = 0, cmd[4] = 40, cmd[45] = 0;
    for (int b = 0; b < 40; b++)
        cmd[5 + b] = (uint8_t)(b * 7);
    rc = scp03_host_wrap(&host, cmd, 46, wire, sizeof(wire), &wl);
    if (rc == SCP_OK)
        rc = scp03_card_unwrap(&card, wire, wl, plain, sizeof(plain), &pl);
    if (rc == SCP_OK && (pl != 46 || memcmp(plain, cmd, 46) != 0))
        rc = -100;
    if (rc == SCP_OK)
        rc = scp03_card_wrap(&card, cmd + 5, 40, 0x9000, wire, sizeof(wire), &wl);
    if (rc == SCP_OK)
        rc = scp03_host_unwrap(&host, wire, wl, plain, sizeof(plain), &pl);
    if (rc == SCP_OK && (pl != 42 || memcmp(plain, cmd + 5, 40) != 0))
        rc = -101;
    return rc;
}

__attribute__((noinline)) static int handshake(const scp03_keys *k, uint8_t i_param)
{
    static const uint8_t sd_aid[] = { 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00 };
    scp03_card_params prm = { .i = i_param, .seq = 1, .aid = sd_aid, .aid_len = sizeof(sd_aid) };
    int rc;

    memset(prm.kdd, 0x11, sizeof(prm.kdd));
    rc = test_pair_open(&host, &card, k, k, &prm, NULL, 0x33);
    if (rc == SCP_OK && SCP_AES_OF(&host.s_mac)->fast) {
        session_patterns(SCP_AES_OF(&host.s_mac));
        raw_patterns(SCP_RAW_OF(&host.s_enc));
        raw_patterns(SCP_RAW_OF(&host.s_rmac));
    }
    if (rc == SCP_OK)
        rc = exchange();
    scp03_end(&host);
    scp03_end(&card);
    return rc;
}

/* FIPS 197 5.2, written out here so the patterns do not come from the
 * code under test (and exist on the OpenSSL path too). */
static const uint8_t sbox[256] = {
    0x63, 0x7c, 0x77, 0x7b, 0xf2, 0x6b, 0x6f, 0xc5, 0x30, 0x01, 0x67, 0x2b, 0xfe, 0xd7, 0xab, 0x76,
    0xca, 0x82, 0xc9, 0x7d, 0xfa, 0x59, 0x47, 0xf0, 0xad, 0xd4, 0xa2, 0xaf, 0x9c, 0xa4, 0x72, 0xc0,
    0xb7, 0xfd, 0x93, 0x26, 0x36, 0x3f, 0xf7, 0xcc, 0x34, 0xa5, 0xe5, 0xf1, 0x71, 0xd8, 0x31, 0x15,
    0x04, 0xc7, 0x23, 0xc3, 0x18, 0x96, 0x05, 0x9a, 0x07, 0x12, 0x80, 0xe2, 0xeb, 0x27, 0xb2, 0x75,
    0x09, 0x83, 0x2c, 0x1a, 0x1b, 0x6e, 0x5a, 0xa0, 0x52, 0x3b, 0xd6, 0xb3, 0x29, 0xe3, 0x2f, 0x84,
    0x53, 0xd1, 0x00, 0xed, 0x20, 0xfc, 0xb1, 0x5b, 0x6a, 0xcb, 0xbe, 0x39, 0x4a, 0x4c, 0x58, 0xcf,
    0xd0, 0xef, 0xaa, 0xfb, 0x43, 0x4d, 0x33, 0x85, 0x45, 0xf9, 0x02, 0x7f, 0x50, 0x3c, 0x9f, 0xa8,
    0x51, 0xa3, 0x40, 0x8f, 0x92, 0x9d, 0x38, 0xf5, 0xbc, 0xb6, 0xda, 0x21, 0x10, 0xff, 0xf3, 0xd2,
    0xcd, 0x0c, 0x13, 0xec, 0x5f, 0x97, 0x44, 0x17, 0xc4, 0xa7, 0x7e, 0x3d, 0x64, 0x5d, 0x19, 0x73,
    0x60, 0x81, 0x4f, 0xdc, 0x22, 0x2a, 0x90, 0x88, 0x46, 0xee, 0xb8, 0x14, 0xde, 0x5e, 0x0b, 0xdb,
    0xe0, 0x32, 0x3a, 0x0a, 0x49, 0x06, 0x24, 0x5c, 0xc2, 0xd3, 0xac, 0x62, 0x91, 0x95, 0xe4, 0x79,
    0xe7, 0xc8, 0x37, 0x6d, 0x8d, 0xd5, 0x4e, 0xa9, 0x6c, 0x56, 0xf4, 0xea, 0x65, 0x7a, 0xae, 0x08,
    0xba, 0x78, 0x25, 0x2e, 0x1c, 0xa6, 0xb4, 0xc6, 0xe8, 0xdd, 0x74, 0x1f, 0x4b, 0xbd, 0x8b, 0x8a,
    0x70, 0x3e, 0xb5, 0x66, 0x48, 0x03, 0xf6, 0x0e, 0x61, 0x35, 0x57, 0xb9, 0x86, 0xc1, 0x1d, 0x9e,
    0xe1, 0xf8, 0x98, 0x11, 0x69, 0xd9, 0x8e, 0x94, 0x9b, 0x1e, 0x87, 0xe9, 0xce, 0x55, 0x28, 0xdf,
    0x8c, 0xa1, 0x89, 0x0d, 0xbf, 0xe6, 0x42, 0x68, 0x41, 0x99, 0x2d, 0x0f, 0xb0, 0x54, 0xbb, 0x16,
};

static void round_keys(const uint8_t *key, size_t key_len)
{
    uint8_t w[60][4], rcon = 1;
    size_t nk = key_len / 4, total = 4 * (nk + 7);

    memcpy(w, key, key_len);
    for (size_t i = nk; i < total; i++) {
        uint8_t t[4];
        memcpy(t, w[i - 1], 4);
        if (i % nk == 0) {
            uint8_t t0 = t[0];
            t[0] = (uint8_t)(sbox[t[1]] ^ rcon), t[1] = sbox[t[2]], t[2] = sbox[t[3]];
            t[3] = sbox[t0];
            rcon = (uint8_t)((rcon << 1) ^ ((rcon >> 7) * 0x1b));
        } else if (nk > 6 && i % nk == 4) {
            for (int b = 0; b < 4; b++)
                t[b] = sbox[t[b]];
        }
        for (int b = 0; b < 4; b++)
            w[i][b] = (uint8_t)(w[i - nk][b] ^ t[b]);
    }
    for (size_t r = 0; r < total / 4 && n_patterns < MAX_PATTERNS; r++)
        memcpy(patterns[n_patterns++], w[4 * r], 16);
    scp_wipe(w, sizeof(w));
}

static void one(size_t key_len, uint8_t i_param)
{
    scp03_keys k;
    int rc, hits;

    memset(&k, 0, sizeof(k));
    test_rand_bytes(k.enc, key_len);
    test_rand_bytes(k.mac, key_len);
    test_rand_bytes(k.dek, key_len);
    k.key_len = (uint8_t)key_len;
    k.kvn = 0x30;
    n_patterns = 0;
    round_keys(k.enc, key_len);
    round_keys(k.mac, key_len);
    paint();
    rc = handshake(&k, i_param);
    hits = scan();
    CHECK_OK(rc);
    if (hits != 0)
        printf("AES-%zu i=%02X: %d static or session round keys left on the stack\n", key_len * 8,
               i_param, hits);
    CHECK(hits == 0);
    memset(patterns, 0, sizeof(patterns));
    scp_wipe(&k, sizeof(k));
}

/* The patterns are right: on the AES-NI path they equal the library's
 * own schedule, for each key size. */
static void check_patterns(void)
{
    uint8_t key[32];
    scp_aes a;
    if (strcmp(scp_aes_impl(), "aesni") != 0)
        return;
    for (size_t kl = 16; kl <= 32; kl += 8) {
        test_rand_bytes(key, kl);
        n_patterns = 0;
        round_keys(key, kl);
        memset(&a, 0, sizeof(a));
        CHECK_OK(scp_aes_init(&a, key, kl));
        CHECK(n_patterns == a.nr + 1);
        for (int r = 0; r < n_patterns; r++)
            CHECK_MEM(patterns[r], 16, a.u.rk + 16 * r, 16);
        scp_aes_clear(&a);
    }
}

int main(void)
{
    test_seed(7);
    printf("aes implementation: %s\n", scp_aes_impl());
    check_patterns();
    for (size_t kl = 16; kl <= 32; kl += 8) {
        one(kl, 0x60);
        one(kl, 0x71);
    }
    return test_done("test_stack_residue");
}
