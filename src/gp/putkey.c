/* GlobalPlatform key management data: PUT KEY for an AES key set (GPC
 * v2.3 11.8.2.3, Amd D 7.2) and DELETE KEY (GPC 11.2.2.3).
 *
 * One AES key data block (Amd D 7.2.2, GPC Tables 11-68 / 11-70):
 *   88 | L | n | AES-CBC(static DEK, IV = 0, key | pad) | 03 | KCV
 * with n the clear key length, L = 1 + ciphertext length, and KCV the first
 * three bytes of AES(key, 16 x 01).
 *
 * Formats in the field, and what we do:
 * - GlobalPlatformPro (GPSession.encodeKey) sends "88 <ct+1> <n> <ct> 03
 *   <kcv>" for every AES key: the form we send.
 * - yubikit (yubikit/securitydomain.py put_key) sends "88 10 <ct> 03 <kcv>"
 *   for AES-128, and pySim (global_platform encrypt_key) does the same for
 *   any key that fills whole blocks: no length byte, as GPC Table 11-71
 *   allows. We accept it for 16- and 32-byte keys.
 * - AES-192 (24 bytes, not a whole number of blocks): pySim
 *   (pySim/global_platform/scp.py encrypt_key, GPC Table 11-70) right-pads
 *   the key with 8 zero bytes to 32 and prefixes the clear length (18),
 *   giving "88 21 18 <32 ct> 03 <kcv>". GlobalPlatformPro pads with
 *   random bytes to (n mod 16 + 1) * n bytes: exact for 16 and 32, but 216
 *   bytes for AES-192, not a whole number of AES blocks, so it is no
 *   reference there. We follow pySim with zero padding (deterministic
 *   output) and, when parsing, ignore the padding bytes' values (the card
 *   has the clear length; a sender may pad with random bytes).
 * The two accepted forms are told apart by L: L mod 16 = 1 means a length
 * byte comes first, L mod 16 = 0 means none. */
#include <string.h>

#include "scpkit/gp.h"
#include "crypto/aes.h"
#include "scpkit/buf.h"
#include "core/guard.h"

#define PK_TAG_KCV_LEN 3
#define PK_CT_MAX 32

static const uint8_t zero_iv[SCP_AES_BLOCK];

static int aes_len_ok(size_t n) { return n == 16 || n == 24 || n == 32; }
/* Ciphertext length: the key rounded up to whole AES blocks. */
static size_t ct_len(size_t n) { return (n + 15) & ~(size_t)15; }

static int put_one(scp_wr *w, const scp_aes *dek, const uint8_t *key, size_t n)
{
    uint8_t pt[PK_CT_MAX] = { 0 }, ct[PK_CT_MAX], kcv[SCP_KCV_LEN];
    size_t m = ct_len(n);
    int rc;

    memcpy(pt, key, n);
    GUARD_GOTO(scp_aes_cbc_encrypt(dek, zero_iv, pt, m, ct), out);
    GUARD_GOTO(scp_kcv_aes(key, n, kcv), out);
    scp_wr_u8(w, SCP_GP_KEY_TYPE_AES);
    scp_wr_u8(w, (uint8_t)(m + 1));
    scp_wr_u8(w, (uint8_t)n);
    scp_wr_bytes(w, ct, m);
    scp_wr_u8(w, PK_TAG_KCV_LEN);
    scp_wr_bytes(w, kcv, sizeof(kcv));
out:
    scp_wipe(pt, sizeof(pt));
    return rc;
}

int scp_gp_putkey_build(const uint8_t *dek, size_t dek_len, const scp03_keys *new_keys,
                        uint8_t *out, size_t out_size, size_t *out_len)
{
    scp_aes a = { 0 };
    scp_wr w;
    int rc;

    ENSURE(dek != NULL && new_keys != NULL && out_len != NULL, SCP_E_ARG);
    ENSURE(aes_len_ok(dek_len) && aes_len_ok(new_keys->key_len), SCP_E_ARG);
    GUARD(scp_aes_init(&a, dek, dek_len));
    scp_wr_init(&w, out, out_size);
    scp_wr_u8(&w, new_keys->kvn);
    /* key ids 1, 2, 3 in this order (GPC 11.8.2.2: P2 = 81, ids ascending) */
    GUARD_GOTO(put_one(&w, &a, new_keys->enc, new_keys->key_len), out);
    GUARD_GOTO(put_one(&w, &a, new_keys->mac, new_keys->key_len), out);
    GUARD_GOTO(put_one(&w, &a, new_keys->dek, new_keys->key_len), out);
    rc = scp_wr_done(&w, out_len);
out:
    scp_aes_clear(&a);
    if (rc < 0 && out != NULL)
        scp_wipe(out, out_size);
    return rc;
}

/* Read the header of one key data block: its clear length n and
 * ciphertext length m. */
static int get_header(scp_rd *r, size_t *n, size_t *m)
{
    uint8_t type, l, kl;

    GUARD(scp_rd_u8(r, &type));
    ENSURE(type == SCP_GP_KEY_TYPE_AES, SCP_E_UNSUPPORTED);
    GUARD(scp_rd_u8(r, &l));
    /* GPC 11.8.2.3.1: lengths are BER; ours are always one byte < 80 */
    ENSURE(l < 0x80, SCP_E_FORMAT);
    if (l % 16 == 1) {
        GUARD(scp_rd_u8(r, &kl));
        ENSURE(aes_len_ok(kl) && ct_len(kl) == (size_t)l - 1, SCP_E_LENGTH);
        *n = kl;
        *m = (size_t)l - 1;
    } else {
        ENSURE(l == 16 || l == 32, SCP_E_LENGTH);
        *n = *m = l;
    }
    return SCP_OK;
}

