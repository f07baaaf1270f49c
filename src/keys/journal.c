/* scpkit keys: intents and reconciliation. An operation that changes the
 * token (generate, import, destroy) runs under the writer lock as
 *   1. an intent: a `pending` row (HMAC under the token's audit key, so a
 *      forged one is refused) and an audit record "begin:OP", committed;
 *   2. the token write transaction (gen.c), which also checkpoints the
 *      audit head into the token;
 *   3. the completion: the key rows, the intent removed and the audit
 *      record OP, in one SQLite transaction.
 * A kill anywhere leaves either nothing (before 1), or an intent whose
 * token change did or did not happen. ks_reconcile, run by the next writer
 * (or at open when nobody holds the lock), settles each intent by looking
 * at the token: a generated key is adopted ("generate:recovered"), an
 * imported one destroyed ("import:rolled-back": its KCV checks cannot be
 * repeated without the value), a destroy is completed
 * ("state:destroyed:recovered"). A master key in the token that neither a
 * key row nor an intent explains is destroyed ("reconcile:orphan-destroyed").
 * Every one of these leaves an audit record, so every key that was ever in
 * the token has a complete history. */
#include <stdio.h>
#include <string.h>
#include "keys/internal.h"
#include "core/guard.h"
#include "scpkit/crypto.h"

static int pending_mac(scp_keystore *ks, int64_t id, const char *op, const char *label,
                       uint32_t version, const char *arg, const char *reason, const char *actor,
                       uint8_t mac[KS_HASH_LEN])
{
    char in[1024];
    int n = snprintf(in, sizeof(in), "scpkit-pending-1|%lld|%s|%s|%u|%s|%s|%s", (long long)id, op,
                     label, (unsigned)version, arg, reason, actor);
    ENSURE(n > 0 && (size_t)n < sizeof(in), SCP_E_ARG);
    return ks_tok_hmac(ks, (const uint8_t *)in, (size_t)n, mac);
}

int ks_intent(scp_keystore *ks, const char *op, const char *label, uint32_t version,
              const char *arg, const char *reason, int64_t *id)
{
    sqlite3_stmt *st;
    uint8_t mac[KS_HASH_LEN] = {0};
    char pk[24], bop[32];
    ENSURE(ks->locked, SCP_E_STATE);
    GUARD(ks_tx_begin(ks));
    int rc = sqlite3_prepare_v2(ks->db,
                                "INSERT INTO pending(op, label, version, arg, reason, actor, mac)"
                                " VALUES(?, ?, ?, ?, ?, ?, ?)",
                                -1, &st, NULL) == SQLITE_OK
                 ? SCP_OK
                 : SCP_E_IO;
    if (rc == SCP_OK) {
        sqlite3_bind_text(st, 1, op, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, label, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, version);
        sqlite3_bind_text(st, 4, arg, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, reason, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, ks->actor, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 7, mac, KS_HASH_LEN, SQLITE_STATIC);
        int r = sqlite3_step(st);
        sqlite3_finalize(st);
        rc = r == SQLITE_DONE ? SCP_OK : ks_db_rc(ks, r, "recording an intent");
    }
    if (rc == SCP_OK) {
        *id = sqlite3_last_insert_rowid(ks->db);
        rc = pending_mac(ks, *id, op, label, version, arg, reason, ks->actor, mac);
    }
    if (rc == SCP_OK &&
        sqlite3_prepare_v2(ks->db, "UPDATE pending SET mac = ? WHERE id = ?", -1, &st, NULL) ==
            SQLITE_OK) {
        sqlite3_bind_blob(st, 1, mac, KS_HASH_LEN, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, *id);
        int r = sqlite3_step(st);
        sqlite3_finalize(st);
        rc = r == SQLITE_DONE ? SCP_OK : ks_db_rc(ks, r, "recording an intent");
    }
    snprintf(pk, sizeof(pk), "%lld", (long long)*id);
    snprintf(bop, sizeof(bop), "begin:%s", op);
    if (rc == SCP_OK)
        rc = ks_rows_note(ks, KS_T_PENDING, pk);
    if (rc == SCP_OK)
        rc = ks_audit_append(ks, bop, label, version, NULL, NULL, SCP_OK);
    if (rc != SCP_OK) {
        ks_tx_rollback(ks);
        return rc;
    }
    return ks_tx_commit(ks);
}

