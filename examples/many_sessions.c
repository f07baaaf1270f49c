/* scpkit example: one thread drives 1,000 secure channels at once.
 *
 * Opening a channel is a sans-I/O state machine: scp_channel_next() gives
 * the next C-APDU to send, scp_channel_feed() takes the card's R-APDU, and
 * next() says SCP_CHANNEL_OPEN when the channel is up (or returns the
 * error that ended it). Nothing blocks, so a server can keep thousands of
 * channels in flight in one event loop and move each one a step whenever
 * its card (or its network peer) answers.
 *
 * Here the 1,000 cards are in process: each is the SCP03 engine's card
 * role with its own random key set, S8 or S16, behind a tiny dispatcher
 * (INITIALIZE UPDATE, EXTERNAL AUTHENTICATE, then an echo command). The
 * channels are opened round-robin, one step per channel per pass, so all
 * 1,000 handshakes are in flight together; then one protected command goes
 * through each, and its answer is checked. Exit status 0 when all 1,000
 * channels opened and every answer was right. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scpkit/apdu.h"
#include "scpkit/channel.h"
#include "scpkit/scp03.h"

#define N_SESSIONS 1000

typedef struct card {
    scp03_session s; /* the card role */
    scp03_keys keys;
    scp03_card_params prm;
    unsigned fails;
} card;

static void sw(uint8_t *out, size_t *n, uint16_t v)
{
    out[(*n)++] = (uint8_t)(v >> 8);
    out[(*n)++] = (uint8_t)v;
}

/* One C-APDU to one card; its R-APDU in out (at least 300 bytes). */
static void card_process(card *c, const uint8_t *capdu, size_t len, uint8_t *out, size_t *n)
{
    uint8_t plain[300], answer[256];
    size_t pl;
    scp_apdu a;

    *n = 0;
    if (scp_apdu_parse(capdu, len, &a) != SCP_OK) {
        sw(out, n, 0x6700);
        return;
    }
    if ((a.cla & 0x80) && a.ins == 0x50) { /* INITIALIZE UPDATE */
        if (scp03_card_initialize_update(&c->s, &c->prm, &c->keys, a.data, a.lc, out, 250, n) !=
            SCP_OK) {
            *n = 0;
            sw(out, n, 0x6A80);
            return;
        }
        sw(out, n, 0x9000);
        return;
    }
    if ((a.cla & 0x80) && a.ins == 0x82) { /* EXTERNAL AUTHENTICATE */
        int rc = scp03_card_external_authenticate(&c->s, capdu, len);
        c->fails += rc != SCP_OK;
        sw(out, n, rc == SCP_OK ? 0x9000 : 0x6300);
        return;
    }
    if (!scp03_is_open(&c->s) || scp03_card_unwrap(&c->s, capdu, len, plain, sizeof(plain),
                                                   &pl) != SCP_OK ||
        scp_apdu_parse(plain, pl, &a) != SCP_OK) {
        scp03_end(&c->s);
        sw(out, n, 0x6982);
        return;
    }
    /* the one application command: echo the data back, reversed */
    for (size_t k = 0; k < a.lc; k++)
        answer[k] = a.data[a.lc - 1 - k];
    if (scp03_card_wrap(&c->s, answer, a.lc, 0x9000, out, 300, n) != SCP_OK) {
        *n = 0;
        sw(out, n, 0x6F00);
    }
}

