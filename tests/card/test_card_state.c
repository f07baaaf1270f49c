/* The card's state file: the sequence counter is durable and monotonic
 * across reopen; a flipped byte, a truncation, an extension, a wrong
 * magic or a group-readable file are refused with SCP_E_CORRUPT /
 * SCP_E_PERM and a message naming the file; a failed write changes
 * nothing (old state on disk and in memory). */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "card/internal.h"
#include "card_util.h"
#include "scpkit/gp.h"
#include "test.h"

static uint32_t iu_seq(const uint8_t *iu, size_t len)
{
    return ((uint32_t)iu[len - 3] << 16) | ((uint32_t)iu[len - 2] << 8) | iu[len - 1];
}

static void test_seq_durable(void)
{
    char dir[256];
    scp_card_init_opts o = { .profile = "gp23", .scp_i = -1, .kvn = -1 };
    scp_card *c = NULL;
    scp03_keys f;
    scp03_session s;
    uint8_t iu[64];
    size_t n = 0;
    uint32_t last = 0;
    tc_resp r;

    tc_factory(&f);
    tc_tmpdir(dir, sizeof(dir));
    CHECK_OK(scp_card_init(dir, &o));
    CHECK_RC(scp_card_init(dir, &o), SCP_E_ARG); /* never overwrites a card */
    {
        static const uint8_t k32[32] = { 1 };
        char d2[300];
        scp_card_init_opts bad[] = {
            { .profile = "yubikey", .scp_i = -1, .kvn = -1, .key = k32, .key_len = 32 },
            { .profile = "gp23", .scp_i = 0x40, .kvn = -1 },   /* R-ENC without R-MAC */
            { .profile = "gp23", .scp_i = 0x02, .kvn = -1 },   /* RFU bit */
            { .profile = "gp23", .scp_i = -1, .kvn = 0 },
            { .profile = "gp23", .scp_i = -1, .kvn = -1, .key = k32, .key_len = 20 },
            { .profile = "nope", .scp_i = -1, .kvn = -1 },
            { .profile = "gp23", .scp_i = -1, .kvn = -1, .lifecycle = 0x7F },
        };
        snprintf(d2, sizeof(d2), "%s/sub", dir);
        for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
            CHECK_RC(scp_card_init(d2, &bad[k]), SCP_E_ARG);
        CHECK(access(d2, F_OK) != 0); /* nothing created */
    }
    for (int round = 0; round < 5; round++) {
        CHECK_OK(scp_card_open(dir, &c, NULL, 0));
        scp_card *c2 = NULL;
        CHECK_RC(scp_card_open(dir, &c2, NULL, 0), SCP_E_IO); /* locked by the first */
        CHECK_OK(scp_card_open_readonly(dir, &c2, NULL, 0)); /* reading is fine */
        if (c2 != NULL) {
            CHECK(tc_sw(c2, "80CA9F7F00") == 0x9000);
            CHECK(tc_sw(c2, "8050000010 00112233445566778899AABBCCDDEEFF") == 0); /* no write */
            scp_card_close(c2);
        }
        for (int k = 0; k < 3; k++) {
            CHECK(tc_open_iu(c, &s, &f, 0, 0x33, 16, iu, &n) == 0x9000);
            CHECK(n == 10 + 3 + 32 + 3 && iu_seq(iu, n) == last + 1);
            last = iu_seq(iu, n);
            scp03_end(&s);
        }
        CHECK(tc_sw(c, "80CA00C100") == 0x6982); /* plain inside the session: ends it */
        CHECK_OK(tc_xfer_hex(c, "80CA00C100", &r));
        CHECK(r.len == 5 && ((uint32_t)r.data[2] << 16 | r.data[3] << 8 | r.data[4]) == last);
        scp_card_close(c);
    }
    CHECK(last == 15);
    tc_rmdir(dir);
}

static void test_seq_exhausted(void)
{
    char dir[256];
    scp_card_init_opts o = { .profile = "gp23", .scp_i = 0x70, .kvn = -1 };
    scp_card *c = NULL;
    scp03_keys f;
    scp03_session s;
    card_state next;
    tc_factory(&f);
    tc_tmpdir(dir, sizeof(dir));
    CHECK_OK(scp_card_init(dir, &o));
    CHECK_OK(scp_card_open(dir, &c, NULL, 0));
    next = c->st;
    next.seq = CARD_SEQ_MAX - 1;
    CHECK_OK(card_commit(c, &next));
    CHECK(tc_open(c, &s, &f, 0, 0x33, 8) == 0x9000);
    CHECK(tc_open(c, &s, &f, 0, 0x33, 8) == 0x6985); /* never wraps */
    scp03_end(&s);
    scp_card_close(c);
    tc_rmdir(dir);
}

