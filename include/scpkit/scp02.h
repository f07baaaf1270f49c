/* scpkit: the SCP02 secure channel (GPC v2.2.1 appendix E; GP 2.1.1
 * cards), one sans-I/O engine for both roles, on the constant-time 3DES
 * of include/scpkit/des.h.
 *
 * Explicit initiation only (INITIALIZE UPDATE / EXTERNAL AUTHENTICATE);
 * the i parameter chooses the C-MAC form (modified or unmodified APDU),
 * ICV encryption and the pseudo-random card challenge. Levels 00, 01, 03,
 * 11, 13.
 *
 * A session starts zeroed or after scp02_end(). Any MAC, cryptogram or
 * padding failure ends it: keys wiped, every later call SCP_E_DEAD. */
#ifndef SCPKIT_SCP02_H
#define SCPKIT_SCP02_H

#include <stddef.h>
#include <stdint.h>
#include "scpkit/smchain.h"
#include "scpkit/des.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The i parameter (GPC 2.2.1 E.1.1, table E-1). */
#define SCP02_I_3KEYS 0x01           /* three static keys (else one base key) */
#define SCP02_I_CMAC_UNMODIFIED 0x02 /* C-MAC over the unmodified APDU */
#define SCP02_I_EXPLICIT 0x04        /* explicit initiation (IU / EA) */
#define SCP02_I_ICV_MAC_AID 0x08     /* ICV = MAC over the AID (implicit only) */
#define SCP02_I_ICV_ENC 0x10         /* ICV encrypted for each C-MAC */
#define SCP02_I_RMAC 0x20            /* R-MAC supported */
#define SCP02_I_PSEUDO_RANDOM 0x40   /* well-known pseudo-random card challenge */

/* Is i one this engine runs (explicit initiation, ICV not over the AID)? */
int scp02_i_supported(uint8_t i);
/* EXTERNAL AUTHENTICATE P1: 00, 01 C-MAC, 03 +C-DECRYPTION, 11 +R-MAC, 13. */
int scp02_level_valid(uint8_t level);

#define SCP02_KEY_LEN 16
#define SCP02_KDD_LEN 10
#define SCP02_IU_RESP_LEN 28 /* KDD(10) KVN 02 seq(2) card challenge(6) cryptogram(8) */
/* Overhead a wrapped command adds to its data: padding (8) and C-MAC (8). */
#define SCP02_WRAP_OVERHEAD 16

typedef struct scp02_keys {
    uint8_t enc[SCP02_KEY_LEN], mac[SCP02_KEY_LEN], dek[SCP02_KEY_LEN];
    uint8_t kvn;
} scp02_keys;

typedef enum scp02_state {
    SCP02_IDLE = 0,
    SCP02_IU_SENT,
    SCP02_IU_DONE,
    SCP02_EA_SENT,
    SCP02_OPEN,
    SCP02_DEAD,
} scp02_state;

typedef struct scp02_session {
    uint8_t role; /* 0 host, 1 card */
    uint8_t state;
    uint8_t i;
    uint8_t level;
    uint8_t kvn;
    uint8_t resp_pending;
    uint8_t host_chal[8];
    uint8_t card_chal[6];
    uint8_t seq[2];
    uint8_t kdd[SCP02_KDD_LEN];
    uint8_t host_cryptogram[8];
    uint8_t static_enc[16], static_mac[16], static_dek[16]; /* host: until IU response */
    /* the last C-MAC (before ICV encryption; zero before EA) and the R-MAC
     * chaining value (the EA C-MAC, then each R-MAC): chain.u.scp02.cmac,
     * chain.u.scp02.rmac <scpkit/smchain.h> */
    scp_sm_chain chain;
    /* R-MAC input of the pending command: CLA (channel and SM bits clear)
     * INS P1 P2 Lc data; the response part is added when it comes */
    scp_des_mac rmac;
    scp_des3 s_enc, s_cmac, s_rmac, s_dek;
    int dead_rc;
} scp02_session;

