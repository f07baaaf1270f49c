/* scpkit keys: key types, names, and the NIST SP 800-57 Part 1 Rev. 5
 * key lifecycle (section 7, "Key States and Transitions", figure 5).
 *
 *   from \ to        pre-act  active  suspended  deactivated  compromised  destroyed
 *   pre-activation      -      yes(q)    -           -            yes         yes
 *   active              -       -       yes         yes           yes          -
 *   suspended           -      yes(q)    -          yes           yes          -
 *   deactivated         -       -        -           -            yes         yes
 *   compromised         -       -        -           -             -          yes
 *   destroyed           -       -        -           -             -           -
 *
 * 7.1: a pre-activation key may become active, compromised, or be destroyed
 *      (never used); 7.2: an active key may be suspended, deactivated or
 *      compromised; 7.3: a suspended key returns to active, or is
 *      deactivated or compromised; 7.4: a deactivated key (processing only:
 *      here, checking old derivations) may be compromised or destroyed;
 *      7.5: a compromised key may only be destroyed; 7.6: destroyed is
 *      final. (q): becoming active needs a quorum of custodians (dual
 *      control, SP 800-57 Part 2 / Part 1 8.1.5): scp_keystore_activate_*.
 * Active and deactivated keys may not be destroyed directly: an active key
 * is deactivated first, so the record shows why it left service. */
#include <string.h>
#include <stdlib.h>
#include "keys/internal.h"
#include "core/guard.h"

/* EC key pairs: the length is the private scalar's (the field length). */
static const char *const type_names[] = {NULL,   "aes128",   "aes192",   "aes256", "des2",
                                         "des3", "ec-p256", "ec-p384", "ec-bp256"};
static const uint8_t type_lens[] = {0, 16, 24, 32, 16, 24, 32, 48, 32};

int scp_ks_type_parse(const char *s, scp_ks_type *out)
{
    ENSURE(s != NULL && out != NULL, SCP_E_ARG);
    for (int i = SCP_KS_AES128; i <= SCP_KS_EC_BP256; i++) {
        if (strcmp(s, type_names[i]) == 0) {
            *out = (scp_ks_type)i;
            return SCP_OK;
        }
    }
    return SCP_E_ARG;
}

const char *scp_ks_type_name(scp_ks_type t)
{
    return (t >= SCP_KS_AES128 && t <= SCP_KS_EC_BP256) ? type_names[t] : "unknown";
}

int scp_ks_type_is_ec(scp_ks_type t)
{
    return t == SCP_KS_EC_P256 || t == SCP_KS_EC_P384 || t == SCP_KS_EC_BP256;
}

int scp_ks_type_curve(scp_ks_type t)
{
    return t == SCP_KS_EC_P256 ? SCP_EC_P256 : t == SCP_KS_EC_P384 ? SCP_EC_P384
                                           : t == SCP_KS_EC_BP256  ? SCP_EC_BP256
                                                                   : SCP_EC_NONE;
}

int scp_ks_type_from_curve(int curve, scp_ks_type *out)
{
    ENSURE(out != NULL, SCP_E_ARG);
    *out = curve == SCP_EC_P256 ? SCP_KS_EC_P256 : curve == SCP_EC_P384 ? SCP_KS_EC_P384
                                                 : SCP_KS_EC_BP256;
    ENSURE(curve == SCP_EC_P256 || curve == SCP_EC_P384 || curve == SCP_EC_BP256, SCP_E_ARG);
    return SCP_OK;
}

size_t scp_ks_type_len(scp_ks_type t)
{
    return (t >= SCP_KS_AES128 && t <= SCP_KS_EC_BP256) ? type_lens[t] : 0;
}

static const char *const state_names[] = {NULL,          "pre-activation", "active",
                                          "suspended",   "deactivated",    "compromised",
                                          "destroyed"};

int scp_ks_state_parse(const char *s, scp_ks_state *out)
{
    ENSURE(s != NULL && out != NULL, SCP_E_ARG);
    for (int i = SCP_KS_PRE_ACTIVATION; i <= SCP_KS_DESTROYED; i++) {
        if (strcmp(s, state_names[i]) == 0) {
            *out = (scp_ks_state)i;
            return SCP_OK;
        }
    }
    return SCP_E_ARG;
}

const char *scp_ks_state_name(scp_ks_state s)
{
    return (s >= SCP_KS_PRE_ACTIVATION && s <= SCP_KS_DESTROYED) ? state_names[s] : "unknown";
}

#define B(s) (1u << (s))
/* allowed[from] = set of states reachable in one step (table above). */
static const unsigned allowed[] = {
    [SCP_KS_PRE_ACTIVATION] = B(SCP_KS_ACTIVE) | B(SCP_KS_COMPROMISED) | B(SCP_KS_DESTROYED),
    [SCP_KS_ACTIVE] = B(SCP_KS_SUSPENDED) | B(SCP_KS_DEACTIVATED) | B(SCP_KS_COMPROMISED),
    [SCP_KS_SUSPENDED] = B(SCP_KS_ACTIVE) | B(SCP_KS_DEACTIVATED) | B(SCP_KS_COMPROMISED),
    [SCP_KS_DEACTIVATED] = B(SCP_KS_COMPROMISED) | B(SCP_KS_DESTROYED),
    [SCP_KS_COMPROMISED] = B(SCP_KS_DESTROYED),
    [SCP_KS_DESTROYED] = 0,
};

