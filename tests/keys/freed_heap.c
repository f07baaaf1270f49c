/* An LD_PRELOAD free() that reports (on stderr, "FREED-WITH-SECRET") a
 * heap block about to be freed that still holds the first 8 characters of
 * $NEEDLE: key hex left behind in freed memory (issue 12, secrets in
 * memory). Used by freed_heap.sh. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void (*real_free)(void *);

void free(void *p)
{
    if (real_free == NULL)
        *(void **)&real_free = dlsym(RTLD_NEXT, "free");
    const char *n = getenv("NEEDLE");
    if (p != NULL && n != NULL && strlen(n) >= 8) {
        size_t sz = malloc_usable_size(p);
        if (sz >= 8 && memmem(p, sz, n, 8) != NULL)
            (void)!write(2, "FREED-WITH-SECRET\n", 18);
    }
    real_free(p);
}
