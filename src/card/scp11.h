/* scpkit card internal: SCP11 in the virtual card (GPC v2.3 Amendment F,
 * as a YubiKey 5.7 offers it): the SD's EC key pairs and OCE CA keys, the
 * certificate stores, CA issuer identifiers and allow-lists, kept in
 * DIR/scp11.state (versioned, SHA-256 checked, written atomically like
 * DIR/card.state); PSO, MUTUAL/INTERNAL AUTHENTICATE and the key
 * management commands yubikit's SecurityDomainSession sends. */
#ifndef SCPKIT_CARD_SCP11_H
#define SCPKIT_CARD_SCP11_H

#include "card/internal.h"
#include "scpkit/scp11.h"

#define C11_STATE_FILE "scp11.state"
#define C11_CA_PEM "sd-ca.pem"
#define C11_MAX_KEYS 12
#define C11_MAX_STORES 6
#define C11_STORE_MAX 900 /* a short response keeps room for the MAC */
#define C11_MAX_ISSUERS 6
#define C11_MAX_ALLOW 4
#define C11_ALLOW_N 8
#define C11_PSO_MAX 2048
#define C11_CA_CERT_MAX 600
#define C11_TRIES 65 /* yubikit's reset blocks keys with 65 failed tries */

typedef struct c11_key {
    uint8_t kid, kvn, curve, priv, fails;
    uint8_t d[SCP_EC_MAX_FIELD];
    uint8_t pt[SCP_EC_MAX_POINT];
    uint8_t pt_len;
} c11_key;

typedef struct c11_store {
    uint8_t kid, kvn;
    uint16_t len;
    uint8_t der[C11_STORE_MAX]; /* DER certificates, leaf last */
} c11_store;

typedef struct c11_issuer {
    uint8_t kid, kvn, klcc, ski_len;
    uint8_t ski[SCP_CERT_MAX_ID];
} c11_issuer;

typedef struct c11_allow {
    uint8_t kid, kvn, n;
    uint8_t len[C11_ALLOW_N];
    uint8_t serial[C11_ALLOW_N][SCP_CERT_MAX_ID];
} c11_allow;

typedef struct c11_state {
    uint8_t nkeys, nstores, nissuers, nallow;
    c11_key keys[C11_MAX_KEYS];
    c11_store stores[C11_MAX_STORES];
    c11_issuer issuers[C11_MAX_ISSUERS];
    c11_allow allow[C11_MAX_ALLOW];
    /* the per-card lab CA that issues the SD certificates (DIR/sd-ca.pem) */
    uint8_t ca_d[32];
    uint16_t ca_cert_len;
    uint8_t ca_cert[C11_CA_CERT_MAX];
} c11_state;

typedef struct card_scp11 {
    c11_state st;
    /* PERFORM SECURITY OPERATION in progress (volatile) */
    uint8_t pso[C11_PSO_MAX];
    size_t pso_len;
    uint8_t pso_on, pso_p1, pso_p2;
    uint8_t chain_on, ca_kid, ca_kvn; /* a chain is being verified */
    scp_ec_key signer;                /* the next certificate's signer */
    scp_ec_key pk_oce;                /* the verified leaf's key */
    uint8_t pk_oce_on, oce_ca_kid, oce_ca_kvn;
    /* a chained command inside a session (ISO 7816-4 5.1.1.1), each piece
     * unwrapped on its own: the plain data so far (STORE DATA, PUT KEY) */
    uint8_t chain[C11_PSO_MAX];
    size_t chain_len;
    uint8_t chain_ins, chain_p1, chain_p2;
} card_scp11;

/* ---- scp11_state.c ---- */
SCP_MUST_CHECK int card_scp11_init(const char *dir, const scp_card_init_opts *o);
SCP_MUST_CHECK int card_scp11_open(scp_card *c, char *err, size_t err_size);
void card_scp11_close(scp_card *c);
SCP_MUST_CHECK int card_scp11_save(scp_card *c, const c11_state *st);
c11_key *c11_find_key(c11_state *st, uint8_t kid, uint8_t kvn);
SCP_MUST_CHECK int c11_key_load(const c11_key *k, scp_ec_key *out);
SCP_MUST_CHECK int c11_key_set(c11_key *k, const scp_ec_key *from);
/* Factory state of the SCP11 part (a YubiKey reset): no keys, stores,
 * issuers or allow-lists, and with `yubikey` a new SCP11b key 13/01. */
SCP_MUST_CHECK int c11_factory_reset(c11_state *st, int yubikey);
/* Issue and store the SD certificate for key k with the card's lab CA. */
SCP_MUST_CHECK int c11_issue_sd_cert(c11_state *st, const c11_key *k);

/* ---- scp11.c ---- */
/* The plain SCP11 handshake commands (PSO, MUTUAL / INTERNAL AUTHENTICATE)
 * before the SCP03 paths: 1 when handled (r filled), 0 when not; a
 * pending chained PSO is dropped by any other command. */
SCP_MUST_CHECK int card_scp11_hook(scp_card *c, const scp_apdu *a, const uint8_t *capdu,
                                   size_t len, card_resp *r);
/* ISD commands: GET DATA BF21/FF33/FF34, GENERATE KEY, STORE DATA, PUT KEY
 * and DELETE KEY for EC keys, and key management refused in an SCP11b
 * session. 1 handled, 0 not, < 0 local failure. */
SCP_MUST_CHECK int card_scp11_isd(scp_card *c, const scp_apdu *a, card_resp *r);

#endif
