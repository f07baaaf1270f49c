#!/bin/sh
# Fault injection for the keystore (issue 12): SIGKILL at every write point
# of every keystore command, then the invariants. A write point is each
# fsync, rename, SQLite commit (before and after) and PKCS#11 call that
# changes the token; SCP_KS_CRASH_AT=N makes the Nth one of a process raise
# SIGKILL, SCP_KS_CRASH_TRACE counts them (src/keys/gen.c).
#
# For every command (generate, import by combine, split ceremony, EC key
# pairs generated and imported, a certificate signed by an EC CA key,
# custodian-add, activate, suspend, deactivate, compromise, destroy from two
# states, derive, diversify through a card session, rotate, audit
# checkpoint): the command's write points are counted on a copy of a base
# keystore, then for N = 1..count the base is restored and the command is
# killed at point N. After each kill:
#   - the keystore opens (`keystore list`: token loadable; recovery runs),
#   - no key that existed before is lost (label, version, KCV; only the
#     command's own target may have become destroyed),
#   - `audit verify` passes: no false TAMPERED, no orphan key in the token,
#     no key missing from it, every key's history complete and its
#     creation audited, every table as the log says,
#   - the keystore still takes a write (a new key is generated).
# Then kills inside the recovery itself (the open after a kill, killed at
# each of its own write points, then opened again).
#
# Usage: crash.sh path/to/scpkit [check|quick|soak [SECONDS [KILLS]]]
#   check: everything above (make check, release build)
#   quick: every 3rd write point (the ASan build: same paths, less time)
#   soak:  every write point, then random kills from outside (kill -9 at a
#          random instant while another command runs beside it) until KILLS
#          of them landed (default 700) or SECONDS passed (default 1800)
# The last line gives the number of injected kills.
set -u
S=${1:?usage: crash.sh path/to/scpkit [check|quick|soak SECONDS]}
MODE=${2:-check}
SOAK_SECONDS=${3:-1800}
SOAK_KILLS=${4:-700}
# on tmpfs when there is one: fsync is free there, a SIGKILL is the same
T=$(mktemp -d /dev/shm/scpkit-crash.XXXXXX 2>/dev/null || mktemp -d /tmp/scpkit-crash.XXXXXX)
trap 'rm -rf "$T"' EXIT INT TERM
. "$(dirname "$0")/../lib.sh"
export SCPKIT_SO_PIN=so-pin-4711 SCPKIT_USER_PIN=user-pin-0815 SCPKIT_ACTOR=crash-test
export SCPKIT_KS_LOCK_WAIT=20000
unset SCP_KS_CRASH_AT SCP_KS_CRASH_TRACE SCP_KS_FAULT
KS=$T/ks
CARD=$T/card
KILLS=0
# check: every write point, except that of a run of fsyncs of one token
# generation (the files of tokens.work, before its rename: every kill in
# the run leaves the same state, an unswitched work copy) only the first
# and the last are killed; soak (and SCP_KS_CRASH_ALL=1): every point;
# quick (sanitizers): every 5th point.
STEP=1 AFTER_EVERY=10 ALL=${SCP_KS_CRASH_ALL:-0}
[ "$MODE" = quick ] && STEP=5
[ "$MODE" = soak ] && ALL=1

q() { "$@" >"$T/q.out" 2>"$T/q.err"; }
cust() { SCPKIT_CUSTODIAN_PIN_1=alice-pin SCPKIT_CUSTODIAN_PIN_2=bob-pin-2 "$@"; }

