/* scpkit keys: crash-safe writes to a SoftHSM2 file token, the writer
 * lock, and the fault-injection points.
 *
 * SoftHSM2's file store rewrites token.object and each object file in
 * place (truncate, then write), so a kill in the middle can leave a token
 * it no longer loads. The keystore therefore never lets SoftHSM2 write to
 * the live token. DIR/tokens is a symlink to a generation directory
 * DIR/tokens.g<N>; a write transaction
 *   1. copies tokens.g<N> to DIR/tokens.work (under the writer lock),
 *   2. re-initialises SoftHSM2 (C_Finalize / C_Initialize) on
 *      DIR/softhsm2-work.conf, whose token directory is tokens.work, and
 *      makes its changes there,
 *   3. finalises SoftHSM2 again (its files are closed), fsyncs every file
 *      and directory of tokens.work, renames it to tokens.g<N+1>, fsyncs
 *      DIR, points a new symlink at it and renames that over DIR/tokens
 *      (atomic), fsyncs DIR, and re-initialises SoftHSM2 on the live
 *      token.
 * A kill before the rename of the symlink leaves tokens.g<N> live and
 * untouched; recovery (under the writer lock) removes tokens.work and
 * switches to the newest complete generation (a tokens.g<M> only exists
 * once fully written and fsynced). tokens.g<N> stays for one more
 * generation, so a reader that resolved the old link still finds its files.
 *
 * Writers (anything that changes the token, and every key lifecycle
 * change) hold flock(DIR/lock, LOCK_EX) from their intent record to their
 * completion record; readers take no lock (read-only PKCS#11 sessions, and
 * SQLite WAL for the metadata). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "keys/internal.h"
#include "core/guard.h"
#include "scpkit/crypto.h"

/* ---- fault injection: SCP_KS_CRASH_AT=N raises SIGKILL at the Nth write
 * point of the process; SCP_KS_CRASH_TRACE=FILE appends "N what" for each
 * point reached (the crash test counts a command's points with it);
 * SCP_KS_FAULT=enospc@N makes the Nth write point fail with ENOSPC. ---- */

static long crash_n, crash_at, fault_at;
static const char *crash_trace;
static pthread_once_t crash_once = PTHREAD_ONCE_INIT;

static void crash_env(void)
{
    const char *e = getenv("SCP_KS_CRASH_AT");
    const char *f = getenv("SCP_KS_FAULT");
    crash_at = e != NULL ? atol(e) : 0;
    fault_at = (f != NULL && strncmp(f, "enospc@", 7) == 0) ? atol(f + 7) : 0;
    crash_trace = getenv("SCP_KS_CRASH_TRACE");
}

int ks_crash_point(const char *what)
{
    pthread_once(&crash_once, crash_env);
    long n = __atomic_add_fetch(&crash_n, 1, __ATOMIC_RELAXED);
    if (crash_trace != NULL && crash_trace[0] != 0) {
        FILE *f = fopen(crash_trace, "a");
        if (f != NULL) {
            fprintf(f, "%ld %s\n", n, what);
            fclose(f);
        }
    }
    if (crash_at > 0 && n == crash_at)
        raise(SIGKILL);
    /* a full disk shows at writes: fsync, rename, commit */
    int io = strncmp(what, "fsync", 5) == 0 || strncmp(what, "rename", 6) == 0 ||
             strcmp(what, "db-commit") == 0;
    if (io && fault_at > 0 && n == fault_at) {
        errno = ENOSPC;
        return SCP_E_IO;
    }
    return SCP_OK;
}

/* ---- paths ---- */

static int path2(char *out, size_t size, const char *dir, const char *name)
{
    int n = snprintf(out, size, "%s/%s", dir, name);
    ENSURE(n > 0 && (size_t)n < size, SCP_E_ARG);
    return SCP_OK;
}

static int gen_path(char *out, size_t size, const char *dir, unsigned long g)
{
    int n = snprintf(out, size, "%s/tokens.g%lu", dir, g);
    ENSURE(n > 0 && (size_t)n < size, SCP_E_ARG);
    return SCP_OK;
}

