/* PUT KEY / DELETE KEY key data: known answers, round trips over random
 * keys of every AES length, both accepted forms, and tampered twins. */
#include <string.h>

#include "scpkit/gp.h"
#include "crypto/aes.h"
#include "test.h"

static const uint8_t gpkey[16] = { 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47,
                                   0x48, 0x49, 0x4A, 0x4B, 0x4C, 0x4D, 0x4E, 0x4F };

static void fill_keys(scp03_keys *k, size_t len, uint8_t kvn)
{
    memset(k, 0, sizeof(*k));
    test_rand_bytes(k->enc, len);
    test_rand_bytes(k->mac, len);
    test_rand_bytes(k->dek, len);
    k->key_len = (uint8_t)len;
    k->kvn = kvn;
}

static int keys_eq(const scp03_keys *a, const scp03_keys *b)
{
    return a->key_len == b->key_len && a->kvn == b->kvn &&
           memcmp(a->enc, b->enc, a->key_len) == 0 && memcmp(a->mac, b->mac, a->key_len) == 0 &&
           memcmp(a->dek, b->dek, a->key_len) == 0;
}

static int contains(const uint8_t *hay, size_t n, const uint8_t *needle, size_t m)
{
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0)
            return 1;
    return 0;
}

static int wiped(const scp03_keys *k)
{
    static const scp03_keys zero;
    return memcmp(k, &zero, sizeof(zero)) == 0;
}

/* Known answer: key 404142..4F under DEK 404142..4F. The ciphertext is
 * openjavacard-tools SCP03WrapperTest test_SCP03_70_EncryptSensitive
 * (tests/vectors/scp03_openjavacard.txt), the KCV 504A77 is the AES KCV of
 * 404142..4F in GlobalPlatformPro TestPlaintextKeys (kdf3_gppro.txt). */
static void test_known_answer(void)
{
    static const uint8_t block[] = { 0x88, 0x11, 0x10, 0x80, 0xd2, 0xa5, 0xb0, 0x8f, 0xa0,
                                     0xee, 0x51, 0x14, 0x3b, 0x45, 0x9e, 0x63, 0x81, 0x06,
                                     0xdf, 0x03, 0x50, 0x4A, 0x77 };
    scp03_keys k, got;
    uint8_t out[SCP_GP_PUTKEY_MAX], yk[1 + 3 * 22];
    size_t n;

    memset(&k, 0, sizeof(k));
    memcpy(k.enc, gpkey, 16), memcpy(k.mac, gpkey, 16), memcpy(k.dek, gpkey, 16);
    k.key_len = 16, k.kvn = 0x30;
    CHECK_OK(scp_gp_putkey_build(gpkey, 16, &k, out, sizeof(out), &n));
    CHECK(n == 1 + 3 * sizeof(block) && out[0] == 0x30);
    for (int i = 0; i < 3; i++)
        CHECK_MEM(out + 1 + i * sizeof(block), sizeof(block), block, sizeof(block));
    CHECK_OK(scp_gp_putkey_parse(gpkey, 16, out, n, &got));
    CHECK(keys_eq(&k, &got));
    /* yubikit's form: 88 10 <ct> 03 <kcv>, no key-length byte */
    yk[0] = 0x30;
    for (int i = 0; i < 3; i++) {
        uint8_t *p = yk + 1 + i * 22;
        p[0] = 0x88, p[1] = 0x10;
        memcpy(p + 2, block + 3, sizeof(block) - 3);
    }
    CHECK_OK(scp_gp_putkey_parse(gpkey, 16, yk, sizeof(yk), &got));
    CHECK(keys_eq(&k, &got));
    /* tampered twin of the known answer: the KCV's last byte */
    out[n - 1] ^= 0x01;
    CHECK_RC(scp_gp_putkey_parse(gpkey, 16, out, n, &got), SCP_E_KCV);
    CHECK(wiped(&got));
}

/* Rewrite a built field (all with length bytes) into yubikit's short form. */
static size_t to_short_form(const uint8_t *in, size_t n, size_t key_len, uint8_t *out)
{
    size_t o = 0, i = 1;
    out[o++] = in[0];
    while (i < n) {
        size_t m = in[i + 1] - 1;
        out[o++] = 0x88;
        out[o++] = (uint8_t)m;
        memcpy(out + o, in + i + 3, m + 4);
        o += m + 4;
        i += 3 + m + 4;
    }
    (void)key_len;
    return o;
}

