/* scpkit CLI: the common options every command shares (a contract scripts
 * use: -r/--reader, --card, --kvn, --key, --enc/--mac/--dek, --keyfile,
 * --kdf/--master, --keystore, --level, --json, -v/--trace), the session a
 * command works in (transport, optional channel, one JSON document), exit
 * codes, and every subcommand's entry point. */
#ifndef SCPKIT_CLI_H
#define SCPKIT_CLI_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "scpkit/buf.h"
#include "scpkit/channel.h"
#include "scpkit/scp02.h"
#include "scpkit/transport.h"

/* Exit codes (documented in `scpkit --help` and README.md). */
enum {
    SCP_EXIT_OK = 0,
    SCP_EXIT_USAGE = 1,  /* bad command line */
    SCP_EXIT_CARD = 2,   /* no reader/card, transport or secure-channel error */
    SCP_EXIT_AUTH = 3,   /* authentication failed (wrong keys, blocked) */
    SCP_EXIT_REFUSED = 4, /* the card refused a command (error status word) */
    SCP_EXIT_LOCAL = 5,  /* local file or key error (mode not 0600, bad JSON) */
};

/* Where the keys come from, in order of precedence. */
typedef enum scp_cli_keysrc {
    SCP_KEYS_FACTORY = 0, /* nothing given: 40..4F, with a warning */
    SCP_KEYS_HEX,         /* --key, or --enc/--mac/--dek */
    SCP_KEYS_FILE,        /* --keyfile (0600 JSON) */
    SCP_KEYS_MASTER,      /* --kdf SCHEME --master HEX (diversified) */
    SCP_KEYS_KEYSTORE,    /* --keystore DIR --master LABEL[:VERSION] --kdf */
} scp_cli_keysrc;

typedef struct scp_cli_opts {
    /* target */
    const char *reader;   /* -r NAME|INDEX */
    const char *card_dir; /* --card DIR (in process) */
    const char *sd_aid;   /* --sd AID (default: the GP ISD AIDs) */
    /* keys */
    int kvn; /* --kvn N; -1 when not given (then the key file's, else 0) */
    const char *key_hex, *enc_hex, *mac_hex, *dek_hex;
    const char *keyfile;
    const char *kdf;    /* --kdf none|sp800-108|kdf3|emv|visa2 */
    const char *master; /* --master HEX, or LABEL[:VERSION] with --keystore */
    const char *keystore; /* --keystore DIR */
    int level;           /* --level; -1: the strongest the card allows */
    int scp;             /* --scp 02: 2 for SCP02 (3DES); scp_text below */
    int json, trace;
    const char *kvn_text, *level_text; /* as given */
    /* SCP11 (tools/scpkit/cli_scp11.c): --scp 03|11a|11b|11c, --kid N,
     * --sd-ca FILE, --oce-key FILE, --oce-chain FILE */
    const char *scp_text, *kid_text, *sd_ca, *oce_key, *oce_chain;
    const char *oce_label; /* --oce-label L[:V]: SK.OCE in the --keystore token */
    /* what is left for the subcommand, argv[0] being its name (any number:
     * allocated by scp_cli_parse, freed by scp_cli_end / scp_cli_opts_free) */
    int argc;
    char **argv;
} scp_cli_opts;

/* A command's working state. */
typedef struct scp_cli {
    scp_cli_opts o;
    scp_cli_keysrc keysrc;
    scp03_keys keys; /* resolved static keys, or the master for --kdf */
    scp_channel_opts chopts;
    /* ---- keystore plug-in (issue 6) ----
     * With --keystore, scp_cli_keystore_derive (cmd_keystore.c) fills
     * chopts.derive / chopts.derive_ctx from o.keystore, o.master and
     * o.kdf, and may set derive_free to release derive_ctx at the end. */
    void (*derive_free)(void *derive_ctx);
    scp_transport t;
    int t_open;
    void *card; /* scp_card * for --card */
    uint8_t sd_aid[SCP03_AID_MAX]; /* the security domain selected */
    size_t sd_aid_len;
    scp_channel ch;
    int ch_open;
    scp02_channel ch02; /* --scp 02 */
    int ch02_open;
    uint8_t put_key_type; /* keys put --scp 02: 80 DES (default) or 88 AES */
    int s16_known; /* chopts.s16 came from the card's recognition data */
    json_object *doc; /* the one JSON document of --json */
} scp_cli;

/* Parse the common options out of argv (anywhere on the line); what is
 * left goes to o->argv. Returns 0 or SCP_EXIT_USAGE (message printed). */
int scp_cli_parse(int argc, char **argv, scp_cli_opts *o);
void scp_cli_opts_free(scp_cli_opts *o);
/* Set up c from argc/argv: common options, keys, JSON document. */
int scp_cli_begin(scp_cli *c, int argc, char **argv);
/* Resolve the static keys (commands that authenticate call this): warns
 * on stderr when the factory test keys are used. */
int scp_cli_resolve_keys(scp_cli *c);
/* Print the JSON document (with "ok" and, on failure, "error"), close
 * everything, wipe keys. Returns rc for main. */
