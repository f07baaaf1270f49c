/* Public SCP11 known answers, byte for byte:
 *  - tests/vectors/scp11_openscp.txt (Samsung OpenSCP-Java, every SCP11a and
 *    SCP11c transcript: P-256/P-384/brainpoolP256r1, AES-128/192/256, S8/S16,
 *    X.509 and GP certificates): GET DATA BF21, the SD certificate store,
 *    PSO pieces, MUTUAL AUTHENTICATE with the pinned ephemeral key, the
 *    receipt, one wrapped GET STATUS and its reply through the host; the
 *    card's secure messaging with the same session keys must produce the
 *    published reply;
 *  - tests/vectors/scp11_pkcs11rs.txt (qpernil/pkcs11rs): the X9.63 KDF and
 *    the SCP11b / SCP11a receipts with eSK.OCE = 1, SK.OCE = 4.
 * Each happy path has tampered twins (receipt, point off the curve,
 * truncated 5F49, wrong curve, trailing bytes). */
#include <stdlib.h>

#include "scpkit/apdu.h"
#include "scpkit/cert.h"
#include "scpkit/ec.h"
#include "scpkit/scp11.h"
#include "test.h"

static uint8_t out[70000], out2[70000];

static const vec_field *need(const vec_record *r, const char *name, int k)
{
    const vec_field *f = vec_get(r, name, k);
    if (f == NULL || f->bytes == NULL) {
        fprintf(stderr, "line %d: field %s missing\n", r->line, name);
        CHECK(!"field missing");
    }
    return f;
}

static int num(const vec_record *r, const char *name)
{
    const vec_field *f = vec_get(r, name, 0);
    return f != NULL ? atoi(f->text) : -1;
}

static int hexbyte(const vec_record *r, const char *name)
{
    const vec_field *f = vec_get(r, name, 0);
    return f != NULL && f->len == 1 ? f->bytes[0] : -1;
}

static int count(const vec_record *r, const char *name)
{
    int k = 0;
    while (vec_get(r, name, k) != NULL)
        k++;
    return k;
}

/* The host's answer to the card's 5F49/86 with one byte changed must be
 * refused with want. */
static void tampered_answer(const scp11_params *p, const scp_ec_key *pk_sd,
                            const scp_ec_key *sk_oce, const scp_ec_key *esk, const uint8_t *ans,
                            size_t len, size_t at, uint8_t x, int want)
{
    scp11_session h = { 0 };
    uint8_t bad[256];
    size_t n;
    memcpy(bad, ans, len);
    if (at < len)
        bad[at] ^= x;
    CHECK_OK(scp11_host_begin(&h, p, pk_sd, sk_oce, esk));
    CHECK_OK(scp11_host_auth_command(&h, 0x80, out, sizeof(out), &n));
    CHECK_RC(scp11_host_auth_response(&h, bad, len), want);
    CHECK(h.state == SCP11_DEAD && !scp03_is_open(&h.sm));
    scp11_end(&h);
}

