/* scpkit keys: opening a keystore (private SoftHSM2 token or any PKCS#11
 * module), what the token can do, and the PIN prompt. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>
#include "keys/internal.h"
#include "core/guard.h"
#include "scpkit/crypto.h"

/* Mechanisms the keystore uses, and what is lost without each. */
static const struct {
    CK_MECHANISM_TYPE m;
    CK_FLAGS flags;
    const char *name, *use;
    int mandatory;
} mechs[] = {
    {CKM_AES_KEY_GEN, CKF_GENERATE, "CKM_AES_KEY_GEN", "AES master keys", 1},
    {CKM_AES_CMAC, CKF_SIGN, "CKM_AES_CMAC", "SP800-108 and KDF3 diversification", 1},
    {CKM_AES_ECB, CKF_ENCRYPT, "CKM_AES_ECB", "AES key check values, ceremony import", 1},
    {CKM_GENERIC_SECRET_KEY_GEN, CKF_GENERATE, "CKM_GENERIC_SECRET_KEY_GEN", "audit HMAC key", 1},
    {CKM_SHA256_HMAC, CKF_SIGN, "CKM_SHA256_HMAC", "audit checkpoints", 1},
    {CKM_DES2_KEY_GEN, CKF_GENERATE, "CKM_DES2_KEY_GEN", "2-key 3DES masters", 0},
    {CKM_DES3_KEY_GEN, CKF_GENERATE, "CKM_DES3_KEY_GEN", "3-key 3DES masters", 0},
    {CKM_DES3_ECB, CKF_ENCRYPT, "CKM_DES3_ECB", "EMV and VISA2 diversification", 0},
    {CKM_AES_KEY_WRAP, CKF_UNWRAP, "CKM_AES_KEY_WRAP", "ceremony import (unwrap)", 0},
    {0x3ac /* CKM_SP800_108_COUNTER_KDF, PKCS#11 v3.0 */, CKF_DERIVE,
     "CKM_SP800_108_COUNTER_KDF", "in-token KBKDF (not needed: CMAC is used)", 0},
};

static int report_mechs(scp_p11 *p, FILE *f)
{
    int rc = SCP_OK;
    for (size_t i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++) {
        int ok = scp_p11_has_mech(p, mechs[i].m, mechs[i].flags);
        if (f != NULL)
            fprintf(f, "  %-28s %-3s %s%s\n", mechs[i].name, ok ? "yes" : "NO", mechs[i].use,
                    ok ? "" : (mechs[i].mandatory ? ": REQUIRED, the keystore cannot work"
                                                  : ": not available with this token"));
        if (!ok && mechs[i].mandatory)
            rc = SCP_E_UNSUPPORTED;
    }
    return rc;
}

/* ---- what went wrong, and what to do ---- */

static __thread char last_why[512];

void ks_why(scp_keystore *ks, const char *fmt, ...)
{
    va_list ap;
    if (last_why[0] != 0) /* the first (innermost) explanation wins */
        return;
    va_start(ap, fmt);
    vsnprintf(last_why, sizeof(last_why), fmt, ap);
    va_end(ap);
    if (ks != NULL)
        snprintf(ks->why, sizeof(ks->why), "%s", last_why);
}

void ks_why_clear(scp_keystore *ks)
{
    last_why[0] = 0;
    if (ks != NULL)
        ks->why[0] = 0;
}

const char *scp_keystore_why(const scp_keystore *ks)
{
    (void)ks;
    return last_why;
}

void scp_keystore_report(scp_keystore *ks, FILE *f)
{
    (void)report_mechs(&ks->p11, f);
}

static int default_dir(char *out, size_t size)
{
    const char *home = getenv("HOME");
    ENSURE(home != NULL && home[0] == '/', SCP_E_ARG);
    int n = snprintf(out, size, "%s/.scpkit/keystore", home);
    ENSURE(n > 0 && (size_t)n < size, SCP_E_ARG);
    return SCP_OK;
}

