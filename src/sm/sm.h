/* scpkit internal: the secure-messaging core (issue 13 item 1), one
 * MAC/cipher engine for SCP03, SCP02 and ISO/IEC 7816-4 secure messaging,
 * driven by a per-protocol description (scp_sm_desc).
 *
 * Layer: above crypto (AES, CMAC, 3DES, the retail MAC, M2 padding), below
 * the protocols. It knows nothing of APDUs, data objects or sessions: a
 * protocol's framing (src/scp03/wrap.c, src/scp02/wrap.c,
 * src/iso7816/sm.c) lays out "pre | payload | post", keeps its chaining
 * state in an scp_sm_chain and calls these functions. What differs between
 * the protocols and what does not:
 *
 *              SCP03 S8/S16     SCP02 i=15/55     ISO SM 3DES    ISO SM AES
 *  block       16               8                 8              16
 *  cipher      AES              3DES (2 keys)     3DES (2 keys)  AES
 *  MAC         CMAC, 8/16       retail, 8         retail, 8      CMAC, 8
 *  C-MAC ICV   chain (1st blk)  chain as IV, enc  SSC (1st blk)  SSC (1st blk)
 *  R-MAC ICV   chain (1st blk)  R-MAC chain, IV   SSC (1st blk)  SSC (1st blk)
 *  enc. ICV    E(counter blk)   zero              zero           E(SSC)
 *  data pad    M2, long ok      M2                M2             M2
 *  MAC pad     CMAC's own       M2                M2             M2, then CMAC
 *  order       enc-then-MAC     MAC-then-enc      enc-then-MAC   enc-then-MAC
 *
 * AES fast path: when the description says AES, CMAC, chain as the first
 * block, CMAC's own padding and an encrypted ICV (SCP03), scp_sm_seal and
 * scp_sm_open run the CBC and CMAC chains in one pass
 * (scp_cbc_enc_cmac_ahead / scp_cmac_cbc_dec, src/crypto: the fused AES-NI
 * kernels of src/crypto/aesni.c). Short CMAC inputs otherwise are put
 * together in one buffer for one CMAC call (the AES-NI CMAC runs it in
 * registers). */
#ifndef SCPKIT_SM_SM_H
#define SCPKIT_SM_SM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/guard.h"
#include "crypto/aes.h"
#include "crypto/internal.h"
#include "scpkit/des.h"
#include "scpkit/smchain.h"

/* cipher */
#define SCP_SMC_AES 1
#define SCP_SMC_3DES2 2 /* two-key 3DES, EDE */
/* MAC algorithm */
#define SCP_SMM_CMAC 1   /* AES-CMAC (RFC 4493), 16-byte tag */
#define SCP_SMM_RETAIL 2 /* ISO/IEC 9797-1 MAC algorithm 3, 8-byte tag */
/* MAC ICV rule: what the MAC starts from */
#define SCP_SMI_ZERO 0       /* zero IV, nothing before the input */
#define SCP_SMI_CHAIN 1      /* the chaining value is the first block (SCP03) */
#define SCP_SMI_CHAIN_IV 2   /* the chaining value is the CBC-MAC IV (SCP02) */
#define SCP_SMI_CHAIN_ENC 3  /* ... encrypted first with single DES under the
                                MAC key's first half (SCP02, i bit 10) */
#define SCP_SMI_SSC 4        /* the SSC is the first block (ISO SM) */
/* encryption ICV rule */
#define SCP_SME_ZERO 0    /* zero IV */
#define SCP_SME_COUNTER 1 /* IV = E(K_enc, 00|80 .. counter) (SCP03) */
#define SCP_SME_SSC 2     /* IV = E(K_enc, SSC) (ISO SM with AES) */
/* data padding rule (ISO/IEC 9797-1 method 2 when there is data; empty
 * data is not encrypted, by every protocol here) */
#define SCP_SMP_M2 0      /* the 80 is in the last block (checked in constant time) */
#define SCP_SMP_M2_LONG 1 /* any run of 00 after the 80 (SCP03: peers in the
                             field pad further; checked after the MAC) */
