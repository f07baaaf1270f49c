/* scpkit: the virtual secure element, a GlobalPlatform Issuer Security
 * Domain on the engine's card role, with its state in one directory.
 * Reachable in process (scp_card_transport) and through pcscd's vpcd
 * driver (scp_card_run_vpcd). Owned by src/card/. */
#ifndef SCPKIT_CARD_H
#define SCPKIT_CARD_H

#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include "scpkit/transport.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct scp_card scp_card; /* opaque */

/* Options for creating a card (scpkit card init). */
typedef struct scp_card_init_opts {
    const char *profile; /* "yubikey" (default), "gp23" */
    int scp_i;           /* -1: from the profile; else the i parameter */
    const uint8_t *key;  /* initial key (ENC=MAC=DEK); NULL: factory 40..4F */
    size_t key_len;
    int kvn;             /* -1: factory KVN FF */
    uint8_t lifecycle;   /* 0: SECURED (0F); or OP_READY 01, INITIALIZED 07 */
    const char *oce_ca;  /* SCP11: an off-card CA (PEM/DER certificate or public
                            key) installed at KID 10 KVN 03, with SCP11a/c SD
                            keys 11/03 and 15/03 (src/card/scp11_state.c) */
} scp_card_init_opts;

/* Create DIR (0700 if missing) and a new card in DIR/card.state (0600).
 * Refuses to overwrite an existing card (SCP_E_ARG), also when two inits
 * race on one directory (they take the card's lock in turn). Profiles:
 *   yubikey: i = 60 (random challenge, R-MAC, R-ENC), level 33 only,
 *            AES-128 only, the first PUT KEY replaces the factory set,
 *            GET DATA 66/E0 bare to CLA 00 (as yubikit reads them) and in
 *            GP form to CLA 80 (seed 002, YubiKey 5.7);
 *   gp23:    i = 71 (S16, pseudo-random challenge, R-MAC, R-ENC),
 *            every level i allows, AES-128/192/256.
 * scp_i >= 0 overrides the profile's i and lifts the level restriction.
 * Both: 3 key sets, 32 tries, CPLC 40 90 + 40 random bytes, random KDD. */

/* Create a new card in dir (which must not hold one): state file, key
 * sets and lock file, as opts says (NULL: the defaults above). SCP_E_ARG
 * for bad options or when dir already holds a card (never overwritten),
 * SCP_E_IO, SCP_E_NOMEM; a failed init leaves no card in dir. */
SCP_MUST_CHECK int scp_card_init(const char *dir, const scp_card_init_opts *opts);
/* Open a card for driving it: takes DIR/card.lock first (one process per
 * card: two would fork its state), then reads the state. A card held by
 * another process fails at once with SCP_E_IO and a message naming it.
 * A state file that is damaged, out of range, or not a regular file (a
 * FIFO or device is refused, not waited on) fails with SCP_E_CORRUPT /
 * SCP_E_IO and a message in err; the file is left as it is. */
SCP_MUST_CHECK int scp_card_open(const char *dir, scp_card **out, char *err, size_t err_size);
/* The same, waiting up to wait_ms for another process to let the card go
 * (SCP_E_TIMEOUT when it does not). */
SCP_MUST_CHECK int scp_card_open_wait(const char *dir, unsigned wait_ms, scp_card **out,
                                      char *err, size_t err_size);
/* Open for reading only (e.g. `scpkit card show` while `card run` holds
 * the card): no lock taken; any command that would change the state
 * fails with SCP_E_PERM. */
SCP_MUST_CHECK int scp_card_open_readonly(const char *dir, scp_card **out, char *err,
                                          size_t err_size);
/* End any session, release the card's lock, wipe and free c (NULL: no-op). */
void scp_card_close(scp_card *c);
/* Power-on reset: ends any session, selects the ISD. */
void scp_card_reset(scp_card *c);
/* Process one C-APDU, write one R-APDU (data | SW). Never fails for a bad
 * APDU (that gets a status word); fails only for local I/O errors. */
SCP_MUST_CHECK int scp_card_process(scp_card *c, const uint8_t *capdu, size_t len,
                                    uint8_t *rapdu, size_t rapdu_size, size_t *rapdu_len);
/* The card's ATR. */
size_t scp_card_atr(const scp_card *c, uint8_t *out, size_t out_size);
/* An in-process transport onto the card (no reader, no daemon). */
void scp_card_transport(scp_card *c, scp_transport *t);

/* Trace every C-APDU and R-APDU (wire form, and the plain form inside a
 * secure channel) as hex lines to f; PUT KEY data is written as
 * <redacted>. NULL stops tracing. The card does not close f. */
void scp_card_set_trace(scp_card *c, FILE *f);

/* A short human-readable summary (profile, i, lifecycle, key sets with
 * KVN, length and failure count, sequence counter; never key bytes). */
SCP_MUST_CHECK int scp_card_describe(const scp_card *c, char *out, size_t out_size);

/* The AID of the second application, a small data-object store
 * (GET DATA / PUT DATA with P1P2 = tag; needs a secure channel opened
 * while it is selected): F0 73 63 70 6B 69 74 01 ("scpkit" 01). */
#define SCP_CARD_STORE_AID "F07363706B697401"

/* Serve the card to pcscd's vpcd driver at host:port (a client
 * connection), reconnecting with backoff when pcscd goes away, until
 * *stop becomes nonzero (set it from a SIGTERM/SIGINT handler). State is
 * written at every change, so stopping loses nothing. Progress messages
 * go to log (may be NULL). */
SCP_MUST_CHECK int scp_card_run_vpcd(scp_card *c, const char *host, unsigned port,
                                     volatile sig_atomic_t *stop, FILE *log);

#ifdef __cplusplus
}
#endif
#endif
