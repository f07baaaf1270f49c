/* Fuzz target: the virtual card's command dispatcher (src/card), one
 * session's worth of APDUs per input, with the engine's host role able to
 * open a real channel so protected commands reach the ISD and the store
 * application. The state lives in memory (no disk writes while fuzzing)
 * and starts from the same fresh card for every input.
 *
 * Input: one configuration byte, then chunks, each a 2-byte big-endian
 * header and a payload of (header & 0x3FFF) bytes (the last may be cut):
 * - header bits 15..14 = 00: the payload goes to the card as is;
 * - 01: a handshake through the host engine with the factory keys:
 *       payload[0] picks the level (mod 6), payload[1] (if any) the KVN;
 * - 10: the payload is a plain C-APDU the host wraps when its channel is
 *       open (sent as is otherwise), and the host unwraps the answer;
 * - 11: power-on reset.
 * Configuration byte: bits 6..0: i (mod 10, from the list below), and the
 * profile (yubikey when (bits 6..0) / 10 is odd, else gp23: the GET DATA
 * forms and key rules differ); bit 7: level 33 only.
 * Invariants: scp_card_process never fails and always answers >= 2 bytes. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "card/internal.h"
#include "scpkit/card.h"
#include "scpkit/scp03.h"

#define FC_MAX_CHUNKS 64

static const uint8_t is[] = { 0x00, 0x01, 0x10, 0x11, 0x20, 0x21, 0x60, 0x61, 0x70, 0x71 };
static const uint8_t levels[] = { 0x00, 0x01, 0x03, 0x11, 0x13, 0x33 };
static scp_card *card;
static card_state pristine;
static uint8_t rbuf[SCP_RAPDU_MAX], wbuf[SCP_APDU_MAX + 64], pbuf[SCP_RAPDU_MAX];

static void setup_once(void)
{
    char dir[] = "/tmp/scpfuzzcard.XXXXXX";
    char path[64];
    scp_card_init_opts o = { .profile = "gp23", .scp_i = -1, .kvn = -1 };
    if (mkdtemp(dir) == NULL || scp_card_init(dir, &o) != SCP_OK ||
        scp_card_open(dir, &card, NULL, 0) != SCP_OK)
        abort();
    card->mem_only = 1;
    if (getenv("SCP_FUZZ_CARD_TRACE") != NULL) /* to see what a seed does */
        scp_card_set_trace(card, stderr);
    pristine = card->st;
    /* the directory is not needed any more: the state stays in memory */
    snprintf(path, sizeof(path), "%s/%s", dir, CARD_STATE_FILE);
    unlink(path);
    snprintf(path, sizeof(path), "%s/%s", dir, CARD_LOCK_FILE);
    unlink(path);
    rmdir(dir);
}

static size_t xfer(const uint8_t *p, size_t n)
{
    size_t rn = 0;
    if (scp_card_process(card, p, n, rbuf, sizeof(rbuf), &rn) != SCP_OK || rn < 2 ||
        rn > sizeof(rbuf))
        abort();
    return rn;
}

static void handshake(scp03_session *h, const uint8_t *p, size_t len)
{
    scp03_keys k;
    uint8_t cmd[64];
    size_t n, rn;
    memset(&k, 0, sizeof(k));
    for (int j = 0; j < 16; j++)
        k.enc[j] = k.mac[j] = k.dek[j] = (uint8_t)(0x40 + j);
    k.key_len = 16;
    k.kvn = len > 1 ? p[1] : 0;
    scp03_end(h);
    if (scp03_host_begin(h, &k, NULL, (card->st.i & SCP03_I_S16) ? 16 : 8) != SCP_OK ||
        scp03_host_initialize_update(h, 0x80, cmd, sizeof(cmd), &n) != SCP_OK)
        return;
    rn = xfer(cmd, n);
    if (rbuf[rn - 2] != 0x90 || scp03_host_iu_response(h, rbuf, rn - 2) != SCP_OK)
        goto end;
    if (scp03_host_external_authenticate(h, levels[len > 0 ? p[0] % 6 : 5], cmd, sizeof(cmd),
                                         &n) != SCP_OK)
        goto end;
    rn = xfer(cmd, n);
    if (scp03_host_ea_result(h, (uint16_t)(rbuf[rn - 2] << 8 | rbuf[rn - 1])) == SCP_OK)
        return;
end:
    scp03_end(h);
}

static void host_send(scp03_session *h, const uint8_t *p, size_t len)
{
    size_t wn = 0, rn, pn;
    if (!scp03_is_open(h) || scp03_host_wrap(h, p, len, wbuf, sizeof(wbuf), &wn) != SCP_OK) {
        xfer(p, len);
        return;
    }
    rn = xfer(wbuf, wn);
    if (scp03_host_unwrap(h, rbuf, rn, pbuf, sizeof(pbuf), &pn) != SCP_OK)
        scp03_end(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static scp03_session h;
    size_t off = 1;
    int chunks = 0;

    if (card == NULL)
        setup_once();
    if (size < 1)
        return 0;
    card->st = pristine;
    card->st.i = is[(data[0] & 0x7F) % sizeof(is)];
    card->st.profile = (((data[0] & 0x7F) / sizeof(is)) & 1) ? CARD_PROFILE_YUBIKEY
                                                              : CARD_PROFILE_GP23;
    card->st.min_level = (data[0] & 0x80) ? 0x33 : 0;
    scp_card_reset(card);
    memset(&h, 0, sizeof(h));
    while (off + 2 <= size && chunks++ < FC_MAX_CHUNKS) {
        size_t hdr = ((size_t)data[off] << 8) | data[off + 1], len = hdr & 0x3FFF;
        off += 2;
        if (len > size - off)
            len = size - off;
        switch (hdr >> 14) {
        case 0: xfer(data + off, len); break;
        case 1: handshake(&h, data + off, len); break;
        case 2: host_send(&h, data + off, len); break;
        default: scp_card_reset(card); break;
        }
        off += len;
    }
    scp03_end(&h);
    return 0;
}
