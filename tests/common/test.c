#include <stdlib.h>

#include "scpkit/buf.h"
#include "test.h"

int test_failures;
int test_checks;
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

void test_dump(const char *label, const uint8_t *p, size_t len)
{
    fprintf(stderr, "%s (%zu):", label, len);
    for (size_t i = 0; i < len && i < 96; i++)
        fprintf(stderr, " %02X", p[i]);
    fprintf(stderr, len > 96 ? " ...\n" : "\n");
}

int test_done(const char *name)
{
    printf("%s: %d checks, %d failed\n", name, test_checks, test_failures);
    if (test_checks == 0) {
        printf("%s: no checks ran\n", name);
        return 1;
    }
    return test_failures ? 1 : 0;
}

void test_seed(uint64_t seed) { rng_state = seed ? seed : 1; }

uint64_t test_rand(void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

void test_rand_bytes(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(test_rand() >> 32);
}

size_t test_rand_below(size_t n) { return n ? (size_t)(test_rand() % n) : 0; }

static char *trim(char *s)
{
    char *e;
    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
        *--e = '\0';
    return s;
}

int vec_load(const char *path, vec_file *vf)
{
    FILE *f = fopen(path, "r");
    char line[70000];
    int lineno = 0;
    vec_record *cur = NULL;

    memset(vf, 0, sizeof(*vf));
    if (f == NULL) {
        fprintf(stderr, "cannot open vector file %s\n", path);
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        char *s = trim(line), *eq;
        lineno++;
        if (*s == '#' || *s == '\0')
            continue;
        if (*s == '[') {
            char *end = strchr(s, ']');
            vf->r = realloc(vf->r, (vf->n + 1) * sizeof(*vf->r));
            if (vf->r == NULL || end == NULL)
                abort();
            cur = &vf->r[vf->n++];
            memset(cur, 0, sizeof(*cur));
            *end = '\0';
            snprintf(cur->type, sizeof(cur->type), "%s", s + 1);
            cur->line = lineno;
            continue;
        }
        eq = strchr(s, '=');
        if (cur == NULL || eq == NULL || cur->n == VEC_MAX_FIELDS) {
            fprintf(stderr, "%s:%d: bad line\n", path, lineno);
            fclose(f);
            return -1;
        }
        *eq = '\0';
        vec_field *fd = &cur->f[cur->n++];
        snprintf(fd->name, sizeof(fd->name), "%s", trim(s));
        fd->text = strdup(trim(eq + 1));
        fd->bytes = malloc(strlen(fd->text) / 2 + 1);
        if (scp_hex_decode(fd->text, fd->bytes, strlen(fd->text) / 2 + 1, &fd->len) != 0) {
            free(fd->bytes);
            fd->bytes = NULL;
            fd->len = 0;
        }
    }
    fclose(f);
    return 0;
}

void vec_free(vec_file *vf)
{
    for (size_t i = 0; i < vf->n; i++)
        for (size_t j = 0; j < vf->r[i].n; j++) {
            free(vf->r[i].f[j].text);
            free(vf->r[i].f[j].bytes);
        }
    free(vf->r);
    memset(vf, 0, sizeof(*vf));
}

const vec_field *vec_get(const vec_record *r, const char *name, int k)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->f[i].name, name) == 0 && k-- == 0)
            return &r->f[i];
    return NULL;
}

const char *vec_dir(void)
{
    const char *dir = getenv("SCP_VECTORS_DIR");
    return dir ? dir : SCP_SOURCE_DIR "/tests/vectors";
}

const char *vec_path(const char *file)
{
    static char buf[4096];
    snprintf(buf, sizeof(buf), "%s/%s", vec_dir(), file);
    return buf;
}

void vec_read(const vec_record *r)
{
    ((vec_record *)r)->read = 1; /* records live in vec_load's heap array */
}

size_t vec_unread(const vec_file *vf, const char *file)
{
    size_t n = 0;
    for (size_t i = 0; i < vf->n; i++)
        if (!vf->r[i].read) {
            fprintf(stderr, "%s:%d: [%s] record read by no check\n", file, vf->r[i].line,
                    vf->r[i].type);
            test_checks++, test_failures++, n++;
        }
    return n;
}