static void openscp(const vec_record *r)
{
    const vec_field *f;
    uint8_t store[4096], *pk_point;
    size_t sl = 0, n, off[SCP_CERT_MAX_CHAIN], lens[SCP_CERT_MAX_CHAIN], nc, k;
    scp_cert sd[SCP_CERT_MAX_CHAIN], oce;
    scp_ec_key sk = { 0 }, esk = { 0 }, epk = { 0 }, pk_sd = { 0 };
    scp11_params p = { 0 };
    scp11_session h = { 0 };
    int curve = scp_ec_curve_from_name(vec_get(r, "curve", 0)->text);
    const char *v = vec_get(r, "variant", 0)->text;

    printf("  %s\n", vec_get(r, "name", 0)->text);
    p.variant = (uint8_t)scp11_variant_from_name(v);
    p.kid = (uint8_t)hexbyte(r, "kid"), p.kvn = (uint8_t)hexbyte(r, "kvn");
    p.key_len = (uint8_t)num(r, "key_len"), p.mac_len = (uint8_t)num(r, "mac_len");
    CHECK(p.variant == SCP11_A || p.variant == SCP11_C);

    /* GET DATA BF21 and the reply, chunk by chunk (61xx, then 9000) */
    f = need(r, "get_data_cmd", 0);
    CHECK_OK(scp11_get_certs_command(p.kid, p.kvn, out, sizeof(out), &n));
    CHECK_MEM(out, n, f->bytes, f->len);
    for (int i = 0; (f = vec_get(r, "get_data_rapdu", i)) != NULL; i++) {
        CHECK(f->len >= 2 && f->len - 2 + sl <= sizeof(store));
        uint8_t sw1 = f->bytes[f->len - 2];
        CHECK(sw1 == (vec_get(r, "get_data_rapdu", i + 1) ? 0x61 : 0x90));
        memcpy(store + sl, f->bytes, f->len - 2);
        sl += f->len - 2;
    }
    CHECK_OK(scp_cert_split(store, sl, off, lens, SCP_CERT_MAX_CHAIN, &nc));
    CHECK(nc == 1);
    for (k = 0; k < nc; k++)
        CHECK_OK(scp_cert_parse(&sd[k], store + off[k], lens[k]));
    CHECK(sd[nc - 1].ec.pkey != NULL && sd[nc - 1].ec.curve == curve);
    CHECK(sd[nc - 1].has_key_usage && (sd[nc - 1].key_usage & SCP_KU_KEY_AGREEMENT));
    CHECK_OK(scp_ec_dup(&pk_sd, &sd[nc - 1].ec, 0));

    /* PSO: the OCE certificate in Samsung's pieces */
    f = need(r, "oce_cert", 0);
    CHECK_OK(scp_cert_parse(&oce, f->bytes, f->len));
    size_t po = 0;
    for (int i = 0; i < count(r, "pso_cmd"); i++) {
        const vec_field *w = vec_get(r, "pso_cmd", i);
        CHECK_OK(scp11_pso_next(f->bytes, f->len, &po, (uint8_t)hexbyte(r, "oce_ca_kvn"),
                                (uint8_t)hexbyte(r, "oce_ca_kid"), 0, SCP11_PSO_SAMSUNG, out,
                                sizeof(out), &n));
        CHECK_MEM(out, n, w->bytes, w->len);
    }
    CHECK(po == f->len);

    /* keys: SK.OCE matches the OCE certificate; ePK matches eSK */
    f = need(r, "sk_oce", 0);
    CHECK_OK(scp_ec_from_bytes(&sk, f->bytes, f->len));
    f = need(r, "esk_oce", 0);
    CHECK_OK(scp_ec_from_bytes(&esk, f->bytes, f->len));
    f = need(r, "epk_oce", 0);
    CHECK_OK(scp_ec_from_bytes(&epk, f->bytes, f->len));
    CHECK(sk.curve == curve && esk.curve == curve && epk.curve == curve && !epk.priv);
    {
        uint8_t a[SCP_EC_MAX_POINT], b[SCP_EC_MAX_POINT];
        size_t al, bl;
        CHECK_OK(scp_ec_point(&esk, a, sizeof(a), &al));
        CHECK_OK(scp_ec_point(&epk, b, sizeof(b), &bl));
        CHECK_MEM(a, al, b, bl);
        CHECK_OK(scp_ec_point(&sk, a, sizeof(a), &al));
        CHECK(oce.ec.pkey != NULL);
        CHECK_OK(scp_ec_point(&oce.ec, b, sizeof(b), &bl));
        CHECK_MEM(a, al, b, bl);
    }

    /* MUTUAL AUTHENTICATE and the receipt */
    const vec_field *ma = need(r, "ma_cmd", 0), *mr = need(r, "ma_rapdu", 0);
    CHECK_OK(scp11_host_begin(&h, &p, &pk_sd, &sk, &esk));
    CHECK_OK(scp11_host_auth_command(&h, 0x80, out, sizeof(out), &n));
    CHECK_MEM(out, n, ma->bytes, ma->len);
    CHECK(mr->bytes[mr->len - 2] == 0x90 && mr->bytes[mr->len - 1] == 0x00);
    CHECK_OK(scp11_host_auth_response(&h, mr->bytes, mr->len - 2));
    CHECK(scp11_is_open(&h));
    CHECK_MEM(h.receipt, 16, mr->bytes + mr->len - 18, 16);

    /* one wrapped command and its reply */
    const vec_field *cp = need(r, "c_plain", 0), *cw = need(r, "c_wrapped", 0),
                    *rw = need(r, "r_wrapped", 0), *rp = need(r, "r_plain", 0);
    CHECK_OK(scp03_host_wrap(&h.sm, cp->bytes, cp->len, out, sizeof(out), &n));
    CHECK_MEM(out, n, cw->bytes, cw->len);
    CHECK_OK(scp03_host_unwrap(&h.sm, rw->bytes, rw->len, out, sizeof(out), &n));
    CHECK(n == rp->len + 2 && memcmp(out, rp->bytes, rp->len) == 0 && out[n - 2] == 0x90);

    /* the card's secure messaging with the same keys (SK.SD is not
     * published: the keys come from the host's side of the agreement) */
    {
        uint8_t shsee[SCP_EC_MAX_FIELD], shses[SCP_EC_MAX_FIELD], keys[5][SCP_AES_MAX_KEY];
        size_t fl = scp_ec_field_len(curve), m;
        scp_ec_key epk_sd = { 0 };
        scp03_session c = { 0 };
        scp03_open_params op = { 0 };
        CHECK_OK(scp_ec_from_point(&epk_sd, curve, mr->bytes + 3, 1 + 2 * fl));
        CHECK_OK(scp_ecdh(&esk, &epk_sd, shsee, sizeof(shsee), &m));
        CHECK_OK(scp_ecdh(&sk, &pk_sd, shses, sizeof(shses), &m));
        CHECK_OK(scp11_kdf(shsee, shses, fl, p.key_len, keys));
        op.role = 1, op.level = 0x33, op.key_len = p.key_len, op.mac_len = p.mac_len;
        op.enc = keys[1], op.mac = keys[2], op.rmac = keys[3];
        op.mac_chain = mr->bytes + mr->len - 18;
        CHECK_OK(scp03_session_from_keys(&c, &op));
        CHECK_OK(scp03_card_unwrap(&c, cw->bytes, cw->len, out2, sizeof(out2), &m));
        CHECK_MEM(out2, m, cp->bytes, cp->len);
        CHECK_OK(scp03_card_wrap(&c, rp->bytes, rp->len, 0x9000, out2, sizeof(out2), &m));
        CHECK_MEM(out2, m, rw->bytes, rw->len);
        scp03_end(&c);
        scp_ec_free(&epk_sd);
        scp_wipe(keys, sizeof(keys));
    }
    scp11_end(&h);

    /* tampered twins of the card's answer */
    size_t al = mr->len - 2, fl = scp_ec_field_len(curve);
    tampered_answer(&p, &pk_sd, &sk, &esk, mr->bytes, al, al - 1, 0x01, SCP_E_CRYPTOGRAM);
    /* a Y coordinate off by one: not on the curve */
    tampered_answer(&p, &pk_sd, &sk, &esk, mr->bytes, al, 3 + 2 * fl, 0x01, SCP_E_FORMAT);
    /* another point on the curve (the OCE's): keys differ, receipt fails */
    {
        uint8_t ans[256], pt[SCP_EC_MAX_POINT];
        size_t pl;
        CHECK_OK(scp_ec_point(&sk, pt, sizeof(pt), &pl));
        memcpy(ans, mr->bytes, al);
        memcpy(ans + 3, pt, pl);
        tampered_answer(&p, &pk_sd, &sk, &esk, ans, al, al + 1000, 0, SCP_E_CRYPTOGRAM);
    }
    /* truncated 5F49, truncated receipt, trailing byte */
    tampered_answer(&p, &pk_sd, &sk, &esk, mr->bytes, 3 + fl, al + 1000, 0, SCP_E_TRUNCATED);
    tampered_answer(&p, &pk_sd, &sk, &esk, mr->bytes, al - 1, al + 1000, 0, SCP_E_TRUNCATED);
    {
        uint8_t ans[256];
        memcpy(ans, mr->bytes, al);
        ans[al] = 0x00;
        tampered_answer(&p, &pk_sd, &sk, &esk, ans, al + 1, al + 1000, 0, SCP_E_FORMAT);
        /* a 5F49 length that says the other curve's size */
        ans[2] = curve == SCP_EC_P384 ? 0x41 : 0x61;
        tampered_answer(&p, &pk_sd, &sk, &esk, ans, al, al + 1000, 0,
                        curve == SCP_EC_P384 ? SCP_E_FORMAT : SCP_E_TRUNCATED);
    }

    for (k = 0; k < nc; k++)
        scp_cert_free(&sd[k]);
    scp_cert_free(&oce);
    scp_ec_free(&sk), scp_ec_free(&esk), scp_ec_free(&epk), scp_ec_free(&pk_sd);
    (void)pk_point;
}

