/* scpkit test support: checks that report file:line and keep going, and a
 * reader for the known-answer data files in tests/vectors/. */
#ifndef SCP_TEST_H
#define SCP_TEST_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "scpkit/scp03.h"

extern int test_failures;
extern int test_checks;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        test_checks++;                                                                             \
        if (!(cond)) {                                                                             \
            test_failures++;                                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);              \
        }                                                                                          \
    } while (0)

#define CHECK_RC(expr, want)                                                                       \
    do {                                                                                           \
        int got_ = (expr);                                                                         \
        test_checks++;                                                                             \
        if (got_ != (want)) {                                                                      \
            test_failures++;                                                                       \
            fprintf(stderr, "%s:%d: %s returned %d, want %d\n", __FILE__, __LINE__, #expr, got_,   \
                    (int)(want));                                                                  \
        }                                                                                          \
    } while (0)

#define CHECK_OK(expr) CHECK_RC(expr, 0)

#define CHECK_MEM(a, alen, b, blen)                                                                \
    do {                                                                                           \
        test_checks++;                                                                             \
        if ((size_t)(alen) != (size_t)(blen) || memcmp((a), (b), (alen)) != 0) {                   \
            test_failures++;                                                                       \
            fprintf(stderr, "%s:%d: bytes differ: %s\n", __FILE__, __LINE__, #a);                  \
            test_dump("  got ", (a), (alen));                                                      \
            test_dump("  want", (b), (blen));                                                      \
        }                                                                                          \
    } while (0)

void test_dump(const char *label, const uint8_t *p, size_t len);
/* Summary line and exit status. */
int test_done(const char *name);

/* Deterministic PRNG for property tests (seed printed for reproduction). */
void test_seed(uint64_t seed);
uint64_t test_rand(void);
void test_rand_bytes(uint8_t *p, size_t n);
size_t test_rand_below(size_t n);

/* ---- known-answer data files ---- */
#define VEC_MAX_FIELDS 256
typedef struct vec_field {
    char name[48];
    char *text;     /* value as written */
    uint8_t *bytes; /* value as hex, when it decodes */
    size_t len;
} vec_field;
typedef struct vec_record {
    char type[32];
    int line;
    int read; /* a test checked this record (vec_read) */
    size_t n;
    vec_field f[VEC_MAX_FIELDS];
} vec_record;
typedef struct vec_file {
    size_t n;
    vec_record *r;
} vec_file;

int vec_load(const char *path, vec_file *out);
void vec_free(vec_file *vf);
/* k-th field called name (0 = first); NULL when missing. */
const vec_field *vec_get(const vec_record *r, const char *name, int k);
/* Path of a vector file: $SCP_VECTORS_DIR or the source tree's. */
const char *vec_path(const char *file);
/* That directory. */
const char *vec_dir(void);
/* A test marks each record it has checked; vec_unread then reports every
 * record of the file left unchecked (file:line and record type) as a
 * failed check and returns how many there were. */
void vec_read(const vec_record *r);
size_t vec_unread(const vec_file *vf, const char *file);

/* Host and card engines against each other in process (tests/common/pair.c).
 * test_pair_iu: host_begin (hk; host_chal may be NULL; S8/S16 from
 * prm->i), INITIALIZE UPDATE checked as 80 50 KVN 00, the card's answer
 * (ck, prm), the host's check of it. test_pair_open: then EXTERNAL
 * AUTHENTICATE at level on both sides. SCP_OK, or the first failure. */
int test_pair_iu(scp03_session *h, scp03_session *c, const scp03_keys *hk,
                 const scp03_keys *ck, const scp03_card_params *prm, const uint8_t *host_chal);
int test_pair_open(scp03_session *h, scp03_session *c, const scp03_keys *hk,
                   const scp03_keys *ck, const scp03_card_params *prm, const uint8_t *host_chal,
                   uint8_t level);

/* test_pair_open with options: ea_flags for
 * scp03_host_external_authenticate_ex (SCP03_EA_EXTENDED), and a driver
 * that each handshake call writing an APDU goes through (NULL: called
 * once with the whole buffer). The driver gets the step, the session the
 * call changes, and call(call_ctx, step, out, size, &len) to make it as
 * often as it likes; what it returns is the step's result, and *out_len
 * must then hold what the last call wrote (tests/unit/test_scp03_retry
 * retries every too-small size). */
enum { TEST_STEP_HOST_IU, TEST_STEP_CARD_IU, TEST_STEP_HOST_EA };
typedef int (*test_step_call)(void *call_ctx, int step, uint8_t *out, size_t out_size,
                              size_t *out_len);
typedef struct test_pair_opts {
    unsigned ea_flags;
    int (*drive)(void *drive_ctx, int step, scp03_session *s, test_step_call call,
                 void *call_ctx, uint8_t *out, size_t out_size, size_t *out_len);
    void *drive_ctx;
} test_pair_opts;
int test_pair_open_ex(scp03_session *h, scp03_session *c, const scp03_keys *hk,
                      const scp03_keys *ck, const scp03_card_params *prm,
                      const uint8_t *host_chal, uint8_t level, const test_pair_opts *o);

#endif
