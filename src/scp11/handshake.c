/* SCP11 key agreement, both roles (GPC v2.3 Amendment F 6.5): the
 * MUTUAL / INTERNAL AUTHENTICATE exchange, ECDH, the X9.63 KDF, the
 * receipt, and the hand-over of the session keys to SCP03's secure
 * messaging. */
#include <string.h>

#include "scpkit/apdu.h"
#include "crypto/aes.h"
#include "scpkit/buf.h"
#include "scpkit/crypto.h"
#include "scpkit/scp11.h"
#include "scpkit/tlv.h"
#include "core/guard.h"

#define ROLE_HOST 0
#define ROLE_CARD 1

int scp11_variant_from_name(const char *n)
{
    if (n == NULL)
        return 0;
    if (strcmp(n, "a") == 0 || strcmp(n, "11a") == 0)
        return SCP11_A;
    if (strcmp(n, "b") == 0 || strcmp(n, "11b") == 0)
        return SCP11_B;
    if (strcmp(n, "c") == 0 || strcmp(n, "11c") == 0)
        return SCP11_C;
    return 0;
}

const char *scp11_variant_name(int v)
{
    return v == SCP11_A ? "11a" : v == SCP11_B ? "11b" : v == SCP11_C ? "11c" : "?";
}

uint8_t scp11_i(int v) { return v == SCP11_A ? 0x01 : v == SCP11_C ? 0x03 : 0x00; }

uint8_t scp11_default_kid(int v)
{
    return v == SCP11_A ? SCP11_KID_A : v == SCP11_C ? SCP11_KID_C : SCP11_KID_B;
}

static int params_ok(const scp11_params *p)
{
    return p->variant >= SCP11_A && p->variant <= SCP11_C &&
           (p->key_len == 16 || p->key_len == 24 || p->key_len == 32) &&
           (p->mac_len == 8 || p->mac_len == 16) &&
           (p->level == 0 || scp03_level_valid(p->level));
}

void scp11_end(scp11_session *s)
{
    if (s == NULL)
        return;
    scp03_end(&s->sm);
    scp_ec_free(&s->esk);
    scp_ec_free(&s->pk_sd);
    scp_ec_free(&s->sk_oce);
    scp_wipe(s, sizeof(*s));
}

static int fail(scp11_session *s, int rc)
{
    uint8_t role = s->role;
    scp11_end(s);
    s->role = role;
    s->state = SCP11_DEAD;
    s->dead_rc = rc;
    return rc;
}

int scp11_kdf(const uint8_t *shsee, const uint8_t *shses, size_t f, size_t key_len,
              uint8_t keys[5][SCP_AES_MAX_KEY])
{
    uint8_t z[2 * SCP_EC_MAX_FIELD], out[5 * SCP_AES_MAX_KEY];
    const uint8_t info[3] = { SCP11_KEY_USAGE, SCP11_KEY_TYPE_AES, (uint8_t)key_len };
    int rc;

    ENSURE(shsee != NULL && shses != NULL && keys != NULL, SCP_E_ARG);
    ENSURE(f > 0 && f <= SCP_EC_MAX_FIELD, SCP_E_ARG);
    ENSURE(key_len == 16 || key_len == 24 || key_len == 32, SCP_E_ARG);
    memcpy(z, shsee, f);
    memcpy(z + f, shses, f);
    rc = scp_x963_kdf_sha256(z, 2 * f, info, sizeof(info), out, 5 * key_len);
    /* receipt key, S-ENC, S-MAC, S-RMAC, S-DEK, in that order */
    for (size_t i = 0; rc == SCP_OK && i < 5; i++)
        memcpy(keys[i], out + i * key_len, key_len);
    scp_wipe(z, sizeof(z));
    scp_wipe(out, sizeof(out));
    return rc;
}

/* Keys from the two shared secrets; receipt = CMAC(receipt key, cmd data
 * | the card's 5F49 TLV); opens s->sm in s->role. */
