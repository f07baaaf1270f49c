/* scpkit: AES-NI fast path. Until it lands, the OpenSSL path serves. */
#include "crypto/internal.h"

static int force_openssl;

void scp_aes_force_openssl(int on) { force_openssl = on; }
const char *scp_aes_impl(void) { return "openssl"; }

int scp_aesni_init(scp_aes *a, const uint8_t *key, size_t key_len)
{
    (void)a, (void)key, (void)key_len, (void)force_openssl;
    return SCP_E_UNSUPPORTED;
}
void scp_aesni_block(const scp_aes *a, const uint8_t in[16], uint8_t out[16])
{
    (void)a, (void)in, (void)out;
}
int scp_aesni_cbc_encrypt(const scp_aes *a, const uint8_t iv[16], const uint8_t *in,
                          size_t len, uint8_t *out)
{
    (void)a, (void)iv, (void)in, (void)len, (void)out;
    return SCP_E_UNSUPPORTED;
}
int scp_aesni_cbc_decrypt(const scp_aes *a, const uint8_t iv[16], const uint8_t *in,
                          size_t len, uint8_t *out)
{
    (void)a, (void)iv, (void)in, (void)len, (void)out;
    return SCP_E_UNSUPPORTED;
}
void scp_aesni_cbcmac(const scp_aes *a, uint8_t x[16], const uint8_t *p, size_t nblocks)
{
    (void)a, (void)x, (void)p, (void)nblocks;
}
