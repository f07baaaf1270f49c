/* scpkit card: the card's front end. Opens and creates cards, and puts the
 * secure-messaging layer (GPC Amd D 6.2) in front of the applications:
 * SELECT and INITIALIZE UPDATE are always taken plain and end any session;
 * inside a session every other command is unwrapped by the engine, and a
 * command that fails (plain, or bad MAC) ends the session with 6982, as on
 * a YubiKey (seed 002). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <stdlib.h>
#include "card/internal.h"
#include "card/scp11.h"
#include "core/guard.h"
#include "scpkit/buf.h"
#include "scpkit/crypto.h"
#include "scpkit/tlv.h"

#define CARD_RESP_MAX 1024
#define CARD_PLAIN_MAX (SCP_APDU_SHORT_MAX + 8)
#define CARD_INIT_WAIT_MS 10000

static int set_paths(scp_card *c, const char *dir)
{
    ENSURE(dir != NULL && strlen(dir) + sizeof(CARD_STATE_FILE) + 2 < sizeof(c->dir), SCP_E_ARG);
    snprintf(c->dir, sizeof(c->dir), "%s", dir);
    snprintf(c->path, sizeof(c->path), "%s/%s", dir, CARD_STATE_FILE);
    return SCP_OK;
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Take DIR/card.lock. One process drives a card at a time: two would fork
 * its state (a counter going back, a pseudo-random challenge repeated, a
 * key rotation undone). Taken before the state is read, so what is read is
 * what the last holder wrote. Waits up to wait_ms for a holder to let go. */
static int take_lock(const char *dir, unsigned wait_ms, int *fd_out, char *err, size_t err_size)
{
    char lock[4200];
    long until = now_ms() + (long)wait_ms;
    int fd;

    *fd_out = -1;
    snprintf(lock, sizeof(lock), "%s/%s", dir, CARD_LOCK_FILE);
    fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
    if (fd < 0) {
        if (err != NULL && err_size > 0)
            snprintf(err, err_size, "card %s: cannot open its lock file: %s", dir,
                     strerror(errno));
        return errno == ENOENT ? SCP_E_NOT_FOUND : SCP_E_IO;
    }
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if ((errno != EWOULDBLOCK && errno != EINTR) || now_ms() >= until) {
            close(fd);
            if (err != NULL && err_size > 0)
                snprintf(err, err_size,
                         "card %s: in use by another process (a `scpkit card run`?); "
                         "waited %u ms: stop it, or use `scpkit card show` to read the card",
                         dir, wait_ms);
            return wait_ms > 0 ? SCP_E_TIMEOUT : SCP_E_IO;
        }
        struct timespec ts = { 0, 5 * 1000000L };
        nanosleep(&ts, NULL);
    }
    *fd_out = fd;
    return SCP_OK;
}

int scp_card_init(const char *dir, const scp_card_init_opts *opts)
{
    scp_card *c = calloc(1, sizeof(*c)); /* large: not on the stack */
    struct stat sb;
    int rc;

    ENSURE(c != NULL, SCP_E_NOMEM);
    c->lock_fd = -1;
    GUARD_GOTO(set_paths(c, dir), out);
    GUARD_GOTO(card_state_new(&c->st, opts), out); /* options checked first */
    rc = SCP_E_IO;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        goto out;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        goto out;
    /* two `card init` on one directory: the second waits for the first,
     * then finds its card and leaves it alone */
    GUARD_GOTO(take_lock(c->dir, CARD_INIT_WAIT_MS, &c->lock_fd, NULL, 0), out);
    rc = SCP_E_ARG;
    if (lstat(c->path, &sb) == 0)
        goto out; /* never overwrite a card's keys */
    GUARD_GOTO(card_scp11_init(dir, opts), out); /* before card.state: it marks a done init */
    rc = card_state_save(c, &c->st);
out:
    if (c->lock_fd >= 0)
        close(c->lock_fd);
    scp_wipe(c, sizeof(*c));
    free(c);
    return rc;
}