static void test_failed_write(void)
{
    char dir[256];
    scp_card_init_opts o = { .profile = "gp23", .scp_i = -1, .kvn = -1 };
    scp_card *c = NULL;
    scp03_keys f, k1;
    scp03_session s;
    uint8_t key[16] = { 7 }, cmd[300], b[400];
    size_t n = 0;
    uint32_t seq;
    tc_factory(&f);
    tc_keys(&k1, key, 16, 1);
    tc_tmpdir(dir, sizeof(dir));
    CHECK_OK(scp_card_init(dir, &o));
    CHECK_OK(scp_card_open(dir, &c, NULL, 0));
    /* the IU's counter write fails: no challenge leaves the card */
    seq = c->st.seq;
    c->fail_writes = 1;
    CHECK(tc_open(c, &s, &f, 0, 0x33, 16) == 0);
    CHECK(c->st.seq == seq);
    scp03_end(&s);
    /* the PUT KEY write fails: the old set stays, in memory and on disk */
    CHECK(tc_open(c, &s, &f, 0, 0x33, 16) == 0x9000);
    c->fail_writes = 1;
    cmd[0] = 0x80, cmd[1] = 0xD8, cmd[2] = 0, cmd[3] = 0x81;
    CHECK_OK(scp_gp_putkey_build(f.dek, 16, &k1, cmd + 5, sizeof(cmd) - 5, &n));
    cmd[4] = (uint8_t)n;
    {
        uint8_t w[400];
        size_t wn = 0;
        CHECK_OK(scp03_host_wrap(&s, cmd, 5 + n, w, sizeof(w), &wn));
        CHECK_RC(scp_card_process(c, w, wn, b, sizeof(b), &n), SCP_E_IO);
    }
    scp03_end(&s);
    CHECK(c->st.nsets == 1 && c->st.sets[0].kvn == 0xFF);
    scp_card_close(c);
    CHECK_OK(scp_card_open(dir, &c, NULL, 0));
    CHECK(c->st.nsets == 1 && c->st.sets[0].kvn == 0xFF);
    CHECK(tc_open(c, &s, &f, 0xFF, 0x33, 16) == 0x9000);
    scp03_end(&s);
    scp_card_close(c);
    tc_rmdir(dir);
}

/* The factory reset after the last try (issue 11 item 8) deletes the set
 * and erases the store in one write: when that write fails, nothing of it
 * happened, in memory or on disk; the next try does all of it. */
static void test_failed_reset_write(void)
{
    char dir[256];
    scp_card_init_opts o = { .profile = "yubikey", .scp_i = -1, .kvn = -1 };
    scp_card *c = NULL;
    scp03_keys f, k1;
    scp03_session s;
    uint8_t key[16] = { 9, 8, 7 };
    tc_resp r;
    tc_factory(&f);
    tc_keys(&k1, key, 16, 1);
    tc_tmpdir(dir, sizeof(dir));
    CHECK_OK(scp_card_init(dir, &o));
    CHECK_OK(scp_card_open(dir, &c, NULL, 0));
    CHECK(tc_open(c, &s, &f, 0, 0x33, 8) == 0x9000);
    CHECK(tc_put_key(c, &s, &f, &k1, 0) == 0x9000);
    scp03_end(&s);
    CHECK(tc_sw(c, "00A4040008F07363706B697401") == 0x9000);
    CHECK(tc_open(c, &s, &k1, 1, 0x33, 8) == 0x9000);
    CHECK(tc_send_hex(c, &s, "00DA010104CAFEBABE", &r) == 0x9000);
    scp03_end(&s);
    CHECK(tc_sw(c, "00A4040000") == 0x9000);
    for (int n = 0; n < 32; n++)
        CHECK(tc_sw(c, "8050000008 0000000000000000") == 0x9000);
    c->fail_writes = 1;
    CHECK_RC(tc_xfer_hex(c, "8050000008 0000000000000000", &r), SCP_E_IO);
    CHECK(c->st.nsets == 1 && c->st.sets[0].kvn == 1 && c->st.nobj == 1);
    scp_card_close(c);
    CHECK_OK(scp_card_open(dir, &c, NULL, 0));
    if (c == NULL)
        return;
    CHECK(c->st.nsets == 1 && c->st.sets[0].kvn == 1 && c->st.sets[0].fails == 32 &&
          c->st.nobj == 1);
    CHECK(tc_sw(c, "8050000008 0000000000000000") == 0x6983);
    CHECK(c->st.nsets == 1 && c->st.sets[0].kvn == 0xFF && c->st.nobj == 0);
    scp_card_close(c);
    CHECK_OK(scp_card_open(dir, &c, NULL, 0));
    CHECK(c != NULL && c->st.sets[0].kvn == 0xFF && c->st.nobj == 0);
    scp_card_close(c);
    tc_rmdir(dir);
}