static int derive_open(scp11_session *s, const uint8_t *shsee, const uint8_t *shses, size_t f,
                       const uint8_t *cmd, size_t cmd_len, const uint8_t *sd_tlv,
                       size_t sd_tlv_len, uint8_t receipt[16])
{
    uint8_t keys[5][SCP_AES_MAX_KEY];
    scp_aes rk;
    scp_cmac c;
    scp03_open_params op = { 0 };
    int rc;

    memset(&rk, 0, sizeof(rk));
    GUARD_GOTO(scp11_kdf(shsee, shses, f, s->p.key_len, keys), out);
    GUARD_GOTO(scp_aes_init(&rk, keys[0], s->p.key_len), out);
    scp_cmac_init(&c, &rk);
    GUARD_GOTO(scp_cmac_update(&c, cmd, cmd_len), out);
    GUARD_GOTO(scp_cmac_update(&c, sd_tlv, sd_tlv_len), out);
    GUARD_GOTO(scp_cmac_final(&c, receipt), out);
    op.role = s->role;
    op.level = s->p.level ? s->p.level : 0x33;
    op.key_len = s->p.key_len;
    op.mac_len = s->p.mac_len;
    op.kvn = s->p.kvn;
    op.enc = keys[1], op.mac = keys[2], op.rmac = keys[3];
    op.mac_chain = receipt; /* GPC Amd F 6.5.2.3: the MAC chaining value starts at the receipt */
    GUARD_GOTO(scp03_session_from_keys(&s->sm, &op), out);
    memcpy(s->dek, keys[4], s->p.key_len);
out:
    scp_aes_clear(&rk);
    scp_wipe(keys, sizeof(keys));
    scp_wipe(&c, sizeof(c));
    return rc;
}

/* ---------------- host ---------------- */

int scp11_host_begin(scp11_session *s, const scp11_params *p, const scp_ec_key *pk_sd,
                     const scp_ec_key *sk_oce, const scp_ec_key *esk)
{
    int rc;
    ENSURE(s != NULL && p != NULL && pk_sd != NULL && pk_sd->pkey != NULL, SCP_E_ARG);
    ENSURE(params_ok(p), SCP_E_ARG);
    ENSURE(p->variant == SCP11_B || (sk_oce != NULL && sk_oce->priv), SCP_E_ARG);
    /* one curve for every key of the session */
    ENSURE(p->variant == SCP11_B || sk_oce->curve == pk_sd->curve, SCP_E_ARG);
    ENSURE(esk == NULL || (esk->priv && esk->curve == pk_sd->curve), SCP_E_ARG);
    scp11_end(s);
    s->role = ROLE_HOST;
    s->p = *p;
    s->curve = pk_sd->curve;
    GUARD_GOTO(scp_ec_dup(&s->pk_sd, pk_sd, 0), bad);
    if (p->variant != SCP11_B)
        GUARD_GOTO(scp_ec_dup(&s->sk_oce, sk_oce, 1), bad);
    if (esk != NULL)
        GUARD_GOTO(scp_ec_dup(&s->esk, esk, 1), bad);
    else
        GUARD_GOTO(scp_ec_generate(&s->esk, s->curve), bad);
    return SCP_OK;
bad:
    return fail(s, rc);
}

int scp11_host_begin_oce(scp11_session *s, const scp11_params *p, const scp_ec_key *pk_sd,
                         const scp11_oce_key *oce, const scp_ec_key *esk)
{
    int rc;
    ENSURE(s != NULL && p != NULL && oce != NULL && oce->ecdh != NULL && pk_sd != NULL &&
               pk_sd->pkey != NULL,
           SCP_E_ARG);
    ENSURE(params_ok(p) && p->variant != SCP11_B, SCP_E_ARG);
    ENSURE(oce->curve == pk_sd->curve, SCP_E_ARG); /* one curve for every key */
    ENSURE(esk == NULL || (esk->priv && esk->curve == pk_sd->curve), SCP_E_ARG);
    scp11_end(s);
    s->role = ROLE_HOST;
    s->p = *p;
    s->curve = pk_sd->curve;
    s->oce_ext = *oce;
    s->oce_ext_on = 1;
    GUARD_GOTO(scp_ec_dup(&s->pk_sd, pk_sd, 0), bad);
    if (esk != NULL)
        GUARD_GOTO(scp_ec_dup(&s->esk, esk, 1), bad);
    else
        GUARD_GOTO(scp_ec_generate(&s->esk, s->curve), bad);
    return SCP_OK;
bad:
    return fail(s, rc);
}

