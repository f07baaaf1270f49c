/* scpkit card: SCP11 state (src/card/scp11.h), in DIR/scp11.state next to
 * DIR/card.state, and the SCP11 part of `card init`.
 *
 * Layout (version 1; integers big-endian):
 *   "SCPK11ST" | version u16 | body length u32 | body | SHA-256(all before)
 *   body: key count u8 | keys | store count u8 | stores | issuer count u8 |
 *         issuers | allow-list count u8 | allow-lists | CA d (32) |
 *         CA certificate (u16 len + DER)
 *   key:    kid, kvn, curve, priv, fails (u8 each) | d (field length, when
 *           priv) | point (u8 len + bytes)
 *   store:  kid, kvn | u16 len + DER;  issuer: kid, kvn, klcc | u8 len + SKI
 *   allow:  kid, kvn, n | n x (u8 len + serial)
 * Written as card.state is: temp file, fsync, rename, fsync of the
 * directory, so a crash leaves the old or the new file; the checksum is
 * checked before any field is read, every field is range-checked after.
 * At `card init` this file and DIR/sd-ca.pem are written before
 * card.state, whose presence marks a finished init. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "card/scp11.h"
#include "core/guard.h"
#include "scpkit/buf.h"
#include "scpkit/cert.h"
#include "scpkit/crypto.h"

static const uint8_t magic[8] = { 'S', 'C', 'P', 'K', '1', '1', 'S', 'T' };
#define C11_VERSION 1
#define C11_HDR 14
#define C11_FILE_MAX (sizeof(c11_state) + 4096)

c11_key *c11_find_key(c11_state *st, uint8_t kid, uint8_t kvn)
{
    for (uint8_t i = 0; i < st->nkeys; i++)
        if (st->keys[i].kid == kid && (kvn == 0 || st->keys[i].kvn == kvn))
            return &st->keys[i];
    return NULL;
}

int c11_key_load(const c11_key *k, scp_ec_key *out)
{
    size_t f = scp_ec_field_len(k->curve);
    ENSURE(f != 0, SCP_E_CORRUPT);
    if (k->priv)
        return scp_ec_from_private(out, k->curve, k->d, f);
    return scp_ec_from_point(out, k->curve, k->pt, k->pt_len);
}

int c11_key_set(c11_key *k, const scp_ec_key *from)
{
    size_t n;
    k->curve = from->curve;
    k->priv = from->priv;
    memset(k->d, 0, sizeof(k->d));
    if (from->priv)
        GUARD(scp_ec_private(from, k->d, sizeof(k->d), &n));
    GUARD(scp_ec_point(from, k->pt, sizeof(k->pt), &n));
    k->pt_len = (uint8_t)n;
    return SCP_OK;
}

static int sha256(const uint8_t *p, size_t len, uint8_t out[32])
{
    unsigned int n = 0;
    ENSURE(EVP_Digest(p, len, out, &n, EVP_sha256(), NULL) == 1 && n == 32, SCP_E_CRYPTO);
    return SCP_OK;
}

static void put_body(scp_wr *w, const c11_state *st)
{
    scp_wr_u8(w, st->nkeys);
    for (uint8_t i = 0; i < st->nkeys; i++) {
        const c11_key *k = &st->keys[i];
        scp_wr_u8(w, k->kid), scp_wr_u8(w, k->kvn), scp_wr_u8(w, k->curve);
        scp_wr_u8(w, k->priv), scp_wr_u8(w, k->fails);
        if (k->priv)
            scp_wr_bytes(w, k->d, scp_ec_field_len(k->curve));
        scp_wr_u8(w, k->pt_len);
        scp_wr_bytes(w, k->pt, k->pt_len);
    }
    scp_wr_u8(w, st->nstores);
    for (uint8_t i = 0; i < st->nstores; i++) {
        const c11_store *s = &st->stores[i];
        scp_wr_u8(w, s->kid), scp_wr_u8(w, s->kvn), scp_wr_u16(w, s->len);
        scp_wr_bytes(w, s->der, s->len);
    }
    scp_wr_u8(w, st->nissuers);
    for (uint8_t i = 0; i < st->nissuers; i++) {
        const c11_issuer *s = &st->issuers[i];
        scp_wr_u8(w, s->kid), scp_wr_u8(w, s->kvn), scp_wr_u8(w, s->klcc);
        scp_wr_u8(w, s->ski_len), scp_wr_bytes(w, s->ski, s->ski_len);
    }
    scp_wr_u8(w, st->nallow);
    for (uint8_t i = 0; i < st->nallow; i++) {
        const c11_allow *s = &st->allow[i];
        scp_wr_u8(w, s->kid), scp_wr_u8(w, s->kvn), scp_wr_u8(w, s->n);
        for (uint8_t j = 0; j < s->n; j++)
            scp_wr_u8(w, s->len[j]), scp_wr_bytes(w, s->serial[j], s->len[j]);
    }
    scp_wr_bytes(w, st->ca_d, sizeof(st->ca_d));
    scp_wr_u16(w, st->ca_cert_len);
    scp_wr_bytes(w, st->ca_cert, st->ca_cert_len);
}

static int get_len_bytes(scp_rd *r, uint8_t *out, size_t max, uint8_t *len)
{
    GUARD(scp_rd_u8(r, len));
    ENSURE(*len <= max, SCP_E_CORRUPT);
    return scp_rd_copy(r, out, *len);
}

static int get_body(scp_rd *r, c11_state *st)
{
    GUARD(scp_rd_u8(r, &st->nkeys));
    ENSURE(st->nkeys <= C11_MAX_KEYS, SCP_E_CORRUPT);
    for (uint8_t i = 0; i < st->nkeys; i++) {
        c11_key *k = &st->keys[i];
        size_t f;
        GUARD(scp_rd_u8(r, &k->kid));
        GUARD(scp_rd_u8(r, &k->kvn));
        GUARD(scp_rd_u8(r, &k->curve));
        GUARD(scp_rd_u8(r, &k->priv));
        GUARD(scp_rd_u8(r, &k->fails));
        f = scp_ec_field_len(k->curve);
        ENSURE(f != 0 && k->priv <= 1, SCP_E_CORRUPT);
        if (k->priv)
            GUARD(scp_rd_copy(r, k->d, f));
        GUARD(get_len_bytes(r, k->pt, sizeof(k->pt), &k->pt_len));
        ENSURE(k->pt_len == 1 + 2 * f, SCP_E_CORRUPT);
    }
    GUARD(scp_rd_u8(r, &st->nstores));
    ENSURE(st->nstores <= C11_MAX_STORES, SCP_E_CORRUPT);
    for (uint8_t i = 0; i < st->nstores; i++) {
        c11_store *s = &st->stores[i];
        GUARD(scp_rd_u8(r, &s->kid));
        GUARD(scp_rd_u8(r, &s->kvn));
        GUARD(scp_rd_u16(r, &s->len));
        ENSURE(s->len <= C11_STORE_MAX, SCP_E_CORRUPT);
        GUARD(scp_rd_copy(r, s->der, s->len));
    }
    GUARD(scp_rd_u8(r, &st->nissuers));
    ENSURE(st->nissuers <= C11_MAX_ISSUERS, SCP_E_CORRUPT);
    for (uint8_t i = 0; i < st->nissuers; i++) {
        c11_issuer *s = &st->issuers[i];
        GUARD(scp_rd_u8(r, &s->kid));
        GUARD(scp_rd_u8(r, &s->kvn));
        GUARD(scp_rd_u8(r, &s->klcc));
        GUARD(get_len_bytes(r, s->ski, sizeof(s->ski), &s->ski_len));
    }
    GUARD(scp_rd_u8(r, &st->nallow));
    ENSURE(st->nallow <= C11_MAX_ALLOW, SCP_E_CORRUPT);
    for (uint8_t i = 0; i < st->nallow; i++) {
        c11_allow *s = &st->allow[i];
        GUARD(scp_rd_u8(r, &s->kid));
        GUARD(scp_rd_u8(r, &s->kvn));
        GUARD(scp_rd_u8(r, &s->n));
        ENSURE(s->n <= C11_ALLOW_N, SCP_E_CORRUPT);
        for (uint8_t j = 0; j < s->n; j++)
            GUARD(get_len_bytes(r, s->serial[j], SCP_CERT_MAX_ID, &s->len[j]));
    }
    GUARD(scp_rd_copy(r, st->ca_d, sizeof(st->ca_d)));
    GUARD(scp_rd_u16(r, &st->ca_cert_len));
    ENSURE(st->ca_cert_len <= C11_CA_CERT_MAX, SCP_E_CORRUPT);
    GUARD(scp_rd_copy(r, st->ca_cert, st->ca_cert_len));
    ENSURE(scp_rd_left(r) == 0, SCP_E_CORRUPT);
    return SCP_OK;
}

static int encode(const c11_state *st, uint8_t *out, size_t out_size, size_t *out_len)
{
    scp_wr w;
    size_t n;
    scp_wr_init(&w, out, out_size);
    scp_wr_bytes(&w, magic, sizeof(magic));
    scp_wr_u16(&w, C11_VERSION);
    scp_wr_fill(&w, 0, 4); /* body length, below */
    put_body(&w, st);
    GUARD(scp_wr_done(&w, &n));
    ENSURE(n + 32 <= out_size, SCP_E_BUFFER_TOO_SMALL);
    size_t body = n - C11_HDR;
    out[10] = (uint8_t)(body >> 24), out[11] = (uint8_t)(body >> 16);
    out[12] = (uint8_t)(body >> 8), out[13] = (uint8_t)body;
    GUARD(sha256(out, n, out + n));
    *out_len = n + 32;
    return SCP_OK;
}

