/* scpkit card: the Issuer Security Domain's commands (GPC v2.3 ch. 11):
 * GET DATA, GET STATUS, SET STATUS, and PUT KEY / DELETE KEY (keys.c).
 * Every check answers with a status word; only state-file I/O fails. */
#include <string.h>
#include "card/internal.h"
#include "card/scp11.h"
#include "core/guard.h"
#include "scpkit/tlv.h"

/* GPC Annex H.2 card recognition data: GP 2.2.1 (1.2.840.114283.2.2.2.1:
 * the GP version whose features this card has, SCP03 from Amendment D
 * and the TLV GET STATUS of 2.2, without card content management; also
 * a version GlobalPlatformPro's GPData.oid2version knows), card identity
 * scheme, the SCP (03, or 02 on the scp02 profile) with the card's i.
 * OID arcs: 1.2.840.114283 = 2A 86 48 86 FC 6B. Bare: 73 {...}; GP form:
 * 66 { 73 {...} }. */
static void put_recognition(scp_wr *w, uint8_t scp_id, uint8_t i, int bare)
{
    static const uint8_t rec[] = { 0x2A, 0x86, 0x48, 0x86, 0xFC, 0x6B, 0x01 };
    static const uint8_t ver[] = { 0x06, 0x0A, 0x2A, 0x86, 0x48, 0x86, 0xFC,
                                   0x6B, 0x02, 0x02, 0x02, 0x01 };
    static const uint8_t ident[] = { 0x06, 0x07, 0x2A, 0x86, 0x48, 0x86, 0xFC, 0x6B, 0x03 };
    const uint8_t scp[] = { 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xFC, 0x6B, 0x04, scp_id, i };
    scp_tlv_mark m66 = { 0 }, m73;
    if (!bare)
        m66 = scp_tlv_begin(w, 0x66);
    m73 = scp_tlv_begin(w, 0x73);
    scp_tlv_put(w, 0x06, rec, sizeof(rec));
    scp_tlv_put(w, 0x60, ver, sizeof(ver));
    scp_tlv_put(w, 0x63, ident, sizeof(ident));
    scp_tlv_put(w, 0x64, scp, sizeof(scp));
    scp_tlv_end(w, m73);
    if (!bare)
        scp_tlv_end(w, m66);
}

/* GPC 11.3.3.1 key information template: one C0 per key. SCP03 (ENC,
 * MAC, DEK = key ids 1, 2, 3): key id, KVN, type 88 (AES) or 80 (DES),
 * length. SCP11 keys (GPC Amd F; a YubiKey 5.7.4 answers
 * E0 18 C0 06 10 03 B0 40 F0 00 C0 06 13 01 B1 20 F0 00 C0 06 11 01 B1 20 F0 00,
 * which yubikit reads as {type: length} pairs): key id, KVN, B1 (EC
 * private key) with the field length for an SD key pair, or B0 (EC
 * public key) with twice the field length for an OCE CA key, then F0 (key
 * parameter reference) with the curve (00 P-256, 01 P-384, 03
 * brainpoolP256r1). Bare: the C0 entries one after the other; GP form:
 * inside E0. */
static void put_key_info(scp_wr *w, const scp_card *c, int bare)
{
    const card_state *st = &c->st;
    scp_tlv_mark m = { 0 };
    if (!bare)
        m = scp_tlv_begin(w, 0xE0);
    for (uint8_t k = 0; k < st->nsets; k++)
        for (uint8_t id = 1; id <= 3; id++) {
            uint8_t type = st->profile == CARD_PROFILE_SCP02 ? 0x80 : 0x88; /* DES : AES */
            uint8_t v[4] = { id, st->sets[k].kvn, type, st->sets[k].key_len };
            scp_tlv_put(w, 0xC0, v, sizeof(v));
        }
    for (uint8_t k = 0; c->s11 != NULL && k < c->s11->st.nkeys; k++) {
        const c11_key *ek = &c->s11->st.keys[k];
        uint8_t fl = (uint8_t)scp_ec_field_len(ek->curve);
        uint8_t v[6] = { ek->kid, ek->kvn, ek->priv ? 0xB1 : 0xB0,
                         (uint8_t)(ek->priv ? fl : 2 * fl), 0xF0, scp_ec_curve_to_gp(ek->curve) };
        scp_tlv_put(w, 0xC0, v, sizeof(v));
    }
    if (!bare)
        scp_tlv_end(w, m);
}

