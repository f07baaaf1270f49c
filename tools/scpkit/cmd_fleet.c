/* scpkit fleet (issue 15): a fleet of virtual devices for the OTA server.
 *   provision --dir SRV --cards DIR --devices N --master L:V --kdf S --kvn K [--tag T]
 *             [--jobs J]
 *       N virtual cards under DIR (DIR/c0000000 ...), each with its own
 *       state, CIN and KDD, moved from its factory keys onto keys
 *       diversified in the keystore (the one SRV/ota.json names) from
 *       master L:V, proved by a new session, recorded in the keystore's
 *       card table; then all registered in SRV's registry in one
 *       transaction, and DIR/fleet.csv written (file, fsync, rename).
 *       J processes (default 8) make the cards side by side.
 *   verify --dir SRV --cards DIR [--master L:V --kvn K] [--campaign NAME] [--jobs J] [--json]
 *       For every card: the keys the registry says it uses open an SCP03
 *       channel on the card itself (derived in the keystore, not taken
 *       from the registry's word), the card holds no key set but that one
 *       (GET DATA E0), the registry has no rotation in flight, with
 *       --master/--kvn that set is the expected one, and with --campaign
 *       the device's job is done. Exit 0 only when every card passes.
 *   simulate ... (cmd_fleet_sim.c)
 * The keystore user PIN comes from SCPKIT_USER_PIN (or a prompt). */
#ifdef SCP_HAVE_OTA
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli_fleet.h"
#include "scpkit/card.h"
#include "scpkit/crypto.h"
#include "scpkit/tlv.h"

double fleet_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void fleet_progress(const char *what, size_t done, size_t total, double t0)
{
    static int tty = -1;
    char bar[41];
    size_t fill;
    if (tty < 0)
        tty = isatty(2);
    if (!tty || total == 0)
        return;
    fill = done * 40 / total;
    memset(bar, '#', fill);
    memset(bar + fill, '.', 40 - fill);
    bar[40] = 0;
    fprintf(stderr, "\r%s [%s] %zu/%zu %.0f s", what, bar, done, total, fleet_now() - t0);
    if (done == total)
        fputc('\n', stderr);
}

int fleet_index_read(const char *dir, fleet_card **cards, size_t *n)
{
    char path[PATH_MAX], line[256];
    size_t cap = 1024;
    FILE *f;
    *cards = NULL;
    *n = 0;
    snprintf(path, sizeof(path), "%s/fleet.csv", dir);
    if (!(f = fopen(path, "r")))
        return SCP_E_NOT_FOUND;
    fleet_card *v = malloc(cap * sizeof(*v));
    int rc = v ? SCP_OK : SCP_E_NOMEM;
    while (rc == SCP_OK && fgets(line, sizeof(line), f)) {
        char *comma = strchr(line, ',');
        size_t sl, il;
        line[strcspn(line, "\r\n")] = 0;
        if (!comma) {
            rc = SCP_E_FORMAT;
            break;
        }
        sl = (size_t)(comma - line);
        il = strlen(comma + 1);
        /* the sub-directory name must stay inside DIR */
        if (sl == 0 || sl >= FLEET_SUBDIR_MAX || il == 0 || il > OTA_ID_MAX ||
            strspn(line, "abcdefghijklmnopqrstuvwxyz0123456789") != sl ||
            *n >= FLEET_MAX_DEVICES) {
            rc = SCP_E_FORMAT;
            break;
        }
        if (*n == cap) {
            fleet_card *w = realloc(v, 2 * cap * sizeof(*v));
            if (!w) {
                rc = SCP_E_NOMEM;
                break;
            }
            v = w;
            cap *= 2;
        }
        memcpy(v[*n].sub, line, sl);
        v[*n].sub[sl] = 0;
        memcpy(v[*n].id, comma + 1, il + 1);
        (*n)++;
    }
    fclose(f);
    if (rc != SCP_OK) {
        free(v);
        *n = 0;
        return rc;
    }
    *cards = v;
    return SCP_OK;
}

/* DIR/fleet.csv, written new. */
static int index_write(const char *dir, const fleet_card *v, size_t n)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    FILE *f;
    int ok;
    snprintf(path, sizeof(path), "%s/fleet.csv", dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (!(f = fopen(tmp, "w")))
        return SCP_E_IO;
    ok = 1;
    for (size_t k = 0; k < n && ok; k++)
        ok = fprintf(f, "%s,%s\n", v[k].sub, v[k].id) > 0;
    ok = fflush(f) == 0 && ok && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    ok = ok && rename(tmp, path) == 0;
    return ok ? SCP_OK : SCP_E_IO;
}

