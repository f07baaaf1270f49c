/* scpkit keys rotate: replace the key set in use by a freshly generated
 * one, in an order where every failure leaves a known state:
 *   1. authenticate with the current set (KVN old);
 *   2. write the new keys to --out (0600, never over an existing file);
 *   3. PUT KEY the new set (KVN new) next to the old one;
 *   4. open a new channel with the new keys (proves they work);
 *   5. DELETE the old set if the card still holds it (a YubiKey drops its
 *      factory set FF by itself when the first set is added).
 * On any failure it says exactly which sets the card holds now. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* "the card holds: ..." in words and in the JSON document. */
static void report(scp_cli *c, const char *what, uint8_t old_kvn, int old_state, uint8_t new_kvn,
                   int new_state, const char *out)
{
    static const char *const words[] = { "no", "yes", "unknown" };
    json_object *j = json_object_new_object();
    json_object_object_add(j, "old_kvn", json_object_new_int(old_kvn));
    json_object_object_add(j, "old_present", json_object_new_string(words[old_state]));
    json_object_object_add(j, "new_kvn", json_object_new_int(new_kvn));
    json_object_object_add(j, "new_present", json_object_new_string(words[new_state]));
    json_object_object_add(c->doc, "card_holds", j);
    fprintf(stderr,
            "scpkit: %s. The card now holds: old set KVN %02X: %s; new set KVN %02X: %s "
            "(its keys are in %s).\n",
            what, old_kvn, words[old_state], new_kvn, words[new_state], out);
}

/* What the key information template says, mapped to 0 no / 1 yes / 2 unknown. */
static int state_of(scp_cli *c, uint8_t kvn, int guess)
{
    int h = scp_cli_keys_holds(c, kvn);
    return h < 0 ? guess : h;
}

static int rotate(scp_cli *c, scp03_keys *nk, const char *out)
{
    uint8_t old;
    uint16_t sw = 0;
    char err[256];
    int rc;

    rc = scp_cli_resolve_keys(c);
    if (rc == SCP_EXIT_OK)
        rc = scp_cli_connect(c);
    if (rc == SCP_EXIT_OK)
        rc = scp_cli_open_channel(c);
    if (rc != SCP_EXIT_OK)
        return rc; /* nothing changed */
    old = c->ch.kvn;
    if (old == nk->kvn)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "--new-kvn %02X is the set in use; pick another",
                            old);
    if (scp_cli_keyfile_write(out, nk, err, sizeof(err)) != SCP_OK)
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "%s; the card was not changed", err);
    rc = scp_cli_keys_putkey(c, nk, 0, &sw);
    if (rc != SCP_EXIT_OK || sw != 0x9000) {
        if (rc == SCP_EXIT_OK)
            rc = scp_cli_fail_sw(c, sw, "PUT KEY");
        /* a refused PUT KEY changed nothing; a lost answer may have */
        report(c, "rotation stopped at PUT KEY", old, 1, nk->kvn, sw && sw != 0x9000 ? 0 : 2, out);
        return rc;
    }
    /* step 4: a fresh session with the new keys */
    c->keys = *nk;
    c->chopts.kvn = nk->kvn;
    c->chopts.div = SCP_DIV_NONE;
    c->chopts.derive = NULL;
    if ((rc = scp_cli_reselect(c)) != SCP_EXIT_OK ||
        (rc = scp_cli_open_channel(c)) != SCP_EXIT_OK) {
        report(c, "the new keys did not open a channel; the old set was NOT deleted", old,
               state_of(c, old, 2), nk->kvn, state_of(c, nk->kvn, 1), out);
        return rc;
    }
    /* step 5 */
    if (scp_cli_keys_holds(c, old) != 0) {
        rc = scp_cli_keys_delete(c, old, &sw);
        if (rc == SCP_EXIT_OK && sw != 0x9000)
            rc = scp_cli_fail_sw(c, sw, "DELETE KEY (old set)");
        if (rc != SCP_EXIT_OK) {
            report(c, "the old set could not be deleted", old, state_of(c, old, 2), nk->kvn, 1,
                   out);
            return rc;
        }
    }
    json_object_object_add(c->doc, "old_kvn", json_object_new_int(old));
    json_object_object_add(c->doc, "new_kvn", json_object_new_int(nk->kvn));
    json_object_object_add(c->doc, "keyfile", json_object_new_string(out));
    json_object_object_add(c->doc, "level", json_object_new_int(c->ch.level));
    scp_cli_keys_kcvs(c, nk);
    if (!c->o.json)
        printf("Rotated: key set KVN %02X replaced by KVN %02X (AES-%u, checked with a new "
               "session at level %02X); new keys in %s\n",
               old, nk->kvn, nk->key_len * 8, c->ch.level, out);
    return SCP_EXIT_OK;
}

int scp_cli_keys_rotate(scp_cli *c)
{
    scp03_keys nk = { 0 };
    const char *kvn_text = scp_cli_take(c, "--new-kvn"), *out = scp_cli_take(c, "--out");
    int kvn, gen, rc;

    if (!kvn_text || !out)
        return scp_cli_fail(c, SCP_EXIT_USAGE,
                            "keys rotate: --new-kvn N and --out KEYFILE are required");
    if ((rc = scp_cli_number(c, "--new-kvn", kvn_text, 0xFE, &kvn)) != SCP_EXIT_OK)
        return rc;
    if (kvn == 0)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "--new-kvn: 1..254 (FF is the factory set)");
    if ((rc = scp_cli_keys_new(c, &nk, &gen)) == SCP_EXIT_OK &&
        (rc = scp_cli_no_more(c, 1)) == SCP_EXIT_OK) {
        nk.kvn = (uint8_t)kvn;
        rc = rotate(c, &nk, out);
    }
    scp_wipe(&nk, sizeof(nk));
    return rc;
}