static void rewrite(const char *path, const uint8_t *p, size_t len)
{
    int fd = open(path, O_WRONLY | O_TRUNC);
    CHECK(fd >= 0 && write(fd, p, len) == (ssize_t)len);
    close(fd);
}

static void test_corrupt(void)
{
    char dir[256], path[300], err[300];
    uint8_t orig[8192], buf[8193];
    ssize_t len;
    int fd;
    scp_card *c = NULL;
    scp_card_init_opts o = { .profile = NULL, .scp_i = -1, .kvn = -1 };

    tc_tmpdir(dir, sizeof(dir));
    CHECK_OK(scp_card_init(dir, &o));
    snprintf(path, sizeof(path), "%s/card.state", dir);
    fd = open(path, O_RDONLY);
    len = read(fd, orig, sizeof(orig));
    close(fd);
    CHECK(len > 100);
    /* every single-byte flip is caught */
    for (ssize_t k = 0; k < len; k++) {
        memcpy(buf, orig, (size_t)len);
        buf[k] ^= (uint8_t)(1u << (k % 8));
        rewrite(path, buf, (size_t)len);
        err[0] = 0;
        CHECK_RC(scp_card_open(dir, &c, err, sizeof(err)), SCP_E_CORRUPT);
        CHECK(strstr(err, path) != NULL);
    }
    CHECK(strstr(err, "checksum") != NULL);
    /* truncated at every length, and one byte too long */
    for (ssize_t k = 0; k < len; k += 7) {
        rewrite(path, orig, (size_t)k);
        CHECK_RC(scp_card_open(dir, &c, err, sizeof(err)), SCP_E_CORRUPT);
    }
    memcpy(buf, orig, (size_t)len);
    buf[len] = 0;
    rewrite(path, buf, (size_t)len + 1);
    CHECK_RC(scp_card_open(dir, &c, err, sizeof(err)), SCP_E_CORRUPT);
    CHECK(strstr(err, "truncated or extended") != NULL);
    /* the untouched file opens; group-readable is refused */
    rewrite(path, orig, (size_t)len);
    CHECK_OK(scp_card_open(dir, &c, err, sizeof(err)));
    scp_card_close(c);
    chmod(path, 0640);
    CHECK_RC(scp_card_open(dir, &c, err, sizeof(err)), SCP_E_PERM);
    CHECK(strstr(err, "chmod 600") != NULL);
    chmod(path, 0600);
    unlink(path);
    CHECK_RC(scp_card_open(dir, &c, err, sizeof(err)), SCP_E_NOT_FOUND);
    tc_rmdir(dir);
}

/* A state whose checksum is good but whose fields no card could have
 * written (a hand-edited or foreign file) is refused with the field's
 * name, and the file is left byte for byte as it was. */
typedef void (*mutate_fn)(card_state *st);
static void m_profile(card_state *st) { st->profile = 7; }
static void m_i_rfu(card_state *st) { st->i = 0x73; }
static void m_i_renc(card_state *st) { st->i = 0x50; } /* R-ENC without R-MAC */
static void m_level(card_state *st) { st->min_level = 0x02; }
static void m_level_i(card_state *st) { st->i = 0x00, st->min_level = 0x33; }
static void m_lifecycle(card_state *st) { st->lifecycle = 0x33; }
static void m_fails(card_state *st) { st->sets[0].fails = (uint8_t)(st->retry_limit + 1); }
static void m_dup_kvn(card_state *st) { st->sets[1] = st->sets[0], st->nsets = 2; }
static void m_kvn0(card_state *st) { st->sets[0].kvn = 0; }
static void m_factory_flag(card_state *st) { st->sets[0].factory = 2; }
static void m_app_lc(card_state *st) { st->app_lifecycle = 0x01; }
static void m_nsets(card_state *st) { st->keyset_limit = 1, st->sets[1] = st->sets[0], st->sets[1].kvn = 9, st->nsets = 2; }
static void m_retry(card_state *st) { st->retry_limit = 0, st->sets[0].fails = 0; }
static void m_obj_tag(card_state *st) { st->nobj = 1, st->obj[0].tag = 0, st->obj[0].len = 1; }
static void m_obj_dup(card_state *st)
{
    st->nobj = 2;
    st->obj[0].tag = st->obj[1].tag = 0x0101;
    st->obj[0].len = st->obj[1].len = 1;
}