/* An I/O failure, with ENOSPC/EDQUOT told apart (the caller's message). */
static int io_err(scp_keystore *ks, const char *what, const char *path)
{
    int e = errno;
    if (e == ENOSPC || e == EDQUOT) {
        ks_why(ks, "disk full while %s %s: free space on the file system of %s and retry "
                   "(the live token was not touched; a change cut short is settled at the next "
                   "open)",
               what, path, ks->dir);
        ks->nospace = 1;
    } else {
        ks_why(ks, "%s %s: %s", what, path, strerror(e));
    }
    return SCP_E_IO;
}

static int fsync_path(scp_keystore *ks, const char *path, int dir)
{
    if (ks_crash_point(dir ? "fsync-dir" : "fsync") != SCP_OK)
        return io_err(ks, "fsync of", path);
    int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
    if (fd < 0)
        return io_err(ks, "opening", path);
    int r = fsync(fd);
    close(fd);
    if (r != 0)
        return io_err(ks, "fsync of", path);
    return SCP_OK;
}

/* rm -r of one of our directories (token generations: two levels). */
static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL) {
        (void)unlink(path);
        return;
    }
    struct dirent *e;
    char sub[KS_PATH_MAX];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name) >= (int)sizeof(sub))
            continue;
        struct stat st;
        if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
            remove_tree(sub);
        else
            (void)unlink(sub);
    }
    closedir(d);
    (void)rmdir(path);
}

