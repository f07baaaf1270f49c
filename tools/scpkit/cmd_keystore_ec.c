/* scpkit keystore: EC key pairs and a small off-card CA (issue 16 item 5).
 *   generate --label L --type ec-p256|ec-p384|ec-bp256   (cmd_keystore.c)
 *   import-ec --label L --in FILE [--version V]   a PEM/DER private key,
 *                                   unwrapped into the token (never readable)
 *   public L[:V] [--out FILE]      the public key (PEM)
 *   ca cert --ca L[:V] --cn NAME [--days N] [--serial N] --out FILE
 *                                  the CA's self-signed certificate
 *   ca issue --ca L[:V] --ca-cert FILE (--subject L2[:V] | --pub FILE) --cn NAME
 *            [--intermediate] [--days N] [--serial N] --out FILE
 *                                  a certificate for an OCE key of the
 *                                  keystore (or any public key, e.g. a
 *                                  card's SD key), keyAgreement, signed in
 *                                  the token; FILE gets the chain as the
 *                                  SCP11 host wants it (--oce-chain):
 *                                  the --ca-cert intermediates, leaf last,
 *                                  the self-signed root left out.
 * The CA key must be active (a quorum activates it), like any key that is
 * used; each signature is an audit record. Files are written new:
 * temporary file, fsync, rename. */
#ifdef SCP_HAVE_KEYS
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "keystore_cli.h"
#include "scpkit/cert.h"

/* Write text to path: path.tmp, fsync, rename (0644: public data). */
static int write_new(const char *path, const char *text, size_t len)
{
    char tmp[4096 + 8];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (n <= 0 || (size_t)n >= sizeof(tmp))
        return SCP_E_ARG;
    (void)unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return SCP_E_IO;
    int ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    ok = ok && rename(tmp, path) == 0;
    if (!ok)
        (void)unlink(tmp);
    return ok ? SCP_OK : SCP_E_IO;
}

static int parse_ref(scp_cli *c, const char *opt, const char *ref, char *label, uint32_t *v)
{
    if (ref == NULL || scp_ks_parse_ref(ref, label, v) != SCP_OK)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "%s: want LABEL[:VERSION]", opt);
    return SCP_EXIT_OK;
}

int scp_ks_cli_import_ec(scp_cli *c, scp_keystore *ks)
{
    const char *label = scp_cli_take(c, "--label"), *file = scp_cli_take(c, "--in");
    const char *vt = scp_cli_take(c, "--version");
    scp_ec_key k = {0};
    scp_ks_key_info info;
    int v = 0, rc;
    if (label == NULL || file == NULL)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "import-ec --label L --in FILE [--version V]");
    if (vt != NULL && (rc = scp_cli_number(c, "--version", vt, 0xFFFFFF, &v)) != SCP_EXIT_OK)
        return rc;
    if ((rc = scp_cli_no_more(c, 2)) != SCP_EXIT_OK)
        return rc;
    rc = scp_ec_load_file(&k, file);
    if (rc != SCP_OK || !k.priv) {
        scp_ec_free(&k);
        return scp_cli_fail(c, SCP_EXIT_LOCAL,
                            "--in %s: not an EC private key on P-256, P-384 or brainpoolP256r1",
                            file);
    }
    rc = scp_keystore_import_ec(ks, label, (uint32_t)v, &k, &info);
    scp_ec_free(&k);
    if (rc != SCP_OK)
        return scp_ks_cli_fail(c, rc, "import-ec");
    scp_ks_cli_print_key(c, &info);
    return SCP_EXIT_OK;
}

int scp_ks_cli_public(scp_cli *c, scp_keystore *ks)
{
    const char *out = scp_cli_take(c, "--out");
    char label[SCP_KS_LABEL_MAX + 1], pem[1024];
    uint32_t v;
    size_t n;
    scp_ec_key pub = {0};
    int rc = scp_cli_no_more(c, 3);
    if (rc != SCP_EXIT_OK)
        return rc;
    if (c->o.argc != 3)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "public LABEL[:VERSION] [--out FILE]");
    if ((rc = parse_ref(c, "public", c->o.argv[2], label, &v)) != SCP_EXIT_OK)
        return rc;
    rc = scp_keystore_ec_public(ks, label, v, &pub);
    if (rc == SCP_OK)
        rc = scp_ec_to_pem(&pub, 0, pem, sizeof(pem), &n);
    scp_ec_free(&pub);
    if (rc == SCP_OK && out != NULL)
        rc = write_new(out, pem, n);
    if (rc != SCP_OK)
        return scp_ks_cli_fail(c, rc, "public");
    if (out == NULL && !c->o.json)
        fputs(pem, stdout);
    if (c->o.json)
        json_object_object_add(c->doc, "public", json_object_new_string(pem));
    return SCP_EXIT_OK;
}