/* The keystore directory (--keystore, else SRV/ota.json's) and the user
 * PIN (wipe it after use). */
static int keystore_where(scp_cli *c, const char *srv, char *dir, size_t dir_size, char *pin,
                          size_t pin_size)
{
    if (c->o.keystore)
        snprintf(dir, dir_size, "%s", c->o.keystore);
    else if (scp_ota_keystore_dir(srv, dir, dir_size) != SCP_OK)
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "fleet: no %s/ota.json (scpkit ota init)", srv);
    if (scp_keystore_pin("SCPKIT_USER_PIN", "keystore user PIN: ", pin, pin_size) != SCP_OK)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "fleet: no keystore user PIN");
    return SCP_EXIT_OK;
}

/* Several processes opening one keystore at the same moment: an open
 * that loses a race is tried again (bounded: 20 tries, 2.5 s at most). */
static int ks_open(const char *dir, const char *pin, scp_keystore **ks)
{
    scp_ks_config kc = { 0 };
    int rc = SCP_E_IO;
    kc.dir = dir;
    for (int k = 0; k < 20; k++) {
        rc = scp_keystore_open(&kc, pin, ks);
        if (rc != SCP_E_IO)
            break;
        usleep(25000 + 5000 * (useconds_t)k);
    }
    return rc;
}

/* The master of a keyref, split for the keystore. */
typedef struct master {
    char label[SCP_KS_LABEL_MAX + 1];
    uint32_t version;
    scp_div_scheme scheme;
    int kvn;
} master;

static int master_of(const ota_keyref *k, master *m)
{
    if (scp_ks_parse_ref(k->master, m->label, &m->version) != SCP_OK ||
        scp_div_parse(k->kdf, &m->scheme) != SCP_OK)
        return SCP_E_ARG;
    m->kvn = k->kvn;
    return SCP_OK;
}

/* PUT KEY of nk (a new set, P1 00) through ch; the card's KCVs checked. */
static int put_key(scp_channel *ch, const scp03_keys *nk, char *why, size_t why_size)
{
    uint8_t cmd[5 + SCP_GP_PUTKEY_MAX + 1], resp[64], kcv[3];
    const uint8_t *key[3] = { nk->enc, nk->mac, nk->dek };
    size_t dl, rl;
    uint16_t sw;
    int rc = scp_gp_putkey_build(ch->dek, ch->dek_len, nk, cmd + 5, sizeof(cmd) - 6, &dl);
    if (rc == SCP_OK) {
        memcpy(cmd, "\x80\xD8\x00\x81", 4); /* GPC 11.8: PUT KEY, a new key set */
        cmd[4] = (uint8_t)dl;
        cmd[5 + dl] = 0x00;
        rc = scp_channel_send(ch, cmd, dl + 6, resp, sizeof(resp), &rl, &sw);
    }
    scp_wipe(cmd, sizeof(cmd));
    if (rc != SCP_OK) {
        snprintf(why, why_size, "PUT KEY: %s", scp_strerror(rc));
        return rc;
    }
    if (sw != 0x9000) {
        snprintf(why, why_size, "PUT KEY refused: SW %04X", sw);
        return SCP_E_SW;
    }
    /* GPC 11.8.3: KVN | KCV x 3 */
    if (rl < 10 || resp[0] != nk->kvn) {
        snprintf(why, why_size, "PUT KEY: no key check values in the answer");
        return SCP_E_FORMAT;
    }
    for (int i = 0; i < 3; i++)
        if (scp_kcv_aes(key[i], nk->key_len, kcv) != SCP_OK || !scp_ct_eq(kcv, resp + 1 + 3 * i, 3)) {
            snprintf(why, why_size, "PUT KEY: the card's key check value %d differs", i + 1);
            return SCP_E_KCV;
        }
    return SCP_OK;
}