/* ShSes for 11a/c: SK.OCE held here, or behind the caller's callback. */
static int oce_ecdh(scp11_session *s, uint8_t *out, size_t out_size, size_t f)
{
    uint8_t pt[SCP_EC_MAX_POINT];
    size_t n, m = 0;
    if (!s->oce_ext_on)
        return scp_ecdh(&s->sk_oce, &s->pk_sd, out, out_size, &n);
    GUARD(scp_ec_point(&s->pk_sd, pt, sizeof(pt), &n));
    GUARD(s->oce_ext.ecdh(s->oce_ext.ctx, pt, n, out, out_size, &m));
    ENSURE(m == f, SCP_E_CRYPTO);
    return SCP_OK;
}

/* A6 0D 90 02 11 i 95 01 3C 80 01 88 81 01 len, then 5F49 L 04 X Y */
static int put_cmd_data(const scp11_params *p, const uint8_t *pt, size_t pt_len, scp_wr *w)
{
    const uint8_t a6[15] = { 0xA6, 0x0D, 0x90, 0x02, 0x11, scp11_i(p->variant), 0x95, 0x01,
                             SCP11_KEY_USAGE, 0x80, 0x01, SCP11_KEY_TYPE_AES, 0x81, 0x01,
                             p->key_len };
    scp_wr_bytes(w, a6, sizeof(a6));
    scp_tlv_put(w, 0x5F49, pt, pt_len);
    return SCP_OK;
}

int scp11_host_auth_command(scp11_session *s, uint8_t cla, uint8_t *out, size_t out_size,
                            size_t *out_len)
{
    uint8_t pt[SCP_EC_MAX_POINT];
    size_t n;
    scp_wr w;
    scp_apdu a = { 0 };

    ENSURE(s != NULL && s->role == ROLE_HOST && out != NULL && out_len != NULL, SCP_E_ARG);
    ENSURE(s->state != SCP11_DEAD, SCP_E_DEAD);
    ENSURE(s->state == SCP11_IDLE && s->esk.pkey != NULL, SCP_E_STATE);
    GUARD(scp_ec_point(&s->esk, pt, sizeof(pt), &n));
    scp_wr_init(&w, s->cmd_data, sizeof(s->cmd_data));
    GUARD(put_cmd_data(&s->p, pt, n, &w));
    GUARD(scp_wr_done(&w, &s->cmd_len));
    a.cla = (uint8_t)((cla & 0x40) ? (0xC0 | (cla & 0x0F)) : (0x80 | (cla & 0x03)));
    a.ins = s->p.variant == SCP11_B ? SCP11_INS_INTERNAL_AUTH : SCP11_INS_MUTUAL_AUTH;
    a.p1 = s->p.kvn;
    a.p2 = s->p.kid;
    a.data = s->cmd_data;
    a.lc = s->cmd_len;
    a.has_le = 1;
    a.le = 256;
    GUARD(scp_apdu_encode(&a, out, out_size, out_len));
    s->state = SCP11_AUTH_SENT;
    return SCP_OK;
}

/* 5F49 L 04 X Y | 86 10 receipt: the point's TLV and the receipt. */
static int parse_answer(const uint8_t *p, size_t len, size_t f, const uint8_t **tlv,
                        size_t *tlv_len, const uint8_t **pt, const uint8_t **rcpt)
{
    scp_rd r;
    scp_tlv t;
    int rc;
    scp_rd_init(&r, p, len);
    rc = scp_tlv_next(&r, &t);
    ENSURE(rc == 1, rc < 0 ? rc : SCP_E_TRUNCATED);
    ENSURE(t.tag == 0x5F49 && t.len == 1 + 2 * f, SCP_E_FORMAT);
    *tlv = p, *tlv_len = r.pos, *pt = t.val;
    rc = scp_tlv_next(&r, &t);
    ENSURE(rc == 1, rc < 0 ? rc : SCP_E_TRUNCATED);
    ENSURE(t.tag == 0x86 && t.len == 16 && scp_rd_left(&r) == 0, SCP_E_FORMAT);
    *rcpt = t.val;
    return SCP_OK;
}

