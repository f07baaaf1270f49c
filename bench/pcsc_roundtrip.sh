#!/bin/bash
# The channel's share of a real PC/SC round trip (issues 5 and 11): plain
# GET DATA vs the same under SCP03 level 33, in alternating rounds of one
# run, and the overhead in percent, through pcscd + vsmartcard's vpcd and
# the virtual card (`scpkit card run`). Reuses a running pcscd whose vpcd
# reader is listed (never ends it), or starts its own and ends it by PID.
# Every wait is bounded.
#
#   bench/pcsc_roundtrip.sh [BUILD_DIR] [N]     (default: build, 500)
set -u
BUILD=${1:-build}
N=${2:-500}
SCPKIT=$BUILD/tools/scpkit
BENCH=$BUILD/bench/scp_pcsc_bench
PORT=35963
READER="Virtual PCD 00 00"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/scppcscbench.XXXXXX")
PCSCD_PID=""
CARD_PID=""

. "$(dirname "$0")/../tests/lib.sh"
cleanup() {
    [ -n "$CARD_PID" ] && stop_pid "$CARD_PID"
    [ -n "$PCSCD_PID" ] && stop_pid "$PCSCD_PID"
    rm -rf "$TMP"
}
trap cleanup EXIT
die() { echo "pcsc_roundtrip: $*" >&2; for f in "$TMP"/*.log; do [ -f "$f" ] && tail -5 "$f"; done; exit 1; }
reader_listed() { opensc-tool -l 2>/dev/null | grep -q "Virtual PCD"; }
card_present() { opensc-tool -l 2>/dev/null | grep -E "^[0-9]+ +Yes +.*$READER" >/dev/null; }

[ -x "$SCPKIT" ] || die "no $SCPKIT (build first)"
[ -x "$BENCH" ] || die "no $BENCH (build first; needs libpcsclite)"
for t in pcscd opensc-tool; do command -v $t >/dev/null || die "$t not installed"; done
[ -f /etc/reader.conf.d/vpcd ] || die "vsmartcard-vpcd not installed"

if [ -S /run/pcscd/pcscd.comm ] && reader_listed; then
    echo "reusing the running pcscd"
else
    mkdir -p /run/pcscd
    pcscd --foreground >>"$TMP/pcscd.log" 2>&1 &
    PCSCD_PID=$!
    wait_for 20 reader_listed || die "pcscd did not list the vpcd reader"
    echo "started pcscd, pid $PCSCD_PID"
fi
# vpcd takes one card: if another one (a test's) is in the reader, wait for
# it to leave rather than fight over the port
no_card() { ! card_present; }
wait_for 120 no_card || die "another card stays in $READER; try again later"
"$SCPKIT" card init --state "$TMP/card" --profile gp23 >/dev/null || die "card init"
"$SCPKIT" card run --state "$TMP/card" --vpcd 127.0.0.1:$PORT >>"$TMP/card.log" 2>&1 &
CARD_PID=$!
wait_for 30 card_present || die "the card did not appear in $READER"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
timeout 300 "$BENCH" "$READER" "$N" --json "$TMP/rt.json" || die "scp_pcsc_bench failed"
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"
[ -d bench ] && cp "$TMP/rt.json" bench/pcsc_results.json
