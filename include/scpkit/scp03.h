/* scpkit: the SCP03 secure channel (GPC v2.3 Amendment D v1.2), one
 * sans-I/O engine for both roles. A session turns a plain C-APDU into a
 * protected one in the caller's buffer and a protected R-APDU back into a
 * plain one (host), or the reverse (card). It never does I/O and never
 * allocates per APDU (the OpenSSL fallback allocates its key contexts once
 * per session, when the session keys are derived).
 *
 * A session starts zeroed (`scp03_session s = {0};`) or after scp03_end();
 * starting a new handshake on a used session ends the old one first.
 * s.ctx (NULL: the default) chooses the crypto backend and the RNG for
 * the session's keys and challenges; set it before the handshake; it
 * survives scp03_end and the end of a failed session. Sessions share
 * nothing: any number may run in any number of threads, one thread per
 * session at a time.
 *
 * Any MAC, cryptogram or padding failure ends the session for good: the
 * session keys are wiped and every later call returns SCP_E_DEAD.
 *
 * Errors come in two kinds, and each function below says which it returns:
 *  - "unchanged": the session is byte for byte as it was before the call
 *    (SCP_E_ARG, SCP_E_STATE, SCP_E_DEAD, SCP_E_BUFFER_TOO_SMALL, and the
 *    other errors each function lists). The call may be retried, e.g.
 *    with a bigger output buffer: every output size is checked before
 *    anything in the session changes.
 *  - "kills": the session is ended (keys wiped, state SCP03_DEAD, every
 *    later call SCP_E_DEAD).
 * No function writes into `out` beyond out_size, and none writes `out` or
 * *out_len on an "unchanged" error. */
#ifndef SCPKIT_SCP03_H
#define SCPKIT_SCP03_H

#include <stddef.h>
#include <stdint.h>
#include "scpkit/smchain.h"
#include "scpkit/crypto.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Security levels for EXTERNAL AUTHENTICATE P1 (GPC Amd D 7.1.2). */
#define SCP_LEVEL_NONE 0x00
#define SCP_LEVEL_CMAC 0x01
#define SCP_LEVEL_CDEC 0x02
#define SCP_LEVEL_RMAC 0x10
#define SCP_LEVEL_RENC 0x20
/* The only combinations Amd D allows: 00, 01, 03, 11, 13, 33. */
int scp03_level_valid(uint8_t level);

/* The i parameter (GPC Amd D 5.1, table 5-1; v1.2 adds b1 for S16). */
#define SCP03_I_S16 0x01
#define SCP03_I_PSEUDO_RANDOM 0x10
#define SCP03_I_RMAC 0x20
#define SCP03_I_RENC 0x40
/* Does a card with this i allow this level? */
int scp03_level_allowed(uint8_t i, uint8_t level);

#define SCP03_KDD_LEN 10
#define SCP03_SEQ_LEN 3
#define SCP03_CHAL_MAX 16
#define SCP03_AID_MAX 16
#define SCP03_IU_RESP_MAX (10 + 3 + 16 + 16 + 3)
/* The most scp03_host_wrap adds to a C-APDU: an out_size of
 * len + SCP03_WRAP_OVERHEAD always suffices. Worst case (S16, C-DEC, 240
 * bytes of data with Le in a short APDU): 16 bytes of padding, a 16-byte
 * C-MAC, and the 272-byte Lc' makes the APDU extended, so Lc grows by 2
 * (00 Lc1 Lc2) and Le by 1 (Le1 Le2): 16 + 16 + 2 + 1 = 35. */
#define SCP03_WRAP_OVERHEAD 35
/* The most scp03_card_wrap adds to data | SW1 SW2: padding up to 16 and a
 * 16-byte R-MAC. */
#define SCP03_RWRAP_OVERHEAD 32

/* A static key set: Key-ENC, Key-MAC, Key-DEK, all key_len bytes. */
typedef struct scp03_keys {
    uint8_t enc[SCP_AES_MAX_KEY];
    uint8_t mac[SCP_AES_MAX_KEY];
    uint8_t dek[SCP_AES_MAX_KEY];
    uint8_t key_len; /* 16, 24 or 32 */
    uint8_t kvn;
} scp03_keys;

typedef enum scp03_state {
    SCP03_IDLE = 0,
    SCP03_IU_SENT,    /* host: INITIALIZE UPDATE built */
    SCP03_IU_DONE,    /* host: card authenticated; card: challenge sent */
    SCP03_EA_SENT,    /* host: EXTERNAL AUTHENTICATE built */
    SCP03_OPEN,       /* channel open at `level` */
    SCP03_DEAD,       /* ended by a failure; keys wiped */
} scp03_state;

