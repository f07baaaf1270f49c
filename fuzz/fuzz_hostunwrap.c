/* Fuzz target: what a host reads from a card it does not trust: the
 * INITIALIZE UPDATE response (scp03_iu_resp_parse, scp03_host_iu_response)
 * and protected R-APDUs (scp03_host_unwrap) on a session opened in process
 * with fixed keys.
 *
 * Input: one configuration byte (as in fuzz_unwrap.c: level mod 6, key
 * length /6 mod 3, S16 /18 & 1), then chunks with a 2-byte big-endian
 * header; the payload is (header & 0x7FFF) bytes.
 * - The first chunk is also tried as an INITIALIZE UPDATE response on a
 *   fresh host session (it must not open it unless it carries the right
 *   cryptogram, which random bytes do not).
 * - Header bit 15 clear: the host wraps a GET STATUS, the card unwraps it,
 *   and the payload goes to scp03_host_unwrap as the card's answer.
 * - Header bit 15 set: payload = pos(2) | xor(1) | sw(2) | data; the card
 *   protects data with sw, byte pos is XORed with xor, and the host must
 *   return data and sw when xor is 0, and must refuse a change to a MACed
 *   byte when the level has R-MAC and sw is a success status. */
#include <stdlib.h>
#include <string.h>

#include "scpkit/apdu.h"
#include "scpkit/scp03.h"

#define HU_MAX_CHUNKS 64

static const uint8_t levels[] = { 0x00, 0x01, 0x03, 0x11, 0x13, 0x33 };
static const uint8_t sizes[] = { 16, 24, 32 };
static const uint8_t kdd[SCP03_KDD_LEN] = { 9, 8, 7, 6, 5, 4, 3, 2, 1, 0 };
static const uint8_t chal[16] = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF,
                                  0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10 };
static const uint8_t card_chal[16] = { 0xC0, 0xC1, 0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xC7,
                                       0xC8, 0xC9, 0xCA, 0xCB, 0xCC, 0xCD, 0xCE, 0xCF };
static const uint8_t get_status[] = { 0x80, 0xF2, 0x40, 0x02, 0x02, 0x4F, 0x00, 0x00 };

static uint8_t cbuf[512], pbuf[512];
static uint8_t rbuf[SCP_RAPDU_MAX + 64], rpbuf[SCP_RAPDU_MAX + 64];

typedef struct hu_ctx {
    scp03_session h, c;
    scp03_keys k;
    uint8_t i, level, chal_len;
} hu_ctx;

static void setup(hu_ctx *x, uint8_t cfg)
{
    memset(x, 0, sizeof(*x));
    x->level = levels[cfg % 6];
    x->k.key_len = sizes[(cfg / 6) % 3];
    x->k.kvn = 0x01;
    for (int j = 0; j < 32; j++) {
        x->k.enc[j] = (uint8_t)(0xA0 ^ j);
        x->k.mac[j] = (uint8_t)(0xB0 ^ j);
        x->k.dek[j] = (uint8_t)(0xC0 ^ j);
    }
    x->i = SCP03_I_RMAC | SCP03_I_RENC | (((cfg / 18) & 1) ? SCP03_I_S16 : 0);
    x->chal_len = (x->i & SCP03_I_S16) ? 16 : 8;
}

static void open_pair(hu_ctx *x)
{
    scp03_card_params prm = { 0 };
    uint8_t cmd[64], resp[SCP03_IU_RESP_MAX];
    size_t n, rl;
    scp_apdu a;

    scp03_end(&x->h);
    scp03_end(&x->c);
    prm.i = x->i;
    memcpy(prm.kdd, kdd, sizeof(kdd));
    prm.fixed_card_chal = card_chal;
    if (scp03_host_begin(&x->h, &x->k, chal, x->chal_len) != SCP_OK ||
        scp03_host_initialize_update(&x->h, 0x80, cmd, sizeof(cmd), &n) != SCP_OK ||
        scp_apdu_parse(cmd, n, &a) != SCP_OK ||
        scp03_card_initialize_update(&x->c, &prm, &x->k, a.data, a.lc, resp, sizeof(resp),
                                     &rl) != SCP_OK ||
        scp03_host_iu_response(&x->h, resp, rl) != SCP_OK ||
        scp03_host_external_authenticate(&x->h, x->level, cmd, sizeof(cmd), &n) != SCP_OK ||
        scp03_card_external_authenticate(&x->c, cmd, n) != SCP_OK ||
        scp03_host_ea_result(&x->h, 0x9000) != SCP_OK)
        abort();
}

