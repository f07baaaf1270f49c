/* One writer per card state (issue 11 item 10). Two processes take turns
 * on one state directory for hundreds of sessions, each opening the card,
 * running one pseudo-random-challenge handshake and closing it: no
 * sequence counter and no card challenge may ever come out twice (a state
 * read before the lock was taken would hand out a value again). Two
 * `card init` racing on one directory: one makes the card, the other
 * finds it and touches nothing. scp_card_open_wait waits, bounded. */
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "card/internal.h"
#include "card_util.h"
#include "test.h"

#define SESSIONS 150 /* per process */
#define ROUNDS_INIT 20

typedef struct rec {
    uint32_t seq;
    uint8_t chal[16];
} rec;

/* Open, retrying at once while the other process holds the card (so a
 * state read before the lock would often be one the holder is about to
 * replace); bounded to 60 s. */
static scp_card *open_retry(const char *dir)
{
    scp_card *c = NULL;
    time_t until = time(NULL) + 60;
    while (time(NULL) < until) {
        if (scp_card_open(dir, &c, NULL, 0) == SCP_OK)
            return c;
        sched_yield();
    }
    return NULL;
}

/* Child 0 waits in scp_card_open_wait; child 1 retries scp_card_open. */
static void child(const char *dir, int fd, int waiter)
{
    scp03_keys f;
    tc_factory(&f);
    for (int n = 0; n < SESSIONS; n++) {
        scp_card *c = NULL;
        if (waiter) {
            if (scp_card_open_wait(dir, 60000, &c, NULL, 0) != SCP_OK)
                c = NULL;
        } else {
            c = open_retry(dir);
        }
        scp03_session s;
        uint8_t iu[64];
        size_t len = 0;
        rec r;
        if (c == NULL)
            _exit(3);
        if (tc_open_iu(c, &s, &f, 0, 0x33, 16, iu, &len) != 0x9000 || len != 48)
            _exit(4);
        scp03_end(&s);
        scp_card_close(c);
        /* KDD 10 | KVN | 03 | i | card challenge 16 | cryptogram 16 | seq 3 */
        memcpy(r.chal, iu + 13, 16);
        r.seq = (uint32_t)iu[45] << 16 | (uint32_t)iu[46] << 8 | iu[47];
        if (write(fd, &r, sizeof(r)) != (ssize_t)sizeof(r))
            _exit(5);
    }
    _exit(0);
}

