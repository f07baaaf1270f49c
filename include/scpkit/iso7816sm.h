/* scpkit: ISO/IEC 7816-4 secure messaging (clause 10) as used by ICAO
 * Doc 9303 Part 11 (BAC and PACE) and eID cards: a sans-I/O,
 * allocation-free codec for both roles.
 *
 * Command: CLA' = CLA | 0C, [87 L 01 ciphertext] (even INS) or
 * [85 L ciphertext] (odd INS), [97 L Le], 8E 08 MAC, Le' = 00 (0000 in the
 * extended form). Response: [87 L 01 ct | 85 L ct] 99 02 SW 8E 08 MAC SW.
 * The send sequence counter (SSC) goes up by one before every protected
 * command and every protected response, and enters every MAC.
 *
 * Families: SCP_SM_3DES (two-key 3DES-CBC with a zero IV, ISO 9797-1 MAC
 * algorithm 3, padding method 2, 8-byte SSC) and SCP_SM_AES (AES-CBC with
 * IV = AES(K_enc, SSC), AES-CMAC truncated to 8 bytes, 16-byte SSC;
 * 128/192/256-bit keys).
 *
 * Any MAC, padding or format failure ends the session: keys wiped, every
 * later call SCP_E_DEAD. */
#ifndef SCPKIT_ISO7816SM_H
#define SCPKIT_ISO7816SM_H

#include <stddef.h>
#include <stdint.h>
#include "scpkit/smchain.h"
#include "scpkit/crypto.h"
#include "scpkit/des.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SCP_SM_3DES 1
#define SCP_SM_AES 2

#define SCP_SM_HOST 0
#define SCP_SM_CARD 1

#define SCP_SM_MAC_LEN 8
/* Most bytes protection adds to a command: CLA/Lc growth, DO87 header (4)
 * and indicator, padding (16), DO97 (4), DO8E (10), Le' (2). */
#define SCP_SM_OVERHEAD 40

typedef struct scp_sm {
    uint8_t family; /* SCP_SM_3DES or SCP_SM_AES; 0: not set up */
    uint8_t role;
    uint8_t block; /* 8 or 16: also the SSC length */
    uint8_t dead;
    uint8_t resp_pending; /* a command was protected/unprotected; its response is due */
    uint8_t odd_ins;      /* that command's INS was odd: response data in DO85 */
    scp_sm_chain chain; /* chain.u.icv: the SSC (block bytes) <scpkit/smchain.h> */
    scp_des3 des_enc, des_mac;
    scp_aes_slot aes_enc, aes_mac; /* private to the library */
    int dead_rc;
} scp_sm;

/* Start a session with the session keys (16 bytes for 3DES; 16, 24, 32
 * for AES) and the starting SSC (8 or 16 bytes as the family says). */
SCP_MUST_CHECK int scp_sm_init(scp_sm *sm, int family, int role, const uint8_t *k_enc,
                               const uint8_t *k_mac, size_t key_len, const uint8_t *ssc,
                               size_t ssc_len);
/* Wipe every key; the session is unusable until the next init. */
void scp_sm_end(scp_sm *sm);

/* Host: protect one plain C-APDU (short or extended). The output is in
 * the extended form when the original was, or when the protected data or
 * Le need it. */
SCP_MUST_CHECK int scp_sm_protect_command(scp_sm *sm, const uint8_t *capdu, size_t len,
                                          uint8_t *out, size_t out_size, size_t *out_len);
/* Host: verify and unprotect the R-APDU (data | SW1 SW2) of the last
 * protected command; writes plain data | SW. A response without secure
 * messaging objects (a bare status word: the card's SM error, e.g. 6987
 * or 6988) is passed out as it is, and ends the session (dead_rc =
 * SCP_E_SW). */
SCP_MUST_CHECK int scp_sm_unprotect_response(scp_sm *sm, const uint8_t *rapdu, size_t len,
                                             uint8_t *out, size_t out_size, size_t *out_len);
/* Card: verify and unprotect a protected C-APDU; writes the plain C-APDU
 * (CLA without the SM bits). The card answers an error with a plain 6988
 * (MAC) or 6987 (objects missing): the session is then over. */
SCP_MUST_CHECK int scp_sm_unprotect_command(scp_sm *sm, const uint8_t *capdu, size_t len,
                                            uint8_t *out, size_t out_size, size_t *out_len);
/* Card: protect the response (data, sw) to the last unprotected command. */
SCP_MUST_CHECK int scp_sm_protect_response(scp_sm *sm, const uint8_t *data, size_t len,
                                           uint16_t sw, uint8_t *out, size_t out_size,
                                           size_t *out_len);
