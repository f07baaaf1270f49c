/* scpkit info: what a card says about itself before any authentication:
 * card recognition data (GPC 2.3 H.2), CPLC (GET DATA 9F7F), IIN (42),
 * CIN (45), the key information template (E0) and, where the card allows
 * it unauthenticated, the ISD life cycle (GET STATUS). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "scpkit/ec.h"
#include "scpkit/tlv.h"

/* CPLC layout (GP Card Specification, GET DATA 9F7F): 18 fields, 42 bytes. */
static const struct {
    const char *name;
    uint8_t len;
} cplc_fields[] = {
    { "ic_fabricator", 2 },
    { "ic_type", 2 },
    { "os_id", 2 },
    { "os_release_date", 2 },
    { "os_release_level", 2 },
    { "ic_fabrication_date", 2 },
    { "ic_serial_number", 4 },
    { "ic_batch_identifier", 2 },
    { "ic_module_fabricator", 2 },
    { "ic_module_packaging_date", 2 },
    { "icc_manufacturer", 2 },
    { "ic_embedding_date", 2 },
    { "ic_prepersonalizer", 2 },
    { "ic_prepersonalization_date", 2 },
    { "ic_prepersonalization_equipment", 4 },
    { "ic_personalizer", 2 },
    { "ic_personalization_date", 2 },
    { "ic_personalization_equipment", 4 },
};

/* SCP02's i (GPC 2.2.1 E.1.1): b1 three keys, b2 C-MAC on the
 * unmodified APDU, b3 explicit initiation, b4 ICV = MAC over the AID, b5
 * ICV encryption, b6 R-MAC, b7 well-known pseudo-random challenge. */
static void scp02_i_words(json_object *j, uint8_t i, char *words, size_t size)
{
    snprintf(words, size, "%s, C-MAC on the %s APDU, %s initiation%s%s, %s card challenge%s",
             (i & SCP02_I_3KEYS) ? "three keys" : "one base key",
             (i & SCP02_I_CMAC_UNMODIFIED) ? "unmodified" : "modified",
             (i & SCP02_I_EXPLICIT) ? "explicit" : "implicit",
             (i & SCP02_I_ICV_MAC_AID) ? ", ICV = MAC over the AID" : "",
             (i & SCP02_I_ICV_ENC) ? ", ICV encrypted" : "",
             (i & SCP02_I_PSEUDO_RANDOM) ? "pseudo-random" : "random",
             (i & SCP02_I_RMAC) ? ", R-MAC supported" : ", no R-MAC");
    json_object_object_add(j, "three_keys", json_object_new_boolean(i & SCP02_I_3KEYS));
    json_object_object_add(j, "cmac_unmodified",
                           json_object_new_boolean(i & SCP02_I_CMAC_UNMODIFIED));
    json_object_object_add(j, "explicit", json_object_new_boolean(i & SCP02_I_EXPLICIT));
    json_object_object_add(j, "icv_mac_aid", json_object_new_boolean(i & SCP02_I_ICV_MAC_AID));
    json_object_object_add(j, "icv_encrypted", json_object_new_boolean(i & SCP02_I_ICV_ENC));
    json_object_object_add(j, "rmac", json_object_new_boolean(i & SCP02_I_RMAC));
    json_object_object_add(j, "pseudo_random", json_object_new_boolean(i & SCP02_I_PSEUDO_RANDOM));
}

/* SCP03's i (GPC Amd D 5.1, table 5-1). */
static void scp03_i_words(json_object *j, uint8_t i, char *words, size_t size)
{
    snprintf(words, size, "%s, %s card challenge%s%s",
             (i & SCP03_I_S16) ? "S16 mode (16-byte challenges, cryptograms and MACs)"
                               : "S8 mode (8-byte challenges, cryptograms and MACs)",
             (i & SCP03_I_PSEUDO_RANDOM) ? "pseudo-random (counter-based)" : "random",
             (i & SCP03_I_RMAC) ? ", R-MAC supported" : ", no R-MAC",
             (i & SCP03_I_RENC) ? ", R-ENC supported" : ", no R-ENC");
    json_object_object_add(j, "s16", json_object_new_boolean(i & SCP03_I_S16));
    json_object_object_add(j, "pseudo_random", json_object_new_boolean(i & SCP03_I_PSEUDO_RANDOM));
    json_object_object_add(j, "rmac", json_object_new_boolean(i & SCP03_I_RMAC));
    json_object_object_add(j, "renc", json_object_new_boolean(i & SCP03_I_RENC));
}