/* MAC input padding */
#define SCP_SMQ_CMAC 0 /* CMAC's own (SCP03) */
#define SCP_SMQ_M2 1   /* method 2 on the whole MAC input, always (retail; ISO CMAC) */
/* order */
#define SCP_SMO_ETM 0 /* encrypt, then MAC the ciphertext */
#define SCP_SMO_MTE 1 /* MAC the plain data, then encrypt */

typedef struct scp_sm_desc {
    const char *name;
    uint8_t block;    /* 8 or 16: cipher block, SSC and padding unit */
    uint8_t cipher;   /* SCP_SMC_* */
    uint8_t mac_alg;  /* SCP_SMM_* */
    uint8_t mac_len;  /* tag bytes on the wire */
    uint8_t cmac_icv; /* SCP_SMI_*: command MACs */
    uint8_t rmac_icv; /* SCP_SMI_*: response MACs */
    uint8_t enc_icv;  /* SCP_SME_* */
    uint8_t pad;      /* SCP_SMP_* */
    uint8_t mac_pad;  /* SCP_SMQ_* */
    uint8_t order;    /* SCP_SMO_* */
} scp_sm_desc;

/* The table (src/sm/desc.c). block is a power of two (8 or 16). */
extern const scp_sm_desc scp_sm_desc_scp03_s8, scp_sm_desc_scp03_s16;
extern const scp_sm_desc scp_sm_desc_scp02_icv_enc; /* i = 15, 55 (i bit 10 set) */
extern const scp_sm_desc scp_sm_desc_scp02_icv;     /* i = 05, 45 (ICV not encrypted) */
extern const scp_sm_desc scp_sm_desc_iso_3des, scp_sm_desc_iso_aes;
/* SCP03's description for a MAC length of 8 (S8) or 16 (S16). */
static inline const scp_sm_desc *scp_sm_desc_scp03(size_t mac_len)
{
    return mac_len == 16 ? &scp_sm_desc_scp03_s16 : &scp_sm_desc_scp03_s8;
}
/* SCP02's description for the i parameter. */
const scp_sm_desc *scp_sm_desc_scp02(uint8_t i);

/* The keys of one pass: enc and mac of the description's cipher (mac is
 * the command MAC key or the R-MAC key, as the framing chooses). */
typedef struct scp_sm_keys {
    const scp_aes *aes_enc, *aes_mac;
    const scp_des3 *des_enc, *des_mac;
} scp_sm_keys;



/* ISO SM: SSC + 1 (big-endian, block bytes). */
static inline void scp_sm_ssc_inc(const scp_sm_desc *d, uint8_t ssc[16])
{
    for (size_t i = d->block; i-- > 0;)
        if (++ssc[i] != 0)
            break;
}
/* SCP03: the encryption ICV input for counter: 00 (command) or 80
 * (response), then the counter, as 16 bytes big-endian (GPC Amd D 6.2.6,
 * 6.2.7). */
static inline void scp_sm_counter_block(uint32_t c, int response, uint8_t blk[16])
{
    memset(blk, 0, 12);
    blk[0] = response ? 0x80 : 0x00;
    blk[12] = (uint8_t)(c >> 24), blk[13] = (uint8_t)(c >> 16);
    blk[14] = (uint8_t)(c >> 8), blk[15] = (uint8_t)c;
}
/* The encryption ICV input of the rule SCP_SME_* from a session's chain
 * (<scpkit/smchain.h>): the counter block (response or not; made in blk)
 * or the SSC; NULL for a zero IV. */
static inline const uint8_t *scp_sm_enc_icv(const scp_sm_desc *d, const scp_sm_chain *c,
                                            int response, uint8_t blk[16])
{
    if (d->enc_icv == SCP_SME_COUNTER) {
        scp_sm_counter_block(c->counter, response, blk);
        return blk;
    }
    return d->enc_icv == SCP_SME_SSC ? c->u.icv : NULL;
}

/* Data padding: the padded length of n bytes (0 for 0), padding written
 * in place after p[n]; unpad per the description's rule. */