/* One new card in dir, onto keys from m; its id into id. */
static int provision_one(scp_keystore *ks, const master *m, const char *dir, char *id,
                         size_t id_size, char *why, size_t why_size)
{
    scp_card_init_opts io = { .scp_i = -1, .kvn = -1 };
    scp03_keys fk = { 0 }, nk = { 0 };
    scp_channel_opts co = { .kvn = 0, .level = -1, .s16 = -1 };
    scp_channel ch;
    scp_transport t;
    scp_card *card = NULL;
    uint8_t kdd[SCP03_KDD_LEN];
    int rc;

    if ((rc = scp_card_init(dir, &io)) != SCP_OK) {
        snprintf(why, why_size, "card init: %s", scp_strerror(rc));
        return rc;
    }
    if ((rc = scp_card_open(dir, &card, why, why_size)) != SCP_OK)
        return rc;
    scp_card_transport(card, &t);
    if ((rc = ota_device_id(&t, id, id_size)) != SCP_OK) {
        snprintf(why, why_size, "reading the card's identity: %s", scp_strerror(rc));
        goto out;
    }
    for (int i = 0; i < 16; i++) /* the factory set, 40..4F, KVN FF */
        fk.enc[i] = fk.mac[i] = fk.dek[i] = (uint8_t)(0x40 + i);
    fk.key_len = 16;
    fk.kvn = 0xFF;
    if ((rc = scp_channel_open(&ch, &t, &fk, &co)) != SCP_OK) {
        snprintf(why, why_size, "factory keys: %s", scp_strerror(rc));
        goto out;
    }
    memcpy(kdd, ch.kdd, sizeof(kdd));
    rc = scp_keystore_derive(ks, m->label, m->version, m->scheme, kdd, sizeof(kdd), 1, &nk);
    nk.kvn = (uint8_t)m->kvn;
    if (rc != SCP_OK)
        snprintf(why, why_size, "keystore: %s", scp_strerror(rc));
    else
        rc = put_key(&ch, &nk, why, why_size);
    scp_channel_close(&ch);
    if (rc != SCP_OK)
        goto out;
    /* prove the new set with a new session before anyone relies on it */
    co.kvn = (uint8_t)m->kvn;
    if ((rc = scp_channel_open(&ch, &t, &nk, &co)) != SCP_OK) {
        snprintf(why, why_size, "new keys do not open a channel: %s", scp_strerror(rc));
        goto out;
    }
    scp_channel_close(&ch);
    if ((rc = scp_keystore_card_set(ks, kdd, sizeof(kdd), m->label, m->version, m->scheme,
                                    (uint8_t)m->kvn)) != SCP_OK)
        snprintf(why, why_size, "keystore card record: %s", scp_strerror(rc));
out:
    scp_wipe(&nk, sizeof(nk));
    scp_card_close(card);
    return rc;
}

/* Provisioning and verifying wait on fsyncs (a card writes its state new
 * at every change, the keystore its audit record), so `jobs` processes
 * work side by side, each with its own keystore session and registry
 * connection (opened after the fork; the keystore takes several
 * processes), item i in process i % jobs. Results go into memory the
 * caller mapped shared. 0 when every process ended well. */
typedef struct pool {
    size_t n;
    long jobs;
    const char *what; /* progress label */
    int (*setup)(void *arg, void **wctx);
    int (*one)(void *arg, void *wctx, size_t i); /* 0 ok */
    void (*teardown)(void *wctx);
    void *arg;
} pool;

