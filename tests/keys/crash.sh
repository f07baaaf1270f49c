#!/bin/sh
# Fault injection for the keystore (issue 12): SIGKILL at every write point
# of every keystore command, then the invariants. A write point is each
# fsync, rename, SQLite commit (before and after) and PKCS#11 call that
# changes the token; SCP_KS_CRASH_AT=N makes the Nth one of a process raise
# SIGKILL, SCP_KS_CRASH_TRACE counts them (src/keys/gen.c).
#
# For every command (generate, import by combine, split ceremony,
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
# Usage: crash.sh path/to/scpkit [check|quick|soak SECONDS]
#   check: everything above (make check, release build)
#   quick: every 3rd write point (the ASan build: same paths, less time)
#   soak:  as check, then random kills from outside (kill -9 at a random
#          instant, concurrent processes included) for SECONDS (make soak)
# The last line gives the number of injected kills.
set -u
S=${1:?usage: crash.sh path/to/scpkit [check|quick|soak SECONDS]}
MODE=${2:-check}
SOAK_SECONDS=${3:-120}
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
STEP=1 AFTER_EVERY=3
[ "$MODE" = quick ] && STEP=5

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
q "$S" audit verify --dir "$KS" || bad "base keystore does not verify: $(cat "$T/q.err")"
q "$S" keystore list --dir "$KS" --json && cp "$T/q.out" "$T/base.json"
cp -a "$KS" "$T/base"
[ $HAVE_CARD -eq 1 ] && cp -a "$CARD" "$T/base-card"

restore() {
    rm -rf "$KS" "$CARD" "$T/shares-out"
    cp -a "$T/base" "$KS"
    [ $HAVE_CARD -eq 1 ] && cp -a "$T/base-card" "$CARD"
    mkdir -m 700 "$T/shares-out"
}

# ---- the commands (name, the key it may destroy, argv)
run_cmd() { # run_cmd NAME: the command, stdin from /dev/null unless it needs one
    case $1 in
    generate) "$S" keystore generate --dir "$KS" --label gen --type aes256 ;;
    generate-des) "$S" keystore generate --dir "$KS" --label gdes --type des3 ;;
    import) "$S" keystore combine --dir "$KS" --master imp --kcv "$IMPKCV" <"$T/shares.txt" ;;
    split) "$S" keystore split --dir "$KS" --master cer --type aes256 --scheme shamir -m 2 -n 3 --out-dir "$T/shares-out" ;;
    custodian-add) SCPKIT_CUSTODIAN_PIN=carol-pin-3 "$S" keystore custodian-add --dir "$KS" carol ;;
    activate) cust "$S" keystore activate --dir "$KS" k-pre:1 --reason crash --custodian alice --custodian bob ;;
    suspend) "$S" keystore state --dir "$KS" k-act:1 suspended --reason crash ;;
    resume) cust "$S" keystore activate --dir "$KS" k-sus:1 --reason crash --custodian alice --custodian bob ;;
    deactivate) "$S" keystore state --dir "$KS" k-act:1 deactivated --reason crash ;;
    compromise) "$S" keystore state --dir "$KS" k-act:1 compromised --reason crash ;;
    destroy) "$S" keystore state --dir "$KS" k-deac:1 destroyed --reason crash ;;
    destroy-pre) "$S" keystore state --dir "$KS" k-pre:1 destroyed --reason crash ;;
    derive) "$S" keystore derive --dir "$KS" --master xor:1 --kdf kdf3 --kdd 00112233445566778899 ;;
    diversify) "$S" apdu --card "$CARD" --keystore "$KS" --master xor:1 --kdf kdf3 80CA00E000 ;;
    rotate) "$S" keystore rotate --card "$CARD" --keystore "$KS" --master xor:1 --kdf kdf3 --new-master xor:2 --new-kvn 2 ;;
    checkpoint) "$S" audit checkpoint --dir "$KS" ;;
    verify) "$S" audit verify --dir "$KS" ;;
    esac
}
target() { case $1 in destroy|recovery-destroy*) echo k-deac:1 ;; destroy-pre) echo k-pre:1 ;; *) echo - ;; esac; }
CMDS="generate generate-des import split custodian-add activate suspend resume deactivate compromise destroy destroy-pre derive checkpoint verify"
[ $HAVE_CARD -eq 1 ] && CMDS="$CMDS diversify rotate"

