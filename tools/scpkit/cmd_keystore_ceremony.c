/* scpkit keystore CLI, ceremony commands (issue 6): split, combine,
 * activate under dual control, custodian enrolment. A ceremony necessarily
 * outputs its shares: to stdout, or to 0600 files in the directory the
 * user names, nowhere else; they are wiped from memory afterwards. */
/* Built only with the keystore library (src/keys: SQLite, p11-kit header). */
#ifdef SCP_HAVE_KEYS
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "keystore_cli.h"


static int write_share(const char *dir, const char *label, uint32_t v, unsigned i,
                       const char *text, char *path, size_t path_size)
{
    int n = snprintf(path, path_size, "%s/%s-%u-share-%u.txt", dir, label, (unsigned)v, i);
    if (n < 0 || (size_t)n >= path_size)
        return -1;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -1;
    size_t len = strlen(text);
    int ok = write(fd, text, len) == (ssize_t)len && write(fd, "\n", 1) == 1;
    return close(fd) == 0 && ok ? 0 : -1;
}

static int output_shares(scp_cli *c, const char *dir, const scp_ks_key_info *k,
                         char (*sh)[SCP_KS_SHARE_TEXT_MAX], unsigned n)
{
    char path[1100];
    /* A ceremony must hand the shares out: they leave the process here, and
     * only here, to stdout or to the files the user asked for. */
    fprintf(stderr, "scpkit: %u secret shares of %s:%u follow%s; give each to one custodian "
                    "and destroy every other copy\n",
            n, k->label, (unsigned)k->version, dir ? " (written to files, mode 0600)" : "");
    for (unsigned i = 0; i < n; i++) {
        if (dir == NULL) {
            printf("share %u: %s\n", i + 1, sh[i]);
        } else if (write_share(dir, k->label, k->version, i + 1, sh[i], path, sizeof(path)) != 0) {
            return scp_cli_fail(c, SCP_EXIT_LOCAL, "cannot create %s (exists, or no access)", path);
        } else {
            fprintf(stderr, "share %u: %s\n", i + 1, path);
        }
    }
    return SCP_EXIT_OK;
}

int scp_ks_cli_split(scp_cli *c, scp_keystore *ks)
{
    const char *scheme = scp_cli_take(c, "--scheme"), *type = scp_cli_take(c, "--type");
    const char *mt = scp_cli_take(c, "-m"), *nt = scp_cli_take(c, "-n");
    const char *dir = scp_cli_take(c, "--out-dir");
    char label[SCP_KS_LABEL_MAX + 1], (*sh)[SCP_KS_SHARE_TEXT_MAX];
    uint32_t v;
    scp_ks_type t;
    scp_ks_key_info k;
    int m = 0, n = 0, rc, xor_scheme = scheme && strcmp(scheme, "xor") == 0;
    if (c->o.master == NULL || scp_ks_parse_ref(c->o.master, label, &v) != SCP_OK ||
        type == NULL || scp_ks_type_parse(type, &t) != SCP_OK || scheme == NULL || nt == NULL ||
        (!xor_scheme && (strcmp(scheme, "shamir") != 0 || mt == NULL)))
        return scp_cli_fail(c, SCP_EXIT_USAGE,
                            "split --master LABEL[:VERSION] --type T (--scheme shamir -m M -n N | "
                            "--scheme xor -n N) [--out-dir DIR]");
    if ((rc = scp_cli_number(c, "-n", nt, KS_SHARES_MAX, &n)) != SCP_EXIT_OK ||
        (mt && (rc = scp_cli_number(c, "-m", mt, n, &m)) != SCP_EXIT_OK) ||
        (rc = scp_cli_no_more(c, 2)) != SCP_EXIT_OK)
        return rc;
    if (n < 2 || (!xor_scheme && m < 2))
        return scp_cli_fail(c, SCP_EXIT_USAGE, "split: want 2 <= M <= N <= %d", KS_SHARES_MAX);
    sh = calloc((size_t)n, SCP_KS_SHARE_TEXT_MAX);
    if (sh == NULL)
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "out of memory");
    rc = scp_keystore_split_new(ks, label, v, t, xor_scheme, (unsigned)m, (unsigned)n, sh, &k);
    if (rc == SCP_OK) {
        scp_ks_cli_print_key(c, &k);
        rc = output_shares(c, dir, &k, sh, (unsigned)n);
    } else {
        rc = scp_ks_cli_fail(c, rc, "split");
    }
    scp_wipe(sh, (size_t)n * SCP_KS_SHARE_TEXT_MAX);
    free(sh);
    return rc;
}

