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
command -v pcscd >/dev/null || skip "no pcscd"
[ -f /usr/lib/pcsc/drivers/serial/libifdvpcd.so ] || skip "no vpcd driver"
pcscd_ensure "$T/pcscd.log" || skip "pcscd lists no vpcd reader"

expect 0 keystore_setup ks
ID=$(device_setup ks card) && [ -n "$ID" ] && ok || bad "device setup"
vpcd_attach "$ID" 240 "$T/card.log" "$S" card run --state card --vpcd ||
    skip "no free vpcd slot (other PC/SC tests running?)"
CARD_PID=$VPCD_PID R=$VPCD_READER

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
