/* scpkit CLI: SCP11 wherever a channel opens (--scp 11a|11b|11c with
 * --kid/--kvn, --sd-ca, --oce-key, --oce-chain) and the SCP11 part of
 * `scpkit info`. The channel itself is src/scp11/channel.c. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "scpkit/apdu.h"
#include "scpkit/cert.h"
#include "scpkit/scp11.h"
#include "scpkit/tlv.h"

int scp_cli_scp11_variant(const scp_cli_opts *o)
{
    if (o->scp_text == NULL || strcmp(o->scp_text, "03") == 0 || strcmp(o->scp_text, "3") == 0)
        return 0;
    return scp11_variant_from_name(o->scp_text);
}

#ifdef SCP_HAVE_KEYS
#include "scpkit/keystore.h"
typedef scp_ks_oce oce_ctx;
#else
typedef int oce_ctx;
#endif

/* --keystore DIR --oce-label L[:V]: SK.OCE.ECKA stays in the token; the
 * handshake asks it for ShSes (CKM_ECDH1_DERIVE). The chain's leaf must
 * hold that key's public half. */
static int oce_from_keystore(scp_cli *c, scp11_channel_opts *o, void **ksh, oce_ctx *oce,
                             scp11_oce_key *ext, uint8_t *chain, size_t chain_size, size_t *off,
                             size_t *lens)
{
#ifdef SCP_HAVE_KEYS
    char pin[128];
    scp_keystore *ks = NULL;
    scp_ks_config cfg = { c->o.keystore, NULL, NULL, NULL };
    scp_cert leaf;
    scp_ec_key pub = { 0 };
    uint8_t p1[SCP_EC_MAX_POINT], p2[SCP_EC_MAX_POINT];
    size_t l1 = 0, l2 = 0;
    int rc;
    if (c->o.oce_key != NULL)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "give --oce-key FILE or --oce-label L, not both");
    if (c->o.keystore == NULL || c->o.oce_chain == NULL)
        return scp_cli_fail(c, SCP_EXIT_USAGE,
                            "--oce-label needs --keystore DIR and --oce-chain FILE");
    rc = scp_cert_load_file(c->o.oce_chain, chain, chain_size, off, lens, SCP_CERT_MAX_CHAIN,
                            &o->oce_n);
    if (rc != SCP_OK)
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "--oce-chain %s: no certificates (%s)",
                            c->o.oce_chain, scp_strerror(rc));
    if (scp_keystore_pin("SCPKIT_USER_PIN", "keystore user PIN: ", pin, sizeof(pin)) != SCP_OK)
        return scp_cli_fail(c, SCP_EXIT_USAGE,
                            "no user PIN: set SCPKIT_USER_PIN or run on a terminal");
    rc = scp_keystore_open(&cfg, pin, &ks);
    scp_wipe(pin, sizeof(pin));
    if (rc != SCP_OK) {
        const char *why = scp_keystore_why(NULL);
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "keystore %s: %s", c->o.keystore,
                            why[0] ? why : scp_strerror(rc));
    }
    rc = scp_keystore_oce_open(ks, c->o.oce_label, oce);
    if (rc != SCP_OK) {
        const char *why = scp_keystore_why(ks);
        scp_cli_fail(c, rc == SCP_E_ARG ? SCP_EXIT_USAGE : SCP_EXIT_LOCAL,
                     "--oce-label %s: %s", c->o.oce_label,
                     why[0] ? why : rc == SCP_E_NOT_FOUND ? "no such key in the keystore"
                                                          : scp_strerror(rc));
        scp_keystore_close(ks);
        return rc == SCP_E_ARG ? SCP_EXIT_USAGE : SCP_EXIT_LOCAL;
    }
    /* the leaf certificate must carry this key (else the card computes
     * another ShSes and the receipt fails: say it now) */
    rc = scp_keystore_ec_public(ks, oce->label, oce->version, &pub);
    if (rc == SCP_OK)
        rc = scp_ec_point(&pub, p1, sizeof(p1), &l1);
    scp_ec_free(&pub);
    if (rc == SCP_OK &&
        (rc = scp_cert_parse(&leaf, chain + off[o->oce_n - 1], lens[o->oce_n - 1])) == SCP_OK) {
        rc = leaf.ec.pkey != NULL ? scp_ec_point(&leaf.ec, p2, sizeof(p2), &l2) : SCP_E_FORMAT;
        scp_cert_free(&leaf);
    }
    if (rc != SCP_OK || l1 != l2 || memcmp(p1, p2, l1) != 0) {
        scp_keystore_close(ks);
        return scp_cli_fail(c, SCP_EXIT_LOCAL,
                            "--oce-chain %s: its last certificate is not for the keystore key %s",
                            c->o.oce_chain, c->o.oce_label);
    }
    ext->curve = oce->curve;
    ext->ecdh = scp_keystore_oce_ecdh;
    ext->ctx = oce;
    o->oce_ext = ext;
    o->oce_chain = chain, o->oce_off = off, o->oce_len = lens;
    *ksh = ks;
    return SCP_EXIT_OK;