/* Shares from --share-file F (repeated), else one per line from stdin when
 * it is not a terminal, else prompted without echo on /dev/tty. */
static int read_shares(scp_cli *c, char (*sh)[SCP_KS_SHARE_TEXT_MAX], size_t *n)
{
    const char *f;
    *n = 0;
    while ((f = scp_cli_take(c, "--share-file")) != NULL && *n < KS_SHARES_MAX) {
        FILE *fp = fopen(f, "r");
        if (fp == NULL || fgets(sh[*n], SCP_KS_SHARE_TEXT_MAX, fp) == NULL) {
            if (fp)
                fclose(fp);
            return scp_cli_fail(c, SCP_EXIT_LOCAL, "cannot read a share from %s", f);
        }
        fclose(fp);
        sh[*n][strcspn(sh[*n], "\r\n")] = 0;
        (*n)++;
    }
    if (*n > 0)
        return SCP_EXIT_OK;
    if (!isatty(0)) {
        while (*n < KS_SHARES_MAX && fgets(sh[*n], SCP_KS_SHARE_TEXT_MAX, stdin) != NULL) {
            sh[*n][strcspn(sh[*n], "\r\n")] = 0;
            if (sh[*n][0] != 0)
                (*n)++;
        }
        return *n > 0 ? SCP_EXIT_OK : scp_cli_fail(c, SCP_EXIT_USAGE, "no shares on stdin");
    }
    for (;;) { /* prompt until an empty line */
        char prompt[48];
        snprintf(prompt, sizeof(prompt), "share %zu (empty line to end): ", *n + 1);
        if (*n >= KS_SHARES_MAX ||
            scp_keystore_pin(NULL, prompt, sh[*n], SCP_KS_SHARE_TEXT_MAX) != SCP_OK)
            break;
        (*n)++;
    }
    return *n > 0 ? SCP_EXIT_OK : scp_cli_fail(c, SCP_EXIT_USAGE, "no shares given");
}

int scp_ks_cli_combine(scp_cli *c, scp_keystore *ks)
{
    const char *kcvh = scp_cli_take(c, "--kcv");
    char label[SCP_KS_LABEL_MAX + 1], sh[KS_SHARES_MAX][SCP_KS_SHARE_TEXT_MAX];
    const char *ptr[KS_SHARES_MAX];
    uint8_t kcv[3];
    size_t n = 0, kl = 0;
    uint32_t v;
    scp_ks_key_info k;
    if (c->o.master == NULL || scp_ks_parse_ref(c->o.master, label, &v) != SCP_OK ||
        (kcvh && (scp_hex_decode(kcvh, kcv, sizeof(kcv), &kl) != SCP_OK || kl != 3)))
        return scp_cli_fail(c, SCP_EXIT_USAGE,
                            "combine --master LABEL[:VERSION] [--kcv HEX] [--share-file F ...]");
    int rc = read_shares(c, sh, &n);
    if (rc == SCP_EXIT_OK)
        rc = scp_cli_no_more(c, 2);
    if (rc == SCP_EXIT_OK) {
        for (size_t i = 0; i < n; i++)
            ptr[i] = sh[i];
        int r = scp_keystore_combine(ks, label, v, ptr, n, kcvh ? kcv : NULL, &k);
        rc = r == SCP_OK ? SCP_EXIT_OK
                         : scp_ks_cli_fail(c, r, r == SCP_E_AUTH ? "combine: not enough shares"
                                                         : "combine (a share failed its check?)");
        if (r == SCP_OK)
            scp_ks_cli_print_key(c, &k);
    }
    scp_wipe(sh, sizeof(sh));
    return rc;
}