typedef struct scp03_session {
    const scp_ctx *ctx; /* backend and RNG (NULL: the default); kept by scp03_end */
    uint8_t role;  /* 0 host, 1 card */
    uint8_t state; /* scp03_state */
    uint8_t i;     /* the card's i parameter */
    uint8_t level;
    uint8_t kvn;
    uint8_t key_len;
    uint8_t chal_len; /* 8 (S8) or 16 (S16): challenges, cryptograms, MACs */
    uint8_t resp_pending; /* a command was protected; its response is due */
    uint8_t host_chal[SCP03_CHAL_MAX];
    uint8_t card_chal[SCP03_CHAL_MAX];
    uint8_t kdd[SCP03_KDD_LEN];
    uint8_t seq[SCP03_SEQ_LEN];
    uint8_t has_seq;
    int dead_rc; /* the error that ended the session */
    /* the MAC chaining value (chain.u.icv) and the C-DEC / R-ENC counter
     * of the last command (chain.counter, below 2^32: Amd D 6.2.6 ends the
     * session before it wraps) <scpkit/smchain.h> */
    scp_sm_chain chain;
    /* host: the C-DEC ICV for counter icv_ahead_for, made during the
     * previous command (0: none; counters start at 1) */
    uint32_t icv_ahead_for;
    union {
        /* The host cryptogram, made with the card cryptogram (GPC Amd D
         * 6.2.2.3): the host sends it, the card expects it, at EXTERNAL
         * AUTHENTICATE; wiped there, before the channel opens. */
        uint8_t host_cryptogram[SCP03_CHAL_MAX];
        /* host, once open: the ICV for icv_ahead_for */
        uint8_t icv_ahead[16];
    };
    /* S-ENC and S-RMAC kept raw and expanded per use; S-MAC, which every
     * command MACs with, expanded once. Until the INITIALIZE UPDATE
     * response, the host keeps the static Key-ENC and Key-MAC in the raw
     * keys' places (s_enc, s_rmac). */
    scp_aes_raw_slot s_enc, s_rmac;
    scp_aes_slot s_mac;
} scp03_session;

/* Parsed INITIALIZE UPDATE response (GPC Amd D 7.1.1). */
typedef struct scp03_iu_resp {
    uint8_t kdd[SCP03_KDD_LEN];
    uint8_t kvn;
    uint8_t scp_id; /* 03 */
    uint8_t i;
    uint8_t chal_len;
    uint8_t card_chal[SCP03_CHAL_MAX];
    uint8_t card_cryptogram[SCP03_CHAL_MAX];
    uint8_t has_seq;
    uint8_t seq[SCP03_SEQ_LEN];
} scp03_iu_resp;

/* Parse an INITIALIZE UPDATE response (GPC Amd D 7.1.1.6: 29 or 32
 * bytes for S8, 45 or 48 for S16). SCP_E_LENGTH for any other length,
 * SCP_E_UNSUPPORTED when the SCP identifier is not 03; out is zeroed first. */
SCP_MUST_CHECK int scp03_iu_resp_parse(const uint8_t *p, size_t len, scp03_iu_resp *out);

/* ---- host role (off-card entity) ---- */

/* Start a host session. host_chal may be NULL (random); chal_len 8 (S8)
 * or 16 (S16). The static ENC and MAC keys are copied and wiped once the
 * session keys exist. Errors: SCP_E_ARG unchanged; once the arguments are
 * good the old session is ended first, so a failing RNG (SCP_E_CRYPTO)
 * leaves it ended (as after scp03_end). */
SCP_MUST_CHECK int scp03_host_begin(scp03_session *s, const scp03_keys *keys,
                                    const uint8_t *host_chal, size_t chal_len);
/* INITIALIZE UPDATE: 80 50 KVN 00 Lc host-challenge 00. cla lets the
 * caller use a logical channel (low bits kept). Needs out_size >= 6 +
 * challenge length; writes exactly that. Every error: unchanged. */
SCP_MUST_CHECK int scp03_host_initialize_update(scp03_session *s, uint8_t cla, uint8_t *out,
                                                size_t out_size, size_t *out_len);
/* Process the card's response data (SW removed; the caller checks it was
 * 9000). Derives the session keys and verifies the card cryptogram in
 * constant time. SCP_E_ARG/STATE/DEAD: unchanged; any other error (bad
 * length or format, another mode or key set than asked, SCP_E_CRYPTOGRAM,
 * SCP_E_CRYPTO) kills. */
SCP_MUST_CHECK int scp03_host_iu_response(scp03_session *s, const uint8_t *resp, size_t len);
/* EXTERNAL AUTHENTICATE at `level`: 84 82 level 00 Lc host-cryptogram C-MAC.
 * Needs out_size >= 5 + 2 x challenge length; writes exactly that.
 * SCP_E_LEVEL (not an Amd D level), SCP_E_UNSUPPORTED (the card's i rules
 * it out), SCP_E_BUFFER_TOO_SMALL, SCP_E_ARG/STATE/DEAD: unchanged;
 * SCP_E_CRYPTO kills. */
