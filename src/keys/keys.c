/* scpkit keys: master keys (generate in the token, import by unwrap),
 * diversification for cards, and the channel's derive hook. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "keys/internal.h"
#include "core/guard.h"
#include "scpkit/crypto.h"

static int check_label(const char *label)
{
    char l[SCP_KS_LABEL_MAX + 1];
    uint32_t v;
    ENSURE(label != NULL && strchr(label, ':') == NULL, SCP_E_ARG);
    return scp_ks_parse_ref(label, l, &v);
}

/* A new label:version: not in the DB and not in the token. */
static int new_slot(scp_keystore *ks, const char *label, uint32_t *version, char *id, size_t size)
{
    scp_ks_key_info k;
    CK_OBJECT_HANDLE h;
    GUARD(check_label(label));
    if (*version == 0)
        GUARD(ks_db_key_next_version(ks, label, version));
    ENSURE(*version <= 0xFFFFFFu, SCP_E_ARG);
    ENSURE(ks_db_key_get(ks, label, *version, &k) == SCP_E_NOT_FOUND, SCP_E_STATE);
    GUARD(ks_obj_id(label, *version, id, size));
    ENSURE(ks_tok_find_key(ks, id, &h) == SCP_E_NOT_FOUND, SCP_E_STATE);
    return SCP_OK;
}

/* A new master key, crash-safe (journal.c): under the writer lock, an
 * intent, the token write transaction (generate or unwrap, KCV, checks,
 * audit checkpoint), then key row + history + audit in one transaction.
 * An imported key must show the KCV of the value it came from (the unwrap
 * worked), and the KCV the ceremony expects (expect_kcv, may be NULL); if
 * not, the token transaction is dropped: the key never becomes live. */
static int create_key(scp_keystore *ks, const char *label, uint32_t version, scp_ks_type type,
                      const char *origin, const uint8_t *value, size_t len,
                      const uint8_t *expect_kcv, scp_ks_key_info *info)
{
    char id[SCP_KS_LABEL_MAX + 16], op[32];
    scp_ks_key_info k = {0};
    uint8_t soft[3];
    CK_OBJECT_HANDLE h;
    int64_t pid = 0;
    int gen = value == NULL, token_done = 0;
    snprintf(op, sizeof(op), "%s%s", gen ? "generate" : "import:", gen ? "" : origin);
    GUARD(ks_lock(ks));
    int rc = ks_reconcile(ks);
    if (rc == SCP_OK)
        rc = new_slot(ks, label, &version, id, sizeof(id));
    if (rc != SCP_OK) {
        ks_unlock(ks);
        return rc;
    }
    rc = ks_intent(ks, gen ? "generate" : "import", label, version, scp_ks_type_name(type),
                   origin, &pid);
    if (rc != SCP_OK) {
        ks_unlock(ks);
        return rc;
    }
    rc = ks_gen_begin(ks);
    if (rc == SCP_OK) {
        rc = ks_crash_point(gen ? "p11-generate" : "p11-unwrap");
        if (rc == SCP_OK)
            rc = gen                        ? ks_tok_generate(ks, id, type)
                 : scp_ks_type_is_ec(type) ? ks_tok_unwrap_ec(ks, id, type, value, len)
                                           : ks_tok_unwrap(ks, id, type, value, len);
        if (rc == SCP_OK)
            rc = ks_crash_point(gen ? "p11-generated" : "p11-unwrapped");
        if (rc == SCP_OK)
            rc = ks_tok_find_key(ks, id, &h);
        if (rc == SCP_OK)
            rc = ks_tok_kcv(ks, h, type, k.kcv, &k.kcv_cmac);
        if (rc == SCP_OK && value != NULL)
            rc = ks_kcv_soft_kind(type, k.kcv_cmac, value, len, soft);
        if (rc == SCP_OK && value != NULL && !scp_ct_eq(soft, k.kcv, 3))
            rc = SCP_E_KCV;
        if (rc == SCP_OK && expect_kcv != NULL && !scp_ct_eq(expect_kcv, k.kcv, 3))
            rc = SCP_E_KCV;
        if (rc == SCP_OK)
            rc = ks_audit_checkpoint(ks);
        if (rc == SCP_OK) {
            rc = ks_gen_commit(ks);
            token_done = rc == SCP_OK;
            if (rc != SCP_OK) { /* the switch may or may not have happened: */
                if (ks->p11.last_rv != CKR_OK && ks->p11.last_call != NULL)
                    ks_why(ks, "switching the token: %s returned CK_RV 0x%lx",
                           ks->p11.last_call, (unsigned long)ks->p11.last_rv);
                ks_unlock(ks);  /* the intent stays, the next writer settles it */
                return rc;
            }
        } else {
            ks_gen_abort(ks); /* no key without its record: it never went live */
        }
    }
    snprintf(k.label, sizeof(k.label), "%s", label);
    snprintf(k.origin, sizeof(k.origin), "%s", origin);
    k.version = version;
    k.type = type;
    k.length = (uint8_t)scp_ks_type_len(type);
    k.state = SCP_KS_PRE_ACTIVATION;
    k.created = k.changed = ks_now();
    int frc = ks_tx_begin(ks);
    if (frc == SCP_OK && token_done)
        frc = ks_db_key_insert(ks, &k);
    if (frc == SCP_OK)
        frc = ks_intent_done(ks, pid);
    if (frc == SCP_OK)
        frc = ks_audit_append(ks, op, label, version, token_done ? k.kcv : NULL, NULL, rc);
    if (frc == SCP_OK)
        frc = ks_tx_commit(ks);
    else
        ks_tx_rollback(ks);
    /* if the completion failed, the intent stays: the next writer settles it */
    if (rc != SCP_OK && ks->p11.last_rv != CKR_OK && ks->p11.last_call != NULL)
        ks_why(ks, "%s in the token: %s returned CK_RV 0x%lx", gen ? "generating" : "importing",
               ks->p11.last_call, (unsigned long)ks->p11.last_rv);
    ks_unlock(ks);
    if (rc == SCP_OK && frc == SCP_OK && info != NULL)
        *info = k;
    return rc < 0 ? rc : frc;
}

