/* scpkit card: the virtual secure element from the command line.
 *   scpkit card init --state DIR [--profile yubikey|gp23|scp02] [--scp-i HEX]
 *                    [--key HEX] [--kvn N] [--lifecycle op_ready|initialized|secured]
 *   scpkit card run  --state DIR [--vpcd HOST:PORT] [--trace FILE]
 *   scpkit card show --state DIR
 * `run` serves the card to pcscd's vpcd driver until SIGTERM/SIGINT; the
 * state is written at every change, so stopping loses nothing. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "scpkit/buf.h"
#include "scpkit/card.h"
#include "scpkit/crypto.h"

static volatile sig_atomic_t card_stop;

static void on_signal(int sig)
{
    (void)sig;
    card_stop = 1;
}

static const char card_help[] =
    "usage: scpkit card init --state DIR [--profile yubikey|gp23|scp02] [--scp-i HEX]\n"
    "                        [--key HEX] [--kvn KVN] [--lifecycle op_ready|initialized|secured]\n"
    "                        [--oce-ca FILE]\n"
    "       scpkit card run  --state DIR [--vpcd HOST:PORT] [--trace FILE]\n"
    "       scpkit card show --state DIR\n"
    "profiles: yubikey (i=60, level 33 only, AES-128; the default)\n"
    "          gp23    (i=71: S16, pseudo-random challenge, every level, AES-128/192/256)\n"
    "          scp02   (SCP02, i=55 or --scp-i 15: JavaCard 2.2 / GP 2.1.1, 3DES keys;\n"
    "                   PUT KEY of AES keys moves it to SCP03)\n"
    "--scp-i sets i directly (hex: 60, 70; 61, 71 for S16) and allows every level it permits;\n"
    "--kvn is hex (01..FF) like every KVN in scpkit.\n"
    "The factory key set is KVN FF = 404142434445464748494A4B4C4D4E4F unless --key/--kvn.\n"
    "SCP11: the yubikey profile has an SCP11b key 13/01 (P-256) whose certificate is\n"
    "issued by a per-card lab CA written to DIR/sd-ca.pem; --oce-ca FILE (PEM certificate\n"
    "or public key) installs an off-card CA at KID 10/03 and SCP11a/c keys 11/03, 15/03.\n"
    "run connects to vpcd (default 127.0.0.1:35963); --trace writes every APDU in hex\n"
    "with PUT KEY data redacted.\n";

typedef struct card_args {
    const char *state, *profile, *scp_i, *key, *kvn, *lifecycle, *vpcd, *trace, *oce_ca;
} card_args;

static int parse_args(int argc, char **argv, card_args *a)
{
    memset(a, 0, sizeof(*a));
    for (int k = 2; k < argc; k++) {
        const char **slot = NULL;
        if (strcmp(argv[k], "--state") == 0)
            slot = &a->state;
        else if (strcmp(argv[k], "--profile") == 0)
            slot = &a->profile;
        else if (strcmp(argv[k], "--scp-i") == 0)
            slot = &a->scp_i;
        else if (strcmp(argv[k], "--key") == 0)
            slot = &a->key;
        else if (strcmp(argv[k], "--kvn") == 0)
            slot = &a->kvn;
        else if (strcmp(argv[k], "--lifecycle") == 0)
            slot = &a->lifecycle;
        else if (strcmp(argv[k], "--vpcd") == 0)
            slot = &a->vpcd;
        else if (strcmp(argv[k], "--trace") == 0)
            slot = &a->trace;
        else if (strcmp(argv[k], "--oce-ca") == 0)
            slot = &a->oce_ca;
        else if (argv[k][0] != '-' && a->state == NULL) {
            a->state = argv[k]; /* `scpkit card init DIR` */
            continue;
        }
        if (slot == NULL || k + 1 >= argc) {
            fprintf(stderr, "scpkit card: unexpected argument \"%s\"\n%s", argv[k], card_help);
            return SCP_EXIT_USAGE;
        }
        *slot = argv[++k];
    }
    if (a->state == NULL) {
        fprintf(stderr, "scpkit card: --state DIR is required\n%s", card_help);
        return SCP_EXIT_USAGE;
    }
    return SCP_EXIT_OK;
}