static int get_one(scp_rd *r, const scp_aes *dek, uint8_t *key, size_t *key_len)
{
    uint8_t pt[PK_CT_MAX], kcv[SCP_KCV_LEN], kcv_len;
    const uint8_t *ct, *want;
    size_t n, m;
    int rc;

    GUARD(get_header(r, &n, &m));
    GUARD(scp_rd_ptr(r, m, &ct));
    GUARD(scp_rd_u8(r, &kcv_len));
    /* Amd D 7.2.2: an AES key always comes with its 3-byte KCV */
    ENSURE(kcv_len == PK_TAG_KCV_LEN, SCP_E_FORMAT);
    GUARD(scp_rd_ptr(r, PK_TAG_KCV_LEN, &want));
    GUARD_GOTO(scp_aes_cbc_decrypt(dek, zero_iv, ct, m, pt), out);
    GUARD_GOTO(scp_kcv_aes(pt, n, kcv), out);
    rc = scp_ct_eq(kcv, want, SCP_KCV_LEN) ? SCP_OK : SCP_E_KCV;
    if (rc == SCP_OK) {
        memcpy(key, pt, n);
        *key_len = n;
    }
out:
    scp_wipe(pt, sizeof(pt));
    return rc;
}

int scp_gp_putkey_parse(const uint8_t *dek, size_t dek_len, const uint8_t *data, size_t len,
                        scp03_keys *keys)
{
    uint8_t *dst[3];
    size_t n[3] = { 0 };
    scp_aes a = { 0 };
    scp_rd r;
    int rc;

    ENSURE(keys != NULL, SCP_E_ARG);
    scp_wipe(keys, sizeof(*keys));
    ENSURE(dek != NULL && aes_len_ok(dek_len) && (data != NULL || len == 0), SCP_E_ARG);
    GUARD(scp_aes_init_dec(&a, dek, dek_len));
    dst[0] = keys->enc, dst[1] = keys->mac, dst[2] = keys->dek;
    scp_rd_init(&r, data, len);
    GUARD_GOTO(scp_rd_u8(&r, &keys->kvn), out);
    for (int i = 0; i < 3; i++)
        GUARD_GOTO(get_one(&r, &a, dst[i], &n[i]), out);
    /* one key set: three keys of one length, and nothing after them */
    rc = (n[0] == n[1] && n[1] == n[2]) ? SCP_OK : SCP_E_UNSUPPORTED;
    if (rc == SCP_OK && scp_rd_left(&r) != 0)
        rc = SCP_E_LENGTH;
    keys->key_len = (uint8_t)n[0];
out:
    scp_aes_clear(&a);
    if (rc < 0)
        scp_wipe(keys, sizeof(*keys));
    return rc;
}

/* GPC 11.2.2.3, Table 11-24: DELETE [key] data is 'D0' Key Identifier
 * and/or 'D2' Key Version Number, one byte each. (Checked against yubikit
 * securitydomain.py delete_key and pySim's do_delete_key, which both send
 * D0 for the key id and D2 for the KVN.) */
#define DK_TAG_KID 0xD0
#define DK_TAG_KVN 0xD2

int scp_gp_deletekey_build(uint8_t kvn, uint8_t key_id, uint8_t *out, size_t out_size,
                           size_t *out_len)
{
    scp_wr w;

    ENSURE(out_len != NULL && (kvn != 0 || key_id != 0), SCP_E_ARG);
    scp_wr_init(&w, out, out_size);
    if (key_id != 0) {
        scp_wr_u8(&w, DK_TAG_KID);
        scp_wr_u8(&w, 1);
        scp_wr_u8(&w, key_id);
    }
    if (kvn != 0) {
        scp_wr_u8(&w, DK_TAG_KVN);
        scp_wr_u8(&w, 1);
        scp_wr_u8(&w, kvn);
    }
    return scp_wr_done(&w, out_len);
}

static int deletekey_walk(scp_rd *r, uint8_t *kvn, uint8_t *key_id)
{
    uint8_t tag, l, v, *slot;

    while (scp_rd_left(r) > 0) {
        GUARD(scp_rd_u8(r, &tag));
        GUARD(scp_rd_u8(r, &l));
        ENSURE(tag == DK_TAG_KID || tag == DK_TAG_KVN, SCP_E_FORMAT);
        ENSURE(l == 1, SCP_E_LENGTH);
        GUARD(scp_rd_u8(r, &v));
        slot = tag == DK_TAG_KID ? key_id : kvn;
        /* each tag once; 0 would read as "absent" */
        ENSURE(*slot == 0 && v != 0, SCP_E_FORMAT);
        *slot = v;
    }
    return SCP_OK;
}

int scp_gp_deletekey_parse(const uint8_t *data, size_t len, uint8_t *kvn, uint8_t *key_id)
{
    scp_rd r;
    int rc;

    ENSURE(kvn != NULL && key_id != NULL && (data != NULL || len == 0), SCP_E_ARG);
    *kvn = *key_id = 0;
    ENSURE(len > 0, SCP_E_FORMAT);
    scp_rd_init(&r, data, len);
    rc = deletekey_walk(&r, kvn, key_id);
    if (rc < 0)
        *kvn = *key_id = 0;
    return rc;
}