int scp_cli_end(scp_cli *c, int rc);

/* A subcommand's own options: take "--name VALUE" or "--name" out of
 * c->o.argv; scp_cli_no_more fails when more than `keep` arguments are
 * left (argv[0] is the subcommand). */
const char *scp_cli_take(scp_cli *c, const char *name);
int scp_cli_flag(scp_cli *c, const char *name);
int scp_cli_no_more(scp_cli *c, int keep);
int scp_cli_number(scp_cli *c, const char *name, const char *text, int max, int *out);

/* Report a failure: message on stderr (and into the JSON document). */
int scp_cli_fail(scp_cli *c, int exit_code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Exit code and message for an scp_rc from the library. */
int scp_cli_fail_rc(scp_cli *c, int rc, const char *what);
/* Message for an error status word from the card; exit code 4 (or 3 for
 * authentication status words). */
int scp_cli_fail_sw(scp_cli *c, uint16_t sw, const char *what);

/* Connect to the target (reader or card directory) and SELECT the
 * security domain. */
int scp_cli_connect(scp_cli *c);
/* SELECT an application by AID (hex); *sw gets the status word. */
int scp_cli_select(scp_cli *c, const uint8_t *aid, size_t aid_len, uint16_t *sw);
/* S8 or S16 from the recognition data (GET DATA 66) of what is selected
 * now; apdu --app calls it on the ISD, before selecting the application,
 * which may not answer GET DATA 66 (6982). */
int scp_cli_detect_mode(scp_cli *c);
/* Open the secure channel with the resolved keys; on failure reports what
 * the card said (tries left) and never retries an authentication (see
 * target.c for the one INITIALIZE UPDATE that may be re-sent: 6700). */
int scp_cli_open_channel(scp_cli *c);
/* Resolve the keys, connect and open the channel: what every command that
 * authenticates does first. */
int scp_cli_authenticate(scp_cli *c);
/* SCP11 (cli_scp11.c): the variant --scp asks for (0: SCP03), the SCP11
 * channel open, and the SCP11 keys for `info`. */
int scp_cli_scp11_variant(const scp_cli_opts *o);
int scp_cli_open_scp11(scp_cli *c);
int scp_cli_show_scp11(scp_cli *c);
/* GP life cycle names (GPC v2.3 5.1.1 and tables 11-4/11-5): kind 0x80 the
 * card, 0x40 an application (is_sd: a security domain), 0x20 a load file. */
const char *scp_cli_lifecycle_name(uint8_t kind, uint8_t state, int is_sd);
/* Close the in-process card (scp_cli_end calls it). */
void scp_cli_close_card(scp_cli *c);
/* Drop the channel and re-select the SD (a fresh session can follow). */
int scp_cli_reselect(scp_cli *c);
/* Send a plain command: through the channel when open, else bare. */
int scp_cli_send(scp_cli *c, const uint8_t *capdu, size_t len, uint8_t *resp,
                 size_t resp_size, size_t *resp_len, uint16_t *sw);

/* GET DATA (GPC 11.3) P1P2 = tag, bare or through the channel. */
int scp_cli_get_data(scp_cli *c, uint16_t tag, uint8_t *out, size_t out_size, size_t *out_len,
                     uint16_t *sw);

/* Key information template (GET DATA 00E0, GPC 11.3.3.1): one entry per
 * key. *sw is the card's answer; n = 0 unless 9000. */
typedef struct scp_cli_keyinfo {
    uint8_t id, kvn, type, len;
    uint8_t curve_ref; /* F0 pair (SCP11 EC keys: 00 P-256 ...); 0xFF: none */
} scp_cli_keyinfo;
int scp_cli_read_keyinfo(scp_cli *c, scp_cli_keyinfo *out, size_t max, size_t *n, uint16_t *sw);
#define SCP_CLI_KEYINFO_MAX 32
/* Print / add to the JSON document the key sets the card holds: read
 * (one GET DATA E0), or from a template already read. */
int scp_cli_show_keyinfo(scp_cli *c);
int scp_cli_print_keyinfo(scp_cli *c, const scp_cli_keyinfo *ki, size_t n, uint16_t sw);
const char *scp_cli_key_type(uint8_t type); /* "AES", "DES", ... */

/* Key-set steps (cmd_keys.c), used only by the flow below: new keys from
 * --new-key/--new-enc../--generate; PUT KEY with the channel's DEK (KCVs
 * checked); DELETE KEY by KVN; does the card hold a KVN (1 yes, 0 no, -1
 * unknown); KCVs into the document. */
int scp_cli_keys_new(scp_cli *c, scp03_keys *k, int *generated);
int scp_cli_keys_putkey(scp_cli *c, const scp03_keys *k, int replace, uint16_t *sw);
int scp_cli_keys_delete(scp_cli *c, uint8_t kvn, uint16_t *sw);
int scp_cli_keys_holds(scp_cli *c, uint8_t kvn);
void scp_cli_keys_kcvs(scp_cli *c, const scp03_keys *k);

/* ---- key version numbers: hex, one GP rule (cmd_rotate.c) ---- */
typedef enum scp_cli_kvn_use {
    SCP_KVN_AUTH,     /* a set to authenticate with: 00 (the card's choice)..FF */
    SCP_KVN_EXISTING, /* a set the card holds (DELETE KEY): 01..FF */
    SCP_KVN_NEW,      /* a set PUT KEY creates or replaces: 01..7F */
} scp_cli_kvn_use;
/* 0, or -1 when text is not hex or out of the range for `use`. */
int scp_cli_kvn_parse(const char *text, scp_cli_kvn_use use, int *out);
const char *scp_cli_kvn_rule(scp_cli_kvn_use use); /* the range, in words */
/* The same, reported with scp_cli_fail (exit 1) when refused. */
int scp_cli_kvn(scp_cli *c, const char *name, const char *text, scp_cli_kvn_use use, int *out);
/* Hex number ("10", "0x10", "010" are all 16) in [min, max]: 0 or -1. */
int scp_cli_parse_hex(const char *s, int min, int max, int *out);
/* Is a one of the common options: 0 no, 1 a flag, 2 takes a value. */
int scp_cli_common_option(const char *a);

/* ---- the one flow that changes a card's key sets (cmd_rotate.c) ----
 * keys put, keys delete, keys rotate and keystore rotate all run it:
 * authenticate; make the new keys (make_keys, once the channel is open and
 * the card's KDD known); write them to `out` before the card changes; PUT
 * KEY (add, or over new_kvn with replace); with prove, a new session with
 * the new keys; with delete_old, DELETE the set authenticated with; with
 * delete_kvn, DELETE that set. After a failure past the first change it
 * says which sets the card holds. new_kvn 0: no PUT KEY. */
typedef struct scp_cli_keyplan {
    uint8_t new_kvn; /* 01..7F (SCP_KVN_NEW), or 0 */
    int replace;
    int (*make_keys)(scp_cli *c, void *ctx, scp03_keys *nk);
    void *ctx;
    const char *out;        /* key file to write first, or NULL */
    const char *keys_where; /* for messages: where the new keys are kept */
    int prove, delete_old;
    int delete_kvn;  /* 01..FF, or 0 */
    uint8_t old_kvn; /* out: the set the channel was opened with */
    uint8_t kdd[SCP03_KDD_LEN]; /* out: the card's KDD (once authenticated) */
    int authenticated;          /* out: 1 once the first channel opened */
} scp_cli_keyplan;
int scp_cli_keyplan_run(scp_cli *c, scp_cli_keyplan *p);
int scp_cli_keys_put(scp_cli *c);
int scp_cli_keys_delete_cmd(scp_cli *c);
int scp_cli_keys_rotate(scp_cli *c);

/* ---- keys and key files ---- */
/* Read a key file (JSON {"kvn":N,"enc":HEX,"mac":HEX,"dek":HEX} or
 * {"kvn":N,"key":HEX}); refused unless a regular file of mode 0600 or
 * stricter owned by the user. */
int scp_cli_keyfile_read(const char *path, scp03_keys *out, char *err, size_t err_size);
/* Write a new key file, mode 0600, refusing to overwrite one. */
int scp_cli_keyfile_write(const char *path, const scp03_keys *k, char *err, size_t err_size);
/* Hex key of 16/24/32 bytes. */
int scp_cli_hexkey(const char *hex, uint8_t *out, uint8_t *len);

/* ---- output helpers ---- */
void scp_cli_hex(const uint8_t *p, size_t len, char *out, size_t out_size);
json_object *scp_cli_jhex(const uint8_t *p, size_t len);
const char *scp_cli_sw_text(uint16_t sw); /* scp_sw_explain into a static buffer */
/* Common options help text. */
extern const char scp_cli_common_help[];

/* ---- subcommands: int scp_cli_<name>(int argc, char **argv) ---- */
int scp_cli_readers(int argc, char **argv);
int scp_cli_info(int argc, char **argv);
int scp_cli_keys(int argc, char **argv);
int scp_cli_apdu(int argc, char **argv);
int scp_cli_status(int argc, char **argv);
int scp_cli_lifecycle(int argc, char **argv);
int scp_cli_diversify(int argc, char **argv);
/* Owned by other parts; weak so the binary builds before they land:
 * tools/scpkit/cmd_card.c (virtual card), cmd_keystore.c and cmd_audit.c
 * (keystore, issue 6). */
int scp_cli_card(int argc, char **argv) __attribute__((weak));
int scp_cli_keystore(int argc, char **argv) __attribute__((weak));
int scp_cli_audit(int argc, char **argv) __attribute__((weak));
/* Keystore hook for --keystore: set c->chopts.derive/derive_ctx (and
 * c->derive_free) from c->o.keystore, c->o.master, c->o.kdf. Returns an
 * exit code (0 ok) after reporting any failure with scp_cli_fail. */
int scp_cli_keystore_derive(scp_cli *c) __attribute__((weak));

#endif
