/* scpkit keys: key ceremonies' secret sharing.
 * - Shamir M-of-N (Shamir 1979, "How to share a secret") byte by byte over
 *   GF(2^8) with the AES polynomial. The arithmetic is bitwise and branch-
 *   free (no log/exp tables indexed by secret bytes, which would leak
 *   through the cache); only the public share indexes x select work.
 * - XOR components: n-1 random components and secret ^ all of them.
 * Each share's text carries its own check (4 bytes of SHA-256 over the
 * share's text for Shamir, the component's KCV for XOR), so a mistyped
 * share is refused before it is combined. */
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "keys/internal.h"
#include "core/guard.h"
#include "scpkit/crypto.h"
#include "crypto/aes.h"

uint8_t ks_gf_mul(uint8_t a, uint8_t b)
{
    uint8_t r = 0;
    for (int i = 0; i < 8; i++) {
        r ^= (uint8_t)(-(b & 1) & a);
        uint8_t hi = (uint8_t)(-(a >> 7));
        a = (uint8_t)((a << 1) ^ (hi & 0x1B));
        b >>= 1;
    }
    return r;
}

/* a^254 = a^-1 (and 0 -> 0), square-and-multiply over the public exponent. */
uint8_t ks_gf_inv(uint8_t a)
{
    uint8_t r = 1;
    for (int bit = 7; bit >= 0; bit--) {
        r = ks_gf_mul(r, r);
        if ((254 >> bit) & 1)
            r = ks_gf_mul(r, a);
    }
    return r;
}

int ks_shamir_split(const uint8_t *secret, size_t len, unsigned m, unsigned n, uint8_t *shares)
{
    uint8_t coef[255];
    ENSURE(secret != NULL && shares != NULL && len > 0, SCP_E_ARG);
    ENSURE(m >= 2 && m <= n && n <= 255, SCP_E_ARG);
    int rc = SCP_OK;
    for (size_t j = 0; j < len && rc == SCP_OK; j++) {
        coef[0] = secret[j];
        rc = scp_random(coef + 1, m - 1);
        for (unsigned x = 1; x <= n && rc == SCP_OK; x++) {
            uint8_t y = 0; /* Horner: f(x) = (..(c_{m-1} x + c_{m-2}) x ..) + c_0 */
            for (unsigned k = m; k-- > 0;)
                y = (uint8_t)(ks_gf_mul(y, (uint8_t)x) ^ coef[k]);
            shares[(size_t)(x - 1) * len + j] = y;
        }
    }
    scp_wipe(coef, sizeof(coef));
    if (rc != SCP_OK)
        scp_wipe(shares, (size_t)n * len);
    return rc;
}

int ks_shamir_combine(const uint8_t *xs, const uint8_t *shares, size_t k, size_t len,
                      uint8_t *secret)
{
    ENSURE(xs != NULL && shares != NULL && secret != NULL && k >= 1 && k <= 255, SCP_E_ARG);
    memset(secret, 0, len);
    for (size_t i = 0; i < k; i++) {
        /* Lagrange basis at 0: l_i = prod_{j != i} x_j / (x_j - x_i); in
         * GF(2^8) subtraction is XOR. Depends on public indexes only. */
        uint8_t l = 1;
        ENSURE(xs[i] != 0, SCP_E_ARG);
        for (size_t j = 0; j < k; j++) {
            if (j == i)
                continue;
            ENSURE(xs[j] != xs[i], SCP_E_ARG);
            l = ks_gf_mul(l, ks_gf_mul(xs[j], ks_gf_inv((uint8_t)(xs[j] ^ xs[i]))));
        }
        for (size_t b = 0; b < len; b++)
            secret[b] ^= ks_gf_mul(shares[i * len + b], l);
    }
    return SCP_OK;
}

int ks_kcv_soft(scp_ks_type t, const uint8_t *v, size_t len, uint8_t kcv[3])
{
    if (scp_ks_type_is_ec(t)) /* v: the PKCS#8 value */
        return ks_kcv_soft_ec(v, len, kcv);
    if (t == SCP_KS_DES2 || t == SCP_KS_DES3)
        return scp_kcv_des3(v, len, kcv);
    return scp_kcv_aes(v, len, kcv);
}

int ks_kcv_soft_kind(scp_ks_type t, int cmac_kind, const uint8_t *v, size_t len, uint8_t kcv[3])
{
    uint8_t in[16], mac[16];
    scp_aes a = {0};
    if (!cmac_kind)
        return ks_kcv_soft(t, v, len, kcv);
    ENSURE(t != SCP_KS_DES2 && t != SCP_KS_DES3, SCP_E_ARG);
    memset(in, 0x01, sizeof(in));
    GUARD(scp_aes_init(&a, v, len));
    int rc = scp_cmac_once(&a, in, sizeof(in), mac);
    scp_aes_clear(&a);
    memcpy(kcv, mac, 3);
    scp_wipe(mac, sizeof(mac));
    return rc;
}

static void hex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02X", p[i]);
}

static int unhex(const char *s, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        char b[3] = {s[2 * i], s[2 * i + 1], 0};
        char *end;
        ENSURE(b[0] != 0 && b[1] != 0, SCP_E_FORMAT);
        v = (unsigned)strtoul(b, &end, 16);
        ENSURE(*end == 0, SCP_E_FORMAT);
        out[i] = (uint8_t)v;
    }
    return SCP_OK;
}

