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
    char token[64];
    char pin[128]; /* kept to log in again after a SoftHSM2 reload; wiped */
    CK_OBJECT_HANDLE audit_key;
    int gens;      /* a private SoftHSM2 token in generations (gen.c) */
    int rw;        /* the session is read-write */
    int in_write;  /* inside ks_gen_begin .. commit/abort */
    int locked;    /* holds flock(DIR/lock) */
    int lock_fd;
    int nospace;   /* the last failure was a full disk */
    unsigned long use_gen; /* the generation this handle's view copies */
    char view[48];         /* DIR/view.<pid>.<n>: SoftHSM2 reads this copy */
    int view_fd;           /* flock(LOCK_EX) on its .lock while it lives */
    int in_tx;     /* inside a DB transaction */
    unsigned long commits; /* DB commits by this handle (each one WAL fsync) */
    long busy_us;  /* time spent waiting for SQLite's lock (db.c) */
    char *rows; /* row digests noted in this transaction (audit.c) */
    size_t rows_len, rows_cap;
    uint64_t recovered; /* interrupted operations completed or undone at open */
    char why[512]; /* what the last failure means and what to do */
};

/* Say what went wrong and what to do (printf-like; the first message of a
 * failure wins until ks_why_clear). scp_keystore_why() returns it. */
