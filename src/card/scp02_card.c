/* scpkit card: the SCP02 profile (`scpkit card init --profile scp02`): a
 * JavaCard 2.2 / GP 2.1.1 style ISD speaking SCP02 with i = 55 (or 15),
 * 3DES key sets (factory KVN FF = 40..4F), a 16-bit sequence counter.
 * The handshake and the secure-messaging layer for SCP02 sessions; the
 * commands themselves are the ISD's (isd.c, keys.c). PUT KEY with AES
 * keys (type 88) moves the card to SCP03 (the gp23 profile): the new AES
 * set becomes its only set, in one atomic state write. */
#include <string.h>
#include "card/internal.h"
#include "core/guard.h"
#include "scpkit/crypto.h"

int card_is_scp02(const scp_card *c) { return c->st.profile == CARD_PROFILE_SCP02; }

uint8_t card_session_level(const scp_card *c)
{
    if (scp02_is_open(&c->sess02))
        return c->sess02.level;
    return c->sess.level;
}

int card_session_open(const scp_card *c)
{
    return scp03_is_open(&c->sess) || scp02_is_open(&c->sess02);
}

static card_keyset *pick(card_state *st, uint8_t kvn)
{
    if (kvn == 0) /* GPC 11.11.2.1: the first available key set */
        return st->nsets > 0 ? &st->sets[0] : NULL;
    return card_find_set(st, kvn);
}

int card_scp02_initialize_update(scp_card *c, const scp_apdu *a, card_resp *r)
{
    scp02_card_params prm;
    scp02_keys k;
    card_keyset *ks;
    uint32_t seq = 0;
    uint16_t sw = 0x9000;
    int rc;

    card_end_session(c);
    if (!(a->cla & 0x80))
        sw = 0x6E00;
    else if (c->selected != CARD_SEL_ISD && c->selected != CARD_SEL_STORE)
        sw = 0x6A82;
    else if (a->p2 != 0x00)
        sw = 0x6A86;
    else if (a->lc != 8)
        sw = 0x6700; /* SCP02: an 8-byte host challenge */
    if (sw != 0x9000) {
        card_sw(r, sw);
        return SCP_OK;
    }
    ks = pick(&c->st, a->p1);
    if (ks == NULL || ks->key_len != 16) {
        card_sw(r, 0x6A88);
        return SCP_OK;
    }
    /* the try and the next sequence counter, durable before the card
     * cryptogram leaves (auth.c) */
    GUARD(card_begin_attempt(c, ks->kvn, &seq, &sw));
    if (sw != 0x9000) {
        card_sw(r, sw);
        return SCP_OK;
    }
    ks = pick(&c->st, a->p1); /* the commit replaced the state */
    memset(&prm, 0, sizeof(prm));
    prm.i = c->st.i;
    prm.seq = (uint16_t)seq;
    memcpy(prm.kdd, c->st.kdd, sizeof(prm.kdd));
    prm.aid = c->st.aid;
    prm.aid_len = c->st.aid_len;
    memcpy(k.enc, ks->enc, 16);
    memcpy(k.mac, ks->mac, 16);
    memcpy(k.dek, ks->dek, 16);
    k.kvn = ks->kvn;
    rc = scp02_card_initialize_update(&c->sess02, &prm, &k, a->data, a->lc, r->data, r->cap,
                                      &r->len);
    scp_wipe(&k, sizeof(k));
    if (rc != SCP_OK) {
        card_end_session(c);
        card_sw(r, 0x6F00);
        return SCP_OK;
    }
    c->sess_app = c->selected;
    c->sess_kvn = ks->kvn;
    r->sw = 0x9000;
    return SCP_OK;
}

int card_scp02_external_authenticate(scp_card *c, const uint8_t *capdu, size_t len,
                                     const scp_apdu *a, card_resp *r)
{
    int rc;
    if ((a->cla & 0x84) != 0x84 || a->p2 != 0x00 || a->lc != 16 || !scp02_level_valid(a->p1)) {
        uint16_t sw = (a->cla & 0x84) != 0x84 ? 0x6982 : a->lc != 16 ? 0x6700 : 0x6A86;
        card_end_session(c);
        card_sw(r, sw);
        return SCP_OK;
    }
    rc = scp02_card_external_authenticate(&c->sess02, capdu, len);
    if (rc == SCP_OK) {
        card_sw(r, 0x9000);
        rc = card_end_attempt(c, 1);
        if (rc != SCP_OK)
            card_end_session(c);
        return rc;
    }
    card_end_session(c);
    if (rc == SCP_E_MAC || rc == SCP_E_CRYPTOGRAM) {
        card_sw(r, 0x6300); /* GPC 11.11.3 */
        return card_end_attempt(c, 0);
    }
    card_sw(r, 0x6A80);
    return SCP_OK;
}

int card_sm_unwrap(scp_card *c, const uint8_t *capdu, size_t len, uint8_t *out, size_t out_size,
                   size_t *out_len)
{
    if (scp02_is_open(&c->sess02))
        return scp02_card_unwrap(&c->sess02, capdu, len, out, out_size, out_len);
    return scp03_card_unwrap(&c->sess, capdu, len, out, out_size, out_len);
}

int card_sm_wrap(scp_card *c, const uint8_t *data, size_t len, uint16_t sw, uint8_t *out,
                 size_t out_size, size_t *out_len)
{
    if (scp02_is_open(&c->sess02))
        return scp02_card_wrap(&c->sess02, data, len, sw, out, out_size, out_len);
    return scp03_card_wrap(&c->sess, data, len, sw, out, out_size, out_len);
}

/* PUT KEY over SCP02 (GPC 2.2.1 E.4.7): keys under the session DEK. DES
 * sets (80) stay SCP02 sets; AES-128 sets (88) move the card to SCP03. */
uint16_t card_scp02_parse_keys(const scp_card *c, const scp_apdu *a, scp03_keys *k,
                               uint8_t *key_type)
{
    uint8_t kvn = 0;
    if (a->lc == 0)
        return 0x6700;
    memset(k, 0, sizeof(*k));
    if (scp02_putkey_parse(&c->sess02, a->data, a->lc, &kvn, key_type, k->enc, k->mac, k->dek) !=
        SCP_OK)
        return 0x6A80; /* bad layout, key type or KCV */
    k->kvn = kvn;
    k->key_len = 16;
    if (kvn == 0 || kvn == 0xFF)
        return 0x6A80;
    return 0x9000;
}

/* After a PUT KEY of AES keys: the card speaks SCP03 from now on (GP 2.3
 * i = 70: pseudo-random challenge, R-MAC, R-ENC) with the new set alone. */
void card_scp02_migrate(card_state *next, size_t idx)
{
    card_keyset keep = next->sets[idx];
    scp_wipe(next->sets, sizeof(next->sets));
    next->sets[0] = keep;
    next->nsets = 1;
    next->profile = CARD_PROFILE_GP23;
    next->i = SCP03_I_PSEUDO_RANDOM | SCP03_I_RMAC | SCP03_I_RENC;
    next->min_level = 0;
    scp_wipe(&keep, sizeof(keep));
}
