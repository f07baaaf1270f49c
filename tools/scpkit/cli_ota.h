/* scpkit CLI: the OTA commands (cmd_ota.c, cmd_ota_campaign.c, cmd_agent.c). */
#ifndef SCPKIT_CLI_OTA_H
#define SCPKIT_CLI_OTA_H

#include "cli.h"
#include "ota/ota.h"

const char *scp_ota_dir(scp_cli *c);
int scp_ota_open_reg(scp_cli *c, const char *dir, ota_reg **r);
int scp_ota_keyref(scp_cli *c, const char *master, const char *kdf, int kvn, ota_keyref *k);
int scp_ota_keystore_dir(const char *dir, char *out, size_t size);
int scp_ota_campaign(scp_cli *c, const char *dir);

int scp_cli_ota(int argc, char **argv);
int scp_cli_agent(int argc, char **argv);

#endif
