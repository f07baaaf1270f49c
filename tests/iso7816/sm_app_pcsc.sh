#!/bin/sh
# The ISO SM application (src/card/sm_app.c) through pcscd + vpcd: the card
# runs as `scpkit card run --vpcd`, test_sm_app reaches it as a PC/SC
# reader. Reuses a running pcscd whose vpcd port answers, else starts its
# own and ends it by PID; exit 77 when pcscd/vpcd are not installed (as the
# other PC/SC tests). Usage: sm_app_pcsc.sh path/to/scpkit path/to/test_sm_app
set -u
S=${1:?usage: sm_app_pcsc.sh scpkit test_sm_app}
A=${2:?usage: sm_app_pcsc.sh scpkit test_sm_app}
T=$(mktemp -d /tmp/scpkit-smapp.XXXXXX)
PCSCD_PID=
CARD_PID=
. "$(dirname "$0")/../lib.sh"
cleanup() {
    [ -n "$CARD_PID" ] && stop_pid "$CARD_PID"
    [ -n "$PCSCD_PID" ] && stop_pid "$PCSCD_PID"
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
skip() { echo "sm_app_pcsc: skipped: $*"; exit 77; }
listening() { ss -ltn 2>/dev/null | grep -q "[:.]$1 "; }
reader_state() {
    "$S" readers --json 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
r = [x for x in d.get("readers", []) if x["name"] == sys.argv[1]]
print("missing" if not r else ("present" if r[0]["card_present"] else "empty"))' "$1"
}
is_state() { [ "$(reader_state "$1")" = "$2" ]; }

command -v pcscd >/dev/null || skip "no pcscd"
[ -f /usr/lib/pcsc/drivers/serial/libifdvpcd.so ] || skip "no vpcd driver"
if ! listening 35963; then
    pcscd --foreground >"$T/pcscd.log" 2>&1 &
    PCSCD_PID=$!
    wait_for 15 listening 35963 || skip "pcscd did not open the vpcd port"
fi
wait_for 10 is_state "Virtual PCD 00 00" empty || is_state "Virtual PCD 00 00" present ||
    skip "pcscd lists no vpcd reader"
expect 0 "$S" card init --state "$T/card" --profile gp23
CIN=$("$S" info --card "$T/card" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["cin"])')
ours() { [ "$("$S" info -r "$R" --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get("cin"))' 2>/dev/null)" = "$CIN" ]; }
SLOT=
for s in 0 1 0 1; do
    R="Virtual PCD 00 0$s"
    is_state "$R" empty || continue
    "$S" card run --state "$T/card" --vpcd 127.0.0.1:$((35963 + s)) >"$T/card.log" 2>&1 &
    CARD_PID=$!
    if wait_for 10 ours; then SLOT=$s; break; fi
    stop_pid "$CARD_PID"; CARD_PID=
    sleep 2
done
[ -n "$SLOT" ] || skip "no free vpcd slot (other PC/SC tests running?)"
expect 0 "$A" -r "$R"
has "$T/out" "test_sm_app (PC/SC): [0-9]* checks, 0 failed"
finish sm_app_pcsc "reader \"$R\""