static int cmp_rec(const void *a, const void *b)
{
    const rec *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void test_two_writers(void)
{
    char dir[256];
    scp_card_init_opts o = { .profile = "gp23", .scp_i = -1, .kvn = -1 };
    static rec recs[2 * SESSIONS];
    size_t n = 0;
    int p[2];
    pid_t pid[2];
    scp_card *c = NULL;

    tc_tmpdir(dir, sizeof(dir));
    CHECK_OK(scp_card_init(dir, &o));
    CHECK(pipe(p) == 0);
    for (int k = 0; k < 2; k++) {
        pid[k] = fork();
        if (pid[k] == 0) {
            close(p[0]);
            child(dir, p[1], k == 0);
        }
    }
    close(p[1]);
    while (n < 2 * SESSIONS && read(p[0], &recs[n], sizeof(rec)) == (ssize_t)sizeof(rec))
        n++;
    close(p[0]);
    for (int k = 0; k < 2; k++) {
        int st = 0;
        CHECK(waitpid(pid[k], &st, 0) == pid[k]);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    CHECK(n == 2 * SESSIONS);
    qsort(recs, n, sizeof(rec), cmp_rec);
    int repeats = 0;
    for (size_t k = 1; k < n; k++) {
        repeats += recs[k].seq == recs[k - 1].seq;
        for (size_t j = 0; j < k; j++)
            repeats += memcmp(recs[k].chal, recs[j].chal, 16) == 0;
    }
    CHECK(repeats == 0);
    /* every value handed out once, in order, none lost */
    CHECK(n > 0 && recs[0].seq == 1 && recs[n - 1].seq == n);
    CHECK_OK(scp_card_open(dir, &c, NULL, 0));
    CHECK(c != NULL && c->st.seq == n);
    scp_card_close(c);
    printf("%zu sessions from two processes, %d repeated counters or challenges\n", n,
           repeats);
    tc_rmdir(dir);
}

/* Two inits race (released together through a pipe): exactly one makes
 * the card; the other gets SCP_E_ARG; the card opens. */
static void test_init_race(void)
{
    int both_ok = 0;
    for (int round = 0; round < ROUNDS_INIT; round++) {
        char dir[256];
        int go[2], res[2];
        pid_t pid[2];
        int ok = 0, refused = 0;
        scp_card *c = NULL;
        tc_tmpdir(dir, sizeof(dir));
        CHECK(pipe(go) == 0 && pipe(res) == 0);
        for (int k = 0; k < 2; k++) {
            pid[k] = fork();
            if (pid[k] == 0) {
                scp_card_init_opts o = { .profile = "gp23", .scp_i = -1, .kvn = -1 };
                char b;
                int rc;
                close(go[1]);
                if (read(go[0], &b, 1) != 0) /* EOF: go */
                    _exit(3);
                rc = scp_card_init(dir, &o);
                _exit(rc == SCP_OK ? 0 : rc == SCP_E_ARG ? 1 : 2);
            }
        }
        close(go[0]);
        close(go[1]);
        close(res[0]);
        close(res[1]);
        for (int k = 0; k < 2; k++) {
            int st = 0;
            CHECK(waitpid(pid[k], &st, 0) == pid[k]);
            ok += WIFEXITED(st) && WEXITSTATUS(st) == 0;
            refused += WIFEXITED(st) && WEXITSTATUS(st) == 1;
        }
        CHECK(ok == 1 && refused == 1);
        both_ok += ok == 2;
        CHECK_OK(scp_card_open(dir, &c, NULL, 0));
        scp_card_close(c);
        tc_rmdir(dir);
    }
    if (both_ok)
        fprintf(stderr, "%d rounds made two cards in one directory\n", both_ok);
}

/* scp_card_open_wait: waits for a holder that lets go; times out with a
 * message for one that does not; plain open fails at once. */
static void test_open_wait(void)
{
    char dir[256], err[300] = "";
    scp_card_init_opts o = { .profile = "gp23", .scp_i = -1, .kvn = -1 };
    scp_card *c = NULL, *c2 = NULL;
    int p[2];
    pid_t pid;
    char b;

    tc_tmpdir(dir, sizeof(dir));
    CHECK_OK(scp_card_init(dir, &o));
    CHECK_OK(scp_card_open(dir, &c, NULL, 0));
    CHECK_RC(scp_card_open(dir, &c2, err, sizeof(err)), SCP_E_IO);
    CHECK(strstr(err, "in use by another process") != NULL);
    CHECK_RC(scp_card_open_wait(dir, 200, &c2, err, sizeof(err)), SCP_E_TIMEOUT);
    CHECK(strstr(err, "waited 200 ms") != NULL);
    scp_card_close(c);
    /* a child holds the card for ~300 ms; the parent's bounded wait wins */
    CHECK(pipe(p) == 0);
    pid = fork();
    if (pid == 0) {
        scp_card *cc = NULL;
        close(p[0]);
        if (scp_card_open(dir, &cc, NULL, 0) != SCP_OK)
            _exit(3);
        if (write(p[1], "x", 1) != 1)
            _exit(4);
        usleep(300000);
        scp_card_close(cc);
        _exit(0);
    }
    close(p[1]);
    CHECK(read(p[0], &b, 1) == 1);
    close(p[0]);
    CHECK_RC(scp_card_open(dir, &c2, NULL, 0), SCP_E_IO);
    CHECK_OK(scp_card_open_wait(dir, 10000, &c2, err, sizeof(err)));
    scp_card_close(c2);
    CHECK(waitpid(pid, NULL, 0) == pid);
    tc_rmdir(dir);
}

int main(void)
{
    test_seed(0x10C4);
    test_open_wait();
    test_init_race();
    test_two_writers();
    return test_done("test_card_lock");
}
