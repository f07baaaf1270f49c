/* scpkit card: SCP11 commands of the virtual card (src/card/scp11.h).
 * PERFORM SECURITY OPERATION (the OCE chain, ISO chaining), MUTUAL and
 * INTERNAL AUTHENTICATE (the session then lives in c->sess like an SCP03
 * one), GET DATA BF21 / FF33 / FF34, GENERATE KEY, STORE DATA, and PUT KEY
 * / DELETE KEY for EC keys, with a YubiKey 5.7's refusals: no key
 * management in an SCP11b session, no DELETE KEY in an SCP11c one. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "card/scp11.h"
#include "core/guard.h"
#include "scpkit/cert.h"
#include "crypto/aes.h"
#include "scpkit/crypto.h"
#include "scpkit/tlv.h"

static int is_ca_kid(uint8_t kid) { return kid == 0x10 || (kid >= 0x20 && kid <= 0x2F); }
static int is_sd_kid(uint8_t kid) { return kid == 0x11 || kid == 0x13 || kid == 0x15; }
static int is_ec_kid(uint8_t kid) { return is_ca_kid(kid) || is_sd_kid(kid); }

static void pso_reset(card_scp11 *s)
{
    scp_wipe(s->pso, s->pso_len);
    s->pso_len = 0;
    s->pso_on = 0;
}

static void chain_reset(card_scp11 *s)
{
    scp_ec_free(&s->signer);
    s->chain_on = 0;
}

/* A failed try on an SD or CA key; blocked keys answer 6983. When every
 * SCP11 key is blocked (yubikit's reset: 65 failed tries on each), the
 * SCP11 part returns to its factory state, as a YubiKey's does. */
static int count_fail(scp_card *c, c11_key *k)
{
    c11_state *st = &c->s11->st;
    int all = 1, rc;
    if (k == NULL || k->fails >= C11_TRIES)
        return SCP_OK;
    k->fails++; /* a lost increment after a crash only gives one more try */
    for (uint8_t i = 0; i < st->nkeys; i++)
        all &= st->keys[i].fails >= C11_TRIES;
    if (all) {
        c11_state *next = malloc(sizeof(*next));
        ENSURE(next != NULL, SCP_E_NOMEM);
        *next = *st;
        rc = c11_factory_reset(next, c->st.profile == CARD_PROFILE_YUBIKEY);
        if (rc == SCP_OK)
            rc = card_scp11_save(c, next);
        if (rc == SCP_OK)
            *st = *next;
        scp_wipe(next, sizeof(*next));
        free(next);
    } else {
        rc = card_scp11_save(c, st);
    }
    return rc == SCP_E_PERM ? SCP_OK : rc;
}

static c11_allow *find_allow(c11_state *st, uint8_t kid, uint8_t kvn)
{
    for (uint8_t i = 0; i < st->nallow; i++)
        if (st->allow[i].kid == kid && st->allow[i].kvn == kvn)
            return &st->allow[i];
    return NULL;
}

static int serial_allowed(const c11_allow *al, const scp_cert *cert)
{
    if (al == NULL)
        return 1;
    for (uint8_t j = 0; j < al->n; j++)
        if (al->len[j] == cert->serial_len && memcmp(al->serial[j], cert->serial, al->len[j]) == 0)
            return 1;
    return 0;
}

/* One whole certificate of the OCE chain (GPC Amd F 7.x PSO): the first
 * against the CA key P1/P2 names, each next against the one before; the
 * last (P2 b8 clear) gives PK.OCE.ECKA. */
