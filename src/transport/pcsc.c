/* PC/SC transport on pcsc-lite: list readers, connect by exact name, index
 * or unique substring, and transmit with the protocol the card chose. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scpkit/transport.h"
#include "core/guard.h"

#if defined(SCP_HAVE_PCSC)
#include <winscard.h>

#define SCP_PCSC_READERS_MAX 16

typedef struct pcsc_conn {
    SCARDCONTEXT ctx;
    SCARDHANDLE card;
    DWORD proto;
    char name[256];
} pcsc_conn;

/* A short, readable reason for a failed pcsc-lite call. */
static const char *last_error = "";
const char *scp_pcsc_last_error(void) { return last_error; }
static int fail(const char *msg, int rc)
{
    last_error = msg;
    return rc;
}

/* Truncating copy of a reader name (pcsc-lite names fit 128 bytes). */
static void copy_name(char *dst, size_t dst_size, const char *src)
{
    size_t n = strnlen(src, dst_size - 1);
    memcpy(dst, src, n);
    dst[n] = 0;
}

/* Append src to the NUL-terminated dst, truncating. */
static void append(char *dst, size_t dst_size, const char *src)
{
    size_t used = strnlen(dst, dst_size - 1);
    copy_name(dst + used, dst_size - used, src);
}

static int list_names(SCARDCONTEXT ctx, char *buf, DWORD *size)
{
    LONG r = SCardListReaders(ctx, NULL, buf, size);
    if (r == SCARD_E_NO_READERS_AVAILABLE || (r == SCARD_S_SUCCESS && *size <= 1))
        return fail("no reader", SCP_E_NOT_FOUND);
    if (r != SCARD_S_SUCCESS)
        return fail(pcsc_stringify_error(r), SCP_E_IO);
    return SCP_OK;
}

static int card_present(SCARDCONTEXT ctx, const char *name)
{
    SCARD_READERSTATE st;
    memset(&st, 0, sizeof(st));
    st.szReader = name;
    st.dwCurrentState = SCARD_STATE_UNAWARE;
    if (SCardGetStatusChange(ctx, 0, &st, 1) != SCARD_S_SUCCESS)
        return 0;
    return (st.dwEventState & SCARD_STATE_PRESENT) != 0;
}

static int establish(SCARDCONTEXT *ctx)
{
    LONG r = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, ctx);
    if (r != SCARD_S_SUCCESS)
        return fail("cannot reach pcscd (is it running?)", SCP_E_IO);
    return SCP_OK;
}

int scp_pcsc_list(scp_pcsc_reader *out, size_t max, size_t *n)
{
    SCARDCONTEXT ctx;
    char buf[4096];
    DWORD size = sizeof(buf);
    int rc;

    ENSURE(out && n, SCP_E_ARG);
    *n = 0;
    GUARD(establish(&ctx));
    rc = list_names(ctx, buf, &size);
    if (rc == SCP_E_NOT_FOUND)
        rc = SCP_OK; /* an empty list is an answer */
    else if (rc == SCP_OK) /* multi-string: names separated by NUL, ended by two */
        for (const char *p = buf; *p && p < buf + size && *n < max; p += strlen(p) + 1) {
            copy_name(out[*n].name, sizeof(out[*n].name), p);
            out[*n].card_present = card_present(ctx, p);
            (*n)++;
        }
    SCardReleaseContext(ctx);
    return rc;
}

/* Exact name, then index, then a unique substring. */
static int pick(const char *want, const char *buf, DWORD size, char *name, size_t name_size)
{
    static char msg[1024];
    const char *hit = NULL;
    size_t idx = 0, hits = 0, want_idx = 0;
    char *end = NULL;
    int is_index = want[0] != 0 && (want_idx = strtoul(want, &end, 10), *end == 0);

    for (const char *p = buf; *p && p < buf + size; p += strlen(p) + 1, idx++) {
        if (strcmp(p, want) == 0 || (is_index && idx == want_idx)) {
            copy_name(name, name_size, p);
            return SCP_OK;
        }
    }
    snprintf(msg, sizeof(msg), "reader name ambiguous: \"%s\" matches", want);
    for (const char *p = buf; *p && p < buf + size; p += strlen(p) + 1)
        if (strstr(p, want)) {
            hits++;
            hit = p;
            append(msg, sizeof(msg), " \"");
            append(msg, sizeof(msg), p);
            append(msg, sizeof(msg), "\"");
        }
    if (hits == 1) {
        copy_name(name, name_size, hit);
        return SCP_OK;
    }
    if (hits > 1)
        return fail(msg, SCP_E_ARG);
    snprintf(msg, sizeof(msg), "no reader matches \"%s\" (see: scpkit readers)", want);
    return fail(msg, SCP_E_NOT_FOUND);
}

