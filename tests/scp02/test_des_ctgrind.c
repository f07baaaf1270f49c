/* "ctgrind" for the constant-time DES (after Monocypher's and Adam
 * Langley's use of valgrind): keys and data are marked undefined, so
 * memcheck reports every branch and every memory address that depends on
 * them. Run under valgrind by CTest (tests/scp02/CMakeLists.txt).
 *  - no argument: src/crypto/des_ct.c, the retail MAC, 3DES-CBC, an SCP02
 *    C-MAC + C-DECRYPTION wrap and an ISO SM 3DES protect with every key
 *    schedule undefined: must be clean;
 *  - "openssl": OpenSSL's DES-EDE on the same inputs, the measured leak
 *    this code exists for (its S-box tables are indexed with key ^ data):
 *    valgrind must report it (the test expects the failure). */
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <valgrind/memcheck.h>

#include "scpkit/des.h"
#include "scpkit/iso7816sm.h"
#include "scpkit/scp02.h"

#define SECRET(p, n) VALGRIND_MAKE_MEM_UNDEFINED((p), (n))
#define PUBLIC(p, n) VALGRIND_MAKE_MEM_DEFINED((p), (n))

static int ours(void)
{
    uint8_t key[16], in[32], out[64], zero[8] = { 0 }, mac[8];
    scp_des3 d;
    scp02_session h = { 0 }, c = { 0 };
    scp02_keys k;
    scp02_card_params prm = { 0 };
    scp_sm sm;
    size_t n, rn;
    uint8_t buf[64], resp[64];

    memset(key, 0x5A, sizeof(key));
    memset(in, 0x33, sizeof(in));
    SECRET(key, sizeof(key));
    SECRET(in, sizeof(in));
    if (scp_des3_init(&d, key, 16) != SCP_OK)
        return 2;
    scp_des3_encrypt(&d, in, out);
    scp_des3_decrypt(&d, in, out + 8);
    if (scp_des_retail_mac(&d, zero, in, 32, mac) != SCP_OK ||
        scp_des3_cbc_encrypt(&d, zero, in, 32, out + 16) != SCP_OK ||
        scp_des3_cbc_decrypt(&d, zero, in, 32, out + 16) != SCP_OK)
        return 3;
    PUBLIC(out, sizeof(out));
    PUBLIC(mac, sizeof(mac));

    /* an SCP02 session (public handshake), then its session keys secret */
    memset(k.enc, 0x40, 16);
    memset(k.mac, 0x41, 16);
    memset(k.dek, 0x42, 16);
    k.kvn = 1;
    prm.i = 0x15;
    prm.seq = 7;
    prm.fixed_card_chal = (const uint8_t *)"\x01\x02\x03\x04\x05\x06";
    if (scp02_host_begin(&h, &k, 0x15, zero) || scp02_host_initialize_update(&h, 0x80, buf, 64, &n) ||
        scp02_card_initialize_update(&c, &prm, &k, zero, 8, resp, 64, &rn) ||
        scp02_host_iu_response(&h, resp, rn, NULL, 0) ||
        scp02_host_external_authenticate(&h, 0x03, buf, 64, &n) || scp02_host_ea_result(&h, 0x9000))
        return 4;
    SECRET(&h.s_enc, sizeof(h.s_enc));
    SECRET(&h.s_cmac, sizeof(h.s_cmac));
    SECRET(h.chain.u.scp02.cmac, sizeof(h.chain.u.scp02.cmac));
    static const uint8_t cmd[] = { 0x80, 0xE2, 0x90, 0x00, 0x10, 1, 2, 3, 4, 5, 6, 7, 8,
                                   9, 10, 11, 12, 13, 14, 15, 16 };
    if (scp02_host_wrap(&h, cmd, sizeof(cmd), buf, sizeof(buf), &n) != SCP_OK)
        return 5;
    PUBLIC(buf, sizeof(buf));

    /* ISO SM, 3DES family: protect with secret session keys */
    if (scp_sm_init(&sm, SCP_SM_3DES, SCP_SM_HOST, k.enc, k.mac, 16, zero, 8) != SCP_OK)
        return 6;
    SECRET(&sm.des_enc, sizeof(sm.des_enc));
    SECRET(&sm.des_mac, sizeof(sm.des_mac));
    if (scp_sm_protect_command(&sm, cmd, sizeof(cmd), out, sizeof(out), &n) != SCP_OK)
        return 7;
    PUBLIC(out, sizeof(out));
    scp_sm_end(&sm);
    scp02_end(&h);
    scp02_end(&c);
    scp_des3_clear(&d);
    printf("test_des_ctgrind: constant-time DES paths ran on undefined secrets\n");
    return 0;
}

static int openssl_des(void)
{
    uint8_t key[16], in[16], out[16];
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n = 0;
    memset(key, 0x5A, sizeof(key));
    memset(in, 0x33, sizeof(in));
    SECRET(key, sizeof(key));
    SECRET(in, sizeof(in));
    if (c == NULL || EVP_EncryptInit_ex(c, EVP_des_ede_ecb(), NULL, key, NULL) != 1)
        return 2;
    EVP_CIPHER_CTX_set_padding(c, 0);
    if (EVP_EncryptUpdate(c, out, &n, in, 16) != 1)
        return 3;
    EVP_CIPHER_CTX_free(c);
    PUBLIC(out, sizeof(out));
    printf("test_des_ctgrind openssl: ran (valgrind must have reported it)\n");
    return 0;
}

int main(int argc, char **argv)
{
    return argc > 1 && strcmp(argv[1], "openssl") == 0 ? openssl_des() : ours();
}