static int card_open(const char *dir, scp_card **out, char *err, size_t err_size, int ro,
                     unsigned wait_ms)
{
    scp_card *c;
    int rc;

    ENSURE(out != NULL, SCP_E_ARG);
    *out = NULL;
    c = calloc(1, sizeof(*c));
    ENSURE(c != NULL, SCP_E_NOMEM);
    c->lock_fd = -1;
    GUARD_GOTO(set_paths(c, dir), fail);
    if (!ro)
        GUARD_GOTO(take_lock(c->dir, wait_ms, &c->lock_fd, err, err_size), fail);
    GUARD_GOTO(card_state_load(c->path, &c->st, err, err_size), fail);
    GUARD_GOTO(card_scp11_open(c, err, err_size), fail);
    c->selected = CARD_SEL_ISD;
    c->read_only = ro;
    *out = c;
    return SCP_OK;
fail:
    scp_card_close(c);
    return rc;
}

int scp_card_open(const char *dir, scp_card **out, char *err, size_t err_size)
{
    return card_open(dir, out, err, err_size, 0, 0);
}

int scp_card_open_wait(const char *dir, unsigned wait_ms, scp_card **out, char *err,
                       size_t err_size)
{
    return card_open(dir, out, err, err_size, 0, wait_ms);
}

int scp_card_open_readonly(const char *dir, scp_card **out, char *err, size_t err_size)
{
    return card_open(dir, out, err, err_size, 1, 0);
}

void card_end_session(scp_card *c)
{
    scp03_end(&c->sess);
    scp02_end(&c->sess02);
    scp_wipe(c->sess_dek, sizeof(c->sess_dek));
    c->sess_dek_len = 0;
    c->sess_app = CARD_SEL_NONE;
    c->sess_scp = 0;
}

void scp_card_close(scp_card *c)
{
    if (c == NULL)
        return;
    card_end_session(c);
    card_smapp_end(c);
    card_scp11_close(c);
    if (c->lock_fd >= 0)
        close(c->lock_fd);
    scp_wipe(c, sizeof(*c));
    free(c);
}

void scp_card_reset(scp_card *c)
{
    if (c == NULL)
        return;
    card_end_session(c);
    card_smapp_end(c);
    c->selected = CARD_SEL_ISD; /* GPC 9.1: the ISD is implicitly selected */
}

size_t scp_card_atr(const scp_card *c, uint8_t *out, size_t out_size)
{
    if (c == NULL || out == NULL || out_size < c->st.atr_len)
        return 0;
    memcpy(out, c->st.atr, c->st.atr_len);
    return c->st.atr_len;
}

void scp_card_set_trace(scp_card *c, FILE *f)
{
    if (c != NULL)
        c->trace = f;
}

int card_authenticated(const scp_card *c, uint8_t app)
{
    return card_session_open(c) && c->sess_app == app && c->selected == app;
}

int card_commit(scp_card *c, const card_state *next)
{
    GUARD(card_state_save(c, next));
    if (next != &c->st)
        c->st = *next;
    return SCP_OK;
}

/* ---- trace (PUT KEY data never written) ---- */

static void trace(scp_card *c, const char *tag, const uint8_t *p, size_t len, int is_cmd)
{
    size_t shown = len;
    if (c->trace == NULL)
        return;
    /* PUT KEY (INS D8): the header only, whatever the class */
    if (is_cmd && len > 5 && p[1] == 0xD8)
        shown = 5;
    fprintf(c->trace, "%s ", tag);
    for (size_t k = 0; k < shown; k++)
        fprintf(c->trace, "%02X", p[k]);
    if (shown < len)
        fprintf(c->trace, " <redacted>");
    fputc('\n', c->trace);
    fflush(c->trace);
}

/* ---- SELECT (ISO 7816-4 11.1.1, GPC 11.9) ---- */

static int aid_prefix(const uint8_t *aid, size_t aid_len, const scp_apdu *a)
{
    return a->lc <= aid_len && memcmp(aid, a->data, a->lc) == 0;
}

