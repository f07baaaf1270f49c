/* scpkit keys: the PKCS#11 module, loaded with dlopen (PKCS#11 v2.40
 * section 5.2: C_GetFunctionList is the one symbol a module must export). */
#include "keys/p11.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include "core/guard.h"
#include "scpkit/crypto.h"

int scp_p11_rc(scp_p11 *p, const char *call, CK_RV rv)
{
    static int debug = -1;
    int d = __atomic_load_n(&debug, __ATOMIC_RELAXED);
    if (d < 0) {
        d = getenv("SCP_KS_DEBUG") != NULL;
        __atomic_store_n(&debug, d, __ATOMIC_RELAXED);
    }
    if (d && rv != CKR_OK)
        fprintf(stderr, "scpkit[%ld]: %s: CK_RV 0x%lx\n", (long)getpid(), call, (unsigned long)rv);
    p->last_rv = rv;
    p->last_call = call;
    switch (rv) {
    case CKR_OK:
        return SCP_OK;
    case CKR_PIN_INCORRECT:
    case CKR_PIN_LOCKED:
    case CKR_USER_NOT_LOGGED_IN:
        return SCP_E_PERM;
    case CKR_MECHANISM_INVALID:
    case CKR_KEY_TYPE_INCONSISTENT:
    case CKR_FUNCTION_NOT_SUPPORTED:
    case CKR_KEY_FUNCTION_NOT_PERMITTED:
        return SCP_E_UNSUPPORTED;
    case CKR_SIGNATURE_INVALID:
    case CKR_SIGNATURE_LEN_RANGE:
        return SCP_E_MAC;
    case CKR_BUFFER_TOO_SMALL:
        return SCP_E_BUFFER_TOO_SMALL;
    case CKR_HOST_MEMORY:
    case CKR_DEVICE_MEMORY:
        return SCP_E_NOMEM;
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_SLOT_ID_INVALID:
    case CKR_OBJECT_HANDLE_INVALID:
        return SCP_E_NOT_FOUND;
    default:
        return SCP_E_CRYPTO;
    }
}

/* A module is initialised once per process (PKCS#11 v2.40 5.4: a second
 * C_Initialize fails), so several keystores in one process share it: a
 * reference count per function list, C_Finalize with the last; the
 * count and the module-wide calls under one lock (threads). */
static pthread_mutex_t module_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    CK_FUNCTION_LIST *f;
    int refs;
} loaded[4];

static int module_ref(CK_FUNCTION_LIST *f, int delta)
{
    for (size_t i = 0; i < sizeof(loaded) / sizeof(loaded[0]); i++) {
        if (loaded[i].f == f && loaded[i].refs > 0) {
            loaded[i].refs += delta;
            return loaded[i].refs;
        }
    }
    for (size_t i = 0; delta > 0 && i < sizeof(loaded) / sizeof(loaded[0]); i++) {
        if (loaded[i].refs == 0) {
            loaded[i].f = f;
            loaded[i].refs = 1;
            return 1;
        }
    }
    return -1;
}

int scp_p11_in_use(void)
{
    int n = 0;
    pthread_mutex_lock(&module_lock);
    for (size_t i = 0; i < sizeof(loaded) / sizeof(loaded[0]); i++)
        n += loaded[i].refs;
    pthread_mutex_unlock(&module_lock);
    return n;
}

/* Take a reference on p's module and, for its first user, C_Initialize
 * it, under the lock. only_user: a re-initialisation, refused (reference
 * given back) when another handle holds the module meanwhile. */
static int module_start(scp_p11 *p, int only_user)
{
    pthread_mutex_lock(&module_lock);
    int refs = module_ref(p->f, +1);
    int rc = refs <= 0 ? SCP_E_NOMEM : (refs > 1 && only_user) ? SCP_E_STATE : SCP_OK;
    if (rc == SCP_E_STATE)
        (void)module_ref(p->f, -1);
    if (rc == SCP_OK && refs == 1) {
        CK_C_INITIALIZE_ARGS args;
        memset(&args, 0, sizeof(args));
        args.flags = CKF_OS_LOCKING_OK;
        rc = scp_p11_rc(p, "C_Initialize", p->f->C_Initialize(&args));
        if (rc != SCP_OK)
            (void)module_ref(p->f, -1);
    }
    pthread_mutex_unlock(&module_lock);
    return rc;
}

int scp_p11_load(scp_p11 *p, const char *module)
{
    memset(p, 0, sizeof(*p));
    p->dl = dlopen(module, RTLD_NOW | RTLD_LOCAL);
    ENSURE(p->dl != NULL, SCP_E_NOT_FOUND);
    CK_C_GetFunctionList gfl;
    /* POSIX: a void * from dlsym converts to a function pointer. */
    *(void **)&gfl = dlsym(p->dl, "C_GetFunctionList");
    ENSURE(gfl != NULL, SCP_E_UNSUPPORTED);
    GUARD(scp_p11_rc(p, "C_GetFunctionList", gfl(&p->f)));
    int rc = module_start(p, 0);
    p->initialized = rc == SCP_OK;
    return rc;
}

