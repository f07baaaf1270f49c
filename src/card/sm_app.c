/* scpkit card: a third application that needs ISO/IEC 7816-4 secure
 * messaging on every command, as an ePassport does (ICAO Doc 9303 Part
 * 11): BAC (GET CHALLENGE, EXTERNAL AUTHENTICATE) with keys from an MRZ,
 * then SELECT EF and READ BINARY, all protected (src/iso7816/sm.c, card
 * role). AID F0 73 63 70 6B 69 74 02.
 *
 * The MRZ: document number = the first 9 hex digits of the card's CIN
 * (GET DATA 0045 on the ISD, uppercase), date of birth 690806, date of
 * expiry 940623 (those of the ICAO worked example). Files: EF.COM (011E,
 * the worked example's 22 bytes) and EF 0102 (1000 bytes, byte i = i * 7
 * mod 256, for extended-length reads). Plain commands after BAC end the
 * session (6987), a bad MAC too (6988). */
#include <stdio.h>
#include <string.h>
#include "card/internal.h"
#include "core/guard.h"
#include "scpkit/buf.h"
#include "scpkit/crypto.h"

const uint8_t card_smapp_aid[] = { 0xF0, 0x73, 0x63, 0x70, 0x6B, 0x69, 0x74, 0x02 };
const size_t card_smapp_aid_len = sizeof(card_smapp_aid);

static const uint8_t ef_com[] = { 0x60, 0x14, 0x5F, 0x01, 0x04, 0x30, 0x31, 0x30,
                                  0x36, 0x5F, 0x36, 0x06, 0x30, 0x34, 0x30, 0x30,
                                  0x30, 0x30, 0x5C, 0x02, 0x61, 0x75 };
#define EF_BIG_LEN 1000
#define SMAPP_READ_MAX 900 /* what one protected response can carry here */

void card_smapp_end(scp_card *c)
{
    scp_sm_end(&c->smapp);
    scp_wipe(c->smapp_rnd, sizeof(c->smapp_rnd));
    c->smapp_chal = 0;
    c->smapp_ef = 0;
}

static int smapp_keys(const scp_card *c, uint8_t k_enc[16], uint8_t k_mac[16])
{
    char hex[2 * CARD_ID_MAX + 1], mrz[25];
    GUARD(scp_hex_encode(c->st.cin, c->st.cin_len, hex, sizeof(hex)));
    ENSURE(strlen(hex) >= 9, SCP_E_STATE);
    for (int i = 0; i < 9; i++)
        if (hex[i] >= 'a' && hex[i] <= 'f')
            hex[i] = (char)(hex[i] - 'a' + 'A');
    GUARD(scp_bac_mrz_info(hex, "690806", "940623", mrz));
    return scp_bac_keys_from_mrz(mrz, k_enc, k_mac);
}

/* Before BAC: GET CHALLENGE and EXTERNAL AUTHENTICATE only. */
static int smapp_bac(scp_card *c, const scp_apdu *a, card_resp *r)
{
    uint8_t k_enc[16], k_mac[16];
    int rc;
    if (a->cla & 0x0C) {
        card_sw(r, 0x6988); /* SM without a session */
        return SCP_OK;
    }
    if (a->ins == 0x84) { /* GET CHALLENGE (ICAO 9303-11 9.7.2.2) */
        if (a->p1 || a->p2 || a->lc || !a->has_le || a->le != 8) {
            card_sw(r, a->has_le && a->le != 8 ? 0x6700 : 0x6A86);
            return SCP_OK;
        }
        GUARD(scp_random(c->smapp_rnd, 8));
        c->smapp_chal = 1;
        memcpy(r->data, c->smapp_rnd, 8);
        r->len = 8;
        r->sw = 0x9000;
        return SCP_OK;
    }
    if (a->ins == 0x82) { /* EXTERNAL AUTHENTICATE: E_IFD | M_IFD */
        if (!c->smapp_chal) {
            card_sw(r, 0x6985);
            return SCP_OK;
        }
        c->smapp_chal = 0; /* one try per challenge */
        if (a->lc != 40) {
            card_sw(r, 0x6700);
            return SCP_OK;
        }
        GUARD(smapp_keys(c, k_enc, k_mac));
        rc = scp_bac_card_auth(k_enc, k_mac, c->smapp_rnd, NULL, a->data, a->lc, r->data,
                               &c->smapp);
        scp_wipe(k_enc, sizeof(k_enc));
        scp_wipe(k_mac, sizeof(k_mac));
        scp_wipe(c->smapp_rnd, sizeof(c->smapp_rnd));
        if (rc != SCP_OK) {
            card_sw(r, 0x6300);
            return SCP_OK;
        }
        r->len = 40;
        r->sw = 0x9000;
        return SCP_OK;
    }
    card_sw(r, a->ins == 0xA4 || a->ins == 0xB0 ? 0x6982 : 0x6D00);
    return SCP_OK;
}