static uint16_t pso_cert(scp_card *c, uint8_t kvn, uint8_t kid, int more)
{
    card_scp11 *s = c->s11;
    scp_cert cert;
    scp_trust t = { 0 };
    scp_cert_error err;
    c11_key *ca = c11_find_key(&s->st, kid, kvn);
    uint16_t sw = 0x9000;

    if (ca == NULL || ca->priv || !is_ca_kid(kid))
        return 0x6A88; /* no such CA key */
    if (ca->fails >= C11_TRIES)
        return 0x6983;
    if (!s->chain_on || s->ca_kid != kid || s->ca_kvn != kvn) {
        chain_reset(s);
        if (c11_key_load(ca, &s->signer) != SCP_OK)
            return 0x6F00;
        s->chain_on = 1, s->ca_kid = kid, s->ca_kvn = kvn;
    }
    if (scp_cert_parse(&cert, s->pso, s->pso_len) != SCP_OK) {
        chain_reset(s);
        (void)count_fail(c, ca);
        return 0x6A80;
    }
    if (scp_trust_add_ec(&t, &s->signer) != SCP_OK ||
        scp_cert_verify_chain(&cert, 1, &t, (int64_t)time(NULL),
                              more ? 0 : SCP_KU_KEY_AGREEMENT, &err) != SCP_OK ||
        cert.ec.pkey == NULL ||
        (!more && !serial_allowed(find_allow(&s->st, kid, kvn), &cert))) {
        chain_reset(s);
        sw = 0x6A80;
        if (count_fail(c, ca) != SCP_OK)
            sw = 0x6F00;
        goto out;
    }
    scp_ec_free(&s->signer);
    if (scp_ec_dup(&s->signer, &cert.ec, 0) != SCP_OK) {
        chain_reset(s);
        sw = 0x6F00;
        goto out;
    }
    if (!more) {
        scp_ec_free(&s->pk_oce);
        s->pk_oce = s->signer; /* the leaf's key: PK.OCE.ECKA */
        s->signer.pkey = NULL;
        s->pk_oce_on = 1, s->oce_ca_kid = kid, s->oce_ca_kvn = kvn;
        chain_reset(s);
    }
out:
    scp_trust_free(&t);
    scp_cert_free(&cert);
    return sw;
}

/* PSO: 80|90 2A KVN KID|80 Lc cert-piece; CLA b5 (90) = more pieces. P1
 * is compared without b8 across pieces (OpenSCP sets it on the pieces). */
static uint16_t pso(scp_card *c, const scp_apdu *a)
{
    card_scp11 *s = c->s11;
    int chained = (a->cla & 0x10) != 0;
    uint8_t p1 = a->p1 & 0x7F;

    if ((a->cla & 0xEF) != 0x80)
        return 0x6E00;
    if (s->pso_on && (s->pso_p1 != p1 || s->pso_p2 != a->p2)) {
        pso_reset(s); /* another chain started: the old one is dropped */
        return 0x6A86;
    }
    if (a->lc == 0 || s->pso_len + a->lc > sizeof(s->pso)) {
        pso_reset(s);
        return a->lc == 0 ? 0x6700 : 0x6A84;
    }
    memcpy(s->pso + s->pso_len, a->data, a->lc);
    s->pso_len += a->lc;
    s->pso_on = 1, s->pso_p1 = p1, s->pso_p2 = a->p2;
    if (chained)
        return 0x9000;
    uint16_t sw = pso_cert(c, p1, a->p2 & 0x7F, (a->p2 & 0x80) != 0);
    pso_reset(s);
    return sw;
}