int ks_intent_done(scp_keystore *ks, int64_t id)
{
    sqlite3_stmt *st;
    char pk[24];
    ENSURE(ks->in_tx, SCP_E_STATE);
    ENSURE(sqlite3_prepare_v2(ks->db, "DELETE FROM pending WHERE id = ?", -1, &st, NULL) ==
               SQLITE_OK,
           SCP_E_IO);
    sqlite3_bind_int64(st, 1, id);
    int r = sqlite3_step(st);
    sqlite3_finalize(st);
    if (r != SQLITE_DONE)
        return ks_db_rc(ks, r, "completing an intent");
    snprintf(pk, sizeof(pk), "%lld", (long long)id);
    return ks_rows_note(ks, KS_T_PENDING, pk);
}

/* ---- the token's master keys against the database ---- */

/* Is token object "label:version" explained by a live key row or an intent? */
static int explained(scp_keystore *ks, const char *label, uint32_t version)
{
    sqlite3_stmt *st;
    int yes = 1;
    if (sqlite3_prepare_v2(ks->db,
                           "SELECT EXISTS(SELECT 1 FROM keys WHERE label = ?1 AND version = ?2"
                           " AND state != 'destroyed') OR EXISTS(SELECT 1 FROM pending WHERE"
                           " label = ?1 AND version = ?2)",
                           -1, &st, NULL) != SQLITE_OK)
        return 1; /* when in doubt, never destroy */
    sqlite3_bind_text(st, 1, label, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, version);
    if (sqlite3_step(st) == SQLITE_ROW)
        yes = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return yes;
}

#define KS_ORPHANS_MAX 64

static int orphans_of(scp_keystore *ks, CK_OBJECT_CLASS cls, int destroy, uint64_t *count);

int ks_tok_orphans(scp_keystore *ks, int destroy, uint64_t *count)
{
    *count = 0;
    /* master keys, then EC private keys (their public halves go with them) */
    GUARD(orphans_of(ks, CKO_SECRET_KEY, destroy, count));
    return orphans_of(ks, CKO_PRIVATE_KEY, destroy, count);
}

static int orphans_of(scp_keystore *ks, CK_OBJECT_CLASS cls, int destroy, uint64_t *count)
{
    CK_BBOOL tru = CK_TRUE;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_TOKEN, &tru, 1}};
    CK_OBJECT_HANDLE found[256];
    CK_ULONG n = 0;
    scp_p11 *p = &ks->p11;
    GUARD(scp_p11_rc(p, "C_FindObjectsInit", p->f->C_FindObjectsInit(p->sess, t, 2)));
    CK_RV rv = p->f->C_FindObjects(p->sess, found, 256, &n);
    (void)p->f->C_FindObjectsFinal(p->sess);
    GUARD(scp_p11_rc(p, "C_FindObjects", rv));
    for (CK_ULONG i = 0; i < n; i++) {
        char id[SCP_KS_LABEL_MAX + 16], label[SCP_KS_LABEL_MAX + 1];
        uint32_t version = 0;
        CK_ATTRIBUTE a = {CKA_LABEL, id, sizeof(id) - 1};
        if (p->f->C_GetAttributeValue(p->sess, found[i], &a, 1) != CKR_OK ||
            a.ulValueLen >= sizeof(id))
            continue;
        id[a.ulValueLen] = 0;
        if (strcmp(id, KS_AUDIT_KEY_LABEL) == 0 || strchr(id, ':') == NULL ||
            scp_ks_parse_ref(id, label, &version) != SCP_OK || version == 0)
            continue; /* not one of ours */
        if (explained(ks, label, version))
            continue;
        (*count)++;
        if (!destroy)
            continue;
        GUARD(ks_crash_point("p11-destroy-orphan"));
        GUARD(ks_tok_destroy_key(ks, id, found[i]));
        GUARD(ks_crash_point("p11-destroyed-orphan"));
        GUARD(ks_tx_begin(ks));
        int rc = ks_audit_append(ks, "reconcile:orphan-destroyed", label, version, NULL, NULL,
                                 SCP_OK);
        if (rc != SCP_OK) {
            ks_tx_rollback(ks);
            return rc;
        }
        GUARD(ks_tx_commit(ks));
    }
    return SCP_OK;
}