int scp11_host_auth_response(scp11_session *s, const uint8_t *resp, size_t len)
{
    uint8_t shsee[SCP_EC_MAX_FIELD], shses[SCP_EC_MAX_FIELD], receipt[16];
    const uint8_t *tlv, *pt, *rcpt;
    size_t tlv_len, f, n;
    scp_ec_key epk_sd = { 0 };
    int rc;

    ENSURE(s != NULL && s->role == ROLE_HOST && resp != NULL, SCP_E_ARG);
    ENSURE(s->state != SCP11_DEAD, SCP_E_DEAD);
    ENSURE(s->state == SCP11_AUTH_SENT, SCP_E_STATE);
    f = scp_ec_field_len(s->curve);
    GUARD_GOTO(parse_answer(resp, len, f, &tlv, &tlv_len, &pt, &rcpt), out);
    /* ePK.SD.ECKA: on the session's curve, or the session ends */
    GUARD_GOTO(scp_ec_from_point(&epk_sd, s->curve, pt, 1 + 2 * f), out);
    /* GPC Amd F 6.5.2.3: ShSee = ECDH(eSK.OCE, ePK.SD); ShSes = ECDH(SK.OCE,
     * PK.SD) for 11a/c, ECDH(eSK.OCE, PK.SD) for 11b. 11c: the card answers
     * PK.SD as ePK.SD. */
    GUARD_GOTO(scp_ecdh(&s->esk, &epk_sd, shsee, sizeof(shsee), &n), out);
    if (s->p.variant == SCP11_B)
        GUARD_GOTO(scp_ecdh(&s->esk, &s->pk_sd, shses, sizeof(shses), &n), out);
    else
        GUARD_GOTO(oce_ecdh(s, shses, sizeof(shses), f), out);
    GUARD_GOTO(derive_open(s, shsee, shses, f, s->cmd_data, s->cmd_len, tlv, tlv_len, receipt),
               out);
    rc = SCP_E_CRYPTOGRAM; /* a wrong PK.SD, or someone in the middle */
    if (!scp_ct_eq(receipt, rcpt, 16))
        goto out;
    memcpy(s->receipt, receipt, 16);
    scp_ec_free(&s->esk); /* the ephemeral key has done its work */
    scp_ec_free(&s->sk_oce);
    memset(&s->oce_ext, 0, sizeof(s->oce_ext));
    s->oce_ext_on = 0;
    s->state = SCP11_OPEN;
    rc = SCP_OK;
out:
    scp_ec_free(&epk_sd);
    scp_wipe(shsee, sizeof(shsee));
    scp_wipe(shses, sizeof(shses));
    return rc == SCP_OK ? SCP_OK : fail(s, rc);
}

/* ---------------- card ---------------- */

int scp11_auth_parse(const uint8_t *capdu, size_t len, scp11_auth_cmd *o)
{
    scp_apdu a;
    ENSURE(capdu != NULL && o != NULL, SCP_E_ARG);
    memset(o, 0, sizeof(*o));
    GUARD(scp_apdu_parse(capdu, len, &a));
    return scp11_auth_parse_apdu(&a, o);
}

