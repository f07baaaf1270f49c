/* Memory footprint of the engine (issue 13 item 3), measured, not assumed:
 *  - sizeof(scp03_session), the state a server keeps per card;
 *  - the stack one protected exchange takes: host wrap, card unwrap, card
 *    wrap, host unwrap at level 33 with 240 and 4096 bytes each way, on
 *    the default backend and on OpenSSL's; each call of the handshake
 *    (both roles, S8 and S16, pseudo-random card challenge, AES-128 and
 *    AES-256); and
 *    scp_channel_send with command chaining over an in-process transport;
 *  - no heap on the APDU path: malloc is counted around the exchanges.
 * The stack is measured by painting 64 KiB below this frame, running the
 * operation, and finding the deepest byte it changed. Without sanitizers
 * only (they move locals off the native stack). */
#include <stdlib.h>

#include "scpkit/apdu.h"
#include "crypto/aes.h"
#include "scpkit/channel.h"
#include "scpkit/crypto.h"
#include "scpkit/scp03.h"
#include "test.h"

#define SCAN 65536
#define PAINT 0xA5
/* Issue 13 item 3: at most 512 bytes of state per session. The session
 * keeps S-MAC expanded (every command MACs with it) and S-ENC and S-RMAC
 * raw, expanded on the stack per use (BENCHMARKS.md has the cost); the
 * stack bounds below include those expansions. */
#define SESSION_MAX 512
#define EXCHANGE_STACK_MAX 4096
#define CHANNEL_SEND_STACK_MAX 4096
#define HANDSHAKE_STACK_MAX 4096

#pragma GCC diagnostic ignored "-Wuninitialized"
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"

static const uint8_t aid[] = { 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00 };
static scp03_session h, c;
static uint8_t cmd[SCP_APDU_MAX], wire[SCP_APDU_MAX + 64], plain[SCP_APDU_MAX + 64];
static uint8_t data[8192];
static size_t data_len;
static int op_rc;

__attribute__((noinline)) static void paint(void)
{
    volatile uint8_t b[SCAN];
    for (size_t i = 0; i < SCAN; i++)
        b[i] = PAINT;
}

/* Bytes below the caller's frame that the last operation wrote. */
__attribute__((noinline)) static size_t used(void)
{
    volatile uint8_t b[SCAN];
    size_t i = 0;
    while (i < SCAN && b[i] == PAINT)
        i++;
    return SCAN - i;
}

__attribute__((noinline)) static void exchange(void)
{
    size_t cl = 0, wl, pl, rl;
    scp_apdu a = { 0 };
    a.cla = 0x80, a.ins = 0xE2, a.lc = data_len, a.data = data, a.has_le = 1, a.le = 256;
    op_rc = scp_apdu_encode(&a, cmd, sizeof(cmd), &cl);
    if (op_rc == SCP_OK)
        op_rc = scp03_host_wrap(&h, cmd, cl, wire, sizeof(wire), &wl);
    if (op_rc == SCP_OK)
        op_rc = scp03_card_unwrap(&c, wire, wl, plain, sizeof(plain), &pl);
    if (op_rc == SCP_OK && (pl != cl || memcmp(plain, cmd, cl) != 0))
        op_rc = -100;
    if (op_rc == SCP_OK)
        op_rc = scp03_card_wrap(&c, data, data_len, 0x9000, wire, sizeof(wire), &rl);
    if (op_rc == SCP_OK)
        op_rc = scp03_host_unwrap(&h, wire, rl, plain, sizeof(plain), &pl);
    if (op_rc == SCP_OK && (pl != data_len + 2 || memcmp(plain, data, data_len) != 0))
        op_rc = -101;
}

static size_t measure(void (*op)(void))
{
    paint();
    op();
    return used();
}