/* The days, serial and CN common to both. */
static int cert_opts(scp_cli *c, const char **cn, int *days, int *serial, const char **out)
{
    const char *dt = scp_cli_take(c, "--days"), *st = scp_cli_take(c, "--serial");
    int rc;
    *cn = scp_cli_take(c, "--cn");
    *out = scp_cli_take(c, "--out");
    *days = 365;
    *serial = (int)(time(NULL) & 0x7FFFFFFF);
    if (dt != NULL && (rc = scp_cli_number(c, "--days", dt, 36500, days)) != SCP_EXIT_OK)
        return rc;
    if (st != NULL && (rc = scp_cli_number(c, "--serial", st, 0x7FFFFFFF, serial)) != SCP_EXIT_OK)
        return rc;
    if (*cn == NULL || *out == NULL || *days < 1)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "ca: --cn NAME and --out FILE are needed");
    return SCP_EXIT_OK;
}

static int ca_cert(scp_cli *c, scp_keystore *ks)
{
    const char *ca = scp_cli_take(c, "--ca"), *cn, *out;
    char label[SCP_KS_LABEL_MAX + 1], pem[4096];
    uint8_t der[2048];
    size_t dl = 0, pl = 0;
    uint32_t v;
    int days, serial, rc;
    scp_ec_key pub = {0};
    if ((rc = parse_ref(c, "--ca", ca, label, &v)) != SCP_EXIT_OK ||
        (rc = cert_opts(c, &cn, &days, &serial, &out)) != SCP_EXIT_OK ||
        (rc = scp_cli_no_more(c, 3)) != SCP_EXIT_OK)
        return rc;
    rc = scp_keystore_ec_public(ks, label, v, &pub);
    if (rc == SCP_OK)
        rc = scp_keystore_ca_issue(ks, label, v, NULL, 0, &pub, cn, 1, (int64_t)time(NULL) - 300,
                                   days, (uint64_t)serial, der, sizeof(der), &dl);
    scp_ec_free(&pub);
    if (rc == SCP_OK)
        rc = scp_cert_to_pem(der, dl, pem, sizeof(pem), &pl);
    if (rc == SCP_OK)
        rc = write_new(out, pem, pl);
    if (rc != SCP_OK)
        return scp_ks_cli_fail(c, rc, "ca cert");
    if (!c->o.json)
        printf("CA certificate \"%s\" of %s written to %s\n", cn, label, out);
    return SCP_EXIT_OK;
}

/* The subject's public key: a key of the keystore or a PEM/DER file (a
 * public key, or the last certificate of a file). */
static int subject_key(scp_cli *c, scp_keystore *ks, const char *key, const char *pubf,
                       scp_ec_key *pub)
{
    char label[SCP_KS_LABEL_MAX + 1];
    uint32_t v;
    int rc;
    if ((key == NULL) == (pubf == NULL))
        return scp_cli_fail(c, SCP_EXIT_USAGE, "ca issue: give --subject L[:V] (a keystore key) or --pub FILE");
    if (key != NULL) {
        if ((rc = parse_ref(c, "--subject", key, label, &v)) != SCP_EXIT_OK)
            return rc;
        rc = scp_keystore_ec_public(ks, label, v, pub);
        return rc == SCP_OK ? SCP_EXIT_OK : scp_ks_cli_fail(c, rc, "ca issue: --subject");
    }
    if (scp_ec_load_file(pub, pubf) == SCP_OK)
        return SCP_EXIT_OK;
    static uint8_t buf[8192];
    size_t off[SCP_CERT_MAX_CHAIN], lens[SCP_CERT_MAX_CHAIN], n = 0;
    scp_cert leaf;
    if (scp_cert_load_file(pubf, buf, sizeof(buf), off, lens, SCP_CERT_MAX_CHAIN, &n) == SCP_OK &&
        n > 0 && scp_cert_parse(&leaf, buf + off[n - 1], lens[n - 1]) == SCP_OK) {
        rc = leaf.ec.pkey != NULL ? scp_ec_dup(pub, &leaf.ec, 0) : SCP_E_FORMAT;
        scp_cert_free(&leaf);
        if (rc == SCP_OK)
            return SCP_EXIT_OK;
    }
    return scp_cli_fail(c, SCP_EXIT_LOCAL,
                        "--pub %s: no EC public key or certificate on P-256, P-384 or "
                        "brainpoolP256r1",
                        pubf);
}

