/* scpkit card: the state file. One file per card (DIR/card.state, 0600),
 * binary, versioned, with a SHA-256 over everything before it; written
 * atomically (temp file, fsync, rename, fsync of the directory) so a crash
 * at any instant leaves the old or the new state, never a mix.
 *
 * Layout (integers big-endian):
 *   "SCPKCARD" | version u16 | body length u16 | body | SHA-256(all before)
 *   body: profile, i, min_level, lifecycle, keyset_limit, retry_limit (u8
 *         each) | ATR (u8 len + bytes) | KDD (10) | CPLC (42) | SD AID,
 *         IIN, CIN (u8 len + bytes each) | sequence counter (u24) |
 *         factory set | set count (u8) | sets | store app lifecycle (u8) |
 *         object count (u8) | objects (tag u16, u8 len, bytes)
 *         | version 2 on: extension records to the end of the body
 *   set:  kvn, key_len, factory, failures (u8 each) | ENC | MAC | DEK
 *   extension record: tag u8 | length u16 | value. A profile that needs
 *         more state (SCP11 key pairs, SCP02 sets, ...) adds a tag in
 *         put_ext/get_ext; a tag this build does not know is refused
 *         (a file from a newer scpkit), never skipped.
 * Version 1 files (no extension records) still load; they are written
 * back as version 2 at the next change.
 * The checksum is checked before any field is read, and every field is
 * range-checked after (check_state): a damaged or hand-edited file is
 * refused with the name of the bad field, never half-used, never
 * rewritten. Only regular files are read: a FIFO or a device given as the
 * state is refused without being waited on. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>
#include "card/internal.h"
#include "core/guard.h"
#include "scpkit/buf.h"
#include "scpkit/crypto.h"

static const uint8_t state_magic[8] = { 'S', 'C', 'P', 'K', 'C', 'A', 'R', 'D' };
#define STATE_VERSION 2
#define STATE_VERSION_MIN 1
#define STATE_HDR 12 /* magic | version u16 | body length u16 */
#define STATE_DIGEST 32
#define STATE_FILE_MAX 8192

/* The factory test keys of GPC and of every YubiKey (seed 002). */
static const uint8_t factory_key[16] = { 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47,
                                         0x48, 0x49, 0x4A, 0x4B, 0x4C, 0x4D, 0x4E, 0x4F };
static const uint8_t isd_aid[8] = { 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00 };
/* Historical bytes in ISO 7816-4 8.1.1 form: category indicator 80, then
 * compact-TLV objects: 73 card capabilities (selection by full and by
 * partial DF name; no data-coding claims; no chaining, no extended
 * length, no logical channels: what the card does) and 56 "scpkit" (card
 * issuer's data). The layout is a YubiKey 5's (80 73 C0 21 C0 57
 * "YubiKey"), with only the claims this card meets. */
static const uint8_t atr_hist[] = { 0x80, 0x73, 0xC0, 0x00, 0x00, 0x56,
                                    's',  'c',  'p',  'k',  'i',  't' };

static int sha256(const uint8_t *p, size_t len, uint8_t out[32])
{
    unsigned int n = 0;
    ENSURE(EVP_Digest(p, len, out, &n, EVP_sha256(), NULL) == 1 && n == 32, SCP_E_CRYPTO);
    return SCP_OK;
}

void card_wipe_state(card_state *st) { scp_wipe(st, sizeof(*st)); }

card_keyset *card_find_set(card_state *st, uint8_t kvn)
{
    for (uint8_t k = 0; k < st->nsets; k++)
        if (st->sets[k].kvn == kvn)
            return &st->sets[k];
    return NULL;
}

void card_factory_reset_keys(card_state *st)
{
    scp_wipe(st->sets, sizeof(st->sets));
    st->sets[0] = st->factory;
    st->sets[0].factory = 1;
    st->sets[0].fails = 0;
    st->nsets = 1;
}