static int pool_run(const pool *p)
{
    volatile unsigned long *done = mmap(NULL, sizeof(*done), PROT_READ | PROT_WRITE,
                                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    double t0 = fleet_now();
    long started = 0;
    int bad = 0;

    if (done == MAP_FAILED)
        return -1;
    *done = 0;
    fflush(NULL);
    for (long w = 0; w < p->jobs; w++) {
        pid_t pid = fork();
        if (pid < 0) {
            bad = 1;
            break;
        }
        if (pid == 0) {
            void *wctx = NULL;
            int rc = p->setup(p->arg, &wctx);
            for (size_t i = (size_t)w; i < p->n && rc == 0; i += (size_t)p->jobs) {
                rc = p->one(p->arg, wctx, i);
                __atomic_add_fetch(done, 1, __ATOMIC_RELAXED);
            }
            if (wctx)
                p->teardown(wctx);
            fflush(NULL);
            _exit(rc == 0 ? 0 : 2);
        }
        started++;
    }
    while (started > 0) {
        int st;
        pid_t q = waitpid(-1, &st, WNOHANG);
        if (q > 0) {
            started--;
            bad |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
        } else if (q < 0 && errno != EINTR) {
            break;
        } else {
            fleet_progress(p->what, __atomic_load_n(done, __ATOMIC_RELAXED), p->n, t0);
            usleep(100000);
        }
    }
    fleet_progress(p->what, p->n, p->n, t0);
    munmap((void *)done, sizeof(*done));
    return bad ? -1 : 0;
}

typedef struct prov {
    const char *cards, *ksdir, *pin;
    const master *m;
    fleet_card *v; /* shared */
} prov;

static int prov_setup(void *arg, void **wctx)
{
    prov *p = arg;
    scp_keystore *ks;
    int rc = ks_open(p->ksdir, p->pin, &ks);
    if (rc != SCP_OK) {
        fprintf(stderr, "scpkit: fleet: keystore %s: %s\n", p->ksdir, scp_strerror(rc));
        return rc;
    }
    *wctx = ks;
    return 0;
}

static void ks_teardown(void *wctx)
{
    scp_keystore_close(wctx);
}

static int prov_one(void *arg, void *wctx, size_t i)
{
    prov *p = arg;
    char path[PATH_MAX], why[256];
    snprintf(path, sizeof(path), "%s/%s", p->cards, p->v[i].sub);
    if (provision_one(wctx, p->m, path, p->v[i].id, sizeof(p->v[i].id), why, sizeof(why)) ==
        SCP_OK)
        return 0;
    p->v[i].id[0] = 0;
    fprintf(stderr, "scpkit: fleet provision: card %s: %s\n", path, why);
    return -1;
}

/* All n cards; *out (shared mapping of n entries: munmap it). */
static int run_workers(const char *cards, const master *m, const char *ksdir, const char *pin,
                       size_t n, long jobs, fleet_card **out, char *why, size_t why_size)
{
    size_t bytes = n * sizeof(fleet_card);
    fleet_card *v = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    prov pv = { cards, ksdir, pin, m, v };
    pool p = { n, jobs, "provision", prov_setup, prov_one, ks_teardown, &pv };
    int bad;

    *out = NULL;
    if (v == MAP_FAILED) {
        snprintf(why, why_size, "out of memory");
        return SCP_E_NOMEM;
    }
    for (size_t i = 0; i < n; i++)
        snprintf(v[i].sub, sizeof(v[i].sub), "c%07d", (int)(i % FLEET_MAX_DEVICES));
    bad = pool_run(&p) != 0;
    for (size_t i = 0; i < n && !bad; i++)
        bad = v[i].id[0] == 0;
    if (bad) {
        snprintf(why, why_size, "a card could not be made (see above); nothing registered");
        munmap(v, bytes);
        return SCP_E_IO;
    }
    *out = v;
    return SCP_OK;
}

static int provision(scp_cli *c, const char *srv)
{
    const char *cards = scp_cli_take(c, "--cards"), *ndev = scp_cli_take(c, "--devices");
    const char *tag = scp_cli_take(c, "--tag"), *jt = scp_cli_take(c, "--jobs");
    char path[PATH_MAX], why[PATH_MAX + 256], ksdir[PATH_MAX], pin[128];
    ota_keyref k;
    master m;
    ota_reg *reg = NULL;
    long jobs = 8;
    fleet_card *v = NULL;
    long n;
    char *end;
    why[0] = 0;
    double t0;
    struct stat st;
    int rc;

    if (!srv || !cards || !ndev)
        return scp_cli_fail(c, SCP_EXIT_USAGE,
                            "fleet provision --dir SRV --cards DIR --devices N --master L:V "
                            "--kdf S --kvn K [--tag T]");
    n = strtol(ndev, &end, 10);
    if (*end || n < 1 || n > FLEET_MAX_DEVICES)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "--devices: 1..%d", FLEET_MAX_DEVICES);
    if (jt && ((jobs = strtol(jt, &end, 10)) < 1 || jobs > 64 || *end))
        return scp_cli_fail(c, SCP_EXIT_USAGE, "--jobs: 1..64");
    if (tag && (strlen(tag) > 100 || strchr(tag, ',')))
        return scp_cli_fail(c, SCP_EXIT_USAGE, "--tag: up to 100 characters, no comma");
    if ((rc = scp_ota_keyref(c, c->o.master, c->o.kdf, c->o.kvn, &k)) != SCP_EXIT_OK ||
        (rc = scp_cli_no_more(c, 1)) != SCP_EXIT_OK)
        return rc;
    if (master_of(&k, &m) != SCP_OK)
        return scp_cli_fail(c, SCP_EXIT_USAGE, "bad master or kdf");
    if (mkdir(cards, 0700) != 0 && errno != EEXIST)
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "fleet provision: %s: %s", cards, strerror(errno));
    snprintf(path, sizeof(path), "%s/fleet.csv", cards);
    if (stat(path, &st) == 0)
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "fleet provision: %s already holds a fleet", cards);
    if ((rc = scp_ota_open_reg(c, srv, &reg)) != SCP_EXIT_OK)
        return rc;
    if ((rc = keystore_where(c, srv, ksdir, sizeof(ksdir), pin, sizeof(pin))) != SCP_EXIT_OK) {
        ota_reg_close(reg);
        return rc;
    }
    t0 = fleet_now();
    rc = run_workers(cards, &m, ksdir, pin, (size_t)n, jobs, &v, why, sizeof(why));
    scp_wipe(pin, sizeof(pin));
    if (rc != SCP_OK) {
        rc = scp_cli_fail(c, rc == SCP_E_NOMEM ? SCP_EXIT_LOCAL : SCP_EXIT_CARD,
                          "fleet provision: %s", why);
        goto out;
    }
    double t_cards = fleet_now() - t0;
    /* the registry: every device in one transaction */
    if (ota_reg_begin(reg) != SCP_OK) {
        rc = scp_cli_fail(c, SCP_EXIT_LOCAL, "registry busy: %s", ota_reg_errmsg(reg));
        goto out;
    }
    for (long i = 0; i < n; i++)
        if (ota_reg_device_add(reg, v[i].id, &k, tag ? tag : "fleet") != SCP_OK) {
            rc = scp_cli_fail(c, SCP_EXIT_LOCAL, "registry: device %s: %s", v[i].id,
                              ota_reg_errmsg(reg));
            ota_reg_rollback(reg);
            goto out;
        }
    if (ota_reg_commit(reg) != SCP_OK) {
        rc = scp_cli_fail(c, SCP_EXIT_LOCAL, "registry: commit failed: %s", ota_reg_errmsg(reg));
        goto out;
    }
    double t_reg = fleet_now() - t0 - t_cards;
    if (index_write(cards, v, (size_t)n) != SCP_OK) {
        rc = scp_cli_fail(c, SCP_EXIT_LOCAL, "cannot write %s/fleet.csv", cards);
        goto out;
    }
    double secs = fleet_now() - t0;
    json_object_object_add(c->doc, "devices", json_object_new_int((int)n));
    json_object_object_add(c->doc, "seconds", json_object_new_double(secs));
    json_object_object_add(c->doc, "cards_seconds", json_object_new_double(t_cards));
    json_object_object_add(c->doc, "registry_seconds", json_object_new_double(t_reg));
    json_object_object_add(c->doc, "per_second", json_object_new_double(n / secs));
    if (!c->o.json)
        printf("%ld devices provisioned under %s on %s %s KVN %02X and registered in %s: "
               "%.1f s (cards %.1f s, registry %.2f s), %.0f devices/s\n",
               n, cards, k.master, k.kdf, k.kvn, srv, secs, t_cards, t_reg, n / secs);
    rc = SCP_EXIT_OK;
