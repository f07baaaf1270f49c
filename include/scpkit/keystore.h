/* scpkit: an HSM-backed keystore. Master keys live in a PKCS#11 token
 * (SoftHSM2 in a private directory by default, any module by path),
 * sensitive and non-extractable; card keys are diversified with the master
 * inside the token (CMAC for SP800-108/KDF3, 3DES-ECB for EMV/VISA2) and
 * exist only in the caller's memory. Beside the token, an SQLite database
 * keeps key metadata (label, version, KCV, NIST SP 800-57 state and its
 * history), per-card records and a SHA-256 hash-chained audit log whose head
 * is checkpointed with an HMAC key held inside the token.
 *
 * PINs never come from argv: SCPKIT_SO_PIN / SCPKIT_USER_PIN or a no-echo
 * prompt on /dev/tty (scp_keystore_pin).
 *
 * Threads: a handle is used by one thread at a time; several handles on
 * one keystore in one process may derive, sign and read at once (opening
 * and closing are serialised inside). SoftHSM2 serves one keystore per
 * process, and PKCS#11 login is per process: close a process's handles
 * together, when none of them is still in use. Writes that move the token
 * to a new generation (generate, import, destroy) need the process's only
 * handle. */
#ifndef SCPKIT_KEYSTORE_H
#define SCPKIT_KEYSTORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "scpkit/ec.h"
#include "scpkit/gp.h"
#include "scpkit/scp03.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SCP_KS_LABEL_MAX 64
#define SCP_KS_MAX_KEY 32
#define SCP_KS_DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define SCP_KS_DEFAULT_TOKEN "scpkit"

typedef struct scp_keystore scp_keystore; /* opaque; one open token session */

typedef enum scp_ks_type {
    SCP_KS_AES128 = 1,
    SCP_KS_AES192,
    SCP_KS_AES256,
    SCP_KS_DES2, /* two-key 3DES, 16 bytes (EMV/VISA2 masters) */
    SCP_KS_DES3, /* three-key 3DES, 24 bytes */
    /* EC key pairs (SCP11 off-card entities, lab CAs): CKO_PRIVATE_KEY
     * (sensitive, not extractable; CKA_DERIVE for CKM_ECDH1_DERIVE, CKA_SIGN
     * for CKM_ECDSA) with its CKO_PUBLIC_KEY, both labelled "label:version".
     * Their "KCV" is the first 3 bytes of SHA-256 over the uncompressed
     * public point 04 X Y. Not for diversification or secret sharing. */
    SCP_KS_EC_P256,
    SCP_KS_EC_P384,
    SCP_KS_EC_BP256, /* brainpoolP256r1 */
} scp_ks_type;

/* NIST SP 800-57 Part 1 Rev. 5, section 7: key states. */
typedef enum scp_ks_state {
    SCP_KS_PRE_ACTIVATION = 1,
    SCP_KS_ACTIVE,
    SCP_KS_SUSPENDED,
    SCP_KS_DEACTIVATED,
    SCP_KS_COMPROMISED,
    SCP_KS_DESTROYED,
} scp_ks_state;

typedef struct scp_ks_key_info {
    char label[SCP_KS_LABEL_MAX + 1];
    uint32_t version;
    scp_ks_type type;
    uint8_t length;
    uint8_t kcv[3];
    /* 0: GP KCV, E(K, 16 x 01) (AES) or 3DES(K, 8 x 00), via C_Encrypt;
     * 1: the token refuses ECB with this key, so AES-CMAC(K, 16 x 01) via
     * C_Sign (shown as "C:" before the KCV). */
    uint8_t kcv_cmac;
    scp_ks_state state;
    char origin[16]; /* "generated", "shamir", "xor", "import" */
    int64_t created, changed;
} scp_ks_key_info;

/* Names: "aes128" ... "des3"; "pre-activation" ... "destroyed". */
SCP_MUST_CHECK int scp_ks_type_parse(const char *s, scp_ks_type *out);
/* The name of a key type ("aes128" ... "des3"); "unknown" for another
 * value. */
const char *scp_ks_type_name(scp_ks_type t);
/* The key length in bytes of a key type; 0 for another value. */
size_t scp_ks_type_len(scp_ks_type t);
/* 1 for the EC key-pair types ("ec-p256", "ec-p384", "ec-bp256"). */
int scp_ks_type_is_ec(scp_ks_type t);
/* The scp_ec_curve of an EC type; SCP_EC_NONE for another type. */
int scp_ks_type_curve(scp_ks_type t);
/* The EC type of an scp_ec_curve (SCP_E_ARG for another curve). */
SCP_MUST_CHECK int scp_ks_type_from_curve(int curve, scp_ks_type *out);
/* SP 800-57 state from its name ("pre-activation" ... "destroyed");
 * SCP_E_ARG for any other name (*out untouched). */
