/* Several server processes on one keystore (issue 15 item 6): three
 * worker processes, each with its keystore open for its whole life as an
 * OTA server keeps it, derive in a loop (one card at a time, the current
 * and next key sets of a rotation in one scp_keystore_derive_set, and a
 * single scp_keystore_derive) while this process rotates the master
 * underneath them: new versions generated (token write transactions,
 * new generations), activated by two custodians, the previous one
 * deactivated. Readers take no lock: every derive must succeed and give
 * the keys derived before the workers started; the workers' PKCS#11
 * sessions are opened only when they move to a new token generation, not
 * per derive; afterwards the audit log holds exactly one record per
 * derivation and `audit verify` passes. Every loop is bounded. */
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "keys/internal.h" /* before ks_test.h: ks_count_derives */
#include "ks_test.h"

#define WORKERS 3
#define ROUNDS 4 /* master versions 2..ROUNDS+1 */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* A worker: derive until `stop` exists (or 120 s), each result checked
 * against ref; writes "derives sets sessions_opened failures" to fd. */
static void worker(int id, const scp03_keys *ref_cur, const scp03_keys *ref_fix, const char *stop,
                   int fd)
{
    scp_ks_config cfg = {ks_dir, NULL, NULL, NULL};
    scp_keystore *ks = NULL;
    long derives = 0, sets = 0, bad = 0;
    uint8_t kdd[SCP03_KDD_LEN] = {0xCA, 0xFE, 0, 0, 0, 0, 0, 0, 0, 0};
    if (scp_keystore_open(&cfg, KS_USER_PIN, &ks) != SCP_OK)
        _exit(2);
    unsigned long s0 = scp_p11_sessions_opened();
    double t0 = now();
    while (access(stop, F_OK) != 0 && now() - t0 < 120) {
        scp03_keys a, b;
        kdd[9] = (uint8_t)id;
        /* the pair of a rotation session: rot:1 (active, later only
         * deactivated: checking old data) and fix:1 (active) */
        scp_ks_derive_req q[2] = {{"rot", 1, SCP_DIV_KDF3, 0, &a, -1},
                                  {"fix", 1, SCP_DIV_SP800_108, 1, &b, -1}};
        if (scp_keystore_derive_set(ks, kdd, sizeof(kdd), q, 2, NULL) != SCP_OK ||
            memcmp(a.enc, ref_cur->enc, 16) != 0 || memcmp(b.dek, ref_fix->dek, 16) != 0)
            bad++;
        sets++;
        derives += 2;
        if (scp_keystore_derive(ks, "fix", 1, SCP_DIV_SP800_108, kdd, sizeof(kdd), 1, &b) !=
                SCP_OK ||
            memcmp(b.mac, ref_fix->mac, 16) != 0)
            bad++;
        derives++;
        scp_wipe(&a, sizeof(a));
        scp_wipe(&b, sizeof(b));
    }
    /* a session more only per token generation moved to (ROUNDS writes
     * at most, each seen once), never per derive */
    unsigned long sess = scp_p11_sessions_opened() - s0;
    scp_keystore_close(ks);
    char line[96];
    int l = snprintf(line, sizeof(line), "%ld %ld %lu %ld\n", derives, sets, sess, bad);
    _exit(write(fd, line, (size_t)l) == l ? 0 : 3);
}

