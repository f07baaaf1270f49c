/* scpkit card: a second application, a small data-object store, so that
 * channel scoping is real: its objects are read and written only through
 * a secure channel opened while it is selected (seed 002: "the session is
 * established only within the scope of the currently selected applet").
 *   GET DATA  (CA) P1P2 = tag          -> the object's value
 *   PUT DATA  (DA) P1P2 = tag, data    -> store (empty data deletes);
 *                                         needs C-MAC (level 01 and up)
 * Tags 0001..FFFE; values up to 128 bytes; 8 objects. */
#include <string.h>
#include "card/internal.h"
#include "core/guard.h"
#include "scpkit/crypto.h"

/* F0 "scpkit" 01: a proprietary (F0) AID, ISO 7816-5 */
const uint8_t card_store_aid[] = { 0xF0, 0x73, 0x63, 0x70, 0x6B, 0x69, 0x74, 0x01 };
const size_t card_store_aid_len = sizeof(card_store_aid);

static card_obj *find_obj(card_state *st, uint16_t tag)
{
    for (uint8_t k = 0; k < st->nobj; k++)
        if (st->obj[k].tag == tag)
            return &st->obj[k];
    return NULL;
}

static int get_obj(scp_card *c, uint16_t tag, const scp_apdu *a, card_resp *r)
{
    card_obj *o;
    if (a->lc != 0) {
        card_sw(r, 0x6700);
        return SCP_OK;
    }
    o = find_obj(&c->st, tag);
    if (o == NULL) {
        card_sw(r, 0x6A88);
        return SCP_OK;
    }
    ENSURE(r->cap >= o->len, SCP_E_BUFFER_TOO_SMALL);
    memcpy(r->data, o->data, o->len);
    r->len = o->len;
    r->sw = 0x9000;
    return SCP_OK;
}

static int put_obj(scp_card *c, uint16_t tag, const scp_apdu *a, card_resp *r)
{
    card_state next;
    card_obj *o;
    int rc;

    if (a->lc > CARD_OBJ_MAX_LEN) {
        card_sw(r, 0x6A84);
        return SCP_OK;
    }
    next = c->st;
    o = find_obj(&next, tag);
    if (a->lc == 0) {
        if (o == NULL) {
            card_sw(r, 0x6A88);
            return SCP_OK;
        }
        *o = next.obj[--next.nobj]; /* delete: the last one takes its place */
        memset(&next.obj[next.nobj], 0, sizeof(next.obj[0]));
    } else {
        if (o == NULL) {
            if (next.nobj >= CARD_OBJ_MAX) {
                card_sw(r, 0x6A84);
                return SCP_OK;
            }
            o = &next.obj[next.nobj++];
        }
        o->tag = tag;
        o->len = (uint8_t)a->lc;
        memset(o->data, 0, sizeof(o->data));
        memcpy(o->data, a->data, a->lc);
    }
    rc = card_commit(c, &next);
    card_wipe_state(&next);
    card_sw(r, 0x9000);
    return rc;
}

int card_store_command(scp_card *c, const scp_apdu *a, card_resp *r)
{
    uint16_t tag = (uint16_t)((a->p1 << 8) | a->p2);
    if (a->ins != 0xCA && a->ins != 0xDA) {
        card_sw(r, 0x6D00);
        return SCP_OK;
    }
    if (!card_authenticated(c, CARD_SEL_STORE)) {
        card_sw(r, 0x6982);
        return SCP_OK;
    }
    if (tag == 0x0000 || tag == 0xFFFF) {
        card_sw(r, 0x6A86);
        return SCP_OK;
    }
    if (a->ins == 0xDA && !(c->sess.level & SCP_LEVEL_CMAC)) {
        /* a session at level 00 authenticated the host once, but its
         * commands carry no MAC: anyone on the line could write */
        card_sw(r, 0x6982);
        return SCP_OK;
    }
    return a->ins == 0xCA ? get_obj(c, tag, a, r) : put_obj(c, tag, a, r);
}
