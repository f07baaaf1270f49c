/* Crash test: a child process rotates key sets (PUT KEY replacing the
 * current set, over pseudo-random-challenge sessions) as fast as it can;
 * the parent kills it with SIGKILL at a random instant, 30 times, and
 * after each kill reopens the card and checks:
 *   - the state file opens (never half written);
 *   - the one key set is whole: ENC, MAC and DEK all belong to its KVN
 *     (each KVN has its own three distinct keys), and it authenticates;
 *   - the sequence counter is at least every value the child ever
 *     received in an INITIALIZE UPDATE response, and never went back. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "card/internal.h"
#include "card_util.h"
#include "scpkit/gp.h"
#include "test.h"

#define ROUNDS 30

static void keys_for(uint8_t kvn, scp03_keys *k)
{
    memset(k, 0, sizeof(*k));
    for (int j = 0; j < 16; j++) {
        k->enc[j] = (uint8_t)(kvn * 7 + j);
        k->mac[j] = (uint8_t)(kvn * 11 + j + 0x40);
        k->dek[j] = (uint8_t)(kvn * 13 + j + 0x80);
    }
    k->key_len = 16;
    k->kvn = kvn;
}

static uint32_t seq_of(const uint8_t *iu, size_t n)
{
    return ((uint32_t)iu[n - 3] << 16) | ((uint32_t)iu[n - 2] << 8) | iu[n - 1];
}

/* The child: rotate forever; report every sequence value it was given. */
static void child(const char *dir, int fd)
{
    scp_card *c = NULL;
    if (scp_card_open(dir, &c, NULL, 0) != SCP_OK)
        _exit(3);
    for (;;) {
        scp03_keys cur, next;
        scp03_session s;
        uint8_t iu[64];
        size_t n = 0;
        uint8_t kvn = c->st.sets[0].kvn;
        keys_for(kvn, &cur);
        if (tc_open_iu(c, &s, &cur, 0, 0x33, 16, iu, &n) != 0x9000)
            _exit(4);
        uint32_t seq = seq_of(iu, n);
        if (write(fd, &seq, sizeof(seq)) != (ssize_t)sizeof(seq))
            _exit(5);
        keys_for((uint8_t)(kvn % 200 + 1), &next);
        if (tc_put_key(c, &s, &cur, &next, kvn) != 0x9000)
            _exit(6);
        scp03_end(&s);
        scp_card_reset(c);
    }
}

static void check_card(const char *dir, uint32_t *last_seq, uint32_t max_seen, int *kvn_seen)
{
    scp_card *c = NULL;
    char err[300] = "";
    scp03_keys k;
    scp03_session s;
    card_keyset *ks;

    CHECK_OK(scp_card_open(dir, &c, err, sizeof(err)));
    if (c == NULL) {
        fprintf(stderr, "reopen failed: %s\n", err);
        return;
    }
    CHECK(c->st.nsets == 1);
    ks = &c->st.sets[0];
    keys_for(ks->kvn, &k);
    CHECK(ks->key_len == 16);
    CHECK_MEM(ks->enc, 16, k.enc, 16);
    CHECK_MEM(ks->mac, 16, k.mac, 16);
    CHECK_MEM(ks->dek, 16, k.dek, 16);
    CHECK(c->st.seq >= max_seen);
    CHECK(c->st.seq >= *last_seq);
    *last_seq = c->st.seq;
    kvn_seen[ks->kvn] = 1;
    CHECK(tc_open(c, &s, &k, 0, 0x33, 16) == 0x9000);
    scp03_end(&s);
    *last_seq = c->st.seq; /* that handshake used one more */
    scp_card_close(c);
}

int main(void)
{
    char dir[256];
    scp03_keys k1;
    scp_card_init_opts o = { .profile = "gp23", .scp_i = -1, .kvn = 1 };
    uint32_t last_seq = 0;
    int kvn_seen[256] = { 0 }, distinct = 0, rotations = 0;

    test_seed(0xC4A54);
    tc_tmpdir(dir, sizeof(dir));
    keys_for(1, &k1);
    /* the initial set is KVN 01 = keys_for(1): init takes one key for all
     * three, so install the real three-key set with a first rotation */
    o.key = k1.enc;
    o.key_len = 16;
    CHECK_OK(scp_card_init(dir, &o));
    {
        scp_card *c = NULL;
        scp03_keys init;
        scp03_session s;
        tc_keys(&init, k1.enc, 16, 1);
        CHECK_OK(scp_card_open(dir, &c, NULL, 0));
        CHECK(tc_open(c, &s, &init, 1, 0x33, 16) == 0x9000);
        CHECK(tc_put_key(c, &s, &init, &k1, 1) == 0x9000);
        scp03_end(&s);
        scp_card_close(c);
    }
    for (int round = 0; round < ROUNDS; round++) {
        int p[2], status = 0;
        uint32_t v, max_seen = 0;
        pid_t pid;
        CHECK(pipe(p) == 0);
        pid = fork();
        if (pid == 0) {
            close(p[0]);
            child(dir, p[1]);
        }
        close(p[1]);
        usleep((useconds_t)(1000 + test_rand_below(80000)));
        kill(pid, SIGKILL);
        CHECK(waitpid(pid, &status, 0) == pid);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        if (WIFEXITED(status))
            fprintf(stderr, "child exited %d on its own\n", WEXITSTATUS(status));
        while (read(p[0], &v, sizeof(v)) == (ssize_t)sizeof(v)) {
            if (v > max_seen)
                max_seen = v;
            rotations++;
        }
        close(p[0]);
        check_card(dir, &last_seq, max_seen, kvn_seen);
    }
    for (int j = 0; j < 256; j++)
        distinct += kvn_seen[j];
    printf("%d kills, %d handshakes seen, %d distinct key sets found after a kill, "
           "sequence counter %u\n", ROUNDS, rotations, distinct, (unsigned)last_seq);
    tc_rmdir(dir);
    return test_done("test_card_crash");
}
