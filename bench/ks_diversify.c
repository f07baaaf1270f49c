/* scp_bench_ks (issue 12): keystore diversification throughput with 1, 2
 * and 4 processes on one keystore, as an OTA server's workers would run:
 * each process opens the keystore once, then calls scp_keystore_derive
 * (in-token CMAC for KDF3, an audit record committed to SQLite with
 * synchronous=FULL) in a loop for a fixed time. Beside it, in the same
 * run, the floor that bounds it: one process doing only the SQLite commit
 * of a row the size of an audit record (WAL, synchronous=FULL) on the same
 * file system, and the in-token work alone (derive without the audit).
 * Also the cost of one token write transaction (copy, SoftHSM2 reload,
 * fsync, switch): `generate` on a private SoftHSM2 token against the same
 * `generate` on a token written in place (no generations).
 *
 * Issue 15 (keys at scale): an OTA rotation session's keystore work, as
 * the server does it (derive the card's current set, derive its next set,
 * record the card: three commits), against scp_keystore_derive_set (both
 * sets in one commit, the card record in a second) and the two with the
 * card record in the same commit (provisioning, the channel hook), with
 * 1 and 2 processes; commits and C_OpenSession calls counted per session.
 *
 * Usage: scp_bench_ks [--quick] [--dir DIR] [--seconds S] [--md]
 * The keystore is created in DIR (default: a new directory under /tmp). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "scpkit/keystore.h"
#include "keys/internal.h"

#define PIN "bench-user-pin"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* What a worker does per iteration. */
enum {
    W_TOKEN,     /* the in-token KDF alone */
    W_DERIVE,    /* scp_keystore_derive (one audit commit) */
    W_SESS_OLD,  /* derive cur + derive next + card_set: 3 commits */
    W_SESS_SET,  /* derive_set(cur, next) + card_set: 2 commits */
    W_SESS_ONE,  /* derive_set(cur, next, card): 1 commit */
};

/* One worker: iterate for `secs`, write "count seconds commits sessions"
 * to fd. */
static void worker(const char *dir, double secs, int audit, int fd)
{
    scp_ks_config cfg = {dir, NULL, NULL, "bench"};
    scp_keystore *ks;
    uint8_t kdd[10] = {0};
    long n = 0;
    int rc = scp_keystore_open(&cfg, PIN, &ks);
    if (rc != SCP_OK) {
        fprintf(stderr, "open: %s %s\n", scp_strerror(rc), scp_keystore_why(NULL));
        _exit(1);
    }
    scp_ks_key_info k;
    CK_OBJECT_HANDLE h;
    char id[80];
    if (scp_keystore_get(ks, "ota", 1, &k) != SCP_OK || ks_obj_id("ota", 1, id, sizeof(id)) ||
        scp_p11_find(&ks->p11, CKO_SECRET_KEY, id, &h) != SCP_OK)
        _exit(1);
    unsigned long c0 = ks->commits, s0 = scp_p11_sessions_opened();
    double t0 = now(), t;
    do {
        scp03_keys out;
        kdd[0] = (uint8_t)n;
        kdd[1] = (uint8_t)(n >> 8);
        kdd[2] = (uint8_t)getpid();
        scp03_keys nx;
        scp_ks_derive_req q[2] = {{"ota", 1, SCP_DIV_KDF3, 0, &out, 0},
                                  {"ota2", 1, SCP_DIV_KDF3, 1, &nx, 0}};
        scp_ks_card_note note = {"ota2", 1, SCP_DIV_KDF3, 2};
        switch (audit) {
        case W_TOKEN:
            rc = ks_tok_derive(ks, h, k.type, SCP_DIV_KDF3, kdd, 10, &out);
            break;
        case W_DERIVE:
            rc = scp_keystore_derive(ks, "ota", 1, SCP_DIV_KDF3, kdd, 10, 1, &out);
            break;
        case W_SESS_OLD:
            rc = scp_keystore_derive(ks, "ota", 1, SCP_DIV_KDF3, kdd, 10, 0, &out);
            if (rc == SCP_OK)
                rc = scp_keystore_derive(ks, "ota2", 1, SCP_DIV_KDF3, kdd, 10, 1, &nx);
            if (rc == SCP_OK)
                rc = scp_keystore_card_set(ks, kdd, 10, "ota2", 1, SCP_DIV_KDF3, 2);
            break;
        case W_SESS_SET:
            rc = scp_keystore_derive_set(ks, kdd, 10, q, 2, NULL);
            if (rc == SCP_OK)
                rc = scp_keystore_card_set(ks, kdd, 10, "ota2", 1, SCP_DIV_KDF3, 2);
            break;
        default:
            rc = scp_keystore_derive_set(ks, kdd, 10, q, 2, &note);
            break;
        }
        scp_wipe(&out, sizeof(out));
        scp_wipe(&nx, sizeof(nx));
        if (rc != SCP_OK) {
            fprintf(stderr, "derive: %s\n", scp_strerror(rc));
            _exit(1);
        }
        n++;
        t = now();
    } while (t - t0 < secs);
    unsigned long commits = ks->commits - c0, sess = scp_p11_sessions_opened() - s0;
    scp_keystore_close(ks);
    char line[128];
    int l = snprintf(line, sizeof(line), "%ld %.6f %lu %lu\n", n, t - t0, commits, sess);
    if (write(fd, line, (size_t)l) != l)
        _exit(1);
    _exit(0);
}