static int parse_num(const char *what, const char *s, int base, int max, int *out)
{
    char *end = NULL;
    long v;
    errno = 0;
    v = strtol(s, &end, base);
    if (errno != 0 || end == s || *end != 0 || v < 0 || v > max) {
        fprintf(stderr, "scpkit card: bad %s \"%s\"\n", what, s);
        return SCP_EXIT_USAGE;
    }
    *out = (int)v;
    return SCP_EXIT_OK;
}

static int card_init(const card_args *a)
{
    scp_card_init_opts o = { .profile = a->profile, .scp_i = -1, .kvn = -1, .oce_ca = a->oce_ca };
    uint8_t key[32];
    size_t key_len = 0;
    char path[4200];
    struct stat sb;
    int rc = SCP_EXIT_OK;

    if (a->scp_i && (rc = parse_num("--scp-i", a->scp_i, 16, 0xFF, &o.scp_i)) != 0)
        return rc;
    if (a->kvn && scp_cli_kvn_parse(a->kvn, SCP_KVN_EXISTING, &o.kvn) != 0) {
        fprintf(stderr, "scpkit card init: --kvn %s: %s\n", a->kvn,
                scp_cli_kvn_rule(SCP_KVN_EXISTING));
        return SCP_EXIT_USAGE;
    }
    if (a->lifecycle) {
        if (strcmp(a->lifecycle, "op_ready") == 0)
            o.lifecycle = 0x01;
        else if (strcmp(a->lifecycle, "initialized") == 0)
            o.lifecycle = 0x07;
        else if (strcmp(a->lifecycle, "secured") == 0)
            o.lifecycle = 0x0F;
        else {
            fprintf(stderr, "scpkit card init: --lifecycle %s: want op_ready, initialized or "
                            "secured\n", a->lifecycle);
            return SCP_EXIT_USAGE;
        }
    }
    if (a->key) {
        if (scp_hex_decode(a->key, key, sizeof(key), &key_len) != SCP_OK ||
            (key_len != 16 && key_len != 24 && key_len != 32)) {
            fprintf(stderr, "scpkit card: --key must be 16, 24 or 32 bytes of hex\n");
            scp_wipe(key, sizeof(key));
            return SCP_EXIT_USAGE;
        }
        o.key = key;
        o.key_len = key_len;
    }
    snprintf(path, sizeof(path), "%s/card.state", a->state);
    if (stat(path, &sb) == 0) {
        fprintf(stderr, "scpkit card init: %s: a card already exists there (not touched)\n",
                a->state);
        scp_wipe(key, sizeof(key));
        return SCP_EXIT_LOCAL;
    }
    rc = scp_card_init(a->state, &o);
    scp_wipe(key, sizeof(key));
    if (rc == SCP_E_ARG) {
        fprintf(stderr, "scpkit card init: the card refused these options (profile "
                        "yubikey|gp23|scp02; --scp-i bits 01/10/20/40 only, 40 needs 20; "
                        "the yubikey profile takes AES-128 keys only)\n");
        return SCP_EXIT_USAGE;
    }
    if (rc != SCP_OK) {
        fprintf(stderr, "scpkit card init: %s: %s\n", a->state, scp_strerror(rc));
        return SCP_EXIT_LOCAL;
    }
    printf("card created in %s\n", a->state);
    return SCP_EXIT_OK;
}

static int open_card(const char *dir, scp_card **c, int ro)
{
    char err[512] = "";
    int rc = ro ? scp_card_open_readonly(dir, c, err, sizeof(err))
                : scp_card_open(dir, c, err, sizeof(err));
    if (rc != SCP_OK) {
        fprintf(stderr, "scpkit card: %s\n", err[0] ? err : scp_strerror(rc));
        return SCP_EXIT_LOCAL;
    }
    return SCP_EXIT_OK;
}