/* The i parameter means something else in each SCP: decoded for SCP02
 * and SCP03, shown as a number for the others. */
static void show_i(scp_cli *c, json_object *j, uint8_t id, uint8_t i)
{
    char words[256] = "";
    uint8_t lv = scp_level_strongest(i);
    json_object_object_add(j, "scp", json_object_new_int(id));
    json_object_object_add(j, "i", scp_cli_jhex(&i, 1));
    if (id == 0x02)
        scp02_i_words(j, i, words, sizeof(words));
    else if (id == 0x03)
        scp03_i_words(j, i, words, sizeof(words));
    if (words[0] != '\0')
        json_object_object_add(j, "description", json_object_new_string(words));
    if (id == 0x03)
        json_object_object_add(j, "strongest_level", scp_cli_jhex(&lv, 1));
    if (!c->o.json) {
        if (id == 0x03)
            printf("SCP03:            i = %02X: %s; strongest level %02X\n", i, words, lv);
        else if (id == 0x02)
            printf("SCP02:            i = %02X: %s\n", i, words);
        else
            printf("SCP%02X:            i = %02X\n", id, i);
    }
}

static int show_recognition(scp_cli *c)
{
    uint8_t buf[512];
    size_t n;
    uint16_t sw;
    scp_recog r;
    json_object *j = json_object_new_object(), *arr = json_object_new_array();
    int rc = scp_cli_get_data(c, 0x0066, buf, sizeof(buf), &n, &sw);
    json_object_object_add(c->doc, "recognition", j);
    json_object_object_add(j, "scp", arr);
    if (rc != SCP_EXIT_OK)
        return rc;
    if (sw != 0x9000 || scp_recog_parse(buf, n, &r) != SCP_OK) {
        if (!c->o.json)
            printf("Recognition data: not given (%04X %s)\n", sw, scp_cli_sw_text(sw));
        return SCP_EXIT_OK;
    }
    json_object_object_add(j, "gp_version", json_object_new_string(r.gp_version));
    if (!c->o.json)
        printf("GlobalPlatform:   %s\n", r.gp_version[0] ? r.gp_version : "(not stated)");
    for (size_t k = 0; k < r.n_scp; k++) {
        json_object *e = json_object_new_object();
        json_object_array_add(arr, e);
        show_i(c, e, r.scp[k].id, r.scp[k].i);
    }
    return SCP_EXIT_OK;
}

static int show_cplc(scp_cli *c)
{
    uint8_t buf[256];
    const uint8_t *p;
    size_t n, off = 0;
    uint16_t sw;
    scp_tlv t;
    json_object *j;
    int rc = scp_cli_get_data(c, 0x9F7F, buf, sizeof(buf), &n, &sw);
    if (rc != SCP_EXIT_OK)
        return rc;
    p = buf; /* with or without the 9F7F wrapper */
    if (sw == 0x9000 && scp_tlv_find(buf, n, 0x9F7F, &t) == 1) {
        p = t.val;
        n = t.len;
    }
    if (sw != 0x9000 || n < 42) {
        if (!c->o.json)
            printf("CPLC:             not given (%04X %s)\n", sw, scp_cli_sw_text(sw));
        return SCP_EXIT_OK;
    }
    j = json_object_new_object();
    json_object_object_add(c->doc, "cplc", j);
    if (!c->o.json)
        printf("CPLC:\n");
    for (size_t k = 0; k < sizeof(cplc_fields) / sizeof(cplc_fields[0]); k++) {
        char hex[16];
        scp_cli_hex(p + off, cplc_fields[k].len, hex, sizeof(hex));
        json_object_object_add(j, cplc_fields[k].name, json_object_new_string(hex));
        if (!c->o.json)
            printf("  %-32s %s\n", cplc_fields[k].name, hex);
        off += cplc_fields[k].len;
    }
    return SCP_EXIT_OK;
}