int main(void)
{
    static const uint8_t aid[] = { 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00 };
    card *cards = calloc(N_SESSIONS, sizeof(*cards));
    scp_channel *ch = calloc(N_SESSIONS, sizeof(*ch));
    int *state = calloc(N_SESSIONS, sizeof(*state)); /* 0 opening, 1 open, <0 failed */
    uint8_t capdu[300], rapdu[300], cmd[64], plain[300];
    size_t n, rl, pl, open = 0, failed = 0, checked = 0, passes = 0, in_flight_max = 0;
    int rc = 1;

    if (!cards || !ch || !state)
        goto out;
    for (size_t k = 0; k < N_SESSIONS; k++) {
        card *c = &cards[k];
        scp_channel_opts o = { .kvn = 0x30, .level = 0x33, .s16 = (int)(k & 1) };
        c->keys.key_len = (k % 3 == 0) ? 32 : 16;
        c->keys.kvn = 0x30;
        if (scp_random(c->keys.enc, c->keys.key_len) != SCP_OK ||
            scp_random(c->keys.mac, c->keys.key_len) != SCP_OK ||
            scp_random(c->keys.dek, c->keys.key_len) != SCP_OK ||
            scp_random(c->prm.kdd, sizeof(c->prm.kdd)) != SCP_OK)
            goto out;
        c->prm.i = (uint8_t)(0x70 | (k & 1)); /* R-MAC, R-ENC, pseudo-random; S16 on odd */
        c->prm.seq = (uint32_t)k + 1;
        c->prm.aid = aid;
        c->prm.aid_len = sizeof(aid);
        /* the host knows the card's keys (in a server: from its HSM) */
        if (scp_channel_start(&ch[k], &c->keys, &o) != SCP_OK)
            goto out;
    }
    /* round-robin: every pass moves each channel still opening one step */
    while (open + failed < N_SESSIONS && passes < 16) {
        size_t in_flight = 0;
        passes++;
        for (size_t k = 0; k < N_SESSIONS; k++) {
            int r;
            if (state[k] != 0)
                continue;
            in_flight++;
            r = scp_channel_next(&ch[k], capdu, sizeof(capdu), &n);
            if (r == SCP_CHANNEL_SEND) {
                card_process(&cards[k], capdu, n, rapdu, &rl);
                r = scp_channel_feed(&ch[k], rapdu, rl);
                if (r == SCP_OK)
                    continue;
            }
            if (r == SCP_CHANNEL_OPEN) {
                state[k] = 1;
                open++;
            } else {
                fprintf(stderr, "channel %zu failed: %s\n", k, scp_strerror(r));
                state[k] = -1;
                failed++;
            }
        }
        if (in_flight > in_flight_max)
            in_flight_max = in_flight;
    }
    printf("%zu channels open, %zu failed, in %zu round-robin passes (%zu in flight at once)\n",
           open, failed, passes, in_flight_max);
    /* one protected command through each channel: the engine's wrap and
     * unwrap are sans-I/O too */
    for (size_t k = 0; k < N_SESSIONS; k++) {
        uint8_t data[16];
        size_t dl = 1 + k % sizeof(data);
        int good = 1;
        if (state[k] != 1)
            continue;
        for (size_t b = 0; b < dl && b < sizeof(data); b++) /* (gcc -O3 cannot see dl <= 16) */
            data[b] = (uint8_t)(k + b);
        cmd[0] = 0x80, cmd[1] = 0xEE, cmd[2] = 0x00, cmd[3] = 0x00, cmd[4] = (uint8_t)dl;
        memcpy(cmd + 5, data, dl);
        cmd[5 + dl] = 0x00;
        if (scp03_host_wrap(&ch[k].s, cmd, 6 + dl, capdu, sizeof(capdu), &n) != SCP_OK)
            good = 0;
        if (good)
            card_process(&cards[k], capdu, n, rapdu, &rl);
        if (good && scp03_host_unwrap(&ch[k].s, rapdu, rl, plain, sizeof(plain), &pl) != SCP_OK)
            good = 0;
        if (good && (pl != dl + 2 || plain[dl] != 0x90 || plain[dl + 1] != 0x00))
            good = 0;
        for (size_t b = 0; good && b < dl; b++)
            good = plain[b] == data[dl - 1 - b];
        checked += (size_t)good;
        if (!good)
            fprintf(stderr, "channel %zu: protected command failed\n", k);
    }
    printf("%zu protected commands answered and checked\n", checked);
    rc = open == N_SESSIONS && checked == N_SESSIONS ? 0 : 1;
out:
    for (size_t k = 0; cards && ch && k < N_SESSIONS; k++) {
        scp_channel_close(&ch[k]);
        scp03_end(&cards[k].s);
        scp_wipe(&cards[k].keys, sizeof(cards[k].keys));
    }
    free(cards);
    free(ch);
    free(state);
    if (rc == 0)
        printf("all %d sessions closed\n", N_SESSIONS);
    return rc;
}