out:
    if (v)
        munmap(v, (size_t)n * sizeof(*v));
    ota_reg_close(reg);
    return rc;
}

/* ---- verify ---- */

#define VERIFY_WHY 200

typedef struct jobs {
    fleet_card *cards;
    size_t n;
    char (*state)[12]; /* per card, "" when the campaign has no job for it */
} jobs;

static int by_id(const void *a, const void *b)
{
    return strcmp(((const fleet_card *)a)->id, ((const fleet_card *)b)->id);
}

static void on_job(void *arg, const char *dev, const char *state, int step, int attempts,
                   const char *reason)
{
    jobs *j = arg;
    fleet_card key, *hit;
    (void)step, (void)attempts, (void)reason;
    snprintf(key.id, sizeof(key.id), "%s", dev);
    hit = bsearch(&key, j->cards, j->n, sizeof(key), by_id);
    if (hit)
        snprintf(j->state[hit - j->cards], sizeof(j->state[0]), "%s", state);
}

/* The KVNs the card holds (GET DATA E0, bare; GPC 11.3.3.1). */
static int card_kvns(scp_transport *t, uint8_t *kvns, size_t max, size_t *n)
{
    static const uint8_t get_e0[] = { 0x00, 0xCA, 0x00, 0xE0, 0x00 };
    uint8_t r[512];
    size_t rl;
    scp_tlv tlv;
    scp_rd rd;
    *n = 0;
    int rc = scp_transmit(t, get_e0, sizeof(get_e0), r, sizeof(r), &rl);
    if (rc != SCP_OK)
        return rc;
    if (rl < 2 || r[rl - 2] != 0x90 || r[rl - 1] != 0x00)
        return SCP_E_SW;
    rl -= 2;
    scp_rd_init(&rd, r, rl);
    if (scp_tlv_find(r, rl, 0xE0, &tlv) == 1)
        scp_rd_init(&rd, tlv.val, tlv.len);
    while (scp_tlv_next(&rd, &tlv) == 1) {
        int seen = 0;
        /* SCP03 key sets only: B0/B1 entries are SCP11 EC keys (13/01) */
        if (tlv.tag != 0xC0 || tlv.len < 4 || tlv.val[2] == 0xB0 || tlv.val[2] == 0xB1)
            continue;
        for (size_t k = 0; k < *n; k++)
            seen |= kvns[k] == tlv.val[1];
        if (!seen && *n < max)
            kvns[(*n)++] = tlv.val[1];
    }
    return SCP_OK;
}