int scp_keystore_generate(scp_keystore *ks, const char *label, uint32_t version,
                          scp_ks_type type, scp_ks_key_info *info)
{
    ENSURE(ks != NULL && scp_ks_type_len(type) != 0, SCP_E_ARG);
    return create_key(ks, label, version, type, "generated", NULL, 0, NULL, info);
}

int ks_import(scp_keystore *ks, const char *label, uint32_t version, scp_ks_type type,
              const uint8_t *value, size_t len, const char *origin, const uint8_t *expect_kcv,
              scp_ks_key_info *info)
{
    ENSURE(ks != NULL && value != NULL && origin != NULL, SCP_E_ARG);
    ENSURE(strcmp(origin, "generated") != 0 && len == scp_ks_type_len(type), SCP_E_ARG);
    ENSURE(!scp_ks_type_is_ec(type), SCP_E_ARG); /* scp_keystore_import_ec */
    return create_key(ks, label, version, type, origin, value, len, expect_kcv, info);
}

int ks_import_ec_der(scp_keystore *ks, const char *label, uint32_t version, scp_ks_type type,
                     const uint8_t *der, size_t len, scp_ks_key_info *info)
{
    ENSURE(ks != NULL && der != NULL && len > 0 && scp_ks_type_is_ec(type), SCP_E_ARG);
    return create_key(ks, label, version, type, "import", der, len, NULL, info);
}

int scp_keystore_import(scp_keystore *ks, const char *label, uint32_t version, scp_ks_type type,
                        const uint8_t *value, size_t len, const char *origin,
                        scp_ks_key_info *info)
{
    return ks_import(ks, label, version, type, value, len, origin, NULL, info);
}

int scp_keystore_get(scp_keystore *ks, const char *label, uint32_t version,
                     scp_ks_key_info *info)
{
    ENSURE(ks != NULL && label != NULL && info != NULL, SCP_E_ARG);
    return ks_db_key_get(ks, label, version, info);
}

static int scheme_fits(scp_div_scheme s, scp_ks_type t)
{
    int des = t == SCP_KS_DES2 || t == SCP_KS_DES3;
    if (scp_ks_type_is_ec(t))
        return 0;
    if (s == SCP_DIV_SP800_108 || s == SCP_DIV_KDF3)
        return !des;
    return (s == SCP_DIV_EMV || s == SCP_DIV_VISA2) && des;
}

