/* Key files: one JSON object {"kvn": N, "enc": HEX, "mac": HEX, "dek": HEX}
 * (or "key": HEX for one key used three times). They hold secrets, so a
 * file readable by anyone but its owner is refused, and new files are
 * created 0600 with O_EXCL: never over an existing file. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

#define KEYFILE_MAX 4096

static int read_all(int fd, char *buf, size_t size, size_t *len)
{
    size_t n = 0;
    while (n < size) {
        ssize_t r = read(fd, buf + n, size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return SCP_E_IO;
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (n == size)
        return SCP_E_LENGTH; /* larger than any key file */
    *len = n;
    return SCP_OK;
}

/* The key hex never reaches json-c (whose tokenizer copies each string
 * into buffers it grows with realloc and frees without wiping): the
 * values of "enc", "mac", "dek" and "key" are copied into `secrets` (owned
 * here, wiped by the caller) and replaced by zeros of the same length in
 * the copy json-c parses, which checks the structure and the types. */
typedef struct keyfile_secrets {
    char val[4][80];
    int have[4];
} keyfile_secrets;

static const char *const secret_names[4] = {"enc", "mac", "dek", "key"};

/* One JSON string at text[*i] == '"': its end (the closing quote). */
static size_t string_end(const char *text, size_t len, size_t i)
{
    for (i++; i < len; i++) {
        if (text[i] == '\\')
            i++;
        else if (text[i] == '"')
            return i;
    }
    return len;
}

static void redact(const char *text, size_t len, char *red, keyfile_secrets *sec)
{
    int want = -1; /* the last string was a secret member's name */
    memcpy(red, text, len);
    for (size_t i = 0; i < len; i++) {
        if (text[i] != '"')
            continue;
        size_t e = string_end(text, len, i), n = e - i - 1;
        size_t j = e + 1;
        while (j < len && (text[j] == ' ' || text[j] == '\t' || text[j] == '\r' || text[j] == '\n'))
            j++;
        if (want >= 0 && (j >= len || text[j] != ':')) { /* the value of that member */
            if (n < sizeof(sec->val[want])) {
                memcpy(sec->val[want], text + i + 1, n);
                sec->val[want][n] = 0;
                sec->have[want] = 1;
            }
            memset(red + i + 1, '0', n);
            want = -1;
        } else if (j < len && text[j] == ':') { /* a member name */
            want = -1;
            for (int k = 0; k < 4; k++)
                if (n == 3 && memcmp(text + i + 1, secret_names[k], 3) == 0)
                    want = k;
        }
        i = e;
    }
}

static int get_key(json_object *o, const keyfile_secrets *sec, const char *name, uint8_t *out,
                   uint8_t *len)
{
    json_object *v;
    int k = 0;
    while (k < 4 && strcmp(secret_names[k], name) != 0)
        k++;
    if (k == 4 || !sec->have[k] || !json_object_object_get_ex(o, name, &v) ||
        !json_object_is_type(v, json_type_string))
        return -1;
    return scp_cli_hexkey(sec->val[k], out, len);
}

/* Does a lenient parse find one whole object followed by more text? */
static int trailing_text(const char *text, size_t len)
{
    json_tokener *t = json_tokener_new();
    json_object *o = t ? json_tokener_parse_ex(t, text, (int)len) : NULL;
    int more = 0;
    if (o)
        for (size_t i = json_tokener_get_parse_end(t); i < len && !more; i++)
            more = text[i] != ' ' && text[i] != '\t' && text[i] != '\n' && text[i] != '\r';
    if (o && json_object_is_type(o, json_type_object)) {
        json_object_object_foreach(o, name, val)
        {
            (void)name;
            if (json_object_is_type(val, json_type_string))
                scp_wipe((void *)json_object_get_string(val),
                         (size_t)json_object_get_string_len(val));
        }
    }
    json_object_put(o);
    if (t)
        json_tokener_free(t);
    return more;
}