/* MUTUAL AUTHENTICATE (11a/c) / INTERNAL AUTHENTICATE (11b). */
static int authenticate(scp_card *c, const scp_apdu *a, card_resp *r)
{
    card_scp11 *s = c->s11;
    scp11_auth_cmd cmd;
    scp11_session ses = { 0 };
    scp11_card_keys ck = { 0 };
    scp_ec_key sk = { 0 };
    c11_key *k;
    int rc;

    k = c11_find_key(&s->st, a->p2, a->p1);
    if (k == NULL || !k->priv || !is_sd_kid(a->p2)) {
        card_sw(r, 0x6A88);
        return SCP_OK;
    }
    if (k->fails >= C11_TRIES) {
        card_sw(r, 0x6983);
        return SCP_OK;
    }
    if (scp11_auth_parse_apdu(a, &cmd) != SCP_OK) {
        card_sw(r, 0x6A80); /* a failed try (yubikit's reset sends these) */
        return count_fail(c, k);
    }
    /* the key reference says which variant it serves */
    if (scp11_default_kid(cmd.variant) != cmd.kid) {
        card_sw(r, 0x6A80);
        return count_fail(c, k);
    }
    if (cmd.variant != SCP11_B && !s->pk_oce_on) {
        card_sw(r, 0x6982); /* 11a/c: the OCE chain first (PSO) */
        return count_fail(c, k);
    }
    GUARD(c11_key_load(k, &sk));
    ck.sk_sd = &sk;
    ck.pk_oce = cmd.variant == SCP11_B ? NULL : &s->pk_oce;
    /* S8 or S16: the handshake does not say (GPC Amd F); this card answers
     * in the mode its i parameter names (b1, GPC Amd D v1.2), the one its
     * recognition data shows hosts */
    ck.mac_len = (c->st.i & SCP03_I_S16) ? 16 : 8;
    ck.level = 0x33;
    rc = scp11_card_authenticate(&ses, &ck, &cmd, r->data, r->cap, &r->len);
    scp_ec_free(&sk);
    scp_ec_free(&s->pk_oce); /* one handshake per verified chain */
    s->pk_oce_on = 0;
    if (rc != SCP_OK) {
        scp11_end(&ses);
        card_sw(r, rc == SCP_E_FORMAT ? 0x6A80 : 0x6982);
        return count_fail(c, k);
    }
    /* the session moves into c->sess: from here on it is SCP03's secure
     * messaging, with the S-DEK for PUT KEY */
    c->sess = ses.sm;
    memset(&ses.sm, 0, sizeof(ses.sm));
    c->sess_app = c->selected;
    c->sess_kvn = cmd.kvn;
    c->sess_scp = cmd.variant;
    memcpy(c->sess_dek, ses.dek, ses.p.key_len);
    c->sess_dek_len = ses.p.key_len;
    scp11_end(&ses);
    if (k->fails != 0) {
        k->fails = 0;
        GUARD(card_scp11_save(c, &s->st));
    }
    r->sw = 0x9000;
    return SCP_OK;
}

/* One piece of a chained command inside the session (wire CLA with SM and
 * b5): unwrapped, its data kept, 9000 answered wrapped. The last piece
 * goes the normal way and card_scp11_isd puts the pieces together. */
static int chain_piece(scp_card *c, const uint8_t *capdu, size_t len, card_resp *r)
{
    card_scp11 *s = c->s11;
    uint8_t plain[300], wire[64];
    size_t pl = 0, wl = 0;
    scp_apdu p;
    int ok = scp03_card_unwrap(&c->sess, capdu, len, plain, sizeof(plain), &pl) == SCP_OK &&
             scp_apdu_parse(plain, pl, &p) == SCP_OK;
    if (!ok) {
        scp_wipe(plain, sizeof(plain));
        card_end_session(c);
        s->chain_len = 0;
        card_sw(r, 0x6982);
        return 1;
    }
    if ((s->chain_len > 0 && (p.ins != s->chain_ins || p.p1 != s->chain_p1 ||
                              p.p2 != s->chain_p2)) ||
        s->chain_len + p.lc > sizeof(s->chain) || (p.ins != 0xE2 && p.ins != 0xD8)) {
        uint16_t sw = s->chain_len + p.lc > sizeof(s->chain) ? 0x6A84 : 0x6884;
        scp_wipe(s->chain, s->chain_len);
        s->chain_len = 0;
        scp_wipe(plain, sizeof(plain));
        if (scp03_card_wrap(&c->sess, NULL, 0, sw, wire, sizeof(wire), &wl) != SCP_OK)
            card_end_session(c);
        card_sw(r, sw);
        return 1;
    }
    memcpy(s->chain + s->chain_len, p.data, p.lc);
    s->chain_len += p.lc;
    s->chain_ins = p.ins, s->chain_p1 = p.p1, s->chain_p2 = p.p2;
    scp_wipe(plain, sizeof(plain));
    if (scp03_card_wrap(&c->sess, NULL, 0, 0x9000, wire, sizeof(wire), &wl) != SCP_OK ||
        wl < 2 || wl - 2 > r->cap) {
        card_end_session(c);
        card_sw(r, 0x6982);
        return 1;
    }
    memcpy(r->data, wire, wl - 2); /* R-MAC; emit() adds the SW */
    r->len = wl - 2;
    r->sw = 0x9000;
    return 1;
}

