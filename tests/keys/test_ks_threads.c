/* No hidden state, keystore included (issue 13 item 3): 8 threads at
 * once, each with its own keystore handle on one keystore, opened and
 * closed concurrently, derive a card's keys (scp_keystore_derive and the
 * pair of a rotation in scp_keystore_derive_set) and open SCP03 sessions
 * host against card with the keys they got, carrying a protected command.
 * Every result is checked against the keys derived before the threads
 * started; afterwards the audit log holds exactly one record per
 * derivation and `audit verify` passes. Built with -DSCP_TSAN=ON (make
 * tsan) this is the ThreadSanitizer run of the keystore; in every other
 * build it checks that concurrent handles never disturb one another.
 * Every loop is bounded. */
#include <pthread.h>
#include "keys/internal.h" /* before ks_test.h: ks_count_derives */
#include "ks_test.h"
#include "scpkit/apdu.h"
#include "scpkit/scp03.h"

#define N_THREADS 8
#define ROUNDS 12

static const uint8_t aid[] = {0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00};

typedef struct job {
    int id;
    scp03_keys ref_a, ref_b; /* "rot":1 KDF3 and "fix":1 SP 800-108 for this kdd */
    long derives, sessions, bad;
} job;

static pthread_barrier_t opened, done;

static void kdd_of(int id, uint8_t kdd[SCP03_KDD_LEN])
{
    memset(kdd, 0, SCP03_KDD_LEN);
    kdd[0] = 0xCA, kdd[1] = 0xFE, kdd[9] = (uint8_t)id;
}

/* The keys a derivation gives: key_len bytes of each key (the rest of
 * the arrays is not the derivation's), the length and the KVN. */
static int keys_eq(const scp03_keys *x, const scp03_keys *y)
{
    size_t n = x->key_len;
    return x->key_len == y->key_len && x->kvn == y->kvn && n <= sizeof(x->enc) &&
           memcmp(x->enc, y->enc, n) == 0 && memcmp(x->mac, y->mac, n) == 0 &&
           memcmp(x->dek, y->dek, n) == 0;
}

/* An SCP03 session host against card with k, one protected command both
 * ways; 0 when it opened and the card read the command back. */
static int session_with(const scp03_keys *k, int id)
{
    scp03_session h, c;
    memset(&h, 0, sizeof(h));
    memset(&c, 0, sizeof(c));
    scp03_card_params prm = {.i = 0x70, .seq = (uint32_t)id + 1, .aid = aid,
                             .aid_len = sizeof(aid)};
    kdd_of(id, prm.kdd);
    if (test_pair_open(&h, &c, k, k, &prm, NULL, 0x33) != SCP_OK)
        return -1;
    const uint8_t cmd[] = {0x80, 0xCA, 0x00, 0xE0, 0x02, 0x5C, (uint8_t)id, 0x00};
    uint8_t w[64], u[64];
    size_t wn = 0, un = 0;
    int rc = scp03_host_wrap(&h, cmd, sizeof(cmd), w, sizeof(w), &wn);
    if (rc == SCP_OK)
        rc = scp03_card_unwrap(&c, w, wn, u, sizeof(u), &un);
    int ok = rc == SCP_OK && un == sizeof(cmd) && memcmp(u, cmd, un) == 0;
    scp_wipe(&h, sizeof(h));
    scp_wipe(&c, sizeof(c));
    return ok ? 0 : -1;
}

static void *worker(void *arg)
{
    job *j = arg;
    scp_ks_config cfg = {ks_dir, NULL, NULL, NULL};
    scp_keystore *ks = NULL;
    uint8_t kdd[SCP03_KDD_LEN];
    kdd_of(j->id, kdd);
    int rc = scp_keystore_open(&cfg, KS_USER_PIN, &ks);
    /* every handle open before any derives, none closed before all are
     * done: PKCS#11 login is per process (a close logs the others out) */
    pthread_barrier_wait(&opened);
    for (int r = 0; rc == SCP_OK && r < ROUNDS; r++) {
        scp03_keys a = {0}, b = {0}; /* what a derivation leaves alone is zero, as in the references */
        scp_ks_derive_req q[2] = {{"rot", 1, SCP_DIV_KDF3, 0, &a, -1},
                                  {"fix", 1, SCP_DIV_SP800_108, 1, &b, -1}};
        int drc = scp_keystore_derive_set(ks, kdd, sizeof(kdd), q, 2, NULL);
        if (drc != SCP_OK || !keys_eq(&a, &j->ref_a) || !keys_eq(&b, &j->ref_b)) {
            fprintf(stderr, "thread %d round %d: derive_set %s\n", j->id, r,
                    drc != SCP_OK ? scp_strerror(drc) : "gave other keys");
            j->bad++;
        }
        j->derives += 2;
        drc = scp_keystore_derive(ks, "rot", 1, SCP_DIV_KDF3, kdd, sizeof(kdd), 1, &a);
        if (drc != SCP_OK || !keys_eq(&a, &j->ref_a)) {
            fprintf(stderr, "thread %d round %d: derive %s\n", j->id, r,
                    drc != SCP_OK ? scp_strerror(drc) : "gave other keys");
            j->bad++;
        }
        j->derives++;
        if (session_with(&a, j->id) != 0 || session_with(&b, j->id) != 0) {
            fprintf(stderr, "thread %d round %d: SCP03 session failed\n", j->id, r);
            j->bad++;
        }
        j->sessions += 2;
        scp_wipe(&a, sizeof(a));
        scp_wipe(&b, sizeof(b));
    }
    if (rc != SCP_OK) {
        fprintf(stderr, "thread %d: keystore open failed: %s\n", j->id, scp_strerror(rc));
        j->bad++;
    }
    pthread_barrier_wait(&done);
    scp_keystore_close(ks);
    return NULL;
}

