/* scpkit: the virtual secure element, a GlobalPlatform Issuer Security
 * Domain on the engine's card role, with its state in one directory.
 * Reachable in process (scp_card_transport) and through pcscd's vpcd
 * driver (scp_card_run_vpcd). Owned by src/card/. */
#ifndef SCPKIT_CARD_H
#define SCPKIT_CARD_H

#include <stddef.h>
#include <stdint.h>
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
} scp_card_init_opts;

SCP_MUST_CHECK int scp_card_init(const char *dir, const scp_card_init_opts *opts);
/* Open a card's state; SCP_E_CORRUPT with a message in err for a damaged
 * state file. */
SCP_MUST_CHECK int scp_card_open(const char *dir, scp_card **out, char *err, size_t err_size);
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

#ifdef __cplusplus
}
#endif
#endif