int card_scp11_hook(scp_card *c, const scp_apdu *a, const uint8_t *capdu, size_t len,
                    card_resp *r)
{
    card_scp11 *s = c->s11;
    int ours;
    if (s == NULL)
        return 0;
    if (!(a->cla & 0x40) && (a->cla & 0x14) == 0x14 && scp03_is_open(&c->sess) &&
        c->selected == CARD_SEL_ISD)
        return chain_piece(c, capdu, len, r);
    if (s->chain_len > 0 && !((a->cla & 0x04) && a->ins == s->chain_ins)) {
        scp_wipe(s->chain, s->chain_len); /* a chain cut short */
        s->chain_len = 0;
    }
    /* plain (no SM bit) PSO, INTERNAL AUTHENTICATE, and MUTUAL
     * AUTHENTICATE for an SCP11 key (SCP03's EXTERNAL AUTHENTICATE is
     * 84 82 level 00) */
    ours = !(a->cla & 0x04) && (a->cla & 0x80) &&
           (a->ins == SCP11_INS_PSO || a->ins == SCP11_INS_INTERNAL_AUTH ||
            (a->ins == SCP11_INS_MUTUAL_AUTH && is_sd_kid(a->p2)));
    if (!ours) {
        if (s->pso_on)
            pso_reset(s); /* a chained PSO cut short */
        return 0;
    }
    if (c->selected != CARD_SEL_ISD) {
        card_sw(r, 0x6D00);
        return 1;
    }
    card_end_session(c); /* a plain command ends any session */
    if (a->ins == SCP11_INS_PSO) {
        card_sw(r, pso(c, a));
        return 1;
    }
    if (s->pso_on)
        pso_reset(s);
    {
        int rc = authenticate(c, a, r);
        return rc == SCP_OK ? 1 : rc;
    }
}

/* ---- ISD commands ---- */

static int key_admin_ok(const scp_card *c)
{
    return card_authenticated(c, CARD_SEL_ISD) && (c->sess.level & SCP_LEVEL_CMAC);
}

static c11_store *find_store(c11_state *st, uint8_t kid, uint8_t kvn)
{
    for (uint8_t i = 0; i < st->nstores; i++)
        if (st->stores[i].kid == kid && st->stores[i].kvn == kvn)
            return &st->stores[i];
    return NULL;
}

/* A6 { 83 02 KID KVN } inside p: 1 found (kid/kvn set), 0 not, < 0 bad. */
static int key_ref(const uint8_t *p, size_t len, uint8_t *kid, uint8_t *kvn)
{
    scp_tlv a6, k;
    int rc = scp_tlv_find(p, len, 0xA6, &a6);
    if (rc != 1)
        return rc;
    rc = scp_tlv_find(a6.val, a6.len, 0x83, &k);
    if (rc != 1)
        return rc < 0 ? rc : SCP_E_FORMAT;
    if (k.len != 2)
        return SCP_E_FORMAT;
    *kid = k.val[0], *kvn = k.val[1];
    return 1;
}

/* GET DATA BF21 (A6{83 KID KVN}): the certificates, DER, concatenated,
 * leaf last (as a YubiKey 5.7 answers); FF33 / FF34: KLOC / KLCC CA
 * identifiers as 42 SKI 83 KID KVN pairs. */
