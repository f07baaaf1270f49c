#include "card_util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "scpkit/buf.h"
#include "scpkit/gp.h"

void tc_tmpdir(char *out, size_t size)
{
    const char *t = getenv("TMPDIR");
    snprintf(out, size, "%s/scpcard.XXXXXX", t ? t : "/tmp");
    if (mkdtemp(out) == NULL) {
        perror("mkdtemp");
        exit(2);
    }
}

void tc_rmdir(const char *dir)
{
    char p[4200];
    static const char *names[] = { "card.state", "card.state.tmp", "card.lock", "trace.txt" };
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
        snprintf(p, sizeof(p), "%s/%s", dir, names[k]);
        unlink(p);
    }
    rmdir(dir);
}

int tc_xfer(scp_card *c, const uint8_t *capdu, size_t len, tc_resp *r)
{
    size_t n = 0;
    int rc = scp_card_process(c, capdu, len, r->data, sizeof(r->data), &n);
    if (rc != 0 || n < 2) {
        r->len = 0;
        r->sw = 0;
        return rc != 0 ? rc : -1;
    }
    r->len = n - 2;
    r->sw = (uint16_t)((r->data[n - 2] << 8) | r->data[n - 1]);
    return 0;
}

int tc_xfer_hex(scp_card *c, const char *hex, tc_resp *r)
{
    uint8_t b[600];
    size_t n = 0;
    if (scp_hex_decode(hex, b, sizeof(b), &n) != 0)
        return -1;
    return tc_xfer(c, b, n, r);
}

uint16_t tc_sw(scp_card *c, const char *hex)
{
    tc_resp r;
    return tc_xfer_hex(c, hex, &r) == 0 ? r.sw : 0;
}

void tc_keys(scp03_keys *k, const uint8_t *key, size_t len, uint8_t kvn)
{
    memset(k, 0, sizeof(*k));
    memcpy(k->enc, key, len);
    memcpy(k->mac, key, len);
    memcpy(k->dek, key, len);
    k->key_len = (uint8_t)len;
    k->kvn = kvn;
}

void tc_factory(scp03_keys *k)
{
    uint8_t f[16];
    for (int j = 0; j < 16; j++)
        f[j] = (uint8_t)(0x40 + j);
    tc_keys(k, f, 16, 0xFF);
}

uint16_t tc_open_iu(scp_card *c, scp03_session *s, const scp03_keys *k, uint8_t iu_kvn,
                    uint8_t level, size_t chal_len, uint8_t *iu, size_t *iu_len)
{
    uint8_t b[300];
    size_t n = 0;
    tc_resp r;
    scp03_keys kk = *k;

    memset(s, 0, sizeof(*s));
    kk.kvn = iu_kvn;
    if (scp03_host_begin(s, &kk, NULL, chal_len) != 0 ||
        scp03_host_initialize_update(s, 0x80, b, sizeof(b), &n) != 0)
        return 0;
    if (tc_xfer(c, b, n, &r) != 0)
        return 0;
    if (r.sw != 0x9000)
        return r.sw;
    if (iu != NULL) {
        memcpy(iu, r.data, r.len);
        *iu_len = r.len;
    }
    if (scp03_host_iu_response(s, r.data, r.len) != 0)
        return 1; /* card cryptogram did not verify */
    if (scp03_host_external_authenticate(s, level, b, sizeof(b), &n) != 0)
        return 2;
    if (tc_xfer(c, b, n, &r) != 0)
        return 0;
    if (scp03_host_ea_result(s, r.sw) != 0 && r.sw == 0x9000)
        return 3;
    return r.sw;
}

uint16_t tc_open(scp_card *c, scp03_session *s, const scp03_keys *k, uint8_t iu_kvn,
                 uint8_t level, size_t chal_len)
{
    return tc_open_iu(c, s, k, iu_kvn, level, chal_len, NULL, NULL);
}

int tc_send(scp_card *c, scp03_session *s, const uint8_t *capdu, size_t len, tc_resp *r)
{
    uint8_t w[600], raw[1100];
    size_t n = 0, m = 0;
    tc_resp rr;
    if (scp03_host_wrap(s, capdu, len, w, sizeof(w), &n) != 0)
        return -1;
    if (tc_xfer(c, w, n, &rr) != 0)
        return -1;
    if (scp03_host_unwrap(s, rr.data, rr.len + 2, raw, sizeof(raw), &m) != 0 || m < 2)
        return -1;
    memcpy(r->data, raw, m - 2);
    r->len = m - 2;
    r->sw = (uint16_t)((raw[m - 2] << 8) | raw[m - 1]);
    return r->sw;
}

int tc_send_hex(scp_card *c, scp03_session *s, const char *hex, tc_resp *r)
{
    uint8_t b[600];
    size_t n = 0;
    if (scp_hex_decode(hex, b, sizeof(b), &n) != 0)
        return -1;
    return tc_send(c, s, b, n, r);
}

int tc_put_key(scp_card *c, scp03_session *s, const scp03_keys *dek, const scp03_keys *nk,
               uint8_t replace_kvn)
{
    uint8_t cmd[300];
    size_t n = 0;
    tc_resp r;
    cmd[0] = 0x80;
    cmd[1] = 0xD8;
    cmd[2] = replace_kvn;
    cmd[3] = 0x81;
    if (scp_gp_putkey_build(dek->dek, dek->key_len, nk, cmd + 5, sizeof(cmd) - 6, &n) != 0)
        return -1;
    cmd[4] = (uint8_t)n;
    cmd[5 + n] = 0x00;
    return tc_send(c, s, cmd, 6 + n, &r);
}

int tc_delete_key(scp_card *c, scp03_session *s, uint8_t kvn, uint8_t p2)
{
    uint8_t cmd[16] = { 0x80, 0xE4, 0x00, p2, 0x03, 0xD2, 0x01, kvn };
    tc_resp r;
    return tc_send(c, s, cmd, 8, &r);
}