int scp_ks_transition_allowed(scp_ks_state from, scp_ks_state to)
{
    ENSURE(from >= SCP_KS_PRE_ACTIVATION && from <= SCP_KS_DESTROYED, SCP_E_ARG);
    ENSURE(to >= SCP_KS_PRE_ACTIVATION && to <= SCP_KS_DESTROYED, SCP_E_ARG);
    ENSURE(allowed[from] & B(to), SCP_E_STATE);
    return SCP_OK;
}

int scp_ks_parse_ref(const char *s, char label[SCP_KS_LABEL_MAX + 1], uint32_t *version)
{
    ENSURE(s != NULL && label != NULL && version != NULL, SCP_E_ARG);
    const char *c = strrchr(s, ':');
    size_t n = c != NULL ? (size_t)(c - s) : strlen(s);
    ENSURE(n >= 1 && n <= SCP_KS_LABEL_MAX, SCP_E_ARG);
    for (size_t i = 0; i < n; i++) /* labels are plain names: no ':' or control */
        ENSURE(s[i] > ' ' && s[i] < 0x7f && s[i] != ':', SCP_E_ARG);
    memcpy(label, s, n);
    label[n] = 0;
    *version = 0;
    if (c != NULL) {
        char *end;
        unsigned long v = strtoul(c + 1, &end, 10);
        ENSURE(c[1] >= '1' && c[1] <= '9' && *end == 0 && v <= 0xFFFFFFu, SCP_E_ARG);
        *version = (uint32_t)v;
    }
    return SCP_OK;
}

/* One transition under the writer lock: checked against the state as it
 * is now, applied in the DB with its history and audit record in one
 * transaction. -> destroyed also destroys the token object, crash-safe
 * (journal.c): intent, token write transaction, completion. */
static int transition_locked(scp_keystore *ks, const scp_ks_key_info *k0, scp_ks_state to,
                             const char *reason, const char *op)
{
    scp_ks_key_info k;
    int64_t pid = 0;
    GUARD(ks_reconcile(ks));
    GUARD(ks_db_key_get(ks, k0->label, k0->version, &k));
    int rc = scp_ks_transition_allowed(k.state, to);
    if (rc == SCP_OK && (reason == NULL || reason[0] == 0))
        rc = SCP_E_ARG; /* every change carries a reason */
    if (rc == SCP_OK && to == SCP_KS_DESTROYED) {
        char id[SCP_KS_LABEL_MAX + 16];
        CK_OBJECT_HANDLE h;
        GUARD(ks_obj_id(k.label, k.version, id, sizeof(id)));
        GUARD(ks_intent(ks, "destroy", k.label, k.version, scp_ks_type_name(k.type), reason,
                        &pid));
        rc = ks_gen_begin(ks);
        if (rc == SCP_OK) {
            rc = ks_tok_find_key(ks, id, &h);
            if (rc == SCP_OK)
                rc = ks_crash_point("p11-destroy");
            if (rc == SCP_OK)
                rc = ks_tok_destroy_key(ks, id, h);
            if (rc == SCP_OK)
                rc = ks_crash_point("p11-destroyed");
            if (rc == SCP_OK)
                rc = ks_audit_checkpoint(ks);
            if (rc != SCP_OK) {
                ks_gen_abort(ks);
            } else if ((rc = ks_gen_commit(ks)) != SCP_OK) {
                return rc; /* switched or not: the intent stays for reconciliation */
            }
        }
    }
    int frc = ks_tx_begin(ks);
    if (frc == SCP_OK && rc == SCP_OK)
        frc = ks_db_key_state(ks, &k, to, reason);
    if (frc == SCP_OK && pid != 0)
        frc = ks_intent_done(ks, pid);
    if (frc == SCP_OK)
        frc = ks_audit_append(ks, op, k.label, k.version, k.kcv, NULL, rc);
    if (frc == SCP_OK)
        frc = ks_tx_commit(ks);
    else
        ks_tx_rollback(ks);
    return rc < 0 ? rc : frc;
}

int ks_transition(scp_keystore *ks, const scp_ks_key_info *k, scp_ks_state to,
                  const char *reason, const char *op)
{
    GUARD(ks_lock(ks));
    int rc = transition_locked(ks, k, to, reason, op);
    ks_unlock(ks);
    return rc;
}

int scp_keystore_set_state(scp_keystore *ks, const char *label, uint32_t version,
                           scp_ks_state to, const char *reason)
{
    scp_ks_key_info k;
    ENSURE(ks != NULL && label != NULL, SCP_E_ARG);
    GUARD(ks_db_key_get(ks, label, version, &k));
    if (to == SCP_KS_ACTIVE) { /* needs a quorum: refuse and say so in the log */
        ks_ignore(scp_keystore_audit(ks, "state:active-without-quorum", k.label, k.version, k.kcv,
                                 NULL, SCP_E_PERM));
        return SCP_E_PERM;
    }
    char op[48];
    snprintf(op, sizeof(op), "state:%s", scp_ks_state_name(to));
    return ks_transition(ks, &k, to, reason, op);
}