/* n mod the block (8 or 16: a mask, not a division, on the APDU path) */
static inline size_t scp_sm_rem(const scp_sm_desc *d, size_t n)
{
    return n & (size_t)(d->block - 1);
}
static inline size_t scp_sm_padded_len(const scp_sm_desc *d, size_t n)
{
    return n == 0 ? 0 : n - scp_sm_rem(d, n) + d->block;
}
static inline void scp_sm_pad(const scp_sm_desc *d, uint8_t *p, size_t n)
{
    size_t m = scp_sm_padded_len(d, n);
    p[n] = 0x80;
    memset(p + n + 1, 0, m - n - 1);
}
SCP_MUST_CHECK int scp_sm_unpad(const scp_sm_desc *d, const uint8_t *p, size_t n,
                                size_t *plain_len);

/* ---- streaming MAC over CMAC and the retail MAC ---- */

typedef struct scp_sm_mac_ctx {
    const scp_sm_desc *d;
    union {
        scp_cmac c;
        scp_des_mac r; /* the retail MAC's state (SCP02 parks it between
                          a command and its response) */
    } u;
    size_t n;    /* bytes fed (CMAC with M2: the padding) */
    uint8_t bad; /* a CMAC update failed (a key without subkeys) */
} scp_sm_mac_ctx;

/* Start a MAC under k->aes_mac / k->des_mac from the rule (SCP_SMI_*)
 * and icv (block bytes for CHAIN and SSC, 8 for CHAIN_IV / CHAIN_ENC,
 * ignored for ZERO). */
void scp_sm_mac_begin(scp_sm_mac_ctx *m, const scp_sm_desc *d, const scp_sm_keys *k, int rule,
                      const uint8_t *icv);
void scp_sm_mac_update(scp_sm_mac_ctx *m, const uint8_t *p, size_t len);
/* The full tag (16 bytes for CMAC, 8 for the retail MAC), after the
 * description's MAC padding; wipes m. SCP_E_STATE for an AES key without
 * CMAC subkeys. */
SCP_MUST_CHECK int scp_sm_mac_final(scp_sm_mac_ctx *m, uint8_t tag[16]);
/* The tag as scp_sm_mac_final, then tag[0..mac_len) compared in
 * constant time with rx: SCP_E_MAC when it differs. */
SCP_MUST_CHECK int scp_sm_mac_check(scp_sm_mac_ctx *m, const uint8_t *rx, uint8_t tag[16]);
/* A retail MAC kept between two calls (SCP02's R-MAC runs from a command
 * to its response): park copies the state out, resume takes it back
 * under k->des_mac (the session may have moved since). */
void scp_sm_mac_park(const scp_sm_mac_ctx *m, scp_des_mac *slot);
void scp_sm_mac_resume(scp_sm_mac_ctx *m, const scp_sm_desc *d, const scp_sm_keys *k,
                       const scp_des_mac *slot);
/* The streaming form of scp_sm_mac_once (src/sm/sm.c). */
SCP_MUST_CHECK int scp_sm_mac_stream(const scp_sm_desc *d, const scp_sm_keys *k, int rule,
                                     const uint8_t *icv, const uint8_t *pre, size_t pre_len,
                                     const uint8_t *p, size_t len, const uint8_t *post,
                                     size_t post_len, uint8_t tag[16]);

/* One shot: tag = MAC(icv | pre | p | post). Short CMAC inputs are laid
 * out in one buffer for one CMAC call (the AES-NI CMAC runs it in
 * registers; inline, so the buffer is the caller's frame as the kernel's
 * input), longer ones and the retail MAC stream. The buffer is not
 * wiped: its input is ciphertext (encrypt-then-MAC) or data that goes out
 * in the clear (MAC only); no key is in it. */
#define SCP_SM_MAC_BUF 512
SCP_MUST_CHECK static inline int scp_sm_mac_once(const scp_sm_desc *d, const scp_sm_keys *k,
                                                 int rule, const uint8_t *icv,
                                                 const uint8_t *pre, size_t pre_len,
                                                 const uint8_t *p, size_t len,
                                                 const uint8_t *post, size_t post_len,
                                                 uint8_t tag[16])
{
    _Alignas(16) uint8_t buf[SCP_SM_MAC_BUF];
    size_t n = 0;
    if (d->mac_alg != SCP_SMM_CMAC || 16 + pre_len + len + post_len + 16 > SCP_SM_MAC_BUF)
        return scp_sm_mac_stream(d, k, rule, icv, pre, pre_len, p, len, post, post_len, tag);
    if (rule == SCP_SMI_CHAIN || rule == SCP_SMI_SSC) {
        memcpy(buf, icv, 16);
        n = 16;
    }
    if (pre_len > 0)
        memcpy(buf + n, pre, pre_len), n += pre_len;
    if (len > 0)
        memcpy(buf + n, p, len), n += len;
    if (post_len > 0)
        memcpy(buf + n, post, post_len), n += post_len;
    if (d->mac_pad == SCP_SMQ_M2) {
        buf[n++] = 0x80;
        while ((n & 15) != 0)
            buf[n++] = 0;
    }
    return scp_cmac_once(k->aes_mac, buf, n, tag);
}

