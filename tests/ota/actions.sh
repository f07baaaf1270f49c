#!/bin/sh
# Campaign actions and controls (issue 14) with three virtual devices:
# put-data to the store application (tag-targeted), a script of plain
# C-APDUs sent at level 33 to a named application, pause (the device is
# told 204, nothing runs), resume, cancel, `campaign wait`, and a script
# whose command the card refuses (the job fails with that SW, the other
# devices are unaffected). One session per device: a second session for a
# device whose lease is held is refused (409) until the first one ends.
set -u
S=${1:?usage: actions.sh path/to/scpkit}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/ota_lib.sh"
ota_begin ac
STORE=F07363706B697401

expect 0 keystore_setup ks
expect 0 "$S" ota init --dir srv --keystore ks --self-signed localhost
for d in 1 2 3; do
    id=$(device_setup ks dev$d) && [ -n "$id" ] && ok || bad "device $d"
    eval ID$d=$id
    tag=lab; [ $d -eq 3 ] && tag=field
    expect 0 "$S" ota device add --dir srv --id "$id" --master fleet:1 --kdf kdf3 --kvn 1 --tag $tag
done
expect 0 server_start srv --step-timeout 1000 --lease 2000
agent() { "$S" agent --server "https://localhost:$PORT/" --ca srv/tls/cert.pem --card "dev$1" --retries 3; }

# put-data to the devices tagged lab (dev1, dev2), read back through a channel
expect 0 "$S" ota campaign create --dir srv --name pd --target tag:lab --put-data 0101=CAFE01 --put-data 0102=0203
has "$T/out" "2 devices"
for d in 1 2 3; do expect 0 agent $d; done
expect 0 "$S" ota campaign show --dir srv pd --json
json "$T/out" "d['done'] == 2 and d['total'] == 2 and all(x['step'] == 2 for x in d['devices'])"
expect 0 "$S" apdu --card dev2 --app $STORE --keystore ks --master fleet:1 --kdf kdf3 80CA010100
has "$T/out" "CAFE01 9000"
expect 4 "$S" apdu --card dev3 --app $STORE --keystore ks --master fleet:1 --kdf kdf3 80CA010100
# the data went through the channel: the agent's view of it is wrapped (no plaintext)
expect 0 "$S" ota campaign create --dir srv --name pd2 --target "list:$ID3" --put-data 0103=5EC2E75EC2E7
"$S" agent --server "https://localhost:$PORT/" --ca srv/tls/cert.pem --card dev3 -v >"$T/trace" 2>&1
has "$T/trace" "session done"
hasnt "$T/trace" "5EC2E75EC2E7"
expect 0 "$S" apdu --card dev3 --app $STORE --keystore ks --master fleet:1 --kdf kdf3 80CA010300
has "$T/out" "5EC2E75EC2E7 9000"

# a script to a named application: PUT DATA then GET DATA; a refused command
printf '# store two objects\n80DA0201 02 AAAA\n80DA0202 01 BB\n80CA020100\n' >ok.apdu
printf '80DA0301 01 01\n80CA0F0F00\n80DA0302 01 02\n' >refused.apdu
expect 0 "$S" ota campaign create --dir srv --name sc --target "list:$ID1,$ID2" --script ok.apdu --app $STORE
expect 0 "$S" ota campaign create --dir srv --name bad --target "list:$ID2" --script refused.apdu --app $STORE
expect 1 "$S" ota campaign create --dir srv --name x --target all --script ok.apdu    # no --app
printf '80DA\n' >short.apdu
expect 1 "$S" ota campaign create --dir srv --name x --target all --script short.apdu --app $STORE
expect 0 agent 1
expect 0 agent 2
expect 4 "$S" ota campaign wait --dir srv bad --timeout 10
expect 0 "$S" ota campaign show --dir srv bad --json
json "$T/out" "d['failed'] == 1 and d['devices'][0]['step'] == 1 and '6A88' in d['devices'][0]['reason']"
expect 0 "$S" ota campaign wait --dir srv sc --timeout 10
has "$T/out" "finished: 2 done"
expect 0 "$S" apdu --card dev1 --app $STORE --keystore ks --master fleet:1 --kdf kdf3 80CA020200
has "$T/out" "BB 9000"
expect 4 "$S" apdu --card dev2 --app $STORE --keystore ks --master fleet:1 --kdf kdf3 80CA030200  # never ran

# pause: nothing runs (204 at once); resume: it runs; cancel: jobs cancelled
expect 0 "$S" ota campaign create --dir srv --name p --target all --put-data 0104=01
expect 0 "$S" ota campaign pause --dir srv p
expect 0 agent 1
has "$T/out" "0 scripts"
expect 0 "$S" ota campaign show --dir srv p --json
json "$T/out" "d['state'] == 'paused' and d['pending'] == 3"
expect 0 "$S" ota campaign resume --dir srv p
expect 0 agent 1
expect 0 "$S" ota campaign cancel --dir srv p
expect 0 agent 2
has "$T/out" "0 scripts"
expect 4 "$S" ota campaign wait --dir srv p --timeout 5
expect 0 "$S" ota campaign show --dir srv p --json
json "$T/out" "d['done'] == 1 and d['cancelled'] == 2 and d['state'] == 'cancelled'"
expect 1 "$S" ota campaign resume --dir srv p                   # cancelled is final

# one session per device: hold dev1's lease with a first POST (curl), then an agent is refused
expect 0 "$S" ota campaign create --dir srv --name one --target "list:$ID1" --put-data 0105=01
H1="X-Admin-Protocol: globalplatform-remote-admin/1.0"
curl -sS --cacert srv/tls/cert.pem -o /dev/null -w '%{http_code}' -H "$H1" -H "X-Admin-From: //se-id/id/$ID1" \
    -X POST "https://localhost:$PORT/server/adminagent" >"$T/code"
has "$T/code" "200"
expect 4 "$S" agent --server "https://localhost:$PORT/" --ca srv/tls/cert.pem --card dev1 --retries 0
has "$T/err" "another session holds this device"
expect 0 agent 1        # the held session times out (1 s), the lease is freed, the agent goes on
expect 0 "$S" ota campaign show --dir srv one --json
json "$T/out" "d['done'] == 1"
has srv/server.log "reason=\"step timeout"
finish ota_actions
