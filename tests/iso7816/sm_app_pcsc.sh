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
command -v pcscd >/dev/null || skip "no pcscd"
[ -f /usr/lib/pcsc/drivers/serial/libifdvpcd.so ] || skip "no vpcd driver"
# tests/lib.sh: the shared pcscd (started, and ended by PID, only when none
# runs), then a free vpcd slot whose card answers with our CIN; both slots
# busy: wait (bounded), never skip
pcscd_ensure "$T/pcscd.log" || { echo "sm_app_pcsc: pcscd lists no vpcd reader" >&2; exit 1; }
expect 0 "$S" card init --state "$T/card" --profile gp23
CIN=$("$S" info --card "$T/card" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["cin"])')
vpcd_attach "$CIN" 240 "$T/card.log" "$S" card run --state "$T/card" --vpcd ||
    { echo "sm_app_pcsc: no vpcd slot came free for our card within 240 s" >&2; exit 1; }
CARD_PID=$VPCD_PID R=$VPCD_READER
expect 0 "$A" -r "$R"
has "$T/out" "test_sm_app (PC/SC): [0-9]* checks, 0 failed"
finish sm_app_pcsc "reader \"$R\""