/* The same, then tag[0..mac_len) compared in constant time with rx:
 * SCP_E_MAC when it differs (tag still written: a chaining value). */
SCP_MUST_CHECK static inline int scp_sm_verify(const scp_sm_desc *d, const scp_sm_keys *k,
                                               int rule, const uint8_t *icv, const uint8_t *pre,
                                               size_t pre_len, const uint8_t *p, size_t len,
                                               const uint8_t *post, size_t post_len,
                                               const uint8_t *rx, uint8_t tag[16])
{
    GUARD(scp_sm_mac_once(d, k, rule, icv, pre, pre_len, p, len, post, post_len, tag));
    return scp_ct_eq(tag, rx, d->mac_len) ? SCP_OK : SCP_E_MAC;
}

/* ---- the cipher ---- */

/* CBC over whole blocks, IV from the ICV input (NULL: zero; otherwise IV
 * = E(K_enc, icv_in)); in place or in -> out. */
SCP_MUST_CHECK int scp_sm_encrypt(const scp_sm_desc *d, const scp_sm_keys *k,
                                  const uint8_t *icv_in, uint8_t *buf, size_t len);
SCP_MUST_CHECK int scp_sm_decrypt(const scp_sm_desc *d, const scp_sm_keys *k,
                                  const uint8_t *icv_in, const uint8_t *in, size_t len,
                                  uint8_t *out);

/* ---- a whole protection pass ---- */

/* The next command's encryption IV made beside this one (SCP03 host): see
 * scp_cbc_enc_cmac_ahead in src/crypto/internal.h. */
typedef struct scp_sm_ahead {
    const uint8_t *iv_pre;  /* E(K_enc, icv_in), made earlier; NULL: none */
    const uint8_t *next_in; /* the next ICV input; NULL: none */
    uint8_t *next_out;      /* receives E(K_enc, next_in) */
} scp_sm_ahead;

/* Protect: buf holds n plain bytes (and room for the padding). With enc
 * (and n > 0) the data is padded and encrypted in place under icv_in
 * (scp_sm_enc_icv); the MAC is MAC(icv | pre | data | post), over the
 * ciphertext (EtM) or the plain data (MtE), under rule. *out_n: the bytes
 * of buf now (padded or n). tag gets the full tag (it may be icv: icv is
 * read first). ahead may be NULL. */
SCP_MUST_CHECK int scp_sm_seal_slow(const scp_sm_desc *d, const scp_sm_keys *k, int rule,
                                    const uint8_t *icv, const uint8_t *icv_in,
                                    const scp_sm_ahead *ahead, const uint8_t *pre,
                                    size_t pre_len, uint8_t *buf, size_t n, int enc,
                                    const uint8_t *post, size_t post_len, size_t *out_n,
                                    uint8_t tag[16]);

/* The AES fast path's shape: the chaining value as the first CMAC block,
 * CMAC's own padding, IV = AES(K_enc, ICV input) (SCP03). The fused
 * kernels choose AES-NI or OpenSSL themselves. */
static inline int scp_sm_fused(const scp_sm_desc *d, int rule, const uint8_t *icv_in)
{
    return d->cipher == SCP_SMC_AES && d->mac_alg == SCP_SMM_CMAC &&
           d->mac_pad == SCP_SMQ_CMAC && rule == SCP_SMI_CHAIN && icv_in != NULL;
}

/* (inline: the fast path goes straight to the fused kernel, no call
 * between the framing and it) */