# ---- the base keystore: keys in every state a command needs, a card
q "$S" keystore init --dir "$KS" || { cat "$T/q.err"; bad "init"; finish crash; exit 1; }
for l in k-pre k-act k-sus k-deac xor; do q "$S" keystore generate --dir "$KS" --label $l --type aes128 || bad "generate $l"; done
q "$S" keystore generate --dir "$KS" --label old --type des2 || bad "generate des2"
SCPKIT_CUSTODIAN_PIN=alice-pin q "$S" keystore custodian-add --dir "$KS" alice || bad "custodian alice"
SCPKIT_CUSTODIAN_PIN=bob-pin-2 q "$S" keystore custodian-add --dir "$KS" bob || bad "custodian bob"
for l in k-act k-sus k-deac xor; do cust q "$S" keystore activate --dir "$KS" $l:1 --reason base --custodian alice --custodian bob || bad "activate $l"; done
q "$S" keystore state --dir "$KS" k-sus:1 suspended --reason base || bad "suspend"
q "$S" keystore state --dir "$KS" k-deac:1 deactivated --reason base || bad "deactivate"
q "$S" keystore split --dir "$KS" --master shr:1 --type aes128 --scheme xor -n 2 || bad "split"
grep '^share' "$T/q.out" | sed 's/^share [0-9]*: //' >"$T/shares.txt"
IMPKCV=$(sed -n 's/^shr:1 aes128 KCV \([0-9A-F]*\).*/\1/p' "$T/q.out")
HAVE_CARD=0
if q "$S" card init --state "$CARD" &&
    q "$S" keystore rotate --dir "$KS" --card "$CARD" --new-master xor:1 --new-kdf kdf3 --new-kvn 1 &&
    q "$S" keystore generate --dir "$KS" --label xor --type aes128 &&
    cust q "$S" keystore activate --dir "$KS" xor:2 --reason base --custodian alice --custodian bob; then
    HAVE_CARD=1
else
    bad "the virtual card could not be provisioned: $(cat "$T/q.err")"
fi
# EC key pairs (issue 16): an active CA key with its certificate, and a
# private key file to import
q "$S" keystore generate --dir "$KS" --label eca --type ec-p256 || bad "generate ec"
cust q "$S" keystore activate --dir "$KS" eca:1 --reason base --custodian alice --custodian bob || bad "activate eca"
q "$S" keystore ca cert --dir "$KS" --ca eca --cn "crash CA" --out "$T/eca.pem" || bad "ca cert"
q openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$T/imp-ec.key" || bad "openssl genpkey"
q "$S" audit verify --dir "$KS" || bad "base keystore does not verify: $(cat "$T/q.err")"
q "$S" keystore list --dir "$KS" && awk 'NR > 1 { print $1, $2, $4, $5 }' "$T/q.out" >"$T/base.keys"
cp -a "$KS" "$T/base"
[ $HAVE_CARD -eq 1 ] && cp -a "$CARD" "$T/base-card"

restore() {
    rm -rf "$KS" "$CARD" "$T/shares-out"
    cp -a "$T/base" "$KS"
    [ $HAVE_CARD -eq 1 ] && cp -a "$T/base-card" "$CARD"
    mkdir -m 700 "$T/shares-out"
}

# ---- the commands (name, the key it may destroy, argv)
# (EXEC=exec in a background subshell: the command replaces the subshell,
# so the PID that `kill -9` hits is the scpkit process itself)
EXEC=
run_cmd() { # run_cmd NAME: the command, stdin from /dev/null unless it needs one
    case $1 in
    generate) $EXEC "$S" keystore generate --dir "$KS" --label gen --type aes256 ;;
    generate-des) $EXEC "$S" keystore generate --dir "$KS" --label gdes --type des3 ;;
    import) $EXEC "$S" keystore combine --dir "$KS" --master imp --kcv "$IMPKCV" <"$T/shares.txt" ;;
    split) $EXEC "$S" keystore split --dir "$KS" --master cer --type aes256 --scheme shamir -m 2 -n 3 --out-dir "$T/shares-out" ;;
    custodian-add) SCPKIT_CUSTODIAN_PIN=carol-pin-3 $EXEC "$S" keystore custodian-add --dir "$KS" carol ;;
    activate) cust $EXEC "$S" keystore activate --dir "$KS" k-pre:1 --reason crash --custodian alice --custodian bob ;;
    suspend) $EXEC "$S" keystore state --dir "$KS" k-act:1 suspended --reason crash ;;
    resume) cust $EXEC "$S" keystore activate --dir "$KS" k-sus:1 --reason crash --custodian alice --custodian bob ;;
    deactivate) $EXEC "$S" keystore state --dir "$KS" k-act:1 deactivated --reason crash ;;
    compromise) $EXEC "$S" keystore state --dir "$KS" k-act:1 compromised --reason crash ;;
    destroy) $EXEC "$S" keystore state --dir "$KS" k-deac:1 destroyed --reason crash ;;
    destroy-pre) $EXEC "$S" keystore state --dir "$KS" k-pre:1 destroyed --reason crash ;;
    derive) $EXEC "$S" keystore derive --dir "$KS" --master xor:1 --kdf kdf3 --kdd 00112233445566778899 ;;
    diversify) $EXEC "$S" apdu --card "$CARD" --keystore "$KS" --master xor:1 --kdf kdf3 80CA00E000 ;;
    rotate) $EXEC "$S" keystore rotate --card "$CARD" --keystore "$KS" --master xor:1 --kdf kdf3 --new-master xor:2 --new-kvn 2 ;;
    checkpoint) $EXEC "$S" audit checkpoint --dir "$KS" ;;
    generate-ec) $EXEC "$S" keystore generate --dir "$KS" --label gec --type ec-bp256 ;;
    import-ec) $EXEC "$S" keystore import-ec --dir "$KS" --label iec --in "$T/imp-ec.key" ;;
    ca-issue) $EXEC "$S" keystore ca issue --dir "$KS" --ca eca --ca-cert "$T/eca.pem" --subject eca --cn leaf --out "$T/leaf.pem" ;;
    verify) $EXEC "$S" audit verify --dir "$KS" ;;
    esac
}
target() { case $1 in destroy|recovery-destroy*) echo k-deac:1 ;; destroy-pre) echo k-pre:1 ;; *) echo - ;; esac; }
CMDS="generate generate-des generate-ec import-ec ca-issue import split custodian-add activate suspend resume deactivate compromise destroy destroy-pre derive checkpoint verify"
[ $HAVE_CARD -eq 1 ] && CMDS="$CMDS diversify rotate"

