#!/bin/sh
# The OTA agent on a PC/SC reader (issue 14): the virtual card runs as
# `scpkit card run --vpcd` behind pcscd, and `scpkit agent -r READER`
# relays a key rotation from the server to it; afterwards the new keys open
# a channel through the reader and the old ones do not. Reuses a running
# pcscd whose vpcd port answers, else starts its own; every process is kept
# by PID and ended by PID. Exit 77 (skipped; a failure when CI=true) without
# pcscd/vpcd. Run under the PC/SC lock (CTest RESOURCE_LOCK pcsc).
set -u
S=${1:?usage: pcsc.sh path/to/scpkit}
T=$(mktemp -d /tmp/scpkit-ota-pcsc.XXXXXX)
PCSCD_PID= CARD_PID= SRV_PID=
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/ota_lib.sh"
cleanup() {
    [ -n "$SRV_PID" ] && stop_pid "$SRV_PID"
    [ -n "$CARD_PID" ] && stop_pid "$CARD_PID"
    [ -n "$PCSCD_PID" ] && stop_pid "$PCSCD_PID"
    pg_stop
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
ota_backend "$T" || exit 1
cd "$T" || exit 1
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

expect 0 keystore_setup ks
ID=$(device_setup ks card) && [ -n "$ID" ] && ok || bad "device setup"
ours() { [ "$("$S" info -r "$R" --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get("device_id"))' 2>/dev/null)" = "$ID" ]; }
SLOT=
for s in 0 1 0 1; do
    R="Virtual PCD 00 0$s"
    is_state "$R" empty || continue
    "$S" card run --state card --vpcd 127.0.0.1:$((35963 + s)) >"$T/card.log" 2>&1 &
    CARD_PID=$!
    if wait_for 10 ours; then SLOT=$s; break; fi
    stop_pid "$CARD_PID"; CARD_PID=
    sleep 2
done
[ -n "$SLOT" ] || skip "no free vpcd slot (other PC/SC tests running?)"

expect 0 "$S" ota init --dir srv --keystore ks --self-signed localhost
expect 0 "$S" ota device add --dir srv --id "$ID" --master fleet:1 --kdf kdf3 --kvn 1
expect 0 server_start srv
expect 0 "$S" ota campaign create --dir srv --name r --target all \
    --rotate-keys --new-master fleet2:1 --new-kdf kdf3 --new-kvn 2
expect 0 "$S" agent --server "https://localhost:$PORT/" --ca srv/tls/cert.pem -r "$R"
has "$T/out" "session done (4 scripts)"
expect 0 "$S" ota campaign show --dir srv r --json
json "$T/out" "d['done'] == 1"
expect 0 "$S" apdu -r "$R" --keystore ks --master fleet2:1 --kdf kdf3 80CA00E000
has "$T/out" "9000"
expect 3 "$S" apdu -r "$R" --keystore ks --master fleet:1 --kdf kdf3 80CA00E000
finish ota_pcsc