static int get_data(scp_card *c, const scp_apdu *a, card_resp *r)
{
    c11_state *st = &c->s11->st;
    uint16_t tag = (uint16_t)(a->p1 << 8 | a->p2);
    scp_wr w;
    if (tag == 0xBF21) {
        uint8_t kid = 0, kvn = 0;
        c11_store *s;
        if (key_ref(a->data, a->lc, &kid, &kvn) != 1) {
            card_sw(r, 0x6A80);
            return 1;
        }
        s = find_store(st, kid, kvn);
        if (s == NULL || s->len == 0 || s->len > r->cap) {
            card_sw(r, 0x6A88);
            return 1;
        }
        memcpy(r->data, s->der, s->len);
        r->len = s->len, r->sw = 0x9000;
        return 1;
    }
    scp_wr_init(&w, r->data, r->cap);
    for (uint8_t i = 0; i < st->nissuers; i++) {
        const c11_issuer *is = &st->issuers[i];
        uint8_t ref[2] = { is->kid, is->kvn };
        if (is->klcc != (tag == 0xFF34))
            continue;
        scp_tlv_put(&w, 0x42, is->ski, is->ski_len);
        scp_tlv_put(&w, 0x83, ref, 2);
    }
    r->sw = 0x9000;
    GUARD(scp_wr_done(&w, &r->len));
    if (r->len == 0)
        card_sw(r, 0x6A88);
    return 1;
}

/* Commit a changed copy of the SCP11 state, or leave the old one. */
static int commit(scp_card *c, const c11_state *next)
{
    GUARD(card_scp11_save(c, next));
    if (next != &c->s11->st)
        c->s11->st = *next;
    return SCP_OK;
}

static c11_key *place_key(c11_state *st, uint8_t replace_kvn, uint8_t kid, uint8_t kvn,
                          uint16_t *sw)
{
    c11_key *k;
    if (replace_kvn != 0) {
        k = c11_find_key(st, kid, replace_kvn);
        if (k == NULL) {
            *sw = 0x6A88;
            return NULL;
        }
    } else {
        if (c11_find_key(st, kid, kvn) != NULL) {
            *sw = 0x6A80;
            return NULL;
        }
        if (st->nkeys >= C11_MAX_KEYS) {
            *sw = 0x6A84;
            return NULL;
        }
        k = &st->keys[st->nkeys++];
    }
    memset(k, 0, sizeof(*k));
    k->kid = kid, k->kvn = kvn;
    *sw = 0x9000;
    return k;
}

/* GENERATE KEY: 80 F1 <replace KVN | 00> KID | KVN F0 01 curve -> B0 L 04XY */
static int generate(scp_card *c, const scp_apdu *a, card_resp *r, c11_state *next)
{
    scp_ec_key k = { 0 };
    scp_tlv f0;
    c11_key *ck;
    uint16_t sw;
    int curve, rc;
    if (!is_sd_kid(a->p2) || a->lc < 4 ||
        scp_tlv_find(a->data + 1, a->lc - 1, 0xF0, &f0) != 1 || f0.len != 1) {
        card_sw(r, 0x6A80);
        return 1;
    }
    curve = scp_ec_curve_from_gp(f0.val[0]);
    if (curve == SCP_EC_NONE || a->data[0] == 0 || a->data[0] == 0xFF) {
        card_sw(r, 0x6A80);
        return 1;
    }
    ck = place_key(next, a->p1, a->p2, a->data[0], &sw);
    if (ck == NULL) {
        card_sw(r, sw);
        return 1;
    }
    GUARD(scp_ec_generate(&k, curve));
    rc = c11_key_set(ck, &k);
    scp_ec_free(&k);
    GUARD(rc);
    GUARD(commit(c, next));
    scp_wr w;
    scp_wr_init(&w, r->data, r->cap);
    scp_tlv_put(&w, 0xB0, ck->pt, ck->pt_len);
    r->sw = 0x9000;
    GUARD(scp_wr_done(&w, &r->len));
    return 1;
}

/* PUT KEY for EC keys (yubikit's encodings): KVN | B1 L AES-CBC(DEK, 0, d)
 * | F0 01 curve [| 00], or KVN | B0 L 04XY | F0 01 curve [| 00]. */