# check NAME N: the invariants after a kill
check() {
    if ! q "$S" keystore list --dir "$KS" --json; then
        bad "$1 killed at $2: the keystore does not open: $(cat "$T/q.err")"; return; fi
    cp "$T/q.out" "$T/after.json"
    if python3 - "$T/base.json" "$T/after.json" "$(target "$1")" <<'EOF'
import json, sys
base = {(k["label"], k["version"]): k for k in json.load(open(sys.argv[1]))["keys"]}
after = {(k["label"], k["version"]): k for k in json.load(open(sys.argv[2]))["keys"]}
tgt = sys.argv[3]
for ref, k in base.items():
    a = after.get(ref)
    if a is None or a["kcv"] != k["kcv"]:
        print("key %s:%d lost" % ref); sys.exit(1)
    if a["state"] == "destroyed" and k["state"] != "destroyed" and "%s:%d" % ref != tgt:
        print("key %s:%d destroyed" % ref); sys.exit(1)
EOF
    then ok; else bad "$1 killed at $2: a key was lost"; fi
    if q "$S" audit verify --dir "$KS" --json; then ok
    else bad "$1 killed at $2: audit verify: $(cat "$T/q.err")"; cp -a "$KS" "$T/../scpkit-crash-failed-$1-$2" 2>/dev/null; fi
    [ $((KILLS % AFTER_EVERY)) -eq 0 ] || return 0
    if q "$S" keystore generate --dir "$KS" --label after --type aes128; then ok
    else bad "$1 killed at $2: no write afterwards: $(cat "$T/q.err")"; fi
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
    cp "$T/base.json" "$T/soak-base.json"
    end=$(($(date +%s) + SOAK_SECONDS))
    i=0
    while [ "$(date +%s)" -lt $end ]; do
        i=$((i + 1))
        # two commands at once, one of them killed after 0..80 ms
        set -- $CMDS
        a=$(python3 -c 'import random,sys; print(random.choice(sys.argv[1:]))' "$@")
        b=$(python3 -c 'import random,sys; print(random.choice(sys.argv[1:]))' "$@")
        delay=$(python3 -c 'import random; print("%.3f" % random.uniform(0, 0.08))')
        run_cmd "$a" >/dev/null 2>&1 </dev/null &
        pa=$!
        run_cmd "$b" >/dev/null 2>&1 </dev/null &
        pb=$!
        sleep "$delay"
        kill -KILL $pa 2>/dev/null
        wait $pa; ra=$?
        wait $pb
        [ $ra -eq 137 ] && KILLS=$((KILLS + 1))
        # the base keys must survive whatever ran before
        if ! q "$S" keystore list --dir "$KS" --json; then bad "soak $i ($a killed, $b): does not open: $(cat "$T/q.err")"; break; fi
        cp "$T/q.out" "$T/after.json"
        python3 - "$T/soak-base.json" "$T/after.json" <<'EOF' && ok || bad "soak $i ($a killed, $b): a key was lost"
import json, sys
base = {(k["label"], k["version"]): k for k in json.load(open(sys.argv[1]))["keys"]}
after = {(k["label"], k["version"]): k for k in json.load(open(sys.argv[2]))["keys"]}
sys.exit(0 if all(r in after and after[r]["kcv"] == k["kcv"] for r, k in base.items()) else 1)
EOF
        cp "$T/after.json" "$T/soak-base.json"
        if q "$S" audit verify --dir "$KS"; then ok; else bad "soak $i ($a killed, $b): audit verify: $(cat "$T/q.err")"; break; fi
        # a fresh base now and then, so destroyed and rotated keys come back
        [ $((i % 40)) -eq 0 ] && { restore; cp "$T/base.json" "$T/soak-base.json"; }
    done
fi
finish crash "$KILLS injected kills"
