/* Card recognition data, GPC v2.3 Annex H.2 (GET DATA tag 0066):
 *   66 { 73 { 06 <1.2.840.114283.1>
 *             60 { 06 <1.2.840.114283.2.v1.v2.v3> }   GP version
 *             64 { 06 <1.2.840.114283.4.scp.i> } ... } } secure channels
 * Read before any authentication so the host can pick S8/S16 and the
 * strongest level without guessing. */
#include <stdio.h>
#include <string.h>

#include "scpkit/channel.h"
#include "scpkit/tlv.h"
#include "core/guard.h"

/* 1.2.840.114283 = 2A 86 48 86 FC 6B */
static const uint8_t gp_oid[] = { 0x2A, 0x86, 0x48, 0x86, 0xFC, 0x6B };

/* The arcs after 1.2.840.114283.<arc> inside an OID TLV; NULL when the
 * value is not such an OID. Arcs above 127 are not used here. */
static const uint8_t *gp_arcs(const scp_tlv *t, uint8_t arc, size_t *n)
{
    scp_tlv oid;
    scp_rd r;
    scp_rd_init(&r, t->val, t->len);
    if (scp_tlv_next(&r, &oid) != 1 || oid.tag != 0x06 || oid.len < sizeof(gp_oid) + 1)
        return NULL;
    if (!scp_ct_eq(oid.val, gp_oid, sizeof(gp_oid)) || oid.val[sizeof(gp_oid)] != arc)
        return NULL;
    *n = oid.len - sizeof(gp_oid) - 1;
    return oid.val + sizeof(gp_oid) + 1;
}

static void put_version(scp_recog *out, const uint8_t *v, size_t n)
{
    size_t used = 0;
    for (size_t k = 0; k < n && k < 4 && used < sizeof(out->gp_version); k++) {
        int w = snprintf(out->gp_version + used, sizeof(out->gp_version) - used, "%s%u",
                         k ? "." : "", v[k]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

int scp_recog_parse(const uint8_t *p, size_t len, scp_recog *out)
{
    scp_tlv t, body;
    scp_rd r;
    const uint8_t *arcs;
    size_t n;
    int rc;

    ENSURE(p && out, SCP_E_ARG);
    memset(out, 0, sizeof(*out));
    GUARD(rc = scp_tlv_find(p, len, 0x66, &t));
    if (rc == 1) { /* some cards answer without the 66 wrapper */
        p = t.val;
        len = t.len;
    }
    GUARD(rc = scp_tlv_find(p, len, 0x73, &body));
    ENSURE(rc == 1, SCP_E_FORMAT);
    scp_rd_init(&r, body.val, body.len);
    while ((rc = scp_tlv_next(&r, &t)) == 1) {
        if (t.tag == 0x60 && (arcs = gp_arcs(&t, 2, &n)) != NULL)
            put_version(out, arcs, n);
        else if (t.tag == 0x64 && (arcs = gp_arcs(&t, 4, &n)) != NULL && n >= 2 &&
                 out->n_scp < SCP_RECOG_SCP_MAX) {
            out->scp[out->n_scp].id = arcs[0];
            out->scp[out->n_scp].i = arcs[1];
            out->n_scp++;
        }
    }
    return rc < 0 ? rc : SCP_OK;
}

int scp_recog_scp03(const scp_recog *r, uint8_t *i)
{
    for (size_t k = 0; k < r->n_scp; k++)
        if (r->scp[k].id == 0x03) {
            *i = r->scp[k].i;
            return 1;
        }
    return 0;
}

int scp_recog_get(scp_transport *t, scp_recog *out, uint16_t *sw)
{
    static const uint8_t cmd[] = { 0x80, 0xCA, 0x00, 0x66, 0x00 }; /* GPC 11.3 GET DATA */
    uint8_t resp[512];
    size_t rl;

    ENSURE(t && out && sw, SCP_E_ARG);
    GUARD(scp_transmit(t, cmd, sizeof(cmd), resp, sizeof(resp), &rl));
    *sw = (uint16_t)(resp[rl - 2] << 8 | resp[rl - 1]);
    ENSURE(*sw == 0x9000, SCP_E_SW);
    return scp_recog_parse(resp, rl - 2, out);
}

uint8_t scp_level_strongest(uint8_t i)
{
    if (scp03_level_allowed(i, 0x33))
        return 0x33;
    if (scp03_level_allowed(i, 0x13))
        return 0x13;
    return 0x03;
}

int scp_level_parse(const char *s, uint8_t *level)
{
    static const struct {
        const char *name;
        uint8_t level;
    } names[] = { { "mac", 0x01 },          { "mac+enc", 0x03 }, { "mac+rmac", 0x11 },
                  { "mac+enc+rmac", 0x13 }, { "all", 0x33 } };
    uint8_t v;
    size_t n;

    ENSURE(s && level, SCP_E_ARG);
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
        if (strcmp(s, names[k].name) == 0) {
            *level = names[k].level;
            return SCP_OK;
        }
    ENSURE(scp_hex_decode(s, &v, 1, &n) == SCP_OK && n == 1, SCP_E_ARG);
    ENSURE(scp03_level_valid(v) && v != 0, SCP_E_LEVEL);
    *level = v;
    return SCP_OK;
}
