/* Host and card engines against each other in one process (see test.h). */
#include <string.h>
#include "scpkit/apdu.h"
#include "test.h"

/* What one handshake call needs, beside the buffer it writes. */
typedef struct pair_run {
    scp03_session *h, *c;
    const scp03_keys *ck;
    const scp03_card_params *prm;
    const scp_apdu *iu;
    uint8_t level;
    unsigned ea_flags;
} pair_run;

static int call_step(void *arg, int step, uint8_t *out, size_t out_size, size_t *out_len)
{
    pair_run *r = arg;
    switch (step) {
    case TEST_STEP_HOST_IU:
        return scp03_host_initialize_update(r->h, 0x00, out, out_size, out_len);
    case TEST_STEP_CARD_IU:
        return scp03_card_initialize_update(r->c, r->prm, r->ck, r->iu->data, r->iu->lc, out,
                                            out_size, out_len);
    default:
        return scp03_host_external_authenticate_ex(r->h, r->level, r->ea_flags, out, out_size,
                                                   out_len);
    }
}

/* One call: through the test's driver when there is one. */
static int step(const test_pair_opts *o, pair_run *r, int st, uint8_t *out, size_t out_size,
                size_t *out_len)
{
    if (o != NULL && o->drive != NULL)
        return o->drive(o->drive_ctx, st, st == TEST_STEP_CARD_IU ? r->c : r->h, call_step, r,
                        out, out_size, out_len);
    return call_step(r, st, out, out_size, out_len);
}

static int pair_iu(pair_run *r, const scp03_keys *hk, const uint8_t *host_chal,
                   const test_pair_opts *o)
{
    size_t chal = (r->prm->i & SCP03_I_S16) ? 16 : 8, n = 0, rl = 0;
    uint8_t cmd[64], resp[SCP03_IU_RESP_MAX];
    scp_apdu a;
    int rc;

    if ((rc = scp03_host_begin(r->h, hk, host_chal, chal)) != SCP_OK ||
        (rc = step(o, r, TEST_STEP_HOST_IU, cmd, sizeof(cmd), &n)) != SCP_OK ||
        (rc = scp_apdu_parse(cmd, n, &a)) != SCP_OK)
        return rc;
    /* GPC Amd D 7.1.1: 80 50 KVN 00 Lc=challenge */
    if (a.cla != 0x80 || a.ins != 0x50 || a.p1 != hk->kvn || a.p2 != 0x00 || a.lc != chal)
        return SCP_E_FORMAT;
    r->iu = &a;
    rc = step(o, r, TEST_STEP_CARD_IU, resp, sizeof(resp), &rl);
    r->iu = NULL;
    if (rc != SCP_OK)
        return rc;
    return scp03_host_iu_response(r->h, resp, rl);
}

int test_pair_iu(scp03_session *h, scp03_session *c, const scp03_keys *hk,
                 const scp03_keys *ck, const scp03_card_params *prm, const uint8_t *host_chal)
{
    pair_run r = { .h = h, .c = c, .ck = ck, .prm = prm };
    return pair_iu(&r, hk, host_chal, NULL);
}

int test_pair_open_ex(scp03_session *h, scp03_session *c, const scp03_keys *hk,
                      const scp03_keys *ck, const scp03_card_params *prm,
                      const uint8_t *host_chal, uint8_t level, const test_pair_opts *o)
{
    pair_run r = { .h = h, .c = c, .ck = ck, .prm = prm, .level = level };
    uint8_t cmd[64];
    size_t n = 0;
    int rc;

    r.ea_flags = o != NULL ? o->ea_flags : 0;
    if ((rc = pair_iu(&r, hk, host_chal, o)) != SCP_OK ||
        (rc = step(o, &r, TEST_STEP_HOST_EA, cmd, sizeof(cmd), &n)) != SCP_OK ||
        (rc = scp03_card_external_authenticate(c, cmd, n)) != SCP_OK)
        return rc;
    return scp03_host_ea_result(h, 0x9000);
}

int test_pair_open(scp03_session *h, scp03_session *c, const scp03_keys *hk,
                   const scp03_keys *ck, const scp03_card_params *prm, const uint8_t *host_chal,
                   uint8_t level)
{
    return test_pair_open_ex(h, c, hk, ck, prm, host_chal, level, NULL);
}