static void make_atr(card_state *st)
{
    /* TS 3B, T0 = 80 | K historical bytes, TD1 80 (T=0 implicit, TD2
     * follows), TD2 01 (T=1), historical bytes, TCK = XOR of T0..last. */
    uint8_t *a = st->atr, tck = 0;
    size_t n = 0;
    a[n++] = 0x3B;
    a[n++] = 0x80 | (uint8_t)sizeof(atr_hist);
    a[n++] = 0x80;
    a[n++] = 0x01;
    memcpy(a + n, atr_hist, sizeof(atr_hist));
    n += sizeof(atr_hist);
    for (size_t k = 1; k < n; k++)
        tck ^= a[k];
    a[n++] = tck;
    st->atr_len = (uint8_t)n;
}

static int set_initial_keys(card_state *st, const scp_card_init_opts *o)
{
    card_keyset *f = &st->factory;
    f->kvn = 0xFF;
    f->key_len = 16;
    f->factory = 1;
    if (o != NULL && o->key != NULL) {
        ENSURE(o->key_len == 16 || o->key_len == 24 || o->key_len == 32, SCP_E_ARG);
        f->key_len = (uint8_t)o->key_len;
        memcpy(f->enc, o->key, o->key_len);
    } else {
        memcpy(f->enc, factory_key, 16);
    }
    if (o != NULL && o->kvn >= 0) {
        ENSURE(o->kvn >= 1 && o->kvn <= 0xFF, SCP_E_ARG);
        f->kvn = (uint8_t)o->kvn;
    }
    memcpy(f->mac, f->enc, f->key_len);
    memcpy(f->dek, f->enc, f->key_len);
    card_factory_reset_keys(st);
    return SCP_OK;
}

/* CPLC dates (GPC H.4): BCD YDDD, last digit of the year and day of
 * the year, as GlobalPlatformPro's CPLC class reads them. All of this
 * card's dates are its creation day. Offsets: OS release, IC fabrication,
 * module packaging, embedding, pre-personalization, personalization. */
static void cplc_dates(uint8_t cplc[CARD_CPLC_LEN])
{
    static const uint8_t at[] = { 6, 10, 20, 24, 28, 36 };
    time_t now = time(NULL);
    struct tm tmv;
    unsigned y = 6, d = 1;
    if (gmtime_r(&now, &tmv) != NULL) {
        y = (unsigned)(tmv.tm_year + 1900) % 10;
        d = (unsigned)tmv.tm_yday + 1; /* 1..366 */
    }
    for (size_t k = 0; k < sizeof(at); k++) {
        cplc[at[k]] = (uint8_t)(y << 4 | d / 100);
        cplc[at[k] + 1] = (uint8_t)((d / 10 % 10) << 4 | d % 10);
    }
}

int card_state_new(card_state *st, const scp_card_init_opts *o)
{
    const card_profile *p =
        card_profile_by_name((o != NULL && o->profile != NULL) ? o->profile : "yubikey");
    memset(st, 0, sizeof(*st));
    ENSURE(p != NULL, SCP_E_ARG);
    st->profile = p->id;
    st->i = p->i;
    st->min_level = p->min_level;
    if (o != NULL && o->scp_i >= 0 && p->scp == 2) {
        ENSURE(o->scp_i <= 0xFF && scp02_i_supported((uint8_t)o->scp_i), SCP_E_ARG);
        st->i = (uint8_t)o->scp_i;
    } else if (o != NULL && o->scp_i >= 0) {
        uint8_t i = (uint8_t)o->scp_i;
        /* Amd D table 5-1: b1 S16, b5 pseudo-random, b6 R-MAC, b7 R-ENC
         * (R-ENC needs R-MAC); other bits are RFU */
        ENSURE(o->scp_i <= 0xFF && (i & ~0x71u) == 0, SCP_E_ARG);
        ENSURE(!(i & SCP03_I_RENC) || (i & SCP03_I_RMAC), SCP_E_ARG);
        st->i = i;
        st->min_level = 0;
    }
    st->lifecycle = CARD_LC_SECURED;
    if (o != NULL && o->lifecycle != 0) {
        uint8_t l = o->lifecycle;
        ENSURE(l == CARD_LC_OP_READY || l == CARD_LC_INITIALIZED || l == CARD_LC_SECURED,
               SCP_E_ARG);
        st->lifecycle = l;
    }
    st->keyset_limit = 3;
    st->retry_limit = 32;
    make_atr(st);
    GUARD(scp_random(st->kdd, sizeof(st->kdd)));
    /* CPLC: 40 90 (IC fabricator/type, as on a YubiKey), valid dates, the
     * rest random */
    GUARD(scp_random(st->cplc, sizeof(st->cplc)));
    st->cplc[0] = 0x40;
    st->cplc[1] = 0x90;
    cplc_dates(st->cplc);
    memcpy(st->aid, isd_aid, sizeof(isd_aid));
    st->aid_len = sizeof(isd_aid);
    st->iin_len = 3;
    st->iin[0] = 0x89; /* ISO 7812 issuer identification number, made up */
    st->iin[1] = 0x99;
    st->iin[2] = 0x01;
    st->cin_len = 8;
    GUARD(scp_random(st->cin, st->cin_len));
    st->app_lifecycle = CARD_APP_SELECTABLE;
    GUARD(set_initial_keys(st, o));
    /* yubikey: "only AES-128 for all three keys" (seed 002); scp02: 3DES
     * with two keys, 16 bytes too */
    ENSURE(!p->aes128_only || st->factory.key_len == 16, SCP_E_ARG);
    return SCP_OK;
}