/* Parsed INITIALIZE UPDATE response (GPC 2.2.1 E.5.1.4). */
typedef struct scp02_iu_resp {
    uint8_t kdd[SCP02_KDD_LEN];
    uint8_t kvn;
    uint8_t scp_id; /* 02 */
    uint8_t seq[2];
    uint8_t card_chal[6];
    uint8_t card_cryptogram[8];
} scp02_iu_resp;

/* Parse the 28-byte INITIALIZE UPDATE response (GPC 2.2.1 E.5.1.6).
 * SCP_E_UNSUPPORTED when the SCP identifier is not 02, SCP_E_TRUNCATED /
 * SCP_E_LENGTH when shorter / longer; *out undefined on error. */
SCP_MUST_CHECK int scp02_iu_resp_parse(const uint8_t *p, size_t len, scp02_iu_resp *out);

/* ---- host role ---- */

/* Start a host session with the card's i (SCP02 cards do not send it in
 * the INITIALIZE UPDATE response: it comes from the card's recognition
 * data or configuration). host_chal NULL: random. */
SCP_MUST_CHECK int scp02_host_begin(scp02_session *s, const scp02_keys *keys, uint8_t i,
                                    const uint8_t host_chal[8]);
/* 80 50 KVN 00 08 host-challenge 00 (cla: logical channel bits kept). */
SCP_MUST_CHECK int scp02_host_initialize_update(scp02_session *s, uint8_t cla, uint8_t *out,
                                                size_t out_size, size_t *out_len);
/* The response data (SW removed). Derives the session keys, verifies
 * the card cryptogram in constant time and, when i says pseudo-random and
 * aid is given, the card challenge. */
SCP_MUST_CHECK int scp02_host_iu_response(scp02_session *s, const uint8_t *resp, size_t len,
                                          const uint8_t *aid, size_t aid_len);
/* 84 82 level 00 10 host-cryptogram C-MAC. */
SCP_MUST_CHECK int scp02_host_external_authenticate(scp02_session *s, uint8_t level,
                                                    uint8_t *out, size_t out_size,
                                                    size_t *out_len);
/* The card's SW for EXTERNAL AUTHENTICATE: 9000 opens the channel;
 * anything else kills the session (SCP_E_AUTH). SCP_E_STATE unchanged when
 * no EXTERNAL AUTHENTICATE is pending. */
SCP_MUST_CHECK int scp02_host_ea_result(scp02_session *s, uint16_t sw);
/* Protect a plain short C-APDU at the session's level (E.4.4 C-MAC over
 * the modified or unmodified APDU as i says, E.4.5 C-DECRYPTION). Needs
 * out_size >= 5 + padded data + 8 + 1. Unchanged on SCP_E_ARG, SCP_E_STATE,
 * SCP_E_DEAD, SCP_E_LENGTH, SCP_E_BUFFER_TOO_SMALL; a crypto failure kills. */
SCP_MUST_CHECK int scp02_host_wrap(scp02_session *s, const uint8_t *capdu, size_t len,
                                   uint8_t *out, size_t out_size, size_t *out_len);
/* R-APDU (data | SW) of the last wrapped command -> plain data | SW. At
 * an R-MAC level every response carries its R-MAC before the SW. */
SCP_MUST_CHECK int scp02_host_unwrap(scp02_session *s, const uint8_t *rapdu, size_t len,
                                     uint8_t *out, size_t out_size, size_t *out_len);

/* ---- card role ---- */

typedef struct scp02_card_params {
    uint8_t i;
    uint8_t kdd[SCP02_KDD_LEN];
    uint16_t seq;       /* sequence counter for this session, already durable */
    const uint8_t *aid; /* SD AID (pseudo-random card challenge) */
    size_t aid_len;
    const uint8_t *fixed_card_chal; /* known-answer tests only (6 bytes) */
} scp02_card_params;

/* Card side of INITIALIZE UPDATE: derive the session keys (E.4.1), make
 * the card challenge and cryptogram, write the 28-byte response. Unchanged
 * on SCP_E_ARG, SCP_E_LENGTH (chal_len not 8), SCP_E_UNSUPPORTED (i),
 * SCP_E_BUFFER_TOO_SMALL; a failure after that kills the session. */