/* P processes at once; per-process and total derives per second. */
static double last_commits_per_op; /* of the last run(), over all processes */
static unsigned long last_sessions;  /* C_OpenSession calls in the loops */

static int run(const char *dir, int procs, double secs, int audit, double *per, double *total)
{
    long all_n = 0;
    unsigned long all_c = 0;
    last_sessions = 0;
    int fds[8][2];
    pid_t pids[8];
    for (int i = 0; i < procs; i++) {
        if (pipe(fds[i]) != 0)
            return -1;
        pids[i] = fork();
        if (pids[i] == 0) {
            close(fds[i][0]);
            worker(dir, secs, audit, fds[i][1]);
        }
        close(fds[i][1]);
    }
    *total = 0;
    double sum_rate = 0;
    int ok = 1;
    for (int i = 0; i < procs; i++) {
        char buf[128] = {0};
        long n = 0;
        double s = 0;
        unsigned long cm = 0, ss = 0;
        ssize_t r = read(fds[i][0], buf, sizeof(buf) - 1);
        close(fds[i][0]);
        int st = 0;
        waitpid(pids[i], &st, 0);
        if (r <= 0 || sscanf(buf, "%ld %lf %lu %lu", &n, &s, &cm, &ss) != 4 || s <= 0 ||
            !WIFEXITED(st) ||
            WEXITSTATUS(st) != 0) {
            ok = 0;
            continue;
        }
        sum_rate += (double)n / s;
        all_n += n, all_c += cm, last_sessions += ss;
    }
    last_commits_per_op = all_n > 0 ? (double)all_c / (double)all_n : 0;
    *total = sum_rate;
    *per = sum_rate / procs;
    return ok ? 0 : -1;
}

/* The floor: SQLite commits of an audit-sized row, WAL + synchronous=FULL. */
static double commit_floor(const char *dir, double secs)
{
    char path[1100];
    sqlite3 *db;
    snprintf(path, sizeof(path), "%s/floor.db", dir);
    if (sqlite3_open(path, &db) != SQLITE_OK)
        return 0;
    sqlite3_exec(db,
                 "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                 "CREATE TABLE IF NOT EXISTS t(seq INTEGER PRIMARY KEY, v BLOB)",
                 NULL, NULL, NULL);
    long n = 0;
    double t0 = now(), t;
    uint8_t v[200] = {1};
    do {
        sqlite3_stmt *st;
        sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        sqlite3_prepare_v2(db, "INSERT INTO t(v) VALUES(?)", -1, &st, NULL);
        sqlite3_bind_blob(st, 1, v, sizeof(v), SQLITE_STATIC);
        sqlite3_step(st);
        sqlite3_finalize(st);
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
        n++;
        t = now();
    } while (t - t0 < secs);
    sqlite3_close(db);
    return (double)n / (t - t0);
}

