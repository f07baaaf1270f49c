/* scpkit internal: the virtual secure element's state and dispatcher.
 * state.c keeps the state file, isd.c answers the Issuer Security Domain's
 * commands, app_store.c the data-object store, card.c the secure-messaging
 * layer in front of both, vpcd.c the connector to pcscd's vpcd driver. */
#ifndef SCPKIT_CARD_INTERNAL_H
#define SCPKIT_CARD_INTERNAL_H

#include <stdio.h>
#include "scpkit/apdu.h"
#include "scpkit/card.h"
#include "scpkit/iso7816sm.h"
#include "scpkit/scp02.h"
#include "scpkit/scp03.h"

#define CARD_STATE_FILE "card.state"
#define CARD_LOCK_FILE "card.lock"
#define CARD_MAX_SETS 8
#define CARD_ATR_MAX 33
#define CARD_CPLC_LEN 42
#define CARD_ID_MAX 16
#define CARD_OBJ_MAX_LEN 128
#define CARD_OBJ_MAX 8
#define CARD_SEQ_MAX 0xFFFFFFu

/* GP card life cycle (GPC 5.1.1, table 11-5 coding). */
#define CARD_LC_OP_READY 0x01
#define CARD_LC_INITIALIZED 0x07
#define CARD_LC_SECURED 0x0F
#define CARD_LC_LOCKED 0x7F
#define CARD_LC_TERMINATED 0xFF
/* Application life cycle (GPC 5.3.1). */
#define CARD_APP_SELECTABLE 0x07
#define CARD_APP_LOCKED 0x83

/* Profile ids as stored in the state file (profile.c; never reused). */
#define CARD_PROFILE_YUBIKEY 0
#define CARD_PROFILE_GP23 1
#define CARD_PROFILE_SCP02 2 /* scp02_card.c */

/* Selected application. */
#define CARD_SEL_NONE 0
#define CARD_SEL_ISD 1
#define CARD_SEL_STORE 2
#define CARD_SEL_SMAPP 3 /* sm_app.c */

typedef struct card_keyset {
    uint8_t kvn;
    uint8_t key_len;
    uint8_t factory; /* the set restored when the last one goes */
    uint8_t fails;   /* failed EXTERNAL AUTHENTICATEs in a row */
    uint8_t enc[SCP_AES_MAX_KEY], mac[SCP_AES_MAX_KEY], dek[SCP_AES_MAX_KEY];
} card_keyset;

typedef struct card_obj {
    uint16_t tag;
    uint8_t len;
    uint8_t data[CARD_OBJ_MAX_LEN];
} card_obj;

/* Everything that survives a power cycle; one state file holds it all. */
typedef struct card_state {
    uint8_t profile, i, min_level, lifecycle, keyset_limit, retry_limit;
    uint8_t atr_len, aid_len, iin_len, cin_len;
    uint8_t atr[CARD_ATR_MAX];
    uint8_t kdd[SCP03_KDD_LEN];
    uint8_t cplc[CARD_CPLC_LEN];
    uint8_t aid[CARD_ID_MAX], iin[CARD_ID_MAX], cin[CARD_ID_MAX];
    uint32_t seq; /* last sequence counter value handed out */
    card_keyset factory;
    uint8_t nsets;
    card_keyset sets[CARD_MAX_SETS];
    uint8_t app_lifecycle;
    uint8_t nobj;
    card_obj obj[CARD_OBJ_MAX];
} card_state;

/* What a card of one make does where GP leaves a choice (profile.c). */
typedef struct card_profile {
    uint8_t id;
    const char *name;
    uint8_t scp;       /* the secure channel protocol: 03, or 02 (scp02_card.c) */
    uint8_t i;         /* default i parameter */
    uint8_t min_level; /* 0: every level i allows; else that level only */
    uint8_t aes128_only; /* 16-byte keys only (AES-128; 3DES for SCP02) */
    /* the first PUT KEY replaces the factory set (KVN FF) */
    uint8_t first_put_replaces_factory;
    /* GET DATA 66 / E0: bare (73 ..., C0 ...) to CLA 00, GP form to CLA 80 */
    uint8_t get_data_bare_cla00;
} card_profile;

const card_profile *card_profile_by_id(uint8_t id);
const card_profile *card_profile_by_name(const char *name);
const card_profile *card_profile_of(const card_state *st);

struct scp_card {
    char path[4096]; /* DIR/card.state */
    char dir[4000];
    int lock_fd;
    card_state st;
    uint8_t selected;
    scp03_session sess;
    scp02_session sess02; /* SCP02 profile (scp02_card.c) */
    scp_sm smapp;         /* the ISO SM application's session (sm_app.c) */
    uint8_t smapp_rnd[8]; /* its last GET CHALLENGE */
    uint8_t smapp_chal;
    uint16_t smapp_ef;    /* its selected EF */
    uint8_t sess_app; /* the application the session belongs to */
    uint8_t sess_kvn; /* key set the handshake used (failure counting) */
    uint8_t sess_dek[SCP_AES_MAX_KEY]; /* DEK of that set, for PUT KEY */
    uint8_t sess_dek_len;
    FILE *trace;
    int fail_writes; /* tests: fail the n-th next state write (0: never) */
    int mem_only;    /* fuzzing: keep the state in memory, never write it */
    int read_only;   /* opened without the lock: never write */
    struct card_scp11 *s11; /* SCP11 keys, certificates, PSO (src/card/scp11.c) */
    uint8_t sess_scp;       /* 0: the session is SCP03's; else its SCP11 variant */
};

