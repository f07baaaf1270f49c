/* scpkit keystore, card side (issue 6):
 * - scp_cli_keystore_derive: the --keystore DIR --master LABEL[:VERSION]
 *   --kdf SCHEME hook of every host command (cli.h): the channel gets its
 *   static keys from scp_keystore_derive_cb, diversified inside the HSM
 *   from the card's KDD; no key is ever on the command line.
 * - scpkit keystore rotate: move a card from master L:V to L:V2 with keys
 *   that exist only in memory: authenticate with the keys of V, PUT KEY
 *   the keys of V2 (derived in the HSM for the same KDD) under a new KVN,
 *   prove them with a new session, delete the old set, record the card. */
/* Built only with the keystore library (src/keys: SQLite, p11-kit header). */
#ifdef SCP_HAVE_KEYS
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "scpkit/keystore.h"

static void derive_free(void *ctx)
{
    scp_keystore_derive_close(ctx);
}

int scp_cli_keystore_derive(scp_cli *c)
{
    void *ctx = NULL;
    /* SCP11 takes --keystore for SK.OCE (--oce-label, cli_scp11.c) */
    if (scp_cli_scp11_variant(&c->o) != 0 && c->o.master == NULL && c->o.kdf == NULL)
        return SCP_EXIT_OK;
    if (c->o.master == NULL || c->o.kdf == NULL)
        return scp_cli_fail(c, SCP_EXIT_USAGE,
                            "--keystore needs --master LABEL[:VERSION] and --kdf SCHEME");
    int rc = scp_keystore_derive_open(c->o.keystore, c->o.master, c->o.kdf, &ctx);
    if (rc != SCP_OK)
        return scp_cli_fail(c, rc == SCP_E_PERM ? SCP_EXIT_AUTH : SCP_EXIT_LOCAL,
                            "keystore %s, master %s: %s", c->o.keystore, c->o.master,
                            scp_strerror(rc));
    /* Say it plainly now rather than as a failed handshake later. */
    char label[SCP_KS_LABEL_MAX + 1];
    uint32_t v = 0;
    scp_ks_key_info k;
    if (scp_ks_parse_ref(c->o.master, label, &v) == SCP_OK &&
        scp_keystore_get(scp_keystore_derive_keystore(ctx), label, v, &k) == SCP_OK &&
        k.state != SCP_KS_ACTIVE) {
        scp_keystore_derive_close(ctx);
        return scp_cli_fail(c, SCP_EXIT_LOCAL,
                            "master %s:%u is %s: only an active master key opens sessions",
                            k.label, (unsigned)k.version, scp_ks_state_name(k.state));
    }
    c->chopts.derive = scp_keystore_derive_cb;
    c->chopts.derive_ctx = ctx;
    c->derive_free = derive_free;
    return SCP_EXIT_OK;
}

/* The new key set: derived in the HSM from the new master for the card's
 * KDD (only an active master gives keys for new sessions, SP 800-57). */
typedef struct rot_target {
    scp_keystore *ks;
    char label[SCP_KS_LABEL_MAX + 1];
    uint32_t v;
    scp_div_scheme s;
} rot_target;

/* make_keys of the key-set flow: called once the channel is open, so the
 * card's KDD is known. */
static int new_keys(scp_cli *c, void *ctx, scp03_keys *nk)
{
    const rot_target *t = ctx;
    int rc = scp_keystore_derive(t->ks, t->label, t->v, t->s, c->ch.kdd, SCP03_KDD_LEN, 1, nk);
    if (rc != SCP_OK)
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "new master %s:%u: %s", t->label, (unsigned)t->v,
                            scp_strerror(rc));
    return SCP_EXIT_OK;
}

/* The rotation itself is the CLI's one key-set flow (cmd_rotate.c): the
 * new keys exist only in memory, proved by a new session before the old
 * set is deleted. */
