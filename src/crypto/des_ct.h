/* scpkit internal: the IP-domain entry points of the constant-time DES
 * (src/crypto/des_ct.c), for the CBC-MAC chains of src/crypto/des_mac.c. */
#ifndef SCPKIT_DES_CT_H
#define SCPKIT_DES_CT_H

#include <stdint.h>
#include "scpkit/des.h"

/* One DES key schedule: 16 rounds x 8 six-bit subkeys, each widened to a
 * 32-bit lane for the masked table scan. */
typedef struct scp_des_ks {
    uint32_t k[16][8];
} scp_des_ks;

/* What a scp_des3 holds: ks[0] = K1, ks[1] = K2, ks[2] = K3 (= K1 for
 * two-key, = K1 = K2 for single DES). may_alias: the public type is bytes. */
typedef struct __attribute__((may_alias)) scp_des3_ks {
    scp_des_ks ks[3];
    uint8_t key_len; /* 8, 16 or 24 */
} scp_des3_ks;

/* What a scp_des_mac holds. */
typedef struct __attribute__((may_alias)) scp_des_mac_st {
    const scp_des3_ks *key;
    uint32_t l, r; /* the chain, in DES's IP domain */
    uint8_t buf[8];
    uint8_t n;
    uint8_t full3;
} scp_des_mac_st;

#define SCP_DES3_OF(d)                                                                     \
    _Generic((d), scp_des3 *: (scp_des3_ks *)(void *)(d)->opaque_,                        \
             const scp_des3 *: (const scp_des3_ks *)(const void *)(d)->opaque_)
#define SCP_DES_MAC_OF(m) ((scp_des_mac_st *)(void *)(m)->opaque_)

_Static_assert(sizeof(scp_des3_ks) <= sizeof(scp_des3) &&
                   _Alignof(scp_des3_ks) <= _Alignof(scp_des3),
               "scp_des3 holds the key schedules");
_Static_assert(sizeof(scp_des_mac_st) <= sizeof(scp_des_mac) &&
                   _Alignof(scp_des_mac_st) <= _Alignof(scp_des_mac),
               "scp_des_mac holds the MAC state");

/* Single DES with schedule `ks` (encrypt or decrypt). */
void scp_des_block(const scp_des_ks *ks, int decrypt, const uint8_t in[8], uint8_t out[8]);

/* The IP domain: IP splits a block into (l, r); 16 rounds (ending with
 * the swap) map the IP image of a block to the IP image of its DES
 * output, so chained stages and CBC chains skip FP/IP in between
 * (IP(a ^ b) = IP(a) ^ IP(b)); FP joins. */
void scp_des_ip(const uint8_t in[8], uint32_t *l, uint32_t *r);
void scp_des_fp(uint32_t l, uint32_t r, uint8_t out[8]);
void scp_des_rounds(const scp_des_ks *ks, int decrypt, uint32_t *l, uint32_t *r);

#endif