static void set_actor(scp_keystore *ks, const char *actor)
{
    struct passwd pwb, *pw = NULL;
    char buf[1024];
    if (getpwuid_r(getuid(), &pwb, buf, sizeof(buf), &pw) != 0) /* reentrant: threads */
        pw = NULL;
    if (actor == NULL)
        actor = getenv("SCPKIT_ACTOR");
    if (actor == NULL)
        actor = pw != NULL ? pw->pw_name : "unknown";
    snprintf(ks->actor, sizeof(ks->actor), "%s", actor);
}

/* mkdir -p with 0700 for what we create; the keystore dir itself must not
 * be reachable by group or others. */
static int make_private_dir(const char *dir)
{
    char tmp[KS_PATH_MAX];
    struct stat st;
    ENSURE(strlen(dir) < sizeof(tmp), SCP_E_ARG);
    memcpy(tmp, dir, strlen(dir) + 1);
    for (char *s = tmp + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = 0;
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
            return SCP_E_IO;
        *s = '/';
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
        return SCP_E_IO;
    ENSURE(stat(dir, &st) == 0 && S_ISDIR(st.st_mode), SCP_E_IO);
    ENSURE(st.st_uid == getuid(), SCP_E_PERM);
    ENSURE(chmod(dir, 0700) == 0, SCP_E_PERM);
    return SCP_OK;
}

/* SoftHSM2 reads SOFTHSM2_CONF at C_Initialize: a private one per keystore
 * (written by gen.c; its token directory is the absolute DIR/tokens). */
static int softhsm_conf(scp_keystore *ks)
{
    char conf[KS_PATH_MAX], want[KS_PATH_MAX + 32], text[KS_PATH_MAX + 512];
    struct stat st;
    int n1 = snprintf(conf, sizeof(conf), "%s/softhsm2.conf", ks->dir);
    int n2 = snprintf(want, sizeof(want), "directories.tokendir = %s/tokens\n", ks->dir);
    ENSURE(n1 > 0 && (size_t)n1 < sizeof(conf) && n2 > 0 && (size_t)n2 < sizeof(want), SCP_E_ARG);
    if (lstat(conf, &st) != 0)
        return SCP_E_NOT_FOUND;
    if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0 || st.st_uid != getuid()) {
        ks_why(ks, "%s must be a regular file of yours with mode 0600 (it tells SoftHSM2 where "
                   "the token is): chmod 600 it",
               conf);
        return SCP_E_PERM;
    }
    /* one written with a relative --dir (before it was made absolute) */
    FILE *f = fopen(conf, "r");
    size_t n = f != NULL ? fread(text, 1, sizeof(text) - 1, f) : 0;
    if (f != NULL)
        fclose(f);
    text[n] = 0;
    if (strstr(text, want) == NULL && ks_trylock(ks) == SCP_OK) {
        int rc = ks_write_conf(ks, 0);
        ks_unlock(ks);
        GUARD(rc);
    }
    /* SoftHSM2 read its configuration at the first C_Initialize: while it
     * is loaded, this process can only reach that same keystore. */
    const char *cur = getenv("SOFTHSM2_CONF");
    size_t dl = strlen(ks->dir);
    if (scp_p11_in_use() > 0 &&
        (cur == NULL || strncmp(cur, ks->dir, dl) != 0 || cur[dl] != '/' ||
         strchr(cur + dl + 1, '/') != NULL)) {
        ks_why(ks, "another keystore is open in this process: SoftHSM2 serves one keystore "
                   "per process");
        return SCP_E_STATE;
    }
    ENSURE(setenv("SOFTHSM2_CONF", conf, 1) == 0, SCP_E_IO);
    return SCP_OK;
}

