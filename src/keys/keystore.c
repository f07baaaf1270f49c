/* scpkit keys: opening a keystore (private SoftHSM2 token or any PKCS#11
 * module), what the token can do, and the PIN prompt. */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
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
    struct passwd *pw = getpwuid(getuid());
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

/* SoftHSM2 reads SOFTHSM2_CONF at C_Initialize: a private one per keystore. */
static int softhsm_conf(const char *dir, int create)
{
    char conf[KS_PATH_MAX], tokens[KS_PATH_MAX];
    struct stat st;
    int n1 = snprintf(conf, sizeof(conf), "%s/softhsm2.conf", dir);
    int n2 = snprintf(tokens, sizeof(tokens), "%s/tokens", dir);
    ENSURE(n1 > 0 && (size_t)n1 < sizeof(conf) && n2 > 0 && (size_t)n2 < sizeof(tokens),
           SCP_E_ARG);
    if (create) {
        GUARD(make_private_dir(tokens));
        int fd = open(conf, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600);
        ENSURE(fd >= 0, SCP_E_IO);
        FILE *f = fdopen(fd, "w");
        if (f == NULL) {
            close(fd);
            return SCP_E_IO;
        }
        fprintf(f, "# scpkit keystore: a private SoftHSM2 token\n"
                   "directories.tokendir = %s\nobjectstore.backend = file\n"
                   "log.level = ERROR\nslots.removable = false\n",
                tokens);
        ENSURE(fclose(f) == 0, SCP_E_IO);
    }
    if (stat(conf, &st) != 0)
        return SCP_E_NOT_FOUND;
    ENSURE((st.st_mode & 077) == 0, SCP_E_PERM);
    /* SoftHSM2 read its configuration at the first C_Initialize: while it
     * is loaded, this process can only reach that same keystore. */
    const char *cur = getenv("SOFTHSM2_CONF");
    if (scp_p11_in_use() > 0)
        ENSURE(cur != NULL && strcmp(cur, conf) == 0, SCP_E_STATE);
    ENSURE(setenv("SOFTHSM2_CONF", conf, 1) == 0, SCP_E_IO);
    return SCP_OK;
}

