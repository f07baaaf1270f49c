/* The one flow that changes a card's key sets: keys put, keys delete,
 * keys rotate and keystore rotate all run scp_cli_keyplan_run, with one
 * KVN rule. Its order leaves a known state after every failure:
 *   1. authenticate with the current set (KVN old);
 *   2. make the new keys (from the command line, generated, or derived in
 *      the HSM for this card's KDD) and write them to --out (0600, never
 *      over an existing file) BEFORE the card changes;
 *   3. PUT KEY the new set (KVN new), next to the old one or over it
 *      (--replace), key check values compared in constant time;
 *   4. (rotate) open a new channel with the new keys: proves they work;
 *   5. (rotate) DELETE the old set if the card still holds it (a YubiKey
 *      drops its factory set FF by itself when the first set is added);
 *      (keys delete) DELETE the named set.
 * After a failure past step 2 it says which sets the card holds now.
 *
 * KVN rule (GPC v2.3.1 11.1.8; PUT KEY P1, 11.8.2.2: b8 says "more PUT KEY
 * commands follow", b7-b1 carry the KVN): a key set the host creates or
 * replaces has KVN 01..7F. FF is the initial (factory) set, chosen outside
 * that range on purpose (GPC_GUI_003), so it is never created; 00 asks the
 * card for its first set and is for authentication only. Yubico's SDK
 * applies the same 1..127 range to SCP key references. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int scp_cli_kvn_parse(const char *text, scp_cli_kvn_use use, int *out)
{
    switch (use) {
    case SCP_KVN_NEW: return scp_cli_parse_hex(text, 0x01, 0x7F, out);
    case SCP_KVN_EXISTING: return scp_cli_parse_hex(text, 0x01, 0xFF, out);
    case SCP_KVN_AUTH: return scp_cli_parse_hex(text, 0x00, 0xFF, out);
    }
    return -1;
}

const char *scp_cli_kvn_rule(scp_cli_kvn_use use)
{
    switch (use) {
    case SCP_KVN_NEW:
        return "want a new KVN in hex, 01..7F (GP: FF is the factory set, 00 is not a set)";
    case SCP_KVN_EXISTING: return "want the KVN of a set on the card, in hex, 01..FF";
    case SCP_KVN_AUTH: break;
    }
    return "want a KVN in hex, 00..FF (00: the card's choice)";
}

/* "the card holds: ..." in words and in the JSON document. */
static void report(scp_cli *c, const scp_cli_keyplan *p, const char *what, uint8_t old_kvn,
                   int old_state, int new_state)
{
    static const char *const words[] = { "no", "yes", "unknown", "unchanged" };
    json_object *j = json_object_new_object();
    json_object_object_add(j, "old_kvn", json_object_new_int(old_kvn));
    json_object_object_add(j, "old_present", json_object_new_string(words[old_state]));
    json_object_object_add(j, "new_kvn", json_object_new_int(p->new_kvn));
    json_object_object_add(j, "new_present", json_object_new_string(words[new_state]));
    json_object_object_add(c->doc, "card_holds", j);
    fprintf(stderr,
            "scpkit: %s. The card now holds: old set KVN %02X: %s; new set KVN %02X: %s "
            "(its keys are in %s).\n",
            what, old_kvn, words[old_state], p->new_kvn, words[new_state], p->keys_where);
}

/* What the key information template says: 0 no, 1 yes, else the guess
 * (2 unknown, 3 unchanged). */
static int state_of(scp_cli *c, uint8_t kvn, int guess)
{
    int h = scp_cli_keys_holds(c, kvn);
    return h < 0 ? guess : h;
}

