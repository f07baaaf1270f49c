/* The secure-messaging descriptions (src/sm/sm.h): one line per protocol
 * variant, the spec section beside each. */
#include "sm/sm.h"

/* GPC Amd D 6.2.4-6.2.7: AES-CMAC over chain | header | data (the full
 * 16-byte C-MAC is the next chaining value; the R-MAC chains on the
 * command's), 8 (S8) or 16 (S16) bytes sent; C-DEC / R-ENC IV =
 * AES(S-ENC, counter block); M2 padding when there is data; encrypt,
 * then MAC the ciphertext. */
const scp_sm_desc scp_sm_desc_scp03_s8 = {
    "SCP03 S8", 16, SCP_SMC_AES, SCP_SMM_CMAC, 8, SCP_SMI_CHAIN, SCP_SMI_CHAIN,
    SCP_SME_COUNTER, SCP_SMP_M2_LONG, SCP_SMQ_CMAC, SCP_SMO_ETM,
};
const scp_sm_desc scp_sm_desc_scp03_s16 = {
    "SCP03 S16", 16, SCP_SMC_AES, SCP_SMM_CMAC, 16, SCP_SMI_CHAIN, SCP_SMI_CHAIN,
    SCP_SME_COUNTER, SCP_SMP_M2_LONG, SCP_SMQ_CMAC, SCP_SMO_ETM,
};

/* GPC 2.2.1 E.4.4-E.4.6: retail MAC (ISO 9797-1 algorithm 3, M2) under
 * C-MAC with the previous C-MAC as ICV, encrypted with single DES under
 * the key's first half when i has bit 10 (i = 15, 55); the R-MAC chains
 * on the last R-MAC as a plain ICV; C-DECRYPTION is 3DES-CBC with a zero
 * ICV over the M2-padded data; the MAC is over the plain data. */
const scp_sm_desc scp_sm_desc_scp02_icv_enc = {
    "SCP02 i=15/55", 8, SCP_SMC_3DES2, SCP_SMM_RETAIL, 8, SCP_SMI_CHAIN_ENC, SCP_SMI_CHAIN_IV,
    SCP_SME_ZERO, SCP_SMP_M2, SCP_SMQ_M2, SCP_SMO_MTE,
};
const scp_sm_desc scp_sm_desc_scp02_icv = {
    "SCP02 i=05/45", 8, SCP_SMC_3DES2, SCP_SMM_RETAIL, 8, SCP_SMI_CHAIN_IV, SCP_SMI_CHAIN_IV,
    SCP_SME_ZERO, SCP_SMP_M2, SCP_SMQ_M2, SCP_SMO_MTE,
};

/* ISO/IEC 7816-4 clause 10 as ICAO 9303-11 9.8 profiles it: the SSC
 * (incremented before each command and response) is the MAC's first
 * block; BAC: retail MAC and 3DES-CBC with a zero IV; PACE with AES:
 * AES-CMAC over the M2-padded input, 8 bytes, IV = AES(K_enc, SSC)
 * (9.8.6.1, BSI TR-03110-3 F.2). */
const scp_sm_desc scp_sm_desc_iso_3des = {
    "ISO SM 3DES", 8, SCP_SMC_3DES2, SCP_SMM_RETAIL, 8, SCP_SMI_SSC, SCP_SMI_SSC,
    SCP_SME_ZERO, SCP_SMP_M2, SCP_SMQ_M2, SCP_SMO_ETM,
};
const scp_sm_desc scp_sm_desc_iso_aes = {
    "ISO SM AES", 16, SCP_SMC_AES, SCP_SMM_CMAC, 8, SCP_SMI_SSC, SCP_SMI_SSC,
    SCP_SME_SSC, SCP_SMP_M2, SCP_SMQ_M2, SCP_SMO_ETM,
};

const scp_sm_desc *scp_sm_desc_scp02(uint8_t i)
{
    return (i & 0x10) /* SCP02_I_ICV_ENC, GPC 2.2.1 E.1.1 */ ? &scp_sm_desc_scp02_icv_enc : &scp_sm_desc_scp02_icv;
}