static int put_ec_key(scp_card *c, const scp_apdu *a, card_resp *r, c11_state *next)
{
    scp_rd rd;
    scp_tlv key, f0;
    uint8_t kvn, d[SCP_EC_MAX_FIELD];
    scp_ec_key k = { 0 };
    c11_key *ck;
    uint16_t sw;
    int curve, rc;

    scp_rd_init(&rd, a->data, a->lc);
    if (scp_rd_u8(&rd, &kvn) != SCP_OK || scp_tlv_next(&rd, &key) != 1 ||
        (key.tag != 0xB0 && key.tag != 0xB1) || scp_tlv_next(&rd, &f0) != 1 || f0.tag != 0xF0 ||
        f0.len != 1 || kvn == 0 || kvn == 0xFF) {
        card_sw(r, 0x6A80);
        return 1;
    }
    curve = scp_ec_curve_from_gp(f0.val[0]);
    if (curve == SCP_EC_NONE || (key.tag == 0xB1) != is_sd_kid(a->p2 & 0x7F)) {
        card_sw(r, 0x6A80);
        return 1;
    }
    if (key.tag == 0xB1) {
        size_t fl = scp_ec_field_len(curve);
        uint8_t iv[16] = { 0 };
        scp_aes dek;
        if (key.len != fl || c->sess_dek_len == 0) {
            card_sw(r, 0x6A80);
            return 1;
        }
        memset(&dek, 0, sizeof(dek));
        rc = scp_aes_init_dec(&dek, c->sess_dek, c->sess_dek_len);
        if (rc == SCP_OK)
            rc = scp_aes_cbc_decrypt(&dek, iv, key.val, key.len, d);
        scp_aes_clear(&dek);
        if (rc == SCP_OK)
            rc = scp_ec_from_private(&k, curve, d, fl);
        scp_wipe(d, sizeof(d));
    } else {
        rc = scp_ec_from_point(&k, curve, key.val, key.len);
    }
    if (rc != SCP_OK) {
        card_sw(r, 0x6A80);
        return 1;
    }
    ck = place_key(next, a->p1, a->p2 & 0x7F, kvn, &sw);
    if (ck == NULL) {
        scp_ec_free(&k);
        card_sw(r, sw);
        return 1;
    }
    rc = c11_key_set(ck, &k);
    scp_ec_free(&k);
    GUARD(rc);
    GUARD(commit(c, next));
    r->data[0] = kvn;
    r->len = 1, r->sw = 0x9000;
    return 1;
}

/* DELETE KEY: 80 E4 00 P2 D0 01 KID [D2 01 KVN]: every EC key that
 * matches, with its certificates, issuer and allow-list. */
static int delete_ec_key(scp_card *c, const scp_apdu *a, card_resp *r, c11_state *next)
{
    scp_tlv d0, d2;
    uint8_t kid, kvn = 0, n = 0;
    if (scp_tlv_find(a->data, a->lc, 0xD0, &d0) != 1 || d0.len != 1) {
        card_sw(r, 0x6A80);
        return 1;
    }
    kid = d0.val[0];
    if (scp_tlv_find(a->data, a->lc, 0xD2, &d2) == 1 && d2.len == 1)
        kvn = d2.val[0];
    for (uint8_t i = 0; i < next->nkeys;) {
        c11_key *k = &next->keys[i];
        if (k->kid == kid && (kvn == 0 || k->kvn == kvn)) {
            uint8_t kk = k->kvn;
            memmove(k, k + 1, (size_t)(next->nkeys - i - 1) * sizeof(*k));
            next->nkeys--, n++;
            scp_wipe(&next->keys[next->nkeys], sizeof(next->keys[0]));
            for (uint8_t j = 0; j < next->nstores;)
                if (next->stores[j].kid == kid && next->stores[j].kvn == kk) {
                    memmove(&next->stores[j], &next->stores[j + 1],
                            (size_t)(next->nstores - j - 1) * sizeof(next->stores[0]));
                    next->nstores--;
                } else {
                    j++;
                }
        } else {
            i++;
        }
    }
    if (n == 0) {
        card_sw(r, 0x6A88);
        return 1;
    }
    GUARD(commit(c, next));
    card_sw(r, 0x9000);
    return 1;
}

/* STORE DATA (E2, P1 90): A6{83 KID KVN} BF21{certs}; A6{80 klcc, 42 SKI,
 * 83 KID KVN}; A6{83 KID KVN} 70{93 serial...} (an empty 70 removes it). */