int main(void)
{
    scp_keystore *ks = ks_fresh();
    scp_ks_key_info k;
    scp03_keys ref_cur, ref_fix;
    uint8_t kdd[SCP03_KDD_LEN] = {0xCA, 0xFE, 0, 0, 0, 0, 0, 0, 0, 0};
    char stop[400];
    int fds[WORKERS][2];
    pid_t pids[WORKERS];

    CHECK_OK(scp_keystore_custodian_add(ks, "carol", "carol-pin"));
    CHECK_OK(scp_keystore_custodian_add(ks, "dave", "dave-pin"));
    CHECK_OK(scp_keystore_generate(ks, "rot", 0, SCP_KS_AES128, &k));
    CHECK_OK(scp_keystore_activate_custodians(ks, "rot", 1, "carol", "carol-pin", "dave",
                                              "dave-pin", "in service"));
    CHECK_OK(scp_keystore_generate(ks, "fix", 0, SCP_KS_AES128, &k));
    CHECK_OK(scp_keystore_activate_custodians(ks, "fix", 1, "carol", "carol-pin", "dave",
                                              "dave-pin", "in service"));
    /* the references (the workers' kdd differs in its last byte only by
     * their id: compute the one for each worker there; here id 0..2) */
    snprintf(stop, sizeof(stop), "%s/stop", ks_tmp);
    int before = ks_count_derives(ks);
    scp_keystore_close(ks); /* PKCS#11 login is per process: the children log in alone */
    for (int i = 0; i < WORKERS; i++) {
        CHECK(pipe(fds[i]) == 0);
        pids[i] = fork();
        if (pids[i] == 0) {
            close(fds[i][0]);
            /* the reference keys, from a handle of its own before the loop */
            scp_ks_config cfg = {ks_dir, NULL, NULL, NULL};
            scp_keystore *r = NULL;
            kdd[9] = (uint8_t)i;
            if (scp_keystore_open(&cfg, KS_USER_PIN, &r) != SCP_OK ||
                scp_keystore_derive(r, "rot", 1, SCP_DIV_KDF3, kdd, sizeof(kdd), 1, &ref_cur) !=
                    SCP_OK ||
                scp_keystore_derive(r, "fix", 1, SCP_DIV_SP800_108, kdd, sizeof(kdd), 1,
                                    &ref_fix) != SCP_OK)
                _exit(4);
            scp_keystore_close(r);
            worker(i, &ref_cur, &ref_fix, stop, fds[i][1]);
        }
        close(fds[i][1]);
    }
    /* the rotation, while they derive: rot:2..ROUNDS+1 generated and
     * activated, the previous version deactivated */
    ks = ks_reopen();
    struct timespec nap = {0, 200 * 1000 * 1000};
    nanosleep(&nap, NULL);
    for (uint32_t v = 2; v <= ROUNDS + 1; v++) {
        CHECK_OK(scp_keystore_generate(ks, "rot", v, SCP_KS_AES128, &k));
        CHECK_OK(scp_keystore_activate_custodians(ks, "rot", v, "carol", "carol-pin", "dave",
                                                  "dave-pin", "rotation"));
        CHECK_OK(scp_keystore_set_state(ks, "rot", v - 1, SCP_KS_DEACTIVATED, "rotated"));
        nanosleep(&nap, NULL);
    }
    FILE *f = fopen(stop, "w");
    CHECK(f != NULL);
    if (f != NULL)
        fclose(f);
    long total = 0;
    for (int i = 0; i < WORKERS; i++) {
        char buf[96] = {0};
        long derives = 0, sets = 0, bad = -1;
        unsigned long sess = 0;
        ssize_t r = read(fds[i][0], buf, sizeof(buf) - 1);
        int st = 0;
        close(fds[i][0]);
        CHECK(waitpid(pids[i], &st, 0) == pids[i]);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        CHECK(r > 0 && sscanf(buf, "%ld %ld %lu %ld", &derives, &sets, &sess, &bad) == 4);
        fprintf(stderr, "worker %d: %ld derives (%ld pairs in one commit), %lu sessions opened, "
                        "%ld failed\n",
                i, derives, sets, sess, bad);
        CHECK(bad == 0);
        CHECK(sets >= 5); /* it kept deriving through the rotation */
        CHECK(sess <= 2 * (ROUNDS * 3 + 1)); /* per generation moved to, not per derive */
        CHECK(sess < (unsigned long)derives);
        total += derives + 2; /* + its two reference derives */
    }
    /* one audit record per derivation, and the whole log holds */
    CHECK(ks_count_derives(ks) == before + total);
    scp_ks_verify v;
    memset(&v, 0, sizeof(v));
    CHECK_OK(scp_keystore_verify(ks, &v));
    if (v.why[0])
        fprintf(stderr, "verify: %s\n", v.why);
    CHECK_OK(scp_keystore_get(ks, "rot", 0, &k));
    CHECK(k.version == ROUNDS + 1 && k.state == SCP_KS_ACTIVE);
    scp_keystore_close(ks);
    return test_done("test_ks_multiproc");
}
