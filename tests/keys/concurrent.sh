#!/bin/sh
# Several processes on one keystore at once (issue 12): four derive loops
# (readers: read-only sessions, no lock), a writer loop (generate, state
# changes, destroy: the writer lock and token write transactions) and a
# custodian loop (SQLite writes), all started together. Every command
# must succeed (none refused as busy), then `audit verify` passes and the
# log holds exactly one derive record per derive run; a reader that starts
# while a writer holds the lock is not blocked.
# Usage: concurrent.sh path/to/scpkit
set -u
S=${1:?usage: concurrent.sh path/to/scpkit}
T=$(mktemp -d /tmp/scpkit-conc.XXXXXX)
trap 'rm -rf "$T"' EXIT INT TERM
. "$(dirname "$0")/../lib.sh"
export SCPKIT_SO_PIN=so-pin-4711 SCPKIT_USER_PIN=user-pin-0815 SCPKIT_ACTOR=concurrent-test
unset SCP_KS_CRASH_AT SCP_KS_CRASH_TRACE SCP_KS_FAULT
KS=$T/ks
N=25
expect 0 "$S" keystore init --dir "$KS"
expect 0 "$S" keystore generate --dir "$KS" --label m --type aes128
SCPKIT_CUSTODIAN_PIN=alice-pin expect 0 "$S" keystore custodian-add --dir "$KS" alice
SCPKIT_CUSTODIAN_PIN=bob-pin-2 expect 0 "$S" keystore custodian-add --dir "$KS" bob
SCPKIT_CUSTODIAN_PIN_1=alice-pin SCPKIT_CUSTODIAN_PIN_2=bob-pin-2 \
    expect 0 "$S" keystore activate --dir "$KS" m:1 --reason live --custodian alice --custodian bob
expect 0 "$S" keystore derive --dir "$KS" --master m:1 --kdf kdf3 --kdd 00000000000000000000
REF=$(cat "$T/out")

reader() { # reader ID: N derives, each must give the reference KCVs
    i=0 f=0
    while [ $i -lt $N ]; do
        out=$("$S" keystore derive --dir "$KS" --master m:1 --kdf kdf3 --kdd 00000000000000000000 2>>"$T/reader.err") || f=$((f + 1))
        [ "$out" = "$REF" ] || f=$((f + 1))
        i=$((i + 1))
    done
    echo $f >"$T/reader.$1"
}
writer() {
    i=0 f=0
    while [ $i -lt 8 ]; do
        "$S" keystore generate --dir "$KS" --label w --type aes128 >/dev/null 2>>"$T/writer.err" || f=$((f + 1))
        "$S" keystore state --dir "$KS" w compromised --reason test >/dev/null 2>>"$T/writer.err" || f=$((f + 1))
        "$S" keystore state --dir "$KS" w destroyed --reason test >/dev/null 2>>"$T/writer.err" || f=$((f + 1))
        i=$((i + 1))
    done
    echo $f >"$T/writer"
}
custodians() {
    i=0 f=0
    while [ $i -lt 6 ]; do
        SCPKIT_CUSTODIAN_PIN=pin-of-c$i "$S" keystore custodian-add --dir "$KS" c$i >/dev/null 2>>"$T/cust.err" || f=$((f + 1))
        i=$((i + 1))
    done
    echo $f >"$T/custodians"
}
for r in 1 2 3 4; do reader $r & done
writer &
custodians &
wait
for r in 1 2 3 4; do
    [ "$(cat "$T/reader.$r")" = 0 ] && ok || bad "reader $r: $(cat "$T/reader.$r") failures: $(cat "$T/reader.err")"
done
[ "$(cat "$T/writer")" = 0 ] && ok || bad "writer: $(cat "$T/writer") failures: $(cat "$T/writer.err")"
[ "$(cat "$T/custodians")" = 0 ] && ok || bad "custodians: $(cat "$T/custodians") failures: $(cat "$T/cust.err")"
expect 0 "$S" audit verify --dir "$KS"
has "$T/out" "audit log intact"
expect 0 "$S" audit show --dir "$KS" --json
json "$T/out" "sum(1 for r in d['records'] if r['op'] == 'derive:kdf3' and r['result'] == 'success') == 4 * $N + 1"
json "$T/out" "sum(1 for r in d['records'] if r['op'] == 'state:destroyed') == 8"
expect 0 "$S" keystore list --dir "$KS" --json
json "$T/out" "[k['version'] for k in d['keys'] if k['label'] == 'w'] == list(range(1, 9))"

# a reader is not blocked by a writer holding the lock
python3 -c 'import fcntl, sys, time; f = open(sys.argv[1], "a"); fcntl.flock(f, fcntl.LOCK_EX); open(sys.argv[2], "w").close(); time.sleep(30)' "$KS/lock" "$T/held" &
LP=$!
wait_for 15 test -e "$T/held" || bad "the lock holder did not start"
expect 0 "$S" keystore derive --dir "$KS" --master m:1 --kdf kdf3 --kdd 00000000000000000000
expect 0 "$S" keystore list --dir "$KS"
stop_pid $LP

# a reader killed with its view open leaves it behind; the next open (a
# reader too) removes it
SCP_KS_CRASH_AT=1 "$S" keystore derive --dir "$KS" --master m:1 --kdf kdf3 --kdd 00000000000000000000 >/dev/null 2>&1
[ "$(ls -d "$KS"/view.* 2>/dev/null | wc -l)" -gt 0 ] && ok || bad "the killed reader left no view (test broken)"
expect 0 "$S" keystore derive --dir "$KS" --master m:1 --kdf kdf3 --kdd 00000000000000000000
[ "$(ls -d "$KS"/view.* 2>/dev/null | wc -l)" -eq 0 ] && ok || bad "a dead reader's view is left: $(ls "$KS")"
finish concurrent
