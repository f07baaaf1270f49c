/* Host and card engines against each other in one process (see test.h). */
#include <string.h>
#include "scpkit/apdu.h"
#include "test.h"

int test_pair_iu(scp03_session *h, scp03_session *c, const scp03_keys *hk,
                 const scp03_keys *ck, const scp03_card_params *prm, const uint8_t *host_chal)
{
    size_t chal = (prm->i & SCP03_I_S16) ? 16 : 8, n = 0, rl = 0;
    uint8_t cmd[64], resp[SCP03_IU_RESP_MAX];
    scp_apdu a;
    int rc;

    if ((rc = scp03_host_begin(h, hk, host_chal, chal)) != SCP_OK ||
        (rc = scp03_host_initialize_update(h, 0x00, cmd, sizeof(cmd), &n)) != SCP_OK ||
        (rc = scp_apdu_parse(cmd, n, &a)) != SCP_OK)
        return rc;
    /* GPC Amd D 7.1.1: 80 50 KVN 00 Lc=challenge */
    if (a.cla != 0x80 || a.ins != 0x50 || a.p1 != hk->kvn || a.p2 != 0x00 || a.lc != chal)
        return SCP_E_FORMAT;
    if ((rc = scp03_card_initialize_update(c, prm, ck, a.data, a.lc, resp, sizeof(resp), &rl)) !=
        SCP_OK)
        return rc;
    return scp03_host_iu_response(h, resp, rl);
}

int test_pair_open(scp03_session *h, scp03_session *c, const scp03_keys *hk,
                   const scp03_keys *ck, const scp03_card_params *prm, const uint8_t *host_chal,
                   uint8_t level)
{
    uint8_t cmd[64];
    size_t n = 0;
    int rc;

    if ((rc = test_pair_iu(h, c, hk, ck, prm, host_chal)) != SCP_OK ||
        (rc = scp03_host_external_authenticate(h, level, cmd, sizeof(cmd), &n)) != SCP_OK ||
        (rc = scp03_card_external_authenticate(c, cmd, n)) != SCP_OK)
        return rc;
    return scp03_host_ea_result(h, 0x9000);
}
