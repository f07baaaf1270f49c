#!/bin/sh
# A rotation campaign whose target master is not active in the keystore
# (SP 800-57 lifecycle) fails its jobs with a clear reason at the device's
# next session, instead of staying to do forever; the device keeps its
# keys and the registry records no intent. Cases: a master still in
# pre-activation (generated, never activated), a master suspended after
# the campaign was created, a master the keystore does not have. Happy
# twin in the same run: a campaign to an active master completes.
set -u
S=${1:?usage: lifecycle.sh path/to/scpkit}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/ota_lib.sh"
ota_begin lc

expect 0 keystore_setup ks
expect 0 "$S" keystore generate --dir ks --label fleet3 --type aes128   # pre-activation
expect 0 "$S" ota init --dir srv --keystore ks --self-signed localhost
for d in 1 2 3 4; do
    id=$(device_setup ks dev$d) && [ -n "$id" ] && ok || bad "device $d"
    eval ID$d=$id
    expect 0 "$S" ota device add --dir srv --id "$id" --master fleet:1 --kdf kdf3 --kvn 1
done
rot() { # rot NAME DEVICE MASTER
    expect 0 "$S" ota campaign create --dir srv --name "$1" --target "list:$2" \
        --rotate-keys --new-master "$3" --new-kdf kdf3 --new-kvn 2
}
rot pre "$ID1" fleet3:1
rot gone "$ID3" nosuch:1
rot ok "$ID2" fleet2:1
rot susp "$ID4" fleet2:1
expect 0 server_start srv
agent() { "$S" agent --server "https://localhost:$PORT/" --ca srv/tls/cert.pem --card "$1" --retries 0; }
job() { # job CAMPAIGN: "state|reason" of its one job
    "$S" ota campaign show --dir srv "$1" --json | python3 -c \
        'import json,sys; j=json.load(sys.stdin)["devices"][0]; print(j["state"] + "|" + j["reason"])'
}
dev_json() { "$S" ota device list --dir srv --json >"$T/devs.json"; }

# pre-activation: the session ends (204), the job failed with its reason
expect 0 agent dev1
[ "$(job pre)" = "failed|target master fleet3:1 is pre-activation, not active" ] && ok ||
    bad "pre: $(job pre)"
expect 4 "$S" ota campaign wait --dir srv pre --timeout 5       # ended (failed), not waiting
# the device keeps its keys, the registry no intent
expect 0 "$S" apdu --card dev1 --keystore ks --master fleet:1 --kdf kdf3 80CA00E000
dev_json
json "$T/devs.json" "[(x['kvn'], x['next_kvn'], x['prev_kvn']) for x in d['devices'] if x['id'] == '$ID1'] == [(1, 0, 0)]"
has srv/server.log "event=job-failed reason=\"target master fleet3:1 is pre-activation, not active\""
# a second session has nothing left for that device
expect 0 agent dev1
has "$T/out" "0 scripts"

# a master the keystore does not know
expect 0 agent dev3
[ "$(job gone)" = "failed|target master nosuch:1 is not in the keystore" ] && ok || bad "gone: $(job gone)"

# the happy twin: an active master, the rotation completes
expect 0 agent dev2
[ "$(job ok)" = "done|" ] && ok || bad "ok: $(job ok)"
expect 0 "$S" apdu --card dev2 --keystore ks --master fleet2:1 --kdf kdf3 80CA00E000

# suspended after the campaign was made (its devices were fine until then)
expect 0 "$S" keystore state --dir ks fleet2:1 suspended --reason "test: incident"
expect 0 agent dev4
[ "$(job susp)" = "failed|target master fleet2:1 is suspended, not active" ] && ok ||
    bad "susp: $(job susp)"
expect 0 "$S" apdu --card dev4 --keystore ks --master fleet:1 --kdf kdf3 80CA00E000
dev_json
json "$T/devs.json" "[(x['kvn'], x['next_kvn']) for x in d['devices'] if x['id'] == '$ID4'] == [(1, 0)]"
# the status page counts them as failed, with the reason
curl -sS --max-time 10 -o "$T/susp.json" "http://127.0.0.1:$ADMIN/campaign/susp.json" && ok || bad "status"
json "$T/susp.json" "d['failed'] == 1 and d['pending'] == 0 and 'suspended' in d['failures'][0]['reason']"
stop_pid $SRV_PID; SRV_PID=
hasnt srv/server.err "AddressSanitizer\|LeakSanitizer\|runtime error"
finish ota_lifecycle