/* A random INITIALIZE UPDATE response must never authenticate the card. */
static void iu_response(hu_ctx *x, const uint8_t *p, size_t len)
{
    scp03_iu_resp ir;
    uint8_t cmd[64];
    size_t n;

    if (scp03_iu_resp_parse(p, len, &ir) == SCP_OK &&
        (ir.chal_len != 8 && ir.chal_len != 16))
        abort();
    scp03_end(&x->h);
    if (scp03_host_begin(&x->h, &x->k, chal, x->chal_len) != SCP_OK ||
        scp03_host_initialize_update(&x->h, 0x80, cmd, sizeof(cmd), &n) != SCP_OK)
        abort();
    if (scp03_host_iu_response(&x->h, p, len) == SCP_OK) {
        /* only the real card's cryptogram can get here */
        if (len < 13 + 2 * (size_t)x->chal_len)
            abort();
    }
    scp03_end(&x->h);
}

/* Host sends a GET STATUS, card takes it; both now wait for the answer. */
static void send_command(hu_ctx *x)
{
    size_t n, pn;
    if (scp03_host_wrap(&x->h, get_status, sizeof(get_status), cbuf, sizeof(cbuf), &n) !=
            SCP_OK ||
        scp03_card_unwrap(&x->c, cbuf, n, pbuf, sizeof(pbuf), &pn) != SCP_OK)
        abort();
}

static int card_answer(hu_ctx *x, const uint8_t *p, size_t len)
{
    size_t rn, pn, pos;
    uint8_t flip;
    uint16_t sw;
    int rc;

    if (len < 5)
        return 0; /* no answer: the host still waits for one */
    pos = ((size_t)p[0] << 8) | p[1];
    flip = p[2];
    sw = (uint16_t)((p[3] << 8) | p[4]);
    p += 5, len -= 5;
    if (scp03_card_wrap(&x->c, p, len, sw, rbuf, sizeof(rbuf), &rn) != SCP_OK)
        abort();
    pos %= rn;
    rbuf[pos] ^= flip;
    rc = scp03_host_unwrap(&x->h, rbuf, rn, rpbuf, sizeof(rpbuf), &pn);
    if (flip == 0) {
        size_t want = scp_sw_is_success_class(sw) ? len : 0;
        if (rc != SCP_OK || pn != want + 2 || (want && memcmp(rpbuf, p, want) != 0) ||
            rpbuf[want] != (uint8_t)(sw >> 8) || rpbuf[want + 1] != (uint8_t)sw)
            abort();
        return 1;
    }
    /* with R-MAC on a success status, every byte but the SW is MACed, and
     * a changed SW changes the MAC input too */
    if ((x->level & SCP_LEVEL_RMAC) && scp_sw_is_success_class(sw) && rc == SCP_OK &&
        scp_sw_is_success_class((uint16_t)((rbuf[rn - 2] << 8) | rbuf[rn - 1])))
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static hu_ctx x;
    size_t off = 1, pn;
    int synced = 0, chunks = 0;

    if (size < 1)
        return 0;
    setup(&x, data[0]);
    while (off + 2 <= size && chunks++ < HU_MAX_CHUNKS) {
        size_t hdr = ((size_t)data[off] << 8) | data[off + 1], len = hdr & 0x7FFF;
        off += 2;
        if (len > size - off)
            len = size - off;
        if (chunks == 1)
            iu_response(&x, data + off, len);
        if (!synced || !scp03_is_open(&x.h))
            open_pair(&x);
        send_command(&x);
        if (hdr & 0x8000) {
            synced = card_answer(&x, data + off, len);
        } else {
            if (scp03_host_unwrap(&x.h, data + off, len, rpbuf, sizeof(rpbuf), &pn) == SCP_OK &&
                pn > len)
                abort();
            synced = 0;
        }
        off += len;
    }
    scp03_end(&x.h);
    scp03_end(&x.c);
    return 0;
}