static int parse(const char *text, size_t len, scp03_keys *k, char *err, size_t err_size)
{
    char red[KEYFILE_MAX];
    keyfile_secrets sec;
    memset(&sec, 0, sizeof(sec));
    if (len > sizeof(red))
        len = sizeof(red);
    redact(text, len, red, &sec);
    json_tokener *tok = json_tokener_new();
    json_object *o = NULL, *v;
    uint8_t l1 = 0, l2 = 0, l3 = 0;
    int rc = SCP_E_FORMAT;

    if (tok) {
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        o = json_tokener_parse_ex(tok, red, (int)len);
    }
    if (!o || !json_object_is_type(o, json_type_object)) {
        if (o)
            snprintf(err, err_size, "not a JSON object");
        else if (!tok)
            snprintf(err, err_size, "out of memory");
        else if (json_tokener_get_error(tok) == json_tokener_continue)
            snprintf(err, err_size, "incomplete JSON: the file ends inside the object");
        else if (trailing_text(red, len))
            snprintf(err, err_size, "text after the JSON object");
        else
            snprintf(err, err_size, "malformed JSON near byte %zu (%s)",
                     json_tokener_get_parse_end(tok),
                     json_tokener_error_desc(json_tokener_get_error(tok)));
        goto out;
    }
    if (json_object_object_get_ex(o, "key", &v)) {
        if (get_key(o, &sec, "key", k->enc, &l1) != 0)
            goto bad_key;
        memcpy(k->mac, k->enc, l1);
        memcpy(k->dek, k->enc, l1);
        l2 = l3 = l1;
    } else if (get_key(o, &sec, "enc", k->enc, &l1) || get_key(o, &sec, "mac", k->mac, &l2) ||
               get_key(o, &sec, "dek", k->dek, &l3) || l1 != l2 || l2 != l3) {
        goto bad_key;
    }
    k->key_len = l1;
    k->kvn = 0;
    if (json_object_object_get_ex(o, "kvn", &v)) {
        int kvn = json_object_get_int(v);
        if (!json_object_is_type(v, json_type_int) || kvn < 0 || kvn > 255) {
            snprintf(err, err_size, "\"kvn\" must be a number 0..255");
            goto out;
        }
        k->kvn = (uint8_t)kvn;
    }
    rc = SCP_OK;
    goto out;
bad_key:
    snprintf(err, err_size,
             "want \"enc\", \"mac\", \"dek\" (or \"key\") as hex keys of one "
             "length, 16, 24 or 32 bytes");
out:
    scp_wipe(&sec, sizeof(sec));
    scp_wipe(red, sizeof(red));
    json_object_put(o);
    if (tok)
        json_tokener_free(tok);
    if (rc != SCP_OK)
        scp_wipe(k, sizeof(*k));
    return rc;
}

int scp_cli_keyfile_read(const char *path, scp03_keys *out, char *err, size_t err_size)
{
    char buf[KEYFILE_MAX], why[160] = "";
    struct stat st;
    size_t len = 0;
    int fd, rc;

    /* O_NONBLOCK: a FIFO opens at once and fails the regular-file check
     * below instead of blocking until a writer comes */
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        snprintf(err, err_size, "key file %s: %s", path, strerror(errno));
        return SCP_E_IO;
    }
    rc = SCP_E_PERM;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        snprintf(why, sizeof(why), "not a regular file");
    else if (st.st_mode & 077)
        snprintf(why, sizeof(why), "mode %04o lets others read it; run: chmod 600 %s",
                 (unsigned)(st.st_mode & 07777), path);
    else if (st.st_uid != geteuid())
        snprintf(why, sizeof(why), "owned by another user");
    else if ((rc = read_all(fd, buf, sizeof(buf), &len)) != SCP_OK)
        snprintf(why, sizeof(why), "cannot read it");
    else
        rc = parse(buf, len, out, why, sizeof(why));
    close(fd);
    scp_wipe(buf, sizeof(buf));
    if (rc != SCP_OK)
        snprintf(err, err_size, "key file %s refused: %s", path, why);
    return rc;
}

int scp_cli_keyfile_write(const char *path, const scp03_keys *k, char *err, size_t err_size)
{
    char enc[65], mac[65], dek[65], text[512];
    int fd, n, rc = SCP_OK;

    scp_cli_hex(k->enc, k->key_len, enc, sizeof(enc));
    scp_cli_hex(k->mac, k->key_len, mac, sizeof(mac));
    scp_cli_hex(k->dek, k->key_len, dek, sizeof(dek));
    n = snprintf(
        text, sizeof(text),
        "{\n  \"kvn\": %u,\n  \"enc\": \"%s\",\n  \"mac\": \"%s\",\n  \"dek\": \"%s\"\n}\n", k->kvn,
        enc, mac, dek);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, err_size, "cannot create key file %s: %s%s", path, strerror(errno),
                 errno == EEXIST ? " (scpkit never overwrites a key file)" : "");
        rc = SCP_E_IO;
    } else {
        if (fchmod(fd, 0600) != 0 || n < 0 || write(fd, text, (size_t)n) != n || fsync(fd) != 0) {
            snprintf(err, err_size, "cannot write key file %s: %s", path, strerror(errno));
            rc = SCP_E_IO;
        }
        if (close(fd) != 0 && rc == SCP_OK) {
            snprintf(err, err_size, "cannot write key file %s: %s", path, strerror(errno));
            rc = SCP_E_IO;
        }
        if (rc != SCP_OK)
            unlink(path);
    }
    scp_wipe(enc, sizeof(enc));
    scp_wipe(mac, sizeof(mac));
    scp_wipe(dek, sizeof(dek));
    scp_wipe(text, sizeof(text));
    return rc;
}