/* ---- settling intents ---- */

typedef struct intent {
    int64_t id;
    char op[16], label[SCP_KS_LABEL_MAX + 1], arg[16], reason[256], actor[64];
    uint32_t version;
} intent;

static int next_intent(scp_keystore *ks, intent *in)
{
    sqlite3_stmt *st;
    uint8_t mac[KS_HASH_LEN];
    int rc = SCP_E_NOT_FOUND;
    ENSURE(sqlite3_prepare_v2(ks->db,
                              "SELECT id, op, label, version, arg, reason, actor, mac FROM pending"
                              " ORDER BY id LIMIT 1",
                              -1, &st, NULL) == SQLITE_OK,
           SCP_E_IO);
    if (sqlite3_step(st) == SQLITE_ROW) {
        const char *f[5];
        for (int i = 0; i < 5; i++) {
            f[i] = (const char *)sqlite3_column_text(st, i < 2 ? i + 1 : i + 2);
            if (f[i] == NULL)
                f[i] = "";
        }
        in->id = sqlite3_column_int64(st, 0);
        in->version = (uint32_t)sqlite3_column_int64(st, 3);
        rc = strlen(f[0]) < sizeof(in->op) && strlen(f[1]) < sizeof(in->label) &&
                     strlen(f[2]) < sizeof(in->arg) && strlen(f[3]) < sizeof(in->reason) &&
                     strlen(f[4]) < sizeof(in->actor) && sqlite3_column_bytes(st, 7) == KS_HASH_LEN
                 ? SCP_OK
                 : SCP_E_CORRUPT;
        if (rc == SCP_OK) {
            snprintf(in->op, sizeof(in->op), "%s", f[0]);
            snprintf(in->label, sizeof(in->label), "%s", f[1]);
            snprintf(in->arg, sizeof(in->arg), "%s", f[2]);
            snprintf(in->reason, sizeof(in->reason), "%s", f[3]);
            snprintf(in->actor, sizeof(in->actor), "%s", f[4]);
            rc = pending_mac(ks, in->id, in->op, in->label, in->version, in->arg, in->reason,
                             in->actor, mac);
            if (rc == SCP_OK && !scp_ct_eq(mac, sqlite3_column_blob(st, 7), KS_HASH_LEN))
                rc = SCP_E_CORRUPT;
        }
    }
    sqlite3_finalize(st);
    if (rc == SCP_E_CORRUPT)
        ks_why(ks, "an interrupted-operation record in %s/keystore.db fails its HMAC: it was "
                   "forged or edited; nothing was done with it (run `scpkit audit verify`)",
               ks->dir);
    return rc;
}

/* Destroy token object `id` in a token write transaction (if present). */
static int destroy_in_token(scp_keystore *ks, const char *id)
{
    CK_OBJECT_HANDLE h;
    if (ks_tok_find_key(ks, id, &h) == SCP_E_NOT_FOUND &&
        scp_p11_find(&ks->p11, CKO_PUBLIC_KEY, id, &h) == SCP_E_NOT_FOUND)
        return SCP_OK;
    GUARD(ks_gen_begin(ks));
    int rc = ks_tok_find_key(ks, id, &h);
    if (rc == SCP_E_NOT_FOUND) /* an EC pair cut short: only its public half */
        rc = scp_p11_find(&ks->p11, CKO_PUBLIC_KEY, id, &h);
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
        return rc;
    }
    return ks_gen_commit(ks);
}

/* A generated key that reached the token: adopt it. */
static int adopt_generated(scp_keystore *ks, const intent *in, CK_OBJECT_HANDLE h)
{
    scp_ks_key_info k = {0};
    int rc = scp_ks_type_parse(in->arg, &k.type);
    if (rc == SCP_OK)
        rc = ks_tok_kcv(ks, h, k.type, k.kcv, &k.kcv_cmac);
    GUARD(rc);
    snprintf(k.label, sizeof(k.label), "%s", in->label);
    snprintf(k.origin, sizeof(k.origin), "generated");
    k.version = in->version;
    k.length = (uint8_t)scp_ks_type_len(k.type);
    k.state = SCP_KS_PRE_ACTIVATION;
    k.created = k.changed = ks_now();
    GUARD(ks_tx_begin(ks));
    rc = ks_db_key_insert(ks, &k);
    if (rc == SCP_OK)
        rc = ks_intent_done(ks, in->id);
    if (rc == SCP_OK)
        rc = ks_audit_append(ks, "generate:recovered", k.label, k.version, k.kcv, NULL, SCP_OK);
    if (rc != SCP_OK) {
        ks_tx_rollback(ks);
        return rc;
    }
    return ks_tx_commit(ks);
}

