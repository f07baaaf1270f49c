/* Public SCP03 transcripts replayed through both roles of the engine:
 * tests/vectors/scp03_*.txt (sources named in each file). The host must
 * produce exactly the transcript's commands; the card must turn them back
 * into the plain commands and produce exactly the transcript's responses. */
#include <stdlib.h>

#include "scpkit/apdu.h"
#include "scpkit/scp03.h"
#include "test.h"

static uint8_t out[70000];

static int fbytes(const vec_record *r, const char *name, const uint8_t **p, size_t *n)
{
    const vec_field *f = vec_get(r, name, 0);
    if (f == NULL || (f->bytes == NULL && f->text[0] != '\0'))
        return 0;
    *p = f->bytes;
    *n = f->len;
    return 1;
}

static void load_keys(const vec_record *r, scp03_keys *k)
{
    const uint8_t *p;
    size_t n;
    memset(k, 0, sizeof(*k));
    if (fbytes(r, "enc", &p, &n) && n <= 32) {
        memcpy(k->enc, p, n);
        k->key_len = (uint8_t)n;
    }
    if (fbytes(r, "mac", &p, &n) && n <= 32)
        memcpy(k->mac, p, n);
    if (fbytes(r, "dek", &p, &n) && n <= 32)
        memcpy(k->dek, p, n);
    if (fbytes(r, "kvn", &p, &n) && n == 1)
        k->kvn = p[0];
}

static void check_session_keys(const vec_record *r, const scp03_session *s)
{
    static const char *names[3] = { "s_enc", "s_mac", "s_rmac" };
    uint8_t got[3][3], want[3];
    const uint8_t *p;
    size_t n;
    CHECK_OK(scp03_session_kcvs(s, got[0], got[1], got[2]));
    for (int i = 0; i < 3; i++)
        if (fbytes(r, names[i], &p, &n)) {
            CHECK_OK(scp_kcv_aes(p, n, want));
            CHECK_MEM(got[i], 3, want, 3);
        }
}

/* Sources differ on status words: pySim gives responses without SW and an
 * r_sw field; kaoh, OpenSCP and Yubico include the 9000 in init_update_resp
 * and r_wrapped; kaoh's r_plain includes it too, OpenSCP's does not. */
static size_t strip_sw(const uint8_t *p, size_t n)
{
    if ((n == 31 || n == 34 || n == 47 || n == 50) && p[n - 2] == 0x90 && p[n - 1] == 0x00)
        return n - 2;
    return n;
}

static uint8_t lvl_of(const vec_record *r)
{
    const vec_field *f = vec_get(r, "security_level", 0);
    return f != NULL && f->len == 1 ? f->bytes[0] : 0;
}

/* One response step: r_wrapped (with or without SW) and its r_plain. */
typedef struct rstep {
    const uint8_t *w, *plain;
    size_t wl, pl;
    uint16_t sw;
} rstep;

static int response_step(const vec_record *r, size_t i, const vec_field *rsw, uint8_t level,
                         rstep *st)
{
    const vec_field *f = &r->f[i], *p = NULL;
    for (size_t j = i + 1; j < r->n; j++) {
        if (strcmp(r->f[j].name, "r_plain") == 0) {
            p = &r->f[j];
            break;
        }
        if (strncmp(r->f[j].name, "c_", 2) == 0 || strcmp(r->f[j].name, "r_wrapped") == 0)
            break;
    }
    if (p == NULL)
        return 0;
    st->w = f->bytes;
    st->wl = f->len;
    st->plain = p->bytes;
    st->pl = p->len;
    if (rsw != NULL && rsw->len == 2) {
        st->sw = (uint16_t)(rsw->bytes[0] << 8 | rsw->bytes[1]);
    } else {
        if (f->len < 2)
            return 0;
        st->sw = (uint16_t)(f->bytes[f->len - 2] << 8 | f->bytes[f->len - 1]);
        st->wl -= 2;
        /* kaoh writes r_plain with its SW (no R-MAC there); OpenSCP without */
        if (!(level & SCP_LEVEL_RMAC) && st->pl == st->wl + 2)
            st->pl -= 2;
    }
    return 1;
}

static void replay_host(const vec_record *r, const char *name)
{
    scp03_session h = { 0 };
    scp03_keys k;
    const uint8_t *hc = NULL, *iu = NULL, *iuc, *ea, *lvl = NULL, *plain = NULL;
    size_t hcl = 0, iul = 0, iucl, eal, lvll = 0, n, plain_len = 0;
    int steps = 0;

    load_keys(r, &k);
    if (!fbytes(r, "host_challenge", &hc, &hcl) || !fbytes(r, "init_update_resp", &iu, &iul) ||
        !fbytes(r, "security_level", &lvl, &lvll) || lvll != 1) {
        CHECK(!"transcript lacks host_challenge, init_update_resp or security_level");
        return;
    }
    CHECK_OK(scp03_host_begin(&h, &k, hc, hcl));
    CHECK_OK(scp03_host_initialize_update(&h, 0, out, sizeof(out), &n));
    if (fbytes(r, "init_update_cmd", &iuc, &iucl)) /* our Le 00 may be absent there */
        CHECK_MEM(out, iucl == n - 1 ? n - 1 : n, iuc, iucl);
    CHECK_OK(scp03_host_iu_response(&h, iu, strip_sw(iu, iul)));
    check_session_keys(r, &h);
    CHECK_OK(scp03_host_external_authenticate(&h, lvl[0], out, sizeof(out), &n));
    if (fbytes(r, "ext_auth_cmd", &ea, &eal))
        CHECK_MEM(out, n, ea, eal);
    CHECK_OK(scp03_host_ea_result(&h, 0x9000));
    int ri = 0;
    for (size_t i = 0; i < r->n; i++) {
        const vec_field *f = &r->f[i];
        if (strcmp(f->name, "c_plain") == 0) {
            plain = f->bytes;
            plain_len = f->len;
        } else if (strcmp(f->name, "c_wrapped") == 0) {
            if (plain == NULL) {
                /* the source never states this command's plain form: the
                 * host cannot go on, the card replay still checks it */
                break;
            }
            /* pySim wraps several commands without unwrapping their
             * responses; the engine refuses that, so the test says so */
            h.resp_pending = 0;
            CHECK_OK(scp03_host_wrap(&h, plain, plain_len, out, sizeof(out), &n));
            CHECK_MEM(out, n, f->bytes, f->len);
            plain = NULL;
            steps++;
        } else if (strcmp(f->name, "r_wrapped") == 0) {
            rstep st;
            uint8_t buf[4096];
            if (!response_step(r, i, vec_get(r, "r_sw", ri++), lvl_of(r), &st))
                continue;
            memcpy(buf, st.w, st.wl);
            buf[st.wl] = (uint8_t)(st.sw >> 8);
            buf[st.wl + 1] = (uint8_t)st.sw;
            CHECK_OK(scp03_host_unwrap(&h, buf, st.wl + 2, out, sizeof(out), &n));
            CHECK_MEM(out, n - 2, st.plain, st.pl);
            steps++;
        }
    }
    (void)name;
    scp03_end(&h);
}