SCP_MUST_CHECK int scp_ks_state_parse(const char *s, scp_ks_state *out);
/* The name of a state; "unknown" for another value. */
const char *scp_ks_state_name(scp_ks_state s);
/* SCP_OK when from -> to is an allowed SP 800-57 transition, else SCP_E_STATE. */
SCP_MUST_CHECK int scp_ks_transition_allowed(scp_ks_state from, scp_ks_state to);
/* "LABEL[:VERSION]" -> label and version (0 when absent: the newest). */
SCP_MUST_CHECK int scp_ks_parse_ref(const char *s, char label[SCP_KS_LABEL_MAX + 1],
                                    uint32_t *version);

/* Where the token is and how to reach it. NULL fields take defaults: dir
 * $HOME/.scpkit/keystore (a relative dir is made absolute), token
 * SCP_KS_DEFAULT_TOKEN. The PKCS#11 module is code this process will run,
 * so it only comes from the operator: cfg->module, else
 * $SCPKIT_PKCS11_MODULE, else SCP_KS_DEFAULT_MODULE (SoftHSM2) for a
 * keystore with its private SoftHSM2 token; never from keystore.db. It
 * must be an absolute path to a regular file owned by root or the user
 * and not writable by group or others. */
typedef struct scp_ks_config {
    const char *dir;
    const char *module;
    const char *token;
    const char *actor; /* audit actor; NULL: $SCPKIT_ACTOR or the login name */
} scp_ks_config;

/* Create DIR (0700) and the metadata DB beside the token, and the audit
 * HMAC key in the token. With cfg->module NULL: a private SoftHSM2
 * configuration (DIR/softhsm2.conf, tokens in DIR/tokens, SOFTHSM2_CONF set
 * for this process) and a new token initialised with the SO and user PINs.
 * With cfg->module: that module as its environment configures it; an
 * existing token cfg->token is adopted (so_pin may be NULL), else a free
 * slot is initialised. Mechanism support is reported on `report` (may be
 * NULL); missing mandatory ones fail with SCP_E_UNSUPPORTED. An existing
 * keystore is never overwritten (SCP_E_STATE). One SoftHSM2 keystore per
 * process at a time (SoftHSM2 reads its configuration once). */
SCP_MUST_CHECK int scp_keystore_init(const scp_ks_config *cfg, const char *so_pin,
                                     const char *user_pin, FILE *report);
/* Open an existing keystore and log in as the user (a read-only session;
 * writes take the writer lock and a token write transaction). Operations
 * a killed process left half done are settled here when no writer is
 * active, each with an audit record. */
SCP_MUST_CHECK int scp_keystore_open(const scp_ks_config *cfg, const char *user_pin,
                                     scp_keystore **out);
/* Log out, close the token session and the database, free ks (NULL:
 * no-op). */
void scp_keystore_close(scp_keystore *ks);
/* Print what the token can and cannot do (C_GetMechanismInfo). */
void scp_keystore_report(scp_keystore *ks, FILE *f);

/* Generate a master key inside the token (CKA_SENSITIVE, not extractable,
 * CKA_TOKEN) in state pre-activation. version 0: next free version. */
SCP_MUST_CHECK int scp_keystore_generate(scp_keystore *ks, const char *label, uint32_t version,
                                         scp_ks_type type, scp_ks_key_info *info);
/* Import a key value by unwrapping inside the token: the value is wrapped
 * (RFC 3394) under a session key generated in the token and unwrapped, so
 * no CKA_VALUE template ever holds it. origin: "shamir", "xor", "import". */
SCP_MUST_CHECK int scp_keystore_import(scp_keystore *ks, const char *label, uint32_t version,
                                       scp_ks_type type, const uint8_t *value, size_t len,
                                       const char *origin, scp_ks_key_info *info);
/* ---- EC key pairs (src/keys/ec.c) ----
 * scp_keystore_generate with an EC type makes the pair in the token
 * (CKM_EC_KEY_PAIR_GEN). Import: the private key goes in as PKCS#8,
 * wrapped (RFC 5649) under a session key made in the token and unwrapped
 * there, so no CKA_VALUE template ever holds it; the public point read
 * back must match (else SCP_E_KCV and nothing goes live). origin: "import". */