/* ms per generate, private (generations) or in place (module option). */
static double generate_ms(const char *dir, int count)
{
    scp_keystore *ks;
    scp_ks_config cfg = {dir, NULL, NULL, "bench"};
    if (scp_keystore_open(&cfg, PIN, &ks) != SCP_OK)
        return -1;
    double t0 = now();
    for (int i = 0; i < count; i++) {
        if (scp_keystore_generate(ks, "gen", 0, SCP_KS_AES128, NULL) != SCP_OK) {
            scp_keystore_close(ks);
            return -1;
        }
    }
    double ms = (now() - t0) * 1000 / count;
    scp_keystore_close(ks);
    return ms;
}

/* The same generate written in place: the token of an operator's module
 * (SoftHSM2 again, through SOFTHSM2_CONF, no generations), in a child. */
static double generate_inplace_ms(const char *dir, int count)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        char tokens[700], conf[700], ks[700];
        snprintf(tokens, sizeof(tokens), "%s/ext-tokens", dir);
        snprintf(conf, sizeof(conf), "%s/ext.conf", dir);
        snprintf(ks, sizeof(ks), "%s/ks-ext", dir);
        mkdir(tokens, 0700);
        FILE *f = fopen(conf, "w");
        if (f == NULL)
            _exit(1);
        fprintf(f, "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens);
        fclose(f);
        setenv("SOFTHSM2_CONF", conf, 1);
        scp_ks_config cfg = {ks, SCP_KS_DEFAULT_MODULE, "ext", "bench"};
        if (scp_keystore_init(&cfg, "bench-so-pin", PIN, NULL) != SCP_OK)
            _exit(1);
        scp_keystore *k;
        if (scp_keystore_open(&cfg, PIN, &k) != SCP_OK)
            _exit(1);
        double t0 = now();
        for (int i = 0; i < count; i++)
            if (scp_keystore_generate(k, "gen", 0, SCP_KS_AES128, NULL) != SCP_OK)
                _exit(1);
        double ms = (now() - t0) * 1000 / count;
        scp_keystore_close(k);
        char line[32];
        int l = snprintf(line, sizeof(line), "%.6f\n", ms);
        _exit(write(fds[1], line, (size_t)l) == l ? 0 : 1);
    }
    close(fds[1]);
    char buf[32] = {0};
    double ms = -1;
    if (read(fds[0], buf, sizeof(buf) - 1) > 0)
        ms = atof(buf);
    close(fds[0]);
    int st;
    waitpid(pid, &st, 0);
    return ms;
}

static int make_keystore(const char *dir)
{
    scp_ks_config cfg = {dir, NULL, NULL, "bench"};
    FILE *null = fopen("/dev/null", "w");
    int rc = scp_keystore_init(&cfg, "bench-so-pin", PIN, null);
    if (null)
        fclose(null);
    scp_keystore *ks;
    if (rc == SCP_OK)
        rc = scp_keystore_open(&cfg, PIN, &ks);
    if (rc != SCP_OK) {
        fprintf(stderr, "keystore: %s %s\n", scp_strerror(rc), scp_keystore_why(NULL));
        return rc;
    }
    rc = scp_keystore_generate(ks, "ota", 1, SCP_KS_AES128, NULL);
    if (rc == SCP_OK)
        rc = scp_keystore_generate(ks, "ota2", 1, SCP_KS_AES128, NULL);
    if (rc == SCP_OK)
        rc = scp_keystore_custodian_add(ks, "a", "pin-of-a");
    if (rc == SCP_OK)
        rc = scp_keystore_custodian_add(ks, "b", "pin-of-b");
    if (rc == SCP_OK)
        rc = scp_keystore_activate_custodians(ks, "ota", 1, "a", "pin-of-a", "b", "pin-of-b",
                                              "bench");
    if (rc == SCP_OK)
        rc = scp_keystore_activate_custodians(ks, "ota2", 1, "a", "pin-of-a", "b", "pin-of-b",
                                              "bench");
    scp_keystore_close(ks);
    return rc;
}