int card_get_data_common(scp_card *c, const scp_apdu *a, card_resp *r)
{
    const card_state *st = &c->st;
    uint16_t tag = (uint16_t)((a->p1 << 8) | a->p2);
    uint8_t seq[3] = { (uint8_t)(st->seq >> 16), (uint8_t)(st->seq >> 8), (uint8_t)st->seq };
    /* yubikey profile: CLA 00 gets the bare forms yubikit parses, CLA 80
     * the GP forms (YubiKey 5.7.4 trace, PeculiarVentures/scp) */
    int bare = card_profile_of(st)->get_data_bare_cla00 && !(a->cla & 0x80);
    scp_wr w;

    if (a->ins != 0xCA) {
        card_sw(r, 0x6D00);
        return SCP_OK;
    }
    if (a->lc != 0) {
        card_sw(r, 0x6700);
        return SCP_OK;
    }
    scp_wr_init(&w, r->data, r->cap);
    switch (tag) {
    case 0x0066: put_recognition(&w, card_profile_of(st)->scp, st->i, bare); break;
    case 0x00E0: put_key_info(&w, c, bare); break;
    case 0x9F7F: scp_tlv_put(&w, 0x9F7F, st->cplc, sizeof(st->cplc)); break;
    case 0x0042: scp_tlv_put(&w, 0x42, st->iin, st->iin_len); break;
    case 0x0045: scp_tlv_put(&w, 0x45, st->cin, st->cin_len); break;
    case 0x00C1:
        /* the counter behind the pseudo-random challenge (the last value
         * handed out; SCP02 always has one); an SCP03 card with random
         * challenges keeps none */
        if (card_profile_of(st)->scp == 3 && !(st->i & SCP03_I_PSEUDO_RANDOM)) {
            card_sw(r, 0x6A88);
            return SCP_OK;
        }
        scp_tlv_put(&w, 0xC1, seq, sizeof(seq));
        break;
    case 0x00CF: scp_tlv_put(&w, 0xCF, st->kdd, sizeof(st->kdd)); break;
    default: card_sw(r, 0x6A88); return SCP_OK;
    }
    r->sw = 0x9000;
    return scp_wr_done(&w, &r->len);
}

/* ---- GET STATUS (GPC 11.4) ---- */

static void put_entry(scp_wr *w, int tlv_fmt, const uint8_t *aid, size_t aid_len, uint8_t lc,
                      const uint8_t priv[3])
{
    if (tlv_fmt) {
        scp_tlv_mark m = scp_tlv_begin(w, 0xE3);
        scp_tlv_put(w, 0x4F, aid, aid_len);
        scp_tlv_put(w, 0x9F70, &lc, 1);
        scp_tlv_put(w, 0xC5, priv, 3);
        scp_tlv_end(w, m);
    } else { /* GPC 11.4.3.1 legacy format: AID length, AID, state, privileges */
        scp_wr_u8(w, (uint8_t)aid_len);
        scp_wr_bytes(w, aid, aid_len);
        scp_wr_u8(w, lc);
        scp_wr_u8(w, priv[0]);
    }
}

static int qualifier_matches(const scp_tlv *q, const uint8_t *aid, size_t aid_len)
{
    return q->len <= aid_len && memcmp(q->val, aid, q->len) == 0;
}

