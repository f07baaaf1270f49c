/* No hidden state (issue 13 item 3): 8 threads run host-vs-card SCP03
 * sessions at once, each thread with its own crypto context: half on the
 * default backend, half on OpenSSL's, all with a caller-supplied RNG
 * whose bytes must be the challenges the engine sends. Every session
 * opens, carries protected commands both ways (checked byte for byte) and
 * dies on a tampered command. Built with -DSCP_TSAN=ON the same binary is
 * the ThreadSanitizer run (any data race fails it); in every other build
 * it checks that concurrent sessions never disturb one another.
 *
 * Hook for more workloads: `works` below lists what the threads run, in
 * turn. The keystore's calls (tests/keys, SoftHSM2) join by adding an
 * entry there once they are reentrant. */
#include <pthread.h>
#include <stdlib.h>

#include "scpkit/apdu.h"
#include "crypto/aes.h"
#include "scpkit/crypto.h"
#include "scpkit/scp03.h"
#include "test.h"

#define N_THREADS 8

static const uint8_t aid[] = { 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00 };

/* A per-thread RNG: a counter stream, the last output kept so the test
 * can see the engine used it. */
typedef struct rng_state {
    uint64_t n;
    uint8_t last[16];
    size_t last_len;
    unsigned calls;
} rng_state;

static int counter_rng(void *p, uint8_t *out, size_t len)
{
    rng_state *r = p;
    for (size_t k = 0; k < len; k++)
        out[k] = (uint8_t)((r->n >> (8 * (k % 8))) + k * 0x3B);
    r->n = r->n * 6364136223846793005u + 1442695040888963407u;
    r->last_len = len < sizeof(r->last) ? len : sizeof(r->last);
    memcpy(r->last, out, r->last_len);
    r->calls++;
    return 0;
}

typedef struct thread_job {
    int id;
    scp_backend backend;
    int sessions;
    int failures; /* counted here, not in the shared test counters */
    const char *what;
} thread_job;

