/* The virtual card's ISO secure-messaging application (src/card/sm_app.c)
 * against the host side of the codec (src/iso7816/sm.c, bac.c): BAC with
 * keys from the card's MRZ, then protected SELECT EF / READ BINARY (short
 * and extended), each with a tampered twin: a wrong key, a flipped byte, a
 * replay, a plain command inside the session. In process by default, or
 * through a PC/SC reader: test_sm_app -r READER (tests/iso7816/sm_app_pcsc.sh
 * starts pcscd + vpcd and the card). */
#include <stdlib.h>

#include "card_util.h"
#include "scpkit/apdu.h"
#include "scpkit/buf.h"
#include "scpkit/card.h"
#include "scpkit/iso7816sm.h"
#include "scpkit/transport.h"
#include "test.h"

static scp_transport T;
static uint8_t resp[70000];

static size_t hx(const char *h, uint8_t *out, size_t cap)
{
    size_t n = 0;
    if (scp_hex_decode(h, out, cap, &n) != SCP_OK)
        exit(2);
    return n;
}

/* raw exchange: data into resp, SW returned (0 on a transport failure) */
static uint16_t xfer(const uint8_t *c, size_t n, size_t *rl)
{
    size_t l = 0;
    if (scp_transmit(&T, c, n, resp, sizeof(resp), &l) != SCP_OK || l < 2)
        return 0;
    *rl = l - 2;
    return (uint16_t)(resp[l - 2] << 8 | resp[l - 1]);
}

static uint16_t xfer_hex(const char *h, size_t *rl)
{
    uint8_t c[300];
    return xfer(c, hx(h, c, sizeof(c)), rl);
}

/* a protected exchange; plain data into out, SW returned; -1 when the host
 * refuses the response */
static int sm_xfer(scp_sm *sm, const uint8_t *cmd, size_t n, uint8_t *out, size_t *ol)
{
    uint8_t p[600];
    size_t pn, rl, m;
    uint16_t sw;
    if (scp_sm_protect_command(sm, cmd, n, p, sizeof(p), &pn) != SCP_OK)
        return -1;
    sw = xfer(p, pn, &rl);
    if (sw == 0 || scp_sm_unprotect_response(sm, resp, rl + 2, out, 70000, &m) != SCP_OK)
        return -1;
    *ol = m - 2;
    return out[m - 2] << 8 | out[m - 1];
}

static int sm_xfer_hex(scp_sm *sm, const char *h, uint8_t *out, size_t *ol)
{
    uint8_t c[300];
    return sm_xfer(sm, c, hx(h, c, sizeof(c)), out, ol);
}

/* the card's BAC keys: MRZ document number = first 9 hex digits of its CIN */
static void mrz_keys(uint8_t k_enc[16], uint8_t k_mac[16])
{
    size_t rl;
    char hex[40], mrz[25];
    CHECK(xfer_hex("00A4040008A00000015100000000", &rl) == 0x9000);
    CHECK(xfer_hex("80CA004500", &rl) == 0x9000);
    CHECK(rl >= 2 + 5 && resp[0] == 0x45);
    CHECK_OK(scp_hex_encode(resp + 2, resp[1], hex, sizeof(hex)));
    CHECK_OK(scp_bac_mrz_info(hex, "690806", "940623", mrz));
    CHECK_OK(scp_bac_keys_from_mrz(mrz, k_enc, k_mac));
}

static int bac(scp_sm *sm, const uint8_t k_enc[16], const uint8_t k_mac[16])
{
    uint8_t cmd[46] = { 0x00, 0x82, 0x00, 0x00, 0x28 }, rnd[8];
    scp_bac b;
    size_t rl;
    if (xfer_hex("0084000008", &rl) != 0x9000 || rl != 8)
        return -1;
    memcpy(rnd, resp, 8);
    CHECK_OK(scp_bac_host_auth(&b, k_enc, k_mac, rnd, NULL, NULL, cmd + 5));
    cmd[45] = 0x28;
    uint16_t sw = xfer(cmd, sizeof(cmd), &rl);
    if (sw != 0x9000) {
        scp_wipe(&b, sizeof(b));
        return sw;
    }
    return rl == 40 && scp_bac_host_finish(&b, resp, sm) == SCP_OK ? 0x9000 : -1;
}

