/* scp_bench: SCP11 session set-up (issue 16) per curve, against the
 * elliptic-curve work the protocol cannot avoid, done directly with
 * OpenSSL EVP in the same run (runs alternated, so load hits both alike).
 *
 * Set-up, host and card engines in process:
 *   11b: host: keygen eSK.OCE, SD certificate parsed and verified (ECDSA),
 *        2 ECDH; card: keygen eSK.SD, 2 ECDH; KDF, receipt, sessions.
 *   11a: the same, and the card parses and verifies the OCE certificate
 *        (ECDSA) and the host uses its static SK.OCE.
 * Floor: exactly those keygens, ECDHs and ECDSA verifications through
 * EVP_PKEY_Q_keygen / EVP_PKEY_derive / EVP_DigestVerify on keys already
 * decoded, nothing else. */
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "report.h"
#include "scpkit/cert.h"
#include "scpkit/scp11.h"

typedef struct s11_job {
    int variant, curve;
    scp_ec_key sk_sd, sk_oce, ca;
    uint8_t sd_cert[1024], oce_cert[1024];
    size_t sd_len, oce_len;
    /* floor inputs: OpenSSL objects, decoded once */
    EVP_PKEY *peer, *own, *ca_pk;
    uint8_t tbs[512], sig[128];
    size_t tbs_len, sig_len;
} s11_job;

static void setup_once(void *p)
{
    s11_job *j = p;
    scp11_params prm = { (uint8_t)j->variant, scp11_default_kid(j->variant), 1, 16, 8, 0 };
    scp11_session h = { 0 }, c = { 0 };
    scp11_auth_cmd cmd;
    scp11_card_keys ck = { &j->sk_sd, NULL, NULL, 8, 0 };
    scp_trust t = { 0 };
    scp_cert sd, oce;
    scp_cert_error err;
    uint8_t a[256], b[256];
    size_t n, m;

    /* host: the SD's certificate against the anchor */
    bench_must(scp_cert_parse(&sd, j->sd_cert, j->sd_len), "sd cert");
    bench_must(scp_trust_add_ec(&t, &j->ca), "trust");
    bench_must(scp_cert_verify_chain(&sd, 1, &t, (int64_t)time(NULL), SCP_KU_KEY_AGREEMENT, &err),
               "sd chain");
    if (j->variant == SCP11_A) { /* card: the OCE's certificate (PSO) */
        bench_must(scp_cert_parse(&oce, j->oce_cert, j->oce_len), "oce cert");
        bench_must(scp_cert_verify_chain(&oce, 1, &t, (int64_t)time(NULL), SCP_KU_KEY_AGREEMENT,
                                         &err),
                   "oce chain");
        ck.pk_oce = &oce.ec;
    }
    bench_must(scp11_host_begin(&h, &prm, &sd.ec, j->variant == SCP11_A ? &j->sk_oce : NULL,
                                NULL),
               "host begin");
    bench_must(scp11_host_auth_command(&h, 0x80, a, sizeof(a), &n), "auth command");
    bench_must(scp11_auth_parse(a, n, &cmd), "auth parse");
    bench_must(scp11_card_authenticate(&c, &ck, &cmd, b, sizeof(b), &m), "card auth");
    bench_must(scp11_host_auth_response(&h, b, m), "host response");
    scp11_end(&h), scp11_end(&c);
    if (j->variant == SCP11_A)
        scp_cert_free(&oce);
    scp_cert_free(&sd);
    scp_trust_free(&t);
}

static void derive(EVP_PKEY *own, EVP_PKEY *peer)
{
    uint8_t z[64];
    size_t zl = sizeof(z);
    EVP_PKEY_CTX *x = EVP_PKEY_CTX_new_from_pkey(NULL, own, NULL);
    bench_must(x != NULL && EVP_PKEY_derive_init(x) == 1 && EVP_PKEY_derive_set_peer(x, peer) == 1 &&
                       EVP_PKEY_derive(x, z, &zl) == 1
                   ? SCP_OK
                   : SCP_E_CRYPTO,
               "floor derive");
    EVP_PKEY_CTX_free(x);
}

static void verify(s11_job *j)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bench_must(md != NULL &&
                       EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, NULL, j->ca_pk, NULL) ==
                           1 &&
                       EVP_DigestVerify(md, j->sig, j->sig_len, j->tbs, j->tbs_len) == 1
                   ? SCP_OK
                   : SCP_E_CRYPTO,
               "floor verify");
    EVP_MD_CTX_free(md);
}

