/* Static-key diversification: one master key and the card's key
 * diversification data (KDD, the first 10 bytes of the INITIALIZE UPDATE
 * response) give the card's ENC, MAC and DEK (key usage k = 1, 2, 3).
 *
 * Where each scheme's layout comes from:
 * - SP800-108 (Yubico, "Yubico Secure Channel Technical Description",
 *   Key Diversification Function): AES-CMAC counter-mode KDF,
 *   K_i = CMAC(BMK, i | label(4) | 00 | context(10) | L(2)), label
 *   00 00 00 0k (ENC/DAK 1, MAC/DMK 2, DEK 3), context = KDD, L = derived
 *   key length in bits (0080 for the 16-byte ISD keys), i = 01, 02 for
 *   keys longer than one block.
 * - KDF3 (GlobalPlatformPro, PlaintextKeys.kdf_templates "kdf3" =
 *   "$_ 00 00 00 $k 00 $0..$9", fed to GPCrypto.scp03_kdf(master, a, b,
 *   master length), i.e. BouncyCastle's KDFCounterBytesGenerator with an
 *   8-bit counter between the empty block a and block b):
 *   K_i = CMAC(master, i | 00 00 00 k | 00 | KDD), no L field, as long as
 *   the master key.
 * - EMV CPS 1.1 and VISA2 (GlobalPlatformPro kdf_templates "emv" and
 *   "visa2", fed to GPCrypto.des3_ecb(template, master)): the card key is
 *   3DES-ECB(master, D) with
 *     EMV:   D = KDD[4..9] F0 k KDD[4..9] 0F k
 *     VISA2: D = KDD[0..1] KDD[4..7] F0 k KDD[0..1] KDD[4..7] 0F k.
 * The known answers in tests/gp (GPPro TestPlaintextKeys, openjavacard
 * SCPDiversificationTest) pin every byte of these layouts. */
#include <string.h>

#include "scpkit/gp.h"
#include "crypto/aes.h"
#include "core/guard.h"

static const struct {
    const char *name;
    scp_div_scheme s;
} div_names[] = {
    { "none", SCP_DIV_NONE },   { "sp800-108", SCP_DIV_SP800_108 },
    { "kdf3", SCP_DIV_KDF3 },   { "emv", SCP_DIV_EMV },
    { "visa2", SCP_DIV_VISA2 },
};

int scp_div_parse(const char *name, scp_div_scheme *out)
{
    ENSURE(name != NULL && out != NULL, SCP_E_ARG);
    for (size_t i = 0; i < sizeof(div_names) / sizeof(div_names[0]); i++) {
        if (strcmp(name, div_names[i].name) == 0) {
            *out = div_names[i].s;
            return SCP_OK;
        }
    }
    return SCP_E_NOT_FOUND;
}

const char *scp_div_name(scp_div_scheme s)
{
    for (size_t i = 0; i < sizeof(div_names) / sizeof(div_names[0]); i++)
        if (div_names[i].s == s)
            return div_names[i].name;
    return "unknown";
}

static int aes_len_ok(size_t n) { return n == 16 || n == 24 || n == 32; }

/* The AES schemes: block i of key k = CMAC(master, i | 00 00 00 k | 00 |
 * KDD [| L]), i from 1, as many blocks as key_len needs. */
static int derive_aes(const scp_div_prf *prf, const uint8_t kdd[10], int with_l,
                      size_t key_len, uint8_t *keys[3])
{
    uint8_t in[1 + 4 + 1 + 10 + 2] = { 0 }, mac[16];
    size_t in_len = with_l ? sizeof(in) : sizeof(in) - 2;
    int rc = SCP_OK;

    memcpy(in + 6, kdd, 10);
    in[16] = (uint8_t)((key_len * 8) >> 8);
    in[17] = (uint8_t)(key_len * 8);
    for (uint8_t k = 1; k <= 3 && rc == SCP_OK; k++) {
        in[4] = k;
        for (size_t off = 0; off < key_len && rc == SCP_OK; off += 16) {
            in[0] = (uint8_t)(off / 16 + 1);
            rc = prf->cmac(prf->ctx, in, in_len, mac);
            if (rc == SCP_OK)
                memcpy(keys[k - 1] + off, mac, key_len - off < 16 ? key_len - off : 16);
        }
    }
    scp_wipe(mac, sizeof(mac));
    return rc;
}

/* The 3DES schemes: 3DES-ECB(master, six KDD bytes | F0 k | same | 0F k). */
static int derive_des3(const scp_div_prf *prf, const uint8_t kdd[10], int visa2,
                       uint8_t *keys[3])
{
    static const uint8_t emv_pick[6] = { 4, 5, 6, 7, 8, 9 };
    static const uint8_t visa2_pick[6] = { 0, 1, 4, 5, 6, 7 };
    const uint8_t *pick = visa2 ? visa2_pick : emv_pick;
    uint8_t d[16];
    int rc = SCP_OK;

    for (int j = 0; j < 6; j++)
        d[j] = d[8 + j] = kdd[pick[j]];
    d[6] = 0xF0;
    d[14] = 0x0F;
    for (uint8_t k = 1; k <= 3 && rc == SCP_OK; k++) {
        d[7] = d[15] = k;
        rc = prf->des3(prf->ctx, d, keys[k - 1]);
    }
    scp_wipe(d, sizeof(d));
    return rc;
}