# keys_kept BASE LIST TARGET: every key of BASE ("label version kcv state"
# lines) is in LIST (`keystore list` output) with its KCV; only TARGET
# ("label:version") may have become destroyed
keys_kept() {
    awk -v tgt="$3" 'NR == FNR { base[$1 " " $2] = $3; st[$1 " " $2] = $4; next }
        FNR > 1 { kcv[$1 " " $2] = $4; now[$1 " " $2] = $5 }
        END { bad = 0
            for (k in base) {
                if (!(k in kcv) || kcv[k] != base[k]) { print "key " k " lost"; bad = 1 }
                else if (now[k] == "destroyed" && st[k] != "destroyed") {
                    split(k, p, " "); if (tgt != "any" && p[1] ":" p[2] != tgt) { print "key " k " destroyed"; bad = 1 } } }
            exit bad }' "$1" "$2" >"$T/kept.err" 2>&1
}

# check NAME N: the invariants after a kill
check() {
    if ! q "$S" keystore list --dir "$KS"; then
        bad "$1 killed at $2: the keystore does not open: $(cat "$T/q.err")"; return; fi
    if keys_kept "$T/base.keys" "$T/q.out" "$(target "$1")"; then ok
    else bad "$1 killed at $2: a key was lost: $(cat "$T/kept.err")"; fi
    if q "$S" audit verify --dir "$KS"; then ok
    else bad "$1 killed at $2: audit verify: $(cat "$T/q.err")"; cp -a "$KS" "$T/../scpkit-crash-failed-$1-$2" 2>/dev/null; fi
    [ $((KILLS % AFTER_EVERY)) -eq 0 ] || return 0
    if q "$S" keystore generate --dir "$KS" --label after --type aes128; then ok
    else bad "$1 killed at $2: no write afterwards: $(cat "$T/q.err")"; fi
}

# inner_fsync TRACE N: point N is an fsync between two fsyncs
inner_fsync() {
    awk -v n="$2" 'NR == n - 1 { a = $2 } NR == n { b = $2 } NR == n + 1 { c = $2 }
        END { exit !(a == "fsync" && b == "fsync" && c == "fsync") }' "$1"
}

# killed CMD...: run, expect death by SIGKILL
killed() {
    "$@" >/dev/null 2>"$T/k.err" </dev/null
    rc=$?
    if [ $rc -eq 137 ]; then KILLS=$((KILLS + 1)); return 0; fi
    return 1
}

for c in $CMDS; do
    restore
    rm -f "$T/trace"
    if SCP_KS_CRASH_TRACE="$T/trace" run_cmd $c >/dev/null 2>"$T/k.err" </dev/null; then ok
    else bad "$c fails without a crash: $(cat "$T/k.err")"; continue; fi
    points=0
    [ -f "$T/trace" ] && points=$(wc -l <"$T/trace") && cp "$T/trace" "$T/trace.$c"
    echo "$c: $points write points" >>"$T/points"
    n=1
    while [ $n -le $points ]; do
        if [ $ALL -eq 0 ] && [ $STEP -eq 1 ] && inner_fsync "$T/trace.$c" $n; then
            n=$((n + 1)); continue; fi
        restore
        if SCP_KS_CRASH_AT=$n killed run_cmd $c; then check $c $n
        else bad "$c with SCP_KS_CRASH_AT=$n was not killed (exit $rc): $(cat "$T/k.err")"; fi
        n=$((n + STEP))
    done
