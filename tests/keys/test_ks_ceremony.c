/* Key ceremonies: GF(2^8) arithmetic against a table-driven reference
 * (tables are fine in a test), Shamir 3-of-5 (any 3 rebuild the key, any 2
 * do not, a flipped share byte is caught), XOR components with KCVs,
 * recombination inside the token by unwrapping, and activation by M shares
 * (the quorum must rebuild the key's KCV). */
#include "ks_test.h"
#include "keys/internal.h"
#include "scpkit/crypto.h"

/* Reference: carry-less multiply then reduce by 0x11B, the slow way. */
static uint8_t ref_mul(uint8_t a, uint8_t b)
{
    unsigned r = 0;
    for (int i = 0; i < 8; i++)
        if (b & (1 << i))
            r ^= (unsigned)a << i;
    for (int i = 15; i >= 8; i--)
        if (r & (1u << i))
            r ^= 0x11Bu << (i - 8);
    return (uint8_t)r;
}

static void test_gf(void)
{
    int bad = 0;
    for (unsigned a = 0; a < 256; a++) {
        for (unsigned b = 0; b < 256; b++)
            bad += ks_gf_mul((uint8_t)a, (uint8_t)b) != ref_mul((uint8_t)a, (uint8_t)b);
        if (a != 0)
            bad += ks_gf_mul((uint8_t)a, ks_gf_inv((uint8_t)a)) != 1;
    }
    CHECK(bad == 0);
    CHECK(ks_gf_mul(0x57, 0x83) == 0xC1); /* FIPS 197 section 4.2 example */
    CHECK(ks_gf_inv(0) == 0);
}

static void test_shamir_math(void)
{
    uint8_t secret[32], shares[5 * 32], out[32];
    test_rand_bytes(secret, sizeof(secret));
    CHECK_OK(ks_shamir_split(secret, 32, 3, 5, shares));
    int ok3 = 0, bad2 = 0;
    for (int i = 0; i < 5; i++)
        for (int j = i + 1; j < 5; j++) {
            uint8_t xs2[2] = {(uint8_t)(i + 1), (uint8_t)(j + 1)}, ys2[64];
            memcpy(ys2, shares + 32 * i, 32);
            memcpy(ys2 + 32, shares + 32 * j, 32);
            CHECK_OK(ks_shamir_combine(xs2, ys2, 2, 32, out));
            bad2 += memcmp(out, secret, 32) == 0; /* two shares say nothing */
            for (int k = j + 1; k < 5; k++) {
                uint8_t xs[3] = {(uint8_t)(i + 1), (uint8_t)(j + 1), (uint8_t)(k + 1)}, ys[96];
                memcpy(ys, shares + 32 * i, 32);
                memcpy(ys + 32, shares + 32 * j, 32);
                memcpy(ys + 64, shares + 32 * k, 32);
                CHECK_OK(ks_shamir_combine(xs, ys, 3, 32, out));
                ok3 += memcmp(out, secret, 32) == 0;
            }
        }
    CHECK(ok3 == 10);
    CHECK(bad2 == 0);
    CHECK_RC(ks_shamir_split(secret, 32, 1, 5, shares), SCP_E_ARG);
    CHECK_RC(ks_shamir_split(secret, 32, 6, 5, shares), SCP_E_ARG);
}

static void flip_hex(char *s, size_t pos)
{
    s[pos] = s[pos] == '0' ? '1' : '0';
}

