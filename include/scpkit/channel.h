/* scpkit: a host-side secure channel: INITIALIZE UPDATE + EXTERNAL
 * AUTHENTICATE, then protected commands with 61xx/6Cxx handled and command
 * chaining (CLA b5) for data longer than one APDU.
 *
 * Opening is sans-I/O: scp_channel_start(), then a loop of
 * scp_channel_next() (the next C-APDU to send) and scp_channel_feed() (the
 * card's R-APDU), until next() says SCP_CHANNEL_OPEN or returns an error.
 * One thread can drive thousands of channels that way (see
 * examples/many_sessions.c); once open, the engine's scp03_host_wrap /
 * scp03_host_unwrap on ch->s protect each command, also without I/O.
 * scp_channel_open() is that loop over a blocking transport. */
#ifndef SCPKIT_CHANNEL_H
#define SCPKIT_CHANNEL_H

#include "scpkit/gp.h"
#include "scpkit/scp02.h"
#include "scpkit/scp03.h"
#include "scpkit/transport.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Options for opening a channel. */
typedef struct scp_channel_opts {
    uint8_t kvn;       /* 0: the card's choice */
    int level;         /* -1: the strongest the card's i allows */
    int s16;           /* -1: from the card recognition data; 0/1 force */
    scp_div_scheme div; /* diversify `keys` (as a master) with the card's KDD */
    /* Or: get the static keys for this card from a callback once its KDD
     * is known (e.g. derived inside an HSM). Takes precedence over keys. */
    int (*derive)(void *ctx, const uint8_t *kdd, size_t kdd_len, uint8_t kvn,
                  scp03_keys *out);
    void *derive_ctx;
    const scp_ctx *ctx; /* crypto backend and RNG (NULL: the default) */
} scp_channel_opts;

/* The longest plain response scp_channel_send takes (after 61xx
 * reassembly); longer ones are refused with SCP_E_BUFFER_TOO_SMALL. */
#define SCP_CHANNEL_RESP_MAX 8192

typedef struct scp_channel {
    scp_transport *t;
    scp03_session s;
    uint16_t last_sw;      /* the card's last status word (for messages) */
    uint8_t level;
    uint8_t kdd[SCP03_KDD_LEN]; /* from the IU response */
    uint8_t iu_resp[SCP03_IU_RESP_MAX];
    size_t iu_resp_len;
    int fail_rc;  /* after SCP_E_AUTH: SCP_E_CRYPTOGRAM when the card's
                     cryptogram did not match (wrong keys; nothing more was
                     sent), SCP_E_SW when the card refused EXTERNAL AUTH */
    uint8_t i;    /* the card's i parameter, from the IU response */
    uint8_t kvn;  /* the key set the card used */
    /* The static DEK of this key set, kept for PUT KEY key encryption
     * (GPC 11.8.2.3); wiped by scp_channel_close and on a failed open. */
    uint8_t dek[SCP_AES_MAX_KEY];
    uint8_t dek_len;
    /* the open's progress (scp_channel_start/next/feed) */
    uint8_t step;     /* which command is out */
    uint8_t chal_len; /* 8 or 16; 0 until the recognition data says */
    int open_rc;      /* the error that ended the open (sticky) */
    scp_channel_opts opts;
    scp03_keys open_keys; /* the caller's keys, until the IU answer */
    /* scp_channel_send's response buffer (kept here, not on the stack) */
    uint8_t rbuf[SCP_CHANNEL_RESP_MAX + 2 + SCP03_RWRAP_OVERHEAD];
} scp_channel;


/* ---- sans-I/O open ---- */
#define SCP_CHANNEL_SEND 1 /* scp_channel_next: send the C-APDU, feed its answer */
#define SCP_CHANNEL_OPEN 2 /* scp_channel_next: the channel is open */

/* Begin opening a channel: no I/O. keys and opts are copied (keys wiped
 * once the card's answer to INITIALIZE UPDATE is in); keys may be NULL
 * when opts->derive gives them. ch->t stays NULL (scp_channel_send needs
 * a transport: set ch->t, or use scp03_host_wrap/unwrap on ch->s).
 * SCP_E_ARG, SCP_E_LEVEL (opts->level not an Amd D level). */
SCP_MUST_CHECK int scp_channel_start(scp_channel *ch, const scp03_keys *keys,
                                     const scp_channel_opts *opts);
/* The next step: SCP_CHANNEL_SEND with a C-APDU in capdu (GET DATA 0066
 * when opts->s16 < 0, INITIALIZE UPDATE, EXTERNAL AUTHENTICATE; 64 bytes
 * always suffice); SCP_CHANNEL_OPEN once the channel is open; or the
 * error that ended the open (sticky: asked again, the same error), with
 * the session and keys wiped and ch->last_sw / ch->fail_rc set as for
 * scp_channel_open. SCP_E_BUFFER_TOO_SMALL hands out nothing and may be
 * retried; SCP_E_STATE when a command's answer is still due. */