static void share_check(const char *prefix, size_t n, uint8_t chk[4])
{
    uint8_t d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)prefix, n, d);
    memcpy(chk, d, 4);
}

int ks_share_format(const ks_share *s, char *out, size_t out_size)
{
    char h[2 * SCP_KS_MAX_KEY + 1];
    uint8_t chk[4];
    int rc = SCP_OK;
    ENSURE(s->len <= SCP_KS_MAX_KEY, SCP_E_ARG);
    hex(s->v, s->len, h);
    int n = snprintf(out, out_size, "scpkit-%s-1:%s:%u:%u:%s:", s->xor_scheme ? "xor" : "shamir",
                     scp_ks_type_name(s->type), s->m, s->x, h);
    scp_wipe(h, sizeof(h));
    ENSURE(n > 0 && (size_t)n + 9 < out_size, SCP_E_BUFFER_TOO_SMALL);
    chk[3] = 0;
    if (s->xor_scheme)
        rc = ks_kcv_soft(s->type, s->v, s->len, chk);
    else
        share_check(out, (size_t)n, chk);
    hex(chk, s->xor_scheme ? 3 : 4, out + n);
    return rc;
}

/* "scpkit-<kind>-1:<type>:<m>:<x>:<hex>:<check>" */
int ks_share_parse(const char *text, ks_share *s)
{
    char type[16], h[2 * SCP_KS_MAX_KEY + 2], c[16];
    uint8_t chk[4], want[4];
    int rc = SCP_OK, used = 0;
    memset(s, 0, sizeof(*s));
    ENSURE(text != NULL && strlen(text) < SCP_KS_SHARE_TEXT_MAX, SCP_E_FORMAT);
    if (strncmp(text, "scpkit-xor-1:", 13) == 0)
        s->xor_scheme = 1;
    else
        ENSURE(strncmp(text, "scpkit-shamir-1:", 16) == 0, SCP_E_FORMAT);
    const char *p = text + (s->xor_scheme ? 13 : 16);
    ENSURE(sscanf(p, "%15[a-z0-9]:%u:%u:%65[0-9A-Fa-f]:%15[0-9A-Fa-f]%n", type, &s->m, &s->x, h,
                  c, &used) == 5 &&
               p[used] == 0,
           SCP_E_FORMAT);
    GUARD_GOTO(scp_ks_type_parse(type, &s->type), done);
    rc = SCP_E_FORMAT;
    if (scp_ks_type_is_ec(s->type)) /* EC keys are never shared out */
        goto done;
    s->len = scp_ks_type_len(s->type);
    rc = SCP_E_FORMAT;
    if (strlen(h) != 2 * s->len || strlen(c) != (s->xor_scheme ? 6u : 8u) || s->x < 1 ||
        s->x > 255 || s->m < (s->xor_scheme ? 1u : 2u) || s->m > 255 ||
        (s->xor_scheme && s->x > s->m))
        goto done;
    GUARD_GOTO(unhex(h, s->len, s->v), done);
    GUARD_GOTO(unhex(c, s->xor_scheme ? 3 : 4, want), done);
    if (s->xor_scheme)
        GUARD_GOTO(ks_kcv_soft(s->type, s->v, s->len, chk), done);
    else
        share_check(text, (size_t)(strrchr(text, ':') - text) + 1, chk);
    rc = scp_ct_eq(chk, want, s->xor_scheme ? 3 : 4) ? SCP_OK : SCP_E_KCV;
done:
    scp_wipe(h, sizeof(h));
    if (rc != SCP_OK)
        scp_wipe(s, sizeof(*s));
    return rc;
}

/* Parse every share (each checked) and recombine. */
int ks_shares_combine(const char *const *texts, size_t n, scp_ks_type *type, uint8_t *secret,
                      size_t *len)
{
    ks_share sh;
    uint8_t xs[255], ys[255 * SCP_KS_MAX_KEY];
    ks_share first = {0};
    int rc = SCP_OK;
    ENSURE(texts != NULL && n >= 1 && n <= 255, SCP_E_ARG);
    for (size_t i = 0; i < n && rc == SCP_OK; i++) {
        rc = ks_share_parse(texts[i], &sh);
        if (rc == SCP_OK && i == 0)
            first = sh;
        if (rc == SCP_OK && (sh.xor_scheme != first.xor_scheme || sh.type != first.type ||
                             sh.m != first.m))
            rc = SCP_E_ARG; /* shares of different splits */
        for (size_t j = 0; j < i && rc == SCP_OK; j++)
            if (xs[j] == sh.x)
                rc = SCP_E_ARG; /* the same share twice */
        if (rc == SCP_OK) {
            xs[i] = (uint8_t)sh.x;
            memcpy(ys + i * sh.len, sh.v, sh.len);
        }
    }
    /* Shamir needs m shares; XOR needs every one of its m components. */
    if (rc == SCP_OK && (first.xor_scheme ? n != first.m : n < first.m))
        rc = SCP_E_AUTH;
    if (rc == SCP_OK && first.xor_scheme) {
        memset(secret, 0, first.len);
        for (size_t i = 0; i < n; i++)
            for (size_t b = 0; b < first.len; b++)
                secret[b] ^= ys[i * first.len + b];
    } else if (rc == SCP_OK) {
        rc = ks_shamir_combine(xs, ys, n, first.len, secret);
    }
    *type = first.type;
    *len = first.len;
    scp_wipe(&sh, sizeof(sh));
    scp_wipe(&first, sizeof(first));
    scp_wipe(ys, sizeof(ys));
    return rc;
}
