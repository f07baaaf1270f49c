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

/* The token's primitives under the shared layouts of src/gp/diversify.c. */
typedef struct tok_prf {
    scp_keystore *ks;
    CK_OBJECT_HANDLE h;
} tok_prf;

static int tok_cmac(void *ctx, const uint8_t *in, size_t len, uint8_t mac[16])
{
    tok_prf *t = ctx;
    size_t ml = 0;
    GUARD(scp_p11_sign(&t->ks->p11, CKM_AES_CMAC, t->h, in, len, mac, 16, &ml));
    return ml == 16 ? SCP_OK : SCP_E_CRYPTO;
}

static int tok_des3(void *ctx, const uint8_t in[16], uint8_t out[16])
{
    tok_prf *t = ctx;
    return scp_p11_encrypt(&t->ks->p11, CKM_DES3_ECB, t->h, in, 16, out, 16);
}

int ks_tok_derive(scp_keystore *ks, CK_OBJECT_HANDLE master, scp_ks_type type,
                  scp_div_scheme s, const uint8_t *kdd, size_t kdd_len, scp03_keys *out)
{
    tok_prf t = { ks, master };
    scp_div_prf prf = { tok_cmac, tok_des3, &t };
    int des = type == SCP_KS_DES2 || type == SCP_KS_DES3;

    /* a 3DES master under an AES scheme, or the reverse, is refused here
     * rather than by the token */
    if ((s == SCP_DIV_EMV || s == SCP_DIV_VISA2) != des)
        prf.cmac = NULL, prf.des3 = NULL;
    return scp_div_derive_prf(s, &prf, kdd, kdd_len,
                              scp_div_default_len(s, scp_ks_type_len(type)), out);
}