/* The token part of one derivation (no audit record): the key row, its
 * state (SP 800-57 Part 1 5.3.4/7.2: only an active key applies
 * protection, i.e. opens sessions; a deactivated one only processes,
 * i.e. checks old data), the scheme, the CMACs in the token. k->label is
 * empty when there is no such key. */
static int derive_tok(scp_keystore *ks, const char *label, uint32_t version,
                      scp_div_scheme scheme, const uint8_t *kdd, size_t kdd_len,
                      int require_active, scp03_keys *out, scp_ks_key_info *k)
{
    char id[SCP_KS_LABEL_MAX + 16];
    CK_OBJECT_HANDLE h;
    memset(k, 0, sizeof(*k));
    GUARD(ks_db_key_get(ks, label, version, k));
    int rc = SCP_OK;
    if (k->state != SCP_KS_ACTIVE && (require_active || k->state != SCP_KS_DEACTIVATED))
        rc = SCP_E_STATE;
    if (rc == SCP_OK && !scheme_fits(scheme, k->type))
        rc = SCP_E_UNSUPPORTED;
    if (rc == SCP_OK)
        rc = ks_obj_id(k->label, k->version, id, sizeof(id));
    if (rc == SCP_OK)
        rc = scp_p11_find(&ks->p11, CKO_SECRET_KEY, id, &h);
    /* a key generated since this handle copied the token: look at the
     * live generation (once) */
    if (rc == SCP_E_NOT_FOUND && ks_gen_refresh(ks) == SCP_OK)
        rc = scp_p11_find(&ks->p11, CKO_SECRET_KEY, id, &h);
    if (rc == SCP_OK)
        rc = ks_tok_derive(ks, h, k->type, scheme, kdd, kdd_len, out);
    return rc;
}

static void kdd_hex(const uint8_t *kdd, size_t kdd_len, char *card)
{
    for (size_t i = 0; i < kdd_len; i++)
        snprintf(card + 2 * i, 3, "%02X", kdd[i]);
}

int scp_keystore_derive(scp_keystore *ks, const char *label, uint32_t version,
                        scp_div_scheme scheme, const uint8_t *kdd, size_t kdd_len,
                        int require_active, scp03_keys *out)
{
    scp_ks_key_info k;
    char card[2 * SCP03_KDD_LEN + 1] = "";
    ENSURE(ks != NULL && label != NULL && out != NULL, SCP_E_ARG);
    ENSURE(kdd != NULL && kdd_len == SCP03_KDD_LEN, SCP_E_ARG);
    kdd_hex(kdd, kdd_len, card);
    int rc = derive_tok(ks, label, version, scheme, kdd, kdd_len, require_active, out, &k);
    if (k.label[0] == 0) /* no such key: nothing to record against */
        return rc;
    char op[32];
    snprintf(op, sizeof(op), "derive:%s", scp_div_name(scheme));
    int arc = scp_keystore_audit(ks, op, k.label, k.version, k.kcv, card, rc);
    if (rc == SCP_OK && arc != SCP_OK)
        scp_wipe(out, sizeof(*out)); /* no key without its audit record */
    return rc < 0 ? rc : arc;
}

unsigned long scp_keystore_commits(const scp_keystore *ks)
{
    return ks != NULL ? ks->commits : 0;
}

