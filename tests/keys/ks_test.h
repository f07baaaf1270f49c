/* Test support for the keystore: a private SoftHSM2 keystore in a fresh
 * temporary directory (its own SOFTHSM2_CONF), removed at the end. */
#ifndef SCP_KS_TEST_H
#define SCP_KS_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "scpkit/keystore.h"
#include "test.h"

#define KS_SO_PIN "so-pin-4711"
#define KS_USER_PIN "user-pin-0815"

static char ks_tmp[256];
static char ks_dir[300];

static inline void ks_rm_tmp(void)
{
    char cmd[400];
    if (ks_tmp[0] == 0 || strncmp(ks_tmp, "/tmp/scpks.", 11) != 0)
        return;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", ks_tmp);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", ks_tmp);
}

/* Make a fresh keystore; returns it open. */
static inline scp_keystore *ks_fresh(void)
{
    scp_keystore *ks = NULL;
    snprintf(ks_tmp, sizeof(ks_tmp), "/tmp/scpks.XXXXXX");
    if (mkdtemp(ks_tmp) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
    atexit(ks_rm_tmp);
    snprintf(ks_dir, sizeof(ks_dir), "%s/ks", ks_tmp);
    setenv("SCPKIT_ACTOR", "ks-test", 1);
    scp_ks_config cfg = {ks_dir, NULL, NULL, NULL};
    FILE *devnull = fopen("/dev/null", "w");
    int rc = scp_keystore_init(&cfg, KS_SO_PIN, KS_USER_PIN, devnull);
    if (devnull != NULL)
        fclose(devnull);
    if (rc != 0) {
        fprintf(stderr, "keystore init failed: %s (%d)\n", scp_strerror(rc), rc);
        exit(1);
    }
    rc = scp_keystore_open(&cfg, KS_USER_PIN, &ks);
    if (rc != 0) {
        fprintf(stderr, "keystore open failed: %d\n", rc);
        exit(1);
    }
    return ks;
}

static inline scp_keystore *ks_reopen(void)
{
    scp_keystore *ks = NULL;
    scp_ks_config cfg = {ks_dir, NULL, NULL, NULL};
    int rc = scp_keystore_open(&cfg, KS_USER_PIN, &ks);
    if (rc != 0) {
        fprintf(stderr, "keystore reopen failed: %d\n", rc);
        exit(1);
    }
    return ks;
}

#ifdef SCPKIT_KEYS_INTERNAL_H
/* The successful derivations in the audit log (tests that include
 * keys/internal.h first: they read the keystore's database). */
static inline int ks_count_derives(scp_keystore *ks)
{
    sqlite3_stmt *st;
    int n = -1;
    if (sqlite3_prepare_v2(ks->db,
                           "SELECT COUNT(*) FROM audit WHERE op LIKE 'derive:%' AND result = 0",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return n;
}
#endif

#endif