static int ca_issue(scp_cli *c, scp_keystore *ks)
{
    const char *ca = scp_cli_take(c, "--ca"), *ca_cert = scp_cli_take(c, "--ca-cert");
    const char *key = scp_cli_take(c, "--subject"), *pubf = scp_cli_take(c, "--pub");
    int inter = scp_cli_flag(c, "--intermediate"), days, serial, rc;
    const char *cn, *out;
    char label[SCP_KS_LABEL_MAX + 1];
    static char pem[16384];
    static uint8_t chain[8192];
    uint8_t der[2048];
    size_t off[SCP_CERT_MAX_CHAIN], lens[SCP_CERT_MAX_CHAIN], n = 0, dl = 0, pl = 0, used = 0;
    uint32_t v;
    scp_ec_key pub = {0};
    if ((rc = parse_ref(c, "--ca", ca, label, &v)) != SCP_EXIT_OK ||
        (rc = cert_opts(c, &cn, &days, &serial, &out)) != SCP_EXIT_OK ||
        (rc = scp_cli_no_more(c, 3)) != SCP_EXIT_OK)
        return rc;
    if (ca_cert == NULL)
        return scp_cli_fail(c, SCP_EXIT_USAGE,
                            "ca issue: --ca-cert FILE (the CA's certificate, from `ca cert` or "
                            "its issuer; intermediates before it, leaf side last)");
    if (scp_cert_load_file(ca_cert, chain, sizeof(chain), off, lens, SCP_CERT_MAX_CHAIN, &n) !=
            SCP_OK ||
        n == 0)
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "--ca-cert %s: no certificate", ca_cert);
    if ((rc = subject_key(c, ks, key, pubf, &pub)) != SCP_EXIT_OK)
        return rc;
    /* the CA's certificate is the last of --ca-cert */
    rc = scp_keystore_ca_issue(ks, label, v, chain + off[n - 1], lens[n - 1], &pub, cn, inter,
                               (int64_t)time(NULL) - 300, days, (uint64_t)serial, der,
                               sizeof(der), &dl);
    scp_ec_free(&pub);
    if (rc != SCP_OK)
        return scp_ks_cli_fail(c, rc, "ca issue");
    /* the chain for --oce-chain: every non-self-signed certificate of
     * --ca-cert (intermediates), then the new one */
    for (size_t i = 0; i < n && rc == SCP_OK; i++) {
        scp_cert ci;
        int self = 0;
        if (scp_cert_parse(&ci, chain + off[i], lens[i]) == SCP_OK) {
            scp_trust t = {0};
            scp_cert_error e;
            self = scp_trust_add_bytes(&t, chain + off[i], lens[i]) == SCP_OK &&
                   scp_cert_verify_chain(&ci, 1, &t, (int64_t)time(NULL), 0, &e) == SCP_OK;
            scp_trust_free(&t);
            scp_cert_free(&ci);
        }
        if (!self) {
            rc = scp_cert_to_pem(chain + off[i], lens[i], pem + used, sizeof(pem) - used, &pl);
            used += pl;
        }
    }
    if (rc == SCP_OK)
        rc = scp_cert_to_pem(der, dl, pem + used, sizeof(pem) - used, &pl);
    if (rc == SCP_OK)
        rc = write_new(out, pem, used + pl);
    if (rc != SCP_OK)
        return scp_ks_cli_fail(c, rc, "ca issue");
    if (!c->o.json)
        printf("certificate \"%s\" issued by %s written to %s\n", cn, label, out);
    return SCP_EXIT_OK;
}

int scp_ks_cli_ca(scp_cli *c, scp_keystore *ks)
{
    const char *sub = c->o.argc > 2 ? c->o.argv[2] : "";
    if (strcmp(sub, "cert") == 0)
        return ca_cert(c, ks);
    if (strcmp(sub, "issue") == 0)
        return ca_issue(c, ks);
    return scp_cli_fail(c, SCP_EXIT_USAGE,
                        "keystore ca cert --ca L[:V] --cn NAME --out FILE [--days N] | "
                        "ca issue --ca L[:V] --ca-cert FILE (--subject L2[:V] | --pub FILE) --cn NAME "
                        "--out FILE [--intermediate]");
}

#endif /* SCP_HAVE_KEYS */