static int show_id(scp_cli *c, uint16_t tag, const char *key, const char *label)
{
    uint8_t buf[128];
    size_t n;
    uint16_t sw;
    scp_tlv t;
    int rc = scp_cli_get_data(c, tag, buf, sizeof(buf), &n, &sw);
    if (rc != SCP_EXIT_OK)
        return rc;
    if (sw != 0x9000) {
        if (!c->o.json)
            printf("%-17s not given (%04X)\n", label, sw);
        return SCP_EXIT_OK;
    }
    if (scp_tlv_find(buf, n, tag, &t) == 1) /* value inside its own tag */
        json_object_object_add(c->doc, key, scp_cli_jhex(t.val, t.len));
    else
        json_object_object_add(c->doc, key, scp_cli_jhex(buf, n));
    if (!c->o.json)
        printf("%-17s %s\n", label, json_object_get_string(json_object_object_get(c->doc, key)));
    return SCP_EXIT_OK;
}

/* GET STATUS of the ISD (GPC 11.4, P1 80, P2 02: TLV) when allowed bare. */
static int show_lifecycle(scp_cli *c, int auth)
{
    static const uint8_t cmd[] = { 0x80, 0xF2, 0x80, 0x02, 0x02, 0x4F, 0x00, 0x00 };
    uint8_t buf[512];
    size_t n;
    uint16_t sw;
    scp_tlv t;
    int rc = scp_cli_send(c, cmd, sizeof(cmd), buf, sizeof(buf), &n, &sw);
    const uint32_t path[] = { 0xE3, 0x9F70 };
    if (rc != SCP_EXIT_OK)
        return rc;
    if (sw == 0x6982 && auth && !c->ch_open) { /* asked to authenticate for it */
        if ((rc = scp_cli_resolve_keys(c)) != SCP_EXIT_OK ||
            (rc = scp_cli_open_channel(c)) != SCP_EXIT_OK)
            return rc;
        return show_lifecycle(c, 0);
    }
    if (sw == 0x9000 && scp_tlv_find_path(buf, n, path, 2, &t) == 1 && t.len >= 1) {
        json_object_object_add(c->doc, "lifecycle", json_object_new_string(scp_cli_lifecycle_name(0x80, t.val[0], 1)));
        if (!c->o.json)
            printf("Life cycle:       %s (%02X)\n", scp_cli_lifecycle_name(0x80, t.val[0], 1), t.val[0]);
    } else if (!c->o.json) {
        printf("Life cycle:       needs authentication (%04X): add --auth\n", sw);
    }
    return SCP_EXIT_OK;
}

int scp_cli_show_keyinfo(scp_cli *c)
{
    scp_cli_keyinfo ki[SCP_CLI_KEYINFO_MAX];
    size_t n;
    uint16_t sw;
    int rc = scp_cli_read_keyinfo(c, ki, SCP_CLI_KEYINFO_MAX, &n, &sw);
    if (rc != SCP_EXIT_OK) {
        json_object_object_add(c->doc, "keys", json_object_new_array());
        return rc;
    }
    return scp_cli_print_keyinfo(c, ki, n, sw);
}

/* SCP11 (GPC Amd F): B1 = an SD key pair (11 a, 13 b, 15 c), B0 = an OCE
 * CA public key (10, 20..2F); NULL for an SCP03 key. */
static const char *ec_role(const scp_cli_keyinfo *k)
{
    if (k->type != 0xB0 && k->type != 0xB1)
        return NULL;
    return k->id == 0x11 ? "SCP11a" : k->id == 0x13 ? "SCP11b" : k->id == 0x15 ? "SCP11c"
           : k->type == 0xB0 ? "OCE CA" : "SCP11";
}