static void open_pair(const scp_ctx *ctx, size_t key_len, uint8_t i)
{
    scp03_card_params prm = { .i = i, .seq = 3, .aid = aid, .aid_len = sizeof(aid) };
    scp03_keys k = { 0 };
    k.key_len = (uint8_t)key_len, k.kvn = 0x30;
    test_rand_bytes(k.enc, key_len), test_rand_bytes(k.mac, key_len);
    memset(prm.kdd, 0x22, sizeof(prm.kdd));
    h.ctx = c.ctx = ctx;
    CHECK_OK(test_pair_open(&h, &c, &k, &k, &prm, NULL, 0x33));
}

static const scp_ctx *hs_ctx;
static size_t hs_key_len;
static uint8_t hs_i;
static scp03_keys hs_k;
static scp03_card_params hs_prm;
static uint8_t hs_cmd[64], hs_resp[SCP03_IU_RESP_MAX];
static size_t hs_n, hs_rl;
static scp_apdu hs_a;

/* The handshake one engine call at a time, each measured alone: INITIALIZE
 * UPDATE and EXTERNAL AUTHENTICATE, host and card (fixed host challenge:
 * the RNG's stack is OpenSSL's). */
__attribute__((noinline)) static void hs_begin(void)
{
    static const uint8_t hc[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
    op_rc = scp03_host_begin(&h, &hs_k, hc, (hs_i & SCP03_I_S16) ? 16 : 8);
}
__attribute__((noinline)) static void hs_host_iu(void)
{
    op_rc = scp03_host_initialize_update(&h, 0x00, hs_cmd, sizeof(hs_cmd), &hs_n);
    if (op_rc == SCP_OK)
        op_rc = scp_apdu_parse(hs_cmd, hs_n, &hs_a);
}
__attribute__((noinline)) static void hs_card_iu(void)
{
    op_rc = scp03_card_initialize_update(&c, &hs_prm, &hs_k, hs_a.data, hs_a.lc, hs_resp,
                                         sizeof(hs_resp), &hs_rl);
}
__attribute__((noinline)) static void hs_host_iu_resp(void)
{
    op_rc = scp03_host_iu_response(&h, hs_resp, hs_rl);
}
__attribute__((noinline)) static void hs_host_ea(void)
{
    op_rc = scp03_host_external_authenticate(&h, 0x33, hs_cmd, sizeof(hs_cmd), &hs_n);
}
__attribute__((noinline)) static void hs_card_ea(void)
{
    op_rc = scp03_card_external_authenticate(&c, hs_cmd, hs_n);
    if (op_rc == SCP_OK)
        op_rc = scp03_host_ea_result(&h, 0x9000);
}

/* Every call of one handshake; the deepest stack any of them took. */
static size_t handshake_stack(void)
{
    static void (*const steps[])(void) = { hs_begin,        hs_host_iu, hs_card_iu,
                                           hs_host_iu_resp, hs_host_ea, hs_card_ea };
    size_t worst = 0, st;
    hs_prm = (scp03_card_params){ .i = hs_i, .seq = 3, .aid = aid, .aid_len = sizeof(aid) };
    memset(hs_prm.kdd, 0x22, sizeof(hs_prm.kdd));
    memset(&hs_k, 0, sizeof(hs_k));
    hs_k.key_len = (uint8_t)hs_key_len, hs_k.kvn = 0x30;
    memset(hs_k.enc, 0x41, hs_key_len), memset(hs_k.mac, 0x42, hs_key_len);
    h.ctx = c.ctx = hs_ctx;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        st = measure(steps[i]);
        CHECK_OK(op_rc);
        if (op_rc != SCP_OK)
            return 0;
        worst = st > worst ? st : worst;
    }
    return worst;
}

/* ---- scp_channel_send over an in-process card-role engine ---- */

static int card_transmit(void *ctx, const uint8_t *capdu, size_t len, uint8_t *rapdu,
                         size_t rapdu_size, size_t *rapdu_len)
{
    static uint8_t p[SCP_APDU_MAX];
    size_t pl;
    int rc;
    (void)ctx;
    if ((rc = scp03_card_unwrap(&c, capdu, len, p, sizeof(p), &pl)) != SCP_OK)
        return rc;
    /* answer with the first byte of the data (or none) */
    return scp03_card_wrap(&c, p + 5, pl > 5 ? 1 : 0, 0x9000, rapdu, rapdu_size, rapdu_len);
}