/* ---- encoding ---- */

static void put_set(scp_wr *w, const card_keyset *k)
{
    scp_wr_u8(w, k->kvn);
    scp_wr_u8(w, k->key_len);
    scp_wr_u8(w, k->factory);
    scp_wr_u8(w, k->fails);
    scp_wr_bytes(w, k->enc, k->key_len);
    scp_wr_bytes(w, k->mac, k->key_len);
    scp_wr_bytes(w, k->dek, k->key_len);
}

static void put_body(scp_wr *w, const card_state *st)
{
    scp_wr_u8(w, st->profile);
    scp_wr_u8(w, st->i);
    scp_wr_u8(w, st->min_level);
    scp_wr_u8(w, st->lifecycle);
    scp_wr_u8(w, st->keyset_limit);
    scp_wr_u8(w, st->retry_limit);
    scp_wr_u8(w, st->atr_len);
    scp_wr_bytes(w, st->atr, st->atr_len);
    scp_wr_bytes(w, st->kdd, sizeof(st->kdd));
    scp_wr_bytes(w, st->cplc, sizeof(st->cplc));
    scp_wr_u8(w, st->aid_len);
    scp_wr_bytes(w, st->aid, st->aid_len);
    scp_wr_u8(w, st->iin_len);
    scp_wr_bytes(w, st->iin, st->iin_len);
    scp_wr_u8(w, st->cin_len);
    scp_wr_bytes(w, st->cin, st->cin_len);
    scp_wr_u8(w, (uint8_t)(st->seq >> 16));
    scp_wr_u16(w, (uint16_t)st->seq);
    put_set(w, &st->factory);
    scp_wr_u8(w, st->nsets);
    for (uint8_t k = 0; k < st->nsets; k++)
        put_set(w, &st->sets[k]);
    scp_wr_u8(w, st->app_lifecycle);
    scp_wr_u8(w, st->nobj);
    for (uint8_t k = 0; k < st->nobj; k++) {
        scp_wr_u16(w, st->obj[k].tag);
        scp_wr_u8(w, st->obj[k].len);
        scp_wr_bytes(w, st->obj[k].data, st->obj[k].len);
    }
}

static int encode(const card_state *st, uint8_t *out, size_t out_size, size_t *out_len)
{
    scp_wr w;
    size_t n;
    ENSURE(out_size > STATE_HDR + STATE_DIGEST, SCP_E_BUFFER_TOO_SMALL);
    scp_wr_init(&w, out + STATE_HDR, out_size - STATE_HDR - STATE_DIGEST);
    put_body(&w, st);
    GUARD(scp_wr_done(&w, &n));
    memcpy(out, state_magic, sizeof(state_magic));
    out[8] = 0;
    out[9] = STATE_VERSION;
    out[10] = (uint8_t)(n >> 8);
    out[11] = (uint8_t)n;
    GUARD(sha256(out, STATE_HDR + n, out + STATE_HDR + n));
    *out_len = STATE_HDR + n + STATE_DIGEST;
    return SCP_OK;
}