static int copy_file(scp_keystore *ks, const char *from, const char *to)
{
    char buf[8192];
    int in = open(from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (in < 0)
        return io_err(ks, "opening", from);
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (out < 0) {
        close(in);
        return io_err(ks, "creating", to);
    }
    int rc = SCP_OK;
    for (;;) {
        ssize_t r = read(in, buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = io_err(ks, "reading", from);
            break;
        }
        if (r == 0)
            break;
        for (ssize_t off = 0; off < r;) {
            ssize_t w = write(out, buf + off, (size_t)(r - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                rc = io_err(ks, "writing", to);
                break;
            }
            off += w;
        }
        if (rc != SCP_OK)
            break;
    }
    close(in);
    if (close(out) != 0 && rc == SCP_OK)
        rc = io_err(ks, "writing", to);
    return rc;
}

/* Copy (fsync = 0) or fsync (fsync = 1) a token tree: DIR/<token>/<files>. */
static int walk_tree(scp_keystore *ks, const char *from, const char *to, int sync)
{
    DIR *d = opendir(from);
    if (d == NULL)
        return io_err(ks, "opening", from);
    if (!sync && mkdir(to, 0700) != 0) {
        closedir(d);
        return io_err(ks, "creating", to);
    }
    struct dirent *e;
    int rc = SCP_OK;
    while (rc == SCP_OK && (e = readdir(d)) != NULL) {
        char a[KS_PATH_MAX], b[KS_PATH_MAX];
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (path2(a, sizeof(a), from, e->d_name) != SCP_OK ||
            path2(b, sizeof(b), to, e->d_name) != SCP_OK) {
            rc = SCP_E_ARG;
            break;
        }
        if (lstat(a, &st) != 0) {
            rc = io_err(ks, "reading", a);
        } else if (S_ISDIR(st.st_mode)) {
            rc = walk_tree(ks, a, b, sync);
        } else if (S_ISREG(st.st_mode)) {
            rc = sync ? fsync_path(ks, a, 0) : copy_file(ks, a, b);
        }
    }
    closedir(d);
    if (rc == SCP_OK && sync)
        rc = fsync_path(ks, from, 1);
    return rc;
}

/* ---- the generation layout ---- */

/* The generation DIR/tokens points at (0: no link). */
static unsigned long live_gen(const char *dir)
{
    char link[KS_PATH_MAX], target[64];
    if (path2(link, sizeof(link), dir, "tokens") != SCP_OK)
        return 0;
    ssize_t n = readlink(link, target, sizeof(target) - 1);
    if (n <= 0)
        return 0;
    target[n] = 0;
    if (strncmp(target, "tokens.g", 8) != 0)
        return 0;
    char *end;
    unsigned long g = strtoul(target + 8, &end, 10);
    return *end == 0 ? g : 0;
}

/* The newest complete generation on disk (0: none). */
static unsigned long newest_gen(const char *dir, unsigned long *oldest)
{
    DIR *d = opendir(dir);
    unsigned long best = 0, low = 0;
    if (d == NULL)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        if (strncmp(e->d_name, "tokens.g", 8) != 0)
            continue;
        unsigned long g = strtoul(e->d_name + 8, &end, 10);
        if (*end != 0 || g == 0)
            continue;
        if (g > best)
            best = g;
        if (low == 0 || g < low)
            low = g;
    }
    closedir(d);
    if (oldest != NULL)
        *oldest = low;
    return best;
}

/* Atomically point DIR/tokens at generation g. */
static int switch_link(scp_keystore *ks, unsigned long g)
{
    char tmp[KS_PATH_MAX], link[KS_PATH_MAX], target[64];
    GUARD(path2(tmp, sizeof(tmp), ks->dir, "tokens.new"));
    GUARD(path2(link, sizeof(link), ks->dir, "tokens"));
    snprintf(target, sizeof(target), "tokens.g%lu", g);
    (void)unlink(tmp);
    if (symlink(target, tmp) != 0)
        return io_err(ks, "creating", tmp);
    if (ks_crash_point("rename-link") != SCP_OK || rename(tmp, link) != 0)
        return io_err(ks, "renaming", tmp);
    return fsync_path(ks, ks->dir, 1);
}

int ks_gen_layout(scp_keystore *ks)
{
    return ks->gens && live_gen(ks->dir) != 0 ? SCP_OK : SCP_E_NOT_FOUND;
}

static void prune(scp_keystore *ks);

/* A keystore made before generations had DIR/tokens as a directory. */
static int migrate_legacy(scp_keystore *ks)
{
    char link[KS_PATH_MAX], g1[KS_PATH_MAX];
    struct stat st;
    GUARD(path2(link, sizeof(link), ks->dir, "tokens"));
    if (lstat(link, &st) != 0 || !S_ISDIR(st.st_mode))
        return SCP_OK;
    unsigned long g = newest_gen(ks->dir, NULL) + 1;
    GUARD(gen_path(g1, sizeof(g1), ks->dir, g));
    GUARD(walk_tree(ks, link, NULL, 1));
    if (rename(link, g1) != 0)
        return io_err(ks, "renaming", link);
    GUARD(fsync_path(ks, ks->dir, 1));
    return switch_link(ks, g);
}

/* Under the writer lock: no work directory left behind, the link on the
 * newest complete generation, and at most one generation before it. */
int ks_gen_recover(scp_keystore *ks, int *changed)
{
    char p[KS_PATH_MAX];
    struct stat st;
    if (!ks->gens)
        return SCP_OK;
    GUARD(migrate_legacy(ks));
    GUARD(path2(p, sizeof(p), ks->dir, "tokens.work"));
    if (lstat(p, &st) == 0) {
        remove_tree(p); /* an interrupted write: never live */
        *changed = 1;
    }
    GUARD(path2(p, sizeof(p), ks->dir, "tokens.new"));
    (void)unlink(p);
    unsigned long oldest = 0, newest = newest_gen(ks->dir, &oldest), live = live_gen(ks->dir);
    if (newest == 0) {
        ks_why(ks, "no token in %s/tokens: restore the token directory from a backup, or "
                   "initialise a new keystore in another directory",
               ks->dir);
        return SCP_E_NOT_FOUND;
    }
    if (live != newest) { /* fully written, fsynced, not yet switched to */
        GUARD(switch_link(ks, newest));
        *changed = 1;
    }
    (void)oldest;
    prune(ks);
    return SCP_OK;
}

/* Does anything need the writer lock's recovery? (cheap, no lock) */
int ks_gen_dirty(scp_keystore *ks)
{
    char p[KS_PATH_MAX];
    struct stat st;
    if (!ks->gens)
        return 0;
    if (path2(p, sizeof(p), ks->dir, "tokens.work") == SCP_OK && lstat(p, &st) == 0)
        return 1;
    if (path2(p, sizeof(p), ks->dir, "tokens") == SCP_OK && lstat(p, &st) == 0 &&
        S_ISDIR(st.st_mode))
        return 1;
    return live_gen(ks->dir) != newest_gen(ks->dir, NULL);
}

/* ---- SoftHSM2 pointed at a configuration, logged in again ----
 * Each generation has its own configuration DIR/softhsm2.g<N>.conf whose
 * token directory is DIR/tokens.g<N> itself (not the link), so SoftHSM2
 * never sees two generations mixed; a process holds flock(LOCK_SH) on
 * DIR/tokens.g<N>.use while it uses generation N, and a writer removes an
 * old generation only when it gets LOCK_EX on that file (nobody uses it).
 * DIR/softhsm2.conf (DIR/tokens, the link) is for softhsm2-util. */

/* conf: DIR/softhsm2.conf (which = -1), the work one (-2), generation g. */
static int conf_path(scp_keystore *ks, long which, char *out, size_t size)
{
    int n = which == -1   ? snprintf(out, size, "%s/softhsm2.conf", ks->dir)
            : which == -2 ? snprintf(out, size, "%s/softhsm2-work.conf", ks->dir)
            : which == -3 ? snprintf(out, size, "%s/%s.conf", ks->dir, ks->view)
                          : snprintf(out, size, "%s/softhsm2.g%ld.conf", ks->dir, which);
    ENSURE(n > 0 && (size_t)n < size, SCP_E_ARG);
    return SCP_OK;
}

static int write_conf(scp_keystore *ks, long which)
{
    char conf[KS_PATH_MAX], tmp[KS_PATH_MAX + 32], tokens[KS_PATH_MAX];
    GUARD(conf_path(ks, which, conf, sizeof(conf)));
    int n = which == -1   ? snprintf(tokens, sizeof(tokens), "%s/tokens", ks->dir)
            : which == -2 ? snprintf(tokens, sizeof(tokens), "%s/tokens.work", ks->dir)
            : which == -3 ? snprintf(tokens, sizeof(tokens), "%s/%s", ks->dir, ks->view)
                          : snprintf(tokens, sizeof(tokens), "%s/tokens.g%ld", ks->dir, which);
    ENSURE(n > 0 && (size_t)n < sizeof(tokens), SCP_E_ARG);
    n = snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", conf, (long)getpid());
    ENSURE(n > 0 && (size_t)n < sizeof(tmp), SCP_E_ARG);
    (void)unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return io_err(ks, "creating", tmp);
    char text[KS_PATH_MAX + 256];
    n = snprintf(text, sizeof(text),
                 "# scpkit keystore: a private SoftHSM2 token%s\n"
                 "directories.tokendir = %s\nobjectstore.backend = file\n"
                 "log.level = ERROR\nslots.removable = false\n",
                 which == -2 ? " (write transactions: never live)" : "", tokens);
    int ok = n > 0 && (size_t)n < sizeof(text) && write(fd, text, (size_t)n) == n &&
             fsync(fd) == 0;
    if (close(fd) != 0)
        ok = 0;
    if (!ok) {
        int rc = io_err(ks, "writing", tmp);
        (void)unlink(tmp);
        return rc;
    }
    if (rename(tmp, conf) != 0)
        return io_err(ks, "renaming", tmp);
    return SCP_OK;
}

int ks_write_conf(scp_keystore *ks, int work)
{
    GUARD(write_conf(ks, work ? -2 : -1));
    return fsync_path(ks, ks->dir, 1);
}

static int use_path(scp_keystore *ks, unsigned long g, char *out, size_t size)
{
    int n = snprintf(out, size, "%s/tokens.g%lu.use", ks->dir, g);
    ENSURE(n > 0 && (size_t)n < size, SCP_E_ARG);
    return SCP_OK;
}

/* SoftHSM2 rewrites token.object (truncate, write) at every C_Login, even
 * in a read-only session and with a wrong PIN: a live generation that
 * SoftHSM2 opened would be written again. So no process ever opens a
 * live generation: each keystore handle copies it (under the
 * generation's shared lock, so it is not pruned meanwhile) into its own
 * view DIR/view.<pid>.<n> (flock(LOCK_EX) on view.<pid>.<n>.lock while
 * it lives; a writer removes views whose lock is free: their process
 * died) and SoftHSM2 reads that. The live generation stays byte for byte
 * as its writer fsynced it. */
static int use_live(scp_keystore *ks)
{
    static unsigned long views;
    char lock[KS_PATH_MAX], view[KS_PATH_MAX], conf[KS_PATH_MAX];
    if (ks->view[0] == 0) {
        snprintf(ks->view, sizeof(ks->view), "view.%ld.%lu", (long)getpid(),
                 __atomic_add_fetch(&views, 1, __ATOMIC_RELAXED));
        GUARD(path2(lock, sizeof(lock), ks->dir, ks->view));
        ENSURE(strlen(lock) + 5 < sizeof(lock), SCP_E_ARG);
        strcat(lock, ".lock");
        /* The lock file appears under its name already locked (made as
         * .new, locked, renamed): another process's prune_views, which
         * removes every view.*.lock it can lock, must never see it free
         * between its creation and our flock. */
        char fresh[KS_PATH_MAX];
        size_t ln = strlen(lock);
        ENSURE(ln + 5 <= sizeof(fresh), SCP_E_ARG);
        memcpy(fresh, lock, ln);
        memcpy(fresh + ln, ".new", 5);
        ks->view_fd = open(fresh, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (ks->view_fd < 0)
            return io_err(ks, "creating", fresh);
        if (flock(ks->view_fd, LOCK_EX | LOCK_NB) != 0)
            return io_err(ks, "locking", fresh);
        if (rename(fresh, lock) != 0)
            return io_err(ks, "renaming", fresh);
    }
    GUARD(path2(view, sizeof(view), ks->dir, ks->view));
    for (int tries = 0; tries < 50; tries++) {
        char use[KS_PATH_MAX], gdir[KS_PATH_MAX];
        struct stat st;
        unsigned long g = live_gen(ks->dir);
        if (g == 0) {
            ks_why(ks, "no token in %s/tokens: restore the token directory from a backup, or "
                       "initialise a new keystore in another directory",
                   ks->dir);
            return SCP_E_NOT_FOUND;
        }
        GUARD(use_path(ks, g, use, sizeof(use)));
        GUARD(gen_path(gdir, sizeof(gdir), ks->dir, g));
        int fd = open(use, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
            return io_err(ks, "opening", use);
        if (flock(fd, LOCK_SH) != 0) {
            close(fd);
            return io_err(ks, "locking", use);
        }
        if (stat(gdir, &st) != 0) { /* removed between the link and the lock */
            close(fd);
            continue;
        }
        remove_tree(view);
        int rc = walk_tree(ks, gdir, view, 0);
        close(fd);
        GUARD(rc);
        GUARD(write_conf(ks, -3));
        GUARD(conf_path(ks, -3, conf, sizeof(conf)));
        ks->use_gen = g;
        ENSURE(setenv("SOFTHSM2_CONF", conf, 1) == 0, SCP_E_IO);
        return SCP_OK;
    }
    ks_why(ks, "the token in %s kept changing while it was opened: retry", ks->dir);
    return SCP_E_TIMEOUT;
}

/* At close (SoftHSM2 finalised): this handle's view goes. */
void ks_gen_close(scp_keystore *ks)
{
    char p[KS_PATH_MAX];
    if (ks->view[0] == 0)
        return;
    if (path2(p, sizeof(p), ks->dir, ks->view) == SCP_OK) {
        remove_tree(p);
        size_t n = strlen(p);
        if (n + 5 < sizeof(p)) {
            memcpy(p + n, ".conf", 6);
            (void)unlink(p);
            memcpy(p + n, ".lock", 6);
            (void)unlink(p);
        }
    }
    if (ks->view_fd >= 0)
        close(ks->view_fd);
    ks->view_fd = -1;
    ks->view[0] = 0;
}

/* Views whose process died (their lock is free). */
static void prune_views(scp_keystore *ks)
{
    DIR *d = opendir(ks->dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        char p[KS_PATH_MAX];
        if (strncmp(e->d_name, "view.", 5) != 0 || n < 10 ||
            strcmp(e->d_name + n - 5, ".lock") != 0 || path2(p, sizeof(p), ks->dir, e->d_name))
            continue;
        int fd = open(p, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
            continue;
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            size_t pn = strlen(p) - 5;
            p[pn] = 0;
            remove_tree(p);
            memcpy(p + pn, ".conf", 6);
            (void)unlink(p);
            memcpy(p + pn, ".lock", 6);
            (void)unlink(p);
        }
        close(fd);
    }
    closedir(d);
}

int ks_gen_use(scp_keystore *ks)
{
    if (!ks->gens)
        return SCP_OK;
    if (ks->view[0] == 0) /* readers only: dead readers' views go too */
        prune_views(ks);
    return use_live(ks);
}

/* Remove generations older than the live one that nobody is copying, and
 * the views of dead processes. */
static void prune(scp_keystore *ks)
{
    prune_views(ks);
    unsigned long oldest = 0, newest = newest_gen(ks->dir, &oldest), live = live_gen(ks->dir);
    for (unsigned long g = oldest; g != 0 && g < live && g < newest; g++) {
        char use[KS_PATH_MAX], p[KS_PATH_MAX];
        if (use_path(ks, g, use, sizeof(use)) != SCP_OK)
            continue;
        int fd = open(use, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
            continue;
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            if (gen_path(p, sizeof(p), ks->dir, g) == SCP_OK)
                remove_tree(p);
            if (conf_path(ks, (long)g, p, sizeof(p)) == SCP_OK)
                (void)unlink(p);
            (void)unlink(use);
        }
        close(fd);
    }
}

/* Find the token; SoftHSM2 2.6.1 sometimes reports a token that another
 * process is loading at the same moment as absent (seen with two
 * processes starting together): initialise again, a bounded number of
 * times, before believing it. */
int ks_find_token(scp_keystore *ks)
{
    int rc = scp_p11_find_token(&ks->p11, ks->token);
    for (int i = 0; i < 20 && rc != SCP_OK && ks->gens; i++) {
        struct timespec nap = {0, (long)(5 + 5 * i) * 1000 * 1000};
        nanosleep(&nap, NULL);
        rc = scp_p11_reinit(&ks->p11); /* (it also fails with CKR_GENERAL_ERROR then) */
        if (getenv("SCP_KS_DEBUG") != NULL)
            fprintf(stderr, "scpkit[%ld]: retry %d with %s\n", (long)getpid(), i,
                    getenv("SOFTHSM2_CONF"));
        if (rc == SCP_OK)
            rc = scp_p11_find_token(&ks->p11, ks->token);
    }
    return rc;
}

/* C_Finalize, then C_Initialize on the live or the work token, and log in
 * again: read-only unless rw. */
static int reload(scp_keystore *ks, int work, int rw)
{
    char conf[KS_PATH_MAX];
    if (work) {
        GUARD(conf_path(ks, -2, conf, sizeof(conf)));
        ENSURE(setenv("SOFTHSM2_CONF", conf, 1) == 0, SCP_E_IO);
    } else {
        if (ks->p11.initialized)
            GUARD(scp_p11_finalize(&ks->p11)); /* before its view is replaced */
        GUARD(use_live(ks));
    }
    int rc = scp_p11_reinit(&ks->p11);
    if (rc != SCP_OK && !ks->gens)
        return rc;
    GUARD(ks_find_token(ks)); /* retries a failed C_Initialize too */
    GUARD(scp_p11_login(&ks->p11, ks->pin, rw));
    ks->rw = rw;
    return ks_tok_audit_key(ks, 0);
}

/* A process that has used generation N while others moved on: look at the
 * live one (no-op when it is still N). */
int ks_gen_refresh(scp_keystore *ks)
{
    if (!ks->gens || ks->in_write || live_gen(ks->dir) == ks->use_gen)
        return SCP_OK;
    return reload(ks, 0, ks->rw);
}

int ks_gen_begin(scp_keystore *ks)
{
    ENSURE(ks->locked, SCP_E_STATE);
    ks->in_write = 1;
    if (!ks->gens) { /* an operator's module: its own durability */
        if (!ks->rw) {
            /* closing the last session logs out: private handles change */
            GUARD(scp_p11_session_rw(&ks->p11, ks->pin));
            ks->rw = 1;
            return ks_tok_audit_key(ks, 0);
        }
        return SCP_OK;
    }
    char work[KS_PATH_MAX], live[KS_PATH_MAX], conf[KS_PATH_MAX];
    struct stat st;
    unsigned long g = live_gen(ks->dir);
    ENSURE(g != 0, SCP_E_NOT_FOUND);
    GUARD(path2(work, sizeof(work), ks->dir, "tokens.work"));
    GUARD(gen_path(live, sizeof(live), ks->dir, g));
    remove_tree(work);
    GUARD(conf_path(ks, -2, conf, sizeof(conf)));
    if (stat(conf, &st) != 0)
        GUARD(ks_write_conf(ks, 1));
    int rc = walk_tree(ks, live, work, 0);
    if (rc == SCP_OK)
        rc = reload(ks, 1, 1);
    if (rc != SCP_OK) {
        remove_tree(work);
        ks_ignore(reload(ks, 0, 0));
        ks->in_write = 0;
    }
    return rc;
}

int ks_gen_commit(scp_keystore *ks)
{
    ENSURE(ks->in_write, SCP_E_STATE);
    ks->in_write = 0;
    if (!ks->gens)
        return SCP_OK;
    char work[KS_PATH_MAX], next[KS_PATH_MAX];
    unsigned long g = live_gen(ks->dir);
    ENSURE(g != 0, SCP_E_NOT_FOUND);
    GUARD(path2(work, sizeof(work), ks->dir, "tokens.work"));
    GUARD(gen_path(next, sizeof(next), ks->dir, g + 1));
    /* SoftHSM2 finalised: every file of the work token is closed */
    int rc = scp_p11_finalize(&ks->p11);
    if (rc == SCP_OK)
        rc = walk_tree(ks, work, NULL, 1);
    if (rc == SCP_OK && (ks_crash_point("rename-generation") != SCP_OK || rename(work, next) != 0))
        rc = io_err(ks, "renaming", work);
    if (rc == SCP_OK)
        rc = write_conf(ks, (long)(g + 1));
    if (rc == SCP_OK)
        rc = fsync_path(ks, ks->dir, 1);
    if (rc == SCP_OK)
        rc = switch_link(ks, g + 1);
    if (rc != SCP_OK) {
        remove_tree(work);
        ks_ignore(reload(ks, 0, 0));
        return rc;
    }
    rc = reload(ks, 0, 0);
    prune(ks); /* generations nobody holds any more */
    return rc;
}

void ks_gen_abort(scp_keystore *ks)
{
    if (!ks->in_write)
        return;
    ks->in_write = 0;
    if (!ks->gens)
        return;
    char work[KS_PATH_MAX];
    ks_ignore(scp_p11_finalize(&ks->p11));
    if (path2(work, sizeof(work), ks->dir, "tokens.work") == SCP_OK)
        remove_tree(work);
    ks_ignore(reload(ks, 0, 0));
}

/* The first generation of a new private token (init). */
int ks_gen_create(scp_keystore *ks)
{
    char g1[KS_PATH_MAX];
    GUARD(gen_path(g1, sizeof(g1), ks->dir, 1));
    if (mkdir(g1, 0700) != 0)
        return io_err(ks, "creating", g1);
    GUARD(write_conf(ks, 1));
    GUARD(switch_link(ks, 1));
    GUARD(ks_write_conf(ks, 0));
    return ks_write_conf(ks, 1);
}

/* init: SoftHSM2 creates the token in generation 1 itself (nothing to
 * lose yet, no other process). */
int ks_gen_init_use(scp_keystore *ks)
{
    char conf[KS_PATH_MAX];
    GUARD(conf_path(ks, 1, conf, sizeof(conf)));
    ENSURE(setenv("SOFTHSM2_CONF", conf, 1) == 0, SCP_E_IO);
    ks->use_gen = 1;
    return SCP_OK;
}

/* Make the changes of an init durable: a new private token is written in
 * place by C_InitToken (nothing to lose yet), then fsynced. */
int ks_gen_sync_live(scp_keystore *ks)
{
    char live[KS_PATH_MAX];
    unsigned long g = live_gen(ks->dir);
    if (!ks->gens || g == 0)
        return SCP_OK;
    GUARD(gen_path(live, sizeof(live), ks->dir, g));
    GUARD(scp_p11_finalize(&ks->p11));
    GUARD(walk_tree(ks, live, NULL, 1));
    return reload(ks, 0, 1);
}

/* ---- the writer lock ---- */

int ks_lock(scp_keystore *ks)
{
    char p[KS_PATH_MAX];
    if (ks->locked)
        return SCP_OK;
    GUARD(path2(p, sizeof(p), ks->dir, "lock"));
    if (ks->lock_fd < 0) {
        ks->lock_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (ks->lock_fd < 0)
            return io_err(ks, "opening", p);
    }
    const char *w = getenv("SCPKIT_KS_LOCK_WAIT");
    long wait_ms = w != NULL ? atol(w) : 30000;
    struct timespec t0, now, nap = {0, 5 * 1000 * 1000};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        if (flock(ks->lock_fd, LOCK_EX | LOCK_NB) == 0)
            break;
        if (errno != EWOULDBLOCK && errno != EINTR)
            return io_err(ks, "locking", p);
        clock_gettime(CLOCK_MONOTONIC, &now);
        long el = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
        if (el >= wait_ms) {
            ks_why(ks, "the keystore is locked: another scpkit process has been changing it for "
                       "%ld ms (%s); retry when it is done (SCPKIT_KS_LOCK_WAIT sets the wait)",
                   el, p);
            return SCP_E_TIMEOUT;
        }
        nanosleep(&nap, NULL);
    }
    ks->locked = 1;
    /* a write cut short before its switch is finished or dropped now, then
     * the writer works on the live generation, not on what it saw at open */
    int changed = 0, rc = ks_gen_recover(ks, &changed);
    if (rc == SCP_OK && ks->p11.f != NULL && ks->p11.initialized)
        rc = ks_gen_refresh(ks);
    if (rc != SCP_OK) {
        ks_unlock(ks);
        return rc;
    }
    return SCP_OK;
}

/* Take the lock only if nobody holds it (0 = taken). */
int ks_trylock(scp_keystore *ks)
{
    char p[KS_PATH_MAX];
    if (ks->locked)
        return SCP_OK;
    GUARD(path2(p, sizeof(p), ks->dir, "lock"));
    if (ks->lock_fd < 0) {
        ks->lock_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (ks->lock_fd < 0)
            return io_err(ks, "opening", p);
    }
    ENSURE(flock(ks->lock_fd, LOCK_EX | LOCK_NB) == 0, SCP_E_TIMEOUT);
    ks->locked = 1;
    int changed = 0, rc = ks_gen_recover(ks, &changed);
    if (rc == SCP_OK && ks->p11.f != NULL && ks->p11.initialized)
        rc = ks_gen_refresh(ks);
    if (rc != SCP_OK) {
        ks_unlock(ks);
        return rc;
    }
    return SCP_OK;
}

void ks_unlock(scp_keystore *ks)
{
    if (ks->locked && ks->lock_fd >= 0)
        (void)flock(ks->lock_fd, LOCK_UN);
    ks->locked = 0;
}
