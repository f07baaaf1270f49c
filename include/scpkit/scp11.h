/* scpkit: the SCP11 secure channel (GPC v2.3 Amendment F), variants a, b
 * and c, both roles, sans-I/O. The handshake is an ECDH key agreement
 * (MUTUAL AUTHENTICATE for 11a/11c, INTERNAL AUTHENTICATE for 11b) whose
 * X9.63-derived keys open an SCP03 secure-messaging session
 * (scp03_session_from_keys): after the handshake, wrap and unwrap are
 * SCP03's, on `s->sm`.
 *
 *   host                                   card
 *   [11a/c: PSO with the OCE chain] ---->  verify, keep PK.OCE.ECKA
 *   80 82|88 KVN KID  A6{..} 5F49 ePK.OCE ->
 *                      <----  5F49 ePK.SD  86 receipt
 *   receipt checked (constant time); both open at C-MAC C-DEC R-MAC R-ENC
 *
 * Any failure ends the session; its keys are wiped. */
#ifndef SCPKIT_SCP11_H
#define SCPKIT_SCP11_H

#include <stddef.h>
#include <stdint.h>
#include "scpkit/cert.h"
#include "scpkit/ec.h"
#include "scpkit/scp03.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SCP11_A 1
#define SCP11_B 2
#define SCP11_C 3

/* Key identifiers (GPC Amd F 4.x): SD key pairs and the OCE CA key. */
#define SCP11_KID_OCE_CA 0x10
#define SCP11_KID_A 0x11
#define SCP11_KID_B 0x13
#define SCP11_KID_C 0x15

#define SCP11_INS_MUTUAL_AUTH 0x82
#define SCP11_INS_INTERNAL_AUTH 0x88
#define SCP11_INS_PSO 0x2A
#define SCP11_KEY_USAGE 0x3C /* C-MAC, C-DEC, R-MAC, R-ENC */
#define SCP11_KEY_TYPE_AES 0x88
#define SCP11_CMD_DATA_MAX (15 + 3 + SCP_EC_MAX_POINT)

/* "a", "b", "c" -> SCP11_A.. (0 when not one), and back. */
int scp11_variant_from_name(const char *name);
/* The variant's name: "11a", "11b", "11c"; "?" for another value. */
const char *scp11_variant_name(int variant);
/* The i parameter (tag 90, second byte): 01 a, 00 b, 03 c. */
uint8_t scp11_i(int variant);
/* The SD key's default KID per variant. */
uint8_t scp11_default_kid(int variant);

typedef struct scp11_params {
    uint8_t variant; /* SCP11_A, SCP11_B, SCP11_C */
    uint8_t kid;     /* SD key reference: P2 */
    uint8_t kvn;     /* P1 */
    uint8_t key_len; /* session keys: 16, 24 or 32 */
    uint8_t mac_len; /* appended MACs: 8 (S8) or 16 (S16); both ends agree */
    uint8_t level;   /* secure-messaging level after the handshake; 0 = 33 */
} scp11_params;

/* SK.OCE.ECKA kept where it cannot be read (an HSM: ECDH with
 * CKM_ECDH1_DERIVE inside the token): the host asks ecdh() for the shared
 * secret with a peer point (04 X Y) instead of holding the key. ecdh writes
 * the X coordinate, the curve's field length, and returns an scp_rc. */
typedef struct scp11_oce_key {
    int curve;
    int (*ecdh)(void *ctx, const uint8_t *peer, size_t peer_len, uint8_t *out, size_t out_size,
                size_t *out_len);
    void *ctx;
} scp11_oce_key;

typedef struct scp11_session {
    scp03_session sm; /* secure messaging, once open */
    uint8_t role;     /* 0 host, 1 card */
    uint8_t state;    /* 0 idle, 1 auth sent (host), 2 open, 3 dead */
    scp11_params p;
    uint8_t curve;
    scp_ec_key esk;    /* host: ePK/eSK.OCE */
    scp_ec_key pk_sd;  /* host: PK.SD.ECKA (public copy) */
    scp_ec_key sk_oce; /* host, 11a/c: SK.OCE.ECKA (copy) */
    scp11_oce_key oce_ext; /* host, 11a/c: or SK.OCE.ECKA behind a callback */
    uint8_t oce_ext_on;
    uint8_t cmd_data[SCP11_CMD_DATA_MAX]; /* host: the command data, for the receipt */
    size_t cmd_len;
    uint8_t dek[SCP_AES_MAX_KEY]; /* S-DEK: PUT KEY in this session */
    uint8_t receipt[16];
    int dead_rc;
} scp11_session;

