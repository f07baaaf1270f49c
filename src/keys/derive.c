/* scpkit keys: static-key diversification with the master key inside the
 * token. The input layouts are those of src/gp/diversify.c (the software
 * reference, tested byte for byte against it in tests/keys):
 * - SP800-108 (Yubico): K_i = CMAC(M, i | 00 00 00 k | 00 | KDD | L(2)),
 *   16-byte card keys (L = 0080);
 * - KDF3 (GlobalPlatformPro): K_i = CMAC(M, i | 00 00 00 k | 00 | KDD),
 *   card keys as long as the master;
 * - EMV CPS 1.1 / VISA2: 3DES-ECB(M, D), D built from the KDD.
 * Each CMAC block is one C_Sign(CKM_AES_CMAC) and each 3DES block one
 * C_Encrypt(CKM_DES3_ECB), so the master never leaves the token; the card
 * keys exist only in *out. SoftHSM2 2.6.1 has no CKM_SP800_108_COUNTER_KDF
 * (PKCS#11 v3.0), so the KDF runs block by block here on every module. */
#include <string.h>
#include "keys/internal.h"
#include "core/guard.h"
#include "scpkit/crypto.h"

static size_t card_key_len(scp_div_scheme s, size_t master_len)
{
    return s == SCP_DIV_KDF3 ? master_len : 16;
}

static int derive_cmac(scp_keystore *ks, CK_OBJECT_HANDLE h, scp_div_scheme s,
                       const uint8_t kdd[10], size_t key_len, uint8_t *keys[3])
{
    uint8_t in[1 + 4 + 1 + 10 + 2] = {0}, mac[16];
    size_t in_len = s == SCP_DIV_SP800_108 ? sizeof(in) : sizeof(in) - 2, ml = 0;
    int rc = SCP_OK;

    memcpy(in + 6, kdd, 10);
    in[16] = (uint8_t)((key_len * 8) >> 8);
    in[17] = (uint8_t)(key_len * 8);
    for (uint8_t k = 1; k <= 3 && rc == SCP_OK; k++) {
        in[4] = k;
        for (size_t off = 0, i = 1; off < key_len && rc == SCP_OK; off += 16, i++) {
            in[0] = (uint8_t)i;
            rc = scp_p11_sign(&ks->p11, CKM_AES_CMAC, h, in, in_len, mac, sizeof(mac), &ml);
            if (rc == SCP_OK && ml != 16)
                rc = SCP_E_CRYPTO;
            if (rc == SCP_OK)
                memcpy(keys[k - 1] + off, mac, key_len - off < 16 ? key_len - off : 16);
        }
    }
    scp_wipe(mac, sizeof(mac));
    return rc;
}

static int derive_des3(scp_keystore *ks, CK_OBJECT_HANDLE h, int visa2, const uint8_t kdd[10],
                       uint8_t *keys[3])
{
    static const uint8_t emv_pick[6] = {4, 5, 6, 7, 8, 9};
    static const uint8_t visa2_pick[6] = {0, 1, 4, 5, 6, 7};
    const uint8_t *pick = visa2 ? visa2_pick : emv_pick;
    uint8_t d[16];
    int rc = SCP_OK;

    for (int j = 0; j < 6; j++)
        d[j] = d[8 + j] = kdd[pick[j]];
    d[6] = 0xF0;
    d[14] = 0x0F;
    for (uint8_t k = 1; k <= 3 && rc == SCP_OK; k++) {
        d[7] = d[15] = k;
        rc = scp_p11_encrypt(&ks->p11, CKM_DES3_ECB, h, d, sizeof(d), keys[k - 1], 16);
    }
    return rc;
}

int ks_tok_derive(scp_keystore *ks, CK_OBJECT_HANDLE master, scp_ks_type type,
                  scp_div_scheme s, const uint8_t *kdd, size_t kdd_len, scp03_keys *out)
{
    uint8_t kvn = out->kvn;
    uint8_t *keys[3] = {out->enc, out->mac, out->dek};
    int des = type == SCP_KS_DES2 || type == SCP_KS_DES3;
    size_t key_len = card_key_len(s, scp_ks_type_len(type));
    int rc;

    ENSURE(kdd != NULL && kdd_len == SCP03_KDD_LEN, SCP_E_ARG);
    scp_wipe(out, sizeof(*out));
    out->kvn = kvn;
    switch (s) {
    case SCP_DIV_SP800_108:
    case SCP_DIV_KDF3:
        ENSURE(!des, SCP_E_UNSUPPORTED);
        rc = derive_cmac(ks, master, s, kdd, key_len, keys);
        break;
    case SCP_DIV_EMV:
    case SCP_DIV_VISA2:
        ENSURE(des, SCP_E_UNSUPPORTED);
        rc = derive_des3(ks, master, s == SCP_DIV_VISA2, kdd, keys);
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
