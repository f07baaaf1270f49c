/* scpkit fleet (issue 15): many virtual devices at once.
 *   cmd_fleet.c      provision (N virtual cards, registered in bulk), verify
 *                    (each card's keys proved by an SCP03 channel)
 *   cmd_fleet_sim.c  simulate (every card's agent in one process, curl multi)
 * A fleet directory holds one virtual card per sub-directory and an index,
 * DIR/fleet.csv ("card,device_id" per line), written new (file, fsync,
 * rename) once every card and the registry rows exist. */
#ifndef SCPKIT_CLI_FLEET_H
#define SCPKIT_CLI_FLEET_H

#include "cli_ota.h"

#define FLEET_MAX_DEVICES 1000000
#define FLEET_SUBDIR_MAX 16

typedef struct fleet_card {
    char sub[FLEET_SUBDIR_MAX];   /* e.g. "c000042" */
    char id[OTA_ID_MAX + 1];     /* the device id (CIN) */
} fleet_card;

/* Read DIR/fleet.csv: *cards malloc'd. SCP_E_NOT_FOUND without an index,
 * SCP_E_FORMAT for a line that is not "sub,id" within bounds. */
int fleet_index_read(const char *dir, fleet_card **cards, size_t *n);
/* A progress bar on stderr when it is a terminal (no-op otherwise). */
void fleet_progress(const char *what, size_t done, size_t total, double t0);
double fleet_now(void);

int scp_cli_fleet(int argc, char **argv);
int scp_fleet_simulate(scp_cli *c);

#endif