static int decode(const uint8_t *p, size_t len, c11_state *st)
{
    uint8_t d[32];
    size_t body;
    scp_rd r;
    ENSURE(len >= C11_HDR + 32 && memcmp(p, magic, sizeof(magic)) == 0, SCP_E_CORRUPT);
    GUARD(sha256(p, len - 32, d));
    ENSURE(scp_ct_eq(d, p + len - 32, 32), SCP_E_CORRUPT);
    ENSURE(p[8] == 0 && p[9] == C11_VERSION, SCP_E_CORRUPT);
    body = (size_t)p[10] << 24 | (size_t)p[11] << 16 | (size_t)p[12] << 8 | p[13];
    ENSURE(body == len - 32 - C11_HDR, SCP_E_CORRUPT);
    memset(st, 0, sizeof(*st));
    scp_rd_init(&r, p + C11_HDR, body);
    return get_body(&r, st) == SCP_OK ? SCP_OK : SCP_E_CORRUPT;
}

static int write_atomic(const char *dir, const char *name, const uint8_t *p, size_t len)
{
    char path[4200], tmp[4210];
    int fd, rc = SCP_E_IO, ok;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return SCP_E_IO;
    ok = fchmod(fd, 0600) == 0;
    for (size_t done = 0; ok && done < len;) {
        ssize_t n = write(fd, p + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        ok = n > 0;
        if (ok)
            done += (size_t)n;
    }
    ok = ok && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (ok && rename(tmp, path) == 0) {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        rc = dfd >= 0 && fsync(dfd) == 0 ? SCP_OK : SCP_E_IO;
        if (dfd >= 0)
            close(dfd);
    } else {
        unlink(tmp);
    }
    return rc;
}

static int save_dir(const char *dir, const c11_state *st)
{
    uint8_t *buf = malloc(C11_FILE_MAX);
    size_t n = 0;
    int rc;
    ENSURE(buf != NULL, SCP_E_NOMEM);
    rc = encode(st, buf, C11_FILE_MAX, &n);
    if (rc == SCP_OK)
        rc = write_atomic(dir, C11_STATE_FILE, buf, n);
    scp_wipe(buf, C11_FILE_MAX);
    free(buf);
    return rc;
}

int card_scp11_save(scp_card *c, const c11_state *st)
{
    if (c->fail_writes > 0 && --c->fail_writes == 0)
        return SCP_E_IO; /* test hook, as for card.state */
    if (c->read_only)
        return SCP_E_PERM;
    if (c->mem_only)
        return SCP_OK;
    return save_dir(c->dir, st);
}

int card_scp11_open(scp_card *c, char *err, size_t err_size)
{
    char path[4200];
    uint8_t *buf;
    size_t n;
    FILE *f = NULL;
    struct stat sb;
    int fd, rc = SCP_OK;

    c->s11 = calloc(1, sizeof(*c->s11));
    ENSURE(c->s11 != NULL, SCP_E_NOMEM);
    snprintf(path, sizeof(path), "%s/%s", c->dir, C11_STATE_FILE);
    /* O_NONBLOCK: a FIFO opens at once and is then refused, not waited on */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return errno == ENOENT ? SCP_OK : SCP_E_IO; /* a card without SCP11 */
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || (f = fdopen(fd, "rb")) == NULL) {
        close(fd);
        if (err != NULL && err_size > 0)
            snprintf(err, err_size, "%s: not a regular file (a FIFO, device or directory is "
                     "refused)", path);
        return SCP_E_IO;
    }
    buf = malloc(C11_FILE_MAX);
    if (buf == NULL) {
        fclose(f);
        return SCP_E_NOMEM;
    }
    n = fread(buf, 1, C11_FILE_MAX, f);
    if (ferror(f) || n == C11_FILE_MAX)
        rc = SCP_E_CORRUPT;
    fclose(f);
    if (rc == SCP_OK)
        rc = decode(buf, n, &c->s11->st);
    scp_wipe(buf, C11_FILE_MAX);
    free(buf);
    if (rc != SCP_OK && err != NULL && err_size > 0)
        snprintf(err, err_size, "%s: damaged SCP11 state (checksum or layout); refusing it",
                 path);
    return rc;
}