static int settle(scp_keystore *ks, const intent *in)
{
    char id[SCP_KS_LABEL_MAX + 16], op[48];
    CK_OBJECT_HANDLE h;
    scp_ks_key_info k;
    GUARD(ks_obj_id(in->label, in->version, id, sizeof(id)));
    int in_token = ks_tok_find_key(ks, id, &h) == SCP_OK;
    int result = SCP_OK, have_key = 0;
    if (strcmp(in->op, "generate") == 0 && in_token)
        return adopt_generated(ks, in, h);
    if (strcmp(in->op, "destroy") == 0) {
        GUARD(destroy_in_token(ks, id));
        have_key = ks_db_key_get(ks, in->label, in->version, &k) == SCP_OK;
        snprintf(op, sizeof(op), "state:destroyed:recovered");
    } else {
        if (in_token) /* an import (or an unknown op): undo */
            GUARD(destroy_in_token(ks, id));
        snprintf(op, sizeof(op), "%s:rolled-back", in->op);
        result = SCP_E_STATE;
    }
    GUARD(ks_tx_begin(ks));
    int rc = SCP_OK;
    if (have_key && k.state != SCP_KS_DESTROYED)
        rc = ks_db_key_state(ks, &k, SCP_KS_DESTROYED, in->reason);
    if (rc == SCP_OK)
        rc = ks_intent_done(ks, in->id);
    if (rc == SCP_OK)
        rc = ks_audit_append(ks, op, in->label, in->version, have_key ? k.kcv : NULL, NULL,
                             result);
    if (rc != SCP_OK) {
        ks_tx_rollback(ks);
        return rc;
    }
    return ks_tx_commit(ks);
}

int ks_reconcile(scp_keystore *ks)
{
    intent in;
    int rc;
    ENSURE(ks->locked, SCP_E_STATE);
    for (int i = 0; i < 1000; i++) { /* each pass removes one intent */
        rc = next_intent(ks, &in);
        if (rc == SCP_E_NOT_FOUND)
            break;
        GUARD(rc);
        GUARD(settle(ks, &in));
        ks->recovered++;
    }
    uint64_t orphans = 0;
    GUARD(ks_tok_orphans(ks, 0, &orphans));
    if (orphans == 0)
        return SCP_OK;
    GUARD(ks_gen_begin(ks));
    rc = ks_tok_orphans(ks, 1, &orphans);
    if (rc == SCP_OK)
        rc = ks_audit_checkpoint(ks);
    if (rc != SCP_OK) {
        ks_gen_abort(ks);
        return rc;
    }
    ks->recovered += orphans;
    return ks_gen_commit(ks);
}

/* Any intent left by a process that died? (cheap, no lock) */
int ks_has_pending(scp_keystore *ks)
{
    sqlite3_stmt *st;
    int yes = 0;
    if (sqlite3_prepare_v2(ks->db, "SELECT EXISTS(SELECT 1 FROM pending)", -1, &st, NULL) !=
        SQLITE_OK)
        return 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        yes = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return yes;
}

int scp_keystore_checkpoint(scp_keystore *ks)
{
    ENSURE(ks != NULL, SCP_E_ARG);
    GUARD(ks_lock(ks));
    int rc = ks_reconcile(ks);
    if (rc == SCP_OK)
        rc = scp_keystore_audit(ks, "audit:checkpoint", "", 0, NULL, NULL, SCP_OK);
    if (rc == SCP_OK)
        rc = ks_gen_begin(ks);
    if (rc == SCP_OK) {
        rc = ks_audit_checkpoint(ks);
        if (rc == SCP_OK)
            rc = ks_gen_commit(ks);
        else
            ks_gen_abort(ks);
    }
    ks_unlock(ks);
    return rc;
}
