/* A self-signed lab certificate for `ota init --self-signed HOST`, made
 * with the OpenSSL API: P-256 key, SHA-256, SAN DNS:HOST and IP:127.0.0.1,
 * one year. Both files are written new (temporary file, fsync, rename);
 * the key is 0600. A production server is given its own key and chain. */
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ota/ota.h"
#include "scpkit/crypto.h"

static int add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *e;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!e)
        return 0;
    int ok = X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    return ok;
}

/* Write via a temporary file, fsync, rename: a crash leaves the old file
 * or the new one, never half of one. */
static int write_pem(const char *path, mode_t mode, int (*put)(FILE *, void *), void *obj)
{
    char tmp[4096];
    int fd, ok;
    FILE *f;
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
        return 0;
    unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, mode);
    if (fd < 0)
        return 0;
    f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(tmp);
        return 0;
    }
    ok = put(f, obj) && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return 0;
    }
    return 1;
}

static int put_key(FILE *f, void *k)
{
    return PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
}
static int put_cert(FILE *f, void *x)
{
    return PEM_write_X509(f, x);
}

int ota_tls_selfsigned(const char *host, const char *cert_path, const char *key_path, char *err,
                       size_t err_size)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *nm;
    char san[300];
    int rc = SCP_E_CRYPTO;

    if (!k || !x || strlen(host) > 200) {
        snprintf(err, err_size, "cannot make a key");
        goto out;
    }
    snprintf(san, sizeof(san), "DNS:%s,IP:127.0.0.1", host);
    X509_set_version(x, 2);
    {
        unsigned char serial[16];
        BIGNUM *bn;
        if (scp_random(serial, sizeof(serial)) != SCP_OK)
            goto out;
        serial[0] &= 0x7F;
        bn = BN_bin2bn(serial, sizeof(serial), NULL);
        if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x))) {
            BN_free(bn);
            goto out;
        }
        BN_free(bn);
    }
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 365L * 24 * 3600);
    X509_set_pubkey(x, k);
    nm = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(nm, "O", MBSTRING_ASC, (const unsigned char *)"scpkit lab", -1, -1, 0);
    X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)host, -1, -1, 0);
    X509_set_issuer_name(x, nm);
    if (!add_ext(x, NID_subject_alt_name, san) ||
        !add_ext(x, NID_basic_constraints, "critical,CA:TRUE") ||
        !add_ext(x, NID_key_usage, "critical,digitalSignature,keyCertSign") ||
        !add_ext(x, NID_ext_key_usage, "serverAuth") || !X509_sign(x, k, EVP_sha256())) {
        snprintf(err, err_size, "cannot make the certificate");
        goto out;
    }
    if (!write_pem(key_path, 0600, put_key, k) || !write_pem(cert_path, 0644, put_cert, x)) {
        snprintf(err, err_size, "cannot write %s / %s", key_path, cert_path);
        rc = SCP_E_IO;
        goto out;
    }
    rc = SCP_OK;
out:
    X509_free(x);
    EVP_PKEY_free(k);
    return rc;
}

/* A device's TLS PSK (the PSK-TLS listener, fact sheet §8): diversified
 * inside the keystore's token from `master` ("LABEL:VERSION", an AES key
 * kept for this use only) with the project's SP 800-108 diversification,
 * over a 10-byte context bound to the device id:
 *   KDD = SHA-256("scpkit ota psk v1" || 00 || device id)[0..9]
 *   PSK = the first derived key (16 bytes)
 * Nothing is stored: the server derives it at each handshake; `ota device
 * psk` writes the device's provisioning copy. The caller wipes psk. */
int ota_tls_psk(scp_keystore *ks, const char *master, const char *dev, uint8_t psk[16])
{
    static const char tag[] = "scpkit ota psk v1";
    char label[SCP_KS_LABEL_MAX + 1];
    uint8_t h[32];
    unsigned int hl = sizeof(h);
    uint32_t version;
    scp03_keys k;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int rc = scp_ks_parse_ref(master, label, &version);
    if (rc == SCP_OK && version == 0)
        rc = SCP_E_ARG;
    if (rc == SCP_OK &&
        (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL) ||
         !EVP_DigestUpdate(md, tag, sizeof(tag)) || /* with its NUL: the separator */
         !EVP_DigestUpdate(md, dev, strlen(dev)) || !EVP_DigestFinal_ex(md, h, &hl)))
        rc = SCP_E_CRYPTO;
    EVP_MD_CTX_free(md);
    memset(&k, 0, sizeof(k));
    if (rc == SCP_OK)
        rc = scp_keystore_derive(ks, label, version, SCP_DIV_SP800_108, h, SCP03_KDD_LEN, 1, &k);
    if (rc == SCP_OK && k.key_len < 16)
        rc = SCP_E_CRYPTO;
    if (rc == SCP_OK)
        memcpy(psk, k.enc, 16);
    scp_wipe(&k, sizeof(k));
    return rc;
}
