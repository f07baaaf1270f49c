/* SCP02 PUT KEY key data (GPC v2.2.1 11.8.2.3 and E.4.7): each key
 * encrypted with the session DEK (3DES-ECB), with its key check value.
 * DES keys (type 80) keep the card on SCP02; AES-128 keys (type 88) move
 * a card that also runs SCP03 over to it. */
#include <string.h>

#include "scp02/internal.h"
#include "scpkit/buf.h"

int scp02_kcv(uint8_t type, const uint8_t key[16], uint8_t out[3])
{
    uint8_t zero[8] = { 0 }, b[8];
    scp_des3 d;
    if (type == SCP02_PUTKEY_AES)
        return scp_kcv_aes(key, 16, out);
    /* the DES KCV runs on the constant-time DES too: the key is secret */
    GUARD(scp_des3_init(&d, key, 16));
    scp_des3_encrypt(&d, zero, b);
    scp_des3_clear(&d);
    memcpy(out, b, 3);
    scp_wipe(b, sizeof(b));
    return SCP_OK;
}

int scp02_putkey_build(const scp02_session *s, uint8_t key_type, uint8_t new_kvn,
                       const uint8_t enc[16], const uint8_t mac[16], const uint8_t dek[16],
                       uint8_t *out, size_t out_size, size_t *out_len)
{
    const uint8_t *keys[3] = { enc, mac, dek };
    size_t pos = 0;
    int rc = SCP_OK;
    ENSURE(s != NULL && enc && mac && dek && out && out_len, SCP_E_ARG);
    ENSURE(s->state == SCP02_OPEN, SCP_E_STATE);
    ENSURE(key_type == SCP02_PUTKEY_DES || key_type == SCP02_PUTKEY_AES, SCP_E_UNSUPPORTED);
    ENSURE(out_size >= 1 + 3 * (key_type == SCP02_PUTKEY_AES ? 23u : 22u),
           SCP_E_BUFFER_TOO_SMALL);
    out[pos++] = new_kvn;
    for (int k = 0; k < 3 && rc == SCP_OK; k++) {
        out[pos++] = key_type;
        if (key_type == SCP02_PUTKEY_AES)
            out[pos++] = 0x11; /* Amd D 7.2: length of the key data, then the key length */
        out[pos++] = 0x10;
        rc = scp_des3_ecb(&s->s_dek, 0, keys[k], 16, out + pos);
        pos += 16;
        out[pos++] = 0x03;
        if (rc == SCP_OK)
            rc = scp02_kcv(key_type, keys[k], out + pos);
        pos += 3;
    }
    if (rc != SCP_OK) {
        scp_wipe(out, pos);
        return rc;
    }
    *out_len = pos;
    return SCP_OK;
}

static int parse_one(const scp02_session *s, scp_rd *r, uint8_t *type, uint8_t key[16])
{
    uint8_t t, l, want[3];
    const uint8_t *ct, *kv;
    GUARD(scp_rd_u8(r, &t));
    ENSURE(t == SCP02_PUTKEY_DES || t == SCP02_PUTKEY_AES, SCP_E_UNSUPPORTED);
    ENSURE(*type == 0 || *type == t, SCP_E_UNSUPPORTED);
    *type = t;
    GUARD(scp_rd_u8(r, &l));
    if (t == SCP02_PUTKEY_AES && l == 0x11)
        GUARD(scp_rd_u8(r, &l));
    ENSURE(l == 0x10, SCP_E_LENGTH);
    GUARD(scp_rd_ptr(r, 16, &ct));
    GUARD(scp_rd_u8(r, &l));
    ENSURE(l == 3, SCP_E_FORMAT);
    GUARD(scp_rd_ptr(r, 3, &kv));
    GUARD(scp_des3_ecb(&s->s_dek, 1, ct, 16, key));
    GUARD(scp02_kcv(t, key, want));
    ENSURE(scp_ct_eq(want, kv, 3), SCP_E_KCV);
    return SCP_OK;
}

int scp02_putkey_parse(const scp02_session *s, const uint8_t *data, size_t len, uint8_t *new_kvn,
                       uint8_t *key_type, uint8_t enc[16], uint8_t mac[16], uint8_t dek[16])
{
    uint8_t *keys[3] = { enc, mac, dek };
    scp_rd r;
    int rc = SCP_OK;
    ENSURE(s != NULL && data && new_kvn && key_type && enc && mac && dek, SCP_E_ARG);
    ENSURE(s->state == SCP02_OPEN, SCP_E_STATE);
    *key_type = 0;
    scp_rd_init(&r, data, len);
    rc = scp_rd_u8(&r, new_kvn);
    for (int k = 0; k < 3 && rc == SCP_OK; k++)
        rc = parse_one(s, &r, key_type, keys[k]);
    if (rc == SCP_OK && scp_rd_left(&r) != 0)
        rc = SCP_E_LENGTH;
    if (rc != SCP_OK) {
        for (int k = 0; k < 3; k++)
            scp_wipe(keys[k], 16);
    }
    return rc;
}