static void test_shamir_token(scp_keystore *ks)
{
    char shares[5][SCP_KS_SHARE_TEXT_MAX];
    scp_ks_key_info k, r;
    CHECK_OK(scp_keystore_split_new(ks, "ceremony", 0, SCP_KS_AES256, 0, 3, 5, shares, &k));
    CHECK(k.state == SCP_KS_PRE_ACTIVATION && strcmp(k.origin, "shamir") == 0);
    /* Any 3 rebuild the key: recombined inside another slot of the token,
     * the token's KCV equals the original's. */
    int n = 0;
    for (int i = 0; i < 5; i++)
        for (int j = i + 1; j < 5; j++)
            for (int l = j + 1; l < 5; l++) {
                const char *three[3] = {shares[i], shares[j], shares[l]};
                CHECK_OK(scp_keystore_combine(ks, "restored", 0, three, 3, k.kcv, &r));
                CHECK_MEM(r.kcv, 3, k.kcv, 3);
                n++;
            }
    CHECK(n == 10);
    /* Any 2 do not. */
    for (int i = 0; i < 5; i++)
        for (int j = i + 1; j < 5; j++) {
            const char *two[2] = {shares[i], shares[j]};
            CHECK_RC(scp_keystore_combine(ks, "restored", 0, two, 2, NULL, &r), SCP_E_AUTH);
        }
    /* The same share twice is not two custodians. */
    const char *dup[3] = {shares[0], shares[0], shares[1]};
    CHECK_RC(scp_keystore_combine(ks, "restored", 0, dup, 3, NULL, &r), SCP_E_ARG);
    /* A flipped byte anywhere in a share (value, index, threshold, check). */
    size_t len = strlen(shares[2]);
    int caught = 0, tries = 0;
    for (size_t pos = 16; pos < len; pos++) {
        char bad[SCP_KS_SHARE_TEXT_MAX];
        memcpy(bad, shares[2], len + 1);
        if (bad[pos] == ':')
            continue;
        flip_hex(bad, pos);
        const char *three[3] = {shares[0], shares[1], bad};
        int rc = scp_keystore_combine(ks, "restored", 0, three, 3, NULL, &r);
        caught += rc == SCP_E_KCV || rc == SCP_E_FORMAT || rc == SCP_E_ARG;
        tries++;
    }
    CHECK(caught == tries && tries > 64);
    /* Activation by quorum: 2 shares refused, 3 from another key refused
     * (wrong KCV), 3 of this key accepted. */
    const char *two[2] = {shares[3], shares[4]};
    CHECK_RC(scp_keystore_activate_shares(ks, "ceremony", k.version, two, 2, "two only"),
             SCP_E_AUTH);
    char other[5][SCP_KS_SHARE_TEXT_MAX];
    scp_ks_key_info o;
    CHECK_OK(scp_keystore_split_new(ks, "other", 0, SCP_KS_AES256, 0, 3, 5, other, &o));
    const char *wrong[3] = {other[0], other[1], other[2]};
    CHECK_RC(scp_keystore_activate_shares(ks, "ceremony", k.version, wrong, 3, "wrong key"),
             SCP_E_KCV);
    CHECK_OK(scp_keystore_get(ks, "ceremony", k.version, &r));
    CHECK(r.state == SCP_KS_PRE_ACTIVATION);
    const char *three[3] = {shares[4], shares[0], shares[2]};
    CHECK_OK(scp_keystore_activate_shares(ks, "ceremony", k.version, three, 3, "quorum met"));
    CHECK_OK(scp_keystore_get(ks, "ceremony", k.version, &r));
    CHECK(r.state == SCP_KS_ACTIVE);
    scp_wipe(shares, sizeof(shares));
}