int scp_keystore_derive_set(scp_keystore *ks, const uint8_t *kdd, size_t kdd_len,
                            scp_ks_derive_req *reqs, size_t n, const scp_ks_card_note *card)
{
    char hex[2 * SCP03_KDD_LEN + 1] = "";
    int rc = SCP_OK;
    ENSURE(ks != NULL && kdd != NULL && kdd_len == SCP03_KDD_LEN && (reqs != NULL || n == 0),
           SCP_E_ARG);
    ENSURE(n > 0 || card != NULL, SCP_E_ARG);
    for (size_t i = 0; i < n; i++)
        ENSURE(reqs[i].label != NULL && reqs[i].out != NULL, SCP_E_ARG);
    kdd_hex(kdd, kdd_len, hex);
    GUARD(ks_tx_begin(ks));
    int frc = SCP_OK;
    for (size_t i = 0; i < n && frc == SCP_OK; i++) {
        scp_ks_key_info k;
        scp_ks_derive_req *q = &reqs[i];
        q->rc = derive_tok(ks, q->label, q->version, q->scheme, kdd, kdd_len, q->require_active,
                           q->out, &k);
        if (q->rc != SCP_OK && rc == SCP_OK)
            rc = q->rc;
        if (k.label[0] != 0) { /* each derivation its own record, as derive writes it */
            char op[32];
            snprintf(op, sizeof(op), "derive:%s", scp_div_name(q->scheme));
            frc = ks_audit_append(ks, op, k.label, k.version, k.kcv, hex, q->rc);
        }
    }
    /* the card record only with every key derived */
    if (frc == SCP_OK && rc == SCP_OK && card != NULL)
        frc = ks_db_card_put(ks, hex, card->label, card->version, card->scheme, card->kvn);
    if (frc == SCP_OK)
        frc = ks_tx_commit(ks); /* one commit: every record durable, or none */
    else
        ks_tx_rollback(ks);
    if (rc != SCP_OK || frc != SCP_OK) /* no key without its audit record */
        for (size_t i = 0; i < n; i++)
            scp_wipe(reqs[i].out, sizeof(*reqs[i].out));
    return rc != SCP_OK ? rc : frc;
}

/* ---- the channel's derive hook ---- */

typedef struct ks_derive_ctx {
    scp_keystore *ks;
    char label[SCP_KS_LABEL_MAX + 1];
    uint32_t version;
    scp_div_scheme scheme;
} ks_derive_ctx;

int scp_keystore_derive_open(const char *dir, const char *master, const char *kdf, void **ctx)
{
    ks_derive_ctx *c;
    scp_ks_config cfg = {dir, NULL, NULL, NULL};
    char pin[128];
    scp_ks_key_info k;
    ENSURE(master != NULL && kdf != NULL && ctx != NULL, SCP_E_ARG);
    c = calloc(1, sizeof(*c));
    ENSURE(c != NULL, SCP_E_NOMEM);
    int rc = scp_ks_parse_ref(master, c->label, &c->version);
    if (rc == SCP_OK)
        rc = scp_div_parse(kdf, &c->scheme);
    if (rc == SCP_OK && c->scheme == SCP_DIV_NONE)
        rc = SCP_E_ARG;
    if (rc == SCP_OK)
        rc = scp_keystore_pin("SCPKIT_USER_PIN", "keystore user PIN: ", pin, sizeof(pin));
    if (rc == SCP_OK)
        rc = scp_keystore_open(&cfg, pin, &c->ks);
    scp_wipe(pin, sizeof(pin));
    if (rc == SCP_OK && c->version == 0) /* "LABEL": its newest version */
        rc = ks_db_key_get(c->ks, c->label, 0, &k);
    if (rc == SCP_OK && c->version == 0)
        c->version = k.version;
    if (rc != SCP_OK) {
        scp_keystore_derive_close(c);
        return rc;
    }
    *ctx = c;
    return SCP_OK;
}

int scp_keystore_derive_cb(void *ctx, const uint8_t *kdd, size_t kdd_len, uint8_t kvn,
                           scp03_keys *out)
{
    ks_derive_ctx *c = ctx;
    ENSURE(c != NULL && c->ks != NULL && out != NULL, SCP_E_ARG);
    /* the keys, their audit record and the card record in one commit */
    scp_ks_derive_req q = {c->label, c->version, c->scheme, 1, out, SCP_OK};
    scp_ks_card_note note = {c->label, c->version, c->scheme, kvn};
    GUARD(scp_keystore_derive_set(c->ks, kdd, kdd_len, &q, 1, &note));
    out->kvn = kvn;
    return SCP_OK;
}

void scp_keystore_derive_close(void *ctx)
{
    ks_derive_ctx *c = ctx;
    if (c == NULL)
        return;
    scp_keystore_close(c->ks);
    scp_wipe(c, sizeof(*c));
    free(c);
}

scp_keystore *scp_keystore_derive_keystore(void *ctx)
{
    return ctx != NULL ? ((ks_derive_ctx *)ctx)->ks : NULL;
}