static void test_roundtrip(void)
{
    static const size_t lens[3] = { 16, 24, 32 };
    test_seed(0x9D8);
    for (int it = 0; it < 300; it++) {
        size_t len = lens[it % 3], dlen = lens[(it / 3) % 3], n, sn;
        uint8_t dek[32], out[SCP_GP_PUTKEY_MAX], sf[SCP_GP_PUTKEY_MAX];
        scp03_keys k, got;

        test_rand_bytes(dek, sizeof(dek));
        fill_keys(&k, len, (uint8_t)(1 + test_rand_below(0x7F)));
        CHECK_OK(scp_gp_putkey_build(dek, dlen, &k, out, sizeof(out), &n));
        CHECK(n == 1 + 3 * (3 + ((len + 15) & ~(size_t)15) + 4));
        CHECK(out[1] == 0x88 && out[3] == len);
        /* the clear key never appears in the field */
        CHECK(!contains(out, n, k.enc, len));
        CHECK_OK(scp_gp_putkey_parse(dek, dlen, out, n, &got));
        CHECK(keys_eq(&k, &got));
        if (len != 24) {
            sn = to_short_form(out, n, len, sf);
            CHECK(sn == n - 3);
            CHECK_OK(scp_gp_putkey_parse(dek, dlen, sf, sn, &got));
            CHECK(keys_eq(&k, &got));
        }
        /* tampered twins: any ciphertext byte, the wrong DEK */
        size_t blk = 3 + ((len + 15) & ~(size_t)15) + 4;
        size_t pos = 1 + test_rand_below(3) * blk + 3 + test_rand_below(len);
        out[pos] ^= (uint8_t)(1u << test_rand_below(8));
        CHECK_RC(scp_gp_putkey_parse(dek, dlen, out, n, &got), SCP_E_KCV);
        CHECK(wiped(&got));
        out[pos] = 0;
        CHECK_OK(scp_gp_putkey_build(dek, dlen, &k, out, sizeof(out), &n));
        dek[test_rand_below(dlen)] ^= 0x80;
        CHECK_RC(scp_gp_putkey_parse(dek, dlen, out, n, &got), SCP_E_KCV);
        CHECK(wiped(&got));
    }
}

/* A sender may pad an AES-192 key with random bytes (GlobalPlatformPro's
 * way): the parser keeps the first 24 bytes and ignores the rest. */
static void test_aes192_random_padding(void)
{
    static const uint8_t zero_iv[16];
    uint8_t field[1 + 3 * 39], pt[32], dek[16];
    scp03_keys k, got;
    scp_aes a = { 0 };
    size_t o = 1;

    test_seed(0x192);
    test_rand_bytes(dek, sizeof(dek));
    fill_keys(&k, 24, 0x05);
    field[0] = 0x05;
    CHECK_OK(scp_aes_init(&a, dek, sizeof(dek)));
    const uint8_t *ks[3] = { k.enc, k.mac, k.dek };
    for (int i = 0; i < 3; i++) {
        test_rand_bytes(pt, sizeof(pt));
        memcpy(pt, ks[i], 24);
        field[o++] = 0x88, field[o++] = 0x21, field[o++] = 0x18;
        CHECK_OK(scp_aes_cbc_encrypt(&a, zero_iv, pt, 32, field + o));
        o += 32;
        field[o++] = 0x03;
        CHECK_OK(scp_kcv_aes(ks[i], 24, field + o));
        o += 3;
    }
    scp_aes_clear(&a);
    CHECK(o == sizeof(field));
    CHECK_OK(scp_gp_putkey_parse(dek, sizeof(dek), field, sizeof(field), &got));
    CHECK(keys_eq(&k, &got));
    /* the same field with the length byte saying 16 or 32: refused */
    field[3] = 0x10;
    CHECK_RC(scp_gp_putkey_parse(dek, sizeof(dek), field, sizeof(field), &got), SCP_E_LENGTH);
    field[3] = 0x20;
    CHECK_RC(scp_gp_putkey_parse(dek, sizeof(dek), field, sizeof(field), &got), SCP_E_KCV);
}

