/* scpkit internal: the keystore's parts (token objects, metadata DB, audit
 * chain, secret sharing) and the state they share. */
#ifndef SCPKIT_KEYS_INTERNAL_H
#define SCPKIT_KEYS_INTERNAL_H

#include <limits.h>
#include <sqlite3.h>
#include "keys/p11.h"
#include "scpkit/keystore.h"

#define KS_PATH_MAX 1024
#define KS_AUDIT_KEY_LABEL "scpkit-audit-hmac"
#define KS_AUDIT_HEAD_LABEL "scpkit-audit-head"
#define KS_HASH_LEN 32

/* For a cleanup step whose failure must not mask the error being returned
 * (gcc ignores a (void) cast on warn_unused_result). */
static inline void ks_ignore(int rc) { (void)rc; }

struct scp_keystore {
    scp_p11 p11;
    sqlite3 *db;
    char dir[KS_PATH_MAX];
    char actor[64];
    CK_OBJECT_HANDLE audit_key;
};

/* ---- token objects (token.c) ---- */
/* "label:version": the CKA_LABEL of a master key in the token. */
SCP_MUST_CHECK int ks_obj_id(const char *label, uint32_t version, char *out, size_t out_size);
SCP_MUST_CHECK int ks_tok_generate(scp_keystore *ks, const char *id, scp_ks_type type);
SCP_MUST_CHECK int ks_tok_unwrap(scp_keystore *ks, const char *id, scp_ks_type type,
                                 const uint8_t *value, size_t len);
SCP_MUST_CHECK int ks_tok_kcv(scp_keystore *ks, CK_OBJECT_HANDLE h, scp_ks_type type,
                              uint8_t kcv[3], uint8_t *cmac_kind);
SCP_MUST_CHECK int ks_tok_audit_key(scp_keystore *ks, int create);
SCP_MUST_CHECK int ks_tok_hmac(scp_keystore *ks, const uint8_t *in, size_t len,
                               uint8_t mac[KS_HASH_LEN]);
/* The audit head checkpoint, kept in a private data object in the token. */
SCP_MUST_CHECK int ks_tok_head_get(scp_keystore *ks, uint8_t *val, size_t size, size_t *len);
SCP_MUST_CHECK int ks_tok_head_set(scp_keystore *ks, const uint8_t *val, size_t len);

/* ---- diversification in the token (derive.c) ---- */
SCP_MUST_CHECK int ks_tok_derive(scp_keystore *ks, CK_OBJECT_HANDLE master, scp_ks_type type,
                                 scp_div_scheme s, const uint8_t *kdd, size_t kdd_len,
                                 scp03_keys *out);

/* ---- metadata (db.c) ---- */
SCP_MUST_CHECK int ks_db_open(scp_keystore *ks, int create);
void ks_db_close(scp_keystore *ks);
SCP_MUST_CHECK int ks_db_exec(scp_keystore *ks, const char *sql);
SCP_MUST_CHECK int ks_db_config_set(scp_keystore *ks, const char *k, const char *v);
SCP_MUST_CHECK int ks_db_config_get(scp_keystore *ks, const char *k, char *v, size_t v_size);
SCP_MUST_CHECK int ks_db_key_get(scp_keystore *ks, const char *label, uint32_t version,
                                 scp_ks_key_info *k);
SCP_MUST_CHECK int ks_db_key_next_version(scp_keystore *ks, const char *label, uint32_t *v);
SCP_MUST_CHECK int ks_db_key_insert(scp_keystore *ks, const scp_ks_key_info *k);
SCP_MUST_CHECK int ks_db_key_state(scp_keystore *ks, const scp_ks_key_info *k, scp_ks_state to,
                                   const char *reason);
int64_t ks_now(void);

/* Import by unwrap (keys.c); expect_kcv (may be NULL) must match. */
SCP_MUST_CHECK int ks_import(scp_keystore *ks, const char *label, uint32_t version,
                             scp_ks_type type, const uint8_t *value, size_t len,
                             const char *origin, const uint8_t *expect_kcv,
                             scp_ks_key_info *info);

/* One checked lifecycle transition, applied and audited (lifecycle.c). */
SCP_MUST_CHECK int ks_transition(scp_keystore *ks, const scp_ks_key_info *k, scp_ks_state to,
                                 const char *reason, const char *op);

/* ---- audit (audit.c) ---- */
SCP_MUST_CHECK int ks_audit_schema(scp_keystore *ks);

/* ---- secret sharing (shamir.c) ---- */
/* GF(2^8) with the AES polynomial x^8+x^4+x^3+x+1, no tables. */
uint8_t ks_gf_mul(uint8_t a, uint8_t b);
uint8_t ks_gf_inv(uint8_t a);
/* Split secret[len] into n shares of len bytes (x = 1..n), threshold m. */
SCP_MUST_CHECK int ks_shamir_split(const uint8_t *secret, size_t len, unsigned m, unsigned n,
                                   uint8_t *shares /* n * len */);
/* Recombine k shares with distinct non-zero xs. */
SCP_MUST_CHECK int ks_shamir_combine(const uint8_t *xs, const uint8_t *shares /* k * len */,
                                     size_t k, size_t len, uint8_t *secret);
/* Share text: "scpkit-shamir-1:<type>:<m>:<x>:<hex>:<check>",
 * "scpkit-xor-1:<type>:<n>:<i>:<hex>:<kcv>". */
typedef struct ks_share {
    int xor_scheme;
    scp_ks_type type;
    unsigned m; /* threshold (shamir) or component count (xor) */
    unsigned x; /* share index from 1 */
    uint8_t v[SCP_KS_MAX_KEY];
    size_t len;
} ks_share;
SCP_MUST_CHECK int ks_share_format(const ks_share *s, char *out, size_t out_size);
/* Parse and check; SCP_E_KCV when the check value does not match. */
SCP_MUST_CHECK int ks_share_parse(const char *text, ks_share *s);
SCP_MUST_CHECK int ks_kcv_soft(scp_ks_type t, const uint8_t *v, size_t len, uint8_t kcv[3]);
/* A master key's KCV of either kind (see scp_ks_key_info.kcv_cmac). */
SCP_MUST_CHECK int ks_kcv_soft_kind(scp_ks_type t, int cmac_kind, const uint8_t *v, size_t len,
                                    uint8_t kcv[3]);
/* Recombine parsed shares into secret (len bytes). */
SCP_MUST_CHECK int ks_shares_combine(const char *const *texts, size_t n, scp_ks_type *type,
                                     uint8_t *secret, size_t *len);

#endif