/* A response under construction: data then SW. */
typedef struct card_resp {
    uint8_t *data;
    size_t cap;
    size_t len;
    uint16_t sw;
    uint8_t end_session; /* end the session once this response is out */
} card_resp;

/* ---- state.c ---- */
SCP_MUST_CHECK int card_state_save(scp_card *c, const card_state *st);
SCP_MUST_CHECK int card_state_load(const char *path, card_state *st, char *err, size_t err_size);
SCP_MUST_CHECK int card_state_new(card_state *st, const scp_card_init_opts *o);
/* Restore the factory set as the only set. */
void card_factory_reset_keys(card_state *st);
card_keyset *card_find_set(card_state *st, uint8_t kvn);
void card_wipe_state(card_state *st);
/* Delete the set at index k; the factory set returns when none is left. */
void card_delete_set(card_state *st, size_t k);

/* ---- card.c ---- */
int card_authenticated(const scp_card *c, uint8_t app);
void card_end_session(scp_card *c);
/* Copy a working state, let `fn` change it, persist it, then adopt it. */
SCP_MUST_CHECK int card_commit(scp_card *c, const card_state *next);

/* ---- isd.c: one plain command for the ISD; SW in r->sw. Returns an
 * scp_rc only for local failures (state file I/O). */
SCP_MUST_CHECK int card_isd_command(scp_card *c, const scp_apdu *a, card_resp *r);
SCP_MUST_CHECK int card_isd_initialize_update(scp_card *c, const scp_apdu *a, card_resp *r);
SCP_MUST_CHECK int card_external_authenticate(scp_card *c, const uint8_t *capdu, size_t len,
                                              const scp_apdu *a, card_resp *r);
SCP_MUST_CHECK int card_get_data_common(scp_card *c, const scp_apdu *a, card_resp *r);

/* ---- auth.c: one authentication attempt on a key set (counted, and the
 * next sequence counter taken, in one durable write; a success clears the
 * count) ---- */
SCP_MUST_CHECK int card_begin_attempt(scp_card *c, uint8_t kvn, uint32_t *seq, uint16_t *sw);
SCP_MUST_CHECK int card_end_attempt(scp_card *c, int ok);

/* ---- scp02_card.c: the SCP02 profile ---- */
int card_is_scp02(const scp_card *c);
int card_session_open(const scp_card *c);
uint8_t card_session_level(const scp_card *c);
SCP_MUST_CHECK int card_scp02_initialize_update(scp_card *c, const scp_apdu *a, card_resp *r);
SCP_MUST_CHECK int card_scp02_external_authenticate(scp_card *c, const uint8_t *capdu,
                                                    size_t len, const scp_apdu *a,
                                                    card_resp *r);
SCP_MUST_CHECK int card_sm_unwrap(scp_card *c, const uint8_t *capdu, size_t len, uint8_t *out,
                                  size_t out_size, size_t *out_len);
SCP_MUST_CHECK int card_sm_wrap(scp_card *c, const uint8_t *data, size_t len, uint16_t sw,
                                uint8_t *out, size_t out_size, size_t *out_len);
uint16_t card_scp02_parse_keys(const scp_card *c, const scp_apdu *a, scp03_keys *k,
                               uint8_t *key_type);
void card_scp02_migrate(card_state *next, size_t idx);

/* ---- sm_app.c: the application that needs ISO 7816-4 SM ---- */
#define CARD_SMAPP_PLAIN_MAX 1100
extern const uint8_t card_smapp_aid[];
extern const size_t card_smapp_aid_len;
void card_smapp_end(scp_card *c);
SCP_MUST_CHECK int card_smapp_command(scp_card *c, const uint8_t *capdu, size_t len,
                                      const scp_apdu *a, card_resp *r);

/* ---- keys.c ---- */
SCP_MUST_CHECK int card_put_key(scp_card *c, const scp_apdu *a, card_resp *r);
SCP_MUST_CHECK int card_delete_key(scp_card *c, const scp_apdu *a, card_resp *r);

/* ---- app_store.c ---- */
extern const uint8_t card_store_aid[];
extern const size_t card_store_aid_len;
SCP_MUST_CHECK int card_store_command(scp_card *c, const scp_apdu *a, card_resp *r);

/* ---- helpers ---- */
static inline void card_sw(card_resp *r, uint16_t sw)
{
    r->len = 0;
    r->sw = sw;
}

#endif