SCP_MUST_CHECK int scp03_host_external_authenticate(scp03_session *s, uint8_t level,
                                                    uint8_t *out, size_t out_size,
                                                    size_t *out_len);
/* Flags for scp03_host_external_authenticate_ex. */
#define SCP03_EA_EXTENDED 0x01u /* extended Lc: 84 82 level 00 00 00 Lc ... */
/* The same with flags: SCP03_EA_EXTENDED sends the extended-length form
 * (ISO 7816-4 5.1; the C-MAC covers the header as sent), as yubikit does.
 * Needs 2 bytes more. Errors as above; unknown flags: SCP_E_ARG. */
SCP_MUST_CHECK int scp03_host_external_authenticate_ex(scp03_session *s, uint8_t level,
                                                       unsigned flags, uint8_t *out,
                                                       size_t out_size, size_t *out_len);
/* The card's status word for EXTERNAL AUTHENTICATE: 9000 opens the
 * channel; anything else kills the session (SCP_E_AUTH).
 * SCP_E_ARG/STATE/DEAD: unchanged. */
SCP_MUST_CHECK int scp03_host_ea_result(scp03_session *s, uint16_t sw);
/* Protect one plain C-APDU (any ISO 7816-4 case, short or extended).
 * Needs exactly the protected length (at most len + SCP03_WRAP_OVERHEAD)
 * and writes exactly that: out_size = len + SCP03_WRAP_OVERHEAD always
 * does. out may be capdu. Unchanged: SCP_E_ARG (bad CLA: already SM),
 * SCP_E_STATE (an R-MAC response is still due), SCP_E_DEAD, a malformed
 * APDU (SCP_E_TRUNCATED/LENGTH/FORMAT), SCP_E_LENGTH (more data than one
 * extended APDU carries after protection), SCP_E_COUNTER (2^32 - 1
 * commands), SCP_E_BUFFER_TOO_SMALL. Kills: SCP_E_CRYPTO. */
SCP_MUST_CHECK int scp03_host_wrap(scp03_session *s, const uint8_t *capdu, size_t len,
                                   uint8_t *out, size_t out_size, size_t *out_len);
/* Verify and unprotect the R-APDU (data | SW1 SW2) of the last wrapped
 * command; writes plain data | SW1 SW2. Needs out_size >= len, less the
 * R-MAC when one is due (R-ENC decrypts in place, so the plain response
 * may be shorter than that); out may be rapdu. Unchanged: SCP_E_ARG,
 * SCP_E_STATE, SCP_E_DEAD, SCP_E_TRUNCATED/LENGTH (not an R-APDU),
 * SCP_E_BUFFER_TOO_SMALL. Kills: SCP_E_MAC (R-MAC missing or wrong, or
 * data on an error status at an R-MAC level), SCP_E_PADDING, SCP_E_CRYPTO;
 * nothing decrypted is left in out then. */
SCP_MUST_CHECK int scp03_host_unwrap(scp03_session *s, const uint8_t *rapdu, size_t len,
                                     uint8_t *out, size_t out_size, size_t *out_len);

/* ---- card role (security domain) ---- */

/* Card-side parameters of one INITIALIZE UPDATE. */
typedef struct scp03_card_params {
    uint8_t i;
    uint8_t kdd[SCP03_KDD_LEN];
    /* pseudo-random challenge: the sequence counter value to use (already
     * made durable by the caller) and the SD AID */
    uint32_t seq;
    const uint8_t *aid;
    size_t aid_len;
    /* known-answer tests only: use this card challenge instead of a
     * random or derived one (NULL in every real card) */
    const uint8_t *fixed_card_chal;
} scp03_card_params;

/* Answer INITIALIZE UPDATE with host_chal (8 or 16 bytes; 16 only when
 * i has S16) and the key set the caller selected. Writes the response
 * data (no SW): needs out_size >= 13 + 2 x challenge length (+ 3 with a
 * pseudo-random challenge), and writes exactly that. SCP_E_ARG,
 * SCP_E_LENGTH (challenge length), SCP_E_BUFFER_TOO_SMALL: unchanged (any
 * previous session too); after them the previous session is ended, and a
 * later error (bad AID or counter for a pseudo-random challenge, RNG or
 * crypto failure) kills the new one. */
SCP_MUST_CHECK int scp03_card_initialize_update(scp03_session *s, const scp03_card_params *prm,
                                                const scp03_keys *keys,
                                                const uint8_t *host_chal, size_t chal_len,
                                                uint8_t *out, size_t out_size, size_t *out_len);
