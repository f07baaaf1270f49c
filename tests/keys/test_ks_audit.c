/* The audit chain against a real token: a clean log verifies; each kind of
 * tamper (edit, drop, reorder, truncate, a MAC moved between records) is
 * caught and names the record; the table refuses plain UPDATE/DELETE.
 * Then: no key byte anywhere (DB, token files) in raw or hex form. */
#include <dirent.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include "ks_test.h"
#include "scpkit/crypto.h"

static char db_path[400];

static int slurp(const char *path, uint8_t **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *buf = malloc((size_t)n + 1);
    *len = fread(*buf, 1, (size_t)n, f);
    fclose(f);
    return 0;
}

static void spit(const char *path, const uint8_t *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL && fwrite(buf, 1, len, f) == len);
    if (f != NULL)
        fclose(f);
}

static int sql(const char *s)
{
    sqlite3 *db;
    if (sqlite3_open(db_path, &db) != SQLITE_OK)
        return -1;
    int r = sqlite3_exec(db, s, NULL, NULL, NULL);
    sqlite3_close(db);
    return r == SQLITE_OK ? 0 : -1;
}

/* Tamper a copy of the DB, verify, restore. */
static void tamper(const char *what, const char *stmt, uint64_t want_bad, const char *word)
{
    uint8_t *saved = NULL;
    size_t len = 0;
    int got = slurp(db_path, &saved, &len);
    CHECK(got == 0);
    if (got != 0)
        return;
    CHECK(sql("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;") == 0);
    CHECK(sql(stmt) == 0);
    scp_keystore *ks = ks_reopen();
    uint64_t n = 0, bad = 0;
    char why[200] = "";
    CHECK_RC(scp_keystore_audit_verify(ks, &n, &bad, why, sizeof(why)), SCP_E_CORRUPT);
    if (bad != want_bad || strstr(why, word) == NULL) {
        fprintf(stderr, "%s: bad record %llu (want %llu): %s\n", what, (unsigned long long)bad,
                (unsigned long long)want_bad, why);
        CHECK(0);
    }
    scp_keystore_close(ks);
    spit(db_path, saved, len);
    free(saved);
}

static int contains(const uint8_t *hay, size_t n, const void *needle, size_t m)
{
    for (size_t i = 0; m > 0 && i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0)
            return 1;
    return 0;
}

/* The secret as raw bytes, upper hex and lower hex. */
static int file_has_secret(const char *path, const uint8_t *k, size_t len)
{
    uint8_t *buf;
    size_t n;
    char up[65], lo[65];
    if (slurp(path, &buf, &n) != 0)
        return 0;
    for (size_t i = 0; i < len; i++) {
        snprintf(up + 2 * i, 3, "%02X", k[i]);
        snprintf(lo + 2 * i, 3, "%02x", k[i]);
    }
    int hit = contains(buf, n, k, len) || contains(buf, n, up, 2 * len) ||
              contains(buf, n, lo, 2 * len);
    free(buf);
    return hit;
}

static int tree_has_secret(const char *dir, const uint8_t *k, size_t len, int *files)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int hit = 0;
    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        char p[800];
        struct stat st;
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        if (stat(p, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            hit |= tree_has_secret(p, k, len, files);
        } else {
            (*files)++;
            if (file_has_secret(p, k, len)) {
                fprintf(stderr, "secret found in %s\n", p);
                hit = 1;
            }
        }
    }
    closedir(d);
    return hit;
}

int main(void)
{
    uint8_t master[16], kdd[10];
    scp03_keys card = {0};
    test_seed(0x61756474);
    test_rand_bytes(master, sizeof(master));
    test_rand_bytes(kdd, sizeof(kdd));
    scp_keystore *ks = ks_fresh();
    scp_ks_key_info k;
    CHECK_OK(scp_keystore_custodian_add(ks, "alice", "alice-pin-1"));
    CHECK_OK(scp_keystore_custodian_add(ks, "bob", "bob-pin-22"));
    CHECK_OK(scp_keystore_import(ks, "audited", 0, SCP_KS_AES128, master, 16, "import", &k));
    CHECK_OK(scp_keystore_activate_custodians(ks, "audited", 1, "alice", "alice-pin-1", "bob",
                                              "bob-pin-22", "live"));
    for (int i = 0; i < 4; i++) {
        kdd[0] = (uint8_t)i;
        CHECK_OK(scp_keystore_derive(ks, "audited", 1, SCP_DIV_SP800_108, kdd, 10, 1, &card));
    }
    CHECK_OK(scp_keystore_set_state(ks, "audited", 1, SCP_KS_SUSPENDED, "drill"));
    uint64_t n = 0, bad = 0;
    char why[200];
    CHECK_OK(scp_keystore_audit_verify(ks, &n, &bad, why, sizeof(why)));
    CHECK(n >= 10);
    scp_keystore_close(ks);
    snprintf(db_path, sizeof(db_path), "%s/keystore.db", ks_dir);

    /* Append-only as far as SQL goes. */
    CHECK(sql("UPDATE audit SET op = 'x' WHERE seq = 2") != 0);
    CHECK(sql("DELETE FROM audit WHERE seq = 2") != 0);

    tamper("edit", "UPDATE audit SET card = 'DEADBEEF' WHERE seq = 5", 5, "edited");
    tamper("edit-result", "UPDATE audit SET result = result - 1 WHERE seq = 3", 3, "edited");
    tamper("drop", "DELETE FROM audit WHERE seq = 4", 4, "missing");
    tamper("reorder",
           "UPDATE audit SET seq = -1 WHERE seq = 6; UPDATE audit SET seq = 6 WHERE seq = 7;"
           " UPDATE audit SET seq = 7 WHERE seq = -1",
           6, "does not follow");
    char stmt[200];
    snprintf(stmt, sizeof(stmt), "DELETE FROM audit WHERE seq > %llu", (unsigned long long)n - 2);
    tamper("truncate", stmt, n - 1, "truncated");
    tamper("mac", "UPDATE audit SET mac = (SELECT mac FROM audit WHERE seq = 3) WHERE seq = 2", 2,
           "forged");

    /* After the restores the log verifies again (the tamper tests were real). */
    ks = ks_reopen();
    CHECK_OK(scp_keystore_audit_verify(ks, &n, &bad, why, sizeof(why)));
    scp_keystore_close(ks);

    /* Nothing secret anywhere in the keystore directory. */
    int files = 0;
    CHECK(!tree_has_secret(ks_dir, master, 16, &files));
    CHECK(!tree_has_secret(ks_dir, card.enc, 16, &files));
    CHECK(!tree_has_secret(ks_dir, card.mac, 16, &files));
    CHECK(!tree_has_secret(ks_dir, card.dek, 16, &files));
    CHECK(files >= 8);
    /* The grep can fail: a file with the key's hex is found. */
    char probe[400];
    snprintf(probe, sizeof(probe), "%s/probe", ks_tmp);
    char hexk[33];
    for (int i = 0; i < 16; i++)
        snprintf(hexk + 2 * i, 3, "%02x", master[i]);
    spit(probe, (const uint8_t *)hexk, 32);
    CHECK(file_has_secret(probe, master, 16));
    scp_wipe(master, sizeof(master));
    scp_wipe(&card, sizeof(card));
    return test_done("test_ks_audit");
}