void scp_p11_unload(scp_p11 *p)
{
    if (p->f != NULL) {
        if (p->logged_in)
            (void)p->f->C_Logout(p->sess);
        if (p->has_session)
            (void)p->f->C_CloseSession(p->sess);
        if (p->initialized) {
            pthread_mutex_lock(&module_lock);
            if (module_ref(p->f, -1) == 0)
                (void)p->f->C_Finalize(NULL);
            pthread_mutex_unlock(&module_lock);
        }
    }
    if (p->dl != NULL)
        dlclose(p->dl);
    memset(p, 0, sizeof(*p));
}

/* Token labels are 32 bytes padded with spaces (PKCS#11 v2.40 3.2). */
static void pad_label(const char *label, CK_UTF8CHAR out[32])
{
    size_t n = strlen(label);
    memset(out, ' ', 32);
    memcpy(out, label, n > 32 ? 32 : n);
}

static int for_each_slot(scp_p11 *p, int (*want)(const CK_TOKEN_INFO *, const void *),
                         const void *arg)
{
    CK_SLOT_ID slots[64];
    CK_ULONG n = 64;
    GUARD(scp_p11_rc(p, "C_GetSlotList", p->f->C_GetSlotList(CK_TRUE, slots, &n)));
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        if (p->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
            continue;
        if (want(&ti, arg)) {
            p->slot = slots[i];
            return SCP_OK;
        }
    }
    return SCP_E_NOT_FOUND;
}

static int want_label(const CK_TOKEN_INFO *ti, const void *arg)
{
    return (ti->flags & CKF_TOKEN_INITIALIZED) && memcmp(ti->label, arg, 32) == 0;
}

static int want_free(const CK_TOKEN_INFO *ti, const void *arg)
{
    (void)arg;
    return !(ti->flags & CKF_TOKEN_INITIALIZED);
}

int scp_p11_find_token(scp_p11 *p, const char *label)
{
    CK_UTF8CHAR l[32];
    pad_label(label, l);
    return for_each_slot(p, want_label, l);
}

int scp_p11_find_free(scp_p11 *p)
{
    return for_each_slot(p, want_free, NULL);
}

static unsigned long sessions_opened;

unsigned long scp_p11_sessions_opened(void)
{
    return __atomic_load_n(&sessions_opened, __ATOMIC_RELAXED);
}

static int open_session(scp_p11 *p, int rw)
{
    CK_FLAGS fl = CKF_SERIAL_SESSION | (rw ? CKF_RW_SESSION : 0);
    __atomic_add_fetch(&sessions_opened, 1, __ATOMIC_RELAXED);
    GUARD(scp_p11_rc(p, "C_OpenSession", p->f->C_OpenSession(p->slot, fl, NULL, NULL, &p->sess)));
    p->has_session = 1;
    return SCP_OK;
}

static void close_session(scp_p11 *p)
{
    if (p->logged_in)
        (void)p->f->C_Logout(p->sess);
    if (p->has_session)
        (void)p->f->C_CloseSession(p->sess);
    p->logged_in = p->has_session = 0;
}

int scp_p11_init_token(scp_p11 *p, const char *label, const char *so_pin, const char *user_pin)
{
    CK_UTF8CHAR l[32];
    pad_label(label, l);
    GUARD(scp_p11_rc(p, "C_InitToken",
                     p->f->C_InitToken(p->slot, (CK_UTF8CHAR *)so_pin, strlen(so_pin), l)));
    /* SoftHSM2 moves an initialised token to a new slot id: find it again. */
    GUARD(scp_p11_find_token(p, label));
    GUARD(open_session(p, 1));
    int rc = scp_p11_rc(p, "C_Login(SO)",
                        p->f->C_Login(p->sess, CKU_SO, (CK_UTF8CHAR *)so_pin, strlen(so_pin)));
    if (rc == SCP_OK) {
        p->logged_in = 1;
        rc = scp_p11_rc(p, "C_InitPIN",
                        p->f->C_InitPIN(p->sess, (CK_UTF8CHAR *)user_pin, strlen(user_pin)));
    }
    close_session(p);
    return rc;
}

int scp_p11_login(scp_p11 *p, const char *user_pin, int rw)
{
    GUARD(open_session(p, rw));
    CK_RV rv = p->f->C_Login(p->sess, CKU_USER, (CK_UTF8CHAR *)user_pin, strlen(user_pin));
    if (rv == CKR_USER_ALREADY_LOGGED_IN)
        rv = CKR_OK;
    GUARD(scp_p11_rc(p, "C_Login", rv));
    p->logged_in = 1;
    return SCP_OK;
}