/* The PKCS#11 module is code: only from the operator (keystore.h). */
static int pick_module(scp_keystore *ks, const scp_ks_config *cfg, int private_conf,
                       const char **out)
{
    const char *m = cfg != NULL ? cfg->module : NULL;
    struct stat st;
    if (m == NULL)
        m = getenv("SCPKIT_PKCS11_MODULE");
    if (m == NULL && private_conf)
        m = SCP_KS_DEFAULT_MODULE;
    if (m == NULL || m[0] == 0) {
        ks_why(ks, "this keystore uses an external PKCS#11 module: name it with "
                   "--pkcs11-module PATH or SCPKIT_PKCS11_MODULE (it is never taken from "
                   "keystore.db)");
        return SCP_E_ARG;
    }
    if (m[0] != '/') {
        ks_why(ks, "PKCS#11 module %s: give an absolute path", m);
        return SCP_E_ARG;
    }
    if (stat(m, &st) != 0) {
        ks_why(ks, "PKCS#11 module %s: %s (install softhsm2, or name the module with "
                   "--pkcs11-module)",
               m, strerror(errno));
        return SCP_E_NOT_FOUND;
    }
    if (!S_ISREG(st.st_mode) || (st.st_uid != 0 && st.st_uid != getuid()) ||
        (st.st_mode & 022) != 0) {
        ks_why(ks, "PKCS#11 module %s is not a regular file owned by root or you and closed to "
                   "writes by others: refused (it would run as code in this process)",
               m);
        return SCP_E_PERM;
    }
    *out = m;
    return SCP_OK;
}

/* Login failures told apart (PKCS#11 v2.40 5.6 C_Login). */
static int login_why(scp_keystore *ks, int rc)
{
    if (rc == SCP_OK)
        return rc;
    switch (ks->p11.last_rv) {
    case CKR_PIN_INCORRECT:
    case CKR_PIN_LEN_RANGE:
        ks_why(ks, "wrong user PIN for token \"%s\": check SCPKIT_USER_PIN (or what was typed "
                   "at the prompt)",
               ks->token);
        break;
    case CKR_PIN_LOCKED:
        ks_why(ks, "the user PIN of token \"%s\" is locked after too many wrong PINs: the "
                   "security officer must set a new one (C_InitPIN with the SO PIN, e.g. "
                   "softhsm2-util --init-pin ... for SoftHSM2)",
               ks->token);
        break;
    case CKR_PIN_EXPIRED:
        ks_why(ks, "the user PIN of token \"%s\" has expired: set a new one", ks->token);
        break;
    default:
        break;
    }
    return rc;
}

static int find_token(scp_keystore *ks)
{
    int rc = ks_find_token(ks);
    if (rc == SCP_E_NOT_FOUND)
        ks_why(ks, "token \"%s\" not found%s%s (generation %lu): restore the token directory "
                   "from a backup (or plug the token in), or initialise a new keystore elsewhere",
               ks->token, ks->gens ? " in " : "", ks->gens ? ks->dir : "", ks->use_gen);
    return rc;
}

static int ks_new(const scp_ks_config *cfg, scp_keystore **out)
{
    scp_keystore *ks = calloc(1, sizeof(*ks));
    ENSURE(ks != NULL, SCP_E_NOMEM);
    ks->lock_fd = -1;
    ks->view_fd = -1;
    int rc = SCP_OK;
    if (cfg != NULL && cfg->dir != NULL && cfg->dir[0] == '/') {
        if (strlen(cfg->dir) < sizeof(ks->dir))
            memcpy(ks->dir, cfg->dir, strlen(cfg->dir) + 1);
        else
            rc = SCP_E_ARG;
    } else if (cfg != NULL && cfg->dir != NULL) {
        /* relative: made absolute now, since it is written into
         * softhsm2.conf and must work from any directory later */
        char cwd[KS_PATH_MAX];
        const char *d = cfg->dir;
        while (d[0] == '.' && d[1] == '/')
            d += 2;
        if (getcwd(cwd, sizeof(cwd)) == NULL ||
            snprintf(ks->dir, sizeof(ks->dir), "%s/%s", cwd, d) >= (int)sizeof(ks->dir))
            rc = SCP_E_ARG;
    } else {
        rc = default_dir(ks->dir, sizeof(ks->dir));
    }
    set_actor(ks, cfg != NULL ? cfg->actor : NULL);
    if (rc != SCP_OK) {
        free(ks);
        return rc;
    }
    *out = ks;
    return SCP_OK;
}

/* With no module given: a private SoftHSM2 token in DIR, initialised here.
 * With --pkcs11-module: that module as the environment configures it; an
 * existing token LABEL is adopted (user PIN only), else a free slot is
 * initialised with the SO PIN. */