void card_scp11_close(scp_card *c)
{
    if (c == NULL || c->s11 == NULL)
        return;
    scp_ec_free(&c->s11->signer);
    scp_ec_free(&c->s11->pk_oce);
    scp_wipe(c->s11, sizeof(*c->s11));
    free(c->s11);
    c->s11 = NULL;
}

int c11_issue_sd_cert(c11_state *st, const c11_key *k)
{
    scp_ec_key ca = { 0 }, pub = { 0 };
    c11_store *s = NULL;
    size_t n = 0;
    int rc;
    ENSURE(st->ca_cert_len > 0, SCP_E_STATE);
    for (uint8_t i = 0; i < st->nstores; i++)
        if (st->stores[i].kid == k->kid && st->stores[i].kvn == k->kvn)
            s = &st->stores[i];
    if (s == NULL) {
        ENSURE(st->nstores < C11_MAX_STORES, SCP_E_LENGTH);
        s = &st->stores[st->nstores++];
    }
    GUARD_GOTO(scp_ec_from_private(&ca, SCP_EC_P256, st->ca_d, sizeof(st->ca_d)), out);
    GUARD_GOTO(scp_ec_from_point(&pub, k->curve, k->pt, k->pt_len), out);
    {
        char cn[64];
        snprintf(cn, sizeof(cn), "scpkit card SD key %02X:%02X", k->kid, k->kvn);
        GUARD_GOTO(scp_cert_issue(&pub, cn, &ca, st->ca_cert, st->ca_cert_len, 0,
                                  (int64_t)time(NULL) - 86400, 20 * 365,
                                  (uint64_t)k->kid << 8 | k->kvn, s->der, sizeof(s->der), &n),
                   out);
    }
    s->kid = k->kid, s->kvn = k->kvn, s->len = (uint16_t)n;
out:
    scp_ec_free(&ca);
    scp_ec_free(&pub);
    return rc;
}

