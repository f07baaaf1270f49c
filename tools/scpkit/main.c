/* scpkit: inspect GlobalPlatform cards, open SCP03 channels, manage key
 * sets and send APDUs, on PC/SC readers and scpkit's virtual card. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* OTA (issue 14): tools/scpkit/cmd_ota.c and cmd_agent.c, linked in when
 * src/ota is built (libevent, libcurl). */
int scp_cli_ota(int argc, char **argv) __attribute__((weak));
int scp_cli_agent(int argc, char **argv) __attribute__((weak));
int scp_cli_fleet(int argc, char **argv) __attribute__((weak));

typedef struct scp_cli_cmd {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
    int own_help; /* run(2, {name, "--help"}) prints the command's usage */
    int no_common; /* takes none of the common options (its own parser) */
} scp_cli_cmd;

/* --help or -h anywhere after the command ("scpkit keys put --help"). */
static int wants_help(int argc, char **argv)
{
    for (int k = 2; k < argc; k++)
        if (strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0)
            return 1;
    return 0;
}

static void usage(FILE *f, const scp_cli_cmd *cmds, size_t n)
{
    fprintf(f, "usage: scpkit [common options] <command> [options]\n\nCommands:\n");
    for (size_t i = 0; i < n; i++)
        fprintf(f, "  %-10s %s%s\n", cmds[i].name, cmds[i].summary,
                cmds[i].run ? "" : " (not built)");
    fprintf(f, "\n%s", scp_cli_common_help);
}

/* Common options may come before the command, as git and gp users type
 * them ("scpkit -r 0 info", "scpkit --card DIR --json keys list"): they
 * are moved after the command name, where every command reads them.
 * Returns how many arguments moved, or -1 after saying what is wrong. */
static int hoist_common_options(int argc, char **argv)
{
    int k = 1, w;
    char *cmd;
    while (k < argc && argv[k][0] == '-' && strcmp(argv[k], "--help") != 0 &&
           strcmp(argv[k], "-h") != 0 && strcmp(argv[k], "--version") != 0) {
        if ((w = scp_cli_common_option(argv[k])) == 0) {
            fprintf(stderr, "scpkit: %s: not an option scpkit knows before the command "
                            "(see scpkit --help)\n", argv[k]);
            return -1;
        }
        if (k + w > argc) {
            fprintf(stderr, "scpkit: %s: needs a value (see scpkit --help)\n", argv[k]);
            return -1;
        }
        k += w;
    }
    if (k == 1)
        return 0;
    if (k >= argc) {
        fprintf(stderr, "scpkit: options but no command (see scpkit --help)\n");
        return -1;
    }
    cmd = argv[k]; /* argv[1..k-1] are the options: the command goes first */
    memmove(argv + 2, argv + 1, (size_t)(k - 1) * sizeof(argv[0]));
    argv[1] = cmd;
    return k - 1;
}

int main(int argc, char **argv)
{
    /* card, keystore and audit are linked in when their files exist */
    const scp_cli_cmd cmds[] = {
        { "readers", scp_cli_readers, "list PC/SC readers and whether a card is in" },
        { "info", scp_cli_info, "card recognition data, CPLC, IIN/CIN, keys (no authentication)" },
        { "keys", scp_cli_keys,
          "key sets: list | put --new-kvn N (--new-key HEX | --new-enc HEX --new-mac HEX\n"
          "             --new-dek HEX | --generate [--key-len 16|24|32] --out FILE) [--replace]\n"
          "             | delete --kvn N [--auth-kvn N] | rotate --new-kvn N --generate\n"
          "             [--key-len N] --out FILE" },
        { "apdu", scp_cli_apdu,
          "APDUs through the secure channel: apdu [--app AID] [--plain] HEX..." },
        { "status", scp_cli_status, "GET STATUS: security domains, applications, load files" },
        { "lifecycle", scp_cli_lifecycle,
          "card life cycle: lifecycle initialized|secured|card_locked|terminated --yes" },
        { "diversify", scp_cli_diversify,
          "derived keys' KCVs: --scheme S --master HEX --kdd HEX [--show-keys]" },
        { "card", scp_cli_card, "the virtual card: card init DIR | card run --state DIR", 1, 1 },
        { "keystore", scp_cli_keystore, "the HSM keystore", 1 },
        { "audit", scp_cli_audit, "the keystore's audit log", 1 },
        { "ota", scp_cli_ota, "OTA admin server: init | device | serve | campaign", 1 },
        { "agent", scp_cli_agent, "OTA device agent: relay a card to an OTA server over HTTPS",
          1 },
        { "fleet", scp_cli_fleet, "virtual fleets: provision | simulate | verify", 1 },
    };
    const size_t n = sizeof(cmds) / sizeof(cmds[0]);
    const int hoisted = hoist_common_options(argc, argv);

    if (hoisted < 0)
        return SCP_EXIT_USAGE;

    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout, cmds, n);
        return argc < 2 ? SCP_EXIT_USAGE : SCP_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("scpkit 0.1.0\n");
        return SCP_EXIT_OK;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(argv[1], cmds[i].name) != 0)
            continue;
        if (!cmds[i].run) {
            fprintf(stderr, "scpkit: %s: not built into this scpkit\n", cmds[i].name);
            return SCP_EXIT_USAGE;
        }
        if (hoisted > 0 && cmds[i].no_common) {
            fprintf(stderr, "scpkit %s: takes none of the common options (%s is one); see "
                            "scpkit %s --help\n", cmds[i].name, argv[2], cmds[i].name);
            return SCP_EXIT_USAGE;
        }
        if (wants_help(argc, argv)) {
            char *help_argv[] = { argv[1], (char *)"--help", NULL };
            if (cmds[i].own_help)
                return cmds[i].run(2, help_argv);
            printf("scpkit %s: %s\n\n%s", cmds[i].name, cmds[i].summary, scp_cli_common_help);
            return SCP_EXIT_OK;
        }
        return cmds[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "scpkit: unknown command \"%s\" (see scpkit --help)\n", argv[1]);
    return SCP_EXIT_USAGE;
}