int main(int argc, char **argv)
{
    double secs = 3;
    int quick = 0;
    char dir[512] = "";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = 1, secs = 0.3;
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            secs = atof(argv[++i]);
        else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            snprintf(dir, sizeof(dir), "%s", argv[++i]);
    }
    char tmp[] = "/tmp/scp_bench_ks.XXXXXX";
    if (dir[0] == 0) {
        if (mkdtemp(tmp) == NULL)
            return 1;
        snprintf(dir, sizeof(dir), "%s", tmp);
    }
    char ks[600];
    snprintf(ks, sizeof(ks), "%s/ks", dir);
    setenv("SCPKIT_ACTOR", "bench", 1);
    if (make_keystore(ks) != SCP_OK)
        return 1;
    double la[3] = {0};
    if (getloadavg(la, 3) > 0)
        printf("load average at start: %.2f %.2f %.2f\n", la[0], la[1], la[2]);
    double floor = commit_floor(dir, secs);
    double p1, t1;
    if (run(ks, 1, secs, W_TOKEN, &p1, &t1) != 0)
        return 1;
    printf("floor: SQLite commit (WAL, synchronous=FULL): %.0f/s; in-token KDF3 alone, 1 process: "
           "%.0f/s\n",
           floor, t1);
    printf("%-10s %14s %14s %12s\n", "processes", "per process/s", "total/s", "total/floor");
    int fail = 0;
    for (int p = 1; p <= 4; p *= 2) {
        double per, total;
        if (run(ks, p, secs, W_DERIVE, &per, &total) != 0) {
            printf("%-10d failed\n", p);
            fail = 1;
            continue;
        }
        printf("%-10d %14.0f %14.0f %12.2f\n", p, per, total, floor > 0 ? total / floor : 0);
    }
    /* an OTA rotation session's keystore work (issue 15 item 6) */
    static const struct {
        int mode;
        const char *name;
    } sm[] = {{W_SESS_OLD, "derive + derive + card_set (as ota/driver.c)"},
              {W_SESS_SET, "derive_set(cur, next) + card_set"},
              {W_SESS_ONE, "derive_set(cur, next, card)"}};
    printf("rotation session: %-46s %5s %10s %10s %8s %9s\n", "keystore calls", "procs",
           "sessions/s", "vs first", "commits", "sessions");
    for (int p = 1; p <= 2; p++) {
        double base = 0;
        for (size_t m = 0; m < sizeof(sm) / sizeof(sm[0]); m++) {
            double per, total;
            if (run(ks, p, secs, sm[m].mode, &per, &total) != 0) {
                printf("rotation session: %-46s %5d failed\n", sm[m].name, p);
                fail = 1;
                continue;
            }
            if (m == 0)
                base = total;
            printf("rotation session: %-46s %5d %10.0f %9.2fx %8.2f %9lu\n", sm[m].name, p, total,
                   base > 0 ? total / base : 0, last_commits_per_op, last_sessions);
            /* the point of it: fewer commits, and no PKCS#11 session per derive */
            if (last_sessions != 0 || last_commits_per_op > 3.0 - (double)m + 0.01)
                fail = 1;
        }
    }
    int n = quick ? 2 : 10;
    double gms = generate_ms(ks, n);
    double ims = generate_inplace_ms(dir, n);
    printf("generate on the private token (copy, reload, fsync, switch): %.1f ms each (%d)\n", gms,
           n);
    printf("generate written in place (operator's module, no generations): %.1f ms each; "
           "ratio %.1fx\n",
           ims, ims > 0 ? gms / ims : 0);
    if (getloadavg(la, 3) > 0)
        printf("load average at end: %.2f %.2f %.2f\n", la[0], la[1], la[2]);
    if (tmp[0] != 0 && strcmp(dir, tmp) == 0) {
        char cmd[700];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fail = 1;
    }
    return fail || gms < 0 || ims < 0;
}