#define SCP11_IDLE 0
#define SCP11_AUTH_SENT 1
#define SCP11_OPEN 2
#define SCP11_DEAD 3

/* ---- host (off-card entity) ---- */

/* pk_sd: the SD's key (the last certificate of its verified chain); for
 * 11a/11c sk_oce is the OCE's static key (its certificate went up by PSO
 * first), NULL for 11b. esk: a fixed ephemeral key pair for known-answer
 * tests; NULL makes a fresh one on pk_sd's curve. Keys are copied. */
SCP_MUST_CHECK int scp11_host_begin(scp11_session *s, const scp11_params *p,
                                    const scp_ec_key *pk_sd, const scp_ec_key *sk_oce,
                                    const scp_ec_key *esk);
/* The same for 11a/11c with SK.OCE.ECKA behind oce->ecdh (an HSM). */
SCP_MUST_CHECK int scp11_host_begin_oce(scp11_session *s, const scp11_params *p,
                                        const scp_ec_key *pk_sd, const scp11_oce_key *oce,
                                        const scp_ec_key *esk);
/* 80 82|88 KVN KID Lc A6{90 02 11 i, 95 01 3C, 80 01 88, 81 01 len} 5F49 ePK 00;
 * cla's logical-channel bits are kept. */
SCP_MUST_CHECK int scp11_host_auth_command(scp11_session *s, uint8_t cla, uint8_t *out,
                                           size_t out_size, size_t *out_len);
/* The card's answer (data without SW: 5F49 ePK.SD 86 receipt). Derives the
 * keys, checks the receipt in constant time (SCP_E_CRYPTOGRAM when it
 * does not match) and opens s->sm. */
SCP_MUST_CHECK int scp11_host_auth_response(scp11_session *s, const uint8_t *resp, size_t len);

/* ---- card (security domain) ---- */

/* A parsed MUTUAL / INTERNAL AUTHENTICATE command. */
typedef struct scp11_auth_cmd {
    uint8_t cla, ins, kvn, kid;
    uint8_t variant; /* from tag 90's i */
    uint8_t key_len; /* tag 81 */
    const uint8_t *epk; /* 5F49 value: 04 X Y (borrowed) */
    size_t epk_len;
    const uint8_t *data; /* the whole command data (borrowed) */
    size_t data_len;
} scp11_auth_cmd;

/* Parse and check the form (SCP_E_FORMAT / SCP_E_LENGTH on a bad one;
 * SCP_E_UNSUPPORTED for a key usage, key type or length not offered). */
SCP_MUST_CHECK int scp11_auth_parse(const uint8_t *capdu, size_t len, scp11_auth_cmd *out);
struct scp_apdu;
/* As scp11_auth_parse, from an already parsed APDU (its data borrowed by
 * out); the same errors. */
SCP_MUST_CHECK int scp11_auth_parse_apdu(const struct scp_apdu *a, scp11_auth_cmd *out);

typedef struct scp11_card_keys {
    const scp_ec_key *sk_sd;  /* SK.SD.ECKA (the key at KID/KVN) */
    const scp_ec_key *pk_oce; /* 11a/c: PK.OCE.ECKA from the verified PSO chain */
    const scp_ec_key *fixed_esk; /* tests only: the card's ephemeral key pair */
    uint8_t mac_len;             /* 8 or 16 */
    uint8_t level;               /* 0 = 33 */
} scp11_card_keys;

/* Answer a parsed command: checks the variant against the INS and that
 * ePK.OCE is on SK.SD's curve, computes the keys, writes 5F49 ePK.SD 86
 * receipt into out (no SW), and opens s->sm in the card role. */
SCP_MUST_CHECK int scp11_card_authenticate(scp11_session *s, const scp11_card_keys *k,
                                           const scp11_auth_cmd *cmd, uint8_t *out,
                                           size_t out_size, size_t *out_len);

/* ---- both ---- */

/* End the session: the ephemeral keys freed, every secret wiped, the
 * secure messaging ended (scp03_end). NULL: no-op. */