/* One plain command inside the session; data into buf. */
static uint16_t smapp_run(scp_card *c, const scp_apdu *a, uint8_t *buf, size_t *n)
{
    size_t off, len, want;
    *n = 0;
    if (a->ins == 0xA4) { /* SELECT EF by file identifier */
        if (a->p1 != 0x02 || a->lc != 2)
            return 0x6A86;
        uint16_t fid = (uint16_t)(a->data[0] << 8 | a->data[1]);
        if (fid != 0x011E && fid != 0x0102)
            return 0x6A82;
        c->smapp_ef = fid;
        return 0x9000;
    }
    if (a->ins == 0xB0) { /* READ BINARY, offset in P1 P2 (b8 of P1 clear) */
        if (c->smapp_ef == 0)
            return 0x6986;
        if (a->p1 & 0x80)
            return 0x6A86;
        off = (size_t)(a->p1 << 8 | a->p2);
        len = c->smapp_ef == 0x011E ? sizeof(ef_com) : EF_BIG_LEN;
        if (off > len)
            return 0x6B00;
        want = a->has_le ? a->le : 0;
        if (want > len - off)
            want = len - off;
        if (want > SMAPP_READ_MAX)
            want = SMAPP_READ_MAX;
        for (size_t i = 0; i < want; i++)
            buf[i] = c->smapp_ef == 0x011E ? ef_com[off + i] : (uint8_t)((off + i) * 7);
        *n = want;
        return a->has_le && a->le > want && off + want == len ? 0x6282 : 0x9000;
    }
    return 0x6D00;
}

int card_smapp_command(scp_card *c, const uint8_t *capdu, size_t len, const scp_apdu *a,
                       card_resp *r)
{
    uint8_t plain[CARD_SMAPP_PLAIN_MAX], data[SMAPP_READ_MAX];
    size_t pl, n;
    scp_apdu p;
    uint16_t sw;
    int rc;

    if (!scp_sm_is_open(&c->smapp))
        return smapp_bac(c, a, r);
    if (!(a->cla & 0x0C)) {
        card_smapp_end(c); /* ICAO 9303-11 9.8.5: a plain command ends it */
        card_sw(r, 0x6987);
        return SCP_OK;
    }
    if (scp_sm_unprotect_command(&c->smapp, capdu, len, plain, sizeof(plain), &pl) != SCP_OK ||
        scp_apdu_parse(plain, pl, &p) != SCP_OK) {
        card_smapp_end(c);
        card_sw(r, 0x6988);
        return SCP_OK;
    }
    sw = smapp_run(c, &p, data, &n);
    rc = scp_sm_protect_response(&c->smapp, data, n, sw, r->data, r->cap, &r->len);
    scp_wipe(plain, sizeof(plain));
    if (rc != SCP_OK) {
        card_smapp_end(c);
        card_sw(r, 0x6F00);
        return SCP_OK;
    }
    r->len -= 2; /* the SW goes out through emit */
    r->sw = sw;
    return SCP_OK;
}
