/* scpkit keystore CLI internals (issue 6), shared by cmd_keystore*.c. */
#ifndef SCPKIT_KEYSTORE_CLI_H
#define SCPKIT_KEYSTORE_CLI_H

#include "cli.h"
#include "scpkit/keystore.h"

#define KS_PIN_MAX 128
#define KS_SHARES_MAX 16

/* Exit code and message for a keystore scp_rc. */
int scp_ks_cli_fail(scp_cli *c, int rc, const char *what);
/* "label:version type KCV state (origin)", or into the JSON document. */
void scp_ks_cli_print_key(scp_cli *c, const scp_ks_key_info *k);

/* cmd_keystore_ceremony.c */
int scp_ks_cli_split(scp_cli *c, scp_keystore *ks);
int scp_ks_cli_combine(scp_cli *c, scp_keystore *ks);
int scp_ks_cli_activate(scp_cli *c, scp_keystore *ks);
int scp_ks_cli_custodian_add(scp_cli *c, scp_keystore *ks);
/* cmd_keystore_ec.c: EC key pairs and the lab CA */
int scp_ks_cli_import_ec(scp_cli *c, scp_keystore *ks);
int scp_ks_cli_public(scp_cli *c, scp_keystore *ks);
int scp_ks_cli_ca(scp_cli *c, scp_keystore *ks);
/* cmd_keystore_card.c */
int scp_cli_keystore_rotate(scp_cli *c, const char *dir);

#endif