static void pkcs11rs(const vec_record *r)
{
    scp_ec_key pk_sd = { 0 }, esk = { 0 }, sk = { 0 };
    scp11_params p = { 0 };
    scp11_session h = { 0 };
    const vec_field *f, *cmd = need(r, "auth_cmd", 0), *ans = need(r, "auth_rapdu", 0);
    size_t n;

    printf("  %s\n", vec_get(r, "name", 0)->text);
    p.variant = (uint8_t)scp11_variant_from_name(vec_get(r, "variant", 0)->text);
    p.kid = (uint8_t)hexbyte(r, "kid"), p.kvn = (uint8_t)hexbyte(r, "kvn");
    p.key_len = 16, p.mac_len = 8;
    f = need(r, "pk_sd", 0);
    CHECK_OK(scp_ec_from_point(&pk_sd, SCP_EC_P256, f->bytes, f->len));
    f = need(r, "esk_oce", 0);
    CHECK_OK(scp_ec_from_private(&esk, SCP_EC_P256, f->bytes, f->len));
    if ((f = vec_get(r, "sk_oce", 0)) != NULL)
        CHECK_OK(scp_ec_from_private(&sk, SCP_EC_P256, f->bytes, f->len));
    CHECK_OK(scp11_host_begin(&h, &p, &pk_sd, sk.pkey ? &sk : NULL, &esk));
    CHECK_OK(scp11_host_auth_command(&h, 0x80, out, sizeof(out), &n));
    CHECK_MEM(out, n, cmd->bytes, cmd->len);
    CHECK_OK(scp11_host_auth_response(&h, ans->bytes, ans->len - 2));
    CHECK(scp11_is_open(&h));
    scp11_end(&h);
    /* the source's own twin: the receipt's third-from-last byte flipped */
    tampered_answer(&p, &pk_sd, sk.pkey ? &sk : NULL, &esk, ans->bytes, ans->len - 2,
                    ans->len - 3, 0x01, SCP_E_CRYPTOGRAM);
    scp_ec_free(&pk_sd), scp_ec_free(&esk), scp_ec_free(&sk);
}

