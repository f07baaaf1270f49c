/* scpkit card: the in-process transport onto a card (the embedded
 * default: no reader, no daemon) and the summary `scpkit card show`
 * prints (never a key byte). */
#include <stdio.h>
#include <string.h>
#include "card/internal.h"
#include "core/guard.h"

/* ---- in-process transport ---- */

static int card_transmit(void *ctx, const uint8_t *capdu, size_t len, uint8_t *rapdu,
                         size_t rapdu_size, size_t *rapdu_len)
{
    return scp_card_process((scp_card *)ctx, capdu, len, rapdu, rapdu_size, rapdu_len);
}

static void card_tclose(void *ctx) { scp_card_reset((scp_card *)ctx); }

void scp_card_transport(scp_card *c, scp_transport *t)
{
    memset(t, 0, sizeof(*t));
    t->transmit = card_transmit;
    t->close = card_tclose;
    t->ctx = c;
    t->name = c != NULL ? c->dir : "card";
}

/* ---- summary for `scpkit card show` ---- */

static const char *lc_name(uint8_t lc)
{
    switch (lc) {
    case CARD_LC_OP_READY: return "OP_READY";
    case CARD_LC_INITIALIZED: return "INITIALIZED";
    case CARD_LC_SECURED: return "SECURED";
    case CARD_LC_LOCKED: return "CARD_LOCKED";
    case CARD_LC_TERMINATED: return "TERMINATED";
    default: return "?";
    }
}

int scp_card_describe(const scp_card *c, char *out, size_t out_size)
{
    const card_state *s;
    size_t n = 0;
    int k;

    ENSURE(c != NULL && out != NULL && out_size > 0, SCP_E_ARG);
    s = &c->st;
#define ADD(...)                                                                                   \
    do {                                                                                           \
        k = snprintf(out + n, out_size - n, __VA_ARGS__);                                          \
        ENSURE(k >= 0 && (size_t)k < out_size - n, SCP_E_BUFFER_TOO_SMALL);                       \
        n += (size_t)k;                                                                            \
    } while (0)
    ADD("state      %s\n", c->path);
    ADD("profile    %s\n", card_profile_of(s)->name);
    ADD("i          %02X%s\n", s->i, s->min_level ? " (level 33 only)" : "");
    ADD("lifecycle  %02X %s\n", s->lifecycle, lc_name(s->lifecycle));
    ADD("seq        %06X\n", (unsigned)s->seq);
    ADD("sd aid     ");
    for (int j = 0; j < s->aid_len; j++)
        ADD("%02X", s->aid[j]);
    ADD("\nkdd        ");
    for (int j = 0; j < SCP03_KDD_LEN; j++)
        ADD("%02X", s->kdd[j]);
    ADD("\ncin        "); /* GET DATA 45: how a PC/SC test knows its card */
    for (int j = 0; j < s->cin_len; j++)
        ADD("%02X", s->cin[j]);
    ADD("\nkey sets   %u of %u, retry limit %u\n", s->nsets, s->keyset_limit, s->retry_limit);
    for (int j = 0; j < s->nsets; j++)
        ADD("  kvn %02X  AES-%u  failures %u%s\n", s->sets[j].kvn, s->sets[j].key_len * 8u,
            s->sets[j].fails, s->sets[j].factory ? "  (factory)" : "");
    ADD("objects    %u in the store application\n", s->nobj);
#undef ADD
    return SCP_OK;
}
