/* scpkit readers | diversify: no card session needed. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "scpkit/gp.h"

int scp_cli_readers(int argc, char **argv)
{
    scp_pcsc_reader r[16];
    size_t n = 0;
    scp_cli c;
    json_object *arr = json_object_new_array();
    int rc = scp_cli_begin(&c, argc, argv);
    json_object_object_add(c.doc, "readers", arr);
    if (rc == SCP_EXIT_OK)
        rc = scp_cli_no_more(&c, 1);
    if (rc == SCP_EXIT_OK && scp_pcsc_list(r, 16, &n) != SCP_OK)
        rc = scp_cli_fail(&c, SCP_EXIT_CARD, "%s", scp_pcsc_last_error());
    for (size_t i = 0; rc == SCP_EXIT_OK && i < n; i++) {
        json_object *e = json_object_new_object();
        json_object_object_add(e, "index", json_object_new_int((int)i));
        json_object_object_add(e, "name", json_object_new_string(r[i].name));
        json_object_object_add(e, "card_present", json_object_new_boolean(r[i].card_present));
        json_object_array_add(arr, e);
        if (!c.o.json)
            printf("%zu: %s%s\n", i, r[i].name, r[i].card_present ? "  [card present]" : "");
    }
    if (rc == SCP_EXIT_OK && n == 0 && !c.o.json)
        printf("no reader\n");
    return scp_cli_end(&c, rc);
}

/* KCV of a derived key: AES for the SCP03 schemes, 3DES for EMV/VISA2. */
static int kcv(scp_div_scheme s, const uint8_t *k, size_t len, uint8_t out[3])
{
    if (s == SCP_DIV_EMV || s == SCP_DIV_VISA2)
        return scp_kcv_des3(k, len, out);
    return scp_kcv_aes(k, len, out);
}

/* scpkit diversify --scheme S --master HEX --kdd HEX [--show-keys]:
 * KCVs by default; the keys themselves only with --show-keys. */
int scp_cli_diversify(int argc, char **argv)
{
    static const char *const names[3] = { "enc", "mac", "dek" };
    uint8_t master[32], kdd[64], v[3];
    size_t ml = 0, kl = 0;
    scp03_keys k = { 0 };
    scp_div_scheme s;
    scp_cli c;
    int rc = scp_cli_begin(&c, argc, argv), show;
    const char *scheme = scp_cli_take(&c, "--scheme"), *kdd_hex = scp_cli_take(&c, "--kdd");
    const char *master_hex = c.o.master; /* --master is a common option */

    show = scp_cli_flag(&c, "--show-keys");
    if (!scheme)
        scheme = c.o.kdf;
    if (rc == SCP_EXIT_OK && (!scheme || !master_hex || !kdd_hex))
        rc = scp_cli_fail(&c, SCP_EXIT_USAGE,
                          "usage: scpkit diversify --scheme sp800-108|kdf3|emv|visa2 --master "
                          "HEX --kdd HEX [--show-keys]");
    if (rc == SCP_EXIT_OK)
        rc = scp_cli_no_more(&c, 1);
    if (rc == SCP_EXIT_OK && scp_div_parse(scheme, &s) != SCP_OK)
        rc = scp_cli_fail(&c, SCP_EXIT_USAGE,
                          "--scheme %s: unknown; want sp800-108, kdf3, emv or visa2", scheme);
    if (rc == SCP_EXIT_OK && scp_hex_decode(master_hex, master, sizeof(master), &ml) != SCP_OK)
        rc = scp_cli_fail(&c, SCP_EXIT_USAGE, "--master: not hex (16, 24 or 32 bytes)");
    if (rc == SCP_EXIT_OK && scp_hex_decode(kdd_hex, kdd, sizeof(kdd), &kl) != SCP_OK)
        rc = scp_cli_fail(&c, SCP_EXIT_USAGE, "--kdd: not hex");
    if (rc == SCP_EXIT_OK && scp_div_derive(s, master, ml, kdd, kl, &k) != SCP_OK)
        rc = scp_cli_fail(&c, SCP_EXIT_USAGE,
                          "cannot derive: check the master length for %s and that the KDD has "
                          "10 bytes",
                          scheme);
    if (rc == SCP_EXIT_OK) {
        const uint8_t *key[3] = { k.enc, k.mac, k.dek };
        json_object_object_add(c.doc, "scheme", json_object_new_string(scp_div_name(s)));
        json_object_object_add(c.doc, "kdd", scp_cli_jhex(kdd, kl));
        for (int i = 0; i < 3 && rc == SCP_EXIT_OK; i++) {
            char name[16], hex[65];
            if (kcv(s, key[i], k.key_len, v) != SCP_OK) {
                rc = scp_cli_fail(&c, SCP_EXIT_LOCAL, "KCV failed");
                break;
            }
            snprintf(name, sizeof(name), "kcv_%s", names[i]);
            json_object_object_add(c.doc, name, scp_cli_jhex(v, 3));
            scp_cli_hex(key[i], k.key_len, hex, sizeof(hex));
            if (show)
                json_object_object_add(c.doc, names[i], json_object_new_string(hex));
            if (!c.o.json)
                printf("%s: KCV %02X%02X%02X%s%s\n", names[i], v[0], v[1], v[2],
                       show ? "  key " : "", show ? hex : "");
            scp_wipe(hex, sizeof(hex));
        }
        if (!show && !c.o.json)
            printf("(keys not shown: add --show-keys to print them)\n");
    }
    scp_wipe(&k, sizeof(k));
    scp_wipe(master, sizeof(master));
    return scp_cli_end(&c, rc);
}