static void floor_once(void *p)
{
    s11_job *j = p;
    const char *g = j->curve == SCP_EC_P256 ? "prime256v1"
                    : j->curve == SCP_EC_P384 ? "secp384r1"
                                               : "brainpoolP256r1";
    EVP_PKEY *eh = EVP_PKEY_Q_keygen(NULL, NULL, "EC", g); /* host ephemeral */
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", g); /* card ephemeral */
    bench_must(eh != NULL && ec != NULL ? SCP_OK : SCP_E_CRYPTO, "floor keygen");
    verify(j); /* host: the SD certificate */
    derive(eh, ec), derive(eh, j->peer); /* host: ShSee, ShSes */
    derive(ec, eh), derive(j->own, eh);  /* card: ShSee, ShSes */
    if (j->variant == SCP11_A)
        verify(j); /* card: the OCE certificate */
    EVP_PKEY_free(eh), EVP_PKEY_free(ec);
}

static void job_make(s11_job *j, int variant, int curve)
{
    scp_cert c;
    memset(j, 0, sizeof(*j));
    j->variant = variant, j->curve = curve;
    bench_must(scp_ec_generate(&j->sk_sd, curve), "keygen");
    bench_must(scp_ec_generate(&j->sk_oce, curve), "keygen");
    bench_must(scp_ec_generate(&j->ca, SCP_EC_P256), "keygen");
    bench_must(scp_cert_issue(&j->sk_sd, "SD", &j->ca, NULL, 0, 0, (int64_t)time(NULL) - 60, 30, 2,
                              j->sd_cert, sizeof(j->sd_cert), &j->sd_len),
               "issue");
    bench_must(scp_cert_issue(&j->sk_oce, "OCE", &j->ca, NULL, 0, 0, (int64_t)time(NULL) - 60, 30,
                              3, j->oce_cert, sizeof(j->oce_cert), &j->oce_len),
               "issue");
    /* floor inputs: a signature over a certificate-sized message */
    bench_must(scp_cert_parse(&c, j->sd_cert, j->sd_len), "parse");
    j->tbs_len = j->sd_len > 300 ? 300 : j->sd_len;
    memcpy(j->tbs, j->sd_cert, j->tbs_len);
    bench_must(scp_ecdsa_sign(&j->ca, j->tbs, j->tbs_len, j->sig, sizeof(j->sig), &j->sig_len),
               "sign");
    scp_cert_free(&c);
    j->peer = EVP_PKEY_dup((EVP_PKEY *)j->sk_sd.pkey); /* PK.SD (its private half unused) */
    j->own = EVP_PKEY_dup((EVP_PKEY *)j->sk_sd.pkey);
    j->ca_pk = EVP_PKEY_dup((EVP_PKEY *)j->ca.pkey);
    bench_must(j->peer && j->own && j->ca_pk ? SCP_OK : SCP_E_CRYPTO, "dup");
}

static void job_free(s11_job *j)
{
    scp_ec_free(&j->sk_sd), scp_ec_free(&j->sk_oce), scp_ec_free(&j->ca);
    EVP_PKEY_free(j->peer), EVP_PKEY_free(j->own), EVP_PKEY_free(j->ca_pk);
}

void bench_scp11(void)
{
    static const int curves[] = { SCP_EC_P256, SCP_EC_P384, SCP_EC_BP256 };
    static const char *notes[2][3] = {
        { "11a, P-256; floor: 2 keygens, 4 ECDH, 2 ECDSA verifies (EVP)",
          "11a, P-384; floor: 2 keygens, 4 ECDH, 2 ECDSA verifies (EVP)",
          "11a, brainpoolP256r1; floor: 2 keygens, 4 ECDH, 2 ECDSA verifies (EVP)" },
        { "11b, P-256; floor: 2 keygens, 4 ECDH, 1 ECDSA verify (EVP)",
          "11b, P-384; floor: 2 keygens, 4 ECDH, 1 ECDSA verify (EVP)",
          "11b, brainpoolP256r1; floor: 2 keygens, 4 ECDH, 1 ECDSA verify (EVP)" },
    };
    for (int v = 0; v < 2; v++)
        for (size_t ci = 0; ci < 3; ci++) {
            s11_job j;
            bench_row r = { 0 };
            unsigned long before;
            job_make(&j, v == 0 ? SCP11_A : SCP11_B, curves[ci]);
            r.op = v == 0 ? "scp11a-setup" : "scp11b-setup";
            r.key_bits = 128, r.s16 = 0, r.n = -1;
            r.ossl_path_ns = r.evp_kept_ns = r.evp_fresh_ns = -1;
            bench_pair(setup_once, &j, floor_once, &j, &r.ns, &r.floor_ns);
            r.per_sec = 1e9 / r.ns;
            before = bench_allocs;
            setup_once(&j);
            r.allocs = bench_allocs_counted() ? (double)(bench_allocs - before) : -1;
            r.note = notes[v][ci];
            report_row(&r);
            job_free(&j);
        }
}