static int pcsc_transmit(void *vctx, const uint8_t *capdu, size_t len, uint8_t *rapdu,
                         size_t rapdu_size, size_t *rapdu_len)
{
    pcsc_conn *c = vctx;
    const SCARD_IO_REQUEST *pci = c->proto == SCARD_PROTOCOL_T0 ? SCARD_PCI_T0 : SCARD_PCI_T1;
    DWORD rl = (DWORD)(rapdu_size > 65538 ? 65538 : rapdu_size);
    LONG r = SCardTransmit(c->card, pci, capdu, (DWORD)len, NULL, rapdu, &rl);
    if (r != SCARD_S_SUCCESS)
        return fail(pcsc_stringify_error(r), SCP_E_IO);
    *rapdu_len = rl;
    return SCP_OK;
}

static void pcsc_close(void *vctx)
{
    pcsc_conn *c = vctx;
    if (!c)
        return;
    SCardEndTransaction(c->card, SCARD_LEAVE_CARD);
    SCardDisconnect(c->card, SCARD_RESET_CARD); /* ends any open session */
    SCardReleaseContext(c->ctx);
    free(c);
}

/* A card that was just reset by the previous client (we disconnect with
 * SCARD_RESET_CARD so no session outlives us) can look absent for a
 * moment: wait for it, bounded (2 s), before saying "no card". */
static LONG connect_card(pcsc_conn *c)
{
    LONG r = SCARD_S_SUCCESS;
    for (int i = 0; i < 20; i++) {
        SCARD_READERSTATE st;
        r = SCardConnect(c->ctx, c->name, SCARD_SHARE_SHARED,
                         SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, &c->card, &c->proto);
        if (r != (LONG)SCARD_E_NO_SMARTCARD && r != (LONG)SCARD_W_REMOVED_CARD &&
            r != (LONG)SCARD_W_RESET_CARD && r != (LONG)SCARD_W_UNPOWERED_CARD)
            return r;
        memset(&st, 0, sizeof(st));
        st.szReader = c->name;
        st.dwCurrentState = SCARD_STATE_EMPTY;
        (void)SCardGetStatusChange(c->ctx, 100, &st, 1); /* up to 100 ms */
    }
    return r;
}

int scp_pcsc_open(const char *reader, scp_transport *t)
{
    static char msg[512];
    char buf[4096];
    DWORD size = sizeof(buf);
    pcsc_conn *c;
    LONG r;
    int rc;

    ENSURE(reader && t, SCP_E_ARG);
    c = calloc(1, sizeof(*c));
    ENSURE(c, SCP_E_NOMEM);
    GUARD_GOTO(establish(&c->ctx), out_free);
    GUARD_GOTO(list_names(c->ctx, buf, &size), out_ctx);
    GUARD_GOTO(pick(reader, buf, size, c->name, sizeof(c->name)), out_ctx);
    r = connect_card(c);
    if (r != SCARD_S_SUCCESS) {
        snprintf(msg, sizeof(msg), "%s in reader \"%s\"",
                 r == (LONG)SCARD_E_NO_SMARTCARD || r == (LONG)SCARD_W_REMOVED_CARD
                     ? "no card"
                     : pcsc_stringify_error(r),
                 c->name);
        rc = fail(msg, SCP_E_NOT_FOUND);
        goto out_ctx;
    }
    /* Hold the card for the whole connection: no other PC/SC client can
     * slip a SELECT or a command between ours and end the session. */
    r = SCardBeginTransaction(c->card);
    if (r != SCARD_S_SUCCESS) {
        snprintf(msg, sizeof(msg), "reader \"%s\": %s", c->name, pcsc_stringify_error(r));
        SCardDisconnect(c->card, SCARD_LEAVE_CARD);
        rc = fail(msg, SCP_E_IO);
        goto out_ctx;
    }
    memset(t, 0, sizeof(*t));
    t->transmit = pcsc_transmit;
    t->close = pcsc_close;
    t->ctx = c;
    t->name = c->name;
    return SCP_OK;
out_ctx:
    SCardReleaseContext(c->ctx);
out_free:
    free(c);
    return rc;
}

#else /* built without pcsc-lite */

static const char *last_error = "built without PC/SC support";
const char *scp_pcsc_last_error(void) { return last_error; }
int scp_pcsc_list(scp_pcsc_reader *out, size_t max, size_t *n)
{
    (void)out, (void)max;
    if (n)
        *n = 0;
    return SCP_E_UNSUPPORTED;
}
int scp_pcsc_open(const char *reader, scp_transport *t)
{
    (void)reader, (void)t;
    return SCP_E_UNSUPPORTED;
}
#endif
