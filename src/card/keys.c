/* scpkit card: PUT KEY (GPC 11.8, Amd D 7.2) and DELETE KEY (GPC 11.2)
 * for whole SCP03 key sets: at most keyset_limit sets, KVN FF reserved for
 * the factory set, deleting the last set restores the factory set (and
 * needs P2 b1 = 1 to be done on purpose, as yubikit's delete_last sends).
 * On the yubikey profile (seed 002) and the scp02 profile, the first new
 * set replaces the factory set KVN FF; a gp23 card keeps its initial set
 * until it is replaced or deleted, and no profile drops an initial set
 * made with another KVN (profile.c). Each change is one atomic state
 * write: the old set or the new one, never a mix. */
#include <string.h>
#include "card/internal.h"
#include "core/guard.h"
#include "scpkit/crypto.h"
#include "scpkit/gp.h"

static int key_admin_ok(const scp_card *c)
{
    /* key management over an authenticated, MACed ISD session */
    return card_authenticated(c, CARD_SEL_ISD) && (card_session_level(c) & SCP_LEVEL_CMAC);
}

/* Where the new set goes: an index into next->sets, or a status word. */
static uint16_t place_set(card_state *next, uint8_t p1, uint8_t new_kvn, size_t *idx)
{
    card_keyset *old;
    if (p1 == 0) {
        if (card_find_set(next, new_kvn) != NULL)
            return 0x6A80; /* a new set with a KVN already in use */
        if (card_profile_of(next)->first_put_replaces_factory && next->nsets == 1 &&
            next->sets[0].factory && next->sets[0].kvn == 0xFF) {
            *idx = 0; /* the first new set replaces the factory set */
            return 0x9000;
        }
        if (next->nsets >= next->keyset_limit)
            return 0x6A84; /* not enough memory space */
        *idx = next->nsets++;
        return 0x9000;
    }
    old = card_find_set(next, p1);
    if (old == NULL)
        return 0x6A88;
    if (new_kvn != p1 && card_find_set(next, new_kvn) != NULL)
        return 0x6A80;
    *idx = (size_t)(old - next->sets);
    return 0x9000;
}

/* Response (as GPC 11.8.3.1): KVN then the KCV of each key. */
static int put_key_response(const scp03_keys *k, uint8_t key_type, card_resp *r)
{
    uint8_t kcv[SCP_KCV_LEN];
    ENSURE(r->cap >= 1 + 3 * SCP_KCV_LEN, SCP_E_BUFFER_TOO_SMALL);
    r->data[0] = k->kvn;
    if (key_type == SCP02_PUTKEY_DES) { /* SCP02 DES keys: 3DES KCVs */
        GUARD(scp02_kcv(key_type, k->enc, r->data + 1));
        GUARD(scp02_kcv(key_type, k->mac, r->data + 4));
        GUARD(scp02_kcv(key_type, k->dek, r->data + 7));
        r->len = 10;
        r->sw = 0x9000;
        return SCP_OK;
    }
    GUARD(scp_kcv_aes(k->enc, k->key_len, kcv));
    memcpy(r->data + 1, kcv, SCP_KCV_LEN);
    GUARD(scp_kcv_aes(k->mac, k->key_len, kcv));
    memcpy(r->data + 4, kcv, SCP_KCV_LEN);
    GUARD(scp_kcv_aes(k->dek, k->key_len, kcv));
    memcpy(r->data + 7, kcv, SCP_KCV_LEN);
    r->len = 10;
    r->sw = 0x9000;
    return SCP_OK;
}

static uint16_t parse_new_keys(const scp_card *c, const scp_apdu *a, scp03_keys *k,
                               uint8_t *key_type)
{
    *key_type = SCP_GP_KEY_TYPE_AES;
    if (scp02_is_open(&c->sess02)) /* SCP02: under the session DEK (scp02_card.c) */
        return card_scp02_parse_keys(c, a, k, key_type);
    if (a->lc == 0)
        return 0x6700;
    if (scp_gp_putkey_parse(c->sess_dek, c->sess_dek_len, a->data, a->lc, k) != SCP_OK)
        return 0x6A80; /* bad layout, unsupported key type or KCV mismatch */
    if (card_profile_of(&c->st)->aes128_only && k->key_len != 16)
        return 0x6A80; /* a YubiKey holds AES-128 key sets only */
    if (k->kvn == 0 || k->kvn == 0xFF)
        return 0x6A80; /* FF is the factory set's */
    return 0x9000;
}