/* Steps 2-5 once the channel is open; nk is wiped by the caller. */
static int change(scp_cli *c, const scp_cli_keyplan *p, uint8_t old, scp03_keys *nk)
{
    uint16_t sw = 0;
    char err[256];
    int rc;

    if ((rc = p->make_keys(c, p->ctx, nk)) != SCP_EXIT_OK)
        return rc; /* nothing changed */
    nk->kvn = p->new_kvn;
    if (p->out && scp_cli_keyfile_write(p->out, nk, err, sizeof(err)) != SCP_OK)
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "%s; the card was not changed", err);
    rc = scp_cli_keys_putkey(c, nk, p->replace, &sw);
    if (rc != SCP_EXIT_OK || sw != 0x9000) {
        if (rc == SCP_EXIT_OK)
            rc = scp_cli_fail_sw(c, sw, "PUT KEY");
        /* a refused PUT KEY changed nothing; a lost answer may have */
        report(c, p, "stopped at PUT KEY", old, 1,
               sw && sw != 0x9000 ? (p->replace ? 3 : 0) : 2);
        return rc;
    }
    scp_cli_keys_kcvs(c, nk);
    if (!p->prove)
        return SCP_EXIT_OK;
    /* step 4: a fresh session with the new keys */
    c->keys = *nk;
    c->chopts.kvn = nk->kvn;
    c->chopts.div = SCP_DIV_NONE;
    c->chopts.derive = NULL;
    if ((rc = scp_cli_reselect(c)) != SCP_EXIT_OK ||
        (rc = scp_cli_open_channel(c)) != SCP_EXIT_OK) {
        report(c, p, "the new keys did not open a channel; the old set was NOT deleted", old,
               state_of(c, old, 2), state_of(c, nk->kvn, 1));
        return rc;
    }
    /* step 5 */
    if (p->delete_old && scp_cli_keys_holds(c, old) != 0) {
        rc = scp_cli_keys_delete(c, old, &sw);
        if (rc == SCP_EXIT_OK && sw != 0x9000)
            rc = scp_cli_fail_sw(c, sw, "DELETE KEY (old set)");
        if (rc != SCP_EXIT_OK) {
            report(c, p, "the old set could not be deleted", old, state_of(c, old, 2), 1);
            return rc;
        }
    }
    return SCP_EXIT_OK;
}

int scp_cli_keyplan_run(scp_cli *c, scp_cli_keyplan *p)
{
    scp03_keys nk = { 0 };
    uint16_t sw = 0;
    uint8_t old;
    int rc;

    if (p->new_kvn != 0 && (p->new_kvn > 0x7F || !p->make_keys))
        return scp_cli_fail(c, SCP_EXIT_USAGE, "KVN %02X: %s", p->new_kvn,
                            scp_cli_kvn_rule(SCP_KVN_NEW));
    if ((rc = scp_cli_authenticate(c)) != SCP_EXIT_OK)
        return rc; /* nothing changed */
    old = p->old_kvn = c->ch02_open ? c->ch02.kvn : c->ch.kvn;
    if (c->ch_open)
        memcpy(p->kdd, c->ch.kdd, SCP03_KDD_LEN);
    p->authenticated = 1;
    json_object_object_add(c->doc, "old_kvn", json_object_new_int(old));
    if (p->new_kvn != 0 && p->new_kvn == old && (p->delete_old || !p->replace))
        return scp_cli_fail(c, SCP_EXIT_USAGE,
                            p->delete_old ? "new KVN %02X is the set in use: pick another"
                                          : "new KVN %02X is the set in use: add --replace to "
                                            "replace its keys, or pick another",
                            old);
    if (p->new_kvn != 0) {
        rc = change(c, p, old, &nk);
        scp_wipe(&nk, sizeof(nk));
        if (rc != SCP_EXIT_OK)
            return rc;
        json_object_object_add(c->doc, "new_kvn", json_object_new_int(p->new_kvn));
        if (p->out)
            json_object_object_add(c->doc, "keyfile", json_object_new_string(p->out));
    }
    if (p->delete_kvn != 0) { /* keys delete */
        if ((rc = scp_cli_keys_delete(c, (uint8_t)p->delete_kvn, &sw)) != SCP_EXIT_OK)
            return rc;
        if (sw != 0x9000)
            return scp_cli_fail_sw(c, sw, "DELETE KEY");
        json_object_object_add(c->doc, "deleted_kvn", json_object_new_int(p->delete_kvn));
    }
    if (c->ch_open)
        json_object_object_add(c->doc, "level", json_object_new_int(c->ch.level));
    return SCP_EXIT_OK;
}

/* keys rotate --new-kvn N (--generate [--key-len N] | --new-key ..) --out FILE */
static int copy_keys(scp_cli *c, void *ctx, scp03_keys *nk)
{
    (void)c;
    *nk = *(const scp03_keys *)ctx;
    return SCP_EXIT_OK;
}

