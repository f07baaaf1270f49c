/* One device's administration dialog, sans I/O: response scripts in,
 * command scripts out. The SCP03 session runs between this server and the
 * secure element (GPC Amd D through the engine's scp03_host_* calls); the
 * agent in between only relays.
 *
 * The card's true state is checked, never assumed: every session opens a
 * channel with the key sets the registry says the card may hold (the PUT KEY
 * intent first, then the current set) and acts on what opened. Each
 * card-changing step is committed to the registry before its script is
 * returned (intent) and after the card's answer confirms it, so a crash at
 * any point leaves a registry that names every key set the card can hold:
 *   rotate:  set next := target | PUT KEY | (new session) next opens ->
 *            cur := next, prev := old | DELETE KEY prev | prev := none
 * PUT KEY keys are diversified from the target master with the card's KDD,
 * so a retry sends the same keys, never fresh ones. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/guard.h"
#include "ota/ota.h"
#include "scpkit/apdu.h"
#include "scpkit/buf.h"
#include "scpkit/channel.h"
#include "scpkit/crypto.h"

#define SW_OF(b, n) ((uint16_t)((b)[(n)-2] << 8 | (b)[(n)-1]))
static const uint8_t isd_aid[] = { 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00 };

enum { PH_NONE, PH_PROBE, PH_IU, PH_CMD, PH_EA_ONLY };
enum { CMD_PUTKEY = 1, CMD_DELETE, CMD_APP };
enum { CAND_CUR = 1, CAND_NEXT };

struct ota_dialog {
    ota_env *env;
    char id[48];
    ota_device dev;
    ota_job job;
    int has_job;
    int scripts;
    int phase;
    int expect; /* R-APDUs the outstanding script should bring back */
    /* SCP03 */
    scp03_session s;
    uint8_t chal[SCP03_CHAL_MAX];
    size_t chal_len;
    int cand[2], ncand, ci;
    int open;      /* a session with the card is authenticated (IU verified) */
    int open_cand; /* which set opened it */
    int open_isd;  /* opened on the ISD (else on job.app) */
    uint8_t dek[SCP_AES_MAX_KEY], dek_len;
    uint8_t kdd[SCP03_KDD_LEN];
    uint8_t level;
    int ea_pending;
    uint8_t ea[64];
    size_t ea_len;
    int cmd_kind;
    uint8_t kcv[3][3]; /* PUT KEY: the KCVs the card must answer */
    /* the rotation's new keys, derived once per session (PUT KEY, then the
     * session that proves them); wiped when the dialog ends */
    scp03_keys cache;
    ota_keyref cache_ref;
    uint8_t cache_kdd[SCP03_KDD_LEN];
    int cache_ok;
    /* this step recorded an intent or an outcome, or its answer changes
     * the card or ends the dialog: its commit must be durable before the
     * answer leaves (else it may be lazy: ota_dialog_durable) */
    int durable;
    /* this step derived the rotation's target active-only (the keystore
     * checked its state): decide() need not look it up again */
    int target_ok;
    ota_keyref target_ok_ref;
};

void ota_limits_default(ota_limits *l)
{
    l->max_body = 16384;
    l->max_scripts = 32;
    l->step_timeout_ms = 30000;
    l->lease_ms = 60000;
    l->io_timeout_s = 10;
}

const char *ota_dialog_device(const ota_dialog *d) { return d->dev.id; }
int ota_dialog_durable(const ota_dialog *d) { return d->durable; }
int ota_dialog_scripts(const ota_dialog *d) { return d->scripts; }

