#!/bin/bash
# Interop: the virtual card as a real PC/SC card through pcscd + vpcd.
# Reuses a running pcscd (never ends it) or starts its own (ended by PID);
# runs `scpkit card run` on a free vpcd slot and talks to it only once the
# reader's card answers GET DATA 45 with this card's CIN (tests/lib.sh
# vpcd_attach: both slots busy -> waits, bounded). Then: opensc-tool
# (SELECT, GET DATA CPLC in plain, CLA 00 and 80; the ATR's historical
# bytes in ISO 7816-4 form), scpkit's own host through PC/SC at every
# level (status, PUT KEY, key list), a restart of its own pcscd (the card
# reconnects), SIGTERM (the state survived, the trace redacted the key),
# and a restart of the card. Every wait is bounded.
set -u
SCPKIT=${1:?usage: pcsc_interop.sh path/to/scpkit}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/scpinterop.XXXXXX")
PCSCD_PID=""
VPCD_PID=""
NEWKEY=000102030405060708090A0B0C0D0E0F

. "$(dirname "$0")/../lib.sh"
cleanup() {
    [ -n "$VPCD_PID" ] && stop_pid "$VPCD_PID"
    [ -n "$PCSCD_PID" ] && stop_pid "$PCSCD_PID"
    rm -rf "$TMP"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*"
    for f in card.log trace.txt pcscd.log; do [ -f "$TMP/$f" ] && { echo "--- $f"; tail -20 "$TMP/$f"; }; done
    exit 1
}

for t in pcscd opensc-tool; do
    command -v $t >/dev/null || fail "$t not installed (scripts/deps.sh)"
done
[ -f /etc/reader.conf.d/vpcd ] || fail "vsmartcard-vpcd not installed (scripts/deps.sh)"

pcscd_ensure "$TMP/pcscd.log" || fail "pcscd lists no vpcd reader"
OWN_PCSCD=0
[ -n "$PCSCD_PID" ] && OWN_PCSCD=1

