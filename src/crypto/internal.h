/* scpkit internal: the crypto backend's AES-NI hooks and guard macros. */
#ifndef SCPKIT_CRYPTO_INTERNAL_H
#define SCPKIT_CRYPTO_INTERNAL_H

#include "scpkit/crypto.h"
#include "crypto/aes.h"
#include "core/guard.h"

/* AES-NI path (src/crypto/aesni.c). scp_aesni_cpu: the CPU has AES-NI and
 * SSE4.1; scp_aesni_default: and SCP_AES_IMPL is not "openssl" (both
 * probed once per process, thread-safely). scp_aesni_init returns SCP_OK
 * and fills a->nr and a->u.rk when the CPU has AES-NI; SCP_E_UNSUPPORTED
 * otherwise (decryption derives its round keys from u.rk per call). Whether to use it is the caller's choice
 * (scp_ctx, src/crypto/backend.c). */
int scp_aesni_cpu(void);
int scp_aesni_default(void);
/* 1: AES-NI, 0: OpenSSL, for this context (NULL: the default);
 * SCP_E_UNSUPPORTED when it asks for AES-NI on a CPU without it. */
int scp_ctx_aesni(const scp_ctx *ctx);
int scp_aesni_init(scp_aes *a, const uint8_t *key, size_t key_len);
void scp_aesni_block(const scp_aes *a, const uint8_t in[16], uint8_t out[16]);
int scp_aesni_cbc_encrypt(const scp_aes *a, const uint8_t iv[16], const uint8_t *in,
                          size_t len, uint8_t *out);
int scp_aesni_cbc_decrypt(const scp_aes *a, const uint8_t iv[16], const uint8_t *in,
                          size_t len, uint8_t *out);
void scp_aesni_cbcmac(const scp_aes *a, uint8_t x[16], const uint8_t *p, size_t nblocks);
void scp_aesni_cmac(const scp_aes *a, const uint8_t *p, size_t len, uint8_t mac[16]);
void scp_aesni_cmac_ea(const scp_aes *a, const uint8_t hdr[5], const uint8_t *hc, size_t hc_len,
                       uint8_t mac[16]);
void scp_aesni_enc_cmac(const scp_aes *ke, const scp_aes *km, const uint8_t icv_in[16],
                        const uint8_t *iv_pre, const uint8_t *next_in, uint8_t *next_out,
                        const uint8_t chain[16], const uint8_t *pre, size_t pre_len,
                        uint8_t *buf, size_t len, const uint8_t *post, size_t post_len,
                        uint8_t tag[16]);
void scp_aesni_cmac_dec(const scp_aes *ke, const scp_aes *km, const uint8_t icv_in[16],
                        const uint8_t chain[16], const uint8_t *pre, size_t pre_len,
                        const uint8_t *ct, size_t len, const uint8_t *post, size_t post_len,
                        uint8_t *out, uint8_t tag[16]);

/* Free a key's OpenSSL contexts (they cleanse themselves) and nothing
 * else: for a caller that wipes the whole struct the key lives in, in one
 * pass, right after. */
void scp_aes_release(scp_aes *a);

/* Keys kept raw (scp_aes_raw, crypto.h). scp_aes_raw_init: on ctx's
 * backend; dec: CBC decryption allowed; mac: L made now (for CMAC). On
 * any result scp_aes_raw_clear(r) is safe. */
SCP_MUST_CHECK int scp_aes_raw_init(scp_aes_raw *r, const scp_ctx *ctx, const uint8_t *key,
                                    size_t key_len, int dec, int mac);
/* Free r's OpenSSL contexts, if any; no wipe (as scp_aes_release). */
void scp_aes_raw_release(scp_aes_raw *r);
/* Release, then wipe all of r. */
void scp_aes_raw_clear(scp_aes_raw *r);
/* Make a usable key from r into a (normally on the caller's stack): on
 * the AES-NI path the schedule is expanded (about as long as one AES
 * block chain of ten rounds), on OpenSSL's a borrows r's contexts. a stays
 * valid while r does; scp_aes_close(a) (not scp_aes_clear) ends it,
 * wiping the schedule. SCP_E_STATE for a raw key never set. */
SCP_MUST_CHECK int scp_aes_open(scp_aes *a, const scp_aes_raw *r);
void scp_aes_close(scp_aes *a);

/* GPC Amd D 4.1.5 data derivation constants. */
#define SCP03_DDC_CARD_CRYPTOGRAM 0x00
#define SCP03_DDC_HOST_CRYPTOGRAM 0x01
#define SCP03_DDC_CARD_CHALLENGE 0x02
#define SCP03_DDC_S_ENC 0x04
#define SCP03_DDC_S_MAC 0x06
#define SCP03_DDC_S_RMAC 0x07