static void test_bad_fields(void)
{
    uint8_t out[SCP_GP_PUTKEY_MAX], bad[SCP_GP_PUTKEY_MAX + 4];
    scp03_keys k, got;
    size_t n;

    test_seed(0xBAD);
    fill_keys(&k, 16, 0x01);
    CHECK_OK(scp_gp_putkey_build(gpkey, 16, &k, out, sizeof(out), &n));
    /* every truncation */
    for (size_t l = 0; l < n; l++) {
        int rc = scp_gp_putkey_parse(gpkey, 16, out, l, &got);
        CHECK(rc == SCP_E_TRUNCATED);
        CHECK(wiped(&got));
    }
    /* overlong: a trailing byte after the third key */
    memcpy(bad, out, n);
    bad[n] = 0x00;
    CHECK_RC(scp_gp_putkey_parse(gpkey, 16, bad, n + 1, &got), SCP_E_LENGTH);
    CHECK(wiped(&got));
    /* length byte that fits no AES key: 88 12 .. and 88 11 18 */
    memcpy(bad, out, n);
    bad[2] = 0x12;
    CHECK_RC(scp_gp_putkey_parse(gpkey, 16, bad, n, &got), SCP_E_LENGTH);
    memcpy(bad, out, n);
    bad[3] = 0x18;
    CHECK_RC(scp_gp_putkey_parse(gpkey, 16, bad, n, &got), SCP_E_LENGTH);
    memcpy(bad, out, n);
    bad[2] = 0x81;
    CHECK_RC(scp_gp_putkey_parse(gpkey, 16, bad, n, &got), SCP_E_FORMAT);
    /* KCV length other than 3 */
    memcpy(bad, out, n);
    bad[1 + 3 + 16] = 0x02;
    CHECK_RC(scp_gp_putkey_parse(gpkey, 16, bad, n, &got), SCP_E_FORMAT);
    /* a DES key type */
    memcpy(bad, out, n);
    bad[1] = SCP_GP_KEY_TYPE_DES;
    CHECK_RC(scp_gp_putkey_parse(gpkey, 16, bad, n, &got), SCP_E_UNSUPPORTED);
    CHECK(wiped(&got));
    /* mixed key lengths: a 16-byte and two 32-byte keys */
    uint8_t o32[SCP_GP_PUTKEY_MAX];
    size_t n32;
    scp03_keys k32;
    fill_keys(&k32, 32, 0x01);
    CHECK_OK(scp_gp_putkey_build(gpkey, 16, &k32, o32, sizeof(o32), &n32));
    memcpy(bad, out, 1 + 23);
    memcpy(bad + 24, o32 + 1 + 39, 2 * 39);
    CHECK_RC(scp_gp_putkey_parse(gpkey, 16, bad, 24 + 78, &got), SCP_E_UNSUPPORTED);
    CHECK(wiped(&got));
    /* arguments */
    CHECK_RC(scp_gp_putkey_build(gpkey, 16, &k, out, n - 1, &n), SCP_E_BUFFER_TOO_SMALL);
    CHECK_RC(scp_gp_putkey_build(gpkey, 15, &k, out, sizeof(out), &n), SCP_E_ARG);
    k.key_len = 20;
    CHECK_RC(scp_gp_putkey_build(gpkey, 16, &k, out, sizeof(out), &n), SCP_E_ARG);
    CHECK_RC(scp_gp_putkey_parse(gpkey, 8, out, n, &got), SCP_E_ARG);
    CHECK_RC(scp_gp_putkey_parse(gpkey, 16, NULL, 0, &got), SCP_E_TRUNCATED);
}

static void test_deletekey(void)
{
    static const uint8_t both[] = { 0xD0, 0x01, 0x02, 0xD2, 0x01, 0x30 };
    static const uint8_t rev[] = { 0xD2, 0x01, 0x30, 0xD0, 0x01, 0x02 };
    uint8_t out[8], kvn, kid;
    size_t n;

    CHECK_OK(scp_gp_deletekey_build(0x30, 0x02, out, sizeof(out), &n));
    CHECK_MEM(out, n, both, sizeof(both));
    CHECK_OK(scp_gp_deletekey_build(0x30, 0, out, sizeof(out), &n));
    CHECK_MEM(out, n, both + 3, 3);
    CHECK_OK(scp_gp_deletekey_parse(both, sizeof(both), &kvn, &kid));
    CHECK(kvn == 0x30 && kid == 0x02);
    CHECK_OK(scp_gp_deletekey_parse(rev, sizeof(rev), &kvn, &kid));
    CHECK(kvn == 0x30 && kid == 0x02);
    CHECK_OK(scp_gp_deletekey_parse(both + 3, 3, &kvn, &kid));
    CHECK(kvn == 0x30 && kid == 0);
    CHECK_RC(scp_gp_deletekey_build(0, 0, out, sizeof(out), &n), SCP_E_ARG);
    CHECK_RC(scp_gp_deletekey_build(1, 1, out, 5, &n), SCP_E_BUFFER_TOO_SMALL);
    /* tampered twins */
    static const uint8_t dup[] = { 0xD2, 0x01, 0x30, 0xD2, 0x01, 0x31 };
    static const uint8_t unk[] = { 0xD1, 0x01, 0x30 };
    static const uint8_t len2[] = { 0xD2, 0x02, 0x30, 0x31 };
    static const uint8_t zero[] = { 0xD0, 0x01, 0x00 };
    CHECK_RC(scp_gp_deletekey_parse(dup, sizeof(dup), &kvn, &kid), SCP_E_FORMAT);
    CHECK(kvn == 0 && kid == 0);
    CHECK_RC(scp_gp_deletekey_parse(unk, sizeof(unk), &kvn, &kid), SCP_E_FORMAT);
    CHECK_RC(scp_gp_deletekey_parse(len2, sizeof(len2), &kvn, &kid), SCP_E_LENGTH);
    CHECK_RC(scp_gp_deletekey_parse(zero, sizeof(zero), &kvn, &kid), SCP_E_FORMAT);
    CHECK_RC(scp_gp_deletekey_parse(both, 0, &kvn, &kid), SCP_E_FORMAT);
    CHECK_RC(scp_gp_deletekey_parse(both, 5, &kvn, &kid), SCP_E_TRUNCATED);
    CHECK_RC(scp_gp_deletekey_parse(both, 4, &kvn, &kid), SCP_E_TRUNCATED);
}

int main(void)
{
    test_known_answer();
    test_roundtrip();
    test_aes192_random_padding();
    test_bad_fields();
    test_deletekey();
    return test_done("test_gp_putkey");
}