typedef struct dctx {
    scp_keystore *ks;
    const master *m;
    int rc;
} dctx;

/* scp_channel_opts.derive: the card's keys from its KDD, in the token. */
static int derive_cb(void *ctx, const uint8_t *kdd, size_t kdd_len, uint8_t kvn, scp03_keys *out)
{
    dctx *d = ctx;
    d->rc = scp_keystore_derive(d->ks, d->m->label, d->m->version, d->m->scheme, kdd, kdd_len, 0,
                                out);
    if (d->rc == SCP_OK)
        out->kvn = kvn;
    return d->rc;
}

/* One card: why it fails, or "" when it passes. */
static void verify_one(scp_keystore *ks, ota_reg *reg, const char *cards, const fleet_card *fc,
                       const ota_keyref *want, const char *job_state, const char *campaign,
                       char *why, size_t why_size)
{
    char path[PATH_MAX], id[OTA_ID_MAX + 1];
    scp_card *card = NULL;
    scp_transport t;
    ota_device d;
    master m;
    scp_channel_opts co = { .level = -1, .s16 = -1 };
    scp_channel ch;
    uint8_t kvns[16];
    size_t nk;
    int rc;

    why[0] = 0;
    snprintf(path, sizeof(path), "%s/%s", cards, fc->sub);
    if (scp_card_open(path, &card, why, why_size) != SCP_OK)
        return;
    scp_card_transport(card, &t);
    if (ota_device_id(&t, id, sizeof(id)) != SCP_OK || strcmp(id, fc->id) != 0) {
        snprintf(why, why_size, "the card's identity is not %s", fc->id);
        goto out;
    }
    if (ota_reg_device_get(reg, fc->id, &d) != SCP_OK) {
        snprintf(why, why_size, "not in the registry");
        goto out;
    }
    if (d.next.kvn || d.prev.kvn) {
        snprintf(why, why_size, "rotation in flight in the registry (next KVN %02X, old KVN %02X)",
                 d.next.kvn, d.prev.kvn);
        goto out;
    }
    if (want->kvn && (strcmp(d.cur.master, want->master) != 0 || d.cur.kvn != want->kvn)) {
        snprintf(why, why_size, "registry says %s KVN %02X, expected %s KVN %02X", d.cur.master,
                 d.cur.kvn, want->master, want->kvn);
        goto out;
    }
    if (campaign && strcmp(job_state, "done") != 0) {
        snprintf(why, why_size, "job of campaign %s is %s", campaign,
                 job_state[0] ? job_state : "missing");
        goto out;
    }
    if (card_kvns(&t, kvns, sizeof(kvns), &nk) != SCP_OK || nk == 0) {
        snprintf(why, why_size, "cannot read the card's key information");
        goto out;
    }
    for (size_t i = 0; i < nk; i++)
        if (kvns[i] != d.cur.kvn) {
            snprintf(why, why_size, "card holds KVN %02X, which the registry does not name",
                     kvns[i]);
            goto out;
        }
    if (master_of(&d.cur, &m) != SCP_OK) {
        snprintf(why, why_size, "registry key reference %s/%s", d.cur.master, d.cur.kdf);
        goto out;
    }
    /* the proof: a channel with the keys diversified, in the keystore,
     * from the KDD this card gives */
    dctx dc = { ks, &m, SCP_OK };
    co.kvn = (uint8_t)d.cur.kvn;
    co.derive = derive_cb;
    co.derive_ctx = &dc;
    if ((rc = scp_channel_open(&ch, &t, NULL, &co)) != SCP_OK) {
        if (dc.rc != SCP_OK)
            snprintf(why, why_size, "keystore: %s", scp_strerror(dc.rc));
        else
            snprintf(why, why_size, "%s KVN %02X does not open a channel: %s", d.cur.master,
                     d.cur.kvn, scp_strerror(rc));
        goto out;
    }
    scp_channel_close(&ch);
out:
    scp_card_close(card);
}