/* ---- decoding: the checksum first, then every field range-checked ---- */

static int get_set(scp_rd *r, card_keyset *k)
{
    GUARD(scp_rd_u8(r, &k->kvn));
    GUARD(scp_rd_u8(r, &k->key_len));
    ENSURE(k->key_len == 16 || k->key_len == 24 || k->key_len == 32, SCP_E_FORMAT);
    GUARD(scp_rd_u8(r, &k->factory));
    GUARD(scp_rd_u8(r, &k->fails));
    GUARD(scp_rd_copy(r, k->enc, k->key_len));
    GUARD(scp_rd_copy(r, k->mac, k->key_len));
    return scp_rd_copy(r, k->dek, k->key_len);
}

static int get_id(scp_rd *r, uint8_t *len, uint8_t *out, size_t max)
{
    GUARD(scp_rd_u8(r, len));
    ENSURE(*len <= max, SCP_E_FORMAT);
    return scp_rd_copy(r, out, *len);
}

/* Extension records (version 2 on). None is defined yet: a profile that
 * needs more state adds its tag here and writes it in put_body. */
static int get_ext(scp_rd *r, card_state *st, const char **why)
{
    (void)st;
    while (scp_rd_left(r) > 0) {
        uint8_t tag;
        uint16_t len;
        *why = "an extension record is cut short";
        GUARD(scp_rd_u8(r, &tag));
        GUARD(scp_rd_u16(r, &len));
        ENSURE(scp_rd_left(r) >= len, SCP_E_FORMAT);
        switch (tag) {
        default:
            *why = "an extension record this scpkit does not know (written by a newer "
                   "version?)";
            return SCP_E_FORMAT;
        }
    }
    return SCP_OK;
}

/* The layout: lengths bounded by the buffers they fill. */
static int get_body(scp_rd *r, card_state *st, unsigned version, const char **why)
{
    uint32_t seq;
    *why = "a field is cut short or longer than its buffer";
    GUARD(scp_rd_u8(r, &st->profile));
    GUARD(scp_rd_u8(r, &st->i));
    GUARD(scp_rd_u8(r, &st->min_level));
    GUARD(scp_rd_u8(r, &st->lifecycle));
    GUARD(scp_rd_u8(r, &st->keyset_limit));
    GUARD(scp_rd_u8(r, &st->retry_limit));
    GUARD(get_id(r, &st->atr_len, st->atr, sizeof(st->atr)));
    GUARD(scp_rd_copy(r, st->kdd, sizeof(st->kdd)));
    GUARD(scp_rd_copy(r, st->cplc, sizeof(st->cplc)));
    GUARD(get_id(r, &st->aid_len, st->aid, sizeof(st->aid)));
    GUARD(get_id(r, &st->iin_len, st->iin, sizeof(st->iin)));
    GUARD(get_id(r, &st->cin_len, st->cin, sizeof(st->cin)));
    GUARD(scp_rd_u24(r, &seq));
    st->seq = seq;
    GUARD(get_set(r, &st->factory));
    GUARD(scp_rd_u8(r, &st->nsets));
    ENSURE(st->nsets <= CARD_MAX_SETS, SCP_E_FORMAT);
    for (uint8_t k = 0; k < st->nsets; k++)
        GUARD(get_set(r, &st->sets[k]));
    GUARD(scp_rd_u8(r, &st->app_lifecycle));
    GUARD(scp_rd_u8(r, &st->nobj));
    ENSURE(st->nobj <= CARD_OBJ_MAX, SCP_E_FORMAT);
    for (uint8_t k = 0; k < st->nobj; k++) {
        GUARD(scp_rd_u16(r, &st->obj[k].tag));
        GUARD(get_id(r, &st->obj[k].len, st->obj[k].data, CARD_OBJ_MAX_LEN));
    }
    if (version >= 2)
        return get_ext(r, st, why);
    *why = "bytes after the last field";
    ENSURE(scp_rd_left(r) == 0, SCP_E_FORMAT);
    return SCP_OK;
}

