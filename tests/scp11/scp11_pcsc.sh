#!/bin/bash
# SCP11 through pcscd + vpcd: the virtual card (`scpkit card run`, yubikey
# profile, --oce-ca) as a real PC/SC card, reached by
#  - an independent client (tests/scp11/scp11_client.py: pyscard and
#    python3-cryptography, written from the protocol facts): SCP11b, 11a,
#    11c, a point off the curve, an OCE certificate of another CA, a PSO
#    cut short, key management refused over 11b;
#  - scpkit's own host through PC/SC: --scp 11b/11a/11c, `info --json`,
#    the wrong anchor and the wrong OCE key refused;
# then a card restart keeps its SCP11 keys. Reuses a running pcscd or
# starts its own (ended by PID); the card takes a free vpcd slot and is
# used only once that reader answers with its CIN (tests/lib.sh
# vpcd_attach), at the start and after the restart; every wait is bounded.
set -u
SCPKIT=${1:?usage: scp11_pcsc.sh path/to/scpkit}
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/scp11pcsc.XXXXXX")
PCSCD_PID=""
CARD_PID=""
. "$HERE/../lib.sh"
cleanup() {
    [ -n "$CARD_PID" ] && stop_pid "$CARD_PID"
    [ -n "$PCSCD_PID" ] && stop_pid "$PCSCD_PID"
    rm -rf "$T"
}
trap cleanup EXIT
die() { echo "FAIL: $*"; tail -20 "$T/card.log" 2>/dev/null; exit 1; }

for t in pcscd opensc-tool; do
    command -v $t >/dev/null || skip "$t not installed"
done
[ -f /etc/reader.conf.d/vpcd ] || skip "vsmartcard-vpcd not installed"
# the distribution's python3 has python3-pyscard (a python3 earlier in PATH may not)
PY=python3
for p in /usr/bin/python3 python3; do
    if "$p" -c "import smartcard, cryptography" 2>/dev/null; then PY=$p; break; fi
done
"$PY" -c "import smartcard, cryptography" 2>/dev/null || skip "python3-pyscard or python3-cryptography missing"

pcscd_ensure "$T/pcscd.log" || die "pcscd lists no vpcd reader"

"$PY" "$HERE/scp11_client.py" mkoce "$T" || die "making the OCE chain"
"$SCPKIT" card init --state "$T/card" --oce-ca "$T/oce-ca.pem" >/dev/null || die "card init"
CIN=$("$SCPKIT" card show --state "$T/card" | awk '/^cin / { print $2 }')
[ ${#CIN} -eq 16 ] || die "no CIN in card show"
start_card() {
    vpcd_attach "$CIN" 240 "$T/card.log" "$SCPKIT" card run --state "$T/card" --vpcd ||
        die "no free vpcd slot took our card within 240 s"
    CARD_PID=$VPCD_PID READER=$VPCD_READER
    echo "our card is in $READER"
}
start_card

# --- the independent client ---
expect 0 "$PY" "$HERE/scp11_client.py" run "$READER" "$T/card" "$T"
cat "$T/out"
has "$T/out" "all SCP11 interop checks passed"

# --- scpkit's host through PC/SC ---
CA="$T/card/sd-ca.pem"
expect 0 "$SCPKIT" apdu -r "$READER" --scp 11b --sd-ca "$CA" 80CA00E000
has "$T/out" "^E032C00401FF8810.* 9000"   # SCP03 set + 13/01, 10/03, 11/03, 15/03
hasnt "$T/err" "factory test keys"
for v in 11a 11c; do
    expect 0 "$SCPKIT" apdu -r "$READER" --scp $v --sd-ca "$CA" --oce-key "$T/oce.key" \
        --oce-chain "$T/oce.pem" -v 80CA00E000
    has "$T/err" "SCP$v channel open"
done
expect 0 "$SCPKIT" info -r "$READER" --json
json "$T/out" '[(e["variant"], e["kid"], e["kvn"], e["curve"]) for e in d["scp11"]] == [("11b", 19, 1, "P-256"), ("11a", 17, 3, "P-256"), ("11c", 21, 3, "P-256")]'
# twins: the wrong anchor, an OCE chain the card's CA did not sign
expect 3 "$SCPKIT" apdu -r "$READER" --scp 11b --sd-ca "$T/oce-ca.pem" 80CA00E000
has "$T/err" "signature does not verify against the trust anchor"
expect 3 "$SCPKIT" apdu -r "$READER" --scp 11a --sd-ca "$CA" --oce-key "$T/other-oce.key" \
    --oce-chain "$T/other-oce.pem" 80CA00E000
has "$T/err" "refused by the card (PSO): 6A80"
# a key that is not the chain's: the card's receipt cannot match
expect 3 "$SCPKIT" apdu -r "$READER" --scp 11a --sd-ca "$CA" --oce-key "$T/other-oce.key" \
    --oce-chain "$T/oce.pem" 80CA00E000
has "$T/err" "receipt does not match"

# --- a restart keeps the SCP11 keys ---
stop_pid "$CARD_PID"
CARD_PID=""
start_card
# (pcscd may still be noticing the old card's removal: poll, bounded)
opens_11b() { "$SCPKIT" apdu -r "$READER" --scp 11b --sd-ca "$CA" 80CA00E000; }
if wait_for 60 opens_11b; then ok; else bad "SCP11b after a card restart"; fi
finish scp11_pcsc
