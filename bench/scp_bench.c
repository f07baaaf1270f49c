/* scp_bench: scpkit's SCP03 engine against the physical limit (issue 5).
 *
 * For AES-128 and AES-256, S8 and S16, and data sizes 0..65535: ns per host
 * wrap, host unwrap and card-side unwrap+wrap at level 33; the same through
 * scpkit's OpenSSL path and through plain OpenSSL EVP; the AES-NI floor
 * (floor.c) and every figure as a ratio to it. Then sessions per second,
 * diversifications, in-process card APDUs, session bytes and heap
 * allocations per APDU. Table on stdout; JSON with --json PATH.
 *
 *   scp_bench [--quick] [--cpu] [--json PATH]
 *   scp_bench --sessions N   session set-up only: N rounds of each size,
 *                            each a ratio to its own floor, then the
 *                            median and the least of the N
 * --cpu times every run by the thread's CPU clock instead of the wall
 * clock: on a shared machine it leaves out the time other processes held
 * the core (operation and floor alike; their cache and pipeline
 * contention stays in).
 *
 * No figure here is asserted: timings depend on the machine and its load. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "scpkit/apdu.h"
#include "scpkit/scp03.h"
#include "bench.h"
#include "report.h"

static const uint8_t aid[] = { 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00 };
static const size_t sizes[] = { 0, 16, 64, 240, 1024, 4096, 65535 };

/* ---- a session pair, opened in process ---- */

/* scpkit's OpenSSL path for the sessions opened next, or its default:
 * the backend is a per-session choice (scp_ctx), made here. */
static const scp_ctx openssl_ctx = { .backend = SCP_BACKEND_OPENSSL };
static const scp_ctx *bench_ctx;
static void bench_openssl(int on) { bench_ctx = on ? &openssl_ctx : NULL; }

typedef struct sess_job {
    scp03_keys k;
    size_t chal;
    scp03_session h, c;
} sess_job;

/* INITIALIZE UPDATE + EXTERNAL AUTHENTICATE, both roles, level 33. Fixed
 * host challenge and a pseudo-random card challenge, so no RNG is timed. */