static void replay_card(const vec_record *r)
{
    scp03_session c = { 0 };
    scp03_keys k;
    scp03_card_params prm = { 0 };
    scp03_iu_resp ir;
    const uint8_t *hc, *iu, *ea, *aid = NULL, *plain = NULL;
    size_t hcl, iul, eal, aidl = 0, n, plain_len = 0;

    load_keys(r, &k);
    if (!fbytes(r, "host_challenge", &hc, &hcl) || !fbytes(r, "init_update_resp", &iu, &iul) ||
        !fbytes(r, "ext_auth_cmd", &ea, &eal))
        return;
    iul = strip_sw(iu, iul);
    CHECK_OK(scp03_iu_resp_parse(iu, iul, &ir));
    prm.i = ir.i;
    memcpy(prm.kdd, ir.kdd, sizeof(prm.kdd));
    prm.seq = (uint32_t)(ir.seq[0] << 16 | ir.seq[1] << 8 | ir.seq[2]);
    /* kaoh's R-MAC test is disabled in its source and its card challenge
     * does not come from the KDF with the AID it names: use it as given */
    const vec_field *status = vec_get(r, "status", 0);
    if ((ir.i & SCP03_I_PSEUDO_RANDOM) && fbytes(r, "sd_aid", &aid, &aidl) &&
        (status == NULL || strcmp(status->text, "disabled-in-source") != 0)) {
        /* the pseudo-random challenge must come out of the KDF */
        prm.aid = aid;
        prm.aid_len = aidl;
    } else {
        prm.fixed_card_chal = ir.card_chal;
    }
    k.kvn = ir.kvn;
    CHECK_OK(scp03_card_initialize_update(&c, &prm, &k, hc, hcl, out, sizeof(out), &n));
    CHECK_MEM(out, n, iu, iul);
    CHECK_OK(scp03_card_external_authenticate(&c, ea, eal));
    int ri = 0;
    for (size_t i = 0; i < r->n; i++) {
        const vec_field *f = &r->f[i];
        if (strcmp(f->name, "c_plain") == 0) {
            plain = f->bytes;
            plain_len = f->len;
        } else if (strcmp(f->name, "c_wrapped") == 0) {
            CHECK_OK(scp03_card_unwrap(&c, f->bytes, f->len, out, sizeof(out), &n));
            if (plain != NULL)
                CHECK_MEM(out, n, plain, plain_len);
            plain = NULL;
        } else if (strcmp(f->name, "r_wrapped") == 0) {
            rstep st;
            if (!response_step(r, i, vec_get(r, "r_sw", ri++), lvl_of(r), &st))
                continue;
            CHECK_OK(scp03_card_wrap(&c, st.plain, st.pl, st.sw, out, sizeof(out), &n));
            if (n - 2 == st.wl || !(c.level & SCP_LEVEL_RENC))
                CHECK_MEM(out, n - 2, st.w, st.wl);
            else /* the source pads past one block; the host replay checked it */
                printf("  card response with non-minimal source padding not compared\n");
        }
    }
    scp03_end(&c);
}

static size_t run_file(const char *file)
{
    vec_file vf;
    size_t n = 0;
    if (vec_load(vec_path(file), &vf) != 0) {
        CHECK(!"vector file missing");
        return 0;
    }
    for (size_t i = 0; i < vf.n; i++) {
        const vec_record *r = &vf.r[i];
        const vec_field *name = vec_get(r, "name", 0);
        int before = test_failures;
        if (strcmp(r->type, "scp03") != 0)
            continue;
        replay_host(r, name ? name->text : "?");
        replay_card(r);
        if (test_failures != before)
            fprintf(stderr, "  in %s record %s (line %d)\n", file, name ? name->text : "?",
                    r->line);
        n++;
    }
    printf("%s: %zu transcripts\n", file, n);
    vec_free(&vf);
    return n;
}

int main(int argc, char **argv)
{
    size_t total = 0;
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            total += run_file(argv[i]);
    } else {
        static const char *files[] = { "scp03_pysim.txt", "scp03_kaoh.txt", "scp03_openscp.txt",
                                       "scp03_yubico.txt" };
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
            total += run_file(files[i]);
    }
    CHECK(total > 0);
    return test_done("test_scp03_vectors");
}