SCP_MUST_CHECK int scp_keystore_import_ec(scp_keystore *ks, const char *label, uint32_t version,
                                          const scp_ec_key *key, scp_ks_key_info *info);
/* The public half (any state but destroyed): 04 X Y and the curve. */
SCP_MUST_CHECK int scp_keystore_ec_public(scp_keystore *ks, const char *label, uint32_t version,
                                          scp_ec_key *pub);
/* ECDH inside the token (CKM_ECDH1_DERIVE, CKD_NULL) with an active key:
 * the X coordinate of d * peer (field length) into out; one audit record
 * ("ecdh", with `purpose` as its card field, may be NULL). */
SCP_MUST_CHECK int scp_keystore_ecdh(scp_keystore *ks, const char *label, uint32_t version,
                                     const uint8_t *peer, size_t peer_len, const char *purpose,
                                     uint8_t *out, size_t out_size, size_t *out_len);
/* ECDSA inside the token (CKM_ECDSA over SHA-256(msg)) with an active key;
 * DER signature. One audit record ("sign", purpose as its card field). */
SCP_MUST_CHECK int scp_keystore_ec_sign(scp_keystore *ks, const char *label, uint32_t version,
                                        const uint8_t *msg, size_t len, const char *purpose,
                                        uint8_t *sig, size_t sig_size, size_t *sig_len);
/* Issue an X.509 certificate (ECDSA-SHA256) signed by the keystore's EC
 * key ca_label:ca_version (active): subject CN, subject public key `subj`;
 * self-signed CA when issuer_der is NULL (subj must then be the CA key's
 * own public key), else issued under that certificate, whose public key
 * must be the CA key's. ca != 0: a CA (keyCertSign), else a leaf with
 * keyAgreement (an SCP11 OCE or SD key). DER into out. */
SCP_MUST_CHECK int scp_keystore_ca_issue(scp_keystore *ks, const char *ca_label,
                                         uint32_t ca_version, const uint8_t *issuer_der,
                                         size_t issuer_len, const scp_ec_key *subj,
                                         const char *cn, int ca, int64_t not_before, int days,
                                         uint64_t serial, uint8_t *out, size_t out_size,
                                         size_t *out_len);
/* An scp11_oce_key-shaped ECDH callback over a key of the keystore (ctx:
 * an scp_ks_oce from scp_keystore_oce_open). */
typedef struct scp_ks_oce {
    scp_keystore *ks;
    char label[SCP_KS_LABEL_MAX + 1];
    uint32_t version;
    int curve;
} scp_ks_oce;
/* Resolve ref ("LABEL[:VERSION]") to an active EC key of ks and fill oce
 * (SCP_E_STATE for a key that is not active, SCP_E_ARG for one that is not
 * an EC pair; the refusal is audited). */
SCP_MUST_CHECK int scp_keystore_oce_open(scp_keystore *ks, const char *ref, scp_ks_oce *oce);
/* scp11_oce_key.ecdh over an scp_ks_oce: scp_keystore_ecdh with the peer
 * point, the X coordinate into out. */
int scp_keystore_oce_ecdh(void *ctx, const uint8_t *peer, size_t peer_len, uint8_t *out,
                          size_t out_size, size_t *out_len);

/* Look up a key (version 0: newest). */
SCP_MUST_CHECK int scp_keystore_get(scp_keystore *ks, const char *label, uint32_t version,
                                    scp_ks_key_info *info);
/* Call fn for every key, ordered by label then version. */
SCP_MUST_CHECK int scp_keystore_list(scp_keystore *ks,
                                     void (*fn)(void *arg, const scp_ks_key_info *k), void *arg);
/* Lifecycle change with a reason; -> active is refused here (it needs a
 * quorum: scp_keystore_activate_*); -> destroyed destroys the token object. */
SCP_MUST_CHECK int scp_keystore_set_state(scp_keystore *ks, const char *label, uint32_t version,
                                          scp_ks_state to, const char *reason);
/* Activation under dual control: M shares of the key (their recombination
 * must give the key's KCV), or two distinct custodians' PINs. */
SCP_MUST_CHECK int scp_keystore_activate_shares(scp_keystore *ks, const char *label,
                                                uint32_t version, const char *const *shares,
                                                size_t n, const char *reason);
/* Register a custodian for two-person activation: name, a random salt and
 * a PIN verifier (never the PIN), MACed, in one transaction. SCP_E_ARG for
 * a PIN under 6 characters, SCP_E_IO (e.g. a known name); nothing stored
 * on error. */
SCP_MUST_CHECK int scp_keystore_custodian_add(scp_keystore *ks, const char *name,
                                              const char *pin);