void scp11_end(scp11_session *s);
/* 1 when the handshake completed and secure messaging is open. */
static inline int scp11_is_open(const scp11_session *s)
{
    return s->state == SCP11_OPEN && scp03_is_open(&s->sm);
}

/* Key derivation (GPC Amd F 6.5.2.3, 6.5.3): Z = ShSee | ShSes, X9.63 KDF
 * with SHA-256 and SharedInfo 3C 88 key_len; keys[0..4] = receipt key,
 * S-ENC, S-MAC, S-RMAC, S-DEK, key_len bytes each. */
SCP_MUST_CHECK int scp11_kdf(const uint8_t *shsee, const uint8_t *shses, size_t field_len,
                             size_t key_len, uint8_t keys[5][SCP_AES_MAX_KEY]);

/* ---- commands around the handshake ---- */

/* GET DATA certificate store: 00 CA BF 21 06 A6 04 83 02 KID KVN 00. */
SCP_MUST_CHECK int scp11_get_certs_command(uint8_t kid, uint8_t kvn, uint8_t *out,
                                           size_t out_size, size_t *out_len);

/* PERFORM SECURITY OPERATION with one OCE certificate, piece by piece:
 * call with *off = 0, send out, repeat while *off < len. P1 = the CA
 * key's KVN, P2 = its KID | 80 when more certificates follow. Pieces are
 * 255 bytes with ISO chaining (CLA | 10 on all but the last), P1 the same
 * on all (yubikit, YubiKey 5.7 trace), no Le. SCP11_PSO_SAMSUNG: P1 | 80
 * on all but the last and Le 00 (OpenSCP-Java). */
#define SCP11_PSO_SAMSUNG 1
/* The next PERFORM SECURITY OPERATION command of the chain for cert (len
 * bytes, from *off, which moves past the part sent): ISO chaining as
 * described above, flags 0 or SCP11_PSO_SAMSUNG; more_certs: a later
 * certificate follows. SCP_E_ARG when *off is at the end, and
 * SCP_E_BUFFER_TOO_SMALL (out_size under 5 + part + 1), with *off and out
 * unchanged. */
SCP_MUST_CHECK int scp11_pso_next(const uint8_t *cert, size_t len, size_t *off, uint8_t ca_kvn,
                                  uint8_t ca_kid, int more_certs, unsigned flags, uint8_t *out,
                                  size_t out_size, size_t *out_len);


/* ---- a host channel over a transport (src/scp11/channel.c) ---- */

struct scp_channel;
struct scp_transport;
typedef struct scp11_channel_opts {
    int variant;           /* SCP11_A, SCP11_B, SCP11_C */
    uint8_t kid, kvn;      /* SD key; 0: 13/01 for 11b, 11/03 or 15/03 for 11a/c */
    uint8_t key_len;       /* session keys; 0: 16 */
    const scp_trust *sd_trust; /* anchors for the SD's certificate chain (required) */
    int64_t now;           /* validity time (Unix seconds) */
    /* 11a/c: SK.OCE.ECKA and its chain (DER, root side first, leaf last) */
    const scp_ec_key *sk_oce;
    const scp11_oce_key *oce_ext; /* or the key behind a callback (an HSM) */
    const uint8_t *oce_chain;
    const size_t *oce_off, *oce_len;
    size_t oce_n;
    uint8_t oce_ca_kid, oce_ca_kvn; /* the card's OCE CA key; 0: 10 / the SD KVN */
    unsigned pso_flags;
    scp_cert_error *err;   /* why it failed, for the operator (may be NULL) */
    /* appended C-MAC / R-MAC: 0 or 8 S8, 16 S16. Nothing in the handshake
     * says which: the card's configuration does (scpkit's virtual card
     * follows its SCP03 i parameter, b1 = S16, as its recognition data
     * shows it). */
    uint8_t mac_len;
} scp11_channel_opts;

/* Open SCP11 on the selected SD: GET DATA BF21, the SD chain verified
 * against o->sd_trust, PSO (11a/c), MUTUAL/INTERNAL AUTHENTICATE; then
 * scp_channel_send and scp_channel_close work as for SCP03 (ch->dek is
 * the S-DEK). SCP_E_AUTH with o->err filled when trust fails. */
SCP_MUST_CHECK int scp11_channel_open(struct scp_channel *ch, struct scp_transport *t,
                                      scp11_channel_opts *o);

#ifdef __cplusplus
}
#endif
#endif
