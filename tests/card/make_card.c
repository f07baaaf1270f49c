/* Test helper: make a card whose state matches a public transcript, so a
 * client's recorded exchange can be replayed byte for byte through
 * pcscd + vpcd (tests/card/pcsc_gpshell.py).
 * Usage: make_card DIR ENC MAC DEK KVN I SEQ KDD   (hex; gp23 profile)
 * SEQ is the last sequence counter used: the next INITIALIZE UPDATE gets
 * SEQ + 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "card/internal.h"
#include "scpkit/buf.h"

static int hex(const char *s, uint8_t *out, size_t want)
{
    size_t n = 0;
    return scp_hex_decode(s, out, want, &n) == SCP_OK && n == want ? 0 : -1;
}

int main(int argc, char **argv)
{
    uint8_t enc[16], mac[16], dek[16], kvn, i, kdd[SCP03_KDD_LEN], b[3];
    scp_card_init_opts o = { .profile = "gp23", .scp_i = -1, .kvn = -1 };
    scp_card *c = NULL;
    card_state next;
    char err[300] = "";
    int rc;

    if (argc != 9 || hex(argv[2], enc, 16) || hex(argv[3], mac, 16) || hex(argv[4], dek, 16) ||
        hex(argv[5], &kvn, 1) || hex(argv[6], &i, 1) || hex(argv[7], b, 3) ||
        hex(argv[8], kdd, sizeof(kdd))) {
        fprintf(stderr, "usage: make_card DIR ENC MAC DEK KVN I SEQ KDD (hex)\n");
        return 2;
    }
    o.scp_i = i;
    o.kvn = kvn;
    o.key = enc;
    o.key_len = 16;
    if (scp_card_init(argv[1], &o) != SCP_OK || scp_card_open(argv[1], &c, err, sizeof(err))) {
        fprintf(stderr, "make_card: %s\n", err);
        return 1;
    }
    next = c->st;
    memcpy(next.sets[0].mac, mac, 16);
    memcpy(next.sets[0].dek, dek, 16);
    next.factory = next.sets[0];
    memcpy(next.kdd, kdd, sizeof(kdd));
    next.seq = (uint32_t)b[0] << 16 | (uint32_t)b[1] << 8 | b[2];
    rc = card_commit(c, &next);
    card_wipe_state(&next);
    scp_card_close(c);
    return rc == SCP_OK ? 0 : 1;
}