/* One side's SCP03 handshake crypto (GPC Amd D 6.2.1-6.2.2), all in one
 * call (scp_scp03_keys, src/scp03/keys.c):
 *   card_chal = KDF(Key-ENC, 02, chal_ctx), when chal_ctx is not NULL (the
 *     pseudo-random card challenge: counter | AID, 1..32 bytes, in a
 *     buffer of 32 readable bytes: the AES-NI batch loads two whole
 *     blocks and masks them); otherwise card_chal is read;
 *   s_enc, s_mac, s_rmac = KDF(Key-ENC, 04), KDF(Key-MAC, 06),
 *     KDF(Key-MAC, 07), key_len bytes each: s_mac expanded (as by
 *     scp_aes_init), s_enc and s_rmac kept raw (as by scp_aes_raw_init,
 *     s_enc with dec and without L: SCP03 never MACs with it, s_rmac with
 *     L and without dec);
 *   card_cryptogram, host_cryptogram = KDF(S-MAC, 00), KDF(S-MAC, 01),
 *     chal_len bytes each;
 * every KDF over the context host_chal | card_chal (chal_len 8 or 16). On
 * the AES-NI path (key_len 16 or 32) the independent AES blocks of all of
 * it run side by side (src/crypto/aesni.c); otherwise one KDF after the
 * other, the same bytes either way. On failure no session key is set.
 * enc and mac may lie in s_enc's and s_rmac's key bytes (the host keeps
 * its static keys there until the INITIALIZE UPDATE response): both are
 * read before any session key is stored. */
typedef struct scp03_hs_keys {
    const uint8_t *enc, *mac; /* static keys */
    size_t key_len;
    const uint8_t *chal_ctx;
    size_t chal_ctx_len;
    const uint8_t *host_chal; /* SCP03_CHAL_MAX (16) readable bytes */
    uint8_t *card_chal;       /* SCP03_CHAL_MAX bytes */
    size_t chal_len;
    scp_aes_raw *s_enc;
    scp_aes *s_mac;
    scp_aes_raw *s_rmac;
    uint8_t *card_cryptogram, *host_cryptogram;
    const scp_ctx *ctx; /* backend choice (NULL: the default) */
} scp03_hs_keys;

/* The runner, scp_scp03_keys, is SCP03 protocol logic: src/scp03/keys.c
 * (declared in scp03/internal.h). This layer gives it the AES-NI batch
 * kernel: SCP_E_UNSUPPORTED when it cannot run (no AES-NI, AES-192). */
int scp_aesni_scp03_keys(const scp03_hs_keys *h);

/* The EXTERNAL AUTHENTICATE C-MAC (GPC Amd D 6.2.3, 7.1.2): RFC 4493 CMAC
 * over 16 zero bytes (the chaining value) | hdr (84 82 P1 P2 Lc) | the
 * host cryptogram (hc_len 8 or 16). The zero block's AES is the subkeys'
 * L, already known, so the AES-NI path starts one block in and builds the
 * rest in registers. */
SCP_MUST_CHECK int scp_cmac_ea(const scp_aes *key, const uint8_t hdr[5], const uint8_t *hc,
                               size_t hc_len, uint8_t mac[16]);

/* SCP03 secure messaging in one pass (GPC Amd D 6.2.4-6.2.7): the CBC and
 * CMAC chains run interleaved on the AES-NI path, one after the other on
 * the OpenSSL path (same bytes either way).
 *
 * scp_cbc_enc_cmac: IV = AES(ke, icv_in); buf (len, a multiple of 16,
 * already padded) is CBC-encrypted in place; tag = CMAC(km, chain | pre |
 * ciphertext | post). */
SCP_MUST_CHECK int scp_cbc_enc_cmac(const scp_aes *ke, const scp_aes *km,
                                    const uint8_t icv_in[16], const uint8_t chain[16],
                                    const uint8_t *pre, size_t pre_len, uint8_t *buf, size_t len,
                                    const uint8_t *post, size_t post_len, uint8_t tag[16]);
/* The same, with the ICV's AES made ahead: iv_pre, when not NULL, is
 * AES(ke, icv_in) computed earlier (icv_in is then not read); next_in,
 * when not NULL, is the next command's ICV input and next_out receives
 * AES(ke, next_in), computed beside this command's chains where it costs
 * no time on the AES-NI path (next_out may be iv_pre: it is read first). */
SCP_MUST_CHECK int scp_cbc_enc_cmac_ahead(const scp_aes *ke, const scp_aes *km,
                                          const uint8_t icv_in[16], const uint8_t *iv_pre,
                                          const uint8_t *next_in, uint8_t *next_out,
                                          const uint8_t chain[16], const uint8_t *pre,
                                          size_t pre_len, uint8_t *buf, size_t len,
                                          const uint8_t *post, size_t post_len,
                                          uint8_t tag[16]);
/* scp_cmac_cbc_dec: tag = CMAC(km, chain | pre | ct | post); IV = AES(ke,
 * icv_in); ct (len, a multiple of 16) is CBC-decrypted into out (which may
 * be ct). The caller checks the tag and wipes out when it does not match. */
SCP_MUST_CHECK int scp_cmac_cbc_dec(const scp_aes *ke, const scp_aes *km,
                                    const uint8_t icv_in[16], const uint8_t chain[16],
                                    const uint8_t *pre, size_t pre_len, const uint8_t *ct,
                                    size_t len, const uint8_t *post, size_t post_len,
                                    uint8_t *out, uint8_t tag[16]);

#endif