static int init_steps(scp_keystore *ks, const scp_ks_config *cfg, int private_conf,
                      const char *so_pin, FILE *report)
{
    const char *module = NULL;
    char mark[KS_PATH_MAX];
    GUARD(make_private_dir(ks->dir));
    int n = snprintf(mark, sizeof(mark), "%s/init-incomplete", ks->dir);
    ENSURE(n > 0 && (size_t)n < sizeof(mark), SCP_E_ARG);
    int fd = open(mark, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    ENSURE(fd >= 0, SCP_E_IO);
    close(fd);
    GUARD(pick_module(ks, cfg, private_conf, &module));
    if (private_conf) {
        ks->gens = 1;
        GUARD(ks_gen_create(ks));
        GUARD(softhsm_conf(ks));
        GUARD(ks_gen_init_use(ks)); /* a new token: SoftHSM2 writes it in place */
    }
    GUARD(scp_p11_load(&ks->p11, module));
    int have = scp_p11_find_token(&ks->p11, ks->token) == SCP_OK;
    ENSURE(!(have && private_conf), SCP_E_STATE); /* this keystore exists already */
    if (!have) {
        ENSURE(so_pin != NULL && so_pin[0] != 0, SCP_E_ARG);
        GUARD(scp_p11_find_free(&ks->p11));
        GUARD(scp_p11_init_token(&ks->p11, ks->token, so_pin, ks->pin));
    }
    GUARD(login_why(ks, scp_p11_login(&ks->p11, ks->pin, 1)));
    ks->rw = 1;
    if (report != NULL)
        fprintf(report, "token \"%s\" via %s%s:\n", ks->token, module,
                have ? " (existing token adopted)" : "");
    GUARD(report_mechs(&ks->p11, report));
    GUARD(ks_db_open(ks, 1));
    /* for information only: the module is never loaded from here */
    GUARD(ks_db_config_set(ks, "module", module));
    GUARD(ks_db_config_set(ks, "token", ks->token));
    GUARD(ks_db_config_set(ks, "conf", private_conf ? "private" : "environment"));
    GUARD(ks_tok_audit_key(ks, 1));
    GUARD(scp_keystore_audit(ks, have ? "init:adopt" : "init", ks->token, 0, NULL, NULL, SCP_OK));
    GUARD(ks_audit_checkpoint(ks));
    GUARD(ks_gen_sync_live(ks));
    ENSURE(unlink(mark) == 0, SCP_E_IO);
    return SCP_OK;
}

static int set_secret(char *dst, size_t size, const char *src)
{
    ENSURE(src != NULL && strlen(src) < size, SCP_E_ARG);
    memcpy(dst, src, strlen(src) + 1);
    return SCP_OK;
}

/* Opening and closing handles touch process-wide state: SoftHSM2 reads
 * SOFTHSM2_CONF (set by softhsm_conf and the generation code) at
 * C_Initialize, and the module is shared by every handle of the process.
 * Handles are opened, created and closed one at a time, under one
 * recursive lock (a failed open closes its handle inside it); the calls
 * on an open handle run concurrently, each handle in one thread at a time
 * (tests/keys/test_ks_threads). */
static pthread_once_t ks_proc_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t ks_proc_mutex;

static void ks_proc_init(void)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&ks_proc_mutex, &a);
    pthread_mutexattr_destroy(&a);
}

static void ks_proc_lock(void)
{
    pthread_once(&ks_proc_once, ks_proc_init);
    pthread_mutex_lock(&ks_proc_mutex);
}

static void ks_proc_unlock(void)
{
    pthread_mutex_unlock(&ks_proc_mutex);
}