int scp_cli_print_keyinfo(scp_cli *c, const scp_cli_keyinfo *ki, size_t n, uint16_t sw)
{
    /* "keys": the SCP03 key sets; "scp11_keys": the SCP11 EC keys (kept
     * apart: scripts read "keys" as the card's SCP03 KVNs) */
    json_object *arr = json_object_new_array(), *arr11 = json_object_new_array();
    int printed11 = 0;
    json_object_object_add(c->doc, "keys", arr);
    json_object_object_add(c->doc, "scp11_keys", arr11);
    if (sw != 0x9000) {
        if (!c->o.json)
            printf("Key sets:         not given (%04X %s)\n", sw, scp_cli_sw_text(sw));
        return SCP_EXIT_OK;
    }
    if (!c->o.json)
        printf("Key sets:\n");
    for (size_t k = 0; k < n; k++) {
        json_object *e = json_object_new_object();
        const char *role = ec_role(&ki[k]); /* F0: the curve */
        int ec = role != NULL;
        const char *curve = ec ? scp_ec_curve_name(scp_ec_curve_from_gp(ki[k].curve_ref)) : NULL;
        json_object_object_add(e, "kvn", json_object_new_int(ki[k].kvn));
        json_object_object_add(e, "id", json_object_new_int(ki[k].id));
        json_object_object_add(e, "type", json_object_new_string(scp_cli_key_type(ki[k].type)));
        json_object_object_add(e, "length", json_object_new_int(ki[k].len));
        if (ec) {
            json_object_object_add(e, "curve", json_object_new_string(curve));
            json_object_object_add(e, "use", json_object_new_string(role));
        }
        json_object_array_add(ec ? arr11 : arr, e);
        if (ec)
            continue;
        if (!c->o.json)
            printf("  KVN %02X key %02X: %s-%u%s\n", ki[k].kvn, ki[k].id,
                   scp_cli_key_type(ki[k].type), ki[k].len * 8,
                   ki[k].kvn == 0xFF ? " (factory test keys)" : "");
    }
    for (size_t k = 0; k < n && !c->o.json; k++) {
        const char *role = ec_role(&ki[k]);
        if (role == NULL)
            continue;
        printf("%s KVN %02X key %02X: %s %s (%s)\n",
               printed11++ ? "                 " : "SCP11 keys:      ", ki[k].kvn, ki[k].id,
               scp_cli_key_type(ki[k].type),
               scp_ec_curve_name(scp_ec_curve_from_gp(ki[k].curve_ref)), role);
    }
    return SCP_EXIT_OK;
}

/* The identity an OTA server knows the card by (issue 14, `scpkit agent`
 * sends it in X-Admin-From): the CIN, else the CPLC IC serial number. */
static int show_device_id(scp_cli *c)
{
    json_object *v, *cplc;
    const char *id = NULL;
    if (json_object_object_get_ex(c->doc, "cin", &v))
        id = json_object_get_string(v);
    else if (json_object_object_get_ex(c->doc, "cplc", &cplc) &&
             json_object_object_get_ex(cplc, "ic_serial_number", &v))
        id = json_object_get_string(v);
    if (!id)
        return SCP_EXIT_OK;
    json_object_object_add(c->doc, "device_id", json_object_new_string(id));
    if (!c->o.json)
        printf("Device ID:        %s\n", id);
    return SCP_EXIT_OK;
}

int scp_cli_info(int argc, char **argv)
{
    scp_cli c;
    int rc = scp_cli_begin(&c, argc, argv);
    /* --auth (or any key option): authenticate for what the card will not
     * tell bare (the life cycle); everything else stays unauthenticated */
    int auth = scp_cli_flag(&c, "--auth") || c.o.key_hex || c.o.enc_hex || c.o.keyfile ||
               c.o.master || c.o.keystore;
    if (rc == SCP_EXIT_OK && c.o.argc > 1)
        rc = scp_cli_fail(&c, SCP_EXIT_USAGE, "info: unexpected argument %s", c.o.argv[1]);
    if (rc == SCP_EXIT_OK)
        rc = scp_cli_connect(&c);
    if (rc == SCP_EXIT_OK) {
        json_object_object_add(c.doc, "target", json_object_new_string(c.t.name ? c.t.name : ""));
        json_object_object_add(c.doc, "sd_aid", scp_cli_jhex(c.sd_aid, c.sd_aid_len));
        if (!c.o.json) {
            char aid[40];
            scp_cli_hex(c.sd_aid, c.sd_aid_len, aid, sizeof(aid));
            printf("Card:             %s\nSecurity domain:  %s\n", c.t.name ? c.t.name : "", aid);
        }
        if ((rc = show_recognition(&c)) == SCP_EXIT_OK &&
            (rc = show_id(&c, 0x0042, "iin", "IIN:")) == SCP_EXIT_OK &&
            (rc = show_id(&c, 0x0045, "cin", "CIN:")) == SCP_EXIT_OK &&
            (rc = show_cplc(&c)) == SCP_EXIT_OK && (rc = show_device_id(&c)) == SCP_EXIT_OK &&
            (rc = scp_cli_show_keyinfo(&c)) == SCP_EXIT_OK &&
            (rc = scp_cli_show_scp11(&c)) == SCP_EXIT_OK)
            rc = show_lifecycle(&c, auth);
    }
    return scp_cli_end(&c, rc);
}
