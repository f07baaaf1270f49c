/* Fuzz target: the card role's scp03_card_unwrap on a session opened in
 * process (host and card engines, fixed keys and challenges).
 *
 * Input: one configuration byte, then chunks, each a 2-byte big-endian
 * header and a payload of (header & 0x7FFF) bytes (the last chunk may be
 * cut short):
 * - header bit 15 clear: the payload goes to scp03_card_unwrap as is;
 * - header bit 15 set: the payload is pos(2) | xor(1) | a plain C-APDU,
 *   which the host session wraps; byte pos of the wrapped command is then
 *   XORed with xor. Unchanged, the card must unwrap it to the same command
 *   and the host must unwrap the card's protected answer; changed in a
 *   MACed byte at a MACing level, the card must refuse it.
 * Configuration byte: level (mod 6), key length (/6 mod 3), S16 (/18 & 1),
 * pseudo-random card challenge (/36 & 1). */
#include <stdlib.h>
#include <string.h>

#include "scpkit/apdu.h"
#include "scpkit/scp03.h"

#define UW_MAX_CHUNKS 64

static const uint8_t levels[] = { 0x00, 0x01, 0x03, 0x11, 0x13, 0x33 };
static const uint8_t sizes[] = { 16, 24, 32 };
static const uint8_t aid[] = { 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00 };
static const uint8_t kdd[SCP03_KDD_LEN] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 };
static const uint8_t chal[16] = { 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
                                  0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF, 0x00 };
static const uint8_t card_chal[16] = { 0xC0, 0xC1, 0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xC7,
                                       0xC8, 0xC9, 0xCA, 0xCB, 0xCC, 0xCD, 0xCE, 0xCF };

static uint8_t wbuf[SCP_APDU_MAX + 64], pbuf[SCP_APDU_MAX + 64];
static uint8_t rbuf[SCP_RAPDU_MAX + 64], rpbuf[SCP_RAPDU_MAX + 64];

typedef struct uw_ctx {
    scp03_session h, c;
    scp03_keys k;
    uint8_t i, level, chal_len;
} uw_ctx;

static void setup(uw_ctx *x, uint8_t cfg)
{
    memset(x, 0, sizeof(*x));
    x->level = levels[cfg % 6];
    x->k.key_len = sizes[(cfg / 6) % 3];
    x->k.kvn = 0x30;
    for (int j = 0; j < 32; j++) {
        x->k.enc[j] = (uint8_t)(0x40 + j);
        x->k.mac[j] = (uint8_t)(0x60 + j);
        x->k.dek[j] = (uint8_t)(0x80 + j);
    }
    x->i = SCP03_I_RMAC | SCP03_I_RENC;
    if ((cfg / 18) & 1)
        x->i |= SCP03_I_S16;
    if ((cfg / 36) & 1)
        x->i |= SCP03_I_PSEUDO_RANDOM;
    x->chal_len = (x->i & SCP03_I_S16) ? 16 : 8;
}

/* (Re)open both sessions; the handshake must succeed. */
static void open_pair(uw_ctx *x)
{
    scp03_card_params prm = { 0 };
    uint8_t cmd[64], resp[SCP03_IU_RESP_MAX];
    size_t n, rl;
    scp_apdu a;

    scp03_end(&x->h);
    scp03_end(&x->c);
    prm.i = x->i;
    memcpy(prm.kdd, kdd, sizeof(kdd));
    prm.seq = 1;
    prm.aid = aid;
    prm.aid_len = sizeof(aid);
    prm.fixed_card_chal = (x->i & SCP03_I_PSEUDO_RANDOM) ? NULL : card_chal;
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

/* Bytes of a command that its C-MAC covers: header, Lc field and data
 * (everything but the Le field). */
static size_t mac_covered(const uint8_t *w, size_t n)
{
    scp_apdu a;
    if (scp_apdu_parse(w, n, &a) != SCP_OK)
        abort();
    if (a.lc == 0)
        return 4;
    return 4 + (a.extended ? 3 : 1) + a.lc;
}

/* The card's view of the command must be the host's, field by field. */
static void same_command(const uint8_t *plain, size_t pl, const uint8_t *got, size_t gl)
{
    scp_apdu a, b;
    if (scp_apdu_parse(plain, pl, &a) != SCP_OK || scp_apdu_parse(got, gl, &b) != SCP_OK)
        abort();
    if (a.cla != b.cla || a.ins != b.ins || a.p1 != b.p1 || a.p2 != b.p2 || a.lc != b.lc ||
        a.has_le != b.has_le || a.le != b.le)
        abort();
    if (a.lc > 0 && memcmp(a.data, b.data, a.lc) != 0)
        abort();
}

/* Answer the command just unwrapped and check the host reads the answer. */
static void answer(uw_ctx *x, const uint8_t *data, size_t len)
{
    size_t rn, pn;
    if (len > 200)
        len = 200;
    if (scp03_card_wrap(&x->c, data, len, 0x9000, rbuf, sizeof(rbuf), &rn) != SCP_OK ||
        scp03_host_unwrap(&x->h, rbuf, rn, rpbuf, sizeof(rpbuf), &pn) != SCP_OK)
        abort();
    if (pn != len + 2 || (len > 0 && memcmp(rpbuf, data, len) != 0) || rpbuf[len] != 0x90)
        abort();
}

/* Returns 1 when the two sessions are still in step. */
static int host_chunk(uw_ctx *x, const uint8_t *p, size_t len)
{
    size_t wn, pn, pos, covered;
    uint8_t flip;
    int rc;

    if (len < 3)
        return 1;
    pos = ((size_t)p[0] << 8) | p[1];
    flip = p[2];
    p += 3, len -= 3;
    if (scp03_host_wrap(&x->h, p, len, wbuf, sizeof(wbuf), &wn) != SCP_OK)
        return scp03_is_open(&x->h); /* the host refused it: nothing sent */
    covered = mac_covered(wbuf, wn);
    pos %= wn;
    wbuf[pos] ^= flip;
    rc = scp03_card_unwrap(&x->c, wbuf, wn, pbuf, sizeof(pbuf), &pn);
    if (flip == 0) {
        if (rc != SCP_OK)
            abort();
        same_command(p, len, pbuf, pn);
        scp_apdu a;
        if (scp_apdu_parse(p, len, &a) != SCP_OK)
            abort();
        answer(x, a.data, a.lc);
        return 1;
    }
    if ((x->level & SCP_LEVEL_CMAC) && pos < covered && rc == SCP_OK)
        abort(); /* a changed MACed byte went through */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uw_ctx x;
    size_t off = 1, pn;
    int synced = 1, chunks = 0;

    if (size < 1)
        return 0;
    setup(&x, data[0]);
    open_pair(&x);
    while (off + 2 <= size && chunks++ < UW_MAX_CHUNKS) {
        size_t hdr = ((size_t)data[off] << 8) | data[off + 1], len = hdr & 0x7FFF;
        off += 2;
        if (len > size - off)
            len = size - off;
        if (hdr & 0x8000) {
            if (!synced || !scp03_is_open(&x.c))
                open_pair(&x);
            synced = host_chunk(&x, data + off, len);
        } else {
            if (!scp03_is_open(&x.c))
                open_pair(&x);
            /* any answer is fine here; only a crash or a sanitizer report is not */
            if (scp03_card_unwrap(&x.c, data + off, len, pbuf, sizeof(pbuf), &pn) == SCP_OK &&
                pn > sizeof(pbuf))
                abort();
            synced = 0;
        }
        off += len;
    }
    scp03_end(&x.h);
    scp03_end(&x.c);
    return 0;
}