static void run(void)
{
    static uint8_t out[70000];
    uint8_t k_enc[16], k_mac[16], bad[16], saved[300], want[32];
    size_t rl, n, wl, saved_len, pn, m;
    scp_sm sm;
    int sw;

    mrz_keys(k_enc, k_mac);
    CHECK(xfer_hex("00A4040C08F07363706B697402", &rl) == 0x9000);
    CHECK(xfer_hex("00B0000004", &rl) == 0x6982); /* nothing before BAC */
    CHECK(xfer_hex("0CB0000004", &rl) == 0x6988); /* SM without a session */
    CHECK(xfer_hex("0082000028" "00000000000000000000000000000000000000000000000000000000000000000000000000000000"
                   "28",
                   &rl) == 0x6985); /* no challenge yet */
    /* tampered twin: a key one bit off is refused (6300) */
    memcpy(bad, k_mac, 16);
    bad[3] ^= 0x10;
    CHECK(bac(&sm, k_enc, bad) == 0x6300);
    CHECK(bac(&sm, k_enc, k_mac) == 0x9000);

    /* ICAO 9303-11 D.4's flow on our session keys: SELECT EF.COM, READ
     * BINARY 4, READ BINARY the remaining 18 */
    CHECK(sm_xfer_hex(&sm, "00A4020C02011E", out, &n) == 0x9000 && n == 0);
    CHECK(sm_xfer_hex(&sm, "00B0000004", out, &n) == 0x9000);
    wl = hx("60145F01", want, sizeof(want));
    CHECK_MEM(out, n, want, wl);
    CHECK(sm_xfer_hex(&sm, "00B0000412", out, &n) == 0x9000);
    wl = hx("04303130365F36063034303030305C026175", want, sizeof(want));
    CHECK_MEM(out, n, want, wl);
    /* EF 0102 with an extended Le (900 bytes come back), then the rest
     * with a short Le of 256 (100 bytes, 6282 end of file) */
    CHECK(sm_xfer_hex(&sm, "00A4020C020102", out, &n) == 0x9000);
    CHECK(sm_xfer_hex(&sm, "00B00000000FA0", out, &n) == 0x9000 && n == 900);
    int pattern = 1;
    for (size_t i = 0; i < n; i++)
        pattern &= out[i] == (uint8_t)(i * 7);
    CHECK(pattern);
    CHECK(sm_xfer_hex(&sm, "00B0038400", out, &n) == 0x6282 && n == 100);
    CHECK(out[0] == (uint8_t)(900 * 7));
    CHECK(sm_xfer_hex(&sm, "00A4020C020333", out, &n) == 0x6A82);

    /* tampered twin: one byte of a protected command flipped; the card
     * answers a plain 6988 and the session is over on both sides */
    uint8_t p[64];
    CHECK_OK(scp_sm_protect_command(&sm, (const uint8_t *)"\x00\xB0\x00\x00\x04", 5, p,
                                    sizeof(p), &pn));
    memcpy(saved, p, pn);
    saved_len = pn;
    p[pn - 3] ^= 0x01;
    sw = xfer(p, pn, &rl);
    CHECK(sw == 0x6988 && rl == 0);
    CHECK_OK(scp_sm_unprotect_response(&sm, resp, 2, out, sizeof(out), &m));
    CHECK(!scp_sm_is_open(&sm));
    CHECK(xfer_hex("00B0000004", &rl) == 0x6982);

    /* replay: the untouched command of the dead session, in a new one */
    CHECK(bac(&sm, k_enc, k_mac) == 0x9000);
    CHECK(xfer(saved, saved_len, &rl) == 0x6988);
    /* a plain command inside a session ends it: 6987 */
    CHECK(bac(&sm, k_enc, k_mac) == 0x9000);
    CHECK(sm_xfer_hex(&sm, "00A4020C02011E", out, &n) == 0x9000);
    CHECK(xfer_hex("00B0000004", &rl) == 0x6987);
    CHECK(xfer_hex("00B0000004", &rl) == 0x6982);
    /* selecting another application ends it too */
    CHECK(bac(&sm, k_enc, k_mac) == 0x9000);
    CHECK(xfer_hex("00A4040008A00000015100000000", &rl) == 0x9000);
    CHECK(xfer_hex("00A4040C08F07363706B697402", &rl) == 0x9000);
    CHECK(sm_xfer_hex(&sm, "00A4020C02011E", out, &n) == 0x6988); /* a bare SW back */
    CHECK(!scp_sm_is_open(&sm));
    scp_sm_end(&sm);
}

int main(int argc, char **argv)
{
    char dir[512], err[256];
    scp_card *c = NULL;
    test_seed(0x5a99);
    if (argc == 3 && strcmp(argv[1], "-r") == 0) {
        if (scp_pcsc_open(argv[2], &T) != SCP_OK) {
            fprintf(stderr, "test_sm_app: %s\n", scp_pcsc_last_error());
            return 1;
        }
        run();
        if (T.close)
            T.close(T.ctx);
        return test_done("test_sm_app (PC/SC)");
    }
    scp_card_init_opts o = { .profile = "gp23", .scp_i = -1, .kvn = -1 };
    tc_tmpdir(dir, sizeof(dir));
    CHECK_OK(scp_card_init(dir, &o));
    CHECK_OK(scp_card_open(dir, &c, err, sizeof(err)));
    scp_card_transport(c, &T);
    run();
    scp_card_close(c);
    tc_rmdir(dir);
    return test_done("test_sm_app");
}