/* A new SD key pair kid/kvn on P-256 with its certificate. */
static int add_sd_key(c11_state *st, uint8_t kid, uint8_t kvn)
{
    scp_ec_key k = { 0 };
    c11_key *ck;
    int rc;
    ENSURE(st->nkeys < C11_MAX_KEYS, SCP_E_LENGTH);
    ck = &st->keys[st->nkeys];
    memset(ck, 0, sizeof(*ck));
    ck->kid = kid, ck->kvn = kvn;
    GUARD(scp_ec_generate(&k, SCP_EC_P256));
    rc = c11_key_set(ck, &k);
    scp_ec_free(&k);
    GUARD(rc);
    st->nkeys++;
    return c11_issue_sd_cert(st, ck);
}

/* The OCE CA (KID 10, KVN 03) from a PEM/DER certificate or public key,
 * and its KLOC identifier (the SKI) when it is a certificate. */
static int add_oce_ca(c11_state *st, const char *path)
{
    uint8_t der[4096];
    size_t off[SCP_CERT_MAX_CHAIN], lens[SCP_CERT_MAX_CHAIN], n = 0;
    scp_ec_key k = { 0 };
    c11_key *ck;
    int rc;
    ENSURE(st->nkeys < C11_MAX_KEYS, SCP_E_LENGTH);
    ck = &st->keys[st->nkeys];
    memset(ck, 0, sizeof(*ck));
    ck->kid = SCP11_KID_OCE_CA, ck->kvn = 0x03;
    if (scp_cert_load_file(path, der, sizeof(der), off, lens, SCP_CERT_MAX_CHAIN, &n) == SCP_OK) {
        scp_cert c;
        GUARD(scp_cert_parse(&c, der + off[n - 1], lens[n - 1]));
        rc = c.ec.pkey != NULL ? scp_ec_dup(&k, &c.ec, 0) : SCP_E_UNSUPPORTED;
        if (rc == SCP_OK && c.ski_len > 0 && st->nissuers < C11_MAX_ISSUERS) {
            c11_issuer *is = &st->issuers[st->nissuers++];
            is->kid = ck->kid, is->kvn = ck->kvn, is->klcc = 0;
            is->ski_len = c.ski_len;
            memcpy(is->ski, c.ski, c.ski_len);
        }
        scp_cert_free(&c);
        GUARD(rc);
    } else {
        GUARD(scp_ec_load_file(&k, path));
    }
    rc = c11_key_set(ck, &k);
    if (rc == SCP_OK)
        ck->priv = 0, memset(ck->d, 0, sizeof(ck->d));
    scp_ec_free(&k);
    GUARD(rc);
    st->nkeys++;
    return SCP_OK;
}