int main(void)
{
    scp_keystore *ks = ks_fresh();
    scp_ks_key_info k;
    static job jobs[N_THREADS];
    pthread_t th[N_THREADS];

    CHECK_OK(scp_keystore_custodian_add(ks, "carol", "carol-pin"));
    CHECK_OK(scp_keystore_custodian_add(ks, "dave", "dave-pin"));
    CHECK_OK(scp_keystore_generate(ks, "rot", 0, SCP_KS_AES128, &k));
    CHECK_OK(scp_keystore_activate_custodians(ks, "rot", 1, "carol", "carol-pin", "dave",
                                              "dave-pin", "in service"));
    CHECK_OK(scp_keystore_generate(ks, "fix", 0, SCP_KS_AES128, &k));
    CHECK_OK(scp_keystore_activate_custodians(ks, "fix", 1, "carol", "carol-pin", "dave",
                                              "dave-pin", "in service"));
    for (int i = 0; i < N_THREADS; i++) {
        uint8_t kdd[SCP03_KDD_LEN];
        jobs[i].id = i;
        kdd_of(i, kdd);
        CHECK_OK(scp_keystore_derive(ks, "rot", 1, SCP_DIV_KDF3, kdd, sizeof(kdd), 1,
                                     &jobs[i].ref_a));
        CHECK_OK(scp_keystore_derive(ks, "fix", 1, SCP_DIV_SP800_108, kdd, sizeof(kdd), 1,
                                     &jobs[i].ref_b));
    }
    /* distinct cards get distinct keys (the references are not all one) */
    CHECK(jobs[0].ref_a.key_len == 16 && !keys_eq(&jobs[0].ref_a, &jobs[1].ref_a));
    CHECK(memcmp(jobs[0].ref_a.enc, jobs[0].ref_b.enc, 16) != 0);
    int before = ks_count_derives(ks);
    CHECK(before == 2 * N_THREADS);
    scp_keystore_close(ks);

    CHECK(pthread_barrier_init(&opened, NULL, N_THREADS) == 0);
    CHECK(pthread_barrier_init(&done, NULL, N_THREADS) == 0);
    for (int i = 0; i < N_THREADS; i++)
        CHECK(pthread_create(&th[i], NULL, worker, &jobs[i]) == 0);
    long total = 0;
    for (int i = 0; i < N_THREADS; i++) {
        CHECK(pthread_join(th[i], NULL) == 0);
        fprintf(stderr, "thread %d: %ld derives, %ld sessions, %ld failed\n", i, jobs[i].derives,
                jobs[i].sessions, jobs[i].bad);
        CHECK(jobs[i].bad == 0);
        CHECK(jobs[i].derives == 3 * ROUNDS && jobs[i].sessions == 2 * ROUNDS);
        total += jobs[i].derives;
    }
    pthread_barrier_destroy(&opened);
    pthread_barrier_destroy(&done);
    CHECK(scp_p11_in_use() == 0); /* every handle's module reference released */

    /* one audit record per derivation, and the whole log holds */
    ks = ks_reopen();
    CHECK(ks_count_derives(ks) == before + total);
    scp_ks_verify v;
    memset(&v, 0, sizeof(v));
    CHECK_OK(scp_keystore_verify(ks, &v));
    if (v.why[0])
        fprintf(stderr, "verify: %s\n", v.why);
    for (int i = 0; i < N_THREADS; i++) {
        scp_wipe(&jobs[i].ref_a, sizeof(jobs[i].ref_a));
        scp_wipe(&jobs[i].ref_b, sizeof(jobs[i].ref_b));
    }
    scp_keystore_close(ks);
    return test_done("test_ks_threads");
}