static int store_data(scp_card *c, const scp_apdu *a, card_resp *r, c11_state *next)
{
    uint8_t kid = 0, kvn = 0;
    scp_tlv t, a6, x;
    if (key_ref(a->data, a->lc, &kid, &kvn) != 1 ||
        scp_tlv_find(a->data, a->lc, 0xA6, &a6) != 1) {
        card_sw(r, 0x6A80);
        return 1;
    }
    if (scp_tlv_find(a->data, a->lc, 0xBF21, &t) == 1) {
        c11_store *s = find_store(next, kid, kvn);
        size_t off[SCP_CERT_MAX_CHAIN], lens[SCP_CERT_MAX_CHAIN], n;
        if (t.len > C11_STORE_MAX ||
            scp_cert_split(t.val, t.len, off, lens, SCP_CERT_MAX_CHAIN, &n) != SCP_OK) {
            card_sw(r, t.len > C11_STORE_MAX ? 0x6A84 : 0x6A80);
            return 1;
        }
        if (s == NULL) {
            if (next->nstores >= C11_MAX_STORES) {
                card_sw(r, 0x6A84);
                return 1;
            }
            s = &next->stores[next->nstores++];
        }
        s->kid = kid, s->kvn = kvn, s->len = (uint16_t)t.len;
        memcpy(s->der, t.val, t.len);
    } else if (scp_tlv_find(a6.val, a6.len, 0x42, &x) == 1) {
        scp_tlv k80;
        c11_issuer *is = NULL;
        if (x.len == 0 || x.len > SCP_CERT_MAX_ID || scp_tlv_find(a6.val, a6.len, 0x80, &k80) != 1 ||
            k80.len != 1) {
            card_sw(r, 0x6A80);
            return 1;
        }
        for (uint8_t i = 0; i < next->nissuers; i++)
            if (next->issuers[i].kid == kid && next->issuers[i].kvn == kvn)
                is = &next->issuers[i];
        if (is == NULL) {
            if (next->nissuers >= C11_MAX_ISSUERS) {
                card_sw(r, 0x6A84);
                return 1;
            }
            is = &next->issuers[next->nissuers++];
        }
        is->kid = kid, is->kvn = kvn, is->klcc = k80.val[0] ? 1 : 0;
        is->ski_len = (uint8_t)x.len;
        memcpy(is->ski, x.val, x.len);
    } else if (scp_tlv_find(a->data, a->lc, 0x70, &t) == 1) {
        c11_allow *al = find_allow(next, kid, kvn), tmp;
        scp_rd rd;
        memset(&tmp, 0, sizeof(tmp));
        tmp.kid = kid, tmp.kvn = kvn;
        scp_rd_init(&rd, t.val, t.len);
        int rc;
        while ((rc = scp_tlv_next(&rd, &x)) == 1) {
            if (x.tag != 0x93 || x.len == 0 || x.len > SCP_CERT_MAX_ID || tmp.n >= C11_ALLOW_N) {
                card_sw(r, tmp.n >= C11_ALLOW_N ? 0x6A84 : 0x6A80);
                return 1;
            }
            tmp.len[tmp.n] = (uint8_t)x.len;
            memcpy(tmp.serial[tmp.n++], x.val, x.len);
        }
        if (rc < 0) {
            card_sw(r, 0x6A80);
            return 1;
        }
        if (tmp.n == 0 && al != NULL) { /* an empty list removes it */
            *al = next->allow[--next->nallow];
        } else if (tmp.n > 0) {
            if (al == NULL) {
                if (next->nallow >= C11_MAX_ALLOW) {
                    card_sw(r, 0x6A84);
                    return 1;
                }
                al = &next->allow[next->nallow++];
            }
            *al = tmp;
        }
    } else {
        card_sw(r, 0x6A80);
        return 1;
    }
    GUARD(commit(c, next));
    card_sw(r, 0x9000);
    return 1;
}