int card_put_key(scp_card *c, const scp_apdu *a, card_resp *r)
{
    scp03_keys k;
    card_state next;
    card_keyset *ks;
    size_t idx = 0;
    uint16_t sw;
    uint8_t key_type = 0;
    int rc = SCP_OK;

    if (!key_admin_ok(c)) {
        card_sw(r, 0x6982);
        return SCP_OK;
    }
    if (a->p2 != 0x81) {
        /* whole sets only: key id 1, b8 "several keys". P1 is the whole KVN
         * (1..FE, FF for the factory set; seed 002), not GP 2.1's 7 bits */
        card_sw(r, 0x6A86);
        return SCP_OK;
    }
    memset(&k, 0, sizeof(k));
    next = c->st;
    sw = parse_new_keys(c, a, &k, &key_type);
    if (sw == 0x9000)
        sw = place_set(&next, a->p1, k.kvn, &idx);
    if (sw == 0x9000) {
        ks = &next.sets[idx];
        scp_wipe(ks, sizeof(*ks));
        ks->kvn = k.kvn;
        ks->key_len = k.key_len;
        memcpy(ks->enc, k.enc, k.key_len);
        memcpy(ks->mac, k.mac, k.key_len);
        memcpy(ks->dek, k.dek, k.key_len);
        if (card_is_scp02(c) && key_type == SCP_GP_KEY_TYPE_AES) {
            card_scp02_migrate(&next, idx); /* the card moves to SCP03 */
            r->end_session = 1;
        }
        rc = card_commit(c, &next);
        if (rc == SCP_OK)
            rc = put_key_response(&k, key_type, r);
    } else {
        card_sw(r, sw);
    }
    scp_wipe(&k, sizeof(k));
    card_wipe_state(&next);
    return rc;
}

int card_delete_key(scp_card *c, const scp_apdu *a, card_resp *r)
{
    uint8_t kvn = 0, kid = 0;
    card_state next;
    card_keyset *ks;
    int rc;

    if (!key_admin_ok(c)) {
        card_sw(r, 0x6982);
        return SCP_OK;
    }
    /* GPC 11.2.2.1: P1 00; P2 b8 = 1 "more DELETE commands follow", 0 the
     * last (or only) one; b7..b2 0; b1 = 1 "and related objects", which
     * for keys (as on a YubiKey) allows the last set to go */
    if (a->p1 != 0x00 || (a->p2 & 0x7E) != 0) {
        card_sw(r, 0x6A86);
        return SCP_OK;
    }
    /* GPC 11.2.2.3: D0 key id and/or D2 KVN. A KVN alone names a whole
     * set, which is what this card stores; a key id (one key of a set, or
     * that key in every set) cannot be taken out of an SCP03 set, so it is
     * refused (yubikit deletes SCP03 keys by KVN alone for that reason) */
    if (scp_gp_deletekey_parse(a->data, a->lc, &kvn, &kid) != SCP_OK || kvn == 0 || kid != 0) {
        card_sw(r, 0x6A80);
        return SCP_OK;
    }
    ks = card_find_set(&c->st, kvn);
    if (ks == NULL) {
        card_sw(r, 0x6A88);
        return SCP_OK;
    }
    if (c->st.nsets == 1 && !(a->p2 & 0x01)) {
        card_sw(r, 0x6985); /* the last set goes only with P2 b1 (seed 002;
                             * ykman: "use the reset command instead") */
        return SCP_OK;
    }
    next = c->st;
    card_delete_set(&next, (size_t)(ks - c->st.sets));
    rc = card_commit(c, &next);
    card_wipe_state(&next);
    card_sw(r, 0x9000);
    return rc;
}