"$SCPKIT" card init --state "$TMP/card" --profile gp23 >/dev/null || fail "card init"
CIN=$("$SCPKIT" card show --state "$TMP/card" | awk '/^cin / { print $2 }')
[ ${#CIN} -eq 16 ] || fail "no CIN in card show"
vpcd_attach "$CIN" 240 "$TMP/card.log" \
    "$SCPKIT" card run --state "$TMP/card" --trace "$TMP/trace.txt" --vpcd ||
    fail "no vpcd slot came free for this test's card within 240 s"
READER=$VPCD_READER
echo "our card is in $READER"
IDX=$(pcsc_index "$READER")

# --- an independent PC/SC client: opensc-tool, plain APDUs ---
OUT=$(opensc-tool -r "$IDX" -s 00A4040008A000000151000000 -s 80CA9F7F00 -s 00CA9F7F 2>&1)
echo "$OUT"
[ "$(echo "$OUT" | grep -c 'SW1=0x90, SW2=0x00')" -eq 3 ] || fail "SELECT/GET DATA not 9000"
echo "$OUT" | grep -q "^9F 7F 2A 40 90" || fail "CPLC is not 9F7F 2A 40 90 ..."
cplc() { opensc-tool -r "$IDX" -s 00CA9F7F00 2>/dev/null | grep -E '^[0-9A-F]{2} ' | cut -c1-47 | tr -d ' \n'; }
CPLC1=$(cplc)
same_cplc() { [ "$(cplc)" = "$CPLC1" ]; }
[ ${#CPLC1} -eq 90 ] || fail "CPLC is ${#CPLC1} hex digits, want 90 (9F7F 2A + 42 bytes)"
# the ATR as pcscd reports it: 3B 8C 80 01 | 80 (category) 73 C0 00 00
# (card capabilities) 56 "scpkit" (issuer data) | TCK
ATR=$(opensc-tool -r "$IDX" -a 2>/dev/null | tr -d ' :\n' | tr a-f A-F)
case "$ATR" in
3B8C80018073C00000567363706B6974*) ;;
*) fail "ATR $ATR: historical bytes not category 80 + compact TLV" ;;
esac
opensc-tool -r "$IDX" -s 00A4040008A000000152000000 2>&1 | grep -q 'SW1=0x6A, SW2=0x82' ||
    fail "unknown AID not 6A82"
# the store application is there but answers nothing without a channel
OUT=$(opensc-tool -r "$IDX" -s 00A4040008F07363706B697401 -s 00CA010100 2>&1)
echo "$OUT" | grep -q 'SW1=0x69, SW2=0x82' || fail "store app readable without a channel"

# --- scpkit's host through PC/SC at every level ---
for L in 01 03 11 13 33; do
    "$SCPKIT" status -r "$READER" --level $L >"$TMP/status.txt" 2>&1 || {
        cat "$TMP/status.txt"; fail "scpkit status at level $L"; }
    grep -q A000000151000000 "$TMP/status.txt" || fail "status at $L does not list the ISD"
done
"$SCPKIT" keys put -r "$READER" --new-kvn 1 --new-key $NEWKEY >"$TMP/put.txt" 2>&1 || {
    cat "$TMP/put.txt"; fail "scpkit keys put"; }
# gp23: the initial set stays beside the new one (only a YubiKey drops it)
"$SCPKIT" status -r "$READER" >/dev/null 2>&1 || fail "the initial set no longer opens a channel"
"$SCPKIT" status -r "$READER" --kvn 1 --key $NEWKEY >/dev/null 2>&1 || fail "new key set refused"

# --- pcscd restarts (only our own): the card reconnects by itself ---
if [ $OWN_PCSCD -eq 1 ]; then
    stop_pid "$PCSCD_PID"
    PCSCD_PID=""
    pcscd_ensure "$TMP/pcscd.log" || fail "pcscd did not come back"
    wait_for 30 pcsc_is_ours "$READER" "$CIN" || fail "the card did not come back after a pcscd restart"
    IDX=$(pcsc_index "$READER")
    wait_for 20 same_cplc || fail "CPLC changed across the pcscd restart"
    echo "reconnected after a pcscd restart"
fi

# `card show` reads the state while `card run` holds the card
"$SCPKIT" card show --state "$TMP/card" | grep -q "kvn 01" || fail "card show while running"

# --- SIGTERM: a clean stop, the state intact ---
kill -TERM "$VPCD_PID"
n=0
while kill -0 "$VPCD_PID" 2>/dev/null && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
kill -0 "$VPCD_PID" 2>/dev/null && fail "the card did not stop on SIGTERM within 10 s"
wait "$VPCD_PID"
RC=$?
VPCD_PID=""
[ $RC -eq 0 ] || fail "card run exited $RC after SIGTERM"
"$SCPKIT" card show --state "$TMP/card" >"$TMP/show.txt" || fail "state unreadable after stop"
cat "$TMP/show.txt"
grep -q "kvn 01" "$TMP/show.txt" || fail "the new key set was lost"
grep -q "kvn FF" "$TMP/show.txt" || fail "the initial set was lost"
grep -q "C: 00A4040008A000000151000000" "$TMP/trace.txt" || fail "trace misses the SELECT"
grep -q "80D8.*<redacted>" "$TMP/trace.txt" || fail "trace has no redacted PUT KEY"
grep -qi "$NEWKEY" "$TMP/trace.txt" && fail "trace holds key material"
# a restart serves the same card (same CIN and CPLC), through vpcd again
vpcd_attach "$CIN" 240 "$TMP/card.log" "$SCPKIT" card run --state "$TMP/card" --vpcd ||
    fail "the card did not come back after its own restart"
IDX=$(pcsc_index "$VPCD_READER")
# (pcscd may still be noticing the old card's removal: poll, bounded)
wait_for 20 same_cplc || fail "CPLC changed across a card restart"
echo "PASS"
exit 0
