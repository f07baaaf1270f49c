/* scpkit internal: a thin PKCS#11 layer (module loaded with dlopen, one
 * slot, one session: read-only unless something is written) for the keystore. Every CK_RV is mapped to an
 * scp_rc; the last CK_RV and call name are kept for messages. */
#ifndef SCPKIT_KEYS_P11_H
#define SCPKIT_KEYS_P11_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <p11-kit/pkcs11.h>
#include "scpkit/rc.h"

typedef struct scp_p11 {
    void *dl;
    CK_FUNCTION_LIST *f;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE sess;
    int initialized, logged_in, has_session;
    CK_RV last_rv;
    const char *last_call;
} scp_p11;

/* Load `module` and C_Initialize it. */
SCP_MUST_CHECK int scp_p11_load(scp_p11 *p, const char *module);
/* How many keystores hold a module open in this process. */
int scp_p11_in_use(void);
/* Logout, close the session, C_Finalize, dlclose. Safe on a partial p. */
void scp_p11_unload(scp_p11 *p);
/* Find the slot whose token label is `label` (padded compare). */
SCP_MUST_CHECK int scp_p11_find_token(scp_p11 *p, const char *label);
/* First slot with a token that is not initialised yet. */
SCP_MUST_CHECK int scp_p11_find_free(scp_p11 *p);
/* C_InitToken + SO login + C_InitPIN, then logout. */
SCP_MUST_CHECK int scp_p11_init_token(scp_p11 *p, const char *label, const char *so_pin,
                                      const char *user_pin);
/* A session (read-write when rw, else read-only) + user login. */
SCP_MUST_CHECK int scp_p11_login(scp_p11 *p, const char *user_pin, int rw);
/* Replace the session by a read-write one, logged in. */
SCP_MUST_CHECK int scp_p11_session_rw(scp_p11 *p, const char *user_pin);
/* C_Finalize (sessions closed); SCP_E_STATE when another keystore of this
 * process uses the module. scp_p11_reinit: then C_Initialize again. */
SCP_MUST_CHECK int scp_p11_finalize(scp_p11 *p);
SCP_MUST_CHECK int scp_p11_reinit(scp_p11 *p);
/* C_OpenSession calls of this process so far: a keystore handle opens
 * one session and keeps it for every operation (a new one only when
 * SoftHSM2 is re-initialised on another token generation). */
unsigned long scp_p11_sessions_opened(void);
/* Map a CK_RV (records it). */
int scp_p11_rc(scp_p11 *p, const char *call, CK_RV rv);
/* 1 when the token supports mechanism m with all of flags. */
int scp_p11_has_mech(scp_p11 *p, CK_MECHANISM_TYPE m, CK_FLAGS flags);

/* Objects by label/id. CKA_LABEL of a master key is "label:version". */
SCP_MUST_CHECK int scp_p11_find(scp_p11 *p, CK_OBJECT_CLASS cls, const char *id,
                                CK_OBJECT_HANDLE *h);
SCP_MUST_CHECK int scp_p11_destroy(scp_p11 *p, CK_OBJECT_HANDLE h);

/* One-shot operations with a key in the token. */
SCP_MUST_CHECK int scp_p11_encrypt(scp_p11 *p, CK_MECHANISM_TYPE m, CK_OBJECT_HANDLE key,
                                   const uint8_t *in, size_t len, uint8_t *out, size_t out_size);
SCP_MUST_CHECK int scp_p11_sign(scp_p11 *p, CK_MECHANISM_TYPE m, CK_OBJECT_HANDLE key,
                                const uint8_t *in, size_t len, uint8_t *out, size_t out_size,
                                size_t *out_len);
SCP_MUST_CHECK int scp_p11_verify(scp_p11 *p, CK_MECHANISM_TYPE m, CK_OBJECT_HANDLE key,
                                  const uint8_t *in, size_t len, const uint8_t *sig,
                                  size_t sig_len);

#endif
