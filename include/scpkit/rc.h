/* scpkit: result codes shared by every part of the library. */
#ifndef SCPKIT_RC_H
#define SCPKIT_RC_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define SCP_MUST_CHECK __attribute__((warn_unused_result))
#define SCP_NONNULL(...) __attribute__((nonnull(__VA_ARGS__)))
#else
#define SCP_MUST_CHECK
#define SCP_NONNULL(...)
#endif

/* 0 is success; every error is negative. Card status words are never
 * encoded here: they are returned separately (see scp_apdu_resp.sw). */
typedef enum scp_rc {
    SCP_OK = 0,
    SCP_E_ARG = -1,            /* invalid argument */
    SCP_E_BUFFER_TOO_SMALL = -2, /* output buffer too small */
    SCP_E_TRUNCATED = -3,      /* input ends before its declared length */
    SCP_E_FORMAT = -4,         /* malformed encoding */
    SCP_E_LENGTH = -5,         /* a length field disagrees with the data */
    SCP_E_CRYPTO = -6,         /* crypto backend failure */
    SCP_E_MAC = -7,            /* MAC verification failed: session ended */
    SCP_E_CRYPTOGRAM = -8,     /* cryptogram verification failed: session ended */
    SCP_E_PADDING = -9,        /* bad padding after decryption: session ended */
    SCP_E_STATE = -10,         /* call not valid in the session's state */
    SCP_E_DEAD = -11,          /* session was ended by an earlier failure */
    SCP_E_UNSUPPORTED = -12,   /* valid, but not supported (level, mode, key) */
    SCP_E_LEVEL = -13,         /* security level refused */
    SCP_E_KCV = -14,           /* key check value mismatch */
    SCP_E_COUNTER = -15,       /* sequence or command counter exhausted/wrong */
    SCP_E_SW = -16,            /* the card answered with an error status word */
    SCP_E_IO = -17,            /* transport or file I/O failure */
    SCP_E_NOT_FOUND = -18,     /* no such reader, key, record, file */
    SCP_E_CORRUPT = -19,       /* stored state failed its integrity check */
    SCP_E_PERM = -20,          /* permission or file-mode refusal */
    SCP_E_NOMEM = -21,         /* allocation failure (outside the engine) */
    SCP_E_TIMEOUT = -22,       /* a bounded wait ran out */
    SCP_E_AUTH = -23,          /* authentication refused by the peer */
} scp_rc;

/* A short English description of rc; never NULL. */
const char *scp_strerror(int rc);

#ifdef __cplusplus
}
#endif
#endif
