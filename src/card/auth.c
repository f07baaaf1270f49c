/* scpkit card: the SCP03 handshake on the card side (GPC Amd D 7.1).
 * INITIALIZE UPDATE picks a key set and, with a pseudo-random challenge,
 * makes the next sequence counter durable before the challenge leaves the
 * card. Every INITIALIZE UPDATE counts as a failed attempt against its key
 * set, on disk before the card cryptogram leaves; only a verified EXTERNAL
 * AUTHENTICATE clears the count. So a host that stops after a card
 * cryptogram it cannot verify (the usual wrong-key case) still uses up a
 * try, and card cryptograms cannot be collected for free. After retry_limit
 * unproven attempts the set is deleted, and the factory set comes back if
 * it was the last (seed 002). */
#include <string.h>
#include "card/internal.h"
#include "core/guard.h"
#include "scpkit/crypto.h"

static card_keyset *pick_set(card_state *st, uint8_t kvn)
{
    if (kvn == 0) /* GPC 11.11.2.1: KVN 0 = the first available key set */
        return st->nsets > 0 ? &st->sets[0] : NULL;
    return card_find_set(st, kvn);
}

static uint16_t iu_check(const scp_card *c, const scp_apdu *a)
{
    size_t want = (c->st.i & SCP03_I_S16) ? 16 : 8;
    if (!(a->cla & 0x80))
        return 0x6E00; /* a GP command: proprietary class only */
    if (c->selected != CARD_SEL_ISD && c->selected != CARD_SEL_STORE)
        return 0x6A82;
    if (a->p2 != 0x00)
        return 0x6A86;
    if (a->lc != want)
        return 0x6700; /* wrong length, an S16 challenge on an S8 card or the
                        * reverse included: GlobalPlatformPro tells S8 from
                        * S16 cards by this 6700 */
    return 0x9000;
}

/* Delete the set at index k. When none is left the card goes back to
 * its factory state: the factory set returns (its keys are public on a
 * YubiKey) and whatever the applications held is erased with it, in the
 * same state, so in the same durable write: data guarded by the deleted
 * keys never becomes readable with the public ones (issue 11 item 8). */
void card_delete_set(card_state *st, size_t k)
{
    scp_wipe(&st->sets[k], sizeof(st->sets[k]));
    for (size_t j = k; j + 1 < st->nsets; j++)
        st->sets[j] = st->sets[j + 1];
    st->nsets--;
    scp_wipe(&st->sets[st->nsets], sizeof(st->sets[0]));
    if (st->nsets == 0) {
        card_factory_reset_keys(st);
        scp_wipe(st->obj, sizeof(st->obj));
        st->nobj = 0;
    }
}

/* One attempt on key set kvn starts: the attempt is counted and, with a
 * pseudo-random challenge, the next sequence counter taken, in one durable
 * write before anything leaves the card. A set whose tries are used up is
 * deleted instead (*sw 6983, authentication method blocked: what ykman's
 * `sd reset` waits for, yubikit securitydomain.py reset()); an exhausted
 * counter gives 6985. */
int card_begin_attempt(scp_card *c, uint8_t kvn, uint32_t *seq, uint16_t *sw)
{
    card_state next = c->st;
    card_keyset *ks = card_find_set(&next, kvn);
    int rc;

    *sw = 0x9000;
    *seq = 0;
    if (ks->fails >= next.retry_limit) {
        card_delete_set(&next, (size_t)(ks - next.sets));
        *sw = 0x6983;
    } else if ((next.i & SCP03_I_PSEUDO_RANDOM) || next.profile == CARD_PROFILE_SCP02) {
        /* SCP02: every session's keys come from the 16-bit counter */
        if (next.seq >= (next.profile == CARD_PROFILE_SCP02 ? 0xFFFFu : CARD_SEQ_MAX)) {
            *sw = 0x6985; /* counter exhausted: never wrap (Amd D 6.2.2.1) */
            card_wipe_state(&next);
            return SCP_OK;
        }
        *seq = ++next.seq; /* the stored value is the last one used */
    }
    if (*sw == 0x9000)
        ks->fails++;
    rc = card_commit(c, &next);
    card_wipe_state(&next);
    return rc;
}

