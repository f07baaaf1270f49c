#!/bin/sh
# The walkthrough of issue 14 (README "OTA"), as written, on loopback:
# keystore and two masters, a virtual device moved onto fleet:1, its
# device_id, `ota init` with a self-signed lab certificate, `ota device
# add` and `ota device import`, `ota serve`, a key-rotation campaign, the
# agent (exit 0 on 204), `campaign show --json` with done: 1, and the new
# keys (fleet2:1, KVN 2) opening a channel while the old ones no longer do.
# Tampered twins: an agent that does not trust the certificate, and an
# agent for a device the registry does not know, both refused.
set -u
S=${1:?usage: walkthrough.sh path/to/scpkit}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/ota_lib.sh"
ota_begin wt

expect 0 keystore_setup ks
ID=$(device_setup ks dev1) && [ -n "$ID" ] && ok || bad "device setup"
expect 0 "$S" info --card dev1 --json
json "$T/out" "d['device_id'] == d['cin'] == '$ID'"
expect 0 "$S" ota init --dir srv --keystore ks --self-signed localhost
[ -s srv/tls/cert.pem ] && [ "$(stat -c %a srv/tls/key.pem)" = 600 ] && ok || bad "cert/key files"
openssl x509 -in srv/tls/cert.pem -noout -text >"$T/cert.txt" 2>&1
has "$T/cert.txt" "DNS:localhost"
expect 5 "$S" ota init --dir srv --keystore ks --self-signed localhost    # never over a registry
expect 0 "$S" ota device add --dir srv --id "$ID" --master fleet:1 --kdf kdf3 --kvn 1 --tag lab
printf 'id,master,kdf,kvn,tags\n# factory batch 7\nSPARE-0001,fleet:1,kdf3,1,lab;spare\n' >devices.csv
expect 0 "$S" ota device import --dir srv devices.csv
has "$T/out" "1 devices imported"
printf 'BAD-1,fleet:1,kdf3,1\nBAD-2,fleet,kdf3,1\n' >bad.csv               # no version: refused
expect 1 "$S" ota device import --dir srv bad.csv
expect 0 "$S" ota device list --dir srv --json
json "$T/out" "len(d['devices']) == 2 and not any(x['id'] == 'BAD-1' for x in d['devices'])"

expect 0 server_start srv
expect 0 "$S" ota campaign create --dir srv --name r2 --target all \
    --rotate-keys --new-master fleet2:1 --new-kdf kdf3 --new-kvn 2
has "$T/out" "2 devices"
# tampered twins first: no trust in the certificate, an unknown card
expect 2 "$S" agent --server "https://localhost:$PORT/" --card dev1 --retries 0
expect 0 "$S" card init --state stranger
expect 4 "$S" agent --server "https://localhost:$PORT/" --ca srv/tls/cert.pem --card stranger --retries 0
has "$T/err" "unknown device"
# the agent as the walkthrough runs it
expect 0 "$S" agent --server "https://localhost:$PORT/" --ca srv/tls/cert.pem --card dev1
# the session's keystore work: the card's current and new key sets derived
# in one transaction (each with its audit record), the card record in a
# second; three commits before the sets were derived together
curl -s "http://127.0.0.1:$ADMIN/metrics" >"$T/metrics"
has "$T/metrics" "^scpkit_ota_sessions_completed_total 1$"
has "$T/metrics" "^scpkit_ota_keystore_commits_total 2$"
BE=sqlite; [ -n "${SCPKIT_OTA_DB:-}" ] && BE=postgresql
# and the registry's: one transaction per step, the lease in the first;
# the two that only probe the card (the first step, and the one after PUT
# KEY's answer) commit lazily, the intent, the promotion and the end durably
has "$T/metrics" "^scpkit_ota_registry_commits_total{backend=\"$BE\"} 5$"
has "$T/metrics" "^scpkit_ota_registry_lazy_commits_total{backend=\"$BE\"} 2$"
expect 0 "$S" ota campaign show --dir srv r2 --json
json "$T/out" "d['done'] == 1 and d['pending'] == 1 and d['failed'] == 0 and d['total'] == 2"
expect 0 "$S" ota campaign show --dir srv r2
has "$T/out" "1 done"
expect 0 "$S" apdu --card dev1 --keystore ks --master fleet2:1 --kdf kdf3 80CA00E000
has "$T/out" "9000"
expect 3 "$S" apdu --card dev1 --keystore ks --master fleet:1 --kdf kdf3 80CA00E000
expect 0 "$S" info --card dev1 --json
json "$T/out" "sorted({k['kvn'] for k in d['keys']}) == [2]"
expect 0 "$S" ota device list --dir srv --json
json "$T/out" "[x for x in d['devices'] if x['id'] == '$ID'][0]['kvn'] == 2 and [x for x in d['devices'] if x['id'] == '$ID'][0]['prev_kvn'] == 0"
# a second agent run has nothing left: 204 at once
expect 0 "$S" agent --server "https://localhost:$PORT/" --ca srv/tls/cert.pem --card dev1
has "$T/out" "0 scripts"
# the log: one line per step, no key material
has srv/server.log "event=put-key new_kvn=02"
has srv/server.log "event=job-done campaign=r2"
stop_pid $SRV_PID; SRV_PID=
has srv/server.log "event=stopped"
finish ota_walkthrough
