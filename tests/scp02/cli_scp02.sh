#!/bin/sh
# The scpkit CLI with --scp 02 against the virtual card's SCP02 profile:
# in process (--card DIR) always, and through pcscd + vpcd (-r) when given
# "pcsc" (run under the pcsc resource lock; reuses a running pcscd whose
# vpcd port answers, else starts its own and ends it by PID; exit 77 when
# pcscd/vpcd are not installed, as the other PC/SC tests).
# Usage: cli_scp02.sh path/to/scpkit [pcsc]
set -u
S=${1:?usage: cli_scp02.sh path/to/scpkit [pcsc]}
MODE=${2:-inproc}
[ -x "$S" ] || { echo "no scpkit binary at $S" >&2; exit 1; }
T=$(mktemp -d /tmp/scpkit-scp02.XXXXXX)
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
skip() { echo "cli_scp02: skipped: $*"; exit 77; }

K1=00112233445566778899AABBCCDDEEFF
K2=000102030405060708090A0B0C0D0E0F
expect 0 "$S" card init --state "$T/card" --profile scp02
expect 1 "$S" card init --state "$T/bad" --profile scp02 --scp-i 71   # not an SCP02 i
expect 1 "$S" card init --state "$T/bad2" --profile scp02 --key 000102030405060708090A0B0C0D0E0F0001020304050607

if [ "$MODE" = pcsc ]; then
    command -v pcscd >/dev/null || skip "no pcscd"
    [ -f /usr/lib/pcsc/drivers/serial/libifdvpcd.so ] || skip "no vpcd driver"
    # tests/lib.sh: the shared pcscd (started, and ended by PID, only when
    # none runs), then a free vpcd slot whose card answers with our CIN;
    # both slots busy: wait (bounded), never skip
    pcscd_ensure "$T/pcscd.log" || { echo "cli_scp02: pcscd lists no vpcd reader" >&2; exit 1; }
    CIN=$("$S" info --card "$T/card" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["cin"])')
    vpcd_attach "$CIN" 240 "$T/card.log" "$S" card run --state "$T/card" --vpcd ||
        { echo "cli_scp02: no vpcd slot came free for our card within 240 s" >&2; exit 1; }
    CARD_PID=$VPCD_PID R=$VPCD_READER
    set -- -r "$R"
else
    set -- --card "$T/card"
fi

# the card says SCP02 i = 55 in its recognition data
expect 0 "$S" info "$@" --json
json "$T/out" 'any(s["scp"] == 2 and s["i"] == "55" for s in d["recognition"]["scp"])'
# ... read with SCP02's meanings (GPC 2.2.1 E.1.1: 55 = three keys, explicit
# initiation, ICV encrypted, pseudo-random challenge), not SCP03's (S16...)
json "$T/out" '[(s["three_keys"], s["explicit"], s["icv_encrypted"], s["pseudo_random"], s["rmac"], s["cmac_unmodified"], "s16" in s, "renc" in s) for s in d["recognition"]["scp"] if s["scp"] == 2] == [(True, True, True, True, False, False, False, False)]'
expect 0 "$S" info "$@"
has "$T/out" "^SCP02: *i = 55: three keys, C-MAC on the modified APDU, explicit initiation, ICV encrypted, pseudo-random card challenge, no R-MAC"
hasnt "$T/out" "S16"
# every SCP02 level, over the factory 3DES keys
for l in mac:01 mac+enc:03 mac+rmac:11 mac+enc+rmac:13; do
    expect 0 "$S" apdu "$@" --scp 02 --level "${l%%:*}" -v 80CA00E000 80F28002024F0000
    has "$T/err" "SCP02 channel open: KVN FF, i 55, level ${l##*:}"
    has "$T/out" "^E012C00401FF8010.* 9000"
    has "$T/out" "^E3.*A000000151000000.* 9000"
done
expect 1 "$S" apdu "$@" --scp 02 --level all 80CA00E000         # no level 33 in SCP02
expect 1 "$S" apdu "$@" --scp 04 80CA00E000
# SCP03 on an SCP02 card is refused (the card answers INITIALIZE UPDATE as SCP02)
"$S" apdu "$@" 80CA00E000 >"$T/out" 2>"$T/err"; rc=$?
if [ $rc -ne 0 ]; then ok; else bad "SCP03 against an SCP02 card succeeded"; fi
# wrong keys: exit 3, nothing after INITIALIZE UPDATE
expect 3 "$S" apdu "$@" --scp 02 --key $K2 -v 80CA00E000
has "$T/err" "not retrying"
if [ "$(grep -c 'EXTERNAL AUTHENTICATE' "$T/err")" -eq 0 ]; then ok; else bad "EA sent with wrong keys"; fi
# a DES set replaces the factory set; the trace never shows key data
expect 0 "$S" keys put "$@" --scp 02 --new-kvn 20 --new-key $K1 -v
has "$T/out" "Key set KVN 20 added (3DES-128)"
has "$T/err" "key data redacted"
hasnt "$T/err" "$K1"
expect 3 "$S" apdu "$@" --scp 02 80CA00E000                     # factory keys gone
expect 0 "$S" keys list "$@" --scp 02 --key $K1 --json
json "$T/out" '[(k["kvn"], k["type"]) for k in d["keys"]] == [(32, "DES")] * 3'
# the move to SCP03: AES-128 keys through SCP02; then SCP03 only
expect 0 "$S" keys put "$@" --scp 02 --key $K1 --new-kvn 30 --new-key $K2 --key-type aes --json
json "$T/out" 'd["ok"] and d["kvn"] == 48'
expect 0 "$S" apdu "$@" --key $K2 --json 80CA00E000
json "$T/out" 'd["responses"][0]["data"].startswith("E012C0040130881")'
expect 2 "$S" apdu "$@" --scp 02 --key $K1 80CA00E000     # the card answers as SCP03
has "$T/err" "opening the SCP02 channel: not supported"
expect 0 "$S" card show --state "$T/card"
has "$T/out" "profile *gp23"

finish cli_scp02 "$MODE"