static int card_show(const card_args *a)
{
    scp_card *c = NULL;
    char text[2048];
    int rc = open_card(a->state, &c, 1); /* also while `card run` holds it */
    if (rc != SCP_EXIT_OK)
        return rc;
    rc = scp_card_describe(c, text, sizeof(text));
    scp_card_close(c);
    if (rc != SCP_OK) {
        fprintf(stderr, "scpkit card show: %s\n", scp_strerror(rc));
        return SCP_EXIT_LOCAL;
    }
    fputs(text, stdout);
    return SCP_EXIT_OK;
}

static int split_hostport(const char *s, char *host, size_t host_size, unsigned *port)
{
    const char *colon = strrchr(s, ':');
    int p = 0;
    size_t hl;
    if (colon == NULL || colon == s)
        return SCP_EXIT_USAGE;
    hl = (size_t)(colon - s);
    if (s[0] == '[' && hl >= 2 && s[hl - 1] == ']') { /* [::1]:35963 */
        s++;
        hl -= 2;
    }
    if (hl >= host_size || parse_num("--vpcd port", colon + 1, 10, 65535, &p) != 0 || p == 0)
        return SCP_EXIT_USAGE;
    memcpy(host, s, hl);
    host[hl] = 0;
    *port = (unsigned)p;
    return SCP_EXIT_OK;
}

static FILE *open_trace(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "a") : NULL;
    if (f == NULL && fd >= 0)
        close(fd);
    return f;
}

static int card_run(const card_args *a)
{
    struct sigaction sa;
    char host[256];
    unsigned port = 35963;
    scp_card *c = NULL;
    FILE *tf = NULL;
    int rc;

    snprintf(host, sizeof(host), "127.0.0.1");
    if (a->vpcd && split_hostport(a->vpcd, host, sizeof(host), &port) != 0) {
        fprintf(stderr, "scpkit card run: --vpcd wants HOST:PORT, got \"%s\"\n", a->vpcd);
        return SCP_EXIT_USAGE;
    }
    if ((rc = open_card(a->state, &c, 0)) != SCP_EXIT_OK)
        return rc;
    if (a->trace) {
        tf = open_trace(a->trace);
        if (tf == NULL) {
            fprintf(stderr, "scpkit card run: cannot open trace file %s: %s\n", a->trace,
                    strerror(errno));
            scp_card_close(c);
            return SCP_EXIT_LOCAL;
        }
        scp_card_set_trace(c, tf);
    }
    /* no SA_RESTART: the signal wakes the connector's poll */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    rc = scp_card_run_vpcd(c, host, port, &card_stop, stderr);
    scp_card_close(c);
    if (tf != NULL)
        fclose(tf);
    if (rc != SCP_OK) {
        fprintf(stderr, "scpkit card run: %s\n", scp_strerror(rc));
        return SCP_EXIT_CARD;
    }
    fprintf(stderr, "scpkit card: stopped; state saved in %s\n", a->state);
    return SCP_EXIT_OK;
}

int scp_cli_card(int argc, char **argv)
{
    card_args a;
    int rc;
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        fputs(card_help, argc < 2 ? stderr : stdout);
        return argc < 2 ? SCP_EXIT_USAGE : SCP_EXIT_OK;
    }
    if ((rc = parse_args(argc, argv, &a)) != SCP_EXIT_OK)
        return rc;
    if (strcmp(argv[1], "init") == 0)
        return card_init(&a);
    if (strcmp(argv[1], "run") == 0)
        return card_run(&a);
    if (strcmp(argv[1], "show") == 0)
        return card_show(&a);
    fprintf(stderr, "scpkit card: unknown subcommand \"%s\"\n%s", argv[1], card_help);
    return SCP_EXIT_USAGE;
}