int scp_keystore_init(const scp_ks_config *cfg, const char *so_pin, const char *user_pin,
                      FILE *report)
{
    scp_keystore *ks;
    ks_why_clear(NULL);
    ENSURE(user_pin != NULL && user_pin[0], SCP_E_ARG);
    GUARD(ks_new(cfg, &ks));
    int private_conf = cfg == NULL || cfg->module == NULL;
    char db[KS_PATH_MAX];
    struct stat st;
    int n = snprintf(db, sizeof(db), "%s/keystore.db", ks->dir);
    int rc = n > 0 && (size_t)n < sizeof(db) ? SCP_OK : SCP_E_ARG;
    if (rc == SCP_OK)
        rc = set_secret(ks->pin, sizeof(ks->pin), user_pin);
    if (rc == SCP_OK)
        rc = set_secret(ks->token, sizeof(ks->token),
                        cfg && cfg->token ? cfg->token : SCP_KS_DEFAULT_TOKEN);
    if (rc == SCP_OK && stat(db, &st) == 0)
        rc = SCP_E_STATE; /* never over an existing keystore */
    ks_proc_lock();
    if (rc == SCP_OK)
        rc = init_steps(ks, cfg, private_conf, so_pin, report);
    if (rc != SCP_OK && report != NULL && ks->p11.last_call != NULL && ks->p11.last_rv != 0)
        fprintf(report, "%s failed: CK_RV 0x%lx\n", ks->p11.last_call,
                (unsigned long)ks->p11.last_rv);
    scp_keystore_close(ks);
    ks_proc_unlock();
    return rc;
}

/* Under the writer lock (taken only if free: a live writer settles its own
 * work and any a dead one left): generations, intents, orphans. */
static int open_recover(scp_keystore *ks, int loaded)
{
    if (ks_trylock(ks) != SCP_OK) /* recovers the generations, refreshes the view */
        return SCP_OK;
    int rc = SCP_OK;
    if (loaded) {
        rc = ks_audit_migrate(ks);
        if (rc == SCP_OK)
            rc = ks_reconcile(ks);
    }
    ks_unlock(ks);
    return rc;
}

static int open_steps(scp_keystore *ks, const scp_ks_config *cfg)
{
    char mark[KS_PATH_MAX];
    const char *module = NULL;
    struct stat st;
    if (stat(ks->dir, &st) != 0) {
        ks_why(ks, "no keystore in %s: create one with `scpkit keystore init --dir %s`", ks->dir,
               ks->dir);
        return SCP_E_NOT_FOUND;
    }
    if (!S_ISDIR(st.st_mode) || (st.st_mode & 077) != 0 || st.st_uid != getuid()) {
        ks_why(ks, "%s must be a directory of yours closed to group and others: chmod 700 it",
               ks->dir);
        return SCP_E_PERM;
    }
    int n = snprintf(mark, sizeof(mark), "%s/init-incomplete", ks->dir);
    ENSURE(n > 0 && (size_t)n < sizeof(mark), SCP_E_ARG);
    if (stat(mark, &st) == 0) {
        ks_why(ks, "the keystore in %s was never finished (its init was interrupted): remove the "
                   "directory and run `scpkit keystore init` again",
               ks->dir);
        return SCP_E_STATE;
    }
    n = snprintf(mark, sizeof(mark), "%s/keystore.db", ks->dir);
    ENSURE(n > 0 && (size_t)n < sizeof(mark), SCP_E_ARG);
    if (stat(mark, &st) != 0) {
        ks_why(ks, "no keystore.db in %s: create a keystore with `scpkit keystore init --dir "
                   "%s`, or restore keystore.db from a backup",
               ks->dir, ks->dir);
        return SCP_E_NOT_FOUND;
    }
    if ((st.st_mode & 077) != 0) {
        ks_why(ks, "%s is readable by group or others: chmod 600 it", mark);
        return SCP_E_PERM;
    }
    GUARD(ks_db_open(ks, 0));
    if (cfg != NULL && cfg->token != NULL)
        GUARD(set_secret(ks->token, sizeof(ks->token), cfg->token));
    else if (ks_db_config_get(ks, "token", ks->token, sizeof(ks->token)) != SCP_OK)
        GUARD(set_secret(ks->token, sizeof(ks->token), SCP_KS_DEFAULT_TOKEN));
    /* private SoftHSM2 token: decided by DIR/softhsm2.conf, not by the DB */
    int rc = softhsm_conf(ks);
    int private_conf = rc == SCP_OK;
    if (rc != SCP_OK && rc != SCP_E_NOT_FOUND)
        return rc;
    ks->gens = private_conf;
    GUARD(pick_module(ks, cfg, private_conf, &module));
    if (private_conf && (ks_gen_dirty(ks) || ks_gen_layout(ks) != SCP_OK))
        GUARD(open_recover(ks, 0));
    GUARD(ks_gen_use(ks));
    rc = scp_p11_load(&ks->p11, module);
    if (rc != SCP_OK && !(ks->gens && ks->p11.f != NULL)) /* else find_token retries */
        return rc;
    GUARD(find_token(ks));
    GUARD(login_why(ks, scp_p11_login(&ks->p11, ks->pin, 0)));
    rc = ks_tok_audit_key(ks, 0);
    if (rc == SCP_E_NOT_FOUND)
        ks_why(ks, "token \"%s\" holds no scpkit audit key: it is not this keystore's token, "
                   "or it was damaged; restore the token directory from a backup",
               ks->token);
    GUARD(rc);
    if (ks_has_pending(ks) || ks_audit_migrate_needed(ks))
        GUARD(open_recover(ks, 1));
    return SCP_OK;
}