#else
    (void)o, (void)ksh, (void)oce, (void)ext, (void)chain, (void)chain_size, (void)off,
        (void)lens;
    return scp_cli_fail(c, SCP_EXIT_USAGE, "--oce-label: the keystore is not built into this scpkit");
#endif
}

static void oce_close(void *ksh, oce_ctx *oce)
{
#ifdef SCP_HAVE_KEYS
    scp_keystore_close(ksh);
    scp_wipe(oce, sizeof(*oce));
#else
    (void)ksh, (void)oce;
#endif
}

int scp_cli_open_scp11(scp_cli *c)
{
    static uint8_t chain[8192];
    size_t off[SCP_CERT_MAX_CHAIN], lens[SCP_CERT_MAX_CHAIN];
    scp11_channel_opts o = { 0 };
    scp_cert_error err;
    scp_trust trust = { 0 };
    scp_ec_key sk = { 0 };
    int v = scp_cli_scp11_variant(&c->o), rc, kid = 0;
    void *ksh = NULL;
    oce_ctx oce;
    scp11_oce_key ext;

    if (v == 0)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "--scp: want 03, 11a, 11b or 11c");
    if (c->o.sd_ca == NULL)
        return scp_cli_fail(c, SCP_EXIT_USAGE,
                            "--scp %s needs --sd-ca FILE (the trust anchor for the card's "
                            "certificates, e.g. DIR/sd-ca.pem of a virtual card)",
                            c->o.scp_text);
    if (c->o.kid_text && scp_cli_parse_hex(c->o.kid_text, 0x01, 0xFF, &kid) != 0)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "--kid %s: want a key identifier in hex, 01..FF",
                            c->o.kid_text); /* hex, like every KVN and KID in scpkit */
    rc = scp_trust_load_file(&trust, c->o.sd_ca);
    if (rc != SCP_OK)
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "--sd-ca %s: no certificate or public key (%s)",
                            c->o.sd_ca, scp_strerror(rc));
    o.variant = v;
    o.kid = (uint8_t)kid;
    o.kvn = c->o.kvn > 0 ? (uint8_t)c->o.kvn : 0;
    o.sd_trust = &trust;
    o.now = (int64_t)time(NULL);
    o.err = &err;
    memset(&err, 0, sizeof(err));
    if (v != SCP11_B && c->o.oce_label != NULL) {
        rc = oce_from_keystore(c, &o, &ksh, &oce, &ext, chain, sizeof(chain), off, lens);
        if (rc != SCP_EXIT_OK) {
            scp_trust_free(&trust);
            return rc;
        }
    } else if (v != SCP11_B) {
        if (c->o.oce_key == NULL || c->o.oce_chain == NULL) {
            scp_trust_free(&trust);
            return scp_cli_fail(c, SCP_EXIT_USAGE, "--scp %s needs --oce-key FILE and --oce-chain FILE",
                                c->o.scp_text);
        }
        rc = scp_ec_load_file(&sk, c->o.oce_key);
        if (rc != SCP_OK || !sk.priv) {
            scp_ec_free(&sk);
            scp_trust_free(&trust);
            return scp_cli_fail(c, SCP_EXIT_LOCAL, "--oce-key %s: not an EC private key on "
                                "P-256, P-384 or brainpoolP256r1", c->o.oce_key);
        }
        rc = scp_cert_load_file(c->o.oce_chain, chain, sizeof(chain), off, lens,
                                SCP_CERT_MAX_CHAIN, &o.oce_n);
        if (rc != SCP_OK) {
            scp_ec_free(&sk);
            scp_trust_free(&trust);
            return scp_cli_fail(c, SCP_EXIT_LOCAL, "--oce-chain %s: no certificates (%s)",
                                c->o.oce_chain, scp_strerror(rc));
        }
        o.sk_oce = &sk;
        o.oce_chain = chain, o.oce_off = off, o.oce_len = lens;
    }
    /* S8 or S16 from the card's recognition data (its i parameter), as
     * for SCP03; the SCP11 handshake itself does not say */
    if (c->chopts.s16 < 0)
        (void)scp_cli_detect_mode(c);
    o.mac_len = c->chopts.s16 == 1 ? 16 : 8;
    rc = scp11_channel_open(&c->ch, &c->t, &o);
    oce_close(ksh, &oce);
    scp_ec_free(&sk);
    scp_trust_free(&trust);
    if (rc == SCP_OK) {
        c->ch_open = 1;
        if (c->o.trace)
            fprintf(stderr, "scpkit: SCP%s channel open: key %02X/%02X, level %02X, S%u\n",
                    scp11_variant_name(v) + 0, o.kid ? o.kid : scp11_default_kid(v),
                    c->ch.kvn, c->ch.level, (unsigned)o.mac_len);
        return SCP_EXIT_OK;
    }
    if (err.text[0] != '\0')
        return scp_cli_fail(c, rc == SCP_E_SW ? SCP_EXIT_REFUSED : SCP_EXIT_AUTH,
                            "SCP%s not opened: %s", scp11_variant_name(v), err.text);
    return scp_cli_fail_rc(c, rc, "opening the SCP11 channel");
}