static scp_channel ch;
static scp_transport tr = { .transmit = card_transmit };

__attribute__((noinline)) static void channel_send(void)
{
    uint8_t resp[16];
    size_t rl;
    uint16_t sw;
    size_t n; /* 600 bytes: chained in three parts */
    cmd[0] = 0x80, cmd[1] = 0xE2, cmd[2] = 0, cmd[3] = 0, cmd[4] = 0;
    cmd[5] = 0x02, cmd[6] = 0x58; /* extended Lc 600 */
    memmove(cmd + 7, data, 600);
    n = 7 + 600;
    op_rc = scp_channel_send(&ch, cmd, n, resp, sizeof(resp), &rl, &sw);
    if (op_rc == SCP_OK && (sw != 0x9000 || rl != 1))
        op_rc = -102;
}

int main(void)
{
    static const scp_ctx ossl = { .backend = SCP_BACKEND_OPENSSL };
    static const size_t lens[] = { 240, 4096 };
    size_t worst = 0, st;

    test_seed(11);
    test_rand_bytes(data, sizeof(data));
    printf("sizeof(scp03_session) = %zu bytes (S-MAC expanded: %zu, S-ENC and S-RMAC raw: "
           "2 x %zu)\n",
           sizeof(scp03_session), sizeof(scp_aes), sizeof(scp_aes_raw));
    printf("sizeof(scp_channel) = %zu bytes\n", sizeof(scp_channel));
    CHECK(sizeof(scp03_session) <= SESSION_MAX);
    for (int b = 0; b < 2; b++) {
        for (size_t kl = 16; kl <= 32; kl += 16) {
            for (size_t li = 0; li < 2; li++) {
                open_pair(b ? &ossl : NULL, kl, 0x71);
                data_len = lens[li];
                exchange(); /* lazy binding done, schedules warm */
                st = measure(exchange);
                CHECK_OK(op_rc);
                printf("protected exchange, %s, AES-%zu, %zu bytes each way: %zu bytes of stack\n",
                       scp_ctx_backend_name(b ? &ossl : NULL), kl * 8, data_len, st);
                worst = st > worst ? st : worst;
                scp03_end(&h);
                scp03_end(&c);
            }
        }
    }
    CHECK(worst > 0 && worst <= EXCHANGE_STACK_MAX);
    worst = 0;
    for (int b = 0; b < 2; b++) {
        for (hs_key_len = 16; hs_key_len <= 32; hs_key_len += 16) {
            for (int s16 = 0; s16 < 2; s16++) {
                hs_ctx = b ? &ossl : NULL;
                hs_i = (uint8_t)(0x70 | (s16 ? SCP03_I_S16 : 0));
                (void)handshake_stack(); /* lazy binding done */
                scp03_end(&h);
                scp03_end(&c);
                st = handshake_stack();
                printf("handshake, %s, AES-%zu, S%d: %zu bytes of stack (deepest call)\n",
                       scp_ctx_backend_name(hs_ctx), hs_key_len * 8, s16 ? 16 : 8, st);
                worst = st > worst ? st : worst;
                scp03_end(&h);
                scp03_end(&c);
            }
        }
    }
    CHECK(worst > 0 && worst <= HANDSHAKE_STACK_MAX);
    /* the blocking channel: a session opened by the pair, handed over */
    open_pair(NULL, 16, 0x71);
    memset(&ch, 0, sizeof(ch));
    ch.t = &tr;
    ch.s = h;
    ch.level = 0x33;
    channel_send();
    st = measure(channel_send);
    CHECK_OK(op_rc);
    printf("scp_channel_send, 600 bytes chained in 3 parts: %zu bytes of stack\n", st);
    CHECK(st <= CHANNEL_SEND_STACK_MAX);
    scp03_end(&ch.s);
    scp03_end(&c);
    return test_done("test_footprint");
}