static int ks_new(const scp_ks_config *cfg, scp_keystore **out)
{
    scp_keystore *ks = calloc(1, sizeof(*ks));
    ENSURE(ks != NULL, SCP_E_NOMEM);
    int rc = SCP_OK;
    if (cfg != NULL && cfg->dir != NULL) {
        if (strlen(cfg->dir) < sizeof(ks->dir))
            memcpy(ks->dir, cfg->dir, strlen(cfg->dir) + 1);
        else
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
static int init_steps(scp_keystore *ks, const char *module, int private_conf, const char *token,
                      const char *so_pin, const char *user_pin, FILE *report)
{
    GUARD(make_private_dir(ks->dir));
    if (private_conf)
        GUARD(softhsm_conf(ks->dir, 1));
    GUARD(scp_p11_load(&ks->p11, module));
    int have = scp_p11_find_token(&ks->p11, token) == SCP_OK;
    ENSURE(!(have && private_conf), SCP_E_STATE); /* this keystore exists already */
    if (!have) {
        ENSURE(so_pin != NULL && so_pin[0] != 0, SCP_E_ARG);
        GUARD(scp_p11_find_free(&ks->p11));
        GUARD(scp_p11_init_token(&ks->p11, token, so_pin, user_pin));
    }
    GUARD(scp_p11_login(&ks->p11, user_pin));
    if (report != NULL)
        fprintf(report, "token \"%s\" via %s%s:\n", token, module,
                have ? " (existing token adopted)" : "");
    GUARD(report_mechs(&ks->p11, report));
    GUARD(ks_db_open(ks, 1));
    GUARD(ks_db_config_set(ks, "module", module));
    GUARD(ks_db_config_set(ks, "token", token));
    GUARD(ks_db_config_set(ks, "conf", private_conf ? "private" : "environment"));
    GUARD(ks_tok_audit_key(ks, 1));
    return scp_keystore_audit(ks, have ? "init:adopt" : "init", token, 0, NULL, NULL, SCP_OK);
}

int scp_keystore_init(const scp_ks_config *cfg, const char *so_pin, const char *user_pin,
                      FILE *report)
{
    scp_keystore *ks;
    ENSURE(user_pin != NULL && user_pin[0], SCP_E_ARG);
    GUARD(ks_new(cfg, &ks));
    int private_conf = cfg == NULL || cfg->module == NULL;
    const char *module = private_conf ? SCP_KS_DEFAULT_MODULE : cfg->module;
    const char *token = cfg && cfg->token ? cfg->token : SCP_KS_DEFAULT_TOKEN;
    char db[KS_PATH_MAX];
    struct stat st;
    int n = snprintf(db, sizeof(db), "%s/keystore.db", ks->dir);
    int rc = n > 0 && (size_t)n < sizeof(db) ? SCP_OK : SCP_E_ARG;
    if (rc == SCP_OK && stat(db, &st) == 0)
        rc = SCP_E_STATE; /* never over an existing keystore */
    if (rc == SCP_OK)
        rc = init_steps(ks, module, private_conf, token, so_pin, user_pin, report);
    if (rc != SCP_OK && report != NULL && ks->p11.last_call != NULL && ks->p11.last_rv != 0)
        fprintf(report, "%s failed: CK_RV 0x%lx\n", ks->p11.last_call,
                (unsigned long)ks->p11.last_rv);
    scp_keystore_close(ks);
    return rc;
}

static int open_steps(scp_keystore *ks, const scp_ks_config *cfg, const char *user_pin)
{
    char module[KS_PATH_MAX], token[64];
    struct stat st;
    ENSURE(stat(ks->dir, &st) == 0, SCP_E_NOT_FOUND);
    ENSURE(S_ISDIR(st.st_mode) && (st.st_mode & 077) == 0 && st.st_uid == getuid(), SCP_E_PERM);
    GUARD(ks_db_open(ks, 0));
    GUARD(ks_db_config_get(ks, "module", module, sizeof(module)));
    GUARD(ks_db_config_get(ks, "token", token, sizeof(token)));
    if (cfg != NULL && cfg->module != NULL) { /* an explicit module wins */
        ENSURE(strlen(cfg->module) < sizeof(module), SCP_E_ARG);
        memcpy(module, cfg->module, strlen(cfg->module) + 1);
    }
    if (cfg != NULL && cfg->token != NULL) {
        ENSURE(strlen(cfg->token) < sizeof(token), SCP_E_ARG);
        memcpy(token, cfg->token, strlen(cfg->token) + 1);
    }
    char conf[16];
    if (ks_db_config_get(ks, "conf", conf, sizeof(conf)) == SCP_OK &&
        strcmp(conf, "private") == 0)
        GUARD(softhsm_conf(ks->dir, 0));
    GUARD(scp_p11_load(&ks->p11, module));
    GUARD(scp_p11_find_token(&ks->p11, token));
    GUARD(scp_p11_login(&ks->p11, user_pin));
    return ks_tok_audit_key(ks, 0);
}

int scp_keystore_open(const scp_ks_config *cfg, const char *user_pin, scp_keystore **out)
{
    scp_keystore *ks;
    ENSURE(user_pin != NULL && out != NULL, SCP_E_ARG);
    GUARD(ks_new(cfg, &ks));
    int rc = open_steps(ks, cfg, user_pin);
    if (rc != SCP_OK) {
        scp_keystore_close(ks);
        return rc;
    }
    *out = ks;
    return SCP_OK;
}

void scp_keystore_close(scp_keystore *ks)
{
    if (ks == NULL)
        return;
    scp_p11_unload(&ks->p11);
    ks_db_close(ks);
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
