/* SCP02 host against card (src/scp02/) over random keys, i parameters,
 * levels, challenges, counters and commands; each session ends with a
 * tampered twin (a command or a response one bit off, which must end it).
 * PUT KEY of DES and AES keys through the session DEK, with a wrong-KCV
 * twin. Usage: test_scp02_property [seed [sessions]]. */
#include <stdlib.h>

#include "scpkit/apdu.h"
#include "scpkit/crypto.h"
#include "scpkit/scp02.h"
#include "test.h"

static const uint8_t I_VALUES[] = { 0x05, 0x15, 0x55, 0x45, 0x17, 0x57, 0x04, 0x35 };
static const uint8_t LEVELS[] = { 0x00, 0x01, 0x03, 0x11, 0x13 };
static const uint8_t AID[] = { 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00 };

static int open_pair(scp02_session *h, scp02_session *c, const scp02_keys *k, uint8_t i,
                     uint8_t level, uint16_t seq)
{
    scp02_card_params prm = { 0 };
    uint8_t buf[64], resp[64];
    size_t n, rn;
    scp_apdu a;
    prm.i = i;
    prm.seq = seq;
    prm.aid = AID;
    prm.aid_len = sizeof(AID);
    test_rand_bytes(prm.kdd, sizeof(prm.kdd));
    CHECK_OK(scp02_host_begin(h, k, i, NULL));
    CHECK_OK(scp02_host_initialize_update(h, 0x80, buf, sizeof(buf), &n));
    CHECK_OK(scp_apdu_parse(buf, n, &a));
    CHECK(a.lc == 8 && a.p1 == k->kvn);
    CHECK_OK(scp02_card_initialize_update(c, &prm, k, a.data, a.lc, resp, sizeof(resp), &rn));
    CHECK_OK(scp02_host_iu_response(h, resp, rn, AID, sizeof(AID)));
    CHECK_OK(scp02_host_external_authenticate(h, level, buf, sizeof(buf), &n));
    CHECK_OK(scp02_card_external_authenticate(c, buf, n));
    CHECK_OK(scp02_host_ea_result(h, 0x9000));
    return scp02_is_open(h) && scp02_is_open(c);
}

static void one_session(void)
{
    static uint8_t cmd[300], prot[300], back[300], resp[300];
    scp02_session h = { 0 }, c = { 0 };
    scp02_keys k;
    uint8_t i = I_VALUES[test_rand_below(sizeof(I_VALUES))];
    uint8_t level = LEVELS[test_rand_below(sizeof(LEVELS))];
    int ncmd = 1 + (int)test_rand_below(6), tamper_cmd = (int)test_rand_below(2);
    size_t n, m;

    test_rand_bytes(k.enc, 16);
    test_rand_bytes(k.mac, 16);
    test_rand_bytes(k.dek, 16);
    k.kvn = (uint8_t)(1 + test_rand_below(0x7F));
    if (!open_pair(&h, &c, &k, i, level, (uint16_t)test_rand()))
        return;
    for (int j = 0; j < ncmd; j++) {
        scp_apdu a = { 0 };
        uint8_t data[255];
        size_t dl = test_rand_below(3) == 0 ? 0 : test_rand_below(240);
        int last = j == ncmd - 1;
        test_rand_bytes(data, dl);
        a.cla = (uint8_t)(test_rand_below(2) ? 0x80 : 0x00);
        a.ins = (uint8_t)test_rand_below(256);
        a.p1 = (uint8_t)test_rand();
        a.p2 = (uint8_t)test_rand();
        a.lc = dl;
        a.data = dl ? data : NULL;
        if (test_rand_below(2)) {
            a.has_le = 1;
            a.le = 1 + test_rand_below(256);
        }
        CHECK_OK(scp_apdu_encode(&a, cmd, sizeof(cmd), &n));
        CHECK_OK(scp02_host_wrap(&h, cmd, n, prot, sizeof(prot), &m));
        if (last && level != 0 && tamper_cmd) {
            prot[5 + test_rand_below(prot[4])] ^= (uint8_t)(1u << test_rand_below(8));
            int rc = scp02_card_unwrap(&c, prot, m, back, sizeof(back), &n);
            CHECK(rc == SCP_E_MAC || rc == SCP_E_PADDING);
            CHECK(!scp02_is_open(&c));
            break;
        }
        CHECK_OK(scp02_card_unwrap(&c, prot, m, back, sizeof(back), &n));
        CHECK_MEM(back, n, cmd, n);
        size_t rl = test_rand_below(3) == 0 ? 0 : test_rand_below(240);
        uint16_t sw = test_rand_below(2) ? 0x9000 : (uint16_t)(0x6100 + test_rand_below(0xB00));
        test_rand_bytes(resp, rl);
        CHECK_OK(scp02_card_wrap(&c, resp, rl, sw, prot, sizeof(prot), &m));
        if (last && (level & 0x10) && !tamper_cmd) {
            prot[test_rand_below(m)] ^= (uint8_t)(1u << test_rand_below(8));
            CHECK_RC(scp02_host_unwrap(&h, prot, m, back, sizeof(back), &n), SCP_E_MAC);
            CHECK(!scp02_is_open(&h));
            break;
        }
        CHECK_OK(scp02_host_unwrap(&h, prot, m, back, sizeof(back), &n));
        CHECK(n == rl + 2 && memcmp(back, resp, rl) == 0);
        CHECK(back[rl] == (uint8_t)(sw >> 8) && back[rl + 1] == (uint8_t)sw);
    }
    scp02_end(&h);
    scp02_end(&c);
}