int scp_cli_keys_rotate(scp_cli *c)
{
    scp03_keys nk = { 0 };
    const char *kvn_text = scp_cli_take(c, "--new-kvn"), *out = scp_cli_take(c, "--out");
    scp_cli_keyplan p = { 0 };
    int kvn, gen, rc;

    if (!kvn_text || !out)
        return scp_cli_fail(c, SCP_EXIT_USAGE,
                            "keys rotate: --new-kvn N and --out KEYFILE are required");
    if ((rc = scp_cli_kvn(c, "--new-kvn", kvn_text, SCP_KVN_NEW, &kvn)) != SCP_EXIT_OK)
        return rc;
    if ((rc = scp_cli_keys_new(c, &nk, &gen)) == SCP_EXIT_OK &&
        (rc = scp_cli_no_more(c, 1)) == SCP_EXIT_OK) {
        p.new_kvn = (uint8_t)kvn;
        p.make_keys = copy_keys;
        p.ctx = &nk;
        p.out = out;
        p.keys_where = out;
        p.prove = 1;
        p.delete_old = 1;
        rc = scp_cli_keyplan_run(c, &p);
    }
    if (rc == SCP_EXIT_OK && !c->o.json)
        printf("Rotated: key set KVN %02X replaced by KVN %02X (AES-%u, checked with a new "
               "session at level %02X); new keys in %s\n",
               p.old_kvn, p.new_kvn, nk.key_len * 8, c->ch.level, out);
    scp_wipe(&nk, sizeof(nk));
    return rc;
}

/* keys put --new-kvn N (--new-key HEX | --new-enc/--new-mac/--new-dek |
 * --generate --out FILE) [--replace] */
int scp_cli_keys_put(scp_cli *c)
{
    scp03_keys nk = { 0 };
    const char *nkt = scp_cli_take(c, "--new-kvn"), *out = scp_cli_take(c, "--out");
    const char *kt = scp_cli_take(c, "--key-type");
    int replace = scp_cli_flag(c, "--replace"), kvn, gen, rc;
    scp_cli_keyplan p = { 0 };

    if (!nkt)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "keys put: --new-kvn N is required");
    if (kt && c->o.scp != 2)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "--key-type: with --scp 02 only");
    if (kt && strcmp(kt, "des") != 0 && strcmp(kt, "aes") != 0)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "--key-type: des or aes");
    c->put_key_type = (kt && strcmp(kt, "aes") == 0) ? SCP02_PUTKEY_AES : SCP02_PUTKEY_DES;
    if ((rc = scp_cli_kvn(c, "--new-kvn", nkt, SCP_KVN_NEW, &kvn)) != SCP_EXIT_OK ||
        (rc = scp_cli_keys_new(c, &nk, &gen)) != SCP_EXIT_OK ||
        (rc = scp_cli_no_more(c, 1)) != SCP_EXIT_OK)
        goto out;
    if (gen && !out) {
        rc = scp_cli_fail(c, SCP_EXIT_USAGE,
                          "--generate needs --out KEYFILE (keys are never printed)");
        goto out;
    }
    p.new_kvn = (uint8_t)kvn;
    p.replace = replace;
    p.make_keys = copy_keys;
    p.ctx = &nk;
    p.out = out;
    p.keys_where = out ? out : "the options given";
    rc = scp_cli_keyplan_run(c, &p);
    if (rc == SCP_EXIT_OK) {
        json_object_object_add(c->doc, "kvn", json_object_new_int(kvn));
        if (!c->o.json)
            printf("Key set KVN %02X %s (%s-%u)%s%s\n", kvn, replace ? "replaced" : "added",
                   c->ch02_open && c->put_key_type == SCP02_PUTKEY_DES ? "3DES" : "AES",
                   nk.key_len * 8, out ? "; keys in " : "", out ? out : "");
    }
out:
    scp_wipe(&nk, sizeof(nk));
    return rc;
}

/* keys delete --kvn N [--auth-kvn N]: --kvn names the set to delete; the
 * channel uses --auth-kvn, the key file's KVN, or the card's choice. */
int scp_cli_keys_delete_cmd(scp_cli *c)
{
    const char *ak = scp_cli_take(c, "--auth-kvn");
    int target = c->o.kvn, akvn = 0, rc;
    scp_cli_keyplan p = { 0 };

    if (!c->o.kvn_text)
        return scp_cli_fail(c, SCP_EXIT_USAGE,
                            "keys delete: --kvn N (the set to delete) is required");
    if ((rc = scp_cli_kvn(c, "--kvn", c->o.kvn_text, SCP_KVN_EXISTING, &target)) != SCP_EXIT_OK)
        return rc;
    if (ak && (rc = scp_cli_kvn(c, "--auth-kvn", ak, SCP_KVN_AUTH, &akvn)) != SCP_EXIT_OK)
        return rc;
    if ((rc = scp_cli_no_more(c, 1)) != SCP_EXIT_OK)
        return rc;
    c->o.kvn = ak ? akvn : -1;
    p.delete_kvn = target;
    rc = scp_cli_keyplan_run(c, &p);
    if (rc == SCP_EXIT_OK && !c->o.json)
        printf("Key set KVN %02X deleted\n", target);
    return rc;
}
