/* scpkit internal: the IP-domain entry points of the constant-time DES
 * (src/crypto/des_ct.c), for the CBC-MAC chains of src/crypto/des_mac.c. */
#ifndef SCPKIT_DES_CT_H
#define SCPKIT_DES_CT_H

#include "scpkit/des.h"

/* The IP domain: IP splits a block into (l, r); 16 rounds (ending with
 * the swap) map the IP image of a block to the IP image of its DES
 * output, so chained stages and CBC chains skip FP/IP in between
 * (IP(a ^ b) = IP(a) ^ IP(b)); FP joins. */
void scp_des_ip(const uint8_t in[8], uint32_t *l, uint32_t *r);
void scp_des_fp(uint32_t l, uint32_t r, uint8_t out[8]);
void scp_des_rounds(const scp_des_ks *ks, int decrypt, uint32_t *l, uint32_t *r);

#endif