/* Verify EXTERNAL AUTHENTICATE (whole C-APDU, Lc short or extended, with
 * or without Le). SCP_OK opens the channel. SCP_E_ARG/STATE/DEAD:
 * unchanged. Every other error kills: a malformed APDU, SCP_E_FORMAT (not
 * 84 82 .. 00), SCP_E_LENGTH (Lc is not 2 x challenge length),
 * SCP_E_LEVEL (a level the card refuses: not an attack, only a new
 * INITIALIZE UPDATE helps), SCP_E_MAC, SCP_E_CRYPTOGRAM. */
SCP_MUST_CHECK int scp03_card_external_authenticate(scp03_session *s, const uint8_t *capdu,
                                                    size_t len);
/* Verify and unprotect a protected C-APDU; writes the plain C-APDU. A
 * command without the secure-messaging CLA bit while the level requires
 * it ends the session (SCP_E_MAC). Needs out_size >= len (the plain
 * command is never longer than the protected one); out may be capdu.
 * Unchanged: SCP_E_ARG, SCP_E_STATE, SCP_E_DEAD, SCP_E_COUNTER,
 * SCP_E_BUFFER_TOO_SMALL. Kills: a malformed APDU, SCP_E_MAC,
 * SCP_E_PADDING, SCP_E_CRYPTO; nothing decrypted is left in out then. */
SCP_MUST_CHECK int scp03_card_unwrap(scp03_session *s, const uint8_t *capdu, size_t len,
                                     uint8_t *out, size_t out_size, size_t *out_len);
/* Protect the response (data, sw) to the last unwrapped command. Needs
 * exactly what it writes: data | SW (bare: no R-MAC level, or an error SW,
 * which drops the data: 2 bytes), or data padded when R-ENC | R-MAC | SW;
 * at most len + 2 + SCP03_RWRAP_OVERHEAD. data may be out. Unchanged:
 * SCP_E_ARG, SCP_E_STATE (no command to answer), SCP_E_DEAD, SCP_E_LENGTH
 * (more than 65536 bytes after protection), SCP_E_BUFFER_TOO_SMALL.
 * Kills: SCP_E_CRYPTO. */
SCP_MUST_CHECK int scp03_card_wrap(scp03_session *s, const uint8_t *data, size_t len,
                                   uint16_t sw, uint8_t *out, size_t out_size, size_t *out_len);

/* ---- a session opened by another handshake (SCP11) ---- */

/* Session keys and start values handed over by a handshake that is not
 * SCP03's own (GPC Amd F: SCP11 derives them by ECDH and keeps SCP03's
 * secure messaging). */
typedef struct scp03_open_params {
    uint8_t role;        /* 0 host, 1 card */
    uint8_t level;       /* security level, as for EXTERNAL AUTHENTICATE */
    uint8_t key_len;     /* 16, 24 or 32 */
    uint8_t mac_len;     /* 8 (S8) or 16 (S16): appended C-MAC and R-MAC */
    uint8_t kvn;         /* for the record only */
    const uint8_t *enc;  /* S-ENC, S-MAC, S-RMAC, key_len bytes each */
    const uint8_t *mac;
    const uint8_t *rmac;
    const uint8_t *mac_chain; /* 16 bytes: the initial MAC chaining value */
} scp03_open_params;

/* Start a session in OPEN state from given session keys and chaining
 * value; the counter starts at 0 (the first protected command uses 1).
 * The keys are copied into the session (the caller wipes its own). Any
 * session in `s` is ended first. */
SCP_MUST_CHECK int scp03_session_from_keys(scp03_session *s, const scp03_open_params *p);

/* ---- both ---- */

/* End the session and wipe every key (the whole struct is zeroed). */
void scp03_end(scp03_session *s);
/* 1 when the channel is open (EXTERNAL AUTHENTICATE done and accepted). */
static inline int scp03_is_open(const scp03_session *s) { return s->state == SCP03_OPEN; }
/* Largest plain command data that still fits one short (or extended) APDU
 * after protection at the session's level. */
size_t scp03_max_plain_data(const scp03_session *s, int extended);
/* CLA with the secure-messaging bit: b3 for first interindustry and
 * proprietary classes, b6 for further interindustry (GPC 11.1.4). */
uint8_t scp03_sm_cla(uint8_t cla);
/* The session keys' KCVs (for test transcripts): AES(key, 16x01)[0..2]. */
SCP_MUST_CHECK int scp03_session_kcvs(const scp03_session *s, uint8_t enc[3], uint8_t mac[3],
                                      uint8_t rmac[3]);

#ifdef __cplusplus
}
#endif
#endif
