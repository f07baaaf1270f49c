/* Test helpers for the virtual card: raw exchanges and a host session run
 * by the engine's host role against the card, in process. */
#ifndef SCP_CARD_UTIL_H
#define SCP_CARD_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include "scpkit/card.h"
#include "scpkit/scp03.h"

typedef struct tc_resp {
    uint8_t data[1100];
    size_t len;
    uint16_t sw;
} tc_resp;

/* A fresh empty directory under $TMPDIR (or /tmp); removed by tc_rmdir. */
void tc_tmpdir(char *out, size_t size);
void tc_rmdir(const char *dir);
/* Send raw bytes / hex; returns scp_card_process's rc. */
int tc_xfer(scp_card *c, const uint8_t *capdu, size_t len, tc_resp *r);
int tc_xfer_hex(scp_card *c, const char *hex, tc_resp *r);
/* SW of a hex command (0 on local failure). */
uint16_t tc_sw(scp_card *c, const char *hex);
/* Keys: ENC = MAC = DEK = key. */
void tc_keys(scp03_keys *k, const uint8_t *key, size_t len, uint8_t kvn);
void tc_factory(scp03_keys *k);
/* INITIALIZE UPDATE + EXTERNAL AUTHENTICATE. Returns the SW of the first
 * failing step, or 9000 with the session open. iu_kvn goes in P1. */
uint16_t tc_open(scp_card *c, scp03_session *s, const scp03_keys *k, uint8_t iu_kvn,
                 uint8_t level, size_t chal_len);
/* Same, also returning the IU response data (for the sequence counter). */
uint16_t tc_open_iu(scp_card *c, scp03_session *s, const scp03_keys *k, uint8_t iu_kvn,
                    uint8_t level, size_t chal_len, uint8_t *iu, size_t *iu_len);
/* Send one plain command through the session; -1 on a host-side failure
 * (bad R-MAC), else SW with the plain response in r. */
int tc_send(scp_card *c, scp03_session *s, const uint8_t *capdu, size_t len, tc_resp *r);
int tc_send_hex(scp_card *c, scp03_session *s, const char *hex, tc_resp *r);
/* PUT KEY through the session: new set `nk` (P1 = replace_kvn or 0),
 * encrypted under the DEK `dek`. Returns the SW (or -1). */
int tc_put_key(scp_card *c, scp03_session *s, const scp03_keys *dek, const scp03_keys *nk,
               uint8_t replace_kvn);
int tc_delete_key(scp_card *c, scp03_session *s, uint8_t kvn, uint8_t p2);

#endif