/* 1 when the session is set up and not ended by a failure. */
static inline int scp_sm_is_open(const scp_sm *sm) { return sm->family != 0 && !sm->dead; }

/* ---- ICAO Doc 9303 Part 11 key derivation (section 9.7.1) ---- */

/* KDF(K, c) = H(K | c (4 bytes, big-endian)): SHA-1 for 3DES (first 16
 * bytes, DES parity set) and AES-128, SHA-256 for AES-192/256; c = 1 for
 * K_enc, 2 for K_mac, 3 for the PACE password key. */
SCP_MUST_CHECK int scp_icao_kdf(int family, const uint8_t *seed, size_t seed_len, uint32_t c,
                                uint8_t *out, size_t key_len);
/* BAC (9.7.2): K_seed = SHA-1(MRZ information)[0..15], where the MRZ
 * information is document number | check digit | date of birth | check
 * digit | date of expiry | check digit (ASCII, '<' fill kept). */
SCP_MUST_CHECK int scp_bac_keys_from_mrz(const char *mrz_info, uint8_t k_enc[16],
                                         uint8_t k_mac[16]);
/* BAC session (9.7.2.3): K_seed = K_IFD ^ K_IC, session keys by the KDF,
 * SSC = RND.IC[4..7] | RND.IFD[4..7]. */
SCP_MUST_CHECK int scp_bac_session_keys(const uint8_t k_ifd[16], const uint8_t k_ic[16],
                                        const uint8_t rnd_ic[8], const uint8_t rnd_ifd[8],
                                        uint8_t ks_enc[16], uint8_t ks_mac[16],
                                        uint8_t ssc[8]);

/* MRZ information for BAC (ICAO 9303-11 9.7.2, 9303-3 4.9): document
 * number (9 characters, '<' filled) | check digit | date of birth YYMMDD
 * | check digit | date of expiry YYMMDD | check digit; out gets 24
 * characters and a NUL. SCP_E_ARG for a character outside 0-9 A-Z <. */
SCP_MUST_CHECK int scp_bac_mrz_info(const char doc[9], const char dob[6], const char exp[6],
                                    char out[25]);

/* BAC mutual authentication (9.7.2.2), host side: after GET CHALLENGE
 * gave RND.IC, scp_bac_host_auth writes the EXTERNAL AUTHENTICATE data
 * E_IFD | M_IFD (rnd_ifd, k_ifd NULL: random); scp_bac_host_finish checks
 * the chip's E_IC | M_IC in constant time (SCP_E_CRYPTOGRAM) and starts
 * the secure-messaging session. The scp_bac state is wiped either way. */
typedef struct scp_bac {
    uint8_t k_enc[16], k_mac[16];
    uint8_t rnd_ic[8], rnd_ifd[8], k_ifd[16];
} scp_bac;
/* Terminal side of ICAO 9303-11 9.7 BAC, step 1: from the document's
 * RND.IC (GET CHALLENGE), build E_IFD | M_IFD (40 bytes) for EXTERNAL
 * AUTHENTICATE into out, keeping RND.IFD and K.IFD in b (NULL: random).
 * SCP_E_ARG or SCP_E_CRYPTO (RNG); b must be wiped by the caller on error. */
SCP_MUST_CHECK int scp_bac_host_auth(scp_bac *b, const uint8_t k_enc[16], const uint8_t k_mac[16],
                                     const uint8_t rnd_ic[8], const uint8_t *rnd_ifd,
                                     const uint8_t *k_ifd, uint8_t out[40]);
/* BAC step 2: check the chip's E_IC | M_IC (40 bytes) against b, derive
 * the session keys and SSC, start the host session sm. SCP_E_CRYPTOGRAM
 * when the answer does not check (MAC or the echo of RND.IFD; sm not
 * started); b is wiped on every path. */
SCP_MUST_CHECK int scp_bac_host_finish(scp_bac *b, const uint8_t resp[40], scp_sm *sm);
/* Chip side: verify E_IFD | M_IFD against our RND.IC, answer E_IC | M_IC
 * (k_ic NULL: random) and start the card's session. SCP_E_CRYPTOGRAM
 * when the MAC or the challenge does not match (answer 6300). */
SCP_MUST_CHECK int scp_bac_card_auth(const uint8_t k_enc[16], const uint8_t k_mac[16],
                                     const uint8_t rnd_ic[8], const uint8_t *k_ic,
                                     const uint8_t *cmd, size_t cmd_len, uint8_t out[40],
                                     scp_sm *sm);

#ifdef __cplusplus
}
#endif
#endif