/* Activate label/version with two distinct custodians' PINs (audited,
 * with reason). SCP_E_AUTH when a PIN does not match or both names are
 * the same, SCP_E_NOT_FOUND for an unknown key, SCP_E_STATE when the
 * transition is not allowed; the key is unchanged on error. */
SCP_MUST_CHECK int scp_keystore_activate_custodians(scp_keystore *ks, const char *label,
                                                    uint32_t version, const char *name1,
                                                    const char *pin1, const char *name2,
                                                    const char *pin2, const char *reason);

/* Diversify inside the token. `require_active`: 1 for opening sessions
 * (only active keys), 0 for checking old data (active or deactivated).
 * card_id (may be NULL) is recorded in the audit log. */
SCP_MUST_CHECK int scp_keystore_derive(scp_keystore *ks, const char *label, uint32_t version,
                                       scp_div_scheme scheme, const uint8_t *kdd, size_t kdd_len,
                                       int require_active, scp03_keys *out);
/* One derivation of scp_keystore_derive_set. */
typedef struct scp_ks_derive_req {
    const char *label;
    uint32_t version; /* 0: newest */
    scp_div_scheme scheme;
    int require_active;
    scp03_keys *out;
    int rc; /* set: this request's result */
} scp_ks_derive_req;
/* The card record scp_keystore_derive_set may write (scp_keystore_card_set). */
typedef struct scp_ks_card_note {
    const char *label;
    uint32_t version;
    scp_div_scheme scheme;
    uint8_t kvn;
} scp_ks_card_note;
/* Several derivations for one card (one KDD) in one transaction: each
 * request gets its own audit record, exactly as scp_keystore_derive writes
 * it, and with `card` (may be NULL) the card record of
 * scp_keystore_card_set too; then one commit (one fsync) instead of one
 * per call. An OTA session that needs the card's current and next key
 * sets derives both at once. Returns the first failure (reqs[i].rc each
 * one's); then, or if the commit fails, every out is wiped and the card
 * record not written: no key without its durable audit record. */
SCP_MUST_CHECK int scp_keystore_derive_set(scp_keystore *ks, const uint8_t *kdd, size_t kdd_len,
                                           scp_ks_derive_req *reqs, size_t n,
                                           const scp_ks_card_note *card);
/* Durable commits (each one fsync of the keystore's WAL) this handle has
 * made since it was opened: a server exports it to show its keystore work
 * per session. */
unsigned long scp_keystore_commits(const scp_keystore *ks);
/* Record that card KDD now holds keys from label:version under kvn. */
SCP_MUST_CHECK int scp_keystore_card_set(scp_keystore *ks, const uint8_t *kdd, size_t kdd_len,
                                         const char *label, uint32_t version,
                                         scp_div_scheme scheme, uint8_t kvn);

/* One card record: which master (and version) its current KVN comes from;
 * `behind` is 1 when a newer active version of that master exists (a
 * rotation campaign's to-do list). */
typedef struct scp_ks_card {
    const char *kdd_hex, *label, *kdf;
    uint32_t version;
    uint8_t kvn;
    int64_t updated;
    int behind;
} scp_ks_card;
/* Call fn(arg, card) for every card the keystore tracks, ordered by
 * master label, master version, KDD. SCP_E_IO (database), with fn already
 * called for the cards before the error. */
SCP_MUST_CHECK int scp_keystore_card_each(scp_keystore *ks,
                                          void (*fn)(void *arg, const scp_ks_card *c),
                                          void *arg);

/* ---- ceremonies: Shamir M-of-N over GF(2^8), XOR components ---- */
#define SCP_KS_SHARE_TEXT_MAX 160
/* Create label:version from fresh random bytes, split it, import it by
 * unwrap (pre-activation) and write the n shares as text lines
 * ("scpkit-shamir-1:...") into shares[n]. The value is wiped. m = 0 with
 * scheme "xor": n XOR components, each with its own KCV. */
SCP_MUST_CHECK int scp_keystore_split_new(scp_keystore *ks, const char *label, uint32_t version,
                                          scp_ks_type type, int xor_scheme, unsigned m,
                                          unsigned n, char (*shares)[SCP_KS_SHARE_TEXT_MAX],
                                          scp_ks_key_info *info);
/* Recombine shares/components (each check value verified) and import the
 * key by unwrap; expect_kcv (may be NULL) is compared in constant time. */
SCP_MUST_CHECK int scp_keystore_combine(scp_keystore *ks, const char *label, uint32_t version,
                                        const char *const *shares, size_t n,
                                        const uint8_t *expect_kcv, scp_ks_key_info *info);