int scp_keystore_open(const scp_ks_config *cfg, const char *user_pin, scp_keystore **out)
{
    scp_keystore *ks;
    ks_why_clear(NULL);
    ENSURE(user_pin != NULL && out != NULL, SCP_E_ARG);
    GUARD(ks_new(cfg, &ks));
    int rc = set_secret(ks->pin, sizeof(ks->pin), user_pin);
    ks_proc_lock();
    if (rc == SCP_OK)
        rc = open_steps(ks, cfg);
    if (rc != SCP_OK)
        scp_keystore_close(ks);
    ks_proc_unlock();
    if (rc != SCP_OK)
        return rc;
    *out = ks;
    return SCP_OK;
}

void scp_keystore_close(scp_keystore *ks)
{
    if (ks == NULL)
        return;
    ks_proc_lock();
    if (ks->in_tx)
        ks_tx_rollback(ks);
    if (ks->in_write)
        ks_gen_abort(ks);
    scp_p11_unload(&ks->p11);
    ks_db_close(ks);
    ks_unlock(ks);
    if (ks->lock_fd >= 0)
        close(ks->lock_fd);
    ks_gen_close(ks);
    ks_proc_unlock();
    free(ks->rows);
    scp_wipe(ks, sizeof(*ks));
    free(ks);
}

/* ---- PINs: an environment variable or a no-echo prompt, never argv ---- */

static int read_tty(const char *prompt, char *out, size_t size)
{
    int fd = open("/dev/tty", O_RDWR | O_NOCTTY);
    ENSURE(fd >= 0, SCP_E_NOT_FOUND);
    struct termios old, t;
    int have = tcgetattr(fd, &old) == 0;
    if (have) {
        t = old;
        t.c_lflag &= ~(tcflag_t)ECHO;
        (void)tcsetattr(fd, TCSAFLUSH, &t);
    }
    (void)!write(fd, prompt, strlen(prompt));
    size_t n = 0;
    char c;
    while (read(fd, &c, 1) == 1 && c != '\n' && c != '\r') {
        if (n + 1 < size)
            out[n++] = c;
    }
    out[n] = 0;
    (void)!write(fd, "\n", 1);
    if (have)
        (void)tcsetattr(fd, TCSAFLUSH, &old);
    close(fd);
    c = 0;
    return n > 0 ? SCP_OK : SCP_E_ARG;
}

int scp_keystore_pin(const char *env, const char *prompt, char *out, size_t out_size)
{
    ENSURE(out != NULL && out_size > 1, SCP_E_ARG);
    const char *v = env != NULL ? getenv(env) : NULL;
    if (v != NULL && v[0] != 0) {
        ENSURE(strlen(v) < out_size, SCP_E_BUFFER_TOO_SMALL);
        memcpy(out, v, strlen(v) + 1);
        return SCP_OK;
    }
    return read_tty(prompt != NULL ? prompt : "PIN: ", out, out_size);
}