SCP_MUST_CHECK int scp_channel_next(scp_channel *ch, uint8_t *capdu, size_t capdu_size,
                                    size_t *capdu_len);
/* The card's whole R-APDU (data | SW1 SW2, 61xx/6Cxx already handled, as
 * scp_transmit does) to the last command next() handed out. SCP_OK: call
 * next() again. Otherwise the open has failed (that error, sticky). */
SCP_MUST_CHECK int scp_channel_feed(scp_channel *ch, const uint8_t *rapdu, size_t len);

/* ---- blocking ---- */

/* Open the channel on the currently selected security domain over t: the
 * loop of scp_channel_next / scp_transmit / scp_channel_feed. On an
 * authentication failure returns SCP_E_AUTH with ch->last_sw set to what the
 * card said (e.g. 63Cx); never retries. */
SCP_MUST_CHECK int scp_channel_open(scp_channel *ch, scp_transport *t, const scp03_keys *keys,
                                    const scp_channel_opts *opts);
/* Send one plain command through the channel (chained when longer than one
 * APDU); writes the plain response data and returns the SW in *sw. */
SCP_MUST_CHECK int scp_channel_send(scp_channel *ch, const uint8_t *capdu, size_t len,
                                    uint8_t *resp, size_t resp_size, size_t *resp_len,
                                    uint16_t *sw);
/* End the session (keys wiped) and zero ch; the transport is the
 * caller's to close. NULL: no-op. */
void scp_channel_close(scp_channel *ch);

/* The strongest level a card with this i allows: 33, 13 or 03. */
uint8_t scp_level_strongest(uint8_t i);
/* Parse a level name: mac, mac+enc, mac+rmac, mac+enc+rmac, all, or hex
 * (01, 03, 11, 13, 33). */
SCP_MUST_CHECK int scp_level_parse(const char *s, uint8_t *level);

/* Card recognition data (GPC v2.3 H.2, GET DATA 0066): what the card says
 * about itself before any authentication. */
#define SCP_RECOG_SCP_MAX 4
typedef struct scp_recog {
    char gp_version[16]; /* "2.3.1", or "" when absent */
    size_t n_scp;
    struct {
        uint8_t id; /* 02, 03, 11 */
        uint8_t i;
    } scp[SCP_RECOG_SCP_MAX];
} scp_recog;
/* Parse card recognition data (GPC Annex H.2: 66 { 73 { 06 .., 60 ..,
 * 64 .. } }, the 66 wrapper optional) into out: GP version and each SCP
 * with its i. SCP_E_FORMAT without a 73 template, SCP_E_TRUNCATED for a
 * length past the end; out is zeroed first. */
SCP_MUST_CHECK int scp_recog_parse(const uint8_t *p, size_t len, scp_recog *out);
/* GET DATA 0066 on the selected SD, then parse. *sw gets the card's SW;
 * SCP_E_SW when it refused. */
SCP_MUST_CHECK int scp_recog_get(scp_transport *t, scp_recog *out, uint16_t *sw);
/* The SCP03 i parameter from recognition data: 1 found, 0 not offered. */
int scp_recog_scp03(const scp_recog *r, uint8_t *i);

/* ---- SCP02: a host channel over a transport (src/transport/scp02_channel.c) ---- */

typedef struct scp02_channel {
    scp_transport *t;
    scp02_session s;
    uint16_t last_sw; /* the card's last status word */
    uint8_t level;
    uint8_t i;
    uint8_t kvn;
} scp02_channel;

/* INITIALIZE UPDATE + EXTERNAL AUTHENTICATE on the selected SD. i = 0:
 * from the card recognition data (GET DATA 0066, SCP 02), else 55. On an
 * authentication failure SCP_E_AUTH with ch->last_sw set (6300 ...) or
 * SCP_E_CRYPTOGRAM (wrong keys: nothing more was sent). */
SCP_MUST_CHECK int scp02_channel_open(scp02_channel *ch, scp_transport *t, const scp02_keys *keys,
                                      uint8_t i, uint8_t level);
/* One plain command through the channel; plain response data, SW in *sw. */
SCP_MUST_CHECK int scp02_channel_send(scp02_channel *ch, const uint8_t *capdu, size_t len,
                                      uint8_t *resp, size_t resp_size, size_t *resp_len,
                                      uint16_t *sw);
/* PUT KEY (80 D8 old_kvn 81) of a whole set (ENC, MAC, DEK) of DES (80)
 * or AES-128 (88) keys; the card's KCVs are checked in constant time
 * (SCP_E_KCV). old_kvn 0: a new set. */
SCP_MUST_CHECK int scp02_channel_put_keys(scp02_channel *ch, uint8_t key_type, uint8_t old_kvn,
                                          uint8_t new_kvn, const uint8_t enc[16],
                                          const uint8_t mac[16], const uint8_t dek[16],
                                          uint16_t *sw);
/* End the session (keys wiped) and zero ch; the transport is the
 * caller's. NULL: no-op. */
void scp02_channel_close(scp02_channel *ch);

#ifdef __cplusplus
}
#endif
#endif