done

# ---- kills inside recovery: the command killed at one of its points
# (before its token switch, or right after it), then the next open (which
# settles it) killed at each of its own.
switched() { # the first point after the live token was switched
    echo $(($(grep -n ' rename-link$' "$T/trace.$1" | tail -1 | cut -d: -f1) + 1))
}
for spec in generate:4 generate:$(switched generate) import:$(switched import) \
    split:$(switched split) destroy:4 destroy:$(switched destroy); do
    c=${spec%%:*} at=${spec#*:}
    restore
    SCP_KS_CRASH_AT=$at killed run_cmd $c || { bad "$c not killed at $at"; continue; }
    cp -a "$KS" "$T/crashed"
    rm -f "$T/trace"
    SCP_KS_CRASH_TRACE="$T/trace" q "$S" keystore list --dir "$KS" || bad "recovery after $c:$at"
    points=0
    [ -f "$T/trace" ] && points=$(wc -l <"$T/trace")
    echo "recovery after $c:$at: $points write points" >>"$T/points"
    n=1
    while [ $n -le $points ]; do
        rm -rf "$KS"; cp -a "$T/crashed" "$KS"
        if SCP_KS_CRASH_AT=$n killed "$S" keystore list --dir "$KS"; then check "recovery-$c-$at" $n
        else bad "recovery after $c:$at with SCP_KS_CRASH_AT=$n was not killed"; fi
        n=$((n + STEP))
    done
    rm -rf "$T/crashed"
done
sed 's/^/  /' "$T/points"

# ---- soak: kill -9 from outside at random instants, one process or two
# at once, for SOAK_SECONDS; state carries over from kill to kill.
if [ "$MODE" = soak ]; then
    restore
    cp "$T/base.keys" "$T/soak.keys"
    end=$(($(date +%s) + SOAK_SECONDS))
    RANDOM_KILLS=0
    i=0
    while [ "$(date +%s)" -lt $end ]; do
        i=$((i + 1))
        # two commands at once, one of them killed after 0..80 ms
        set -- $CMDS
        a=$(awk -v s="1$i$$" -v l="$*" 'BEGIN { srand(s); n = split(l, w, " "); print w[int(rand() * n) + 1] }')
        b=$(awk -v s="2$i$$" -v l="$*" 'BEGIN { srand(s); n = split(l, w, " "); print w[int(rand() * n) + 1] }')
        delay=$(awk -v s="$i$$" 'BEGIN { srand(s); printf "%.3f", rand() * 0.08 }')
        (EXEC=exec; run_cmd "$a" >/dev/null 2>&1 </dev/null) &
        pa=$!
        (EXEC=exec; run_cmd "$b" >/dev/null 2>&1 </dev/null) &
        pb=$!
        sleep "$delay"
        kill -KILL $pa 2>/dev/null
        wait $pa; ra=$?
        wait $pb
        [ $ra -eq 137 ] && KILLS=$((KILLS + 1)) && RANDOM_KILLS=$((RANDOM_KILLS + 1))
        # the keys that existed must survive whatever ran and was killed
        if ! q "$S" keystore list --dir "$KS"; then bad "soak $i ($a killed, $b): does not open: $(cat "$T/q.err")"; break; fi
        if keys_kept "$T/soak.keys" "$T/q.out" any; then ok; else bad "soak $i ($a killed, $b): $(cat "$T/kept.err")"; fi
        awk 'NR > 1 { print $1, $2, $4, $5 }' "$T/q.out" >"$T/soak.keys"
        if q "$S" audit verify --dir "$KS"; then ok; else
            bad "soak $i ($a killed, $b): audit verify: $(cat "$T/q.err")"
            cp -a "$KS" "$T/../scpkit-soak-failed.$$" 2>/dev/null
            echo "(the keystore is kept in $T/../scpkit-soak-failed.$$)" >&2
            break
        fi
        # a fresh base now and then, so destroyed and rotated keys come back
        [ $((i % 40)) -eq 0 ] && { restore; cp "$T/base.keys" "$T/soak.keys"; }
        [ $RANDOM_KILLS -ge "$SOAK_KILLS" ] && break
    done
fi
finish crash "$KILLS injected kills"
