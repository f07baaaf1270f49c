#!/bin/bash
# Interop: the virtual card as a real PC/SC card through pcscd + vpcd.
# Reuses a running pcscd (never ends it) or starts its own (ended by PID);
# runs `scpkit card run`, reaches the card with opensc-tool (SELECT, GET
# DATA CPLC in plain, CLA 00 and 80) and with scpkit's own host through
# PC/SC at every level (status, PUT KEY, key list), restarts its own pcscd
# to check the card reconnects, then SIGTERMs the card and checks its state
# survived and the trace redacted the key. Every wait is bounded.
set -u
SCPKIT=${1:?usage: pcsc_interop.sh path/to/scpkit}
PORT=35964 # slot 1: slot 0 is the CLI tests' (both run under RESOURCE_LOCK pcsc)
READER="Virtual PCD 00 01"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/scpinterop.XXXXXX")
PCSCD_PID=""
CARD_PID=""
NEWKEY=000102030405060708090A0B0C0D0E0F

. "$(dirname "$0")/../lib.sh"
cleanup() {
    [ -n "$CARD_PID" ] && stop_pid "$CARD_PID"
    [ -n "$PCSCD_PID" ] && stop_pid "$PCSCD_PID"
    rm -rf "$TMP"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*"
    for f in card.log trace.txt pcscd.log; do [ -f "$TMP/$f" ] && { echo "--- $f"; tail -20 "$TMP/$f"; }; done
    exit 1
}
reader_listed() { opensc-tool -l 2>/dev/null | grep -q "Virtual PCD"; }
card_present() { opensc-tool -l 2>/dev/null | grep -E "^[0-9]+ +Yes +.*$READER" >/dev/null; }
start_pcscd() {
    mkdir -p /run/pcscd
    pcscd --foreground >>"$TMP/pcscd.log" 2>&1 &
    PCSCD_PID=$!
    wait_for 20 reader_listed || fail "pcscd did not list the vpcd reader"
}

for t in pcscd opensc-tool; do
    command -v $t >/dev/null || { echo "SKIP: $t not installed"; exit 77; }
done
[ -f /etc/reader.conf.d/vpcd ] || { echo "SKIP: vsmartcard-vpcd not installed"; exit 77; }

OWN_PCSCD=0
if [ -S /run/pcscd/pcscd.comm ] && reader_listed; then
    echo "reusing the running pcscd"
else
    start_pcscd
    OWN_PCSCD=1
    echo "started pcscd, pid $PCSCD_PID"
fi

"$SCPKIT" card init --state "$TMP/card" --profile gp23 >/dev/null || fail "card init"
start_card() {
    "$SCPKIT" card run --state "$TMP/card" --vpcd 127.0.0.1:$PORT --trace "$TMP/trace.txt" \
        >>"$TMP/card.log" 2>&1 &
    CARD_PID=$!
}
start_card
wait_for 30 card_present || fail "the card did not appear in $READER"
IDX=$(opensc-tool -l | awk -v r="$READER" 'index($0, r) { print $1; exit }')

# --- an independent PC/SC client: opensc-tool, plain APDUs ---
OUT=$(opensc-tool -r "$IDX" -s 00A4040008A000000151000000 -s 80CA9F7F00 -s 00CA9F7F 2>&1)
echo "$OUT"
[ "$(echo "$OUT" | grep -c 'SW1=0x90, SW2=0x00')" -eq 3 ] || fail "SELECT/GET DATA not 9000"
echo "$OUT" | grep -q "^9F 7F 2A 40 90" || fail "CPLC is not 9F7F 2A 40 90 ..."
cplc() { opensc-tool -r "$IDX" -s 00CA9F7F00 2>/dev/null | grep -E '^[0-9A-F]{2} ' | cut -c1-47 | tr -d ' \n'; }
CPLC1=$(cplc)
same_cplc() { [ "$(cplc)" = "$CPLC1" ]; }
[ ${#CPLC1} -eq 90 ] || fail "CPLC is ${#CPLC1} hex digits, want 90 (9F7F 2A + 42 bytes)"
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
"$SCPKIT" status -r "$READER" >/dev/null 2>&1 && fail "the factory keys still open a channel"
"$SCPKIT" status -r "$READER" --kvn 1 --key $NEWKEY >/dev/null 2>&1 || fail "new key set refused"

# --- pcscd restarts (only our own): the card reconnects by itself ---
if [ $OWN_PCSCD -eq 1 ]; then
    stop_pid "$PCSCD_PID"
    PCSCD_PID=""
    start_pcscd
    wait_for 30 card_present || fail "the card did not come back after a pcscd restart"
    IDX=$(opensc-tool -l | awk -v r="$READER" 'index($0, r) { print $1; exit }')
    wait_for 20 same_cplc || fail "CPLC changed across the pcscd restart"
    echo "reconnected after a pcscd restart"
fi

# `card show` reads the state while `card run` holds the card
"$SCPKIT" card show --state "$TMP/card" | grep -q "kvn 01" || fail "card show while running"

# --- SIGTERM: a clean stop, the state intact ---
kill -TERM "$CARD_PID"
n=0
while kill -0 "$CARD_PID" 2>/dev/null && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
kill -0 "$CARD_PID" 2>/dev/null && fail "the card did not stop on SIGTERM within 10 s"
wait "$CARD_PID"
RC=$?
CARD_PID=""
[ $RC -eq 0 ] || fail "card run exited $RC after SIGTERM"
"$SCPKIT" card show --state "$TMP/card" >"$TMP/show.txt" || fail "state unreadable after stop"
cat "$TMP/show.txt"
grep -q "kvn 01" "$TMP/show.txt" || fail "the new key set was lost"
grep -q "kvn FF" "$TMP/show.txt" && fail "the factory set is still there"
grep -q "C: 00A4040008A000000151000000" "$TMP/trace.txt" || fail "trace misses the SELECT"
grep -q "80D8.*<redacted>" "$TMP/trace.txt" || fail "trace has no redacted PUT KEY"
grep -qi "$NEWKEY" "$TMP/trace.txt" && fail "trace holds key material"
# a restart serves the same card (same CPLC), through vpcd again
start_card
wait_for 30 card_present || fail "the card did not come back after its own restart"
IDX=$(opensc-tool -l | awk -v r="$READER" 'index($0, r) { print $1; exit }')
# (pcscd may still be noticing the old card's removal: poll, bounded)
wait_for 20 same_cplc || fail "CPLC changed across a card restart"
echo "PASS"
exit 0