/* One log line per step: key=value, no key material ever. */
static void dlog(ota_dialog *d, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void dlog(ota_dialog *d, const char *event, const char *fmt, ...)
{
    char buf[256] = "";
    va_list ap;
    if (!d->env->log)
        return;
    if (fmt) {
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
    }
    fprintf(d->env->log, "ota t=%lld dialog=%s device=%s script=%d event=%s%s%s\n",
            (long long)ota_now_ms(), d->id, d->dev.id, d->scripts, event, fmt ? " " : "", buf);
    fflush(d->env->log);
}

static const ota_keyref *cand_ref(ota_dialog *d, int c)
{
    return c == CAND_NEXT ? &d->dev.next : &d->dev.cur;
}

static int same_ref(const ota_keyref *a, const ota_keyref *b)
{
    return a->kvn == b->kvn && strcmp(a->master, b->master) == 0 && strcmp(a->kdf, b->kdf) == 0;
}

/* The card's static keys for a registry key reference, diversified inside
 * the keystore's token (the new set once per session: see cache). */
static int derive(ota_dialog *d, const ota_keyref *k, int require_active, scp03_keys *out)
{
    char label[SCP_KS_LABEL_MAX + 1];
    uint32_t version;
    scp_div_scheme sch;
    if (d->cache_ok && same_ref(&d->cache_ref, k) &&
        memcmp(d->cache_kdd, d->kdd, SCP03_KDD_LEN) == 0) {
        *out = d->cache;
        return SCP_OK;
    }
    GUARD(scp_ks_parse_ref(k->master, label, &version));
    GUARD(scp_div_parse(k->kdf, &sch));
    GUARD(scp_keystore_derive(d->env->ks, label, version, sch, d->kdd, SCP03_KDD_LEN,
                              require_active, out));
    out->kvn = (uint8_t)k->kvn;
    if (require_active) { /* only the rotation's target is derived active-only */
        d->cache = *out;
        d->cache_ref = *k;
        memcpy(d->cache_kdd, d->kdd, SCP03_KDD_LEN);
        d->cache_ok = 1;
    }
    return SCP_OK;
}

/* A rotation about to put the job's target on a card that holds `cur`:
 * the next probe's success leads to PUT KEY of the target (see decide). */
static int rotation_ahead(ota_dialog *d)
{
    return d->has_job && d->job.action == OTA_ACT_ROTATE && d->open_isd && !d->dev.next.kvn &&
           !d->dev.prev.kvn && !same_ref(&d->dev.cur, &d->job.target) &&
           d->job.target.kvn != d->dev.cur.kvn;
}

static int target_unusable(ota_dialog *d, const ota_keyref *k, char *why, size_t size);

/* The card's current keys and the rotation's target in one keystore
 * transaction (scp_keystore_derive_set: each derivation its own audit
 * record, one durable commit for both instead of one each). The target goes
 * to the session's cache for PUT KEY and the session that proves it; both
 * are wiped unless every derivation and the commit succeeded. */
static int derive_cur_and_target(ota_dialog *d, scp03_keys *out)
{
    char lc[SCP_KS_LABEL_MAX + 1], lt[SCP_KS_LABEL_MAX + 1];
    uint32_t vc, vt;
    scp_div_scheme sc, st;
    scp03_keys nk;
    const ota_keyref *c = &d->dev.cur, *t = &d->job.target;
    GUARD(scp_ks_parse_ref(c->master, lc, &vc));
    GUARD(scp_div_parse(c->kdf, &sc));
    GUARD(scp_ks_parse_ref(t->master, lt, &vt));
    GUARD(scp_div_parse(t->kdf, &st));
    scp_ks_derive_req q[2] = { { lc, vc, sc, 0, out, SCP_OK }, { lt, vt, st, 1, &nk, SCP_OK } };
    int rc = scp_keystore_derive_set(d->env->ks, d->kdd, SCP03_KDD_LEN, q, 2, NULL);
    if (rc == SCP_OK) {
        d->target_ok = 1;
        d->target_ok_ref = *t;
        out->kvn = (uint8_t)c->kvn;
        nk.kvn = (uint8_t)t->kvn;
        d->cache = nk;
        d->cache_ref = *t;
        memcpy(d->cache_kdd, d->kdd, SCP03_KDD_LEN);
        d->cache_ok = 1;
    }
    scp_wipe(&nk, sizeof(nk));
    return rc;
}

/* The keys for candidate k after its INITIALIZE UPDATE answer: with a
 * rotation ahead, the current set and the target together (one commit),
 * else k's alone. */
static int derive_for_iu(ota_dialog *d, const ota_keyref *k, int is_next, scp03_keys *out)
{
    char why[OTA_MASTER_MAX + 48];
    if (!is_next && rotation_ahead(d) && !target_unusable(d, &d->job.target, why, sizeof(why)) &&
        derive_cur_and_target(d, out) == SCP_OK)
        return SCP_OK;
    /* no rotation, or the target cannot be derived: the job's own check in
     * decide() says why; the current set alone opens the session */
    return derive(d, k, is_next, out);
}

int ota_dialog_new(ota_env *env, const char *dev, const char *id, ota_dialog **out)
{
    ota_dialog *d = calloc(1, sizeof(*d));
    int rc;
    if (!d)
        return SCP_E_NOMEM;
    d->env = env;
    snprintf(d->id, sizeof(d->id), "%s", id);
    rc = ota_reg_device_get(env->reg, dev, &d->dev);
    if (rc != SCP_OK) {
        free(d);
        return rc;
    }
    *out = d;
    return SCP_OK;
}

static void end_session(ota_dialog *d)
{
    scp03_end(&d->s);
    scp_wipe(d->dek, sizeof(d->dek));
    scp_wipe(d->ea, sizeof(d->ea));
    d->open = 0;
    d->ea_pending = 0;
}

void ota_dialog_free(ota_dialog *d)
{
    if (!d)
        return;
    end_session(d);
    ota_job_free(&d->job);
    scp_wipe(d, sizeof(*d));
    free(d);
}

/* ---- building scripts ---- */

static int answer_script(ota_dialog *d, ota_answer *a, const ota_slice *apdus, size_t n)
{
    size_t need = 4;
    for (size_t k = 0; k < n; k++)
        need += 4 + apdus[k].len;
    if (a->cap < need) {
        uint8_t *p = realloc(a->script, need);
        if (!p)
            return SCP_E_NOMEM;
        a->script = p;
        a->cap = need;
    }
    GUARD(ota_script_encode(0xAE, apdus, n, a->script, a->cap, &a->len));
    a->end = 0;
    d->expect = (int)n;
    d->scripts++;
    return SCP_OK;
}

static size_t select_cmd(const uint8_t *aid, size_t aid_len, uint8_t *out)
{
    memcpy(out, "\x00\xA4\x04\x00", 4);
    out[4] = (uint8_t)aid_len;
    memcpy(out + 5, aid, aid_len);
    out[5 + aid_len] = 0x00;
    return 6 + aid_len;
}

/* INITIALIZE UPDATE for the current candidate, from a placeholder session
 * (the static keys are known only once the card's KDD is). */
static int build_iu(ota_dialog *d, uint8_t *out, size_t out_size, size_t *out_len)
{
    scp03_keys k = { 0 };
    k.key_len = 16;
    k.kvn = (uint8_t)cand_ref(d, d->cand[d->ci])->kvn;
    GUARD(scp03_host_begin(&d->s, &k, d->chal, d->chal_len));
    return scp03_host_initialize_update(&d->s, 0x80, out, out_size, out_len);
}

/* Script: [SELECT aid,] INITIALIZE UPDATE (candidate d->ci). */
static int send_probe(ota_dialog *d, ota_answer *a, int with_select)
{
    uint8_t sel[6 + 16], iu[64], aid[16];
    size_t sl = 0, il, aid_len = sizeof(isd_aid);
    ota_slice ap[2];
    size_t n = 0;

    end_session(d);
    if (with_select) {
        if (d->open_isd) {
            memcpy(aid, isd_aid, sizeof(isd_aid));
        } else {
            GUARD(scp_hex_decode(d->job.app, aid, sizeof(aid), &aid_len));
            ENSURE(aid_len >= 5, SCP_E_ARG);
        }
        sl = select_cmd(aid, aid_len, sel);
        ap[n].p = sel;
        ap[n++].len = sl;
    }
    GUARD(scp_random(d->chal, d->chal_len));
    GUARD(build_iu(d, iu, sizeof(iu), &il));
    ap[n].p = iu;
    ap[n++].len = il;
    d->phase = with_select ? PH_PROBE : PH_IU;
    dlog(d, "probe", "kvn=%02X set=%s chal=%zu app=%s", cand_ref(d, d->cand[d->ci])->kvn,
         d->cand[d->ci] == CAND_NEXT ? "next" : "current", d->chal_len,
         d->open_isd ? "isd" : d->job.app);
    return answer_script(d, a, ap, n);
}

static int start_probe(ota_dialog *d, ota_answer *a, int isd)
{
    d->ncand = 0;
    if (isd && d->dev.next.kvn)
        d->cand[d->ncand++] = CAND_NEXT;
    d->cand[d->ncand++] = CAND_CUR;
    d->ci = 0;
    d->chal_len = 8;
    d->open_isd = isd;
    return send_probe(d, a, 1);
}

/* [EXTERNAL AUTHENTICATE,] one wrapped command. */
static int send_wrapped(ota_dialog *d, ota_answer *a, const uint8_t *cmd, size_t len, int kind)
{
    uint8_t wire[SCP_APDU_SHORT_MAX + SCP03_WRAP_OVERHEAD + 8];
    size_t wl, n = 0;
    ota_slice ap[2];
    int rc;

    if (d->ea_pending) {
        /* the EA answer comes back with the command's; a refusal there
         * ends the session before the command's answer is trusted */
        GUARD(scp03_host_ea_result(&d->s, 0x9000));
        ap[n].p = d->ea;
        ap[n++].len = d->ea_len;
    }
    d->durable = 1; /* the step before a card-changing command is recorded first */
    rc = scp03_host_wrap(&d->s, cmd, len, wire, sizeof(wire), &wl);
    if (rc != SCP_OK)
        return rc;
    ap[n].p = wire;
    ap[n++].len = wl;
    d->cmd_kind = kind;
    d->phase = PH_CMD;
    rc = answer_script(d, a, ap, n);
    scp_wipe(wire, sizeof(wire));
    return rc;
}

static int send_putkey(ota_dialog *d, ota_answer *a)
{
    uint8_t cmd[5 + SCP_GP_PUTKEY_MAX + 1];
    scp03_keys nk;
    size_t dl;
    int rc;

    rc = derive(d, &d->dev.next, 1, &nk);
    if (rc == SCP_OK)
        rc = scp_gp_putkey_build(d->dek, d->dek_len, &nk, cmd + 5, sizeof(cmd) - 6, &dl);
    if (rc == SCP_OK)
        rc = scp_kcv_aes(nk.enc, nk.key_len, d->kcv[0]);
    if (rc == SCP_OK)
        rc = scp_kcv_aes(nk.mac, nk.key_len, d->kcv[1]);
    if (rc == SCP_OK)
        rc = scp_kcv_aes(nk.dek, nk.key_len, d->kcv[2]);
    scp_wipe(&nk, sizeof(nk));
    if (rc == SCP_OK) {
        memcpy(cmd, "\x80\xD8\x00\x81", 4); /* GPC 11.8: add a new key set */
        cmd[4] = (uint8_t)dl;
        cmd[5 + dl] = 0x00;
        dlog(d, "put-key", "new_kvn=%02X master=%s kdf=%s", d->dev.next.kvn, d->dev.next.master,
             d->dev.next.kdf);
        rc = send_wrapped(d, a, cmd, dl + 6, CMD_PUTKEY);
    }
    scp_wipe(cmd, sizeof(cmd));
    return rc;
}

static int send_delete(ota_dialog *d, ota_answer *a)
{
    uint8_t cmd[5 + 8];
    size_t dl;
    GUARD(scp_gp_deletekey_build((uint8_t)d->dev.prev.kvn, 0, cmd + 5, sizeof(cmd) - 5, &dl));
    memcpy(cmd, "\x80\xE4\x00\x00", 4);
    cmd[4] = (uint8_t)dl;
    dlog(d, "delete-key", "kvn=%02X", d->dev.prev.kvn);
    return send_wrapped(d, a, cmd, 5 + dl, CMD_DELETE);
}

/* The job's command number `step` (hex list, ';'-separated). */
static int job_cmd(ota_dialog *d, int step, uint8_t *out, size_t out_size, size_t *out_len)
{
    const char *p = d->job.cmds_hex;
    char hex[2 * SCP_APDU_SHORT_MAX + 2];
    for (int k = 0; k < step && p; k++) {
        p = strchr(p, ';');
        if (p)
            p++;
    }
    if (!p || !*p)
        return SCP_E_NOT_FOUND;
    size_t l = strcspn(p, ";");
    ENSURE(l < sizeof(hex), SCP_E_LENGTH);
    memcpy(hex, p, l);
    hex[l] = 0;
    return scp_hex_decode(hex, out, out_size, out_len);
}

/* ---- ending ---- */

static void job_fail(ota_dialog *d, const char *reason)
{
    d->durable = 1;
    if (d->has_job && ota_reg_job_set(d->env->reg, d->job.id, "failed", d->job.step, reason) != SCP_OK)
        dlog(d, "registry-error", "msg=\"%s\"", ota_reg_errmsg(d->env->reg));
    ota_reg_event(d->env->reg, d->dev.id, d->id, "job-failed", reason);
    dlog(d, "job-failed", "reason=\"%s\"", reason);
    d->has_job = 0;
}

void ota_dialog_abort(ota_dialog *d, const char *reason)
{
    if (!d)
        return;
    end_session(d);
    d->phase = PH_NONE;
    d->durable = 1;
    ota_reg_event(d->env->reg, d->dev.id, d->id, "session-aborted", reason);
    dlog(d, "abort", "reason=\"%s\"", reason);
    if (d->has_job) {
        /* the job stays to do: a broken or hostile session says nothing
         * about the card; only the card's own answers fail a job */
        if (ota_reg_job_attempt(d->env->reg, d->job.id, reason) != SCP_OK)
            dlog(d, "registry-error", "msg=\"%s\"", ota_reg_errmsg(d->env->reg));
        d->has_job = 0;
    }
}

static int fail_step(ota_dialog *d, ota_answer *a, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_step(ota_dialog *d, ota_answer *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->reason, sizeof(a->reason), fmt, ap);
    va_end(ap);
    ota_dialog_abort(d, a->reason);
    a->end = 1;
    a->len = 0;
    return SCP_E_STATE;
}

static int finish(ota_dialog *d, ota_answer *a)
{
    d->durable = 1;
    end_session(d);
    d->phase = PH_NONE;
    a->end = 1;
    a->len = 0;
    dlog(d, "end", NULL);
    return SCP_OK;
}

/* ---- what to do next ---- */

/* A rotation's target master must be active in the keystore (SP 800-57
 * lifecycle: pre-activation, suspended, deactivated, compromised and
 * destroyed keys open no sessions and are never put on a card). 1 with
 * the reason in why when it is not (or is not in the keystore): the job
 * fails at once instead of staying to do forever. */
static int target_unusable(ota_dialog *d, const ota_keyref *k, char *why, size_t size)
{
    char label[SCP_KS_LABEL_MAX + 1];
    uint32_t version;
    scp_ks_key_info info;
    int rc = scp_ks_parse_ref(k->master, label, &version);
    if (rc == SCP_OK)
        rc = scp_keystore_get(d->env->ks, label, version, &info);
    if (rc == SCP_E_NOT_FOUND || rc == SCP_E_ARG) {
        snprintf(why, size, "target master %s is not in the keystore", k->master);
        return 1;
    }
    if (rc != SCP_OK)
        return 0; /* the keystore is unavailable: not the job's fault, derive() will say */
    if (info.state != SCP_KS_ACTIVE) {
        snprintf(why, size, "target master %s is %s, not active", k->master,
                 scp_ks_state_name(info.state));
        return 1;
    }
    return 0;
}

static int pick_job(ota_dialog *d)
{
    int rc;
    ota_job_free(&d->job);
    d->has_job = 0;
    rc = ota_reg_job_next(d->env->reg, d->dev.id, &d->job);
    if (rc < 0)
        return rc;
    if (rc == 1) {
        d->has_job = 1;
        GUARD(ota_reg_job_set(d->env->reg, d->job.id, "running", d->job.step, NULL));
        dlog(d, "job", "campaign=%s action=%d step=%d", d->job.campaign, d->job.action,
             d->job.step);
    }
    return SCP_OK;
}

static int job_done(ota_dialog *d)
{
    d->durable = 1;
    GUARD(ota_reg_job_set(d->env->reg, d->job.id, "done", d->job.step, ""));
    ota_reg_event(d->env->reg, d->dev.id, d->id, "job-done", d->job.campaign);
    dlog(d, "job-done", "campaign=%s", d->job.campaign);
    return pick_job(d);
}

static int decide(ota_dialog *d, ota_answer *a)
{
    char why[OTA_MASTER_MAX + 48];
    for (int guard = 0; guard < 16; guard++) {
        GUARD(ota_reg_device_get(d->env->reg, d->dev.id, &d->dev));
        if (d->scripts >= d->env->lim.max_scripts)
            return fail_step(d, a, "too many scripts in one session (limit %d)",
                             d->env->lim.max_scripts);
        int rotate = d->has_job && d->job.action == OTA_ACT_ROTATE;
        if (d->dev.next.kvn || d->dev.prev.kvn || rotate) {
            if (!d->open || !d->open_isd)
                return start_probe(d, a, 1);
            if (d->dev.prev.kvn && d->dev.prev.kvn != d->dev.cur.kvn)
                return send_delete(d, a);
            if (d->dev.prev.kvn) { /* same KVN replaced: nothing left to delete */
                d->durable = 1;
                GUARD(ota_reg_clear_prev(d->env->reg, d->dev.id));
                continue;
            }
            if (d->dev.next.kvn) {
                /* the probe showed the card does not hold it */
                if (rotate && same_ref(&d->dev.next, &d->job.target) &&
                    !target_unusable(d, &d->job.target, why, sizeof(why)))
                    return send_putkey(d, a);
                if (rotate && same_ref(&d->dev.next, &d->job.target))
                    job_fail(d, why); /* the card does not hold it: the intent goes too */
                d->durable = 1;
                GUARD(ota_reg_clear_next(d->env->reg, d->dev.id));
                ota_reg_event(d->env->reg, d->dev.id, d->id, "intent-dropped",
                              "the card does not hold the intended key set");
                continue;
            }
            if (rotate) {
                if (same_ref(&d->dev.cur, &d->job.target)) {
                    GUARD(job_done(d));
                    continue;
                }
                if (d->job.target.kvn == d->dev.cur.kvn) {
                    job_fail(d, "new KVN equals the device's current KVN");
                    continue;
                }
                if (!(d->target_ok && same_ref(&d->target_ok_ref, &d->job.target)) &&
                    target_unusable(d, &d->job.target, why, sizeof(why))) {
                    job_fail(d, why);
                    continue;
                }
                /* intent first: the registry knows the keys before the card can */
                d->durable = 1;
                GUARD(ota_reg_set_next(d->env->reg, d->dev.id, &d->job.target));
                ota_reg_event(d->env->reg, d->dev.id, d->id, "put-key-intent", d->job.target.master);
                GUARD(ota_reg_device_get(d->env->reg, d->dev.id, &d->dev));
                ota_fault_point("server", "intent-recorded");
                return send_putkey(d, a);
            }
        }
        if (d->has_job) { /* script / put-data to job.app */
            uint8_t cmd[SCP_APDU_SHORT_MAX];
            size_t cl;
            int rc = job_cmd(d, d->job.step, cmd, sizeof(cmd), &cl);
            if (rc == SCP_E_NOT_FOUND) {
                GUARD(job_done(d));
                continue;
            }
            if (rc != SCP_OK) {
                job_fail(d, "bad command in the campaign's script");
                continue;
            }
            if (!d->open || d->open_isd)
                return start_probe(d, a, 0);
            dlog(d, "command", "n=%d hdr=%02X%02X%02X%02X", d->job.step, cmd[0], cmd[1], cmd[2],
                 cmd[3]);
            return send_wrapped(d, a, cmd, cl, CMD_APP);
        }
        if (d->ea_pending) { /* finish the authentication the card counted */
            ota_slice ap = { d->ea, d->ea_len };
            d->durable = 1;
            d->phase = PH_EA_ONLY;
            return answer_script(d, a, &ap, 1);
        }
        return finish(d, a);
    }
    return fail_step(d, a, "no progress");
}

int ota_dialog_start(ota_dialog *d, ota_answer *a)
{
    a->reason[0] = 0;
    d->durable = 0;
    d->target_ok = 0;
    GUARD(pick_job(d));
    dlog(d, "start", "kvn=%02X next=%02X prev=%02X", d->dev.cur.kvn, d->dev.next.kvn,
         d->dev.prev.kvn);
    return decide(d, a);
}

/* ---- reading response scripts ---- */

/* The IU answer of the current candidate. */
static int on_iu(ota_dialog *d, ota_answer *a, const ota_slice *r)
{
    uint16_t sw = SW_OF(r->p, r->len);
    const ota_keyref *k = cand_ref(d, d->cand[d->ci]);
    scp03_iu_resp ir;
    scp03_keys keys;
    uint8_t iu[64];
    size_t il;
    int rc;

    dlog(d, "iu", "kvn=%02X sw=%04X", k->kvn, sw);
    if (sw == 0x6700 && d->chal_len == 8) { /* an S16 card (fact sheet §6) */
        d->chal_len = 16;
        return send_probe(d, a, 0);
    }
    if (sw == 0x9000) {
        if (scp03_iu_resp_parse(r->p, r->len - 2, &ir) != SCP_OK)
            return fail_step(d, a, "malformed INITIALIZE UPDATE response");
        if (ir.kvn != k->kvn)
            return fail_step(d, a, "card answered with KVN %02X, asked for %02X", ir.kvn, k->kvn);
        memcpy(d->kdd, ir.kdd, sizeof(d->kdd));
        rc = derive_for_iu(d, k, d->cand[d->ci] == CAND_NEXT, &keys);
        if (rc != SCP_OK) {
            scp_wipe(&keys, sizeof(keys));
            return fail_step(d, a, "keystore: %s for %s", scp_strerror(rc), k->master);
        }
        memcpy(d->dek, keys.dek, keys.key_len);
        d->dek_len = keys.key_len;
        rc = scp03_host_begin(&d->s, &keys, d->chal, d->chal_len);
        scp_wipe(&keys, sizeof(keys));
        if (rc == SCP_OK)
            rc = scp03_host_initialize_update(&d->s, 0x80, iu, sizeof(iu), &il);
        if (rc == SCP_OK)
            rc = scp03_host_iu_response(&d->s, r->p, r->len - 2);
        if (rc == SCP_OK) {
            d->level = scp_level_strongest(ir.i);
            rc = scp03_host_external_authenticate(&d->s, d->level, d->ea, sizeof(d->ea),
                                                  &d->ea_len);
            if (rc != SCP_OK)
                return fail_step(d, a, "EXTERNAL AUTHENTICATE: %s", scp_strerror(rc));
            d->open = 1;
            d->ea_pending = 1;
            d->open_cand = d->cand[d->ci];
            dlog(d, "opened", "kvn=%02X set=%s level=%02X", k->kvn,
                 d->open_cand == CAND_NEXT ? "next" : "current", d->level);
            if (d->open_cand == CAND_NEXT) {
                /* the new keys open a channel: the rotation is applied */
                char label[SCP_KS_LABEL_MAX + 1];
                uint32_t v;
                scp_div_scheme sch;
                d->durable = 1;
                GUARD(ota_reg_promote_next(d->env->reg, d->dev.id));
                ota_reg_event(d->env->reg, d->dev.id, d->id, "new-keys-confirmed", k->master);
                if (scp_ks_parse_ref(k->master, label, &v) == SCP_OK &&
                    scp_div_parse(k->kdf, &sch) == SCP_OK &&
                    scp_keystore_card_set(d->env->ks, d->kdd, SCP03_KDD_LEN, label, v, sch,
                                          (uint8_t)k->kvn) != SCP_OK)
                    dlog(d, "keystore-warning", "card record not updated");
                ota_fault_point("server", "promoted");
            }
            return decide(d, a);
        }
        if (rc != SCP_E_CRYPTOGRAM)
            return fail_step(d, a, "INITIALIZE UPDATE: %s", scp_strerror(rc));
        dlog(d, "wrong-cryptogram", "kvn=%02X", k->kvn);
        ota_reg_event(d->env->reg, d->dev.id, d->id, "wrong-card-cryptogram", k->master);
    } else if (sw != 0x6A88) {
        return fail_step(d, a, "INITIALIZE UPDATE refused: SW %04X", sw);
    }
    /* this set is not on the card: the next candidate */
    if (++d->ci < d->ncand) {
        d->chal_len = 8;
        return send_probe(d, a, 0);
    }
    end_session(d);
    if (d->has_job)
        job_fail(d, "no key set the registry knows opens a channel");
    return fail_step(d, a, "no key set the registry knows opens a channel");
}

static int on_cmd(ota_dialog *d, ota_answer *a, const ota_slice *r, size_t n)
{
    uint8_t plain[SCP_APDU_SHORT_MAX + 2];
    size_t pl, i = 0;
    uint16_t sw;
    int rc;

    if (d->ea_pending) {
        uint16_t easw = SW_OF(r[0].p, r[0].len);
        d->ea_pending = 0;
        if (easw != 0x9000)
            return fail_step(d, a, "card refused EXTERNAL AUTHENTICATE: SW %04X", easw);
        i = 1;
    }
    if (n <= i)
        return fail_step(d, a, "response script without the command's answer (outcome unknown)");
    rc = scp03_host_unwrap(&d->s, r[i].p, r[i].len, plain, sizeof(plain), &pl);
    if (rc != SCP_OK)
        return fail_step(d, a, "R-APDU rejected: %s", scp_strerror(rc));
    sw = SW_OF(plain, pl);
    ota_fault_point("server", "answer-received");
    switch (d->cmd_kind) {
    case CMD_PUTKEY:
        dlog(d, "put-key-answer", "sw=%04X", sw);
        if (sw != 0x9000) {
            char why[64];
            /* refused: nothing was written on the card */
            d->durable = 1;
            GUARD(ota_reg_clear_next(d->env->reg, d->dev.id));
            snprintf(why, sizeof(why), "PUT KEY refused: SW %04X", sw);
            job_fail(d, why);
            return decide(d, a);
        }
        if (pl >= 12 && (!scp_ct_eq(plain + 1, d->kcv[0], 3) || !scp_ct_eq(plain + 4, d->kcv[1], 3) ||
                         !scp_ct_eq(plain + 7, d->kcv[2], 3))) {
            job_fail(d, "PUT KEY: the card's key check values differ");
            return fail_step(d, a, "PUT KEY: the card's key check values differ");
        }
        ota_reg_event(d->env->reg, d->dev.id, d->id, "put-key-confirmed", d->dev.next.master);
        end_session(d); /* prove the new keys in a new session */
        return decide(d, a);
    case CMD_DELETE:
        dlog(d, "delete-key-answer", "sw=%04X", sw);
        if (sw != 0x9000 && sw != 0x6A88) {
            char why[64];
            snprintf(why, sizeof(why), "DELETE KEY refused: SW %04X", sw);
            return fail_step(d, a, "%s", why);
        }
        d->durable = 1;
        GUARD(ota_reg_clear_prev(d->env->reg, d->dev.id));
        ota_reg_event(d->env->reg, d->dev.id, d->id, "old-keys-deleted", d->dev.prev.master);
        return decide(d, a);
    default:
        dlog(d, "command-answer", "n=%d sw=%04X", d->job.step, sw);
        if (sw != 0x9000) {
            char why[64];
            snprintf(why, sizeof(why), "command %d refused: SW %04X", d->job.step, sw);
            job_fail(d, why);
            return decide(d, a);
        }
        d->job.step++;
        d->durable = 1;
        GUARD(ota_reg_job_set(d->env->reg, d->job.id, "running", d->job.step, NULL));
        return decide(d, a);
    }
}

int ota_dialog_step(ota_dialog *d, const char *status, const uint8_t *body, size_t len,
                    ota_answer *a)
{
    ota_slice r[OTA_SCRIPT_MAX_APDUS];
    size_t n = 0;
    uint8_t err_tag = 0;
    int rc;

    a->reason[0] = 0;
    d->durable = 0;
    d->target_ok = 0;
    if (d->phase == PH_NONE)
        return fail_step(d, a, "no script outstanding");
    if (!status || strcmp(status, "ok") != 0)
        return fail_step(d, a, "agent reports script status \"%.40s\"", status ? status : "(none)");
    rc = ota_script_decode(body, len, 0xAF, 0xAB, 0x23, r, OTA_SCRIPT_MAX_APDUS, &n, &err_tag);
    if (rc != SCP_OK)
        return fail_step(d, a, "malformed response script: %s", scp_strerror(rc));
    if ((int)n > d->expect)
        return fail_step(d, a, "more responses (%zu) than commands (%d)", n, d->expect);
    if (err_tag)
        dlog(d, "script-error-tag", "tag=%02X", err_tag);
    switch (d->phase) {
    case PH_PROBE:
        if (n < 1)
            return fail_step(d, a, "empty response script");
        if (SW_OF(r[0].p, r[0].len) != 0x9000) {
            uint16_t sw = SW_OF(r[0].p, r[0].len);
            if (!d->open_isd && d->has_job) {
                char why[128];
                snprintf(why, sizeof(why), "application %s not selectable: SW %04X", d->job.app, sw);
                job_fail(d, why);
                return decide(d, a);
            }
            return fail_step(d, a, "SELECT refused: SW %04X", sw);
        }
        if (n < 2)
            return fail_step(d, a, "INITIALIZE UPDATE did not run");
        return on_iu(d, a, &r[1]);
    case PH_IU:
        if (n < 1)
            return fail_step(d, a, "INITIALIZE UPDATE did not run");
        return on_iu(d, a, &r[0]);
    case PH_CMD:
        if (n < 1)
            return fail_step(d, a, "empty response script (outcome unknown)");
        return on_cmd(d, a, r, n);
    case PH_EA_ONLY:
        if (n < 1 || scp03_host_ea_result(&d->s, SW_OF(r[0].p, r[0].len)) != SCP_OK)
            return fail_step(d, a, "card refused EXTERNAL AUTHENTICATE");
        d->ea_pending = 0;
        return finish(d, a);
    default:
        return fail_step(d, a, "unexpected phase");
    }
}