static int card_select(scp_card *c, const scp_apdu *a, card_resp *r)
{
    const uint8_t *aid;
    size_t aid_len;
    uint8_t sel;
    scp_wr w;
    scp_tlv_mark m6f, ma5;

    if (a->p1 != 0x04 || (a->p2 != 0x00 && a->p2 != 0x0C)) {
        card_sw(r, 0x6A86);
        return SCP_OK;
    }
    r->end_session = 1; /* GPC 10.6 / seed 002: selecting ends the session */
    card_smapp_end(c);  /* and the SM application's */
    if (a->lc == 0 || aid_prefix(c->st.aid, c->st.aid_len, a)) {
        sel = CARD_SEL_ISD;
        aid = c->st.aid;
        aid_len = c->st.aid_len;
    } else if (aid_prefix(card_store_aid, card_store_aid_len, a) && a->lc >= 5 &&
               c->st.app_lifecycle == CARD_APP_SELECTABLE &&
               c->st.lifecycle != CARD_LC_LOCKED) {
        sel = CARD_SEL_STORE;
        aid = card_store_aid;
        aid_len = card_store_aid_len;
    } else if (aid_prefix(card_smapp_aid, card_smapp_aid_len, a) && a->lc >= 5 &&
               c->st.lifecycle != CARD_LC_LOCKED) {
        sel = CARD_SEL_SMAPP;
        aid = card_smapp_aid;
        aid_len = card_smapp_aid_len;
    } else {
        card_sw(r, 0x6A82);
        return SCP_OK;
    }
    c->selected = sel;
    card_sw(r, 0x9000);
    if (a->p2 == 0x0C)
        return SCP_OK;
    /* FCI: 6F { 84 AID, A5 { 9F65 01 FF (max command length) } } */
    scp_wr_init(&w, r->data, r->cap);
    m6f = scp_tlv_begin(&w, 0x6F);
    scp_tlv_put(&w, 0x84, aid, aid_len);
    ma5 = scp_tlv_begin(&w, 0xA5);
    scp_tlv_put(&w, 0x9F65, (const uint8_t *)"\xFF", 1);
    scp_tlv_end(&w, ma5);
    scp_tlv_end(&w, m6f);
    return scp_wr_done(&w, &r->len);
}

/* ---- class byte (ISO 7816-4 5.4.1) ---- */

static uint16_t check_cla(uint8_t cla)
{
    uint8_t base = cla & 0xE0;
    if (cla == 0xFF || (base != 0x00 && base != 0x80))
        return 0x6E00;
    if (cla & 0x10)
        return 0x6884; /* command chaining not supported */
    if (cla & 0x03)
        return 0x6881; /* logical channels not supported */
    return 0x9000;
}

static int dispatch(scp_card *c, const scp_apdu *a, card_resp *r)
{
    if (a->ins == 0xA4)
        return card_select(c, a, r);
    if (a->ins == 0x50 || a->ins == 0x82) {
        card_sw(r, 0x6985); /* a handshake inside a session */
        return SCP_OK;
    }
    if (c->selected == CARD_SEL_ISD)
        return card_isd_command(c, a, r);
    if (c->selected == CARD_SEL_STORE)
        return card_store_command(c, a, r);
    card_sw(r, 0x6A82);
    return SCP_OK;
}

static int emit(scp_card *c, const card_resp *r, uint8_t *out, size_t out_size, size_t *out_len)
{
    ENSURE(out_size >= r->len + 2, SCP_E_BUFFER_TOO_SMALL);
    if (r->len > 0)
        memcpy(out, r->data, r->len);
    out[r->len] = (uint8_t)(r->sw >> 8);
    out[r->len + 1] = (uint8_t)r->sw;
    *out_len = r->len + 2;
    if (r->end_session)
        card_end_session(c);
    return SCP_OK;
}

/* A command inside an open session: unwrap, run, wrap. */
static int in_session(scp_card *c, const uint8_t *capdu, size_t len, card_resp *r,
                      uint8_t *out, size_t out_size, size_t *out_len)
{
    uint8_t plain[CARD_PLAIN_MAX];
    size_t plen = 0;
    scp_apdu a;
    int rc;

    if (card_sm_unwrap(c, capdu, len, plain, sizeof(plain), &plen) != SCP_OK ||
        scp_apdu_parse(plain, plen, &a) != SCP_OK) {
        /* plain command or bad MAC: the session is over (seed 002) */
        scp_wipe(plain, sizeof(plain));
        card_end_session(c);
        card_sw(r, 0x6982);
        return emit(c, r, out, out_size, out_len);
    }
    trace(c, "C(plain):", plain, plen, 1);
    rc = dispatch(c, &a, r);
    scp_wipe(plain, sizeof(plain));
    if (rc < 0) {
        card_end_session(c);
        return rc;
    }
    trace(c, "R(plain):", r->data, r->len, 0);
    rc = card_sm_wrap(c, r->data, r->len, r->sw, out, out_size, out_len);
    if (rc != SCP_OK) {
        card_end_session(c);
        return rc;
    }
    if (r->end_session)
        card_end_session(c);
    return SCP_OK;
}