int scp11_auth_parse_apdu(const scp_apdu *ap, scp11_auth_cmd *o)
{
    scp_apdu a;
    scp_tlv t, u;
    scp_rd r;
    int rc;

    ENSURE(ap != NULL && o != NULL, SCP_E_ARG);
    memset(o, 0, sizeof(*o));
    a = *ap;
    ENSURE(a.ins == SCP11_INS_MUTUAL_AUTH || a.ins == SCP11_INS_INTERNAL_AUTH, SCP_E_FORMAT);
    o->cla = a.cla, o->ins = a.ins, o->kvn = a.p1, o->kid = a.p2;
    o->data = a.data, o->data_len = a.lc;
    scp_rd_init(&r, a.data, a.lc);
    /* A6 { 90 02 11 i, 95 01 3C, 80 01 88, 81 01 len } */
    rc = scp_tlv_next(&r, &t);
    ENSURE(rc == 1, rc < 0 ? rc : SCP_E_TRUNCATED);
    ENSURE(t.tag == 0xA6, SCP_E_FORMAT);
    GUARD(scp_tlv_find(t.val, t.len, 0x90, &u) == 1 ? SCP_OK : SCP_E_FORMAT);
    ENSURE(u.len == 2 && u.val[0] == 0x11, SCP_E_FORMAT);
    o->variant = u.val[1] == 0x01 ? SCP11_A : u.val[1] == 0x00 ? SCP11_B
                 : u.val[1] == 0x03 ? SCP11_C : 0;
    ENSURE(o->variant != 0, SCP_E_UNSUPPORTED);
    GUARD(scp_tlv_find(t.val, t.len, 0x95, &u) == 1 ? SCP_OK : SCP_E_FORMAT);
    ENSURE(u.len == 1 && u.val[0] == SCP11_KEY_USAGE, SCP_E_UNSUPPORTED);
    GUARD(scp_tlv_find(t.val, t.len, 0x80, &u) == 1 ? SCP_OK : SCP_E_FORMAT);
    ENSURE(u.len == 1 && u.val[0] == SCP11_KEY_TYPE_AES, SCP_E_UNSUPPORTED);
    GUARD(scp_tlv_find(t.val, t.len, 0x81, &u) == 1 ? SCP_OK : SCP_E_FORMAT);
    ENSURE(u.len == 1 && (u.val[0] == 16 || u.val[0] == 24 || u.val[0] == 32),
           SCP_E_UNSUPPORTED);
    o->key_len = u.val[0];
    /* 5F49 ePK.OCE.ECKA, and nothing after it */
    rc = scp_tlv_next(&r, &t);
    ENSURE(rc == 1, rc < 0 ? rc : SCP_E_TRUNCATED);
    ENSURE(t.tag == 0x5F49 && scp_rd_left(&r) == 0, SCP_E_FORMAT);
    ENSURE(t.len >= 65 && t.len <= SCP_EC_MAX_POINT && t.val[0] == 0x04, SCP_E_FORMAT);
    o->epk = t.val, o->epk_len = t.len;
    /* the INS says which variants may come */
    ENSURE((o->ins == SCP11_INS_INTERNAL_AUTH) == (o->variant == SCP11_B), SCP_E_FORMAT);
    return SCP_OK;
}