static int is_ec_put_key(const scp_apdu *a)
{
    return a->lc >= 4 && is_ec_kid(a->p2 & 0x7F) && (a->data[1] == 0xB0 || a->data[1] == 0xB1);
}

static int is_ec_delete(const scp_apdu *a)
{
    scp_tlv d0;
    return scp_tlv_find(a->data, a->lc, 0xD0, &d0) == 1 && d0.len == 1 && is_ec_kid(d0.val[0]);
}

int card_scp11_isd(scp_card *c, const scp_apdu *a0, card_resp *r)
{
    static uint8_t whole[C11_PSO_MAX + 256];
    scp_apdu joined;
    const scp_apdu *a = a0;
    c11_state *next;
    int admin, rc;

    if (c->s11 == NULL)
        return 0;
    if (c->s11->chain_len > 0) {
        /* the last piece of a chain: the command is all the pieces */
        card_scp11 *s = c->s11;
        if (a0->ins != s->chain_ins || a0->p1 != s->chain_p1 || a0->p2 != s->chain_p2 ||
            s->chain_len + a0->lc > sizeof(whole)) {
            scp_wipe(s->chain, s->chain_len);
            s->chain_len = 0;
            card_sw(r, 0x6A80);
            return 1;
        }
        memcpy(whole, s->chain, s->chain_len);
        if (a0->lc > 0)
            memcpy(whole + s->chain_len, a0->data, a0->lc);
        joined = *a0;
        joined.data = whole;
        joined.lc = s->chain_len + a0->lc;
        scp_wipe(s->chain, s->chain_len);
        s->chain_len = 0;
        a = &joined;
    }
    admin = a->ins == 0xD8 || a->ins == 0xE4 || a->ins == 0xF1 || a->ins == 0xE2;
    if (a != a0 && !(a->ins == 0xE2 || is_ec_put_key(a))) {
        scp_wipe(whole, sizeof(whole)); /* chained, and not ours: not taken */
        card_sw(r, 0x6884);
        return 1;
    }
    if (admin && c->sess_scp == SCP11_B && card_authenticated(c, CARD_SEL_ISD)) {
        if (a != a0)
            scp_wipe(whole, sizeof(whole));
        card_sw(r, 0x6982); /* 11b does not authenticate the host */
        return 1;
    }
    if (a->ins == 0xE4 && c->sess_scp == SCP11_C && card_authenticated(c, CARD_SEL_ISD)) {
        card_sw(r, 0x6982); /* as a YubiKey: no DELETE KEY over replayable 11c */
        return 1;
    }
    if (a->ins == 0xCA && (a->p1 << 8 | a->p2) == 0xBF21)
        return get_data(c, a, r);
    if (a->ins == 0xCA && ((a->p1 << 8 | a->p2) == 0xFF33 || (a->p1 << 8 | a->p2) == 0xFF34))
        return get_data(c, a, r);
    if (!(a->ins == 0xF1 || a->ins == 0xE2 || (a->ins == 0xD8 && is_ec_put_key(a)) ||
          (a->ins == 0xE4 && is_ec_delete(a))))
        return 0;
    if (!key_admin_ok(c) || (a->ins == 0xE2 && a->p1 != 0x90 && a->p1 != 0x80)) {
        if (a != a0)
            scp_wipe(whole, sizeof(whole));
        card_sw(r, key_admin_ok(c) ? 0x6A86 : 0x6982);
        return 1;
    }
    next = malloc(sizeof(*next));
    if (next == NULL) {
        scp_wipe(whole, sizeof(whole));
        return SCP_E_NOMEM;
    }
    *next = c->s11->st;
    switch (a->ins) {
    case 0xF1: rc = generate(c, a, r, next); break;
    case 0xE2: rc = store_data(c, a, r, next); break;
    case 0xD8: rc = put_ec_key(c, a, r, next); break;
    default: rc = delete_ec_key(c, a, r, next); break;
    }
    scp_wipe(next, sizeof(*next));
    free(next);
    if (a != a0)
        scp_wipe(whole, sizeof(whole)); /* PUT KEY data among it */
    return rc;
}