SCP_MUST_CHECK static inline int scp_sm_seal(const scp_sm_desc *d, const scp_sm_keys *k,
                                             int rule, const uint8_t *icv, const uint8_t *icv_in,
                                             const scp_sm_ahead *ah, const uint8_t *pre,
                                             size_t pre_len, uint8_t *buf, size_t n, int enc,
                                             const uint8_t *post, size_t post_len,
                                             size_t *out_n, uint8_t tag[16])
{
    if (enc && n > 0 && d->order == SCP_SMO_ETM && scp_sm_fused(d, rule, icv_in)) {
        size_t m = scp_sm_padded_len(d, n);
        *out_n = m;
        scp_sm_pad(d, buf, n);
        return scp_cbc_enc_cmac_ahead(k->aes_enc, k->aes_mac, icv_in, ah ? ah->iv_pre : NULL,
                                      ah ? ah->next_in : NULL, ah ? ah->next_out : NULL, icv,
                                      pre, pre_len, buf, m, post, post_len, tag);
    }
    return scp_sm_seal_slow(d, k, rule, icv, icv_in, ah, pre, pre_len, buf, n, enc, post,
                            post_len, out_n, tag);
}

/* Verify and unprotect an enc-then-MAC pass: tag = MAC(icv | pre | ct |
 * post) checked against rx (mac_len bytes, constant time); with dec (and
 * n > 0) ct is decrypted into out (which may be ct) under icv_in and
 * unpadded, *plain_len its length; without, ct is not copied. Nothing
 * decrypted stays in out unless the MAC matches and the padding is good
 * (out is wiped: n bytes). SCP_E_MAC, SCP_E_PADDING (data not a whole
 * number of blocks, or bad padding). tag may be icv (read first) only
 * when the caller does not need icv on failure. */
SCP_MUST_CHECK int scp_sm_open_slow(const scp_sm_desc *d, const scp_sm_keys *k, int rule,
                                    const uint8_t *icv, const uint8_t *icv_in,
                                    const uint8_t *pre, size_t pre_len, const uint8_t *ct,
                                    size_t n, int dec, const uint8_t *post, size_t post_len,
                                    const uint8_t *rx, uint8_t *out, size_t *plain_len,
                                    uint8_t tag[16]);
SCP_MUST_CHECK static inline int scp_sm_open(const scp_sm_desc *d, const scp_sm_keys *k,
                                             int rule, const uint8_t *icv, const uint8_t *icv_in,
                                             const uint8_t *pre, size_t pre_len,
                                             const uint8_t *ct, size_t n, int dec,
                                             const uint8_t *post, size_t post_len,
                                             const uint8_t *rx, uint8_t *out,
                                             size_t *plain_len, uint8_t tag[16])
{
    if (dec && n > 0 && scp_sm_rem(d, n) == 0 && scp_sm_fused(d, rule, icv_in)) {
        /* MAC and decryption in one pass, in place (pre and post are not
         * in out); nothing decrypted leaves unless the MAC matches */
        uint8_t want[16];
        int rc;
        memcpy(want, rx, d->mac_len); /* out may overlap the received MAC */
        if (out != ct)
            memmove(out, ct, n);
        rc = scp_cmac_cbc_dec(k->aes_enc, k->aes_mac, icv_in, icv, pre, pre_len, out, n, post,
                              post_len, out, tag);
        if (rc == SCP_OK && !scp_ct_eq(tag, want, d->mac_len))
            rc = SCP_E_MAC;
        if (rc == SCP_OK)
            rc = scp_sm_unpad(d, out, n, plain_len);
        if (rc != SCP_OK)
            scp_wipe(out, n);
        return rc;
    }
    return scp_sm_open_slow(d, k, rule, icv, icv_in, pre, pre_len, ct, n, dec, post, post_len,
                            rx, out, plain_len, tag);
}

/* Decrypt and unpad (the first half of a MAC-then-encrypt open: the MAC
 * over the plain data follows, scp_sm_verify). out wiped on bad padding. */
SCP_MUST_CHECK int scp_sm_decrypt_unpad(const scp_sm_desc *d, const scp_sm_keys *k,
                                        const uint8_t *icv_in, const uint8_t *ct, size_t n,
                                        uint8_t *out, size_t *plain_len);

#endif