/* The SCP11 keys a card offers: each key reference whose certificate store
 * answers GET DATA BF21 (13/01, 11/03, 15/03, and those the key
 * information names), with the curve of its leaf. */
int scp_cli_show_scp11(scp_cli *c)
{
    uint8_t refs[16][2] = { { 0x13, 0x01 }, { 0x11, 0x03 }, { 0x15, 0x03 } };
    size_t nref = 3, n;
    scp_cli_keyinfo ki[16];
    uint16_t sw;
    json_object *arr = json_object_new_array();
    int printed = 0;

    if (scp_cli_read_keyinfo(c, ki, 16, &n, &sw) == SCP_EXIT_OK && sw == 0x9000)
        for (size_t k = 0; k < n && nref < 16; k++) {
            int dup = 0;
            if (ki[k].id != 0x11 && ki[k].id != 0x13 && ki[k].id != 0x15)
                continue;
            for (size_t j = 0; j < nref; j++)
                dup |= refs[j][0] == ki[k].id && refs[j][1] == ki[k].kvn;
            if (!dup)
                refs[nref][0] = ki[k].id, refs[nref++][1] = ki[k].kvn;
        }
    json_object_object_add(c->doc, "scp11", arr);
    for (size_t k = 0; k < nref; k++) {
        static uint8_t resp[4096];
        uint8_t cmd[16];
        size_t cl, rl, off[SCP_CERT_MAX_CHAIN], lens[SCP_CERT_MAX_CHAIN], nc;
        scp_cert leaf;
        int rc;
        if (scp11_get_certs_command(refs[k][0], refs[k][1], cmd, sizeof(cmd), &cl) != SCP_OK)
            continue;
        rc = scp_cli_send(c, cmd, cl, resp, sizeof(resp), &rl, &sw);
        if (rc != SCP_EXIT_OK)
            return rc;
        if (sw != 0x9000 || scp_cert_split(resp, rl, off, lens, SCP_CERT_MAX_CHAIN, &nc) != SCP_OK ||
            scp_cert_parse(&leaf, resp + off[nc - 1], lens[nc - 1]) != SCP_OK)
            continue;
        int v = refs[k][0] == 0x13 ? SCP11_B : refs[k][0] == 0x11 ? SCP11_A : SCP11_C;
        const char *curve = leaf.ec.pkey ? scp_ec_curve_name(leaf.ec.curve) : "?";
        json_object *e = json_object_new_object();
        json_object_object_add(e, "variant", json_object_new_string(scp11_variant_name(v)));
        json_object_object_add(e, "kid", json_object_new_int(refs[k][0]));
        json_object_object_add(e, "kvn", json_object_new_int(refs[k][1]));
        json_object_object_add(e, "curve", json_object_new_string(curve));
        json_object_object_add(e, "certificates", json_object_new_int((int)nc));
        json_object_array_add(arr, e);
        if (!c->o.json)
            printf("%s SCP%s key %02X/%02X, %s, %zu certificate%s\n",
                   printed++ ? "                 " : "SCP11:           ", scp11_variant_name(v),
                   refs[k][0], refs[k][1], curve, nc, nc == 1 ? "" : "s");
        scp_cert_free(&leaf);
    }
    if (!printed && !c->o.json)
        printf("SCP11:            not offered\n");
    return SCP_EXIT_OK;
}
