/* The engine on its own: a host session and a card session in one process,
 * no reader and no daemon, talking SCP03 at level 33 (C-MAC, C-DEC, R-MAC,
 * R-ENC). Prints a readable transcript; key material is never printed, only
 * key check values. */
#include <stdio.h>
#include <string.h>

#include "scpkit/apdu.h"
#include "scpkit/buf.h"
#include "scpkit/scp03.h"

static void show(const char *who, const char *what, const uint8_t *p, size_t len)
{
    char hex[2 * 300 + 1];
    size_t n = len > 300 ? 300 : len;
    if (scp_hex_encode(p, n, hex, sizeof(hex)) != SCP_OK)
        hex[0] = '\0';
    printf("  %-5s %-28s %s%s\n", who, what, hex, len > n ? "..." : "");
}

static int fail(const char *step, int rc)
{
    fprintf(stderr, "engine demo: %s failed: %s\n", step, scp_strerror(rc));
    return 1;
}

int main(void)
{
    static const uint8_t aid[] = { 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00 };
    static const uint8_t get_cplc[] = { 0x80, 0xCA, 0x9F, 0x7F, 0x00 };
    static const uint8_t cplc[] = { 0x9F, 0x7F, 0x06, 0x40, 0x90, 0x12, 0x34, 0x56, 0x78 };
    scp03_session host = { 0 }, card = { 0 };
    scp03_card_params prm = { .i = 0x70, .seq = 1, .aid = aid, .aid_len = sizeof(aid) };
    scp03_keys keys = { .key_len = 16, .kvn = 0xFF };
    uint8_t c[512], w[512], p[512], r[512], kcv[3][3];
    size_t cl, wl, pl, rl;
    scp_apdu a;
    int rc;

    for (int i = 0; i < 16; i++) /* the GlobalPlatform test keys 40..4F */
        keys.enc[i] = keys.mac[i] = keys.dek[i] = (uint8_t)(0x40 + i);
    memset(prm.kdd, 0x5A, sizeof(prm.kdd));
    printf("scpkit engine demo: SCP03 host and card in one process, level 33\n");
    printf("  static keys: KVN %02X, AES-128 (test keys; values not shown)\n\n", keys.kvn);

    if ((rc = scp03_host_begin(&host, &keys, NULL, 8)) != SCP_OK ||
        (rc = scp03_host_initialize_update(&host, 0x00, c, sizeof(c), &cl)) != SCP_OK)
        return fail("INITIALIZE UPDATE", rc);
    show("host", "INITIALIZE UPDATE", c, cl);
    if ((rc = scp_apdu_parse(c, cl, &a)) != SCP_OK ||
        (rc = scp03_card_initialize_update(&card, &prm, &keys, a.data, a.lc, r, sizeof(r),
                                           &rl)) != SCP_OK)
        return fail("card INITIALIZE UPDATE", rc);
    show("card", "KDD|KVN|03|i|chal|crypto|seq", r, rl);
    if ((rc = scp03_host_iu_response(&host, r, rl)) != SCP_OK)
        return fail("card cryptogram check", rc);
    if ((rc = scp03_session_kcvs(&host, kcv[0], kcv[1], kcv[2])) != SCP_OK)
        return fail("session KCVs", rc);
    printf("  host  card cryptogram verified; session key KCVs S-ENC %02X%02X%02X "
           "S-MAC %02X%02X%02X S-RMAC %02X%02X%02X\n",
           kcv[0][0], kcv[0][1], kcv[0][2], kcv[1][0], kcv[1][1], kcv[1][2], kcv[2][0],
           kcv[2][1], kcv[2][2]);
    if ((rc = scp03_host_external_authenticate(&host, 0x33, c, sizeof(c), &cl)) != SCP_OK)
        return fail("EXTERNAL AUTHENTICATE", rc);
    show("host", "EXTERNAL AUTHENTICATE", c, cl);
    if ((rc = scp03_card_external_authenticate(&card, c, cl)) != SCP_OK)
        return fail("card host-cryptogram check", rc);
    if ((rc = scp03_host_ea_result(&host, 0x9000)) != SCP_OK)
        return fail("EXTERNAL AUTHENTICATE result", rc);
    printf("  card  host cryptogram verified: channel open at level 33\n\n");

    show("host", "plain GET DATA CPLC", get_cplc, sizeof(get_cplc));
    if ((rc = scp03_host_wrap(&host, get_cplc, sizeof(get_cplc), w, sizeof(w), &wl)))
        return fail("wrap", rc);
    show("host", "protected (no data: C-MAC)", w, wl);
    if ((rc = scp03_card_unwrap(&card, w, wl, p, sizeof(p), &pl)) != SCP_OK)
        return fail("card unwrap", rc);
    show("card", "verified, plain again", p, pl);
    if ((rc = scp03_card_wrap(&card, cplc, sizeof(cplc), 0x9000, r, sizeof(r), &rl)))
        return fail("card wrap", rc);
    show("card", "response (R-ENC + R-MAC)", r, rl);
    if ((rc = scp03_host_unwrap(&host, r, rl, p, sizeof(p), &pl)) != SCP_OK)
        return fail("host unwrap", rc);
    show("host", "verified, decrypted", p, pl);

    /* a tampered response: the host ends the session for good */
    if ((rc = scp03_host_wrap(&host, get_cplc, sizeof(get_cplc), w, sizeof(w), &wl)) ||
        (rc = scp03_card_unwrap(&card, w, wl, p, sizeof(p), &pl)) ||
        (rc = scp03_card_wrap(&card, cplc, sizeof(cplc), 0x9000, r, sizeof(r), &rl)))
        return fail("second exchange", rc);
    r[3] ^= 0x01;
    rc = scp03_host_unwrap(&host, r, rl, p, sizeof(p), &pl);
    printf("\n  host  one flipped bit in the next response: %s\n", scp_strerror(rc));
    if (rc != SCP_E_MAC || host.state != SCP03_DEAD)
        return fail("tamper detection", SCP_E_STATE);
    scp03_end(&host);
    scp03_end(&card);
    printf("  both  session closed, keys wiped\n");
    return 0;
}