static int write_ca(const char *dir, c11_state *st)
{
    scp_ec_key ca = { 0 };
    char pem[2048];
    size_t n = 0, pl = 0;
    int rc;
    GUARD(scp_ec_generate(&ca, SCP_EC_P256));
    GUARD_GOTO(scp_ec_private(&ca, st->ca_d, sizeof(st->ca_d), &n), out);
    GUARD_GOTO(scp_cert_issue(&ca, "scpkit card lab CA", &ca, NULL, 0, 1,
                              (int64_t)time(NULL) - 86400, 30 * 365, 1, st->ca_cert,
                              sizeof(st->ca_cert), &n),
               out);
    st->ca_cert_len = (uint16_t)n;
    GUARD_GOTO(scp_cert_to_pem(st->ca_cert, n, pem, sizeof(pem), &pl), out);
    rc = write_atomic(dir, C11_CA_PEM, (const uint8_t *)pem, pl);
out:
    scp_ec_free(&ca);
    return rc;
}

int c11_factory_reset(c11_state *st, int yubikey)
{
    /* the lab CA stays (it is the card's maker); every key, certificate,
     * issuer and allow-list goes; a YubiKey makes a new SCP11b key 13/01 */
    scp_wipe(st->keys, sizeof(st->keys));
    scp_wipe(st->stores, sizeof(st->stores));
    scp_wipe(st->issuers, sizeof(st->issuers));
    scp_wipe(st->allow, sizeof(st->allow));
    st->nkeys = st->nstores = st->nissuers = st->nallow = 0;
    return yubikey ? add_sd_key(st, SCP11_KID_B, 0x01) : SCP_OK;
}

int card_scp11_init(const char *dir, const scp_card_init_opts *o)
{
    c11_state *st = calloc(1, sizeof(*st));
    const char *profile = (o != NULL && o->profile != NULL) ? o->profile : "yubikey";
    int rc = SCP_OK;
    ENSURE(st != NULL, SCP_E_NOMEM);
    GUARD_GOTO(write_ca(dir, st), out);
    /* a YubiKey 5.7 ships SCP11b at 13/01 (P-256) */
    if (strcmp(profile, "yubikey") == 0)
        GUARD_GOTO(add_sd_key(st, SCP11_KID_B, 0x01), out);
    if (o != NULL && o->oce_ca != NULL) {
        /* an off-card CA: 11a and 11c keys (as yubikit's tests set them up) */
        GUARD_GOTO(add_oce_ca(st, o->oce_ca), out);
        GUARD_GOTO(add_sd_key(st, SCP11_KID_A, 0x03), out);
        GUARD_GOTO(add_sd_key(st, SCP11_KID_C, 0x03), out);
    }
    rc = save_dir(dir, st);
out:
    scp_wipe(st, sizeof(*st));
    free(st);
    return rc;
}