/* ---- audit ---- */
/* What `audit verify` found. */
typedef struct scp_ks_verify {
    uint64_t records;    /* audit records, all chained and authenticated */
    uint64_t recovered;  /* of them: interrupted operations completed or undone */
    uint64_t checkpoint; /* the record the token's checkpoint names (0: none) */
    uint64_t keys;       /* key rows checked against the token */
    uint64_t bad_seq;    /* on SCP_E_CORRUPT: the first bad record (0: a table row) */
    char why[256];       /* on SCP_E_CORRUPT: what was tampered with */
} scp_ks_verify;
/* Everything: the hash chain, each record's HMAC, the authenticated head
 * and the token's checkpoint, every protected table (keys, key history,
 * cards, custodians, intents) against the rows the log says it changed
 * (additions, edits, deletions), every key against the token (no orphan,
 * none missing) and every key's history from its creation to its state.
 * SCP_E_CORRUPT means tampered; interrupted operations that open() settled
 * are counted in `recovered`, never reported as tampering. */
SCP_MUST_CHECK int scp_keystore_verify(scp_keystore *ks, scp_ks_verify *v);
/* Copy the audit head into the token now (a token write): truncating the
 * log below it is then detected. */
SCP_MUST_CHECK int scp_keystore_checkpoint(scp_keystore *ks);
/* What the last failure in this thread means and what to do about it
 * (wrong PIN, missing token, keystore locked, disk full, damaged
 * database, ...), "" when there is no more to say. ks may be NULL (a
 * failed open). */
const char *scp_keystore_why(const scp_keystore *ks);
/* Verify the whole chain and the token checkpoint (scp_keystore_verify).
 * On failure returns SCP_E_CORRUPT with *bad_seq = the first bad record and
 * why[] saying how. */
SCP_MUST_CHECK int scp_keystore_audit_verify(scp_keystore *ks, uint64_t *records,
                                             uint64_t *bad_seq, char *why, size_t why_size);
/* One audit record as stored (no key material is ever in one). */
typedef struct scp_ks_audit_rec {
    uint64_t seq;
    int64_t time;
    const char *actor, *op, *label, *kcv, *card;
    uint32_t version;
    int result; /* an scp_rc */
} scp_ks_audit_rec;
/* Call fn for each record in order (the last `last` only, 0: all). */
SCP_MUST_CHECK int scp_keystore_audit_each(scp_keystore *ks, uint64_t last,
                                           void (*fn)(void *arg, const scp_ks_audit_rec *r),
                                           void *arg);
/* Append an audit record (the library does it for every key operation). */
SCP_MUST_CHECK int scp_keystore_audit(scp_keystore *ks, const char *op, const char *label,
                                      uint32_t version, const uint8_t *kcv, const char *card,
                                      int result);

/* ---- the channel hook (include/scpkit/channel.h scp_channel_opts.derive) ---- */
/* Open a derive context for `master` ("LABEL[:VERSION]") and `kdf` ("sp800-108",
 * "kdf3", "emv", "visa2") in keystore dir (NULL: default). The user PIN
 * comes from SCPKIT_USER_PIN or a /dev/tty prompt. Usage:
 *   void *ctx; scp_keystore_derive_open(dir, "fleet:2", "kdf3", &ctx);
 *   opts.derive = scp_keystore_derive_cb; opts.derive_ctx = ctx;
 *   ... scp_channel_open(...) ...; scp_keystore_derive_close(ctx); */
SCP_MUST_CHECK int scp_keystore_derive_open(const char *dir, const char *master, const char *kdf,
                                            void **ctx);
/* Fills *out with the card's keys (only from an active master), records the
 * card (KDD -> master:version, kvn) and an audit record. */
int scp_keystore_derive_cb(void *ctx, const uint8_t *kdd, size_t kdd_len, uint8_t kvn,
                           scp03_keys *out);
/* Close what scp_keystore_derive_open opened (NULL: no-op). */
void scp_keystore_derive_close(void *ctx);
/* The keystore behind a derive context (for rotation: derive a new key set
 * from another master with the same open token). */
scp_keystore *scp_keystore_derive_keystore(void *ctx);

/* A PIN from the environment variable `env` or a no-echo prompt on
 * /dev/tty. Wipe with scp_wipe after use. */
SCP_MUST_CHECK int scp_keystore_pin(const char *env, const char *prompt, char *out,
                                    size_t out_size);

#ifdef __cplusplus
}
#endif
#endif