/* A refused request: *out wiped but for its KVN. */
static int refuse(scp03_keys *out)
{
    uint8_t kvn = out->kvn;
    scp_wipe(out, sizeof(*out));
    out->kvn = kvn;
    return SCP_E_ARG;
}

int scp_div_derive_prf(scp_div_scheme s, const scp_div_prf *prf, const uint8_t *kdd,
                       size_t kdd_len, size_t key_len, scp03_keys *out)
{
    uint8_t kvn;
    uint8_t *keys[3];
    int rc;

    ENSURE(out != NULL && prf != NULL, SCP_E_ARG);
    kvn = out->kvn;
    (void)refuse(out);
    keys[0] = out->enc, keys[1] = out->mac, keys[2] = out->dek;
    if (kdd == NULL || kdd_len != SCP03_KDD_LEN)
        return SCP_E_ARG;
    switch (s) {
    case SCP_DIV_SP800_108:
    case SCP_DIV_KDF3:
        if (prf->cmac == NULL || !aes_len_ok(key_len))
            return SCP_E_ARG;
        rc = derive_aes(prf, kdd, s == SCP_DIV_SP800_108, key_len, keys);
        break;
    case SCP_DIV_EMV:
    case SCP_DIV_VISA2:
        if (prf->des3 == NULL || key_len != 16)
            return SCP_E_ARG;
        rc = derive_des3(prf, kdd, s == SCP_DIV_VISA2, keys);
        break;
    default:
        return SCP_E_ARG;
    }
    out->key_len = (uint8_t)key_len;
    if (rc < 0) {
        scp_wipe(out, sizeof(*out));
        out->kvn = kvn;
    }
    return rc;
}

/* The in-process primitives: a kept AES key, or the 3DES master's bytes. */
typedef struct soft_prf {
    scp_aes aes;
    const uint8_t *des_key;
    size_t des_key_len;
} soft_prf;

static int soft_cmac(void *ctx, const uint8_t *in, size_t len, uint8_t mac[16])
{
    return scp_cmac_once(&((soft_prf *)ctx)->aes, in, len, mac);
}

static int soft_des3(void *ctx, const uint8_t in[16], uint8_t out[16])
{
    const soft_prf *p = ctx;
    return scp_des3_ecb_encrypt(p->des_key, p->des_key_len, in, 16, out);
}

int scp_div_derive_len(scp_div_scheme s, const uint8_t *master, size_t master_len,
                       const uint8_t *kdd, size_t kdd_len, size_t key_len, scp03_keys *out)
{
    soft_prf sp;
    scp_div_prf prf = { soft_cmac, soft_des3, &sp };
    int rc;

    ENSURE(out != NULL && master != NULL, SCP_E_ARG);
    memset(&sp, 0, sizeof(sp));
    switch (s) {
    case SCP_DIV_NONE:
        if (!aes_len_ok(master_len) || key_len != master_len)
            break;
        (void)refuse(out);
        memcpy(out->enc, master, master_len);
        memcpy(out->mac, master, master_len);
        memcpy(out->dek, master, master_len);
        out->key_len = (uint8_t)key_len;
        return SCP_OK;
    case SCP_DIV_SP800_108:
    case SCP_DIV_KDF3:
        if (!aes_len_ok(master_len) || scp_aes_init(&sp.aes, master, master_len) != SCP_OK)
            break;
        rc = scp_div_derive_prf(s, &prf, kdd, kdd_len, key_len, out);
        scp_aes_clear(&sp.aes);
        return rc;
    case SCP_DIV_EMV:
    case SCP_DIV_VISA2:
        if (master_len != 16 && master_len != 24)
            break;
        sp.des_key = master, sp.des_key_len = master_len;
        return scp_div_derive_prf(s, &prf, kdd, kdd_len, key_len, out);
    default:
        break;
    }
    return refuse(out);
}

size_t scp_div_default_len(scp_div_scheme s, size_t master_len)
{
    switch (s) {
    case SCP_DIV_SP800_108: /* Yubico: ISD keys are AES-128, L = 0080 */
    case SCP_DIV_EMV:
    case SCP_DIV_VISA2:
        return 16;
    default: /* none, KDF3: as long as the master key (GPPro) */
        return master_len;
    }
}

int scp_div_derive(scp_div_scheme s, const uint8_t *master, size_t master_len,
                   const uint8_t *kdd, size_t kdd_len, scp03_keys *out)
{
    return scp_div_derive_len(s, master, master_len, kdd, kdd_len,
                              scp_div_default_len(s, master_len), out);
}