int scp_p11_session_rw(scp_p11 *p, const char *user_pin)
{
    close_session(p);
    return scp_p11_login(p, user_pin, 1);
}

/* Module-wide finalisation and re-initialisation (SoftHSM2 reads its
 * configuration again at C_Initialize): only while this is the one user of
 * the module in the process. */
int scp_p11_finalize(scp_p11 *p)
{
    ENSURE(p->f != NULL, SCP_E_STATE);
    close_session(p);
    if (!p->initialized)
        return SCP_OK;
    pthread_mutex_lock(&module_lock);
    int rc = module_ref(p->f, 0) == 1 ? SCP_OK : SCP_E_STATE;
    if (rc == SCP_OK)
        rc = scp_p11_rc(p, "C_Finalize", p->f->C_Finalize(NULL));
    if (rc == SCP_OK) {
        p->initialized = 0;
        (void)module_ref(p->f, -1);
    }
    pthread_mutex_unlock(&module_lock);
    return rc;
}

int scp_p11_reinit(scp_p11 *p)
{
    GUARD(scp_p11_finalize(p));
    int rc = module_start(p, 1);
    if (rc == SCP_OK)
        p->initialized = 1;
    return rc;
}

int scp_p11_has_mech(scp_p11 *p, CK_MECHANISM_TYPE m, CK_FLAGS flags)
{
    CK_MECHANISM_INFO mi;
    if (p->f->C_GetMechanismInfo(p->slot, m, &mi) != CKR_OK)
        return 0;
    return (mi.flags & flags) == flags;
}

int scp_p11_find(scp_p11 *p, CK_OBJECT_CLASS cls, const char *id, CK_OBJECT_HANDLE *h)
{
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_LABEL, (void *)id, strlen(id)},
    };
    CK_ULONG n = 0;
    CK_OBJECT_HANDLE found[2];
    GUARD(scp_p11_rc(p, "C_FindObjectsInit", p->f->C_FindObjectsInit(p->sess, t, 2)));
    CK_RV rv = p->f->C_FindObjects(p->sess, found, 2, &n);
    (void)p->f->C_FindObjectsFinal(p->sess);
    GUARD(scp_p11_rc(p, "C_FindObjects", rv));
    ENSURE(n >= 1, SCP_E_NOT_FOUND);
    ENSURE(n == 1, SCP_E_CORRUPT); /* two objects claim one label:version */
    *h = found[0];
    return SCP_OK;
}

int scp_p11_destroy(scp_p11 *p, CK_OBJECT_HANDLE h)
{
    return scp_p11_rc(p, "C_DestroyObject", p->f->C_DestroyObject(p->sess, h));
}

int scp_p11_encrypt(scp_p11 *p, CK_MECHANISM_TYPE m, CK_OBJECT_HANDLE key, const uint8_t *in,
                    size_t len, uint8_t *out, size_t out_size)
{
    CK_MECHANISM mech = {m, NULL, 0};
    CK_ULONG ol = out_size;
    GUARD(scp_p11_rc(p, "C_EncryptInit", p->f->C_EncryptInit(p->sess, &mech, key)));
    GUARD(scp_p11_rc(p, "C_Encrypt",
                     p->f->C_Encrypt(p->sess, (CK_BYTE *)in, len, out, &ol)));
    ENSURE(ol == len, SCP_E_CRYPTO); /* ECB: as long as the input */
    return SCP_OK;
}

int scp_p11_sign(scp_p11 *p, CK_MECHANISM_TYPE m, CK_OBJECT_HANDLE key, const uint8_t *in,
                 size_t len, uint8_t *out, size_t out_size, size_t *out_len)
{
    CK_MECHANISM mech = {m, NULL, 0};
    CK_ULONG ol = out_size;
    GUARD(scp_p11_rc(p, "C_SignInit", p->f->C_SignInit(p->sess, &mech, key)));
    GUARD(scp_p11_rc(p, "C_Sign", p->f->C_Sign(p->sess, (CK_BYTE *)in, len, out, &ol)));
    *out_len = ol;
    return SCP_OK;
}

int scp_p11_verify(scp_p11 *p, CK_MECHANISM_TYPE m, CK_OBJECT_HANDLE key, const uint8_t *in,
                   size_t len, const uint8_t *sig, size_t sig_len)
{
    CK_MECHANISM mech = {m, NULL, 0};
    GUARD(scp_p11_rc(p, "C_VerifyInit", p->f->C_VerifyInit(p->sess, &mech, key)));
    return scp_p11_rc(p, "C_Verify",
                      p->f->C_Verify(p->sess, (CK_BYTE *)in, len, (CK_BYTE *)sig, sig_len));
}
