/* scpkit keys list|put|delete|rotate: the card's SCP03 key sets (GPC 11.8
 * PUT KEY, 11.2 DELETE, 11.3.3.1 key information template). New keys are
 * never printed: generated keys go to a 0600 key file written BEFORE the
 * card is changed, so a crash can never leave keys only on the card. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "scpkit/gp.h"
#include "scpkit/tlv.h"

const char *scp_cli_key_type(uint8_t type)
{
    switch (type) {
    case SCP_GP_KEY_TYPE_AES: return "AES";
    case SCP_GP_KEY_TYPE_DES: return "DES";
    case 0xB0: return "EC public";  /* SCP11 OCE CA keys (GPC Amd F) */
    case 0xB1: return "EC private"; /* SCP11 SD key pairs */
    default: return "other";
    }
}

int scp_cli_read_keyinfo(scp_cli *c, scp_cli_keyinfo *out, size_t max, size_t *n, uint16_t *sw)
{
    uint8_t buf[512];
    size_t len;
    scp_tlv t;
    scp_rd r;
    int rc = scp_cli_get_data(c, 0x00E0, buf, sizeof(buf), &len, sw);
    *n = 0;
    if (rc != SCP_EXIT_OK || *sw != 0x9000)
        return rc;
    scp_rd_init(&r, buf, len);
    if (scp_tlv_find(buf, len, 0xE0, &t) == 1)
        scp_rd_init(&r, t.val, t.len);
    /* C0 { key id, kvn, (type, length)+ } */
    while (*n < max && scp_tlv_next(&r, &t) == 1) {
        if (t.tag != 0xC0 || t.len < 4)
            continue;
        out[*n].id = t.val[0];
        out[*n].kvn = t.val[1];
        out[*n].type = t.val[2];
        out[*n].len = t.val[3];
        out[*n].curve_ref = 0xFF;
        for (size_t p = 4; p + 1 < t.len; p += 2) /* more (type, length) pairs */
            if (t.val[p] == 0xF0)
                out[*n].curve_ref = t.val[p + 1];
        (*n)++;
    }
    return SCP_EXIT_OK;
}

/* Does the card (per its key information) hold this KVN? -1: unknown. */
static int holds(scp_cli *c, uint8_t kvn)
{
    scp_cli_keyinfo ki[SCP_CLI_KEYINFO_MAX];
    size_t n;
    uint16_t sw;
    if (scp_cli_read_keyinfo(c, ki, SCP_CLI_KEYINFO_MAX, &n, &sw) != SCP_EXIT_OK || sw != 0x9000)
        return -1;
    for (size_t k = 0; k < n; k++) /* SCP03 key sets only, not SCP11 EC keys */
        if (ki[k].kvn == kvn && ki[k].type != 0xB0 && ki[k].type != 0xB1)
            return 1;
    return 0;
}

/* GET DATA E0 once: bare first (many cards, the YubiKey among them,
 * answer it without a session), through a channel only if refused. */
static int keys_list(scp_cli *c)
{
    uint16_t sw;
    scp_cli_keyinfo ki[SCP_CLI_KEYINFO_MAX];
    size_t n;
    int rc = scp_cli_no_more(c, 1);
    if (rc == SCP_EXIT_OK)
        rc = scp_cli_connect(c);
    if (rc != SCP_EXIT_OK)
        return rc;
    if ((rc = scp_cli_read_keyinfo(c, ki, SCP_CLI_KEYINFO_MAX, &n, &sw)) != SCP_EXIT_OK)
        return rc;
    if (sw == 0x9000)
        return scp_cli_print_keyinfo(c, ki, n, sw);
    if ((rc = scp_cli_resolve_keys(c)) != SCP_EXIT_OK ||
        (rc = scp_cli_open_channel(c)) != SCP_EXIT_OK)
        return rc;
    return scp_cli_show_keyinfo(c);
}