typedef struct ver {
    const char *srv, *cards, *ksdir, *pin, *campaign;
    const fleet_card *v;
    const jobs *j;
    const ota_keyref *want;
    char (*why)[VERIFY_WHY]; /* shared: per card, "" = proved */
} ver;

typedef struct ver_ctx {
    scp_keystore *ks;
    ota_reg *reg;
} ver_ctx;

static int ver_setup(void *arg, void **wctx)
{
    ver *p = arg;
    ver_ctx *x = calloc(1, sizeof(*x));
    int rc;
    if (!x)
        return SCP_E_NOMEM;
    *wctx = x;
    if ((rc = ks_open(p->ksdir, p->pin, &x->ks)) != SCP_OK) {
        fprintf(stderr, "scpkit: fleet: keystore %s: %s\n", p->ksdir, scp_strerror(rc));
        return rc;
    }
    if ((rc = ota_reg_open(p->srv, 0, &x->reg)) != SCP_OK)
        fprintf(stderr, "scpkit: fleet: registry in %s: %s\n", p->srv, scp_strerror(rc));
    return rc;
}

static void ver_teardown(void *wctx)
{
    ver_ctx *x = wctx;
    scp_keystore_close(x->ks);
    ota_reg_close(x->reg);
    free(x);
}

static int ver_one(void *arg, void *wctx, size_t i)
{
    ver *p = arg;
    ver_ctx *x = wctx;
    verify_one(x->ks, x->reg, p->cards, &p->v[i], p->want, p->j->state[i], p->campaign,
               p->why[i], VERIFY_WHY);
    return 0;
}