int scp11_card_authenticate(scp11_session *s, const scp11_card_keys *k,
                            const scp11_auth_cmd *cmd, uint8_t *out, size_t out_size,
                            size_t *out_len)
{
    uint8_t shsee[SCP_EC_MAX_FIELD], shses[SCP_EC_MAX_FIELD], pt[SCP_EC_MAX_POINT];
    uint8_t receipt[16];
    scp_ec_key epk_oce = { 0 }, esk_sd = { 0 };
    const scp_ec_key *sd_eph;
    size_t f, n, tlv_len;
    scp_wr w;
    int rc;

    ENSURE(s != NULL && k != NULL && cmd != NULL && out != NULL && out_len != NULL, SCP_E_ARG);
    ENSURE(k->sk_sd != NULL && k->sk_sd->priv, SCP_E_ARG);
    scp11_end(s);
    s->role = ROLE_CARD;
    s->p.variant = cmd->variant;
    s->p.kid = cmd->kid, s->p.kvn = cmd->kvn;
    s->p.key_len = cmd->key_len;
    s->p.mac_len = k->mac_len ? k->mac_len : 8;
    s->p.level = k->level;
    s->curve = k->sk_sd->curve;
    f = scp_ec_field_len(s->curve);
    rc = SCP_E_ARG;
    if (!params_ok(&s->p))
        goto out;
    rc = SCP_E_AUTH; /* 11a/c without a verified OCE key: PSO first */
    if (cmd->variant != SCP11_B && (k->pk_oce == NULL || k->pk_oce->curve != s->curve))
        goto out;
    /* ePK.OCE.ECKA must be a point on SK.SD's curve */
    rc = SCP_E_FORMAT;
    if (cmd->epk_len != 1 + 2 * f)
        goto out;
    GUARD_GOTO(scp_ec_from_point(&epk_oce, s->curve, cmd->epk, cmd->epk_len), out);
    if (cmd->variant == SCP11_C) {
        sd_eph = k->sk_sd; /* 11c: the static pair stands in for the ephemeral one */
    } else if (k->fixed_esk != NULL) {
        sd_eph = k->fixed_esk;
    } else {
        GUARD_GOTO(scp_ec_generate(&esk_sd, s->curve), out);
        sd_eph = &esk_sd;
    }
    rc = SCP_E_ARG;
    if (sd_eph->curve != s->curve)
        goto out;
    /* ShSee = ECDH(eSK.SD, ePK.OCE); ShSes = ECDH(SK.SD, PK.OCE) for a/c,
     * ECDH(SK.SD, ePK.OCE) for b */
    GUARD_GOTO(scp_ecdh(sd_eph, &epk_oce, shsee, sizeof(shsee), &n), out);
    GUARD_GOTO(scp_ecdh(k->sk_sd, cmd->variant == SCP11_B ? &epk_oce : k->pk_oce, shses,
                        sizeof(shses), &n),
               out);
    GUARD_GOTO(scp_ec_point(sd_eph, pt, sizeof(pt), &n), out);
    scp_wr_init(&w, out, out_size);
    scp_tlv_put(&w, 0x5F49, pt, n);
    GUARD_GOTO(scp_wr_done(&w, &tlv_len), out);
    GUARD_GOTO(derive_open(s, shsee, shses, f, cmd->data, cmd->data_len, out, tlv_len, receipt),
               out);
    scp_wr_init(&w, out + tlv_len, out_size - tlv_len);
    scp_tlv_put(&w, 0x86, receipt, 16);
    GUARD_GOTO(scp_wr_done(&w, &n), out);
    *out_len = tlv_len + n;
    memcpy(s->receipt, receipt, 16);
    s->state = SCP11_OPEN;
    rc = SCP_OK;
out:
    scp_ec_free(&epk_oce);
    scp_ec_free(&esk_sd);
    scp_wipe(shsee, sizeof(shsee));
    scp_wipe(shses, sizeof(shses));
    return rc == SCP_OK ? SCP_OK : fail(s, rc);
}

/* ---------------- commands around the handshake ---------------- */

int scp11_get_certs_command(uint8_t kid, uint8_t kvn, uint8_t *out, size_t out_size,
                            size_t *out_len)
{
    const uint8_t c[12] = { 0x00, 0xCA, 0xBF, 0x21, 0x06, 0xA6, 0x04, 0x83, 0x02, kid, kvn, 0x00 };
    ENSURE(out != NULL && out_len != NULL, SCP_E_ARG);
    ENSURE(out_size >= sizeof(c), SCP_E_BUFFER_TOO_SMALL);
    memcpy(out, c, sizeof(c));
    *out_len = sizeof(c);
    return SCP_OK;
}

int scp11_pso_next(const uint8_t *cert, size_t len, size_t *off, uint8_t ca_kvn, uint8_t ca_kid,
                   int more_certs, unsigned flags, uint8_t *out, size_t out_size,
                   size_t *out_len)
{
    size_t piece, n = 0;
    int last;
    ENSURE(cert != NULL && off != NULL && out != NULL && out_len != NULL, SCP_E_ARG);
    ENSURE(len > 0 && *off < len, SCP_E_ARG);
    piece = len - *off > 255 ? 255 : len - *off;
    last = *off + piece == len;
    ENSURE(out_size >= 5 + piece + 1, SCP_E_BUFFER_TOO_SMALL);
    out[n++] = last ? 0x80 : 0x90; /* ISO chaining: CLA b5 on all but the last */
    out[n++] = SCP11_INS_PSO;
    out[n++] = (uint8_t)(ca_kvn | ((flags & SCP11_PSO_SAMSUNG) && !last ? 0x80 : 0));
    out[n++] = (uint8_t)(ca_kid | (more_certs ? 0x80 : 0));
    out[n++] = (uint8_t)piece;
    memcpy(out + n, cert + *off, piece);
    n += piece;
    if (flags & SCP11_PSO_SAMSUNG)
        out[n++] = 0x00;
    *off += piece;
    *out_len = n;
    return SCP_OK;
}