static void x963(const vec_record *r)
{
    const vec_field *z = need(r, "z", 0), *si = need(r, "shared_info", 0),
                    *want = need(r, "out", 0);
    uint8_t got[160], keys[5][SCP_AES_MAX_KEY];
    CHECK_OK(scp_x963_kdf_sha256(z->bytes, z->len, si->bytes, si->len, got, want->len));
    CHECK_MEM(got, want->len, want->bytes, want->len);
    /* scp11_kdf cuts the same stream into the five keys */
    CHECK_OK(scp11_kdf(z->bytes, z->bytes + 32, 32, 16, keys));
    for (int i = 0; i < 5; i++)
        CHECK_MEM(keys[i], 16, want->bytes + 16 * i, 16);
    /* twin: another SharedInfo gives another stream */
    uint8_t si2[3] = { 0x3C, 0x88, 0x18 };
    CHECK_OK(scp_x963_kdf_sha256(z->bytes, z->len, si2, 3, got, want->len));
    CHECK(memcmp(got, want->bytes, want->len) != 0);
}

int main(void)
{
    static const char *files[] = { "scp11_openscp.txt", "scp11_pkcs11rs.txt" };
    int seen[3] = { 0 };
    for (size_t fi = 0; fi < 2; fi++) {
        vec_file vf;
        if (vec_load(vec_path(files[fi]), &vf) != 0) {
            CHECK(!"cannot load a vector file");
            continue;
        }
        for (size_t i = 0; i < vf.n; i++) {
            vec_record *r = &vf.r[i];
            if (strcmp(r->type, "x963") == 0)
                x963(r), seen[0]++;
            else if (fi == 0 && strcmp(r->type, "scp11") == 0)
                openscp(r), seen[1]++;
            else if (strcmp(r->type, "scp11") == 0)
                pkcs11rs(r), seen[2]++;
        }
        vec_free(&vf);
    }
    CHECK(seen[0] == 1 && seen[1] == 8 && seen[2] == 2);
    return test_done("test_scp11_vectors");
}