static int rotate_steps(scp_cli *c, rot_target *t, int kvn, char *card, uint8_t *old)
{
    char where[SCP_KS_LABEL_MAX + 48];
    scp_cli_keyplan p = { 0 };
    int rc;
    snprintf(where, sizeof(where), "the keystore, master %s:%u", t->label, (unsigned)t->v);
    p.new_kvn = (uint8_t)kvn;
    p.make_keys = new_keys;
    p.ctx = t;
    p.keys_where = where;
    p.prove = 1;
    p.delete_old = 1;
    rc = scp_cli_keyplan_run(c, &p);
    *old = p.old_kvn;
    if (p.authenticated)
        scp_cli_hex(p.kdd, SCP03_KDD_LEN, card, 2 * SCP03_KDD_LEN + 1);
    return rc;
}

int scp_cli_keystore_rotate(scp_cli *c, const char *dir)
{
    const char *nm = scp_cli_take(c, "--new-master"), *kt = scp_cli_take(c, "--new-kvn");
    const char *nkdf = scp_cli_take(c, "--new-kdf");
    char card[2 * SCP03_KDD_LEN + 1] = "", label[SCP_KS_LABEL_MAX + 1];
    uint8_t old = 0;
    uint32_t v;
    scp_div_scheme s;
    void *nctx = NULL;
    int kvn = 0, rc;
    if (nkdf == NULL)
        nkdf = c->o.kdf;
    if (nm == NULL || kt == NULL || nkdf == NULL || scp_div_parse(nkdf, &s) != SCP_OK ||
        scp_ks_parse_ref(nm, label, &v) != SCP_OK)
        return scp_cli_fail(c, SCP_EXIT_USAGE,
                            "keystore rotate --card DIR|-r READER [current keys] --new-master "
                            "L[:V] [--new-kdf S] --new-kvn N");
    if ((rc = scp_cli_kvn(c, "--new-kvn", kt, SCP_KVN_NEW, &kvn)) != SCP_EXIT_OK ||
        (rc = scp_cli_no_more(c, 2)) != SCP_EXIT_OK)
        return rc;
    rc = scp_keystore_derive_open(dir, nm, nkdf, &nctx);
    if (rc != SCP_OK)
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "keystore, new master %s: %s", nm,
                            scp_strerror(rc));
    rot_target t = {scp_keystore_derive_keystore(nctx), "", v, s};
    scp_ks_key_info k;
    memcpy(t.label, label, sizeof(label));
    rc = scp_keystore_get(t.ks, label, v, &k);
    if (rc == SCP_OK) {
        t.v = k.version;
        rc = rotate_steps(c, &t, kvn, card, &old);
    } else {
        rc = scp_cli_fail(c, SCP_EXIT_LOCAL, "new master %s: %s", nm, scp_strerror(rc));
    }
    /* The card record moves only once the card holds the new set. */
    int r3 = rc == SCP_EXIT_OK ? scp_keystore_card_set(t.ks, c->ch.kdd, SCP03_KDD_LEN, label,
                                                       t.v, s, (uint8_t)kvn)
                               : SCP_OK;
    int r4 = scp_keystore_audit(t.ks, "rotate", label, t.v, NULL, card,
                                rc == SCP_EXIT_OK ? r3 : SCP_E_SW);
    v = t.v;
    r3 = r3 != SCP_OK ? r3 : r4;
    scp_keystore_derive_close(nctx);
    if (rc != SCP_EXIT_OK)
        return rc;
    if (r3 != SCP_OK)
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "card rotated, but the audit record failed");
    if (c->o.json) {
        json_object_object_add(c->doc, "card", json_object_new_string(card));
        json_object_object_add(c->doc, "old_kvn", json_object_new_int(old));
        json_object_object_add(c->doc, "new_kvn", json_object_new_int(kvn));
        json_object_object_add(c->doc, "master", json_object_new_string(nm));
    } else {
        printf("Rotated card %s: KVN %02X -> %02X, keys from %s:%u (%s), checked with a new "
               "session\n",
               card, old, kvn, label, (unsigned)v, scp_div_name(s));
    }
    return SCP_EXIT_OK;
}

#endif /* SCP_HAVE_KEYS */