static int get_status(scp_card *c, const scp_apdu *a, card_resp *r)
{
    /* ISD privileges (GPC 6.6.1 table 6-1), only what this card does:
     * byte 1: security domain 80, card lock 10 (SET STATUS 7F), card
     * terminate 08 (SET STATUS FF), card reset 04 (the ISD is the default
     * selected application); byte 2: global lock 08 (it locks the store
     * application), global registry 04 (GET STATUS lists it); byte 3:
     * none. No authorized management, delegated management, DAP, CVM or
     * receipts: INSTALL, LOAD and the CVM commands answer 6D00. */
    static const uint8_t isd_priv[3] = { 0x9C, 0x0C, 0x00 }, app_priv[3] = { 0, 0, 0 };
    scp_tlv q;
    scp_wr w;
    int found;

    if (!card_authenticated(c, CARD_SEL_ISD)) {
        card_sw(r, 0x6982);
        return SCP_OK;
    }
    if ((a->p1 != 0x80 && a->p1 != 0x40 && a->p1 != 0x20 && a->p1 != 0x10) ||
        (a->p2 != 0x00 && a->p2 != 0x02)) {
        card_sw(r, 0x6A86); /* "get next" without a 6310 before it included */
        return SCP_OK;
    }
    found = scp_tlv_find(a->data, a->lc, 0x4F, &q);
    if (found != 1) {
        card_sw(r, 0x6A80); /* the search criteria need a 4F */
        return SCP_OK;
    }
    scp_wr_init(&w, r->data, r->cap);
    found = 0;
    if (a->p1 == 0x80 && qualifier_matches(&q, c->st.aid, c->st.aid_len)) {
        put_entry(&w, a->p2 == 0x02, c->st.aid, c->st.aid_len, c->st.lifecycle, isd_priv);
        found = 1;
    }
    if (a->p1 == 0x40 && qualifier_matches(&q, card_store_aid, card_store_aid_len)) {
        put_entry(&w, a->p2 == 0x02, card_store_aid, card_store_aid_len, c->st.app_lifecycle,
                  app_priv);
        found = 1;
    }
    if (!found) {
        card_sw(r, 0x6A88);
        return SCP_OK;
    }
    r->sw = 0x9000;
    return scp_wr_done(&w, &r->len);
}

/* ---- SET STATUS (GPC 11.10; card life cycle 5.1.1) ---- */

static int card_transition_ok(uint8_t from, uint8_t to)
{
    if (to == CARD_LC_TERMINATED)
        return from != CARD_LC_TERMINATED;
    return (from == CARD_LC_OP_READY && to == CARD_LC_INITIALIZED) ||
           (from == CARD_LC_INITIALIZED && to == CARD_LC_SECURED) ||
           (from == CARD_LC_SECURED && to == CARD_LC_LOCKED) ||
           (from == CARD_LC_LOCKED && to == CARD_LC_SECURED);
}

static int set_status(scp_card *c, const scp_apdu *a, card_resp *r)
{
    card_state next;
    int rc;

    if (!card_authenticated(c, CARD_SEL_ISD) || !(card_session_level(c) & SCP_LEVEL_CMAC)) {
        card_sw(r, 0x6982);
        return SCP_OK;
    }
    if (a->p1 != 0x80 && a->p1 != 0x40) {
        card_sw(r, 0x6A86);
        return SCP_OK;
    }
    next = c->st;
    if (a->p1 == 0x80) {
        if (!card_transition_ok(c->st.lifecycle, a->p2)) {
            card_sw(r, 0x6985);
            return SCP_OK;
        }
        next.lifecycle = a->p2;
    } else {
        /* an application: lock (b8 set) or unlock, by AID in the data */
        if (a->lc != card_store_aid_len || memcmp(a->data, card_store_aid, a->lc) != 0) {
            card_sw(r, 0x6A88);
            return SCP_OK;
        }
        uint8_t to = (a->p2 & 0x80) ? CARD_APP_LOCKED : CARD_APP_SELECTABLE;
        if (to == c->st.app_lifecycle) {
            card_sw(r, 0x6985);
            return SCP_OK;
        }
        next.app_lifecycle = to;
    }
    rc = card_commit(c, &next);
    card_wipe_state(&next);
    card_sw(r, 0x9000);
    return rc;
}

int card_isd_command(scp_card *c, const scp_apdu *a, card_resp *r)
{
    int h = card_scp11_isd(c, a, r); /* SCP11 objects and EC keys */
    if (h != 0)
        return h < 0 ? h : SCP_OK;
    if (a->ins == 0xCA || a->ins == 0xCB)
        return card_get_data_common(c, a, r);
    if (a->ins != 0xD8 && a->ins != 0xE4 && a->ins != 0xF2 && a->ins != 0xF0) {
        card_sw(r, 0x6D00);
        return SCP_OK;
    }
    if (!(a->cla & 0x80)) {
        card_sw(r, 0x6E00); /* GP commands are proprietary class */
        return SCP_OK;
    }
    switch (a->ins) {
    case 0xD8: return card_put_key(c, a, r);
    case 0xE4: return card_delete_key(c, a, r);
    case 0xF2: return get_status(c, a, r);
    default: return set_status(c, a, r);
    }
}