static int verify(scp_cli *c, const char *srv)
{
    const char *cards = scp_cli_take(c, "--cards"), *campaign = scp_cli_take(c, "--campaign");
    const char *jt = scp_cli_take(c, "--jobs");
    ota_keyref want = { 0 };
    ota_reg *reg = NULL;
    fleet_card *v = NULL;
    jobs j = { 0 };
    size_t n = 0, bad = 0, bytes = 0;
    json_object *fails = json_object_new_array();
    double t0 = fleet_now();
    char ksdir[PATH_MAX], pin[128], (*why)[VERIFY_WHY] = MAP_FAILED;
    long njobs = 8;
    char *end;
    int rc;

    json_object_object_add(c->doc, "failures", fails);
    if (!srv || !cards)
        return scp_cli_fail(c, SCP_EXIT_USAGE,
                            "fleet verify --dir SRV --cards DIR [--master L:V --kdf S --kvn K] "
                            "[--campaign NAME] [--jobs J]");
    if (jt && ((njobs = strtol(jt, &end, 10)) < 1 || njobs > 64 || *end))
        return scp_cli_fail(c, SCP_EXIT_USAGE, "--jobs: 1..64");
    if (c->o.master && (rc = scp_ota_keyref(c, c->o.master, c->o.kdf, c->o.kvn, &want)) !=
                           SCP_EXIT_OK)
        return rc;
    if ((rc = scp_cli_no_more(c, 1)) != SCP_EXIT_OK)
        return rc;
    if ((rc = fleet_index_read(cards, &v, &n)) != SCP_OK)
        return scp_cli_fail(c, SCP_EXIT_LOCAL, "fleet verify: %s/fleet.csv: %s", cards,
                            scp_strerror(rc));
    if ((rc = scp_ota_open_reg(c, srv, &reg)) != SCP_EXIT_OK)
        goto out;
    qsort(v, n, sizeof(*v), by_id);
    j.cards = v;
    j.n = n;
    j.state = calloc(n ? n : 1, sizeof(*j.state));
    bytes = (n ? n : 1) * VERIFY_WHY;
    why = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (!j.state || why == MAP_FAILED) {
        rc = scp_cli_fail(c, SCP_EXIT_LOCAL, "out of memory");
        goto out;
    }
    if (campaign && ota_reg_campaign_jobs(reg, campaign, on_job, &j) != SCP_OK) {
        rc = scp_cli_fail(c, SCP_EXIT_LOCAL, "fleet verify: campaign %s: %s", campaign,
                          ota_reg_errmsg(reg));
        goto out;
    }
    ota_reg_close(reg); /* no connection crosses the fork */
    reg = NULL;
    if ((rc = keystore_where(c, srv, ksdir, sizeof(ksdir), pin, sizeof(pin))) != SCP_EXIT_OK)
        goto out;
    for (size_t i = 0; i < n; i++)
        snprintf(why[i], VERIFY_WHY, "not checked (a worker failed)");
    ver pv = { srv, cards, ksdir, pin, campaign, v, &j, &want, why };
    pool p = { n, njobs, "verify", ver_setup, ver_one, ver_teardown, &pv };
    int pool_rc = pool_run(&p);
    scp_wipe(pin, sizeof(pin));
    for (size_t i = 0; i < n; i++) {
        if (why[i][0]) {
            json_object *f = json_object_new_object();
            json_object_object_add(f, "device", json_object_new_string(v[i].id));
            json_object_object_add(f, "card", json_object_new_string(v[i].sub));
            json_object_object_add(f, "reason", json_object_new_string(why[i]));
            json_object_array_add(fails, f);
            if (bad++ < 20 && !c->o.json)
                printf("FAIL %s (%s): %s\n", v[i].id, v[i].sub, why[i]);
        }
    }
    json_object_object_add(c->doc, "devices", json_object_new_int((int)n));
    json_object_object_add(c->doc, "proved", json_object_new_int((int)(n - bad)));
    json_object_object_add(c->doc, "failed", json_object_new_int((int)bad));
    json_object_object_add(c->doc, "seconds", json_object_new_double(fleet_now() - t0));
    if (!c->o.json)
        printf("%zu devices: %zu proved by an SCP03 channel with the registry's keys, %zu failed "
               "(%.1f s)\n", n, n - bad, bad, fleet_now() - t0);
    rc = bad || pool_rc ? scp_cli_fail(c, SCP_EXIT_AUTH, "fleet verify: %zu of %zu devices failed",
                                       bad, n)
                        : SCP_EXIT_OK;
out:
    if (why != MAP_FAILED)
        munmap(why, bytes);
    free(j.state);
    free(v);
    ota_reg_close(reg);
    return rc;
}

static const char fleet_help[] =
    "usage: scpkit fleet <command> ...\n"
    "  provision --dir SRV --cards DIR --devices N --master L:V --kdf S --kvn K [--tag T]\n"
    "        [--jobs J]\n"
    "  simulate --cards DIR --server URL [--server URL]... --ca FILE [--concurrency C]\n"
    "        [--drop-rate P] [--latency MS] [--crash-rate P] [--timeout S] [--json]\n"
    "  verify --dir SRV --cards DIR [--master L:V --kdf S --kvn K] [--campaign NAME]\n"
    "        [--jobs J] [--json]\n"
    "The keystore user PIN comes from SCPKIT_USER_PIN (or a prompt).\n";

int scp_cli_fleet(int argc, char **argv)
{
    scp_cli c;
    const char *sub;
    int rc;
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(fleet_help, stdout);
        return SCP_EXIT_OK;
    }
    rc = scp_cli_begin(&c, argc, argv);
    if (rc != SCP_EXIT_OK)
        return scp_cli_end(&c, rc);
    sub = c.o.argc > 1 ? c.o.argv[1] : "";
    if (c.o.argc > 1) {
        memmove(c.o.argv, c.o.argv + 1, (size_t)(c.o.argc - 1) * sizeof(c.o.argv[0]));
        c.o.argc--;
    }
    if (strcmp(sub, "provision") == 0)
        rc = provision(&c, scp_ota_dir(&c));
    else if (strcmp(sub, "verify") == 0)
        rc = verify(&c, scp_ota_dir(&c));
    else if (strcmp(sub, "simulate") == 0)
        rc = scp_fleet_simulate(&c);
    else
        rc = scp_cli_fail(&c, SCP_EXIT_USAGE, "fleet: provision | simulate | verify (see scpkit "
                                              "fleet --help)");
    return scp_cli_end(&c, rc);
}
#endif /* SCP_HAVE_OTA */