SCP_MUST_CHECK int scp02_card_initialize_update(scp02_session *s, const scp02_card_params *prm,
                                                const scp02_keys *keys,
                                                const uint8_t *host_chal, size_t chal_len,
                                                uint8_t *out, size_t out_size, size_t *out_len);
/* SCP_OK opens the channel; SCP_E_LEVEL for a refused level (a new
 * INITIALIZE UPDATE is needed); SCP_E_MAC / SCP_E_CRYPTOGRAM end it. */
SCP_MUST_CHECK int scp02_card_external_authenticate(scp02_session *s, const uint8_t *capdu,
                                                    size_t len);
/* Verify and unprotect a C-APDU (C-MAC, then C-DECRYPTION). A plain
 * command in a MACed session, a bad MAC or bad padding kills the session
 * (SCP_E_MAC, SCP_E_PADDING); SCP_E_BUFFER_TOO_SMALL (out_size < len) and
 * SCP_E_STATE / SCP_E_DEAD leave it unchanged. */
SCP_MUST_CHECK int scp02_card_unwrap(scp02_session *s, const uint8_t *capdu, size_t len,
                                     uint8_t *out, size_t out_size, size_t *out_len);
/* Protect the response data | sw (E.4.6 R-MAC when the level asks).
 * Needs out_size >= len + 2 (+ 8 with R-MAC); SCP_E_LENGTH over 248 bytes
 * with R-MAC (256 without); errors leave the session unchanged. */
SCP_MUST_CHECK int scp02_card_wrap(scp02_session *s, const uint8_t *data, size_t len,
                                   uint16_t sw, uint8_t *out, size_t out_size, size_t *out_len);

/* ---- both ---- */

/* End the session: every key wiped, the struct zeroed (NULL: no-op). */
void scp02_end(scp02_session *s);
/* 1 when the channel is open (EXTERNAL AUTHENTICATE accepted). */
static inline int scp02_is_open(const scp02_session *s) { return s->state == SCP02_OPEN; }

/* PUT KEY key data under the session DEK (GPC 2.2.1 E.4.7: 3DES-ECB):
 * a DES key (type 80: 80 10 <ct16> 03 <KCV = 3DES(key, 8 x 00)>) or an
 * AES-128 key for a move to SCP03 (type 88: 88 11 10 <ct16> 03 <KCV =
 * AES(key, 16 x 01)>). scp02_putkey_build writes the whole data field:
 * new_kvn | 3 key blocks (ENC, MAC, DEK). */
#define SCP02_PUTKEY_DES 0x80
#define SCP02_PUTKEY_AES 0x88
#define SCP02_PUTKEY_MAX (1 + 3 * 23)
/* PUT KEY key data for a new key set under the session DEK (see
 * above). Needs an open session; SCP_E_UNSUPPORTED for another key_type,
 * SCP_E_BUFFER_TOO_SMALL; out untouched on error, the session unchanged. */
SCP_MUST_CHECK int scp02_putkey_build(const scp02_session *s, uint8_t key_type, uint8_t new_kvn,
                                      const uint8_t enc[16], const uint8_t mac[16],
                                      const uint8_t dek[16], uint8_t *out, size_t out_size,
                                      size_t *out_len);
/* KCV of a new key: 3DES(key, 8 x 00)[0..2] on the constant-time DES for
 * type 80, AES(key, 16 x 01)[0..2] for type 88. */
SCP_MUST_CHECK int scp02_kcv(uint8_t key_type, const uint8_t key[16], uint8_t kcv[3]);
/* Card side: decrypt and check (KCVs in constant time) a PUT KEY data
 * field; accepts 80 10 / 88 10 / 88 11 10 forms, all three keys of one
 * type. *key_type is 80 or 88; on error the keys are wiped. */
SCP_MUST_CHECK int scp02_putkey_parse(const scp02_session *s, const uint8_t *data, size_t len,
                                      uint8_t *new_kvn, uint8_t *key_type, uint8_t enc[16],
                                      uint8_t mac[16], uint8_t dek[16]);

#ifdef __cplusplus
}
#endif
#endif