static const char *check_set(const card_state *st, const card_keyset *k)
{
    if (k->kvn == 0)
        return "key set with KVN 00";
    if (k->factory > 1)
        return "key set factory flag";
    if (k->fails > st->retry_limit)
        return "key set failure counter above the retry limit";
    if (card_profile_of(st)->aes128_only && k->key_len != 16)
        return "key set length (this profile holds AES-128 only, or 3DES for SCP02)";
    return NULL;
}

/* Every field against what the card itself could have written. Returns
 * the name of the first bad one, or NULL. */
static const char *check_state(const card_state *st)
{
    const char *why;
    const card_profile *p = card_profile_by_id(st->profile);
    if (p == NULL)
        return "profile";
    if (p->scp == 2) {
        if (!scp02_i_supported(st->i))
            return "i parameter";
        if (st->min_level != 0)
            return "minimum security level";
    } else {
        if ((st->i & ~0x71u) != 0 || ((st->i & SCP03_I_RENC) && !(st->i & SCP03_I_RMAC)))
            return "i parameter";
        if (st->min_level != 0 &&
            (!scp03_level_valid(st->min_level) || !scp03_level_allowed(st->i, st->min_level)))
            return "minimum security level";
    }
    if (st->lifecycle != CARD_LC_OP_READY && st->lifecycle != CARD_LC_INITIALIZED &&
        st->lifecycle != CARD_LC_SECURED && st->lifecycle != CARD_LC_LOCKED &&
        st->lifecycle != CARD_LC_TERMINATED)
        return "card life cycle";
    if (st->keyset_limit < 1 || st->keyset_limit > CARD_MAX_SETS)
        return "key set limit";
    if (st->retry_limit < 1) /* 0 would delete a set at every try */
        return "retry limit";
    if (st->atr_len < 2 || st->aid_len < 5 || st->cin_len < 1)
        return "ATR, SD AID or CIN length";
    if (st->nsets < 1 || st->nsets > st->keyset_limit)
        return "number of key sets";
    if ((why = check_set(st, &st->factory)) != NULL)
        return why;
    for (uint8_t k = 0; k < st->nsets; k++) {
        if ((why = check_set(st, &st->sets[k])) != NULL)
            return why;
        for (uint8_t j = 0; j < k; j++)
            if (st->sets[j].kvn == st->sets[k].kvn)
                return "two key sets with one KVN";
    }
    if (st->app_lifecycle != CARD_APP_SELECTABLE && st->app_lifecycle != CARD_APP_LOCKED)
        return "store application life cycle";
    for (uint8_t k = 0; k < st->nobj; k++) {
        if (st->obj[k].tag == 0x0000 || st->obj[k].tag == 0xFFFF || st->obj[k].len == 0)
            return "data object tag or length";
        for (uint8_t j = 0; j < k; j++)
            if (st->obj[j].tag == st->obj[k].tag)
                return "two data objects with one tag";
    }
    return NULL;
}

static int fail_msg(char *err, size_t err_size, int rc, const char *path, const char *what)
{
    if (err != NULL && err_size > 0)
        snprintf(err, err_size, "card state %s: %s", path, what);
    return rc;
}

static int read_file(const char *path, uint8_t *buf, size_t cap, size_t *len, char *err,
                     size_t err_size)
{
    struct stat sb;
    ssize_t n;
    /* O_NONBLOCK: a FIFO opens at once (then fails S_ISREG) instead of
     * waiting for a writer */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return fail_msg(err, err_size, errno == ENOENT ? SCP_E_NOT_FOUND : SCP_E_IO, path,
                        errno == ENOENT ? "no such file (run `scpkit card init` first)"
                                        : strerror(errno));
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return fail_msg(err, err_size, SCP_E_IO, path,
                        "not a regular file (a FIFO, device or directory is refused)");
    }
    if (sb.st_mode & 077) {
        close(fd);
        return fail_msg(err, err_size, SCP_E_PERM, path,
                        "readable by group or others: it holds keys; chmod 600 it");
    }
    *len = 0;
    while ((n = read(fd, buf + *len, cap - *len)) > 0)
        *len += (size_t)n;
    close(fd);
    if (n < 0)
        return fail_msg(err, err_size, SCP_E_IO, path, "read error");
    return SCP_OK;
}