/* New keys from --new-key, --new-enc/--new-mac/--new-dek or --generate. */
static int new_keys(scp_cli *c, scp03_keys *k, int *generated)
{
    const char *key = scp_cli_take(c, "--new-key"), *enc = scp_cli_take(c, "--new-enc"),
               *mac = scp_cli_take(c, "--new-mac"), *dek = scp_cli_take(c, "--new-dek"),
               *kl = scp_cli_take(c, "--key-len");
    int gen = scp_cli_flag(c, "--generate"), len = 16, rc;
    uint8_t l1, l2, l3;

    *generated = 0;
    if (!!key + !!(enc || mac || dek) + gen != 1)
        return scp_cli_fail(c, SCP_EXIT_USAGE,
                            "give one of --new-key HEX, --new-enc/--new-mac/--new-dek, --generate");
    if (gen) {
        if (kl && (rc = scp_cli_number(c, "--key-len", kl, 32, &len)) != SCP_EXIT_OK)
            return rc;
        if (len != 16 && len != 24 && len != 32)
            return scp_cli_fail(c, SCP_EXIT_USAGE, "--key-len: 16, 24 or 32");
        k->key_len = (uint8_t)len;
        *generated = 1;
        if (scp_random(k->enc, (size_t)len) || scp_random(k->mac, (size_t)len) ||
            scp_random(k->dek, (size_t)len))
            return scp_cli_fail(c, SCP_EXIT_LOCAL, "no randomness for new keys");
        return SCP_EXIT_OK;
    }
    if (key) {
        if (scp_cli_hexkey(key, k->enc, &l1))
            return scp_cli_fail(c, SCP_EXIT_USAGE, "--new-key: 16, 24 or 32 bytes of hex");
        memcpy(k->mac, k->enc, l1);
        memcpy(k->dek, k->enc, l1);
        k->key_len = l1;
        return SCP_EXIT_OK;
    }
    if (!enc || !mac || !dek || scp_cli_hexkey(enc, k->enc, &l1) ||
        scp_cli_hexkey(mac, k->mac, &l2) || scp_cli_hexkey(dek, k->dek, &l3) || l1 != l2 ||
        l2 != l3)
        return scp_cli_fail(c, SCP_EXIT_USAGE,
                            "--new-enc, --new-mac, --new-dek: three keys of one length");
    k->key_len = l1;
    return SCP_EXIT_OK;
}

/* PUT KEY (GPC 11.8): P1 = KVN replaced (00: add a set), P2 = 81 (key id
 * 1, more keys follow). The card answers KVN | KCV x 3, checked here in
 * constant time. */
static int put_key(scp_cli *c, const scp03_keys *k, int replace, uint16_t *sw)
{
    uint8_t cmd[5 + SCP_GP_PUTKEY_MAX + 1], resp[64], kcv[3];
    size_t dl, rl;
    int rc;

    if (c->ch02_open) { /* SCP02: under the session DEK; DES keys, or AES (a move to SCP03) */
        if (k->key_len != 16)
            return scp_cli_fail(c, SCP_EXIT_USAGE, "--scp 02: new keys of 16 bytes");
        rc = scp02_channel_put_keys(&c->ch02, c->put_key_type ? c->put_key_type : SCP02_PUTKEY_DES,
                                    replace ? k->kvn : 0x00, k->kvn, k->enc, k->mac, k->dek, sw);
        if (rc == SCP_E_KCV)
            return scp_cli_fail(c, SCP_EXIT_CARD, "PUT KEY: the card's key check values differ");
        if (rc == SCP_E_SW || rc == SCP_OK)
            return SCP_EXIT_OK;
        return scp_cli_fail_rc(c, rc, "PUT KEY");
    }
    if (scp_gp_putkey_build(c->ch.dek, c->ch.dek_len, k, cmd + 5, sizeof(cmd) - 6, &dl) != SCP_OK)
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "cannot build PUT KEY data");
    memcpy(cmd, "\x80\xD8\x00\x81", 4);
    cmd[2] = replace ? k->kvn : 0x00;
    cmd[4] = (uint8_t)dl;
    cmd[5 + dl] = 0x00;
    rc = scp_cli_send(c, cmd, dl + 6, resp, sizeof(resp), &rl, sw);
    scp_wipe(cmd, sizeof(cmd));
    if (rc != SCP_EXIT_OK || *sw != 0x9000)
        return rc;
    if (rl >= 10) {
        const uint8_t *key[3] = { k->enc, k->mac, k->dek };
        for (int i = 0; i < 3; i++)
            if (scp_kcv_aes(key[i], k->key_len, kcv) != SCP_OK ||
                !scp_ct_eq(kcv, resp + 1 + 3 * i, 3))
                return scp_cli_fail(c, SCP_EXIT_CARD,
                                    "PUT KEY: the card's key check value for key %d differs",
                                    i + 1);
    }
    return SCP_EXIT_OK;
}