static void putkey(void)
{
    scp02_session h = { 0 }, c = { 0 };
    scp02_keys k;
    uint8_t ne[16], nm[16], nd[16], data[SCP02_PUTKEY_MAX], e[16], m[16], d[16], kvn, type;
    size_t n;
    static const uint8_t types[] = { SCP02_PUTKEY_DES, SCP02_PUTKEY_AES };
    for (int t = 0; t < 2; t++) {
        test_rand_bytes(k.enc, 16);
        test_rand_bytes(k.mac, 16);
        test_rand_bytes(k.dek, 16);
        k.kvn = 0x20;
        CHECK(open_pair(&h, &c, &k, 0x55, 0x03, 7));
        test_rand_bytes(ne, 16);
        test_rand_bytes(nm, 16);
        test_rand_bytes(nd, 16);
        CHECK_OK(scp02_putkey_build(&h, types[t], 0x21, ne, nm, nd, data, sizeof(data), &n));
        CHECK(n == (t ? 70u : 67u));
        CHECK(data[1] == types[t]);
        CHECK_OK(scp02_putkey_parse(&c, data, n, &kvn, &type, e, m, d));
        CHECK(kvn == 0x21 && type == types[t]);
        CHECK_MEM(e, 16, ne, 16);
        CHECK_MEM(m, 16, nm, 16);
        CHECK_MEM(d, 16, nd, 16);
        /* tampered twins: a KCV byte, a ciphertext byte */
        data[n - 1] ^= 0x01;
        CHECK_RC(scp02_putkey_parse(&c, data, n, &kvn, &type, e, m, d), SCP_E_KCV);
        data[n - 1] ^= 0x01;
        data[5] ^= 0x01;
        CHECK_RC(scp02_putkey_parse(&c, data, n, &kvn, &type, e, m, d), SCP_E_KCV);
        data[5] ^= 0x01;
        CHECK_RC(scp02_putkey_parse(&c, data, n - 1, &kvn, &type, e, m, d), SCP_E_TRUNCATED);
        scp02_end(&h);
        scp02_end(&c);
    }
    /* the DES KCV is 3DES(key, 8 x 00): the well-known KCV of the
     * 40..4F test key is 8BAF47 */
    uint8_t key[16], zero[8] = { 0 }, out[8];
    for (int b = 0; b < 16; b++)
        key[b] = (uint8_t)(0x40 + b);
    CHECK_OK(scp_kcv_des3(key, 16, out));
    scp_des3 dd;
    CHECK_OK(scp_des3_init(&dd, key, 16));
    scp_des3_encrypt(&dd, zero, zero);
    CHECK_MEM(zero, 3, out, 3);
    uint8_t want[3] = { 0x8B, 0xAF, 0x47 };
    CHECK_MEM(out, 3, want, 3);
}

int main(int argc, char **argv)
{
    uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 0) : 0x5c902;
    int sessions = argc > 2 ? atoi(argv[2]) : 400;
    test_seed(seed);
    for (int s = 0; s < sessions; s++)
        one_session();
    putkey();
    return test_done("test_scp02_property");
}