int card_state_load(const char *path, card_state *st, char *err, size_t err_size)
{
    uint8_t buf[STATE_FILE_MAX + 1], dg[STATE_DIGEST];
    size_t len = 0, body;
    const char *why = NULL;
    scp_rd r;
    int rc;

    memset(st, 0, sizeof(*st));
    GUARD(read_file(path, buf, sizeof(buf), &len, err, err_size));
    rc = SCP_E_CORRUPT;
    if (len > STATE_FILE_MAX) {
        fail_msg(err, err_size, rc, path, "too large to be a card state");
        goto out;
    }
    if (len < STATE_HDR + STATE_DIGEST || memcmp(buf, state_magic, sizeof(state_magic)) != 0) {
        fail_msg(err, err_size, rc, path, "not a scpkit card state (bad magic or truncated)");
        goto out;
    }
    if (buf[8] != 0 || buf[9] < STATE_VERSION_MIN || buf[9] > STATE_VERSION) {
        char m[128];
        snprintf(m, sizeof(m), "state version %u: this scpkit reads versions %u to %u",
                 (unsigned)buf[8] << 8 | buf[9], STATE_VERSION_MIN, STATE_VERSION);
        fail_msg(err, err_size, rc, path, m);
        goto out;
    }
    body = ((size_t)buf[10] << 8) | buf[11];
    if (len != STATE_HDR + body + STATE_DIGEST) {
        char m[128];
        snprintf(m, sizeof(m), "truncated or extended: %zu bytes, header says %zu", len,
                 STATE_HDR + body + STATE_DIGEST);
        fail_msg(err, err_size, rc, path, m);
        goto out;
    }
    GUARD_GOTO(sha256(buf, STATE_HDR + body, dg), out);
    rc = SCP_E_CORRUPT;
    if (!scp_ct_eq(dg, buf + STATE_HDR + body, STATE_DIGEST)) {
        fail_msg(err, err_size, rc, path, "SHA-256 checksum mismatch: the file is damaged");
        goto out;
    }
    scp_rd_init(&r, buf + STATE_HDR, body);
    if (get_body(&r, st, buf[9], &why) != SCP_OK || (why = check_state(st)) != NULL) {
        char m[200];
        card_wipe_state(st);
        snprintf(m, sizeof(m), "checksum good but refused: %s is out of range (file left as "
                 "it is)", why);
        fail_msg(err, err_size, rc, path, m);
        goto out;
    }
    make_atr(st); /* the ATR follows the code, not the file (version 1 had
                   * free-text historical bytes) */
    rc = SCP_OK;
out:
    scp_wipe(buf, sizeof(buf));
    return rc;
}

/* ---- atomic write ---- */

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        ENSURE(n > 0, SCP_E_IO);
        p += n;
        len -= (size_t)n;
    }
    return SCP_OK;
}

static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int ok;
    ENSURE(fd >= 0, SCP_E_IO);
    ok = fsync(fd) == 0;
    close(fd);
    return ok ? SCP_OK : SCP_E_IO;
}

int card_state_save(scp_card *c, const card_state *st)
{
    uint8_t buf[STATE_FILE_MAX];
    char tmp[sizeof(c->path) + 8];
    size_t len = 0;
    int fd, rc;

    if (c->fail_writes > 0 && --c->fail_writes == 0)
        return SCP_E_IO; /* test hook: a disk that fails this write */
    if (c->read_only)
        return SCP_E_PERM;
    if (c->mem_only)
        return SCP_OK;
    GUARD_GOTO(encode(st, buf, sizeof(buf), &len), out);
    snprintf(tmp, sizeof(tmp), "%s.tmp", c->path);
    rc = SCP_E_IO;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        goto out;
    if (fchmod(fd, 0600) != 0 || write_all(fd, buf, len) != SCP_OK || fsync(fd) != 0) {
        close(fd);
        unlink(tmp);
        goto out;
    }
    if (close(fd) != 0 || rename(tmp, c->path) != 0) {
        unlink(tmp);
        goto out;
    }
    rc = sync_dir(c->dir);
out:
    scp_wipe(buf, sizeof(buf));
    return rc;
}