static void test_xor(scp_keystore *ks)
{
    char comps[3][SCP_KS_SHARE_TEXT_MAX];
    scp_ks_key_info k, r;
    CHECK_OK(scp_keystore_split_new(ks, "xorkey", 0, SCP_KS_DES2, 1, 0, 3, comps, &k));
    CHECK(strcmp(k.origin, "xor") == 0);
    /* Each component carries its own KCV (3DES KCV of the component). */
    for (int i = 0; i < 3; i++) {
        ks_share s;
        uint8_t kcv[3];
        CHECK_OK(ks_share_parse(comps[i], &s));
        CHECK_OK(scp_kcv_des3(s.v, s.len, kcv));
        char want[8];
        snprintf(want, sizeof(want), "%02X%02X%02X", kcv[0], kcv[1], kcv[2]);
        CHECK(strcmp(comps[i] + strlen(comps[i]) - 6, want) == 0);
        scp_wipe(&s, sizeof(s));
    }
    const char *all[3] = {comps[2], comps[0], comps[1]};
    CHECK_OK(scp_keystore_combine(ks, "xor-restored", 0, all, 3, k.kcv, &r));
    CHECK_MEM(r.kcv, 3, k.kcv, 3);
    const char *two[2] = {comps[0], comps[1]};
    CHECK_RC(scp_keystore_combine(ks, "xor-restored", 0, two, 2, NULL, &r), SCP_E_AUTH);
    char bad[SCP_KS_SHARE_TEXT_MAX];
    memcpy(bad, comps[1], sizeof(bad));
    flip_hex(bad, 26); /* inside the component value */
    const char *withbad[3] = {comps[0], bad, comps[2]};
    CHECK_RC(scp_keystore_combine(ks, "xor-restored", 0, withbad, 3, NULL, &r), SCP_E_KCV);
    /* A right-looking set with a wrong expected KCV imports nothing. */
    uint8_t wrong[3] = {k.kcv[0] ^ 1, k.kcv[1], k.kcv[2]};
    CHECK_RC(scp_keystore_combine(ks, "xor-never", 0, all, 3, wrong, &r), SCP_E_KCV);
    CHECK_RC(scp_keystore_get(ks, "xor-never", 0, &r), SCP_E_NOT_FOUND);
    CHECK_OK(scp_keystore_activate_shares(ks, "xorkey", k.version, all, 3, "all custodians"));
    scp_wipe(comps, sizeof(comps));
}

/* The share parser on random mutations of valid shares: never a crash
 * (ASan), never a different share accepted. */
static void test_share_mutations(void)
{
    ks_share s = {0, SCP_KS_AES192, 3, 2, {0}, 24}, got;
    char text[SCP_KS_SHARE_TEXT_MAX], bad[SCP_KS_SHARE_TEXT_MAX + 8];
    int accepted_other = 0, accepted_same = 0;
    for (int kind = 0; kind < 2; kind++) {
        s.xor_scheme = kind;
        test_rand_bytes(s.v, s.len);
        CHECK_OK(ks_share_format(&s, text, sizeof(text)));
        CHECK_OK(ks_share_parse(text, &got));
        CHECK_MEM(got.v, got.len, s.v, s.len);
        size_t len = strlen(text);
        for (int i = 0; i < 3000; i++) {
            memcpy(bad, text, len + 1);
            size_t n = len;
            switch (test_rand_below(3)) {
            case 0: /* change one character */
                bad[test_rand_below(n)] = (char)(0x20 + test_rand_below(0x5f));
                break;
            case 1: /* cut */
                n = test_rand_below(n);
                bad[n] = 0;
                break;
            default: /* insert */
            {
                size_t at = test_rand_below(n + 1);
                memmove(bad + at + 1, bad + at, n + 1 - at);
                bad[at] = (char)(0x20 + test_rand_below(0x5f));
            }
            }
            if (ks_share_parse(bad, &got) == SCP_OK) {
                if (got.len == s.len && memcmp(got.v, s.v, s.len) == 0 && got.x == s.x)
                    accepted_same++; /* e.g. a hex digit's case changed */
                else
                    accepted_other++;
            }
        }
    }
    CHECK(accepted_other == 0);
    (void)accepted_same;
}

int main(void)
{
    test_seed(0x73686172);
    test_gf();
    test_shamir_math();
    test_share_mutations();
    scp_keystore *ks = ks_fresh();
    test_shamir_token(ks);
    test_xor(ks);
    uint64_t n, bad;
    char why[160];
    CHECK_OK(scp_keystore_audit_verify(ks, &n, &bad, why, sizeof(why)));
    scp_keystore_close(ks);
    return test_done("test_ks_ceremony");
}
