/* The fleet registry's backend seam (registry.c is written once over it;
 * registry_sqlite.c and registry_pg.c serve it). Not a public interface.
 *
 * SQL is written once with '?' placeholders and the common subset of
 * SQLite and PostgreSQL (CAST(? AS TEXT) where PostgreSQL cannot infer a
 * parameter's type); the few statements that differ are chosen by
 * r->be->kind. */
#ifndef SCPKIT_OTA_REGISTRY_INT_H
#define SCPKIT_OTA_REGISTRY_INT_H

#include <stdint.h>

#include "ota/ota.h"

enum { OTA_BE_SQLITE = 1, OTA_BE_PG };

/* One bound parameter: text (t, NULL for SQL NULL) or an integer. */
typedef struct ota_arg {
    int is_int;
    const char *t;
    int64_t i;
} ota_arg;

#define OTA_ARGS_MAX 12

/* A statement's rows: positioned on the first one when query() returns 1. */
typedef struct ota_res ota_res;

typedef struct ota_reg_be {
    int kind;
    const char *name;
    /* connect / open; create: may make the database (SQLite file) */
    int (*open)(ota_reg *r, const char *dir, const char *spec, int create);
    void (*close)(ota_reg *r);
    /* Run one statement. res NULL: returns the rows changed (>= 0) or an
     * error; with defer set, inside a transaction, the backend may queue
     * it (its result then only counts at commit: returns 0). res given:
     * returns 1 with *res on the first row, 0 when there is none (*res
     * still to free), < 0 on error. */
    int (*query)(ota_reg *r, const char *sql, int n, const ota_arg *a, ota_res **res, int defer);
    int (*next)(ota_res *res); /* 1: on the next row; 0: no more */
    const char *(*text)(ota_res *res, int col); /* NULL for SQL NULL */
    int64_t (*integer)(ota_res *res, int col);
    void (*free_res)(ota_res *res);
    /* Several statements, no parameters (migrations). */
    int (*script)(ota_reg *r, const char *sql);
    int (*begin)(ota_reg *r);
    int (*commit)(ota_reg *r, int lazy); /* lazy: see ota_reg_commit_lazy */
    int (*rollback)(ota_reg *r);
} ota_reg_be;

struct ota_reg {
    const ota_reg_be *be;
    void *h;             /* the backend's connection */
    int in_txn;          /* inside ota_reg_begin .. commit/rollback */
    int txn_failed;      /* a queued statement failed: commit must fail */
    char holder[96];     /* this process, as a lease holder */
    char where[300];     /* what it is connected to, redacted */
    char err[256];       /* the last error, no secrets */
    ota_reg_stats st;
    /* Inside a transaction that renewed a device's lease (whose row no
     * one else can then change until it ends), the device as last read
     * or written: a second read costs no statement. */
    char held[OTA_ID_MAX + 1];
    int dev_cached;
    ota_device dev;
};

extern const ota_reg_be ota_be_sqlite;
extern const ota_reg_be ota_be_pg; /* NULL-like stub when built without libpq */
/* The SQLite connection of a SQLite registry (NULL otherwise): for tests
 * that check the connection's settings. */
struct sqlite3 *ota_reg_sqlite_db(ota_reg *r);
void ota_reg_seterr(ota_reg *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
