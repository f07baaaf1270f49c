#!/bin/bash
# The public clients' expectations, through pcscd + vpcd with python3-
# pyscard and an independent SCP03 host (tests/card/pcsc_host.py):
#   pcsc_yubikit.py  yubikit SecurityDomainSession / ykman sd (yubikey profile)
#   pcsc_gpp.py      GlobalPlatformPro GPSession (gp23 profile)
#   pcsc_gpshell.py  GPShell's globalplatform library: its recorded SCP03
#                    sessions replayed byte for byte (card made by make_card)
# Each card runs on a vpcd slot only once it has proved to be this test's
# (tests/lib.sh vpcd_attach: its CIN; both slots busy -> bounded wait).
# Usage: pcsc_clients.sh path/to/scpkit path/to/make_card
set -u
SCPKIT=${1:?usage: pcsc_clients.sh scpkit make_card}
MAKE_CARD=${2:?usage: pcsc_clients.sh scpkit make_card}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=${SCP_PYTHON:-/usr/bin/python3} # Debian's, with python3-pyscard
TMP=$(mktemp -d "${TMPDIR:-/tmp}/scpclients.XXXXXX")
PCSCD_PID=""
VPCD_PID=""
. "$HERE/../lib.sh"
cleanup() {
    [ -n "$VPCD_PID" ] && stop_pid "$VPCD_PID"
    [ -n "$PCSCD_PID" ] && stop_pid "$PCSCD_PID"
    rm -rf "$TMP"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*"
    for f in card.log pcscd.log; do [ -f "$TMP/$f" ] && { echo "--- $f"; tail -20 "$TMP/$f"; }; done
    exit 1
}

command -v opensc-tool >/dev/null || fail "opensc-tool not installed (scripts/deps.sh)"
"$PY" -c 'import smartcard, cryptography' 2>/dev/null ||
    fail "$PY lacks python3-pyscard / python3-cryptography (scripts/deps.sh)"
pcscd_ensure "$TMP/pcscd.log" || fail "pcscd lists no vpcd reader"

# run_client NAME DIR SCRIPT: serve card DIR, run SCRIPT on its reader
# (SCP_CLIENTS="yubikit GPShell" runs only those, while working on them)
run_client() {
    case " ${SCP_CLIENTS:-$1} " in *" $1 "*) ;; *) return 0 ;; esac
    cin=$("$SCPKIT" card show --state "$2" | awk '/^cin / { print $2 }')
    [ -n "$cin" ] || fail "$1: no CIN"
    vpcd_attach "$cin" 240 "$TMP/card.log" "$SCPKIT" card run --state "$2" --vpcd ||
        fail "$1: no vpcd slot came free within 240 s"
    echo "== $1 on $VPCD_READER"
    PYTHONPATH="$HERE" "$PY" "$HERE/$3" "$VPCD_READER"
    rc=$?
    stop_pid "$VPCD_PID"
    VPCD_PID=""
    [ $rc -eq 0 ] || fail "$1"
}

"$SCPKIT" card init --state "$TMP/yk" --profile yubikey >/dev/null || fail "card init yubikey"
run_client yubikit "$TMP/yk" pcsc_yubikit.py

"$SCPKIT" card init --state "$TMP/gp" --profile gp23 >/dev/null || fail "card init gp23"
run_client GlobalPlatformPro "$TMP/gp" pcsc_gpp.py

# kaoh/globalplatform scp03Test.c: keys, KVN 30, i 70, KDD 0, counter
# just before the first recorded session's 000015
"$MAKE_CARD" "$TMP/gps" F995D0A069335C7DF42E590317FFEA6D 58563362EC5A4541ABCD32B34B1EAE7D \
    0A02A6D687406DCFA09DC70B3EDB7E38 30 70 000014 00000000000000000000 || fail "make_card"
run_client GPShell "$TMP/gps" pcsc_gpshell.py

echo "PASS"
exit 0