int card_isd_initialize_update(scp_card *c, const scp_apdu *a, card_resp *r)
{
    scp03_card_params prm;
    scp03_keys k;
    card_keyset *ks;
    uint16_t sw = iu_check(c, a);
    int rc;

    card_end_session(c);
    if (sw != 0x9000) {
        card_sw(r, sw);
        return SCP_OK;
    }
    ks = pick_set(&c->st, a->p1);
    if (ks == NULL) {
        card_sw(r, 0x6A88);
        return SCP_OK;
    }
    memset(&prm, 0, sizeof(prm));
    GUARD(card_begin_attempt(c, ks->kvn, &prm.seq, &sw));
    if (sw != 0x9000) {
        card_sw(r, sw);
        return SCP_OK;
    }
    ks = pick_set(&c->st, a->p1); /* the commit replaced the state */
    prm.i = c->st.i;
    memcpy(prm.kdd, c->st.kdd, sizeof(prm.kdd));
    prm.aid = c->st.aid; /* the SD's AID, whichever application runs */
    prm.aid_len = c->st.aid_len;
    memset(&k, 0, sizeof(k));
    memcpy(k.enc, ks->enc, ks->key_len);
    memcpy(k.mac, ks->mac, ks->key_len);
    k.key_len = ks->key_len;
    k.kvn = ks->kvn;
    rc = scp03_card_initialize_update(&c->sess, &prm, &k, a->data, a->lc, r->data, r->cap,
                                      &r->len);
    scp_wipe(&k, sizeof(k));
    if (rc != SCP_OK) {
        card_end_session(c);
        card_sw(r, 0x6F00);
        return SCP_OK;
    }
    c->sess_app = c->selected;
    c->sess_kvn = ks->kvn;
    memcpy(c->sess_dek, ks->dek, ks->key_len);
    c->sess_dek_len = ks->key_len;
    r->sw = 0x9000;
    return SCP_OK;
}

/* The attempt ends: a success clears the key set's count; a failure was
 * counted at INITIALIZE UPDATE and deletes the set when it was the last try. */
int card_end_attempt(scp_card *c, int ok)
{
    card_state next;
    card_keyset *ks = card_find_set(&c->st, c->sess_kvn);
    int rc;
    if (ks == NULL || (ok && ks->fails == 0) || (!ok && ks->fails < c->st.retry_limit))
        return SCP_OK;
    next = c->st;
    ks = card_find_set(&next, c->sess_kvn);
    if (ok)
        ks->fails = 0;
    else
        card_delete_set(&next, (size_t)(ks - next.sets));
    rc = card_commit(c, &next);
    card_wipe_state(&next);
    return rc;
}

static uint16_t ea_check(const scp_card *c, const scp_apdu *a)
{
    if ((a->cla & 0x84) != 0x84)
        return 0x6982; /* EXTERNAL AUTHENTICATE carries a C-MAC */
    if (a->p2 != 0x00)
        return 0x6A86;
    if (a->lc != 2u * c->sess.chal_len)
        return 0x6700;
    if (!scp03_level_valid(a->p1) || !scp03_level_allowed(c->st.i, a->p1) ||
        (c->st.min_level != 0 && a->p1 != c->st.min_level))
        return 0x6A86; /* a level this card refuses: the try counted at
                        * INITIALIZE UPDATE stays counted */
    return 0x9000;
}

int card_external_authenticate(scp_card *c, const uint8_t *capdu, size_t len,
                               const scp_apdu *a, card_resp *r)
{
    uint16_t sw = ea_check(c, a);
    int rc;

    if (sw != 0x9000) {
        card_end_session(c);
        card_sw(r, sw);
        return SCP_OK;
    }
    rc = scp03_card_external_authenticate(&c->sess, capdu, len);
    if (rc == SCP_OK) {
        card_sw(r, 0x9000);
        rc = card_end_attempt(c, 1);
        if (rc != SCP_OK)
            card_end_session(c);
        return rc;
    }
    card_end_session(c);
    if (rc == SCP_E_MAC || rc == SCP_E_CRYPTOGRAM) {
        /* GPC 11.11.3: 6300, authentication of host cryptogram failed;
         * the try was on disk before the card cryptogram left */
        card_sw(r, 0x6300);
        return card_end_attempt(c, 0);
    }
    card_sw(r, 0x6A80);
    return SCP_OK;
}