static void test_range_checked(void)
{
    static const struct {
        mutate_fn fn;
        const char *profile, *what;
    } cases[] = {
        { m_profile, "gp23", "profile" },
        { m_i_rfu, "gp23", "i parameter" },
        { m_i_renc, "gp23", "i parameter" },
        { m_level, "gp23", "minimum security level" },
        { m_level_i, "gp23", "minimum security level" },
        { m_lifecycle, "gp23", "card life cycle" },
        { m_fails, "gp23", "failure counter" },
        { m_dup_kvn, "gp23", "two key sets with one KVN" },
        { m_kvn0, "gp23", "KVN 00" },
        { m_factory_flag, "gp23", "factory flag" },
        { m_app_lc, "gp23", "store application life cycle" },
        { m_nsets, "gp23", "number of key sets" },
        { m_retry, "gp23", "retry limit" },
        { m_obj_tag, "gp23", "data object tag" },
        { m_obj_dup, "gp23", "two data objects with one tag" },
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        char dir[256], path[300], err[400] = "";
        uint8_t before[8192], after[8192];
        ssize_t nb, na;
        int fd;
        scp_card_init_opts o = { .profile = cases[k].profile, .scp_i = -1, .kvn = -1 };
        scp_card *c = NULL;
        card_state next;

        tc_tmpdir(dir, sizeof(dir));
        snprintf(path, sizeof(path), "%s/card.state", dir);
        CHECK_OK(scp_card_init(dir, &o));
        CHECK_OK(scp_card_open(dir, &c, NULL, 0));
        if (c == NULL)
            continue;
        next = c->st;
        cases[k].fn(&next);
        CHECK_OK(card_commit(c, &next)); /* the writer does not judge */
        scp_card_close(c);
        fd = open(path, O_RDONLY);
        nb = read(fd, before, sizeof(before));
        close(fd);
        CHECK_RC(scp_card_open(dir, &c, err, sizeof(err)), SCP_E_CORRUPT);
        CHECK_RC(scp_card_open_readonly(dir, &c, err, sizeof(err)), SCP_E_CORRUPT);
        if (strstr(err, cases[k].what) == NULL || strstr(err, path) == NULL) {
            fprintf(stderr, "case %zu: message \"%s\" lacks \"%s\"\n", k, err, cases[k].what);
            CHECK(0);
        }
        fd = open(path, O_RDONLY);
        na = read(fd, after, sizeof(after));
        close(fd);
        CHECK_MEM(after, (size_t)na, before, (size_t)nb); /* left as it was */
        tc_rmdir(dir);
    }
}

/* A yubikey card holds AES-128 sets only: a file that says otherwise is
 * refused. */
static void test_range_profile_keys(void)
{
    char dir[256], err[300] = "";
    scp_card_init_opts o = { .profile = "yubikey", .scp_i = -1, .kvn = -1 };
    scp_card *c = NULL;
    card_state next;
    tc_tmpdir(dir, sizeof(dir));
    CHECK_OK(scp_card_init(dir, &o));
    CHECK_OK(scp_card_open(dir, &c, NULL, 0));
    if (c != NULL) {
        next = c->st;
        next.sets[0].key_len = 32;
        CHECK_OK(card_commit(c, &next));
        scp_card_close(c);
        CHECK_RC(scp_card_open(dir, &c, err, sizeof(err)), SCP_E_CORRUPT);
        CHECK(strstr(err, "AES-128") != NULL);
    }
    tc_rmdir(dir);
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char m[] = "test_card_state: blocked opening a FIFO\n";
    if (write(2, m, sizeof(m) - 1) < 0) {
    }
    _exit(1);
}

/* A FIFO given as the state is refused at once, not waited on (an open
 * without O_NONBLOCK would block until a writer came). */
static void test_fifo_refused(void)
{
    char dir[256], path[300], err[300] = "";
    scp_card *c = NULL;
    tc_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/card.state", dir);
    CHECK(mkfifo(path, 0600) == 0);
    signal(SIGALRM, on_alarm);
    alarm(5);
    CHECK_RC(scp_card_open(dir, &c, err, sizeof(err)), SCP_E_IO);
    CHECK(strstr(err, "not a regular file") != NULL);
    CHECK_RC(scp_card_open_readonly(dir, &c, err, sizeof(err)), SCP_E_IO);
    alarm(0);
    unlink(path);
    tc_rmdir(dir);
}

int main(void)
{
    test_seed(0x57A7E);
    test_seq_durable();
    test_seq_exhausted();
    test_failed_write();
    test_failed_reset_write();
    test_corrupt();
    test_range_checked();
    test_range_profile_keys();
    test_fifo_refused();
    return test_done("test_card_state");
}
