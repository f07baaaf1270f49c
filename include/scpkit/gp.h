/* scpkit: GlobalPlatform key management data (GPC 11.8 PUT KEY, 11.5
 * DELETE KEY, Amd D 7.2 AES key data) and static-key diversification
 * schemes. */
#ifndef SCPKIT_GP_H
#define SCPKIT_GP_H

#include <stddef.h>
#include <stdint.h>
#include "scpkit/scp03.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SCP_GP_KEY_TYPE_AES 0x88
#define SCP_GP_KEY_TYPE_DES 0x80
/* KVN | 3 x (88 L n <key up to 32> 03 <kcv>) */
#define SCP_GP_PUTKEY_MAX (1 + 3 * (3 + 32 + 1 + 3))

/* PUT KEY data field for a new AES key set (ENC, MAC, DEK; key ids 1,2,3),
 * each key encrypted under the current static DEK (AES-CBC, zero IV) with
 * its KCV: new_kvn | 88 (n+1) n <ct> 03 <kcv> x 3. The command header is
 * 80 D8 <old kvn or 00> 81. */
SCP_MUST_CHECK int scp_gp_putkey_build(const uint8_t *dek, size_t dek_len,
                                       const scp03_keys *new_keys, uint8_t *out,
                                       size_t out_size, size_t *out_len);
/* Parse and decrypt a PUT KEY data field with the static DEK, accepting
 * both "88 11 10 <ct> 03 <kcv>" and "88 10 <ct> 03 <kcv>" forms (and
 * "88 21 18 <32 ct> 03 <kcv>" for AES-192). Checks each KCV in constant
 * time (SCP_E_KCV). Errors: SCP_E_TRUNCATED (data ends early),
 * SCP_E_LENGTH (a length byte that fits no AES key, or bytes after the
 * third key), SCP_E_FORMAT (KCV length not 3, long-form length),
 * SCP_E_UNSUPPORTED (a key type other than 88, or keys of mixed lengths).
 * keys->kvn is the new KVN. On any error *keys is wiped. */
SCP_MUST_CHECK int scp_gp_putkey_parse(const uint8_t *dek, size_t dek_len, const uint8_t *data,
                                       size_t len, scp03_keys *keys);
/* DELETE KEY data (GPC 11.2.2.3, Table 11-24): D0 01 <key id> (when
 * key_id != 0) then D2 01 <kvn> (when kvn != 0); at least one of the two.
 * (D0 = key identifier, D2 = key version number, as yubikit and pySim
 * send them.) */
SCP_MUST_CHECK int scp_gp_deletekey_build(uint8_t kvn, uint8_t key_id, uint8_t *out,
                                          size_t out_size, size_t *out_len);
/* Parse DELETE KEY data (either order); *kvn and *key_id are 0 when absent.
 * SCP_E_FORMAT for an empty field, an unknown or repeated tag, or a zero
 * value; SCP_E_LENGTH for a value that is not one byte. */
SCP_MUST_CHECK int scp_gp_deletekey_parse(const uint8_t *data, size_t len, uint8_t *kvn,
                                          uint8_t *key_id);

/* Static key diversification (ENC, MAC, DEK from one master key). */
typedef enum scp_div_scheme {
    SCP_DIV_NONE = 0,
    SCP_DIV_SP800_108, /* Yubico: CMAC KDF, labels 1/2/3, context = KDD(10) */
    SCP_DIV_KDF3,      /* GlobalPlatformPro's SCP03 "KDF3" scheme */
    SCP_DIV_EMV,       /* EMV CPS 1.1, 3DES, from the IU response */
    SCP_DIV_VISA2,     /* VISA2, 3DES, from the IU response */
} scp_div_scheme;

/* Name <-> scheme: "none", "sp800-108", "kdf3", "emv", "visa2".
 * scp_div_parse returns SCP_E_NOT_FOUND for any other name. */
SCP_MUST_CHECK int scp_div_parse(const char *name, scp_div_scheme *out);
/* The scheme's name as scp_div_parse takes it; "unknown" for another
 * value. */
const char *scp_div_name(scp_div_scheme s);

/* Derive ENC, MAC and DEK from master (AES 16/24/32 for SP800-108 and
 * KDF3; 3DES 16/24 for EMV and VISA2, giving 16-byte 3DES keys stored with
 * key_len 16: SCP02/legacy keys, not usable as SCP03 AES keys; none gives
 * ENC = MAC = DEK = master). `kdd` is the diversification data: the
 * first 10 bytes of the INITIALIZE UPDATE response (the KDD) for
 * SP800-108/KDF3 and EMV/VISA2 alike; kdd_len must be 10 (kdd may be NULL
 * for none). out->kvn is kept; the rest of *out is written, or wiped on
 * error (SCP_E_ARG for a bad length or scheme). */
SCP_MUST_CHECK int scp_div_derive(scp_div_scheme s, const uint8_t *master, size_t master_len,
                                  const uint8_t *kdd, size_t kdd_len, scp03_keys *out);
/* The same with the derived key length chosen: 16/24/32 for SP800-108 and
 * KDF3 (L in the SP800-108 input is key_len * 8), 16 for EMV/VISA2,
 * master_len for none. */
SCP_MUST_CHECK int scp_div_derive_len(scp_div_scheme s, const uint8_t *master,
                                      size_t master_len, const uint8_t *kdd, size_t kdd_len,
                                      size_t key_len, scp03_keys *out);
/* The key length scp_div_derive uses: 16 for SP800-108 (Yubico's ISD keys
 * are AES-128 whatever the batch master key's length), EMV and VISA2;
 * master_len for KDF3 (as GlobalPlatformPro) and none. */
size_t scp_div_default_len(scp_div_scheme s, size_t master_len);

/* The block primitive under a diversification, so the same input layouts
 * run with the master key wherever it lives (in process, or inside an HSM):
 * cmac() for SP800-108 and KDF3 (AES-CMAC of len bytes under the master),
 * des3() for EMV and VISA2 (3DES-ECB encryption of one 16-byte block).
 * Each returns SCP_OK or an error, which ends the derivation. */
typedef struct scp_div_prf {
    int (*cmac)(void *ctx, const uint8_t *in, size_t len, uint8_t mac[16]);
    int (*des3)(void *ctx, const uint8_t in[16], uint8_t out[16]);
    void *ctx;
} scp_div_prf;
/* scp_div_derive_len's layouts over prf (scheme none is not one of them:
 * SCP_E_ARG). key_len as for scp_div_derive_len; out as for scp_div_derive. */
SCP_MUST_CHECK int scp_div_derive_prf(scp_div_scheme s, const scp_div_prf *prf,
                                      const uint8_t *kdd, size_t kdd_len, size_t key_len,
                                      scp03_keys *out);

#ifdef __cplusplus
}
#endif
#endif