void ks_why(scp_keystore *ks, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ks_why_clear(scp_keystore *ks);

/* ---- crash safety, generations, the writer lock (gen.c) ---- */
/* A write point: SIGKILL here when SCP_KS_CRASH_AT names it; an injected
 * ENOSPC when SCP_KS_FAULT=enospc@N does. */
SCP_MUST_CHECK int ks_crash_point(const char *what);
SCP_MUST_CHECK int ks_gen_create(scp_keystore *ks);
SCP_MUST_CHECK int ks_gen_sync_live(scp_keystore *ks);
SCP_MUST_CHECK int ks_write_conf(scp_keystore *ks, int work);
SCP_MUST_CHECK int ks_gen_layout(scp_keystore *ks);
/* Hold the live generation and point SoftHSM2 at it (before C_Initialize);
 * refresh: move to the live generation if another process replaced it. */
SCP_MUST_CHECK int ks_gen_use(scp_keystore *ks);
SCP_MUST_CHECK int ks_gen_refresh(scp_keystore *ks);
void ks_gen_close(scp_keystore *ks);
SCP_MUST_CHECK int ks_gen_init_use(scp_keystore *ks);
SCP_MUST_CHECK int ks_find_token(scp_keystore *ks);
int ks_gen_dirty(scp_keystore *ks);
SCP_MUST_CHECK int ks_gen_recover(scp_keystore *ks, int *changed);
/* A token write transaction: begin copies the live generation and points
 * SoftHSM2 at the copy (read-write session); commit makes the copy the
 * live generation atomically; abort drops it. Needs the writer lock. */
SCP_MUST_CHECK int ks_gen_begin(scp_keystore *ks);
SCP_MUST_CHECK int ks_gen_commit(scp_keystore *ks);
void ks_gen_abort(scp_keystore *ks);
SCP_MUST_CHECK int ks_lock(scp_keystore *ks);
SCP_MUST_CHECK int ks_trylock(scp_keystore *ks);
void ks_unlock(scp_keystore *ks);

/* ---- intents and reconciliation (journal.c) ---- */
/* Under the writer lock: complete or undo interrupted operations, destroy
 * orphan master keys; each with an audit record. */
SCP_MUST_CHECK int ks_reconcile(scp_keystore *ks);
/* An intent (authenticated row in `pending` + audit record op:begin) in
 * its own committed transaction; *id for ks_intent_done. */
SCP_MUST_CHECK int ks_intent(scp_keystore *ks, const char *op, const char *label,
                             uint32_t version, const char *arg, const char *reason, int64_t *id);
/* Inside a transaction: remove the intent row. */
SCP_MUST_CHECK int ks_intent_done(scp_keystore *ks, int64_t id);
/* Master keys in the token that no live key row or intent explains
 * (destroy: inside a token write transaction, each with an audit record). */
SCP_MUST_CHECK int ks_tok_orphans(scp_keystore *ks, int destroy, uint64_t *count);
int ks_has_pending(scp_keystore *ks);

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

/* ---- EC key pairs in the token (ec.c) ---- */
/* A key object "label:version": a secret key (master) or a private key
 * (EC pair). Destroying one also destroys its public twin, if any. */
/* RFC 3394 2.2.1 wrapping rounds in the token (src/keys/token.c): n blocks
 * at out + 8 in place, initial value a (wiped), result block to out[0..7]. */
SCP_MUST_CHECK int ks_kw_rounds(scp_keystore *ks, CK_OBJECT_HANDLE kek, uint8_t a[8],
                                uint8_t *out, size_t n);
SCP_MUST_CHECK int ks_tok_find_key(scp_keystore *ks, const char *id, CK_OBJECT_HANDLE *h);
SCP_MUST_CHECK int ks_tok_destroy_key(scp_keystore *ks, const char *id, CK_OBJECT_HANDLE h);
SCP_MUST_CHECK int ks_tok_generate_ec(scp_keystore *ks, const char *id, scp_ks_type type);
SCP_MUST_CHECK int ks_tok_unwrap_ec(scp_keystore *ks, const char *id, scp_ks_type type,
                                    const uint8_t *pkcs8, size_t len);
SCP_MUST_CHECK int ks_tok_ec_point(scp_keystore *ks, const char *id, uint8_t *pt, size_t size,
                                   size_t *len);
/* An EC key's "KCV": SHA-256(04 X Y)[0..2], from the token's public
 * object (h: the private key) or from a PKCS#8 / SEC 1 value. */
SCP_MUST_CHECK int ks_tok_kcv_ec(scp_keystore *ks, CK_OBJECT_HANDLE h, uint8_t kcv[3]);
SCP_MUST_CHECK int ks_kcv_soft_ec(const uint8_t *der, size_t len, uint8_t kcv[3]);
/* A session AES-256 key for wrapping (token.c). */
SCP_MUST_CHECK int ks_tok_session_kek(scp_keystore *ks, CK_OBJECT_HANDLE *h);
/* Import a PKCS#8 EC private key (keys.c, crash-safe like every key). */
SCP_MUST_CHECK int ks_import_ec_der(scp_keystore *ks, const char *label, uint32_t version,
                                    scp_ks_type type, const uint8_t *der, size_t len,
                                    scp_ks_key_info *info);

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
/* Inside a transaction: the card record (KDD hex -> master, kvn) with
 * its audit record. */
SCP_MUST_CHECK int ks_db_card_put(scp_keystore *ks, const char *hex, const char *label,
                                  uint32_t version, scp_div_scheme scheme, uint8_t kvn);
/* Transactions: BEGIN IMMEDIATE .. COMMIT (a write point on each side). */
SCP_MUST_CHECK int ks_tx_begin(scp_keystore *ks);
SCP_MUST_CHECK int ks_tx_commit(scp_keystore *ks);
void ks_tx_rollback(scp_keystore *ks);
/* An SQLite result as an scp_rc with its message (full disk, corrupt DB). */
int ks_db_rc(scp_keystore *ks, int sqlite_rc, const char *what);
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
/* Protected tables: every change to a row of one is noted (its primary key
 * and the SHA-256 of its content, or deleted) in the audit record of the
 * same transaction, so `audit verify` can rebuild what each table must
 * hold. */
enum { KS_T_KEYS, KS_T_HISTORY, KS_T_CARDS, KS_T_CUSTODIANS, KS_T_PENDING, KS_T_COUNT };
SCP_MUST_CHECK int ks_rows_note(scp_keystore *ks, int table, const char *pk);
/* Inside a transaction: append one record (with the noted rows) and move
 * the authenticated head. */
SCP_MUST_CHECK int ks_audit_append(scp_keystore *ks, const char *op, const char *label,
                                   uint32_t version, const uint8_t *kcv, const char *card,
                                   int result);
/* Schema 1 -> 2: note every existing row in one record (writer lock). */
SCP_MUST_CHECK int ks_audit_migrate(scp_keystore *ks);
int ks_audit_migrate_needed(scp_keystore *ks);
/* Inside a token write transaction: checkpoint the DB head into the token. */
SCP_MUST_CHECK int ks_audit_checkpoint(scp_keystore *ks);

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