#define FAIL_IF(cond)                                                                              \
    do {                                                                                           \
        if (cond) {                                                                                \
            j->failures++;                                                                         \
            fprintf(stderr, "thread %d (%s), line %d: %s\n", j->id, j->what, __LINE__, #cond);    \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33, x *= 0xFF51AFD7ED558CCDu, x ^= x >> 33;
    return x;
}

/* One session pair on this thread's context. */
static void one_session(thread_job *j, const scp_ctx *ctx, rng_state *rng, uint64_t seed)
{
    static const uint8_t levels[] = { 0x01, 0x03, 0x11, 0x13, 0x33 };
    scp03_session h = { 0 }, c = { 0 };
    scp03_card_params prm = { 0 };
    scp03_keys k = { 0 };
    uint8_t cmd[300], wire[340], plain[340], data[200], hc[16];
    size_t n, wl, pl, rl, chal;
    uint8_t level = levels[seed % 5];
    scp_apdu a;

    h.ctx = c.ctx = ctx;
    k.key_len = (uint8_t)(16 + 8 * (seed % 3));
    k.kvn = 0x30;
    for (size_t b = 0; b < k.key_len; b++)
        k.enc[b] = (uint8_t)mix(seed + b), k.mac[b] = (uint8_t)mix(seed + 99 + b);
    prm.i = (uint8_t)(0x60 | ((seed >> 3) & 1)); /* random card challenge, S8/S16 */
    chal = (prm.i & SCP03_I_S16) ? 16 : 8;
    memset(prm.kdd, j->id, sizeof(prm.kdd));
    prm.aid = aid, prm.aid_len = sizeof(aid);
    /* host challenge from the context's RNG */
    FAIL_IF(scp03_host_begin(&h, &k, NULL, chal) != SCP_OK);
    FAIL_IF(rng->last_len != chal || memcmp(rng->last, h.host_chal, chal) != 0);
    memcpy(hc, h.host_chal, chal);
    FAIL_IF(scp03_host_initialize_update(&h, 0x00, cmd, sizeof(cmd), &n) != SCP_OK);
    FAIL_IF(scp_apdu_parse(cmd, n, &a) != SCP_OK || a.lc != chal || memcmp(a.data, hc, chal));
    FAIL_IF(scp03_card_initialize_update(&c, &prm, &k, a.data, a.lc, wire, sizeof(wire), &rl) !=
            SCP_OK);
    /* the card's challenge too */
    FAIL_IF(rng->last_len != chal || memcmp(rng->last, wire + 13, chal) != 0);
    FAIL_IF(scp03_host_iu_response(&h, wire, rl) != SCP_OK);
    FAIL_IF(scp03_host_external_authenticate(&h, level, cmd, sizeof(cmd), &n) != SCP_OK);
    FAIL_IF(scp03_card_external_authenticate(&c, cmd, n) != SCP_OK);
    FAIL_IF(scp03_host_ea_result(&h, 0x9000) != SCP_OK);
    FAIL_IF(SCP_AES_OF(&h.s_mac)->fast != (strcmp(scp_ctx_backend_name(ctx), "aesni") == 0));
    for (int x = 0; x < 4; x++) {
        size_t dl = (size_t)(mix(seed + (uint64_t)x) % sizeof(data));
        for (size_t b = 0; b < dl; b++)
            data[b] = (uint8_t)(x + b);
        cmd[0] = 0x80, cmd[1] = 0xE2, cmd[2] = (uint8_t)x, cmd[3] = 0;
        n = 4;
        if (dl)
            cmd[4] = (uint8_t)dl, memcpy(cmd + 5, data, dl), n = 5 + dl;
        FAIL_IF(scp03_host_wrap(&h, cmd, n, wire, sizeof(wire), &wl) != SCP_OK);
        if (x == 3) { /* tampered twin: the card's session dies */
            wire[wl / 2] ^= 0x01;
            FAIL_IF(scp03_card_unwrap(&c, wire, wl, plain, sizeof(plain), &pl) == SCP_OK);
            FAIL_IF(c.state != SCP03_DEAD);
            break;
        }
        FAIL_IF(scp03_card_unwrap(&c, wire, wl, plain, sizeof(plain), &pl) != SCP_OK);
        FAIL_IF(pl != n || memcmp(plain, cmd, n) != 0);
        FAIL_IF(scp03_card_wrap(&c, data, dl, 0x9000, wire, sizeof(wire), &rl) != SCP_OK);
        FAIL_IF(scp03_host_unwrap(&h, wire, rl, plain, sizeof(plain), &pl) != SCP_OK);
        FAIL_IF(pl != dl + 2 || memcmp(plain, data, dl) != 0 || plain[dl] != 0x90);
    }
out:
    scp03_end(&h);
    scp03_end(&c);
    scp_wipe(&k, sizeof(k));
}

static void engine_work(thread_job *j)
{
    rng_state rng = { .n = (uint64_t)j->id * 1000003u + 1 };
    scp_ctx ctx = { .backend = j->backend, .rng = counter_rng, .rng_ctx = &rng };
    for (int s = 0; s < j->sessions; s++)
        one_session(j, &ctx, &rng, mix((uint64_t)j->id << 32 | (uint64_t)s));
    if (rng.calls != 2u * (unsigned)j->sessions) { /* two challenges per session */
        j->failures++;
        fprintf(stderr, "thread %d: RNG called %u times for %d sessions\n", j->id, rng.calls,
                j->sessions);
    }
}

/* What the threads run, in turn (the hook: add a workload here). */
static const struct {
    const char *what;
    void (*fn)(thread_job *);
    scp_backend backend;
} works[] = {
    { "scp03 default backend", engine_work, SCP_BACKEND_DEFAULT },
    { "scp03 openssl backend", engine_work, SCP_BACKEND_OPENSSL },
};

static void *thread_main(void *p)
{
    thread_job *j = p;
    size_t w = (size_t)j->id % (sizeof(works) / sizeof(works[0]));
    j->what = works[w].what;
    j->backend = works[w].backend;
    works[w].fn(j);
    return NULL;
}

int main(int argc, char **argv)
{
    int sessions = argc > 1 ? atoi(argv[1]) : 200;
    pthread_t t[N_THREADS];
    thread_job jobs[N_THREADS];

    printf("%d threads x %d sessions, default backend %s\n", N_THREADS, sessions,
           scp_aes_impl());
    for (int i = 0; i < N_THREADS; i++) {
        memset(&jobs[i], 0, sizeof(jobs[i]));
        jobs[i].id = i;
        jobs[i].sessions = sessions;
        CHECK(pthread_create(&t[i], NULL, thread_main, &jobs[i]) == 0);
    }
    for (int i = 0; i < N_THREADS; i++) {
        CHECK(pthread_join(t[i], NULL) == 0);
        CHECK(jobs[i].failures == 0);
    }
    return test_done("test_threads");
}