static void handshake(void *p)
{
    static const uint8_t hc[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
    sess_job *j = p;
    scp03_card_params prm = { 0 };
    uint8_t cmd[64], resp[SCP03_IU_RESP_MAX];
    size_t n, rl;
    scp_apdu a;

    prm.i = (uint8_t)(0x70 | (j->chal == 16 ? SCP03_I_S16 : 0));
    memset(prm.kdd, 0x11, sizeof(prm.kdd));
    prm.seq = 1, prm.aid = aid, prm.aid_len = sizeof(aid);
    bench_must(scp03_host_begin(&j->h, &j->k, hc, j->chal), "host begin");
    bench_must(scp03_host_initialize_update(&j->h, 0x80, cmd, sizeof(cmd), &n), "IU");
    bench_must(scp_apdu_parse(cmd, n, &a), "IU parse");
    bench_must(scp03_card_initialize_update(&j->c, &prm, &j->k, a.data, a.lc, resp,
                                            sizeof(resp), &rl), "card IU");
    bench_must(scp03_host_iu_response(&j->h, resp, rl), "IU response");
    bench_must(scp03_host_external_authenticate(&j->h, 0x33, cmd, sizeof(cmd), &n), "EA");
    bench_must(scp03_card_external_authenticate(&j->c, cmd, n), "card EA");
    bench_must(scp03_host_ea_result(&j->h, 0x9000), "EA result");
}

static void sess_init(sess_job *j, size_t key_len, size_t chal)
{
    memset(j, 0, sizeof(*j));
    j->h.ctx = j->c.ctx = bench_ctx;
    j->k.key_len = (uint8_t)key_len;
    j->k.kvn = 0x30;
    memset(j->k.enc, 0x40, key_len);
    memset(j->k.mac, 0x41, key_len);
    memset(j->k.dek, 0x42, key_len);
    j->chal = chal;
}

/* ---- per-APDU operations ---- */

static uint8_t cmd[SCP_APDU_MAX], wcmd[SCP_APDU_MAX + 64], data[65536];
static uint8_t wresp[SCP_RAPDU_MAX + 64], out[SCP_APDU_MAX + 64];

typedef struct op_job {
    sess_job s;
    size_t n, cmd_len, wcmd_len, wresp_len;
    uint8_t chain0[16];
    uint64_t ctr0;
} op_job;

static void op_wrap(void *p)
{
    op_job *j = p;
    size_t l;
    bench_must(scp03_host_wrap(&j->s.h, cmd, j->cmd_len, out, sizeof(out), &l), "wrap");
    j->s.h.resp_pending = 0; /* no response needed for the next wrap */
}

static void op_unwrap(void *p)
{
    op_job *j = p;
    size_t l;
    j->s.h.resp_pending = 1; /* the same response again: chain and counter unchanged */
    bench_must(scp03_host_unwrap(&j->s.h, wresp, j->wresp_len, out, sizeof(out), &l), "unwrap");
}

static void op_card(void *p)
{
    op_job *j = p;
    size_t l;
    memcpy(j->s.c.chain.u.icv, j->chain0, 16); /* replay the same command */
    j->s.c.chain.counter = j->ctr0;
    bench_must(scp03_card_unwrap(&j->s.c, wcmd, j->wcmd_len, out, sizeof(out), &l), "card unwrap");
    bench_must(scp03_card_wrap(&j->s.c, data, j->n, 0x9000, out, sizeof(out), &l), "card wrap");
}

/* Open a pair and run one exchange of n data bytes each way, keeping the
 * protected command and response for the timed replays. */
static void op_prepare(op_job *j, size_t key_len, size_t chal, size_t n)
{
    size_t l;
    sess_init(&j->s, key_len, chal);
    handshake(&j->s);
    j->n = n = n > scp03_max_plain_data(&j->s.h, 1) ? scp03_max_plain_data(&j->s.h, 1) : n;
    memset(data, 0x5A, sizeof(data));
    cmd[0] = 0x80, cmd[1] = 0xE2, cmd[2] = 0x00, cmd[3] = 0x00;
    j->cmd_len = 4;
    if (n > 255)
        cmd[4] = 0, cmd[5] = (uint8_t)(n >> 8), cmd[6] = (uint8_t)n, j->cmd_len = 7;
    else if (n > 0)
        cmd[j->cmd_len++] = (uint8_t)n;
    memcpy(cmd + j->cmd_len, data, n);
    j->cmd_len += n;
    bench_must(scp03_host_wrap(&j->s.h, cmd, j->cmd_len, wcmd, sizeof(wcmd), &j->wcmd_len),
               "prepare wrap");
    memcpy(j->chain0, j->s.c.chain.u.icv, 16);
    j->ctr0 = j->s.c.chain.counter;
    bench_must(scp03_card_unwrap(&j->s.c, wcmd, j->wcmd_len, out, sizeof(out), &l),
               "prepare card unwrap");
    bench_must(scp03_card_wrap(&j->s.c, data, n, 0x9000, wresp, sizeof(wresp), &j->wresp_len),
               "prepare card wrap");
}

/* ---- AES block counts of each operation, for the floor ---- */

static size_t blocks(size_t bytes) { return (bytes + 15) / 16; }
static size_t padded(size_t n) { return n ? (n / 16 + 1) * 16 : 0; }

typedef struct chains {
    size_t a, b; /* CBC chain (ICV + blocks), CMAC chain */
} chains;

/* wrap: ICV + CBC-encrypt; CMAC over chain | header(Lc') | ciphertext */
static chains wrap_chains(size_t n, size_t chal)
{
    size_t pl = padded(n), hl = pl + chal > 255 ? 7 : 5;
    chains c = { pl ? 1 + pl / 16 : 0, blocks(16 + hl + pl) };
    return c;
}

/* unwrap: CMAC over chain | ciphertext | SW; ICV + CBC-decrypt (parallel) */
static chains unwrap_chains(size_t n)
{
    size_t pl = padded(n);
    chains c = { pl ? 1 + pl / 16 : 0, blocks(16 + pl + 2) };
    return c;
}

/* Every AES block a level-33 handshake needs, both roles (host and card
 * in one process), with c = challenge length (8 S8, 16 S16) and a
 * pseudo-random card challenge. A CMAC over m bytes is ceil(m / 16)
 * blocks; each key that MACs needs L = AES(K, 0^16) once for its subkeys
 * K1, K2 (RFC 4493 2.3). Key expansion is not counted. Per side:
 *   GPC Amd D 6.2.1 session keys: S-ENC from Key-ENC, S-MAC and S-RMAC
 *     from Key-MAC, each KDF(16-byte label | host chal | card chal):
 *     ceil((16 + 2c) / 16) blocks per 128 output bits, so
 *     3 x (key bits / 128) x ceil((16 + 2c) / 16);
 *   6.2.2.2 card cryptogram and 6.2.2.3 host cryptogram (made by one
 *     side, checked by the other), KDF under S-MAC with L = 8c:
 *     2 x ceil((16 + 2c) / 16);
 *   7.1.2 EXTERNAL AUTHENTICATE C-MAC, CMAC(S-MAC, 0^16 | 84 82 33 00 Lc |
 *     host cryptogram): its first block is AES(S-MAC, 0^16) = L, already
 *     made for the subkeys, so ceil((16 + 5 + c) / 16) - 1 blocks more;
 *   subkeys: L of Key-ENC, Key-MAC, S-MAC and S-RMAC (S-ENC never MACs):
 *     4 blocks.
 * The card also makes its challenge, 6.2.2.1: KDF(Key-ENC, 02, L = 8c,
 * sequence counter (3) | SD AID (8)): ceil((16 + 3 + 8) / 16) = 2 blocks.
 * So:
 *   AES-128 S8:  side = 3x1x2 + 2x2 + (2-1) + 4 = 15, card +2: 32
 *   AES-128 S16: side = 3x1x3 + 2x3 + (3-1) + 4 = 21, card +2: 44
 *   AES-256 S8:  side = 3x2x2 + 2x2 + (2-1) + 4 = 21, card +2: 44
 *   AES-256 S16: side = 3x2x3 + 2x3 + (3-1) + 4 = 30, card +2: 62 */
static size_t session_blocks(size_t kl, size_t c)
{
    size_t ctx = blocks(16 + 2 * c);
    size_t side = 3 * (kl / 16) * ctx + 2 * ctx + (blocks(16 + 5 + c) - 1) + 4;
    size_t chal = blocks(16 + 3 + sizeof(aid));
    return 2 * side + chal;
}

/* ---- the table ---- */

static void bench_apdu_ops(size_t kl, size_t chal, size_t n)
{
    static op_job j;
    bench_row w = { "wrap", (int)kl * 8, chal == 16, 0, 0, 0, 0, -1, -1, 0, -1, NULL };
    bench_row u = w, c = w;
    evp_ref *ref = evp_ref_new(kl, chal);
    chains cw, cu;

    u.op = "unwrap", c.op = "card";
    bench_openssl(1); /* scpkit on its OpenSSL path */
    op_prepare(&j, kl, chal, n);
    u.ossl_path_ns = bench_ns(op_unwrap, &j);
    c.ossl_path_ns = bench_ns(op_card, &j);
    w.ossl_path_ns = bench_ns(op_wrap, &j);
    scp03_end(&j.s.h), scp03_end(&j.s.c);
    bench_openssl(0);
    op_prepare(&j, kl, chal, n);
    w.n = u.n = c.n = (long)j.n;
    cw = wrap_chains(j.n, chal), cu = unwrap_chains(j.n);
    floor_pair(op_unwrap, &j, SCP_AES_OF(&j.s.h.s_mac), cu.a, cu.b, &u.ns, &u.floor_ns);
    /* card: unwrap the command (the wrap's chains) + wrap the response
     * (the unwrap's chains), one after the other */
    floor_pair(op_card, &j, SCP_AES_OF(&j.s.h.s_mac), cw.a + cu.a, cw.b + cu.b, &c.ns, &c.floor_ns);
    floor_pair(op_wrap, &j, SCP_AES_OF(&j.s.h.s_mac), cw.a, cw.b, &w.ns, &w.floor_ns);
    w.evp_kept_ns = evp_ref_wrap_ns(ref, j.n, 0);
    w.evp_fresh_ns = evp_ref_wrap_ns(ref, j.n, 1);
    u.evp_kept_ns = evp_ref_unwrap_ns(ref, j.n, 0);
    u.evp_fresh_ns = evp_ref_unwrap_ns(ref, j.n, 1);
    evp_ref_free(ref);
    scp03_end(&j.s.h), scp03_end(&j.s.c);
    report_row(&w);
    report_row(&u);
    report_row(&c);
}

/* One full exchange of j->n bytes each way: host wrap, card unwrap, card
 * wrap, host unwrap. */
static void exchange(void *p)
{
    op_job *j = p;
    size_t l, wl, rl;
    bench_must(scp03_host_wrap(&j->s.h, cmd, j->cmd_len, wcmd, sizeof(wcmd), &wl), "wrap");
    bench_must(scp03_card_unwrap(&j->s.c, wcmd, wl, out, sizeof(out), &l), "card unwrap");
    bench_must(scp03_card_wrap(&j->s.c, data, j->n, 0x9000, wresp, sizeof(wresp), &rl),
               "card wrap");
    bench_must(scp03_host_unwrap(&j->s.h, wresp, rl, out, sizeof(out), &l), "unwrap");
}

static double allocs_per_apdu(int openssl_path)
{
    static op_job j;
    unsigned long before;
    const int n = 1000;
    bench_openssl(openssl_path);
    op_prepare(&j, 16, 8, 240);
    op_unwrap(&j); /* the host still waits for the prepared response */
    before = bench_allocs;
    for (int i = 0; i < n; i++) /* real exchanges: the chain moves on */
        exchange(&j);
    before = bench_allocs - before;
    scp03_end(&j.s.h), scp03_end(&j.s.c);
    bench_openssl(0);
    return (double)before / n;
}

static void bench_sessions(size_t kl, size_t chal)
{
    static sess_job j;
    size_t t = session_blocks(kl, chal);
    unsigned long before, ossl_allocs;
    bench_row r = { "session", (int)kl * 8, chal == 16, -1, 0, 0, 0, -1, -1, 0, 0, NULL };

    sess_init(&j, kl, chal);
    bench_openssl(1);
    r.ossl_path_ns = bench_ns(handshake, &j);
    before = bench_allocs;
    handshake(&j);
    ossl_allocs = bench_allocs - before; /* EVP contexts per key: shows the counter works */
    bench_openssl(0);
    handshake(&j); /* keys to take the floor's schedule from */
    floor_pair(handshake, &j, SCP_AES_OF(&j.h.s_mac), (t + 1) / 2, t / 2, &r.ns, &r.floor_ns);
    before = bench_allocs;
    handshake(&j);
    r.allocs = bench_allocs_counted() ? (double)(bench_allocs - before) : -1;
    r.note = "floor: all AES blocks as two interleaved chains; no key expansion";
    scp03_end(&j.h), scp03_end(&j.c);
    report_row(&r);
    if (bench_allocs_counted())
        printf("  (heap allocations per session on the OpenSSL path: %lu)\n", ossl_allocs);
}

static int cmp_ratio(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* --sessions: the session rows alone, rounds times over (short runs, as
 * --quick), each round's ratio to the floor measured beside it. */
static int session_rounds(int rounds)
{
    static sess_job j;
    static const size_t kls[] = { 16, 16, 32, 32 }, chs[] = { 8, 16, 8, 16 };
    double r[4][64], ns[4][64];

    if (rounds < 1 || rounds > 64)
        return 2;
    bench_quick = 1;
    for (int k = 0; k < rounds; k++)
        for (int v = 0; v < 4; v++) {
            size_t t = session_blocks(kls[v], chs[v]);
            double fl;
            sess_init(&j, kls[v], chs[v]);
            handshake(&j);
            floor_pair(handshake, &j, SCP_AES_OF(&j.h.s_mac), (t + 1) / 2, t / 2, &ns[v][k], &fl);
            r[v][k] = fl > 0 ? ns[v][k] / fl : -1;
            scp03_end(&j.h), scp03_end(&j.c);
        }
    for (int v = 0; v < 4; v++) {
        printf("session AES-%zu S%zu:", kls[v] * 8, chs[v]);
        for (int k = 0; k < rounds; k++)
            printf(" %.0fns/%.2fx", ns[v][k], r[v][k]);
        qsort(r[v], (size_t)rounds, sizeof(double), cmp_ratio);
        printf("  median %.2fx min %.2fx\n", r[v][rounds / 2], r[v][0]);
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *json = NULL;
    int only_scp11 = 0, sessions = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            bench_quick = 1;
        else if (strcmp(argv[i], "--cpu") == 0)
            bench_cpu_clock = 1;
        else if (strcmp(argv[i], "--scp11") == 0)
            only_scp11 = 1; /* bench/scp11.c's rows alone */
        else if (strcmp(argv[i], "--sessions") == 0 && i + 1 < argc)
            sessions = atoi(argv[++i]);
        else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc)
            json = argv[++i];
        else {
            fprintf(stderr, "usage: scp_bench [--quick] [--cpu] [--scp11] [--json PATH] [--sessions N]\n");
            return 2;
        }
    }
    /* the counts worked out above session_blocks (bench_smoke runs this) */
    if (session_blocks(16, 8) != 32 || session_blocks(16, 16) != 44 ||
        session_blocks(32, 8) != 44 || session_blocks(32, 16) != 62) {
        fprintf(stderr, "scp_bench: session floor block counts are not 32/44/44/62\n");
        return 1;
    }
    if (sessions != 0)
        return session_rounds(sessions);
    report_begin(sizeof(scp03_session));
    if (only_scp11) {
        bench_scp11();
        return report_end(json);
    }
    for (size_t kl = 16; kl <= 32; kl += 16)
        for (size_t chal = 8; chal <= 16; chal += 8)
            for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
                bench_apdu_ops(kl, chal, sizes[i]);
    for (size_t kl = 16; kl <= 32; kl += 16)
        for (size_t chal = 8; chal <= 16; chal += 8)
            bench_sessions(kl, chal);
    {
        /* the AES unit's overlap, under AES-128 and AES-256 keys */
        static const uint8_t k[32] = { 1 };
        scp_aes a;
        for (size_t kl = 16; kl <= 32; kl += 16)
            if (scp_aes_init(&a, k, kl) == SCP_OK) {
                floor_sweep(&a);
                scp_aes_clear(&a);
            }
    }
    bench_extra();
    bench_scp11();
    report_allocs(bench_allocs_counted() ? allocs_per_apdu(0) : -1,
                  bench_allocs_counted() ? allocs_per_apdu(1) : -1);
    return report_end(json);
}