static void add_kcvs(scp_cli *c, const scp03_keys *k)
{
    uint8_t kcv[3];
    if (c->ch02_open && c->put_key_type == SCP02_PUTKEY_DES) { /* 3DES KCV */
        if (scp02_kcv(SCP02_PUTKEY_DES, k->enc, kcv) == SCP_OK)
            json_object_object_add(c->doc, "kcv_enc", scp_cli_jhex(kcv, 3));
        return;
    }
    const uint8_t *key[3] = { k->enc, k->mac, k->dek };
    static const char *const names[3] = { "kcv_enc", "kcv_mac", "kcv_dek" };
    for (int i = 0; i < 3; i++)
        if (scp_kcv_aes(key[i], k->key_len, kcv) == SCP_OK)
            json_object_object_add(c->doc, names[i], scp_cli_jhex(kcv, 3));
}

/* DELETE (GPC 11.2.2.3): 80 E4 00 00 Lc D2 01 <kvn>. */
static int delete_set(scp_cli *c, uint8_t kvn, uint16_t *sw)
{
    uint8_t cmd[5 + 8], resp[32];
    size_t dl, rl;
    if (scp_gp_deletekey_build(kvn, 0, cmd + 5, sizeof(cmd) - 5, &dl) != SCP_OK)
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "cannot build DELETE KEY data");
    memcpy(cmd, "\x80\xE4\x00\x00", 4);
    cmd[4] = (uint8_t)dl;
    return scp_cli_send(c, cmd, 5 + dl, resp, sizeof(resp), &rl, sw);
}

int scp_cli_keys(int argc, char **argv)
{
    scp_cli c;
    int rc = scp_cli_begin(&c, argc, argv);
    const char *sub = c.o.argc > 1 ? c.o.argv[1] : "";
    if (rc != SCP_EXIT_OK)
        return scp_cli_end(&c, rc);
    if (c.o.argc > 1) { /* the sub-subcommand becomes argv[0] */
        c.o.argv[0] = c.o.argv[1];
        for (int i = 1; i + 1 < c.o.argc; i++)
            c.o.argv[i] = c.o.argv[i + 1];
        c.o.argc--;
    }
    if (strcmp(sub, "list") == 0)
        rc = keys_list(&c);
    else if (strcmp(sub, "put") == 0)
        rc = scp_cli_keys_put(&c);
    else if (strcmp(sub, "delete") == 0)
        rc = scp_cli_keys_delete_cmd(&c);
    else if (strcmp(sub, "rotate") == 0)
        rc = scp_cli_keys_rotate(&c);
    else
        rc = scp_cli_fail(&c, SCP_EXIT_USAGE,
                          "usage: scpkit keys list | put --new-kvn N (--new-key HEX | --new-enc "
                          "HEX --new-mac HEX --new-dek HEX | --generate --out FILE) [--replace] | "
                          "delete --kvn N | rotate --new-kvn N --generate --out FILE");
    return scp_cli_end(&c, rc);
}

/* For the key-set flow (cmd_rotate.c). */
int scp_cli_keys_new(scp_cli *c, scp03_keys *k, int *generated)
{
    return new_keys(c, k, generated);
}
int scp_cli_keys_putkey(scp_cli *c, const scp03_keys *k, int replace, uint16_t *sw)
{
    return put_key(c, k, replace, sw);
}
int scp_cli_keys_delete(scp_cli *c, uint8_t kvn, uint16_t *sw)
{
    return delete_set(c, kvn, sw);
}
int scp_cli_keys_holds(scp_cli *c, uint8_t kvn)
{
    return holds(c, kvn);
}
void scp_cli_keys_kcvs(scp_cli *c, const scp03_keys *k)
{
    add_kcvs(c, k);
}
