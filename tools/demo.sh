#!/bin/sh
# scpkit demo (make demo): a virtual card in a temporary directory, its
# card information, a key rotation from the factory test keys to freshly
# generated AES-128 keys at security level 33, proof that the old keys no
# longer open a channel, and a short summary. Usage: demo.sh path/to/scpkit
set -u
S=${1:?usage: demo.sh path/to/scpkit}
T=$(mktemp -d /tmp/scpkit-demo.XXXXXX)
trap 'rm -rf "$T"' EXIT INT TERM

step() { printf '\n== %s\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "1. A virtual secure element (YubiKey profile: SCP03, AES-128, factory keys KVN FF)"
run "$S" card init --state "$T/card" || exit 1

step "2. What the card says about itself, before any authentication"
run "$S" info --card "$T/card" || exit 1

step "3. Rotate the factory keys to fresh random AES-128 keys (KVN 01) at level 33"
echo "   (the new keys are written to a 0600 file before the card is changed)"
run "$S" keys rotate --card "$T/card" --level 33 --new-kvn 1 --generate --key-len 16 \
    --out "$T/keys.json" || exit 1
ls -l "$T/keys.json" | awk '{ print "   key file:", $1, $NF }'

step "4. The old factory keys no longer open a channel (exit code 3, nothing retried)"
run "$S" apdu --card "$T/card" 80CA00E000 2>&1
old_rc=$?
echo "   exit code: $old_rc"

step "5. The new keys do: GET DATA (key information) sent through the channel"
run "$S" apdu --card "$T/card" --keyfile "$T/keys.json" -v 80CA00E000 >"$T/new.txt" 2>&1
new_rc=$?
grep -v '^[<>]' "$T/new.txt"

step "Summary"
if [ "$old_rc" -eq 3 ] && [ "$new_rc" -eq 0 ]; then
    echo "   card:      virtual, in $T/card (removed at exit)"
    echo "   before:    factory test keys 40..4F, KVN FF"
    echo "   after:     random AES-128 keys, KVN 01, level 33 (C-MAC, C-DEC, R-MAC, R-ENC)"
    echo "   old keys:  refused (exit 3)"
    echo "   new keys:  accepted; kept only in the 0600 key file"
    echo "   demo: OK"
else
    echo "   demo: FAILED (old keys exit $old_rc, want 3; new keys exit $new_rc, want 0)"
    exit 1
fi

# ---- OTA (issue 14): one server, three virtual devices, one key rotation
# campaign run by three device agents over HTTPS, with its progress.
"$S" ota --help >/dev/null 2>&1 || exit 0
OTA_PID=
trap '[ -n "$OTA_PID" ] && kill -TERM "$OTA_PID" 2>/dev/null && wait "$OTA_PID"; rm -rf "$T"' EXIT INT TERM
export SCPKIT_SO_PIN=demo-so-pin SCPKIT_USER_PIN=demo-user-pin SCPKIT_ACTOR=demo
quiet() { "$@" >/dev/null 2>&1; }

step "6. OTA: a keystore with two masters (fleet:1, fleet2:1), activated by two custodians"
quiet "$S" keystore init --dir "$T/ks" || exit 1
for m in fleet fleet2; do run "$S" keystore generate --dir "$T/ks" --label $m --type aes128 || exit 1; done
SCPKIT_CUSTODIAN_PIN=demo-alice quiet "$S" keystore custodian-add --dir "$T/ks" alice
SCPKIT_CUSTODIAN_PIN=demo-bob quiet "$S" keystore custodian-add --dir "$T/ks" bob
for k in fleet:1 fleet2:1; do
    SCPKIT_CUSTODIAN_PIN_1=demo-alice SCPKIT_CUSTODIAN_PIN_2=demo-bob quiet "$S" keystore activate \
        --dir "$T/ks" $k --reason demo --custodian alice --custodian bob || exit 1
done

step "7. OTA: three virtual devices on keys diversified from fleet:1 (KDF3, KVN 01), registered"
run "$S" ota init --dir "$T/srv" --keystore "$T/ks" --self-signed localhost || exit 1
for d in 1 2 3; do
    quiet "$S" card init --state "$T/dev$d" &&
    quiet "$S" keystore rotate --dir "$T/ks" --card "$T/dev$d" --new-master fleet:1 --new-kdf kdf3 --new-kvn 1 || exit 1
    id=$("$S" info --card "$T/dev$d" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["device_id"])')
    run "$S" ota device add --dir "$T/srv" --id "$id" --master fleet:1 --kdf kdf3 --kvn 1 --tag demo || exit 1
done

step "8. OTA: the server (HTTPS on loopback, Prometheus /metrics beside it) and a rotation campaign"
timeout 300 "$S" ota serve --dir "$T/srv" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
    --log "$T/srv/server.log" &
OTA_PID=$!
n=0; while [ ! -s "$T/srv/admin.port" ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
PORT=$(cat "$T/srv/https.port")
run "$S" ota campaign create --dir "$T/srv" --name rotate-2 --target tag:demo \
    --rotate-keys --new-master fleet2:1 --new-kdf kdf3 --new-kvn 2 || exit 1

step "9. OTA: each device's agent calls in; the server runs SCP03 with its card through it"
(trap - EXIT INT TERM
 for d in 1 2 3; do
     sleep 1
     "$S" agent --server "https://localhost:$PORT/" --ca "$T/srv/tls/cert.pem" --card "$T/dev$d" \
         >"$T/agent$d.txt" 2>&1
 done) &
AGENTS=$!
run "$S" ota campaign wait --dir "$T/srv" rotate-2 --timeout 120
ota_rc=$?
wait "$AGENTS"
run "$S" ota campaign show --dir "$T/srv" rotate-2
echo "   server log, one line per step (no key material):"
grep -E "event=(put-key|opened|delete-key|job-done)" "$T/srv/server.log" | head -5 | sed 's/^/   /'
run "$S" apdu --card "$T/dev1" --keystore "$T/ks" --master fleet2:1 --kdf kdf3 80CA00E000
new_rc=$?
curl -s "http://127.0.0.1:$(cat "$T/srv/admin.port")/metrics" | grep -E "^scpkit_ota_sessions_(started|completed)" | sed 's/^/   /'
if [ "$ota_rc" -eq 0 ] && [ "$new_rc" -eq 0 ]; then
    echo "   OTA demo: OK (3 devices rotated from fleet:1 KVN 01 to fleet2:1 KVN 02 over HTTPS)"
else
    echo "   OTA demo: FAILED (campaign wait exit $ota_rc, new keys exit $new_rc)"
    exit 1
fi