static int process(scp_card *c, const uint8_t *capdu, size_t len, card_resp *r, uint8_t *out,
                   size_t out_size, size_t *out_len)
{
    scp_apdu a;
    uint16_t sw;

    if (scp_apdu_parse(capdu, len, &a) != SCP_OK) {
        card_sw(r, 0x6700);
        return emit(c, r, out, out_size, out_len);
    }
    if (c->st.lifecycle != CARD_LC_TERMINATED) {
        /* SCP11's plain handshake commands (PSO with chaining included) */
        int h = card_scp11_hook(c, &a, capdu, len, r);
        if (h < 0)
            return h;
        if (h > 0)
            return emit(c, r, out, out_size, out_len);
    }
    sw = check_cla(a.cla);
    if (sw != 0x9000) {
        card_sw(r, sw);
        return emit(c, r, out, out_size, out_len);
    }
    if (c->st.lifecycle == CARD_LC_TERMINATED) {
        /* GPC 5.1.1.5: a terminated card only answers GET DATA */
        card_end_session(c);
        if ((a.ins == 0xCA || a.ins == 0xCB) && !(a.cla & 0x04))
            GUARD(card_get_data_common(c, &a, r));
        else
            card_sw(r, a.ins == 0xA4 ? 0x6A82 : 0x6985);
        return emit(c, r, out, out_size, out_len);
    }
    if (c->selected == CARD_SEL_SMAPP && !(a.ins == 0xA4 && a.p1 == 0x04 && !(a.cla & 0x0C))) {
        /* the ISO SM application takes every command but SELECT by AID */
        GUARD(card_smapp_command(c, capdu, len, &a, r));
        return emit(c, r, out, out_size, out_len);
    }
    if (a.ins == 0x82 && c->sess02.state == SCP02_IU_DONE) {
        GUARD(card_scp02_external_authenticate(c, capdu, len, &a, r));
        return emit(c, r, out, out_size, out_len);
    }
    if (a.ins == 0x82 && c->sess.state == SCP03_IU_DONE) {
        GUARD(card_external_authenticate(c, capdu, len, &a, r));
        return emit(c, r, out, out_size, out_len);
    }
    if (!(a.cla & 0x04) && (a.ins == 0xA4 || a.ins == 0x50)) {
        card_end_session(c);
        if (a.ins == 0xA4)
            GUARD(card_select(c, &a, r));
        else
            GUARD(card_is_scp02(c) ? card_scp02_initialize_update(c, &a, r)
                                   : card_isd_initialize_update(c, &a, r));
        r->end_session = 0;
        return emit(c, r, out, out_size, out_len);
    }
    if (card_session_open(c))
        return in_session(c, capdu, len, r, out, out_size, out_len);
    card_end_session(c); /* an unfinished handshake ends with any other command */
    if (a.cla & 0x04) {
        /* secure messaging without a session (EXTERNAL AUTHENTICATE out of
         * sequence included): GPC 11.11.3 */
        card_sw(r, a.ins == 0x82 ? 0x6985 : 0x6982);
        return emit(c, r, out, out_size, out_len);
    }
    GUARD(dispatch(c, &a, r));
    return emit(c, r, out, out_size, out_len);
}

int scp_card_process(scp_card *c, const uint8_t *capdu, size_t len, uint8_t *rapdu,
                     size_t rapdu_size, size_t *rapdu_len)
{
    uint8_t data[CARD_RESP_MAX];
    card_resp r = { data, sizeof(data), 0, 0x9000, 0 };
    int rc;

    ENSURE(c != NULL && (capdu != NULL || len == 0) && rapdu != NULL && rapdu_len != NULL,
           SCP_E_ARG);
    ENSURE(rapdu_size >= 2, SCP_E_BUFFER_TOO_SMALL);
    trace(c, "C:", capdu, len, 1);
    rc = process(c, capdu, len, &r, rapdu, rapdu_size, rapdu_len);
    scp_wipe(data, sizeof(data));
    if (rc == SCP_OK)
        trace(c, "R:", rapdu, *rapdu_len, 0);
    else if (c->trace != NULL)
        fprintf(c->trace, "E: %s\n", scp_strerror(rc));
    return rc;
}