static int activate_custodians(scp_keystore *ks, const char *label, uint32_t v,
                               const char *reason, const char *a, const char *b)
{
    char p1[KS_PIN_MAX], p2[KS_PIN_MAX], q1[96], q2[96];
    snprintf(q1, sizeof(q1), "PIN of custodian %s: ", a);
    snprintf(q2, sizeof(q2), "PIN of custodian %s: ", b);
    int rc = scp_keystore_pin("SCPKIT_CUSTODIAN_PIN_1", q1, p1, sizeof(p1));
    if (rc == SCP_OK)
        rc = scp_keystore_pin("SCPKIT_CUSTODIAN_PIN_2", q2, p2, sizeof(p2));
    if (rc == SCP_OK)
        rc = scp_keystore_activate_custodians(ks, label, v, a, p1, b, p2, reason);
    scp_wipe(p1, sizeof(p1));
    scp_wipe(p2, sizeof(p2));
    return rc;
}

int scp_ks_cli_activate(scp_cli *c, scp_keystore *ks)
{
    const char *reason = scp_cli_take(c, "--reason");
    const char *a = scp_cli_take(c, "--custodian"), *b = scp_cli_take(c, "--custodian");
    char label[SCP_KS_LABEL_MAX + 1], sh[KS_SHARES_MAX][SCP_KS_SHARE_TEXT_MAX];
    const char *ptr[KS_SHARES_MAX];
    size_t n = 0;
    uint32_t v;
    scp_ks_key_info k;
    int rc;
    if (c->o.argc < 3 || reason == NULL || scp_ks_parse_ref(c->o.argv[2], label, &v) != SCP_OK ||
        (a != NULL) != (b != NULL))
        return scp_cli_fail(c, SCP_EXIT_USAGE,
                            "activate LABEL[:VERSION] --reason TEXT (--share-file F ... | "
                            "--custodian A --custodian B)");
    if (a != NULL) {
        if ((rc = scp_cli_no_more(c, 3)) != SCP_EXIT_OK)
            return rc;
        rc = activate_custodians(ks, label, v, reason, a, b);
    } else {
        if ((rc = read_shares(c, sh, &n)) != SCP_EXIT_OK || (rc = scp_cli_no_more(c, 3)))
            return rc;
        for (size_t i = 0; i < n; i++)
            ptr[i] = sh[i];
        rc = scp_keystore_activate_shares(ks, label, v, ptr, n, reason);
        scp_wipe(sh, sizeof(sh));
    }
    if (rc != SCP_OK)
        return scp_ks_cli_fail(c, rc, "activate: quorum not met");
    if (scp_keystore_get(ks, label, v, &k) == SCP_OK)
        scp_ks_cli_print_key(c, &k);
    return SCP_EXIT_OK;
}

int scp_ks_cli_custodian_add(scp_cli *c, scp_keystore *ks)
{
    char pin[KS_PIN_MAX], prompt[96];
    int rc = scp_cli_no_more(c, 3);
    if (rc != SCP_EXIT_OK)
        return rc;
    if (c->o.argc != 3)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "custodian-add NAME");
    snprintf(prompt, sizeof(prompt), "new PIN for custodian %s: ", c->o.argv[2]);
    rc = scp_keystore_pin("SCPKIT_CUSTODIAN_PIN", prompt, pin, sizeof(pin));
    if (rc == SCP_OK)
        rc = scp_keystore_custodian_add(ks, c->o.argv[2], pin);
    scp_wipe(pin, sizeof(pin));
    if (rc != SCP_OK)
        return scp_ks_cli_fail(c, rc, "custodian-add (PIN of 6 characters or more; name not taken)");
    if (!c->o.json)
        printf("custodian %s enrolled\n", c->o.argv[2]);
    return SCP_EXIT_OK;
}

#endif /* SCP_HAVE_KEYS */
